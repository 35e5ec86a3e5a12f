//! A priced request: everything the payment layer needs, produced once by route parsing.
//!
//! Route parsing (the RPC routes today; any priced route family tomorrow) inserts one
//! `Arc<PricedRequest>` into the request extensions. The paygate takes the quote from it and
//! never re-prices or looks anything up; a priced route whose request lacks it is a wiring bug,
//! and the paygate refuses it (500) rather than call the upstream unpaid.

use std::sync::Arc;

use bytes::Bytes;

use crate::config::Surface;
use crate::pricing::{PriceError, Quote};
use crate::upstream::Provider;

/// The priced routes, by identity rather than by path string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteId {
    /// `POST /v1/x402/solana/{cluster}/{provider}/{surface}/{method}`.
    RpcMethod,
    /// `POST /v1/x402/solana/{cluster}/rpc` (single or batch).
    RpcStandard,
    /// `POST /v1/credits/topup`: a credit pack, paid with `exact` only.
    CreditsTopup,
    /// A paid route of a `[[services]]` entry (its own template is in [`Discovery::Http`]).
    Service,
}

impl RouteId {
    /// The route's path template, as the router mounts it.
    pub fn template(self) -> &'static str {
        match self {
            Self::RpcMethod => crate::routes::METHOD_ROUTE,
            Self::RpcStandard => crate::routes::STANDARD_ROUTE,
            Self::CreditsTopup => crate::routes::CREDITS_TOPUP_ROUTE,
            Self::Service => crate::routes::SERVICE_ROUTE,
        }
    }
}

/// What a route sells, for its discovery (Bazaar) entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// A method route: body `{"params": ...}` for one method.
    Method {
        /// The surface (decides the params shape).
        surface: Surface,
        /// The method.
        method: String,
    },
    /// The standard JSON-RPC endpoint.
    Standard,
    /// A credit pack: body `{"pack": "<name>"}`.
    CreditsTopup,
    /// A route of a configured HTTP service.
    Http(Arc<HttpDiscovery>),
}

/// How to call one route of a configured HTTP service, for its Bazaar entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpDiscovery {
    /// The HTTP method (`GET`, `POST`...).
    pub method: String,
    /// The public path template with `:param` parameters (`/weather/v1/forecast/:city`).
    pub route_template: String,
    /// Whether the template has parameters (the Bazaar `routeTemplate` is sent only then).
    pub parameterised: bool,
    /// JSON Schema of the query parameters (query methods) or the JSON body (body methods).
    pub input_schema: Option<serde_json::Value>,
    /// JSON Schema of the answer.
    pub output_schema: Option<serde_json::Value>,
}

impl HttpDiscovery {
    /// Methods whose input is a body rather than query parameters.
    pub fn has_body(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH")
    }
}

/// What the request costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charge {
    /// The price of the calls that will reach the provider.
    Quote(Quote),
    /// Nothing will reach the provider (every element refused, or only a probe): nothing to
    /// sell, the route answers by itself.
    Nothing,
    /// The provider has no price (a config that sells it unpaid only): refused when payments
    /// are on.
    Unpriced(PriceError),
}

/// The wallet that paid for the request (inserted by the paygate before the inner handler
/// runs, for handlers that answer about the payer, like a credit top-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payer(pub String);

/// The request extension every priced route carries.
#[derive(Debug, Clone)]
pub struct PricedRequest {
    /// Which route.
    pub route: RouteId,
    /// The resource URL: the configured public base URL plus the request path (never `Host`).
    pub resource: String,
    /// The price.
    pub charge: Charge,
    /// The provider that will be called.
    pub provider: Arc<Provider>,
    /// CAIP-2 network of the cluster the call goes to: only payments on this network are
    /// offered (a mainnet call is never sold for a devnet payment).
    pub network: &'static str,
    /// How many calls will reach the provider (charged against its budget), priced or not.
    pub calls: usize,
    /// What the route sells, for the challenge's Bazaar extension.
    pub discovery: Discovery,
    /// The body as received: with the method and path it defines the request a payment buys.
    pub body: Bytes,
    /// Credits the payment's settlement grants its payer (a top-up pack); such a request is
    /// never paid with credits.
    pub grants: Option<u64>,
}
