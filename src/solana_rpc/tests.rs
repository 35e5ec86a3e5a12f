//! Client tests against tiny axum JSON-RPC stubs on 127.0.0.1 (no other host is contacted).

use super::*;
use crate::svm::constants::SPL_TOKEN_PROGRAM;
use crate::svm::mint::test_data::base_mint;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::Engine as _;
use parking_lot::Mutex;
use serde_json::{json, Value};
use solana_address::Address;
use solana_hash::Hash;
use solana_signature::Signature;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

enum Reply {
    Result(Value),
    Error(i64, &'static str),
    Status(u16),
    Hang,
    Redirect(String),
    Big(usize),
    WrongId,
}

type Handler = Arc<dyn Fn(&Value) -> Reply + Send + Sync>;

struct StubState {
    handler: Handler,
    hits: AtomicUsize,
    bodies: Mutex<Vec<Value>>,
}

struct Stub {
    url: Url,
    state: Arc<StubState>,
}

impl Stub {
    fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }
    fn last_body(&self) -> Value {
        self.state
            .bodies
            .lock()
            .last()
            .cloned()
            .unwrap_or(Value::Null)
    }
}

async fn handle(State(s): State<Arc<StubState>>, Json(body): Json<Value>) -> Response {
    s.hits.fetch_add(1, Ordering::SeqCst);
    s.bodies.lock().push(body.clone());
    let id = body["id"].clone();
    match (s.handler)(&body) {
        Reply::Result(r) => Json(json!({"jsonrpc": "2.0", "id": id, "result": r})).into_response(),
        Reply::Error(code, message) => Json(json!({
            "jsonrpc": "2.0", "id": id,
            "error": {"code": code, "message": message, "data": {"x": 1}}
        }))
        .into_response(),
        Reply::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::OK.into_response()
        }
        Reply::Redirect(to) => {
            (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, to)]).into_response()
        }
        Reply::Big(n) => {
            let filler = "x".repeat(n);
            Json(json!({"jsonrpc": "2.0", "id": id, "result": filler})).into_response()
        }
        Reply::WrongId => {
            Json(json!({"jsonrpc": "2.0", "id": 999_999, "result": 1})).into_response()
        }
    }
}

async fn spawn(handler: impl Fn(&Value) -> Reply + Send + Sync + 'static) -> Stub {
    let state = Arc::new(StubState {
        handler: Arc::new(handler),
        hits: AtomicUsize::new(0),
        bodies: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/", axum::routing::post(handle))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Stub {
        url: Url::parse(&format!("http://{addr}/")).unwrap(),
        state,
    }
}

fn rpc(stubs: &[&Stub], timeout_ms: u64) -> SolanaRpc {
    SolanaRpc::new(
        stubs.iter().map(|s| s.url.clone()).collect(),
        Duration::from_millis(timeout_ms),
    )
}

async fn height_stub() -> Stub {
    spawn(|_| Reply::Result(json!(42))).await
}

#[tokio::test]
async fn fails_over_on_503_and_remembers_the_good_endpoint() {
    let bad = spawn(|_| Reply::Status(503)).await;
    let good = height_stub().await;
    let c = rpc(&[&bad, &good], 2000);
    assert_eq!(c.get_block_height().await, Ok(42));
    assert_eq!((bad.hits(), good.hits()), (1, 1));
    // The next call starts at the endpoint that worked.
    assert_eq!(c.get_block_height().await, Ok(42));
    assert_eq!((bad.hits(), good.hits()), (1, 2));
}

#[tokio::test]
async fn fails_over_on_429_and_node_unhealthy() {
    let limited = spawn(|_| Reply::Status(429)).await;
    let unhealthy = spawn(|_| Reply::Error(NODE_UNHEALTHY, "Node is unhealthy")).await;
    let good = height_stub().await;
    let c = rpc(&[&limited, &unhealthy, &good], 2000);
    assert_eq!(c.get_block_height().await, Ok(42));
    assert_eq!((limited.hits(), unhealthy.hits(), good.hits()), (1, 1, 1));
}

#[tokio::test]
async fn fails_over_when_the_first_endpoint_hangs() {
    let hang = spawn(|_| Reply::Hang).await;
    let good = height_stub().await;
    let c = rpc(&[&hang, &good], 300);
    let t = Instant::now();
    assert_eq!(c.get_block_height().await, Ok(42));
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(good.hits(), 1);
}

#[tokio::test]
async fn fails_over_on_connection_refused() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let good = height_stub().await;
    let c = SolanaRpc::new(
        vec![
            Url::parse(&format!("http://{closed}/")).unwrap(),
            good.url.clone(),
        ],
        Duration::from_secs(2),
    );
    assert_eq!(c.get_block_height().await, Ok(42));
    let only_closed = SolanaRpc::new(
        vec![Url::parse(&format!("http://{closed}/")).unwrap()],
        Duration::from_secs(2),
    );
    assert!(matches!(
        only_closed.get_block_height().await,
        Err(RpcError::Transport(_))
    ));
}

