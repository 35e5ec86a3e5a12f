//! The confirmation loop against a scripted JSON-RPC stub on 127.0.0.1: outcomes the local
//! cluster cannot produce (a broadcast that never lands, a node that stops answering).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{json, Value};
use solana_hash::Hash;
use solana_signature::Signature;

use super::reasons::*;
use super::settle::{send_and_confirm, Confirm, Landing};
use crate::solana_rpc::SolanaRpc;

enum Reply {
    Result(Value),
    Error(i64, Value),
    Status(u16),
    Hang,
}

type Script = Arc<dyn Fn(&str, usize) -> Reply + Send + Sync>;

#[derive(Clone)]
struct Stub {
    script: Script,
    calls: Arc<Mutex<HashMap<String, usize>>>,
}

impl Stub {
    fn calls(&self, method: &str) -> usize {
        self.calls.lock().get(method).copied().unwrap_or(0)
    }
}

async fn handle(State(s): State<Stub>, Json(body): Json<Value>) -> Response {
    let method = body["method"].as_str().unwrap_or_default().to_owned();
    let n = {
        let mut calls = s.calls.lock();
        let c = calls.entry(method.clone()).or_default();
        *c += 1;
        *c
    };
    let id = body["id"].clone();
    match (s.script)(&method, n) {
        Reply::Result(r) => Json(json!({"jsonrpc": "2.0", "id": id, "result": r})).into_response(),
        Reply::Error(code, data) => Json(json!({
            "jsonrpc": "2.0", "id": id,
            "error": {"code": code, "message": "refused", "data": data}
        }))
        .into_response(),
        Reply::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::OK.into_response()
        }
    }
}

