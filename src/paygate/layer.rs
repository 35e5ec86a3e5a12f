//! The paid-route layer: challenge → decode → match → local pre-verify → claim (with the
//! payer's and provider's rate limits, one store round trip) → facilitator verify → upstream →
//! settle only on success → keep the answer with the claim (second round trip) → release it
//! with `PAYMENT-RESPONSE`.
//!
//! The claim comes before the facilitator's verify (the issue lists them the other way round)
//! so that a duplicate or a replay is answered from the store without a facilitator call; a
//! payment the facilitator refuses has its claim released at once.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::claims::{self, claim_ids, fingerprint};
use super::offer::{Checked, Offer};
use super::Paygate;
use crate::app::AppState;
use crate::error::ApiError;
use crate::facilitator::SETTLEMENT_PENDING;
use crate::pricing;
use crate::proxy::{RpcRequest, UpstreamOutcome};
use crate::store::{ClaimIds, ClaimRecord, ClaimState, LimitCheck, Reservation};
use crate::x402::header::{
    MAX_PAYMENT_HEADER_BYTES, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, X_PAYMENT, X_PAYMENT_RESPONSE,
};
use crate::x402::{decode_header_bytes, encode_header, PaymentHeader, SettleResponse};

/// What the payment amounted to, for the request log, usage counters and metrics.
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

impl PaymentSummary {
    fn new(amount: u64, outcome: &'static str) -> Self {
        Self {
            amount,
            payer: None,
            transaction: None,
            outcome,
            reason: None,
        }
    }

    fn payer(mut self, payer: &str) -> Self {
        self.payer = Some(payer.to_string());
        self
    }

    fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    fn transaction(mut self, transaction: &str) -> Self {
        if !transaction.is_empty() {
            self.transaction = Some(transaction.to_string());
        }
        self
    }
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
    let amount = quote.amount;
    let summary = |outcome| PaymentSummary::new(amount, outcome);

    let Some((payment, version)) = payment_header(request.headers()) else {
        return with_summary(
            unpaid(&app, &gate, &rpc, request.uri().path(), amount),
            summary("challenge"),
        );
    };
    let offer = Offer::new(&app, &gate, &rpc, request.uri().path(), amount);
    if offer.accepts.is_empty() {
        return no_fee_payer();
    }
    let payment = match payment {
        Ok(p) => p,
        Err(message) => {
            return with_summary(
                offer.challenge(StatusCode::BAD_REQUEST, &message),
                summary("refused").reason("malformed_payment"),
            )
        }
    };
    let checked = match offer.check(&payment) {
        Ok(checked) => checked,
        Err((status, reason)) => {
            let code = reason.split(':').next().unwrap_or_default().to_string();
            return with_summary(
                offer.challenge(status, &reason),
                summary("refused").reason(code),
            );
        }
    };
    let ids = match claim_ids(
        checked.key,
        &checked.payer,
        &payment,
        request.headers(),
        gate.config.require_payment_identifier,
    ) {
        Ok(ids) => ids,
        Err(message) => {
            return with_summary(
                offer.challenge(StatusCode::BAD_REQUEST, &message),
                summary("refused")
                    .payer(&checked.payer)
                    .reason("invalid_idempotency_id"),
            )
        }
    };
    let fingerprint = fingerprint(request.method().as_str(), request.uri().path(), &rpc.raw);
    let limits = paid_limits(&app, &checked.payer, rpc.as_ref());

    // One payment, one answer: claim it (and check the payer's and provider's limits) in one
    // atomic store step, before anything is spent on it.
    let ttl = Duration::from_secs(gate.config.claim_ttl_secs.max(1));
    let token = match app.store.reserve(&ids, &fingerprint, &limits, ttl).await {
        Ok(Reservation::Reserved { token }) => token,
        Ok(Reservation::Limited(verdict)) => {
            let response = too_many(&app, &verdict, &limits);
            return with_summary(response, summary("limited").payer(&checked.payer));
        }
        Ok(Reservation::Existing(record)) => {
            let (response, outcome, reason) = existing(&record, &fingerprint);
            let summary = summary(outcome).payer(&checked.payer);
            let summary = match reason {
                Some(reason) => summary.reason(reason),
                None => summary,
            };
            return with_summary(response, summary);
        }
        Err(e) => {
            // Fail closed: without the store we cannot promise one answer per payment.
            tracing::warn!(error = %e, "payment store unavailable");
            return with_summary(
                unavailable("the payment store is unavailable", 2),
                summary("unavailable")
                    .payer(&checked.payer)
                    .reason("store_unavailable"),
            );
        }
    };

