//! The configured providers and their endpoints, looked up by name and cluster.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::{Endpoint, HealthSnapshot};
use crate::config::{Cluster, Config, ProviderConfig, Surface};

/// One provider: its config (method tables) and, when enabled, an endpoint per cluster.
#[derive(Debug)]
pub struct Provider {
    /// The provider's config; `api_key` is never read from here after start-up.
    pub config: ProviderConfig,
    /// Endpoints by cluster; empty when the provider is disabled.
    pub endpoints: BTreeMap<Cluster, Endpoint>,
}

impl Provider {
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
            },
            endpoints: BTreeMap::new(),
        }
    }

    /// Whether the provider serves `method` on `surface`.
    pub fn sells(&self, surface: Surface, method: &str) -> bool {
        self.config.methods(surface).contains_key(method)
    }
}

/// All providers, in routing order.
#[derive(Debug)]
pub struct Providers {
    list: Vec<Arc<Provider>>,
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
    /// Builds endpoints for every enabled provider.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let mut list = Vec::with_capacity(config.providers.len());
        for p in &config.providers {
            let mut endpoints = BTreeMap::new();
            if p.is_enabled() {
                for (cluster, base) in &p.clusters {
                    let ep = Endpoint::new(
                        &p.name,
                        *cluster,
                        base,
                        &p.key_placement,
                        p.api_key.as_ref(),
                    )?;
                    endpoints.insert(*cluster, ep);
                }
            }
            let mut config = p.clone();
            config.api_key = None;
            list.push(Arc::new(Provider { config, endpoints }));
        }
        Ok(Self { list })
    }

    /// The provider called `name`, enabled or not.
    pub fn get(&self, name: &str) -> Option<&Arc<Provider>> {
        self.list.iter().find(|p| p.name() == name)
    }

    /// The first enabled provider that serves `cluster` (the standard endpoint's choice).
    pub fn first_for(&self, cluster: Cluster) -> Option<(&Arc<Provider>, &Endpoint)> {
        self.list
            .iter()
            .find_map(|p| p.endpoints.get(&cluster).map(|ep| (p, ep)))
    }

    /// All providers, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Provider> {
        self.list.iter().map(Arc::as_ref)
    }

    /// The `/status` view.
    pub fn statuses(&self) -> Vec<ProviderStatus> {
        self.list
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
