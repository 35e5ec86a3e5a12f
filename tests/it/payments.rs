//! x402 payments end to end: the real router, the in-process facilitator, and the embedded local
//! cluster executing real signed USDC transfers.

use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};
use solana_keypair::Keypair;
use solana_signer::Signer;
use x402_gateway::x402::network::SOLANA_DEVNET;
use x402_gateway::x402::{decode_header, encode_header, PaymentRequired, SettleResponse};

use crate::common::app::split;
use crate::common::cluster::start_cluster;
use crate::common::gateway::{PaidGateway, RemoteFacilitator};
use crate::common::loopback;
use crate::common::Mode;

/// localnet: 1 unit per call × 1 atomic per unit × 1.2 = 2, + 600 surcharge → the 1000 floor.
pub(crate) const PRICE: u64 = 1000;
pub(crate) const PAID: &str = "/v1/x402/solana/devnet/localnet/rpc/getSlot";
/// Paid too, through the mock upstream (whose calls can be counted or made to fail).
pub(crate) const FAILING: &str = "/v1/x402/solana/devnet/mock/rpc/getSlot";

#[tokio::test]
async fn unpaid_request_gets_a_challenge_with_the_server_price() {
    let env = PaidGateway::start().await;
    let (status, body, head) = env.app.post_json(PAID, "").await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(head.headers()["cache-control"], "no-store");
    let challenge: PaymentRequired =
        decode_header(head.headers()["payment-required"].as_bytes(), 16 * 1024).unwrap();
    // The header is the v2 challenge; the body the same terms in the v1 shape (v1 clients).
    assert_eq!(body["x402Version"], 1, "{body}");
    assert_eq!(body["error"], challenge.error.clone().unwrap());
    let v1 = &body["accepts"][0];
    assert_eq!(
        body["accepts"].as_array().unwrap().len(),
        challenge.accepts.len()
    );
    assert_eq!(v1["network"], "solana-devnet");
    assert_eq!(v1["maxAmountRequired"], challenge.accepts[0].amount);
    assert_eq!(v1["resource"], challenge.resource.url);
    assert_eq!(v1["description"], challenge.resource.description);
    assert_eq!(v1["mimeType"], "application/json");
    assert_eq!(v1["payTo"], challenge.accepts[0].pay_to);
    assert_eq!(v1["asset"], challenge.accepts[0].asset);
    assert_eq!(
        v1["maxTimeoutSeconds"],
        challenge.accepts[0].max_timeout_seconds
    );
    assert_eq!(
        v1["extra"],
        serde_json::to_value(&challenge.accepts[0].extra).unwrap()
    );
    assert_eq!(
        v1["outputSchema"],
        challenge.extensions.as_ref().unwrap()["bazaar"]["info"],
        "v1 discovery lived in accepts[].outputSchema"
    );
    assert_eq!(
        challenge.resource.url,
        format!("https://gateway.example{PAID}"),
        "from public_base_url, not Host"
    );
    let accept = &challenge.accepts[0];
    assert_eq!(accept.amount, PRICE.to_string());
    assert_eq!(accept.pay_to, env.cluster.pay_to().to_string());
    assert_eq!(
        accept.fee_payer(),
        Some(
            env.cluster.fee_payers()[0]
                .keypair
                .pubkey()
                .to_string()
                .as_str()
        )
    );
    assert_eq!(
        challenge.extensions.as_ref().unwrap()["bazaar"]["info"]["input"]["method"],
        "POST"
    );
    // An empty-body GET probe gets the same challenge; a bad body gets its 400 before any payment.
    let (status, _, _) = env.app.get(PAID).await;
    assert_eq!(status, 402);
    let (status, body, _) = env.app.post_json(PAID, "{nope").await;
    assert_eq!(status, 400, "{body}");
    // A batch is priced per element: 3 calls × 2 + 600 = 606 → still the floor; the price grows with it.
    let batch: Vec<Value> = (0..3)
        .map(|i| json!({"jsonrpc":"2.0","id":i,"method":"getSlot"}))
        .collect();
    let (status, body, head) = env
        .app
        .post_json(
            "/v1/x402/solana/devnet/rpc",
            Value::Array(batch).to_string(),
        )
        .await;
    assert_eq!(status, 402);
    assert_eq!(body["accepts"][0]["maxAmountRequired"], PRICE.to_string());
    let batch: PaymentRequired =
        decode_header(head.headers()["payment-required"].as_bytes(), 16 * 1024).unwrap();
    assert_eq!(batch.accepts[0].amount, PRICE.to_string());
}

