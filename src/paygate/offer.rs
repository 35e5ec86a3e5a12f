//! The offer made for one request: the resource, the requirements per accepted asset, the
//! Bazaar and payment-identifier extensions; and the local checks a payment must pass against it.

use std::str::FromStr;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};
use solana_address::Address;

use super::cache::Encoded;
use super::challenge::{
    bazaar_extension, payment_identifier_extension, payment_required, requirements, AcceptConfig,
};
use super::error::Refusal;
use super::Paygate;
use crate::priced::PricedRequest;
use crate::store::PaymentKey;
use crate::svm::{self, ExactPolicy, ExactRequirements, MintInfo};
use crate::x402::{
    network, FacilitatorRequest, PaymentHeader, PaymentRequired, PaymentRequirements,
    PaymentRequirementsV1, ResourceInfo,
};

/// The offer for this request: the resource, the requirements per accepted asset, the Bazaar
/// extension.
#[derive(Debug)]
pub(crate) struct Offer {
    resource: ResourceInfo,
    pub(super) accepts: Vec<(PaymentRequirements, AcceptConfig)>,
    extensions: Map<String, Value>,
}

/// A payment that passed the local checks.
#[derive(Debug)]
pub(super) struct Checked {
    pub(super) request: FacilitatorRequest,
    pub(super) key: PaymentKey,
    pub(super) payer: String,
    pub(super) network: String,
}

impl Offer {
    pub(super) fn new(gate: &Paygate, priced: &PricedRequest, amount: u64) -> Self {
        let resource = ResourceInfo {
            url: priced.resource.clone(),
            description: gate.config.description.clone(),
            mime_type: "application/json".into(),
        };
        let accepts = gate
            .config
            .accepts
            .iter()
            .filter_map(|accept| {
                let fee_payer = gate.fee_payer(&accept.network)?;
                let r = requirements(
                    accept,
                    amount,
                    &gate.pay_to,
                    &fee_payer,
                    gate.config.max_timeout_seconds,
                );
                Some((r, accept.clone()))
            })
            .collect();
        let mut extensions = Map::new();
        extensions.insert("bazaar".into(), bazaar_extension(&priced.discovery));
        extensions.insert(
            "payment-identifier".into(),
            payment_identifier_extension(gate.config.require_payment_identifier),
        );
        Self {
            resource,
            accepts,
            extensions,
        }
    }

    fn required(&self) -> PaymentRequired {
        payment_required(
            self.resource.clone(),
            self.accepts.iter().map(|(r, _)| r.clone()).collect(),
            None,
            self.extensions.clone(),
        )
    }

    /// The challenge, serialized, with `error` saying why payment is (still) required.
    pub(super) fn encoded(&self, error: &str) -> Encoded {
        let mut body = self.required();
        body.error = Some(error.to_string());
        Encoded::new(&body)
    }

    /// A challenge answer: `PAYMENT-REQUIRED` and the same JSON as the body.
    pub(super) fn challenge(&self, status: StatusCode, error: &str) -> Response {
        self.encoded(error).response(status)
    }

    /// Matches the payment to our requirement and runs the strict SVM checks locally, so a
    /// forged or mismatched payment costs no facilitator and no upstream call.
    pub(super) fn check(&self, payment: &PaymentHeader) -> Result<Checked, Refusal> {
        let network = match payment {
            PaymentHeader::V2(p) => p.accepted.network.clone(),
            PaymentHeader::V1(p) => network::from_v1_name(&p.network)
                .ok_or_else(|| Refusal::payment("invalid_network", Some(p.network.clone())))?
                .to_string(),
        };
        let (required, accept) = self
            .accepts
            .iter()
            .find(|(r, _)| r.network == network)
            .ok_or_else(|| {
                Refusal::payment("invalid_network", Some(format!("{network} is not offered")))
            })?;
        let scheme = match payment {
            PaymentHeader::V2(p) => &p.accepted.scheme,
            PaymentHeader::V1(p) => &p.scheme,
        };
        if scheme != "exact" {
            return Err(Refusal::payment("unsupported_scheme", None));
        }
        if let PaymentHeader::V2(p) = payment {
            p.accepted.matches(required).map_err(|m| Refusal {
                status: StatusCode::PAYMENT_REQUIRED,
                code: "payment_requirements_mismatch".into(),
                message: format!("No matching payment requirements: {m}"),
            })?;
        }
        let tx = payment.svm_transaction().ok_or_else(|| {
            Refusal::malformed(
                "malformed_payment",
                "payload.transaction is missing".to_string(),
            )
        })?;
        let svm_refusal = |e: svm::VerifyError| Refusal::payment(e.reason(), Some(e.to_string()));
        let tx = svm::decode_transaction(tx).map_err(svm_refusal)?;
        // Our own requirements: a failure here is a bug in what we offered, said as such.
        let address = |s: &str| {
            Address::from_str(s).map_err(|_| Refusal {
                status: StatusCode::PAYMENT_REQUIRED,
                code: "invalid_requirements".into(),
                message: format!("invalid address {s}"),
            })
        };
        let fee_payer = address(required.fee_payer().unwrap_or_default())?;
        let asset = address(&required.asset)?;
        let exact = ExactRequirements {
            amount: required.amount.parse().map_err(|_| Refusal {
                status: StatusCode::PAYMENT_REQUIRED,
                code: "invalid_requirements".into(),
                message: "invalid amount".into(),
            })?,
            asset,
            pay_to: address(&required.pay_to)?,
            fee_payer,
            memo: required.memo().map(String::from),
        };
        let mint = MintInfo {
            address: asset,
            token_program: address(&accept.token_program)?,
            decimals: accept.decimals,
        };
        let verified = svm::verify_exact(
            &tx,
            &exact,
            &mint,
            &ExactPolicy::new(vec![fee_payer], vec![asset]),
        )
        .map_err(svm_refusal)?;
        let request = match payment {
            PaymentHeader::V2(p) => FacilitatorRequest {
                x402_version: 2,
                payment_payload: serde_json::to_value(p).unwrap_or_default(),
                payment_requirements: serde_json::to_value(required).unwrap_or_default(),
            },
            PaymentHeader::V1(p) => FacilitatorRequest {
                x402_version: 1,
                payment_payload: serde_json::to_value(p).unwrap_or_default(),
                payment_requirements: serde_json::to_value(v1_requirements(
                    required,
                    &self.resource,
                ))
                .unwrap_or_default(),
            },
        };
        Ok(Checked {
            request,
            key: PaymentKey(tx.message_hash()),
            payer: verified.payer.to_string(),
            network,
        })
    }
}

fn v1_requirements(r: &PaymentRequirements, resource: &ResourceInfo) -> PaymentRequirementsV1 {
    PaymentRequirementsV1 {
        scheme: r.scheme.clone(),
        network: network::to_v1_name(&r.network)
            .unwrap_or_default()
            .to_string(),
        max_amount_required: r.amount.clone(),
        resource: resource.url.clone(),
        description: resource.description.clone(),
        mime_type: resource.mime_type.clone(),
        pay_to: r.pay_to.clone(),
        max_timeout_seconds: r.max_timeout_seconds,
        asset: r.asset.clone(),
        extra: r.extra.clone(),
    }
}
