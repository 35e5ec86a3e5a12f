//! The OpenAPI document is generated from the route table: the committed `openapi.json` is the
//! document of the embedded default config, every served route is in it and nothing else is,
//! and two independent validators accept it.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};

use axum::body::Body;
use axum::http::Request;
use axum::routing::any;
use axum::Router;
use serde_json::{json, Value};
use x402_gateway::catalog::{openapi_document, RouteTable};
use x402_gateway::config::{Config, EMBEDDED_DEFAULT};
use x402_gateway::routes::ROUTES;

use crate::common::app::{providers_toml, split};
use crate::common::{loopback, MockUpstream, TestApp};

/// The committed document (the embedded default config's).
const COMMITTED: &str = "openapi.json";

/// The embedded default config as `cargo run` loads it without a key set (the cluster's port
/// and key files moved to a temporary place).
fn demo_config(dir: &Path) -> Config {
    let text = EMBEDDED_DEFAULT
        .replace("127.0.0.1:8899", "127.0.0.1:0")
        .replace("\".localnet", &format!("\"{}", dir.display()));
    Config::from_toml(&text, &HashMap::<String, String>::new()).expect("embedded default")
}

fn demo_document() -> Value {
    let dir = tempfile::tempdir().unwrap();
    openapi_document(&RouteTable::from_config(&demo_config(dir.path())).unwrap())
}

/// `cargo test --test it committed_openapi` with `UPDATE_OPENAPI=1` rewrites the file.
#[test]
fn committed_openapi_json_is_the_generated_document() {
    let generated = serde_json::to_string_pretty(&demo_document()).unwrap() + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{COMMITTED} is not the document the default config generates; regenerate it with \
         UPDATE_OPENAPI=1 cargo test --test it committed_openapi_json"
    );
}

/// A gateway with every optional route mounted: keyed providers, the facilitator endpoints,
/// the admin routes, the Tokens API and a service with free, paid-off and sign-in routes.
struct Full {
    app: TestApp,
    _upstream: MockUpstream,
}

