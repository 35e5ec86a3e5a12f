//! `/healthz`, `/readyz` (with a real Redis, and with a dead one), `/status`.

use crate::common::app::{providers_toml, ALCHEMY_KEY, HELIUS_KEY};
use crate::common::redis::TestRedis;
use crate::common::{MockUpstream, TestApp};

#[tokio::test]
async fn healthz_is_ok() {
    let app = TestApp::new("").await;
    let (status, body, _) = app.get("/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readyz_without_redis_is_ready() {
    let app = TestApp::new("").await;
    let (status, body, _) = app.get("/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(body["checks"]["redis"]["status"], "not_configured");
}

#[tokio::test]
async fn readyz_follows_redis() {
    let redis = TestRedis::start();
    let app = TestApp::new(&format!("[redis]\nurl = \"{}\"\n", redis.url)).await;
    let (status, body, _) = app.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["redis"]["status"], "ok");

    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("redis://:hunter2@{}", l.local_addr().unwrap())
    };
    let app = TestApp::new(&format!(
        "[redis]\nurl = \"{dead}\"\ncommand_timeout_ms = 50\n"
    ))
    .await;
    let (status, body, _) = app.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["redis"]["status"], "unavailable");
    assert!(!body.to_string().contains("hunter2"), "{body}");
}

#[tokio::test]
async fn status_shows_upstreams_without_secrets() {
    let upstream = MockUpstream::start().await;
    let app = TestApp::new(&providers_toml(&upstream.url, &upstream.url)).await;
    let (status, _, _) = app
        .post_json("/v1/x402/solana/mainnet/alchemy/rpc/getSlot", "")
        .await;
    assert_eq!(status, 200);
    let (status, body, _) = app.get("/status").await;
    assert_eq!(status, 200);
    let alchemy = &body["providers"][0];
    assert_eq!(alchemy["name"], "alchemy");
    assert_eq!(alchemy["enabled"], true);
    assert_eq!(alchemy["clusters"]["mainnet"]["requests"], 1);
    assert!(alchemy["clusters"]["mainnet"]["last_latency_ms"].is_number());
    assert_eq!(body["store"], "memory");
    let text = body.to_string();
    assert!(
        !text.contains(ALCHEMY_KEY) && !text.contains(HELIUS_KEY),
        "{text}"
    );
    assert!(
        !text.contains(&upstream.url),
        "no upstream URLs either: {text}"
    );
}
