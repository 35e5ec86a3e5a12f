//! `/healthz` (alive), `/readyz` (dependencies reachable), `/status` (upstreams, no secrets).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::app::AppState;

/// The process is up and serving.
pub async fn get_healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// Ready when every configured dependency answers: Redis (when configured) must PING back
/// within its command timeout.
pub async fn get_readyz(State(app): State<AppState>) -> Response {
    let mut ready = true;
    let redis = match &app.redis {
        None => json!({ "status": "not_configured" }),
        Some(client) => {
            let timeout = app
                .config
                .redis
                .as_ref()
                .map(|r| r.command_timeout())
                .unwrap_or_default();
            match ping(client, timeout).await {
                Ok(()) => json!({ "status": "ok" }),
                Err(why) => {
                    ready = false;
                    json!({ "status": "unavailable", "error": why })
                }
            }
        }
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({ "status": if ready { "ready" } else { "not_ready" }, "checks": { "redis": redis } });
    (status, Json(body)).into_response()
}

async fn ping(client: &redis::Client, timeout: std::time::Duration) -> Result<(), String> {
    let attempt = async {
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| format!("{:?}", e.kind()))?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| format!("{:?}", e.kind()))
    };
    match tokio::time::timeout(
        timeout.max(std::time::Duration::from_millis(50)) * 4,
        attempt,
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err("timed out".into()),
    }
}

/// Each upstream: enabled, last latency, last error. No URL, no key.
pub async fn get_status(State(app): State<AppState>) -> Response {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": app.started.elapsed().as_secs(),
        "providers": app.providers.statuses(),
        "store": if app.redis.is_some() { "redis" } else { "memory" },
    }))
    .into_response()
}
