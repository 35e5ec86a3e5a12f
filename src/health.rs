//! `/healthz` (alive), `/readyz` (dependencies reachable), `/status` (upstreams, no secrets).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::app::AppState;
use crate::config::Cluster;
use crate::routing;
use crate::upstream::Circuit;

/// The process is up and serving.
pub(crate) async fn get_healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// Ready when the shared store answers (Redis must PING back within its command timeout; the
/// in-memory store always does) and every cluster with providers has one whose circuit is not
/// open.
pub(crate) async fn get_readyz(State(app): State<AppState>) -> Response {
    let store = match app.store.ping().await {
        Ok(()) => json!({ "backend": app.store.backend(), "status": "ok" }),
        Err(e) => {
            json!({ "backend": app.store.backend(), "status": "unavailable", "error": e.to_string() })
        }
    };
    let providers = app.providers.snapshot();
    let mut clusters = serde_json::Map::new();
    let mut providers_ok = true;
    for cluster in Cluster::ALL {
        let pool = routing::pool(&providers, &app.config.routing, cluster);
        if pool.is_empty() {
            continue;
        }
        let healthy = pool
            .iter()
            .filter(|(_, ep)| ep.health().circuit() != Circuit::Open)
            .count();
        providers_ok &= healthy > 0;
        clusters.insert(
            cluster.as_str().into(),
            json!({
                "status": if healthy > 0 { "ok" } else { "no_healthy_provider" },
                "healthy": healthy,
                "providers": pool.len(),
            }),
        );
    }
    let ready = store["status"] == "ok" && providers_ok;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({ "status": if ready { "ready" } else { "not_ready" }, "checks": { "store": store, "providers": clusters } });
    (status, Json(body)).into_response()
}

/// Each upstream: enabled, last latency, last error; the prices in force and how the
/// settlement cost was computed. No URL, no key.
pub(crate) async fn get_status(State(app): State<AppState>) -> Response {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": app.started.elapsed().as_secs(),
        "providers": app.providers.statuses(),
        "store": app.store.backend(),
        "pricing": app.pricing.view(),
    }))
    .into_response()
}
