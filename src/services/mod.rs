//! Configured HTTP services (`[[services]]`): any HTTP API, mounted at
//! `{services_base_path}/{id}/…` (or its own `mount`), each route paid (the same x402 pipeline
//! as the RPC routes), free (streamed) or behind a wallet sign-in. The Tokens API is one of
//! them: `[tokens]` is a shorthand the config turns into a service mounted at `/v1/x402/tokens`.
//!
//! Read in this order: [`gate`] (the route layer: match the route, price it, then the paygate,
//! the sign-in layer or nothing), [`forward`] (the upstream request built from scratch, the
//! answer relayed), [`path`] (what a client path may contain).
//!
//! Invariants:
//! - a path no configured route matches is a 404 and no upstream call;
//! - the upstream request carries the method, the path under `base_url` (which it cannot leave:
//!   `.`/`..` segments, encoded or not, are a 400 before anything else), the query (without a
//!   parameter named like the credential), a JSON body (another content type is a 415), the
//!   client's `Accept`, and the credentials; another client header only when the route names it;
//! - an upstream that refuses the gateway's credential (401/403), rate-limits it, redirects or
//!   fails is a 502/503/504 for the client, never its own 401 (which would read as a failed
//!   sign-in), and the credential never reaches a client, a log or an error;
//! - only the answer's status, `content-type` and body come back: no upstream header (which
//!   could echo a credential) reaches the client;
//! - a paid route settles only after a 2xx ([`crate::exchange::UpstreamOutcome::Success`]).

mod forward;
mod gate;
pub(crate) mod path;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Access, Cluster, Config, Credential, ServiceConfig, ServiceRoute};
use crate::priced::HttpDiscovery;
use crate::upstream::Provider;

pub(crate) use forward::forward;
pub(crate) use gate::{service_gate, ServiceState};
pub(crate) use path::{check_path, normalize};

/// `/v1/x402/tokens/{*path}` when no service is mounted there (no `[tokens]`).
pub(crate) async fn tokens_not_configured() -> crate::error::ApiError {
    crate::error::ApiError::new(
        http::StatusCode::NOT_FOUND,
        "tokens_not_configured",
        "the Tokens API is not configured on this gateway ([tokens], or a [[services]] entry \
         with mount = \"/v1/x402/tokens\")",
    )
}

/// One configured service, built once.
#[derive(Debug)]
pub(crate) struct Service {
    /// Its config (without credentials: those live in `credentials`).
    pub(crate) config: ServiceConfig,
    /// Where it is mounted (`/base/id`, or its `mount`).
    pub(crate) mount: String,
    /// Its routes, in config order.
    pub(crate) routes: Vec<Route>,
    /// Route index per HTTP method.
    matchers: BTreeMap<String, matchit::Router<usize>>,
    /// The cluster whose payments buy its paid routes.
    pub(crate) cluster: Cluster,
    /// The budget its calls count against (`[rate_limits] providers.<id>`), in the paygate's
    /// terms: a provider without endpoints named after the service.
    pub(crate) budget: Arc<Provider>,
    credentials: Vec<Credential>,
    http: reqwest::Client,
    timeout: Duration,
    max_body_bytes: usize,
}

/// One route of a service, with its price in atomic units.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    /// The parsed config.
    pub(crate) spec: ServiceRoute,
    /// The price, for paid routes (atomic units of the accepted asset on the service's cluster).
    pub(crate) amount: Option<u64>,
    /// How to call it, for its Bazaar entry (and the catalog).
    pub(crate) discovery: Arc<HttpDiscovery>,
}

impl Route {
    /// The public path template with `{param}` parameters (`/weather/v1/forecast/{city}`).
    pub(crate) fn public_template(&self, mount: &str) -> String {
        let pattern = self.spec.pattern.replace("{*", "{");
        if pattern == "/" {
            format!("{mount}/")
        } else {
            format!("{mount}{pattern}")
        }
    }
}

