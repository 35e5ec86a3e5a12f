//! The embedded store: one process, no Redis. Same semantics as the Redis backend; every
//! transition happens under one lock, every entry expires.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{
    gcra, gcra_state, ClaimIds, ClaimRecord, ClaimState, LimitCheck, LimitVerdict, PaymentKey,
    Reservation, Store, StoreResult, UsageDelta,
};

/// Entries above this count trigger a sweep of the expired ones on the next write; after a
/// sweep the threshold becomes twice the live count, so sweeps stay amortised O(1) per write
/// even with many live entries (rate-limit keys of many client addresses).
const SWEEP_ABOVE: usize = 4096;

/// At most this many settled payments whose answer lives in the ledger (`ledger_key`) are kept
/// here past a sweep; the oldest go first, with their aliases. A replay of one that is gone
/// finds no record, claims, and is answered from its ledger row (what a restarted memory store
/// does for all of them), so this bounds memory without forgetting a payment: ~1 KB per settled
/// payment (claim + `payment-identifier` alias) was ~100 MB after 100k paid calls; with 4k
/// kept, RSS is 69 MiB after 100k (BENCHMARKS.md).
pub(crate) const SETTLED_IN_MEMORY: usize = 4_096;

#[derive(Debug)]
enum Value {
    Claim(ClaimRecord),
    /// An alias of a claim: the payment it points to.
    Alias(PaymentKey),
    Text(String),
    /// GCRA theoretical arrival time, µs since the store's epoch.
    Tat(u64),
    Counters(HashMap<String, i64>),
}

#[derive(Debug)]
struct Entry {
    value: Value,
    expires: Instant,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Pending payments → when they may next be handed to a reconciler.
    pending: HashMap<PaymentKey, Instant>,
    /// Sweep when `entries` grows past this (at least `SWEEP_ABOVE`).
    sweep_above: usize,
}

/// In-memory store (the embedded default).
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    epoch: Instant,
    /// Durable maps (no TTL), by map name.
    maps: Mutex<std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            state: Mutex::new(State::default()),
            epoch: Instant::now(),
            maps: Mutex::default(),
        }
    }
}

fn claim_key(payment: &PaymentKey) -> String {
    format!("pay:{}", payment.hex())
}

impl State {
    fn live(&self, key: &str, now: Instant) -> Option<&Value> {
        self.entries
            .get(key)
            .filter(|e| e.expires > now)
            .map(|e| &e.value)
    }

    fn put(&mut self, key: String, value: Value, ttl: Duration, now: Instant) {
        if self.entries.len() > self.sweep_above.max(SWEEP_ABOVE) {
            self.entries.retain(|_, e| e.expires > now);
            self.evict_settled(SETTLED_IN_MEMORY);
            self.sweep_above = self.entries.len() * 2;
        }
        self.entries.insert(
            key,
            Entry {
                value,
                expires: now + ttl,
            },
        );
    }

    /// Drops the oldest settled payments kept only as a pointer to the ledger beyond `keep`,
    /// and the aliases left pointing at nothing. Runs inside a sweep (amortised).
    fn evict_settled(&mut self, keep: usize) {
        let evictable = |e: &Entry| {
            matches!(
                &e.value,
                Value::Claim(ClaimRecord {
                    state: ClaimState::Settled {
                        ledger_key: Some(_),
                        ..
                    },
                    ..
                })
            )
        };
        let mut expiries: Vec<Instant> = self
            .entries
            .values()
            .filter(|e| evictable(e))
            .map(|e| e.expires)
            .collect();
        if expiries.len() <= keep {
            return;
        }
        // Same TTL for all: the earliest expiry is the oldest settlement.
        let cut = expiries.len() - keep;
        let (_, cutoff, _) = expiries.select_nth_unstable(cut);
        let cutoff = *cutoff;
        self.entries
            .retain(|_, e| !(evictable(e) && e.expires < cutoff));
        let gone: Vec<String> = self
            .entries
            .iter()
            .filter_map(|(k, e)| match &e.value {
                Value::Alias(p) if !self.entries.contains_key(&claim_key(p)) => Some(k.clone()),
                _ => None,
            })
            .collect();
        for k in gone {
            self.entries.remove(&k);
        }
    }

