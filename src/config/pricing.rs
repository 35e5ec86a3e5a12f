//! `[pricing]`: markup, floor, and what one on-chain settlement costs us.

use serde::{Deserialize, Deserializer};

use super::ConfigError;

/// The SOL/USD price feed the official Pyth sponsored feed account publishes on mainnet
/// (shard 0 of feed `ef0d8b6f…b56d`, a `PriceUpdateV2` account of the Pyth receiver program).
pub const PYTH_SOL_USD_ACCOUNT: &str = "7UVimffxr9ow1uXYxsr4LHAcV58mLzhmwaeKvJ1pjLiE";

/// `[pricing]`: markup and fixed parts of every price, in atomic units (6-decimal USD).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PricingConfig {
    /// Margin over the provider's cost, in basis points (2000 = +20%).
    pub markup_bps: u32,
    /// No payment is smaller than this.
    pub floor: u64,
    /// What one settlement costs the fee payer, added once per `exact` payment.
    pub settlement: SettlementConfig,
    /// Replaced by `[pricing.settlement]`: kept only to name the migration in the error.
    #[serde(rename = "settlement_surcharge")]
    pub legacy_surcharge: Option<u64>,
}

impl Default for PricingConfig {
    fn default() -> Self {
        Self {
            markup_bps: 2000,
            floor: 1000,
            settlement: SettlementConfig::default(),
            legacy_surcharge: None,
        }
    }
}

/// `[pricing.settlement]`: the settlement cost is computed, not guessed:
/// `(signatures × lamports_per_signature + the largest priority fee the facilitator's
/// compute-price cap allows) × SOL/USD × (1 + margin_bps)`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettlementConfig {
    /// Signatures a settlement pays for (the fee payer's and the client's).
    pub signatures: u64,
    /// The cluster's base fee per signature.
    pub lamports_per_signature: u64,
    /// SOL/USD when no oracle is configured or the oracle is stale, in micro-USD (from a
    /// decimal string such as `"150"` or `"151.25"`). `"0"` prices settlement at nothing: only
    /// for a cluster whose SOL is worthless (the local demo cluster, devnet).
    #[serde(deserialize_with = "usd_micros")]
    pub sol_usd: u64,
    /// Margin over the computed cost, in basis points: covers SOL moving between oracle reads.
    pub margin_bps: u32,
    /// A live SOL/USD price, read off the request path.
    pub oracle: Option<OracleConfig>,
}

impl Default for SettlementConfig {
    fn default() -> Self {
        Self {
            signatures: 2,
            lamports_per_signature: 5_000,
            sol_usd: 150_000_000,
            margin_bps: 2000,
            oracle: None,
        }
    }
}

/// `[pricing.settlement.oracle]`: a Pyth `PriceUpdateV2` account read through one of our own
/// mainnet providers every `refresh_secs`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OracleConfig {
    /// A `[[providers]]` name with a mainnet URL: the account is read through it.
    pub provider: String,
    /// The price account (default: the Pyth sponsored SOL/USD feed).
    #[serde(default = "default_oracle_account")]
    pub account: String,
    /// Seconds between reads.
    #[serde(default = "default_refresh_secs")]
    pub refresh_secs: u64,
    /// A price published longer ago than this is stale: the fallback `sol_usd` applies.
    #[serde(default = "default_max_age_secs")]
    pub max_age_secs: u64,
}

fn default_oracle_account() -> String {
    PYTH_SOL_USD_ACCOUNT.into()
}
fn default_refresh_secs() -> u64 {
    60
}
fn default_max_age_secs() -> u64 {
    300
}

/// A USD decimal string (`"150"`, `"151.25"`, `"$0.5"`) as micro-USD.
fn usd_micros<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let text = String::deserialize(d)?;
    parse_usd_micros(&text).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "{text:?} is not a USD amount with at most 6 decimals (e.g. \"150\" or \"151.25\")"
        ))
    })
}

/// `"151.25"` → `151_250_000`; `None` for anything else than digits with at most 6 decimals.
fn parse_usd_micros(text: &str) -> Option<u64> {
    let text = text.trim().trim_start_matches('$');
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !digits(int) || !digits(frac) || frac.len() > 6 {
        return None;
    }
    let int: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac: u64 = format!("{frac:0<6}").parse().ok()?;
    int.checked_mul(1_000_000)?.checked_add(frac)
}

impl PricingConfig {
    /// A markup beyond 100x is a typo, not a price; the old fixed surcharge is refused with
    /// the way out.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.legacy_surcharge.is_some() {
            return Err(ConfigError::invalid(
                "pricing.settlement_surcharge",
                "replaced by [pricing.settlement]: the settlement cost is computed from the \
                 signature fee, the facilitator's compute-price cap and SOL/USD (see \
                 gateway.example.toml); remove the line",
            ));
        }
        if self.markup_bps > 1_000_000 {
            return Err(ConfigError::invalid(
                "pricing.markup_bps",
                "must be at most 1000000 (100x)",
            ));
        }
        let s = &self.settlement;
        if s.margin_bps > 1_000_000 {
            return Err(ConfigError::invalid(
                "pricing.settlement.margin_bps",
                "must be at most 1000000 (100x)",
            ));
        }
        if s.signatures > 64 || s.lamports_per_signature > 1_000_000 {
            return Err(ConfigError::invalid(
                "pricing.settlement",
                "signatures must be at most 64 and lamports_per_signature at most 1000000",
            ));
        }
        if let Some(o) = &s.oracle {
            if o.account.parse::<solana_address::Address>().is_err() {
                return Err(ConfigError::invalid(
                    "pricing.settlement.oracle.account",
                    "must be a base58 account address",
                ));
            }
            if o.refresh_secs == 0 || o.max_age_secs == 0 {
                return Err(ConfigError::invalid(
                    "pricing.settlement.oracle",
                    "refresh_secs and max_age_secs must be at least 1",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usd_strings_become_micro_usd() {
        assert_eq!(parse_usd_micros("150"), Some(150_000_000));
        assert_eq!(parse_usd_micros("151.25"), Some(151_250_000));
        assert_eq!(parse_usd_micros("$0.000001"), Some(1));
        assert_eq!(parse_usd_micros("0"), Some(0));
        assert_eq!(parse_usd_micros(".5"), Some(500_000));
        for bad in ["", ".", "1.0000001", "-1", "1e3", "abc", "1.2.3"] {
            assert_eq!(parse_usd_micros(bad), None, "{bad:?}");
        }
    }
}
