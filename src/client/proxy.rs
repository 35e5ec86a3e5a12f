//! `x402-pay proxy`: a local, unpaid JSON-RPC endpoint that forwards every request (single or
//! batch, any body) to a paid gateway and pays behind the scenes, so an unmodified Solana tool
//! (the `solana` CLI, web3.js, Anchor, a bot) can use the gateway.
//!
//! Each request is sent as is; the gateway's answer goes back as is (status, body), whatever
//! it is, including the gateway's own JSON-RPC errors. Only when this side cannot or will not
//! pay (the spend cap, the per-call cap, a refused or failed payment, the gateway unreachable)
//! does the tool get an answer made here: HTTP 200 with a JSON-RPC error per request (code
//! [`PAYMENT_ERROR_CODE`], `error.data.reason` the cause), so it reports the reason instead
//! of retrying or hanging. One line per call goes to the log: the methods, how it was paid,
//! the price and the running total.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use url::Url;

use super::assets::usd;
use super::budget::Budget;
use super::call::{self, Answer, Http, Paid, Paying, Request};
use super::challenge::OfferFilter;
use super::credits::{Bought, Outcome, Spender};
use super::error::ClientError;
use super::payer::Payer;

/// The JSON-RPC error code of a call this proxy did not pay for (the implementation-defined
/// server-error range).
pub const PAYMENT_ERROR_CODE: i64 = -32042;

/// Where each progress line goes.
pub type Log = Arc<dyn Fn(String) + Send + Sync>;

/// What the proxy needs.
pub struct Proxy {
    /// The gateway's JSON-RPC URL.
    pub upstream: Url,
    /// HTTP with timeouts.
    pub http: Http,
    /// The wallet.
    pub payer: Arc<Payer>,
    /// The caps.
    pub budget: Budget,
    /// Which offers to take.
    pub filter: OfferFilter,
    /// Credits, when a session is (or may be) available.
    pub spender: Option<Spender>,
    /// Progress lines.
    pub log: Log,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("upstream", &self.upstream.as_str())
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

/// Serves `proxy` on `listener` until `shutdown` resolves.
pub async fn serve(
    proxy: Proxy,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = Arc::new(proxy);
    let app = Router::new()
        .route("/", post(forward))
        .fallback(forward_any)
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Any path takes POSTs too (some tools append a path); other methods get 405.
async fn forward_any(
    state: State<Arc<Proxy>>,
    method: axum::http::Method,
    body: Bytes,
) -> Response {
    if method != axum::http::Method::POST {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "POST")],
            "x402-pay proxy: JSON-RPC over POST only\n",
        )
            .into_response();
    }
    forward(state, body).await
}

async fn forward(State(proxy): State<Arc<Proxy>>, body: Bytes) -> Response {
    let calls = Calls::of(&body);
    let request = Request::post(proxy.upstream.clone(), body);
    let paying = Paying {
        payer: &proxy.payer,
        budget: &proxy.budget,
        filter: &proxy.filter,
    };
    let result = match &proxy.spender {
        Some(spender) => {
            let log = proxy.log.clone();
            let cap = proxy.budget.total_max();
            let on_topup = move |b: &Bought| {
                log(format!(
                    "top-up   {} +{} credits (balance {}) paid {}  total {}",
                    b.topup.pack,
                    b.topup.credits_added,
                    b.topup.balance,
                    price(&b.paid),
                    total(b.paid.spent, cap)
                ))
            };
            let result = spender
                .serve(&proxy.http, paying, &request, &on_topup)
                .await;
            if let Some(why) = spender.take_off_reason() {
                (proxy.log)(format!("credits off for this run, paying per call: {why}"));
            }
            result
        }
        None => call::call(&proxy.http, paying, &request)
            .await
            .map(|paid| Outcome::Exact(Box::new(paid))),
    };
    let cap = proxy.budget.total_max();
    match result {
        Ok(Outcome::Credits { answer, remaining }) => {
            let left = remaining.map_or("?".into(), |r| r.to_string());
            (proxy.log)(format!(
                "{:<8} {} credits (remaining {left}){}",
                "call",
                calls.methods,
                status_note(&answer)
            ));
            relay(answer)
        }
        Ok(Outcome::Exact(paid)) => {
            let how = if paid.offer.is_some() {
                format!("paid {}", price(&paid))
            } else {
                "free".into()
            };
            (proxy.log)(format!(
                "{:<8} {} {how}  total {}{}",
                "call",
                calls.methods,
                total(paid.spent, cap),
                status_note(&paid.answer)
            ));
            relay(paid.answer)
        }
        Err(e) => {
            (proxy.log)(format!(
                "{:<8} {} NOT PAID: {e}  total {}",
                "refused",
                calls.methods,
                total(proxy.budget.spent(), cap)
            ));
            calls.error(&e)
        }
    }
}

