//! Remote facilitator client and failover against real loopback facilitator servers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{json, Value};
use x402_gateway::config::{FailoverPolicy, RemoteFacilitatorConfig};
use x402_gateway::facilitator::failover::FailoverFacilitator;
use x402_gateway::facilitator::remote::RemoteFacilitator;
use x402_gateway::facilitator::{Facilitator, FacilitatorError};
use x402_gateway::x402::FacilitatorRequest;

use crate::common::loopback;

#[derive(Clone, Debug)]
enum Behaviour {
    Valid,
    Invalid,
    Status(u16),
    Slow(Duration),
}

#[derive(Default)]
struct Counts {
    verify: AtomicUsize,
    settle: AtomicUsize,
    last_secret: Mutex<Option<String>>,
}

struct MockFacilitator {
    url: String,
    counts: Arc<Counts>,
}

async fn start(behaviour: Behaviour) -> MockFacilitator {
    let counts = Arc::new(Counts::default());
    let state = (behaviour, counts.clone());
    let app = Router::new()
        .route("/supported", get(supported))
        .route("/verify", post(verify))
        .route("/settle", post(settle))
        .with_state(state);
    let url = format!("http://{}/", loopback::serve(app).await);
    MockFacilitator { url, counts }
}

type S = State<(Behaviour, Arc<Counts>)>;

async fn supported() -> Json<Value> {
    Json(
        json!({"kinds":[{"x402Version":2,"scheme":"exact","network":"solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1","extra":{"feePayer":"FeePayer111"}}],"extensions":[],"signers":{"solana:*":["FeePayer111"]}}),
    )
}

async fn misbehave(b: &Behaviour) -> Option<Response> {
    match b {
        Behaviour::Status(code) => {
            Some((StatusCode::from_u16(*code).unwrap(), "boom").into_response())
        }
        Behaviour::Slow(d) => {
            tokio::time::sleep(*d).await;
            None
        }
        _ => None,
    }
}

async fn verify(State((b, counts)): S, headers: HeaderMap, Json(_): Json<Value>) -> Response {
    counts.verify.fetch_add(1, Ordering::SeqCst);
    *counts.last_secret.lock() = headers
        .get("x-facilitator-secret")
        .map(|v| v.to_str().unwrap().to_string());
    if let Some(r) = misbehave(&b).await {
        return r;
    }
    match b {
        // Reference facilitators sometimes answer business failures with a 4xx and the body.
        Behaviour::Invalid => (StatusCode::BAD_REQUEST, Json(json!({"isValid":false,"invalidReason":"invalid_exact_svm_payload_amount_mismatch","payer":"Payer1"}))).into_response(),
        _ => Json(json!({"isValid":true,"payer":"Payer1"})).into_response(),
    }
}

async fn settle(State((b, counts)): S, Json(_): Json<Value>) -> Response {
    counts.settle.fetch_add(1, Ordering::SeqCst);
    if let Some(r) = misbehave(&b).await {
        return r;
    }
    Json(json!({"success":true,"transaction":"Sig1","network":"solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1","payer":"Payer1"})).into_response()
}

fn remote(name: &str, url: &str, timeout_ms: u64) -> Arc<dyn Facilitator> {
    let config = RemoteFacilitatorConfig {
        name: name.into(),
        url: url.parse().unwrap(),
        headers_from_env: [("x-facilitator-secret".to_string(), "FAC_SECRET".to_string())].into(),
        connect_timeout_ms: 200,
        timeout_ms,
    };
    let env: HashMap<String, String> = [("FAC_SECRET".to_string(), "s3cret".to_string())].into();
    Arc::new(RemoteFacilitator::new(&config, &env).unwrap())
}

fn dead_url() -> String {
    format!("http://{}/", loopback::closed_port())
}

fn fast_policy() -> FailoverPolicy {
    FailoverPolicy {
        attempts: 3,
        base_ms: 10,
        cap_ms: 40,
        factor: 2,
        budget_ms: 5_000,
    }
}

