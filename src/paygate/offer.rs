//! The offer made for one request: the resource, the requirements per accepted asset, the
//! Bazaar and payment-identifier extensions; and the local checks a payment must pass against it.

use std::str::FromStr;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};
use solana_address::Address;

use super::cache::Encoded;
use super::challenge::{
    bazaar_extension, payment_identifier_extension, payment_required, requirements, resource_url,
    BazaarRoute,
};
use super::Paygate;
use crate::app::AppState;
use crate::config::AcceptConfig;
use crate::proxy::{RouteKind, RpcRequest};
use crate::store::PaymentKey;
use crate::svm::{self, ExactPolicy, ExactRequirements, MintInfo};
use crate::x402::{
    network, FacilitatorRequest, PaymentHeader, PaymentRequired, PaymentRequirements,
    PaymentRequirementsV1, ResourceInfo,
};

/// The offer for this request: the resource, the requirements per accepted asset, the Bazaar
/// extension.
pub(super) struct Offer {
    resource: ResourceInfo,
    pub(super) accepts: Vec<(PaymentRequirements, AcceptConfig)>,
    extensions: Map<String, Value>,
}

/// A payment that passed the local checks.
pub(super) struct Checked {
    pub(super) request: FacilitatorRequest,
    pub(super) key: PaymentKey,
    pub(super) payer: String,
    pub(super) network: String,
}

impl Offer {
    pub(super) fn new(
        app: &AppState,
        gate: &Paygate,
        rpc: &RpcRequest,
        path: &str,
        amount: u64,
    ) -> Self {
        let resource = ResourceInfo {
            url: resource_url(&app.config.server.public_base_url, path),
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
        let route = match &rpc.route {
            RouteKind::Method { surface, method } => BazaarRoute::Method {
                surface: *surface,
                method,
            },
            RouteKind::Standard => BazaarRoute::Standard,
        };
        let mut extensions = Map::new();
        extensions.insert("bazaar".into(), bazaar_extension(route));
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
    pub(super) fn check(&self, payment: &PaymentHeader) -> Result<Checked, (StatusCode, String)> {
        let refuse = |reason: String| (StatusCode::PAYMENT_REQUIRED, reason);
        let network = match payment {
            PaymentHeader::V2(p) => p.accepted.network.clone(),
            PaymentHeader::V1(p) => network::from_v1_name(&p.network)
                .ok_or_else(|| refuse(format!("invalid_network: {}", p.network)))?
                .to_string(),
        };
        let (required, accept) = self
            .accepts
            .iter()
            .find(|(r, _)| r.network == network)
            .ok_or_else(|| refuse(format!("invalid_network: {network} is not offered")))?;
        let scheme = match payment {
            PaymentHeader::V2(p) => &p.accepted.scheme,
            PaymentHeader::V1(p) => &p.scheme,
        };
        if scheme != "exact" {
            return Err(refuse("unsupported_scheme".into()));
        }
        if let PaymentHeader::V2(p) = payment {
            p.accepted
                .matches(required)
                .map_err(|m| refuse(format!("No matching payment requirements: {m}")))?;
        }
        let tx = payment.svm_transaction().ok_or_else(|| {
            (
                StatusCode::BAD_REQUEST,
                "payload.transaction is missing".to_string(),
            )
        })?;
        let tx = svm::decode_transaction(tx).map_err(|e| refuse(format!("{}: {e}", e.reason())))?;
        let address =
            |s: &str| Address::from_str(s).map_err(|_| refuse(format!("invalid address {s}")));
        let fee_payer = address(required.fee_payer().unwrap_or_default())?;
        let asset = address(&required.asset)?;
        let exact = ExactRequirements {
            amount: required
                .amount
                .parse()
                .map_err(|_| refuse("invalid amount".into()))?,
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
        .map_err(|e| refuse(format!("{}: {e}", e.reason())))?;
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
