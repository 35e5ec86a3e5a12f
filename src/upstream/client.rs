//! The outbound HTTP client shared by every provider call.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
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

    /// POSTs a JSON-RPC body to `endpoint` and returns the provider's 2xx answer, or why not.
    /// The endpoint's health record is updated either way.
    pub async fn call(
        &self,
        endpoint: &Endpoint,
        body: Vec<u8>,
    ) -> Result<UpstreamReply, UpstreamError> {
        let started = Instant::now();
        let result = self.exchange(endpoint, body).await;
        let latency = started.elapsed();
        endpoint
            .health()
            .record(latency, result.as_ref().map(|_| ()));
        result.map(|(status, body)| UpstreamReply {
            status,
            body,
            latency,
        })
    }

    async fn exchange(
        &self,
        endpoint: &Endpoint,
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), UpstreamError> {
        let mut request = self
            .http
            .post(endpoint.url().clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some((name, value)) = endpoint.key_header() {
            request = request.header(name.clone(), value.clone());
        }
        let mut response = request.send().await.map_err(|e| self.classify(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(UpstreamError::Status(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|len| len > self.max_response_bytes as u64)
        {
            return Err(UpstreamError::TooLarge(self.max_response_bytes));
        }
        let mut buf = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(e))? {
            if buf.len() + chunk.len() > self.max_response_bytes {
                return Err(UpstreamError::TooLarge(self.max_response_bytes));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok((status.as_u16(), buf.freeze()))
    }

    fn classify(&self, err: reqwest::Error) -> UpstreamError {
        if err.is_timeout() {
            return UpstreamError::Timeout(self.timeout.as_millis() as u64);
        }
        // `without_url` drops the keyed URL; the source chain (hyper, io) never carries it.
        let err = err.without_url();
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        UpstreamError::Transport(message)
    }
}
