//! Upstream providers (Alchemy, Helius, or any JSON-RPC endpoint): where they live, how the API
//! key is attached, and which methods each surface sells, with the provider's unit cost.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use url::Url;

use super::secret::Secret;
use super::ConfigError;
use crate::x402::network::{SOLANA_DEVNET, SOLANA_MAINNET};

/// A Solana cluster the gateway sells calls on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cluster {
    /// Solana mainnet-beta.
    Mainnet,
    /// Solana devnet (also what the embedded local cluster pretends to be).
    Devnet,
}

impl Cluster {
    /// All clusters, in display order.
    pub const ALL: [Cluster; 2] = [Cluster::Mainnet, Cluster::Devnet];

    /// The path segment and config key.
    pub fn as_str(self) -> &'static str {
        match self {
            Cluster::Mainnet => "mainnet",
            Cluster::Devnet => "devnet",
        }
    }

    /// Parses a path segment.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The CAIP-2 id of the cluster.
    pub fn caip2(self) -> &'static str {
        match self {
            Cluster::Mainnet => SOLANA_MAINNET,
            Cluster::Devnet => SOLANA_DEVNET,
        }
    }
}

impl fmt::Display for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which family of methods a call belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Surface {
    /// Standard Solana JSON-RPC (positional `params` array).
    Rpc,
    /// Digital Asset Standard API (named `params` object).
    Das,
}

impl Surface {
    /// The path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Rpc => "rpc",
            Surface::Das => "das",
        }
    }

    /// Parses a path segment.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rpc" => Some(Surface::Rpc),
            "das" => Some(Surface::Das),
            _ => None,
        }
    }
}

impl fmt::Display for Surface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the provider's API key is attached to the upstream request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum KeyPlacement {
    /// Appended as the last URL path segment (Alchemy: `.../v2/{key}`).
    Path,
    /// Sent as a query parameter (Helius: `?api-key={key}`).
    Query {
        /// The parameter name.
        param: String,
    },
    /// Sent as a request header.
    Header {
        /// The header name.
        name: String,
    },
    /// The endpoint needs no key (a local cluster, a self-hosted node).
    None,
}

/// One upstream provider as written in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Name used in routes (`/v1/x402/solana/{cluster}/{name}/...`) and in logs.
    pub name: String,
    /// `true` requires the key; `false` disables; absent means "enabled when the key is present".
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Where the key goes on the upstream request.
    pub key_placement: KeyPlacement,
    /// Environment variable holding the API key (overrides `api_key`).
    #[serde(default)]
    pub key_env: Option<String>,
    /// The API key itself. Prefer `key_env`: config files get copied around.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Base URL per cluster, without the key.
    pub clusters: BTreeMap<Cluster, Url>,
    /// What the provider bills in (`compute_units`, `credits`); informational until pricing.
    #[serde(default)]
    pub unit: Option<String>,
    /// The date the cost tables below were last checked against the provider's docs.
    #[serde(default)]
    pub verified_at: Option<String>,
    /// What the provider charges us, in atomic USDC per million of its units (Alchemy
    /// $0.45 / 1M CU = 450000; Helius $5 / 1M credits = 5000000). Required to sell calls.
    #[serde(default)]
    pub atomic_per_million_units: Option<u64>,
    /// Standard RPC methods sold through this provider, with their cost in provider units.
    /// The keys are the allow-list: a method not listed is rejected before any upstream call.
    #[serde(default)]
    pub rpc: BTreeMap<String, u64>,
    /// DAS methods sold through this provider, with their cost in provider units.
    #[serde(default)]
    pub das: BTreeMap<String, u64>,
    /// Share of `load_balanced` traffic relative to the other providers of a pool (1..=100).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Why the provider is not serving (set while loading; never read from the file).
    #[serde(skip)]
    pub disabled_reason: Option<String>,
}

impl ProviderConfig {
    /// Checks one provider on its own; field paths are relative (`name`, `clusters.mainnet`),
    /// the caller places them (`providers[2].name`). Names being unique is the caller's check.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::invalid(
                "name",
                format!(
                    "{:?} must be lowercase letters, digits, '-' or '_'",
                    self.name
                ),
            ));
        }
        if self.clusters.is_empty() {
            return Err(ConfigError::invalid(
                "clusters",
                "at least one cluster URL is required",
            ));
        }
        for (cluster, url) in &self.clusters {
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(ConfigError::invalid(
                    format!("clusters.{cluster}"),
                    format!("{url} is not an http(s) URL with a host"),
                ));
            }
            if url.query().is_some() && matches!(self.key_placement, KeyPlacement::Query { .. }) {
                return Err(ConfigError::invalid(
                    format!("clusters.{cluster}"),
                    "the URL already has a query string; the key goes in it",
                ));
            }
        }
        if self.weight == 0 || self.weight > 100 {
            return Err(ConfigError::invalid("weight", "must be in 1..=100"));
        }
        for (surface, table) in [("rpc", &self.rpc), ("das", &self.das)] {
            if let Some(bad) = table.keys().find(|m| !valid_method_name(m)) {
                return Err(ConfigError::invalid(
                    surface,
                    format!("{bad:?} is not a JSON-RPC method name"),
                ));
            }
        }
        if let Some(both) = self.rpc.keys().find(|m| self.das.contains_key(*m)) {
            return Err(ConfigError::invalid(
                "das",
                format!("{both:?} is listed under both rpc and das"),
            ));
        }
        match &self.key_placement {
            KeyPlacement::Query { param } | KeyPlacement::Header { name: param }
                if param.is_empty() =>
            {
                return Err(ConfigError::invalid(
                    "key_placement",
                    "the name must not be empty",
                ));
            }
            KeyPlacement::Header { name }
                if http::HeaderName::from_bytes(name.as_bytes()).is_err() =>
            {
                return Err(ConfigError::invalid(
                    "key_placement.header.name",
                    format!("{name:?} is not a valid header name"),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether the provider serves traffic (decided while loading the config).
    pub fn is_enabled(&self) -> bool {
        self.enabled == Some(true)
    }

    /// The method table of one surface.
    pub fn methods(&self, surface: Surface) -> &BTreeMap<String, u64> {
        match surface {
            Surface::Rpc => &self.rpc,
            Surface::Das => &self.das,
        }
    }

    /// The surface a method belongs to on this provider, if it is sold at all.
    pub fn surface_of(&self, method: &str) -> Option<Surface> {
        if self.rpc.contains_key(method) {
            Some(Surface::Rpc)
        } else if self.das.contains_key(method) {
            Some(Surface::Das)
        } else {
            None
        }
    }
}

fn default_weight() -> u32 {
    1
}

fn valid_method_name(m: &str) -> bool {
    !m.is_empty() && m.len() <= 64 && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