#[tokio::test]
async fn paid_call_settles_and_moves_exactly_the_price() {
    let env = PaidGateway::start().await;
    let challenge = env.challenge(PAID).await;
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
    let fixture = env.fixture(PRICE, 1);
    let (client_before, pay_to_before) = env.balances();

    let (status, body, head) = env
        .pay(PAID, &PaidGateway::header(&accepted, &fixture))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["result"].is_u64(),
        "the upstream answer is released: {body}"
    );
    let receipt: SettleResponse =
        decode_header(head.headers()["payment-response"].as_bytes(), 8192).unwrap();
    assert!(receipt.success, "{receipt:?}");
    assert!(!receipt.transaction.is_empty());
    assert_eq!(
        receipt.payer.as_deref(),
        Some(env.client().pubkey().to_string().as_str())
    );
    let (client_after, pay_to_after) = env.balances();
    assert_eq!(client_before - client_after, PRICE);
    assert_eq!(pay_to_after - pay_to_before, PRICE);

    // The same request with the same payment (a client that lost the answer): the kept answer,
    // with its receipt, and no second settlement.
    let (status, again, again_head) = env
        .pay(PAID, &PaidGateway::header(&accepted, &fixture))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, body);
    assert_eq!(
        again_head.headers()["payment-response"],
        head.headers()["payment-response"]
    );
    assert_eq!(env.balances(), (client_after, pay_to_after));

    // The same payment on another request: it already bought its answer.
    let (status, body, _) = env
        .pay_body(
            PAID,
            &PaidGateway::header(&accepted, &fixture),
            r#"{"params":[]}"#,
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "payment_already_used");
    assert_eq!(env.balances(), (client_after, pay_to_after));
}

/// `PAYMENT-SIGNATURE` for `fixture`'s transfer without its memo instruction: what v1-era
/// clients and `x402-solana` send (compute limit, compute price, transfer).
fn memo_less_header(
    accepted: &Value,
    fixture: &x402_gateway::svm::testkit::PaymentFixture,
) -> String {
    let mut ixs = fixture.instructions();
    ixs.truncate(3);
    let transaction = x402_gateway::svm::client::encode(&fixture.sign_v0(&ixs));
    encode_header(&json!({
        "x402Version": 2,
        "accepted": accepted,
        "payload": {"transaction": transaction},
    }))
}

/// Without a memo, two payers' identical transfers (same payer, amount, blockhash) are one and
/// the same transaction, as on chain: the second is the first payment replayed. It is answered
/// from the first one's claim (the kept answer for the same request, 409 for another), never
/// settled a second time.
#[tokio::test]
async fn identical_memo_less_payments_are_one_payment() {
    let env = PaidGateway::start().await;
    let challenge = env.challenge(PAID).await;
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
    assert!(
        challenge.accepts[0].memo().is_none(),
        "the offer sets no extra.memo"
    );
    let (first, second) = (env.fixture(PRICE, 1), env.fixture(PRICE, 2));
    let (header, twin) = (
        memo_less_header(&accepted, &first),
        memo_less_header(&accepted, &second),
    );
    assert_eq!(
        header, twin,
        "built twice in one blockhash window, a memo-less transfer is byte-identical"
    );
    let (client_before, pay_to_before) = env.balances();

    let (status, body, head) = env.pay(PAID, &header).await;
    assert_eq!(status, 200, "a memo-less payment is accepted: {body}");
    let receipt: SettleResponse =
        decode_header(head.headers()["payment-response"].as_bytes(), 8192).unwrap();
    assert!(receipt.success, "{receipt:?}");
    let paid = (client_before - PRICE, pay_to_before + PRICE);
    assert_eq!(env.balances(), paid);

    // The twin on the same request: the kept answer and receipt, no second settlement.
    let (status, again, again_head) = env.pay(PAID, &twin).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, body);
    assert_eq!(
        again_head.headers()["payment-response"],
        head.headers()["payment-response"]
    );
    // The twin on another request: that payment already bought its answer.
    let (status, other, _) = env.pay_body(PAID, &twin, r#"{"params":[]}"#).await;
    assert_eq!(status, 409, "{other}");
    assert_eq!(other["error"]["code"], "payment_already_used");
    assert_eq!(env.balances(), paid, "settled once");
}

