//! `[facilitator_proxy]`: the high-availability facilitator proxy under `/facilitator/…`, in
//! front of the same facilitator set the paygate uses (the in-process one and
//! `payment.remote_facilitators`). Off by default.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ConfigError, FailoverPolicy};

/// Who may call the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProxyAccess {
    /// `Authorization: Bearer <token>`, the token from `token_env`.
    Token,
    /// Anyone (put it on a private network, or behind your own auth).
    Open,
}

/// `[facilitator_proxy]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FacilitatorProxyConfig {
    /// Serve `/facilitator/*`. Default false.
    pub enabled: bool,
    /// `token` (default) or `open`.
    pub access: ProxyAccess,
    /// Environment variable holding the bearer token. Default `FACILITATOR_PROXY_TOKEN`.
    pub token_env: String,
    /// A target's health (its `/supported`) is reused for this long, in ms. Default 5000.
    pub health_cache_ms: u64,
    /// One health check's timeout, in ms. Default 2000.
    pub health_timeout_ms: u64,
    /// Share of traffic per target name (`local` is the in-process one; others are
    /// `payment.remote_facilitators[].name`); unlisted targets weigh 1, 0 takes one out.
    pub weights: BTreeMap<String, u32>,
    /// Retries with backoff (3 rounds, 1 s, ×2, 10 s cap by default). `/settle` moves on only
    /// when nothing reached the target.
    pub retry: FailoverPolicy,
}

impl Default for FacilitatorProxyConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            access: ProxyAccess::Token,
            token_env: "FACILITATOR_PROXY_TOKEN".into(),
            health_cache_ms: 5_000,
            health_timeout_ms: 2_000,
            weights: BTreeMap::new(),
            retry: FailoverPolicy::default(),
        }
    }
}

impl FacilitatorProxyConfig {
    /// Checks the values alone.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail =
            |f: &str, m: &str| Err(ConfigError::invalid(format!("facilitator_proxy.{f}"), m));
        if self.health_timeout_ms == 0 || self.health_timeout_ms > 60_000 {
            return fail("health_timeout_ms", "must be in 1..=60000");
        }
        if self.retry.attempts == 0 || self.retry.budget_ms == 0 {
            return fail("retry", "attempts and budget_ms must be positive");
        }
        if self.weights.values().any(|w| *w > 1000) {
            return fail("weights", "a weight must be at most 1000");
        }
        Ok(())
    }
}
