//! Turning a facilitator request (v2 or v1 JSON) into one normalized [`Payment`], with the
//! protocol-level checks that need no RPC: versions, scheme, network, `accepted` against the
//! server's requirements, fee payer, amount and addresses.

use serde_json::Value;
use solana_address::Address;

use super::reasons::*;
use super::Rejection;
use crate::facilitator::keys::FeePayerKeys;
use crate::svm::{ExactRequirements, VerifyError};
use crate::x402::network::from_v1_name;
use crate::x402::{
    FacilitatorRequest, PaymentPayload, PaymentPayloadV1, PaymentRequirements,
    PaymentRequirementsV1,
};

/// The `exact` scheme.
const EXACT: &str = "exact";

/// A payment request in one shape for both protocol versions.
#[derive(Debug, Clone)]
pub(crate) struct Payment {
    /// CAIP-2 network.
    pub network: String,
    /// What to answer in `SettleResponse.network`: CAIP-2 for v2, the v1 name for v1.
    pub network_label: String,
    /// Terms the transaction must meet.
    pub requirements: ExactRequirements,
    /// The base64 transaction.
    pub transaction: String,
}

fn reject(reason: &'static str, message: impl Into<String>) -> Rejection {
    Rejection::new(reason, message)
}

/// Parses and checks `req`. `served` says whether a CAIP-2 network is configured.
pub(crate) fn parse(
    req: &FacilitatorRequest,
    keys: &FeePayerKeys,
    served: impl Fn(&str) -> bool,
) -> Result<Payment, Rejection> {
    let payment = match req.x402_version {
        2 => parse_v2(req)?,
        1 => parse_v1(req)?,
        v => {
            return Err(reject(
                INVALID_X402_VERSION,
                format!("x402Version {v} is not supported (1 or 2)"),
            ))
        }
    };
    if !served(&payment.network) {
        return Err(reject(
            INVALID_NETWORK,
            format!(
                "network {} is not served by this facilitator",
                payment.network
            ),
        ));
    }
    if keys.get(&payment.requirements.fee_payer).is_none() {
        return Err(VerifyError::FeePayerNotManaged(payment.requirements.fee_payer).into());
    }
    Ok(payment)
}

fn parse_v2(req: &FacilitatorRequest) -> Result<Payment, Rejection> {
    let payload: PaymentPayload = serde_json::from_value(req.payment_payload.clone())
        .map_err(|e| reject(INVALID_PAYLOAD, format!("paymentPayload: {e}")))?;
    if payload.x402_version != 2 {
        return Err(reject(
            INVALID_X402_VERSION,
            "paymentPayload.x402Version differs from x402Version",
        ));
    }
    let required: PaymentRequirements = serde_json::from_value(req.payment_requirements.clone())
        .map_err(|e| {
            reject(
                INVALID_PAYMENT_REQUIREMENTS,
                format!("paymentRequirements: {e}"),
            )
        })?;
    let accepted = &payload.accepted;
    if accepted.scheme != EXACT || required.scheme != EXACT {
        return Err(reject(
            UNSUPPORTED_SCHEME,
            format!(
                "scheme {} / {} is not supported (exact only)",
                accepted.scheme, required.scheme
            ),
        ));
    }
    if accepted.network != required.network {
        return Err(reject(
            NETWORK_MISMATCH,
            "paymentPayload.accepted.network differs from paymentRequirements.network",
        ));
    }
    accepted
        .matches(&required)
        .map_err(|m| reject(INVALID_PAYMENT_REQUIREMENTS, m.to_string()))?;
    let requirements = exact_requirements(
        &required.amount,
        &required.asset,
        &required.pay_to,
        required.fee_payer(),
        required.memo(),
    )?;
    Ok(Payment {
        network: required.network.clone(),
        network_label: required.network,
        requirements,
        transaction: transaction_of(&payload.payload)?,
    })
}

fn parse_v1(req: &FacilitatorRequest) -> Result<Payment, Rejection> {
    let payload: PaymentPayloadV1 = serde_json::from_value(req.payment_payload.clone())
        .map_err(|e| reject(INVALID_PAYLOAD, format!("paymentPayload: {e}")))?;
    if payload.x402_version != 1 {
        return Err(reject(
            INVALID_X402_VERSION,
            "paymentPayload.x402Version differs from x402Version",
        ));
    }
    let required: PaymentRequirementsV1 = serde_json::from_value(req.payment_requirements.clone())
        .map_err(|e| {
            reject(
                INVALID_PAYMENT_REQUIREMENTS,
                format!("paymentRequirements: {e}"),
            )
        })?;
    if payload.scheme != EXACT || required.scheme != EXACT {
        return Err(reject(
            UNSUPPORTED_SCHEME,
            format!(
                "scheme {} / {} is not supported (exact only)",
                payload.scheme, required.scheme
            ),
        ));
    }
    if payload.network != required.network {
        return Err(reject(
            NETWORK_MISMATCH,
            "paymentPayload.network differs from paymentRequirements.network",
        ));
    }
    let network = from_v1_name(&required.network).ok_or_else(|| {
        reject(
            INVALID_NETWORK,
            format!("v1 network {} is not a Solana network", required.network),
        )
    })?;
    let extra_str = |key: &str| {
        required
            .extra
            .as_ref()
            .and_then(|e| e.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let requirements = exact_requirements(
        &required.max_amount_required,
        &required.asset,
        &required.pay_to,
        extra_str("feePayer"),
        extra_str("memo"),
    )?;
    Ok(Payment {
        network: network.to_owned(),
        network_label: required.network,
        requirements,
        transaction: transaction_of(&payload.payload)?,
    })
}

fn exact_requirements(
    amount: &str,
    asset: &str,
    pay_to: &str,
    fee_payer: Option<&str>,
    memo: Option<&str>,
) -> Result<ExactRequirements, Rejection> {
    let fee_payer = fee_payer.ok_or_else(|| {
        reject(
            MISSING_FEE_PAYER,
            "paymentRequirements.extra.feePayer is missing",
        )
    })?;
    let fee_payer: Address = fee_payer.parse().map_err(|_| {
        reject(
            FEE_PAYER_NOT_MANAGED,
            "extra.feePayer is not a base58 address",
        )
    })?;
    let amount: u64 = amount.parse().map_err(|_| {
        reject(
            INVALID_PAYMENT_REQUIREMENTS,
            "amount is not a decimal u64 of atomic units",
        )
    })?;
    let address = |field: &str, s: &str| {
        s.parse::<Address>().map_err(|_| {
            reject(
                INVALID_PAYMENT_REQUIREMENTS,
                format!("{field} is not a base58 address"),
            )
        })
    };
    Ok(ExactRequirements {
        amount,
        asset: address("asset", asset)?,
        pay_to: address("payTo", pay_to)?,
        fee_payer,
        memo: memo.map(str::to_owned),
    })
}

fn transaction_of(payload: &Value) -> Result<String, Rejection> {
    payload
        .get("transaction")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            reject(
                INVALID_PAYLOAD_TRANSACTION,
                "payload.transaction (base64 string) is missing",
            )
        })
}