    // From here the claim is ours. The rest runs on its own task: a client that hangs up, or the
    // global request timeout, must never leave a claimed (maybe settled) payment unrecorded.
    let paid = Paid {
        app,
        gate,
        offer,
        checked,
        ids,
        token,
        fingerprint,
        version,
        amount,
    };
    match tokio::spawn(paid.run(request, next)).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "paid request task failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "internal error",
            )
            .into_response()
        }
    }
}

/// The answer to a request without payment: the challenge for this route and price, built
/// once and then served from the paygate's cache.
fn unpaid(app: &AppState, gate: &Paygate, rpc: &RpcRequest, path: &str, amount: u64) -> Response {
    const ERROR: &str = "Payment required";
    let generation = gate.generation();
    if let Some(encoded) = gate.challenges.get(generation, path, amount) {
        return encoded.response(StatusCode::PAYMENT_REQUIRED);
    }
    let offer = Offer::new(app, gate, rpc, path, amount);
    if offer.accepts.is_empty() {
        return no_fee_payer();
    }
    let encoded = offer.encoded(ERROR);
    gate.challenges
        .put(generation, path, amount, encoded.clone());
    encoded.response(StatusCode::PAYMENT_REQUIRED)
}

fn no_fee_payer() -> Response {
    unavailable("the facilitator has not advertised a fee payer yet", 2)
}

/// The payer's limit and the provider's budget (charged the number of calls that will reach
/// it), checked in the claim's round trip.
fn paid_limits(app: &AppState, payer: &str, rpc: &RpcRequest) -> Vec<LimitCheck> {
    app.limits
        .payer(payer)
        .into_iter()
        .chain(
            app.limits
                .provider_calls(&rpc.provider, rpc.calls().count()),
        )
        .collect()
}

fn too_many(
    app: &AppState,
    verdict: &crate::store::LimitVerdict,
    limits: &[LimitCheck],
) -> Response {
    app.limits.too_many(verdict, limits)
}

/// The answer to a payment that already has a record: its kept answer for the same request,
/// else a 409 saying why.
fn existing(
    record: &ClaimRecord,
    fingerprint: &str,
) -> (Response, &'static str, Option<&'static str>) {
    let conflict = |code: &'static str, message: &str| {
        (
            ApiError::new(StatusCode::CONFLICT, code, message).into_response(),
            "duplicate",
            Some(code),
        )
    };
    match &record.state {
        ClaimState::InFlight { .. } => {
            conflict("payment_in_progress", "this payment is being processed")
        }
        ClaimState::Pending { .. } => conflict(
            "payment_in_progress",
            "this payment's settlement is being confirmed; retry later",
        ),
        ClaimState::Settled { response } if record.fingerprint == fingerprint => match response {
            Some(kept) => (claims::replay(kept), "replayed", None),
            None => conflict("payment_already_used", "this payment was already used"),
        },
        ClaimState::Settled { .. } => conflict(
            "payment_already_used",
            "this payment (or its idempotency id) was already used for another request",
        ),
    }
}

/// A claimed payment, carried through verify, upstream and settlement.
struct Paid {
    app: AppState,
    gate: Arc<Paygate>,
    offer: Offer,
    checked: Checked,
    ids: ClaimIds,
    token: String,
    fingerprint: String,
    version: u8,
    amount: u64,
}

impl Paid {
    fn summary(&self, outcome: &'static str) -> PaymentSummary {
        PaymentSummary::new(self.amount, outcome).payer(&self.checked.payer)
    }

    /// Nothing was charged: the payment may be used again.
    async fn release(&self) {
        if let Err(e) = self.app.store.release(&self.ids, &self.token).await {
            // The claim expires on its own (claim_ttl_secs); until then the payment gets 409.
            tracing::warn!(error = %e, payment = ?self.ids.payment, "claim release failed");
        }
    }

    async fn finish(&self, state: ClaimState) {
        let record = ClaimRecord {
            fingerprint: self.fingerprint.clone(),
            state,
        };
        let ttl = Duration::from_secs(self.gate.config.settled_ttl_secs.max(1));
        if let Err(e) = self
            .app
            .store
            .finish(&self.ids, &self.token, &record, ttl)
            .await
        {
            // The client paid: it still gets its answer. A replay of this payment can then
            // reach settle again, where the chain refuses the duplicate transaction.
            tracing::error!(error = %e, payment = ?self.ids.payment, "recording a settled payment failed");
        }
    }

