//! Rate limits against the in-memory store and a real Redis: challenges per client IP (429 +
//! headers, allowed again after the period), limits shared by two instances, X-Forwarded-For
//! believed only from trusted proxies (real listener, real peer address), fail open when Redis
//! is gone, and `/metrics`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use serde_json::Value;
use x402_gateway::config::Config;
use x402_gateway::App;

use crate::common::app::{facilitator_toml, split};
use crate::common::gateway::RedisStore;
use crate::common::redis::TestRedis;
use crate::common::{MockUpstream, TestApp};

pub const ADMIN_TOKEN: &str = "4dm1n-t0ken-for-tests";
const METHOD_PATH: &str = "/v1/x402/solana/devnet/mock/rpc/getSlot";
const STANDARD_PATH: &str = "/v1/x402/solana/devnet/rpc";

/// Where the gateway keeps its shared state in a test: its own memory, or a real Redis under a
/// prefix no other test uses.
pub struct SharedStore {
    redis: Option<TestRedis>,
    pub prefix: String,
}

impl SharedStore {
    pub fn memory() -> Self {
        Self {
            redis: None,
            prefix: String::new(),
        }
    }

    pub fn redis() -> Self {
        Self::on(TestRedis::start())
    }

    pub fn on(redis: TestRedis) -> Self {
        Self {
            redis: Some(redis),
            prefix: format!("it-{}:", uuid::Uuid::new_v4().simple()),
        }
    }

    pub fn url(&self) -> Option<&str> {
        self.redis.as_ref().map(|r| r.url.as_str())
    }

    /// The paid gateway's Redis store (`None` for memory).
    pub fn redis_store(&self) -> Option<RedisStore> {
        self.redis.as_ref().map(|r| RedisStore {
            url: r.url.clone(),
            key_prefix: self.prefix.clone(),
            command_timeout_ms: None,
        })
    }

    /// The `[redis]` section (empty for memory).
    pub fn toml(&self) -> String {
        match &self.redis {
            None => String::new(),
            Some(r) => format!(
                "[redis]\nurl = \"{}\"\nkey_prefix = \"{}\"\n",
                r.url, self.prefix
            ),
        }
    }

    /// Every key under our prefix, with its TTL in ms.
    pub async fn keys(&self) -> Vec<(String, i64)> {
        let Some(url) = self.url() else {
            return Vec::new();
        };
        let client = redis::Client::open(url).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let mut cursor = 0u64;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .unwrap();
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut out = Vec::new();
        for key in keys {
            let ttl: i64 = redis::cmd("PTTL")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            out.push((key, ttl));
        }
        out
    }

    /// No key under our prefix lives forever (`TTL` = -1).
    pub async fn assert_every_key_expires(&self) {
        for (key, ttl) in self.keys().await {
            assert_ne!(ttl, -1, "{key} has no TTL");
        }
    }
}

/// A keyless, priced provider `mock` on `upstream`.
pub fn mock_provider(upstream: &str) -> String {
    format!(
        r#"
[[providers]]
name = "mock"
key_placement = "none"
atomic_per_million_units = 1000000
[providers.clusters]
devnet = "{upstream}"
[providers.rpc]
getSlot = 1
getBalance = 1
"#
    )
}

fn env() -> HashMap<String, String> {
    [("ADMIN_TOKEN".to_string(), ADMIN_TOKEN.to_string())].into()
}

/// Payments on (in-process facilitator; nothing is paid in these tests, only challenged).
fn paid_toml(dir: &std::path::Path, upstream: &str, limits: &str, store: &SharedStore) -> String {
    let (facilitator, _) = facilitator_toml(dir);
    format!(
        r#"
[payment]
enabled = true
pay_to = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"
[[payment.accepts]]
network = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"
asset = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"

[rate_limits]
{limits}

{facilitator}
{store}
{provider}"#,
        store = store.toml(),
        provider = mock_provider(upstream),
    )
}

/// Payments off: the gateway as a free proxy.
fn free_toml(upstream: &str, limits: &str, store: &SharedStore) -> String {
    format!(
        "[rate_limits]\n{limits}\n{}\n{}",
        store.toml(),
        mock_provider(upstream)
    )
}

fn header<'a>(head: &'a axum::http::Response<()>, name: &str) -> &'a str {
    head.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

