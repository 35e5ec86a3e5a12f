//! Calls to the providers: a pooled hyper client with connect and total timeouts, redirects
//! off, no proxy from the environment and a response size cap; endpoints with their API keys
//! attached; and per-endpoint health for `/status`.
//!
//! Invariant: the API key exists only inside [`Endpoint`] and the request the client builds
//! from it. hyper's errors never carry the URI, and the configured services' reqwest errors are
//! built with `reqwest::Error::without_url`, so no message or log line can carry a keyed URL.

mod client;
mod endpoint;
mod error;
mod health;
mod read;
mod registry;

pub(crate) use client::UpstreamClient;
pub(crate) use endpoint::Endpoint;
pub(crate) use error::UpstreamError;
pub(crate) use health::{
    Circuit, EndpointHealth, HealthDetail, HealthPolicy, HealthSnapshot, RouteView, Source,
};
pub(crate) use read::{classify, read_capped};
pub(crate) use registry::{Origin, Provider, Providers};
