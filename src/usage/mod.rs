//! Usage counters: requests per UTC day × route × cluster × RPC method × provider × outcome,
//! and revenue in atomic units of the payment asset.
//!
//! The request path only adds to an in-process map ([`Usage::record`], one short lock, no I/O:
//! a paid request's store round trips belong to the payment reservation). The map is flushed
//! to the shared store ([`Store::add_usage`], one Redis hash per day) every
//! `flush_interval_ms`, before `/admin/usage` answers, and on shutdown. A failed flush keeps
//! its counts for the next one, up to `max_unflushed` counters; past that new counters are
//! dropped, counted in `x402_usage_dropped_total` and logged. Flushing is at-least-once: a
//! flush that timed out after Redis applied it is applied again.
//!
//! Outcomes are read from the request record the layers fill (see [`outcome`]); the observing
//! layer (`observability::observe`) counts every RPC request through [`Usage::record`].

pub mod admin;
pub mod day;

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

pub use day::Day;

use crate::config::UsageConfig;
use crate::exchange::{Exchange, PaymentOutcome, UpstreamOutcome};
use crate::store::{Store, StoreResult, UsageDelta};

/// Counters per store call when flushing (bounds one Redis pipeline).
const FLUSH_CHUNK: usize = 500;

/// What one request counts under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct UsageKey<'a> {
    /// Route template (`/v1/x402/solana/{cluster}/rpc`...).
    pub route: &'a str,
    /// `mainnet` / `devnet`.
    pub cluster: &'a str,
    /// JSON-RPC method, `batch`, or `invalid`.
    pub method: &'a str,
    /// Provider name.
    pub provider: &'a str,
    /// See [`outcome`].
    pub outcome: &'static str,
}

impl UsageKey<'_> {
    /// The store field: the parts joined by `|` (none of them can contain one). Borrowed parts
    /// and one join: this runs for every RPC request.
    fn field(&self, suffix: &str) -> String {
        [
            self.route,
            self.cluster,
            self.method,
            self.provider,
            self.outcome,
            suffix,
        ]
        .join("|")
    }
}

/// One row of `/admin/usage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    /// Route template.
    pub route: String,
    /// Cluster.
    pub cluster: String,
    /// JSON-RPC method.
    pub method: String,
    /// Provider.
    pub provider: String,
    /// Outcome.
    pub outcome: String,
    /// Requests.
    pub requests: i64,
    /// Revenue, atomic units (only `paid` rows have any).
    pub revenue_atomic: i64,
}

/// What a request amounted to, from its record:
/// `limited` (429 from a rate limit), then with a payment `challenge`, `paid`,
/// `upstream_failure` / `rpc_error` / `not_charged` (not charged), `settle_failure`,
/// `settle_pending`, `refused`, `replayed`, `duplicate`, `limited`, `unavailable`; without
/// one (payments off) `served`, `rpc_error`, `upstream_failure`, `not_called`, or `probe`.
pub fn outcome(record: &Exchange) -> &'static str {
    if record.limited.is_some() {
        return "limited";
    }
    let upstream = match record.upstream {
        Some(UpstreamOutcome::Success) => Some("served"),
        Some(UpstreamOutcome::RpcError) => Some("rpc_error"),
        Some(UpstreamOutcome::Failed) => Some("upstream_failure"),
        Some(UpstreamOutcome::NotCalled) => Some("not_called"),
        None => None,
    };
    let Some(payment) = &record.payment else {
        return upstream.unwrap_or("probe");
    };
    match payment.outcome {
        PaymentOutcome::Challenge => "challenge",
        PaymentOutcome::Settled => "paid",
        // Not charged: say why when the upstream is the reason.
        PaymentOutcome::NotCharged => match record.upstream {
            Some(UpstreamOutcome::RpcError) => "rpc_error",
            Some(UpstreamOutcome::Failed) => "upstream_failure",
            _ => "not_charged",
        },
        PaymentOutcome::SettleFailed => "settle_failure",
        PaymentOutcome::SettlePending => "settle_pending",
        PaymentOutcome::Refused => "refused",
        PaymentOutcome::Replayed => "replayed",
        PaymentOutcome::Duplicate => "duplicate",
        PaymentOutcome::Limited => "limited",
        PaymentOutcome::Unavailable => "unavailable",
        PaymentOutcome::Credits => "credits",
    }
}

