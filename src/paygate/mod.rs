//! x402 payments on priced routes.
//!
//! Read in this order: [`layer`] (the route layer: thin glue that records the outcome),
//! `flow` (one paid request top to bottom, written with `?`), `error` (every answer that is not
//! the upstream's, mapped to HTTP in one place), then the parts: `offer` (what we ask for and
//! the local checks), `claims` (what a payment claims in the store), `cache` (encoded
//! challenges), `reconcile` (settlements whose outcome was unknown).
//!
//! Invariants:
//! - The price and the requirements are computed on the server from the request body; the
//!   client's `accepted` is compared to them, never used.
//! - A payment is checked locally (strict SVM rules, client signature) before any facilitator
//!   or upstream call, and reserved (message hash) before the upstream call.
//! - Settlement happens only after the upstream succeeded (`UpstreamOutcome::Success`), and the
//!   upstream body is released only after `settle` says `success: true`.
//! - A reservation is released only when nothing was charged.

mod cache;
pub mod challenge;
pub mod claims;
mod error;
mod flow;
mod layer;
mod offer;
pub mod reconcile;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

pub use layer::paygate;

use crate::config::PaymentConfig;
use crate::credits::Credits;
use crate::facilitator::{Facilitator, FacilitatorError};
use crate::ledger::Ledger;
use crate::ratelimit::RateLimits;
use crate::store::Store;
use crate::x402::SupportedResponse;

/// Everything the paid routes need, built once.
#[derive(Debug)]
pub struct Paygate {
    /// `[payment]`.
    pub config: PaymentConfig,
    /// Receiver wallet.
    pub pay_to: String,
    /// Verify / settle through this (failover over the configured facilitators).
    pub facilitator: Arc<dyn Facilitator>,
    /// Claims on payments, limits (shared with the rest of the app).
    pub store: Arc<dyn Store>,
    /// The durable record of every payment, written ahead of every step that moves money.
    pub ledger: Arc<Ledger>,
    /// Prepaid credits, when `[credits] enabled`: a bearer session pays instead of a payment.
    pub credits: Option<Arc<Credits>>,
    /// The per-IP challenge limit, the payer's limit and the provider budgets.
    limits: Arc<RateLimits>,
    /// The facilitators' last `/supported` answer (our fee payer comes from it).
    supported: RwLock<Option<SupportedResponse>>,
    /// Bumped (under `supported`'s write lock) each time the `/supported` answer changes.
    generation: AtomicU64,
    /// Encoded unpaid challenges per (path, price).
    challenges: cache::ChallengeCache,
}

impl Paygate {
    /// Builds the paygate over `facilitator` (see `facilitator::from_config`). Fetches
    /// `/supported` once; a background task keeps it fresh (never on the request path), and the
    /// reconciler follows settlements whose outcome was unknown.
    pub async fn build(
        config: &PaymentConfig,
        facilitator: Arc<dyn Facilitator>,
        store: Arc<dyn Store>,
        ledger: Arc<Ledger>,
        credits: Option<Arc<Credits>>,
        limits: Arc<RateLimits>,
    ) -> Result<Arc<Self>, String> {
        let pay_to = config
            .pay_to
            .clone()
            .ok_or("payment.pay_to is required when payment is enabled")?;
        if config.accepts.is_empty() {
            return Err("payment.accepts needs at least one network and asset".into());
        }
        let gate = Arc::new(Self {
            config: config.clone(),
            pay_to,
            facilitator,
            store,
            ledger,
            credits,
            limits,
            supported: RwLock::new(None),
            generation: AtomicU64::new(0),
            challenges: cache::ChallengeCache::default(),
        });
        if let Err(e) = gate.refresh_supported().await {
            tracing::warn!(error = %e, "facilitator /supported failed at start; retrying in the background");
        }
        gate.spawn_refresher();
        reconcile::spawn(&gate);
        Ok(gate)
    }

    /// `Retry-After` of a withheld answer whose settlement is pending: one reconciler pass
    /// (rounded up to whole seconds, at least 1), after which the answer is released or the
    /// payment freed.
    pub(crate) fn pending_retry_after_secs(&self) -> u64 {
        self.config.reconcile_interval_ms.div_ceil(1000).max(1)
    }

    /// Whether payments on `network` are accepted (`[[payment.accepts]]`).
    pub fn sells(&self, network: &str) -> bool {
        self.config.accepts.iter().any(|a| a.network == network)
    }

    /// Our fee payer for `network`, from the cached `/supported`.
    pub fn fee_payer(&self, network: &str) -> Option<String> {
        self.supported
            .read()
            .as_ref()
            .and_then(|s| s.fee_payer("exact", network).map(String::from))
    }

    /// Fetches `/supported` and caches it; a changed answer (a rotated fee payer) retires every
    /// challenge built from the previous one.
    pub async fn refresh_supported(&self) -> Result<(), FacilitatorError> {
        let supported = self.facilitator.supported().await?;
        let mut current = self.supported.write();
        if current.as_ref() != Some(&supported) {
            *current = Some(supported);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }

    /// The `/supported` generation: read it *before* building from `fee_payer` so that what is
    /// built is never older than its tag.
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn spawn_refresher(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let every = Duration::from_secs(self.config.supported_refresh_secs.max(1));
        tokio::spawn(async move {
            loop {
                // Until the first success, retry quickly; then at the configured pace.
                let have = weak.upgrade().map(|g| g.supported.read().is_some());
                let wait = match have {
                    None => return,
                    Some(true) => every,
                    Some(false) => Duration::from_secs(2),
                };
                tokio::time::sleep(wait).await;
                let Some(gate) = weak.upgrade() else { return };
                if let Err(e) = gate.refresh_supported().await {
                    tracing::warn!(error = %e, "facilitator /supported refresh failed");
                }
            }
        });
    }
}
