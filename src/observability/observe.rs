//! The one observing layer: for every request, the latency histogram, the payment and limit
//! counters, the usage counters (RPC requests) and one INFO line, all read from the request
//! record ([`Exchange`]) the inner layers filled. No handler logs or counts a request itself.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::prometheus::{method_label, reason_label, route_label, status_label, REQUEST_DURATION};
use crate::exchange::{Exchange, PaymentOutcome};
use crate::usage::{self, Day, Usage, UsageKey};

/// Global middleware (outside everything that can answer, inside the request id).
pub(crate) async fn observe(
    State(usage): State<Arc<Usage>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let http_method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    // Checked once per request: with the line filtered out (`[log] filter = "warn"`), the id is
    // not even copied.
    let log = tracing::enabled!(target: "x402_gateway::request", tracing::Level::INFO);
    let request_id = log
        .then(|| request.headers().get("x-request-id").cloned())
        .flatten();

    let response = next.run(request).await;

    let elapsed = started.elapsed();
    let route = route.as_ref().map(MatchedPath::as_str);
    let status = response.status();
    metrics::histogram!(REQUEST_DURATION,
        "route" => route_label(route), "method" => method_label(&http_method),
        "status" => status_label(status))
    .record(elapsed.as_secs_f64());
    let empty = Exchange::default();
    let record = Exchange::get(&response).unwrap_or(&empty);
    count(record);
    if let Some(rpc) = &record.rpc {
        let revenue = record
            .payment
            .as_ref()
            .filter(|p| p.outcome == PaymentOutcome::Settled)
            .map_or(0, |p| p.amount);
        let key = UsageKey {
            route: route.unwrap_or_default(),
            cluster: rpc.cluster.as_str(),
            method: &rpc.method,
            provider: &rpc.provider,
            outcome: usage::outcome(record),
        };
        usage.record(Day::today(), &key, revenue);
    }
    if log {
        let payment = record.payment.as_ref();
        let auth = record.auth.as_ref();
        tracing::info!(
            target: "x402_gateway::request",
            request_id = request_id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or(""),
            http.method = %http_method,
            route = route.unwrap_or("unmatched"),
            status = status.as_u16(),
            duration_ms = (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0,
            rpc.method = record.rpc.as_ref().map(|r| r.method.as_str()),
            upstream.provider = record.rpc.as_ref().map(|r| r.provider.as_str()),
            cluster = record.rpc.as_ref().map(|r| r.cluster.as_str()),
            upstream.outcome = record.upstream.map(|u| u.as_str()),
            payment.amount = payment.map(|p| p.amount),
            payment.payer = payment.and_then(|p| p.payer.as_deref()),
            payment.tx = payment.and_then(|p| p.transaction.as_deref()),
            payment.outcome = payment.map(|p| p.outcome.as_str()),
            payment.reason = payment.and_then(|p| p.reason.as_deref()),
            limited = record.limited.map(|s| s.as_str()),
            auth.wallet = auth.and_then(|a| a.wallet.as_deref()),
            auth.outcome = auth.map(|a| a.outcome.as_str()),
            "request"
        );
    }
    response
}

/// The payment and limit counters of one request.
fn count(record: &Exchange) {
    if let Some(scope) = record.limited {
        metrics::counter!("x402_rate_limited_total", "scope" => scope.as_str()).increment(1);
    }
    let Some(payment) = &record.payment else {
        return;
    };
    let reason = reason_label(payment.reason.as_deref());
    metrics::counter!("x402_payments_total",
        "outcome" => payment.outcome.as_str(), "reason" => reason.clone())
    .increment(1);
    match payment.outcome {
        PaymentOutcome::Duplicate => {
            metrics::counter!("x402_payment_duplicates_total", "reason" => reason).increment(1)
        }
        PaymentOutcome::Settled => {
            metrics::counter!("x402_revenue_atomic_total").increment(payment.amount)
        }
        _ => {}
    }
}
