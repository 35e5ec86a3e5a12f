//! Usage counters and `/admin/usage`, against the in-memory store and a real Redis: real
//! challenges, a real paid call settled on the embedded local cluster, an upstream failure with
//! a payment, revenue in atomic units; the admin token; the background flush.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};
use x402_gateway::x402::{decode_header, encode_header, PaymentRequired};

use crate::common::app::split;
use crate::common::gateway::PaidGateway;
use crate::common::{Mode, TestApp};
use crate::limits::{SharedStore, ADMIN_TOKEN};

/// 1 unit × 1 atomic per unit × 1.2 + 600 surcharge → the 1000 floor.
const PRICE: u64 = 1000;
const METHOD_ROUTE: &str = "/v1/x402/solana/{cluster}/{provider}/{surface}/{method}";
const PAID: &str = "/v1/x402/solana/devnet/localnet/rpc/getSlot";
const FAILING: &str = "/v1/x402/solana/devnet/mock/rpc/getSlot";

/// The paid gateway with the admin token, on `store`, plus `sections`.
async fn start(store: &SharedStore, sections: &str) -> PaidGateway {
    let mut builder = PaidGateway::builder()
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .sections(sections);
    if let Some(redis) = store.redis_store() {
        builder = builder.with_redis(redis);
    }
    builder.build().await
}

/// Challenge for `path` (a 402), then pay it with a fresh payment: the paid call's status.
async fn challenge_then_pay(env: &PaidGateway, app: &TestApp, path: &str, nonce: u8) -> u16 {
    let (status, _, head) = app.post_json(path, "").await;
    assert_eq!(status, 402);
    let challenge: PaymentRequired =
        decode_header(head.headers()["payment-required"].as_bytes(), 16 * 1024).unwrap();
    let header = encode_header(&json!({
        "x402Version": 2,
        "resource": {"url": "http://127.0.0.1:8080/x", "description": "", "mimeType": "application/json"},
        "accepted": serde_json::to_value(&challenge.accepts[0]).unwrap(),
        "payload": {"transaction": env.fixture(PRICE, nonce).honest_base64()},
    }));
    let request = Request::post(path)
        .header("content-type", "application/json")
        .header("payment-signature", header)
        .body(Body::empty())
        .unwrap();
    split(app.send(request).await).await.0
}

async fn usage(app: &TestApp, query: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = Request::get(format!("/admin/usage{query}"));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let (status, body, _) = split(app.send(request.body(Body::empty()).unwrap()).await).await;
    (status, body)
}

fn row(provider: &str, outcome: &str, requests: i64, revenue: i64) -> Value {
    json!({
        "route": METHOD_ROUTE, "cluster": "devnet", "method": "getSlot", "provider": provider,
        "outcome": outcome, "requests": requests, "revenue_atomic": revenue,
    })
}

async fn counts_challenges_payments_failures_and_revenue(store: SharedStore) {
    let env = start(&store, "").await;
    let app = &env.app;

    // A challenge and a settled payment on `localnet`; a challenge and an upstream failure
    // (not charged) on `mock`; one more bare challenge.
    assert_eq!(challenge_then_pay(&env, app, PAID, 1).await, 200);
    env.mock.set_mode(Mode::Status(500));
    assert_eq!(challenge_then_pay(&env, app, FAILING, 2).await, 502);
    assert_eq!(app.post_json(PAID, "").await.0, 402);

    let (status, body) = usage(app, "", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["rows"],
        json!([
            row("localnet", "challenge", 2, 0),
            row("localnet", "paid", 1, PRICE as i64),
            row("mock", "challenge", 1, 0),
            row("mock", "upstream_failure", 1, 0),
        ]),
        "{body}"
    );
    assert_eq!(
        body["totals"],
        json!({"requests": 5, "revenue_atomic": PRICE})
    );
    assert_eq!(
        body["store"],
        if store.url().is_some() {
            "redis"
        } else {
            "memory"
        }
    );
    let today = body["day"].as_str().unwrap().to_string();

    // The report flushed to the store: a second instance on the same Redis sees the same rows.
    if store.url().is_some() {
        let other = env.instance().await;
        let (_, again) = usage(&other, &format!("?day={today}"), Some(ADMIN_TOKEN)).await;
        assert_eq!(again["rows"], body["rows"]);
        let keys = store.keys().await;
        assert!(
            keys.iter()
                .any(|(k, _)| *k == format!("{}usage:{today}", store.prefix)),
            "{keys:?}"
        );
    }

    // Another day is empty; bad input and bad tokens are refused.
    let (status, body) = usage(app, "?day=2001-01-01", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200);
    assert_eq!(body["rows"], json!([]));
    let (status, body) = usage(app, "?day=yesterday", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_query");
    assert_eq!(usage(app, "", None).await.0, 401);
    assert_eq!(usage(app, "", Some("wrong")).await.0, 401);
    assert_eq!(
        usage(app, "", Some(&format!("{ADMIN_TOKEN}x"))).await.0,
        401
    );
    store.assert_every_key_expires().await;
}

#[tokio::test]
async fn counts_challenges_payments_failures_and_revenue_memory() {
    counts_challenges_payments_failures_and_revenue(SharedStore::memory()).await;
}

#[tokio::test]
async fn counts_challenges_payments_failures_and_revenue_redis() {
    counts_challenges_payments_failures_and_revenue(SharedStore::redis()).await;
}

#[tokio::test]
async fn counters_reach_redis_in_the_background_with_a_ttl() {
    let store = SharedStore::redis();
    let env = start(
        &store,
        "[usage]\nflush_interval_ms = 50\nretention_days = 2\n[rate_limits]\nchallenge_per_ip = { burst = 1, period_secs = 60 }",
    )
    .await;
    let app = &env.app;
    assert_eq!(app.post_json(PAID, "").await.0, 402);
    assert_eq!(app.post_json(PAID, "").await.0, 429);

    // No one asks for the report: the periodic flush writes the hash on its own.
    let client = redis::Client::open(store.url().unwrap()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!(
        "{}usage:{}",
        store.prefix,
        x402_gateway::usage::Day::today()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let fields: HashMap<String, i64> = loop {
        let fields: HashMap<String, i64> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if fields.len() >= 2 || Instant::now() > deadline {
            break fields;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let field = |outcome: &str| format!("{METHOD_ROUTE}|devnet|getSlot|localnet|{outcome}|n");
    assert_eq!(fields.get(&field("challenge")), Some(&1), "{fields:?}");
    assert_eq!(fields.get(&field("limited")), Some(&1), "{fields:?}");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        ttl > 86_400_000 && ttl <= 2 * 86_400_000,
        "retention_days = 2: {ttl}"
    );
    store.assert_every_key_expires().await;
}
