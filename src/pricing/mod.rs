//! Prices: a pure function of the provider's cost table, the calls in a request and the
//! tariff in force (markup, floor, and what one settlement costs now).
//!
//! All arithmetic is integer (u128 intermediates), every call is rounded up to a whole atomic
//! unit, a batch pays the sum of its calls plus one settlement, and nothing is ever cheaper
//! than the floor. The same function prices the 402 challenge and re-prices the paid request,
//! so a quote for a cheap body can never be spent on an expensive one. The settlement cost is
//! computed in [`settlement`] from the chain's fees and SOL/USD, kept fresh by [`oracle`].

pub mod oracle;
pub mod settlement;

use std::sync::Arc;

use crate::config::{Config, PricingConfig, ProviderConfig};
use crate::jsonrpc::Call;

pub use settlement::{Settlement, SettlementView, SolUsdSource};

/// The prices in force at one instant: what [`quote`] needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tariff {
    /// Margin over the provider's cost, basis points.
    pub markup_bps: u32,
    /// No payment is smaller than this.
    pub floor: u64,
    /// Added once per `exact` payment: what its settlement costs us.
    pub settlement: u64,
}

impl Tariff {
    /// `[pricing]` with the settlement priced at `settlement` atomic units.
    pub fn new(config: &PricingConfig, settlement: u64) -> Self {
        Self {
            markup_bps: config.markup_bps,
            floor: config.floor,
            settlement,
        }
    }
}

/// The live prices: `[pricing]` and the published settlement cost (shared with the oracle).
#[derive(Debug, Clone)]
pub struct Pricing {
    config: PricingConfig,
    settlement: Arc<Settlement>,
    /// How long a replaced price is still taken from a client that signed it: the time a
    /// client has to pay a 402 (`[payment] max_timeout_seconds`).
    grace: std::time::Duration,
}

impl Pricing {
    /// From the config, with the settlement priced at the configured SOL/USD.
    pub fn new(config: &Config) -> Self {
        Self {
            config: config.pricing.clone(),
            settlement: Arc::new(Settlement::new(config)),
            grace: std::time::Duration::from_secs(config.payment.max_timeout_seconds),
        }
    }

    /// The tariff in force now (one atomic load).
    pub fn tariff(&self) -> Tariff {
        Tariff::new(&self.config, self.settlement.atomic())
    }

    /// The tariff the last price move replaced, while a client may still be paying a 402 it
    /// was given under it (see [`Self::signed_under`]).
    pub fn previous_tariff(&self) -> Option<Tariff> {
        self.settlement
            .previous_within(self.grace)
            .map(|settlement| Tariff::new(&self.config, settlement))
    }

    /// Prices a request with `price` under the tariff in force, unless the client signed a
    /// payment of exactly the price the previous tariff gives and that tariff was replaced
    /// less than a payment timeout ago: then under that one. A client signs the price of the
    /// 402 it was given; a settlement-cost move while it signs must not refuse its payment.
    /// (Taking the old price for that window stays above cost: moves are far smaller than the
    /// margin.)
    pub fn signed_under<T>(
        &self,
        signed: impl FnOnce() -> Option<u64>,
        price: impl Fn(&Tariff) -> (T, Option<u64>),
    ) -> T {
        let (current, amount) = price(&self.tariff());
        let Some(previous) = self.previous_tariff() else {
            return current;
        };
        match signed() {
            Some(signed) if Some(signed) != amount => {
                let (then, then_amount) = price(&previous);
                if then_amount == Some(signed) {
                    then
                } else {
                    current
                }
            }
            _ => current,
        }
    }

    /// The settlement cost and its inputs.
    pub fn settlement(&self) -> &Arc<Settlement> {
        &self.settlement
    }

    /// `/status`'s view of the prices.
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "markupBps": self.config.markup_bps,
            "floor": self.config.floor,
            "settlement": self.settlement.view(),
        })
    }
}

/// A computed price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// What the client pays, in atomic units.
    pub amount: u64,
    /// Calls priced.
    pub calls: usize,
    /// Provider units consumed.
    pub units: u64,
    /// The price in prepaid credits (1 credit = 1 atomic unit): the provider's cost with the
    /// markup, summed over the calls, without the settlement cost or the floor (the
    /// top-up that bought the credits paid for its settlement).
    pub credits: u64,
}

/// Why a request cannot be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// The provider has no `atomic_per_million_units`.
    #[error("provider {0:?} has no price (atomic_per_million_units)")]
    Unpriced(String),
    /// A call's method is not in the provider's tables (cannot happen after parsing).
    #[error("method {0:?} has no cost in provider {1:?}")]
    UnknownMethod(String, String),
    /// A price beyond u64 (absurd config).
    #[error("price overflows")]
    Overflow,
}

