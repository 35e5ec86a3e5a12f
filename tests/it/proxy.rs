//! The RPC routes against a real loopback upstream.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};

use crate::common::app::{providers_toml, split, ALCHEMY_KEY, HELIUS_KEY};
use crate::common::{MockUpstream, Mode, TestApp};

const BALANCE: &str = "/v1/x402/solana/mainnet/alchemy/rpc/getBalance";
const STANDARD: &str = "/v1/x402/solana/mainnet/rpc";

async fn setup() -> (TestApp, MockUpstream, MockUpstream) {
    let alchemy = MockUpstream::start().await;
    let helius = MockUpstream::start().await;
    let app = TestApp::new(&providers_toml(&alchemy.url, &helius.url)).await;
    (app, alchemy, helius)
}

#[tokio::test]
async fn method_route_builds_the_envelope_and_injects_the_path_key() {
    let (app, alchemy, _) = setup().await;
    let request = Request::post(BALANCE)
        .header("content-type", "application/json")
        .header("authorization", "Bearer client-token")
        .header("cookie", "session=abc")
        .header("payment-signature", "eyJ4IjoxfQ==")
        .header("x-payment", "eyJ4IjoxfQ==")
        .header("sign-in-with-x", "eyJ4IjoxfQ==")
        .body(Body::from(
            r#"{"params":["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"]}"#,
        ))
        .unwrap();
    let (status, body, _) = split(app.send(request).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["value"], json!(1_000_000_000u64));

    let seen = alchemy.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].uri.path(), format!("/v2/{ALCHEMY_KEY}"));
    assert_eq!(
        seen[0].body,
        json!({"jsonrpc":"2.0","id":1,"method":"getBalance","params":["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"]})
    );
    for header in [
        "authorization",
        "cookie",
        "payment-signature",
        "x-payment",
        "sign-in-with-x",
    ] {
        assert!(
            !seen[0].headers.contains_key(header),
            "{header} was forwarded upstream"
        );
    }
}

#[tokio::test]
async fn helius_key_goes_in_the_query() {
    let (app, _, helius) = setup().await;
    let (status, body, _) = app
        .post_json(
            "/v1/x402/solana/mainnet/helius/das/getAsset",
            r#"{"params":{"id":"Asset111"}}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["id"], "Asset111");
    let seen = helius.seen();
    assert_eq!(
        seen[0].uri.query(),
        Some(format!("api-key={HELIUS_KEY}").as_str())
    );
    assert_eq!(seen[0].body["params"], json!({"id": "Asset111"}));
}

#[tokio::test]
async fn empty_body_on_method_route_sends_no_params() {
    let (app, alchemy, _) = setup().await;
    let (status, body, _) = app
        .post_json("/v1/x402/solana/mainnet/alchemy/rpc/getSlot", "")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        alchemy.seen()[0].body,
        json!({"jsonrpc":"2.0","id":1,"method":"getSlot"})
    );
}

#[tokio::test]
async fn upstream_jsonrpc_errors_pass_through_unchanged() {
    let (app, _, _) = setup().await;
    let (status, body, _) = app
        .post_json(
            "/v1/x402/solana/mainnet/alchemy/rpc/getAccountInfo",
            r#"{"params":["x"]}"#,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Invalid param: WrongSize"}})
    );
}

#[tokio::test]
async fn standard_endpoint_keeps_the_client_id() {
    let (app, alchemy, _) = setup().await;
    let (status, body, _) = app
        .post_json(
            STANDARD,
            r#"{"jsonrpc":"2.0","id":"req-7","method":"getSlot"}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"jsonrpc":"2.0","id":"req-7","result":341_197_053u64})
    );
    assert_eq!(alchemy.calls(), 1);
}

