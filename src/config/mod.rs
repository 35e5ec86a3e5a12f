//! Configuration: one TOML file (or the embedded default, which is `gateway.example.toml`),
//! with environment overrides for secrets only.
//!
//! Loading connects nothing. Every error names the field it is about in one line, so `main` can
//! print it and exit non-zero; unknown keys are errors, never silently ignored.

mod credits;
#[cfg(feature = "localnet")]
pub mod demo;
mod env;
mod facilitator;
mod facilitator_proxy;
mod ledger;
#[cfg(feature = "localnet")]
pub mod localnet;
mod metrics;
mod payment;
mod pricing;
mod providers;
mod rate_limits;
mod routing;
mod secret;
mod sections;
mod services;
mod siwx;
mod tokens;
mod usage;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use credits::{CreditsConfig, PackConfig};
pub use env::{EnvSource, ProcessEnv};
pub use facilitator::{
    FailoverPolicy, LocalFacilitatorConfig, NetworkConfig, RemoteFacilitatorConfig,
};
pub use facilitator_proxy::{FacilitatorProxyConfig, ProxyAccess};
pub use ledger::{LedgerConfig, SQLITE_FILE};
#[cfg(feature = "localnet")]
pub use localnet::LocalnetConfig;
pub use metrics::MetricsConfig;
pub use payment::{default_token_program, AcceptConfig, PaymentConfig};
pub use pricing::{OracleConfig, PricingConfig, SettlementConfig, PYTH_SOL_USD_ACCOUNT};
pub use providers::{Cluster, KeyPlacement, ProviderConfig, Surface};
pub use rate_limits::{LimitSpec, RateLimitsConfig};
pub use routing::{ClusterRouting, RoutingConfig, Strategy};
pub use secret::Secret;
pub use sections::{
    GuardrailsConfig, LogConfig, LogFormat, RedisConfig, ServerConfig, UpstreamConfig,
};
pub use services::{
    Access, BasicCredential, Credential, CredentialsConfig, Price, QueryCredential, ServiceConfig,
    ServiceRoute,
};
pub use siwx::SiwxConfig;
pub use tokens::{AuthMode, TokensConfig, TOKENS_MOUNT, TOKENS_SERVICE_ID};
pub use usage::UsageConfig;

/// The configuration the gateway runs with when no file is given.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../gateway.example.toml");

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listener, public URL, request limits.
    #[serde(default)]
    pub server: ServerConfig,
    /// Outbound HTTP to the providers.
    #[serde(default)]
    pub upstream: UpstreamConfig,
    /// Checks on request parameters made before any upstream call.
    #[serde(default)]
    pub guardrails: GuardrailsConfig,
    /// Shared state; absent means the embedded in-memory store.
    #[serde(default)]
    pub redis: Option<RedisConfig>,
    /// The in-process x402 SVM facilitator; absent = none (the demo derives one from
    /// `[localnet]`). Its HTTP endpoints are served only when `FACILITATOR_SECRET` is set.
    #[serde(default)]
    pub facilitator: Option<LocalFacilitatorConfig>,
    /// Shared secret of the facilitator endpoints, from `FACILITATOR_SECRET` (never the file).
    #[serde(skip)]
    pub facilitator_secret: Option<Secret>,
    /// The facilitator proxy under `/facilitator/*` (off by default).
    #[serde(default)]
    pub facilitator_proxy: FacilitatorProxyConfig,
    /// The facilitator proxy's bearer token, from `facilitator_proxy.token_env` (never the file).
    #[serde(skip)]
    pub facilitator_proxy_token: Option<Secret>,
    /// x402 payments on the RPC routes.
    #[serde(default)]
    pub payment: PaymentConfig,
    /// Prices (markup, settlement surcharge, floor).
    #[serde(default)]
    pub pricing: PricingConfig,
    /// Wallet sign-in (SIWX) for auth-only routes.
    #[serde(default)]
    pub siwx: SiwxConfig,
    /// The nonce HMAC secret, from the variable `siwx.secret_env` names (never the file).
    #[serde(skip)]
    pub siwx_secret: Option<Secret>,
    /// The Tokens API shorthand: at load it becomes the `[[services]]` entry `tokens` mounted at
    /// `/v1/x402/tokens` (see [`TokensConfig::to_service`]) and this is `None` afterwards.
    #[serde(default)]
    pub tokens: Option<TokensConfig>,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Rate limits (per client IP, per payer, per provider budget).
    #[serde(default)]
    pub rate_limits: RateLimitsConfig,
    /// Usage counters and their flushing to the store.
    #[serde(default)]
    pub usage: UsageConfig,
    /// `[ledger]`: the durable record of every payment.
    #[serde(default)]
    pub ledger: LedgerConfig,
    /// `[credits]`: prepaid credits.
    #[serde(default)]
    pub credits: CreditsConfig,
    /// The key signing credit session tokens, from `credits.secret_env`.
    #[serde(skip)]
    pub credits_secret: Option<Secret>,
    /// `/metrics`.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Bearer token of `/admin/usage` (and `/metrics` unless public), from `ADMIN_TOKEN`
    /// (never the file).
    #[serde(skip)]
    pub admin_token: Option<Secret>,
    /// Upstream providers; the order breaks ties between equally good providers.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    /// HTTP APIs sold (or opened) route by route, each mounted at
    /// `{server.services_base_path}/{id}/…` or at its own `mount` (the Tokens API too, when
    /// `[tokens]` is set: see [`TokensConfig::to_service`]).
    #[serde(default)]
    pub services: Vec<ServiceConfig>,
    /// How the standard endpoint routes across a cluster's providers (strategies, health,
    /// failover).
    #[serde(default)]
    pub routing: RoutingConfig,
    /// The embedded local Solana cluster for the offline demo; absent = not started.
    #[cfg(feature = "localnet")]
    #[serde(default)]
    pub localnet: Option<LocalnetConfig>,
    /// Without the `localnet` feature the section is accepted and ignored (with a warning), so
    /// one config file serves both builds.
    #[cfg(not(feature = "localnet"))]
    #[serde(default)]
    pub localnet: Option<toml::Value>,
}

