//! The route layer on priced routes when payments are off: the per-IP limit and, when the
//! request goes upstream, the provider budget charged per call. (With payments on, the paygate
//! charges the per-IP challenge limit on unpaid requests and checks payer and provider limits
//! inside its payment reservation, so this layer is not mounted.)

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Checks, RateLimits};
use crate::exchange::LimitScope;
use crate::priced::PricedRequest;
use crate::store::Store;

/// What the layer needs: the limits and the store that decides them.
#[derive(Debug, Clone)]
pub struct LimitGate {
    /// `[rate_limits]`.
    pub limits: Arc<RateLimits>,
    /// The shared store (fail open to a local limiter when it fails).
    pub store: Arc<dyn Store>,
}

/// Route layer: refuses with 429 when a limit is exhausted, else adds the `RateLimit-*` headers.
pub async fn rate_limit(State(gate): State<LimitGate>, request: Request, next: Next) -> Response {
    let limits = &gate.limits;
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let client = limits.client_ip(peer, request.headers());
    let mut checks = Checks::default();
    checks.push(LimitScope::Ip, limits.client(&client));
    // A GET/HEAD probe only describes the route; everything else is forwarded.
    let probe = matches!(*request.method(), Method::GET | Method::HEAD);
    if let Some(priced) = request.extensions().get::<Arc<PricedRequest>>() {
        if !probe && priced.calls > 0 {
            checks.push(
                LimitScope::Provider,
                limits.provider_calls(priced.provider.name(), priced.calls),
            );
        }
    }
    if checks.is_empty() {
        return next.run(request).await;
    }
    let verdict = limits.decide(gate.store.as_ref(), checks.as_slice()).await;
    if !verdict.is_allowed() {
        return limits.too_many(&verdict, &checks).into_response();
    }
    let mut response = next.run(request).await;
    limits.annotate(&verdict, &checks, response.headers_mut());
    response
}
