//! One payment buys one answer, across instances and failures: the paygate on the shared
//! store (in memory and on a real Redis), the pending-settlement reconciler, and Redis outages.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use x402_gateway::config::LocalFacilitatorConfig;
use x402_gateway::facilitator::local::LocalFacilitator;
use x402_gateway::facilitator::Facilitator;
use x402_gateway::ledger::{PaymentFilter, PaymentState};
use x402_gateway::paygate::reconcile::{reconcile, Pass};
use x402_gateway::x402::{decode_header, encode_header, FacilitatorRequest, SettleResponse};

use crate::common::cluster::start_cluster;
use crate::common::gateway::{
    facilitator_toml, PaidGateway, PaidGatewayBuilder, RedisStore, RemoteFacilitator,
};
use crate::common::loopback;
use crate::common::postgres::TestDb;
use crate::common::redis::{unique_prefix, TestRedis};
use crate::common::{Mode, TestApp};
use crate::payments::{FAILING, PAID, PRICE};

fn redis_setup(redis: &TestRedis, test: &str) -> (PaidGatewayBuilder, String) {
    let prefix = unique_prefix(test);
    let setup = PaidGateway::builder()
        .public_base_url("https://gateway.example")
        .with_redis(RedisStore {
            url: redis.url.clone(),
            key_prefix: prefix.clone(),
            // A generous timeout: 200 payments verified at once in a debug build keep the
            // test's runtime busy for a while, and a starved runtime would read as a slow Redis
            // (5 s was not enough on a loaded 2-core machine: 503 payment_unavailable). A
            // stopped Redis still fails at once (connection refused), not after the timeout.
            command_timeout_ms: Some(30_000),
        })
        // The reconciler is driven by hand in these tests.
        .reconcile_interval_ms(3_600_000);
    (setup, prefix)
}

async fn pay_on(
    app: &TestApp,
    path: &str,
    header: &str,
    extra: &[(&str, &str)],
) -> (u16, Value, axum::http::Response<()>) {
    app.post_paid(path, header, "", extra).await
}

async fn many_requests_one_answer(env: &PaidGateway, instances: &[Arc<TestApp>], n: usize) {
    // Slow enough that every copy reaches the store while the first is still in flight.
    env.mock.set_mode(Mode::Slow(Duration::from_millis(600)));
    let challenge = env.challenge(FAILING).await;
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
    let header = PaidGateway::header(&accepted, &env.fixture(PRICE, 40));
    let sends = env.cluster.send_transaction_count();
    let (client_before, _) = env.balances();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let app = instances[i % instances.len()].clone();
            let header = header.clone();
            tokio::spawn(async move { pay_on(&app, FAILING, &header, &[]).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        let (status, body, _) = t.await.unwrap();
        if status == 409 {
            assert_eq!(body["error"]["code"], "payment_in_progress", "{body}");
        }
        assert!(status == 200 || status == 409, "{status} {body}");
        statuses.push(status);
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let conflicts = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((ok, conflicts), (1, n - 1), "{statuses:?}");
    assert_eq!(env.mock.calls(), 1, "exactly one upstream call");
    assert_eq!(
        env.cluster.send_transaction_count() - sends,
        1,
        "one settlement"
    );
    assert_eq!(client_before - env.balances().0, PRICE);
}

#[tokio::test]
async fn two_instances_on_one_redis_and_postgres_sell_one_answer_per_payment() {
    let redis = TestRedis::start();
    let db = TestDb::create().await;
    let (setup, prefix) = redis_setup(&redis, "two");
    let env = setup.ledger_url(&db.url).build().await;
    let second = Arc::new(env.instance().await);
    let first = Arc::new(env.instance().await);
    many_requests_one_answer(&env, &[first.clone(), second], 200).await;
    redis.assert_all_keys_expire(&prefix).await;
    // One ledger row, settled, with the one answer that was sold.
    let ledger = first.app.ledger.clone();
    ledger.flush().await;
    let rows = ledger.payments(&PaymentFilter::default()).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].state, PaymentState::Settled);
    assert_eq!(rows[0].amount, PRICE);
    assert!(rows[0].signature.is_some());
}

