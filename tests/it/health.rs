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
async fn readyz_on_the_memory_store_is_ready() {
    let app = TestApp::new("").await;
    let (status, body, _) = app.get("/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(body["checks"]["store"]["backend"], "memory");
    assert_eq!(body["checks"]["store"]["status"], "ok");
}

#[tokio::test]
async fn readyz_follows_redis() {
    let redis = TestRedis::start();
    let app = TestApp::new(&format!("[redis]\nurl = \"{}\"\n", redis.url)).await;
    let (status, body, _) = app.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["store"]["backend"], "redis");
    assert_eq!(body["checks"]["store"]["status"], "ok");

    let dead = format!(
        "redis://:hunter2@{}",
        crate::common::loopback::closed_port()
    );
    let app = TestApp::new(&format!(
        "[redis]\nurl = \"{dead}\"\ncommand_timeout_ms = 50\n"
    ))
    .await;
    let (status, body, _) = app.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["store"]["status"], "unavailable");
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

#[tokio::test]
async fn facilitator_endpoints_need_a_configured_secret() {
    use crate::common::app::facilitator_toml;
    use axum::body::Body;
    use axum::http::Request;

    let dir = tempfile::tempdir().unwrap();
    let (toml, fee_payer) = facilitator_toml(dir.path());
    // No FACILITATOR_SECRET: not mounted at all.
    let app = TestApp::new(&toml).await;
    let (status, _, _) = app.get("/api/internal/facilitator/supported").await;
    assert_eq!(status, 404);

    let env = [("FACILITATOR_SECRET".to_string(), "fac-s3cret".to_string())].into();
    let app = TestApp::with_env(&toml, env).await;
    let (status, body, _) = app.get("/api/internal/facilitator/supported").await;
    assert_eq!(status, 401, "{body}");
    let request = Request::get("/api/internal/facilitator/supported")
        .header("x-facilitator-secret", "fac-s3cret")
        .body(Body::empty())
        .unwrap();
    let (status, body, _) = crate::common::app::split(app.send(request).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["kinds"][0]["network"],
        "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"
    );
    assert_eq!(body["kinds"][0]["extra"]["feePayer"], fee_payer);
    assert_eq!(body["signers"]["solana:*"][0], fee_payer);
    let (_, status_body, _) = app.get("/status").await;
    assert!(!status_body.to_string().contains("fac-s3cret"));
}
