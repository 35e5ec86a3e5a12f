//! Serves `openapi.yaml`, the hand-written contract kept in step with [`crate::router`] by a test.

use axum::http::header;
use axum::response::IntoResponse;

/// The OpenAPI document, as committed.
pub const OPENAPI_YAML: &str = include_str!("../openapi.yaml");

/// `GET /openapi.yaml`.
pub async fn get_openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI_YAML)
}
