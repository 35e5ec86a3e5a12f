//! Wallet sign-in (SIWX) on the auth-only Tokens API route, end to end: the real router, proofs
//! signed with real Solana keys, a loopback mock Tokens API that records what it received, and
//! the shared store both in memory and in a real `redis-server`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use parking_lot::Mutex;
use serde_json::{json, Value};
use solana_keypair::Keypair;
use solana_signer::Signer;
use tower::ServiceExt;
use x402_gateway::authgate;
use x402_gateway::config::AuthMode;
use x402_gateway::siwx::time::{format_rfc3339_ms, now_ms};
use x402_gateway::siwx::{siws_message, NonceKey, SiwxProof};
use x402_gateway::x402::decode_header;
use x402_gateway::x402::network::{SOLANA_DEVNET, SOLANA_MAINNET};

use crate::common::app::split;
use crate::common::loopback;
use crate::common::redis::TestRedis;
use crate::common::TestApp;

const ORIGIN: &str = "https://gw.example";
const TOKENS_KEY: &str = "tokens-server-key-5ecr3t";
const SECRET: &str = "it-siwx-secret";
const PATH: &str = "/v1/x402/tokens/v1/tokens/So11111111111111111111111111111111111111112";

// === mock Tokens API ===

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Default)]
struct MockState {
    seen: Mutex<Vec<Seen>>,
    status: Mutex<Option<u16>>,
    delay: Mutex<Option<Duration>>,
}

#[derive(Clone)]
struct MockTokens {
    url: String,
    state: Arc<MockState>,
}

impl MockTokens {
    async fn start() -> Self {
        let state = Arc::new(MockState::default());
        let app = Router::new().fallback(answer).with_state(state.clone());
        let url = format!("http://{}/api", loopback::serve(app).await);
        Self { url, state }
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().clone()
    }

    fn calls(&self) -> usize {
        self.state.seen.lock().len()
    }

    fn answer_with(&self, status: u16) {
        *self.state.status.lock() = Some(status);
    }
}

async fn answer(
    State(state): State<Arc<MockState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.seen.lock().push(Seen {
        method,
        uri: uri.clone(),
        headers,
        body,
    });
    let delay = *state.delay.lock();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let status = StatusCode::from_u16(state.status.lock().unwrap_or(200)).unwrap();
    let body = json!({"path": uri.path(), "query": uri.query(), "symbol": "SOL"});
    (status, axum::Json(body)).into_response()
}

// === the gateway under test ===

enum Backend {
    Memory,
    Redis(TestRedis),
    /// A Redis URL nobody listens on.
    Dead(u16),
}

impl Backend {
    fn redis() -> Self {
        Backend::Redis(TestRedis::start())
    }

    fn dead() -> Self {
        Backend::Dead(loopback::closed_port().port())
    }

    fn toml(&self) -> String {
        let prefix = format!("siwx-{}:", rand_hex());
        match self {
            Backend::Memory => String::new(),
            Backend::Redis(redis) => format!(
                "[redis]\nurl = \"{}\"\nkey_prefix = \"{prefix}\"\n",
                redis.url
            ),
            Backend::Dead(port) => {
                format!("[redis]\nurl = \"redis://127.0.0.1:{port}\"\ncommand_timeout_ms = 200\n")
            }
        }
    }
}

fn rand_hex() -> String {
    hex::encode(rand::random::<[u8; 6]>())
}

struct Env {
    app: TestApp,
    tokens: MockTokens,
    _backend: Backend,
}

/// How the Tokens API is configured: the `[tokens]` shorthand, or the `[[services]]` entry the
/// README documents as its equivalent.
#[derive(Clone, Copy, Debug)]
enum Form {
    Shorthand,
    Service,
}

impl Form {
    fn toml(self, url: &str) -> String {
        match self {
            Form::Shorthand => format!(
                r#"
[tokens]
base_url = "{url}"
auth = "siwx"
timeout_ms = 300
max_response_bytes = 4096
"#
            ),
            Form::Service => format!(
                r#"
[[services]]
id = "tokens"
mount = "/v1/x402/tokens"
title = "Tokens API"
description = "Token metadata and prices, behind a wallet sign-in (no payment)."
base_url = "{url}"
timeout_ms = 300
max_response_bytes = 4096
[services.credentials]
headers = {{ "x-api-key" = "TOKENS_API_KEY" }}
[services.routes]
"GET /*path" = {{ access = "siwx", description = "A Tokens API call (wallet sign-in, no payment)" }}
"POST /*path" = {{ access = "siwx", description = "A Tokens API call with a JSON body (wallet sign-in, no payment)" }}
"#
            ),
        }
    }
}