/// The price of one call of `units` provider units, rounded up to a whole atomic unit.
pub fn call_price(units: u64, atomic_per_million: u64, markup_bps: u32) -> Result<u64, PriceError> {
    let numerator = units as u128 * atomic_per_million as u128 * (10_000 + markup_bps as u128);
    let denominator = 1_000_000u128 * 10_000;
    u64::try_from(numerator.div_ceil(denominator)).map_err(|_| PriceError::Overflow)
}

/// Prices `calls` served by `provider` under `pricing`. `None` when there is nothing to pay
/// for (no call).
pub fn quote<'a>(
    pricing: &Tariff,
    provider: &ProviderConfig,
    calls: impl IntoIterator<Item = &'a Call>,
) -> Result<Option<Quote>, PriceError> {
    let rate = provider
        .atomic_per_million_units
        .ok_or_else(|| PriceError::Unpriced(provider.name.clone()))?;
    let (mut sum, mut count, mut units_total) = (0u64, 0usize, 0u64);
    for call in calls {
        let surface = provider
            .surface_of(&call.method)
            .ok_or_else(|| PriceError::UnknownMethod(call.method.clone(), provider.name.clone()))?;
        let units = provider.methods(surface)[&call.method];
        sum = sum
            .checked_add(call_price(units, rate, pricing.markup_bps)?)
            .ok_or(PriceError::Overflow)?;
        units_total = units_total.saturating_add(units);
        count += 1;
    }
    if count == 0 {
        return Ok(None);
    }
    let amount = sum
        .checked_add(pricing.settlement)
        .ok_or(PriceError::Overflow)?
        .max(pricing.floor);
    Ok(Some(Quote {
        amount,
        calls: count,
        units: units_total,
        credits: sum,
    }))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::config::{Config, EMBEDDED_DEFAULT};

    fn provider(name: &str) -> ProviderConfig {
        let config =
            Config::from_toml(EMBEDDED_DEFAULT, &std::collections::HashMap::new()).unwrap();
        config
            .providers
            .into_iter()
            .find(|p| p.name == name)
            .unwrap()
    }

    fn call(method: &str) -> Call {
        Call {
            id: Some(1.into()),
            method: method.into(),
            params: None,
        }
    }

    /// The old fixed surcharge (600), to keep the worked examples readable.
    fn tariff() -> Tariff {
        Tariff::new(&PricingConfig::default(), 600)
    }

    #[test]
    fn worked_examples_from_the_price_tables() {
        let pricing = tariff();
        // Alchemy getBalance: 10 CU × $0.45/1M = 4.5 atomic, +20% = 5.4 → 6; + 600 = 606.
        assert_eq!(call_price(10, 450_000, 2000), Ok(6));
        let q = quote(&pricing, &provider("alchemy"), [&call("getBalance")])
            .unwrap()
            .unwrap();
        assert_eq!(q.amount, 1000, "606 is under the floor");
        // Helius getAssetsByOwner: 10 credits × $5/1M = 50, +20% = 60; batch of 10 = 600 + 600.
        let batch: Vec<Call> = (0..10).map(|_| call("getAssetsByOwner")).collect();
        let q = quote(&pricing, &provider("helius"), &batch)
            .unwrap()
            .unwrap();
        assert_eq!((q.amount, q.calls, q.units), (1200, 10, 100));
        // getTransactionsForAddress: 100 credits = 500, +20% = 600, + 600 surcharge.
        let q = quote(
            &pricing,
            &provider("helius"),
            [&call("getTransactionsForAddress")],
        )
        .unwrap()
        .unwrap();
        assert_eq!(q.amount, 1200);
        assert_eq!(quote(&pricing, &provider("helius"), []), Ok(None));
        assert!(matches!(
            quote(&pricing, &provider("helius"), [&call("getBlock")]),
            Err(PriceError::UnknownMethod(..))
        ));
    }

    proptest! {
        #[test]
        fn rounding_is_always_up_and_never_below_cost(units in 0u64..1_000_000, rate in 0u64..100_000_000, markup in 0u32..50_000) {
            let price = call_price(units, rate, markup).unwrap() as u128;
            let exact_times_denominator = units as u128 * rate as u128 * (10_000 + markup as u128);
            let denominator = 1_000_000u128 * 10_000;
            prop_assert!(price * denominator >= exact_times_denominator);
            prop_assert!((price.saturating_sub(1)) * denominator < exact_times_denominator || price == 0);
        }

        #[test]
        fn a_batch_costs_the_sum_of_its_calls(methods in proptest::collection::vec(0usize..4, 1..20)) {
            let names = ["getBalance", "getTransaction", "getProgramAccounts", "getAsset"];
            let pricing = Tariff { floor: 0, ..tariff() };
            let p = provider("alchemy");
            let calls: Vec<Call> = methods.iter().map(|&i| call(names[i])).collect();
            let batch = quote(&pricing, &p, &calls).unwrap().unwrap().amount;
            let singles: u64 = calls
                .iter()
                .map(|c| quote(&pricing, &p, [c]).unwrap().unwrap().amount - pricing.settlement)
                .sum();
            prop_assert_eq!(batch, singles + pricing.settlement);
        }
    }
}
