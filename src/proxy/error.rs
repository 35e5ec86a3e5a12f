//! The proxy boundary: every way an RPC route can refuse or fail, mapped once to a status and a
//! JSON-RPC error body (id `null` unless the request's id is known).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use crate::jsonrpc::{codes, BodyError, ErrorObject};
use crate::upstream::UpstreamError;

/// Why an RPC route did not return an upstream answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    /// `{cluster}`, `{provider}` or `{surface}` names nothing we serve.
    #[error("{0}")]
    NotFound(String),
    /// The provider exists but is not serving (no key, disabled).
    #[error("{0}")]
    ProviderUnavailable(String),
    /// Every provider that could serve the call has its circuit open.
    #[error("{0}")]
    NoHealthyProvider(String),
    /// Body over the limit.
    #[error("request body larger than {0} bytes")]
    BodyTooLarge(usize),
    /// Body present but not `application/json`.
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    /// Body unreadable, not JSON, too deep, bad batch.
    #[error("{0}")]
    Body(#[from] BodyError),
    /// A single request that is not a valid JSON-RPC request object.
    #[error("{message}")]
    InvalidRequest {
        /// The id to answer with.
        id: Value,
        /// What is wrong.
        message: String,
    },
    /// A single call whose method is not sold here.
    #[error("method not found: {method}")]
    MethodNotFound {
        /// The id to answer with.
        id: Value,
        /// The method asked for.
        method: String,
    },
    /// Parameters refused (guardrail or shape).
    #[error("{error:?}")]
    InvalidParams {
        /// The id to answer with.
        id: Value,
        /// The `-32602` object (boxed: it is the largest variant).
        error: Box<ErrorObject>,
    },
    /// The upstream failed.
    #[error("{0}")]
    Upstream(#[from] UpstreamError),
}

impl ProxyError {
    /// The HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ProxyError::NotFound(_) => StatusCode::NOT_FOUND,
            ProxyError::ProviderUnavailable(_) | ProxyError::NoHealthyProvider(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ProxyError::Body(_)
            | ProxyError::InvalidRequest { .. }
            | ProxyError::InvalidParams { .. } => StatusCode::BAD_REQUEST,
            ProxyError::MethodNotFound { .. } => StatusCode::FORBIDDEN,
            ProxyError::Upstream(UpstreamError::Timeout(_)) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Upstream(UpstreamError::Status(429)) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Upstream(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// A stable snake_case name, also in `error.data.reason`.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            ProxyError::NotFound(_) => "not_found",
            ProxyError::ProviderUnavailable(_) => "provider_unavailable",
            ProxyError::NoHealthyProvider(_) => "no_healthy_provider",
            ProxyError::BodyTooLarge(_) => "body_too_large",
            ProxyError::UnsupportedMediaType => "unsupported_media_type",
            ProxyError::Body(BodyError::Parse(_)) => "parse_error",
            ProxyError::Body(_) | ProxyError::InvalidRequest { .. } => "invalid_request",
            ProxyError::MethodNotFound { .. } => "method_not_found",
            ProxyError::InvalidParams { .. } => "invalid_params",
            ProxyError::Upstream(UpstreamError::Timeout(_)) => "upstream_timeout",
            ProxyError::Upstream(UpstreamError::Status(429)) => "upstream_rate_limited",
            ProxyError::Upstream(_) => "upstream_failed",
        }
    }

    /// The JSON-RPC error object and the id to answer with.
    pub(crate) fn to_error(&self) -> (Value, ErrorObject) {
        let reason = serde_json::json!({ "reason": self.reason() });
        match self {
            ProxyError::Body(e) => (Value::Null, e.to_error_object().with_data(reason)),
            ProxyError::InvalidRequest { id, message } => (
                id.clone(),
                ErrorObject::new(
                    codes::INVALID_REQUEST,
                    format!("invalid request: {message}"),
                )
                .with_data(reason),
            ),
            ProxyError::MethodNotFound { id, .. } => (
                id.clone(),
                ErrorObject::new(codes::METHOD_NOT_FOUND, self.to_string()).with_data(reason),
            ),
            ProxyError::InvalidParams { id, error } => (id.clone(), (**error).clone()),
            ProxyError::Upstream(UpstreamError::Timeout(_)) => (
                Value::Null,
                ErrorObject::new(codes::UPSTREAM_TIMEOUT, self.to_string()).with_data(reason),
            ),
            ProxyError::Upstream(_) | ProxyError::NoHealthyProvider(_) => (
                Value::Null,
                ErrorObject::new(codes::UPSTREAM_FAILED, self.to_string()).with_data(reason),
            ),
            ProxyError::NotFound(_)
            | ProxyError::ProviderUnavailable(_)
            | ProxyError::BodyTooLarge(_)
            | ProxyError::UnsupportedMediaType => (
                Value::Null,
                ErrorObject::new(codes::INVALID_REQUEST, self.to_string()).with_data(reason),
            ),
        }
    }
}

impl ProxyError {
    /// The answer to a single request whose id is `id`: an error the request's own parsing did
    /// not reach (no provider, an upstream failure...) still carries the caller's id, as
    /// JSON-RPC 2.0 requires when it could be read, instead of `null`.
    pub(crate) fn into_response_for(self, id: Option<&Value>) -> Response {
        let status = self.status();
        let (own, error) = self.to_error();
        let id = match (own, id) {
            (Value::Null, Some(id)) => id.clone(),
            (own, _) => own,
        };
        Self::respond(status, &id, error)
    }

    fn respond(status: StatusCode, id: &Value, error: ErrorObject) -> Response {
        let mut response = (status, Json(error.into_response(id))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (id, error) = self.to_error();
        let mut response = (status, Json(error.into_response(&id))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table() {
        let cases: Vec<(ProxyError, u16, i64)> = vec![
            (
                ProxyError::Body(BodyError::Parse("x".into())),
                400,
                codes::PARSE_ERROR,
            ),
            (
                ProxyError::Body(BodyError::EmptyBatch),
                400,
                codes::INVALID_REQUEST,
            ),
            (
                ProxyError::MethodNotFound {
                    id: 1.into(),
                    method: "m".into(),
                },
                403,
                codes::METHOD_NOT_FOUND,
            ),
            (ProxyError::BodyTooLarge(1), 413, codes::INVALID_REQUEST),
            (
                ProxyError::NoHealthyProvider("x".into()),
                503,
                codes::UPSTREAM_FAILED,
            ),
            (
                ProxyError::UnsupportedMediaType,
                415,
                codes::INVALID_REQUEST,
            ),
            (
                ProxyError::Upstream(UpstreamError::Timeout(5)),
                504,
                codes::UPSTREAM_TIMEOUT,
            ),
            (
                ProxyError::Upstream(UpstreamError::Status(500)),
                502,
                codes::UPSTREAM_FAILED,
            ),
            (
                ProxyError::Upstream(UpstreamError::Transport("refused".into())),
                502,
                codes::UPSTREAM_FAILED,
            ),
            (
                ProxyError::Upstream(UpstreamError::Status(429)),
                503,
                codes::UPSTREAM_FAILED,
            ),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status().as_u16(), status, "{err:?}");
            assert_eq!(err.to_error().1.code, code, "{err:?}");
        }
    }
}
