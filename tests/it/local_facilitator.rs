//! The in-process `exact` SVM facilitator against the embedded local cluster: real signed
//! payments, real SPL Token execution, balances that move (or do not).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use solana_keypair::Keypair;
use solana_signature::Signature;
use solana_signer::Signer;
use tower::ServiceExt;
use x402_gateway::config::Secret;
use x402_gateway::facilitator::http::{facilitator_routes, SECRET_HEADER};
use x402_gateway::facilitator::keys::FeePayerKeys;
use x402_gateway::facilitator::local::LocalFacilitator;
use x402_gateway::facilitator::{Facilitator, FacilitatorError, SETTLEMENT_PENDING};
use x402_gateway::x402::network::SOLANA_DEVNET;
use x402_gateway::x402::{SettleResponse, VerifyResponse};

use crate::common::facilitator::*;
use crate::common::loopback::closed_port;

fn assert_invalid(v: &VerifyResponse, reason: &str) {
    assert!(!v.is_valid, "expected {reason}, got a valid payment");
    assert_eq!(v.invalid_reason.as_deref(), Some(reason), "{v:?}");
    assert!(
        v.invalid_message.as_deref().is_some_and(|m| !m.is_empty()),
        "{v:?}"
    );
}

fn assert_failed(s: &SettleResponse, reason: &str) {
    assert!(!s.success, "expected {reason}, got success: {s:?}");
    assert_eq!(s.error_reason.as_deref(), Some(reason), "{s:?}");
}

#[tokio::test]
async fn verify_accepts_an_honest_payment_and_moves_nothing() {
    let env = Env::start().await;
    let fx = env.fixture(AMOUNT, 1);
    let before = env.cluster.token_balance(&env.client().pubkey());
    let v = env.facilitator.verify(&env.request(&fx)).await.unwrap();
    assert!(v.is_valid, "{v:?}");
    assert_eq!(v.payer, Some(env.client().pubkey().to_string()));
    assert_eq!(v.invalid_reason, None);
    assert_eq!(env.cluster.token_balance(&env.client().pubkey()), before);
    assert_eq!(env.cluster.send_transaction_count(), 0);
}

#[tokio::test]
async fn verify_refusals_carry_the_reason() {
    let env = Env::start().await;
    let fp = env.fee_payer().pubkey();

    // Underfunded: the wallet holds 100 USDC; simulation fails on the transfer.
    let big = env.fixture(500_000_000, 2);
    let v = env.facilitator.verify(&env.request(&big)).await.unwrap();
    assert_invalid(&v, "insufficient_funds");
    assert_eq!(v.payer, Some(env.client().pubkey().to_string()));

    // Wrong recipient: the transaction pays someone else than the requirements' payTo.
    let mut elsewhere = env.fixture(AMOUNT, 3);
    elsewhere.pay_to = Keypair::new().pubkey();
    let req = env.requirements(AMOUNT, &fp);
    let body = body_v2(&req, &req, &elsewhere.honest_base64());
    let v = env.facilitator.verify(&request_of(&body)).await.unwrap();
    assert_invalid(&v, "invalid_exact_svm_payload_recipient_mismatch");

    // Fee payer not ours, in both the requirements and the transaction.
    let mut foreign = env.fixture(AMOUNT, 4);
    foreign.fee_payer = Keypair::new();
    let v = env
        .facilitator
        .verify(&env.request(&foreign))
        .await
        .unwrap();
    assert_invalid(&v, "invalid_exact_svm_fee_payer_not_managed_by_facilitator");

    // `accepted` differs from the server's requirements.
    let fx = env.fixture(AMOUNT, 5);
    let mut accepted = env.requirements(AMOUNT, &fp);
    accepted["amount"] = json!("999");
    let body = body_v2(
        &accepted,
        &env.requirements(AMOUNT, &fp),
        &fx.honest_base64(),
    );
    let v = env.facilitator.verify(&request_of(&body)).await.unwrap();
    assert_invalid(&v, "invalid_payment_requirements");

    // A mint that is not allowed, refused before any RPC call.
    let mut other = env.requirements(AMOUNT, &fp);
    other["asset"] = json!(Keypair::new().pubkey().to_string());
    let body = body_v2(&other, &other, &fx.honest_base64());
    let v = env.facilitator.verify(&request_of(&body)).await.unwrap();
    assert_invalid(&v, "invalid_exact_svm_payload_mint_not_allowed");

    // Another network.
    let mut mainnet = env.requirements(AMOUNT, &fp);
    mainnet["network"] = json!("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp");
    let body = body_v2(&mainnet, &mainnet, &fx.honest_base64());
    let v = env.facilitator.verify(&request_of(&body)).await.unwrap();
    assert_invalid(&v, "invalid_network");

    // Not a transaction.
    let req = env.requirements(AMOUNT, &fp);
    let body = body_v2(&req, &req, "bm90IGEgdHJhbnNhY3Rpb24=");
    let v = env.facilitator.verify(&request_of(&body)).await.unwrap();
    assert_invalid(
        &v,
        "invalid_exact_svm_payload_transaction_could_not_be_decoded",
    );

    // A payload of the wrong shape is a business refusal, not an error: typing the request
    // refuses it with its reason (the HTTP endpoint answers that as `isValid: false`).
    let mut body = env.body(&fx);
    body["paymentPayload"] = json!({"x402Version": 2});
    let wire = serde_json::from_value(body).unwrap();
    let refused = x402_gateway::x402::FacilitatorRequest::from_wire(wire).unwrap_err();
    assert_eq!(refused.reason, "invalid_payload");
    assert_eq!(env.cluster.send_transaction_count(), 0);
}