/// `[payment] require_memo = true`: the same memo-less payment is refused before any upstream
/// call or settlement, naming the rule.
#[tokio::test]
async fn require_memo_refuses_memo_less_payments() {
    let env = PaidGateway::builder().require_memo().build().await;
    let challenge = env.challenge(PAID).await;
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
    let before = env.balances();
    let (status, body, head) = env
        .pay(PAID, &memo_less_header(&accepted, &env.fixture(PRICE, 1)))
        .await;
    assert_eq!(status, 402, "{body}");
    let refused: PaymentRequired =
        decode_header(head.headers()["payment-required"].as_bytes(), 16 * 1024).unwrap();
    assert!(
        refused
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("invalid_exact_svm_payload_memo_count")),
        "{refused:?}"
    );
    assert_eq!(env.balances(), before);
    // With its memo the payment passes.
    let (status, body, _) = env
        .pay(
            PAID,
            &PaidGateway::header(&accepted, &env.fixture(PRICE, 1)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn upstream_failure_is_not_charged_and_the_payment_stays_usable() {
    let env = PaidGateway::start().await;
    env.mock.set_mode(Mode::Status(500));
    let challenge = env.challenge(FAILING).await;
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
    let fixture = env.fixture(PRICE, 2);
    let before = env.balances();
    let (status, body, head) = env
        .pay(FAILING, &PaidGateway::header(&accepted, &fixture))
        .await;
    assert_eq!(status, 502, "{body}");
    assert!(!head.headers().contains_key("payment-response"));
    assert_eq!(env.balances(), before, "no settlement");
    // Released: once the upstream recovers, the same payment buys the answer.
    env.mock.set_mode(Mode::Normal);
    let (status, body, _) = env
        .pay(FAILING, &PaidGateway::header(&accepted, &fixture))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(env.balances().0, before.0 - PRICE);
}

#[tokio::test]
async fn upstream_timeout_is_not_charged_and_the_payment_stays_usable() {
    let env = PaidGateway::builder()
        .public_base_url("https://gateway.example")
        .upstream_timeouts_ms(300, 200)
        .build()
        .await;
    // The upstream hangs well past the gateway's upstream timeout.
    env.mock
        .set_mode(Mode::Slow(std::time::Duration::from_secs(3)));
    let challenge = env.challenge(FAILING).await;
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
    let fixture = env.fixture(PRICE, 11);
    let before = env.balances();
    let sends = env.cluster.send_transaction_count();

    let (status, body, head) = env
        .pay(FAILING, &PaidGateway::header(&accepted, &fixture))
        .await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(
        body["error"]["code"], -32050,
        "our JSON-RPC timeout error: {body}"
    );
    assert!(!head.headers().contains_key("payment-response"));
    assert_eq!(env.mock.calls(), 1, "the upstream was called (and hung)");
    assert_eq!(
        env.cluster.send_transaction_count(),
        sends,
        "nothing was broadcast"
    );
    assert_eq!(env.balances(), before, "no settlement");

    // Released: once the upstream answers in time, the same payment buys the answer.
    env.mock.set_mode(Mode::Normal);
    let (status, body, head) = env
        .pay(FAILING, &PaidGateway::header(&accepted, &fixture))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], 341_197_053u64);
    let receipt: SettleResponse =
        decode_header(head.headers()["payment-response"].as_bytes(), 8192).unwrap();
    assert!(receipt.success, "{receipt:?}");
    let (client, pay_to) = env.balances();
    assert_eq!(before.0 - client, PRICE);
    assert_eq!(pay_to - before.1, PRICE);
}