async fn full() -> Full {
    let upstream = MockUpstream::start().await;
    let api =
        loopback::serve(Router::new().fallback(any(|| async { axum::Json(json!({"ok": true})) })))
            .await;
    let dir = tempfile::tempdir().unwrap();
    let (facilitator, _) = crate::common::app::facilitator_toml(dir.path());
    let env: HashMap<String, String> = [
        ("ALCHEMY_API_KEY", "k"),
        ("HELIUS_API_KEY", "k"),
        ("FACILITATOR_SECRET", "s"),
        ("TOKENS_API_KEY", "k"),
        ("ADMIN_TOKEN", "a"),
        ("SVC_KEY", "k"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .into();
    let toml = format!(
        r#"{providers}{facilitator}
[tokens]
base_url = "http://{api}"
auth = "siwx"

[facilitator_proxy]
enabled = true
access = "open"

[[services]]
id = "svc"
base_url = "http://{api}/api"
title = "Service"
description = "A loopback API."
[services.credentials]
headers = {{ "x-api-key" = "SVC_KEY" }}
[services.routes]
"GET /v1/items/:id" = {{ price = "0.01", description = "One item", input_schema = {{ type = "object", properties = {{ fields = {{ type = "string" }} }} }}, output_schema = {{ type = "object" }} }}
"POST /v1/items" = "0.02"
"GET /v1/status" = "free"
"GET /v1/me" = "siwx"
"#,
        providers = providers_toml(&upstream.url, &upstream.url),
    );
    Full {
        app: TestApp::with_env(&toml, env).await,
        _upstream: upstream,
    }
}

impl Full {
    async fn document(&self) -> Value {
        let (status, doc, head) = self.app.get("/openapi.json").await;
        assert_eq!(status, 200);
        assert_eq!(head.headers()["content-type"], "application/json");
        doc
    }
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if method != "parameters" {
                ops.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    ops
}

fn check_shape(doc: &Value) {
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    assert!(
        !doc["servers"][0]["url"].as_str().unwrap().is_empty(),
        "servers from public_base_url"
    );
    let mut ids = BTreeSet::new();
    for (method, path, op) in operations(doc) {
        let id = op["operationId"].as_str().expect("operationId");
        assert!(ids.insert(id.to_string()), "duplicate operationId {id}");
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path} has responses"
        );
        assert!(
            op["security"].is_array(),
            "{method} {path} declares its security"
        );
        if op.get("x-payment-info").is_some() {
            assert!(
                op["responses"]["402"].is_object(),
                "{method} {path}: paid without a 402"
            );
        }
        let item = &doc["paths"][&path];
        let declared: BTreeSet<String> = item["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                p["name"].as_str().map(String::from).unwrap_or_else(|| {
                    let r = p["$ref"].as_str().unwrap();
                    doc["components"]["parameters"][r.rsplit('/').next().unwrap()]["name"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
            })
            .collect();
        for segment in path.split('/').filter(|s| s.starts_with('{')) {
            let name = segment.trim_matches(|c| c == '{' || c == '}');
            assert!(
                declared.contains(name),
                "{path}: parameter {name} is not declared"
            );
        }
    }
    // Every $ref resolves.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(doc, &mut all);
    for target in all {
        let node = doc
            .pointer(target.trim_start_matches('#'))
            .unwrap_or(&Value::Null);
        assert!(!node.is_null(), "dangling $ref {target}");
    }
}

#[tokio::test]
async fn documents_are_openapi_3_1_with_security_and_payment_info() {
    check_shape(&demo_document());
    let full = full().await;
    let doc = full.document().await;
    check_shape(&doc);
    let paths = &doc["paths"];
    let item = &paths["/svc/v1/items/{id}"]["get"];
    // Payments are off in this config: the route is served free and says so.
    assert_eq!(item["security"], json!([]));
    assert_eq!(
        paths["/svc/v1/me"]["get"]["security"],
        json!([{"siwx": []}])
    );
    assert_eq!(
        paths["/v1/x402/tokens/{path}"]["get"]["security"],
        json!([{"siwx": []}])
    );
    assert_eq!(
        paths["/admin/usage"]["get"]["security"],
        json!([{"adminToken": []}])
    );
    assert_eq!(
        item["parameters"][0]["name"], "fields",
        "a GET route's input schema becomes query parameters"
    );
    // The demo sells: x-payment-info on the RPC operations, with the 402.
    let demo = demo_document();
    let call = &demo["paths"]["/v1/x402/solana/{cluster}/{provider}/{surface}/{method}"]["post"];
    let info = &call["x-payment-info"];
    assert_eq!(info["protocols"], json!(["x402"]));
    assert_eq!(info["scheme"], "exact");
    assert_eq!(info["network"], x402_gateway::x402::network::SOLANA_DEVNET);
    assert!(info["pricingMode"] == "fixed" || info["pricingMode"] == "range");
    assert!(call["responses"]["402"].is_object());
    assert!(demo["paths"]["/healthz"]["get"]
        .get("x-payment-info")
        .is_none());
}

/// Concrete values for the templates' parameters.
fn concrete(path: &str) -> String {
    path.replace("{cluster}", "mainnet")
        .replace("{provider}", "alchemy")
        .replace("{surface}", "rpc")
        .replace("{method}", "getSlot")
        // A catch-all is one OpenAPI segment: its slashes encoded, as a generated client sends it.
        .replace("{path}", "v1%2Ftokens")
        .replace("{id}", "rpc")
        // A configured provider: DELETE answers 409 (never removed at run time), not 404.
        .replace("{name}", "alchemy")
        .replace("{payer}", "Payer1111")
        .replace("{wallet}", "Wallet1111")
}

#[tokio::test]
async fn served_routes_are_exactly_the_documented_ones() {
    let full = full().await;
    let doc = full.document().await;
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let mut served: BTreeSet<String> = ROUTES.iter().map(|r| r.to_string()).collect();
    served.extend(
        [
            "/svc/v1/items/{id}",
            "/svc/v1/items",
            "/svc/v1/status",
            "/svc/v1/me",
            // The `[tokens]` shorthand's service.
            "/v1/x402/tokens/{path}",
        ]
        .map(String::from),
    );
    assert_eq!(documented, served);
    // The catalog lists the same operations.
    let (_, catalog, _) = full.app.get("/v1/catalog").await;
    let listed: BTreeSet<(String, String)> = catalog["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap().into(),
                r["path"].as_str().unwrap().into(),
            )
        })
        .collect();
    let in_doc: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    assert_eq!(listed, in_doc);
    // And every documented operation is routed (not 404/405 from the router).
    for (method, path, _) in operations(&doc) {
        let uri = concrete(&path);
        let body = if method == "POST" && !uri.ends_with("/getSlot") {
            r#"{"jsonrpc":"2.0","id":1,"method":"getSlot"}"#
        } else {
            ""
        };
        let request = Request::builder()
            .method(method.as_str())
            .uri(&uri)
            .header("content-type", "application/json")
            .header("authorization", "Bearer a")
            .header("x-facilitator-secret", "s")
            .body(Body::from(body))
            .unwrap();
        let (status, body, _) = split(full.app.send(request).await).await;
        assert!(
            status != 404 && status != 405,
            "{method} {uri} answered {status}: {body}"
        );
    }
    // Something not in the document is not served.
    let (status, body, _) = full.app.get("/svc/v1/other").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("route_not_found"))
    );
}

/// Runs a validator; its output on failure.
fn run(mut command: Command, shown: &str) {
    let out = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawning {shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} refused the document ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn openapi_spec_validator_and_redocly_accept_the_documents() {
    crate::interop::require_node();
    let python = crate::interop::python();
    let dir = tempfile::tempdir().unwrap();
    let full = full().await;
    for (name, doc) in [("demo", demo_document()), ("full", full.document().await)] {
        let file = dir.path().join(format!("{name}.json"));
        std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
        let mut validator = Command::new(&python);
        validator.args(["-m", "openapi_spec_validator"]).arg(&file);
        run(validator, &format!("openapi-spec-validator ({name})"));
        let mut redocly = Command::new("node");
        redocly
            .arg(crate::interop::interop_dir().join("node_modules/@redocly/cli/bin/cli.js"))
            .args(["lint", "--format", "stylish"])
            .arg(&file)
            .env("REDOCLY_TELEMETRY", "off")
            .env("REDOCLY_SUPPRESS_UPDATE_NOTICE", "true");
        run(redocly, &format!("redocly lint ({name})"));
    }
}