#[tokio::test]
async fn batch_is_forwarded_with_per_element_errors_in_client_order() {
    let (app, alchemy, _) = setup().await;
    let batch = json!([
        {"jsonrpc":"2.0","id":"a","method":"getSlot"},
        {"jsonrpc":"2.0","id":"b","method":"getBlock","params":[1]},
        42,
        {"jsonrpc":"2.0","id":"c","method":"getProgramAccounts","params":["P"]},
        {"jsonrpc":"2.0","method":"getHealth"},
        {"jsonrpc":"2.0","id":"a","method":"getBalance","params":["W"]},
    ]);
    let (status, body, _) = app.post_json(STANDARD, batch.to_string()).await;
    assert_eq!(status, 200, "{body}");
    let items = body.as_array().expect("batch answer");
    assert_eq!(items.len(), 5, "the notification gets no answer: {body}");
    assert_eq!(
        items[0],
        json!({"jsonrpc":"2.0","id":"a","result":341_197_053u64})
    );
    assert_eq!(items[1]["id"], "b");
    assert_eq!(items[1]["error"]["code"], -32601);
    assert_eq!(items[2]["id"], Value::Null);
    assert_eq!(items[2]["error"]["code"], -32600);
    assert_eq!(items[3]["id"], "c");
    assert_eq!(items[3]["error"]["code"], -32602);
    assert_eq!(items[3]["error"]["data"]["field"], "params[1]");
    // Duplicate client ids cannot confuse the matching: we sent our own.
    assert_eq!(items[4]["id"], "a");
    assert_eq!(items[4]["result"]["value"], 1_000_000_000u64);

    let seen = alchemy.seen();
    assert_eq!(seen.len(), 1, "one upstream batch");
    let methods: Vec<&str> = seen[0]
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        ["getSlot", "getHealth", "getBalance"],
        "refused elements never reach the provider"
    );
}

#[tokio::test]
async fn batch_rules_for_empty_and_all_notifications() {
    let (app, alchemy, _) = setup().await;
    let (status, body, _) = app.post_json(STANDARD, "[]").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], -32600);
    assert!(
        body.is_object(),
        "an empty batch gets one error object: {body}"
    );

    let request = Request::post(STANDARD)
        .header("content-type", "application/json")
        .body(Body::from(
            r#"[{"jsonrpc":"2.0","method":"getSlot"},{"jsonrpc":"2.0","method":"getHealth"}]"#,
        ))
        .unwrap();
    let response = app.send(request).await;
    assert_eq!(response.status(), 204);
    assert_eq!(alchemy.calls(), 1);

    let too_many: Vec<Value> = (0..21)
        .map(|i| json!({"jsonrpc":"2.0","id":i,"method":"getSlot"}))
        .collect();
    let (status, body, _) = app
        .post_json(STANDARD, Value::Array(too_many).to_string())
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit of 20"),
        "{body}"
    );
    assert_eq!(alchemy.calls(), 1);
}

#[tokio::test]
async fn unknown_method_is_refused_without_an_upstream_call() {
    let (app, alchemy, _) = setup().await;
    let (status, body, _) = app
        .post_json(
            "/v1/x402/solana/mainnet/alchemy/rpc/getBlock",
            r#"{"params":[1]}"#,
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], -32601);
    let (status, body, _) = app
        .post_json(
            STANDARD,
            r#"{"jsonrpc":"2.0","id":3,"method":"requestAirdrop"}"#,
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["id"], 3);
    assert_eq!(body["error"]["code"], -32601);
    // A DAS method is not an RPC method on the method route.
    let (status, _, _) = app
        .post_json("/v1/x402/solana/mainnet/alchemy/rpc/getAsset", "")
        .await;
    assert_eq!(status, 403);
    assert_eq!(alchemy.calls(), 0);
}

