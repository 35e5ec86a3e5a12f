//! `openapi.yaml` and the router describe the same routes.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::Request;
use serde_yaml::Value;
use x402_gateway::openapi::OPENAPI_YAML;
use x402_gateway::routes::ROUTES;

use crate::common::app::providers_toml;
use crate::common::{MockUpstream, TestApp};

fn spec() -> Value {
    serde_yaml::from_str(OPENAPI_YAML).expect("openapi.yaml parses")
}

#[test]
fn spec_is_openapi_3_1_with_responses_everywhere() {
    let spec = spec();
    assert_eq!(spec["openapi"].as_str(), Some("3.1.0"));
    assert!(spec["info"]["title"].is_string() && spec["info"]["version"].is_string());
    let paths = spec["paths"].as_mapping().expect("paths");
    for (path, item) in paths {
        for (method, op) in item.as_mapping().unwrap() {
            let method = method.as_str().unwrap();
            if method == "parameters" {
                continue;
            }
            assert!(
                op["operationId"].is_string(),
                "{path:?} {method} has an operationId"
            );
            assert!(
                op["responses"].as_mapping().is_some_and(|r| !r.is_empty()),
                "{path:?} {method} has responses"
            );
        }
        // Every {param} in the path is declared.
        let path = path.as_str().unwrap();
        let declared: BTreeSet<String> = item["parameters"]
            .as_sequence()
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| {
                        p["name"].as_str().map(String::from).or_else(|| {
                            p["$ref"]
                                .as_str()
                                .and_then(|r| r.rsplit('/').next())
                                .map(str::to_lowercase)
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        for segment in path.split('/').filter(|s| s.starts_with('{')) {
            let name = segment.trim_matches(|c| c == '{' || c == '}');
            assert!(
                declared.contains(name),
                "{path}: parameter {name} is not declared"
            );
        }
    }
    // Every $ref resolves.
    let text = OPENAPI_YAML;
    for r in text
        .match_indices("$ref: \"#/")
        .map(|(i, _)| &text[i + 7..])
    {
        let target = &r[..r.find('"').unwrap()];
        let mut node = &spec;
        for part in target.trim_start_matches("#/").split('/') {
            node = &node[part];
        }
        assert!(!node.is_null(), "dangling $ref {target}");
    }
}

#[test]
fn spec_paths_are_the_router_paths() {
    let spec = spec();
    let documented: BTreeSet<&str> = spec["paths"]
        .as_mapping()
        .unwrap()
        .keys()
        .filter_map(|k| k.as_str())
        .collect();
    // axum spells a catch-all `{*name}`; OpenAPI has only `{name}`.
    let served: BTreeSet<String> = ROUTES.iter().map(|r| r.replace("{*", "{")).collect();
    let documented: BTreeSet<String> = documented.into_iter().map(String::from).collect();
    assert_eq!(documented, served);
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let upstream = MockUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (facilitator, _) = crate::common::app::facilitator_toml(dir.path());
    let env = [
        ("ALCHEMY_API_KEY".to_string(), "k".to_string()),
        ("HELIUS_API_KEY".to_string(), "k".to_string()),
        ("FACILITATOR_SECRET".to_string(), "s".to_string()),
        ("TOKENS_API_KEY".to_string(), "k".to_string()),
        ("ADMIN_TOKEN".to_string(), "a".to_string()),
    ]
    .into();
    let toml = format!(
        "{}{facilitator}\n[tokens]\nbase_url = \"{}\"\nauth = \"siwx\"\n\
         [facilitator_proxy]\nenabled = true\naccess = \"open\"\n",
        providers_toml(&upstream.url, &upstream.url),
        upstream.url
    );
    let app = TestApp::with_env(&toml, env).await;
    let spec = spec();
    for (path, item) in spec["paths"].as_mapping().unwrap() {
        let concrete = path
            .as_str()
            .unwrap()
            .replace("{cluster}", "mainnet")
            .replace("{provider}", "alchemy")
            .replace("{surface}", "rpc")
            .replace("{method}", "getSlot")
            .replace("{path}", "v1/tokens");
        for (method, _) in item.as_mapping().unwrap() {
            let method = method.as_str().unwrap();
            if method == "parameters" {
                continue;
            }
            let body = if method == "post" {
                r#"{"jsonrpc":"2.0","id":1,"method":"getSlot"}"#
            } else {
                ""
            };
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .header("content-type", "application/json")
                .body(Body::from(if concrete.ends_with("/getSlot") {
                    ""
                } else {
                    body
                }))
                .unwrap();
            let status = app.send(request).await.status().as_u16();
            assert!(
                status != 404 && status != 405,
                "{method} {concrete} answered {status}"
            );
        }
    }
    let (_, _, head) = app.get("/openapi.yaml").await;
    assert_eq!(head.headers()["content-type"], "application/yaml");
}
