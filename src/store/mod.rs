//! Shared state: payment claims (one payment buys one answer), single-use values (sign-in
//! nonces), rate limits (GCRA) and usage counters.
//!
//! One trait, two backends chosen by config: [`memory::MemoryStore`] (the embedded default,
//! one instance) and [`redis::RedisStore`] (several instances side by side). Both give the same
//! semantics; the behaviour tests run against each.
//!
//! Rules every backend follows:
//! - every transition is atomic (a Lua script or `SET NX` in Redis, one lock in memory), never
//!   read-then-write;
//! - every key has a TTL;
//! - every Redis call has a timeout, and an error is returned, never a guess: callers decide
//!   whether to fail closed (payments, sign-in) or open (rate limits).

pub mod memory;
pub mod redis;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The store could not answer; the caller decides whether to fail open or closed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// The backend did not answer within its timeout.
    #[error("store timed out")]
    Timeout,
    /// The backend refused or lost the connection.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The stored data could not be read back.
    #[error("store data unreadable: {0}")]
    Corrupt(String),
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// A payment's identity: SHA-256 of the transaction message bytes (re-encoding the same
/// payment gives the same key; the client's signature bytes are not part of it).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PaymentKey(pub [u8; 32]);

impl fmt::Debug for PaymentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PaymentKey({})", hex::encode(self.0))
    }
}

impl PaymentKey {
    /// Lower-case hex, as used in store keys.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// What a claim covers: the payment itself plus, optionally, client-chosen idempotency ids
/// (the x402 `payment-identifier` extension, an `Idempotency-Key` header), scoped to the payer
/// so two wallets can never collide. All ids of one claim share one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimIds {
    /// The payment.
    pub payment: PaymentKey,
    /// Extra ids, already scoped (e.g. `idem:<payer>:<key>`), at most a few.
    pub aliases: Vec<String>,
}

/// A response kept with a settled payment so that a client that lost the answer can fetch it
/// again with the same payment and the same request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers worth replaying (content type, `PAYMENT-RESPONSE`...).
    pub headers: Vec<(String, String)>,
    /// Body bytes (capped by the caller).
    #[serde(with = "b64")]
    pub body: Vec<u8>,
}

/// Where a claim stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ClaimState {
    /// A request holding `token` is between reservation and settlement.
    InFlight {
        /// The holder's token (only it may release or finish the claim).
        token: String,
    },
    /// Settlement was broadcast but its outcome is unknown; a reconciler follows it.
    Pending {
        /// The transaction signature, when the facilitator gave one.
        transaction: Option<String>,
        /// The answer to release if the settlement confirms.
        response: Option<CachedResponse>,
        /// The facilitator request to settle again (JSON), for the reconciler.
        settle_request: String,
    },
    /// Settled; the answer that was sent.
    Settled {
        /// What the client received, when kept here.
        response: Option<CachedResponse>,
        /// Where it is kept instead: the ledger row of this payment (hex key). The store then
        /// holds a few dozen bytes per settled payment, whatever the answer's size.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ledger_key: Option<String>,
    },
}

/// A claim record: its state and the request it was made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRecord {
    /// SHA-256 (hex) of the request (method, path, body): the same payment on another request
    /// is refused, the same request gets the cached answer.
    pub fingerprint: String,
    /// Its state.
    #[serde(flatten)]
    pub state: ClaimState,
}

/// Answer to [`Store::reserve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Claimed by this caller; holds the token to finish it with.
    Reserved {
        /// Pass to `finish`/`release`.
        token: String,
    },
    /// A rate limit refused the call before anything was claimed.
    Limited(LimitVerdict),
    /// The payment (or one of its ids) already has a record.
    Existing(ClaimRecord),
}

/// A GCRA limit to check: `burst` requests at once, refilled at `burst` per `period`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitCheck {
    /// The full store key (already scoped: `rl:ip:1.2.3.4`, `rl:payer:<wallet>`...).
    pub key: String,
    /// Requests allowed at once (and per period).
    pub burst: u32,
    /// The refill period.
    pub period: Duration,
}

impl LimitCheck {
    /// Time between two requests at the sustained rate.
    pub fn emission_interval(&self) -> Duration {
        self.period / self.burst.max(1)
    }
}

/// The verdict over a set of limits (all of them are consumed, or none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitVerdict {
    /// Allowed; the most restrictive of the limits.
    Allowed {
        /// Index of the most restrictive limit in the request.
        index: usize,
        /// Requests left right now under it.
        remaining: u32,
        /// Until it is fully replenished.
        reset: Duration,
    },
    /// Refused by limit `index`.
    Limited {
        /// Index of the refusing limit.
        index: usize,
        /// Wait at least this long.
        retry_after: Duration,
    },
}

impl LimitVerdict {
    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed { .. })
    }
}

/// One usage counter increment: `field` of day `day` (`YYYY-MM-DD`) grows by `delta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDelta {
    /// UTC day.
    pub day: String,
    /// Counter name (e.g. `route|method|provider|outcome`).
    pub field: String,
    /// Increment.
    pub delta: i64,
}