#[tokio::test]
async fn guardrails_refuse_before_the_upstream() {
    let (app, alchemy, _) = setup().await;
    let gpa = "/v1/x402/solana/mainnet/alchemy/rpc/getProgramAccounts";
    let (status, body, _) = app
        .post_json(gpa, r#"{"params":["Prog",{"encoding":"base64"}]}"#)
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], -32602);
    assert_eq!(body["error"]["data"]["field"], "params[1].filters");
    let (status, body, _) = app
        .post_json(gpa, r#"{"params":["Prog",{"filters":[{"dataSize":165}],"dataSlice":{"offset":0,"length":4096}}]}"#)
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["data"]["field"], "params[1].dataSlice.length");
    let (status, body, _) = app
        .post_json(
            "/v1/x402/solana/mainnet/helius/das/getAsset",
            r#"{"params":{"id":"x","limit":1000}}"#,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["data"]["field"], "params.limit");
    let (status, _, _) = app
        .post_json(BALANCE, r#"{"params":{"not":"an array"}}"#)
        .await;
    assert_eq!(status, 400);
    assert_eq!(alchemy.calls(), 0);

    let ok = r#"{"params":["Prog",{"filters":[{"dataSize":165}],"dataSlice":{"offset":0,"length":32}}]}"#;
    let (status, _, _) = app.post_json(gpa, ok).await;
    assert_eq!(status, 200);
    assert_eq!(alchemy.calls(), 1);
}

#[tokio::test]
async fn upstream_timeout_is_504() {
    let (app, alchemy, _) = setup().await;
    alchemy.set_mode(Mode::Slow(Duration::from_secs(3)));
    let (status, body, _) = app.post_json(BALANCE, r#"{"params":["W"]}"#).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["code"], -32050);
    assert_eq!(body["error"]["data"]["reason"], "upstream_timeout");
}

#[tokio::test]
async fn upstream_5xx_and_garbage_are_502() {
    let (app, alchemy, _) = setup().await;
    alchemy.set_mode(Mode::Status(500));
    let (status, body, _) = app.post_json(BALANCE, r#"{"params":["W"]}"#).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["data"]["reason"], "upstream_failed");
    alchemy.set_mode(Mode::Garbage);
    let (status, _, _) = app.post_json(BALANCE, r#"{"params":["W"]}"#).await;
    assert_eq!(status, 502);
    alchemy.set_mode(Mode::Huge(100_000));
    let (status, body, _) = app.post_json(BALANCE, r#"{"params":["W"]}"#).await;
    assert_eq!(status, 502);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than"),
        "{body}"
    );
    alchemy.set_mode(Mode::Status(429));
    let (status, _, head) = app.post_json(BALANCE, r#"{"params":["W"]}"#).await;
    assert_eq!(status, 503);
    assert!(head.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn unreachable_upstream_is_502_without_the_key_in_the_message() {
    // A port nobody listens on.
    let dead = format!("http://{}", crate::common::loopback::closed_port());
    let app = TestApp::new(&providers_toml(&dead, &dead)).await;
    let (status, body, _) = app.post_json(BALANCE, r#"{"params":["W"]}"#).await;
    assert_eq!(status, 502, "{body}");
    assert!(!body.to_string().contains(ALCHEMY_KEY), "{body}");
    let (_, status_body, _) = app.get("/status").await;
    let text = status_body.to_string();
    assert!(text.contains("unreachable"), "{text}");
    assert!(
        !text.contains(ALCHEMY_KEY) && !text.contains(HELIUS_KEY),
        "{text}"
    );
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let (app, alchemy, _) = setup().await;
    // 413: over 50 KiB.
    let big = format!(r#"{{"params":["{}"]}}"#, "x".repeat(60 * 1024));
    let (status, body, _) = app.post_json(BALANCE, big).await;
    assert_eq!(status, 413, "{body}");
    // 400 -32700: not JSON.
    let (status, body, _) = app.post_json(STANDARD, "{not json").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], -32700);
    assert_eq!(body["id"], Value::Null);
    let (status, body, _) = app.post_json(BALANCE, "[1,").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], -32700);
    // Deeply nested.
    let deep = format!(r#"{{"params":[{}{}]}}"#, "[".repeat(200), "]".repeat(200));
    let (status, body, _) = app.post_json(BALANCE, deep).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nested deeper"),
        "{body}"
    );
    // Unknown body field on the method route.
    let (status, body, _) = app.post_json(BALANCE, r#"{"param":["W"]}"#).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], -32600);
    // 415: wrong content type.
    let request = Request::post(BALANCE)
        .header("content-type", "text/plain")
        .body(Body::from(r#"{"params":["W"]}"#))
        .unwrap();
    let (status, body, _) = split(app.send(request).await).await;
    assert_eq!(status, 415);
    assert_eq!(body["error"]["data"]["reason"], "unsupported_media_type");
    // Unknown cluster / provider / surface.
    for path in [
        "/v1/x402/solana/testnet/alchemy/rpc/getBalance",
        "/v1/x402/solana/mainnet/quicknode/rpc/getBalance",
        "/v1/x402/solana/mainnet/alchemy/grpc/getBalance",
    ] {
        let (status, _, _) = app.post_json(path, "").await;
        assert_eq!(status, 404, "{path}");
    }
    // Helius does not serve devnet in this config.
    let (status, _, _) = app
        .post_json("/v1/x402/solana/devnet/helius/rpc/getBalance", "")
        .await;
    assert_eq!(status, 404);
    // 431: an oversized header.
    let request = Request::post(BALANCE)
        .header("content-type", "application/json")
        .header("payment-signature", "A".repeat(9000))
        .body(Body::from(r#"{"params":["W"]}"#))
        .unwrap();
    let (status, body, _) = split(app.send(request).await).await;
    assert_eq!(status, 431);
    assert_eq!(body["error"]["code"], "header_too_large");
    // Wrong HTTP method on a known path.
    let response = app
        .send(Request::delete(STANDARD).body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status(), 405);
    assert_eq!(alchemy.calls(), 0, "nothing bad reached the provider");
}

#[tokio::test]
async fn get_and_head_probes_answer_without_an_upstream_call() {
    let (app, alchemy, _) = setup().await;
    let (status, body, _) = app.get(BALANCE).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["method"], "getBalance");
    assert_eq!(body["upstreamCost"]["units"], 10);
    let response = app
        .send(Request::head(BALANCE).body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status(), 200);
    let (_, body, _) = split(response).await;
    assert_eq!(body, Value::Null, "HEAD has no body");
    let (status, _, _) = app
        .get("/v1/x402/solana/mainnet/alchemy/rpc/getBlock")
        .await;
    assert_eq!(status, 403);
    assert_eq!(alchemy.calls(), 0);
}

#[tokio::test]
async fn disabled_provider_answers_503_with_the_reason() {
    let alchemy = MockUpstream::start().await;
    let toml = providers_toml(&alchemy.url, &alchemy.url);
    let app = TestApp::with_env(&toml, Default::default()).await;
    let (status, body, head) = app.post_json(BALANCE, r#"{"params":["W"]}"#).await;
    assert_eq!(status, 503);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ALCHEMY_API_KEY"),
        "{body}"
    );
    assert!(head.headers().contains_key("retry-after"));
    let (status, _, _) = app
        .post_json(STANDARD, r#"{"jsonrpc":"2.0","id":1,"method":"getSlot"}"#)
        .await;
    assert_eq!(status, 503);
}

#[tokio::test]
async fn request_id_is_set_and_propagated() {
    let (app, _, _) = setup().await;
    let (_, _, head) = app.get("/healthz").await;
    let generated = head.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    let request = Request::get("/healthz")
        .header("x-request-id", "client-chosen-id")
        .body(Body::empty())
        .unwrap();
    let response = app.send(request).await;
    assert_eq!(response.headers()["x-request-id"], "client-chosen-id");
    let (_, _, head) = app.post_json(STANDARD, "{").await;
    assert!(
        head.headers().contains_key("x-request-id"),
        "errors carry it too"
    );
}

#[tokio::test]
async fn served_over_real_http() {
    // One test through a real listener, as clients will use it.
    let (app, _, _) = setup().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(x402_gateway::serve(app.app.clone(), listener, async {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    let response = client
        .post(format!("http://{addr}{STANDARD}"))
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"getBalance","params":["W"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["result"]["value"], 1_000_000_000u64);
    tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_undecodable_path_is_a_json_error_not_plain_text() {
    let (app, upstream, _) = setup().await;
    for path in [
        "/v1/x402/solana/mainnet/alchemy/rpc/get%FFBalance",
        "/v1/x402/solana/main%FFnet/rpc",
    ] {
        let (status, body, head) = app
            .post_json(path, r#"{"jsonrpc":"2.0","id":1,"method":"getSlot"}"#)
            .await;
        assert_eq!(status, 400, "{path}: {body}");
        let content_type = head.headers()["content-type"].to_str().unwrap();
        assert!(content_type.starts_with("application/json"), "{path}");
        assert_eq!(body["error"]["code"], -32600, "{path}: {body}");
    }
    assert_eq!(upstream.calls(), 0);
}

#[tokio::test]
async fn errors_on_the_standard_endpoint_answer_with_the_callers_id() {
    let (app, alchemy, _) = setup().await;
    let call = r#"{"jsonrpc":"2.0","id":"req-7","method":"getSlot"}"#;
    alchemy.set_mode(Mode::Status(500));
    let (status, body, _) = app.post_json(STANDARD, call).await;
    assert_eq!((status, &body["id"]), (502, &json!("req-7")), "{body}");
    alchemy.set_mode(Mode::Garbage);
    let (status, body, _) = app.post_json(STANDARD, call).await;
    assert_eq!((status, &body["id"]), (502, &json!("req-7")), "{body}");
    // No provider for the cluster: refused before the body is parsed, still with its id.
    let disabled = TestApp::with_env(
        &providers_toml(&alchemy.url, &alchemy.url),
        Default::default(),
    )
    .await;
    let (status, body, _) = disabled
        .post_json(STANDARD, r#"{"jsonrpc":"2.0","id":7,"method":"getSlot"}"#)
        .await;
    assert_eq!((status, &body["id"]), (503, &json!(7)), "{body}");
    // A body that is not JSON has no id to give.
    let (status, body, _) = app.post_json(STANDARD, "{nope").await;
    assert_eq!((status, &body["id"]), (400, &Value::Null), "{body}");
}
