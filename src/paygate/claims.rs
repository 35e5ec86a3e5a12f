//! What a paid request claims in the store, and the answer it keeps.
//!
//! A claim covers the payment (SHA-256 of its transaction message) and, when the client sent
//! them, its x402 `payment-identifier` and its `Idempotency-Key`, each scoped to the payer so
//! wallets never collide. All three lead to one record bound to the request's fingerprint:
//! the same request again gets the cached answer, another request a 409.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::store::{key_digest, CachedResponse, ClaimIds, PaymentKey};
use crate::x402::header::{PAYMENT_RESPONSE, X_PAYMENT_RESPONSE};
use crate::x402::PaymentHeader;

/// The `Idempotency-Key` request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Headers of a settled answer worth replaying.
const REPLAYED_HEADERS: [&str; 4] = [
    "content-type",
    "cache-control",
    PAYMENT_RESPONSE,
    X_PAYMENT_RESPONSE,
];

/// SHA-256 (hex) of what defines the request: method, path, body bytes.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    for part in [method.as_bytes(), path.as_bytes(), body] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// The ids of this payment's claim; `Err` names a malformed id (400).
pub fn claim_ids(
    payment: PaymentKey,
    payer: &str,
    header: &PaymentHeader,
    headers: &HeaderMap,
    identifier_required: bool,
) -> Result<ClaimIds, String> {
    let mut aliases = Vec::new();
    match payment_identifier(header)? {
        Some(id) => aliases.push(format!("pid:{}", key_digest(&[payer, &id]))),
        None if identifier_required => {
            return Err("the payment-identifier extension with an info.id is required".into())
        }
        None => {}
    }
    if let Some(value) = headers.get(IDEMPOTENCY_KEY) {
        let key = value
            .to_str()
            .ok()
            .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or("Idempotency-Key must be 1-255 visible ASCII characters")?;
        aliases.push(format!("idem:{}", key_digest(&[payer, key])));
    }
    Ok(ClaimIds { payment, aliases })
}

/// The claim's payer-scoped aliases, as the ledger keeps them: (`payment-identifier`,
/// `Idempotency-Key`).
pub fn aliases(ids: &ClaimIds) -> (Option<&str>, Option<&str>) {
    let find = |prefix: &str| {
        ids.aliases
            .iter()
            .find(|a| a.starts_with(prefix))
            .map(String::as_str)
    };
    (find("pid:"), find("idem:"))
}

/// `extensions["payment-identifier"].info.id`, validated (v2 only).
fn payment_identifier(header: &PaymentHeader) -> Result<Option<String>, String> {
    let PaymentHeader::V2(payload) = header else {
        return Ok(None);
    };
    let Some(ext) = payload
        .extensions
        .as_ref()
        .and_then(|e| e.get("payment-identifier"))
    else {
        return Ok(None);
    };
    let Some(id) = ext.pointer("/info/id") else {
        return Ok(None);
    };
    let id = id
        .as_str()
        .filter(|id| {
            (16..=128).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        .ok_or("payment-identifier info.id must be 16-128 characters of [A-Za-z0-9_-]")?;
    Ok(Some(id.to_string()))
}

/// The answer to keep with a settled payment.
pub fn keep(status: StatusCode, headers: &HeaderMap, body: &Bytes) -> CachedResponse {
    CachedResponse {
        status: status.as_u16(),
        headers: REPLAYED_HEADERS
            .iter()
            .filter_map(|name| {
                let value = headers.get(*name)?.to_str().ok()?;
                Some((name.to_string(), value.to_string()))
            })
            .collect(),
        body: body.to_vec(),
    }
}

/// A kept answer, sent again.
pub fn replay(cached: &CachedResponse) -> Response {
    let mut response = Response::new(Body::from(cached.body.clone()));
    *response.status_mut() = StatusCode::from_u16(cached.status).unwrap_or(StatusCode::OK);
    for (name, value) in &cached.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_separates_parts() {
        assert_ne!(
            fingerprint("POST", "/a", b"b"),
            fingerprint("POST", "/ab", b"")
        );
        assert_eq!(
            fingerprint("POST", "/a", b"{}"),
            fingerprint("POST", "/a", b"{}")
        );
    }

    #[test]
    fn idempotency_keys_are_scoped_to_the_payer() {
        let header: PaymentHeader = PaymentHeader::from_json(
            br#"{"x402Version":1,"scheme":"exact","network":"solana-devnet","payload":{"transaction":"AA=="}}"#,
        )
        .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("retry-1"));
        let a = claim_ids(PaymentKey([1; 32]), "alice", &header, &headers, false).unwrap();
        let b = claim_ids(PaymentKey([1; 32]), "bob", &header, &headers, false).unwrap();
        assert_eq!(a.aliases.len(), 1);
        assert_ne!(a.aliases, b.aliases);
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static(""));
        assert!(claim_ids(PaymentKey([1; 32]), "alice", &header, &headers, false).is_err());
        assert!(claim_ids(
            PaymentKey([1; 32]),
            "alice",
            &header,
            &HeaderMap::new(),
            true
        )
        .is_err());
    }
}
