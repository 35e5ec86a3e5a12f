//! The providers and their endpoints, looked up by name and cluster: the configured ones, plus
//! those registered at run time (`POST /providers/register`), swapped in as one snapshot so a
//! request always sees a consistent list.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::Serialize;

use super::{Endpoint, HealthPolicy, HealthSnapshot};
use crate::config::{Cluster, Config, ProviderConfig, Surface};

/// Where a provider comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The config file (never removed at run time).
    Config,
    /// Registered at run time; `registration` is the stored record, compared on refresh so an
    /// unchanged provider keeps its health history.
    Registered {
        /// The stored registration (JSON), as read from the shared store.
        #[serde(skip)]
        registration: String,
    },
}

/// One provider: its config (method tables) and, when enabled, an endpoint per cluster.
#[derive(Debug)]
pub struct Provider {
    /// The provider's config; `api_key` is never read from here after start-up.
    pub config: ProviderConfig,
    /// Endpoints by cluster; empty when the provider is disabled.
    pub endpoints: BTreeMap<Cluster, Endpoint>,
    /// Configured or registered.
    pub origin: Origin,
}

impl Provider {
    /// Builds the endpoints of an enabled provider (none when disabled) and drops the key
    /// from the kept config.
    pub fn build(p: &ProviderConfig, policy: HealthPolicy, origin: Origin) -> Result<Self, String> {
        let mut endpoints = BTreeMap::new();
        if p.is_enabled() {
            for (cluster, base) in &p.clusters {
                let ep = Endpoint::new(
                    &p.name,
                    *cluster,
                    base,
                    &p.key_placement,
                    p.api_key.as_ref(),
                )?
                .with_health_policy(policy);
                endpoints.insert(*cluster, ep);
            }
        }
        let mut config = p.clone();
        config.api_key = None;
        Ok(Self {
            config,
            endpoints,
            origin,
        })
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// A provider with no endpoints and no methods, named `name`: the upstream budget of a
    /// configured HTTP service (`[rate_limits] providers.<name>`), which is all the paygate
    /// asks of a priced request's provider.
    pub fn budget_only(name: &str) -> Self {
        Self {
            config: ProviderConfig {
                name: name.to_string(),
                enabled: Some(true),
                key_placement: crate::config::KeyPlacement::None,
                key_env: None,
                api_key: None,
                clusters: BTreeMap::new(),
                unit: None,
                verified_at: None,
                atomic_per_million_units: None,
                rpc: BTreeMap::new(),
                das: BTreeMap::new(),
                disabled_reason: None,
                weight: 1,
            },
            endpoints: BTreeMap::new(),
            origin: Origin::Config,
        }
    }

    /// Whether the provider serves `method` on `surface`.
    pub fn sells(&self, surface: Surface, method: &str) -> bool {
        self.config.methods(surface).contains_key(method)
    }
}

/// All providers, configured ones first in config order, then registered ones by name.
#[derive(Debug)]
pub struct Providers {
    list: RwLock<Arc<[Arc<Provider>]>>,
    policy: HealthPolicy,
}

/// What `/status` shows about a provider: no URL, no key.
#[derive(Debug, Serialize)]
pub struct ProviderStatus {
    /// Name.
    pub name: String,
    /// Serving traffic?
    pub enabled: bool,
    /// Why not, when disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Health per cluster.
    pub clusters: BTreeMap<&'static str, HealthSnapshot>,
    /// Methods sold, per surface.
    pub methods: BTreeMap<&'static str, usize>,
}

impl Providers {
    /// Builds endpoints for every enabled provider of the config.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let policy = HealthPolicy {
            window: config.routing.latency_window,
            failure_threshold: config.routing.failure_threshold,
            open_for: config.routing.open_for(),
            decay_half_life: std::time::Duration::from_secs(
                config.routing.health_check_interval_secs.max(1),
            ),
        };
        let list = config
            .providers
            .iter()
            .map(|p| Provider::build(p, policy, Origin::Config).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            list: RwLock::new(list.into()),
            policy,
        })
    }

    /// The health policy endpoints are built with.
    pub fn policy(&self) -> HealthPolicy {
        self.policy
    }

    /// The current list (cheap: one `Arc` clone under a read lock).
    pub fn snapshot(&self) -> Arc<[Arc<Provider>]> {
        self.list.read().clone()
    }

    /// The provider called `name`, enabled or not.
    pub fn get(&self, name: &str) -> Option<Arc<Provider>> {
        self.list.read().iter().find(|p| p.name() == name).cloned()
    }

    /// Replaces the registered providers with `registered` (name → stored registration and
    /// its built provider). A provider whose registration did not change keeps its `Arc`, and
    /// so its health history. Configured providers are never touched.
    pub fn set_registered(&self, registered: Vec<(String, Provider)>) {
        let mut list = self.list.write();
        let mut next: Vec<Arc<Provider>> = list
            .iter()
            .filter(|p| p.origin == Origin::Config)
            .cloned()
            .collect();
        for (registration, provider) in registered {
            if next.iter().any(|p| p.name() == provider.name()) {
                continue; // a configured name always wins
            }
            let kept = list.iter().find(|p| {
                matches!(&p.origin, Origin::Registered { registration: r } if *r == registration)
            });
            next.push(match kept {
                Some(kept) => kept.clone(),
                None => Arc::new(provider),
            });
        }
        *list = next.into();
    }

    /// The `/status` view.
    pub fn statuses(&self) -> Vec<ProviderStatus> {
        self.snapshot()
            .iter()
            .map(|p| ProviderStatus {
                name: p.config.name.clone(),
                enabled: p.config.is_enabled(),
                disabled_reason: p.config.disabled_reason.clone(),
                clusters: p
                    .endpoints
                    .iter()
                    .map(|(c, ep)| (c.as_str(), ep.health().snapshot()))
                    .collect(),
                methods: [("rpc", p.config.rpc.len()), ("das", p.config.das.len())].into(),
            })
            .collect()
    }
}
