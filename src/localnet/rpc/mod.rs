//! Loopback JSON-RPC 2.0 server speaking the subset of Solana RPC that the gateway, the
//! facilitator and the official x402 clients use.
//!
//! Envelope rules (JSON-RPC 2.0, as the real `jsonrpc-core` server applies them): bad JSON →
//! `-32700`; a non-object request or an empty batch → `-32600`; unknown method → `-32601`;
//! bad params → `-32602`. Requests without `id` are notifications and get no response.
//! Handlers never panic on input: every decode step returns an [`RpcError`].

mod encoding;
mod methods;
mod params;
mod tx;

use super::chain::Chain;
use crate::config::demo::DEMO_API_PREFIX;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Requests larger than this are refused with 413 (real RPC caps bodies at 50 KiB; a full
/// transaction is at most 1232 bytes, so this is plenty).
pub(super) const MAX_BODY_BYTES: usize = 64 * 1024;

/// Reported in `context.apiVersion` and `getVersion`.
pub(super) const API_VERSION: &str = "2.2.7";

/// Shared state of the handlers.
#[derive(Clone)]
pub(super) struct RpcState {
    pub chain: Arc<Mutex<Chain>>,
    /// `sendTransaction` requests received (accepted or not), for tests that count broadcasts.
    pub send_requests: Arc<AtomicU64>,
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub(super) fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }
    pub(super) fn parse() -> Self {
        Self::new(PARSE_ERROR, "Parse error")
    }
    pub(super) fn invalid_request() -> Self {
        Self::new(INVALID_REQUEST, "Invalid request")
    }
    pub(super) fn method_not_found() -> Self {
        Self::new(METHOD_NOT_FOUND, "Method not found")
    }
    pub(super) fn invalid_params(msg: impl std::fmt::Display) -> Self {
        Self::new(INVALID_PARAMS, format!("Invalid params: {msg}"))
    }
    /// Solana's own `Error::invalid_params` style ("Invalid param: ...").
    pub(super) fn invalid_param(msg: impl std::fmt::Display) -> Self {
        Self::new(INVALID_PARAMS, format!("Invalid param: {msg}"))
    }
    fn to_json(&self) -> Value {
        let mut e = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.data {
            e["data"] = d.clone();
        }
        e
    }
}

pub(super) const PARSE_ERROR: i64 = -32700;
pub(super) const INVALID_REQUEST: i64 = -32600;
pub(super) const METHOD_NOT_FOUND: i64 = -32601;
pub(super) const INVALID_PARAMS: i64 = -32602;
pub(super) const INTERNAL_ERROR: i64 = -32603;
/// Solana custom codes (agave `rpc_custom_error.rs`).
pub(super) const SEND_TRANSACTION_PREFLIGHT_FAILURE: i64 = -32002;
pub(super) const TRANSACTION_SIGNATURE_VERIFICATION_FAILURE: i64 = -32003;
pub(super) const UNSUPPORTED_TRANSACTION_VERSION: i64 = -32015;
pub(super) const MIN_CONTEXT_SLOT_NOT_REACHED: i64 = -32016;

/// The axum router: `POST /` for JSON-RPC, `GET /health` like a real validator, and the
/// demo's small REST API under [`DEMO_API_PREFIX`] (the `[[services]]` entry the offline demo
/// sells, see `config::demo`).
pub(super) fn router(state: RpcState) -> Router {
    Router::new()
        .route("/", post(handle))
        .route("/health", get(|| async { "ok" }))
        .route(&format!("{DEMO_API_PREFIX}/v1/status"), get(demo_status))
        .route(
            &format!("{DEMO_API_PREFIX}/v1/balance/{{address}}"),
            get(demo_balance),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// One JSON-RPC call against the ledger, off the async workers; its `result` or its `error`.
async fn call(state: RpcState, method: &str, params: Value) -> Result<Value, Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let out = tokio::task::spawn_blocking(move || process_body(&state, body.as_bytes()))
        .await
        .ok()
        .flatten()
        .unwrap_or(Value::Null);
    match out.get("result") {
        Some(result) => Ok(result.clone()),
        None => Err(out.get("error").cloned().unwrap_or(Value::Null)),
    }
}

/// `GET /demo-api/v1/status`: the cluster's slot and version.
async fn demo_status(State(state): State<RpcState>) -> Response {
    match (
        call(state.clone(), "getSlot", json!([])).await,
        call(state, "getVersion", json!([])).await,
    ) {
        (Ok(slot), Ok(version)) => {
            axum::Json(json!({"cluster": "localnet", "slot": slot, "version": version}))
                .into_response()
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `GET /demo-api/v1/balance/{address}`: an account's lamports.
async fn demo_balance(
    State(state): State<RpcState>,
    axum::extract::Path(address): axum::extract::Path<String>,
) -> Response {
    match call(state, "getBalance", json!([address])).await {
        Ok(result) => axum::Json(json!({"address": address, "lamports": result["value"], "slot": result["context"]["slot"]})).into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, axum::Json(json!({"error": error}))).into_response(),
    }
}

async fn handle(State(state): State<RpcState>, body: Bytes) -> Response {
    // Execution (BPF programs) is CPU work under a mutex: keep it off the async workers.
    let out = tokio::task::spawn_blocking(move || process_body(&state, &body)).await;
    match out {
        Ok(Some(v)) => json_response(v),
        Ok(None) => StatusCode::OK.into_response(),
        Err(_) => json_response(envelope(
            Value::Null,
            Err(RpcError::new(INTERNAL_ERROR, "Internal error")),
        )),
    }
}

fn json_response(v: Value) -> Response {
    let body = serde_json::to_vec(&v).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Handles one HTTP body: a single request or a batch. `None` when only notifications came.
pub(super) fn process_body(state: &RpcState, body: &[u8]) -> Option<Value> {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return Some(envelope(Value::Null, Err(RpcError::parse()))),
    };
    match parsed {
        Value::Array(items) if items.is_empty() => {
            Some(envelope(Value::Null, Err(RpcError::invalid_request())))
        }
        Value::Array(items) => {
            let out: Vec<Value> = items.iter().filter_map(|r| process_one(state, r)).collect();
            (!out.is_empty()).then_some(Value::Array(out))
        }
        single => process_one(state, &single),
    }
}

fn process_one(state: &RpcState, req: &Value) -> Option<Value> {
    let Some(obj) = req.as_object() else {
        return Some(envelope(Value::Null, Err(RpcError::invalid_request())));
    };
    let id = obj.get("id").cloned();
    let valid_id = matches!(
        id,
        None | Some(Value::Null | Value::Number(_) | Value::String(_))
    );
    let method = obj.get("method").and_then(Value::as_str);
    let version_ok = obj.get("jsonrpc").and_then(Value::as_str) == Some("2.0");
    let (Some(method), true, true) = (method, version_ok, valid_id) else {
        return Some(envelope(
            id.filter(|_| valid_id).unwrap_or(Value::Null),
            Err(RpcError::invalid_request()),
        ));
    };
    let params = obj.get("params").cloned().unwrap_or(Value::Null);
    let result = match &params {
        Value::Array(_) | Value::Null => methods::dispatch(state, method, &params),
        _ => Err(RpcError::invalid_params("expected an array of params")),
    };
    // A request without `id` is a notification: executed, never answered.
    id.map(|id| envelope(id, result))
}

fn envelope(id: Value, result: Result<Value, RpcError>) -> Value {
    match result {
        Ok(v) => json!({"jsonrpc": "2.0", "result": v, "id": id}),
        Err(e) => json!({"jsonrpc": "2.0", "error": e.to_json(), "id": id}),
    }
}
