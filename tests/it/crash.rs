//! A gateway killed (SIGKILL) at each step of a paid request, then restarted: the client is
//! charged at most once and, when charged, gets its answer. The real binary, held at the
//! exact step by a failpoint (`X402_FAILPOINT`, `src/failpoint.rs`), on each ledger backend
//! and each store; the cluster and the upstream live in the test process, so they survive.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use reqwest::header::HeaderMap;
use serde_json::Value;
use solana_signer::Signer;
use x402_gateway::localnet::LocalCluster;
use x402_gateway::x402::{decode_header, PaymentRequired, SettleResponse};

use crate::common::cluster::start_cluster;
use crate::common::gateway::{PaidGateway, PaidGatewayBuilder, RedisStore};
use crate::common::postgres::TestDb;
use crate::common::process::free_port;
use crate::common::redis::{unique_prefix, TestRedis};
use crate::common::MockUpstream;
use crate::payments::{FAILING, PRICE};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_x402-gateway");
/// Longest wait for one step (a cold debug binary on a busy 2-core machine included).
pub(crate) const STEP: Duration = Duration::from_secs(60);

/// The real gateway, its stderr collected line by line (failpoint markers, logs).
pub(crate) struct Gateway {
    child: Child,
    pub(crate) base: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    pub(crate) fn spawn(dir: &std::path::Path, failpoint: Option<&str>) -> Self {
        Self::spawn_with_env(dir, failpoint, &[])
    }

