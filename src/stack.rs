//! The global layer stack, outermost first. Read top to bottom: that is the order a request
//! meets them.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderName, Method, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{Any, CorsLayer};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;

use crate::app::AppState;
use crate::error::ApiError;
use crate::observability::observe;
use crate::server::body_deadline::{limit_body_time, BodyReadTimeout};

/// Headers a browser client must be able to read on our responses.
const EXPOSED_HEADERS: [&str; 9] = [
    "payment-required",
    "payment-response",
    "x-payment-response",
    "x-request-id",
    "retry-after",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "ratelimit-policy",
];

/// Wraps the router in the global layers.
pub(crate) fn apply(router: Router, app: &AppState) -> Router {
    let server = &app.config.server;
    let layers = ServiceBuilder::new()
        // Outermost: every response, even a panic's or a timeout's, carries an x-request-id
        // (the client's own when it sent one, so traces join up across hops).
        .layer(SetRequestIdLayer::x_request_id(RandomRequestId))
        .layer(PropagateRequestIdLayer::x_request_id())
        // One observer per request, after the id exists and around everything that can answer:
        // the log line, the metrics and the usage counters, all from the request record.
        .layer(from_fn_with_state(app.usage.clone(), observe))
        // A panic becomes a 500 with our JSON envelope instead of a dropped connection.
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "internal error",
            )
            .into_response()
        }))
        // Browser clients must read the payment headers.
        .layer(cors())
        // Oversized headers are refused before any handler reads them.
        .layer(from_fn_with_state(app.clone(), limit_headers))
        // A body still arriving after body_read_timeout_ms is the client's fault: 408, not 504.
        .layer(from_fn_with_state(
            BodyReadTimeout(server.body_read_timeout()),
            limit_body_time,
        ))
        // Safety net: no request lives longer than this, whatever a dependency does.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            Duration::from_millis(server.request_timeout_ms),
        ));
    router.layer(layers)
}

/// A random UUID v4 per request, from the thread's userspace CSPRNG (`rand::thread_rng`, seeded
/// from the OS once per thread) rather than `tower_http`'s `MakeRequestUuid`, whose `Uuid::new_v4`
/// asks the kernel (`getrandom`) on every request: a syscall on the hot path for an id that
/// only has to be unique.
#[derive(Debug, Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let bytes: [u8; 16] = rand::random();
        let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
        let mut buffer = uuid::Uuid::encode_buffer();
        let text = id.hyphenated().encode_lower(&mut buffer);
        axum::http::HeaderValue::from_str(text)
            .ok()
            .map(RequestId::new)
    }
}

fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::OPTIONS])
        .allow_headers(Any)
        .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
}

/// Refuses a request whose single header or total header size is over the configured limits
/// (431), so no decoder ever sees an oversized payment or sign-in header.
async fn limit_headers(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let server = &app.config.server;
    let mut total = 0usize;
    for (name, value) in request.headers() {
        let len = value.len();
        if len > server.max_header_bytes {
            return ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "header_too_large",
                format!(
                    "header {name} is larger than {} bytes",
                    server.max_header_bytes
                ),
            )
            .into_response();
        }
        total += name.as_str().len() + len;
    }
    if total > server.max_headers_total_bytes {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "request headers total more than {} bytes",
                server.max_headers_total_bytes
            ),
        )
        .into_response();
    }
    next.run(request).await
}
