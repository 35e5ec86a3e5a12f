//! Everything a request handler may need, built once from the config.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::audit::ChainAudit;
use crate::authgate::SiwxGate;
use crate::catalog::{Published, PublishedSlot, RouteTable};
use crate::config::Config;
use crate::credits::Credits;
use crate::facilitator::local::LocalFacilitator;
use crate::facilitator::Facilitator;
use crate::ledger::Ledger;
use crate::paygate::Paygate;
use crate::pricing::oracle::Oracle;
use crate::pricing::Pricing;
use crate::proxy::RpcRoutes;
use crate::ratelimit::RateLimits;
use crate::services::Services;
use crate::siwx::{NonceKey, PublicOrigin};
use crate::store::memory::MemoryStore;
use crate::store::redis::RedisStore;
use crate::store::Store;
use crate::upstream::{Providers, UpstreamClient};

/// The application: config plus every dependency built from it.
#[derive(Debug)]
pub struct App {
    /// The loaded configuration.
    pub config: Arc<Config>,
    /// Upstream providers and their endpoints.
    pub providers: Arc<Providers>,
    /// What the RPC routes need (providers, outbound client, limits, prices).
    pub rpc: Arc<RpcRoutes>,
    /// Providers registered at run time, shared through the store.
    pub(crate) registry: Arc<crate::routing::registry::Registry>,
    /// The shared outbound client.
    pub upstream: UpstreamClient,
    /// The in-process facilitator, when configured.
    pub facilitator: Option<Arc<LocalFacilitator>>,
    /// Payments on the RPC routes, when enabled.
    pub paygate: Option<Arc<Paygate>>,
    /// The payment ledger.
    pub ledger: Arc<Ledger>,
    /// The chain audit of the ledger (when payments are on; it runs by itself every
    /// `[ledger] audit_interval_secs` unless that is 0).
    pub audit: Option<Arc<ChainAudit>>,
    /// Prepaid credits (`[credits] enabled` with payments on).
    pub credits: Option<Arc<Credits>>,
    /// Shared state: Redis when `[redis]` has a URL, else the in-memory store.
    pub store: Arc<dyn Store>,
    /// Wallet sign-in for auth-only routes (put on a route with `authgate::require`).
    pub siwx: Arc<SiwxGate>,
    /// The configured HTTP services (`[[services]]`).
    pub(crate) services: Arc<Services>,
    /// The route table and the discovery documents generated from it.
    pub(crate) published: Arc<PublishedSlot>,
    /// The live prices (the settlement cost follows SOL/USD when an oracle is configured).
    pub pricing: Pricing,
    /// The facilitator proxy, when `[facilitator_proxy] enabled = true`.
    pub(crate) facilitator_proxy: Option<Arc<crate::facilitator::proxy::FacilitatorProxy>>,
    /// Rate limits (`[rate_limits]`); the paygate takes its payer/provider checks from here.
    pub limits: Arc<RateLimits>,
    /// Usage counters, flushed to `store` in the background.
    pub usage: Arc<crate::usage::Usage>,
    /// When the process started.
    pub started: Instant,
}

/// Shared handle given to handlers through axum's `State`.
pub type AppState = Arc<App>;

impl axum::extract::FromRef<AppState> for crate::catalog::Docs {
    fn from_ref(app: &AppState) -> Self {
        Self(app.published.load())
    }
}

impl axum::extract::FromRef<AppState> for crate::usage::admin::UsageReport {
    fn from_ref(app: &AppState) -> Self {
        Self {
            usage: app.usage.clone(),
            store: app.store.clone(),
        }
    }
}

