//! Prepaid credits end to end: a pack bought with a real payment on the local cluster, a
//! wallet session from a real sign-in, calls paid from the balance (reserved before the
//! upstream, given back on failure), and no balance ever below zero under concurrency.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use serde_json::Value;
use solana_keypair::Keypair;
use solana_signer::Signer;
use x402_gateway::siwx::SiwxProof;
use x402_gateway::x402::network::SOLANA_MAINNET;
use x402_gateway::x402::{decode_header, PaymentRequired, SettleResponse};

use crate::common::app::split;
use crate::common::gateway::{PaidGateway, RedisStore};
use crate::common::postgres::TestDb;
use crate::common::redis::{unique_prefix, TestRedis};
use crate::common::{Mode, TestApp};
use crate::payments::FAILING;
use crate::siwx::{sign, unsigned};

const TOPUP: &str = "/v1/credits/topup";
const SESSION: &str = "/v1/credits/session";
/// The mock's getSlot: 1 unit × 1 atomic per unit × 1.2 markup, rounded up.
const CREDIT_PRICE: i64 = 2;

pub(crate) fn credits_sections(pack_credits: u64) -> String {
    format!(
        r#"
[credits]
enabled = true
session_ttl_secs = 600
[[credits.packs]]
name = "test"
price = 1000
credits = {pack_credits}

[rate_limits]
enabled = false
"#
    )
}

async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value, axum::http::Response<()>) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    split(
        app.send(request.body(Body::from(body.to_string())).unwrap())
            .await,
    )
    .await
}

