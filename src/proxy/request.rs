//! Parsing an RPC route's request into an [`RpcRequest`] and a [`PricedRequest`], once,
//! before any other layer needs them. One route layer per route: the route decides the kind,
//! the path parameters are parsed into types once.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use super::body::read_json_body;
use super::{ProxyError, RpcRoutes};
use crate::config::{Cluster, Surface};
use crate::exchange::{Exchange, RpcCall};
use crate::guardrails;
use crate::jsonrpc::{self, Body, BodyError, Call, Element};
use crate::paygate::challenge::resource_url;
use crate::priced::{Charge, Discovery, PricedRequest, RouteId};
use crate::pricing;
use crate::routing::{self, Candidate, Plan};
use crate::upstream::{Endpoint, Provider};
use crate::x402::header::{decode_header_bytes, MAX_PAYMENT_HEADER_BYTES, PAYMENT_SIGNATURE};
use crate::x402::PaymentHeader;

/// Which RPC route the request came in on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RouteKind {
    /// `/v1/x402/solana/{cluster}/{provider}/{surface}/{method}`: the gateway builds the envelope.
    Method {
        /// The surface in the path.
        surface: Surface,
        /// The method in the path.
        method: String,
    },
    /// `/v1/x402/solana/{cluster}/rpc`: a standard JSON-RPC endpoint, single or batch.
    Standard,
}

/// A validated RPC request: where it goes and what it asks. Every [`Element::Call`] in `body`
/// has passed the allow-list and the guardrails; refused batch elements are `Element::Invalid`.
#[derive(Debug, Clone)]
pub(crate) struct RpcRequest {
    /// The cluster.
    pub cluster: Cluster,
    /// The first provider of the plan (resolved once, at parsing): the one the payment's
    /// provider budget is charged to.
    pub provider: Arc<Provider>,
    /// The providers to try, in order (one for a per-method route).
    pub plan: Plan,
    /// The price, fixed here: for the standard route the highest of every provider the plan
    /// may use, so failover never changes it.
    pub charge: Charge,
    /// The route it came in on.
    pub route: RouteKind,
    /// The calls.
    pub body: Body,
    /// The body bytes as received (empty for a probe).
    pub raw: Bytes,
}

impl RpcRequest {
    /// The valid calls, in order.
    pub(crate) fn calls(&self) -> impl Iterator<Item = &Call> {
        let elements: &[Element] = match &self.body {
            Body::Single(e) => std::slice::from_ref(e),
            Body::Batch(items) => items,
        };
        elements.iter().filter_map(|e| match e {
            Element::Call(c) => Some(c),
            Element::Invalid { .. } => None,
        })
    }

    /// The method for logs: the single method, or `batch`.
    pub(crate) fn log_method(&self) -> &str {
        match &self.body {
            Body::Single(Element::Call(c)) => &c.method,
            Body::Single(Element::Invalid { .. }) => "invalid",
            Body::Batch(_) => "batch",
        }
    }

    /// Prices the request for the payment layer.
    fn priced(&self, routes: &RpcRoutes, path: &str) -> PricedRequest {
        let charge = self.charge.clone();
        let (route, discovery) = match &self.route {
            RouteKind::Method { surface, method } => (
                RouteId::RpcMethod,
                Discovery::Method {
                    surface: *surface,
                    method: method.clone(),
                },
            ),
            RouteKind::Standard => (RouteId::RpcStandard, Discovery::Standard),
        };
        PricedRequest {
            route,
            resource: resource_url(&routes.public_base_url, path),
            charge,
            provider: self.provider.clone(),
            network: self.cluster.caip2(),
            calls: self.calls().count(),
            discovery,
            body: self.raw.clone(),
            grants: None,
        }
    }
}

/// Path parameters of the method route.
#[derive(Debug, Deserialize)]
pub(crate) struct MethodPath {
    cluster: String,
    provider: String,
    surface: String,
    method: String,
}