#[tokio::test]
async fn one_instance_in_memory_sells_one_answer_per_payment() {
    let env = PaidGateway::start().await;
    let app = Arc::new(env.instance().await);
    many_requests_one_answer(&env, &[app], 100).await;
}

#[tokio::test]
async fn retries_get_the_kept_answer_and_idempotency_ids_bind_to_the_request() {
    let redis = TestRedis::start();
    let (setup, prefix) = redis_setup(&redis, "retry");
    let env = setup.build().await;
    let other = env.instance().await;
    let challenge = env.challenge(PAID).await;
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();

    // Idempotency-Key: the first payment settles; a retry carrying a NEW payment and the same
    // key gets the kept answer (on another instance) and the new payment is not charged.
    let first = PaidGateway::header(&accepted, &env.fixture(PRICE, 50));
    let (status, body, head) =
        pay_on(&env.app, PAID, &first, &[("idempotency-key", "order-17")]).await;
    assert_eq!(status, 200, "{body}");
    let balances = env.balances();
    let sends = env.cluster.send_transaction_count();
    let second = PaidGateway::header(&accepted, &env.fixture(PRICE, 51));
    let (status, again, again_head) =
        pay_on(&other, PAID, &second, &[("idempotency-key", "order-17")]).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, body);
    assert_eq!(
        again_head.headers()["payment-response"],
        head.headers()["payment-response"]
    );
    assert_eq!(
        env.balances(),
        balances,
        "the second payment was not charged"
    );
    assert_eq!(env.cluster.send_transaction_count(), sends);
    // The same key on another request: 409.
    let third = PaidGateway::header(&accepted, &env.fixture(PRICE, 52));
    let (status, body, _) = env
        .pay_body_with(
            PAID,
            &third,
            r#"{"params":[]}"#,
            &[("idempotency-key", "order-17")],
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "payment_already_used");

    // payment-identifier: the same semantics through the x402 extension.
    let with_id = |nonce: u8| {
        let fixture = env.fixture(PRICE, nonce);
        encode_header(&json!({
            "x402Version": 2,
            "accepted": accepted,
            "payload": {"transaction": fixture.honest_base64()},
            "extensions": {"payment-identifier": {"info": {"required": false, "id": "pay_0123456789abcdef"}}},
        }))
    };
    let (status, body, _) = pay_on(&env.app, PAID, &with_id(53), &[]).await;
    assert_eq!(status, 200, "{body}");
    let balances = env.balances();
    let (status, again, _) = pay_on(&other, PAID, &with_id(54), &[]).await;
    assert_eq!((status, &again), (200, &body));
    assert_eq!(env.balances(), balances);
    // A malformed id is a 400, before anything is claimed.
    let bad = encode_header(&json!({
        "x402Version": 2,
        "accepted": accepted,
        "payload": {"transaction": env.fixture(PRICE, 55).honest_base64()},
        "extensions": {"payment-identifier": {"info": {"id": "short"}}},
    }));
    let (status, body, _) = pay_on(&env.app, PAID, &bad, &[]).await;
    assert_eq!(status, 400, "{body}");
    redis.assert_all_keys_expire(&prefix).await;
}

/// A facilitator in front of the in-process one that can lose its settle answers.
#[derive(Clone)]
struct Flaky {
    inner: Arc<LocalFacilitator>,
    /// 0: pass through; 1: settle, then never answer; 2: never settle, never answer.
    mode: Arc<AtomicU8>,
}

async fn flaky_supported(State(f): State<Flaky>) -> Json<Value> {
    Json(serde_json::to_value(f.inner.supported().await.unwrap()).unwrap())
}

async fn flaky_verify(State(f): State<Flaky>, Json(r): Json<FacilitatorRequest>) -> Json<Value> {
    Json(serde_json::to_value(f.inner.verify(&r).await.unwrap()).unwrap())
}

async fn flaky_settle(State(f): State<Flaky>, Json(r): Json<FacilitatorRequest>) -> Json<Value> {
    match f.mode.load(Ordering::SeqCst) {
        0 => Json(serde_json::to_value(f.inner.settle(&r).await.unwrap()).unwrap()),
        1 => {
            let _ = f.inner.settle(&r).await;
            std::future::pending().await
        }
        _ => std::future::pending().await,
    }
}

