//! The `exact` scheme's terms, read once from a typed facilitator request: the one
//! normalisation of v1 and v2 shared by the paygate (before it claims a payment) and the
//! in-process facilitator (before it verifies or settles one). Protocol-level checks only, no
//! chain and no keys: versions are already typed; here scheme, network, `accepted` against the
//! server's requirements, fee payer, amount and addresses.

use serde_json::Value;
use solana_address::Address;

use super::network::from_v1_name;
use super::reasons::*;
use super::{FacilitatorRequest, PaymentPayload, PaymentRequirements, PaymentRequirementsV1};
use crate::svm::ExactRequirements;

/// The `exact` scheme.
pub const EXACT: &str = "exact";

/// A payment's terms in one shape for both protocol versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactTerms {
    /// CAIP-2 network.
    pub network: String,
    /// What to answer in `SettleResponse.network`: CAIP-2 for v2, the v1 name for v1.
    pub network_label: String,
    /// Terms the transaction must meet.
    pub requirements: ExactRequirements,
    /// The base64 transaction.
    pub transaction: String,
}

/// Why a request's terms are refused, with its x402 reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct TermsError {
    /// Stable reason string.
    pub reason: &'static str,
    /// What exactly.
    pub message: String,
}

fn refuse(reason: &'static str, message: impl Into<String>) -> TermsError {
    TermsError {
        reason,
        message: message.into(),
    }
}

/// Reads the terms of `request`.
pub fn normalize(request: &FacilitatorRequest) -> Result<ExactTerms, TermsError> {
    match request {
        FacilitatorRequest::V2 {
            payload,
            requirements,
        } => normalize_v2(payload, requirements),
        FacilitatorRequest::V1 {
            payload,
            requirements,
        } => {
            if payload.scheme != EXACT || requirements.scheme != EXACT {
                return Err(unsupported(&payload.scheme, &requirements.scheme));
            }
            if payload.network != requirements.network {
                return Err(refuse(
                    NETWORK_MISMATCH,
                    "paymentPayload.network differs from paymentRequirements.network",
                ));
            }
            normalize_v1(requirements, &payload.payload)
        }
    }
}

fn unsupported(accepted: &str, required: &str) -> TermsError {
    refuse(
        UNSUPPORTED_SCHEME,
        format!("scheme {accepted} / {required} is not supported (exact only)"),
    )
}

fn normalize_v2(
    payload: &PaymentPayload,
    required: &PaymentRequirements,
) -> Result<ExactTerms, TermsError> {
    let accepted = &payload.accepted;
    if accepted.scheme != EXACT || required.scheme != EXACT {
        return Err(unsupported(&accepted.scheme, &required.scheme));
    }
    if accepted.network != required.network {
        return Err(refuse(
            NETWORK_MISMATCH,
            "paymentPayload.accepted.network differs from paymentRequirements.network",
        ));
    }
    accepted
        .matches(required)
        .map_err(|m| refuse(INVALID_PAYMENT_REQUIREMENTS, m.to_string()))?;
    Ok(ExactTerms {
        network: required.network.clone(),
        network_label: required.network.clone(),
        requirements: exact_requirements(
            &required.amount,
            &required.asset,
            &required.pay_to,
            required.fee_payer(),
            required.memo(),
        )?,
        transaction: transaction_of(&payload.payload)?,
    })
}

fn normalize_v1(
    required: &PaymentRequirementsV1,
    payload: &Value,
) -> Result<ExactTerms, TermsError> {
    let network = from_v1_name(&required.network).ok_or_else(|| {
        refuse(
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
    Ok(ExactTerms {
        network: network.to_owned(),
        network_label: required.network.clone(),
        requirements: exact_requirements(
            &required.max_amount_required,
            &required.asset,
            &required.pay_to,
            extra_str("feePayer"),
            extra_str("memo"),
        )?,
        transaction: transaction_of(payload)?,
    })
}

fn exact_requirements(
    amount: &str,
    asset: &str,
    pay_to: &str,
    fee_payer: Option<&str>,
    memo: Option<&str>,
) -> Result<ExactRequirements, TermsError> {
    let fee_payer = fee_payer.ok_or_else(|| {
        refuse(
            MISSING_FEE_PAYER,
            "paymentRequirements.extra.feePayer is missing",
        )
    })?;
    let fee_payer: Address = fee_payer.parse().map_err(|_| {
        refuse(
            FEE_PAYER_NOT_MANAGED,
            "extra.feePayer is not a base58 address",
        )
    })?;
    let amount: u64 = amount.parse().map_err(|_| {
        refuse(
            INVALID_PAYMENT_REQUIREMENTS,
            "amount is not a decimal u64 of atomic units",
        )
    })?;
    let address = |field: &str, s: &str| {
        s.parse::<Address>().map_err(|_| {
            refuse(
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

fn transaction_of(payload: &Value) -> Result<String, TermsError> {
    payload
        .get("transaction")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            refuse(
                INVALID_PAYLOAD_TRANSACTION,
                "payload.transaction (base64 string) is missing",
            )
        })
}
