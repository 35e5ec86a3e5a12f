//! `[credits]`: prepaid credits (packs bought with one x402 payment, spent per call at the
//! provider's cost with a wallet session instead of a payment).

use serde::Deserialize;

use super::ConfigError;

/// `[credits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CreditsConfig {
    /// Serve `/v1/credits/*` and accept `Authorization: Bearer` sessions on paid routes.
    pub enabled: bool,
    /// What a top-up buys.
    pub packs: Vec<PackConfig>,
    /// A session token's life (at most one hour).
    pub session_ttl_secs: u64,
    /// The variable holding the key that signs session tokens (shared by every instance;
    /// random per process when unset: tokens then work only on the instance that issued them).
    pub secret_env: String,
}

/// One `[[credits.packs]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PackConfig {
    /// Its name in `POST /v1/credits/topup {"pack": …}` (lowercase letters, digits, `-`, `_`).
    pub name: String,
    /// Its price, atomic units of the accepted asset.
    pub price: u64,
    /// Credits granted once the payment settles (1 credit = 1 atomic unit of spend).
    pub credits: u64,
}

/// The official client refuses any single payment over $1 unless its user opts in.
const MAX_DEFAULT_PACK_PRICE: u64 = 1_000_000;

impl Default for CreditsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            packs: vec![
                PackConfig {
                    name: "small".into(),
                    price: 100_000,
                    credits: 100_000,
                },
                PackConfig {
                    name: "standard".into(),
                    price: MAX_DEFAULT_PACK_PRICE,
                    credits: MAX_DEFAULT_PACK_PRICE,
                },
            ],
            session_ttl_secs: 3600,
            secret_env: "CREDITS_SECRET".into(),
        }
    }
}

impl CreditsConfig {
    /// The pack called `name`.
    pub fn pack(&self, name: &str) -> Option<&PackConfig> {
        self.packs.iter().find(|p| p.name == name)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: String, message: &str| ConfigError::Invalid {
            field,
            message: message.into(),
        };
        if !(1..=3600).contains(&self.session_ttl_secs) {
            return Err(invalid(
                "credits.session_ttl_secs".into(),
                "must be between 1 and 3600 (a session lasts at most one hour)",
            ));
        }
        if self.enabled && self.packs.is_empty() {
            return Err(invalid(
                "credits.packs".into(),
                "at least one pack is needed",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, pack) in self.packs.iter().enumerate() {
            let field = |f: &str| format!("credits.packs[{i}].{f}");
            if pack.name.is_empty()
                || pack.name.len() > 32
                || !pack
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                return Err(invalid(field("name"), "1-32 of [a-z0-9_-]"));
            }
            if !seen.insert(pack.name.as_str()) {
                return Err(invalid(field("name"), "duplicate pack"));
            }
            if pack.price == 0 || pack.credits == 0 {
                return Err(invalid(
                    field("price"),
                    "price and credits must be positive",
                ));
            }
        }
        Ok(())
    }
}
