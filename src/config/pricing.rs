//! `[pricing]`: markup and the fixed parts of every price.

use serde::Deserialize;

use super::ConfigError;

/// `[pricing]`: markup and fixed parts of every price, in atomic units (6-decimal USD).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PricingConfig {
    /// Margin over the provider's cost, in basis points (2000 = +20%).
    pub markup_bps: u32,
    /// Added once per payment: covers the on-chain settlement fee we sponsor.
    pub settlement_surcharge: u64,
    /// No payment is smaller than this.
    pub floor: u64,
}

impl Default for PricingConfig {
    fn default() -> Self {
        Self {
            markup_bps: 2000,
            settlement_surcharge: 600,
            floor: 1000,
        }
    }
}

impl PricingConfig {
    /// A markup beyond 100x is a typo, not a price (the other fields are plain amounts).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.markup_bps > 1_000_000 {
            return Err(ConfigError::invalid(
                "pricing.markup_bps",
                "must be at most 1000000 (100x)",
            ));
        }
        Ok(())
    }
}
