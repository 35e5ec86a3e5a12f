//! A loopback server speaking the gateway's credits contract (issue 14), in front of a real paid
//! gateway, for the client's credits commands until the gateway serves `/v1/credits/*` itself:
//!
//! - `POST /v1/credits/topup {"pack"}`: an ordinary `exact` route; the payment is settled for
//!   real through the gateway's facilitator endpoints on the local cluster, and the payer is
//!   credited once per settled transaction;
//! - `POST /v1/credits/session`: the gateway's own SIWX machinery (`siwx::Verifier`: challenge,
//!   proof check, nonce spent once) → a random bearer token for an hour;
//! - `GET /v1/credits/balance` with the token;
//! - `POST /v1/x402/solana/devnet/rpc`: with a good token and enough credits, the call goes to
//!   the cluster and costs [`PRICE_PER_CALL`] credits per JSON-RPC call (`X-Credits-Remaining`);
//!   otherwise it is relayed to the paid gateway (its 402, its per-call payment), the 402's body
//!   error being `insufficient_balance` when the token was good but the balance too low.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{json, Value};
use solana_signer::Signer;
use url::Url;
use x402_gateway::config::SiwxConfig;
use x402_gateway::siwx::time::{format_rfc3339_ms, now_ms};
use x402_gateway::siwx::{NonceKey, PublicOrigin, SiwxProof, Verifier};
use x402_gateway::x402::network::SOLANA_DEVNET;
use x402_gateway::x402::{
    decode_header, encode_header, PaymentPayload, PaymentRequired, PaymentRequirements,
    ResourceInfo, SettleResponse,
};

use super::{Served, FACILITATOR_SECRET};

/// Credits one JSON-RPC call costs on the stub.
pub(crate) const PRICE_PER_CALL: u64 = 1;

/// The packs on sale: (name, price in atomic units, credits).
pub(crate) const PACKS: &[(&str, u64, u64)] = &[("small", 3000, 3000), ("tiny", 1000, 2)];

pub(crate) struct CreditsStub {
    pub(crate) base: String,
    state: Arc<StubState>,
}

struct StubState {
    base: String,
    gateway: String,
    rpc: String,
    facilitator: String,
    pay_to: String,
    mint: String,
    fee_payer: String,
    verifier: Verifier,
    http: reqwest::Client,
    balances: Mutex<HashMap<String, u64>>,
    /// token → (wallet, expires at ms).
    sessions: Mutex<HashMap<String, (String, i64)>>,
    spent_nonces: Mutex<HashSet<String>>,
    credited: Mutex<HashSet<String>>,
    sign_ins: Mutex<u32>,
}