/// The shared state. Implementations: [`memory::MemoryStore`], [`redis::RedisStore`].
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// `memory` or `redis`.
    fn backend(&self) -> &'static str;

    /// Whether the backend answers (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    /// Checks `limits` (all consumed or none), then, if allowed, claims `ids` for a request
    /// with `fingerprint`: one atomic step, one round trip. An existing record on any id is
    /// returned instead (and nothing is claimed). The in-flight claim lives `ttl`.
    ///
    /// The caller chooses `token` (see [`new_token`]) before the call, so that a reserve that
    /// timed out, which may still have claimed, can be released with it.
    async fn reserve(
        &self,
        ids: &ClaimIds,
        token: &str,
        fingerprint: &str,
        limits: &[LimitCheck],
        ttl: Duration,
    ) -> StoreResult<Reservation>;

    /// Drops the claim held with `token` (nothing was charged). A claim no longer held with
    /// this token is left alone.
    async fn release(&self, ids: &ClaimIds, token: &str) -> StoreResult<()>;

    /// Records the final or pending state of the claim held with `token`, kept `ttl`. Pending
    /// claims are also indexed for the reconciler.
    async fn finish(
        &self,
        ids: &ClaimIds,
        token: &str,
        record: &ClaimRecord,
        ttl: Duration,
    ) -> StoreResult<()>;

    /// The record of a payment, if any.
    async fn claim(&self, payment: &PaymentKey) -> StoreResult<Option<ClaimRecord>>;

    /// Pending payments due for a check, each leased to the caller for `lease` so that two
    /// instances never reconcile the same payment at once.
    async fn due_pending(&self, lease: Duration, max: usize) -> StoreResult<Vec<PaymentKey>>;

    /// How many payments are pending (for the `x402_settlements_pending` gauge).
    async fn pending_count(&self) -> StoreResult<u64>;

    /// Resolves a pending payment: `Some(record)` replaces it (settled), `None` deletes it
    /// (released: nothing was charged). Aliases are kept in step.
    async fn resolve_pending(
        &self,
        payment: &PaymentKey,
        outcome: Option<&ClaimRecord>,
        ttl: Duration,
    ) -> StoreResult<()>;

    /// Checks and consumes `limits` (all or none) in one round trip.
    async fn check_limits(&self, limits: &[LimitCheck]) -> StoreResult<LimitVerdict>;

    /// Stores `value` under `key` for `ttl` unless the key exists; `true` when stored. The
    /// primitive behind single-use nonces.
    async fn put_once(&self, key: &str, value: &str, ttl: Duration) -> StoreResult<bool>;

    /// Reads `key`.
    async fn get(&self, key: &str) -> StoreResult<Option<String>>;

    /// Reads and deletes `key` atomically (a nonce is spent by taking it).
    async fn take(&self, key: &str) -> StoreResult<Option<String>>;

    /// Adds usage counter increments (kept `ttl` after their last update).
    async fn add_usage(&self, deltas: &[UsageDelta], ttl: Duration) -> StoreResult<()>;

    /// Every counter of `day`.
    async fn usage(&self, day: &str) -> StoreResult<Vec<(String, i64)>>;

    /// Sets `field` of the durable map `map` to `value`. The one exception to "every key has a
    /// TTL": these maps hold operator-written configuration (providers registered at run
    /// time), few entries, written only through admin routes, and they must survive restarts.
    async fn map_put(&self, map: &str, field: &str, value: &str) -> StoreResult<()>;

    /// Removes `field` of `map`; `true` when it existed.
    async fn map_remove(&self, map: &str, field: &str) -> StoreResult<bool>;

    /// Every field of `map`, sorted by field.
    async fn map_all(&self, map: &str) -> StoreResult<Vec<(String, String)>>;
}

/// Base64 for cached bodies inside JSON records.
mod b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

/// A stable, short digest for store keys built from client-chosen strings (idempotency keys),
/// so a hostile key can neither be huge nor contain separators.
pub fn key_digest(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(&hasher.finalize()[..16])
}

/// A fresh random claim token.
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// GCRA, the same arithmetic in both backends (the Redis script mirrors it): the stored value
/// is the theoretical arrival time (TAT) in microseconds. Returns the new TAT when allowed.
pub(crate) fn gcra(tat: Option<u64>, now: u64, limit: &LimitCheck) -> Result<u64, u64> {
    let interval = limit.emission_interval().as_micros().max(1) as u64;
    let tolerance = interval * u64::from(limit.burst.max(1));
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat + interval;
    if new_tat > now + tolerance {
        // Refused: wait until the new TAT fits in the window again.
        Err(new_tat - now - tolerance)
    } else {
        Ok(new_tat)
    }
}

/// Requests left and time to full replenishment for a TAT.
pub(crate) fn gcra_state(tat: u64, now: u64, limit: &LimitCheck) -> (u32, Duration) {
    let interval = limit.emission_interval().as_micros().max(1) as u64;
    let tolerance = interval * u64::from(limit.burst.max(1));
    let used = tat.saturating_sub(now);
    let remaining = (tolerance.saturating_sub(used) / interval) as u32;
    (remaining, Duration::from_micros(used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_allows_burst_then_paces() {
        let limit = LimitCheck {
            key: "k".into(),
            burst: 3,
            period: Duration::from_secs(3),
        };
        let mut tat = None;
        for _ in 0..3 {
            tat = Some(gcra(tat, 0, &limit).expect("burst allowed"));
        }
        let wait = gcra(tat, 0, &limit).expect_err("fourth refused");
        assert_eq!(wait, 1_000_000);
        // One interval later, one more fits.
        assert!(gcra(tat, 1_000_000, &limit).is_ok());
        let (remaining, reset) = gcra_state(tat.unwrap(), 0, &limit);
        assert_eq!((remaining, reset), (0, Duration::from_secs(3)));
    }

    #[test]
    fn records_round_trip_as_json() {
        let record = ClaimRecord {
            fingerprint: "ab".into(),
            state: ClaimState::Settled {
                response: Some(CachedResponse {
                    status: 200,
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: b"{\"result\":1}".to_vec(),
                }),
                ledger_key: None,
            },
        };
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.contains("\"state\":\"settled\""), "{json}");
        assert_eq!(serde_json::from_str::<ClaimRecord>(&json).unwrap(), record);
    }
}
