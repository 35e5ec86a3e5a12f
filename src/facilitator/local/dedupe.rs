//! Duplicate-settlement protection: one settlement per payment message.
//!
//! Keyed by the SHA-256 of the message bytes (never the transaction bytes: the fee-payer
//! signature slot is attacker-mutable). States of a key:
//!
//! | state | entered by | a new claim gets |
//! | --- | --- | --- |
//! | absent / expired | — | [`Claim::Acquired`] |
//! | in flight | a claim | [`Claim::InFlight`] (answer `duplicate_settlement`) |
//! | pending (signature) | [`SettlementLocks::mark_pending`] | [`Claim::Resumed`]: the caller now owns it and re-awaits the same signature |
//! | settled (signature) | [`SettlementLocks::mark_settled`] | [`Claim::Settled`] (answer `duplicate_settlement`) |
//!
//! [`SettlementLocks::release`] removes the key: only after a definitely-not-landed outcome.
//! Every state expires after its TTL, so a lost owner cannot block a key forever.
//!
//! The trait is async so a shared store (Redis `SET NX PX` plus a small script) can replace
//! [`InMemoryLocks`] when several gateway processes settle.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use solana_signature::Signature;

/// SHA-256 of a transaction's message bytes.
pub type MessageHash = [u8; 32];

/// Result of trying to claim a payment for settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Nobody holds it: the caller owns it now.
    Acquired,
    /// It was broadcast before and left pending: the caller owns it now and must not assume
    /// anything about the chain (re-await the signature).
    Resumed(Signature),
    /// Another settlement of the same message is running.
    InFlight,
    /// Already settled with this signature.
    Settled(Signature),
}

/// The shared store behind claims could not be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("settlement lock store unavailable: {0}")]
pub struct LockError(pub String);

/// Claims on payment messages being settled (see the module docs for the state table).
#[async_trait]
pub trait SettlementLocks: Send + Sync + std::fmt::Debug {
    /// Atomically claims `key` for `ttl` unless it is in flight or settled.
    async fn claim(&self, key: &MessageHash, ttl: Duration) -> Result<Claim, LockError>;
    /// Broadcast, outcome unknown: keep the key for `ttl`, resumable with `signature`.
    async fn mark_pending(
        &self,
        key: &MessageHash,
        signature: Signature,
        ttl: Duration,
    ) -> Result<(), LockError>;
    /// Settled: refuse the key for `ttl`.
    async fn mark_settled(
        &self,
        key: &MessageHash,
        signature: Signature,
        ttl: Duration,
    ) -> Result<(), LockError>;
    /// Definitely not landed: forget the key so a retry may settle.
    async fn release(&self, key: &MessageHash) -> Result<(), LockError>;
}

#[derive(Debug, Clone, Copy)]
enum State {
    InFlight,
    Pending(Signature),
    Settled(Signature),
}

/// Expired entries are swept once the map holds more than this many...
const SWEEP_AT: usize = 4096;

/// ...and, above that, at least this often: the map then holds what expires within its TTL
/// plus this, not up to twice what lives. With the doubling rule alone a steady 650 paid
/// calls/s (120 s TTL) left up to ~156k entries between sweeps, a 262,144-bucket table of
/// ~31 MB, the largest part of the gateway's memory after 100k paid calls (heaptrack,
/// BENCHMARKS.md); a sweep every 10 s reads the live entries once per 10 s (~80k at that
/// rate: a millisecond or two).
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// In-process [`SettlementLocks`]: a mutex-guarded map, never held across an `.await`.
#[derive(Debug, Default)]
pub struct InMemoryLocks {
    map: Mutex<Entries>,
}

/// The map and when to sweep it next.
#[derive(Debug, Default)]
struct Entries {
    map: HashMap<MessageHash, (Instant, State)>,
    /// ...and after a sweep, only again once it holds twice what the sweep kept: with many
    /// live entries (a busy minute of settlements) each claim would otherwise scan them all,
    /// so a sweep's cost is paid by the claims that grew the map since the last one: O(1)
    /// amortised per claim.
    sweep_above: usize,
    /// Entries looked at by sweeps so far (what the amortisation bounds).
    swept: u64,
    /// When the last sweep ran.
    last_sweep: Option<Instant>,
}

impl Entries {
    fn sweep_if_due(&mut self, now: Instant) {
        let len = self.map.len();
        let time_due = self
            .last_sweep
            .is_none_or(|last| now.saturating_duration_since(last) >= SWEEP_EVERY);
        if len <= SWEEP_AT || (len <= self.sweep_above && !time_due) {
            return;
        }
        self.swept += len as u64;
        self.map.retain(|_, (until, _)| *until > now);
        self.sweep_above = self.map.len() * 2;
        self.last_sweep = Some(now);
    }
}

impl InMemoryLocks {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries currently held (including expired ones not swept yet).
    pub fn len(&self) -> usize {
        self.map.lock().map.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn set(&self, key: &MessageHash, state: State, ttl: Duration) {
        self.map
            .lock()
            .map
            .insert(*key, (Instant::now() + ttl, state));
    }
}

#[async_trait]
impl SettlementLocks for InMemoryLocks {
    async fn claim(&self, key: &MessageHash, ttl: Duration) -> Result<Claim, LockError> {
        let now = Instant::now();
        let mut entries = self.map.lock();
        entries.sweep_if_due(now);
        let map = &mut entries.map;
        let current = map.get(key).filter(|(until, _)| *until > now).map(|e| e.1);
        let claim = match current {
            None => Claim::Acquired,
            Some(State::Pending(sig)) => Claim::Resumed(sig),
            Some(State::InFlight) => return Ok(Claim::InFlight),
            Some(State::Settled(sig)) => return Ok(Claim::Settled(sig)),
        };
        map.insert(*key, (now + ttl, State::InFlight));
        Ok(claim)
    }

