//! `[tokens]`: the shorthand of the Tokens API as a configured service. At load it becomes the
//! `[[services]]` entry below (and `[tokens]` is then gone), so the Tokens API is served, gated,
//! documented and priced by the same code as every other service:
//!
//! ```toml
//! [[services]]
//! id = "tokens"
//! mount = "/v1/x402/tokens"               # the public URLs stay /v1/x402/tokens/{path}
//! title = "Tokens API"
//! description = "Token metadata and prices, behind a wallet sign-in (no payment)."
//! base_url = "https://tokens.example/api" # [tokens] base_url
//! connect_timeout_ms = 2000               # [tokens] connect_timeout_ms
//! timeout_ms = 10000                      # [tokens] timeout_ms
//! max_response_bytes = 2097152            # [tokens] max_response_bytes (2 MiB)
//! [services.credentials]
//! headers = { "x-api-key" = "TOKENS_API_KEY" } # [tokens] api_key_env
//! [services.routes]                       # [tokens] auth = "siwx"
//! "GET /*path" = { access = "siwx", description = "A Tokens API call (wallet sign-in, no payment)" }
//! "POST /*path" = { access = "siwx", description = "A Tokens API call with a JSON body (wallet sign-in, no payment)" }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use url::Url;

use super::services::{CredentialsConfig, RouteTable, RouteValue, ServiceConfig};
use super::{ConfigError, Secret};

/// Where the shorthand mounts the Tokens API (its public URLs since before services existed).
pub const TOKENS_MOUNT: &str = "/v1/x402/tokens";
/// The id of the service the shorthand becomes.
pub const TOKENS_SERVICE_ID: &str = "tokens";

/// How a configured route is protected (`auth = "siwx"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// A wallet sign-in per request (or per proof, in session mode); no payment.
    Siwx,
}

/// Where the Tokens API is and how it is reached. Absent (and no service mounted at
/// [`TOKENS_MOUNT`]) = the route answers 404 `tokens_not_configured`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensConfig {
    /// Base URL; the request's path after `/v1/x402/tokens/` is appended to it.
    pub base_url: Url,
    /// How the route is protected; required, and `"siwx"` is the only mode: the upstream is
    /// called with the gateway's own key, so the route must never be open.
    pub auth: AuthMode,
    /// Environment variable holding the API key, sent upstream as `x-api-key`.
    #[serde(default = "default_key_env")]
    pub api_key_env: String,
    /// TCP + TLS connect timeout.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Whole exchange timeout.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Largest answer relayed; bigger ones become 502.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// The key, from `api_key_env` (never from the file).
    #[serde(skip)]
    pub api_key: Option<Secret>,
}

fn default_key_env() -> String {
    "TOKENS_API_KEY".into()
}
fn default_connect_timeout_ms() -> u64 {
    2_000
}
fn default_timeout_ms() -> u64 {
    10_000
}
fn default_max_response_bytes() -> usize {
    2 * 1024 * 1024
}

impl TokensConfig {
    /// One-line problems, naming the field. Runs after the environment was read.
    pub fn validate(&self) -> Result<(), ConfigError> {
        super::sections::base_url("tokens.base_url", &self.base_url)?;
        if self.api_key.as_ref().is_none_or(Secret::is_empty) {
            return Err(ConfigError::invalid(
                "tokens.api_key_env",
                format!("[tokens] is configured but {} is not set", self.api_key_env),
            ));
        }
        for (field, value) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("timeout_ms", self.timeout_ms),
            ("max_response_bytes", self.max_response_bytes as u64),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(
                    format!("tokens.{field}"),
                    "must be greater than 0",
                ));
            }
        }
        Ok(())
    }
}

impl TokensConfig {
    /// The `[[services]]` entry this section stands for (see the module documentation).
    pub fn to_service(&self) -> ServiceConfig {
        let mut headers = BTreeMap::new();
        headers.insert("x-api-key".to_string(), self.api_key_env.clone());
        let siwx = |description: &str| {
            RouteValue::Detailed(RouteTable {
                access: Some("siwx".into()),
                description: Some(description.into()),
                ..RouteTable::default()
            })
        };
        ServiceConfig {
            id: TOKENS_SERVICE_ID.into(),
            mount: Some(TOKENS_MOUNT.into()),
            base_url: self.base_url.clone(),
            title: "Tokens API".into(),
            description: "Token metadata and prices, behind a wallet sign-in (no payment).".into(),
            docs_url: None,
            cluster: None,
            credentials: CredentialsConfig {
                headers,
                ..CredentialsConfig::default()
            },
            forward_headers: Vec::new(),
            connect_timeout_ms: self.connect_timeout_ms,
            timeout_ms: self.timeout_ms,
            max_response_bytes: self.max_response_bytes,
            routes: [
                (
                    "GET /*path".to_string(),
                    siwx("A Tokens API call (wallet sign-in, no payment)"),
                ),
                (
                    "POST /*path".to_string(),
                    siwx("A Tokens API call with a JSON body (wallet sign-in, no payment)"),
                ),
            ]
            .into(),
            secrets: Vec::new(),
        }
    }
}