async fn stub(script: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> (SolanaRpc, Stub) {
    let state = Stub {
        script: Arc::new(script),
        calls: Arc::default(),
    };
    let app = Router::new()
        .route("/", axum::routing::post(handle))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let rpc = SolanaRpc::new(vec![url.parse().unwrap()], Duration::from_secs(2));
    (rpc, state)
}

fn sig() -> Signature {
    Signature::from([7u8; 64])
}

fn ctx(v: Value) -> Value {
    json!({"context": {"slot": 1}, "value": v})
}

fn sent() -> Reply {
    Reply::Result(json!(sig().to_string()))
}

fn status(confirmation: &str, err: Value) -> Reply {
    Reply::Result(ctx(json!([{
        "slot": 5, "confirmations": 0, "err": err, "status": {"Ok": null},
        "confirmationStatus": confirmation
    }])))
}

fn timing(deadline: Duration) -> Confirm {
    Confirm {
        poll: Duration::from_millis(10),
        rebroadcast: Duration::from_millis(40),
        deadline: Instant::now() + deadline,
    }
}

async fn run(rpc: &SolanaRpc, deadline: Duration, resumed: bool) -> Landing {
    send_and_confirm(
        rpc,
        b"wire",
        sig(),
        &Hash::default(),
        timing(deadline),
        resumed,
    )
    .await
}

#[tokio::test]
async fn confirmed_after_a_few_polls() {
    let (rpc, s) = stub(|m, n| match m {
        "sendTransaction" => sent(),
        "getSignatureStatuses" if n < 3 => Reply::Result(ctx(json!([null]))),
        "getSignatureStatuses" => status("confirmed", Value::Null),
        _ => Reply::Result(ctx(json!(true))),
    })
    .await;
    // No re-broadcast within the test (a loaded machine may take longer than the usual 40 ms
    // between polls): exactly one send, three polls.
    let once = Confirm {
        rebroadcast: Duration::from_secs(60),
        ..timing(Duration::from_secs(5))
    };
    assert_eq!(
        send_and_confirm(&rpc, b"wire", sig(), &Hash::default(), once, false).await,
        Landing::Confirmed
    );
    assert_eq!(s.calls("sendTransaction"), 1);
    assert_eq!(s.calls("getSignatureStatuses"), 3);
}

#[tokio::test]
async fn never_lands_then_blockhash_expires() {
    let (rpc, s) = stub(|m, n| match m {
        "sendTransaction" => sent(),
        "getSignatureStatuses" => Reply::Result(ctx(json!([null]))),
        "isBlockhashValid" => Reply::Result(ctx(json!(n < 3))),
        _ => Reply::Status(500),
    })
    .await;
    assert_eq!(
        run(&rpc, Duration::from_secs(10), false).await,
        Landing::Expired
    );
    assert_eq!(s.calls("isBlockhashValid"), 3);
    // The first send plus one re-broadcast per valid check.
    assert_eq!(s.calls("sendTransaction"), 3);
}

#[tokio::test]
async fn deadline_while_valid_is_pending() {
    let (rpc, _s) = stub(|m, _| match m {
        "sendTransaction" => sent(),
        "getSignatureStatuses" => Reply::Result(ctx(json!([null]))),
        _ => Reply::Result(ctx(json!(true))),
    })
    .await;
    let start = Instant::now();
    let out = run(&rpc, Duration::from_millis(300), false).await;
    assert!(matches!(out, Landing::Pending(_)), "{out:?}");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_hanging_node_cannot_outlive_the_deadline() {
    let (rpc, _s) = stub(|_, _| Reply::Hang).await;
    let start = Instant::now();
    let out = run(&rpc, Duration::from_millis(300), false).await;
    assert!(matches!(out, Landing::Pending(_)), "{out:?}");
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn send_lost_in_transport_is_followed_not_refused() {
    let (rpc, s) = stub(|m, _| match m {
        "sendTransaction" => Reply::Status(503),
        "getSignatureStatuses" => status("finalized", Value::Null),
        _ => Reply::Result(ctx(json!(true))),
    })
    .await;
    assert_eq!(
        run(&rpc, Duration::from_secs(5), false).await,
        Landing::Confirmed
    );
    assert_eq!(s.calls("sendTransaction"), 1);
}

#[tokio::test]
async fn landed_with_an_error() {
    let (rpc, _s) = stub(|m, _| match m {
        "sendTransaction" => sent(),
        _ => status("confirmed", json!({"InstructionError": [2, {"Custom": 1}]})),
    })
    .await;
    let out = run(&rpc, Duration::from_secs(5), false).await;
    assert!(
        matches!(out, Landing::Failed(ref e) if e.contains("InstructionError")),
        "{out:?}"
    );
}

#[tokio::test]
async fn processed_but_unconfirmed_at_expiry_is_pending() {
    let (rpc, _s) = stub(|m, _| match m {
        "sendTransaction" => sent(),
        "getSignatureStatuses" => status("processed", Value::Null),
        _ => Reply::Result(ctx(json!(false))),
    })
    .await;
    let out = run(&rpc, Duration::from_secs(5), false).await;
    assert!(matches!(out, Landing::Pending(_)), "{out:?}");
}

#[tokio::test]
async fn preflight_refusals_are_classified() {
    let cases = [
        (json!("BlockhashNotFound"), Some(BLOCKHASH_EXPIRED)),
        (
            json!({"InstructionError": [2, {"Custom": 1}]}),
            Some(INSUFFICIENT_FUNDS),
        ),
        (
            json!({"InstructionError": [2, {"Custom": 4}]}),
            Some(SIMULATION_FAILED),
        ),
        (json!("AlreadyProcessed"), None),
    ];
    for (err, reason) in cases {
        let data = json!({"err": err, "logs": ["Program log: x"]});
        let (rpc, s) = stub(move |_, _| Reply::Error(-32002, data.clone())).await;
        let out = run(&rpc, Duration::from_secs(5), false).await;
        match reason {
            Some(r) => assert!(
                matches!(out, Landing::Refused(ref x) if x.reason == r),
                "{out:?}"
            ),
            None => assert_eq!(out, Landing::AlreadyProcessed),
        }
        assert_eq!(
            s.calls("sendTransaction"),
            1,
            "no re-broadcast after a refusal"
        );
        assert_eq!(s.calls("getSignatureStatuses"), 0);
    }
    let (rpc, _s) = stub(|_, _| Reply::Error(-32602, Value::Null)).await;
    let out = run(&rpc, Duration::from_secs(5), false).await;
    assert!(
        matches!(out, Landing::Refused(ref x) if x.reason == TRANSACTION_FAILED),
        "{out:?}"
    );
}

#[tokio::test]
async fn resumed_settlement_reads_the_status_first() {
    let (rpc, s) = stub(|m, _| match m {
        "getSignatureStatuses" => status("confirmed", Value::Null),
        _ => Reply::Status(500),
    })
    .await;
    assert_eq!(
        run(&rpc, Duration::from_secs(5), true).await,
        Landing::Confirmed
    );
    assert_eq!(s.calls("sendTransaction"), 0);
}

// ---- the whole facilitator over the stub: pending, then resumed ----

mod full_flow {
    use std::sync::atomic::{AtomicBool, Ordering};

    use base64::Engine as _;
    use solana_signer::Signer;

    use super::*;
    use crate::facilitator::keys::FeePayerKeys;
    use crate::facilitator::local::{LocalFacilitator, LocalFacilitatorConfig};
    use crate::facilitator::Facilitator;
    use crate::svm::constants::SPL_TOKEN_PROGRAM;
    use crate::svm::mint::test_data::base_mint;
    use crate::svm::testkit::PaymentFixture;
    use crate::x402::network::SOLANA_DEVNET;
    use crate::x402::FacilitatorRequest;

    fn request(fx: &PaymentFixture) -> FacilitatorRequest {
        let req = json!({
            "scheme": "exact", "network": SOLANA_DEVNET, "amount": fx.amount.to_string(),
            "asset": fx.mint.to_string(), "payTo": fx.pay_to.to_string(),
            "maxTimeoutSeconds": 60, "extra": {"feePayer": fx.fee_payer.pubkey().to_string()}
        });
        serde_json::from_value(json!({
            "x402Version": 2,
            "paymentPayload": {"x402Version": 2, "accepted": req,
                               "payload": {"transaction": fx.honest_base64()}},
            "paymentRequirements": req
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn pending_is_kept_then_resumed_without_a_new_preflight_send() {
        let landed = Arc::new(AtomicBool::new(false));
        let l = landed.clone();
        let (rpc, s) = stub(move |m, _| match m {
            "getAccountInfo" => Reply::Result(ctx(json!({
                "data": [base64::engine::general_purpose::STANDARD.encode(base_mint(6, true)), "base64"],
                "owner": SPL_TOKEN_PROGRAM.to_string(), "lamports": 1, "executable": false,
                "rentEpoch": 0, "space": 82
            }))),
            "sendTransaction" => sent(),
            "isBlockhashValid" => Reply::Result(ctx(json!(true))),
            "getSignatureStatuses" if l.load(Ordering::SeqCst) => status("confirmed", Value::Null),
            "getSignatureStatuses" => Reply::Result(ctx(json!([null]))),
            _ => Reply::Status(500),
        })
        .await;
        let url = rpc.urls()[0].clone();
        let fx = PaymentFixture::new();
        let cfg = LocalFacilitatorConfig {
            confirm_poll_ms: 20,
            rebroadcast_ms: 100,
            // Room for re-broadcasts even on a loaded machine (the test asserts at least one).
            settle_deadline_ms: 1500,
            ..LocalFacilitatorConfig::single(SOLANA_DEVNET, vec![url], vec![fx.mint.to_string()])
        };
        let keys = FeePayerKeys::new(vec![fx.fee_payer.insecure_clone()]).unwrap();
        let f = LocalFacilitator::new(&cfg, keys).unwrap();
        let req = request(&fx);

        let first = f.settle(&req).await.unwrap();
        assert!(!first.success);
        assert_eq!(first.error_reason.as_deref(), Some(SETTLEMENT_PENDING));
        assert!(
            !first.transaction.is_empty(),
            "the signature is always returned"
        );
        let sends = s.calls("sendTransaction");
        assert!(sends >= 2, "first send plus re-broadcasts: {sends}");

        landed.store(true, Ordering::SeqCst);
        let second = f.settle(&req).await.unwrap();
        assert!(second.success, "{second:?}");
        assert_eq!(second.transaction, first.transaction, "same transaction id");
        assert_eq!(
            s.calls("sendTransaction"),
            sends,
            "confirmed at the first read"
        );

        let third = f.settle(&req).await.unwrap();
        assert_eq!(third.error_reason.as_deref(), Some(DUPLICATE_SETTLEMENT));
        assert_eq!(third.transaction, first.transaction);
    }
}
