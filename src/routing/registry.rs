//! Providers registered at run time, kept in the shared store (the durable map `providers`) so
//! every instance serves them and a restart keeps them (with Redis; the in-memory store keeps
//! them for the process only). Each instance re-reads the map every `registry_refresh_secs`,
//! whenever `/providers` is read, and (at most once a second) when a per-method route names a
//! provider it does not know, so a registration is served by another instance's next request.
//!
//! A registration names its key by environment variable (`key_env`), read on each instance:
//! keys are never written to the store.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::config::{
    Cluster, ConfigError, EnvSource, KeyPlacement, ProcessEnv, ProviderConfig, Secret,
};
use crate::store::{Store, StoreError};
use crate::upstream::{Origin, Provider, Providers};

/// The store map holding registrations, by provider name.
const MAP: &str = "providers";

/// `POST /providers/register`: a provider added at run time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Registration {
    /// Name used in routes and logs (lowercase letters, digits, `-`, `_`).
    pub name: String,
    /// Base URL per cluster, without the key.
    pub clusters: BTreeMap<Cluster, Url>,
    /// Where the key goes (default: no key).
    #[serde(default = "no_key")]
    pub key_placement: KeyPlacement,
    /// Environment variable holding the key, read on every instance.
    #[serde(default)]
    pub key_env: Option<String>,
    /// Copy the method tables and price of this provider (configured or registered).
    #[serde(default)]
    pub same_as: Option<String>,
    /// Standard RPC methods sold, with their cost in provider units.
    #[serde(default)]
    pub rpc: BTreeMap<String, u64>,
    /// DAS methods sold.
    #[serde(default)]
    pub das: BTreeMap<String, u64>,
    /// Price per million provider units, in atomic units.
    #[serde(default)]
    pub atomic_per_million_units: Option<u64>,
    /// `load_balanced` weight (1..=100).
    #[serde(default = "one")]
    pub weight: u32,
}

fn no_key() -> KeyPlacement {
    KeyPlacement::None
}

fn one() -> u32 {
    1
}

/// Why a registration was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RegistryError {
    /// Not a valid registration.
    #[error("{0}")]
    Invalid(String),
    /// The name belongs to a provider of the config file.
    #[error("provider {0:?} is configured in the config file; it cannot be replaced or removed at run time")]
    Configured(String),
    /// The store did not answer.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl Registration {
    /// The provider config this registration stands for, as the config loader would resolve
    /// it (key from the environment, disabled with a reason when the key is missing).
    fn resolve(
        &self,
        known: &[Arc<Provider>],
        env: &dyn EnvSource,
    ) -> Result<ProviderConfig, String> {
        let (mut rpc, mut das, mut price) = (
            self.rpc.clone(),
            self.das.clone(),
            self.atomic_per_million_units,
        );
        if let Some(base) = &self.same_as {
            let base = known
                .iter()
                .find(|p| p.name() == base)
                .ok_or_else(|| format!("same_as: no provider is named {base:?}"))?;
            if rpc.is_empty() && das.is_empty() {
                rpc = base.config.rpc.clone();
                das = base.config.das.clone();
            }
            price = price.or(base.config.atomic_per_million_units);
        }
        let api_key = self
            .key_env
            .as_deref()
            .and_then(|v| env.var(v))
            .map(Secret::new);
        let needs_key = self.key_placement != KeyPlacement::None;
        let disabled_reason = (needs_key && api_key.is_none()).then(|| {
            format!(
                "no API key: set {}",
                self.key_env.as_deref().unwrap_or("key_env")
            )
        });
        let config = ProviderConfig {
            name: self.name.clone(),
            enabled: Some(disabled_reason.is_none()),
            key_placement: self.key_placement.clone(),
            key_env: self.key_env.clone(),
            api_key,
            clusters: self.clusters.clone(),
            unit: None,
            verified_at: None,
            atomic_per_million_units: price,
            rpc,
            das,
            weight: self.weight,
            disabled_reason,
        };
        config.validate().map_err(|e| match e {
            ConfigError::Invalid { field, message } => format!("{field}: {message}"),
            other => other.to_string(),
        })?;
        if config.rpc.is_empty() && config.das.is_empty() {
            return Err("no method is sold: give rpc/das tables or same_as".into());
        }
        Ok(config)
    }
}