impl CreditsStub {
    pub(crate) async fn start(served: &Served) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let cluster = served.cluster();
        let verifier = Verifier::new(
            &SiwxConfig::default(),
            PublicOrigin::new(&Url::parse(&base).unwrap()),
            NonceKey::from_secret("stub-siwx-secret"),
        );
        let state = Arc::new(StubState {
            base: base.clone(),
            gateway: served.base.clone(),
            rpc: served.rpc_url(),
            facilitator: format!("{}/api/internal/facilitator", served.base),
            pay_to: cluster.pay_to().to_string(),
            mint: cluster.mint().to_string(),
            fee_payer: cluster.fee_payers()[0].keypair.pubkey().to_string(),
            verifier,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                .build()
                .unwrap(),
            balances: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            spent_nonces: Mutex::new(HashSet::new()),
            credited: Mutex::new(HashSet::new()),
            sign_ins: Mutex::new(0),
        });
        let app = Router::new()
            .route("/v1/credits/topup", post(topup))
            .route("/v1/credits/session", post(session))
            .route("/v1/credits/balance", get(balance))
            .route("/v1/x402/solana/devnet/rpc", post(paid_route))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Self { base, state }
    }

    /// The stub's paid JSON-RPC route.
    pub(crate) fn jsonrpc_url(&self) -> String {
        format!("{}/v1/x402/solana/devnet/rpc", self.base)
    }

    pub(crate) fn balance(&self, wallet: &str) -> u64 {
        self.state.balances.lock().get(wallet).copied().unwrap_or(0)
    }

    /// Sign-ins completed so far.
    pub(crate) fn sign_ins(&self) -> u32 {
        *self.state.sign_ins.lock()
    }

    /// Every session expires now (the server stops taking the tokens).
    pub(crate) fn expire_sessions(&self) {
        for (_, expiry) in self.state.sessions.lock().values_mut() {
            *expiry = 0;
        }
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn challenge(required: &PaymentRequired, body: Value) -> Response {
    let mut response = (StatusCode::PAYMENT_REQUIRED, Json(body)).into_response();
    response.headers_mut().insert(
        "payment-required",
        HeaderValue::from_str(&encode_header(required)).unwrap(),
    );
    response
}

/// The wallet of a good bearer token.
fn wallet_of(state: &StubState, headers: &HeaderMap) -> Option<String> {
    let token = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let sessions = state.sessions.lock();
    let (wallet, expires) = sessions.get(token)?;
    (*expires > now_ms()).then(|| wallet.clone())
}

async fn topup(State(s): State<Arc<StubState>>, headers: HeaderMap, body: Bytes) -> Response {
    let name = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b["pack"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let Some(&(pack, price, credits)) = PACKS.iter().find(|(n, _, _)| *n == name) else {
        return error(StatusCode::BAD_REQUEST, "unknown_pack", "no such pack");
    };
    let requirements: PaymentRequirements = serde_json::from_value(json!({
        "scheme": "exact", "network": SOLANA_DEVNET, "amount": price.to_string(),
        "asset": s.mint, "payTo": s.pay_to, "maxTimeoutSeconds": 60,
        "extra": {"feePayer": s.fee_payer},
    }))
    .unwrap();
    let required = PaymentRequired {
        x402_version: 2,
        error: Some("Payment required".into()),
        resource: ResourceInfo {
            url: format!("{}/v1/credits/topup", s.base),
            description: format!("credits pack {pack}"),
            mime_type: "application/json".into(),
        },
        accepts: vec![requirements.clone()],
        extensions: None,
    };
    let Some(payment) = headers.get("payment-signature") else {
        return challenge(&required, json!({"error": "payment_required"}));
    };
    let Ok(payload) = decode_header::<PaymentPayload>(payment.as_bytes(), 16 * 1024) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_payload",
            "unreadable payment",
        );
    };
    if payload.accepted.matches(&requirements).is_err() {
        return challenge(&required, json!({"error": "invalid_payment_requirements"}));
    }
    let settled: SettleResponse = match s
        .http
        .post(format!("{}/settle", s.facilitator))
        .header("x-facilitator-secret", FACILITATOR_SECRET)
        .json(&json!({"x402Version": 2, "paymentPayload": payload, "paymentRequirements": requirements}))
        .send()
        .await
    {
        Ok(r) => r.json().await.unwrap(),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, "payment_unavailable", &e.to_string()),
    };
    let receipt = HeaderValue::from_str(&encode_header(&settled)).unwrap();
    if !settled.success {
        let mut response = (StatusCode::PAYMENT_REQUIRED, Json(json!({}))).into_response();
        response.headers_mut().insert("payment-response", receipt);
        return response;
    }
    let wallet = settled.payer.clone().unwrap_or_default();
    let balance = {
        let mut balances = s.balances.lock();
        let entry = balances.entry(wallet.clone()).or_insert(0);
        if s.credited.lock().insert(settled.transaction.clone()) {
            *entry += credits;
        }
        *entry
    };
    let mut response = Json(json!({
        "wallet": wallet, "pack": pack, "credits_added": credits, "balance": balance,
    }))
    .into_response();
    response.headers_mut().insert("payment-response", receipt);
    response
}