async fn start_flaky(env_toml: &str) -> (String, Arc<AtomicU8>) {
    let table: toml::Value = toml::from_str(env_toml).unwrap();
    let config: LocalFacilitatorConfig = table["facilitator"].clone().try_into().unwrap();
    let flaky = Flaky {
        inner: Arc::new(LocalFacilitator::from_config(&config).unwrap()),
        mode: Arc::new(AtomicU8::new(0)),
    };
    let mode = flaky.mode.clone();
    let app = Router::new()
        .route("/supported", get(flaky_supported))
        .route("/verify", post(flaky_verify))
        .route("/settle", post(flaky_settle))
        .with_state(flaky);
    let url = format!("http://{}", loopback::serve(app).await);
    (url, mode)
}

async fn flaky_env() -> (PaidGateway, Arc<AtomicU8>) {
    // The cluster must exist before the facilitator config...
    let (cluster, dir) = start_cluster().await;
    let (url, mode) = start_flaky(&facilitator_toml(&cluster)).await;
    // ...then a gateway whose only facilitator is the flaky one, on the same cluster.
    let env = PaidGateway::builder()
        .public_base_url("https://gateway.example")
        .reconcile_interval_ms(3_600_000)
        .with_remote_facilitator(RemoteFacilitator {
            name: "flaky".into(),
            url,
            timeout_ms: Some(1500),
        })
        .with_cluster(cluster, dir)
        .build()
        .await;
    (env, mode)
}

#[tokio::test]
async fn a_lost_settle_answer_is_reconciled_to_settled() {
    let (env, mode) = flaky_env().await;
    let gate = env.app.app.paygate.clone().unwrap();
    let challenge = env.challenge(PAID).await;
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
    let header = PaidGateway::header(&accepted, &env.fixture(PRICE, 60));
    let (client_before, _) = env.balances();

    mode.store(1, Ordering::SeqCst);
    let (status, body, head) = env.pay(PAID, &header).await;
    assert_eq!(status, 504, "{body}");
    let receipt: SettleResponse =
        decode_header(head.headers()["payment-response"].as_bytes(), 8192).unwrap();
    assert_eq!(receipt.error_reason.as_deref(), Some("settlement_pending"));
    assert_eq!(body, json!({}), "the answer is withheld");
    // Meanwhile a retry is told to wait.
    let (status, body, _) = env.pay(PAID, &header).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "payment_in_progress");

    mode.store(0, Ordering::SeqCst);
    let pass = reconcile(&gate).await.unwrap();
    assert_eq!(
        pass,
        Pass {
            settled: 1,
            released: 0,
            pending: 0
        }
    );
    assert_eq!(client_before - env.balances().0, PRICE, "charged once");
    // The client that lost the answer now gets it, with a successful receipt.
    let (status, body, head) = env.pay(PAID, &header).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["result"].is_u64(), "{body}");
    let receipt: SettleResponse =
        decode_header(head.headers()["payment-response"].as_bytes(), 8192).unwrap();
    assert!(receipt.success, "{receipt:?}");
    assert_eq!(
        client_before - env.balances().0,
        PRICE,
        "still charged once"
    );
}

#[tokio::test]
async fn a_settle_that_never_went_out_is_released_when_the_blockhash_expires() {
    let (env, mode) = flaky_env().await;
    let gate = env.app.app.paygate.clone().unwrap();
    let challenge = env.challenge(PAID).await;
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
    let fixture = env.fixture(PRICE, 61);
    let header = PaidGateway::header(&accepted, &fixture);
    let before = env.balances();

    mode.store(2, Ordering::SeqCst);
    let (status, _, _) = env.pay(PAID, &header).await;
    assert_eq!(status, 504);
    mode.store(0, Ordering::SeqCst);
    env.cluster.advance_slots(300);
    let pass = reconcile(&gate).await.unwrap();
    assert_eq!(
        pass,
        Pass {
            settled: 0,
            released: 1,
            pending: 0
        }
    );
    assert_eq!(env.balances(), before, "nothing moved");
    let payment = x402_gateway::store::PaymentKey(
        x402_gateway::svm::decode_transaction(&fixture.honest_base64())
            .unwrap()
            .message_hash(),
    );
    assert!(
        gate.store.claim(&payment).await.unwrap().is_none(),
        "released"
    );
}

