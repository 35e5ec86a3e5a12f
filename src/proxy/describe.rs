//! GET / HEAD on a method route: what the route sells and how to call it. (With payments on,
//! the paid layer answers these probes with a 402 challenge before this handler runs.)

use std::sync::Arc;

use axum::extract::Extension;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{RouteKind, RpcRequest};
use crate::config::Surface;

/// Describes the method route the probe was sent to.
pub(crate) async fn describe_method(Extension(rpc): Extension<Arc<RpcRequest>>) -> Response {
    let RouteKind::Method { surface, method } = &rpc.route else {
        return axum::http::StatusCode::METHOD_NOT_ALLOWED.into_response();
    };
    let provider = &rpc.provider.config;
    let units = provider.methods(*surface).get(method).copied();
    let unit = provider.unit.clone();
    let example_params = match surface {
        Surface::Rpc => json!([]),
        Surface::Das => json!({}),
    };
    Json(json!({
        "cluster": rpc.cluster.as_str(),
        "provider": rpc.provider.name(),
        "surface": surface.as_str(),
        "method": method,
        "upstreamCost": { "units": units, "unit": unit },
        "call": {
            "httpMethod": "POST",
            "contentType": "application/json",
            "body": { "params": example_params },
        },
    }))
    .into_response()
}