async fn challenges_per_ip_are_limited_then_allowed_again(store: SharedStore) {
    let upstream = MockUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = paid_toml(
        dir.path(),
        &upstream.url,
        "challenge_per_ip = { burst = 2, period_secs = 1 }",
        &store,
    );
    let app = TestApp::with_env(&toml, env()).await;

    let (status, body, head) = app.post_json(METHOD_PATH, "").await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(header(&head, "ratelimit-limit"), "2");
    assert_eq!(header(&head, "ratelimit-remaining"), "1");
    assert_eq!(header(&head, "ratelimit-policy"), "2;w=1");
    let (status, _, head) = app.get(METHOD_PATH).await;
    assert_eq!(status, 402, "a probe is a challenge too");
    assert_eq!(header(&head, "ratelimit-remaining"), "0");

    let (status, body, head) = app.post_json(METHOD_PATH, "").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    // GCRA: one request comes back every period / burst = 0.5 s; rounded up to whole seconds.
    assert_eq!(header(&head, "retry-after"), "1");
    assert_eq!(header(&head, "ratelimit-limit"), "2");
    assert_eq!(header(&head, "ratelimit-remaining"), "0");
    assert_eq!(header(&head, "ratelimit-reset"), "1");
    assert!(!head.headers().contains_key("payment-required"));

    // A request carrying a payment is not a challenge: it passes to the paygate (which answers
    // this malformed one with its own 400).
    let request = Request::post(METHOD_PATH)
        .header("content-type", "application/json")
        .header("payment-signature", "%%%")
        .body(Body::empty())
        .unwrap();
    let (status, body, _) = split(app.send(request).await).await;
    assert_eq!(status, 400, "{body}");

    // Waiting as told is enough.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (status, body, _) = app.post_json(METHOD_PATH, "").await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(upstream.calls(), 0, "challenges never reach the upstream");
    store.assert_every_key_expires().await;
}

#[tokio::test]
async fn challenges_per_ip_are_limited_then_allowed_again_memory() {
    challenges_per_ip_are_limited_then_allowed_again(SharedStore::memory()).await;
}

#[tokio::test]
async fn challenges_per_ip_are_limited_then_allowed_again_redis() {
    challenges_per_ip_are_limited_then_allowed_again(SharedStore::redis()).await;
}

async fn provider_budget_counts_every_call_of_a_batch(store: SharedStore) {
    let upstream = MockUpstream::start().await;
    let toml = free_toml(
        &upstream.url,
        "calls_per_ip = { burst = 0, period_secs = 0 }\nproviders.mock = { burst = 4, period_secs = 60 }",
        &store,
    );
    let app = TestApp::with_env(&toml, env()).await;
    // A batch of 3 uses 3 of the 4 calls; a single call fits; the next single call does not.
    let batch: Vec<Value> = (0..3)
        .map(|i| serde_json::json!({"jsonrpc":"2.0","id":i,"method":"getSlot"}))
        .collect();
    let (status, body, _) = app
        .post_json(STANDARD_PATH, Value::Array(batch.clone()).to_string())
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = app.post_json(METHOD_PATH, "").await;
    assert_eq!(status, 200);
    let (status, body, head) = app.post_json(METHOD_PATH, "").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "provider_budget_exhausted");
    let wait: u64 = header(&head, "retry-after").parse().unwrap();
    assert!((1..=15).contains(&wait), "{wait}");
    // A GET probe never goes upstream and is not charged to the provider.
    let (status, _, _) = app.get(METHOD_PATH).await;
    assert_eq!(status, 200);
    assert_eq!(
        upstream.calls(),
        2,
        "one batch and one single call went upstream"
    );
    store.assert_every_key_expires().await;
}

#[tokio::test]
async fn provider_budget_counts_every_call_of_a_batch_memory() {
    provider_budget_counts_every_call_of_a_batch(SharedStore::memory()).await;
}

#[tokio::test]
async fn provider_budget_counts_every_call_of_a_batch_redis() {
    provider_budget_counts_every_call_of_a_batch(SharedStore::redis()).await;
}

#[tokio::test]
async fn limits_hold_across_two_instances_sharing_redis() {
    let store = SharedStore::redis();
    let upstream = MockUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = paid_toml(
        dir.path(),
        &upstream.url,
        "challenge_per_ip = { burst = 3, period_secs = 60 }",
        &store,
    );
    let a = TestApp::with_env(&toml, env()).await;
    let b = TestApp::with_env(&toml, env()).await;
    let mut statuses = Vec::new();
    for app in [&a, &b, &a, &b, &a] {
        statuses.push(app.post_json(METHOD_PATH, "").await.0);
    }
    assert_eq!(statuses, [402, 402, 402, 429, 429], "one limit for both");

    // The same two instances on separate memory stores each allow the whole burst.
    let memory = SharedStore::memory();
    let toml = paid_toml(
        dir.path(),
        &upstream.url,
        "challenge_per_ip = { burst = 3, period_secs = 60 }",
        &memory,
    );
    let (a, b) = (
        TestApp::with_env(&toml, env()).await,
        TestApp::with_env(&toml, env()).await,
    );
    let mut statuses = Vec::new();
    for app in [&a, &b, &a, &b, &a, &b, &a] {
        statuses.push(app.post_json(METHOD_PATH, "").await.0);
    }
    assert_eq!(statuses, [402, 402, 402, 402, 402, 402, 429]);
    store.assert_every_key_expires().await;
}

