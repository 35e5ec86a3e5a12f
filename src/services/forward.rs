//! The handler of every service route: the upstream request built from scratch, the answer
//! relayed (streamed on free routes, read whole under the cap on paid and sign-in routes, where
//! the paygate keeps it with the payment).

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::stream;

use super::gate::{refuse_body, too_large, Matched};
use super::Service;
use crate::config::{Access, Credential};
use crate::error::ApiError;
use crate::exchange::{Exchange, UpstreamOutcome};
use crate::proxy::ProxyError;
use crate::upstream::{read_capped, UpstreamError};

/// Every service route's handler (behind [`super::service_gate`]).
pub(crate) async fn forward(request: Request) -> Response {
    let Some(matched) = request.extensions().get::<Matched>().cloned() else {
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "service route without its match",
        )
        .into_response();
    };
    let service = &matched.service;
    let route = &service.routes[matched.route];
    let (parts, body) = request.into_parts();
    let body = match to_bytes(body, service.max_body_bytes).await {
        Ok(body) => body,
        Err(_) => return too_large(service.max_body_bytes),
    };
    if let Some(refused) = refuse_body(&parts.headers, &body) {
        return refused;
    }
    let url = upstream_url(service, &matched.rest, parts.uri.query());
    let mut upstream = service
        .http
        .request(parts.method.clone(), url)
        .header(header::ACCEPT, accept(&parts.headers));
    for name in &route.spec.forward_headers {
        for value in parts.headers.get_all(name.as_str()) {
            upstream = upstream.header(name.as_str(), value.clone());
        }
    }
    if !body.is_empty() {
        // Checked JSON above; the client's own value (a charset) is not relayed.
        upstream = upstream
            .header(header::CONTENT_TYPE, "application/json")
            .body(body);
    }
    // Last, so nothing the client sent can stand in for them.
    for credential in &service.credentials {
        if let Credential::Header(name, value) = credential {
            upstream = upstream.header(name.as_str(), value.expose());
        }
    }
    let streamed = route.spec.access == Access::Free;
    let mut response = match exchange(service, upstream, streamed).await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(service = %service.config.id, error = %e, "service call failed");
            upstream_error(e)
        }
    };
    let outcome = if response.status().is_success() {
        UpstreamOutcome::Success
    } else {
        UpstreamOutcome::Failed
    };
    Exchange::of(&mut response).upstream = Some(outcome);
    response
}

/// The client's `Accept` when it is plain, else JSON.
fn accept(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(header::ACCEPT)
        .filter(|v| v.len() <= 256)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/json"))
}

/// `base_url` + the checked path + the client's query without the credential's parameter + the
/// credential's parameter.
fn upstream_url(service: &Service, rest: &str, query: Option<&str>) -> String {
    let base = service.config.base_url.as_str().trim_end_matches('/');
    let mut url = format!("{base}{rest}");
    let credential = service.credentials.iter().find_map(|c| match c {
        Credential::Query(name, value) => Some((name.as_str(), value)),
        Credential::Header(..) => None,
    });
    let mut kept: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let Some((name, _)) = credential else {
                return true;
            };
            let raw = pair.split('=').next().unwrap_or("");
            url::form_urlencoded::parse(raw.as_bytes())
                .next()
                .is_none_or(|(n, _)| n != name)
        })
        .collect();
    let appended;
    if let Some((name, value)) = credential {
        appended = url::form_urlencoded::Serializer::new(String::new())
            .append_pair(name, value.expose())
            .finish();
        kept.push(&appended);
    }
    if !kept.is_empty() {
        url.push('?');
        url.push_str(&kept.join("&"));
    }
    url
}

/// One exchange; the answer as the client gets it, or why there is none.
async fn exchange(
    service: &Service,
    request: reqwest::RequestBuilder,
    streamed: bool,
) -> Result<Response, UpstreamError> {
    let response = request
        .send()
        .await
        .map_err(|e| crate::upstream::classify(e, service.timeout))?;
    let status = response.status();
    // Our credential refused, the upstream's own rate limit, a redirect, a 5xx: the gateway's
    // problem, not the client's (a 401 passed through would read as the client's failure).
    if matches!(status.as_u16(), 300..=399 | 401 | 403 | 407 | 429) || status.is_server_error() {
        return Err(UpstreamError::Status(status.as_u16()));
    }
    let max = service.config.max_response_bytes;
    if response
        .content_length()
        .is_some_and(|len| len > max as u64)
    {
        return Err(UpstreamError::TooLarge(max));
    }
    // Only JSON and plain text keep their type: anything else is bytes, so an upstream can never
    // serve a page that runs on the gateway's origin.
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("application/json") || v.starts_with("text/plain"))
        .unwrap_or("application/octet-stream")
        .to_string();
    let body = if streamed {
        Body::from_stream(capped_stream(response, max))
    } else {
        Body::from(read_capped(response, max, service.timeout).await?)
    };
    let mut answer = (status, body).into_response();
    let headers = answer.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !streamed {
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
    }
    Ok(answer)
}

/// The upstream body chunk by chunk, ended with an error past `max` bytes (the client sees a
/// cut connection, never more than the cap). Bounded in time by the client's total timeout.
fn capped_stream(
    response: reqwest::Response,
    max: usize,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    stream::unfold(Some((response, 0usize)), move |state| async move {
        let (mut response, seen) = state?;
        match response.chunk().await {
            Ok(Some(chunk)) if seen + chunk.len() > max => Some((
                Err(std::io::Error::other(format!(
                    "upstream answer larger than {max} bytes"
                ))),
                None,
            )),
            Ok(Some(chunk)) => {
                let seen = seen + chunk.len();
                Some((Ok(chunk), Some((response, seen))))
            }
            Ok(None) => None,
            Err(e) => Some((
                Err(std::io::Error::other(e.without_url().to_string())),
                None,
            )),
        }
    })
}

/// The same status mapping as the RPC routes (504 timeout, 503 + `Retry-After` when the
/// upstream rate-limits us, 502 otherwise), in the plain error envelope.
fn upstream_error(e: UpstreamError) -> Response {
    let proxy = ProxyError::Upstream(e);
    let status = proxy.status();
    let mut error = ApiError::new(status, proxy.reason(), proxy.to_string());
    if status == StatusCode::SERVICE_UNAVAILABLE {
        error = error.retry_after(1);
    }
    error.into_response()
}