impl Env {
    async fn start(backend: Backend, siwx: &str) -> Self {
        Self::start_as(Form::Shorthand, backend, siwx).await
    }

    async fn start_as(form: Form, backend: Backend, siwx: &str) -> Self {
        let tokens = MockTokens::start().await;
        let toml = format!(
            r#"
[server]
public_base_url = "{ORIGIN}"

[siwx]
{siwx}
{tokens}
{store}
"#,
            tokens = form.toml(&tokens.url),
            store = backend.toml(),
        );
        let env: HashMap<String, String> = [
            ("TOKENS_API_KEY".to_string(), TOKENS_KEY.to_string()),
            ("SIWX_SECRET".to_string(), SECRET.to_string()),
        ]
        .into();
        let app = TestApp::with_env(&toml, env).await;
        Self {
            app,
            tokens,
            _backend: backend,
        }
    }

    /// Sends `method path` with an optional proof and extra headers.
    async fn call(
        &self,
        method: &str,
        path: &str,
        proof: Option<&SiwxProof>,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Value, Response<()>) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(proof) = proof {
            request = request.header("sign-in-with-x", proof.to_header());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if !body.is_empty() {
            request = request.header("content-type", "application/json");
        }
        split(
            self.app
                .send(request.body(Body::from(body.to_string())).unwrap())
                .await,
        )
        .await
    }

    async fn get(&self, path: &str, proof: Option<&SiwxProof>) -> (u16, Value, Response<()>) {
        self.call("GET", path, proof, &[], "").await
    }

    /// The `sign-in-with-x` extension of a fresh 402 for `path`.
    async fn challenge(&self, path: &str) -> Value {
        let (status, body, head) = self.get(path, None).await;
        assert_eq!(status, 402, "{body}");
        let header: Value =
            decode_header(head.headers()["payment-required"].as_bytes(), 64 * 1024).unwrap();
        assert_eq!(header, body, "PAYMENT-REQUIRED carries the body's JSON");
        body["extensions"]["sign-in-with-x"].clone()
    }

    /// A valid, signed proof for `path` from a fresh challenge.
    async fn proof(&self, wallet: &Keypair, path: &str) -> SiwxProof {
        let ext = self.challenge(path).await;
        sign(unsigned(&ext, wallet, SOLANA_MAINNET), wallet)
    }
}