/// Buys the test pack with a real payment from the cluster's funded wallet.
async fn top_up(env: &PaidGateway, nonce: u8) -> (u16, Value, axum::http::Response<()>) {
    let (status, _, head) = send(&env.app, "POST", TOPUP, &[], r#"{"pack":"test"}"#).await;
    assert_eq!(status, 402);
    let challenge: PaymentRequired =
        decode_header(head.headers()["payment-required"].as_bytes(), 16 * 1024).unwrap();
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
    assert_eq!(challenge.accepts[0].amount, "1000");
    let header = PaidGateway::header(&accepted, &env.fixture(1000, nonce));
    env.app
        .post_paid(TOPUP, &header, r#"{"pack":"test"}"#, &[])
        .await
}

/// Signs in `wallet` and returns its session token.
async fn session(app: &TestApp, wallet: &Keypair) -> String {
    let (status, body, head) = send(app, "POST", SESSION, &[], "").await;
    assert_eq!(status, 402, "{body}");
    let required: Value =
        decode_header(head.headers()["payment-required"].as_bytes(), 64 * 1024).unwrap();
    let ext = &required["extensions"]["sign-in-with-x"];
    let proof: SiwxProof = sign(unsigned(ext, wallet, SOLANA_MAINNET), wallet);
    let (status, body, _) = send(
        app,
        "POST",
        SESSION,
        &[("sign-in-with-x", &proof.to_header())],
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["wallet"], wallet.pubkey().to_string());
    body["token"].as_str().unwrap().to_string()
}

async fn call_with(app: &TestApp, token: &str) -> (u16, Value, axum::http::Response<()>) {
    let auth = format!("Bearer {token}");
    send(app, "POST", FAILING, &[("authorization", &auth)], "").await
}

#[tokio::test]
async fn a_pack_bought_once_pays_calls_at_the_providers_cost() {
    let env = PaidGateway::builder()
        .public_base_url("https://gateway.example")
        .sections(&credits_sections(10))
        .env("CREDITS_SECRET", "credits-test-secret")
        .env("ADMIN_TOKEN", "adm1n")
        .build()
        .await;
    let wallet = env.client().insecure_clone();
    let (client_before, pay_to_before) = env.balances();

    // The challenge of a paid route says how to pay with credits instead.
    let (status, _, head) = env.app.post_json(FAILING, "").await;
    assert_eq!(status, 402);
    let required: Value =
        decode_header(head.headers()["payment-required"].as_bytes(), 64 * 1024).unwrap();
    let credits = &required["extensions"]["credits"]["info"];
    assert_eq!(credits["packs"][0]["name"], "test", "{required}");
    assert!(credits["topup"].as_str().unwrap().ends_with(TOPUP));

    // Top-up: an exact payment, settled, credited once to the payer.
    let (status, body, head) = top_up(&env, 150).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["wallet"], wallet.pubkey().to_string());
    assert_eq!(
        (body["credits_added"].as_i64(), body["balance"].as_i64()),
        (Some(10), Some(10))
    );
    let receipt: SettleResponse =
        decode_header(head.headers()["payment-response"].as_bytes(), 8192).unwrap();
    assert!(receipt.success);
    assert_eq!(env.balances(), (client_before - 1000, pay_to_before + 1000));
    // The same payment again: the kept answer, never a second credit.
    let (status, again, _) = {
        let (_, _, head) = send(&env.app, "POST", TOPUP, &[], r#"{"pack":"test"}"#).await;
        let challenge: PaymentRequired =
            decode_header(head.headers()["payment-required"].as_bytes(), 16 * 1024).unwrap();
        let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
        let header = PaidGateway::header(&accepted, &env.fixture(1000, 150));
        env.app
            .post_paid(TOPUP, &header, r#"{"pack":"test"}"#, &[])
            .await
    };
    assert_eq!((status, &again), (200, &body));

    let token = session(&env.app, &wallet).await;
    let auth = format!("Bearer {token}");
    let (status, balance, _) = send(
        &env.app,
        "GET",
        "/v1/credits/balance",
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(
        (status, balance["balance"].as_i64()),
        (200, Some(10)),
        "{balance}"
    );

    // A call paid with credits: the provider's cost, no floor, no chain.
    let sends = env.cluster.send_transaction_count();
    let (status, body, head) = call_with(&env.app, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        head.headers()["x-credits-remaining"],
        (10 - CREDIT_PRICE).to_string().as_str()
    );
    assert!(!head.headers().contains_key("payment-response"));
    assert_eq!(env.cluster.send_transaction_count(), sends, "no settlement");

    // An upstream failure is not charged: the reservation comes back.
    env.mock.set_mode(Mode::Status(500));
    let (status, _, head) = call_with(&env.app, &token).await;
    assert_eq!(status, 502);
    assert_eq!(
        head.headers()["x-credits-remaining"],
        (10 - CREDIT_PRICE).to_string().as_str()
    );
    env.mock.set_mode(Mode::Normal);

    // Spend the rest, then the 402: pay per call, or top up.
    for left in [6, 4, 2, 0] {
        let (status, _, head) = call_with(&env.app, &token).await;
        assert_eq!(status, 200);
        assert_eq!(
            head.headers()["x-credits-remaining"],
            left.to_string().as_str()
        );
    }
    let (status, body, head) = call_with(&env.app, &token).await;
    assert_eq!(status, 402, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("insufficient_balance"),
        "{body}"
    );
    assert!(head.headers().contains_key("payment-required"));

    // The ledger, the admin API and the chain agree.
    env.app.app.ledger.flush().await;
    let admin = format!("/admin/credits/{}", wallet.pubkey());
    let (status, account, _) = send(
        &env.app,
        "GET",
        &admin,
        &[("authorization", "Bearer adm1n")],
        "",
    )
    .await;
    assert_eq!(status, 200, "{account}");
    assert_eq!(account["balance"], 0);
    let mut kinds: Vec<&str> = account["movements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    // One top-up, six reservations: five spent, one given back.
    assert_eq!(
        kinds,
        [
            "reserve", "reserve", "reserve", "reserve", "reserve", "reserve", "spend", "spend",
            "spend", "spend", "spend", "topup", "void"
        ]
    );

    // Revoked: refused everywhere (a 402 on paid routes, a 401 on the balance).
    let (status, _, _) = send(&env.app, "DELETE", SESSION, &[("authorization", &auth)], "").await;
    assert_eq!(status, 204);
    let (status, body, _) = call_with(&env.app, &token).await;
    assert_eq!(status, 402);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid_session"),
        "{body}"
    );
    let (status, _, _) = send(
        &env.app,
        "GET",
        "/v1/credits/balance",
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(status, 401);
    // A forged token: the same.
    let (status, _, _) = call_with(&env.app, "v1.e30.AAAA").await;
    assert_eq!(status, 402);
}

/// 1,000 concurrent calls from one wallet across two instances sharing Redis and PostgreSQL,
/// with credits for 600: exactly 600 served, 400 refused with 402, the balance ends at 0 and
/// every debit is in the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balance_never_goes_negative_across_instances() {
    let redis = TestRedis::start();
    let db = TestDb::create().await;
    let env = PaidGateway::builder()
        .public_base_url("https://gateway.example")
        .with_redis(RedisStore {
            url: redis.url.clone(),
            key_prefix: unique_prefix("credits"),
            command_timeout_ms: Some(30_000),
        })
        .ledger_url(&db.url)
        // 1,000 debits of one row queue up on a 2-core machine: generous waits (this test is
        // about correctness; the speed is in BENCHMARKS.md).
        .sections(&credits_sections(600 * CREDIT_PRICE as u64))
        .ledger_setting("timeout_ms = 60000")
        .env("CREDITS_SECRET", "credits-test-secret")
        .build()
        .await;
    let (status, body, _) = top_up(&env, 151).await;
    assert_eq!(status, 200, "{body}");
    let wallet = env.client().insecure_clone();
    let token = session(&env.app, &wallet).await;
    let instances = [
        Arc::new(env.instance().await),
        Arc::new(env.instance().await),
    ];
    let calls_before = env.mock.calls();
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let app = instances[i % 2].clone();
            let token = token.clone();
            tokio::spawn(async move { call_with(&app, &token).await.0 })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let served = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 402).count();
    assert_eq!((served, refused), (600, 400), "{statuses:?}");
    assert_eq!(
        env.mock.calls() - calls_before,
        600,
        "only paid calls reach the upstream"
    );
    let ledger = env.app.app.ledger.clone();
    assert_eq!(
        ledger
            .credit_balance(&wallet.pubkey().to_string())
            .await
            .unwrap(),
        0
    );
    for instance in &instances {
        instance.app.ledger.flush().await;
    }
    // Every movement of the wallet, counted in the database itself.
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    let counts: Vec<(String, i64)> =
        sqlx::query_as("SELECT kind, COUNT(*) FROM credit_movements GROUP BY kind ORDER BY kind")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let count = |kind: &str| {
        counts
            .iter()
            .find(|(k, _)| k == kind)
            .map_or(0, |(_, n)| *n)
    };
    assert_eq!(
        (
            count("topup"),
            count("reserve"),
            count("spend"),
            count("void")
        ),
        (1, 600, 600, 0),
        "{counts:?}"
    );
    let negative: Vec<(i64,)> =
        sqlx::query_as("SELECT balance FROM credit_movements WHERE balance < 0")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert!(negative.is_empty(), "a balance went below zero");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_whose_outcome_was_lost_is_given_back_and_nothing_else_is() {
    let env = PaidGateway::builder()
        .public_base_url("https://gateway.example")
        .sections(&credits_sections(1000))
        .build()
        .await;
    let (status, body, _) = top_up(&env, 1).await;
    assert_eq!(status, 200, "{body}");
    let wallet = env.client().pubkey().to_string();
    let app = &env.app.app;
    let ledger = app.ledger.clone();
    let gate = app.paygate.clone().expect("payments are on");
    assert_eq!(ledger.credit_balance(&wallet).await.unwrap(), 1000);

    // A reserve that committed though the paygate never learnt it (its answer timed out), on
    // an instance that is alive: the 503 said "not charged".
    assert_eq!(
        ledger
            .reserve_credits(&wallet, 300, "lost-1", "/v1/x402/solana/devnet/rpc")
            .await
            .unwrap(),
        Some(700)
    );
    // Nothing is given back that was not taken: another reference, another amount.
    assert_eq!(
        ledger
            .void_credits(&wallet, 300, "never-reserved")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        ledger.void_credits(&wallet, 301, "lost-1").await.unwrap(),
        None
    );
    assert_eq!(ledger.credit_balance(&wallet).await.unwrap(), 700);

    // The reconciler leaves a young reservation of a live instance alone (its call may still
    // be running)...
    x402_gateway::paygate::reconcile::reconcile(&gate)
        .await
        .unwrap();
    assert_eq!(ledger.credit_balance(&wallet).await.unwrap(), 700);
    // ...and gives back one that has had no outcome for ORPHAN_AFTER_MS, once.
    ledger
        .age_credit_movements("lost-1", x402_gateway::ledger::ORPHAN_AFTER_MS + 1_000)
        .await
        .unwrap();
    for _ in 0..2 {
        x402_gateway::paygate::reconcile::reconcile(&gate)
            .await
            .unwrap();
        assert_eq!(ledger.credit_balance(&wallet).await.unwrap(), 1000);
    }
    let movements = ledger.credit_movements(&wallet, 10).await.unwrap();
    let kinds: Vec<&str> = movements.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(kinds, ["void", "reserve", "topup"], "{movements:?}");

    // The passes start where every older reservation has its outcome: one spent since, then
    // a second lost one, both old: the spent one stays spent, the lost one comes back.
    let route = "/v1/x402/solana/devnet/rpc";
    let left = ledger
        .reserve_credits(&wallet, 100, "spent-1", route)
        .await
        .unwrap()
        .unwrap();
    ledger.spend_credits(&wallet, 100, left, "spent-1");
    ledger.flush().await;
    x402_gateway::paygate::reconcile::reconcile(&gate)
        .await
        .unwrap();
    assert_eq!(
        ledger
            .reserve_credits(&wallet, 200, "lost-2", route)
            .await
            .unwrap(),
        Some(700)
    );
    // A pass while lost-2 is young leaves it alone, and must not move the mark past it.
    x402_gateway::paygate::reconcile::reconcile(&gate)
        .await
        .unwrap();
    assert_eq!(ledger.credit_balance(&wallet).await.unwrap(), 700);
    for reference in ["spent-1", "lost-2"] {
        ledger
            .age_credit_movements(reference, x402_gateway::ledger::ORPHAN_AFTER_MS + 1_000)
            .await
            .unwrap();
    }
    x402_gateway::paygate::reconcile::reconcile(&gate)
        .await
        .unwrap();
    assert_eq!(ledger.credit_balance(&wallet).await.unwrap(), 900);
    let movements = ledger.credit_movements(&wallet, 3).await.unwrap();
    let kinds: Vec<(&str, &str)> = movements
        .iter()
        .map(|m| (m.kind.as_str(), m.reference.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("void", "lost-2"),
            ("reserve", "lost-2"),
            ("spend", "spent-1")
        ],
        "{movements:?}"
    );
}