#[tokio::test]
async fn wrong_payments_are_refused_before_any_upstream_call() {
    let env = PaidGateway::start().await;
    let challenge = env.challenge(FAILING).await;
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
    let before = env.balances();

    // Underpaid: accepted says the price, the transfer pays less.
    let (status, body, _) = env
        .pay(
            FAILING,
            &PaidGateway::header(&accepted, &env.fixture(PRICE - 1, 3)),
        )
        .await;
    assert_eq!(status, 402);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid_exact_svm_payload_amount_mismatch"),
        "{body}"
    );
    // Overpaid.
    let (status, body, _) = env
        .pay(
            FAILING,
            &PaidGateway::header(&accepted, &env.fixture(PRICE + 1, 4)),
        )
        .await;
    assert_eq!(status, 402);
    assert!(
        body["error"].as_str().unwrap().contains("amount_mismatch"),
        "{body}"
    );
    // A cheaper deal in `accepted`.
    let mut cheap = accepted.clone();
    cheap["amount"] = json!("1");
    let (status, body, _) = env
        .pay(FAILING, &PaidGateway::header(&cheap, &env.fixture(1, 5)))
        .await;
    assert_eq!(status, 402);
    assert!(
        body["error"].as_str().unwrap().contains("accepted.amount"),
        "{body}"
    );
    // Wrong recipient.
    let mut elsewhere = env.fixture(PRICE, 6);
    elsewhere.pay_to = Keypair::new().pubkey();
    let (status, body, _) = env
        .pay(FAILING, &PaidGateway::header(&accepted, &elsewhere))
        .await;
    assert_eq!(status, 402);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("recipient_mismatch"),
        "{body}"
    );
    // Wrong mint.
    let mut other_mint = env.fixture(PRICE, 7);
    other_mint.mint = Keypair::new().pubkey();
    let (status, _, _) = env
        .pay(FAILING, &PaidGateway::header(&accepted, &other_mint))
        .await;
    assert_eq!(status, 402);
    // Stale challenge: a blockhash that has expired.
    let stale = env.fixture(PRICE, 8);
    env.cluster.advance_slots(200);
    let (status, body, _) = env
        .pay(FAILING, &PaidGateway::header(&accepted, &stale))
        .await;
    assert_eq!(status, 402, "{body}");
    // Malformed header: 400 naming the problem, with a fresh challenge.
    let (status, body, head) = env.pay(FAILING, "%%%not base64").await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("malformed payment header"),
        "{body}"
    );
    assert!(head.headers().contains_key("payment-required"));

    assert_eq!(
        env.mock.calls(),
        0,
        "no refused payment reached the upstream"
    );
    assert_eq!(env.balances(), before);
}

#[tokio::test]
async fn v1_payment_flow() {
    let env = PaidGateway::start().await;
    let fixture = env.fixture(PRICE, 9);
    let header = encode_header(&json!({
        "x402Version": 1,
        "scheme": "exact",
        "network": "solana-devnet",
        "payload": {"transaction": fixture.honest_base64()},
    }));
    let request = Request::post(PAID)
        .header("content-type", "application/json")
        .header("x-payment", header)
        .body(Body::empty())
        .unwrap();
    let before = env.balances();
    let (status, body, head) = split(env.app.send(request).await).await;
    assert_eq!(status, 200, "{body}");
    let receipt: SettleResponse =
        decode_header(head.headers()["x-payment-response"].as_bytes(), 8192).unwrap();
    assert!(receipt.success);
    assert_eq!(env.balances().0, before.0 - PRICE);
}

/// A facilitator on loopback that behaves as the spec says, except that its settle refuses
/// (e.g. the payer moved the funds away between verify and settle).
async fn refusing_facilitator(fee_payer: String) -> String {
    use axum::routing::{get, post};
    let app = axum::Router::new()
        .route(
            "/supported",
            get(move || {
                let fee_payer = fee_payer.clone();
                async move {
                    axum::Json(json!({"kinds":[{"x402Version":2,"scheme":"exact","network":SOLANA_DEVNET,"extra":{"feePayer":fee_payer}}],"extensions":[],"signers":{}}))
                }
            }),
        )
        .route("/verify", post(|| async { axum::Json(json!({"isValid": true, "payer": "Payer"})) }))
        .route(
            "/settle",
            post(|| async {
                axum::Json(json!({"success": false, "errorReason": "insufficient_funds", "transaction": "", "network": SOLANA_DEVNET}))
            }),
        );
    format!("http://{}/", loopback::serve(app).await)
}

