//! `[routing]`: how the standard JSON-RPC endpoint picks a provider among a cluster's pool, how
//! provider health is tracked (window, probe, circuit), and how far failover may go.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Cluster, ConfigError};

/// How a provider is chosen among the healthy ones that sell every call of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Lowest cost of this call from the price tables.
    Cheapest,
    /// Lowest recent latency (rolling window, decayed with idle time).
    Fastest,
    /// Highest recent success rate.
    MostReliable,
    /// Spread over healthy providers: power of two choices on requests in flight.
    LoadBalanced,
}

impl Strategy {
    /// Every strategy.
    pub const ALL: [Strategy; 4] = [
        Strategy::Cheapest,
        Strategy::Fastest,
        Strategy::MostReliable,
        Strategy::LoadBalanced,
    ];

    /// The config and header spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Cheapest => "cheapest",
            Strategy::Fastest => "fastest",
            Strategy::MostReliable => "most_reliable",
            Strategy::LoadBalanced => "load_balanced",
        }
    }

    /// Parses the config and header spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[routing.clusters.<cluster>]` table: overrides for that cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterRouting {
    /// The cluster's strategy (default: `[routing] strategy`).
    pub strategy: Option<Strategy>,
    /// What `X-Route-Strategy` may ask for on this cluster (default: `[routing] client_strategies`).
    pub client_strategies: Option<Vec<Strategy>>,
    /// The pool, by provider name (default: every enabled provider serving the cluster, and
    /// every provider registered at run time for it).
    pub providers: Option<Vec<String>>,
}

/// `[routing]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// The strategy of every cluster without its own. Default `most_reliable` (ties go to the
    /// provider listed first, so a healthy pool behaves like "the first enabled provider").
    pub strategy: Strategy,
    /// What a client may ask for with `X-Route-Strategy` (empty: the header is refused).
    pub client_strategies: Vec<Strategy>,
    /// Per-cluster overrides.
    pub clusters: BTreeMap<Cluster, ClusterRouting>,
    /// Providers tried for one request of the standard endpoint, first included. Default 3.
    pub max_attempts: u32,
    /// Time all attempts of one request may take together, in ms (each attempt is also
    /// bounded by `[upstream] timeout_ms`). Below `server.request_timeout_ms`. Default 15000.
    pub deadline_ms: u64,
    /// Calls (answers and probes) kept per provider for latency and success rate. Default 10.
    pub latency_window: usize,
    /// Active health probe period, in seconds; 0 = no active probe. A provider is probed when
    /// it had no call in the last period or its circuit is open. Default 30.
    pub health_check_interval_secs: u64,
    /// The probe's JSON-RPC method (cheap, no params). Default `getHealth`.
    pub probe_method: String,
    /// One probe's timeout, in ms. Default 2000.
    pub probe_timeout_ms: u64,
    /// Consecutive failures that open a provider's circuit (it is then not chosen). Default 3.
    pub failure_threshold: u32,
    /// How long an open circuit stays open before the provider is tried again (half-open: a
    /// success closes it, a failure opens it again), in seconds. Default 30.
    pub open_secs: u64,
    /// How often providers registered at run time (`POST /providers/register`, kept in the
    /// shared store) are re-read from the store, in seconds. Default 5.
    pub registry_refresh_secs: u64,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            strategy: Strategy::MostReliable,
            client_strategies: Strategy::ALL.to_vec(),
            clusters: BTreeMap::new(),
            max_attempts: 3,
            deadline_ms: 15_000,
            latency_window: 10,
            health_check_interval_secs: 30,
            probe_method: "getHealth".into(),
            probe_timeout_ms: 2_000,
            failure_threshold: 3,
            open_secs: 30,
            registry_refresh_secs: 5,
        }
    }
}