/// The proof a client builds from a challenge, before signing.
pub(crate) fn unsigned(ext: &Value, wallet: &Keypair, chain: &str) -> SiwxProof {
    let info = &ext["info"];
    let s = |k: &str| info[k].as_str().unwrap().to_string();
    SiwxProof {
        domain: s("domain"),
        address: wallet.pubkey().to_string(),
        uri: s("uri"),
        version: s("version"),
        chain_id: chain.into(),
        kind: "ed25519".into(),
        nonce: s("nonce"),
        issued_at: s("issuedAt"),
        expiration_time: Some(s("expirationTime")),
        not_before: None,
        request_id: None,
        statement: Some(s("statement")),
        resources: Some(
            info["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect(),
        ),
        signature_scheme: Some("siws".into()),
        signature: String::new(),
    }
}

pub(crate) fn sign(mut proof: SiwxProof, wallet: &Keypair) -> SiwxProof {
    proof.signature = wallet
        .sign_message(siws_message(&proof).as_bytes())
        .to_string();
    proof
}

/// A proof whose times (and so nonce) are chosen by the test, as the server would have issued
/// them at another moment (the test shares the gateway's SIWX_SECRET).
fn proof_at(wallet: &Keypair, issued_ms: i64, expires_ms: i64) -> SiwxProof {
    let issued_at = format_rfc3339_ms(issued_ms);
    let expiration = format_rfc3339_ms(expires_ms);
    let nonce = NonceKey::from_secret(SECRET).issue(&issued_at, &expiration);
    let ext = json!({"info": {
        "domain": "gw.example",
        "uri": format!("{ORIGIN}{PATH}"),
        "version": "1",
        "nonce": nonce,
        "issuedAt": issued_at,
        "expirationTime": expiration,
        "statement": "Sign in",
        "resources": [format!("{ORIGIN}{PATH}")],
    }});
    sign(unsigned(&ext, wallet, SOLANA_MAINNET), wallet)
}

fn reason(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .or_else(|| body["error"].as_str())
        .unwrap_or("")
}

// === scenarios, each run against the memory store and a real Redis ===

async fn valid_proof_reaches_upstream_with_the_server_key(backend: Backend) {
    let env = Env::start(backend, "").await;
    let wallet = Keypair::new();

    // GET with a query and a pile of client headers that must not travel.
    let proof = env.proof(&wallet, PATH).await;
    let (status, body, head) = env
        .call(
            "GET",
            &format!("{PATH}?limit=5"),
            Some(&proof),
            &[
                ("authorization", "Bearer client-token"),
                ("cookie", "session=client"),
                ("x-api-key", "client-chosen-key"),
                ("x-forwarded-for", "203.0.113.9"),
            ],
            "",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["path"],
        "/api/v1/tokens/So11111111111111111111111111111111111111112"
    );
    assert_eq!(body["query"], "limit=5");
    let seen = env.tokens.seen();
    assert_eq!(seen.len(), 1);
    let upstream = &seen[0];
    assert_eq!(upstream.method, Method::GET);
    assert_eq!(
        upstream.uri.to_string(),
        "/api/v1/tokens/So11111111111111111111111111111111111111112?limit=5"
    );
    assert_eq!(upstream.headers["x-api-key"], TOKENS_KEY);
    assert_eq!(upstream.headers.get_all("x-api-key").iter().count(), 1);
    for leaked in [
        "authorization",
        "cookie",
        "x-forwarded-for",
        "sign-in-with-x",
    ] {
        assert!(
            upstream.headers.get(leaked).is_none(),
            "{leaked} was forwarded"
        );
    }
    // The client never sees the server's key.
    let everything = format!("{body} {:?}", head.headers());
    assert!(!everything.contains(TOKENS_KEY), "key leaked: {everything}");

    // POST with a JSON body: a fresh proof, the body relayed byte for byte.
    let post_path = "/v1/x402/tokens/v1/tokens/batch";
    let proof = env.proof(&wallet, post_path).await;
    let (status, body, _) = env
        .call(
            "POST",
            post_path,
            Some(&proof),
            &[],
            r#"{"mints":["a","b"]}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let upstream = env.tokens.seen().pop().unwrap();
    assert_eq!(upstream.method, Method::POST);
    assert_eq!(&upstream.body[..], br#"{"mints":["a","b"]}"#);
    assert_eq!(upstream.headers["content-type"], "application/json");
    assert_eq!(upstream.headers["x-api-key"], TOKENS_KEY);
}

async fn every_bad_proof_is_refused_with_its_reason(backend: Backend) {
    let env = Env::start(backend, "").await;
    let wallet = Keypair::new();
    let now = now_ms();
    let ext = env.challenge(PATH).await;
    let good = || unsigned(&ext, &wallet, SOLANA_MAINNET);

    let resign = |edit: &dyn Fn(&mut SiwxProof)| {
        let mut p = good();
        edit(&mut p);
        sign(p, &wallet)
    };
    let mut cases: Vec<(&str, SiwxProof, u16, &str)> = Vec::new();

    // Tampered after signing: the rebuilt text no longer matches the signature.
    let mut tampered = sign(good(), &wallet);
    tampered.statement = Some("Transfer everything".into());
    cases.push((
        "tampered statement",
        tampered,
        401,
        "siwx_invalid_signature",
    ));
    let mut tampered = sign(good(), &wallet);
    tampered.resources = Some(vec![
        format!("{ORIGIN}{PATH}"),
        format!("{ORIGIN}/v1/x402/tokens/x"),
    ]);
    cases.push((
        "tampered resources",
        tampered,
        401,
        "siwx_invalid_signature",
    ));
    // A stretched expiry no longer matches the server's nonce.
    let mut tampered = sign(good(), &wallet);
    tampered.expiration_time = Some(format_rfc3339_ms(now + 3_600_000));
    cases.push((
        "tampered expirationTime",
        tampered,
        402,
        "siwx_invalid_nonce",
    ));
    // Signed by another key.
    let other = Keypair::new();
    let mut forged = sign(good(), &other);
    forged.address = wallet.pubkey().to_string();
    cases.push((
        "signature by another key",
        forged,
        401,
        "siwx_invalid_signature",
    ));
    // Wrong lengths.
    let mut short = sign(good(), &wallet);
    let sig = bs58::decode(&short.signature).into_vec().unwrap();
    short.signature = bs58::encode(&sig[..63]).into_string();
    cases.push((
        "63-byte signature",
        short,
        401,
        "siwx_invalid_signature_encoding",
    ));
    let mut short_key = sign(good(), &wallet);
    short_key.address = bs58::encode(&wallet.pubkey().to_bytes()[..31]).into_string();
    cases.push(("31-byte address", short_key, 401, "siwx_invalid_address"));
    // Correctly signed, but for something we do not accept.
    cases.push((
        "testnet chain",
        resign(&|p| p.chain_id = "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z".into()),
        401,
        "siwx_unsupported_chain",
    ));
    cases.push((
        "other domain",
        resign(&|p| p.domain = "evil.example".into()),
        401,
        "siwx_wrong_domain",
    ));
    cases.push((
        "other uri origin",
        resign(&|p| {
            p.uri = format!("https://evil.example{PATH}");
            p.resources = Some(vec![p.uri.clone()]);
        }),
        401,
        "siwx_wrong_uri",
    ));
    cases.push((
        "uri for another route",
        resign(&|p| {
            p.uri = format!("{ORIGIN}/v1/x402/tokens/other");
            p.resources = Some(vec![p.uri.clone()]);
        }),
        401,
        "siwx_wrong_resource",
    ));
    // Times (the nonce issued for them, as another challenge would have).
    cases.push((
        "expired",
        proof_at(&wallet, now - 200_000, now - 1_000),
        402,
        "siwx_expired",
    ));
    cases.push((
        "issued in the future",
        proof_at(&wallet, now + 120_000, now + 420_000),
        402,
        "siwx_issued_in_future",
    ));
    cases.push((
        "issued too long ago",
        proof_at(&wallet, now - 900_000, now + 60_000),
        402,
        "siwx_too_old",
    ));
    cases.push((
        "not yet valid",
        resign(&|p| p.not_before = Some(format_rfc3339_ms(now + 120_000))),
        402,
        "siwx_not_yet_valid",
    ));

    for (name, proof, status, expected) in cases {
        let (got, body, head) = env.get(PATH, Some(&proof)).await;
        assert_eq!((got, reason(&body)), (status, expected), "{name}: {body}");
        if status == 402 {
            // A fresh challenge comes with it.
            assert!(head.headers().contains_key("payment-required"), "{name}");
            assert!(body["extensions"]["sign-in-with-x"]["info"]["nonce"].is_string());
        }
    }

    // Not even base64 JSON.
    let (status, body, _) = env
        .call("GET", PATH, None, &[("sign-in-with-x", "%%%")], "")
        .await;
    assert_eq!((status, reason(&body)), (401, "siwx_malformed"));
    assert_eq!(
        env.tokens.calls(),
        0,
        "no refused request reached the upstream"
    );
}

async fn spoofed_host_headers_change_nothing(backend: Backend) {
    let env = Env::start(backend, "").await;
    let wallet = Keypair::new();
    let spoof = [
        ("host", "evil.example"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-proto", "http"),
        ("forwarded", "host=evil.example;proto=http"),
    ];
    // The challenge names the configured origin, not the Host the client claims.
    let (status, body, _) = env.call("GET", PATH, None, &spoof, "").await;
    assert_eq!(status, 402);
    let info = &body["extensions"]["sign-in-with-x"]["info"];
    assert_eq!(info["domain"], "gw.example");
    assert_eq!(info["uri"], format!("{ORIGIN}{PATH}"));
    assert_eq!(body["resource"]["url"], format!("{ORIGIN}{PATH}"));

    // A proof signed for the spoofed host is refused even when the headers agree with it.
    let ext = env.challenge(PATH).await;
    let mut p = unsigned(&ext, &wallet, SOLANA_MAINNET);
    p.domain = "evil.example".into();
    p.uri = format!("http://evil.example{PATH}");
    p.resources = Some(vec![p.uri.clone()]);
    let (status, body, _) = env
        .call("GET", PATH, Some(&sign(p, &wallet)), &spoof, "")
        .await;
    assert_eq!((status, reason(&body)), (401, "siwx_wrong_domain"));

    // A correct proof passes whatever the headers say.
    let proof = env.proof(&wallet, PATH).await;
    let (status, body, _) = env.call("GET", PATH, Some(&proof), &spoof, "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(env.tokens.calls(), 1);
}

async fn one_proof_opens_one_request(backend: Backend) {
    let env = Env::start(backend, "").await;
    let wallet = Keypair::new();
    let proof = env.proof(&wallet, PATH).await;
    assert_eq!(env.get(PATH, Some(&proof)).await.0, 200);
    let (status, body, head) = env.get(PATH, Some(&proof)).await;
    assert_eq!((status, reason(&body)), (402, "siwx_nonce_reused"));
    assert!(head.headers().contains_key("payment-required"));
    assert_eq!(env.tokens.calls(), 1);
    // Devnet is accepted too; a new challenge, a new request.
    let ext = env.challenge(PATH).await;
    let devnet = sign(unsigned(&ext, &wallet, SOLANA_DEVNET), &wallet);
    assert_eq!(env.get(PATH, Some(&devnet)).await.0, 200);
}

async fn session_mode_reuses_the_same_proof_only(backend: Backend) {
    let env = Env::start(backend, "session = true").await;
    let wallet = Keypair::new();
    let ext = env.challenge(PATH).await;
    let proof = sign(unsigned(&ext, &wallet, SOLANA_MAINNET), &wallet);
    for _ in 0..3 {
        let (status, body, _) = env.get(PATH, Some(&proof)).await;
        assert_eq!(status, 200, "{body}");
    }
    // The same nonce under another proof (another wallet, or other signed fields) is refused.
    let thief = Keypair::new();
    let stolen = sign(unsigned(&ext, &thief, SOLANA_MAINNET), &thief);
    let (status, body, _) = env.get(PATH, Some(&stolen)).await;
    assert_eq!((status, reason(&body)), (402, "siwx_nonce_reused"));
    let mut with_request_id = unsigned(&ext, &wallet, SOLANA_MAINNET);
    with_request_id.request_id = Some("r2".into());
    let (status, body, _) = env.get(PATH, Some(&sign(with_request_id, &wallet))).await;
    assert_eq!((status, reason(&body)), (402, "siwx_nonce_reused"));
    // The session covers the proof's resources only.
    let other = "/v1/x402/tokens/v1/other";
    let (status, body, _) = env.get(other, Some(&proof)).await;
    assert_eq!((status, reason(&body)), (401, "siwx_wrong_resource"));
    assert_eq!(env.tokens.calls(), 3);
}

async fn wallets_are_rate_limited(backend: Backend) {
    let env = Env::start(
        backend,
        "rate_limit_burst = 2\nrate_limit_period_secs = 600",
    )
    .await;
    let wallet = Keypair::new();
    for _ in 0..2 {
        let proof = env.proof(&wallet, PATH).await;
        assert_eq!(env.get(PATH, Some(&proof)).await.0, 200);
    }
    let proof = env.proof(&wallet, PATH).await;
    let (status, body, head) = env.get(PATH, Some(&proof)).await;
    assert_eq!((status, reason(&body)), (429, "siwx_rate_limited"));
    let retry: u64 = head.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    // Another wallet has its own budget.
    let other = Keypair::new();
    let proof = env.proof(&other, PATH).await;
    assert_eq!(env.get(PATH, Some(&proof)).await.0, 200);
    assert_eq!(env.tokens.calls(), 3);
}

#[tokio::test]
async fn valid_proof_reaches_upstream_with_the_server_key_memory() {
    valid_proof_reaches_upstream_with_the_server_key(Backend::Memory).await;
}

#[tokio::test]
async fn valid_proof_reaches_upstream_with_the_server_key_redis() {
    valid_proof_reaches_upstream_with_the_server_key(Backend::redis()).await;
}

#[tokio::test]
async fn every_bad_proof_is_refused_with_its_reason_memory() {
    every_bad_proof_is_refused_with_its_reason(Backend::Memory).await;
}

#[tokio::test]
async fn every_bad_proof_is_refused_with_its_reason_redis() {
    every_bad_proof_is_refused_with_its_reason(Backend::redis()).await;
}

#[tokio::test]
async fn spoofed_host_headers_change_nothing_memory() {
    spoofed_host_headers_change_nothing(Backend::Memory).await;
}

#[tokio::test]
async fn spoofed_host_headers_change_nothing_redis() {
    spoofed_host_headers_change_nothing(Backend::redis()).await;
}

#[tokio::test]
async fn one_proof_opens_one_request_memory() {
    one_proof_opens_one_request(Backend::Memory).await;
}

#[tokio::test]
async fn one_proof_opens_one_request_redis() {
    one_proof_opens_one_request(Backend::redis()).await;
}

#[tokio::test]
async fn session_mode_reuses_the_same_proof_only_memory() {
    session_mode_reuses_the_same_proof_only(Backend::Memory).await;
}

#[tokio::test]
async fn session_mode_reuses_the_same_proof_only_redis() {
    session_mode_reuses_the_same_proof_only(Backend::redis()).await;
}

#[tokio::test]
async fn wallets_are_rate_limited_memory() {
    wallets_are_rate_limited(Backend::Memory).await;
}

#[tokio::test]
async fn wallets_are_rate_limited_redis() {
    wallets_are_rate_limited(Backend::redis()).await;
}

// === fail closed ===

#[tokio::test]
async fn store_down_is_503_but_challenges_still_work() {
    let env = Env::start(Backend::dead(), "").await;
    let wallet = Keypair::new();
    // Issuing a challenge writes nothing, so it works without the store.
    let proof = env.proof(&wallet, PATH).await;
    let (status, body, head) = env.get(PATH, Some(&proof)).await;
    assert_eq!((status, reason(&body)), (503, "siwx_store_unavailable"));
    assert_eq!(head.headers()["retry-after"], "1");
    assert_eq!(env.tokens.calls(), 0);
}

#[tokio::test]
async fn a_redis_that_stops_fails_closed() {
    let mut env = Env::start(Backend::Redis(TestRedis::spawn()), "").await;
    let wallet = Keypair::new();
    let proof = env.proof(&wallet, PATH).await;
    assert_eq!(env.get(PATH, Some(&proof)).await.0, 200);
    match &mut env._backend {
        Backend::Redis(redis) => redis.stop(),
        _ => unreachable!(),
    }
    let proof = env.proof(&wallet, PATH).await;
    let (status, body, head) = env.get(PATH, Some(&proof)).await;
    assert_eq!((status, reason(&body)), (503, "siwx_store_unavailable"));
    assert_eq!(head.headers()["retry-after"], "1");
    assert_eq!(env.tokens.calls(), 1);
}

// === the route and the upstream ===

#[tokio::test]
async fn the_challenge_is_an_x402_402_with_the_extension() {
    let env = Env::start(Backend::Memory, "statement = \"Sign in to the Tokens API\"").await;
    let (status, body, head) = env.get(PATH, None).await;
    assert_eq!(status, 402);
    assert_eq!(head.headers()["cache-control"], "no-store");
    assert_eq!(body["x402Version"], 2);
    assert_eq!(body["error"], "siwx_required");
    assert_eq!(body["accepts"], json!([]));
    let ext = &body["extensions"]["sign-in-with-x"];
    let info = &ext["info"];
    assert_eq!(info["statement"], "Sign in to the Tokens API");
    assert_eq!(info["version"], "1");
    assert_eq!(info["resources"], json!([format!("{ORIGIN}{PATH}")]));
    assert_eq!(ext["supportedChains"][0]["chainId"], SOLANA_MAINNET);
    assert_eq!(ext["supportedChains"][1]["chainId"], SOLANA_DEVNET);
    assert!(ext["schema"]["required"]
        .as_array()
        .unwrap()
        .contains(&json!("signature")));
    // Two challenges, two nonces.
    let again = env.challenge(PATH).await;
    assert_ne!(again["info"]["nonce"], info["nonce"]);
    assert_eq!(env.tokens.calls(), 0);
}

#[tokio::test]
async fn upstream_failures_map_like_the_rpc_routes() {
    let env = Env::start(Backend::Memory, "").await;
    let wallet = Keypair::new();
    let cases: [(u16, u16, &str); 5] = [
        (404, 404, ""),
        (401, 502, "upstream_failed"),
        (403, 502, "upstream_failed"),
        (500, 502, "upstream_failed"),
        (429, 503, "upstream_rate_limited"),
    ];
    for (upstream, expected, code) in cases {
        env.tokens.answer_with(upstream);
        let proof = env.proof(&wallet, PATH).await;
        let (status, body, head) = env.get(PATH, Some(&proof)).await;
        assert_eq!(status, expected, "upstream {upstream}: {body}");
        if code.is_empty() {
            // A plain 4xx about the request is the client's answer, relayed.
            assert_eq!(body["symbol"], "SOL");
        } else {
            assert_eq!(body["error"]["code"], code, "upstream {upstream}");
            assert!(!body.to_string().contains(TOKENS_KEY));
        }
        if expected == 503 {
            assert!(head.headers().contains_key("retry-after"));
        }
    }
    env.tokens.answer_with(200);
    *env.tokens.state.delay.lock() = Some(Duration::from_millis(1_000));
    let proof = env.proof(&wallet, PATH).await;
    let (status, body, _) = env.get(PATH, Some(&proof)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (504, Some("upstream_timeout"))
    );
}

#[tokio::test]
async fn paths_and_bodies_are_checked_before_any_upstream_call() {
    let env = Env::start(Backend::Memory, "").await;
    let wallet = Keypair::new();
    // A path that would leave the base is refused before the sign-in is even asked for (a
    // proof changes nothing).
    let escape = "/v1/x402/tokens/v1/%2e%2e/%2e%2e/admin";
    let proof = env.proof(&wallet, PATH).await;
    for proof in [None, Some(&proof)] {
        let (status, body, _) = env.get(escape, proof).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_path"))
        );
    }
    let proof = env.proof(&wallet, PATH).await;
    let (status, _, _) = env
        .call(
            "POST",
            PATH,
            Some(&proof),
            &[("content-type", "text/plain")],
            "",
        )
        .await;
    assert_eq!(status, 200, "an empty body needs no content type");
    let proof = env.proof(&wallet, PATH).await;
    let request = Request::post(PATH)
        .header("sign-in-with-x", proof.to_header())
        .header("content-type", "text/plain")
        .body(Body::from("hello"))
        .unwrap();
    assert_eq!(env.app.send(request).await.status(), 415);
    assert_eq!(env.tokens.calls(), 1);
}

#[tokio::test]
async fn without_tokens_config_the_route_says_so() {
    let app = TestApp::new("").await;
    let (status, body, _) = app.get(PATH).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("tokens_not_configured"))
    );
}

/// What one form of the Tokens API config answers to a fixed set of requests, and what its
/// upstream received.
async fn observe(form: Form) -> (Vec<(u16, Value)>, Vec<String>, Value, Value) {
    let env = Env::start_as(form, Backend::Memory, "").await;
    let wallet = Keypair::new();
    let mut answers = Vec::new();
    // Signed GET with a query and client headers that must not travel; POST with a JSON body;
    // the same GET with its path sent as one %2F-encoded segment (the OpenAPI form).
    let encoded = "/v1/x402/tokens/v1%2Ftokens%2FSo11111111111111111111111111111111111111112";
    for (method, path, body) in [
        ("GET", format!("{PATH}?limit=5"), ""),
        (
            "POST",
            "/v1/x402/tokens/v1/tokens/batch".to_string(),
            r#"{"mints":["a"]}"#,
        ),
        ("GET", encoded.to_string(), ""),
    ] {
        let proof = env.proof(&wallet, &path).await;
        let headers = [
            ("authorization", "Bearer client"),
            ("x-api-key", "client-key"),
        ];
        let (status, body, head) = env.call(method, &path, Some(&proof), &headers, body).await;
        assert_eq!(head.headers()["cache-control"], "private, no-store");
        answers.push((status, body));
    }
    // Refused without an upstream call: no proof, a path leaving the base, a non-JSON body,
    // another method.
    let (status, body, _) = env.get(PATH, None).await;
    answers.push((status, json!({"accepts": body["accepts"]})));
    let (status, body, _) = env.get("/v1/x402/tokens/%2e%2e/admin", None).await;
    answers.push((status, body));
    let proof = env.proof(&wallet, PATH).await;
    let (status, body, _) = env
        .call(
            "POST",
            PATH,
            Some(&proof),
            &[("content-type", "text/plain")],
            "x",
        )
        .await;
    answers.push((status, body));
    let (status, body, _) = env.call("PUT", PATH, None, &[], "").await;
    answers.push((status, body));
    // The upstream refusing the gateway's key is the gateway's failure, not a sign-in one.
    env.tokens.answer_with(401);
    let proof = env.proof(&wallet, PATH).await;
    let (status, body, _) = env.get(PATH, Some(&proof)).await;
    answers.push((status, body));
    let seen = env
        .tokens
        .seen()
        .into_iter()
        .map(|s| {
            format!(
                "{} {} key={:?} auth={:?} type={:?} body={}",
                s.method,
                s.uri,
                s.headers.get_all("x-api-key").iter().collect::<Vec<_>>(),
                s.headers.get("authorization"),
                s.headers.get("content-type"),
                String::from_utf8_lossy(&s.body)
            )
        })
        .collect();
    let (_, catalog, _) = env.app.get("/v1/catalog").await;
    let (_, openapi, _) = env.app.get("/openapi.json").await;
    (answers, seen, catalog, openapi)
}

#[tokio::test]
async fn the_tokens_shorthand_and_its_services_entry_are_the_same_service() {
    let (answers, seen, catalog, openapi) = observe(Form::Shorthand).await;
    let service = observe(Form::Service).await;
    // Not just equal to each other: right.
    let codes: Vec<(u16, Option<&str>)> = answers
        .iter()
        .map(|(s, b)| (*s, b["error"]["code"].as_str()))
        .collect();
    assert_eq!(
        codes,
        [
            (200, None),
            (200, None),
            (200, None),
            (402, None),
            (400, Some("invalid_path")),
            (415, Some("unsupported_media_type")),
            (404, Some("route_not_found")),
            (502, Some("upstream_failed")),
        ]
    );
    let path = "/api/v1/tokens/So11111111111111111111111111111111111111112";
    assert_eq!(answers[0].1["path"], path);
    assert_eq!(answers[2].1["path"], path, "%2F is a /");
    let key = format!("key=[{TOKENS_KEY:?}] auth=None");
    assert_eq!(
        seen,
        [
            format!("GET {path}?limit=5 {key} type=None body="),
            format!("POST /api/v1/tokens/batch {key} type=Some(\"application/json\") body={{\"mints\":[\"a\"]}}"),
            format!("GET {path} {key} type=None body="),
            format!("GET {path} {key} type=None body="),
        ]
    );
    let group = |c: &Value| {
        c["routes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["group"] == "tokens")
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(group(&catalog).len(), 2);
    assert_eq!(group(&catalog)[0]["path"], "/v1/x402/tokens/{path}");
    assert_eq!(group(&catalog)[0]["access"], "siwx");
    assert_eq!(
        openapi["paths"]["/v1/x402/tokens/{path}"]["parameters"][0]["x-catch-all"],
        true
    );
    // And the other form answers, forwards and documents exactly the same.
    assert_eq!((answers, seen, catalog, openapi), service);
}

#[tokio::test]
async fn config_refuses_two_tokens_services_and_overlapping_mounts() {
    use x402_gateway::config::Config;
    let env: HashMap<String, String> = [("TOKENS_API_KEY".to_string(), "k".to_string())].into();
    let service = |id: &str, mount: &str| {
        format!(
            "[[services]]\nid = \"{id}\"\nmount = \"{mount}\"\ntitle = \"T\"\n\
             base_url = \"https://t.example\"\n[services.routes]\n\"GET /*path\" = \"siwx\"\n"
        )
    };
    let shorthand = "[tokens]\nbase_url = \"https://tokens.example/api\"\nauth = \"siwx\"\n";
    let refused = |toml: String, field: &str, words: &str| {
        let err = Config::from_toml(&toml, &env).unwrap_err().to_string();
        assert!(
            err.contains(field) && err.contains(words),
            "{toml}\n→ {err}"
        );
    };
    refused(
        format!("{shorthand}{}", service("other", "/v1/x402/tokens")),
        "tokens",
        "keep one",
    );
    refused(
        format!("{shorthand}{}", service("tokens", "/t")),
        "tokens",
        "keep one",
    );
    refused(
        service("t", "/v1/x402/tokens/v2"),
        "services[0].mount",
        "/v1/x402/tokens/{*path}",
    );
    refused(service("t", "/v1/catalog"), "services[0].mount", "overlap");
    refused(
        service("t", "/v1/x402/tokens/"),
        "services[0].mount",
        "trailing",
    );
    refused(
        format!("{}{}", service("a", "/x"), service("b", "/x/y")),
        "services[1].mount",
        "service \"a\"",
    );
    // The service form alone, mounted where the shorthand would be, is accepted.
    Config::from_toml(&service("t", "/v1/x402/tokens"), &env).unwrap();
}

#[tokio::test]
async fn config_refuses_tokens_without_its_key_or_auth() {
    use x402_gateway::config::Config;
    let env: HashMap<String, String> = HashMap::new();
    let err = Config::from_toml(
        "[tokens]\nbase_url = \"https://tokens.example/api\"\nauth = \"siwx\"\n",
        &env,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("tokens.api_key_env") && err.contains("TOKENS_API_KEY"),
        "{err}"
    );
    let keyed: HashMap<String, String> = [("TOKENS_API_KEY".to_string(), "k".to_string())].into();
    let err = Config::from_toml(
        "[tokens]\nbase_url = \"https://tokens.example/api\"\n",
        &keyed,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("auth"), "{err}");
    let err = Config::from_toml(
        "[tokens]\nbase_url = \"https://tokens.example/api\"\nauth = \"none\"\n",
        &keyed,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("tokens.auth"), "{err}");
    let err = Config::from_toml("[siwx]\nchains = [\"eip155:1\"]\n", &keyed)
        .unwrap_err()
        .to_string();
    assert!(err.contains("siwx.chains"), "{err}");
}

/// The layer is not tied to the Tokens route: any router can be made auth-only with it.
#[tokio::test]
async fn any_route_can_be_made_auth_only() {
    let env = Env::start(Backend::Memory, "").await;
    let custom = authgate::require(
        Router::new().route(
            "/custom/{id}",
            get(|signed: axum::Extension<authgate::SignedIn>| async move { signed.0.wallet }),
        ),
        AuthMode::Siwx,
        env.app.app.siwx.clone(),
    );
    let (status, body, _) = split(
        custom
            .clone()
            .oneshot(Request::get("/custom/7").body(Body::empty()).unwrap())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 402);
    let ext = &body["extensions"]["sign-in-with-x"];
    assert_eq!(ext["info"]["uri"], format!("{ORIGIN}/custom/7"));
    let wallet = Keypair::new();
    let proof = sign(unsigned(ext, &wallet, SOLANA_MAINNET), &wallet);
    let response = custom
        .oneshot(
            Request::get("/custom/7")
                .header("sign-in-with-x", proof.to_header())
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(bytes, wallet.pubkey().to_string().as_bytes());
}
