//! `[[services]]`: a loopback HTTP API mounted as a service, with free, paid and sign-in routes,
//! credentials injected upstream, paid routes through the real payment pipeline on the local
//! cluster.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use base64::Engine as _;
use http_body_util::BodyExt;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::Notify;
use x402_gateway::x402::{decode_header, PaymentRequired};

use crate::common::app::split;
use crate::common::gateway::PaidGateway;
use crate::common::loopback;

const TOKEN: &str = "svc-bearer-s3cret";
const KEY: &str = "svc-header-s3cret";
const APPID: &str = "svc-query-s3cret";
const PASSWORD: &str = "svc-basic-s3cret";
/// "0.01" USD in a 6-decimal asset.
const PRICE: u64 = 10_000;
/// The streamed answer: two chunks of this size.
const CHUNK: usize = 1024 * 1024;

/// One request the API received.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Default)]
struct Api {
    seen: Mutex<Vec<Seen>>,
    /// Released by the test once it has read the first chunk of the streamed answer.
    go_on: Notify,
}

/// A small HTTP API on loopback that records every request and echoes the credentials back in
/// its *headers* (never its body), to prove the gateway relays no upstream header.
async fn start_api() -> (String, Arc<Api>) {
    let api = Arc::new(Api::default());
    async fn record(State(api): State<Arc<Api>>, request: Request<Body>) -> Request<Body> {
        let (parts, body) = request.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        api.seen.lock().push(Seen {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
            body: body.clone(),
        });
        Request::from_parts(parts, Body::from(body))
    }
    async fn echo(state: State<Arc<Api>>, request: Request<Body>) -> Response {
        let request = record(state, request).await;
        let mut response = Json(json!({"ok": true, "path": request.uri().path()})).into_response();
        for (name, value) in request.headers() {
            if let Ok(name) =
                axum::http::HeaderName::from_bytes(format!("x-echo-{name}").as_bytes())
            {
                response.headers_mut().insert(name, value.clone());
            }
        }
        response
            .headers_mut()
            .insert("set-cookie", "session=upstream".parse().unwrap());
        response
    }
    async fn item(
        state: State<Arc<Api>>,
        Path(id): Path<String>,
        request: Request<Body>,
    ) -> Response {
        let request = record(state, request).await;
        let body = request.into_body().collect().await.unwrap().to_bytes();
        let sent: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Json(json!({"id": id, "name": "widget", "sent": sent})).into_response()
    }
    async fn fail(state: State<Arc<Api>>, request: Request<Body>) -> Response {
        record(state, request).await;
        (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()
    }
    async fn big(State(api): State<Arc<Api>>, request: Request<Body>) -> Response {
        let api2 = api.clone();
        record(State(api), request).await;
        let chunks = futures::stream::unfold(0u8, move |n| {
            let api = api2.clone();
            async move {
                match n {
                    0 => Some((Ok::<_, std::io::Error>(Bytes::from(vec![b'a'; CHUNK])), 1)),
                    1 => {
                        // The second half only once the client holds the first: a gateway
                        // that buffered the whole answer would never release it.
                        api.go_on.notified().await;
                        Some((Ok(Bytes::from(vec![b'b'; CHUNK])), 2))
                    }
                    _ => None,
                }
            }
        });
        ([("content-type", "text/plain")], Body::from_stream(chunks)).into_response()
    }
    use axum::Json;
    let app = Router::new()
        .route("/api/v1/echo", any(echo))
        .route("/api/v1/items/{id}", any(item))
        .route("/api/v1/fail", get(fail))
        .route("/api/v1/big", get(big))
        .route("/api/v1/me", get(echo))
        .fallback(any(echo))
        .with_state(api.clone());
    (format!("http://{}/api", loopback::serve(app).await), api)
}

fn services_toml(url: &str) -> String {
    format!(
        r#"
[[services]]
id = "echo"
base_url = "{url}"
title = "Echo API"
description = "A loopback API for the tests."
docs_url = "https://docs.example/echo"
forward_headers = ["accept-language"]
timeout_ms = 5000
max_response_bytes = 4194304
[services.credentials]
bearer_env = "SVC_TOKEN"
headers = {{ "x-api-key" = "SVC_KEY" }}
query = {{ name = "appid", env = "SVC_APPID" }}
[services.routes]
"GET /v1/echo" = "free"
"GET /v1/items/:id" = "0.01"
"POST /v1/items/{{id}}" = {{ price = "0.01", description = "Update an item", input_schema = {{ type = "object", properties = {{ name = {{ type = "string" }} }} }} }}
"GET /v1/fail" = 10000
"GET /v1/big" = "free"
"GET /v1/me" = "siwx"

[[services]]
id = "basic"
base_url = "{url}"
title = "Basic auth API"
[services.credentials]
basic = {{ username = "gateway", password_env = "SVC_PASSWORD" }}
[services.routes]
"GET /v1/echo" = "free"
"#
    )
}

struct Env {
    gw: PaidGateway,
    api: Arc<Api>,
}

async fn start() -> Env {
    let (url, api) = start_api().await;
    let gw = PaidGateway::builder()
        .public_base_url("https://gateway.example")
        .sections(&services_toml(&url))
        .env("SVC_TOKEN", TOKEN)
        .env("SVC_KEY", KEY)
        .env("SVC_APPID", APPID)
        .env("SVC_PASSWORD", PASSWORD)
        .build()
        .await;
    Env { gw, api }
}

impl Env {
    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Value, Response<()>) {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        split(
            self.gw
                .app
                .send(request.body(Body::from(body.to_owned())).unwrap())
                .await,
        )
        .await
    }

    fn calls(&self) -> usize {
        self.api.seen.lock().len()
    }

    fn last(&self) -> Seen {
        self.api
            .seen
            .lock()
            .last()
            .cloned()
            .expect("the API was called")
    }
}