    async fn mark_pending(
        &self,
        key: &MessageHash,
        signature: Signature,
        ttl: Duration,
    ) -> Result<(), LockError> {
        self.set(key, State::Pending(signature), ttl);
        Ok(())
    }

    async fn mark_settled(
        &self,
        key: &MessageHash,
        signature: Signature,
        ttl: Duration,
    ) -> Result<(), LockError> {
        self.set(key, State::Settled(signature), ttl);
        Ok(())
    }

    async fn release(&self, key: &MessageHash) -> Result<(), LockError> {
        self.map.lock().map.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(120);

    #[tokio::test]
    async fn state_machine() {
        let locks = InMemoryLocks::new();
        let k = [1u8; 32];
        let sig = Signature::from([7u8; 64]);
        assert_eq!(locks.claim(&k, TTL).await, Ok(Claim::Acquired));
        assert_eq!(locks.claim(&k, TTL).await, Ok(Claim::InFlight));
        locks.mark_pending(&k, sig, TTL).await.unwrap();
        assert_eq!(locks.claim(&k, TTL).await, Ok(Claim::Resumed(sig)));
        assert_eq!(
            locks.claim(&k, TTL).await,
            Ok(Claim::InFlight),
            "a resumed claim is owned"
        );
        locks.mark_settled(&k, sig, TTL).await.unwrap();
        assert_eq!(locks.claim(&k, TTL).await, Ok(Claim::Settled(sig)));
        locks.release(&k).await.unwrap();
        assert_eq!(locks.claim(&k, TTL).await, Ok(Claim::Acquired));
        assert_eq!(locks.claim(&[2u8; 32], TTL).await, Ok(Claim::Acquired));
        assert_eq!(locks.len(), 2);
    }

    #[tokio::test]
    async fn entries_expire() {
        let locks = InMemoryLocks::new();
        let k = [3u8; 32];
        assert_eq!(
            locks.claim(&k, Duration::from_millis(1)).await,
            Ok(Claim::Acquired)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(locks.claim(&k, TTL).await, Ok(Claim::Acquired));
    }

    #[tokio::test]
    async fn sweeps_stay_amortised_with_many_live_entries() {
        let locks = InMemoryLocks::new();
        let claims = 50_000u32;
        for i in 0..claims {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_le_bytes());
            assert_eq!(locks.claim(&key, TTL).await, Ok(Claim::Acquired));
        }
        let entries = locks.map.lock();
        assert_eq!(entries.map.len(), claims as usize, "nothing expired");
        // Sweeping every claim past SWEEP_AT would scan ~46k × 27k entries; doubling the
        // threshold keeps the total under two scans per claim.
        assert!(
            entries.swept <= 2 * u64::from(claims),
            "swept {} entries for {claims} claims",
            entries.swept
        );
    }

    /// Below the doubling threshold, a sweep still runs once `SWEEP_EVERY` has passed, so
    /// expired entries do not pile up to twice the live ones.
    #[tokio::test]
    async fn expired_entries_are_swept_every_interval() {
        let locks = InMemoryLocks::new();
        let start = Instant::now();
        let key = |i: u32| {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_le_bytes());
            key
        };
        // A first sweep (time due) sets the doubling threshold from what it kept.
        for i in 0..(SWEEP_AT as u32 + 1) {
            locks.claim(&key(i), TTL).await.unwrap();
        }
        let mut entries = locks.map.lock();
        entries.sweep_if_due(start);
        let kept = entries.map.len();
        assert_eq!(kept, SWEEP_AT + 1);
        // More entries, all expired by `later`, fewer than double: only the clock sweeps.
        for i in 0..1000u32 {
            let until = start + Duration::from_secs(1);
            entries
                .map
                .insert(key(100_000 + i), (until, State::InFlight));
        }
        let swept = entries.swept;
        entries.sweep_if_due(start + Duration::from_secs(2));
        assert_eq!(entries.swept, swept, "neither doubled nor due: no sweep");
        assert_eq!(entries.map.len(), kept + 1000);
        entries.sweep_if_due(start + SWEEP_EVERY + Duration::from_secs(1));
        assert_eq!(entries.map.len(), kept, "the expired ones are gone");
    }

    #[tokio::test]
    async fn expired_entries_are_still_swept() {
        let locks = InMemoryLocks::new();
        for i in 0..=(SWEEP_AT as u32) {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_le_bytes());
            locks.claim(&key, Duration::ZERO).await.unwrap();
        }
        locks.claim(&[0xff; 32], TTL).await.unwrap();
        assert!(locks.len() <= 2, "{} left", locks.len());
    }

    #[tokio::test]
    async fn concurrent_claims_have_one_winner() {
        let locks = std::sync::Arc::new(InMemoryLocks::new());
        let k = [4u8; 32];
        let claims = futures::future::join_all((0..32).map(|_| {
            let l = locks.clone();
            async move { l.claim(&k, TTL).await.unwrap() }
        }))
        .await;
        assert_eq!(claims.iter().filter(|c| **c == Claim::Acquired).count(), 1);
    }
}
