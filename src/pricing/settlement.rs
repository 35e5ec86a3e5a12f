//! What one `exact` settlement costs us, in atomic USD units, and where its SOL/USD came from.
//!
//! The cost is computed, not guessed: `(signatures × lamports_per_signature + the largest
//! priority fee the compute-price cap allows) × SOL/USD × (1 + margin)`, rounded up. The
//! request path reads one atomic integer ([`Settlement::atomic`]); the oracle task
//! ([`super::oracle`]) writes it off the request path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;

use crate::config::{Config, SettlementConfig};
use crate::svm::constants::{DEFAULT_MAX_COMPUTE_UNIT_LIMIT, DEFAULT_MAX_COMPUTE_UNIT_PRICE};

/// A new SOL/USD moves the published price only when the price it gives differs from the
/// published one by more than this (basis points). A published price is what a client signs:
/// changing it while the client signs makes the retry mismatch and answer a fresh 402, so it
/// changes seldom; the margin (default 20%) is far wider than the band, so the price never
/// falls below cost.
pub const REPUBLISH_BAND_BPS: u64 = 200;

/// `lamports × sol_usd_micros × (1 + margin)` in micro-USD (= atomic units of a 6-decimal
/// stablecoin), rounded up.
pub fn atomic_cost(lamports: u64, sol_usd_micros: u64, margin_bps: u32) -> u64 {
    let numerator = lamports as u128 * sol_usd_micros as u128 * (10_000 + margin_bps as u128);
    let denominator = 1_000_000_000u128 * 10_000;
    u64::try_from(numerator.div_ceil(denominator)).unwrap_or(u64::MAX)
}

/// Where the SOL/USD in use came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum SolUsdSource {
    /// `[pricing.settlement] sol_usd`, no oracle configured.
    Config,
    /// The oracle's price (price + confidence: the high end), published at `publish_time`.
    Oracle {
        /// Unix seconds the oracle published this price.
        publish_time: i64,
    },
    /// The oracle is configured but its price is missing or stale: the configured fallback.
    Fallback {
        /// Why the oracle's price is not used.
        reason: String,
    },
}

impl SolUsdSource {
    /// The label of the `x402_settlement_sol_usd_source` metric.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Oracle { .. } => "oracle",
            Self::Fallback { .. } => "fallback",
        }
    }
}

/// The inputs of the settlement cost and the last SOL/USD reading, for `/status`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettlementView {
    /// What a payment is charged for its settlement, atomic units.
    pub atomic: u64,
    /// The same, in USD.
    pub usd: String,
    /// Lamports one settlement can cost at most.
    pub lamports: u64,
    /// Signatures paid for.
    pub signatures: u64,
    /// Base fee per signature.
    pub lamports_per_signature: u64,
    /// The largest priority fee the compute-price cap allows (`max_compute_unit_price ×
    /// max_compute_unit_limit / 1e6`).
    pub priority_fee_lamports: u64,
    /// Margin over the cost.
    pub margin_bps: u32,
    /// SOL/USD the published price was computed with.
    pub sol_usd: String,
    /// Where that SOL/USD came from.
    pub source: SolUsdSource,
    /// The SOL/USD of the last reading, when it did not move the price (within the band).
    pub last_reading_sol_usd: String,
}

/// The published settlement cost: one atomic for the request path, the rest for `/status`.
#[derive(Debug)]
pub struct Settlement {
    atomic: AtomicU64,
    lamports: u64,
    config: SettlementConfig,
    priority_fee_lamports: u64,
    view: Mutex<(u64, SolUsdSource, u64)>,
    /// The price the last move replaced, and when: a client may have signed it.
    /// (Atomics: every priced request asks, and almost always there is none.)
    previous: AtomicU64,
    /// When it was replaced: milliseconds after `born`, plus one (0 = never).
    replaced_at: AtomicU64,
    born: Instant,
}