async fn session(State(s): State<Arc<StubState>>, headers: HeaderMap) -> Response {
    let url = format!("{}/v1/credits/session", s.base);
    let Some(header) = headers.get("sign-in-with-x") else {
        let required = PaymentRequired {
            x402_version: 2,
            error: Some("Sign in with your wallet".into()),
            resource: ResourceInfo {
                url: url.clone(),
                description: "credits session".into(),
                mime_type: "application/json".into(),
            },
            accepts: vec![],
            extensions: Some(
                json!({"sign-in-with-x": s.verifier.challenge(&url, now_ms())})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        };
        return challenge(&required, json!({"error": "sign_in_required"}));
    };
    let verified = SiwxProof::from_header(header.as_bytes())
        .map_err(|e| e.to_string())
        .and_then(|proof| {
            s.verifier
                .verify(&proof, &url, now_ms())
                .map_err(|e| e.to_string())
        });
    let verified = match verified {
        Ok(v) => v,
        Err(e) => return error(StatusCode::UNAUTHORIZED, "siwx_invalid", &e),
    };
    if !s.spent_nonces.lock().insert(verified.nonce.clone()) {
        return error(StatusCode::UNAUTHORIZED, "siwx_nonce_reused", "nonce spent");
    }
    let token = hex::encode(rand::random::<[u8; 24]>());
    let expires = now_ms() + 3_600_000;
    s.sessions
        .lock()
        .insert(token.clone(), (verified.address.clone(), expires));
    *s.sign_ins.lock() += 1;
    let balance = s
        .balances
        .lock()
        .get(&verified.address)
        .copied()
        .unwrap_or(0);
    Json(json!({
        "token": token,
        "expires_at": format_rfc3339_ms(expires),
        "wallet": verified.address,
        "balance": balance,
    }))
    .into_response()
}

async fn balance(State(s): State<Arc<StubState>>, headers: HeaderMap) -> Response {
    match wallet_of(&s, &headers) {
        Some(wallet) => {
            let balance = s.balances.lock().get(&wallet).copied().unwrap_or(0);
            Json(json!({"wallet": wallet, "balance": balance})).into_response()
        }
        None => error(StatusCode::UNAUTHORIZED, "invalid_token", "no session"),
    }
}

async fn paid_route(State(s): State<Arc<StubState>>, headers: HeaderMap, body: Bytes) -> Response {
    let wallet = wallet_of(&s, &headers);
    let calls = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => items.len() as u64,
        _ => 1,
    };
    let price = calls * PRICE_PER_CALL;
    if let Some(wallet) = &wallet {
        let reserved = {
            let mut balances = s.balances.lock();
            let entry = balances.entry(wallet.clone()).or_insert(0);
            (*entry >= price).then(|| {
                *entry -= price;
                *entry
            })
        };
        if let Some(remaining) = reserved {
            let answer = s
                .http
                .post(&s.rpc)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            let answer = match answer {
                Ok(a) if a.status().is_success() => a.bytes().await.unwrap(),
                _ => {
                    // Charge only on success: the reservation comes back.
                    *s.balances.lock().get_mut(wallet).unwrap() += price;
                    return error(StatusCode::BAD_GATEWAY, "upstream_failed", "cluster");
                }
            };
            let mut response = (StatusCode::OK, answer).into_response();
            let headers = response.headers_mut();
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            headers.insert("x-credits-remaining", remaining.into());
            return response;
        }
    }
    // Not served with credits: the paid gateway answers (challenge or per-call payment).
    let mut relay = s
        .http
        .post(format!("{}/v1/x402/solana/devnet/rpc", s.gateway))
        .header("content-type", "application/json")
        .body(body);
    if let Some(payment) = headers.get("payment-signature") {
        relay = relay.header("payment-signature", payment);
    }
    let answer = relay.send().await.unwrap();
    let status = answer.status();
    let mut out = HeaderMap::new();
    for name in ["content-type", "payment-required", "payment-response"] {
        if let Some(v) = answer.headers().get(name) {
            out.insert(name, v.clone());
        }
    }
    let mut body = answer.bytes().await.unwrap();
    if status == StatusCode::PAYMENT_REQUIRED && wallet.is_some() {
        body = Bytes::from(
            json!({"error": {"code": "insufficient_balance", "message": "the balance does not cover this call"}})
                .to_string(),
        );
    }
    (status, out, body).into_response()
}