/// A configuration problem, reported in one line that names the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not parse or does not fit the schema (unknown key, wrong type).
    #[error("config {field}: {message}")]
    Parse {
        /// Dotted path of the offending field (`providers[0].clusters`), or `(document)`.
        field: String,
        /// What is wrong, on one line.
        message: String,
    },
    /// A value parses but is not acceptable.
    #[error("config {field}: {message}")]
    Invalid {
        /// Dotted path of the offending field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// A value that parses but is not acceptable, at `field` (dotted path).
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same problem, with its field path placed under `prefix` (`name` → `providers[2].name`).
    pub fn at(self, prefix: &str) -> Self {
        match self {
            ConfigError::Invalid { field, message } => ConfigError::Invalid {
                field: format!("{prefix}.{field}"),
                message,
            },
            other => other,
        }
    }
}

impl Config {
    /// Loads `path`, or the embedded default when `None`: parse, apply the environment, resolve
    /// the derived settings (the demo's, from `[localnet]`), validate. `check-config` and
    /// `serve` both call this, so they accept exactly the same configurations.
    pub fn load(path: Option<&Path>, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                Self::from_toml(&text, env)
            }
            None => Self::from_toml(EMBEDDED_DEFAULT, env),
        }
    }

    /// Parses TOML text, applies environment overrides, resolves derived settings and validates.
    pub fn from_toml(text: &str, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let de = toml::Deserializer::new(text);
        let mut config: Config = serde_path_to_error::deserialize(de).map_err(|err| {
            let field = err.path().to_string();
            // toml's own message spans several lines (it quotes the source); keep the first.
            let message = err
                .inner()
                .message()
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            ConfigError::Parse {
                field: if field == "." {
                    "(document)".into()
                } else {
                    field
                },
                message,
            }
        })?;
        config.desugar_tokens(env)?;
        config.apply_env(env)?;
        config.resolve()?;
        config.validate()?;
        config.check_env(env)?;
        config.resolve_providers()?;
        config.check_unpaid()?;
        Ok(config)
    }

    /// `[tokens]` checked under its own field names, then replaced by the `[[services]]` entry
    /// it stands for: one implementation serves both spellings.
    fn desugar_tokens(&mut self, env: &dyn EnvSource) -> Result<(), ConfigError> {
        let Some(mut tokens) = self.tokens.take() else {
            return Ok(());
        };
        tokens.api_key = env.var(&tokens.api_key_env).map(Secret::new);
        tokens.validate()?;
        if let Some(i) = self
            .services
            .iter()
            .position(|s| s.id == TOKENS_SERVICE_ID || s.mount.as_deref() == Some(TOKENS_MOUNT))
        {
            return Err(ConfigError::invalid(
                "tokens",
                format!(
                    "[tokens] is the shorthand of the service {TOKENS_SERVICE_ID:?} mounted at \
                     {TOKENS_MOUNT}, and services[{i}] is configured too: keep one"
                ),
            ));
        }
        self.services.push(tokens.to_service());
        Ok(())
    }

    /// Secrets, and the few values the file names a variable for (`pay_to_env`,
    /// `public_base_url_env`), from the environment. Nothing else is read from it.
    fn apply_env(&mut self, env: &dyn EnvSource) -> Result<(), ConfigError> {
        for provider in &mut self.providers {
            if let Some(key) = provider.key_env.as_deref().and_then(|name| env.var(name)) {
                provider.api_key = Some(Secret::new(key));
            }
        }
        if let Some(secret) = env.var("FACILITATOR_SECRET") {
            self.facilitator_secret = Some(Secret::new(secret));
        }
        if let Some(secret) = env.var(&self.siwx.secret_env) {
            self.siwx_secret = Some(Secret::new(secret));
        }
        for (i, service) in self.services.iter_mut().enumerate() {
            service.apply_env(env, &format!("services[{i}]"))?;
        }
        if let Some(token) = env.var(&self.facilitator_proxy.token_env) {
            self.facilitator_proxy_token = Some(Secret::new(token));
        }
        if let Some(token) = env.var("ADMIN_TOKEN") {
            self.admin_token = Some(Secret::new(token));
        }
        if let Some(secret) = env.var(&self.credits.secret_env) {
            self.credits_secret = Some(Secret::new(secret));
        }
        if let Some(url) = env.var("LEDGER_URL") {
            self.ledger.url = Some(Secret::new(url));
        }
        if let Some(url) = env.var("REDIS_URL") {
            self.redis.get_or_insert_with(RedisConfig::default).url = Some(Secret::new(url));
        }
        if let Some(pay_to) = self.payment.pay_to_env.as_deref().and_then(|v| env.var(v)) {
            self.payment.pay_to = Some(pay_to.trim().to_string());
        }
        if let Some(var) = self.server.public_base_url_env.clone() {
            let field = "server.public_base_url_env";
            let value = env.var(&var).ok_or_else(|| {
                ConfigError::invalid(
                    field,
                    format!("{var} is not set (the public https:// URL clients reach us at)"),
                )
            })?;
            self.server.public_base_url = url::Url::parse(value.trim())
                .map_err(|e| ConfigError::invalid(field, format!("{var} is not a URL: {e}")))?;
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.upstream.validate()?;
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.providers.iter().enumerate() {
            p.validate().map_err(|e| e.at(&format!("providers[{i}]")))?;
            if !seen.insert(p.name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("providers[{i}].name"),
                    format!("duplicate provider {:?}", p.name),
                ));
            }
        }
        if let Some(redis) = &self.redis {
            redis.validate()?;
        }
        self.siwx.validate()?;
        self.rate_limits.validate()?;
        self.rate_limits.check_providers(
            self.providers
                .iter()
                .map(|p| p.name.as_str())
                .chain(self.services.iter().map(|s| s.id.as_str())),
        )?;
        self.usage.validate()?;
        self.routing.validate(self.server.request_timeout_ms)?;
        self.routing
            .check_providers(self.providers.iter().map(|p| p.name.as_str()))?;
        self.ledger.validate()?;
        self.credits.validate()?;
        if let Some(facilitator) = &self.facilitator {
            facilitator.validate()?;
        }
        self.pricing.validate()?;
        if let Some(oracle) = &self.pricing.settlement.oracle {
            let provider = self.providers.iter().find(|p| p.name == oracle.provider);
            // A provider left without its key is disabled at start-up: the oracle then reads
            // nothing and the fallback applies, with a warning.
            if !provider.is_some_and(|p| p.clusters.contains_key(&Cluster::Mainnet)) {
                return Err(ConfigError::invalid(
                    "pricing.settlement.oracle.provider",
                    format!(
                        "{:?} is not a [[providers]] entry with a mainnet URL (the price account is read through it)",
                        oracle.provider
                    ),
                ));
            }
        }
        self.payment.validate()?;
        if self.credits.enabled && !self.payment.enabled {
            return Err(ConfigError::invalid(
                "credits.enabled",
                "credits are bought with a payment: [payment] enabled = true is needed",
            ));
        }
        self.validate_services()?;
        self.facilitator_proxy.validate()?;
        if self.facilitator_proxy.enabled {
            if self.facilitator.is_none() && self.payment.remote_facilitators.is_empty() {
                return Err(ConfigError::invalid(
                    "facilitator_proxy.enabled",
                    "no facilitator to proxy ([facilitator] or payment.remote_facilitators)",
                ));
            }
            if self.facilitator_proxy.access == ProxyAccess::Token
                && self.facilitator_proxy_token.is_none()
            {
                return Err(ConfigError::invalid(
                    "facilitator_proxy.token_env",
                    format!(
                        "{} is not set (or set access = \"open\")",
                        self.facilitator_proxy.token_env
                    ),
                ));
            }
        }
        // Across sections: a paid route needs someone to verify and settle its payments.
        if self.payment.enabled
            && self.facilitator.is_none()
            && self.payment.remote_facilitators.is_empty()
        {
            return Err(ConfigError::invalid(
                "payment.enabled",
                "payments are on but no facilitator is configured ([facilitator] or \
                 payment.remote_facilitators; the demo derives one from [localnet])",
            ));
        }
        Ok(())
    }

    /// The environment variables the configuration names and needs at start: checked here so
    /// that a missing one is refused at load, not when `serve` builds the client.
    fn check_env(&self, env: &dyn EnvSource) -> Result<(), ConfigError> {
        if !self.payment.enabled && !self.facilitator_proxy.enabled {
            return Ok(());
        }
        for (i, remote) in self.payment.remote_facilitators.iter().enumerate() {
            for (header, var) in &remote.headers_from_env {
                if env.var(var).is_none() {
                    return Err(ConfigError::invalid(
                        format!("payment.remote_facilitators[{i}].headers_from_env.{header}"),
                        format!("{var} is not set"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Derives the settings other sections imply, before anything is validated: with the
    /// `localnet` feature and a `[localnet]` section, the demo's provider, facilitator, `pay_to`
    /// and `accepts` (see [`demo`]). Without the feature the section is ignored.
    fn resolve(&mut self) -> Result<(), ConfigError> {
        #[cfg(feature = "localnet")]
        demo::resolve(self)?;
        Ok(())
    }

    /// Decides which providers run: `enabled = true` demands a key, absent means "when keyed".
    fn resolve_providers(&mut self) -> Result<(), ConfigError> {
        for (i, p) in self.providers.iter_mut().enumerate() {
            let needs_key = p.key_placement != KeyPlacement::None;
            let has_key = p.api_key.as_ref().is_some_and(|k| !k.is_empty());
            let key_hint = p.key_env.clone().unwrap_or_else(|| "api_key".into());
            match (p.enabled, needs_key && !has_key) {
                (Some(true), true) => {
                    return Err(ConfigError::invalid(
                        format!("providers[{i}].key_env"),
                        format!("provider {:?} is enabled but {key_hint} is not set", p.name),
                    ));
                }
                (None, true) => {
                    p.enabled = Some(false);
                    p.disabled_reason = Some(format!("no API key: set {key_hint}"));
                }
                (Some(false), _) => p.disabled_reason = Some("disabled in config".into()),
                (None, false) => p.enabled = Some(true),
                (Some(true), false) => {}
            }
        }
        Ok(())
    }

    /// Payments off and a provider enabled because its API key is present: every caller would
    /// spend the operator's key for free. Refused unless `[payment] allow_unpaid = true` says
    /// that is meant (`serve` then warns at start).
    fn check_unpaid(&self) -> Result<(), ConfigError> {
        if self.payment.enabled || self.payment.allow_unpaid {
            return Ok(());
        }
        if let Some(s) = self.services.iter().find(|s| {
            s.has_credentials()
                && s.parsed_routes()
                    .is_ok_and(|r| r.iter().any(|r| matches!(r.access, Access::Paid(_))))
        }) {
            return Err(ConfigError::invalid(
                "payment.enabled",
                format!(
                    "payments are off but service {:?} has paid routes called with the \
                     operator's credentials: anyone could use them for free; turn payments on, \
                     or set [payment] allow_unpaid = true to serve them unpaid",
                    s.id
                ),
            ));
        }
        match self.keyed_providers().next() {
            Some(p) => Err(ConfigError::invalid(
                "payment.enabled",
                format!(
                    "payments are off but provider {:?} has an API key{}: anyone could use it \
                     for free; turn payments on, or set [payment] allow_unpaid = true to serve \
                     it unpaid",
                    p.name,
                    p.key_env
                        .as_deref()
                        .map(|v| format!(" ({v})"))
                        .unwrap_or_default()
                ),
            )),
            None => Ok(()),
        }
    }

    /// Enabled providers that hold an API key (the ones an unpaid gateway would give away).
    pub fn keyed_providers(&self) -> impl Iterator<Item = &ProviderConfig> {
        self.enabled_providers()
            .filter(|p| p.key_placement != KeyPlacement::None)
    }

    /// `[[services]]` across sections: unique ids that are neither a provider's name (a
    /// service's upstream budget is `[rate_limits] providers.<id>`) nor a mount that would
    /// overlap a fixed route, and prices the accepted asset can express.
    fn validate_services(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for (i, s) in self.services.iter().enumerate() {
            let at = format!("services[{i}]");
            s.validate().map_err(|e| e.at(&at))?;
            if !seen.insert(s.id.as_str()) {
                return Err(ConfigError::invalid(
                    format!("{at}.id"),
                    format!("duplicate service {:?}", s.id),
                ));
            }
            if self.providers.iter().any(|p| p.name == s.id) {
                return Err(ConfigError::invalid(
                    format!("{at}.id"),
                    format!("{:?} is also a provider's name", s.id),
                ));
            }
            let mount = self.service_mount(s);
            let field = format!("{at}.{}", if s.mount.is_some() { "mount" } else { "id" });
            // The Tokens API's path is the gateway's own unless a service is mounted exactly
            // there (then it replaces the `tokens_not_configured` answer).
            let tokens_route = (mount != TOKENS_MOUNT).then_some(crate::routes::TOKENS_ROUTE);
            if let Some(route) = crate::routes::ROUTES
                .iter()
                .chain(crate::routes::CREDITS_ROUTES)
                .copied()
                .chain(tokens_route)
                .find(|r| overlaps(&mount, r))
            {
                return Err(ConfigError::invalid(
                    field,
                    format!("{mount} would overlap the gateway's route {route}"),
                ));
            }
            if let Some(other) = self.services[..i].iter().find(|o| {
                let theirs = self.service_mount(o);
                under(&mount, &theirs) || under(&theirs, &mount)
            }) {
                return Err(ConfigError::invalid(
                    field,
                    format!(
                        "{mount} would overlap the mount of service {:?} ({})",
                        other.id,
                        self.service_mount(other)
                    ),
                ));
            }
            let routes = s.parsed_routes().map_err(|e| e.at(&at))?;
            let decimals = self.service_accept(s).map(|a| a.decimals);
            for route in &routes {
                if let (Access::Paid(price), Some(decimals)) = (route.access, decimals) {
                    price.atomic(decimals).map_err(|e| {
                        ConfigError::invalid(
                            format!("{at}.routes"),
                            format!("the price of {} {} {e}", route.method, route.pattern),
                        )
                    })?;
                }
            }
        }
        Ok(())
    }

    /// Where `service` is mounted: its `mount`, else `{server.services_base_path}/{id}`.
    pub fn service_mount(&self, service: &ServiceConfig) -> String {
        match &service.mount {
            Some(mount) => mount.clone(),
            None => format!("{}/{}", self.server.services_base_path, service.id),
        }
    }

    /// The cluster whose payments buy `service`'s paid routes: its own, else the first accepted
    /// network's, else devnet.
    pub fn service_cluster(&self, service: &ServiceConfig) -> Cluster {
        service.cluster.unwrap_or_else(|| {
            self.payment
                .accepts
                .iter()
                .find_map(|a| Cluster::ALL.into_iter().find(|c| c.caip2() == a.network))
                .unwrap_or(Cluster::Devnet)
        })
    }

    /// The accepted asset `service`'s prices are converted into (the first on its cluster).
    pub fn service_accept(&self, service: &ServiceConfig) -> Option<&AcceptConfig> {
        let network = self.service_cluster(service).caip2();
        self.payment.accepts.iter().find(|a| a.network == network)
    }

    /// Whether `allow_unpaid` is what lets this config start: payments off, keyed providers on.
    pub fn serves_keys_unpaid(&self) -> bool {
        !self.payment.enabled && self.keyed_providers().next().is_some()
    }

    /// The providers that will serve traffic, in routing order.
    pub fn enabled_providers(&self) -> impl Iterator<Item = &ProviderConfig> {
        self.providers.iter().filter(|p| p.is_enabled())
    }

    /// Replaces the listen address (from `--listen` or `GATEWAY_LISTEN`).
    pub fn with_listen(mut self, listen: Option<SocketAddr>) -> Self {
        if let Some(listen) = listen {
            self.server.listen = listen;
        }
        self
    }
}

/// Whether a service mounted at `mount` (`/base/id`) would share paths with `route` (a
/// template): they overlap unless some segment is a different literal on both sides before the
/// route's first parameter.
fn overlaps(mount: &str, route: &str) -> bool {
    let mut route_segments = route.trim_start_matches('/').split('/');
    for m in mount.trim_start_matches('/').split('/') {
        match route_segments.next() {
            None => return false,
            Some(r) if r.starts_with('{') => return true,
            Some(r) if r != m => return false,
            Some(_) => {}
        }
    }
    true
}

/// Whether `path` is `mount` or below it, segment-wise.
fn under(path: &str, mount: &str) -> bool {
    path == mount
        || path
            .strip_prefix(mount)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests;