#[tokio::test]
async fn timeout_is_honoured() {
    let hang = spawn(|_| Reply::Hang).await;
    let c = rpc(&[&hang], 300);
    let t = Instant::now();
    assert_eq!(c.get_block_height().await, Err(RpcError::Timeout));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn json_rpc_error_passes_through_without_failover() {
    let first = spawn(|_| Reply::Error(-32602, "Invalid params")).await;
    let second = height_stub().await;
    let c = rpc(&[&first, &second], 2000);
    match c.get_block_height().await {
        Err(RpcError::Rpc {
            code,
            message,
            data,
        }) => {
            assert_eq!(code, -32602);
            assert_eq!(message, "Invalid params");
            assert_eq!(data, Some(json!({"x": 1})));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(second.hits(), 0);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let target = height_stub().await;
    let to = target.url.to_string();
    let redirect = spawn(move |_| Reply::Redirect(to.clone())).await;
    let c = rpc(&[&redirect], 2000);
    assert_eq!(c.get_block_height().await, Err(RpcError::Http(307)));
    assert_eq!(target.hits(), 0);
}

#[tokio::test]
async fn response_size_is_capped() {
    let big = spawn(|_| Reply::Big(64 * 1024)).await;
    let other = height_stub().await;
    let c = rpc(&[&big, &other], 2000).with_max_response_bytes(16 * 1024);
    assert_eq!(c.get_block_height().await, Err(RpcError::TooLarge));
    assert_eq!(
        other.hits(),
        0,
        "an oversized answer is not retried elsewhere"
    );
}

#[tokio::test]
async fn mismatched_id_and_no_endpoint() {
    let s = spawn(|_| Reply::WrongId).await;
    assert!(matches!(
        rpc(&[&s], 2000).get_block_height().await,
        Err(RpcError::Decode(_))
    ));
    let none = SolanaRpc::new(vec![], Duration::from_secs(1));
    assert_eq!(none.get_block_height().await, Err(RpcError::NoEndpoint));
}

fn mint_addr() -> Address {
    Address::new_from_array([0x33; 32])
}

fn typed_handler(body: &Value) -> Reply {
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let ctx = json!({"slot": 7});
    match body["method"].as_str().unwrap_or("") {
        "getLatestBlockhash" => Reply::Result(json!({"context": ctx, "value": {
            "blockhash": Hash::new_from_array([5; 32]).to_string(),
            "lastValidBlockHeight": 1234
        }})),
        "isBlockhashValid" => Reply::Result(json!({"context": ctx, "value": true})),
        "getBlockHeight" => Reply::Result(json!(1000)),
        "getAccountInfo" => {
            if body["params"][0] == json!(mint_addr().to_string()) {
                Reply::Result(json!({"context": ctx, "value": {
                    "data": [b64(&base_mint(6, true)), "base64"],
                    "owner": SPL_TOKEN_PROGRAM.to_string(),
                    "lamports": 1461600, "executable": false, "rentEpoch": 0, "space": 82
                }}))
            } else {
                Reply::Result(json!({"context": ctx, "value": null}))
            }
        }
        "getMultipleAccounts" => Reply::Result(json!({"context": ctx, "value": [
            null,
            {"data": [b64(&[1, 2, 3]), "base64"], "owner": SPL_TOKEN_PROGRAM.to_string(),
             "lamports": 5, "executable": false, "rentEpoch": 0, "space": 3}
        ]})),
        "simulateTransaction" => Reply::Result(json!({"context": ctx, "value": {
            "err": {"InstructionError": [2, {"Custom": 1}]},
            "logs": ["Program log: insufficient funds"],
            "unitsConsumed": 6200, "accounts": null, "returnData": null
        }})),
        "sendTransaction" => Reply::Result(json!(Signature::from([7u8; 64]).to_string())),
        "getSignatureStatuses" => Reply::Result(json!({"context": ctx, "value": [
            {"slot": 99, "confirmations": null, "err": null, "status": {"Ok": null},
             "confirmationStatus": "finalized"},
            null
        ]})),
        "getBalance" => Reply::Result(json!({"context": ctx, "value": 10_000_000_000u64})),
        "getSignaturesForAddress" => Reply::Result(json!([
            {"signature": Signature::from([7u8; 64]).to_string(), "slot": 99, "err": null,
             "memo": "[5] hello", "blockTime": 1_700_000_000, "confirmationStatus": "finalized"},
            {"signature": Signature::from([8u8; 64]).to_string(), "slot": 98,
             "err": {"InstructionError": [0, {"Custom": 1}]}, "memo": null, "blockTime": null,
             "confirmationStatus": "finalized"}
        ])),
        "getTransaction" if body["params"][0] == json!(Signature::from([7u8; 64]).to_string()) => {
            Reply::Result(transaction_json())
        }
        "getTransaction" => Reply::Result(Value::Null),
        _ => Reply::Error(-32601, "Method not found"),
    }
}

/// A v0 transaction as `getTransaction` (`json`) shows it: payTo's token account (index 3)
/// is loaded from a lookup table and absent from `preTokenBalances` (created by the
/// transaction); the source (index 1) loses what it receives.
fn transaction_json() -> Value {
    let key = |b: u8| Address::new_from_array([b; 32]).to_string();
    let balance = |index: u64, owner: u8, amount: &str| {
        json!({"accountIndex": index, "mint": key(0x33), "owner": key(owner),
               "programId": SPL_TOKEN_PROGRAM.to_string(),
               "uiTokenAmount": {"amount": amount, "decimals": 6,
                                 "uiAmount": null, "uiAmountString": "0"}})
    };
    json!({
        "slot": 99, "blockTime": 1_700_000_000, "version": 0,
        "meta": {
            "err": null, "fee": 10_001, "status": {"Ok": null},
            "preBalances": [], "postBalances": [],
            "preTokenBalances": [balance(1, 0x11, "5000")],
            "postTokenBalances": [balance(1, 0x11, "4000"), balance(3, 0x22, "1000")],
            "loadedAddresses": {"writable": [key(0x44)], "readonly": [key(0x55)]},
            "logMessages": null, "rewards": [], "computeUnitsConsumed": 6200
        },
        "transaction": {
            "signatures": [Signature::from([7u8; 64]).to_string()],
            "message": {"accountKeys": [key(1), key(0x45), key(2)], "header": {},
                        "instructions": [], "recentBlockhash": key(5)}
        }
    })
}

#[tokio::test]
async fn audit_methods_build_params_and_parse_results() {
    let s = spawn(typed_handler).await;
    let c = rpc(&[&s], 2000);
    let who = Address::new_from_array([0x22; 32]);

    assert_eq!(c.get_balance(&who).await, Ok(10_000_000_000));
    assert_eq!(s.last_body()["params"][0], who.to_string());

    let page = SignaturePage {
        before: Some("B"),
        until: None,
        limit: 5_000,
        commitment: Commitment::Finalized,
    };
    let entries = c.get_signatures_for_address(&who, &page).await.unwrap();
    let p = &s.last_body()["params"];
    assert_eq!(p[0], who.to_string());
    assert_eq!(
        p[1],
        json!({"limit": 1000, "commitment": "finalized", "before": "B"}),
        "limit clamped to the server's, no `until` sent"
    );
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].memo.as_deref(), Some("[5] hello"));
    assert_eq!(entries[0].block_time, Some(1_700_000_000));
    assert!(entries[0].err.is_none());
    assert!(entries[1].err.is_some());

    let sig = Signature::from([7u8; 64]).to_string();
    let tx = c
        .get_transaction(&sig, Commitment::Finalized)
        .await
        .unwrap()
        .unwrap();
    let p = &s.last_body()["params"];
    assert_eq!(p[1]["maxSupportedTransactionVersion"], 0);
    assert_eq!(p[1]["encoding"], "json");
    assert_eq!(p[1]["commitment"], "finalized");
    assert_eq!(tx.meta.as_ref().unwrap().fee, 10_001);
    // Static keys, then loaded writable, then loaded read-only.
    let key = |b: u8| Address::new_from_array([b; 32]).to_string();
    assert_eq!(
        tx.account_keys(),
        [key(1), key(0x45), key(2), key(0x44), key(0x55)]
    );
    let mint = key(0x33);
    assert_eq!(
        tx.token_delta(&key(0x44), &mint),
        Some(1000),
        "created and credited"
    );
    assert_eq!(tx.token_delta(&key(0x45), &mint), Some(-1000));
    assert_eq!(tx.token_delta(&key(2), &mint), Some(0), "untouched");
    assert_eq!(
        tx.token_delta(&key(0x44), &key(0x99)),
        Some(0),
        "another mint"
    );
    assert_eq!(
        c.get_transaction(
            &Signature::from([1u8; 64]).to_string(),
            Commitment::Confirmed
        )
        .await,
        Ok(None)
    );
}

#[tokio::test]
async fn errors_and_logs_never_carry_the_endpoint_url() {
    // An API key in the path and in the query, on a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = Url::parse(&format!(
        "http://{closed}/v2/s3cr3t-path?api-key=s3cr3t-query"
    ))
    .unwrap();
    let c = SolanaRpc::new(vec![url], Duration::from_secs(2));
    let e = c.get_block_height().await.unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(matches!(e, RpcError::Transport(_)), "{shown}");
    assert!(!shown.contains("s3cr3t"), "{shown}");
}