/// Every configured service.
#[derive(Debug, Default)]
pub(crate) struct Services {
    list: Vec<Arc<Service>>,
}

impl Services {
    /// Builds the services of `config` (validated: the routes parse and the prices convert).
    pub(crate) fn from_config(config: &Config) -> Result<Self, String> {
        let mut list = Vec::with_capacity(config.services.len());
        for s in &config.services {
            list.push(Arc::new(Service::new(config, s)?));
        }
        Ok(Self { list })
    }

    /// Whether a service is mounted at `mount`.
    pub(crate) fn mounted_at(&self, mount: &str) -> bool {
        self.list.iter().any(|s| s.mount == mount)
    }

    /// All services, in config order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Service>> {
        self.list.iter()
    }
}

impl Service {
    fn new(config: &Config, s: &ServiceConfig) -> Result<Self, String> {
        let routes = s.parsed_routes().map_err(|e| e.to_string())?;
        let decimals = config.service_accept(s).map(|a| a.decimals);
        let mut matchers: BTreeMap<String, matchit::Router<usize>> = BTreeMap::new();
        let mut built = Vec::with_capacity(routes.len());
        for (i, spec) in routes.into_iter().enumerate() {
            let amount = match (spec.access, decimals) {
                (Access::Paid(price), Some(decimals)) => Some(
                    price
                        .atomic(decimals)
                        .map_err(|e| format!("service {:?}: price {e}", s.id))?,
                ),
                // No accepted asset on the service's cluster: payments are off (validated), or
                // the paygate answers 404 network_not_sold; atomic prices still show.
                (Access::Paid(crate::config::Price::Atomic(a)), None) => Some(a),
                _ => None,
            };
            matchers
                .entry(spec.method.to_string())
                .or_default()
                .insert(spec.pattern.clone(), i)
                .map_err(|e| format!("service {:?}: route {}: {e}", s.id, spec.pattern))?;
            let mount = config.service_mount(s);
            let discovery = Arc::new(HttpDiscovery {
                method: spec.method.to_string(),
                route_template: colon_template(&mount, &spec.pattern),
                parameterised: spec.pattern.contains('{'),
                input_schema: spec.input_schema.clone(),
                output_schema: spec.output_schema.clone(),
            });
            built.push(Route {
                spec,
                amount,
                discovery,
            });
        }
        let timeout = Duration::from_millis(s.timeout_ms);
        let http =
            crate::http_client::hardened(Duration::from_millis(s.connect_timeout_ms), timeout)
                .user_agent(concat!("x402-gateway/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("service {:?}: http client: {e}", s.id))?;
        let mut public = s.clone();
        public.secrets = Vec::new();
        let cluster = config.service_cluster(s);
        let budget = Arc::new(Provider::budget_only(&s.id));
        Ok(Self {
            mount: config.service_mount(s),
            config: public,
            routes: built,
            matchers,
            cluster,
            budget,
            credentials: s.secrets.clone(),
            http,
            timeout,
            max_body_bytes: config.server.max_body_bytes,
        })
    }

    /// The route `method` + `path` (below the mount, starting with `/`) reaches, if any.
    pub(crate) fn find(&self, method: &http::Method, path: &str) -> Option<usize> {
        // HEAD is answered as GET would be, body dropped by the server.
        let method = if method == http::Method::HEAD {
            "GET"
        } else {
            method.as_str()
        };
        self.matchers.get(method)?.at(path).ok().map(|m| *m.value)
    }
}

/// The Bazaar's spelling of a template: `:param` (`/weather/v1/forecast/:city`).
fn colon_template(mount: &str, pattern: &str) -> String {
    let path: Vec<String> = pattern
        .split('/')
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => format!(":{}", name.trim_start_matches('*')),
                None => s.to_string(),
            },
        )
        .collect();
    let path = path.join("/");
    if path == "/" {
        format!("{mount}/")
    } else {
        format!("{mount}{path}")
    }
}