fn request() -> FacilitatorRequest {
    let required = json!({
        "scheme": "exact", "network": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", "amount": "1000",
        "asset": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
        "payTo": "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin", "maxTimeoutSeconds": 60
    });
    serde_json::from_value(json!({
        "x402Version": 2,
        "paymentPayload": {"x402Version": 2, "accepted": required, "payload": {"transaction": "AA=="}},
        "paymentRequirements": required,
    }))
    .unwrap()
}

#[tokio::test]
async fn a_down_is_served_through_b_with_auth_headers() {
    let b = start(Behaviour::Valid).await;
    let f = FailoverFacilitator::new(
        vec![remote("a", &dead_url(), 2_000), remote("b", &b.url, 2_000)],
        fast_policy(),
    );
    let verdict = f.verify(&request()).await.unwrap();
    assert!(verdict.is_valid);
    assert_eq!(b.counts.last_secret.lock().as_deref(), Some("s3cret"));
    // Nothing reached A (connection refused), so settling through B is safe.
    let settled = f.settle(&request()).await.unwrap();
    assert!(settled.success);
    assert_eq!(b.counts.settle.load(Ordering::SeqCst), 1);
    let supported = f.supported().await.unwrap();
    assert_eq!(
        supported.fee_payer("exact", "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"),
        Some("FeePayer111")
    );
}

#[tokio::test]
async fn a_5xx_fails_over_but_a_definitive_invalid_does_not() {
    let a = start(Behaviour::Status(500)).await;
    let b = start(Behaviour::Valid).await;
    let f = FailoverFacilitator::new(
        vec![remote("a", &a.url, 2_000), remote("b", &b.url, 2_000)],
        fast_policy(),
    );
    assert!(f.verify(&request()).await.unwrap().is_valid);
    assert_eq!(
        (
            a.counts.verify.load(Ordering::SeqCst),
            b.counts.verify.load(Ordering::SeqCst)
        ),
        (1, 1)
    );

    let a = start(Behaviour::Invalid).await;
    let b = start(Behaviour::Valid).await;
    let f = FailoverFacilitator::new(
        vec![remote("a", &a.url, 2_000), remote("b", &b.url, 2_000)],
        fast_policy(),
    );
    let verdict = f.verify(&request()).await.unwrap();
    assert!(!verdict.is_valid, "A's no stands");
    assert_eq!(
        verdict.invalid_reason.as_deref(),
        Some("invalid_exact_svm_payload_amount_mismatch")
    );
    assert_eq!(
        b.counts.verify.load(Ordering::SeqCst),
        0,
        "B must never be asked to overrule A"
    );
}

