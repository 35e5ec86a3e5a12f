//! Configuration: one TOML file (or the embedded default, which is `gateway.example.toml`),
//! with environment overrides for secrets only.
//!
//! Loading connects nothing. Every error names the field it is about in one line, so `main` can
//! print it and exit non-zero; unknown keys are errors, never silently ignored.

mod providers;
mod secret;
mod sections;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use providers::{Cluster, KeyPlacement, ProviderConfig, Surface};
pub use secret::Secret;
pub use sections::{
    GuardrailsConfig, LogConfig, LogFormat, RedisConfig, ServerConfig, UpstreamConfig,
};

/// The configuration the gateway runs with when no file is given.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../gateway.example.toml");

/// Where environment variables come from; a map in tests, the process environment in `main`.
pub trait EnvSource {
    /// The value of `name`, if set and not empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned().filter(|v| !v.trim().is_empty())
    }
}

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
    pub facilitator: Option<crate::facilitator::local::LocalFacilitatorConfig>,
    /// Shared secret of the facilitator endpoints, from `FACILITATOR_SECRET` (never the file).
    #[serde(skip)]
    pub facilitator_secret: Option<Secret>,
    /// x402 payments on the RPC routes.
    #[serde(default)]
    pub payment: crate::paygate::PaymentConfig,
    /// Prices (markup, settlement surcharge, floor).
    #[serde(default)]
    pub pricing: crate::pricing::PricingConfig,
    /// Wallet sign-in (SIWX) for auth-only routes.
    #[serde(default)]
    pub siwx: crate::siwx::SiwxConfig,
    /// The nonce HMAC secret, from the variable `siwx.secret_env` names (never the file).
    #[serde(skip)]
    pub siwx_secret: Option<Secret>,
    /// The Tokens API behind `/v1/x402/tokens/{*path}` (auth-only); absent = not served.
    #[serde(default)]
    pub tokens: Option<crate::tokens::TokensConfig>,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Rate limits (per client IP, per payer, per provider budget).
    #[serde(default)]
    pub rate_limits: crate::ratelimit::RateLimitsConfig,
    /// Usage counters and their flushing to the store.
    #[serde(default)]
    pub usage: crate::usage::UsageConfig,
    /// `/metrics`.
    #[serde(default)]
    pub metrics: crate::observability::MetricsConfig,
    /// Bearer token of `/admin/usage` (and `/metrics` unless public), from `ADMIN_TOKEN`
    /// (never the file).
    #[serde(skip)]
    pub admin_token: Option<Secret>,
    /// Upstream providers, in routing order (the first enabled one serves the standard endpoint).
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    /// The embedded local Solana cluster for the offline demo; absent = not started.
    #[cfg(feature = "localnet")]
    #[serde(default)]
    pub localnet: Option<crate::localnet::LocalnetConfig>,
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
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl Config {
    /// Loads `path`, or the embedded default when `None`, then applies environment overrides and
    /// validates.
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

    /// Parses TOML text, applies environment overrides and validates.
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
        config.apply_env(env);
        config.validate()?;
        config.resolve_providers()?;
        Ok(config)
    }

    /// Secrets and placement overrides from the environment. Nothing else is read from it.
    fn apply_env(&mut self, env: &dyn EnvSource) {
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
        if let Some(tokens) = &mut self.tokens {
            tokens.api_key = env.var(&tokens.api_key_env).map(Secret::new);
        }
        if let Some(token) = env.var("ADMIN_TOKEN") {
            self.admin_token = Some(Secret::new(token));
        }
        if let Some(url) = env.var("REDIS_URL") {
            self.redis.get_or_insert_with(RedisConfig::default).url = Some(Secret::new(url));
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.upstream.validate()?;
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.providers.iter().enumerate() {
            let at = |f: &str| format!("providers[{i}].{f}");
            if p.name.is_empty()
                || !p
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                return Err(ConfigError::invalid(
                    at("name"),
                    format!("{:?} must be lowercase letters, digits, '-' or '_'", p.name),
                ));
            }
            if !seen.insert(p.name.as_str()) {
                return Err(ConfigError::invalid(
                    at("name"),
                    format!("duplicate provider {:?}", p.name),
                ));
            }
            if p.clusters.is_empty() {
                return Err(ConfigError::invalid(
                    at("clusters"),
                    "at least one cluster URL is required",
                ));
            }
            for (cluster, url) in &p.clusters {
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(ConfigError::invalid(
                        at(&format!("clusters.{cluster}")),
                        format!("{url} is not an http(s) URL with a host"),
                    ));
                }
                if url.query().is_some() && matches!(p.key_placement, KeyPlacement::Query { .. }) {
                    return Err(ConfigError::invalid(
                        at(&format!("clusters.{cluster}")),
                        "the URL already has a query string; the key goes in it",
                    ));
                }
            }
            for (surface, table) in [("rpc", &p.rpc), ("das", &p.das)] {
                if let Some(bad) = table.keys().find(|m| !valid_method_name(m)) {
                    return Err(ConfigError::invalid(
                        at(surface),
                        format!("{bad:?} is not a JSON-RPC method name"),
                    ));
                }
            }
            if let Some(both) = p.rpc.keys().find(|m| p.das.contains_key(*m)) {
                return Err(ConfigError::invalid(
                    at("das"),
                    format!("{both:?} is listed under both rpc and das"),
                ));
            }
            match &p.key_placement {
                KeyPlacement::Query { param } | KeyPlacement::Header { name: param }
                    if param.is_empty() =>
                {
                    return Err(ConfigError::invalid(
                        at("key_placement"),
                        "the name must not be empty",
                    ));
                }
                KeyPlacement::Header { name }
                    if http::HeaderName::from_bytes(name.as_bytes()).is_err() =>
                {
                    return Err(ConfigError::invalid(
                        at("key_placement.header.name"),
                        format!("{name:?} is not a valid header name"),
                    ));
                }
                _ => {}
            }
        }
        if let Some(redis) = &self.redis {
            redis.validate()?;
        }
        self.siwx
            .validate()
            .map_err(|(field, message)| ConfigError::invalid(field, message))?;
        if let Some(tokens) = &self.tokens {
            tokens
                .validate()
                .map_err(|(field, message)| ConfigError::invalid(field, message))?;
        }
        self.rate_limits
            .validate(self.providers.iter().map(|p| p.name.as_str()))?;
        self.usage.validate()?;
        if let Some(facilitator) = &self.facilitator {
            facilitator
                .validate()
                .map_err(|e| ConfigError::invalid("facilitator", e.0))?;
        }
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

fn valid_method_name(m: &str) -> bool {
    !m.is_empty() && m.len() <= 64 && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests;
