//! The encoded "Payment required" challenge, kept per (path, price).
//!
//! An unpaid request is the cheapest thing a client can send and the most frequent thing an
//! agent sends first, so its answer must cost close to nothing. A challenge is a pure function
//! of the route (the path: resource URL and Bazaar entry), the price, and the fee payers from
//! the facilitators' `/supported`; the rest of `[payment]` is fixed for the process. So the
//! `PAYMENT-REQUIRED` header value (the v2 challenge) and the JSON body (the same challenge in
//! the v1 shape) are built once per (path, price) and then shared: answering is two
//! reference-count increments.
//!
//! Staleness: every change of the `/supported` answer bumps the paygate's generation; an entry
//! is tagged with the generation read *before* it was built, so it can be fresher than its tag,
//! never staler, and a lookup only trusts entries of the current generation.
//!
//! Size: paths are routes the router matched, but a batch's price varies with its content and a
//! route can be spelled with percent-escapes, so the map is bounded in entries and key length;
//! when full it starts over (the hot routes refill it at once).

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use parking_lot::RwLock;

use super::challenge::v1_challenge;
use crate::x402::header::PAYMENT_REQUIRED;
use crate::x402::{encode_header, PaymentRequired};

/// At most this many (path, price) entries are kept.
const MAX_ENTRIES: usize = 4096;

/// Paths longer than this are answered but not kept: our routes are far shorter, and a client
/// spelling a route with percent-escapes must not fill the cache with long keys.
const MAX_PATH_BYTES: usize = 256;

/// A challenge ready to send: the header value and the body are shared bytes.
#[derive(Debug, Clone)]
pub(super) struct Encoded {
    header: HeaderValue,
    body: Bytes,
}

impl Encoded {
    /// Serializes `required` once: the header is base64 of its JSON (v2), the body the same
    /// challenge in the v1 shape ([`v1_challenge`]), so clients of either generation pay.
    pub(super) fn new(required: &PaymentRequired) -> Self {
        let body = Bytes::from(serde_json::to_vec(&v1_challenge(required)).unwrap_or_default());
        // Base64 is always a valid header value; the fallback is never taken.
        let header = HeaderValue::from_maybe_shared(Bytes::from(encode_header(required)))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        Self { header, body }
    }

    /// The answer: `status`, `PAYMENT-REQUIRED` (v2) and the v1 body, never cached by
    /// intermediaries (a challenge names a fee payer that may rotate).
    pub(super) fn response(&self, status: StatusCode) -> Response {
        let mut response = Response::new(Body::from(self.body.clone()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(PAYMENT_REQUIRED, self.header.clone());
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// Encoded challenges per (path, price), valid for one `/supported` generation.
#[derive(Debug, Default)]
pub(super) struct ChallengeCache {
    inner: RwLock<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    generation: u64,
    len: usize,
    by_path: HashMap<Box<str>, HashMap<u64, Encoded>>,
}

impl ChallengeCache {
    /// The kept challenge for (path, amount) if it was built under `generation`.
    pub(super) fn get(&self, generation: u64, path: &str, amount: u64) -> Option<Encoded> {
        let entries = self.inner.read();
        if entries.generation != generation {
            return None;
        }
        entries.by_path.get(path)?.get(&amount).cloned()
    }

    /// Keeps `encoded`, built from the `/supported` of `generation` (read before building).
    pub(super) fn put(&self, generation: u64, path: &str, amount: u64, encoded: Encoded) {
        if path.len() > MAX_PATH_BYTES {
            return;
        }
        let mut entries = self.inner.write();
        if generation < entries.generation {
            return; // built from an older `/supported`: never keep it
        }
        if generation > entries.generation || entries.len >= MAX_ENTRIES {
            entries.by_path.clear();
            entries.len = 0;
            entries.generation = generation;
        }
        let prices = entries.by_path.entry(path.into()).or_default();
        if prices.insert(amount, encoded).is_none() {
            entries.len += 1;
        }
    }

    /// How many challenges are kept.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.inner.read().len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x402::{ResourceInfo, X402_VERSION};

    fn required(amount: &str) -> PaymentRequired {
        PaymentRequired {
            x402_version: X402_VERSION,
            error: Some("Payment required".into()),
            resource: ResourceInfo {
                url: "https://example.com/r".into(),
                description: "r".into(),
                mime_type: "application/json".into(),
            },
            accepts: vec![crate::x402::PaymentRequirements {
                scheme: "exact".into(),
                network: crate::x402::network::SOLANA_DEVNET.into(),
                amount: amount.into(),
                asset: "mint".into(),
                pay_to: "to".into(),
                max_timeout_seconds: 60,
                extra: None,
            }],
            extensions: None,
        }
    }

    #[test]
    fn header_is_v2_and_body_is_v1_of_the_same_challenge() {
        let r = required("1000");
        let encoded = Encoded::new(&r);
        let response = encoded.response(StatusCode::PAYMENT_REQUIRED);
        assert_eq!(response.status(), StatusCode::PAYMENT_REQUIRED);
        let header = response.headers()[PAYMENT_REQUIRED].as_bytes();
        let from_header: PaymentRequired =
            serde_json::from_slice(&crate::x402::decode_header_bytes(header, 1 << 16).unwrap())
                .unwrap();
        let from_body: crate::x402::PaymentRequiredV1 =
            serde_json::from_slice(&encoded.body).unwrap();
        assert_eq!(from_header, r);
        assert_eq!(from_body, v1_challenge(&r));
        assert_eq!(from_body.x402_version, 1);
        assert_eq!(from_body.accepts[0].network, "solana-devnet");
        assert_eq!(from_body.accepts[0].max_amount_required, "1000");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    }

    #[test]
    fn entries_are_per_path_and_price_and_generation() {
        let cache = ChallengeCache::default();
        cache.put(1, "/a", 1000, Encoded::new(&required("1000")));
        assert!(cache.get(1, "/a", 1000).is_some());
        assert!(cache.get(1, "/a", 2000).is_none());
        assert!(cache.get(1, "/b", 1000).is_none());
        // A new `/supported` (fee payer rotated): the old entry is not trusted...
        assert!(cache.get(2, "/a", 1000).is_none());
        // ...an entry built from the old one arriving late is dropped...
        cache.put(2, "/a", 2000, Encoded::new(&required("2000")));
        cache.put(1, "/a", 1000, Encoded::new(&required("1000")));
        assert!(cache.get(2, "/a", 1000).is_none());
        assert!(cache.get(2, "/a", 2000).is_some());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = ChallengeCache::default();
        let encoded = Encoded::new(&required("1"));
        for amount in 0..(MAX_ENTRIES as u64 + 10) {
            cache.put(1, "/batch", amount, encoded.clone());
        }
        assert!(cache.len() <= MAX_ENTRIES);
        assert!(cache.get(1, "/batch", MAX_ENTRIES as u64 + 9).is_some());

        let long = format!("/{}", "a".repeat(MAX_PATH_BYTES));
        cache.put(1, &long, 1, encoded.clone());
        assert!(cache.get(1, &long, 1).is_none(), "long paths are not kept");
    }
}
