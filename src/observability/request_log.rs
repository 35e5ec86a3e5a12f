//! One INFO event per request: route, RPC method, provider, status, latency, request id.
//! Handlers describe what they did by putting a [`RequestSummary`] in the response extensions;
//! this layer reads it, so no handler logs the request itself.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

use crate::proxy::UpstreamOutcome;

/// What an RPC handler did, for the request log.
#[derive(Debug, Clone)]
pub struct RequestSummary {
    /// The JSON-RPC method, or `batch`.
    pub rpc_method: String,
    /// The provider called.
    pub provider: String,
    /// The cluster.
    pub cluster: &'static str,
    /// How the upstream call went.
    pub outcome: UpstreamOutcome,
}

/// Middleware writing the request line. Never logs bodies, query strings or headers (they may
/// carry payments, sign-ins or keys).
pub async fn request_log(request: Request, next: Next) -> Response {
    // Checked once per request: with the line filtered out (`[log] filter = "warn"`), the
    // route and id are not even copied.
    if !tracing::enabled!(target: "x402_gateway::request", tracing::Level::INFO) {
        return next.run(request).await;
    }
    let started = Instant::now();
    let http_method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let response = next.run(request).await;
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    let summary = response.extensions().get::<RequestSummary>();
    let payment = response
        .extensions()
        .get::<crate::paygate::PaymentSummary>();
    let auth = response.extensions().get::<crate::authgate::AuthSummary>();
    tracing::info!(
        target: "x402_gateway::request",
        request_id = %request_id,
        http.method = %http_method,
        route = %route,
        status,
        duration_ms = (duration_ms * 1000.0).round() / 1000.0,
        rpc.method = summary.map(|s| s.rpc_method.as_str()),
        upstream.provider = summary.map(|s| s.provider.as_str()),
        cluster = summary.map(|s| s.cluster),
        upstream.outcome = summary.map(|s| format!("{:?}", s.outcome)),
        payment.amount = payment.map(|p| p.amount),
        payment.payer = payment.and_then(|p| p.payer.as_deref()),
        payment.tx = payment.and_then(|p| p.transaction.as_deref()),
        payment.outcome = payment.map(|p| p.outcome),
        auth.wallet = auth.and_then(|a| a.wallet.as_deref()),
        auth.outcome = auth.map(|a| a.outcome),
        "request"
    );
    response
}