/// Path parameters of the standard route.
#[derive(Debug, Deserialize)]
pub(crate) struct StandardPath {
    cluster: String,
}

/// The body of a method route: `{"params": ...}`, nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MethodBody {
    #[serde(default)]
    params: Option<Value>,
}

/// Route layer of the method route: reads and validates the body into an [`RpcRequest`] and a
/// [`PricedRequest`] extension, or answers the error itself. GET and HEAD are probes: they parse
/// as an empty body.
pub(crate) async fn parse_method_route(
    State(routes): State<Arc<RpcRoutes>>,
    path: Result<Path<MethodPath>, PathRejection>,
    request: Request,
    next: Next,
) -> Response {
    let path = match path {
        Ok(Path(path)) => path,
        Err(rejection) => return path_error(rejection),
    };
    if routes.providers.get(&path.provider).is_none() {
        // Maybe registered on another instance a moment ago.
        routes.registry.refresh_on_miss().await;
    }
    parse(&routes, request, next, |routes, headers, raw| {
        parse_method(routes, &path, headers, raw)
    })
    .await
}

/// Route layer of the standard JSON-RPC endpoint (single or batch).
pub(crate) async fn parse_standard_route(
    State(routes): State<Arc<RpcRoutes>>,
    path: Result<Path<StandardPath>, PathRejection>,
    request: Request,
    next: Next,
) -> Response {
    let path = match path {
        Ok(Path(path)) => path,
        Err(rejection) => return path_error(rejection),
    };
    parse(&routes, request, next, |routes, headers, raw| {
        parse_standard(routes, &path, headers, raw)
    })
    .await
}

/// A path axum could not decode (e.g. a percent-escape that is not UTF-8): our JSON-RPC error,
/// not axum's plain-text 400.
fn path_error(rejection: PathRejection) -> Response {
    ProxyError::InvalidRequest {
        id: Value::Null,
        message: rejection.body_text(),
    }
    .into_response()
}

async fn parse(
    routes: &RpcRoutes,
    request: Request,
    next: Next,
    parse_body: impl FnOnce(&RpcRoutes, &HeaderMap, Bytes) -> Result<RpcRequest, ProxyError>,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let raw = if parts.method == Method::GET || parts.method == Method::HEAD {
        Bytes::new()
    } else {
        match read_json_body(&parts.headers, body, routes.limits.max_body_bytes).await {
            Ok(bytes) => bytes,
            Err(e) => return e.into_response(),
        }
    };
    match parse_body(routes, &parts.headers, raw.clone()) {
        Ok(rpc) => {
            let priced = rpc.priced(routes, parts.uri.path());
            let mut call = RpcCall {
                method: rpc.log_method().to_string(),
                provider: rpc.provider.name().to_string(),
                cluster: rpc.cluster,
            };
            parts.extensions.insert(Arc::new(priced));
            parts.extensions.insert(Arc::new(rpc));
            let mut response = next
                .run(Request::from_parts(parts, axum::body::Body::empty()))
                .await;
            // Logs and usage name the provider that served the call (after failover), not
            // the first choice.
            if let Some(served) = response
                .headers()
                .get(routing::PROVIDER_HEADER)
                .and_then(|v| v.to_str().ok())
            {
                served.clone_into(&mut call.provider);
            }
            Exchange::of(&mut response).rpc = Some(call);
            response
        }
        Err(e) => e.into_response_for(single_request_id(&raw).as_ref()),
    }
}

/// The id of a body that is one JSON-RPC request object, when it has a readable one: an error
/// found before (or apart from) parsing it still answers with the caller's id.
fn single_request_id(raw: &[u8]) -> Option<Value> {
    if raw.first() != Some(&b'{') {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: Option<Value>,
    }
    serde_json::from_slice::<IdOnly>(raw)
        .ok()
        .and_then(|r| r.id)
        .filter(|id| id.is_string() || id.is_number())
}

