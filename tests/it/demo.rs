//! The offline demo as `cargo run` starts it: the embedded default config (gateway.example.toml)
//! charges for calls to the embedded cluster, and a payment signed by the funded wallet buys the
//! answer. Only the cluster's port and key files are moved (in the TOML text, so the demo's
//! settings are derived from them while loading, as `serve` does), so tests can run side by side.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::Request;
use serde_json::json;
use solana_signer::Signer;
use tower::ServiceExt;
use x402_gateway::config::{Config, EMBEDDED_DEFAULT};
use x402_gateway::localnet::demo;
use x402_gateway::svm::testkit::PaymentFixture;
use x402_gateway::x402::{decode_header, encode_header, PaymentRequired, SettleResponse};
use x402_gateway::{build_router, App};

use crate::common::app::split;
use crate::common::cluster::payment_fixture;

const PAID: &str = "/v1/x402/solana/devnet/localnet/rpc/getBalance";

#[tokio::test]
async fn embedded_default_charges_and_a_signed_payment_buys_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let text = EMBEDDED_DEFAULT
        .replace("127.0.0.1:8899", "127.0.0.1:0")
        .replace("\".localnet", &format!("\"{}", dir.path().display()));
    let mut config =
        Config::from_toml(&text, &HashMap::<String, String>::new()).expect("embedded default");
    // The demo's ledger in the test's directory, not the repository's `data/`.
    config.ledger.data_dir = dir.path().to_path_buf();
    assert!(config.payment.enabled, "the demo charges");
    let cluster = demo::start(&config).await.unwrap().expect("cluster");
    cluster.pause_clock(true);
    let router = build_router(App::build(config).await.expect("app builds"));
    let wallet = cluster.wallets()[0].keypair.pubkey();
    let body = json!({ "params": [wallet.to_string()] }).to_string();
    let post = |payment: Option<String>| {
        let mut r = Request::post(PAID).header("content-type", "application/json");
        if let Some(p) = payment {
            r = r.header("payment-signature", p);
        }
        r.body(Body::from(body.clone())).unwrap()
    };

    let (status, _, head) = split(router.clone().oneshot(post(None)).await.unwrap()).await;
    assert_eq!(status, 402);
    let challenge: PaymentRequired =
        decode_header(head.headers()["payment-required"].as_bytes(), 16 * 1024).unwrap();
    let offer = &challenge.accepts[0];
    assert_eq!(offer.pay_to, cluster.pay_to().to_string());
    assert_eq!(offer.asset, cluster.mint().to_string());
    let fee_payer = cluster.fee_payers()[0].keypair.pubkey().to_string();
    assert_eq!(offer.fee_payer(), Some(fee_payer.as_str()));
    let amount: u64 = offer.amount.parse().unwrap();

    let fixture = PaymentFixture {
        memo: None,
        ..payment_fixture(&cluster, amount, 0)
    };
    let header = encode_header(&json!({
        "x402Version": 2,
        "resource": challenge.resource,
        "accepted": offer,
        "payload": {"transaction": fixture.honest_base64()},
    }));
    let before = cluster.token_balance(&wallet);
    let (status, body, head) =
        split(router.clone().oneshot(post(Some(header))).await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["value"], cluster.sol_balance(&wallet));
    let receipt: SettleResponse =
        decode_header(head.headers()["payment-response"].as_bytes(), 8192).unwrap();
    assert!(receipt.success, "{receipt:?}");
    assert_eq!(cluster.token_balance(&wallet), before - amount);

    // The demo's service: the cluster's REST API, its status free, a balance paid the same way.
    let get = |path: String, payment: Option<String>| {
        let mut r = Request::get(path);
        if let Some(p) = payment {
            r = r.header("payment-signature", p);
        }
        r.body(Body::empty()).unwrap()
    };
    let (status, body, _) = split(
        router
            .clone()
            .oneshot(get("/demo/v1/status".into(), None))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cluster"], "localnet");
    let balance = format!("/demo/v1/balance/{wallet}");
    let (status, _, head) = split(
        router
            .clone()
            .oneshot(get(balance.clone(), None))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 402);
    let challenge: PaymentRequired =
        decode_header(head.headers()["payment-required"].as_bytes(), 16 * 1024).unwrap();
    let offer = &challenge.accepts[0];
    assert_eq!(offer.amount, "1000", "0.001 USD");
    // With its nonce memo: memo-less, it would be the very transaction paid above (same price,
    // same blockhash on the paused clock), which is one payment.
    let fixture = payment_fixture(&cluster, 1000, 1);
    let header = encode_header(&json!({
        "x402Version": 2,
        "resource": challenge.resource,
        "accepted": offer,
        "payload": {"transaction": fixture.honest_base64()},
    }));
    let before = cluster.token_balance(&wallet);
    let (status, body, _) = split(
        router
            .clone()
            .oneshot(get(balance, Some(header)))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["lamports"], cluster.sol_balance(&wallet));
    assert_eq!(cluster.token_balance(&wallet), before - 1000);
    // Discovery shows it offline.
    let (status, catalog, _) = split(
        router
            .oneshot(get("/v1/catalog".into(), None))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(catalog["routes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["path"] == "/demo/v1/balance/{address}" && r["access"] == "paid"));
}
