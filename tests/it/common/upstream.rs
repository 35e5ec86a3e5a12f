//! A real HTTP server on 127.0.0.1 that speaks Solana-style JSON-RPC, records what it received,
//! and can be told to misbehave (slow, 5xx, huge, garbage).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use parking_lot::Mutex;
use serde_json::{json, Value};

/// How the mock answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Answer like a Solana node.
    Normal,
    /// Sleep this long before answering.
    Slow(Duration),
    /// Answer with this HTTP status and a text body.
    Status(u16),
    /// Answer 200 with this many bytes of JSON.
    Huge(usize),
    /// Answer 200 with a body that is not JSON.
    Garbage,
    /// Every other call answers 503, the others normally (a flapping provider).
    Flapping,
}

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    mode: Mutex<Option<Mode>>,
    seen: Mutex<Vec<Seen>>,
}

/// Handle to a running mock upstream.
#[derive(Clone)]
pub struct MockUpstream {
    pub url: String,
    inner: Arc<Inner>,
}

impl MockUpstream {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .fallback(post(answer))
            .with_state(inner.clone());
        let url = format!("http://{}", super::loopback::serve(app).await);
        Self { url, inner }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.inner.mode.lock() = Some(mode);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().clone()
    }

    pub fn calls(&self) -> usize {
        self.inner.seen.lock().len()
    }
}

async fn answer(
    State(inner): State<Arc<Inner>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let nth = {
        let mut seen = inner.seen.lock();
        seen.push(Seen {
            uri,
            headers,
            body: parsed.clone(),
        });
        seen.len()
    };
    let mode = inner.mode.lock().clone().unwrap_or(Mode::Normal);
    match mode {
        Mode::Flapping if nth % 2 == 1 => {
            return (StatusCode::SERVICE_UNAVAILABLE, "flap").into_response();
        }
        Mode::Flapping => {}
        Mode::Normal => {}
        Mode::Slow(d) => tokio::time::sleep(d).await,
        Mode::Status(code) => {
            return (
                StatusCode::from_u16(code).unwrap(),
                "upstream is having a bad day",
            )
                .into_response();
        }
        Mode::Huge(n) => {
            let filler = "x".repeat(n);
            return axum::Json(json!({"jsonrpc":"2.0","id":1,"result":filler})).into_response();
        }
        Mode::Garbage => return (StatusCode::OK, "<html>not json</html>").into_response(),
    }
    let reply = match parsed {
        Value::Array(items) => Value::Array(items.iter().rev().map(rpc).collect()),
        single => rpc(&single),
    };
    axum::Json(reply).into_response()
}

/// Solana-like answers for the methods tests use; unknown methods get -32601.
fn rpc(req: &Value) -> Value {
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let method = req.get("method").and_then(Value::as_str).unwrap_or("");
    let result = match method {
        "getBalance" => {
            json!({"context": {"apiVersion": "2.2.0", "slot": 341_197_053}, "value": 1_000_000_000u64})
        }
        "getSlot" => json!(341_197_053u64),
        "getHealth" => json!("ok"),
        "getAsset" => json!({"id": req["params"]["id"], "interface": "V1_NFT"}),
        "getProgramAccounts" => json!([]),
        "getAccountInfo" => {
            return json!({"jsonrpc":"2.0","id":id,"error":{"code":-32602,"message":"Invalid param: WrongSize"}});
        }
        _ => {
            return json!({"jsonrpc":"2.0","id":id,"error":{"code":-32601,"message":"Method not found"}})
        }
    };
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}
