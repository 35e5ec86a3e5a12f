//! The settlement part of an `exact` price follows SOL/USD: a Pyth `PriceUpdateV2` account read
//! through a mainnet provider (here a loopback JSON-RPC stand-in for mainnet, which the tests
//! cannot reach, answering `getAccountInfo` with the account's real byte layout), falling back
//! to the configured price when the oracle goes stale. The 402, the paid call, the catalog and
//! `/status` all agree on the price in force.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

use x402_gateway::pricing::oracle::{
    encode_price_update, PythPrice, PYTH_RECEIVER, SOL_USD_FEED_ID,
};
use x402_gateway::pricing::settlement::atomic_cost;

use crate::common::gateway::PaidGateway;
use crate::common::loopback::serve;
use crate::limits::{scrape, ADMIN_TOKEN};
use crate::payments::PAID;

/// What the stand-in mainnet node holds at the price account.
type Account = Arc<Mutex<Vec<u8>>>;

async fn mainnet_stand_in(account: Account) -> std::net::SocketAddr {
    let app = Router::new().route(
        "/",
        post(move |Json(request): Json<Value>| {
            let account = account.clone();
            async move {
                assert_eq!(request["method"], "getAccountInfo", "{request}");
                assert_eq!(
                    request["params"][0],
                    x402_gateway::config::PYTH_SOL_USD_ACCOUNT
                );
                let data = account.lock().unwrap().clone();
                Json(json!({"jsonrpc": "2.0", "id": request["id"], "result": {
                    "context": {"slot": 7},
                    "value": {
                        "data": [base64::engine::general_purpose::STANDARD.encode(data), "base64"],
                        "owner": PYTH_RECEIVER, "lamports": 1_000_000, "executable": false,
                        "rentEpoch": 0, "space": 134,
                    },
                }}))
            }
        }),
    );
    serve(app).await
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// SOL at `usd` whole dollars (Pyth's exponent -8), published at `publish_time`.
fn sol_at(usd: i64, publish_time: i64) -> Vec<u8> {
    encode_price_update(
        &PythPrice {
            feed_id: SOL_USD_FEED_ID,
            price: usd * 100_000_000,
            conf: 0,
            exponent: -8,
            publish_time,
        },
        7,
    )
}

/// Polls `/status` until its settlement view satisfies `done` (the oracle reads every
/// second); panics after 20 s naming what it saw.
async fn settlement_until(env: &PaidGateway, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        let (status, body, _) = env.app.get("/status").await;
        assert_eq!(status, 200);
        last = body["pricing"]["settlement"].clone();
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the settlement never showed {what}: {last}");
}

/// Polls `/status` until the settlement's SOL/USD source is `kind`.
async fn settlement_when(env: &PaidGateway, kind: &str) -> Value {
    settlement_until(env, kind, |s| s["source"]["kind"] == kind).await
}

/// Waits (at most 10 s) for the catalog to offer getSlot at `price`: the documents are
/// re-rendered by the oracle task right after it publishes a new price.
async fn catalog_offers(env: &PaidGateway, price: u64) {
    let mut seen = String::new();
    for _ in 0..100 {
        let (_, catalog, _) = env.app.get("/v1/catalog").await;
        let offer = catalog["routes"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["offers"].as_array().cloned().unwrap_or_default())
            .find(|o| o["path"] == PAID)
            .expect("getSlot on localnet is in the catalog");
        seen = offer["price"]["atomic"].as_str().unwrap().to_string();
        if seen == price.to_string() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the catalog offers getSlot at {seen}, not {price}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settlement_price_follows_the_oracle_and_falls_back_when_it_goes_stale() {
    let account: Account = Arc::new(Mutex::new(sol_at(200, now())));
    let node = mainnet_stand_in(account.clone()).await;
    // The harness prices the local cluster's SOL at $0: the fallback here.
    let env = PaidGateway::builder()
        .public_base_url("https://gateway.example")
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .sections(&format!(
            "[pricing.settlement.oracle]\nprovider = \"mainnet-node\"\nrefresh_secs = 1\n\
             max_age_secs = 60\n\
             [[providers]]\nname = \"mainnet-node\"\nkey_placement = \"none\"\n\
             atomic_per_million_units = 1000000\n\
             [providers.clusters]\nmainnet = \"http://{node}/\"\n\
             [providers.rpc]\ngetAccountInfo = 1\n"
        ))
        .build()
        .await;

    // SOL at $200: (2 × 5000 + 10 000 priority) lamports × $200 × 1.2 = 4800 atomic.
    let settlement = settlement_when(&env, "oracle").await;
    let expected = atomic_cost(20_000, 200_000_000, 2000);
    assert_eq!(expected, 4800);
    assert_eq!(settlement["atomic"], expected, "{settlement}");
    assert_eq!(settlement["solUsd"], "200");
    assert_eq!(settlement["lamports"], 20_000);
    assert_eq!(settlement["priorityFeeLamports"], 10_000);
    // getSlot: 1 unit at $1/M + 20% = 2 atomic, + the settlement.
    let price = 2 + expected;
    let challenge = env.challenge(PAID).await;
    assert_eq!(challenge.accepts[0].amount, price.to_string());
    catalog_offers(&env, price).await;

    // Paid at that price: the chain moves exactly it.
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
    let (client_before, pay_to_before) = env.balances();
    let (status, body, _) = env
        .pay(
            PAID,
            &PaidGateway::header(&accepted, &env.fixture(price, 1)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (client_after, pay_to_after) = env.balances();
    assert_eq!(
        (client_before - client_after, pay_to_after - pay_to_before),
        (price, price)
    );

    // SOL moves 1%: inside the band, the published price stays (clients mid-payment keep it).
    *account.lock().unwrap() = sol_at(202, now());
    let seen = settlement_until(&env, "a reading of 202", |s| {
        s["lastReadingSolUsd"] == "202"
    })
    .await;
    assert_eq!(seen["atomic"], expected, "{seen}");

    // A client is handed the 402 at $200, and SOL jumps to $300 while it signs: the new price
    // is published, and the payment it signed for the old one is still taken (within a
    // payment's timeout), moving exactly what it signed. Any other amount is refused.
    let old = env.challenge(PAID).await;
    assert_eq!(old.accepts[0].amount, price.to_string());
    *account.lock().unwrap() = sol_at(300, now());
    let seen = settlement_until(&env, "SOL at 300", |s| s["solUsd"] == "300").await;
    let moved = atomic_cost(20_000, 300_000_000, 2000);
    assert_eq!(seen["atomic"], moved, "{seen}");
    assert_eq!(
        env.challenge(PAID).await.accepts[0].amount,
        (2 + moved).to_string()
    );
    let accepted = serde_json::to_value(&old.accepts[0]).unwrap();
    let (client_before, _) = env.balances();
    let (status, body, _) = env
        .pay(
            PAID,
            &PaidGateway::header(&accepted, &env.fixture(price, 2)),
        )
        .await;
    assert_eq!(status, 200, "signed at the price just replaced: {body}");
    assert_eq!(client_before - env.balances().0, price);
    let mut wrong = accepted.clone();
    wrong["amount"] = json!("5000");
    let (status, body, _) = env
        .pay(PAID, &PaidGateway::header(&wrong, &env.fixture(5000, 3)))
        .await;
    assert_eq!(status, 402, "{body}");
    assert!(body["error"].as_str().unwrap().contains("amount"), "{body}");

    // The oracle stops publishing: once its price is older than max_age_secs, the fallback
    // ($0 here) applies, /status says why, the metric says so, and the 402 and the catalog
    // follow (getSlot back at the floor).
    *account.lock().unwrap() = sol_at(300, now() - 3600);
    let settlement = settlement_when(&env, "fallback").await;
    assert_eq!(settlement["atomic"], 0, "{settlement}");
    assert!(
        settlement["source"]["reason"]
            .as_str()
            .unwrap()
            .contains("old (max_age_secs 60)"),
        "{settlement}"
    );
    assert_eq!(env.challenge(PAID).await.accepts[0].amount, "1000");
    catalog_offers(&env, 1000).await;
    let metrics = scrape(&env.app).await;
    assert!(
        metrics.contains("x402_settlement_sol_usd_source{source=\"fallback\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("x402_oracle_reads_total{outcome=\"stale\"}"),
        "{metrics}"
    );

    // It comes back: the oracle's price applies again.
    *account.lock().unwrap() = sol_at(200, now());
    let settlement = settlement_when(&env, "oracle").await;
    assert_eq!(settlement["atomic"], expected);
}

#[test]
fn the_old_fixed_surcharge_is_refused_with_the_way_out() {
    let err = x402_gateway::config::Config::from_toml(
        "[pricing]\nsettlement_surcharge = 600\n",
        &std::collections::HashMap::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("pricing.settlement_surcharge") && err.contains("[pricing.settlement]"),
        "{err}"
    );
}
