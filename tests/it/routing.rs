//! Routing the standard JSON-RPC endpoint across three loopback providers with controllable
//! latency and failures: strategies, failover inside one request, health and the circuit, the
//! decision API, and a paid call served after a failover hop and settled once.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};
use solana_signer::Signer;
use x402_gateway::x402::{decode_header, SettleResponse};

use crate::common::app::split;
use crate::common::gateway::PaidGateway;
use crate::common::loopback::closed_port;
use crate::common::{MockUpstream, Mode, TestApp};

const STANDARD: &str = "/v1/x402/solana/devnet/rpc";
const BALANCE: &str = r#"{"jsonrpc":"2.0","id":7,"method":"getBalance","params":["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"]}"#;

/// Three keyless providers `p1`, `p2`, `p3` on devnet, unpaid, priced 3/1/2 atomic per unit
/// (no markup, surcharge or floor, so `getBalance` at 10 units costs 30/10/20), and `routing`
/// appended to `[routing]`.
struct Pool {
    app: TestApp,
    mocks: [MockUpstream; 3],
}

impl Pool {
    async fn start(routing: &str) -> Self {
        Self::start_with(routing, "").await
    }

    async fn start_with(routing: &str, extra: &str) -> Self {
        let mocks = [
            MockUpstream::start().await,
            MockUpstream::start().await,
            MockUpstream::start().await,
        ];
        let mut toml = String::from(
            "[payment]\nenabled = false\n[pricing]\nmarkup_bps = 0\nfloor = 0\n[pricing.settlement]\nsol_usd = \"0\"\n\
             [upstream]\ntimeout_ms = 1000\nconnect_timeout_ms = 300\n",
        );
        for (i, mock) in mocks.iter().enumerate() {
            toml.push_str(&format!(
                "[[providers]]\nname = \"p{}\"\nkey_placement = \"none\"\n\
                 atomic_per_million_units = {}\n[providers.clusters]\ndevnet = \"{}\"\n\
                 [providers.rpc]\ngetBalance = 10\ngetAccountInfo = 10\ngetSlot = 1\n",
                i + 1,
                [3_000_000, 1_000_000, 2_000_000][i],
                mock.url
            ));
        }
        toml.push_str(&format!("[routing]\n{routing}\n{extra}\n"));
        let app = TestApp::with_env(&toml, HashMap::new()).await;
        Self { app, mocks }
    }

    /// A call on the standard route; (status, body, provider that served, attempts).
    async fn call(&self, body: &str, headers: &[(&str, &str)]) -> (u16, Value, String, u32) {
        let mut request = Request::post(STANDARD).header("content-type", "application/json");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let (status, body, head) = split(
            self.app
                .send(request.body(Body::from(body.to_owned())).unwrap())
                .await,
        )
        .await;
        let h = head.headers();
        let provider = h
            .get("x-route-provider")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let attempts = h
            .get("x-route-attempts")
            .map(|v| v.to_str().unwrap().parse().unwrap())
            .unwrap_or(0);
        (status, body, provider, attempts)
    }

    async fn providers(&self) -> Value {
        self.app.get("/providers").await.1
    }
}

