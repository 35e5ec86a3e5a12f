//! The paid-route layer: challenge → decode → match → local pre-verify → facilitator verify →
//! reserve → upstream → settle only on success → release the answer with `PAYMENT-RESPONSE`.

use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use solana_address::Address;

use super::challenge::{
    bazaar_extension, payment_required, requirements, resource_url, AcceptConfig, BazaarRoute,
};
use super::{Claim, Paygate};
use crate::app::AppState;
use crate::error::ApiError;
use crate::facilitator::SETTLEMENT_PENDING;
use crate::pricing;
use crate::proxy::{RouteKind, RpcRequest, UpstreamOutcome};
use crate::svm::{self, ExactPolicy, ExactRequirements, MintInfo};
use crate::x402::header::{
    MAX_PAYMENT_HEADER_BYTES, PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, X_PAYMENT,
    X_PAYMENT_RESPONSE,
};
use crate::x402::{
    decode_header_bytes, encode_header, network, FacilitatorRequest, PaymentHeader,
    PaymentRequired, PaymentRequirements, PaymentRequirementsV1, ResourceInfo, SettleResponse,
};

/// What the payment amounted to, for the request log.
#[derive(Debug, Clone)]
pub struct PaymentSummary {
    /// Price asked, in atomic units.
    pub amount: u64,
    /// Payer wallet, when known.
    pub payer: Option<String>,
    /// Transaction signature, when settled or pending.
    pub transaction: Option<String>,
    /// `challenge`, `settled`, `not_charged`, `settle_failed`, `settle_pending`, `refused`,
    /// `replayed` (a cached answer sent again), `duplicate` (409), `limited` (429),
    /// `unavailable` (503).
    pub outcome: &'static str,
    /// Why, for refusals and failures: a verify/settle reason string (`invalid_exact_svm_*`,
    /// `insufficient_funds`...), `payment_in_progress`, `payment_already_used`...
    pub reason: Option<String>,
}

/// Route layer (inside `parse_rpc_request`): gates the route behind an x402 payment when
/// payments are enabled; otherwise passes through.
pub async fn paygate(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let Some(gate) = app.paygate.clone() else {
        return next.run(request).await;
    };
    let Some(rpc) = request.extensions().get::<Arc<RpcRequest>>().cloned() else {
        return next.run(request).await;
    };
    let Some(provider) = app.providers.get(&rpc.provider) else {
        return next.run(request).await;
    };
    let quote = match pricing::quote(&app.config.pricing, &provider.config, rpc.calls()) {
        Ok(Some(quote)) => quote,
        // Nothing would reach the provider (every element refused): nothing to sell.
        Ok(None) => return next.run(request).await,
        Err(e) => {
            return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "unpriced", e.to_string())
                .into_response()
        }
    };
    let offer = Offer::new(&app, &gate, &rpc, request.uri().path(), quote.amount);
    if offer.accepts.is_empty() {
        return unavailable("the facilitator has not advertised a fee payer yet");
    }
    let summary = |outcome, payer: Option<String>, transaction: Option<String>| PaymentSummary {
        amount: quote.amount,
        payer,
        transaction,
        outcome,
        reason: None,
    };

    let Some((payment, version)) = payment_header(request.headers()) else {
        return with_summary(
            offer.challenge(StatusCode::PAYMENT_REQUIRED, "Payment required"),
            summary("challenge", None, None),
        );
    };
    let payment = match payment {
        Ok(p) => p,
        Err(message) => {
            return with_summary(
                offer.challenge(StatusCode::BAD_REQUEST, &message),
                summary("refused", None, None),
            )
        }
    };
    let checked = match offer.check(&payment) {
        Ok(checked) => checked,
        Err((status, reason)) => {
            return with_summary(
                offer.challenge(status, &reason),
                summary("refused", None, None),
            )
        }
    };
    let payer = Some(checked.payer.clone());

    // The facilitator's verdict (a definitive "no" is a 402; an unreachable one is a 503).
    match gate.facilitator.verify(&checked.request).await {
        Ok(v) if v.is_valid => {}
        Ok(v) => {
            let reason = v.invalid_reason.unwrap_or_else(|| "invalid_payment".into());
            return with_summary(
                offer.challenge(StatusCode::PAYMENT_REQUIRED, &reason),
                summary("refused", payer, None),
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "facilitator verify failed");
            return with_summary(
                unavailable("the payment facilitator is unavailable"),
                summary("refused", payer, None),
            );
        }
    }

    // One payment, one answer: claim it before the upstream call.
    if let Err(claim) = gate.reservations.reserve(checked.key) {
        let (code, message) = match claim {
            Claim::Settled => ("payment_already_used", "this payment was already used"),
            Claim::InFlight | Claim::Pending => {
                ("payment_in_progress", "this payment is being processed")
            }
        };
        let response = ApiError::new(StatusCode::CONFLICT, code, message).into_response();
        return with_summary(response, summary("refused", payer, None));
    }

    let response = next.run(request).await;
    if response.extensions().get::<UpstreamOutcome>() != Some(&UpstreamOutcome::Success) {
        // Our or the upstream's failure: the client is not charged and may reuse the payment.
        gate.reservations.release(&checked.key);
        return with_summary(response, summary("not_charged", payer, None));
    }

    match gate.facilitator.settle(&checked.request).await {
        Ok(settled) if settled.success => {
            gate.reservations.mark(checked.key, Claim::Settled);
            let tx = Some(settled.transaction.clone());
            let mut response = response;
            add_receipt(response.headers_mut(), &settled, version);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
            with_summary(response, summary("settled", payer, tx))
        }
        Ok(settled) if settled.error_reason.as_deref() == Some(SETTLEMENT_PENDING) => {
            gate.reservations.mark(checked.key, Claim::Pending);
            let tx = Some(settled.transaction.clone());
            with_summary(
                withheld(StatusCode::GATEWAY_TIMEOUT, &settled, version),
                summary("settle_pending", payer, tx),
            )
        }
        Ok(settled) => {
            // Definitely not paid: withhold the answer; the payment may be retried.
            gate.reservations.release(&checked.key);
            with_summary(
                withheld(StatusCode::PAYMENT_REQUIRED, &settled, version),
                summary("settle_failed", payer, None),
            )
        }
        Err(e) if !e.maybe_sent() => {
            gate.reservations.release(&checked.key);
            with_summary(
                unavailable("the payment facilitator is unavailable"),
                summary("settle_failed", payer, None),
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "settle outcome unknown");
            gate.reservations.mark(checked.key, Claim::Pending);
            let unknown = SettleResponse {
                success: false,
                error_reason: Some(SETTLEMENT_PENDING.into()),
                error_message: Some(e.to_string()),
                transaction: String::new(),
                network: checked.network.clone(),
                payer: payer.clone(),
            };
            with_summary(
                withheld(StatusCode::GATEWAY_TIMEOUT, &unknown, version),
                summary("settle_pending", payer, None),
            )
        }
    }
}

