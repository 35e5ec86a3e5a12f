//! Added latency of a paid call over a free call, excluding the facilitator and the chain.
//!
//! Two routers built from the same config drive the same method route against the same instant
//! loopback upstream: one with payments off, one with the paygate on whose facilitator (defined
//! here, not in `src/`) answers `/supported`, `verify` and `settle` at once. Every paid call
//! carries a fresh, really signed payment (distinct memo, so a distinct message hash) and must
//! come back 200 with `PAYMENT-RESPONSE`, so the whole paid path runs: decode the header, match
//! `accepted`, strict local SVM checks with the ed25519 signature, verify, claim, upstream,
//! settle, receipt. Calls run one at a time (unsaturated) on one thread, free and paid
//! interleaved, through the full middleware stack (`build_router`), in process. An unpaid call
//! to the paid router (its 402 challenge, no upstream call) is timed in its own loop, then the
//! challenge's construction alone (the public `paygate::challenge` builders + both
//! serializations, as the paygate runs them per unpaid request).
//!
//! A third router, the paid one with `[credits]` on, serves the same route to a wallet that
//! bought a pack once (through the top-up route, paid like any call) and signed in (a real SIWX
//! proof): each credit-paid call carries `Authorization: Bearer <token>`, must come back 200
//! with `X-Credits-Remaining` one call's credit price lower, and so runs the whole credit path
//! (token HMAC check, revocation lookup in the store, reserve in the ledger, upstream, spend).
//! It is interleaved with the free and exact-paid calls; "added by credits" is its p50 over
//! the free call's.
//!
//! Every paid call is recorded in the ledger as in production: a SQLite file in a temporary
//! directory, or the database at `LEDGER_URL` (e.g. `postgres://postgres@127.0.0.1/test`).
//!
//! Run: `[LEDGER_URL=…] cargo bench --no-default-features --bench paid_latency [-- samples]`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::Request;
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Map};
use solana_keypair::Keypair;
use solana_signer::Signer;
use tower::ServiceExt;
use x402_gateway::config::{Config, PackConfig, Surface};
use x402_gateway::facilitator::{Facilitator, FacilitatorError};
use x402_gateway::paygate::challenge::{bazaar_extension, payment_required, requirements};
use x402_gateway::paygate::Paygate;
use x402_gateway::priced::Discovery;
use x402_gateway::siwx::{siws_message, SiwxProof};
use x402_gateway::svm::constants::SPL_TOKEN_PROGRAM;
use x402_gateway::svm::testkit::PaymentFixture;
use x402_gateway::x402::network::SOLANA_DEVNET;
use x402_gateway::x402::{
    decode_header, encode_header, FacilitatorRequest, PaymentRequired, SettleResponse,
    SupportedKind, SupportedResponse, VerifyResponse,
};
use x402_gateway::{build_router, App};

const MINT: &str = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";
const ROUTE: &str = "/v1/x402/solana/devnet/bench/rpc/getBalance";
const BODY: &str = r#"{"params":["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"]}"#;

/// Answers everything at once: valid, settled. Stands in for the facilitator and the chain.
#[derive(Debug)]
struct InstantFacilitator {
    fee_payer: String,
}

#[async_trait]
impl Facilitator for InstantFacilitator {
    fn name(&self) -> &str {
        "instant"
    }

    async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
        let mut extra = Map::new();
        extra.insert("feePayer".into(), json!(self.fee_payer));
        Ok(SupportedResponse {
            kinds: vec![SupportedKind {
                x402_version: 2,
                scheme: "exact".into(),
                network: SOLANA_DEVNET.into(),
                extra: Some(extra),
            }],
            ..Default::default()
        })
    }

    async fn verify(
        &self,
        _request: &FacilitatorRequest,
    ) -> Result<VerifyResponse, FacilitatorError> {
        Ok(VerifyResponse {
            is_valid: true,
            invalid_reason: None,
            invalid_message: None,
            payer: None,
        })
    }

    async fn settle(
        &self,
        _request: &FacilitatorRequest,
    ) -> Result<SettleResponse, FacilitatorError> {
        Ok(SettleResponse {
            success: true,
            error_reason: None,
            error_message: None,
            transaction: "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW".into(),
            network: SOLANA_DEVNET.into(),
            payer: None,
        })
    }
}

