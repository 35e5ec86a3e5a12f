//! `[siwx]`: how wallet sign-in challenges are issued and proofs checked.

use serde::Deserialize;

use super::ConfigError;
use crate::x402::network::{SOLANA_DEVNET, SOLANA_MAINNET};

/// Sign-in settings (every field has a default; the section may be omitted).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiwxConfig {
    /// The statement shown in the wallet.
    pub statement: String,
    /// Life of a challenge (and so of a proof): `expirationTime = issuedAt + this`.
    pub expiration_seconds: u64,
    /// Oldest `issuedAt` accepted (the REF's `maxAge`).
    pub max_age_seconds: u64,
    /// Tolerated clock difference for `issuedAt` and `notBefore` in the future and for age.
    pub clock_skew_seconds: u64,
    /// CAIP-2 Solana chain ids accepted (offered in `supportedChains`).
    pub chains: Vec<String>,
    /// `false` (default): one proof opens one request. `true`: one proof serves its wallet for
    /// the resources it names until it expires.
    pub session: bool,
    /// Requests per wallet at once (GCRA burst)...
    pub rate_limit_burst: u32,
    /// ...refilled over this many seconds.
    pub rate_limit_period_secs: u64,
    /// Environment variable with the nonce HMAC secret, shared by every instance behind one
    /// public origin. Unset: a random key per process (single instance only).
    pub secret_env: String,
}

impl Default for SiwxConfig {
    fn default() -> Self {
        Self {
            statement: "Sign in to use this API with your wallet".into(),
            expiration_seconds: 300,
            max_age_seconds: 300,
            clock_skew_seconds: 30,
            chains: vec![SOLANA_MAINNET.into(), SOLANA_DEVNET.into()],
            session: false,
            rate_limit_burst: 60,
            rate_limit_period_secs: 60,
            secret_env: "SIWX_SECRET".into(),
        }
    }
}

impl SiwxConfig {
    /// One-line problems, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |f: &str, m: &str| Err(ConfigError::invalid(format!("siwx.{f}"), m));
        if self.statement.chars().any(char::is_control) {
            return bad("statement", "must be one line");
        }
        if self.expiration_seconds == 0 || self.expiration_seconds > 3600 {
            return bad("expiration_seconds", "must be between 1 and 3600");
        }
        if self.max_age_seconds == 0 {
            return bad("max_age_seconds", "must be greater than 0");
        }
        if self.clock_skew_seconds > 300 {
            return bad("clock_skew_seconds", "must be at most 300");
        }
        if self.chains.is_empty() {
            return bad("chains", "at least one Solana chain id is required");
        }
        if let Some(c) = self.chains.iter().find(|c| {
            let reference = c.strip_prefix("solana:").unwrap_or("");
            reference.is_empty()
                || reference.len() > 32
                || bs58::decode(reference).into_vec().is_err()
        }) {
            return Err(ConfigError::invalid(
                "siwx.chains",
                format!("{c:?} is not a Solana CAIP-2 id (solana:<genesis hash prefix>)"),
            ));
        }
        if self.rate_limit_burst == 0 || self.rate_limit_period_secs == 0 {
            return bad(
                "rate_limit_burst",
                "rate limit burst and period must be greater than 0",
            );
        }
        Ok(())
    }
}
