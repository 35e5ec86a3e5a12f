//! A minimal, fast JSON-RPC upstream for the proxy benchmark (`bench/proxy.sh`): answers every
//! POST with a fixed `getBalance` result, echoing the request id.
//!
//! Usage: `cargo run --release --example bench_upstream -- 127.0.0.1:9901 [delay_us]`
//! `delay_us` simulates a provider's service time (an async sleep, no CPU).

use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;

static DELAY_US: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

async fn answer(body: Bytes) -> impl IntoResponse {
    let delay = *DELAY_US.get().unwrap_or(&0);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_micros(delay)).await;
    }
    let id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("id").cloned())
        .unwrap_or(serde_json::Value::Null);
    let reply = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"result":{{"context":{{"apiVersion":"2.2.0","slot":341197053}},"value":1000000000}}}}"#
    );
    ([(header::CONTENT_TYPE, "application/json")], reply)
}

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9901".into());
    let delay = std::env::args()
        .nth(2)
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    DELAY_US.set(delay).ok();
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    let app = Router::new().fallback(post(answer));
    axum::serve(listener, app).await.expect("serve");
}