#[tokio::test]
async fn verify_refuses_an_expired_blockhash() {
    let env = Env::start().await;
    let fx = env.fixture(AMOUNT, 6);
    env.cluster.advance_slots(151);
    let v = env.facilitator.verify(&env.request(&fx)).await.unwrap();
    assert_invalid(&v, "invalid_exact_svm_payload_blockhash_expired");
}

#[tokio::test]
async fn verify_refuses_a_blockhash_with_too_little_life_left() {
    let env = Env::start().await;
    let fx = env.fixture(AMOUNT, 7);
    // First verify: the facilitator fetches the latest blockhash and learns its height.
    let v = env.facilitator.verify(&env.request(&fx)).await.unwrap();
    assert!(v.is_valid, "{v:?}");
    // 140 of its 150 blocks gone: still valid on chain, but < 15 s (38 blocks) left.
    env.cluster.advance_slots(140);
    let v = env.facilitator.verify(&env.request(&fx)).await.unwrap();
    assert_invalid(&v, "invalid_exact_svm_payload_blockhash_expired");
    assert!(
        v.invalid_message.unwrap().contains("need 38 blocks"),
        "the message states the rule"
    );
}

#[tokio::test]
async fn settle_confirms_and_moves_exact_balances() {
    let env = Env::start().await;
    let c = &env.cluster;
    let (client, fp) = (env.client().pubkey(), env.fee_payer().pubkey());
    let fx = env.fixture(AMOUNT, 8);
    let (client_tokens, merchant_tokens) = (c.token_balance(&client), c.token_balance(&c.pay_to()));
    let (fp_sol, client_sol) = (c.sol_balance(&fp), c.sol_balance(&client));

    let s = guard(env.facilitator.settle(&env.request(&fx)))
        .await
        .unwrap();
    assert!(s.success, "{s:?}");
    assert_eq!(s.error_reason, None);
    assert_eq!(s.network, SOLANA_DEVNET);
    assert_eq!(s.payer, Some(client.to_string()));
    let sig: Signature = s.transaction.parse().expect("base58 signature");

    let status = env.rpc.get_signature_statuses(&[sig]).await.unwrap()[0]
        .clone()
        .expect("the cluster knows the transaction");
    assert!(status.is_confirmed() && status.err.is_none(), "{status:?}");

    assert_eq!(c.token_balance(&client), client_tokens - AMOUNT);
    assert_eq!(c.token_balance(&c.pay_to()), merchant_tokens + AMOUNT);
    // The sponsor pays 2 signatures plus ceil(20 000 CU × 1 µlamport) priority; the client no SOL.
    assert_eq!(c.sol_balance(&fp), fp_sol - 10_000 - 1);
    assert_eq!(c.sol_balance(&client), client_sol);
    assert_eq!(c.send_transaction_count(), 1);

    // Settling it again is a duplicate: no broadcast, the first signature is returned.
    let again = guard(env.facilitator.settle(&env.request(&fx)))
        .await
        .unwrap();
    assert_failed(&again, "duplicate_settlement");
    assert_eq!(again.transaction, s.transaction);
    assert_eq!(c.send_transaction_count(), 1);
    assert_eq!(c.token_balance(&client), client_tokens - AMOUNT);
}