impl Settlement {
    /// From `[pricing.settlement]` and the facilitator's compute caps, priced with the
    /// configured SOL/USD until an oracle says otherwise.
    pub fn new(config: &Config) -> Self {
        let (limit, price) = config.facilitator.as_ref().map_or(
            (
                DEFAULT_MAX_COMPUTE_UNIT_LIMIT,
                DEFAULT_MAX_COMPUTE_UNIT_PRICE,
            ),
            |f| (f.max_compute_unit_limit, f.max_compute_unit_price),
        );
        let s = &config.pricing.settlement;
        Self::from_parts(s, u64::from(limit), price)
    }

    /// From the parts (tests and benches).
    pub fn from_parts(s: &SettlementConfig, cu_limit: u64, cu_price_micro_lamports: u64) -> Self {
        let priority_fee_lamports =
            (cu_limit as u128 * cu_price_micro_lamports as u128).div_ceil(1_000_000) as u64;
        let lamports = s
            .signatures
            .saturating_mul(s.lamports_per_signature)
            .saturating_add(priority_fee_lamports);
        let source = if s.oracle.is_some() {
            SolUsdSource::Fallback {
                reason: "no oracle reading yet".into(),
            }
        } else {
            SolUsdSource::Config
        };
        let atomic = atomic_cost(lamports, s.sol_usd, s.margin_bps);
        metrics::gauge!("x402_settlement_cost_atomic").set(atomic as f64);
        Self {
            atomic: AtomicU64::new(atomic),
            lamports,
            config: s.clone(),
            priority_fee_lamports,
            view: Mutex::new((s.sol_usd, source, s.sol_usd)),
            previous: AtomicU64::new(0),
            replaced_at: AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    /// What a payment is charged for its settlement now (atomic units).
    pub fn atomic(&self) -> u64 {
        self.atomic.load(Ordering::Relaxed)
    }

    /// The configured fallback SOL/USD (micro-USD).
    pub fn fallback_sol_usd(&self) -> u64 {
        self.config.sol_usd
    }

    /// Takes a SOL/USD reading. The published price moves when the reading's price differs
    /// from it by more than [`REPUBLISH_BAND_BPS`], or when the source changes kind (a
    /// fallback to or from the oracle is always applied). Returns whether it moved.
    pub fn observe(&self, sol_usd_micros: u64, source: SolUsdSource) -> bool {
        let next = atomic_cost(self.lamports, sol_usd_micros, self.config.margin_bps);
        let mut view = self.view.lock();
        let current = self.atomic();
        let moved_beyond_band =
            next.abs_diff(current) as u128 * 10_000 > current as u128 * REPUBLISH_BAND_BPS as u128;
        let changed_kind = std::mem::discriminant(&view.1) != std::mem::discriminant(&source);
        view.2 = sol_usd_micros;
        metrics::gauge!("x402_settlement_sol_usd").set(sol_usd_micros as f64 / 1e6);
        if !(moved_beyond_band || changed_kind) {
            // Keep the publish time fresh for /status when the oracle still agrees.
            if matches!(source, SolUsdSource::Oracle { .. }) {
                view.1 = source;
            }
            return false;
        }
        if next != current {
            // Writers are serialised by `view`; the price first, then when (readers load in
            // the other order).
            self.previous.store(current, Ordering::Relaxed);
            let at = self.born.elapsed().as_millis() as u64 + 1;
            self.replaced_at.store(at, Ordering::Release);
        }
        self.atomic.store(next, Ordering::Relaxed);
        metrics::gauge!("x402_settlement_cost_atomic").set(next as f64);
        *view = (sol_usd_micros, source, sol_usd_micros);
        next != current
    }

    /// The price the last move replaced, if it was replaced less than `grace` ago.
    pub fn previous_within(&self, grace: Duration) -> Option<u64> {
        let at = self.replaced_at.load(Ordering::Acquire);
        if at == 0 {
            return None;
        }
        let since = Duration::from_millis(at - 1);
        (self.born.elapsed().saturating_sub(since) < grace)
            .then(|| self.previous.load(Ordering::Relaxed))
    }

    /// The numbers behind the price, for `/status` and the price table.
    pub fn view(&self) -> SettlementView {
        let view = self.view.lock().clone();
        let atomic = self.atomic();
        SettlementView {
            atomic,
            usd: micro_usd(atomic),
            lamports: self.lamports,
            signatures: self.config.signatures,
            lamports_per_signature: self.config.lamports_per_signature,
            priority_fee_lamports: self.priority_fee_lamports,
            margin_bps: self.config.margin_bps,
            sol_usd: micro_usd(view.0),
            source: view.1,
            last_reading_sol_usd: micro_usd(view.2),
        }
    }
}

/// Micro-USD as a USD decimal without trailing zeros (`3600` → `"0.0036"`).
fn micro_usd(micros: u64) -> String {
    let (int, frac) = (micros / 1_000_000, micros % 1_000_000);
    if frac == 0 {
        return int.to_string();
    }
    format!("{int}.{}", format!("{frac:06}").trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settlement(sol_usd: u64, oracle: bool) -> Settlement {
        let config = SettlementConfig {
            sol_usd,
            oracle: oracle.then(|| crate::config::OracleConfig {
                provider: "p".into(),
                account: crate::config::PYTH_SOL_USD_ACCOUNT.into(),
                refresh_secs: 60,
                max_age_secs: 300,
            }),
            ..SettlementConfig::default()
        };
        Settlement::from_parts(&config, 200_000, 50_000)
    }

    #[test]
    fn the_default_settlement_costs_what_the_chain_charges_at_most() {
        // 2 × 5000 lamports + 50 000 µlamports × 200 000 CU = 20 000 lamports; at $150 that is
        // $0.003, + 20% = $0.0036.
        let s = settlement(150_000_000, false);
        let view = s.view();
        assert_eq!(
            (view.lamports, view.priority_fee_lamports, s.atomic()),
            (20_000, 10_000, 3_600)
        );
        assert_eq!(view.usd, "0.0036");
        assert_eq!(view.source, SolUsdSource::Config);
        // Rounded up, never down: 1 lamport at $1 is 0.001 micro-USD → 1 atomic.
        assert_eq!(atomic_cost(1, 1_000_000, 0), 1);
        assert_eq!(atomic_cost(0, 1_000_000, 0), 0);
        assert_eq!(atomic_cost(20_000, 0, 2000), 0);
    }

    #[test]
    fn readings_within_the_band_do_not_move_the_price() {
        let s = settlement(150_000_000, true);
        let oracle = |t| SolUsdSource::Oracle { publish_time: t };
        // Fallback → oracle always applies, even at the same price.
        assert!(
            !s.observe(150_000_000, oracle(1)),
            "same price: no change in atomic"
        );
        assert!(matches!(s.view().source, SolUsdSource::Oracle { .. }));
        // +1%: inside the 2% band.
        assert!(!s.observe(151_500_000, oracle(2)));
        assert_eq!(s.atomic(), 3_600);
        assert_eq!(s.view().last_reading_sol_usd, "151.5");
        assert_eq!(s.view().source, oracle(2));
        assert_eq!(s.previous_within(Duration::from_secs(60)), None);
        // +10%: beyond it; the replaced price is remembered for a payment's timeout.
        assert!(s.observe(165_000_000, oracle(3)));
        assert_eq!(s.atomic(), 3_960);
        assert_eq!(s.previous_within(Duration::from_secs(60)), Some(3_600));
        assert_eq!(s.previous_within(Duration::ZERO), None);
        // Stale: back to the fallback, whatever the band says.
        assert!(s.observe(
            150_000_000,
            SolUsdSource::Fallback {
                reason: "stale".into()
            }
        ));
        assert_eq!(s.atomic(), 3_600);
    }
}