#[tokio::test]
async fn settle_failure_withholds_the_answer() {
    let (cluster, dir) = start_cluster().await;
    let fee_payer = cluster.fee_payers()[0].keypair.pubkey().to_string();
    let facilitator = refusing_facilitator(fee_payer).await;
    let env = PaidGateway::builder()
        .with_cluster(cluster, dir)
        .with_remote_facilitator(RemoteFacilitator {
            name: "refuser".into(),
            url: facilitator,
            timeout_ms: None,
        })
        .build()
        .await;
    let challenge = env.challenge(FAILING).await;
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
    let (status, body, head) = env
        .pay(
            FAILING,
            &PaidGateway::header(&accepted, &env.fixture(PRICE, 10)),
        )
        .await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body, json!({}), "the upstream answer is withheld");
    let receipt: SettleResponse =
        decode_header(head.headers()["payment-response"].as_bytes(), 8192).unwrap();
    assert!(!receipt.success);
    assert_eq!(receipt.error_reason.as_deref(), Some("insufficient_funds"));
    assert_eq!(
        env.mock.calls(),
        1,
        "the upstream was called once, before settlement"
    );
}

/// A loopback facilitator whose `/supported` advertises whatever fee payer `current` holds
/// (verify and settle are never reached by challenges).
async fn rotating_facilitator(current: std::sync::Arc<parking_lot::Mutex<String>>) -> String {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/supported",
        get(move || {
            let fee_payer = current.lock().clone();
            async move {
                axum::Json(json!({"kinds":[{"x402Version":2,"scheme":"exact","network":SOLANA_DEVNET,"extra":{"feePayer":fee_payer}}],"extensions":[],"signers":{}}))
            }
        }),
    );
    format!("http://{}/", loopback::serve(app).await)
}

/// Challenges are built once per (route, price) and then served from the paygate's cache; a
/// fee payer rotated by the facilitator must show up in the very next challenge after the
/// paygate has seen the new `/supported`, for every cached route and price.
#[tokio::test]
async fn challenges_follow_a_rotated_fee_payer() {
    let first = Keypair::new().pubkey().to_string();
    let second = Keypair::new().pubkey().to_string();
    let current = std::sync::Arc::new(parking_lot::Mutex::new(first.clone()));
    let facilitator = rotating_facilitator(current.clone()).await;
    let env = PaidGateway::builder()
        .public_base_url("https://gateway.example")
        .with_remote_facilitator(RemoteFacilitator {
            name: "rotating".into(),
            url: facilitator,
            timeout_ms: None,
        })
        .build()
        .await;
    let standard = "/v1/x402/solana/devnet/rpc";
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"getSlot"},{"jsonrpc":"2.0","id":2,"method":"getSlot"}]"#;
    let batch_challenge = || async {
        let (status, _, head) = env.app.post_json(standard, batch).await;
        assert_eq!(status, 402);
        decode_header::<PaymentRequired>(head.headers()["payment-required"].as_bytes(), 16 * 1024)
            .unwrap()
    };

    // Twice each: the second answer comes from the cache and must be the same challenge.
    for _ in 0..2 {
        let c = env.challenge(PAID).await;
        assert_eq!(c.accepts[0].fee_payer(), Some(first.as_str()));
        assert_eq!(c.accepts[0].amount, PRICE.to_string());
        assert_eq!(c.resource.url, format!("https://gateway.example{PAID}"));
        let b = batch_challenge().await;
        assert_eq!(b.accepts[0].fee_payer(), Some(first.as_str()));
        assert_eq!(b.resource.url, format!("https://gateway.example{standard}"));
    }
    // Another route at the same price is its own challenge (resource and Bazaar entry).
    let other = env.challenge(FAILING).await;
    assert_eq!(
        other.resource.url,
        format!("https://gateway.example{FAILING}")
    );

    *current.lock() = second.clone();
    let gate = env.app.app.paygate.clone().expect("payments are on");
    gate.refresh_supported().await.unwrap();
    for path in [PAID, FAILING] {
        let c = env.challenge(path).await;
        assert_eq!(c.accepts[0].fee_payer(), Some(second.as_str()), "{path}");
    }
    assert_eq!(
        batch_challenge().await.accepts[0].fee_payer(),
        Some(second.as_str())
    );
}
