//! The OpenAPI 3.1 document, generated from the route table: one path per template, one
//! operation per (method, path), with its security, its `x-payment-info` (x402scan's form: USD
//! price or range, plus the atomic amount, asset, network and scheme) and its 402 response. The
//! shared vocabulary (schemas, responses, parameters, headers) is `components.json`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{usd, Access, Operation, RouteTable};

/// Schemas, responses, parameters, headers and security schemes the operations refer to.
const COMPONENTS: &str = include_str!("components.json");

/// The OpenAPI document of `table`.
pub fn openapi_document(table: &RouteTable) -> Value {
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for op in &table.operations {
        let item = paths.entry(op.path.as_str()).or_default();
        if !op.path_params.is_empty() && !item.contains_key("parameters") {
            item.insert("parameters".into(), Value::Array(op.path_params.clone()));
        }
        item.insert(op.method.to_ascii_lowercase(), operation(table, op));
    }
    let components: Value = serde_json::from_str(COMPONENTS).expect("components.json is JSON");
    let tags: Vec<Value> = table
        .groups
        .iter()
        .map(|g| {
            let mut tag =
                json!({"name": g.id, "description": format!("{}: {}", g.title, g.description)});
            if let Some(url) = &g.docs_url {
                tag["externalDocs"] = json!({"url": url});
            }
            tag
        })
        .collect();
    let links = table.links();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": table.title,
            "version": env!("CARGO_PKG_VERSION"),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
            "description": "Solana JSON-RPC and DAS calls, and the configured HTTP services, sold per call over x402 (v2 `PAYMENT-REQUIRED` / `PAYMENT-SIGNATURE`, v1 body / `X-PAYMENT`), with the `exact` scheme on Solana. Generated from the gateway's route table: every operation it serves, nothing else. A paid operation carries `x-payment-info`; its 402 challenge is authoritative. Errors on RPC routes are JSON-RPC error objects; other routes use `{\"error\": {\"code\", \"message\"}}`. Every response carries `x-request-id`.",
            "x-guidance": format!("Start at {} (or {}): every route, its price and how to pay.", links["llms"].as_str().unwrap_or_default(), links["catalog"].as_str().unwrap_or_default()),
        },
        "servers": [{"url": table.public_base_url}],
        "tags": tags,
        "x-service-info": {
            "categories": ["blockchain", "solana", "rpc"],
            "docs": {"llms": links["llms"], "apiReference": links["openapi"], "homepage": links["discover"]},
        },
        "x-discovery": {"llmsTxtUrl": links["llms"], "catalogUrl": links["catalog"], "x402Url": links["x402"]},
        "paths": paths,
        "components": components,
    })
}

fn operation(table: &RouteTable, op: &Operation) -> Value {
    let mut o = op.openapi.clone();
    o["operationId"] = json!(op.operation_id);
    o["summary"] = json!(op.summary);
    o["tags"] = json!([op.group]);
    o["security"] = match op.access {
        Access::Free | Access::Paid { .. } => json!([]),
        Access::Siwx => json!([{"siwx": []}]),
        Access::Admin => json!([{"adminToken": []}]),
        Access::AdminOrPublic => json!([{"adminToken": []}, {}]),
        Access::FacilitatorSecret => json!([{"facilitatorSecret": []}]),
        Access::ProxyToken => json!([{"proxyToken": []}]),
    };
    if let Access::Paid { min, max } = op.access {
        if let Some(offer) = op.offers.first() {
            let (asset, decimals) = table.payment.asset(offer.network).unwrap_or(("", 6));
            let mut info = json!({
                "protocols": ["x402"],
                "scheme": "exact",
                "network": offer.network,
                "asset": asset,
                "currency": "USD",
            });
            if min == max {
                info["pricingMode"] = json!("fixed");
                info["price"] = json!(usd(min, decimals));
                info["amount"] = json!(min.to_string());
            } else {
                info["pricingMode"] = json!("range");
                info["minPrice"] = json!(usd(min, decimals));
                info["maxPrice"] = json!(usd(max, decimals));
                info["minAmount"] = json!(min.to_string());
                info["maxAmount"] = json!(max.to_string());
            }
            o["x-payment-info"] = info;
        }
    }
    o
}
