//! The durable payment ledger on both backends: every migration applies to an empty database,
//! the state machine refuses what would spend a payment twice, and a lost store never sells a
//! settled payment again.

use std::process::Command;
use std::sync::Arc;

use solana_signer::Signer;
use x402_gateway::config::LedgerConfig;
use x402_gateway::ledger::{Claimed, Ledger, NewPayment, PaymentFilter, PaymentState, Submission};
use x402_gateway::store::{CachedResponse, PaymentKey};
use x402_gateway::x402::{decode_header, SettleResponse};

use crate::common::gateway::{PaidGateway, RedisStore};
use crate::common::postgres::TestDb;
use crate::common::process::wait_for_exit;
use crate::common::redis::{unique_prefix, TestRedis};
use crate::payments::{FAILING, PRICE};

const BIN: &str = env!("CARGO_BIN_EXE_x402-gateway");

fn sqlite_config(dir: &tempfile::TempDir) -> LedgerConfig {
    LedgerConfig {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    }
}

fn postgres_config(db: &TestDb) -> LedgerConfig {
    LedgerConfig {
        file_url: Some(db.url.clone()),
        ..Default::default()
    }
}

/// Migration versions as the files in `migrations/<backend>/` name them.
fn versions_on_disk(backend: &str) -> Vec<i64> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut versions: Vec<i64> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.split('_').next().unwrap().parse().unwrap()
        })
        .collect();
    versions.sort();
    versions
}

#[tokio::test]
async fn every_migration_applies_to_an_empty_database_of_each_backend() {
    let sqlite = versions_on_disk("sqlite");
    let postgres = versions_on_disk("postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, postgres, "both backends have the same migrations");

    let dir = tempfile::tempdir().unwrap();
    assert_eq!(Ledger::migrate(&sqlite_config(&dir)).await.unwrap(), sqlite);
    // Applying again changes nothing.
    assert_eq!(Ledger::migrate(&sqlite_config(&dir)).await.unwrap(), sqlite);

    let db = TestDb::create().await;
    assert_eq!(
        Ledger::migrate(&postgres_config(&db)).await.unwrap(),
        postgres
    );
    // The schema is there: every table answers.
    for table in [
        "payments",
        "payment_events",
        "instances",
        "leases",
        "audit_findings",
    ] {
        db.execute(&format!("SELECT COUNT(*) FROM {table}")).await;
    }

    // The real binary's `migrate` subcommand, on a fresh database of each backend.
    let fresh = TestDb::create().await;
    let other = tempfile::tempdir().unwrap();
    let sqlite_url = format!(
        "sqlite://{}?mode=rwc",
        other.path().join("l.sqlite3").display()
    );
    for url in [fresh.url.as_str(), sqlite_url.as_str()] {
        let child = Command::new(BIN)
            .arg("migrate")
            .env("LEDGER_URL", url)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_for_exit(child);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("{} migrations applied", sqlite.len())),
            "{stdout}"
        );
    }
}

fn answer() -> CachedResponse {
    CachedResponse {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: br#"{"jsonrpc":"2.0","id":1,"result":7}"#.to_vec(),
    }
}

fn payment<'a>(key: &'a PaymentKey, attempt: &'a str) -> NewPayment<'a> {
    NewPayment {
        key,
        attempt,
        pid_alias: None,
        idem_alias: Some("idem:abc"),
        payer: "Payer111",
        pay_to: "PayTo111",
        asset: "Mint111",
        network: "solana:devnet",
        amount: 1000,
        route: "/v1/x402/solana/devnet/localnet/rpc/getSlot",
        fingerprint: "fp",
        credits: None,
    }
}