/// Every secret, to look for in what the client got back.
fn assert_no_secret(head: &Response<()>, body: &Value) {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("gateway:{PASSWORD}"));
    for secret in [TOKEN, KEY, APPID, PASSWORD, basic.as_str()] {
        for (name, value) in head.headers() {
            assert!(
                !value.to_str().unwrap_or("").contains(secret),
                "{name} leaks a credential"
            );
        }
        assert!(
            !body.to_string().contains(secret),
            "the body leaks a credential"
        );
    }
}

#[tokio::test]
async fn credentials_are_injected_upstream_and_never_relayed() {
    let env = start().await;
    let (status, body, head) = env
        .send(
            "GET",
            "/echo/v1/echo?q=1&appid=client-chosen",
            &[
                ("authorization", "Bearer client-token"),
                ("x-api-key", "client-key"),
                ("cookie", "sid=client"),
                ("accept-language", "fr"),
                ("x-other", "not forwarded"),
                ("x-forwarded-for", "10.0.0.1"),
            ],
            "",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"ok": true, "path": "/api/v1/echo"}));
    let seen = env.last();
    assert_eq!(seen.uri.path(), "/api/v1/echo");
    assert_eq!(
        seen.uri.query(),
        Some(format!("q=1&appid={APPID}").as_str()),
        "the client's appid is dropped, ours appended"
    );
    assert_eq!(seen.headers["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(seen.headers["x-api-key"], KEY);
    assert_eq!(
        seen.headers["accept-language"], "fr",
        "named by forward_headers"
    );
    for absent in ["cookie", "x-other", "x-forwarded-for"] {
        assert!(seen.headers.get(absent).is_none(), "{absent} was forwarded");
    }
    // The API echoed every header it got (credentials included) and set a cookie: none of it
    // comes back.
    assert_no_secret(&head, &body);
    assert!(head.headers().get("set-cookie").is_none());
    assert!(head
        .headers()
        .keys()
        .all(|k| !k.as_str().starts_with("x-echo-")));
    assert_eq!(head.headers()["content-type"], "application/json");

    let (status, body, head) = env.send("GET", "/basic/v1/echo", &[], "").await;
    assert_eq!(status, 200, "{body}");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("gateway:{PASSWORD}"));
    assert_eq!(
        env.last().headers["authorization"],
        format!("Basic {basic}")
    );
    assert_no_secret(&head, &body);
}

#[tokio::test]
async fn unknown_routes_and_escapes_never_reach_the_upstream() {
    let env = start().await;
    for (method, path, expected, code) in [
        ("GET", "/echo/v1/nope", 404, "route_not_found"),
        ("DELETE", "/echo/v1/echo", 404, "route_not_found"),
        ("GET", "/echo", 404, "route_not_found"),
        ("GET", "/echo/v1/%2e%2e/%2e%2e/admin", 400, "invalid_path"),
        ("GET", "/echo/v1/../../admin", 400, "invalid_path"),
        // An encoded `/` is a `/` (how a generated client sends a catch-all): here it makes a
        // path no route has, and encoded it cannot smuggle a `..` or an empty segment.
        ("GET", "/echo/v1/items/a%2fb", 404, "route_not_found"),
        (
            "GET",
            "/echo/v1/%2e%2e%2F%2e%2e%2Fadmin",
            400,
            "invalid_path",
        ),
        ("GET", "/echo/v1%2F%2Fecho", 400, "invalid_path"),
        ("GET", "/echo/v1//echo", 400, "invalid_path"),
    ] {
        let (status, body, _) = env.send(method, path, &[], "").await;
        assert_eq!(status, expected, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], code, "{method} {path}");
    }
    // A body that is not JSON is refused before the payment is even asked for.
    let (status, body, head) = env
        .send(
            "POST",
            "/echo/v1/items/7",
            &[("content-type", "text/plain")],
            "x",
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    assert!(!head.headers().contains_key("payment-required"));
    assert_eq!(env.calls(), 0, "nothing reached the upstream");
}

/// The challenge of a GET route, decoded.
async fn challenge(env: &Env, path: &str) -> PaymentRequired {
    let (status, body, head) = env.send("GET", path, &[], "").await;
    assert_eq!(status, 402, "{body}");
    decode_header(head.headers()["payment-required"].as_bytes(), 16 * 1024).unwrap()
}