#[tokio::test]
async fn settle_with_an_expired_blockhash_is_a_definite_failure() {
    let env = Env::start().await;
    let c = &env.cluster;
    let client = env.client().pubkey();
    let fx = env.fixture(AMOUNT, 9);
    c.advance_slots(151);
    let (tokens, fp_sol) = (
        c.token_balance(&client),
        c.sol_balance(&env.fee_payer().pubkey()),
    );

    let s = guard(env.facilitator.settle(&env.request(&fx)))
        .await
        .unwrap();
    assert_failed(&s, "invalid_exact_svm_payload_blockhash_expired");
    assert_ne!(s.error_reason.as_deref(), Some(SETTLEMENT_PENDING));
    assert_eq!(s.transaction, "", "nothing was broadcast");
    assert_eq!(c.token_balance(&client), tokens);
    assert_eq!(c.token_balance(&c.pay_to()), 0);
    assert_eq!(c.sol_balance(&env.fee_payer().pubkey()), fp_sol);

    // The claim was released: a retry is judged again, not refused as a duplicate.
    let again = guard(env.facilitator.settle(&env.request(&fx)))
        .await
        .unwrap();
    assert_failed(&again, "invalid_exact_svm_payload_blockhash_expired");
}

#[tokio::test]
async fn settle_of_an_underfunded_payment_is_refused_by_preflight() {
    let env = Env::start().await;
    let fx = env.fixture(500_000_000, 10);
    let s = guard(env.facilitator.settle(&env.request(&fx)))
        .await
        .unwrap();
    assert_failed(&s, "insufficient_funds");
    assert_eq!(s.transaction, "");
    assert_eq!(env.cluster.token_balance(&env.cluster.pay_to()), 0);
}

#[tokio::test]
async fn concurrent_settles_of_one_payment_broadcast_exactly_once() {
    let env = Env::start().await;
    let c = &env.cluster;
    let client = env.client().pubkey();
    let fx = env.fixture(AMOUNT, 11);
    let req = env.request(&fx);
    let tokens = c.token_balance(&client);

    let results = guard(futures::future::join_all(
        (0..10).map(|_| env.facilitator.settle(&req)),
    ))
    .await;
    let results: Vec<SettleResponse> = results.into_iter().map(Result::unwrap).collect();
    let winners: Vec<&SettleResponse> = results.iter().filter(|r| r.success).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for r in results.iter().filter(|r| !r.success) {
        assert_failed(r, "duplicate_settlement");
    }
    assert_eq!(c.send_transaction_count(), 1, "exactly one sendTransaction");
    assert_eq!(c.token_balance(&client), tokens - AMOUNT);
    assert_eq!(c.token_balance(&c.pay_to()), AMOUNT);
}

#[tokio::test]
async fn rpc_down_fails_clearly_and_quickly() {
    let env = Env::start().await;
    let fx = env.fixture(AMOUNT, 12);
    let url = format!("http://{}", closed_port());
    let cfg = test_config(&url, &env.cluster.mint());
    let keys = FeePayerKeys::new(vec![env.fee_payer().insecure_clone()]).unwrap();
    let down = LocalFacilitator::new(&cfg, keys).unwrap();

    let err = guard(down.verify(&env.request(&fx))).await.unwrap_err();
    assert!(matches!(err, FacilitatorError::Unavailable(_)), "{err:?}");

    let s = guard(down.settle(&env.request(&fx))).await.unwrap();
    assert_failed(&s, "unexpected_settle_error");
    assert_eq!(s.transaction, "", "nothing was sent");
    assert!(s.error_message.unwrap().contains("nothing was sent"));

    // Static refusals still answer without RPC.
    let mut foreign = env.fixture(AMOUNT, 13);
    foreign.fee_payer = Keypair::new();
    let v = guard(down.verify(&env.request(&foreign))).await.unwrap();
    assert_invalid(&v, "invalid_exact_svm_fee_payer_not_managed_by_facilitator");
}