/// The state machine, on one backend.
async fn state_machine(ledger: Arc<Ledger>) {
    let key = PaymentKey([7; 32]);
    let submission = |answer| Submission {
        signature: None,
        settle_request: "{}",
        answer,
        facilitator: "local",
    };
    let kept = answer();
    assert!(matches!(
        ledger.claim(&payment(&key, "a1")).await.unwrap(),
        Claimed::Fresh
    ));
    ledger.verified(&key, "a1");
    ledger.upstream(&key, "a1", false);
    ledger.flush().await;
    let row = ledger.payment(&key).await.unwrap().unwrap();
    assert_eq!(row.state, PaymentState::UpstreamFailed);

    // Nothing was charged: a new attempt takes the payment over; the old one may not submit.
    assert!(matches!(
        ledger.claim(&payment(&key, "a2")).await.unwrap(),
        Claimed::Fresh
    ));
    assert!(!ledger.submit(&key, "a1", &submission(&kept)).await.unwrap());
    ledger.upstream(&key, "a2", true);
    assert!(ledger.submit(&key, "a2", &submission(&kept)).await.unwrap());
    // A late write of an earlier step (a stale attempt's, or this one's) never moves a
    // submitted payment back.
    ledger.upstream(&key, "a1", false);
    ledger.flush().await;
    let row = ledger.payment(&key).await.unwrap().unwrap();
    assert_eq!(row.state, PaymentState::SettleSubmitted);
    assert_eq!(row.answer.as_ref(), Some(&kept));
    // The reconciler's gauge: the payments not final yet, every such state listed.
    let open = |totals: Vec<x402_gateway::ledger::StateTotal>| {
        totals
            .iter()
            .map(|t| (t.state, t.payments, t.amount))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        open(ledger.open_totals().await.unwrap()),
        [
            (PaymentState::Claimed, 0, 0),
            (PaymentState::Verified, 0, 0),
            (PaymentState::UpstreamOk, 0, 0),
            (PaymentState::SettleSubmitted, 1, 1000),
        ]
    );

    // Submitted: no attempt may take it over; the claim returns the row instead.
    match ledger.claim(&payment(&key, "a3")).await.unwrap() {
        Claimed::Existing(row) => assert_eq!(row.state, PaymentState::SettleSubmitted),
        Claimed::Fresh => panic!("a submitted payment was claimed again"),
    }
    // Another payment with the same idempotency id finds it too.
    let other = PaymentKey([8; 32]);
    match ledger.claim(&payment(&other, "b1")).await.unwrap() {
        Claimed::Existing(row) => assert_eq!(row.payment_key, key.hex()),
        Claimed::Fresh => panic!("the idempotency id was not honoured"),
    }

    assert!(ledger
        .resolve(
            &key,
            "a2",
            PaymentState::Settled,
            Some("Sig111"),
            Some(r#"{"success":true}"#),
            None
        )
        .await
        .unwrap());
    // Resolved once: a second resolution finds nothing to resolve.
    assert!(!ledger
        .resolve(&key, "a2", PaymentState::Failed, None, None, Some("x"))
        .await
        .unwrap());
    ledger.flush().await;
    let row = ledger.payment(&key).await.unwrap().unwrap();
    assert_eq!(row.state, PaymentState::Settled);
    assert_eq!(row.signature.as_deref(), Some("Sig111"));

    let events: Vec<String> = ledger
        .events(&key.hex())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(
        events,
        [
            "claimed",
            "verified",
            "upstream_failed",
            "claimed",
            "upstream_ok",
            "settle_submitted",
            // Recorded as reported (the audit trail), without changing the state.
            "upstream_failed",
            "settled"
        ]
    );
    let settled = ledger
        .payments(&PaymentFilter {
            state: Some(PaymentState::Settled),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(settled.len(), 1);
    let revenue = ledger.revenue(0, i64::MAX).await.unwrap();
    assert_eq!(revenue.len(), 1);
    assert_eq!((revenue[0].payments, revenue[0].amount), (1, 1000));
    let statement = ledger.statement("Payer111").await.unwrap();
    // The second payment found the first's row and claimed nothing: one payment, settled.
    assert_eq!(statement.totals.len(), 1, "{statement:?}");
    assert_eq!(statement.totals[0].state, PaymentState::Settled);
    assert!(ledger.payment(&other).await.unwrap().is_none());
    // Final now: nothing open (the settled one is history, not in the gauge).
    assert!(open(ledger.open_totals().await.unwrap())
        .iter()
        .all(|(_, payments, amount)| (*payments, *amount) == (0, 0)));
}

#[tokio::test]
async fn the_state_machine_never_spends_a_payment_twice_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    state_machine(Ledger::open(&sqlite_config(&dir)).await.unwrap()).await;
}

#[tokio::test]
async fn the_state_machine_never_spends_a_payment_twice_on_postgres() {
    let db = TestDb::create().await;
    state_machine(Ledger::open(&postgres_config(&db)).await.unwrap()).await;
}

/// Pays once, then loses the store (`lose`), then replays: the kept answer, with a success
/// receipt, and neither a second upstream call nor a second settlement.
async fn replay_after_store_loss(env: &PaidGateway, lose: impl std::future::Future<Output = ()>) {
    let challenge = env.challenge(FAILING).await;
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
    let header = PaidGateway::header(&accepted, &env.fixture(PRICE, 90));
    let (status, body, head) = env.pay(FAILING, &header).await;
    assert_eq!(status, 200, "{body}");
    let (calls, sends, balances) = (
        env.mock.calls(),
        env.cluster.send_transaction_count(),
        env.balances(),
    );
    lose.await;
    let again = env.instance().await;
    let (status, replay, replay_head) = again.post_paid(FAILING, &header, "", &[]).await;
    assert_eq!(status, 200, "{replay}");
    assert_eq!(replay, body);
    let receipt: SettleResponse =
        decode_header(replay_head.headers()["payment-response"].as_bytes(), 8192).unwrap();
    let first: SettleResponse =
        decode_header(head.headers()["payment-response"].as_bytes(), 8192).unwrap();
    assert!(receipt.success);
    assert_eq!(receipt.transaction, first.transaction);
    assert_eq!(env.mock.calls(), calls, "no second upstream call");
    assert_eq!(
        env.cluster.send_transaction_count(),
        sends,
        "no second send"
    );
    assert_eq!(env.balances(), balances, "charged once");
    // Another request with the same payment: refused, still without an upstream call.
    let (status, _, _) = again.post_paid(FAILING, &header, "{}", &[]).await;
    assert_eq!(status, 409);
    assert_eq!(env.mock.calls(), calls);
}

#[tokio::test]
async fn a_lost_memory_store_never_sells_a_settled_payment_again() {
    let env = PaidGateway::start().await;
    // A new instance on the same ledger has an empty memory store: a restart.
    replay_after_store_loss(&env, async {}).await;
}

#[tokio::test]
async fn a_flushed_redis_never_sells_a_settled_payment_again() {
    let redis = TestRedis::spawn();
    let env = PaidGateway::builder()
        .public_base_url("https://gateway.example")
        .with_redis(RedisStore {
            url: redis.url.clone(),
            key_prefix: unique_prefix("flush"),
            command_timeout_ms: None,
        })
        .build()
        .await;
    let flush = async {
        let mut conn = redis.connection().await;
        let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
    };
    replay_after_store_loss(&env, flush).await;
}

#[tokio::test]
async fn the_admin_api_reads_payments_from_the_ledger() {
    let env = PaidGateway::builder()
        .public_base_url("https://gateway.example")
        .env("ADMIN_TOKEN", "adm1n")
        .build()
        .await;
    let challenge = env.challenge(FAILING).await;
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
    let header = PaidGateway::header(&accepted, &env.fixture(PRICE, 91));
    let (status, body, _) = env.pay(FAILING, &header).await;
    assert_eq!(status, 200, "{body}");
    env.app.app.ledger.flush().await;
    let admin = |path: &str| {
        axum::http::Request::get(path)
            .header("authorization", "Bearer adm1n")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let get = |path: &'static str| async {
        let response = env.app.send(admin(path)).await;
        crate::common::app::split(response).await
    };

    let (status, list, _) = get("/admin/payments?state=settled").await;
    assert_eq!(status, 200, "{list}");
    let payments = list["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 1, "{list}");
    let payment = &payments[0];
    assert_eq!(payment["state"], "settled");
    assert_eq!(payment["amount"], PRICE);
    assert_eq!(payment["route"], FAILING);
    assert_eq!(payment["payer"], env.client().pubkey().to_string());
    let key = payment["payment_key"].as_str().unwrap().to_string();
    assert!(
        payment.get("answer").is_none(),
        "kept answers are not listed"
    );

    let response = env.app.send(admin(&format!("/admin/payments/{key}"))).await;
    let (status, one, _) = crate::common::app::split(response).await;
    assert_eq!(status, 200, "{one}");
    let events: Vec<&str> = one["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "claimed",
            "verified",
            "upstream_ok",
            "settle_submitted",
            "settled"
        ]
    );

    let payer = env.client().pubkey().to_string();
    let response = env
        .app
        .send(admin(&format!("/admin/payers/{payer}/statement")))
        .await;
    let (status, statement, _) = crate::common::app::split(response).await;
    assert_eq!(status, 200, "{statement}");
    assert_eq!(statement["totals"][0]["state"], "settled");
    assert_eq!(statement["totals"][0]["amount"], PRICE);

    let (status, revenue, _) = get("/admin/revenue").await;
    assert_eq!(status, 200, "{revenue}");
    assert_eq!(revenue["totals"]["amount"], PRICE);
    assert_eq!(revenue["rows"][0]["route"], FAILING);

    // CSV exports.
    let response = env.app.send(admin("/admin/payments?format=csv")).await;
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let csv = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let csv = String::from_utf8(csv.to_vec()).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].starts_with("payment_key,state,payer"), "{csv}");
    assert!(lines[1].starts_with(&format!("{key},settled,")), "{csv}");
    let response = env.app.send(admin("/admin/revenue?format=csv")).await;
    let csv = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&csv).contains(&format!("{FAILING},1,{PRICE}")));

    // Bad input: clear 400s; no token: 401.
    let (status, bad, _) = get("/admin/payments?state=paid").await;
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let (status, _, _) = get("/admin/payments?nonsense=1").await;
    assert_eq!(status, 400);
    let (status, bad, _) = get("/admin/payments/xyz").await;
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("invalid_payment_key"))
    );
    let (status, _, _) =
        get("/admin/payments/0000000000000000000000000000000000000000000000000000000000000000")
            .await;
    assert_eq!(status, 404);
    let (status, _, _) = env.app.get("/admin/payments").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_landed_payment_is_refused_before_the_upstream_even_with_no_records_at_all() {
    // Paid once on one gateway; then a gateway with nothing of it (its own empty ledger and
    // memory store, and its own in-process facilitator) on the same cluster gets the same
    // payment: the facilitator's verify sees the transaction id on chain.
    let env = PaidGateway::start().await;
    let challenge = env.challenge(FAILING).await;
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
    let header = PaidGateway::header(&accepted, &env.fixture(PRICE, 91));
    let (status, body, _) = env.pay(FAILING, &header).await;
    assert_eq!(status, 200, "{body}");
    let (calls, sends, balances) = (
        env.mock.calls(),
        env.cluster.send_transaction_count(),
        env.balances(),
    );

    let dir = tempfile::tempdir().unwrap();
    let toml = PaidGateway::builder()
        .public_base_url("https://gateway.example")
        .render(&env.cluster, &env.mock, dir.path());
    let amnesiac = crate::common::TestApp::with_env(&toml, Default::default()).await;
    let (status, body, _) = amnesiac.post_paid(FAILING, &header, "", &[]).await;
    assert_eq!(status, 402, "{body}");
    assert!(body.to_string().contains("duplicate_settlement"), "{body}");
    assert_eq!(
        env.mock.calls(),
        calls,
        "no upstream call for a landed payment"
    );
    assert_eq!(env.cluster.send_transaction_count(), sends, "nothing sent");
    assert_eq!(env.balances(), balances, "charged once");
}

