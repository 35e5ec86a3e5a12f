//! The outbound HTTP client shared by every provider call.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::CONTENT_TYPE;

use super::{Endpoint, UpstreamError};
use crate::config::UpstreamConfig;

/// A provider's answer: HTTP 2xx with a body no bigger than the cap.
#[derive(Debug, Clone)]
pub struct UpstreamReply {
    /// The HTTP status (always 2xx here).
    pub status: u16,
    /// The raw body, exactly as the provider sent it.
    pub body: Bytes,
    /// How long the exchange took.
    pub latency: Duration,
}

/// Pooled HTTP client for provider calls.
#[derive(Debug, Clone)]
pub struct UpstreamClient {
    http: reqwest::Client,
    timeout: Duration,
    max_response_bytes: usize,
}

impl UpstreamClient {
    /// Builds the client: rustls, keep-alive pool, timeouts, no redirects, no env proxy.
    pub fn new(config: &UpstreamConfig) -> Result<Self, reqwest::Error> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let http =
            crate::http_client::hardened(Duration::from_millis(config.connect_timeout_ms), timeout)
                .pool_max_idle_per_host(config.pool_max_idle_per_host)
                .pool_idle_timeout(Duration::from_secs(60))
                .tcp_nodelay(true)
                .user_agent(concat!("x402-gateway/", env!("CARGO_PKG_VERSION")))
                .build()?;
        Ok(Self {
            http,
            timeout,
            max_response_bytes: config.max_response_bytes,
        })
    }

    /// POSTs a JSON-RPC body to `endpoint` and returns the provider's 2xx answer, or why not,
    /// with how long it took either way. The caller records the outcome in the endpoint's
    /// health once it has judged the answer (a 2xx body may still be garbage).
    pub async fn call(
        &self,
        endpoint: &Endpoint,
        body: Bytes,
    ) -> (Result<UpstreamReply, UpstreamError>, Duration) {
        let started = Instant::now();
        let result = self.exchange(endpoint, body).await;
        let latency = started.elapsed();
        let result = result.map(|(status, body)| UpstreamReply {
            status,
            body,
            latency,
        });
        (result, latency)
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn exchange(
        &self,
        endpoint: &Endpoint,
        body: Bytes,
    ) -> Result<(u16, Bytes), UpstreamError> {
        let mut request = self
            .http
            .post(endpoint.url().clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some((name, value)) = endpoint.key_header() {
            request = request.header(name.clone(), value.clone());
        }
        let response = request.send().await.map_err(|e| self.classify(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(UpstreamError::Status(status.as_u16()));
        }
        let body = super::read_capped(response, self.max_response_bytes, self.timeout).await?;
        Ok((status.as_u16(), body))
    }

    fn classify(&self, err: reqwest::Error) -> UpstreamError {
        super::classify(err, self.timeout)
    }
}