fn cluster_of(raw: &str) -> Result<Cluster, ProxyError> {
    Cluster::parse(raw).ok_or_else(|| {
        ProxyError::NotFound(format!("unknown cluster {raw:?}: use mainnet or devnet"))
    })
}

fn parse_method(
    routes: &RpcRoutes,
    path: &MethodPath,
    headers: &HeaderMap,
    raw: Bytes,
) -> Result<RpcRequest, ProxyError> {
    let cluster = cluster_of(&path.cluster)?;
    let surface = Surface::parse(&path.surface).ok_or_else(|| {
        ProxyError::NotFound(format!(
            "unknown surface {:?}: use rpc or das",
            path.surface
        ))
    })?;
    let method = path.method.clone();
    let provider = routes
        .providers
        .get(&path.provider)
        .ok_or_else(|| ProxyError::NotFound(format!("unknown provider {:?}", path.provider)))?;
    if !provider.sells(surface, &method) {
        return Err(ProxyError::MethodNotFound {
            id: Value::Null,
            method,
        });
    }
    let endpoint = endpoint_of(&provider, cluster)?;
    let limits = &routes.limits;

    let params = if raw.is_empty() {
        None
    } else {
        if jsonrpc::exceeds_depth(&raw, limits.max_json_depth) {
            return Err(BodyError::TooDeep(limits.max_json_depth).into());
        }
        let value: Value =
            serde_json::from_slice(&raw).map_err(|e| BodyError::Parse(e.to_string()))?;
        let body: MethodBody =
            serde_json::from_value(value).map_err(|e| ProxyError::InvalidRequest {
                id: Value::Null,
                message: format!("body must be {{\"params\": ...}}: {e}"),
            })?;
        body.params
    };
    guardrails::check(surface, &method, params.as_ref(), &routes.guardrails).map_err(|v| {
        ProxyError::InvalidParams {
            id: Value::Null,
            error: Box::new(v.to_error_object()),
        }
    })?;
    let call = Call {
        id: Some(Value::from(1)),
        method: method.clone(),
        params,
    };
    let charge = routes.pricing.signed_under(
        || signed_amount(headers),
        |tariff| {
            let charge = match pricing::quote(tariff, &provider.config, [&call]) {
                Ok(Some(quote)) => Charge::Quote(quote),
                Ok(None) => Charge::Nothing,
                Err(e) => Charge::Unpriced(e),
            };
            let amount = quoted(&charge);
            (charge, amount)
        },
    );
    Ok(RpcRequest {
        cluster,
        provider: provider.clone(),
        plan: Plan::fixed(Candidate {
            provider: provider.clone(),
            endpoint,
            cost: None,
        }),
        charge,
        route: RouteKind::Method {
            surface,
            method: method.clone(),
        },
        body: Body::Single(Element::Call(call)),
        raw,
    })
}