#[tokio::test]
async fn redis_down_closes_paid_routes_only_and_they_recover() {
    let mut redis = TestRedis::spawn();
    let (setup, _) = redis_setup(&redis, "down");
    let env = setup.build().await;
    let challenge = env.challenge(PAID).await;
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
    let header = PaidGateway::header(&accepted, &env.fixture(PRICE, 70));
    let before = env.balances();

    redis.stop();
    let (status, body, head) = env.pay(PAID, &header).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "payment_unavailable");
    assert!(head.headers().contains_key("retry-after"));
    assert_eq!(env.balances(), before);
    // Free routes keep working; readiness says why.
    assert_eq!(env.app.get("/healthz").await.0, 200);
    assert_eq!(env.app.get("/status").await.0, 200);
    let (status, body, _) = env.app.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    // A challenge needs no store: still a 402.
    assert_eq!(env.app.post_json(PAID, "").await.0, 402);

    redis.restart();
    let mut status = 0;
    for _ in 0..40 {
        status = env.pay(PAID, &header).await.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "paid routes recover with Redis");
    assert_eq!(before.0 - env.balances().0, PRICE);
}

/// A Redis that freezes for a few seconds (not down: its connections stay open) turns a paid
/// call into a 503 after the command timeout; the reservation that may have been made is
/// released as soon as Redis answers again, so the client's retry is served, not a 409 for
/// the claim's life (180 s, longer than the payment's blockhash).
#[tokio::test]
async fn a_reservation_lost_to_a_frozen_redis_is_released() {
    let redis = TestRedis::spawn();
    let env = PaidGateway::builder()
        .public_base_url("https://gateway.example")
        .with_redis(RedisStore {
            url: redis.url.clone(),
            key_prefix: unique_prefix("frozen"),
            command_timeout_ms: Some(300),
        })
        .build()
        .await;
    let challenge = env.challenge(PAID).await;
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
    // A first payment loads the claim script into Redis (a frozen EVALSHA of an unknown
    // script would claim nothing when it thaws).
    let warm = PaidGateway::header(&accepted, &env.fixture(PRICE, 71));
    assert_eq!(env.pay(PAID, &warm).await.0, 200);
    let header = PaidGateway::header(&accepted, &env.fixture(PRICE, 72));
    let before = env.balances();

    redis.freeze();
    let (status, body, head) = env.pay(PAID, &header).await;
    redis.thaw();
    assert_eq!(status, 503, "{body}");
    assert!(head.headers().contains_key("retry-after"));
    // Within a few of the 503's Retry-After, the same payment is served.
    let mut answers = Vec::new();
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, body, _) = env.pay(PAID, &header).await;
        answers.push((status, body["error"]["code"].clone()));
        if status == 200 {
            break;
        }
    }
    assert_eq!(answers.last().unwrap().0, 200, "{answers:?}");
    assert_eq!(before.0 - env.balances().0, PRICE);
}

#[tokio::test]
async fn a_paid_request_makes_at_most_two_redis_round_trips() {
    let redis = TestRedis::spawn();
    let (setup, _) = redis_setup(&redis, "rtt");
    let env = setup.build().await;
    let challenge = env.challenge(PAID).await;
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
    // Warm up: the scripts get cached by the first paid request.
    assert_eq!(
        env.pay(
            PAID,
            &PaidGateway::header(&accepted, &env.fixture(PRICE, 80))
        )
        .await
        .0,
        200
    );
    let monitor = redis.monitor();
    assert_eq!(
        env.pay(
            PAID,
            &PaidGateway::header(&accepted, &env.fixture(PRICE, 81))
        )
        .await
        .0,
        200
    );
    let sent = monitor.client_commands();
    assert_eq!(sent.len(), 2, "claim + record, nothing else: {sent:#?}");
    assert!(sent.iter().all(|c| c.contains("\"EVALSHA\"")), "{sent:#?}");
}