    /// The record behind the payment key or an alias.
    fn record(&self, key: &str, now: Instant) -> Option<ClaimRecord> {
        match self.live(key, now)? {
            Value::Claim(record) => Some(record.clone()),
            Value::Alias(payment) => match self.live(&claim_key(payment), now)? {
                Value::Claim(record) => Some(record.clone()),
                _ => None,
            },
            _ => None,
        }
    }

    fn holds(&self, ids: &ClaimIds, token: &str, now: Instant) -> bool {
        matches!(
            self.live(&claim_key(&ids.payment), now),
            Some(Value::Claim(ClaimRecord { state: ClaimState::InFlight { token: t }, .. })) if t == token
        )
    }

    fn limits(&mut self, limits: &[LimitCheck], now: Instant, micros: u64) -> LimitVerdict {
        let mut next = Vec::with_capacity(limits.len());
        let mut tightest: Option<(usize, u32, Duration)> = None;
        for (index, limit) in limits.iter().enumerate() {
            let tat = match self.live(&limit.key, now) {
                Some(Value::Tat(t)) => Some(*t),
                _ => None,
            };
            match gcra(tat, micros, limit) {
                Ok(new_tat) => {
                    let (remaining, reset) = gcra_state(new_tat, micros, limit);
                    if tightest.is_none_or(|(_, r, _)| remaining < r) {
                        tightest = Some((index, remaining, reset));
                    }
                    next.push((limit.key.clone(), new_tat, reset));
                }
                Err(wait) => {
                    return LimitVerdict::Limited {
                        index,
                        retry_after: Duration::from_micros(wait),
                    }
                }
            }
        }
        for (key, tat, reset) in next {
            // Kept exactly as long as it matters: until fully replenished.
            self.put(
                key,
                Value::Tat(tat),
                reset.max(Duration::from_millis(1)),
                now,
            );
        }
        let (index, remaining, reset) = tightest.unwrap_or((0, u32::MAX, Duration::ZERO));
        LimitVerdict::Allowed {
            index,
            remaining,
            reset,
        }
    }
}

