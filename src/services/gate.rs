//! The route layer of a service mount: find the configured route (404 without one, before
//! anything else runs), then what its access asks for: a payment (the paygate, exactly as on the
//! RPC routes, with a [`PricedRequest`] built here), a wallet sign-in, or nothing.

use std::sync::Arc;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use url::Url;

use super::{check_path, normalize, Service};
use crate::authgate::{require_siwx, SiwxGate};
use crate::config::Access;
use crate::error::ApiError;
use crate::paygate::challenge::resource_url;
use crate::paygate::{paygate, Paygate};
use crate::priced::{Charge, Discovery, PricedRequest, RouteId};
use crate::pricing::Quote;

/// What a service mount's layer needs.
#[derive(Debug, Clone)]
pub(crate) struct ServiceState {
    pub(crate) service: Arc<Service>,
    /// Payments, when on (paid routes are served unpaid otherwise: the config allowed it).
    pub(crate) paygate: Option<Arc<Paygate>>,
    pub(crate) siwx: Arc<SiwxGate>,
    pub(crate) public_base_url: Url,
}

/// The matched route, for the forwarding handler.
#[derive(Debug, Clone)]
pub(crate) struct Matched {
    pub(crate) service: Arc<Service>,
    pub(crate) route: usize,
    /// The raw path below the mount (`/v1/items/7`).
    pub(crate) rest: String,
}

/// Route layer of every service mount.
pub(crate) async fn service_gate(
    State(state): State<ServiceState>,
    mut request: Request,
    next: Next,
) -> Response {
    let service = &state.service;
    let path = request.uri().path();
    let rest = match path.strip_prefix(service.mount.as_str()) {
        Some("") | None => "/",
        Some(rest) => rest,
    };
    let rest = normalize(rest).into_owned();
    if let Err(message) = check_path(&rest) {
        return ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", message).into_response();
    }
    let Some(index) = service.find(request.method(), &rest) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            format!(
                "service {:?} has no route {} {rest}; see /discover/{}",
                service.config.id,
                request.method(),
                service.config.id
            ),
        )
        .into_response();
    };
    let route = &service.routes[index];
    request.extensions_mut().insert(Matched {
        service: service.clone(),
        route: index,
        rest,
    });
    match route.spec.access {
        Access::Free => next.run(request).await,
        Access::Siwx => require_siwx(State(state.siwx.clone()), request, next).await,
        Access::Paid(_) => {
            let Some(gate) = &state.paygate else {
                return next.run(request).await;
            };
            let Some(amount) = route.amount else {
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "a paid service route without a price",
                )
                .into_response();
            };
            // The body is part of what a payment buys (the claim's fingerprint): read it once.
            let (parts, body) = request.into_parts();
            let body = match to_bytes(body, service.max_body_bytes).await {
                Ok(body) => body,
                Err(_) => return too_large(service.max_body_bytes),
            };
            if let Some(refused) = refuse_body(&parts.headers, &body) {
                return refused;
            }
            let priced = PricedRequest {
                route: RouteId::Service,
                resource: resource_url(&state.public_base_url, parts.uri.path()),
                charge: Charge::Quote(Quote {
                    amount,
                    calls: 1,
                    units: 0,
                    // Paid with credits, a service call costs its price (no provider table).
                    credits: amount,
                }),
                provider: service.budget.clone(),
                network: service.cluster.caip2(),
                calls: 1,
                discovery: Discovery::Http(route.discovery.clone()),
                body: body.clone(),
                grants: None,
            };
            let mut request = Request::from_parts(parts, Body::from(body));
            request.extensions_mut().insert(Arc::new(priced));
            paygate(State(gate.clone()), request, next).await
        }
    }
}

pub(super) fn too_large(max: usize) -> Response {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("request body larger than {max} bytes"),
    )
    .into_response()
}

/// A body is JSON (an empty one needs no content type): otherwise the 415 to answer, before any
/// upstream call (and, on a paid route, before the payment is looked at).
pub(super) fn refuse_body(headers: &HeaderMap, body: &Bytes) -> Option<Response> {
    if body.is_empty() {
        return None;
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let media = v.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case("application/json")
        });
    (!json).then(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "content type must be application/json",
        )
        .into_response()
    })
}
