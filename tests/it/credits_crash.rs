//! A top-up is never lost and never applied twice: the real gateway killed (SIGKILL) at each
//! step of a `POST /v1/credits/topup` (the failpoints of `src/failpoint.rs`), restarted on the
//! same ledger and store, and the same payment retried until answered. After each step the
//! wallet's credits grew by exactly one pack, as the ledger (read directly), the admin API and
//! the answer all say, and the chain moved exactly one pack price. On each ledger backend and
//! each store, like `crash.rs`.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use serde_json::Value;
use solana_signer::Signer;
use x402_gateway::config::LedgerConfig;
use x402_gateway::ledger::Ledger;
use x402_gateway::x402::{decode_header, PaymentRequired, SettleResponse};

use crate::common::cluster::{payment_fixture, start_cluster};
use crate::common::gateway::PaidGateway;
use crate::common::postgres::TestDb;
use crate::common::redis::TestRedis;
use crate::common::MockUpstream;
use crate::crash::{client_balance, Backends, Gateway, STEP};

const TOPUP: &str = "/v1/credits/topup";
const BODY: &str = r#"{"pack":"test"}"#;
/// The pack: its price in atomic units and the credits it grants.
const PACK_PRICE: u64 = 1000;
const PACK_CREDITS: i64 = 5000;
const ADMIN_TOKEN: &str = "credits-crash-adm1n";

/// The credits sections of `crate::credits` (a pack named "test" at 1000 atomic units).
fn credits_sections() -> String {
    crate::credits::credits_sections(PACK_CREDITS as u64)
}

/// One `POST /v1/credits/topup` of the test pack, with `header` when given.
async fn topup(
    base: &str,
    header: Option<&str>,
    timeout: Duration,
) -> reqwest::Result<(u16, Value, HeaderMap)> {
    let mut request = reqwest::Client::new()
        .post(format!("{base}{TOPUP}"))
        .header("content-type", "application/json")
        .body(BODY)
        .timeout(timeout);
    if let Some(header) = header {
        request = request.header("payment-signature", header);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body, headers))
}

