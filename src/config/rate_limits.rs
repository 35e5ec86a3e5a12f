//! `[rate_limits]`: who may call how often. Every limit is GCRA: `burst` requests at once,
//! refilled at `burst` per `period_secs`. `burst = 0` turns that one limit off.

use std::collections::BTreeMap;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use super::ConfigError;

/// One GCRA limit as written in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSpec {
    /// Requests allowed at once, and per period; 0 = no limit.
    pub burst: u32,
    /// The period over which `burst` requests are refilled.
    pub period_secs: u64,
}

impl LimitSpec {
    const fn new(burst: u32, period_secs: u64) -> Self {
        Self { burst, period_secs }
    }

    /// The limit, unless it is turned off.
    pub fn active(&self) -> Option<(u32, Duration)> {
        (self.burst > 0).then(|| (self.burst, Duration::from_secs(self.period_secs)))
    }
}

/// `[rate_limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// `false` turns every limit off.
    pub enabled: bool,
    /// Proxies whose `X-Forwarded-For` is believed (CIDRs). Empty: the connecting address is
    /// the client, whatever the header says.
    pub trusted_proxies: Vec<IpNet>,
    /// IPv6 clients are keyed by this prefix (a single host usually owns a whole /64, so
    /// per-address keys would let it rotate through 2^64 buckets).
    pub ipv6_prefix_len: u8,
    /// Unpaid requests (402 challenges) per client IP, when payments are on.
    pub challenge_per_ip: LimitSpec,
    /// Requests per client IP when payments are off (the gateway is a free proxy then).
    pub calls_per_ip: LimitSpec,
    /// Paid calls per payer wallet (checked by the paygate in its reservation).
    pub calls_per_payer: LimitSpec,
    /// Upstream budget of a provider not listed in `providers`, in upstream calls (a batch
    /// element is one call).
    pub provider_default: LimitSpec,
    /// Upstream budget per provider name: set it from the provider plan, so the plan is never
    /// exceeded whatever the clients do.
    pub providers: BTreeMap<String, LimitSpec>,
    /// After a store error, limits are checked by the process-local limiter for this long
    /// before the shared store is tried again (so a hung Redis costs one timeout, not one per
    /// request).
    pub store_retry_ms: u64,
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            trusted_proxies: Vec::new(),
            ipv6_prefix_len: 64,
            challenge_per_ip: LimitSpec::new(120, 60),
            calls_per_ip: LimitSpec::new(600, 60),
            calls_per_payer: LimitSpec::new(600, 60),
            provider_default: LimitSpec::new(50, 1),
            providers: BTreeMap::new(),
            store_retry_ms: 1000,
        }
    }
}

impl RateLimitsConfig {
    /// Checks every limit.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: String, message: String| ConfigError::Invalid {
            field: format!("rate_limits.{field}"),
            message,
        };
        if self.ipv6_prefix_len == 0 || self.ipv6_prefix_len > 128 {
            return Err(invalid(
                "ipv6_prefix_len".into(),
                "must be between 1 and 128".into(),
            ));
        }
        let named = [
            ("challenge_per_ip", &self.challenge_per_ip),
            ("calls_per_ip", &self.calls_per_ip),
            ("calls_per_payer", &self.calls_per_payer),
            ("provider_default", &self.provider_default),
        ];
        let listed = self
            .providers
            .iter()
            .map(|(name, spec)| (format!("providers.{name}"), spec));
        for (field, spec) in named
            .into_iter()
            .map(|(f, s)| (f.to_string(), s))
            .chain(listed)
        {
            if spec.burst > 0 && spec.period_secs == 0 {
                return Err(invalid(
                    format!("{field}.period_secs"),
                    "must be positive (or set burst = 0 to turn the limit off)".into(),
                ));
            }
            if spec.period_secs > 86_400 * 366 {
                return Err(invalid(
                    format!("{field}.period_secs"),
                    "must be at most a year".into(),
                ));
            }
        }
        Ok(())
    }

    /// Checks that `providers` names configured providers only (a check across sections, so it
    /// takes the provider names; [`Self::validate`] checks the section alone).
    pub fn check_providers<'a>(
        &self,
        provider_names: impl Iterator<Item = &'a str> + Clone,
    ) -> Result<(), ConfigError> {
        match self
            .providers
            .keys()
            .find(|name| !provider_names.clone().any(|p| p == name.as_str()))
        {
            Some(unknown) => Err(ConfigError::invalid(
                format!("rate_limits.providers.{unknown}"),
                format!("{unknown:?} is not a configured provider"),
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> RateLimitsConfig {
        toml::from_str(toml).expect("parses")
    }

    #[test]
    fn defaults_are_on() {
        let c = RateLimitsConfig::default();
        assert!(c.enabled);
        assert_eq!(
            c.challenge_per_ip.active(),
            Some((120, Duration::from_secs(60)))
        );
        assert!(c.validate().is_ok());
        assert!(c.check_providers(["alchemy"].into_iter()).is_ok());
    }

    #[test]
    fn a_zero_burst_turns_a_limit_off_and_a_zero_period_is_refused() {
        let c = parse("calls_per_ip = { burst = 0, period_secs = 0 }");
        assert_eq!(c.calls_per_ip.active(), None);
        assert!(c.validate().is_ok());
        let c = parse("challenge_per_ip = { burst = 5, period_secs = 0 }");
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("rate_limits.challenge_per_ip.period_secs"),
            "{e}"
        );
    }

    #[test]
    fn provider_budgets_must_name_configured_providers() {
        let c = parse("providers.alchemy = { burst = 25, period_secs = 1 }");
        assert!(c.check_providers(["alchemy", "helius"].into_iter()).is_ok());
        let e = c
            .check_providers(["helius"].into_iter())
            .unwrap_err()
            .to_string();
        assert!(e.contains("rate_limits.providers.alchemy"), "{e}");
    }

    #[test]
    fn trusted_proxies_parse_as_cidrs() {
        let c = parse(r#"trusted_proxies = ["10.0.0.0/8", "::1/128"]"#);
        assert_eq!(c.trusted_proxies.len(), 2);
        assert!(toml::from_str::<RateLimitsConfig>(r#"trusted_proxies = ["nope"]"#).is_err());
    }
}
