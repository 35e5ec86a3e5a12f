//! A client for the standard facilitator HTTP API (`/supported`, `/verify`, `/settle`), e.g. a
//! hosted facilitator or another gateway's in-process one behind its shared secret.

use std::time::Duration;

use async_trait::async_trait;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use url::Url;

use super::{Facilitator, FacilitatorError};
use crate::config::{EnvSource, RemoteFacilitatorConfig, Secret};
use crate::x402::{FacilitatorRequest, SettleResponse, SupportedResponse, VerifyResponse};

/// Largest facilitator answer accepted.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// The HTTP facilitator client.
#[derive(Debug)]
pub struct RemoteFacilitator {
    name: String,
    base: Url,
    headers: HeaderMap,
    http: reqwest::Client,
    timeout: Duration,
}

impl RemoteFacilitator {
    /// Builds the client; header values come from `env` and are marked sensitive.
    pub fn new(config: &RemoteFacilitatorConfig, env: &dyn EnvSource) -> Result<Self, String> {
        let mut headers = HeaderMap::new();
        for (name, var) in &config.headers_from_env {
            let value = env
                .var(var)
                .map(Secret::new)
                .ok_or_else(|| format!("facilitator {:?}: {var} is not set", config.name))?;
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("facilitator {:?}: bad header name {name:?}", config.name))?;
            let mut value = HeaderValue::from_str(value.expose()).map_err(|_| {
                format!(
                    "facilitator {:?}: {var} is not a valid header value",
                    config.name
                )
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let timeout = Duration::from_millis(config.timeout_ms);
        let http =
            crate::http_client::hardened(Duration::from_millis(config.connect_timeout_ms), timeout)
                .build()
                .map_err(|e| format!("facilitator {:?}: {e}", config.name))?;
        let mut base = config.url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Ok(Self {
            name: config.name.clone(),
            base,
            headers,
            http,
            timeout,
        })
    }

    fn endpoint(&self, path: &str) -> Result<Url, FacilitatorError> {
        self.base
            .join(path)
            .map_err(|e| FacilitatorError::Protocol(format!("bad facilitator URL: {e}")))
    }

    fn classify(&self, err: reqwest::Error) -> FacilitatorError {
        if err.is_timeout() {
            FacilitatorError::Timeout(self.timeout.as_millis() as u64)
        } else if err.is_connect() {
            FacilitatorError::Connect(err.without_url().to_string())
        } else {
            FacilitatorError::Transport(err.without_url().to_string())
        }
    }

    /// Sends and parses. A 4xx whose body still parses as `T` (reference facilitators answer
    /// business failures that way) is accepted; a 5xx is always `Status`, so failover can act.
    async fn exchange<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, FacilitatorError> {
        let response = request
            .headers(self.headers.clone())
            .send()
            .await
            .map_err(|e| self.classify(e))?;
        let status = response.status();
        if response
            .content_length()
            .is_some_and(|l| l > MAX_ANSWER_BYTES as u64)
        {
            return Err(FacilitatorError::Protocol("answer too large".into()));
        }
        let bytes = response.bytes().await.map_err(|e| self.classify(e))?;
        if bytes.len() > MAX_ANSWER_BYTES {
            return Err(FacilitatorError::Protocol("answer too large".into()));
        }
        if status.is_server_error() {
            return Err(FacilitatorError::Status(status.as_u16()));
        }
        match serde_json::from_slice::<T>(&bytes) {
            Ok(value) => Ok(value),
            Err(_) if !status.is_success() => Err(FacilitatorError::Status(status.as_u16())),
            Err(e) => Err(FacilitatorError::Protocol(e.to_string())),
        }
    }
}

#[async_trait]
impl Facilitator for RemoteFacilitator {
    fn name(&self) -> &str {
        &self.name
    }

    async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
        let url = self.endpoint("supported")?;
        self.exchange(self.http.get(url)).await
    }

    async fn verify(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<VerifyResponse, FacilitatorError> {
        let url = self.endpoint("verify")?;
        self.exchange(self.http.post(url).json(request)).await
    }

    async fn settle(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<SettleResponse, FacilitatorError> {
        let url = self.endpoint("settle")?;
        self.exchange(self.http.post(url).json(request)).await
    }
}