#[tokio::test]
async fn a_paid_route_answers_402_then_200_after_a_real_payment_settled_once() {
    let env = start().await;
    let path = "/echo/v1/items/7";
    let required = challenge(&env, path).await;
    assert_eq!(env.calls(), 0, "a challenge calls nothing");
    assert_eq!(required.accepts[0].amount, PRICE.to_string(), "0.01 USD");
    assert_eq!(
        required.resource.url,
        format!("https://gateway.example{path}")
    );
    let bazaar = &required.extensions.as_ref().unwrap()["bazaar"];
    assert_eq!(bazaar["info"]["input"]["method"], "GET");
    assert_eq!(bazaar["routeTemplate"], "/echo/v1/items/:id");

    let accepted = serde_json::to_value(&required.accepts[0]).unwrap();
    let fixture = env.gw.fixture(PRICE, 1);
    let payment = PaidGateway::header(&accepted, &fixture);
    let before = env.gw.balances();
    let (status, body, head) = env
        .send("GET", path, &[("payment-signature", &payment)], "")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], "7");
    assert!(head.headers().contains_key("payment-response"));
    assert_no_secret(&head, &body);
    let after = env.gw.balances();
    assert_eq!(after.0, before.0 - PRICE, "the client paid the price");
    assert_eq!(after.1, before.1 + PRICE, "payTo got it");
    assert_eq!(env.calls(), 1);

    // The same payment again: the kept answer, no second upstream call, no second settlement.
    let (status, again, _) = env
        .send("GET", path, &[("payment-signature", &payment)], "")
        .await;
    assert_eq!(status, 200);
    assert_eq!(again, body);
    assert_eq!(env.calls(), 1);
    assert_eq!(env.gw.balances(), after);
}

#[tokio::test]
async fn a_paid_post_carries_its_body_and_its_schema() {
    let env = start().await;
    let path = "/echo/v1/items/9";
    let (status, _, head) = env
        .send(
            "POST",
            path,
            &[("content-type", "application/json")],
            r#"{"name":"x"}"#,
        )
        .await;
    assert_eq!(status, 402);
    let required: PaymentRequired =
        decode_header(head.headers()["payment-required"].as_bytes(), 16 * 1024).unwrap();
    let bazaar = &required.extensions.as_ref().unwrap()["bazaar"];
    assert_eq!(bazaar["info"]["input"]["bodyType"], "json");
    assert_eq!(
        bazaar["schema"]["properties"]["input"]["properties"]["body"]["properties"]["name"]["type"],
        "string"
    );
    let accepted = serde_json::to_value(&required.accepts[0]).unwrap();
    let payment = PaidGateway::header(&accepted, &env.gw.fixture(PRICE, 2));
    let (status, body, _) = env
        .send(
            "POST",
            path,
            &[
                ("payment-signature", &payment),
                ("content-type", "application/json"),
            ],
            r#"{"name":"x"}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sent"], json!({"name": "x"}));
    let seen = env.last();
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.headers["content-type"], "application/json");
    assert_eq!(&seen.body[..], br#"{"name":"x"}"#);
}

#[tokio::test]
async fn an_upstream_5xx_is_not_charged() {
    let env = start().await;
    let path = "/echo/v1/fail";
    let required = challenge(&env, path).await;
    let accepted = serde_json::to_value(&required.accepts[0]).unwrap();
    let payment = PaidGateway::header(&accepted, &env.gw.fixture(PRICE, 3));
    let before = env.gw.balances();
    let (status, body, head) = env
        .send("GET", path, &[("payment-signature", &payment)], "")
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "upstream_failed", "{body}");
    assert!(head.headers().get("payment-response").is_none());
    assert_eq!(env.calls(), 1);
    assert_eq!(env.gw.balances(), before, "nothing moved");
}

#[tokio::test]
async fn a_free_answer_streams_without_being_buffered_whole() {
    let env = start().await;
    let request = Request::get("/echo/v1/big").body(Body::empty()).unwrap();
    let response = env.gw.app.send(request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain");
    let mut body = response.into_body();
    let mut first = 0;
    // The first half arrives while the API still holds the second back (a deadline only so
    // that a buffering gateway fails instead of hanging).
    while first < CHUNK {
        let frame = tokio::time::timeout(Duration::from_secs(30), body.frame())
            .await
            .expect("the first half arrived before the upstream finished")
            .expect("a frame")
            .unwrap();
        let data = frame.into_data().unwrap();
        assert!(data.iter().all(|b| *b == b'a'));
        first += data.len();
    }
    assert_eq!(first, CHUNK);
    env.api.go_on.notify_one();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest.len(), CHUNK);
    assert!(rest.iter().all(|b| *b == b'b'));
}

#[tokio::test]
async fn a_sign_in_route_asks_for_a_wallet_not_a_payment() {
    let env = start().await;
    let (status, body, head) = env.send("GET", "/echo/v1/me", &[], "").await;
    assert_eq!(status, 402, "{body}");
    let required: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(head.headers()["payment-required"].as_bytes())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(required["accepts"], json!([]));
    assert!(required["extensions"]["sign-in-with-x"].is_object());
    assert_eq!(env.calls(), 0);
}