/// Two ledgers on one SQLite file (two instances' pools, two reservation tasks), 1,000
/// concurrent reservations of one wallet whose balance covers 600: exactly 600 taken, the
/// balance ends at 0 (never below), each one a movement row. The reservations commit in
/// groups (`ledger/reserves.rs`); each keeps its own conditional debit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_sqlite_reservations_never_overdraw_a_balance() {
    let dir = tempfile::tempdir().unwrap();
    let config = LedgerConfig {
        timeout_ms: 60_000,
        ..sqlite_config(&dir)
    };
    let ledgers = [
        Ledger::open(&config).await.unwrap(),
        Ledger::open(&config).await.unwrap(),
    ];
    let url = format!("sqlite://{}", dir.path().join("ledger.sqlite3").display());
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO credit_accounts (wallet, balance, updated_ms) VALUES ('w', 1200, 0)")
        .execute(&pool)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let ledger = ledgers[i % 2].clone();
            tokio::spawn(async move {
                ledger
                    .reserve_credits("w", 2, &format!("call-{i}"), "/rpc")
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut taken = 0;
    for task in tasks {
        if let Some(balance) = task.await.unwrap() {
            assert!(balance >= 0);
            taken += 1;
        }
    }
    assert_eq!(taken, 600);
    assert_eq!(ledgers[0].credit_balance("w").await.unwrap(), 0);
    let reserves: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM credit_movements WHERE kind = 'reserve'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(reserves, 600);
    let debited: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS INTEGER) FROM credit_movements WHERE kind = 'reserve'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(debited, 1200);
}
