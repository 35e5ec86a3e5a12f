//! The standard facilitator HTTP API over any [`Facilitator`], for trusted callers.
//!
//! - `GET  /api/internal/facilitator/supported` → `SupportedResponse`
//! - `POST /api/internal/facilitator/verify`    → `VerifyResponse`
//! - `POST /api/internal/facilitator/settle`    → `SettleResponse`
//!
//! Bodies are what `@x402/core`'s `HTTPFacilitatorClient` sends:
//! `{"x402Version":2,"paymentPayload":{…},"paymentRequirements":{…}}` (any content type is
//! read as JSON). Every route requires the header [`SECRET_HEADER`], compared in constant time
//! (SHA-256 of both sides, so the length is not leaked either); an empty configured secret
//! refuses everyone.
//!
//! Statuses: 401 without the right secret; 400 for a body that is not a facilitator request;
//! 413 above [`MAX_BODY_BYTES`]; 200 for every verify/settle answer, valid or not (the
//! structured body says why); 503 when the facilitator cannot answer (RPC down) and 502 for
//! other facilitator errors, with the JSON error envelope.
//!
//! A settle runs on its own task: a caller that disconnects does not cancel a settlement.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Facilitator, FacilitatorError};
use crate::config::Secret;
use crate::error::ApiError;
use crate::routes::{
    FACILITATOR_SETTLE_ROUTE, FACILITATOR_SUPPORTED_ROUTE, FACILITATOR_VERIFY_ROUTE,
};
use crate::x402::{
    FacilitatorRequest, RequestShapeError, SettleResponse, VerifyResponse, WireRequest,
};

/// Header carrying the shared secret.
pub const SECRET_HEADER: &str = "x-facilitator-secret";
/// Largest accepted request body (a payment is about 2 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone)]
struct AppState {
    facilitator: Arc<dyn Facilitator>,
}

#[derive(Clone)]
struct Auth {
    digest: Option<[u8; 32]>,
}

/// The three facilitator routes behind the shared-secret check.
pub fn facilitator_routes(facilitator: Arc<dyn Facilitator>, secret: Secret) -> Router {
    let auth = Auth {
        digest: (!secret.is_empty()).then(|| Sha256::digest(secret.expose().as_bytes()).into()),
    };
    Router::new()
        .route(FACILITATOR_SUPPORTED_ROUTE, get(supported))
        .route(FACILITATOR_VERIFY_ROUTE, post(verify))
        .route(FACILITATOR_SETTLE_ROUTE, post(settle))
        .with_state(AppState { facilitator })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(from_fn_with_state(auth, require_secret))
}

async fn require_secret(State(auth): State<Auth>, req: Request, next: Next) -> Response {
    if authorized(&auth, req.headers()) {
        next.run(req).await
    } else {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("missing or wrong {SECRET_HEADER} header"),
        )
        .into_response()
    }
}

fn authorized(auth: &Auth, headers: &HeaderMap) -> bool {
    let (Some(expected), Some(given)) = (auth.digest, headers.get(SECRET_HEADER)) else {
        return false;
    };
    let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
    bool::from(given.ct_eq(&expected))
}

fn facilitator_error(e: FacilitatorError) -> Response {
    let status = match e {
        FacilitatorError::Unavailable(_)
        | FacilitatorError::Connect(_)
        | FacilitatorError::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    };
    let code = if status == StatusCode::SERVICE_UNAVAILABLE {
        "facilitator_unavailable"
    } else {
        "facilitator_error"
    };
    ApiError::new(status, code, e.to_string()).into_response()
}

/// A body that is a facilitator request in shape (else 400), typed; a payload or requirements
/// of the wrong shape is a business refusal (`isValid: false` / `success: false` with its
/// reason), as the official facilitators answer it, not an HTTP error.
pub(super) fn parse_body(
    body: Result<Bytes, BytesRejection>,
) -> Result<Result<FacilitatorRequest, Refused>, ApiError> {
    let body = body.map_err(|r| {
        let code = if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            "invalid_request"
        };
        ApiError::new(r.status(), code, r.body_text())
    })?;
    let de = &mut serde_json::Deserializer::from_slice(&body);
    let wire: WireRequest<Value, Value> = serde_path_to_error::deserialize(de).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("body is not a facilitator request: {e}"),
        )
    })?;
    let network = wire
        .payment_requirements
        .get("network")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok(FacilitatorRequest::from_wire(wire).map_err(|error| Refused { error, network }))
}

