//! The smaller config sections, each with its defaults next to its fields.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::{ConfigError, Secret};

/// Listener, public identity and request limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to bind; `--listen` / `GATEWAY_LISTEN` override it.
    pub listen: SocketAddr,
    /// The URL clients reach us at. Used for `resource.url` and SIWX domains, never `Host`.
    pub public_base_url: Url,
    /// Environment variable that sets `public_base_url` (one image, several deployments); when
    /// named it must be set, so an instance never signs its challenges for the wrong origin.
    pub public_base_url_env: Option<String>,
    /// Hard cap on a whole request, a safety net above the upstream timeout.
    pub request_timeout_ms: u64,
    /// Largest request body; Solana's own RPC server refuses more than 50 KiB.
    pub max_body_bytes: usize,
    /// Largest single request header value.
    pub max_header_bytes: usize,
    /// Largest sum of all request header names and values.
    pub max_headers_total_bytes: usize,
    /// Deepest JSON nesting accepted in a request body.
    pub max_json_depth: usize,
    /// Most elements in one JSON-RPC batch.
    pub max_batch: usize,
    /// Tokio worker threads; 0 = one per core. On a small shared box, fewer workers mean fewer
    /// cross-thread wake-ups (see BENCHMARKS.md).
    pub worker_threads: usize,
    /// A request head must arrive whole within this: counted from the accept for a connection's
    /// first request and, on HTTP/1, from the end of the previous response for the next ones
    /// (hyper arms it as soon as a keep-alive connection waits for a head), so it also bounds
    /// how long an HTTP/1 connection may idle.
    pub header_read_timeout_ms: u64,
    /// A connection with no request in flight is closed after this (HTTP/2 gets a GOAWAY).
    pub idle_timeout_ms: u64,
    /// Most connections open at once. At the cap, a new connection takes the place of the one
    /// idle the longest; when every connection has a request in flight, accepting waits. Also
    /// lowered at start-up to fit the process's open-file limit.
    pub max_connections: usize,
    /// A request body must arrive whole within this from its head, or the answer is 408. Below
    /// `request_timeout_ms`, so a slow client is told apart from a slow upstream (504).
    pub body_read_timeout_ms: u64,
    /// Where `[[services]]` are mounted: `{services_base_path}/{id}/…` ("" = at the root;
    /// otherwise `/` and segments, no trailing `/`, e.g. `/v1/x402`).
    pub services_base_path: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_base_url: Url::parse("http://127.0.0.1:8080").expect("static URL"),
            public_base_url_env: None,
            request_timeout_ms: 30_000,
            max_body_bytes: 50 * 1024,
            max_header_bytes: 8 * 1024,
            max_headers_total_bytes: 32 * 1024,
            max_json_depth: 32,
            max_batch: 20,
            worker_threads: 0,
            header_read_timeout_ms: 5_000,
            idle_timeout_ms: 60_000,
            max_connections: 4_096,
            body_read_timeout_ms: 10_000,
            services_base_path: String::new(),
        }
    }
}

impl ServerConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        base_url("server.public_base_url", &self.public_base_url)?;
        let base = &self.services_base_path;
        if !base.is_empty()
            && (!base.starts_with('/')
                || base.ends_with('/')
                || base[1..].split('/').any(|s| {
                    s.is_empty()
                        || s == "."
                        || s == ".."
                        || !s
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
                }))
        {
            return Err(ConfigError::invalid(
                "server.services_base_path",
                format!("{base:?} must be empty or \"/\" and plain segments, no trailing \"/\""),
            ));
        }
        positive("server.request_timeout_ms", self.request_timeout_ms)?;
        positive("server.max_body_bytes", self.max_body_bytes as u64)?;
        positive("server.max_header_bytes", self.max_header_bytes as u64)?;
        positive("server.max_json_depth", self.max_json_depth as u64)?;
        if self.max_json_depth > 128 {
            return Err(ConfigError::invalid(
                "server.max_json_depth",
                "must be at most 128 (serde_json's own recursion limit)",
            ));
        }
        positive("server.max_batch", self.max_batch as u64)?;
        at_most(
            "server.header_read_timeout_ms",
            self.header_read_timeout_ms,
            300_000,
        )?;
        at_most("server.idle_timeout_ms", self.idle_timeout_ms, 3_600_000)?;
        at_most(
            "server.max_connections",
            self.max_connections as u64,
            1_000_000,
        )?;
        at_most(
            "server.body_read_timeout_ms",
            self.body_read_timeout_ms,
            300_000,
        )?;
        if self.body_read_timeout_ms >= self.request_timeout_ms {
            return Err(ConfigError::invalid(
                "server.body_read_timeout_ms",
                "must be less than server.request_timeout_ms, or a slow body is answered 504",
            ));
        }
        Ok(())
    }

    /// The whole-request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The request-head timeout.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    /// The idle-connection timeout.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// The request-body timeout.
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }
}

/// Outbound HTTP to the providers.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    /// TCP + TLS connect timeout.
    pub connect_timeout_ms: u64,
    /// Whole upstream exchange timeout (request sent, full response read).
    pub timeout_ms: u64,
    /// Largest upstream response body we buffer; bigger answers become 502.
    pub max_response_bytes: usize,
    /// Idle keep-alive connections kept per upstream host.
    pub pool_max_idle_per_host: usize,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 2_000,
            timeout_ms: 10_000,
            max_response_bytes: 8 * 1024 * 1024,
            pool_max_idle_per_host: 64,
        }
    }
}