/// The offer for this request: the resource, the requirements per accepted asset, the Bazaar
/// extension.
struct Offer {
    resource: ResourceInfo,
    accepts: Vec<(PaymentRequirements, AcceptConfig)>,
    extensions: Map<String, Value>,
}

/// A payment that passed the local checks.
struct Checked {
    request: FacilitatorRequest,
    key: [u8; 32],
    payer: String,
    network: String,
}

impl Offer {
    fn new(app: &AppState, gate: &Paygate, rpc: &RpcRequest, path: &str, amount: u64) -> Self {
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

    /// A challenge answer: `PAYMENT-REQUIRED` and the same JSON as the body.
    fn challenge(&self, status: StatusCode, error: &str) -> Response {
        let mut body = self.required();
        body.error = Some(error.to_string());
        let mut response = (status, Json(&body)).into_response();
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&encode_header(&body)) {
            headers.insert(PAYMENT_REQUIRED, value);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }

    /// Matches the payment to our requirement and runs the strict SVM checks locally, so a
    /// forged or mismatched payment costs no facilitator and no upstream call.
    fn check(&self, payment: &PaymentHeader) -> Result<Checked, (StatusCode, String)> {
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
            key: tx.message_hash(),
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

/// The payment header and its version, decoded; `None` when there is none.
fn payment_header(headers: &HeaderMap) -> Option<(Result<PaymentHeader, String>, u8)> {
    let (value, version) = match (headers.get(PAYMENT_SIGNATURE), headers.get(X_PAYMENT)) {
        (Some(v), _) => (v, 2),
        (None, Some(v)) => (v, 1),
        (None, None) => return None,
    };
    let decoded = decode_header_bytes(value.as_bytes(), MAX_PAYMENT_HEADER_BYTES)
        .and_then(|json| PaymentHeader::from_json(&json))
        .map_err(|e| format!("malformed payment header: {e}"));
    Some((decoded, version))
}

fn add_receipt(headers: &mut HeaderMap, settled: &SettleResponse, version: u8) {
    if let Ok(value) = HeaderValue::from_str(&encode_header(settled)) {
        let name = if version == 1 {
            X_PAYMENT_RESPONSE
        } else {
            PAYMENT_RESPONSE
        };
        headers.insert(name, value);
    }
}

/// The answer withheld: the receipt says why, the body is empty JSON.
fn withheld(status: StatusCode, settled: &SettleResponse, version: u8) -> Response {
    let mut response = (status, Json(json!({}))).into_response();
    add_receipt(response.headers_mut(), settled, version);
    response
}

fn unavailable(message: &str) -> Response {
    let mut response = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "payment_unavailable",
        message,
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    response
}

fn with_summary(mut response: Response, summary: PaymentSummary) -> Response {
    response.extensions_mut().insert(summary);
    response
}