    /// The same, with `env` set (the environment is otherwise empty).
    pub(crate) fn spawn_with_env(
        dir: &std::path::Path,
        failpoint: Option<&str>,
        env: &[(&str, &str)],
    ) -> Self {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut command = Command::new(BIN);
        command
            .args(["--config", "gw.toml", "--listen", &listen, "serve"])
            .current_dir(dir)
            .env_clear()
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(point) = failpoint {
            command.env("X402_FAILPOINT", point);
        }
        command.envs(env.iter().copied());
        let mut child = command.spawn().expect("the gateway starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().unwrap();
        let lines = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().push(line);
            }
        });
        Self {
            child,
            base: format!("http://{listen}"),
            stderr,
        }
    }

    pub(crate) async fn ready(&mut self) {
        let client = reqwest::Client::new();
        let start = Instant::now();
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                panic!("the gateway exited with {exit}: {:?}", self.stderr.lock());
            }
            let probe = client
                .get(format!("{}/healthz", self.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if probe.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(start.elapsed() < STEP, "the gateway never became healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the paid request is held at `point`.
    pub(crate) async fn held_at(&self, point: &str) {
        let marker = format!("x402-failpoint: holding at {point}");
        let start = Instant::now();
        while !self.stderr.lock().iter().any(|l| l.contains(&marker)) {
            assert!(
                start.elapsed() < STEP,
                "never held at {point} (is the binary built with the test-util feature?): {:?}",
                self.stderr.lock()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn kill9(mut self) {
        // `Child::kill` is SIGKILL on Unix: no destructor, no flush, no graceful anything.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    async fn pay(&self, header: &str) -> reqwest::Result<(u16, Value, HeaderMap)> {
        pay(&self.base, header, Duration::from_secs(30)).await
    }

    async fn challenge(&self) -> PaymentRequired {
        let response = reqwest::Client::new()
            .post(format!("{}{FAILING}", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 402);
        decode_header(response.headers()["payment-required"].as_bytes(), 16 * 1024).unwrap()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which backends one run uses.
pub(crate) enum Backends {
    SqliteMemory,
    SqliteRedis(TestRedis),
    PostgresMemory(TestDb),
    PostgresRedis(TestDb, TestRedis),
}

impl Backends {
    /// `builder` on these backends.
    pub(crate) fn configure(&self, builder: PaidGatewayBuilder) -> PaidGatewayBuilder {
        match self {
            Backends::SqliteMemory => builder,
            Backends::SqliteRedis(redis) => builder.with_redis(redis_of(redis)),
            Backends::PostgresMemory(db) => builder.ledger_url(&db.url),
            Backends::PostgresRedis(db, redis) => {
                builder.ledger_url(&db.url).with_redis(redis_of(redis))
            }
        }
    }

    /// The ledger's URL as the gateway's config names it (the SQLite file in `dir`).
    pub(crate) fn ledger_url(&self, dir: &std::path::Path) -> String {
        match self {
            Backends::SqliteMemory | Backends::SqliteRedis(_) => {
                format!("sqlite://{}?mode=rwc", dir.join("ledger.sqlite3").display())
            }
            Backends::PostgresMemory(db) | Backends::PostgresRedis(db, _) => db.url.clone(),
        }
    }
}

pub(crate) fn client_balance(cluster: &LocalCluster) -> u64 {
    cluster.token_balance(&cluster.wallets()[0].keypair.pubkey())
}

/// Kills the gateway at each step of one paid request in turn, restarts it, and retries the
/// same payment until it is answered.
async fn crash_at_every_step(backends: Backends) {
    let (cluster, dir) = start_cluster().await;
    let mock = MockUpstream::start().await;
    let builder = PaidGateway::builder()
        .public_base_url("https://gateway.example")
        .reconcile_interval_ms(200);
    let toml = backends
        .configure(builder)
        .render(&cluster, &mock, dir.path());
    std::fs::write(dir.path().join("gw.toml"), toml).unwrap();

    let points = [
        "after_upstream",
        "before_settle",
        "after_settle",
        "before_answer",
    ];
    for (nonce, point) in points.into_iter().enumerate() {
        let mut held = Gateway::spawn(dir.path(), Some(point));
        held.ready().await;
        let challenge = held.challenge().await;
        let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
        let fixture = crate::common::cluster::payment_fixture(&cluster, PRICE, 120 + nonce as u8);
        let header = PaidGateway::header(&accepted, &fixture);
        let (balance, calls) = (client_balance(&cluster), mock.calls());

        let request = {
            let base = held.base.clone();
            let header = header.clone();
            // Held until the kill: the connection dies under it.
            tokio::spawn(async move { pay(&base, &header, STEP * 2).await })
        };
        held.held_at(point).await;
        held.kill9();
        assert!(
            request.await.unwrap().is_err(),
            "{point}: the client saw the connection die"
        );

        let mut restarted = Gateway::spawn(dir.path(), None);
        restarted.ready().await;
        // Retry the same payment until the gateway answers it (409 while the reconciler
        // finishes what the killed instance left).
        let start = Instant::now();
        let (body, headers) = loop {
            let (status, body, headers) = restarted.pay(&header).await.unwrap();
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
        assert!(body["result"].is_u64(), "{point}: {body}");
        let receipt: SettleResponse =
            decode_header(headers["payment-response"].as_bytes(), 8192).unwrap();
        assert!(receipt.success, "{point}: {receipt:?}");
        assert_eq!(
            balance - client_balance(&cluster),
            PRICE,
            "{point}: charged exactly once"
        );
        // Settled before the kill: the upstream is not called again; killed before anything
        // was recorded for settlement, one new call is allowed.
        let allowed = if point == "after_upstream" { 2 } else { 1 };
        assert!(
            mock.calls() - calls <= allowed,
            "{point}: {} upstream calls",
            mock.calls() - calls
        );
        // And once more: the kept answer, never a second charge.
        let (status, again, _) = restarted.pay(&header).await.unwrap();
        assert_eq!((status, &again), (200, &body), "{point}");
        assert_eq!(balance - client_balance(&cluster), PRICE, "{point}");
        restarted.kill9();
    }
}

/// One paid call of the same request, with `header`.
async fn pay(
    base: &str,
    header: &str,
    timeout: Duration,
) -> reqwest::Result<(u16, Value, HeaderMap)> {
    let response = reqwest::Client::new()
        .post(format!("{base}{FAILING}"))
        .header("content-type", "application/json")
        .header("payment-signature", header)
        .timeout(timeout)
        .send()
        .await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body, headers))
}

fn redis_of(redis: &TestRedis) -> RedisStore {
    RedisStore {
        url: redis.url.clone(),
        key_prefix: unique_prefix("crash"),
        command_timeout_ms: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_step_on_sqlite_with_the_memory_store() {
    crash_at_every_step(Backends::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_step_on_sqlite_with_redis() {
    crash_at_every_step(Backends::SqliteRedis(TestRedis::start())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_step_on_postgres_with_the_memory_store() {
    crash_at_every_step(Backends::PostgresMemory(TestDb::create().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_step_on_postgres_with_redis() {
    let db = TestDb::create().await;
    crash_at_every_step(Backends::PostgresRedis(db, TestRedis::start())).await;
}