/// `1000 ($0.001)` for a paid call.
fn price(paid: &Paid) -> String {
    let Some(offer) = &paid.offer else {
        return "0".into();
    };
    match offer
        .amount
        .parse()
        .ok()
        .and_then(|a| usd(&offer.network, &offer.asset, a))
    {
        Some(dollars) => format!("{} ({dollars})", offer.amount),
        None => offer.amount.clone(),
    }
}

fn total(spent: u64, cap: Option<u64>) -> String {
    match cap {
        Some(cap) => format!("{spent}/{cap}"),
        None => spent.to_string(),
    }
}

fn status_note(answer: &Answer) -> String {
    if answer.status.is_success() {
        String::new()
    } else {
        format!("  (gateway answered {})", answer.status)
    }
}

/// The gateway's answer, as the tool gets it.
fn relay(answer: Answer) -> Response {
    let mut response = Response::new(axum::body::Body::from(answer.body));
    *response.status_mut() = answer.status;
    let content_type = answer
        .headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("application/json"));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

/// The JSON-RPC calls of one body: their methods (for the log) and ids (for errors).
struct Calls {
    methods: String,
    /// Ids of the calls that expect an answer; `None` for a single call with no id.
    ids: Vec<Value>,
    batch: bool,
}

impl Calls {
    fn of(body: &[u8]) -> Self {
        let method = |v: &Value| v["method"].as_str().unwrap_or("?").to_string();
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(items)) => Self {
                methods: format!(
                    "[{}]",
                    items.iter().map(method).collect::<Vec<_>>().join(",")
                ),
                ids: items.iter().filter_map(|i| i.get("id").cloned()).collect(),
                batch: true,
            },
            Ok(v) => Self {
                methods: method(&v),
                ids: vec![v.get("id").cloned().unwrap_or(Value::Null)],
                batch: false,
            },
            Err(_) => Self {
                methods: "(not JSON)".into(),
                ids: vec![Value::Null],
                batch: false,
            },
        }
    }

    /// A JSON-RPC error for every call, HTTP 200 (tools read the error object of a 200).
    fn error(&self, e: &ClientError) -> Response {
        let one = |id: &Value| {
            json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": {
                    "code": PAYMENT_ERROR_CODE,
                    "message": format!("x402-pay proxy: not paid: {e}"),
                    "data": {"reason": e.reason()},
                }
            })
        };
        let body = if self.batch {
            Value::Array(self.ids.iter().map(one).collect())
        } else {
            one(self.ids.first().unwrap_or(&Value::Null))
        };
        (StatusCode::OK, axum::Json(body)).into_response()
    }
}

/// Binds `listen` (reported, so `:0` can be used).
pub async fn bind(listen: SocketAddr) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_of_single_batch_and_garbage_bodies() {
        let single = Calls::of(br#"{"jsonrpc":"2.0","id":7,"method":"getSlot"}"#);
        assert_eq!(single.methods, "getSlot");
        assert_eq!(single.ids, vec![json!(7)]);
        let batch = Calls::of(
            br#"[{"jsonrpc":"2.0","id":1,"method":"getSlot"},{"jsonrpc":"2.0","method":"n"},{"jsonrpc":"2.0","id":"b","method":"getBalance"}]"#,
        );
        assert_eq!(batch.methods, "[getSlot,n,getBalance]");
        assert_eq!(
            batch.ids,
            vec![json!(1), json!("b")],
            "notifications get no answer"
        );
        let garbage = Calls::of(b"{nope");
        assert_eq!(garbage.ids, vec![Value::Null]);
    }
}