#[tokio::test]
async fn a_settle_that_may_have_broadcast_is_never_resent() {
    let a = start(Behaviour::Slow(Duration::from_secs(5))).await;
    let b = start(Behaviour::Valid).await;
    let f = FailoverFacilitator::new(
        vec![remote("a", &a.url, 300), remote("b", &b.url, 2_000)],
        fast_policy(),
    );
    let err = f.settle(&request()).await.unwrap_err();
    assert!(matches!(err, FacilitatorError::Timeout(_)), "{err:?}");
    assert_eq!(
        b.counts.settle.load(Ordering::SeqCst),
        0,
        "unknown outcome: no second settle"
    );
    // A 5xx on settle may also follow a broadcast: same rule.
    let a = start(Behaviour::Status(502)).await;
    let f = FailoverFacilitator::new(
        vec![remote("a", &a.url, 2_000), remote("b", &b.url, 2_000)],
        fast_policy(),
    );
    assert_eq!(
        f.settle(&request()).await.unwrap_err(),
        FacilitatorError::Status(502)
    );
    assert_eq!(b.counts.settle.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn rounds_back_off_and_end_with_the_last_error() {
    let a = start(Behaviour::Status(503)).await;
    let b = start(Behaviour::Status(500)).await;
    let f = FailoverFacilitator::new(
        vec![remote("a", &a.url, 2_000), remote("b", &b.url, 2_000)],
        fast_policy(),
    );
    let started = tokio::time::Instant::now();
    let err = f.verify(&request()).await.unwrap_err();
    assert_eq!(err, FacilitatorError::Status(500));
    assert_eq!(a.counts.verify.load(Ordering::SeqCst), 3, "three rounds");
    assert_eq!(b.counts.verify.load(Ordering::SeqCst), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(30),
        "waited 10 + 20 ms between rounds"
    );

    // The budget stops the rounds early.
    let policy = FailoverPolicy {
        attempts: 10,
        base_ms: 200,
        cap_ms: 200,
        factor: 1,
        budget_ms: 300,
    };
    let a = start(Behaviour::Status(503)).await;
    let f = FailoverFacilitator::new(vec![remote("a", &a.url, 2_000)], policy);
    f.verify(&request()).await.unwrap_err();
    assert_eq!(
        a.counts.verify.load(Ordering::SeqCst),
        2,
        "round 1, wait 200 ms, round 2, next wait would pass the budget"
    );
}

#[test]
fn a_missing_auth_variable_is_a_clear_error() {
    let config = RemoteFacilitatorConfig {
        name: "cdp".into(),
        url: "https://facilitator.invalid/".parse().unwrap(),
        headers_from_env: [("authorization".to_string(), "CDP_AUTH".to_string())].into(),
        connect_timeout_ms: 100,
        timeout_ms: 100,
    };
    let err = RemoteFacilitator::new(&config, &HashMap::new()).unwrap_err();
    assert!(err.contains("CDP_AUTH"), "{err}");
}

// --- The facilitator proxy (`/facilitator/*`) in front of loopback facilitators. ---

/// A gateway whose facilitator proxy fronts `targets` (name, url, timeout ms), with `extra`
/// appended to `[facilitator_proxy]`.
async fn proxy_gateway(targets: &[(&str, &str, u64)], extra: &str) -> crate::common::TestApp {
    let mut toml = String::from("[payment]\nenabled = false\n");
    for (name, url, timeout) in targets {
        toml.push_str(&format!(
            "[[payment.remote_facilitators]]\nname = \"{name}\"\nurl = \"{url}\"\n\
             connect_timeout_ms = 200\ntimeout_ms = {timeout}\n"
        ));
    }
    toml.push_str(&format!(
        "[facilitator_proxy]\nenabled = true\naccess = \"open\"\n{extra}\n\
         [facilitator_proxy.retry]\nattempts = 2\nbase_ms = 10\ncap_ms = 40\nfactor = 2\nbudget_ms = 5000\n"
    ));
    crate::common::TestApp::with_env(&toml, HashMap::new()).await
}

fn proxy_body() -> String {
    serde_json::to_string(&request()).unwrap()
}

fn header(head: &axum::http::Response<()>, name: &str) -> String {
    head.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_proxy_skips_a_dead_target_and_stamps_every_answer() {
    let b = start(Behaviour::Valid).await;
    let gw = proxy_gateway(&[("dead", &dead_url(), 2_000), ("b", &b.url, 2_000)], "").await;
    let (status, body, head) = gw.post_json("/facilitator/verify", proxy_body()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["isValid"], true);
    assert_eq!(header(&head, "x-proxy-target"), "b");
    assert_eq!(
        header(&head, "x-proxy-attempt"),
        "1",
        "the dead one was never tried"
    );
    assert!(header(&head, "x-proxy-timestamp").parse::<u64>().unwrap() > 1_600_000_000_000);
    let (status, body, head) = gw.get("/facilitator/supported").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["kinds"][0]["scheme"], "exact");
    assert_eq!(header(&head, "x-proxy-target"), "b");
    let (status, health, head) = gw.get("/facilitator/health").await;
    assert_eq!(
        (status, health["healthy"].as_u64()),
        (200, Some(1)),
        "{health}"
    );
    assert!(!header(&head, "x-proxy-timestamp").is_empty());
    let (status, detail, _) = gw.get("/facilitator/status").await;
    assert_eq!(status, 200);
    let dead = &detail["targets"][0];
    assert_eq!(
        (dead["name"].as_str(), dead["healthy"].as_bool()),
        (Some("dead"), Some(false))
    );
    assert!(dead["last_error"].is_string(), "{detail}");
    assert!(
        !detail.to_string().contains("127.0.0.1"),
        "no URL: {detail}"
    );
}

#[tokio::test]
async fn the_proxy_moves_a_failed_verify_to_the_next_target() {
    let a = start(Behaviour::Status(503)).await;
    let b = start(Behaviour::Valid).await;
    // `a` is drawn first 1000 times in 1001; health is rechecked on every call.
    let gw = proxy_gateway(
        &[("a", &a.url, 2_000), ("b", &b.url, 2_000)],
        "health_cache_ms = 0\nweights = { a = 1000, b = 1 }",
    )
    .await;
    let mut hopped = false;
    for _ in 0..5 {
        let (status, body, head) = gw.post_json("/facilitator/verify", proxy_body()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(header(&head, "x-proxy-target"), "b");
        hopped |= header(&head, "x-proxy-attempt") == "2";
        if hopped {
            break;
        }
    }
    assert!(hopped, "a never went first");
    assert!(a.counts.verify.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn the_proxy_never_sends_a_second_settle_after_a_settle_timeout() {
    let a = start(Behaviour::Slow(Duration::from_secs(5))).await;
    let b = start(Behaviour::Valid).await;
    let gw = proxy_gateway(
        &[("a", &a.url, 300), ("b", &b.url, 2_000)],
        "health_cache_ms = 0\nweights = { a = 1000, b = 1 }",
    )
    .await;
    for _ in 0..5 {
        let before = b.counts.settle.load(Ordering::SeqCst);
        let (status, body, head) = gw.post_json("/facilitator/settle", proxy_body()).await;
        if header(&head, "x-proxy-target") != "a" {
            continue; // b was drawn first (1 in 1001): nothing to learn from this call
        }
        assert_eq!(status, 502, "{body}");
        assert_eq!(body["error"]["code"], "facilitator_failed");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not re-sent"),
            "{body}"
        );
        assert_eq!(header(&head, "x-proxy-attempt"), "1");
        assert_eq!(
            b.counts.settle.load(Ordering::SeqCst),
            before,
            "a settle that may have reached a target is never re-sent"
        );
        return;
    }
    panic!("a was never drawn first");
}

#[tokio::test]
async fn the_proxy_answers_503_without_a_healthy_target_and_502_when_every_attempt_fails() {
    let gw = proxy_gateway(
        &[("d1", &dead_url(), 2_000), ("d2", &dead_url(), 2_000)],
        "",
    )
    .await;
    let (status, body, head) = gw.post_json("/facilitator/verify", proxy_body()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "no_healthy_target");
    assert_eq!(header(&head, "x-proxy-attempt"), "0");
    assert_eq!(gw.get("/facilitator/health").await.0, 503);

    let a = start(Behaviour::Status(500)).await;
    let b = start(Behaviour::Status(500)).await;
    let gw = proxy_gateway(&[("a", &a.url, 2_000), ("b", &b.url, 2_000)], "").await;
    let (status, body, head) = gw.post_json("/facilitator/verify", proxy_body()).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "facilitator_failed");
    // Two rounds over both targets, with backoff between them.
    assert_eq!(header(&head, "x-proxy-attempt"), "4");
    assert_eq!(a.counts.verify.load(Ordering::SeqCst), 2);
    assert_eq!(b.counts.verify.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_proxy_is_off_by_default_and_token_protected_when_on() {
    let b = start(Behaviour::Valid).await;
    let off =
        crate::common::TestApp::with_env("[payment]\nenabled = false\n", HashMap::new()).await;
    assert_eq!(off.get("/facilitator/health").await.0, 404);

    let toml = format!(
        "[payment]\nenabled = false\n[[payment.remote_facilitators]]\nname = \"b\"\nurl = \"{}\"\n\
         [facilitator_proxy]\nenabled = true\n",
        b.url
    );
    let refused = x402_gateway::config::Config::from_toml(&toml, &HashMap::<String, String>::new())
        .unwrap_err()
        .to_string();
    assert!(refused.contains("FACILITATOR_PROXY_TOKEN"), "{refused}");
    let env: HashMap<String, String> =
        [("FACILITATOR_PROXY_TOKEN".to_string(), "pr0xy".to_string())].into();
    let gw = crate::common::TestApp::with_env(&toml, env).await;
    let (status, _, _) = gw.get("/facilitator/health").await;
    assert_eq!(status, 401);
    let request = axum::http::Request::get("/facilitator/health")
        .header("authorization", "Bearer pr0xy")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(gw.send(request).await.status(), 200);
}