impl RoutingConfig {
    /// Checks the values alone; `request_timeout_ms` bounds `deadline_ms`.
    pub fn validate(&self, request_timeout_ms: u64) -> Result<(), ConfigError> {
        let fail = |field: &str, m: &str| Err(ConfigError::invalid(format!("routing.{field}"), m));
        if self.max_attempts == 0 || self.max_attempts > 10 {
            return fail("max_attempts", "must be in 1..=10");
        }
        if self.deadline_ms == 0 || self.deadline_ms >= request_timeout_ms {
            return fail(
                "deadline_ms",
                "must be positive and below server.request_timeout_ms",
            );
        }
        if self.latency_window == 0 || self.latency_window > 1000 {
            return fail("latency_window", "must be in 1..=1000");
        }
        if self.probe_method.is_empty()
            || !self
                .probe_method
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return fail("probe_method", "must be a JSON-RPC method name");
        }
        if self.probe_timeout_ms == 0 || self.probe_timeout_ms > 60_000 {
            return fail("probe_timeout_ms", "must be in 1..=60000");
        }
        if self.failure_threshold == 0 {
            return fail("failure_threshold", "must be positive");
        }
        if self.open_secs == 0 {
            return fail("open_secs", "must be positive");
        }
        if self.registry_refresh_secs == 0 {
            return fail("registry_refresh_secs", "must be positive");
        }
        Ok(())
    }

    /// Checks that each cluster pool names known providers.
    pub fn check_providers<'a>(
        &self,
        names: impl Iterator<Item = &'a str> + Clone,
    ) -> Result<(), ConfigError> {
        for (cluster, c) in &self.clusters {
            for name in c.providers.iter().flatten() {
                if !names.clone().any(|n| n == name) {
                    return Err(ConfigError::invalid(
                        format!("routing.clusters.{cluster}.providers"),
                        format!("no provider is named {name:?}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The strategy of `cluster`.
    pub fn strategy_of(&self, cluster: Cluster) -> Strategy {
        self.clusters
            .get(&cluster)
            .and_then(|c| c.strategy)
            .unwrap_or(self.strategy)
    }

    /// What `X-Route-Strategy` may ask for on `cluster`.
    pub fn client_strategies_of(&self, cluster: Cluster) -> &[Strategy] {
        self.clusters
            .get(&cluster)
            .and_then(|c| c.client_strategies.as_deref())
            .unwrap_or(&self.client_strategies)
    }

    /// The explicit pool of `cluster`, if configured.
    pub fn pool_of(&self, cluster: Cluster) -> Option<&[String]> {
        self.clusters
            .get(&cluster)
            .and_then(|c| c.providers.as_deref())
    }

    /// `open_secs` as a duration.
    pub fn open_for(&self) -> Duration {
        Duration::from_secs(self.open_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let c: RoutingConfig = toml::from_str(
            r#"
            strategy = "fastest"
            client_strategies = ["cheapest"]
            [clusters.devnet]
            strategy = "load_balanced"
            providers = ["a", "b"]
            "#,
        )
        .unwrap();
        c.validate(30_000).unwrap();
        assert_eq!(c.strategy_of(Cluster::Devnet), Strategy::LoadBalanced);
        assert_eq!(c.strategy_of(Cluster::Mainnet), Strategy::Fastest);
        assert_eq!(
            c.client_strategies_of(Cluster::Devnet),
            &[Strategy::Cheapest]
        );
        assert!(c.check_providers(["a", "b"].into_iter()).is_ok());
        assert!(c.check_providers(["a"].into_iter()).is_err());
        assert!(toml::from_str::<RoutingConfig>("strategy = \"random\"").is_err());
        let bad = RoutingConfig {
            deadline_ms: 30_000,
            ..RoutingConfig::default()
        };
        assert!(bad.validate(30_000).is_err());
        let bad = RoutingConfig {
            max_attempts: 0,
            ..RoutingConfig::default()
        };
        assert!(bad.validate(30_000).is_err());
    }
}