/// A request refused for its shape, with the network it named (for the settle answer).
pub(super) struct Refused {
    error: RequestShapeError,
    network: String,
}

impl Refused {
    /// The `/verify` answer to it: `isValid: false` with its reason.
    pub(super) fn verify_answer(self) -> VerifyResponse {
        VerifyResponse {
            is_valid: false,
            invalid_reason: Some(self.error.reason.to_owned()),
            invalid_message: Some(self.error.message),
            payer: None,
        }
    }

    /// The `/settle` answer to it: `success: false` with its reason.
    pub(super) fn settle_answer(self) -> SettleResponse {
        SettleResponse {
            success: false,
            error_reason: Some(self.error.reason.to_owned()),
            error_message: Some(self.error.message),
            transaction: String::new(),
            network: self.network,
            payer: None,
        }
    }
}

async fn supported(State(s): State<AppState>) -> Response {
    match s.facilitator.supported().await {
        Ok(r) => Json(r).into_response(),
        Err(e) => facilitator_error(e),
    }
}

async fn verify(State(s): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let req = match parse_body(body) {
        Ok(Ok(r)) => r,
        Ok(Err(refused)) => return Json(refused.verify_answer()).into_response(),
        Err(e) => return e.into_response(),
    };
    match s.facilitator.verify(&req).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => facilitator_error(e),
    }
}

async fn settle(State(s): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let req = match parse_body(body) {
        Ok(Ok(r)) => r,
        Ok(Err(refused)) => return Json(refused.settle_answer()).into_response(),
        Err(e) => return e.into_response(),
    };
    let f = s.facilitator.clone();
    match tokio::spawn(async move { f.settle(&req).await }).await {
        Ok(Ok(r)) => Json(r).into_response(),
        Ok(Err(e)) => facilitator_error(e),
        Err(e) => facilitator_error(FacilitatorError::Transport(format!(
            "settlement task failed: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_comparison() {
        let auth = Auth {
            digest: Some(Sha256::digest(b"s3cret").into()),
        };
        let mut h = HeaderMap::new();
        assert!(!authorized(&auth, &h));
        h.insert(SECRET_HEADER, "s3cre".parse().unwrap());
        assert!(!authorized(&auth, &h));
        h.insert(SECRET_HEADER, "s3cret".parse().unwrap());
        assert!(authorized(&auth, &h));
        let open = Auth { digest: None };
        assert!(!authorized(&open, &h), "an empty secret refuses everyone");
    }

    /// A facilitator that must never be reached.
    #[derive(Debug)]
    struct Unreachable;

    #[async_trait::async_trait]
    impl Facilitator for Unreachable {
        fn name(&self) -> &str {
            "unreachable"
        }
        async fn supported(&self) -> Result<crate::x402::SupportedResponse, FacilitatorError> {
            unreachable!("a refused request reached the facilitator")
        }
        async fn verify(&self, _: &FacilitatorRequest) -> Result<VerifyResponse, FacilitatorError> {
            unreachable!("a refused request reached the facilitator")
        }
        async fn settle(&self, _: &FacilitatorRequest) -> Result<SettleResponse, FacilitatorError> {
            unreachable!("a refused request reached the facilitator")
        }
    }

    #[tokio::test]
    async fn a_payload_of_the_wrong_shape_is_a_refusal_not_an_error() {
        use tower::ServiceExt;
        let router = facilitator_routes(Arc::new(Unreachable), Secret::new("s3cret"));
        let body = serde_json::json!({
            "x402Version": 2,
            "paymentPayload": {"x402Version": 2},
            "paymentRequirements": {"scheme": "exact", "network": "solana:devnet-ish"},
        });
        for (path, field) in [("verify", "invalidReason"), ("settle", "errorReason")] {
            let request = axum::http::Request::post(format!("/api/internal/facilitator/{path}"))
                .header(SECRET_HEADER, "s3cret")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body.to_string()))
                .unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
                .await
                .unwrap();
            let answer: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(answer[field], "invalid_payload", "{path}: {answer}");
        }
        // Not even the envelope: an HTTP error.
        let request = axum::http::Request::post(FACILITATOR_VERIFY_ROUTE)
            .header(SECRET_HEADER, "s3cret")
            .header("content-type", "application/json")
            .body(axum::body::Body::from("[1]"))
            .unwrap();
        let response = router.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
}