fn circuit(providers: &Value, name: &str) -> String {
    providers["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| {
            p["clusters"]["devnet"]["circuit"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .unwrap()
}

#[tokio::test]
async fn fastest_sends_nearly_every_call_to_the_fastest_healthy_provider() {
    let pool = Pool::start("strategy = \"fastest\"").await;
    pool.mocks[0].set_mode(Mode::Slow(Duration::from_millis(60)));
    pool.mocks[2].set_mode(Mode::Slow(Duration::from_millis(120)));
    // Warm-up: a provider with no sample ranks first, so each is measured once.
    for _ in 0..3 {
        let (status, body, _, _) = pool.call(BALANCE, &[]).await;
        assert_eq!(status, 200, "{body}");
    }
    let mut to_p2 = 0;
    for _ in 0..30 {
        let (status, body, provider, attempts) = pool.call(BALANCE, &[]).await;
        assert_eq!((status, attempts), (200, 1), "{body}");
        to_p2 += usize::from(provider == "p2");
    }
    assert!(to_p2 >= 27, "fastest sent only {to_p2}/30 calls to p2");
}

#[tokio::test]
async fn cheapest_picks_the_lowest_cost_and_the_price_covers_the_dearest() {
    let pool = Pool::start("strategy = \"cheapest\"").await;
    for _ in 0..5 {
        let (status, body, provider, _) = pool.call(BALANCE, &[]).await;
        assert_eq!((status, provider.as_str()), (200, "p2"), "{body}");
    }
    assert_eq!(pool.mocks[1].calls(), 5);
    assert_eq!(pool.mocks[0].calls() + pool.mocks[2].calls(), 0);
    // The decision API agrees, and the price is the dearest eligible provider's (p1: 30).
    let (status, decision, _) = pool
        .app
        .post_json("/route", r#"{"network":"devnet","method":"getBalance"}"#)
        .await;
    assert_eq!(status, 200, "{decision}");
    assert_eq!(decision["routed_to"], "p2");
    assert_eq!(decision["provider_id"], "devnet:p2");
    assert_eq!(decision["strategy_used"], "cheapest");
    assert_eq!(decision["fallback_available"], true);
    assert_eq!(decision["fallbacks"], json!(["p3", "p1"]));
    assert_eq!(decision["price"]["amount"], "30");
    assert!(decision["estimated_latency_ms"].as_f64().is_some());
    assert!(!decision.to_string().contains("127.0.0.1"), "no URL");
    let (status, answer, _) = pool
        .app
        .post_json("/route", r#"{"network":"devnet","method":"getAsset"}"#)
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("method_not_sold"))
    );
}

#[tokio::test]
async fn most_reliable_leaves_a_flapping_provider_and_clients_see_no_error() {
    let pool = Pool::start("strategy = \"most_reliable\"\nfailure_threshold = 100").await;
    pool.mocks[0].set_mode(Mode::Flapping);
    let mut served = HashMap::<String, usize>::new();
    for _ in 0..30 {
        let (status, body, provider, _) = pool.call(BALANCE, &[]).await;
        assert_eq!(status, 200, "failover hides the flapping provider: {body}");
        *served.entry(provider).or_default() += 1;
    }
    // p1 is first in the list (ties) until its first failure lowers its success rate.
    assert!(
        served.get("p1").copied().unwrap_or(0) <= 2,
        "most_reliable kept using the flapping provider: {served:?}"
    );
}

#[tokio::test]
async fn load_balanced_spreads_calls_over_every_healthy_provider() {
    let pool = Pool::start("strategy = \"load_balanced\"").await;
    let mut served = HashMap::<String, usize>::new();
    for _ in 0..90 {
        let (status, body, provider, _) = pool.call(BALANCE, &[]).await;
        assert_eq!(status, 200, "{body}");
        *served.entry(provider).or_default() += 1;
    }
    for p in ["p1", "p2", "p3"] {
        assert!(
            served.get(p).copied().unwrap_or(0) >= 9,
            "{p} got under 10% of 90 calls: {served:?}"
        );
    }
}

#[tokio::test]
async fn a_provider_that_dies_mid_run_causes_no_client_visible_error_and_its_circuit_opens() {
    let pool = Pool::start("strategy = \"most_reliable\"\nfailure_threshold = 1").await;
    for _ in 0..3 {
        let (status, _, provider, attempts) = pool.call(BALANCE, &[]).await;
        assert_eq!((status, provider.as_str(), attempts), (200, "p1", 1));
    }
    pool.mocks[0].set_mode(Mode::Status(503));
    let mut hops = 0;
    for _ in 0..10 {
        let (status, body, provider, attempts) = pool.call(BALANCE, &[]).await;
        assert_eq!(status, 200, "{body}");
        assert_ne!(provider, "p1");
        hops += attempts - 1;
    }
    assert_eq!(hops, 1, "p1 is tried once after it died, then left out");
    assert_eq!(circuit(&pool.providers().await, "p1"), "open");
    let (status, ready, _) = pool.app.get("/readyz").await;
    assert_eq!(status, 200, "two providers are still healthy: {ready}");
    assert_eq!(ready["checks"]["providers"]["devnet"]["healthy"], 2);
}

#[tokio::test]
async fn the_circuit_opens_then_a_half_open_trial_closes_it() {
    let pool = Pool::start(
        "failure_threshold = 2\nopen_secs = 1\n[routing.clusters.devnet]\nproviders = [\"p1\"]",
    )
    .await;
    pool.mocks[0].set_mode(Mode::Status(500));
    for _ in 0..2 {
        let (status, _, _, _) = pool.call(BALANCE, &[]).await;
        assert_eq!(status, 502);
    }
    // Open: nobody is called, the route says why, and the instance is not ready.
    let before = pool.mocks[0].calls();
    let (status, body, _, _) = pool.call(BALANCE, &[]).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["data"]["reason"], "no_healthy_provider");
    assert_eq!(
        pool.mocks[0].calls(),
        before,
        "an open circuit is not called"
    );
    let (status, ready, _) = pool.app.get("/readyz").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(
        ready["checks"]["providers"]["devnet"]["status"],
        "no_healthy_provider"
    );
    // The provider recovers; after open_secs it is half-open and one success closes it.
    pool.mocks[0].set_mode(Mode::Normal);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while circuit(&pool.providers().await, "p1") == "open" {
        assert!(tokio::time::Instant::now() < deadline, "never half-open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(circuit(&pool.providers().await, "p1"), "half_open");
    let (status, body, provider, _) = pool.call(BALANCE, &[]).await;
    assert_eq!((status, provider.as_str()), (200, "p1"), "{body}");
    assert_eq!(circuit(&pool.providers().await, "p1"), "closed");
    assert_eq!(pool.app.get("/readyz").await.0, 200);
}

#[tokio::test]
async fn garbage_and_hanging_providers_fail_over_but_a_json_rpc_error_is_an_answer() {
    // cheapest ranks by price alone: p2 (10) stays first whatever it does, then p3 (20).
    let pool = Pool::start("strategy = \"cheapest\"\nfailure_threshold = 100").await;
    pool.mocks[1].set_mode(Mode::Garbage);
    let (status, body, provider, attempts) = pool.call(BALANCE, &[]).await;
    assert_eq!(
        (status, provider.as_str(), attempts),
        (200, "p3", 2),
        "{body}"
    );
    assert_eq!(body["id"], 7);

    pool.mocks[1].set_mode(Mode::Slow(Duration::from_secs(30)));
    let (status, body, provider, attempts) = pool.call(BALANCE, &[]).await;
    assert_eq!(
        (status, provider.as_str(), attempts),
        (200, "p3", 2),
        "{body}"
    );

    // A provider's JSON-RPC error object is its answer: returned as is, never retried.
    pool.mocks[1].set_mode(Mode::Normal);
    let p3_before = pool.mocks[2].calls();
    let (status, body, provider, attempts) = pool
        .call(
            r#"{"jsonrpc":"2.0","id":1,"method":"getAccountInfo","params":["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"]}"#,
            &[],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["error"]["code"], -32602);
    assert_eq!((provider.as_str(), attempts), ("p2", 1));
    assert_eq!(
        pool.mocks[2].calls(),
        p3_before,
        "no retry after an error object"
    );

    // Every provider failing: the last error, after every attempt.
    for mock in &pool.mocks {
        mock.set_mode(Mode::Status(502));
    }
    let (status, body, _, attempts) = pool.call(BALANCE, &[]).await;
    assert_eq!((status, attempts), (502, 3), "{body}");
    assert_eq!(body["error"]["data"]["reason"], "upstream_failed");
}

#[tokio::test]
async fn batches_fail_over_as_a_whole() {
    let pool = Pool::start("failure_threshold = 100").await;
    pool.mocks[0].set_mode(Mode::Status(503));
    let batch = r#"[{"jsonrpc":"2.0","id":"a","method":"getSlot"},{"jsonrpc":"2.0","id":"b","method":"getBalance","params":["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"]}]"#;
    let (status, body, provider, attempts) = pool.call(batch, &[]).await;
    assert_eq!(
        (status, provider.as_str(), attempts),
        (200, "p2", 2),
        "{body}"
    );
    assert_eq!(body[0]["id"], "a");
    assert_eq!(body[1]["id"], "b");
}

#[tokio::test]
async fn a_client_strategy_is_applied_only_where_the_operator_allows_it() {
    let pool =
        Pool::start("strategy = \"most_reliable\"\nclient_strategies = [\"cheapest\"]").await;
    let (status, _, provider, _) = pool.call(BALANCE, &[]).await;
    assert_eq!((status, provider.as_str()), (200, "p1"));
    let (status, _, provider, _) = pool
        .call(BALANCE, &[("x-route-strategy", "cheapest")])
        .await;
    assert_eq!((status, provider.as_str()), (200, "p2"));
    for refused in ["fastest", "random"] {
        let (status, body, _, _) = pool.call(BALANCE, &[("x-route-strategy", refused)]).await;
        assert_eq!(status, 400, "{refused}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("x-route-strategy"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn per_method_routes_keep_their_provider() {
    let pool = Pool::start("strategy = \"cheapest\"").await;
    pool.mocks[0].set_mode(Mode::Status(503));
    let (status, body, head) = pool
        .app
        .post_json("/v1/x402/solana/devnet/p1/rpc/getSlot", "")
        .await;
    assert_eq!(
        status, 502,
        "no failover away from a named provider: {body}"
    );
    assert_eq!(head.headers()["x-route-provider"], "p1");
    assert_eq!(pool.mocks[1].calls() + pool.mocks[2].calls(), 0);
}

#[tokio::test]
async fn providers_lists_health_without_urls_or_keys() {
    let pool = Pool::start("").await;
    pool.call(BALANCE, &[]).await;
    let providers = pool.providers().await;
    let p1 = &providers["providers"][0];
    assert_eq!(p1["name"], "p1");
    assert_eq!(p1["origin"], "config");
    let devnet = &p1["clusters"]["devnet"];
    assert_eq!(devnet["circuit"], "closed");
    assert_eq!(devnet["healthy"], true);
    assert_eq!(devnet["requests_served"], 1);
    assert!(devnet["latency_p50_ms"].as_f64().is_some(), "{devnet}");
    assert!(devnet["latency_mean_ms"].as_f64().is_some());
    assert_eq!(devnet["success_rate"], 1.0);
    assert_eq!(p1["costs"]["atomic_per_million_units"], 3_000_000);
    assert!(!providers.to_string().contains("127.0.0.1"));
}

#[tokio::test]
async fn the_active_probe_brings_an_idle_failed_provider_back() {
    let pool = Pool::start(
        "failure_threshold = 1\nopen_secs = 1\nhealth_check_interval_secs = 1\n[routing.clusters.devnet]\nproviders = [\"p1\"]",
    )
    .await;
    pool.mocks[0].set_mode(Mode::Status(500));
    assert_eq!(pool.call(BALANCE, &[]).await.0, 502);
    assert_eq!(circuit(&pool.providers().await, "p1"), "open");
    pool.mocks[0].set_mode(Mode::Normal);
    // No client call: the probe alone closes the circuit.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while circuit(&pool.providers().await, "p1") != "closed" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the probe never closed it"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let probes = pool.mocks[0]
        .seen()
        .iter()
        .filter(|s| s.body["method"] == "getHealth")
        .count();
    assert!(probes >= 1);
}

/// The paid standard route with a dead provider first (the cheapest): the call is served by the
/// next one, paid once at the price fixed before the 402 (the dearest eligible provider's), and
/// settled once.
#[tokio::test]
async fn a_paid_call_whose_first_provider_fails_is_served_by_the_second_and_settled_once() {
    let dead = closed_port();
    let env = PaidGateway::builder()
        .public_base_url("https://gateway.example")
        .sections(&format!(
            "[pricing]\nfloor = 0\n\
             [routing]\nstrategy = \"cheapest\"\nfailure_threshold = 100\n\
             [[providers]]\nname = \"dead\"\nkey_placement = \"none\"\n\
             atomic_per_million_units = 0\n[providers.clusters]\ndevnet = \"http://{dead}\"\n\
             [providers.rpc]\ngetSlot = 1\n"
        ))
        .build()
        .await;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"getSlot"}"#;
    let (status, _, head) = env.app.post_json(STANDARD, body).await;
    assert_eq!(status, 402);
    let challenge: x402_gateway::x402::PaymentRequired =
        decode_header(head.headers()["payment-required"].as_bytes(), 16 * 1024).unwrap();
    // localnet and mock cost ceil(1 × 1 × 1.2) = 2; dead costs 0: the price is the highest.
    assert_eq!(challenge.accepts[0].amount, "2");
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
    let fixture = env.fixture(2, 41);
    let (client_before, pay_to_before) = env.balances();
    let (status, answer, head) = env
        .pay_body(STANDARD, &PaidGateway::header(&accepted, &fixture), body)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["result"].is_u64(), "{answer}");
    assert_eq!(head.headers()["x-route-attempts"], "2");
    assert_eq!(head.headers()["x-route-provider"], "localnet");
    let receipt: SettleResponse =
        decode_header(head.headers()["payment-response"].as_bytes(), 8192).unwrap();
    assert!(receipt.success, "{receipt:?}");
    assert_eq!(
        receipt.payer.as_deref(),
        Some(env.client().pubkey().to_string().as_str())
    );
    let (client_after, pay_to_after) = env.balances();
    assert_eq!(client_before - client_after, 2, "paid once");
    assert_eq!(pay_to_after - pay_to_before, 2, "settled once");
}

/// Every provider failing on a paid call: not charged.
#[tokio::test]
async fn a_paid_call_that_no_provider_answers_is_not_charged() {
    let dead = closed_port();
    let env = PaidGateway::builder()
        .public_base_url("https://gateway.example")
        .sections(&format!(
            "[routing.clusters.devnet]\nproviders = [\"mock\", \"dead\"]\n\
             [[providers]]\nname = \"dead\"\nkey_placement = \"none\"\n\
             atomic_per_million_units = 1000000\n[providers.clusters]\ndevnet = \"http://{dead}\"\n\
             [providers.rpc]\ngetSlot = 1\n"
        ))
        .build()
        .await;
    env.mock.set_mode(Mode::Status(503));
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"getSlot"}"#;
    let (status, _, head) = env.app.post_json(STANDARD, body).await;
    assert_eq!(status, 402);
    let challenge: x402_gateway::x402::PaymentRequired =
        decode_header(head.headers()["payment-required"].as_bytes(), 16 * 1024).unwrap();
    let amount: u64 = challenge.accepts[0].amount.parse().unwrap();
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
    let fixture = env.fixture(amount, 42);
    let before = env.balances();
    let (status, answer, head) = env
        .pay_body(STANDARD, &PaidGateway::header(&accepted, &fixture), body)
        .await;
    assert_eq!(status, 502, "{answer}");
    assert_eq!(head.headers()["x-route-attempts"], "2");
    assert!(head.headers().get("payment-response").is_none());
    assert_eq!(env.balances(), before, "nothing was charged");
}

/// Two instances on one Redis: a provider registered on one is served by the other's next
/// request, listed by both, survives a new instance, and is removed the same way.
#[tokio::test]
async fn a_provider_registered_at_run_time_is_used_by_another_instance() {
    use crate::common::redis::{unique_prefix, TestRedis};
    let redis = TestRedis::start();
    let base = MockUpstream::start().await;
    let extra = MockUpstream::start().await;
    let toml = format!(
        "[payment]\nenabled = false\n[redis]\nurl = \"{}\"\nkey_prefix = \"{}\"\n\
         [[providers]]\nname = \"p0\"\nkey_placement = \"none\"\natomic_per_million_units = 1000000\n\
         [providers.clusters]\ndevnet = \"{}\"\n[providers.rpc]\ngetSlot = 1\ngetBalance = 10\n",
        redis.url,
        unique_prefix("registry"),
        base.url
    );
    let env: HashMap<String, String> = [("ADMIN_TOKEN".to_string(), "adm1n".to_string())].into();
    let a = TestApp::with_env(&toml, env.clone()).await;
    let b = TestApp::with_env(&toml, env.clone()).await;
    let admin = |method: &str, path: &str, body: String, token: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from(body))
            .unwrap()
    };
    let registration = json!({
        "name": "extra",
        "clusters": {"devnet": extra.url},
        "same_as": "p0",
        "weight": 2,
    })
    .to_string();

    let (status, _, _) = split(
        a.send(admin(
            "POST",
            "/providers/register",
            registration.clone(),
            "wrong",
        ))
        .await,
    )
    .await;
    assert_eq!(status, 401);
    let clash = json!({"name": "p0", "clusters": {"devnet": extra.url}, "same_as": "p0"});
    let (status, body, _) = split(
        a.send(admin(
            "POST",
            "/providers/register",
            clash.to_string(),
            "adm1n",
        ))
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("provider_configured"))
    );
    let bad = json!({"name": "Bad Name", "clusters": {"devnet": extra.url}, "same_as": "p0"});
    let (status, body, _) = split(
        a.send(admin(
            "POST",
            "/providers/register",
            bad.to_string(),
            "adm1n",
        ))
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_registration"))
    );

    let (status, body, _) = split(
        a.send(admin("POST", "/providers/register", registration, "adm1n"))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["provider"]["origin"], "registered");
    assert!(!body.to_string().contains("127.0.0.1"), "no URL: {body}");

    // The other instance's next request to it is served.
    let (status, body, head) = b
        .post_json("/v1/x402/solana/devnet/extra/rpc/getSlot", "")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(head.headers()["x-route-provider"], "extra");
    assert_eq!(extra.calls(), 1);
    // It joins the standard route's pool there too (cheapest ties go to p0, so ask /route
    // for the pool's order instead).
    let (_, decision, _) = b
        .post_json("/route", r#"{"network":"devnet","method":"getSlot"}"#)
        .await;
    assert_eq!(decision["fallbacks"], json!(["extra"]), "{decision}");
    // A new instance (a restart) reads it from the store.
    let c = TestApp::with_env(&toml, env.clone()).await;
    let (_, listed, _) = c.get("/providers").await;
    assert!(
        listed["providers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "extra"),
        "{listed}"
    );

    let (status, _, _) = split(
        b.send(admin("DELETE", "/providers/extra", String::new(), "adm1n"))
            .await,
    )
    .await;
    assert_eq!(status, 204);
    let (_, listed, _) = a.get("/providers").await;
    assert!(
        !listed["providers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "extra"),
        "{listed}"
    );
    let (status, _, _) = split(
        b.send(admin("DELETE", "/providers/p0", String::new(), "adm1n"))
            .await,
    )
    .await;
    assert_eq!(
        status, 409,
        "a configured provider is not removed at run time"
    );
}