/// The wallet's balance and movements as the admin API reports them.
async fn admin_credits(base: &str, wallet: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{base}/admin/credits/{wallet}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Kills the gateway at each step of one top-up in turn, restarts it, retries the same payment
/// until it is answered, and checks the wallet was credited exactly once per top-up.
async fn topup_killed_at_every_step(backends: Backends) {
    let (cluster, dir) = start_cluster().await;
    let mock = MockUpstream::start().await;
    let builder = PaidGateway::builder()
        .public_base_url("https://gateway.example")
        .reconcile_interval_ms(200)
        .sections(&credits_sections());
    let toml = backends
        .configure(builder)
        .render(&cluster, &mock, dir.path());
    std::fs::write(dir.path().join("gw.toml"), toml).unwrap();
    let env = [("ADMIN_TOKEN", ADMIN_TOKEN)];
    let wallet = cluster.wallets()[0].keypair.pubkey().to_string();
    let pay_to = cluster.pay_to();
    // The ledger as the gateway sees it, opened beside it (after the first start migrated it).
    let mut ledger: Option<std::sync::Arc<Ledger>> = None;

    let points = [
        "after_upstream",
        "before_settle",
        "after_settle",
        "before_answer",
    ];
    for (n, point) in points.into_iter().enumerate() {
        let mut held = Gateway::spawn_with_env(dir.path(), Some(point), &env);
        held.ready().await;
        if ledger.is_none() {
            let config = LedgerConfig {
                file_url: Some(backends.ledger_url(dir.path())),
                ..Default::default()
            };
            ledger = Some(Ledger::open(&config).await.unwrap());
        }
        let ledger = ledger.clone().unwrap();
        let credited_before = n as i64 * PACK_CREDITS;
        assert_eq!(
            ledger.credit_balance(&wallet).await.unwrap(),
            credited_before
        );

        let (status, _, headers) = topup(&held.base, None, STEP).await.unwrap();
        assert_eq!(status, 402, "{point}");
        let challenge: PaymentRequired =
            decode_header(headers["payment-required"].as_bytes(), 16 * 1024).unwrap();
        assert_eq!(challenge.accepts[0].amount, PACK_PRICE.to_string());
        let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
        let fixture = payment_fixture(&cluster, PACK_PRICE, 130 + n as u8);
        let header = PaidGateway::header(&accepted, &fixture);
        let (client_before, pay_to_before) =
            (client_balance(&cluster), cluster.token_balance(&pay_to));

        let request = {
            let base = held.base.clone();
            let header = header.clone();
            // Held until the kill: the connection dies under it.
            tokio::spawn(async move { topup(&base, Some(&header), STEP * 2).await })
        };
        held.held_at(point).await;
        held.kill9();
        assert!(
            request.await.unwrap().is_err(),
            "{point}: the client saw the connection die"
        );

        let mut restarted = Gateway::spawn_with_env(dir.path(), None, &env);
        restarted.ready().await;
        // Retry the same payment until the gateway answers it (409 while the reconciler
        // finishes what the killed instance left).
        let start = Instant::now();
        let (body, headers) = loop {
            let (status, body, headers) =
                topup(&restarted.base, Some(&header), STEP).await.unwrap();
            match status {
                200 => break (body, headers),
                409 => assert_eq!(
                    body["error"]["code"], "payment_in_progress",
                    "{point}: {body}"
                ),
                other => panic!("{point}: retry answered {other}: {body}"),
            }
            assert!(
                start.elapsed() < STEP,
                "{point}: never answered after the restart"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let expected = credited_before + PACK_CREDITS;
        assert_eq!(body["wallet"], wallet, "{point}: {body}");
        assert_eq!(body["credits_added"], PACK_CREDITS, "{point}: {body}");
        assert_eq!(body["balance"], expected, "{point}: {body}");
        let receipt: SettleResponse =
            decode_header(headers["payment-response"].as_bytes(), 8192).unwrap();
        assert!(receipt.success, "{point}: {receipt:?}");
        assert_eq!(receipt.payer.as_deref(), Some(wallet.as_str()), "{point}");

        // The chain: one pack price moved, from the wallet to pay_to.
        let paid = (
            client_before - client_balance(&cluster),
            cluster.token_balance(&pay_to) - pay_to_before,
        );
        assert_eq!(paid, (PACK_PRICE, PACK_PRICE), "{point}: charged once");
        // The ledger and the admin API: credited once.
        assert_eq!(
            ledger.credit_balance(&wallet).await.unwrap(),
            expected,
            "{point}"
        );
        let movements = ledger.credit_movements(&wallet, 100).await.unwrap();
        let topups: Vec<_> = movements.iter().filter(|m| m.kind == "topup").collect();
        assert_eq!(topups.len(), n + 1, "{point}: {movements:?}");
        assert_eq!(
            (topups[0].amount, topups[0].balance),
            (PACK_CREDITS, expected),
            "{point}: {movements:?}"
        );
        let mut references: Vec<_> = topups.iter().map(|m| &m.reference).collect();
        references.sort();
        references.dedup();
        assert_eq!(references.len(), n + 1, "one top-up per payment");
        let admin = admin_credits(&restarted.base, &wallet).await;
        assert_eq!(admin["balance"], expected, "{point}: {admin}");
        assert_eq!(
            admin["movements"].as_array().unwrap().len(),
            movements.len(),
            "{point}: {admin}"
        );

        // And once more: the kept answer, never a second credit nor a second charge.
        let (status, again, _) = topup(&restarted.base, Some(&header), STEP).await.unwrap();
        assert_eq!((status, &again), (200, &body), "{point}");
        assert_eq!(
            client_before - client_balance(&cluster),
            PACK_PRICE,
            "{point}"
        );
        assert_eq!(
            ledger.credit_balance(&wallet).await.unwrap(),
            expected,
            "{point}"
        );
        restarted.kill9();
    }
    // Whatever each restarted instance's reconciler did after its answer, nothing more moved.
    let ledger = ledger.expect("opened at the first step");
    assert_eq!(
        ledger.credit_balance(&wallet).await.unwrap(),
        points.len() as i64 * PACK_CREDITS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topup_killed_at_every_step_on_sqlite_with_the_memory_store() {
    topup_killed_at_every_step(Backends::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topup_killed_at_every_step_on_sqlite_with_redis() {
    topup_killed_at_every_step(Backends::SqliteRedis(TestRedis::start())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topup_killed_at_every_step_on_postgres_with_the_memory_store() {
    topup_killed_at_every_step(Backends::PostgresMemory(TestDb::create().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topup_killed_at_every_step_on_postgres_with_redis() {
    let db = TestDb::create().await;
    topup_killed_at_every_step(Backends::PostgresRedis(db, TestRedis::start())).await;
}
