//! The JSON-RPC proxy routes.
//!
//! A request goes through two steps with the payment (or rate-limit) layer between them:
//! [`parse_method_route`] / [`parse_standard_route`] (route layers, one per route) read and
//! validate the body into an [`RpcRequest`] extension, price it into a
//! [`crate::priced::PricedRequest`] extension, or answer the error themselves; [`forward`] (the
//! handler) calls the upstream with it. Nothing reaches a provider that did not pass parsing,
//! the method allow-list and the guardrails.

mod body;
mod describe;
mod error;
mod forward;
mod request;

use std::sync::Arc;

use url::Url;

pub(crate) use describe::describe_method;
pub(crate) use error::ProxyError;
pub(crate) use forward::forward;
pub(crate) use request::{parse_method_route, parse_standard_route, RouteKind, RpcRequest};

use crate::config::{Config, GuardrailsConfig, RoutingConfig};
use crate::pricing::Pricing;
use crate::routing::registry::Registry;
use crate::upstream::{Providers, UpstreamClient};

/// What the RPC routes need of the application, and nothing more.
#[derive(Debug)]
pub struct RpcRoutes {
    /// The providers (configured and registered).
    pub providers: Arc<Providers>,
    /// How the standard route picks and fails over among them.
    pub routing: RoutingConfig,
    /// The run-time registrations (re-read when a request names an unknown provider).
    pub(crate) registry: Arc<Registry>,
    /// The shared outbound client.
    pub upstream: UpstreamClient,
    /// Body and batch limits.
    pub limits: BodyLimits,
    /// Parameter guardrails.
    pub guardrails: GuardrailsConfig,
    /// The live prices (every request is priced at parsing; the paygate only reads the quote).
    pub pricing: Pricing,
    /// Resource URLs are named under this, never under `Host`.
    pub public_base_url: Url,
}

/// The request-size limits of `[server]` that parsing enforces.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest body.
    pub max_body_bytes: usize,
    /// Deepest JSON nesting.
    pub max_json_depth: usize,
    /// Most elements in a batch.
    pub max_batch: usize,
}

impl RpcRoutes {
    /// From the config and the application's shared parts.
    pub(crate) fn new(
        config: &Config,
        registry: Arc<Registry>,
        upstream: UpstreamClient,
        pricing: Pricing,
    ) -> Self {
        Self {
            providers: registry.providers().clone(),
            registry,
            routing: config.routing.clone(),
            upstream,
            limits: BodyLimits {
                max_body_bytes: config.server.max_body_bytes,
                max_json_depth: config.server.max_json_depth,
                max_batch: config.server.max_batch,
            },
            guardrails: config.guardrails.clone(),
            pricing,
            public_base_url: config.server.public_base_url.clone(),
        }
    }
}