#[tokio::test]
async fn v1_payments_verify_and_settle() {
    let env = Env::start().await;
    let fx = env.fixture(AMOUNT, 14);
    let body = json!({
        "x402Version": 1,
        "paymentPayload": {
            "x402Version": 1,
            "scheme": "exact",
            "network": "solana-devnet",
            "payload": {"transaction": fx.honest_base64()}
        },
        "paymentRequirements": {
            "scheme": "exact",
            "network": "solana-devnet",
            "maxAmountRequired": AMOUNT.to_string(),
            "resource": "http://127.0.0.1/rpc",
            "description": "",
            "mimeType": "application/json",
            "payTo": env.cluster.pay_to().to_string(),
            "maxTimeoutSeconds": 60,
            "asset": env.cluster.mint().to_string(),
            "extra": {"feePayer": env.fee_payer().pubkey().to_string()}
        }
    });
    let v = env.facilitator.verify(&request_of(&body)).await.unwrap();
    assert!(v.is_valid, "{v:?}");
    let s = guard(env.facilitator.settle(&request_of(&body)))
        .await
        .unwrap();
    assert!(s.success, "{s:?}");
    assert_eq!(s.network, "solana-devnet");
    assert_eq!(env.cluster.token_balance(&env.cluster.pay_to()), AMOUNT);
}

#[tokio::test]
async fn supported_lists_kinds_and_signers() {
    let env = Env::start().await;
    let s = env.facilitator.supported().await.unwrap();
    let v = serde_json::to_value(&s).unwrap();
    let fp = env.fee_payer().pubkey().to_string();
    assert_eq!(
        v,
        json!({
            "kinds": [
                {"x402Version": 2, "scheme": "exact", "network": SOLANA_DEVNET,
                 "extra": {"feePayer": fp}},
                {"x402Version": 1, "scheme": "exact", "network": "solana-devnet",
                 "extra": {"feePayer": fp}}
            ],
            "extensions": [],
            "signers": {"solana:*": [fp]}
        })
    );
    assert_eq!(s.fee_payer("exact", SOLANA_DEVNET), Some(fp.as_str()));
}

// ---- HTTP endpoints ----

const SECRET: &str = "test-facilitator-secret";

fn app(env: &Env) -> axum::Router {
    facilitator_routes(Arc::new(env.facilitator.clone()), Secret::new(SECRET))
}

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    secret: Option<&str>,
    body: Option<String>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("/api/internal/facilitator/{path}"))
        // `HTTPFacilitatorClient` sends this content type on every call, GET included.
        .header("content-type", "application/json");
    if let Some(s) = secret {
        req = req.header(SECRET_HEADER, s);
    }
    let req = req
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .unwrap();
    let resp = guard(app.clone().oneshot(req)).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

#[tokio::test]
async fn http_requires_the_shared_secret() {
    let env = Env::start().await;
    let app = app(&env);
    let body = env.body(&env.fixture(AMOUNT, 15)).to_string();
    for path in ["supported", "verify", "settle"] {
        let method = if path == "supported" { "GET" } else { "POST" };
        for secret in [None, Some("wrong"), Some("")] {
            let (status, v) = call(&app, method, path, secret, Some(body.clone())).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {secret:?}");
            assert_eq!(v["error"]["code"], "unauthorized");
        }
    }
    assert_eq!(env.cluster.send_transaction_count(), 0);
    assert_eq!(env.cluster.token_balance(&env.cluster.pay_to()), 0);
}

