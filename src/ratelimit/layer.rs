//! The route layer on the RPC routes, between parsing (outside) and the paygate (inside).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::app::AppState;
use crate::proxy::RpcRequest;
use crate::x402::header::{PAYMENT_SIGNATURE, X_PAYMENT};

/// - Payments on, no payment header: the request will be a 402 challenge → the per-IP
///   challenge limit (nothing goes upstream, so no provider budget).
/// - Payments on, a payment header: passed through untouched; the paygate checks the payer
///   and provider limits inside its reservation (one round trip for both).
/// - Payments off: the per-IP limit and, when the request goes upstream, the provider budget
///   charged per call.
pub async fn rate_limit(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let limits = &app.limits;
    if !limits.enabled() {
        return next.run(request).await;
    }
    let Some(rpc) = request.extensions().get::<Arc<RpcRequest>>().cloned() else {
        return next.run(request).await;
    };
    let paid = app.paygate.is_some();
    let headers = request.headers();
    if paid && (headers.contains_key(PAYMENT_SIGNATURE) || headers.contains_key(X_PAYMENT)) {
        return next.run(request).await;
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let client = limits.client_ip(peer, headers);
    let mut checks = Vec::with_capacity(2);
    if paid {
        checks.extend(limits.challenge(&client));
    } else {
        checks.extend(limits.client(&client));
        // A GET/HEAD probe only describes the route; everything else is forwarded.
        let probe = matches!(*request.method(), Method::GET | Method::HEAD);
        let calls = rpc.calls().count();
        if !probe && calls > 0 {
            checks.extend(limits.provider_calls(&rpc.provider, calls));
        }
    }
    if checks.is_empty() {
        return next.run(request).await;
    }
    let verdict = limits.decide(app.store.as_ref(), &checks).await;
    if !verdict.is_allowed() {
        return limits.too_many(&verdict, &checks);
    }
    let mut response = next.run(request).await;
    limits.annotate(&verdict, &checks, response.headers_mut());
    response
}