/// The registered providers of this instance and their store.
#[derive(Debug)]
pub(crate) struct Registry {
    providers: Arc<Providers>,
    store: Arc<dyn Store>,
    /// Unix ms of the last refresh on a miss (misses are client-triggered: bounded to 1/s).
    last_miss_refresh: AtomicU64,
}

impl Registry {
    /// The registry over `providers`, stored in `store`.
    pub(crate) fn new(providers: Arc<Providers>, store: Arc<dyn Store>) -> Self {
        Self {
            providers,
            store,
            last_miss_refresh: AtomicU64::new(0),
        }
    }

    /// The providers.
    pub(crate) fn providers(&self) -> &Arc<Providers> {
        &self.providers
    }

    /// Validates `body`, stores it, and serves it on this instance at once.
    pub(crate) async fn register(&self, body: &Value) -> Result<Arc<Provider>, RegistryError> {
        let registration = Registration::deserialize(body)
            .map_err(|e| RegistryError::Invalid(format!("not a registration: {e}")))?;
        if self
            .providers
            .get(&registration.name)
            .is_some_and(|p| p.origin == Origin::Config)
        {
            return Err(RegistryError::Configured(registration.name));
        }
        // Built once here so a bad one is refused before it is stored.
        registration
            .resolve(&self.providers.snapshot(), &ProcessEnv)
            .map_err(RegistryError::Invalid)?;
        self.store
            .map_put(MAP, &registration.name, &body.to_string())
            .await?;
        self.refresh().await?;
        self.providers
            .get(&registration.name)
            .ok_or_else(|| RegistryError::Invalid("registration was not applied".into()))
    }

    /// Removes a registered provider; `false` when there was none of that name.
    pub(crate) async fn remove(&self, name: &str) -> Result<bool, RegistryError> {
        if self
            .providers
            .get(name)
            .is_some_and(|p| p.origin == Origin::Config)
        {
            return Err(RegistryError::Configured(name.to_owned()));
        }
        let removed = self.store.map_remove(MAP, name).await?;
        self.refresh().await?;
        Ok(removed)
    }

    /// Re-reads every registration from the store and applies them. A stored registration
    /// that no longer resolves (e.g. its `same_as` is gone) is skipped with a warning.
    pub(crate) async fn refresh(&self) -> Result<(), StoreError> {
        let rows = self.store.map_all(MAP).await?;
        let known = self.providers.snapshot();
        let policy = self.providers.policy();
        let mut registered = Vec::with_capacity(rows.len());
        for (name, json) in rows {
            let built = serde_json::from_str::<Registration>(&json)
                .map_err(|e| e.to_string())
                .and_then(|r| r.resolve(&known, &ProcessEnv))
                .and_then(|config| {
                    Provider::build(
                        &config,
                        policy,
                        Origin::Registered {
                            registration: json.clone(),
                        },
                    )
                });
            match built {
                Ok(provider) => registered.push((json, provider)),
                Err(e) => {
                    tracing::warn!(provider = %name, error = %e, "stored provider registration skipped")
                }
            }
        }
        self.providers.set_registered(registered);
        Ok(())
    }

    /// [`Registry::refresh`] for a request that named an unknown provider, at most once a
    /// second per instance (clients choose the names: they must not drive store traffic).
    pub(crate) async fn refresh_on_miss(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let last = self.last_miss_refresh.load(Ordering::Relaxed);
        if now.saturating_sub(last) < 1000
            || self
                .last_miss_refresh
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "provider registry not refreshed");
        }
    }

    /// Loads the registrations now, then every `period`, until the registry is dropped.
    pub(crate) fn spawn_refresher(self: &Arc<Self>, period: Duration) {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(registry) = weak.upgrade() else {
                    return;
                };
                if let Err(e) = registry.refresh().await {
                    tracing::warn!(error = %e, "provider registry not refreshed");
                }
            }
        });
    }
}
