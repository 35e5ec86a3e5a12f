//! The discovery routes. The documents are rendered once, when the app is built (the table
//! cannot change while it runs), and served as bytes.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Value};

use super::{openapi_document, Access, RouteTable};
use crate::error::ApiError;

/// The discovery routes' state: the published documents (a narrow sub-state of the app).
#[derive(Debug, Clone)]
pub(crate) struct Docs(pub(crate) Arc<Published>);

impl std::ops::Deref for Docs {
    type Target = Published;
    fn deref(&self) -> &Published {
        &self.0
    }
}

/// The documents in force: rendered at start-up, and again when a price in them moves (the
/// settlement cost follows SOL/USD). Readers take the current `Arc` and never wait on a render.
#[derive(Debug)]
pub struct PublishedSlot(parking_lot::RwLock<Arc<Published>>);

impl PublishedSlot {
    /// A slot holding `published`.
    pub fn new(published: Published) -> Self {
        Self(parking_lot::RwLock::new(Arc::new(published)))
    }

    /// The documents in force.
    pub fn load(&self) -> Arc<Published> {
        self.0.read().clone()
    }

    /// Replaces the documents (rendered by the caller, outside the lock).
    pub fn store(&self, published: Published) {
        *self.0.write() = Arc::new(published);
    }
}

/// The table and its documents, rendered once.
#[derive(Debug)]
pub struct Published {
    /// The route table.
    pub table: RouteTable,
    openapi: Bytes,
    catalog: Bytes,
    x402: Bytes,
    overview_json: Bytes,
    overview_md: Bytes,
}

impl Published {
    /// Renders every document of `table`.
    pub fn new(table: RouteTable) -> Self {
        let bytes =
            |v: &Value| Bytes::from(serde_json::to_vec_pretty(v).expect("JSON values serialize"));
        Self {
            openapi: bytes(&openapi_document(&table)),
            catalog: bytes(&table.catalog()),
            x402: bytes(&manifest(&table)),
            overview_json: bytes(&table.overview_json()),
            overview_md: Bytes::from(table.overview_markdown()),
            table,
        }
    }

    /// The OpenAPI document, as served.
    pub fn openapi_json(&self) -> &[u8] {
        &self.openapi
    }
}

/// `/.well-known/x402`: the legacy `{version: 1, resources}` x402scan reads, and the proposal's
/// `x402Version` and `kind`, with each resource's offers (unknown fields are ignored by both).
fn manifest(table: &RouteTable) -> Value {
    let mut resources = Vec::new();
    let mut items = Vec::new();
    for op in &table.operations {
        if !matches!(op.access, Access::Paid { .. }) {
            continue;
        }
        for offer in &op.offers {
            let o = table.offer_json(op, offer);
            resources.push(o["resource"].clone());
            items.push(json!({
                "resource": o["resource"],
                "method": o["method"],
                "description": o["description"],
                "accepts": [{
                    "scheme": "exact", "network": o["network"], "amount": o["price"]["atomic"],
                    "asset": o["asset"], "payTo": o["payTo"],
                }],
            }));
        }
    }
    json!({
        "version": 1,
        "x402Version": 2,
        "kind": "resource-server",
        "resources": resources,
        "items": items,
        "instructions": format!(
            "Every route, its price and how to pay: {}/llms.txt. Call a resource without payment to get its 402 challenge (authoritative).",
            table.public_base_url
        ),
    })
}

fn respond(media: &'static str, body: Bytes) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

const JSON: &str = "application/json";
const MARKDOWN: &str = "text/markdown; charset=utf-8";

/// User agents that read markdown better than JSON: AI agents and terminal clients.
const MARKDOWN_AGENTS: &[&str] = &[
    "curl/",
    "httpie/",
    "wget/",
    "claude",
    "anthropic",
    "chatgpt",
    "gptbot",
    "openai",
    "oai-searchbot",
    "perplexity",
    "cohere",
    "gemini",
    "google-extended",
    "cursor",
    "codex",
    "copilot",
    "aider",
    "llm",
];

/// Markdown for `Accept: text/markdown` and for known AI and terminal user agents, unless the
/// client asked for JSON by name.
fn wants_markdown(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if accept.contains("text/markdown") {
        return true;
    }
    if accept.contains("application/json") {
        return false;
    }
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    MARKDOWN_AGENTS.iter().any(|a| agent.contains(a))
}

/// `GET /openapi.json` and `/.well-known/openapi.json`.
pub(crate) async fn get_openapi_json(State(p): State<Docs>) -> Response {
    respond(JSON, p.openapi.clone())
}

/// `GET /openapi.yaml`: the same document (JSON is YAML).
pub(crate) async fn get_openapi_yaml(State(p): State<Docs>) -> Response {
    respond("application/yaml", p.openapi.clone())
}

/// `GET /v1/catalog`.
pub(crate) async fn get_catalog(State(p): State<Docs>) -> Response {
    respond(JSON, p.catalog.clone())
}

/// `GET /.well-known/x402`.
pub(crate) async fn get_well_known_x402(State(p): State<Docs>) -> Response {
    respond(JSON, p.x402.clone())
}

/// `GET /discover`: JSON, or markdown for agents and terminals.
pub(crate) async fn get_discover(State(p): State<Docs>, headers: HeaderMap) -> Response {
    if wants_markdown(&headers) {
        respond(MARKDOWN, p.overview_md.clone())
    } else {
        respond(JSON, p.overview_json.clone())
    }
}

/// `GET /discover.md`.
pub(crate) async fn get_discover_md(State(p): State<Docs>) -> Response {
    respond(MARKDOWN, p.overview_md.clone())
}

/// `GET /llms.txt`.
pub(crate) async fn get_llms_txt(State(p): State<Docs>) -> Response {
    respond(MARKDOWN, p.overview_md.clone())
}

/// `GET /discover/{id}`: a group, or `all`; `.md` appended (or a markdown client) for markdown.
pub(crate) async fn get_discover_group(
    State(p): State<Docs>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (id, markdown) = match id.strip_suffix(".md") {
        Some(id) => (id, true),
        None => (id.as_str(), wants_markdown(&headers)),
    };
    let table = &p.table;
    let groups: Vec<_> = if id == "all" {
        table.groups.iter().collect()
    } else {
        match table.group(id) {
            Some(g) => vec![g],
            None => {
                return ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no group {id:?}; see /discover for the list"),
                )
                .into_response()
            }
        }
    };
    if markdown {
        respond(MARKDOWN, Bytes::from(table.group_markdown(&groups)))
    } else {
        let body =
            serde_json::to_vec_pretty(&table.group_json(&groups)).expect("JSON values serialize");
        respond(JSON, Bytes::from(body))
    }
}