/// Why the application could not be built from a valid config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The provider client's TLS setup failed.
    #[error("upstream client: {0}")]
    Tls(#[from] rustls::Error),
    /// A provider endpoint could not be built.
    #[error("providers: {0}")]
    Provider(String),
    /// The facilitator could not be built (keys, networks).
    #[error("facilitator: {0}")]
    Facilitator(String),
    /// Payments are enabled but cannot work as configured.
    #[error("payment: {0}")]
    Payment(String),
    /// The Redis URL was refused by the client.
    #[error("redis: {0}")]
    Redis(String),
    /// A configured service could not be built.
    #[error("services: {0}")]
    Services(String),
    /// The ledger could not be opened or migrated.
    #[error("ledger: {0}")]
    Ledger(#[from] crate::ledger::LedgerError),
}

/// The parts of the application that are built from the config alone, connecting nothing:
/// everything that can refuse a valid-looking config (fee-payer keys, facilitator headers, the
/// Redis URL, provider endpoints, the services' clients) is here, so `check-config` runs it too.
struct Parts {
    upstream: UpstreamClient,
    providers: Arc<Providers>,
    store: Arc<dyn Store>,
    facilitator: Option<Arc<LocalFacilitator>>,
    /// What the paygate talks to: the in-process facilitator and the remote ones, with failover.
    facilitators: Option<Arc<dyn Facilitator>>,
    services: Arc<Services>,
    facilitator_proxy: Option<Arc<crate::facilitator::proxy::FacilitatorProxy>>,
}

impl Parts {
    fn assemble(config: &Config) -> Result<Self, BuildError> {
        let upstream = UpstreamClient::new(&config.upstream)?;
        let providers = Arc::new(Providers::from_config(config).map_err(BuildError::Provider)?);
        let store: Arc<dyn Store> = match &config.redis {
            Some(redis) if redis.url.is_some() => {
                let url = redis.url.as_ref().map(|u| u.expose()).unwrap_or_default();
                Arc::new(
                    RedisStore::new(url, redis.key_prefix(), redis.command_timeout())
                        .map_err(|e| BuildError::Redis(e.to_string()))?,
                )
            }
            _ => Arc::new(MemoryStore::default()),
        };
        let facilitator = match &config.facilitator {
            Some(f) => Some(Arc::new(
                LocalFacilitator::from_config(f).map_err(|e| BuildError::Facilitator(e.0))?,
            )),
            None => None,
        };
        let facilitators = if config.payment.enabled {
            crate::facilitator::from_config(
                facilitator.clone().map(|f| f as Arc<dyn Facilitator>),
                &config.payment.remote_facilitators,
                &config.payment.failover,
                &crate::config::ProcessEnv,
            )
            .map_err(BuildError::Payment)?
        } else {
            None
        };
        let services = Arc::new(Services::from_config(config).map_err(BuildError::Services)?);
        // The same members as the paygate's (the in-process facilitator is the same instance).
        let facilitator_proxy = if config.facilitator_proxy.enabled {
            let members = crate::facilitator::members(
                facilitator.clone().map(|f| f as Arc<dyn Facilitator>),
                &config.payment.remote_facilitators,
                &crate::config::ProcessEnv,
            )
            .map_err(BuildError::Facilitator)?;
            Some(Arc::new(crate::facilitator::proxy::FacilitatorProxy::new(
                members,
                &config.facilitator_proxy,
            )))
        } else {
            None
        };
        Ok(Self {
            upstream,
            providers,
            store,
            facilitator,
            facilitators,
            services,
            facilitator_proxy,
        })
    }
}

impl App {
    /// Everything [`App::build`] would refuse before connecting anywhere (a missing or bad
    /// fee-payer key, a facilitator header variable, the Redis URL...), without connecting or
    /// starting anything: what `check-config` runs after loading the config.
    pub fn preflight(config: &Config) -> Result<(), BuildError> {
        Parts::assemble(config).map(drop)
    }

    /// Builds every dependency. Connects nothing on the request path's behalf, but fetches the
    /// facilitators' `/supported` once when payments are on and starts the background tasks
    /// (usage flusher, `/supported` refresher, reconciler). Readiness is reported by `/readyz`.
    pub async fn build(config: Config) -> Result<AppState, BuildError> {
        let Parts {
            upstream,
            providers,
            store,
            facilitator,
            facilitators,
            services,
            facilitator_proxy,
        } = Parts::assemble(&config)?;
        // Before anything can emit a metric.
        crate::observability::prometheus::install();
        // Every payment is recorded: the ledger is opened (and migrated) before anything sells.
        // Opened with payments off too, so the operator's view of past payments stays served.
        let ledger = Ledger::open(&config.ledger).await?;
        let limits = Arc::new(RateLimits::from_config(&config.rate_limits));
        // Credits are sold (top-ups) on the first accepted network, one the paygate takes.
        let credits = match (&config.credits.enabled, config.payment.accepts.first()) {
            (true, Some(accept)) => {
                let network = crate::x402::network::known(&accept.network).ok_or_else(|| {
                    BuildError::Payment(format!(
                        "credits are sold on a Solana network; {} is not one",
                        accept.network
                    ))
                })?;
                Some(Arc::new(Credits::new(
                    &config.credits,
                    config.credits_secret.as_ref().map(|s| s.expose()),
                    ledger.clone(),
                    store.clone(),
                    network,
                    &config.server.public_base_url,
                )))
            }
            _ => None,
        };
        let paygate = if config.payment.enabled {
            let facilitator = facilitators.ok_or_else(|| BuildError::Payment("payment is enabled but no facilitator is configured ([facilitator] or payment.remote_facilitators)".into()))?;
            let ledger = ledger.clone();
            let gate = Paygate::build(
                &config.payment,
                facilitator,
                store.clone(),
                ledger,
                credits.clone(),
                limits.clone(),
            )
            .await
            .map_err(BuildError::Payment)?;
            for provider in providers.snapshot().iter() {
                for cluster in provider.endpoints.keys() {
                    if !gate.sells(cluster.caip2()) {
                        tracing::warn!(provider = provider.name(), %cluster,
                            "not sold: no [[payment.accepts]] entry on {}; its paid routes answer 404",
                            cluster.caip2());
                    }
                }
            }
            for service in services.iter() {
                let paid = service.routes.iter().any(|r| r.amount.is_some());
                if paid && !gate.sells(service.cluster.caip2()) {
                    tracing::warn!(service = %service.config.id, cluster = %service.cluster,
                        "not sold: no [[payment.accepts]] entry on {}; its paid routes answer 404",
                        service.cluster.caip2());
                }
            }
            Some(gate)
        } else {
            None
        };
        let audit = if config.payment.enabled {
            let audit = Arc::new(
                ChainAudit::from_config(&config, ledger.clone(), &providers)
                    .map_err(BuildError::Payment)?,
            );
            if config.ledger.audit_interval_secs > 0 {
                crate::audit::spawn(&audit);
            }
            Some(audit)
        } else {
            None
        };
        if let (Some(facilitator), Some(local)) = (&facilitator, &config.facilitator) {
            if local.balance_poll_secs > 0 {
                facilitator.spawn_balance_poller(Duration::from_secs(local.balance_poll_secs));
            }
        }
        let nonce_key = match &config.siwx_secret {
            Some(secret) => NonceKey::from_secret(secret.expose()),
            None => {
                if config.redis.as_ref().is_some_and(|r| r.url.is_some()) {
                    tracing::warn!(
                        "{} is not set: sign-in nonces are valid only on the instance that issued them",
                        config.siwx.secret_env
                    );
                }
                NonceKey::random()
            }
        };
        let siwx = Arc::new(SiwxGate::new(
            &config.siwx,
            PublicOrigin::new(&config.server.public_base_url),
            nonce_key,
            store.clone(),
        ));
        let usage = Arc::new(crate::usage::Usage::new(&config.usage));
        crate::usage::Usage::spawn_flusher(&usage, &store);
        let registry = Arc::new(crate::routing::registry::Registry::new(
            providers.clone(),
            store.clone(),
        ));
        registry.spawn_refresher(std::time::Duration::from_secs(
            config.routing.registry_refresh_secs,
        ));
        crate::routing::probe::spawn(&providers, upstream.clone(), &config.routing);
        let pricing = Pricing::new(&config);
        let rpc = Arc::new(RpcRoutes::new(
            &config,
            registry.clone(),
            upstream.clone(),
            pricing.clone(),
        ));
        let config = Arc::new(config);
        let published = Arc::new(PublishedSlot::new(Published::new(RouteTable::build(
            &config,
            &services,
            &pricing.tariff(),
        ))));
        if let Some(oracle) = &config.pricing.settlement.oracle {
            // The documents carry prices: re-rendered when the settlement cost moves.
            let rerender = {
                let (config, services, pricing, published) = (
                    config.clone(),
                    services.clone(),
                    pricing.clone(),
                    published.clone(),
                );
                move || {
                    let table = RouteTable::build(&config, &services, &pricing.tariff());
                    published.store(Published::new(table));
                }
            };
            Oracle::new(
                oracle.clone(),
                providers.clone(),
                upstream.clone(),
                pricing.settlement().clone(),
                Box::new(rerender),
            )
            .spawn();
        }
        Ok(Arc::new(App {
            config,
            providers,
            rpc,
            registry,
            upstream,
            facilitator,
            paygate,
            ledger,
            audit,
            credits,
            store,
            siwx,
            services,
            published,
            pricing,
            facilitator_proxy,
            limits,
            usage,
            started: Instant::now(),
        }))
    }
}