/// The gateway on a real loopback listener (so the peer address is real: 127.0.0.1).
struct Served {
    base: String,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _ledger_dir: tempfile::TempDir,
}

impl Served {
    async fn start(toml: &str) -> Self {
        let mut config = Config::from_toml(toml, &env()).expect("config");
        let ledger_dir = tempfile::tempdir().unwrap();
        config.ledger.data_dir = ledger_dir.path().to_path_buf();
        let app = App::build(config).await.expect("app");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(x402_gateway::serve(app, listener, async move {
            let _ = stopped.await;
        }));
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            stop: Some(stop),
            task,
            _ledger_dir: ledger_dir,
        }
    }

    async fn call(&self, xff: &[&str]) -> u16 {
        let mut request = self
            .client
            .post(format!("{}{METHOD_PATH}", self.base))
            .header("content-type", "application/json");
        for value in xff {
            request = request.header("x-forwarded-for", *value);
        }
        request.send().await.unwrap().status().as_u16()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let upstream = MockUpstream::start().await;
    let limits = "calls_per_ip = { burst = 2, period_secs = 60 }";

    // No trusted proxy: the peer (127.0.0.1) is the client whatever the header claims, so
    // rotating spoofed addresses buys nothing.
    let store = SharedStore::redis();
    let gateway = Served::start(&free_toml(&upstream.url, limits, &store)).await;
    let statuses = [
        gateway.call(&["1.1.1.1"]).await,
        gateway.call(&["2.2.2.2"]).await,
        gateway.call(&["3.3.3.3"]).await,
    ];
    assert_eq!(statuses, [200, 200, 429]);
    let keys: Vec<String> = store.keys().await.into_iter().map(|(k, _)| k).collect();
    assert!(
        keys.contains(&format!("{}rl:ip:127.0.0.1", store.prefix)),
        "{keys:?}"
    );
    gateway.stop().await;
    // The shutdown flushed the usage counters (the periodic flush, every 10 s, had not run).
    let usage_key = format!(
        "{}usage:{}",
        store.prefix,
        x402_gateway::usage::Day::today()
    );
    let keys: Vec<String> = store.keys().await.into_iter().map(|(k, _)| k).collect();
    assert!(keys.contains(&usage_key), "{keys:?}");
    store.assert_every_key_expires().await;

    // Loopback is our proxy: each forwarded client has its own bucket, and what a client
    // writes left of the address our proxy saw is ignored.
    let trusted = format!("{limits}\ntrusted_proxies = [\"127.0.0.0/8\"]");
    let store = SharedStore::redis();
    let gateway = Served::start(&free_toml(&upstream.url, &trusted, &store)).await;
    assert_eq!(gateway.call(&["1.1.1.1"]).await, 200);
    assert_eq!(gateway.call(&["2.2.2.2"]).await, 200);
    assert_eq!(gateway.call(&["3.3.3.3"]).await, 200);
    assert_eq!(gateway.call(&["1.1.1.1"]).await, 200);
    // 1.1.1.1 forges an earlier hop: still 1.1.1.1, whose two calls are used.
    assert_eq!(gateway.call(&["9.9.9.9, 1.1.1.1"]).await, 429);
    assert_eq!(gateway.call(&["9.9.9.9", "1.1.1.1"]).await, 429);
    // Through two of our proxies.
    assert_eq!(gateway.call(&["2.2.2.2, 127.0.0.5"]).await, 200);
    assert_eq!(gateway.call(&["2.2.2.2, 127.0.0.5"]).await, 429);
    // No header from our proxy: the proxy itself is the client.
    assert_eq!(gateway.call(&[]).await, 200);
    gateway.stop().await;
    store.assert_every_key_expires().await;
}