/// The in-process counters and their flushing.
#[derive(Debug)]
pub struct Usage {
    config: UsageConfig,
    /// (day, field) → increment not yet in the store.
    pending: Mutex<HashMap<(String, String), i64>>,
    /// The last day counted, formatted once (not on every request).
    day_text: Mutex<(Day, String)>,
    /// One flush at a time, and `/admin/usage` reads between flushes, so a count is always
    /// either in the store or in `pending` when it is read.
    flushing: tokio::sync::Mutex<()>,
}

impl Usage {
    /// From `[usage]`.
    pub fn new(config: &UsageConfig) -> Self {
        let today = Day::today();
        Self {
            config: config.clone(),
            pending: Mutex::new(HashMap::new()),
            day_text: Mutex::new((today, today.to_string())),
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    fn ttl(&self) -> Duration {
        Duration::from_secs(self.config.retention_days * 86_400)
    }

    /// Counts one request under `key` on `day`, with its revenue.
    pub fn record(&self, day: Day, key: &UsageKey<'_>, revenue_atomic: u64) {
        let day = {
            let mut cached = self.day_text.lock();
            if cached.0 != day {
                *cached = (day, day.to_string());
            }
            cached.1.clone()
        };
        let revenue = (revenue_atomic > 0).then(|| {
            (
                (day.clone(), key.field("atomic")),
                i64::try_from(revenue_atomic).unwrap_or(i64::MAX),
            )
        });
        let count = ((day, key.field("n")), 1);
        let mut pending = self.pending.lock();
        self.merge(&mut pending, std::iter::once(count).chain(revenue));
    }

    /// Adds `deltas` to `pending`, dropping (loudly) new counters past the bound.
    fn merge(
        &self,
        pending: &mut HashMap<(String, String), i64>,
        deltas: impl Iterator<Item = ((String, String), i64)>,
    ) {
        let mut dropped = 0u64;
        let before = pending.len();
        for (key, delta) in deltas {
            if let Some(value) = pending.get_mut(&key) {
                *value = value.saturating_add(delta);
            } else if pending.len() < self.config.max_unflushed {
                pending.insert(key, delta);
            } else {
                dropped += 1;
            }
        }
        // Only a new counter changes the gauge (a registry lookup: not on every request).
        if pending.len() != before {
            metrics::gauge!("x402_usage_unflushed").set(pending.len() as f64);
        }
        if dropped > 0 {
            metrics::counter!("x402_usage_dropped_total").increment(dropped);
            tracing::error!(
                dropped,
                max_unflushed = self.config.max_unflushed,
                "usage counters dropped: the store has not been writable for a while"
            );
        }
    }

    /// Writes the pending counters to `store`. On an error the unwritten ones are kept.
    pub async fn flush(&self, store: &dyn Store) -> StoreResult<()> {
        let _one_at_a_time = self.flushing.lock().await;
        self.flush_locked(store).await
    }

    async fn flush_locked(&self, store: &dyn Store) -> StoreResult<()> {
        let taken = std::mem::take(&mut *self.pending.lock());
        if taken.is_empty() {
            return Ok(());
        }
        let deltas: Vec<UsageDelta> = taken
            .into_iter()
            .map(|((day, field), delta)| UsageDelta { day, field, delta })
            .collect();
        let mut chunks = deltas.chunks(FLUSH_CHUNK);
        while let Some(chunk) = chunks.next() {
            if let Err(e) = store.add_usage(chunk, self.ttl()).await {
                metrics::counter!("x402_usage_flush_errors_total").increment(1);
                tracing::warn!(error = %e, "usage flush failed; counts kept for the next one");
                let unwritten = std::iter::once(chunk).chain(chunks).flatten();
                let mut pending = self.pending.lock();
                self.merge(
                    &mut pending,
                    unwritten.map(|d| ((d.day.clone(), d.field.clone()), d.delta)),
                );
                return Err(e);
            }
        }
        metrics::gauge!("x402_usage_unflushed").set(self.pending.lock().len() as f64);
        Ok(())
    }

    /// Every counter of `day`: the store's plus this process's not yet written ones (a flush
    /// is tried first). Other instances' last unflushed interval is not included.
    pub async fn report(&self, store: &dyn Store, day: Day) -> StoreResult<Vec<UsageRow>> {
        let _one_at_a_time = self.flushing.lock().await;
        // A failed flush keeps its counts in `pending`, which is added below.
        let _ = self.flush_locked(store).await;
        let day = day.to_string();
        let mut fields = store.usage(&day).await?;
        fields.extend(
            self.pending
                .lock()
                .iter()
                .filter(|((d, _), _)| *d == day)
                .map(|((_, field), delta)| (field.clone(), *delta)),
        );
        Ok(rows(fields))
    }

    /// Flushes every `flush_interval_ms` until the usage counters are dropped (the app is gone).
    pub fn spawn_flusher(usage: &Arc<Usage>, store: &Arc<dyn Store>) {
        let period = Duration::from_millis(usage.config.flush_interval_ms);
        let usage: Weak<Usage> = Arc::downgrade(usage);
        let store: Weak<dyn Store> = Arc::downgrade(store);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let (Some(usage), Some(store)) = (usage.upgrade(), store.upgrade()) else {
                    break;
                };
                // Errors are counted and logged inside; the counts wait for the next tick.
                let _ = usage.flush(store.as_ref()).await;
            }
        });
    }
}