impl MemoryStore {
    fn now_micros(&self, now: Instant) -> u64 {
        now.duration_since(self.epoch).as_micros() as u64
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn reserve(
        &self,
        ids: &ClaimIds,
        token: &str,
        fingerprint: &str,
        limits: &[LimitCheck],
        ttl: Duration,
    ) -> StoreResult<Reservation> {
        let now = Instant::now();
        let mut state = self.state.lock();
        let main = claim_key(&ids.payment);
        for key in std::iter::once(&main).chain(&ids.aliases) {
            if let Some(record) = state.record(key, now) {
                return Ok(Reservation::Existing(record));
            }
        }
        let verdict = state.limits(limits, now, self.now_micros(now));
        if !verdict.is_allowed() {
            return Ok(Reservation::Limited(verdict));
        }
        let token = token.to_string();
        let record = ClaimRecord {
            fingerprint: fingerprint.to_string(),
            state: ClaimState::InFlight {
                token: token.clone(),
            },
        };
        state.put(main, Value::Claim(record), ttl, now);
        for alias in &ids.aliases {
            state.put(alias.clone(), Value::Alias(ids.payment), ttl, now);
        }
        Ok(Reservation::Reserved { token })
    }

    async fn release(&self, ids: &ClaimIds, token: &str) -> StoreResult<()> {
        let now = Instant::now();
        let mut state = self.state.lock();
        if state.holds(ids, token, now) {
            state.entries.remove(&claim_key(&ids.payment));
            for alias in &ids.aliases {
                state.entries.remove(alias);
            }
        }
        Ok(())
    }

    async fn finish(
        &self,
        ids: &ClaimIds,
        token: &str,
        record: &ClaimRecord,
        ttl: Duration,
    ) -> StoreResult<()> {
        let now = Instant::now();
        let mut state = self.state.lock();
        if !state.holds(ids, token, now) {
            // Our claim expired under us; the settlement is still the truth, so record it.
            tracing::warn!(payment = ?ids.payment, "claim finished after its in-flight lease expired");
        }
        state.put(
            claim_key(&ids.payment),
            Value::Claim(record.clone()),
            ttl,
            now,
        );
        for alias in &ids.aliases {
            state.put(alias.clone(), Value::Alias(ids.payment), ttl, now);
        }
        if matches!(record.state, ClaimState::Pending { .. }) {
            state.pending.insert(ids.payment, now);
        } else {
            state.pending.remove(&ids.payment);
        }
        Ok(())
    }

    async fn claim(&self, payment: &PaymentKey) -> StoreResult<Option<ClaimRecord>> {
        let now = Instant::now();
        Ok(self.state.lock().record(&claim_key(payment), now))
    }

    async fn due_pending(&self, lease: Duration, max: usize) -> StoreResult<Vec<PaymentKey>> {
        let now = Instant::now();
        let mut state = self.state.lock();
        let mut due: Vec<PaymentKey> = Vec::new();
        let mut gone = Vec::new();
        for (payment, at) in &state.pending {
            if due.len() >= max {
                break;
            }
            if state.live(&claim_key(payment), now).is_none() {
                gone.push(*payment);
            } else if *at <= now {
                due.push(*payment);
            }
        }
        for payment in gone {
            state.pending.remove(&payment);
        }
        for payment in &due {
            state.pending.insert(*payment, now + lease);
        }
        Ok(due)
    }

    async fn pending_count(&self) -> StoreResult<u64> {
        Ok(self.state.lock().pending.len() as u64)
    }

    async fn resolve_pending(
        &self,
        payment: &PaymentKey,
        outcome: Option<&ClaimRecord>,
        ttl: Duration,
    ) -> StoreResult<()> {
        let now = Instant::now();
        let mut state = self.state.lock();
        state.pending.remove(payment);
        let key = claim_key(payment);
        match outcome {
            Some(record) => state.put(key, Value::Claim(record.clone()), ttl, now),
            // Aliases pointing at a deleted claim read as absent, and expire on their own.
            None => {
                state.entries.remove(&key);
            }
        }
        Ok(())
    }

    async fn check_limits(&self, limits: &[LimitCheck]) -> StoreResult<LimitVerdict> {
        let now = Instant::now();
        let micros = self.now_micros(now);
        Ok(self.state.lock().limits(limits, now, micros))
    }

    async fn put_once(&self, key: &str, value: &str, ttl: Duration) -> StoreResult<bool> {
        let now = Instant::now();
        let mut state = self.state.lock();
        if state.live(key, now).is_some() {
            return Ok(false);
        }
        state.put(key.to_string(), Value::Text(value.to_string()), ttl, now);
        Ok(true)
    }

    async fn get(&self, key: &str) -> StoreResult<Option<String>> {
        let now = Instant::now();
        Ok(match self.state.lock().live(key, now) {
            Some(Value::Text(v)) => Some(v.clone()),
            _ => None,
        })
    }

    async fn take(&self, key: &str) -> StoreResult<Option<String>> {
        let now = Instant::now();
        let mut state = self.state.lock();
        let live = state.live(key, now).is_some();
        match state.entries.remove(key) {
            Some(Entry {
                value: Value::Text(v),
                ..
            }) if live => Ok(Some(v)),
            _ => Ok(None),
        }
    }

    async fn add_usage(&self, deltas: &[UsageDelta], ttl: Duration) -> StoreResult<()> {
        let now = Instant::now();
        let mut state = self.state.lock();
        for d in deltas {
            let key = format!("usage:{}", d.day);
            let entry = state.entries.entry(key).or_insert_with(|| Entry {
                value: Value::Counters(HashMap::new()),
                expires: now + ttl,
            });
            if entry.expires <= now || !matches!(entry.value, Value::Counters(_)) {
                entry.value = Value::Counters(HashMap::new());
            }
            entry.expires = now + ttl;
            if let Value::Counters(counters) = &mut entry.value {
                *counters.entry(d.field.clone()).or_default() += d.delta;
            }
        }
        Ok(())
    }

    async fn usage(&self, day: &str) -> StoreResult<Vec<(String, i64)>> {
        let now = Instant::now();
        let state = self.state.lock();
        let mut rows: Vec<(String, i64)> = match state.live(&format!("usage:{day}"), now) {
            Some(Value::Counters(c)) => c.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            _ => Vec::new(),
        };
        rows.sort();
        Ok(rows)
    }
    async fn map_put(&self, map: &str, field: &str, value: &str) -> StoreResult<()> {
        self.maps
            .lock()
            .entry(map.to_owned())
            .or_default()
            .insert(field.to_owned(), value.to_owned());
        Ok(())
    }

    async fn map_remove(&self, map: &str, field: &str) -> StoreResult<bool> {
        Ok(self
            .maps
            .lock()
            .get_mut(map)
            .is_some_and(|m| m.remove(field).is_some()))
    }

    async fn map_all(&self, map: &str) -> StoreResult<Vec<(String, String)>> {
        Ok(self
            .maps
            .lock()
            .get(map)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_stay_rare_with_many_live_entries_and_still_drop_expired_ones() {
        let mut state = State::default();
        let now = Instant::now();
        let live = Duration::from_secs(60);
        for i in 0..3 * SWEEP_ABOVE {
            state.put(format!("live{i}"), Value::Text(String::new()), live, now);
        }
        // Swept once past SWEEP_ABOVE (nothing expired): the next sweep waits for twice as many.
        assert!(state.sweep_above > SWEEP_ABOVE, "{}", state.sweep_above);
        let later = now + Duration::from_secs(120);
        for i in 0..=state.sweep_above {
            state.put(format!("new{i}"), Value::Text(String::new()), live, later);
        }
        assert!(
            !state.entries.keys().any(|k| k.starts_with("live")),
            "expired entries were swept"
        );
    }

    fn settled(ledger: bool) -> Value {
        Value::Claim(ClaimRecord {
            fingerprint: "f".into(),
            state: ClaimState::Settled {
                response: None,
                ledger_key: ledger.then(|| "k".to_string()),
            },
        })
    }

    #[test]
    fn settled_payments_in_the_ledger_stay_within_the_budget_with_their_aliases() {
        let mut state = State::default();
        let now = Instant::now();
        let day = Duration::from_secs(86_400);
        let payment = |i: u32| {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_be_bytes());
            PaymentKey(key)
        };
        // Kept in memory only (no ledger row to answer from), in flight, and settled.
        state.put("text".into(), Value::Text(String::new()), day, now);
        state.put(claim_key(&payment(u32::MAX)), settled(false), day, now);
        state.put(
            claim_key(&payment(u32::MAX - 1)),
            Value::Claim(ClaimRecord {
                fingerprint: "f".into(),
                state: ClaimState::InFlight { token: "t".into() },
            }),
            day,
            now,
        );
        let n = 3 * SETTLED_IN_MEMORY as u32;
        for i in 0..n {
            let at = now + Duration::from_millis(u64::from(i));
            state.put(claim_key(&payment(i)), settled(true), day, at);
            state.put(format!("pid:{i}"), Value::Alias(payment(i)), day, at);
        }
        state.evict_settled(SETTLED_IN_MEMORY);
        let at = now + Duration::from_millis(u64::from(n));
        let kept = (0..n)
            .filter(|i| state.record(&claim_key(&payment(*i)), at).is_some())
            .count();
        assert_eq!(kept, SETTLED_IN_MEMORY, "settled payments kept");
        // The newest survive, the oldest are gone with their aliases.
        assert!(state.record(&claim_key(&payment(n - 1)), at).is_some());
        assert!(state.record("pid:0", at).is_none());
        assert!(
            !state.entries.contains_key("pid:0"),
            "dangling alias removed"
        );
        assert!(state.entries.contains_key(&format!("pid:{}", n - 1)));
        // Nothing else is touched.
        assert!(state.entries.contains_key("text"));
        assert!(state.record(&claim_key(&payment(u32::MAX)), at).is_some());
        assert!(state
            .record(&claim_key(&payment(u32::MAX - 1)), at)
            .is_some());
        let aliases = state
            .entries
            .values()
            .filter(|e| matches!(e.value, Value::Alias(_)))
            .count();
        assert_eq!(aliases, kept);
    }

    #[test]
    fn puts_past_the_budget_evict_in_their_sweeps() {
        let mut state = State::default();
        let now = Instant::now();
        let day = Duration::from_secs(86_400);
        for i in 0..(8 * SETTLED_IN_MEMORY) as u32 {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_be_bytes());
            let at = now + Duration::from_micros(u64::from(i));
            state.put(claim_key(&PaymentKey(key)), settled(true), day, at);
        }
        // Bounded: at most the budget after a sweep, then twice what was kept before the next.
        assert!(
            state.entries.len() <= 2 * SETTLED_IN_MEMORY + 1,
            "{} entries",
            state.entries.len()
        );
    }
}
