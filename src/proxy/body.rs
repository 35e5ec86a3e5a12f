//! Reading a request body: content type, size cap, and nothing else.

use axum::body::Body;
use axum::http::{header, HeaderMap};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::ProxyError;

/// Reads at most `limit` bytes. A non-empty body must be declared `application/json`.
pub(super) async fn read_json_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ProxyError> {
    let declared_len = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_len.is_some_and(|len| len > limit as u64) {
        return Err(ProxyError::BodyTooLarge(limit));
    }
    let bytes = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<LengthLimitError>().is_some() {
                ProxyError::BodyTooLarge(limit)
            } else {
                ProxyError::Body(crate::jsonrpc::BodyError::Parse(
                    "could not read the request body".into(),
                ))
            }
        })?
        .to_bytes();
    if !bytes.is_empty() && !is_json(headers) {
        return Err(ProxyError::UnsupportedMediaType);
    }
    Ok(bytes)
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}
