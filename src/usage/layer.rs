//! The route layer that counts RPC requests (inside parsing, outside the rate limits and the
//! paygate, so it sees the parsed request and every answer those layers give).

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::{outcome, Day, UsageKey};
use crate::app::AppState;
use crate::paygate::PaymentSummary;
use crate::proxy::RpcRequest;

/// Counts the request under its route, cluster, method, provider and outcome; revenue when a
/// payment settled. No I/O: the counters are flushed in the background.
pub async fn record_usage(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let Some(rpc) = request.extensions().get::<Arc<RpcRequest>>().cloned() else {
        return next.run(request).await;
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let response = next.run(request).await;
    let outcome = outcome(response.extensions());
    let revenue = response
        .extensions()
        .get::<PaymentSummary>()
        .filter(|p| p.outcome == "settled")
        .map_or(0, |p| p.amount);
    let key = UsageKey {
        route,
        cluster: rpc.cluster.as_str().to_owned(),
        method: rpc.log_method().to_owned(),
        provider: rpc.provider.clone(),
        outcome,
    };
    app.usage.record(Day::today(), &key, revenue);
    response
}
