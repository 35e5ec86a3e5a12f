//! Parsing an RPC route's request into an [`RpcRequest`], once, before any other layer needs it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use super::body::read_json_body;
use super::ProxyError;
use crate::app::AppState;
use crate::config::{Cluster, Surface};
use crate::guardrails;
use crate::jsonrpc::{self, Body, BodyError, Call, Element};
use crate::upstream::Endpoint;

/// Which RPC route the request came in on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteKind {
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
pub struct RpcRequest {
    /// The cluster.
    pub cluster: Cluster,
    /// The provider's name.
    pub provider: String,
    /// The endpoint that will be called.
    pub endpoint: Endpoint,
    /// The route it came in on.
    pub route: RouteKind,
    /// The calls.
    pub body: Body,
    /// The body bytes as received (empty for a probe).
    pub raw: Bytes,
}

impl RpcRequest {
    /// The valid calls, in order.
    pub fn calls(&self) -> impl Iterator<Item = &Call> {
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
    pub fn log_method(&self) -> &str {
        match &self.body {
            Body::Single(Element::Call(c)) => &c.method,
            Body::Single(Element::Invalid { .. }) => "invalid",
            Body::Batch(_) => "batch",
        }
    }
}

/// The body of a method route: `{"params": ...}`, nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MethodBody {
    #[serde(default)]
    params: Option<Value>,
}

/// Route layer: reads and validates the body into an [`RpcRequest`] extension, or answers the
/// error itself. GET and HEAD are probes: they parse as an empty body.
pub async fn parse_rpc_request(
    State(app): State<AppState>,
    Path(path): Path<HashMap<String, String>>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let limits = &app.config.server;
    let raw = if parts.method == Method::GET || parts.method == Method::HEAD {
        Bytes::new()
    } else {
        match read_json_body(&parts.headers, body, limits.max_body_bytes).await {
            Ok(bytes) => bytes,
            Err(e) => return e.into_response(),
        }
    };
    let parsed = match path.get("provider") {
        Some(provider) => parse_method_route(&app, &path, provider, raw),
        None => parse_standard_route(&app, &path, raw),
    };
    match parsed {
        Ok(rpc) => {
            parts.extensions.insert(Arc::new(rpc));
            next.run(Request::from_parts(parts, axum::body::Body::empty()))
                .await
        }
        Err(e) => e.into_response(),
    }
}

fn cluster_of(path: &HashMap<String, String>) -> Result<Cluster, ProxyError> {
    let raw = path.get("cluster").map(String::as_str).unwrap_or("");
    Cluster::parse(raw).ok_or_else(|| {
        ProxyError::NotFound(format!("unknown cluster {raw:?}: use mainnet or devnet"))
    })
}

fn parse_method_route(
    app: &AppState,
    path: &HashMap<String, String>,
    provider_name: &str,
    raw: Bytes,
) -> Result<RpcRequest, ProxyError> {
    let cluster = cluster_of(path)?;
    let surface_raw = path.get("surface").map(String::as_str).unwrap_or("");
    let surface = Surface::parse(surface_raw).ok_or_else(|| {
        ProxyError::NotFound(format!("unknown surface {surface_raw:?}: use rpc or das"))
    })?;
    let method = path.get("method").cloned().unwrap_or_default();
    let provider = app
        .providers
        .get(provider_name)
        .ok_or_else(|| ProxyError::NotFound(format!("unknown provider {provider_name:?}")))?;
    if !provider.sells(surface, &method) {
        return Err(ProxyError::MethodNotFound {
            id: Value::Null,
            method,
        });
    }
    let endpoint = endpoint_of(app, provider_name, cluster)?;

    let params = if raw.is_empty() {
        None
    } else {
        if jsonrpc::exceeds_depth(&raw, app.config.server.max_json_depth) {
            return Err(BodyError::TooDeep(app.config.server.max_json_depth).into());
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
    guardrails::check(surface, &method, params.as_ref(), &app.config.guardrails).map_err(|v| {
        ProxyError::InvalidParams {
            id: Value::Null,
            error: Box::new(v.to_error_object()),
        }
    })?;
    Ok(RpcRequest {
        cluster,
        provider: provider_name.to_string(),
        endpoint,
        route: RouteKind::Method {
            surface,
            method: method.clone(),
        },
        body: Body::Single(Element::Call(Call {
            id: Some(Value::from(1)),
            method,
            params,
        })),
        raw,
    })
}

fn parse_standard_route(
    app: &AppState,
    path: &HashMap<String, String>,
    raw: Bytes,
) -> Result<RpcRequest, ProxyError> {
    let cluster = cluster_of(path)?;
    let (provider, endpoint) = app.providers.first_for(cluster).ok_or_else(|| {
        ProxyError::ProviderUnavailable(format!("no provider is enabled for {cluster}"))
    })?;
    let limits = &app.config.server;
    let body = jsonrpc::parse_body(&raw, limits.max_json_depth, limits.max_batch)?;
    let check = |call: Call| -> Result<Call, ProxyError> {
        let id = call.id.clone().unwrap_or(Value::Null);
        let Some(surface) = provider.config.surface_of(&call.method) else {
            return Err(ProxyError::MethodNotFound {
                id,
                method: call.method,
            });
        };
        guardrails::check(
            surface,
            &call.method,
            call.params.as_ref(),
            &app.config.guardrails,
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
    Ok(RpcRequest {
        cluster,
        provider: provider.name().to_string(),
        endpoint: endpoint.clone(),
        route: RouteKind::Standard,
        body,
        raw,
    })
}

fn endpoint_of(app: &AppState, provider: &str, cluster: Cluster) -> Result<Endpoint, ProxyError> {
    let p = app
        .providers
        .get(provider)
        .ok_or_else(|| ProxyError::NotFound(format!("unknown provider {provider:?}")))?;
    if !p.config.is_enabled() {
        let why = p.config.disabled_reason.as_deref().unwrap_or("disabled");
        return Err(ProxyError::ProviderUnavailable(format!(
            "provider {provider:?} is not enabled ({why})"
        )));
    }
    p.endpoints.get(&cluster).cloned().ok_or_else(|| {
        ProxyError::NotFound(format!("provider {provider:?} does not serve {cluster}"))
    })
}