/// A counter's total over every label set in the Prometheus text.
pub fn metric_total(text: &str, family: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.starts_with(family)
                && matches!(l.as_bytes().get(family.len()), Some(b' ') | Some(b'{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub async fn scrape(app: &TestApp) -> String {
    let request = Request::get("/metrics")
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let response = app.send(request).await;
    assert_eq!(response.status(), 200);
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn limits_fail_open_to_a_local_limiter_when_redis_dies() {
    // A Redis of our own (even with REDIS_URL set), killed after the gateway has used it.
    let store = SharedStore::on(TestRedis::spawn());
    let upstream = MockUpstream::start().await;
    let limits = "calls_per_ip = { burst = 2, period_secs = 60 }\nstore_retry_ms = 200";
    // The [redis] section goes last so that `command_timeout_ms` lands in it.
    let toml = format!(
        "[rate_limits]\n{limits}\n{}\n{}command_timeout_ms = 100\n",
        mock_provider(&upstream.url),
        store.toml()
    );
    let app = TestApp::with_env(&toml, env()).await;
    let (status, _, _) = app.get("/readyz").await;
    assert_eq!(status, 200, "Redis is up and used");
    let before = metric_total(&scrape(&app).await, "x402_rate_limit_store_errors_total");
    drop(store);

    // Free routes still answer; limits are still enforced, by the local limiter.
    let (status, _, _) = app.get("/healthz").await;
    assert_eq!(status, 200);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(app.post_json(METHOD_PATH, "").await.0);
    }
    assert_eq!(statuses, [200, 200, 429]);
    let (status, body, _) = app.get("/readyz").await;
    assert_eq!(status, 503, "{body}");

    let text = scrape(&app).await;
    let after = metric_total(&text, "x402_rate_limit_store_errors_total");
    assert!(
        after >= before + 1.0,
        "store errors counted: {before} → {after}"
    );
    assert!(metric_total(&text, "x402_rate_limit_local_checks_total") >= 3.0);
    assert!(metric_total(&text, "x402_store_errors_total") >= 1.0);
}

#[tokio::test]
async fn limits_fail_open_to_a_local_limiter_when_redis_never_answers() {
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = MockUpstream::start().await;
    let toml = format!(
        "[rate_limits]\ncalls_per_ip = {{ burst = 2, period_secs = 60 }}\n{}\n[redis]\nurl = \"redis://{}\"\ncommand_timeout_ms = 100\n",
        mock_provider(&upstream.url),
        dead.local_addr().unwrap()
    );
    drop(dead);
    let app = TestApp::with_env(&toml, env()).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(app.post_json(METHOD_PATH, "").await.0);
    }
    assert_eq!(statuses, [200, 200, 429]);
    let text = scrape(&app).await;
    assert!(metric_total(&text, "x402_rate_limit_store_errors_total") >= 1.0);
}

#[tokio::test]
async fn metrics_expose_the_families_and_need_the_token() {
    let upstream = MockUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = SharedStore::memory();
    let toml = paid_toml(
        dir.path(),
        &upstream.url,
        "challenge_per_ip = { burst = 1, period_secs = 60 }",
        &store,
    );
    let app = TestApp::with_env(&toml, env()).await;
    assert_eq!(app.post_json(METHOD_PATH, "").await.0, 402);
    assert_eq!(app.post_json(METHOD_PATH, "").await.0, 429);
    let text = scrape(&app).await;
    for family in [
        "x402_http_request_duration_seconds_bucket{",
        "x402_http_request_duration_seconds_count{",
        "x402_payments_total{",
        "x402_rate_limited_total{",
        "# TYPE x402_http_request_duration_seconds histogram",
    ] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }
    assert!(
        text.contains(r#"route="/v1/x402/solana/{cluster}/{provider}/{surface}/{method}""#),
        "route templates, not paths"
    );
    assert!(text.contains(r#"outcome="challenge""#));
    assert!(text.contains(r#"scope="ip""#));
    assert!(!text.contains("devnet/mock"), "no concrete paths as labels");

    // The token is required; a wrong one is refused.
    let (status, body, head) = app.get("/metrics").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(header(&head, "www-authenticate"), "Bearer realm=\"admin\"");
    let request = Request::get("/metrics")
        .header("authorization", "Bearer nope")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(request).await.status(), 401);

    // No ADMIN_TOKEN: not served at all; `public = true`: served to anyone.
    let bare = TestApp::with_env(&free_toml(&upstream.url, "", &store), HashMap::new()).await;
    assert_eq!(bare.get("/metrics").await.0, 404);
    assert_eq!(bare.get("/admin/usage").await.0, 404);
    let public = TestApp::with_env(
        &format!(
            "[metrics]\npublic = true\n{}",
            free_toml(&upstream.url, "", &store)
        ),
        HashMap::new(),
    )
    .await;
    let response = public
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
}
