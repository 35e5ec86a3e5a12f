//! The handler: rebuild the request for the Tokens API, relay its answer.

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use std::sync::Arc;

use super::TokensApi;
use crate::error::ApiError;
use crate::proxy::ProxyError;
use crate::upstream::{read_capped, UpstreamError};

/// The route's prefix before `{*path}`.
const PREFIX: &str = "/v1/x402/tokens/";

/// Answer of the route when `[tokens]` is absent.
pub(crate) async fn not_configured() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "tokens_not_configured",
        "the Tokens API is not configured on this gateway ([tokens] in the config)",
    )
}

/// `GET`/`POST /v1/x402/tokens/{*path}` (behind the sign-in layer).
pub(crate) async fn forward_tokens(
    State(api): State<Arc<TokensApi>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    // The raw (still percent-encoded) path, so an encoded `..` is seen as what it is.
    let raw = parts.uri.path().strip_prefix(PREFIX).unwrap_or("");
    if let Err(message) = check_path(raw) {
        return ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", message).into_response();
    }
    let max_body = api.max_body_bytes;
    let body = match to_bytes(body, max_body).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body larger than {max_body} bytes"),
            )
            .into_response()
        }
    };
    if !body.is_empty() {
        let json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/json"));
        if !json {
            return ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "content type must be application/json",
            )
            .into_response();
        }
    }
    let mut url = format!("{}/{raw}", api.base_url);
    if let Some(query) = parts.uri.query() {
        url.push('?');
        url.push_str(query);
    }
    match api.exchange(&parts.method, &url, body).await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(error = %e, "tokens api call failed");
            upstream_error(e)
        }
    }
}

impl TokensApi {
    /// One exchange; the answer as the client will get it, or why there is none.
    async fn exchange(
        &self,
        method: &Method,
        url: &str,
        body: Bytes,
    ) -> Result<Response, UpstreamError> {
        let mut request = self
            .http
            .request(method.clone(), url)
            .header(header::ACCEPT, "application/json")
            .header("x-api-key", self.api_key.expose());
        if !body.is_empty() {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = request.send().await.map_err(|e| self.classify(e))?;
        let status = response.status();
        // Our key refused, the upstream's own rate limit, a redirect, a 5xx: the gateway's
        // problem, not the client's (a 401 passed through would read as a failed sign-in).
        if matches!(status.as_u16(), 300..=399 | 401 | 403 | 407 | 429) || status.is_server_error()
        {
            return Err(UpstreamError::Status(status.as_u16()));
        }
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.starts_with("application/json") || v.starts_with("text/plain"))
            .unwrap_or("application/octet-stream")
            .to_string();
        let body = read_capped(response, self.max_response_bytes, self.timeout).await?;
        let mut answer = (status, Body::from(body)).into_response();
        if let Ok(value) = HeaderValue::from_str(&content_type) {
            answer.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        answer.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
        Ok(answer)
    }

    fn classify(&self, err: reqwest::Error) -> UpstreamError {
        crate::upstream::classify(err, self.timeout)
    }
}

/// The same status mapping as the RPC routes (504 timeout, 503 + `Retry-After` when the
/// upstream rate-limits us, 502 otherwise), in the plain error envelope.
fn upstream_error(e: UpstreamError) -> Response {
    let proxy = ProxyError::Upstream(e);
    let status = proxy.status();
    let mut response = ApiError::new(status, proxy.reason(), proxy.to_string()).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// Every segment of the client's path must be a plain, non-empty name: no `.`/`..` (encoded
/// or not), no encoded `/` or `\`, nothing outside the URL path characters (the same rule as
/// a configured service's paths).
fn check_path(raw: &str) -> Result<(), &'static str> {
    if raw.is_empty() {
        return Err("a Tokens API path is required after /v1/x402/tokens/");
    }
    crate::services::path::check_path(&format!("/{raw}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_base() {
        for ok in [
            "v1/tokens",
            "v1/tokens/So11111111111111111111111111111111111111112",
            "a%20b",
            "x:y@z",
        ] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "..",
            "v1/../admin",
            "v1/%2e%2e/admin",
            "v1/%2E%2E",
            ".",
            "v1//x",
            "v1/",
            "a%2fb",
            "a%5Cb",
            "a%00b",
            "a%zz",
            "a%2",
            "a\"b",
            "a<b",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
    }
}