#[tokio::test]
async fn typed_methods_build_params_and_parse_results() {
    let s = spawn(typed_handler).await;
    let c = rpc(&[&s], 2000);

    assert_eq!(
        c.get_latest_blockhash().await,
        Ok((Hash::new_from_array([5; 32]), 1234))
    );
    assert_eq!(s.last_body()["params"][0]["commitment"], "confirmed");
    assert_eq!(
        c.is_blockhash_valid(&Hash::new_from_array([5; 32])).await,
        Ok(true)
    );
    assert_eq!(c.get_block_height().await, Ok(1000));

    let acct = c.get_account_info(&mint_addr()).await.unwrap().unwrap();
    assert_eq!(acct.owner, SPL_TOKEN_PROGRAM);
    assert_eq!(acct.lamports, 1461600);
    assert_eq!(acct.data, base_mint(6, true));
    assert_eq!(s.last_body()["params"][1]["encoding"], "base64");
    assert_eq!(
        c.get_account_info(&Address::new_from_array([1; 32])).await,
        Ok(None)
    );

    let many = c
        .get_multiple_accounts(&[Address::new_from_array([1; 32]), mint_addr()])
        .await
        .unwrap();
    assert_eq!(many.len(), 2);
    assert!(many[0].is_none());
    assert_eq!(many[1].as_ref().unwrap().data, vec![1, 2, 3]);

    let sim = c
        .simulate_transaction(&[1, 2, 3], false, false)
        .await
        .unwrap();
    assert_eq!(sim.units_consumed, Some(6200));
    assert_eq!(
        sim.logs,
        vec!["Program log: insufficient funds".to_string()]
    );
    assert!(crate::svm::simulation_result(sim.err.as_ref(), &sim.logs).is_err());
    let p = &s.last_body()["params"];
    assert_eq!(p[0], "AQID");
    assert_eq!(p[1]["sigVerify"], false);
    assert_eq!(p[1]["replaceRecentBlockhash"], false);
    assert_eq!(p[1]["encoding"], "base64");

    let sig = c.send_transaction(&[1, 2, 3], true).await.unwrap();
    assert_eq!(sig, Signature::from([7u8; 64]));
    let p = &s.last_body()["params"];
    assert_eq!(p[1]["skipPreflight"], true);
    assert_eq!(p[1]["maxRetries"], 0);
    assert_eq!(p[1]["encoding"], "base64");

    let statuses = c
        .get_signature_statuses(&[Signature::from([7u8; 64]), Signature::from([8u8; 64])])
        .await
        .unwrap();
    let first = statuses[0].as_ref().unwrap();
    assert_eq!(first.slot, 99);
    assert!(first.is_confirmed() && first.err.is_none());
    assert!(statuses[1].is_none());

    // A count mismatch is a decode error, not silently truncated.
    assert!(matches!(
        c.get_signature_statuses(&[Signature::from([7u8; 64])])
            .await,
        Err(RpcError::Decode(_))
    ));
}

#[tokio::test]
async fn mint_cache_fetches_once_per_ttl() {
    let s = spawn(typed_handler).await;
    let c = rpc(&[&s], 2000);
    let cache = MintCache::new(Duration::from_secs(600));
    let info = cache.get(&c, &mint_addr()).await.unwrap();
    assert_eq!(info.decimals, 6);
    assert_eq!(info.token_program, SPL_TOKEN_PROGRAM);
    assert_eq!(cache.get(&c, &mint_addr()).await.unwrap(), info);
    assert_eq!(s.hits(), 1);
    assert_eq!(
        cache.get(&c, &Address::new_from_array([1; 32])).await,
        Err(MintError::NotFound(Address::new_from_array([1; 32])))
    );
    assert_eq!(cache.len(), 1);

    let expired = MintCache::new(Duration::ZERO);
    expired.get(&c, &mint_addr()).await.unwrap();
    expired.get(&c, &mint_addr()).await.unwrap();
    assert_eq!(s.hits(), 4);
}
