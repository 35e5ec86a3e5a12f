//! Last valid block heights of blockhashes we have seen ourselves.
//!
//! `isBlockhashValid` says whether a blockhash can still land, not for how long, and no RPC
//! method returns the last valid block height of an arbitrary blockhash. `getLatestBlockhash`
//! does return it for the newest one, so every answer we get is remembered here. Verification
//! refreshes on demand (at most once per [`REFRESH_INTERVAL`]) when a payment's blockhash is
//! unknown, which under steady traffic observes almost every blockhash the cluster produces —
//! the ones clients fetch with `getLatestBlockhash` seconds earlier.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use solana_hash::Hash;

/// Remember this many blockhashes (several times the 150-block validity window).
const CAPACITY: usize = 512;
/// Minimum time between two on-demand `getLatestBlockhash` calls (one slot).
pub(super) const REFRESH_INTERVAL: Duration = Duration::from_millis(400);

#[derive(Debug, Default)]
struct Inner {
    known: VecDeque<(Hash, u64)>,
    last_refresh: Option<Instant>,
}

/// Bounded map blockhash → last valid block height, plus the refresh throttle.
#[derive(Debug, Default)]
pub(crate) struct BlockhashCache {
    inner: Mutex<Inner>,
}

impl BlockhashCache {
    /// Empty cache.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The last valid block height of `hash`, if we have seen it.
    pub(crate) fn lookup(&self, hash: &Hash) -> Option<u64> {
        self.inner
            .lock()
            .known
            .iter()
            .rev()
            .find(|(h, _)| h == hash)
            .map(|(_, l)| *l)
    }

    /// Remembers `hash` → `last_valid_block_height`.
    pub(crate) fn record(&self, hash: Hash, last_valid_block_height: u64) {
        let mut inner = self.inner.lock();
        if inner.known.iter().any(|(h, _)| *h == hash) {
            return;
        }
        if inner.known.len() >= CAPACITY {
            inner.known.pop_front();
        }
        inner.known.push_back((hash, last_valid_block_height));
    }

    /// Whether the caller should refresh now; if so, the throttle is armed for everyone else.
    pub(crate) fn begin_refresh(&self) -> bool {
        let mut inner = self.inner.lock();
        let due = inner
            .last_refresh
            .is_none_or(|t| t.elapsed() >= REFRESH_INTERVAL);
        if due {
            inner.last_refresh = Some(Instant::now());
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_bounds() {
        let c = BlockhashCache::new();
        let h = |i: u32| {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&i.to_le_bytes());
            Hash::new_from_array(b)
        };
        c.record(h(1), 151);
        c.record(h(1), 999);
        assert_eq!(c.lookup(&h(1)), Some(151));
        for i in 2..(CAPACITY as u32 + 2) {
            c.record(h(i), 150 + u64::from(i));
        }
        assert_eq!(c.lookup(&h(1)), None, "oldest evicted");
        assert_eq!(
            c.lookup(&h(CAPACITY as u32 + 1)),
            Some(150 + CAPACITY as u64 + 1)
        );
    }

    #[test]
    fn refresh_is_throttled() {
        let c = BlockhashCache::new();
        assert!(c.begin_refresh());
        assert!(!c.begin_refresh());
    }
}
