//! One provider × cluster endpoint, with its API key attached the way the provider wants it.

use std::fmt;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use url::Url;

use super::{EndpointHealth, HealthPolicy};
use crate::config::{Cluster, KeyPlacement, Secret};

/// A ready-to-call upstream endpoint. `Debug` shows the provider and cluster, never the URL.
#[derive(Clone)]
pub struct Endpoint {
    provider: Arc<str>,
    cluster: Cluster,
    /// The full URL, key included when it goes in the path or query.
    url: Url,
    /// The same, parsed once for the client (every call sends to it).
    uri: http::Uri,
    /// The key header, when the provider takes the key as a header.
    key_header: Option<(HeaderName, HeaderValue)>,
    health: Arc<EndpointHealth>,
}

impl Endpoint {
    /// Builds the endpoint for `base` with `key` placed as `placement` says.
    pub fn new(
        provider: &str,
        cluster: Cluster,
        base: &Url,
        placement: &KeyPlacement,
        key: Option<&Secret>,
    ) -> Result<Self, String> {
        let mut url = base.clone();
        let mut key_header = None;
        match (placement, key) {
            (KeyPlacement::None, _) => {}
            (_, None) => return Err(format!("provider {provider:?} needs an API key")),
            (KeyPlacement::Path, Some(key)) => {
                url.path_segments_mut()
                    .map_err(|_| format!("provider {provider:?}: URL cannot take a path segment"))?
                    .pop_if_empty()
                    .push(key.expose());
            }
            (KeyPlacement::Query { param }, Some(key)) => {
                url.query_pairs_mut().append_pair(param, key.expose());
            }
            (KeyPlacement::Header { name }, Some(key)) => {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("provider {provider:?}: bad key header name"))?;
                let mut value = HeaderValue::from_str(key.expose()).map_err(|_| {
                    format!("provider {provider:?}: API key is not a valid header value")
                })?;
                value.set_sensitive(true);
                key_header = Some((name, value));
            }
        }
        // Not `{e}`: the message could quote the keyed URL.
        let uri = http::Uri::try_from(url.as_str())
            .map_err(|_| format!("provider {provider:?}: URL is not a valid HTTP URI"))?;
        Ok(Self {
            provider: provider.into(),
            cluster,
            url,
            uri,
            key_header,
            health: Arc::default(),
        })
    }

    /// The same endpoint with a fresh health record kept by `policy`.
    pub fn with_health_policy(mut self, policy: HealthPolicy) -> Self {
        self.health = Arc::new(EndpointHealth::new(policy));
        self
    }

    /// The provider's name.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The cluster served.
    pub fn cluster(&self) -> Cluster {
        self.cluster
    }

    /// The URL for a Solana JSON-RPC client of our own (the chain audit), when the key (if
    /// any) is part of it; `None` when the provider wants the key in a header. Carries the key:
    /// never log it.
    pub(crate) fn rpc_url(&self) -> Option<&Url> {
        self.key_header.is_none().then_some(&self.url)
    }

    /// The health record.
    pub fn health(&self) -> &EndpointHealth {
        &self.health
    }

    /// The keyed URL (tests compare it).
    #[cfg(test)]
    fn url(&self) -> &Url {
        &self.url
    }

    /// The keyed URI; only the client may use it, to send the request.
    pub(super) fn uri(&self) -> &http::Uri {
        &self.uri
    }

    /// The key header, if any.
    pub(super) fn key_header(&self) -> Option<&(HeaderName, HeaderValue)> {
        self.key_header.as_ref()
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("provider", &self.provider)
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn key_placements() {
        let key = Secret::new("K3Y");
        let e = Endpoint::new(
            "a",
            Cluster::Mainnet,
            &url("https://x.test/v2"),
            &KeyPlacement::Path,
            Some(&key),
        )
        .unwrap();
        assert_eq!(e.url().as_str(), "https://x.test/v2/K3Y");
        let e = Endpoint::new(
            "a",
            Cluster::Mainnet,
            &url("https://x.test/v2/"),
            &KeyPlacement::Path,
            Some(&key),
        )
        .unwrap();
        assert_eq!(e.url().as_str(), "https://x.test/v2/K3Y");
        let q = KeyPlacement::Query {
            param: "api-key".into(),
        };
        let e = Endpoint::new(
            "h",
            Cluster::Devnet,
            &url("https://y.test/"),
            &q,
            Some(&key),
        )
        .unwrap();
        assert_eq!(e.url().as_str(), "https://y.test/?api-key=K3Y");
        let h = KeyPlacement::Header {
            name: "x-api-key".into(),
        };
        let e = Endpoint::new(
            "t",
            Cluster::Devnet,
            &url("https://z.test/"),
            &h,
            Some(&key),
        )
        .unwrap();
        assert_eq!(e.url().as_str(), "https://z.test/");
        assert!(e.key_header().unwrap().1.is_sensitive());
        assert!(!format!("{e:?}").contains("K3Y"));
    }
}
