//! The offer made for one request: the resource, the requirements per accepted asset, the
//! Bazaar and payment-identifier extensions; and the local checks a payment must pass against it.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};
use solana_address::Address;

use super::cache::Encoded;
use super::challenge::{
    bazaar_extension, payment_identifier_extension, payment_required, requirements, v1_requirements,
};
use super::Paygate;
use crate::config::AcceptConfig;
use crate::priced::PricedRequest;
use crate::store::PaymentKey;
use crate::svm::{self, DecodedTransaction, ExactPolicy, MintInfo};
use crate::x402::exact::normalize;
use crate::x402::{
    network, FacilitatorRequest, PaymentHeader, PaymentRequired, PaymentRequirements, ResourceInfo,
};

/// Why a payment was refused by our checks: the challenge is sent again with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// 400 for a payment we cannot read, 402 for one we will not take.
    pub(crate) status: StatusCode,
    /// Stable snake_case code for logs and metrics (`invalid_exact_svm_payload_amount`...).
    pub(crate) code: Cow<'static, str>,
    /// The challenge's `error`: the code, then what exactly was wrong.
    pub(crate) message: String,
}

impl Refusal {
    /// A 402 refusal: `code` alone, or `code: detail`.
    pub(crate) fn payment(code: impl Into<Cow<'static, str>>, detail: Option<String>) -> Self {
        let code = code.into();
        let message = match detail {
            Some(detail) => format!("{code}: {detail}"),
            None => code.to_string(),
        };
        Self {
            status: StatusCode::PAYMENT_REQUIRED,
            code,
            message,
        }
    }

    /// A 400 refusal: the payment (or its id) could not be read at all.
    pub(crate) fn malformed(code: &'static str, message: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: Cow::Borrowed(code),
            message,
        }
    }
}

/// The offer for this request: the resource, the requirements per accepted asset, the Bazaar
/// extension.
#[derive(Debug)]
pub(crate) struct Offer {
    resource: ResourceInfo,
    pub(super) accepts: Vec<(PaymentRequirements, AcceptConfig)>,
    extensions: Map<String, Value>,
    /// `[payment] require_memo`: refuse memo-less payments even when no `extra.memo` is set.
    require_memo: bool,
}

/// A payment that passed the local checks.
#[derive(Debug)]
pub(super) struct Checked {
    pub(super) request: FacilitatorRequest,
    /// Its transaction, decoded and with the client signatures verified: an in-process
    /// facilitator reuses it.
    pub(super) tx: Arc<DecodedTransaction>,
    pub(super) key: PaymentKey,
    pub(super) payer: String,
    pub(super) network: String,
    /// The mint paid in.
    pub(super) asset: String,
    /// Our receiving wallet.
    pub(super) pay_to: String,
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
            .filter(|accept| accept.network == priced.network)
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
        // Every paid call (not a top-up) may be paid with credits instead.
        if let (Some(credits), None) = (&gate.credits, priced.grants) {
            extensions.insert("credits".into(), credits.extension());
        }
        Self {
            resource,
            accepts,
            extensions,
            require_memo: gate.config.require_memo,
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

    /// Matches the payment to our requirement, reads its terms with the same normalisation
    /// the facilitator uses, and runs the strict SVM checks locally, so a forged or mismatched
    /// payment costs no facilitator and no upstream call.
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
        if payment.svm_transaction().is_none() {
            return Err(Refusal::malformed(
                "malformed_payment",
                "payload.transaction is missing".to_string(),
            ));
        }
        // The request the facilitator will get: the client's payment against our own terms.
        let request = match payment {
            PaymentHeader::V2(p) => FacilitatorRequest::V2 {
                payload: p.clone(),
                requirements: Box::new(required.clone()),
            },
            PaymentHeader::V1(p) => FacilitatorRequest::V1 {
                payload: Box::new(p.clone()),
                requirements: Box::new(v1_requirements(required, &self.resource, None)),
            },
        };
        let terms = normalize(&request).map_err(|e| Refusal::payment(e.reason, Some(e.message)))?;
        let svm_refusal = |e: svm::VerifyError| Refusal::payment(e.reason(), Some(e.to_string()));
        let tx = svm::decode_transaction(&terms.transaction).map_err(svm_refusal)?;
        let exact = &terms.requirements;
        let mint = MintInfo {
            address: exact.asset,
            // Our own config, validated at load: a failure here is a bug in what we offered.
            token_program: Address::from_str(&accept.token_program).map_err(|_| Refusal {
                status: StatusCode::PAYMENT_REQUIRED,
                code: "invalid_requirements".into(),
                message: format!("invalid token program {}", accept.token_program),
            })?,
            decimals: accept.decimals,
        };
        let verified = svm::verify_exact(
            &tx,
            exact,
            &mint,
            &ExactPolicy {
                require_memo: self.require_memo,
                ..ExactPolicy::new(vec![exact.fee_payer], vec![exact.asset])
            },
        )
        .map_err(svm_refusal)?;
        Ok(Checked {
            request,
            key: PaymentKey(tx.message_hash()),
            tx: Arc::new(tx),
            payer: verified.payer.to_string(),
            network,
            asset: exact.asset.to_string(),
            pay_to: required.pay_to.clone(),
        })
    }
}
