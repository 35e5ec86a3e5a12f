//! The Tokens API proxy: `GET`/`POST /v1/x402/tokens/{*path}` → `{base_url}/{path}?{query}`,
//! behind wallet sign-in ([`crate::authgate`]), called with the gateway's own key.
//!
//! Invariants:
//! - the upstream request is built from scratch: method, path, query, a JSON body, `accept`,
//!   `content-type` and `x-api-key`; no client header is ever forwarded;
//! - the path cannot leave `base_url` (`.`/`..` segments, encoded or not, are refused);
//! - the key never reaches a client, a log or an error: only the upstream's status, its
//!   `content-type` and its body (capped) come back, and an upstream that refuses our key
//!   (401/403) is a 502, not a sign-in failure.

mod forward;

use std::time::Duration;

pub(crate) use forward::{forward_tokens, not_configured};

use crate::config::{Secret, TokensConfig};

/// The Tokens API client, built once from `[tokens]`.
#[derive(Debug)]
pub struct TokensApi {
    base_url: String,
    api_key: Secret,
    http: reqwest::Client,
    timeout: Duration,
    max_response_bytes: usize,
    /// Largest request body relayed (`[server] max_body_bytes`).
    max_body_bytes: usize,
}

impl TokensApi {
    /// Builds the client (no connection yet).
    pub fn new(config: &TokensConfig, max_body_bytes: usize) -> Result<Self, reqwest::Error> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let http =
            crate::http_client::hardened(Duration::from_millis(config.connect_timeout_ms), timeout)
                .user_agent(concat!("x402-gateway/", env!("CARGO_PKG_VERSION")))
                .build()?;
        Ok(Self {
            base_url: config.base_url.as_str().trim_end_matches('/').to_string(),
            api_key: config.api_key.clone().unwrap_or_else(|| Secret::new("")),
            http,
            timeout,
            max_response_bytes: config.max_response_bytes,
            max_body_bytes,
        })
    }
}
