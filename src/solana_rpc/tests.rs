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
        _ => Reply::Error(-32601, "Method not found"),
    }
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
