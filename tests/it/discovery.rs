//! Discovery from the one route table: the catalog, `/discover` (JSON or markdown by client),
//! `/llms.txt`, `/.well-known/x402`, and the Bazaar extension of a 402 are the same facts.

use axum::body::Body;
use axum::http::Request;
use axum::routing::any;
use axum::Router;
use serde_json::{json, Value};
use x402_gateway::x402::network::SOLANA_DEVNET;

use crate::common::app::split;
use crate::common::gateway::PaidGateway;
use crate::common::loopback;

/// The paid gateway (RPC on the local cluster) with one service: a free and a paid route.
async fn gateway() -> PaidGateway {
    let api =
        loopback::serve(Router::new().fallback(any(|| async { axum::Json(json!({"ok": true})) })))
            .await;
    PaidGateway::builder()
        .public_base_url("https://gateway.example")
        .sections(&format!(
            r#"
[[services]]
id = "weather"
base_url = "http://{api}"
title = "Weather"
description = "Forecasts by city."
docs_url = "https://docs.example/weather"
[services.routes]
"GET /v1/status" = "free"
"GET /v1/forecast/:city" = {{ price = "0.002", description = "The forecast for a city", output_schema = {{ type = "object", properties = {{ temp = {{ type = "number" }} }} }} }}
"#
        ))
        .build()
        .await
}

async fn get(gw: &PaidGateway, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut request = Request::get(path);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = gw.app.send(request.body(Body::empty()).unwrap()).await;
    let status = response.status().as_u16();
    let media = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, media, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn the_catalog_lists_every_route_with_its_price_and_how_to_pay() {
    let gw = gateway().await;
    let (status, catalog, head) = gw.app.get("/v1/catalog").await;
    assert_eq!(status, 200);
    assert_eq!(head.headers()["cache-control"], "public, max-age=300");
    assert_eq!(catalog["payment"]["payTo"], gw.cluster.pay_to().to_string());
    let routes = catalog["routes"].as_array().unwrap();
    let route = |method: &str, path: &str| {
        routes
            .iter()
            .find(|r| r["method"] == method && r["path"] == path)
            .unwrap_or_else(|| panic!("{method} {path} in the catalog"))
            .clone()
    };
    let forecast = route("GET", "/weather/v1/forecast/{city}");
    assert_eq!(forecast["access"], "paid");
    let offer = &forecast["offers"][0];
    assert_eq!(offer["price"], json!({"atomic": "2000", "usd": "0.002"}));
    assert_eq!(offer["network"], SOLANA_DEVNET);
    assert_eq!(offer["asset"], gw.cluster.mint().to_string());
    assert_eq!(offer["payTo"], gw.cluster.pay_to().to_string());
    assert_eq!(
        offer["output"]["schema"]["properties"]["temp"]["type"],
        "number"
    );
    assert_eq!(route("GET", "/weather/v1/status")["access"], "free");
    // RPC: one offer per method sold, priced as the 402 prices it.
    let method = route(
        "POST",
        "/v1/x402/solana/{cluster}/{provider}/{surface}/{method}",
    );
    let get_slot = method["offers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"] == "/v1/x402/solana/devnet/localnet/rpc/getSlot")
        .expect("getSlot on localnet is sold");
    assert_eq!(get_slot["price"]["atomic"], "1000");
    let challenge = gw
        .challenge("/v1/x402/solana/devnet/localnet/rpc/getSlot")
        .await;
    assert_eq!(challenge.accepts[0].amount, "1000");
    // The Bazaar extension of the 402 is the catalog's input, from the same table.
    assert_eq!(
        challenge.extensions.as_ref().unwrap()["bazaar"]["info"]["input"],
        get_slot["input"]
    );
}

#[tokio::test]
async fn discover_answers_json_to_programs_and_markdown_to_agents_and_terminals() {
    let gw = gateway().await;
    let (status, media, body) = get(&gw, "/discover", &[]).await;
    assert_eq!((status, media.as_str()), (200, "application/json"));
    let overview: Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = overview["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["rpc", "gateway", "routing", "weather"]);
    assert!(overview["howToPay"].as_array().unwrap().len() >= 3);
    for headers in [
        [("user-agent", "curl/8.5.0")],
        [("user-agent", "HTTPie/3.2.2")],
        [("user-agent", "Claude-User (claude-code/1.0)")],
        [("accept", "text/markdown")],
    ] {
        let (status, media, body) = get(&gw, "/discover", &headers).await;
        assert_eq!(status, 200);
        assert!(media.starts_with("text/markdown"), "{headers:?}: {media}");
        assert!(body.starts_with("# "), "{headers:?}");
    }
    // curl asking for JSON by name gets JSON.
    let (_, media, _) = get(
        &gw,
        "/discover",
        &[("user-agent", "curl/8.5.0"), ("accept", "application/json")],
    )
    .await;
    assert_eq!(media, "application/json");

    let (_, _, llms) = get(&gw, "/llms.txt", &[]).await;
    let (_, _, discover_md) = get(&gw, "/discover.md", &[]).await;
    assert_eq!(llms, discover_md);
    assert!(llms.contains("## How to pay") && llms.contains("PAYMENT-SIGNATURE"));
    assert!(llms.contains("[Weather](https://gateway.example/discover/weather.md)"));
    assert!(llms.contains("from $0.001 per call"), "{llms}");

    let (status, _, weather) = get(&gw, "/discover/weather.md", &[]).await;
    assert_eq!(status, 200);
    assert!(weather.contains("## GET https://gateway.example/weather/v1/forecast/{city}"));
    assert!(
        weather.contains("paid, $0.002 per call (2000 atomic units)"),
        "{weather}"
    );
    assert!(weather.contains("Upstream docs: https://docs.example/weather"));
    let (_, media, all) = get(&gw, "/discover/all", &[]).await;
    assert_eq!(media, "application/json");
    let all: Value = serde_json::from_str(&all).unwrap();
    assert_eq!(all["groups"].as_array().unwrap().len(), 4);
    let (_, _, all_md) = get(&gw, "/discover/all.md", &[]).await;
    assert!(all_md.contains("getSlot") && all_md.contains("/weather/v1/status"));
    let (status, _, _) = get(&gw, "/discover/nope", &[]).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_x402_manifest_lists_the_paid_resources_and_their_offers() {
    let gw = gateway().await;
    let (status, manifest, _) = split(
        gw.app
            .send(
                Request::get("/.well-known/x402")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(manifest["version"], 1);
    assert_eq!(manifest["x402Version"], 2);
    let resources: Vec<&str> = manifest["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(resources.contains(&"https://gateway.example/weather/v1/forecast/{city}"));
    assert!(
        resources.contains(&"https://gateway.example/v1/x402/solana/devnet/localnet/rpc/getSlot")
    );
    assert!(
        !resources.iter().any(|r| r.ends_with("/v1/status")),
        "free routes are not offers"
    );
    let item = manifest["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["resource"] == "https://gateway.example/weather/v1/forecast/{city}")
        .unwrap();
    assert_eq!(item["accepts"][0]["amount"], "2000");
    assert_eq!(item["accepts"][0]["payTo"], gw.cluster.pay_to().to_string());
    // The OpenAPI document says the same price.
    let (_, doc, _) = gw.app.get("/.well-known/openapi.json").await;
    let info = &doc["paths"]["/weather/v1/forecast/{city}"]["get"]["x-payment-info"];
    assert_eq!(info["price"], "0.002");
    assert_eq!(info["amount"], "2000");
}
