//! `SiwxError` → HTTP, in one place:
//!
//! | error | status | body |
//! | --- | --- | --- |
//! | no proof, or a stale or spent one (`needs_new_proof`) | 402 | x402 `PaymentRequired` with `accepts: []`, the `sign-in-with-x` extension (fresh nonce) and `error` = the reason; the same JSON base64 in `PAYMENT-REQUIRED` |
//! | a proof wrong in itself (malformed, forged, other origin/chain/resource) | 401 | `{"error": {"code": reason, "message"}}` |
//! | wallet over its rate | 429 + `Retry-After` | same envelope |
//! | store unavailable | 503 + `Retry-After` | same envelope |

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Map;

use super::SiwxGate;
use crate::error::ApiError;
use crate::paygate::challenge::payment_required;
use crate::siwx::{SiwxError, EXTENSION_KEY};
use crate::x402::header::PAYMENT_REQUIRED;
use crate::x402::{encode_header, ResourceInfo};

/// The HTTP status of a refusal.
pub(super) fn status(err: &SiwxError) -> StatusCode {
    match err {
        SiwxError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        SiwxError::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        e if e.needs_new_proof() => StatusCode::PAYMENT_REQUIRED,
        _ => StatusCode::UNAUTHORIZED,
    }
}

/// The answer to a refused request for `resource_url`.
pub(super) fn refusal(
    gate: &SiwxGate,
    err: &SiwxError,
    resource_url: &str,
    now_ms: i64,
) -> Response {
    let status = status(err);
    let mut response = if status == StatusCode::PAYMENT_REQUIRED {
        let extension = gate.verifier().challenge(resource_url, now_ms);
        let mut extensions = Map::new();
        extensions.insert(
            EXTENSION_KEY.into(),
            serde_json::to_value(extension).unwrap_or_default(),
        );
        let body = payment_required(
            ResourceInfo {
                url: resource_url.to_string(),
                description: "Sign in with a Solana wallet (SIGN-IN-WITH-X); no payment".into(),
                mime_type: "application/json".into(),
            },
            Vec::new(),
            Some(err.reason().to_string()),
            extensions,
        );
        let mut response = (status, Json(&body)).into_response();
        if let Ok(value) = HeaderValue::from_str(&encode_header(&body)) {
            response.headers_mut().insert(PAYMENT_REQUIRED, value);
        }
        response
    } else {
        ApiError::new(status, err.reason(), err.to_string()).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let retry_after = match err {
        SiwxError::RateLimited { retry_after } => {
            Some(retry_after.as_secs_f64().ceil().max(1.0) as u64)
        }
        SiwxError::StoreUnavailable => Some(1),
        _ => None,
    };
    if let Some(secs) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn status_table() {
        let cases = [
            (SiwxError::Missing, 402),
            (SiwxError::Expired, 402),
            (SiwxError::IssuedInFuture, 402),
            (SiwxError::TooOld(300), 402),
            (SiwxError::NotYetValid, 402),
            (SiwxError::NonceReused, 402),
            (SiwxError::InvalidNonce, 402),
            (SiwxError::BadSignature, 401),
            (SiwxError::InvalidAddress, 401),
            (SiwxError::InvalidSignatureEncoding, 401),
            (SiwxError::WrongDomain("d".into()), 401),
            (SiwxError::WrongUri("u".into()), 401),
            (SiwxError::WrongResource("r".into()), 401),
            (SiwxError::UnsupportedChain("c".into()), 401),
            (SiwxError::UnsupportedVersion("2".into()), 401),
            (SiwxError::Malformed("m".into()), 401),
            (SiwxError::TooLarge(1), 401),
            (SiwxError::InvalidTime("t".into()), 401),
            (
                SiwxError::RateLimited {
                    retry_after: Duration::from_millis(1500),
                },
                429,
            ),
            (SiwxError::StoreUnavailable, 503),
        ];
        for (err, code) in cases {
            assert_eq!(status(&err).as_u16(), code, "{err:?}");
        }
    }
}