/// Folds store fields (`route|cluster|method|provider|outcome|n` or `…|atomic`) into rows.
fn rows(fields: Vec<(String, i64)>) -> Vec<UsageRow> {
    let mut by_key: std::collections::BTreeMap<[String; 5], (i64, i64)> = Default::default();
    for (field, value) in fields {
        let parts: Vec<&str> = field.split('|').collect();
        let [route, cluster, method, provider, outcome, kind] = parts[..] else {
            continue;
        };
        let key = [route, cluster, method, provider, outcome].map(String::from);
        let entry = by_key.entry(key).or_default();
        match kind {
            "n" => entry.0 += value,
            "atomic" => entry.1 += value,
            _ => {}
        }
    }
    by_key
        .into_iter()
        .map(
            |([route, cluster, method, provider, outcome], (requests, revenue))| UsageRow {
                route,
                cluster,
                method,
                provider,
                outcome,
                requests,
                revenue_atomic: revenue,
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::StoreError;
    use async_trait::async_trait;

    fn key(outcome: &'static str) -> UsageKey<'static> {
        UsageKey {
            route: "/r",
            cluster: "devnet",
            method: "getSlot",
            provider: "p",
            outcome,
        }
    }

    /// A store whose usage writes fail while `down` is set.
    #[derive(Debug, Default)]
    struct Flaky {
        inner: MemoryStore,
        down: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl Store for Flaky {
        fn backend(&self) -> &'static str {
            "flaky"
        }
        async fn ping(&self) -> StoreResult<()> {
            Ok(())
        }
        async fn reserve(
            &self,
            ids: &crate::store::ClaimIds,
            token: &str,
            fingerprint: &str,
            limits: &[crate::store::LimitCheck],
            ttl: Duration,
        ) -> StoreResult<crate::store::Reservation> {
            self.inner
                .reserve(ids, token, fingerprint, limits, ttl)
                .await
        }
        async fn release(&self, ids: &crate::store::ClaimIds, token: &str) -> StoreResult<()> {
            self.inner.release(ids, token).await
        }
        async fn finish(
            &self,
            ids: &crate::store::ClaimIds,
            token: &str,
            record: &crate::store::ClaimRecord,
            ttl: Duration,
        ) -> StoreResult<()> {
            self.inner.finish(ids, token, record, ttl).await
        }
        async fn claim(
            &self,
            payment: &crate::store::PaymentKey,
        ) -> StoreResult<Option<crate::store::ClaimRecord>> {
            self.inner.claim(payment).await
        }
        async fn due_pending(
            &self,
            lease: Duration,
            max: usize,
        ) -> StoreResult<Vec<crate::store::PaymentKey>> {
            self.inner.due_pending(lease, max).await
        }
        async fn pending_count(&self) -> StoreResult<u64> {
            self.inner.pending_count().await
        }
        async fn resolve_pending(
            &self,
            payment: &crate::store::PaymentKey,
            outcome: Option<&crate::store::ClaimRecord>,
            ttl: Duration,
        ) -> StoreResult<()> {
            self.inner.resolve_pending(payment, outcome, ttl).await
        }
        async fn check_limits(
            &self,
            limits: &[crate::store::LimitCheck],
        ) -> StoreResult<crate::store::LimitVerdict> {
            self.inner.check_limits(limits).await
        }
        async fn put_once(&self, key: &str, value: &str, ttl: Duration) -> StoreResult<bool> {
            self.inner.put_once(key, value, ttl).await
        }
        async fn get(&self, key: &str) -> StoreResult<Option<String>> {
            self.inner.get(key).await
        }
        async fn take(&self, key: &str) -> StoreResult<Option<String>> {
            self.inner.take(key).await
        }
        async fn map_put(&self, map: &str, field: &str, value: &str) -> StoreResult<()> {
            self.inner.map_put(map, field, value).await
        }
        async fn map_remove(&self, map: &str, field: &str) -> StoreResult<bool> {
            self.inner.map_remove(map, field).await
        }
        async fn map_all(&self, map: &str) -> StoreResult<Vec<(String, String)>> {
            self.inner.map_all(map).await
        }
        async fn add_usage(&self, deltas: &[UsageDelta], ttl: Duration) -> StoreResult<()> {
            if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(StoreError::Timeout);
            }
            self.inner.add_usage(deltas, ttl).await
        }
        async fn usage(&self, day: &str) -> StoreResult<Vec<(String, i64)>> {
            self.inner.usage(day).await
        }
    }

    #[test]
    fn each_day_counts_under_its_own_date_when_the_day_changes() {
        let usage = Usage::new(&UsageConfig::default());
        let (first, second) = (
            Day::parse("2025-06-01").unwrap(),
            Day::parse("2025-06-02").unwrap(),
        );
        usage.record(first, &key("paid"), 0);
        usage.record(second, &key("paid"), 0);
        usage.record(second, &key("paid"), 0);
        usage.record(first, &key("paid"), 0);
        let pending = usage.pending.lock();
        let field = key("paid").field("n");
        assert_eq!(field, "/r|devnet|getSlot|p|paid|n");
        assert_eq!(pending[&("2025-06-01".to_string(), field.clone())], 2);
        assert_eq!(pending[&("2025-06-02".to_string(), field)], 2);
        assert_eq!(pending.len(), 2);
    }

    #[tokio::test]
    async fn counts_survive_a_failed_flush_and_the_report_is_current() {
        let usage = Usage::new(&UsageConfig::default());
        let store = Flaky::default();
        let day = Day::parse("2025-06-01").unwrap();
        usage.record(day, &key("paid"), 1000);
        usage.record(day, &key("paid"), 1000);
        usage.record(day, &key("challenge"), 0);
        usage.flush(&store).await.unwrap();
        usage.record(day, &key("paid"), 1000);

        store.down.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(usage.flush(&store).await.is_err());
        // Unflushed counts are part of the report.
        let rows = usage.report(&store, day).await.unwrap();
        let paid = rows.iter().find(|r| r.outcome == "paid").unwrap();
        assert_eq!((paid.requests, paid.revenue_atomic), (3, 3000));

        store.down.store(false, std::sync::atomic::Ordering::SeqCst);
        usage.flush(&store).await.unwrap();
        assert!(usage.pending.lock().is_empty());
        let rows = usage.report(&store, day).await.unwrap();
        assert_eq!(
            rows,
            vec![
                UsageRow {
                    route: "/r".into(),
                    cluster: "devnet".into(),
                    method: "getSlot".into(),
                    provider: "p".into(),
                    outcome: "challenge".into(),
                    requests: 1,
                    revenue_atomic: 0,
                },
                UsageRow {
                    route: "/r".into(),
                    cluster: "devnet".into(),
                    method: "getSlot".into(),
                    provider: "p".into(),
                    outcome: "paid".into(),
                    requests: 3,
                    revenue_atomic: 3000,
                },
            ]
        );
        // Another day is separate.
        let other = Day::parse("2025-06-02").unwrap();
        assert!(usage.report(&store, other).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn unflushed_counters_are_bounded() {
        let usage = Usage::new(&UsageConfig {
            max_unflushed: 2,
            ..UsageConfig::default()
        });
        let day = Day::parse("2025-06-01").unwrap();
        usage.record(day, &key("paid"), 5); // two counters: n and atomic
        usage.record(day, &key("challenge"), 0); // a third: dropped
        usage.record(day, &key("paid"), 5); // existing ones still grow
        let pending = usage.pending.lock();
        assert_eq!(pending.len(), 2);
        assert_eq!(
            pending[&("2025-06-01".to_string(), key("paid").field("n"))],
            2
        );
    }

    #[test]
    fn outcomes_come_from_the_request_record() {
        use crate::exchange::{LimitScope, PaymentRecord};
        let mut record = Exchange::default();
        assert_eq!(outcome(&record), "probe");
        record.upstream = Some(UpstreamOutcome::Failed);
        assert_eq!(outcome(&record), "upstream_failure");
        let payment = |outcome| PaymentRecord {
            amount: 1000,
            payer: None,
            transaction: None,
            outcome,
            reason: None,
        };
        record.payment = Some(payment(PaymentOutcome::NotCharged));
        assert_eq!(outcome(&record), "upstream_failure");
        record.payment = Some(payment(PaymentOutcome::Settled));
        assert_eq!(outcome(&record), "paid");
        record.limited = Some(LimitScope::Ip);
        assert_eq!(outcome(&record), "limited");
    }
}