fn parse_standard(
    routes: &RpcRoutes,
    path: &StandardPath,
    headers: &HeaderMap,
    raw: Bytes,
) -> Result<RpcRequest, ProxyError> {
    let cluster = cluster_of(&path.cluster)?;
    let strategy = routing::strategy_for(&routes.routing, cluster, headers).map_err(|message| {
        ProxyError::InvalidRequest {
            id: Value::Null,
            message,
        }
    })?;
    let providers = routes.providers.snapshot();
    let pool = routing::pool(&providers, &routes.routing, cluster);
    if pool.is_empty() {
        return Err(ProxyError::ProviderUnavailable(format!(
            "no provider is enabled for {cluster}"
        )));
    }
    let limits = &routes.limits;
    let body = jsonrpc::parse_body(&raw, limits.max_json_depth, limits.max_batch)?;
    // A method is sold on the standard route when some provider of the pool sells it.
    let check = |call: Call| -> Result<Call, ProxyError> {
        let id = call.id.clone().unwrap_or(Value::Null);
        let Some(surface) = pool
            .iter()
            .find_map(|(p, _)| p.config.surface_of(&call.method))
        else {
            return Err(ProxyError::MethodNotFound {
                id,
                method: call.method,
            });
        };
        guardrails::check(
            surface,
            &call.method,
            call.params.as_ref(),
            &routes.guardrails,
        )
        .map_err(|v| ProxyError::InvalidParams {
            id,
            error: Box::new(v.to_error_object()),
        })?;
        Ok(call)
    };
    let body = match body {
        Body::Single(Element::Invalid { id, error }) => {
            return Err(ProxyError::InvalidRequest {
                id,
                message: error
                    .message
                    .trim_start_matches("invalid request: ")
                    .to_string(),
            })
        }
        Body::Single(Element::Call(call)) => Body::Single(Element::Call(check(call)?)),
        Body::Batch(items) => Body::Batch(
            items
                .into_iter()
                .map(|item| match item {
                    Element::Call(call) => match check(call) {
                        Ok(call) => Element::Call(call),
                        Err(refused) => {
                            let (id, error) = refused.to_error();
                            Element::Invalid { id, error }
                        }
                    },
                    invalid => invalid,
                })
                .collect(),
        ),
    };
    let mut rpc = RpcRequest {
        cluster,
        provider: pool[0].0.clone(),
        plan: Plan::fixed(Candidate {
            provider: pool[0].0.clone(),
            endpoint: pool[0].1.clone(),
            cost: None,
        }),
        charge: Charge::Nothing,
        route: RouteKind::Standard,
        body,
        raw,
    };
    let calls: Vec<&Call> = rpc.calls().collect();
    let (candidates, charge) = routes.pricing.signed_under(
        || signed_amount(headers),
        |tariff| {
            let (candidates, charge) = routing::candidates(&pool, &calls, tariff);
            let amount = quoted(&charge);
            ((candidates, charge), amount)
        },
    );
    if candidates.is_empty() {
        // Every method is sold by some provider, but none sells all of them.
        return Err(ProxyError::MethodNotFound {
            id: Value::Null,
            method: format!(
                "{} (no single provider of {cluster} sells every method of this batch; split it)",
                calls
                    .iter()
                    .map(|c| c.method.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let plan = routing::decide(strategy, candidates, tokio::time::Instant::now());
    let Some(primary) = plan.primary() else {
        return Err(ProxyError::NoHealthyProvider(format!(
            "every provider of {cluster} that sells this call is failing (circuit open)"
        )));
    };
    rpc.provider = primary.provider.clone();
    rpc.charge = charge;
    rpc.plan = plan;
    Ok(rpc)
}

fn endpoint_of(provider: &Provider, cluster: Cluster) -> Result<Endpoint, ProxyError> {
    let name = provider.name();
    if !provider.config.is_enabled() {
        let why = provider
            .config
            .disabled_reason
            .as_deref()
            .unwrap_or("disabled");
        return Err(ProxyError::ProviderUnavailable(format!(
            "provider {name:?} is not enabled ({why})"
        )));
    }
    provider
        .endpoints
        .get(&cluster)
        .cloned()
        .ok_or_else(|| ProxyError::NotFound(format!("provider {name:?} does not serve {cluster}")))
}

/// The amount of a quoted charge.
fn quoted(charge: &Charge) -> Option<u64> {
    match charge {
        Charge::Quote(quote) => Some(quote.amount),
        _ => None,
    }
}

/// The amount a `PAYMENT-SIGNATURE` says its client signed: read only in the moments after a
/// price moved (see `Pricing::signed_under`); the paygate decodes and checks the payment
/// itself. A v1 `X-PAYMENT` carries no amount outside its transaction: it is priced at the
/// tariff in force.
fn signed_amount(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(PAYMENT_SIGNATURE)?;
    let json = decode_header_bytes(value.as_bytes(), MAX_PAYMENT_HEADER_BYTES).ok()?;
    match PaymentHeader::from_json(&json).ok()? {
        PaymentHeader::V2(payment) => payment.accepted.amount.parse().ok(),
        PaymentHeader::V1(_) => None,
    }
}