#[tokio::test]
async fn http_round_trip_as_the_official_client_sends_it() {
    let env = Env::start().await;
    let app = app(&env);
    let (status, supported) = call(&app, "GET", "supported", Some(SECRET), None).await;
    assert_eq!(status, StatusCode::OK);
    let fp = env.fee_payer().pubkey().to_string();
    assert_eq!(supported["kinds"][0]["extra"]["feePayer"], fp);
    assert_eq!(supported["signers"]["solana:*"], json!([fp]));
    assert_eq!(supported["extensions"], json!([]));

    let fx = env.fixture(AMOUNT, 16);
    let body = env.body(&fx).to_string();
    let (status, v) = call(&app, "POST", "verify", Some(SECRET), Some(body.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v,
        json!({"isValid": true, "payer": env.client().pubkey().to_string()})
    );

    let (status, s) = call(&app, "POST", "settle", Some(SECRET), Some(body.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s["success"], true, "{s}");
    assert_eq!(s["network"], SOLANA_DEVNET);
    assert_eq!(s["payer"], env.client().pubkey().to_string());
    assert!(s["transaction"]
        .as_str()
        .unwrap()
        .parse::<Signature>()
        .is_ok());
    assert!(s.get("errorReason").is_none());
    assert_eq!(env.cluster.token_balance(&env.cluster.pay_to()), AMOUNT);

    // Business failures are 200 with the structured body.
    let (status, dup) = call(&app, "POST", "settle", Some(SECRET), Some(body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(dup["success"], false);
    assert_eq!(dup["errorReason"], "duplicate_settlement");
    assert_eq!(dup["transaction"], s["transaction"]);

    let mut foreign = env.fixture(AMOUNT, 17);
    foreign.fee_payer = Keypair::new();
    let (status, v) = call(
        &app,
        "POST",
        "verify",
        Some(SECRET),
        Some(env.body(&foreign).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["isValid"], false);
    assert_eq!(
        v["invalidReason"],
        "invalid_exact_svm_fee_payer_not_managed_by_facilitator"
    );
}

#[tokio::test]
async fn http_malformed_bodies_are_400_and_rpc_down_is_503() {
    let env = Env::start().await;
    let app = app(&env);
    for bad in [
        "not json".to_string(),
        "{}".to_string(),
        json!({"x402Version": 2, "paymentPayload": {}}).to_string(),
        json!({"x402Version": "two", "paymentPayload": {}, "paymentRequirements": {}}).to_string(),
    ] {
        for path in ["verify", "settle"] {
            let (status, v) = call(&app, "POST", path, Some(SECRET), Some(bad.clone())).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {bad}");
            assert_eq!(v["error"]["code"], "invalid_request");
        }
    }
    let huge = format!("{{\"x\":\"{}\"}}", "a".repeat(70 * 1024));
    let (status, v) = call(&app, "POST", "verify", Some(SECRET), Some(huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(v["error"]["code"], "payload_too_large");

    let cfg = test_config(&format!("http://{}", closed_port()), &env.cluster.mint());
    let keys = FeePayerKeys::new(vec![env.fee_payer().insecure_clone()]).unwrap();
    let down = facilitator_routes(
        Arc::new(LocalFacilitator::new(&cfg, keys).unwrap()),
        Secret::new(SECRET),
    );
    let body = env.body(&env.fixture(AMOUNT, 18)).to_string();
    let (status, v) = call(&down, "POST", "verify", Some(SECRET), Some(body)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["error"]["code"], "facilitator_unavailable");
}

#[tokio::test]
async fn a_dropped_settle_call_still_finishes_the_settlement() {
    let env = Env::start().await;
    let fx = env.fixture(AMOUNT, 19);
    let req = env.request(&fx);
    // Start a settle and abandon it at once: the settlement runs on its own task.
    let f = env.facilitator.clone();
    let abandoned = tokio::spawn(async move { f.settle(&req).await });
    tokio::task::yield_now().await;
    abandoned.abort();
    for _ in 0..200 {
        if env.cluster.token_balance(&env.cluster.pay_to()) == AMOUNT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Either the abort came before the claim (nothing happened, a retry settles) or after
    // (the settlement completed and a retry is a duplicate). Never half-done.
    let again = guard(env.facilitator.settle(&env.request(&fx)))
        .await
        .unwrap();
    assert!(
        again.success || again.error_reason.as_deref() == Some("duplicate_settlement"),
        "{again:?}"
    );
    assert_eq!(env.cluster.token_balance(&env.cluster.pay_to()), AMOUNT);
    assert_eq!(env.cluster.send_transaction_count(), 1);
}

#[tokio::test]
async fn a_second_fee_payer_key_is_advertised_and_used() {
    let env = Env::start().await;
    let second = Keypair::new();
    env.cluster
        .fund_wallet(&second.pubkey(), 1_000_000_000, 0)
        .unwrap();
    let keys = FeePayerKeys::new(vec![
        env.fee_payer().insecure_clone(),
        second.insecure_clone(),
    ])
    .unwrap();
    let cfg = test_config(&env.cluster.rpc_url(), &env.cluster.mint());
    let f = LocalFacilitator::new(&cfg, keys).unwrap();
    let s = f.supported().await.unwrap();
    assert_eq!(s.signers["solana:*"].len(), 2);
    let mut fx = env.fixture(AMOUNT, 20);
    fx.fee_payer = second.insecure_clone();
    let before = env.cluster.sol_balance(&second.pubkey());
    let r = guard(f.settle(&env.request(&fx))).await.unwrap();
    assert!(r.success, "{r:?}");
    assert!(env.cluster.sol_balance(&second.pubkey()) < before);
}

#[tokio::test]
async fn verify_refuses_a_payment_that_already_landed_even_on_a_fresh_facilitator() {
    let env = Env::start().await;
    let fx = env.fixture(AMOUNT, 21);
    let req = env.request(&fx);
    let before = env.facilitator.verify(&req).await.unwrap();
    assert!(before.is_valid, "{before:?}");
    let s = guard(env.facilitator.settle(&req)).await.unwrap();
    assert!(s.success, "{s:?}");

    // The same facilitator, and a new one that never saw it (a restarted process whose
    // settlement records are gone): the transaction id it would co-sign is on chain.
    let keys = FeePayerKeys::new(vec![env.fee_payer().insecure_clone()]).unwrap();
    let fresh = LocalFacilitator::new(
        &test_config(&env.cluster.rpc_url(), &env.cluster.mint()),
        keys,
    )
    .unwrap();
    for facilitator in [&env.facilitator, &fresh] {
        let v = facilitator.verify(&req).await.unwrap();
        assert_invalid(&v, "duplicate_settlement");
        assert!(
            v.invalid_message
                .as_deref()
                .unwrap()
                .contains(&s.transaction),
            "the message names the landed transaction: {v:?}"
        );
        assert_eq!(v.payer, Some(env.client().pubkey().to_string()));
    }
    assert_eq!(
        env.cluster.send_transaction_count(),
        1,
        "nothing sent again"
    );
    // Another payment of the same payer is untouched by the check.
    let other = env
        .facilitator
        .verify(&env.request(&env.fixture(AMOUNT, 22)))
        .await
        .unwrap();
    assert!(other.is_valid, "{other:?}");
}

#[tokio::test]
async fn fee_payer_balances_are_polled_and_low_ones_flagged() {
    let env = Env::start().await;
    let fp = env.fee_payer().pubkey();
    let balances = env.facilitator.poll_balances().await;
    assert_eq!(balances.len(), 1, "{balances:?}");
    assert_eq!(balances[0].fee_payer, fp);
    assert_eq!(balances[0].network, SOLANA_DEVNET);
    assert_eq!(balances[0].lamports, env.cluster.sol_balance(&fp));
    assert!(!balances[0].low, "10 SOL is above the 0.1 SOL default");

    // Above the threshold only while it holds more than it.
    let keys = FeePayerKeys::new(vec![env.fee_payer().insecure_clone()]).unwrap();
    let mut cfg = test_config(&env.cluster.rpc_url(), &env.cluster.mint());
    cfg.low_balance_lamports = env.cluster.sol_balance(&fp) + 1;
    let strict = LocalFacilitator::new(&cfg, keys).unwrap();
    let balances = strict.poll_balances().await;
    assert!(balances[0].low, "{balances:?}");

    // An RPC that does not answer: logged and left out, never an error or a hang.
    let keys = FeePayerKeys::new(vec![env.fee_payer().insecure_clone()]).unwrap();
    let mut cfg = test_config(&format!("http://{}", closed_port()), &env.cluster.mint());
    cfg.rpc_timeout_ms = 500;
    let down = LocalFacilitator::new(&cfg, keys).unwrap();
    assert!(guard(down.poll_balances()).await.is_empty());
}
