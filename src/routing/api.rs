//! The registry and decision routes: `GET /providers`, `POST /providers/register` and
//! `DELETE /providers/{name}` (behind `ADMIN_TOKEN`), `POST /route`. No answer carries a URL
//! or a key.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::registry::{Registry, RegistryError};
use super::{candidates, decide, pool};
use crate::config::{Cluster, RoutingConfig, Strategy};
use crate::error::ApiError;
use crate::jsonrpc::Call;
use crate::priced::Charge;
use crate::pricing::Pricing;
use crate::upstream::{HealthDetail, Origin, Provider};

/// What the routes need.
#[derive(Debug, Clone)]
pub(crate) struct RoutingApi {
    /// The registry (and through it, the providers).
    pub registry: Arc<Registry>,
    /// `[routing]`.
    pub routing: RoutingConfig,
    /// The live prices.
    pub pricing: Pricing,
}

#[derive(Serialize)]
struct ProviderView {
    name: String,
    origin: &'static str,
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<String>,
    weight: u32,
    clusters: BTreeMap<&'static str, HealthDetail>,
    costs: Value,
}

fn view(p: &Provider) -> ProviderView {
    let units = |t: &BTreeMap<String, u64>| {
        json!({
            "methods": t.len(),
            "min_units": t.values().min(),
            "max_units": t.values().max(),
        })
    };
    ProviderView {
        name: p.name().to_owned(),
        origin: match p.origin {
            Origin::Config => "config",
            Origin::Registered { .. } => "registered",
        },
        enabled: p.config.is_enabled(),
        disabled_reason: p.config.disabled_reason.clone(),
        weight: p.config.weight,
        clusters: p
            .endpoints
            .iter()
            .map(|(c, ep)| (c.as_str(), ep.health().detail()))
            .collect(),
        costs: json!({
            "unit": p.config.unit,
            "atomic_per_million_units": p.config.atomic_per_million_units,
            "rpc": units(&p.config.rpc),
            "das": units(&p.config.das),
        }),
    }
}

/// `GET /providers`: every provider with its health per cluster (reads the store's
/// registrations first, so a provider registered on another instance shows at once).
pub(crate) async fn get_providers(State(api): State<RoutingApi>) -> Response {
    if let Err(e) = api.registry.refresh().await {
        tracing::warn!(error = %e, "provider registry not refreshed");
    }
    let providers: Vec<ProviderView> = api
        .registry
        .providers()
        .snapshot()
        .iter()
        .map(|p| view(p))
        .collect();
    Json(json!({ "providers": providers })).into_response()
}

fn registry_error(e: RegistryError) -> Response {
    let (status, code) = match &e {
        RegistryError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_registration"),
        RegistryError::Configured(_) => (StatusCode::CONFLICT, "provider_configured"),
        RegistryError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
    };
    ApiError::new(status, code, e.to_string()).into_response()
}

fn bad_json(rejection: JsonRejection) -> Response {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        rejection.body_text(),
    )
    .into_response()
}

/// `POST /providers/register` (admin).
pub(crate) async fn register(
    State(api): State<RoutingApi>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(body) => body,
        Err(rejection) => return bad_json(rejection),
    };
    match api.registry.register(&body).await {
        Ok(provider) => (
            StatusCode::CREATED,
            Json(json!({ "provider": view(&provider) })),
        )
            .into_response(),
        Err(e) => registry_error(e),
    }
}

/// `DELETE /providers/{name}` (admin).
pub(crate) async fn remove(State(api): State<RoutingApi>, Path(name): Path<String>) -> Response {
    match api.registry.remove(&name).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no registered provider is named {name:?}"),
        )
        .into_response(),
        Err(e) => registry_error(e),
    }
}

/// `POST /route` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteQuery {
    /// `mainnet`/`devnet`, or the cluster's CAIP-2 id.
    network: String,
    /// The JSON-RPC method.
    method: String,
    /// Default: the cluster's strategy.
    #[serde(default)]
    strategy: Option<Strategy>,
}

/// `POST /route`: the decision the standard endpoint would make now for one call of `method`
/// on `network`, without calling anyone.
pub(crate) async fn route(
    State(api): State<RoutingApi>,
    body: Result<Json<RouteQuery>, JsonRejection>,
) -> Response {
    let Json(query) = match body {
        Ok(body) => body,
        Err(rejection) => return bad_json(rejection),
    };
    let Some(cluster) = Cluster::parse(&query.network).or_else(|| {
        Cluster::ALL
            .into_iter()
            .find(|c| c.caip2() == query.network)
    }) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_network",
            format!(
                "{:?}: use mainnet, devnet or their CAIP-2 ids",
                query.network
            ),
        )
        .into_response();
    };
    let strategy = query
        .strategy
        .unwrap_or_else(|| api.routing.strategy_of(cluster));
    let providers = api.registry.providers().snapshot();
    let pool = pool(&providers, &api.routing, cluster);
    let call = Call {
        id: None,
        method: query.method.clone(),
        params: None,
    };
    let (candidates, charge) = candidates(&pool, &[&call], &api.pricing.tariff());
    if candidates.is_empty() {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "method_not_sold",
            format!("no provider of {cluster} sells {}", query.method),
        )
        .into_response();
    }
    let plan = decide(strategy, candidates, Instant::now());
    let Some(primary) = plan.primary() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_healthy_provider",
            format!(
                "every provider of {cluster} selling {} is failing",
                query.method
            ),
        )
        .retry_after(1)
        .into_response();
    };
    let now = Instant::now();
    let estimated = primary.endpoint.health().view(now).latency_ms;
    Json(json!({
        "routed_to": primary.provider.name(),
        "provider_id": format!("{cluster}:{}", primary.provider.name()),
        "strategy_used": plan.strategy,
        "estimated_latency_ms": estimated.map(|ms| (ms * 100.0).round() / 100.0),
        "fallback_available": plan.order.len() > 1,
        "fallbacks": plan.order[1..].iter().map(|c| c.provider.name()).collect::<Vec<_>>(),
        "excluded_unhealthy": plan.excluded,
        "price": match charge {
            Charge::Quote(q) => json!({ "amount": q.amount.to_string() }),
            _ => Value::Null,
        },
    }))
    .into_response()
}