    async fn run(self, request: Request, next: Next) -> Response {
        // The facilitator's verdict (a definitive "no" is a 402; an unreachable one is a 503).
        match self.gate.facilitator.verify(&self.checked.request).await {
            Ok(v) if v.is_valid => {}
            Ok(v) => {
                self.release().await;
                let reason = v.invalid_reason.unwrap_or_else(|| "invalid_payment".into());
                return with_summary(
                    self.offer.challenge(StatusCode::PAYMENT_REQUIRED, &reason),
                    self.summary("refused").reason(reason),
                );
            }
            Err(e) => {
                self.release().await;
                tracing::warn!(error = %e, "facilitator verify failed");
                return with_summary(
                    unavailable("the payment facilitator is unavailable", 2),
                    self.summary("unavailable")
                        .reason("facilitator_unavailable"),
                );
            }
        }

        let response = next.run(request).await;
        if response.extensions().get::<UpstreamOutcome>() != Some(&UpstreamOutcome::Success) {
            // Our or the upstream's failure: the client is not charged and may reuse the payment.
            self.release().await;
            return with_summary(response, self.summary("not_charged"));
        }
        // The answer is already in memory (the proxy capped and buffered it); collect it so it
        // can be kept with the claim.
        let (mut parts, body) = response.into_parts();
        let body = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(body) => body,
            Err(e) => {
                self.release().await;
                tracing::warn!(error = %e, "upstream answer unreadable");
                return with_summary(
                    ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        "upstream_failed",
                        "upstream answer unreadable",
                    )
                    .into_response(),
                    self.summary("not_charged"),
                );
            }
        };
        parts
            .headers
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));

        match self.gate.facilitator.settle(&self.checked.request).await {
            Ok(settled) if settled.success => {
                add_receipt(&mut parts.headers, &settled, self.version);
                let kept = claims::keep(parts.status, &parts.headers, &body);
                self.finish(ClaimState::Settled {
                    response: Some(kept),
                })
                .await;
                let summary = self.summary("settled").transaction(&settled.transaction);
                with_summary(Response::from_parts(parts, Body::from(body)), summary)
            }
            Ok(settled) if settled.error_reason.as_deref() == Some(SETTLEMENT_PENDING) => {
                let kept = claims::keep(parts.status, &parts.headers, &body);
                self.pending(Some(settled.transaction.clone()), kept).await;
                with_summary(
                    withheld(StatusCode::GATEWAY_TIMEOUT, &settled, self.version),
                    self.summary("settle_pending")
                        .transaction(&settled.transaction)
                        .reason(SETTLEMENT_PENDING),
                )
            }
            Ok(settled) => {
                // Definitely not paid: withhold the answer; the payment may be retried.
                self.release().await;
                let reason = settled
                    .error_reason
                    .clone()
                    .unwrap_or_else(|| "settle_failed".into());
                with_summary(
                    withheld(StatusCode::PAYMENT_REQUIRED, &settled, self.version),
                    self.summary("settle_failed").reason(reason),
                )
            }
            Err(e) if !e.maybe_sent() => {
                self.release().await;
                with_summary(
                    unavailable("the payment facilitator is unavailable", 2),
                    self.summary("settle_failed")
                        .reason("facilitator_unavailable"),
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "settle outcome unknown");
                let kept = claims::keep(parts.status, &parts.headers, &body);
                self.pending(None, kept).await;
                let unknown = SettleResponse {
                    success: false,
                    error_reason: Some(SETTLEMENT_PENDING.into()),
                    error_message: Some(e.to_string()),
                    transaction: String::new(),
                    network: self.checked.network.clone(),
                    payer: Some(self.checked.payer.clone()),
                };
                with_summary(
                    withheld(StatusCode::GATEWAY_TIMEOUT, &unknown, self.version),
                    self.summary("settle_pending").reason(SETTLEMENT_PENDING),
                )
            }
        }
    }

    /// The settlement's outcome is unknown: keep the claim (a retry gets 409) with what the
    /// reconciler needs to finish it, and the answer to release if it confirms.
    async fn pending(&self, transaction: Option<String>, kept: crate::store::CachedResponse) {
        let settle_request = serde_json::to_string(&self.checked.request).unwrap_or_default();
        self.finish(ClaimState::Pending {
            transaction: transaction.filter(|t| !t.is_empty()),
            response: Some(kept),
            settle_request,
        })
        .await;
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

pub(super) fn add_receipt(headers: &mut HeaderMap, settled: &SettleResponse, version: u8) {
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
pub(super) fn withheld(status: StatusCode, settled: &SettleResponse, version: u8) -> Response {
    let mut response = (status, Json(json!({}))).into_response();
    add_receipt(response.headers_mut(), settled, version);
    response
}

fn unavailable(message: &str, retry_after_secs: u32) -> Response {
    let mut response = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "payment_unavailable",
        message,
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

fn with_summary(mut response: Response, summary: PaymentSummary) -> Response {
    response.extensions_mut().insert(summary);
    response
}