/// An upstream that answers every POST at once with a fixed `getBalance` result.
async fn instant_upstream() -> String {
    let app = Router::new().fallback(axum::routing::post(|| async {
        (
            [("content-type", "application/json")],
            r#"{"jsonrpc":"2.0","id":1,"result":{"context":{"apiVersion":"2.2.0","slot":341197053},"value":1000000000}}"#,
        )
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    url
}

fn config(upstream: &str, pay_to: &str) -> Config {
    let toml = format!(
        r#"
[log]
filter = "warn"

# One payer and one provider far past any sane limit; the limiter's own cost is measured by
# `cargo bench --bench limits`.
[rate_limits]
enabled = false

[payment]
enabled = false
pay_to = "{pay_to}"
[[payment.accepts]]
network = "{SOLANA_DEVNET}"
asset = "{MINT}"

[[providers]]
name = "bench"
key_placement = "none"
atomic_per_million_units = 1000000
[providers.clusters]
devnet = "{upstream}"
[providers.rpc]
getBalance = 1
"#
    );
    Config::from_toml(&toml, &HashMap::<String, String>::new()).expect("bench config")
}

fn request(payment: Option<&str>) -> Request<Body> {
    let mut builder = Request::post(ROUTE).header("content-type", "application/json");
    if let Some(p) = payment {
        builder = builder.header("payment-signature", p);
    }
    builder.body(Body::from(BODY)).unwrap()
}

/// One credit-paid call; returns its latency after checking the 200 and the balance it left.
async fn call_with_credits(router: &Router, bearer: &str, remaining: i64) -> Duration {
    let start = Instant::now();
    let request = Request::post(ROUTE)
        .header("content-type", "application/json")
        .header("authorization", bearer)
        .body(Body::from(BODY))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let elapsed = start.elapsed();
    assert_eq!(parts.status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(
        parts.headers["x-credits-remaining"].to_str().unwrap(),
        remaining.to_string()
    );
    elapsed
}

/// A router request with `headers` and `body`; its status, headers and JSON body.
async fn send(
    router: &Router,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, axum::http::HeaderMap, serde_json::Value) {
    let mut builder = Request::post(path).header("content-type", "application/json");
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let response = router
        .clone()
        .oneshot(builder.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (parts.status.as_u16(), parts.headers, json)
}

/// One call; returns its latency after checking the answer has `status` (and a receipt when
/// paid).
async fn call(router: &Router, payment: Option<&str>, status: u16) -> Duration {
    let start = Instant::now();
    let response = router.clone().oneshot(request(payment)).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let elapsed = start.elapsed();
    assert_eq!(parts.status, status, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(
        payment.is_some(),
        parts.headers.contains_key("payment-response")
    );
    elapsed
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn main() {
    let samples: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(samples));
}

async fn run(samples: usize) {
    let fee_payer = Keypair::new();
    let client = Keypair::new();
    let pay_to = Keypair::new().pubkey();
    let upstream = instant_upstream().await;
    let mut cfg = config(&upstream, &pay_to.to_string());
    // The ledger: `LEDGER_URL` (e.g. PostgreSQL) or a SQLite file in a fresh directory.
    let ledger_dir = tempfile::tempdir().unwrap();
    cfg.ledger.data_dir = ledger_dir.path().to_path_buf();
    cfg.ledger.file_url = std::env::var("LEDGER_URL").ok();
    println!("ledger: {}", cfg.ledger.describe());
    // The credits app shares the ledger (its own wallet, so its rows do not mix with the others).
    let cfg_credits = cfg.clone();

    let free = build_router(App::build(cfg.clone()).await.expect("free app"));
    let mut payment = cfg.payment.clone();
    payment.enabled = true;
    let facilitator: Arc<dyn Facilitator> = Arc::new(InstantFacilitator {
        fee_payer: fee_payer.pubkey().to_string(),
    });
    let mut app = Arc::try_unwrap(App::build(cfg).await.expect("paid app")).expect("sole owner");
    let gate = Paygate::build(
        &payment,
        facilitator,
        app.store.clone(),
        app.ledger.clone(),
        None,
        app.limits.clone(),
    )
    .await
    .expect("paygate");
    app.paygate = Some(gate);
    let paid = build_router(Arc::new(app));

    // The same paid app with credits on: one pack bought, one session.
    let mut credit_cfg = cfg_credits;
    credit_cfg.credits.enabled = true;
    credit_cfg.credits.packs = vec![PackConfig {
        name: "bench".into(),
        price: 100_000,
        credits: 1_000_000_000,
    }];
    let mut app =
        Arc::try_unwrap(App::build(credit_cfg).await.expect("credits app")).expect("sole owner");
    let gate = Paygate::build(
        &payment,
        Arc::new(InstantFacilitator {
            fee_payer: fee_payer.pubkey().to_string(),
        }),
        app.store.clone(),
        app.ledger.clone(),
        app.credits.clone(),
        app.limits.clone(),
    )
    .await
    .expect("paygate");
    app.paygate = Some(gate);
    let credits = build_router(Arc::new(app));
    let (bearer, mut balance) = buy_and_sign_in(&credits, &fee_payer, &client, pay_to).await;
    let (_, _, probe) = send(&credits, ROUTE, &[("authorization", &bearer)], BODY).await;
    assert!(probe["result"].is_object(), "{probe}");
    let credit_price = balance - current_balance(&credits, &bearer).await;
    balance -= credit_price;
    println!("credit price of the call: {credit_price} credits");

    // The offer, as a client reads it from the challenge.
    let challenge = paid.clone().oneshot(request(None)).await.unwrap();
    assert_eq!(challenge.status(), 402);
    let required: PaymentRequired = decode_header(
        challenge.headers()["payment-required"].as_bytes(),
        16 * 1024,
    )
    .unwrap();
    let accepted = serde_json::to_value(&required.accepts[0]).unwrap();
    let amount: u64 = required.accepts[0].amount.parse().unwrap();

    // Distinct, really signed payments (one per paid call), built before timing starts.
    let warmup = 500;
    let headers: Vec<String> = (0..samples + warmup)
        .map(|i| {
            let fixture = PaymentFixture {
                fee_payer: fee_payer.insecure_clone(),
                spare_signer: Keypair::new(),
                client: client.insecure_clone(),
                pay_to,
                mint: MINT.parse().unwrap(),
                token_program: SPL_TOKEN_PROGRAM,
                decimals: 6,
                amount,
                memo: Some(format!("{i:032x}")),
                blockhash: solana_hash::Hash::new_from_array([0x5a; 32]),
            };
            encode_header(&json!({
                "x402Version": 2,
                "resource": required.resource,
                "accepted": accepted,
                "payload": {"transaction": fixture.honest_base64()},
            }))
        })
        .collect();

    let (mut free_t, mut paid_t, mut challenge_t) = (Vec::new(), Vec::new(), Vec::new());
    let mut credit_t = Vec::new();
    for (i, header) in headers.iter().enumerate() {
        let f = call(&free, None, 200).await;
        let p = call(&paid, Some(header), 200).await;
        balance -= credit_price;
        let c = call_with_credits(&credits, &bearer, balance).await;
        if i >= warmup {
            free_t.push(f);
            paid_t.push(p);
            credit_t.push(c);
        }
    }
    // The 402 an unpaid call gets from the paid router (no upstream call), in a loop of its own:
    // interleaved after a proxied call it would also absorb that call's leftover connection work
    // (the runtime has one thread).
    for i in 0..samples + warmup {
        let c = call(&paid, None, 402).await;
        if i >= warmup {
            challenge_t.push(c);
        }
    }
    free_t.sort();
    paid_t.sort();
    credit_t.sort();
    challenge_t.sort();
    let header_len = headers[0].len();
    println!(
        "samples {samples} each (after {warmup} warm-up), one at a time, one thread, in process; \
         PAYMENT-SIGNATURE {header_len} bytes"
    );
    println!(
        "{:<6} {:>10} {:>10} {:>10}",
        "", "p50 (us)", "p99 (us)", "mean (us)"
    );
    let mean =
        |v: &[Duration]| v.iter().map(Duration::as_secs_f64).sum::<f64>() / v.len() as f64 * 1e6;
    for (name, v) in [
        ("free", &free_t),
        ("paid", &paid_t),
        ("credit", &credit_t),
        ("402", &challenge_t),
    ] {
        println!(
            "{name:<6} {:>10.1} {:>10.1} {:>10.1}",
            percentile(v, 0.50),
            percentile(v, 0.99),
            mean(v)
        );
    }
    println!(
        "added by payment: p50 {:.1} us, p99 {:.1} us",
        percentile(&paid_t, 0.50) - percentile(&free_t, 0.50),
        percentile(&paid_t, 0.99) - percentile(&free_t, 0.99)
    );
    println!(
        "added by credits: p50 {:.1} us, p99 {:.1} us",
        percentile(&credit_t, 0.50) - percentile(&free_t, 0.50),
        percentile(&credit_t, 0.99) - percentile(&free_t, 0.99)
    );
    // Where a 402's time goes: the challenge built and serialized from scratch (Bazaar extension,
    // requirements, JSON body, base64 header), as the paygate does per unpaid request, vs only
    // serializing an already built one.
    let accept = &payment.accepts[0];
    let (pay_to_s, fee_payer_s) = (pay_to.to_string(), fee_payer.pubkey().to_string());
    let build = || {
        let r = requirements(accept, amount, &pay_to_s, &fee_payer_s, 60);
        let mut extensions = Map::new();
        let route = Discovery::Method {
            surface: Surface::Rpc,
            method: "getBalance".into(),
        };
        extensions.insert("bazaar".into(), bazaar_extension(&route));
        payment_required(
            required.resource.clone(),
            vec![r],
            Some("Payment required".into()),
            extensions,
        )
    };
    let n = 20_000u32;
    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    };
    let full = time(&|| {
        let challenge = build();
        std::hint::black_box((
            serde_json::to_vec(&challenge).unwrap(),
            encode_header(&challenge),
        ));
    });
    let built = build();
    let serialize_only = time(&|| {
        std::hint::black_box((serde_json::to_vec(&built).unwrap(), encode_header(&built)));
    });
    println!(
        "challenge construction alone: build + serialize {full:.1} us, serialize only {serialize_only:.1} us"
    );
    // The floor of any request: GET /healthz through the same stack.
    let mut floor = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        let request = Request::get("/healthz").body(Body::empty()).unwrap();
        let response = paid.clone().oneshot(request).await.unwrap();
        let _ = response.into_body().collect().await.unwrap();
        floor.push(start.elapsed());
    }
    floor.sort();
    println!(
        "GET /healthz through the same stack: p50 {:.1} us, p99 {:.1} us",
        percentile(&floor, 0.50),
        percentile(&floor, 0.99)
    );
}

/// Buys the bench pack for `client` through the top-up route (a signed payment, settled by the
/// instant facilitator, credited in the ledger) and signs in with a SIWX proof: the
/// `Authorization` value of the session and the balance.
async fn buy_and_sign_in(
    router: &Router,
    fee_payer: &Keypair,
    client: &Keypair,
    pay_to: solana_address::Address,
) -> (String, i64) {
    const TOPUP: &str = "/v1/credits/topup";
    const SESSION: &str = "/v1/credits/session";
    let pack = r#"{"pack":"bench"}"#;
    let (status, headers, _) = send(router, TOPUP, &[], pack).await;
    assert_eq!(status, 402);
    let required: PaymentRequired =
        decode_header(headers["payment-required"].as_bytes(), 16 * 1024).unwrap();
    let accepted = serde_json::to_value(&required.accepts[0]).unwrap();
    let fixture = PaymentFixture {
        fee_payer: fee_payer.insecure_clone(),
        spare_signer: Keypair::new(),
        client: client.insecure_clone(),
        pay_to,
        mint: MINT.parse().unwrap(),
        token_program: SPL_TOKEN_PROGRAM,
        decimals: 6,
        amount: required.accepts[0].amount.parse().unwrap(),
        memo: Some("70".repeat(16)),
        blockhash: solana_hash::Hash::new_from_array([0x5a; 32]),
    };
    let header = encode_header(&json!({
        "x402Version": 2,
        "resource": required.resource,
        "accepted": accepted,
        "payload": {"transaction": fixture.honest_base64()},
    }));
    let (status, _, bought) = send(router, TOPUP, &[("payment-signature", &header)], pack).await;
    assert_eq!(status, 200, "{bought}");

    let (status, headers, _) = send(router, SESSION, &[], "").await;
    assert_eq!(status, 402);
    let required: serde_json::Value =
        decode_header(headers["payment-required"].as_bytes(), 64 * 1024).unwrap();
    let ext = &required["extensions"]["sign-in-with-x"];
    let info = &ext["info"];
    let s = |k: &str| info[k].as_str().unwrap().to_string();
    let mut proof = SiwxProof {
        domain: s("domain"),
        address: client.pubkey().to_string(),
        uri: s("uri"),
        version: s("version"),
        chain_id: ext["supportedChains"][0]["chainId"]
            .as_str()
            .unwrap()
            .to_string(),
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
    };
    proof.signature = client
        .sign_message(siws_message(&proof).as_bytes())
        .to_string();
    let (status, _, session) = send(
        router,
        SESSION,
        &[("sign-in-with-x", &proof.to_header())],
        "",
    )
    .await;
    assert_eq!(status, 200, "{session}");
    let balance = session["balance"].as_i64().unwrap();
    assert_eq!(balance, bought["balance"].as_i64().unwrap());
    (
        format!("Bearer {}", session["token"].as_str().unwrap()),
        balance,
    )
}

/// The session's balance (`GET /v1/credits/balance`).
async fn current_balance(router: &Router, bearer: &str) -> i64 {
    let request = Request::get("/v1/credits/balance")
        .header("authorization", bearer)
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    body["balance"].as_i64().unwrap()
}