impl UpstreamConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("upstream.connect_timeout_ms", self.connect_timeout_ms)?;
        positive("upstream.timeout_ms", self.timeout_ms)?;
        positive(
            "upstream.max_response_bytes",
            self.max_response_bytes as u64,
        )?;
        Ok(())
    }
}

/// Limits on request parameters, checked before any upstream call (`-32602` naming the field).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardrailsConfig {
    /// `getProgramAccounts` must carry between 1 and this many filters.
    pub gpa_max_filters: usize,
    /// `getProgramAccounts` must carry a `dataSlice` no longer than this.
    pub gpa_max_data_slice: u64,
    /// Longest `memcmp.bytes` string in a `getProgramAccounts` filter.
    pub gpa_max_memcmp_bytes: usize,
    /// Longest `dataSlice.length` on `getAccountInfo` / `getMultipleAccounts`.
    pub account_max_data_slice: u64,
    /// Most keys in one `getMultipleAccounts` (Solana's own cap is 100).
    pub max_multiple_accounts: usize,
    /// Most signatures in one `getSignatureStatuses` (Solana's own cap is 256).
    pub max_signature_statuses: usize,
    /// Largest `limit` on `getSignaturesForAddress` / `getTransactionsForAddress`.
    pub max_signatures_limit: u64,
    /// Largest DAS paging `limit`.
    pub das_max_limit: u64,
    /// Largest DAS `page`.
    pub das_max_page: u64,
    /// Most ids in one DAS `getAssets` / `getAssetProofs`.
    pub das_max_ids: usize,
    /// Config keys accepted by Helius `getTransactionsForAddress`.
    pub transactions_for_address_keys: Vec<String>,
}

impl Default for GuardrailsConfig {
    fn default() -> Self {
        Self {
            gpa_max_filters: 4,
            gpa_max_data_slice: 256,
            gpa_max_memcmp_bytes: 128,
            account_max_data_slice: 1024,
            max_multiple_accounts: 100,
            max_signature_statuses: 256,
            max_signatures_limit: 1000,
            das_max_limit: 100,
            das_max_page: 10_000,
            das_max_ids: 100,
            transactions_for_address_keys: [
                "transactionDetails",
                "sortOrder",
                "limit",
                "paginationToken",
                "commitment",
                "minContextSlot",
                "filters",
                "encoding",
                "maxSupportedTransactionVersion",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        }
    }
}

/// Redis, when several instances share state.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port/db`; `REDIS_URL` overrides. Treated as a secret (it may hold a password).
    pub url: Option<Secret>,
    /// Timeout of each Redis command.
    pub command_timeout_ms: Option<u64>,
    /// Prefix of every key we write (several gateways, or tests, can share one Redis).
    pub key_prefix: Option<String>,
}

impl RedisConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        // A `[redis]` section asks for shared state: falling back to per-instance memory would
        // let instances behind one load balancer disagree on claims and limits.
        let Some(url) = &self.url else {
            return Err(ConfigError::invalid(
                "redis.url",
                "is not set: set REDIS_URL (or url), or remove [redis] for the in-memory store",
            ));
        };
        {
            let parsed = Url::parse(url.expose()).map_err(|_| {
                ConfigError::invalid("redis.url", "is not a URL (expected redis://host:port)")
            })?;
            if !matches!(parsed.scheme(), "redis" | "rediss" | "unix" | "redis+unix") {
                return Err(ConfigError::invalid(
                    "redis.url",
                    "scheme must be redis:// or rediss://",
                ));
            }
        }
        Ok(())
    }

    /// Key prefix (default `x402gw:`).
    pub fn key_prefix(&self) -> &str {
        self.key_prefix.as_deref().unwrap_or("x402gw:")
    }

    /// Per-command timeout (default 250 ms: loopback round trips are ~0.1 ms).
    pub fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms.unwrap_or(250))
    }
}

/// Log output.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `json` (one object per line) or `pretty` for a terminal.
    pub format: LogFormat,
    /// Default filter when `RUST_LOG` is unset, e.g. `info` or `x402_gateway=debug`.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            filter: "info".into(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON lines.
    #[default]
    Json,
    /// Human-readable.
    Pretty,
}

/// A base URL that paths are appended to: http(s), a host, no query or fragment.
pub(super) fn base_url(field: &str, url: &Url) -> Result<(), ConfigError> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::invalid(
            field,
            format!("{url} is not an http(s) URL with a host"),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::invalid(
            field,
            "must not carry a query or fragment",
        ));
    }
    Ok(())
}

/// Between 1 and `max`: zero would refuse everything, a huge value protects nothing.
fn at_most(field: &str, value: u64, max: u64) -> Result<(), ConfigError> {
    positive(field, value)?;
    if value > max {
        return Err(ConfigError::invalid(
            field,
            format!("{value} is more than the allowed {max}"),
        ));
    }
    Ok(())
}

fn positive(field: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        Err(ConfigError::invalid(field, "must be greater than 0"))
    } else {
        Ok(())
    }
}
