//! The table's entries: the fixed routes (one [`Operation`] each, mounted under the same
//! conditions as in [`crate::router`]), the RPC routes with their per-method offers, and each
//! configured service's routes.

use serde_json::{json, Value};

use super::{bazaar, service_access, Access, Group, Offer, Operation, RouteTable};
use crate::config::{Cluster, Config, Surface};
use crate::jsonrpc::Call;
use crate::priced::Discovery;
use crate::pricing::Tariff;
use crate::routes::*;
use crate::services::Service;

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/responses/{name}")})
}
fn p(name: &str) -> Value {
    json!({"$ref": format!("#/components/parameters/{name}")})
}
fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}
fn json_answer(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// One fixed operation.
#[allow(clippy::too_many_arguments)]
fn op(
    method: &str,
    path: &str,
    group: &str,
    id: &str,
    summary: &str,
    access: Access,
    openapi: Value,
) -> Operation {
    Operation {
        method: method.into(),
        path: path.into(),
        group: group.into(),
        operation_id: id.into(),
        summary: summary.into(),
        access,
        openapi,
        path_params: Vec::new(),
        offers: Vec::new(),
    }
}

/// The gateway's own routes: health, discovery, RPC, facilitator, operators (the Tokens API is
/// a configured service).
pub(super) fn fixed(table: &mut RouteTable, config: &Config, tariff: &Tariff) {
    table.groups.push(Group {
        id: "rpc".into(),
        title: "Solana JSON-RPC and DAS".into(),
        description: "Solana JSON-RPC and DAS calls, per method or on a standard JSON-RPC 2.0 \
                      endpoint, validated before any upstream call and sold per call."
            .into(),
        docs_url: Some("https://solana.com/docs/rpc".into()),
    });
    table.groups.push(Group {
        id: "gateway".into(),
        title: "Gateway".into(),
        description: "Health, status and the discovery documents (catalog, OpenAPI, llms.txt, \
                      x402 manifest)."
            .into(),
        docs_url: None,
    });
    let free = Access::Free;
    let gateway = "gateway";
    let text = |description: &str, media: &str| json!({"description": description, "content": {media: {"schema": {"type": "string"}}}});
    let ops = &mut table.operations;
    ops.push(op("GET", HEALTHZ_ROUTE, gateway, "get_healthz", "Liveness", free, json!({
        "responses": {"200": json_answer("The process is serving.",
            json!({"type": "object", "properties": {"status": {"type": "string", "const": "ok"}}}))}
    })));
    ops.push(op(
        "GET",
        READYZ_ROUTE,
        gateway,
        "get_readyz",
        "Readiness (the shared store answers)",
        free,
        json!({
            "responses": {
                "200": json_answer("Every configured dependency answers.", schema("Readiness")),
                "503": json_answer("A dependency is unreachable.", schema("Readiness")),
            }
        }),
    ));
    ops.push(op("GET", STATUS_ROUTE, gateway, "get_status", "Upstream status (no secrets)", free, json!({
        "responses": {"200": json_answer("Each provider, enabled or not, with per-cluster health.", schema("Status"))}
    })));
    for (path, id, summary, media) in [
        (
            OPENAPI_JSON_ROUTE,
            "get_openapi_json",
            "This document (OpenAPI 3.1, generated from the route table)",
            "application/json",
        ),
        (
            WELL_KNOWN_OPENAPI_ROUTE,
            "get_well_known_openapi",
            "This document, at its well-known address",
            "application/json",
        ),
        (
            OPENAPI_ROUTE,
            "get_openapi_yaml",
            "This document as YAML (its JSON text, which is YAML)",
            "application/yaml",
        ),
    ] {
        ops.push(op("GET", path, gateway, id, summary, free, json!({
            "responses": {"200": {"description": summary, "content": {media: {"schema": {"type": "object"}}}}}
        })));
    }
    ops.push(op("GET", WELL_KNOWN_X402_ROUTE, gateway, "get_well_known_x402",
        "x402 discovery manifest: the paid resources and their offers", free, json!({
        "responses": {"200": json_answer("`{version, x402Version, kind, resources, items, instructions}`.",
            json!({"type": "object", "required": ["version", "resources"]}))}
    })));
    ops.push(op("GET", CATALOG_ROUTE, gateway, "get_catalog",
        "Every route with its access, price (atomic and USD), asset, network, payTo and schemas", free, json!({
        "responses": {"200": json_answer("The catalog.", json!({"type": "object", "required": ["routes", "payment"]}))}
    })));
    let negotiated = |what: &str| {
        json!({
            "parameters": [p("Accept")],
            "responses": {"200": {
                "description": format!("{what}: JSON by default; markdown for `Accept: text/markdown`, AI agents and terminal clients (curl, HTTPie, Wget)."),
                "content": {"application/json": {"schema": {"type": "object"}}, "text/markdown": {"schema": {"type": "string"}}}
            }}
        })
    };
    ops.push(op(
        "GET",
        DISCOVER_ROUTE,
        gateway,
        "get_discover",
        "What this gateway sells and how to pay, for agents",
        free,
        negotiated("The overview"),
    ));
    ops.push(op(
        "GET",
        DISCOVER_MD_ROUTE,
        gateway,
        "get_discover_md",
        "The overview as markdown (llms.txt style)",
        free,
        json!({
            "responses": {"200": text("The overview.", "text/markdown")}
        }),
    ));
    let mut group = op("GET", DISCOVER_GROUP_ROUTE, gateway, "get_discover_group",
        "One group of routes (`rpc`, a service id, `gateway`, `operators`) or `all`; `.md` suffix for markdown",
        free, negotiated("The group's routes, prices and how to call them"));
    group.openapi["responses"]["404"] = r("Error");
    group.path_params.push(json!({
        "name": "id", "in": "path", "required": true,
        "description": "A group id from /discover, `all`, either with `.md` appended for markdown.",
        "schema": {"type": "string", "examples": ["rpc", "all", "all.md"]}
    }));
    ops.push(group);
    ops.push(op(
        "GET",
        LLMS_TXT_ROUTE,
        gateway,
        "get_llms_txt",
        "llms.txt: the overview for language models",
        free,
        json!({
            "responses": {"200": text("The overview.", "text/markdown")}
        }),
    ));

    rpc(table, config, tariff);

    if config.facilitator.is_some() && config.facilitator_secret.is_some() {
        facilitator(table);
    }
    let admin = config.admin_token.as_ref().is_some_and(|t| !t.is_empty());
    if (admin || config.metrics.public) && table.group("operators").is_none() {
        table.groups.push(Group {
            id: "operators".into(),
            title: "Operators".into(),
            description: "Usage counters and metrics, for the gateway's operator.".into(),
            docs_url: None,
        });
    }
    table.groups.push(Group {
        id: "routing".into(),
        title: "Provider routing".into(),
        description: "The provider registry (health, circuit, latency, success rate; no URLs, \
                      no keys) and the routing decision the standard endpoint would make."
            .into(),
        docs_url: None,
    });
    if config.facilitator_proxy.enabled {
        table.groups.push(Group {
            id: "facilitator-proxy".into(),
            title: "Facilitator proxy".into(),
            description: "x402 facilitator endpoints forwarded to the configured facilitators \
                          with failover; /settle is never re-sent after it may have arrived."
                .into(),
            docs_url: None,
        });
    }
    if config.credits.enabled && config.payment.enabled {
        table.groups.push(Group {
            id: "credits".into(),
            title: "Prepaid credits".into(),
            description: "Pay once for a pack (x402 exact), sign in with the paying wallet for a \
                          session token, then send `Authorization: Bearer <token>` on any paid \
                          route: each call costs the provider's price with the markup, no \
                          settlement per call."
                .into(),
            docs_url: None,
        });
    }
    let ops = &mut table.operations;
    if admin {
        ops.push(op("GET", USAGE_ROUTE, "operators", "get_admin_usage", "Usage counters of one UTC day (operators)", Access::Admin, json!({
            "description": "Requests per route × cluster × RPC method × provider × outcome, and revenue in atomic units, for `day` (default today, UTC). Current to the request: this instance flushes its counters first. Needs `Authorization: Bearer <ADMIN_TOKEN>`.",
            "parameters": [{"name": "day", "in": "query", "required": false, "schema": {"type": "string", "format": "date", "examples": ["2025-06-01"]}}],
            "responses": {
                "200": json_answer("The day's rows.", schema("UsageReport")),
                "400": r("Error"), "401": r("Error"), "503": r("Unavailable"),
            }
        })));
    }
    if admin {
        ledger_admin(ops);
        audit_admin(ops);
    }
    if config.credits.enabled && config.payment.enabled {
        credits(ops, config, admin);
    }
    routing(ops, admin);
    if config.facilitator_proxy.enabled {
        facilitator_proxy(ops, config);
    }
    if admin || config.metrics.public {
        let access = if config.metrics.public {
            Access::AdminOrPublic
        } else {
            Access::Admin
        };
        ops.push(op("GET", METRICS_ROUTE, "operators", "get_metrics", "Prometheus metrics (text exposition format)", access, json!({
            "description": "Needs `Authorization: Bearer <ADMIN_TOKEN>`, unless `[metrics] public = true`.",
            "responses": {"200": text("Every `x402_*` family (see README, \"Metrics\").", "text/plain"), "401": r("Error")}
        })));
    }
}

/// The RPC routes, with one offer per (cluster, provider, surface, method) sold.
fn rpc(table: &mut RouteTable, config: &Config, tariff: &Tariff) {
    let paid = config.payment.enabled;
    let mut method_offers = Vec::new();
    let mut standard_offers = Vec::new();
    for provider in config.enabled_providers() {
        for cluster in Cluster::ALL {
            if !provider.clusters.contains_key(&cluster) || (paid && !table.sells(cluster)) {
                continue;
            }
            let network = cluster.caip2();
            let mut cheapest: Option<u64> = None;
            for surface in [Surface::Rpc, Surface::Das] {
                for method in provider.methods(surface).keys() {
                    let call = Call {
                        id: None,
                        method: method.clone(),
                        params: None,
                    };
                    let amount = if paid {
                        match crate::pricing::quote(tariff, provider, [&call]) {
                            Ok(Some(q)) => q.amount,
                            _ => continue,
                        }
                    } else {
                        0
                    };
                    cheapest = Some(cheapest.map_or(amount, |c| c.min(amount)));
                    method_offers.push(Offer {
                        method: "POST".into(),
                        path: format!(
                            "/v1/x402/solana/{cluster}/{}/{surface}/{method}",
                            provider.name
                        ),
                        amount,
                        network,
                        description: format!(
                            "{method} on {cluster} through {} ({surface})",
                            provider.name
                        ),
                        bazaar: Some(bazaar(&Discovery::Method {
                            surface,
                            method: method.clone(),
                        })),
                    });
                }
            }
            // The standard endpoint is served by the first enabled provider of the cluster.
            let first = config
                .enabled_providers()
                .find(|p| p.clusters.contains_key(&cluster))
                .is_some_and(|p| p.name == provider.name);
            if let (true, Some(cheapest)) = (first, cheapest) {
                standard_offers.push(Offer {
                    method: "POST".into(),
                    path: format!("/v1/x402/solana/{cluster}/rpc"),
                    amount: cheapest,
                    network,
                    description: format!(
                        "JSON-RPC 2.0 on {cluster} ({}); priced per call from the method table, a batch is the sum plus one settlement surcharge",
                        provider.name
                    ),
                    bazaar: Some(bazaar(&Discovery::Standard)),
                });
            }
        }
    }
    let range = |offers: &[Offer]| {
        if !paid {
            return Access::Free;
        }
        let min = offers.iter().map(|o| o.amount).min().unwrap_or(0);
        let max = offers.iter().map(|o| o.amount).max().unwrap_or(0);
        Access::Paid { min, max }
    };
    let payment_params = json!([p("PaymentSignature"), p("XPayment"), p("IdempotencyKey")]);
    let rpc_errors = json!({
        "400": r("RpcBadRequest"), "402": r("PaymentRequired"), "403": r("RpcError"),
        "404": r("RpcError"), "408": r("Error"), "409": r("PaymentConflict"),
        "413": r("RpcError"), "415": r("RpcError"), "429": r("TooManyRequests"),
        "431": r("Error"), "502": r("RpcError"), "503": r("RpcUnavailable"), "504": r("RpcTimeout"),
    });
    let method_params = vec![
        p("Cluster"),
        json!({"name": "provider", "in": "path", "required": true,
            "description": "A configured provider (alchemy, helius, localnet, or any other configured name).",
            "schema": {"type": "string", "examples": ["alchemy", "helius", "localnet"]}}),
        json!({"name": "surface", "in": "path", "required": true, "schema": {"type": "string", "enum": ["rpc", "das"]}}),
        json!({"name": "method", "in": "path", "required": true,
            "description": "A JSON-RPC method from the provider's allow-list for that surface (see /v1/catalog).",
            "schema": {"type": "string", "examples": ["getBalance", "getAsset"]}}),
    ];
    let mut responses = rpc_errors.clone();
    responses["200"] = r("RpcAnswer");
    let mut call = op(
        "POST",
        METHOD_ROUTE,
        "rpc",
        "call_method",
        "Call one method; the gateway builds the JSON-RPC envelope",
        range(&method_offers),
        json!({
            "description": "Body `{\"params\": [...]}` (rpc) or `{\"params\": {...}}` (das), or empty. The gateway builds the JSON-RPC envelope and returns the provider's answer verbatim. The price depends on the method: see /v1/catalog.",
            "parameters": payment_params,
            "requestBody": {"required": false, "content": {"application/json": {
                "schema": {"type": "object", "additionalProperties": false, "properties": {
                    "params": {"description": "Array for `rpc`, object for `das`.", "oneOf": [{"type": "array"}, {"type": "object"}]}}},
                "examples": {
                    "rpc": {"value": {"params": ["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"]}},
                    "das": {"value": {"params": {"id": "F9Lw3ki3hJ7PF9HQXsBzoY8GyE6sPoEZZdXJBsTTD2rk"}}}}}}},
            "responses": responses,
        }),
    );
    call.path_params = method_params.clone();
    call.offers = method_offers.clone();
    let mut describe = op(
        "GET",
        METHOD_ROUTE,
        "rpc",
        "describe_method",
        "Probe: the 402 challenge when payments are on, else a description of the route",
        range(&method_offers),
        json!({
            "responses": {
                "200": json_answer("What the route sells and how to call it.", json!({"type": "object"})),
                "400": r("RpcBadRequest"), "402": r("PaymentRequired"), "403": r("RpcError"),
                "404": r("RpcError"), "409": r("PaymentConflict"), "429": r("TooManyRequests"),
                "503": r("RpcUnavailable"),
            }
        }),
    );
    describe.path_params = method_params;
    let mut responses = rpc_errors;
    responses["200"] = json!({
        "description": "The provider's answer (an array for a batch).",
        "headers": {"PAYMENT-RESPONSE": {"$ref": "#/components/headers/PaymentResponse"}},
        "content": {"application/json": {"schema": {"oneOf": [
            schema("JsonRpcResponse"), {"type": "array", "items": schema("JsonRpcResponse")}]}}}
    });
    responses["204"] = json!({"description": "Only notifications were sent."});
    let mut standard = op(
        "POST",
        STANDARD_ROUTE,
        "rpc",
        "call_rpc",
        "Standard JSON-RPC 2.0 endpoint (single or batch)",
        range(&standard_offers),
        json!({
            "description": "Served by the first enabled provider for the cluster. Batches hold at most `server.max_batch` calls (default 20); malformed or refused elements get their own error object, notifications get no answer, an all-notification batch gets 204. Priced per call from the method table; a batch pays the sum plus one settlement surcharge.",
            "parameters": payment_params,
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"oneOf": [
                schema("JsonRpcRequest"), {"type": "array", "minItems": 1, "items": schema("JsonRpcRequest")}]}}}},
            "responses": responses,
        }),
    );
    standard.path_params = vec![p("Cluster")];
    standard.offers = standard_offers;
    table.operations.extend([call, describe, standard]);
}

/// The in-process facilitator's endpoints (trusted callers).
fn facilitator(table: &mut RouteTable) {
    if table.group("operators").is_none() {
        table.groups.push(Group {
            id: "operators".into(),
            title: "Operators".into(),
            description:
                "Usage counters, metrics and the in-process facilitator, for trusted callers."
                    .into(),
            docs_url: None,
        });
    }
    let ops = &mut table.operations;
    let secret = Access::FacilitatorSecret;
    ops.push(op("GET", FACILITATOR_SUPPORTED_ROUTE, "operators", "facilitator_supported",
        "In-process facilitator's supported kinds and signers (trusted callers)", secret, json!({
        "responses": {"200": json_answer("Standard x402 SupportedResponse.", schema("SupportedResponse")), "401": r("Error")}
    })));
    let body = json!({"required": true, "content": {"application/json": {"schema": schema("FacilitatorRequest")}}});
    ops.push(op("POST", FACILITATOR_VERIFY_ROUTE, "operators", "facilitator_verify",
        "Verify an x402 exact SVM payment without moving funds (trusted callers)", secret, json!({
        "requestBody": body,
        "responses": {
            "200": json_answer("Standard x402 VerifyResponse (isValid false with invalidReason on a bad payment).",
                json!({"type": "object", "required": ["isValid"], "properties": {
                    "isValid": {"type": "boolean"}, "invalidReason": {"type": "string"},
                    "invalidMessage": {"type": "string"}, "payer": {"type": "string"}}})),
            "400": r("Error"), "401": r("Error"), "413": r("Error"), "502": r("Error"), "503": r("Error"),
        }
    })));
    ops.push(op("POST", FACILITATOR_SETTLE_ROUTE, "operators", "facilitator_settle",
        "Settle a verified payment on chain; always ends (confirmed, expired, or settlement_pending with the signature)", secret, json!({
        "requestBody": body,
        "responses": {
            "200": json_answer("Standard x402 SettleResponse.", schema("SettleResponse")),
            "400": r("Error"), "401": r("Error"), "413": r("Error"), "502": r("Error"), "503": r("Error"),
        }
    })));
}

/// A catch-all (`{*name}`) as an OpenAPI path parameter. OpenAPI path parameters are one
/// segment (no unescaped `/`), so it is documented as exactly that: the rest of the path with
/// each `/` sent as `%2F`, which is what generated clients send and what the gateway reads as a
/// `/` ([`crate::services::normalize`]); literal slashes mean the same and are noted as such
/// (`x-catch-all`), for clients written by hand.
fn catch_all(name: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "required": true,
        "description": "The rest of the upstream path (one or more segments), appended to the service's base URL. As an OpenAPI path parameter it is one segment: encode each `/` as `%2F` (`v1%2Fitems%2F7`), as generated clients do. Literal slashes (`v1/items/7`) are the same request to the gateway. Empty, `.` and `..` segments, encoded or not, are refused with 400 invalid_path; the query string is passed on.",
        "schema": {"type": "string", "minLength": 1},
        "x-catch-all": true,
    })
}

/// A configured service: its group and one operation per route.
pub(super) fn service(table: &mut RouteTable, service: &Service) {
    let id = &service.config.id;
    table.groups.push(Group {
        id: id.clone(),
        title: service.config.title.clone(),
        description: service.config.description.clone(),
        docs_url: service.config.docs_url.as_ref().map(|u| u.to_string()),
    });
    let sold = table.sells(service.cluster);
    for (i, route) in service.routes.iter().enumerate() {
        let path = route.public_template(&service.mount);
        let access = service_access(
            route.spec.access,
            route.amount,
            table.payment.enabled && sold,
        );
        let method = route.spec.method.to_string();
        let summary = route
            .spec
            .description
            .clone()
            .unwrap_or_else(|| format!("{} {}", method, route.spec.pattern));
        let mut responses = json!({
            "200": r("ServiceAnswer"), "400": r("Error"), "404": r("Error"),
            "413": r("Error"), "502": r("Error"), "503": r("Unavailable"), "504": r("Error"),
        });
        let mut parameters: Vec<Value> = Vec::new();
        let mut sign_in = "";
        match access {
            Access::Paid { .. } => {
                responses["402"] = r("PaymentRequired");
                responses["409"] = r("PaymentConflict");
                responses["429"] = r("TooManyRequests");
                parameters.extend([p("PaymentSignature"), p("XPayment"), p("IdempotencyKey")]);
            }
            Access::Siwx => {
                sign_in = "Without a `SIGN-IN-WITH-X` proof the answer is a 402 whose `PAYMENT-REQUIRED` (and body) carry `accepts: []` and the `sign-in-with-x` extension: sign its SIWS text with a Solana wallet and send the fields back. ";
                responses["401"] = r("SiwxRefused");
                responses["402"] = r("SignInRequired");
                responses["429"] = r("Error");
                parameters.push(p("SignInWithX"));
            }
            _ => {}
        }
        if let Some(schema) = &route.spec.output_schema {
            responses["200"] = json!({
                "description": "The service's answer.",
                "content": {"application/json": {"schema": schema}}
            });
        }
        // The route's own words as a sentence, then how it is called.
        let what = match route.spec.description.as_deref().map(str::trim) {
            Some(d) if d.ends_with(['.', '!', '?']) => format!("{d} "),
            Some(d) if !d.is_empty() => format!("{d}. "),
            _ => String::new(),
        };
        let has_body = route.discovery.has_body();
        if has_body {
            responses["415"] = r("Error");
        }
        let mut openapi = json!({
            "description": format!(
                "{what}{sign_in}Called upstream as `{method} {}` under the service's base URL, with the gateway's credentials; no client header but `Accept` is passed on unless the route names it.",
                route.spec.pattern,
            ),
            "responses": responses,
        });
        if has_body {
            let schema = route
                .spec
                .input_schema
                .clone()
                .unwrap_or_else(|| json!({"type": "object"}));
            openapi["requestBody"] =
                json!({"required": false, "content": {"application/json": {"schema": schema}}});
        } else if let Some(props) = route
            .spec
            .input_schema
            .as_ref()
            .and_then(|s| s["properties"].as_object())
        {
            for (name, schema) in props {
                parameters.push(
                    json!({"name": name, "in": "query", "required": false, "schema": schema}),
                );
            }
        }
        if !parameters.is_empty() {
            openapi["parameters"] = Value::Array(parameters);
        }
        let path_params = route
            .spec
            .pattern
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| match name.strip_prefix('*') {
                Some(name) => catch_all(name),
                None => {
                    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
                }
            })
            .collect();
        let offers = match access {
            Access::Paid { min, .. } => vec![Offer {
                method: method.clone(),
                path: path.clone(),
                amount: min,
                network: service.cluster.caip2(),
                description: summary.clone(),
                bazaar: Some(bazaar(&Discovery::Http(route.discovery.clone()))),
            }],
            _ => vec![Offer {
                method: method.clone(),
                path: path.clone(),
                amount: 0,
                network: service.cluster.caip2(),
                description: summary.clone(),
                bazaar: Some(bazaar(&Discovery::Http(route.discovery.clone()))),
            }],
        };
        table.operations.push(Operation {
            method: method.clone(),
            path,
            group: id.clone(),
            operation_id: format!(
                "{}_{}_{i}",
                id.replace('-', "_"),
                method.to_ascii_lowercase()
            ),
            summary,
            access,
            openapi,
            path_params,
            offers,
        });
    }
}

/// The ledger's operator routes (served with `ADMIN_TOKEN`).
fn ledger_admin(ops: &mut Vec<Operation>) {
    let mut o = op(
        "GET",
        ADMIN_PAYMENTS_ROUTE,
        "operators",
        "list_admin_payments",
        "Payments from the ledger, filtered and paged (operators)",
        Access::Admin,
        json!({"description": "Every payment the durable ledger holds, newest first: its state (claimed, verified,\nupstream_ok, upstream_failed, settle_submitted, settled, expired, failed), payer,\npayTo, asset, network, amount, route, settlement signature, receipt and step times.\n`format=csv` exports the same rows as CSV. Served only when `ADMIN_TOKEN` is set (404\notherwise); needs `Authorization: Bearer <ADMIN_TOKEN>`.\n", "parameters": [{"name": "payer", "in": "query", "required": false, "schema": {"type": "string"}}, {"name": "state", "in": "query", "required": false, "schema": {"type": "string", "enum": ["claimed", "verified", "upstream_ok", "upstream_failed", "settle_submitted", "settled", "expired", "failed"]}}, {"name": "route", "in": "query", "required": false, "schema": {"type": "string"}}, {"name": "from_ms", "in": "query", "required": false, "description": "Created at or after (Unix ms)", "schema": {"type": "integer"}}, {"name": "to_ms", "in": "query", "required": false, "description": "Created before (Unix ms)", "schema": {"type": "integer"}}, {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}, {"name": "offset", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0, "default": 0}}, {"name": "format", "in": "query", "required": false, "schema": {"type": "string", "enum": ["json", "csv"], "default": "json"}}], "responses": {"200": {"description": "One page of payments.", "content": {"application/json": {"schema": {"type": "object", "required": ["payments", "limit", "offset"], "properties": {"payments": {"type": "array", "items": {"$ref": "#/components/schemas/LedgerPayment"}}, "limit": {"type": "integer"}, "offset": {"type": "integer"}}}}, "text/csv": {"schema": {"type": "string"}}}}, "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}),
    );
    o.path_params = serde_json::from_value(json!([])).unwrap_or_default();
    ops.push(o);
    let mut o = op(
        "GET",
        ADMIN_PAYMENT_ROUTE,
        "operators",
        "get_admin_payment",
        "One payment with every event (operators)",
        Access::Admin,
        json!({"responses": {"200": {"description": "The payment and its events, oldest first.", "content": {"application/json": {"schema": {"type": "object", "required": ["payment", "events"], "properties": {"payment": {"$ref": "#/components/schemas/LedgerPayment"}, "events": {"type": "array", "items": {"type": "object", "required": ["event", "at_ms", "instance"], "properties": {"event": {"type": "string"}, "at_ms": {"type": "integer"}, "instance": {"type": "string"}, "detail": {"type": ["string", "null"]}}}}}}}}}, "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}),
    );
    o.path_params = serde_json::from_value(json!([{"name": "key", "in": "path", "required": true, "description": "The payment key, hex SHA-256 of the transaction message.", "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}}])).unwrap_or_default();
    ops.push(o);
    let mut o = op(
        "GET",
        ADMIN_STATEMENT_ROUTE,
        "operators",
        "get_admin_payer_statement",
        "A payer's statement (operators)",
        Access::Admin,
        json!({"responses": {"200": {"description": "Count and amount per state, and the 100 most recent payments.", "content": {"application/json": {"schema": {"type": "object", "required": ["payer", "totals", "recent"], "properties": {"payer": {"type": "string"}, "totals": {"type": "array", "items": {"type": "object", "properties": {"state": {"type": "string"}, "payments": {"type": "integer"}, "amount": {"type": "integer"}}}}, "recent": {"type": "array", "items": {"$ref": "#/components/schemas/LedgerPayment"}}}}}}}, "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}),
    );
    o.path_params = serde_json::from_value(
        json!([{"name": "payer", "in": "path", "required": true, "schema": {"type": "string"}}]),
    )
    .unwrap_or_default();
    ops.push(o);
    let mut o = op(
        "GET",
        ADMIN_REVENUE_ROUTE,
        "operators",
        "get_admin_revenue",
        "Settled revenue per UTC day and route, from the ledger (operators)",
        Access::Admin,
        json!({"parameters": [{"name": "from_ms", "in": "query", "required": false, "description": "Settled at or after (Unix ms; default 30 days ago)", "schema": {"type": "integer"}}, {"name": "to_ms", "in": "query", "required": false, "description": "Settled before (Unix ms; default now)", "schema": {"type": "integer"}}, {"name": "format", "in": "query", "required": false, "schema": {"type": "string", "enum": ["json", "csv"], "default": "json"}}], "responses": {"200": {"description": "Rows per day and route, and totals.", "content": {"application/json": {"schema": {"type": "object", "required": ["from_ms", "to_ms", "rows", "totals"], "properties": {"from_ms": {"type": "integer"}, "to_ms": {"type": "integer"}, "rows": {"type": "array", "items": {"type": "object", "properties": {"day": {"type": "string", "format": "date"}, "route": {"type": "string"}, "payments": {"type": "integer"}, "amount": {"type": "integer"}}}}, "totals": {"type": "object", "properties": {"payments": {"type": "integer"}, "amount": {"type": "integer"}}}}}}, "text/csv": {"schema": {"type": "string"}}}}, "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}),
    );
    o.path_params = serde_json::from_value(json!([])).unwrap_or_default();
    ops.push(o);
}

/// The chain audit's findings (served with `ADMIN_TOKEN`).
fn audit_admin(ops: &mut Vec<Operation>) {
    ops.push(op(
        "GET",
        ADMIN_AUDIT_ROUTE,
        "operators",
        "get_admin_audit",
        "The chain audit's findings (operators)",
        Access::Admin,
        json!({
            "description": "What the chain audit (every `[ledger] audit_interval_secs`) found: settled payments the chain does not confirm as recorded (`not_finalized`, `missing_on_chain`, `amount_mismatch`, `no_signature`) and transfers into payTo's token account that no settled payment records (`unknown_transfer`), newest first, one per kind and transaction, with the count of each kind (with payments off nothing is audited: none). Needs `Authorization: Bearer <ADMIN_TOKEN>`.",
            "parameters": [
                {"name": "kind", "in": "query", "required": false, "schema": schema("FindingKind")},
                {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
                {"name": "offset", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0, "default": 0}}
            ],
            "responses": {
                "200": json_answer("A page of findings and the count of each kind.", schema("AuditReport")),
                "400": r("Error"),
                "401": r("Error"),
                "503": r("Error")
            }
        }),
    ));
}

/// The prepaid-credit routes (served only with `[credits] enabled`): the top-up sells one
/// offer per pack.
fn credits(ops: &mut Vec<Operation>, config: &Config, admin: bool) {
    let network = config
        .payment
        .accepts
        .first()
        .and_then(|a| crate::x402::network::known(&a.network))
        .unwrap_or(crate::x402::network::SOLANA_DEVNET);
    let offers: Vec<Offer> = config
        .credits
        .packs
        .iter()
        .map(|pack| Offer {
            method: "POST".into(),
            path: CREDITS_TOPUP_ROUTE.into(),
            amount: pack.price,
            network,
            description: format!("Credit pack {:?}: {} credits", pack.name, pack.credits),
            bazaar: Some(bazaar(&Discovery::CreditsTopup)),
        })
        .collect();
    let prices = config.credits.packs.iter().map(|p| p.price);
    let access = Access::Paid {
        min: prices.clone().min().unwrap_or(0),
        max: prices.max().unwrap_or(0),
    };
    let mut o = op("POST", CREDITS_TOPUP_ROUTE, "credits", "post_credits_topup", "Buy a credit pack (x402 exact)", access, serde_json::from_str(r##"{"description": "An ordinary x402 `exact` paid route: the 402 offers the pack's price; once the payment\nsettles, the payer wallet (the transfer's authority) is credited the pack's credits,\nexactly once, in the same ledger step that records the settlement. 404\n`credits_not_enabled` without `[credits] enabled`. 1 credit = 1 atomic unit of the asset.\n", "parameters": [{"$ref": "#/components/parameters/PaymentSignature"}, {"$ref": "#/components/parameters/XPayment"}], "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["pack"], "properties": {"pack": {"type": "string", "description": "A `[[credits.packs]]` name"}}}}}}, "responses": {"200": {"description": "Credited (with `PAYMENT-RESPONSE`).", "content": {"application/json": {"schema": {"type": "object", "required": ["wallet", "pack", "credits_added", "balance"], "properties": {"wallet": {"type": "string"}, "pack": {"type": "string"}, "credits_added": {"type": "integer"}, "balance": {"type": "integer", "description": "The balance once this top-up is credited"}}}}}}, "400": {"$ref": "#/components/responses/Error"}, "402": {"$ref": "#/components/responses/PaymentRequired"}, "404": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/PaymentConflict"}, "413": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}, "504": {"$ref": "#/components/responses/Error"}}}"##).unwrap_or_default());
    o.offers = offers.clone();
    ops.push(o);
    let o = op("POST", CREDITS_SESSION_ROUTE, "credits", "post_credits_session", "A credits session token for a signed-in wallet", Access::Siwx, serde_json::from_str(r##"{"description": "With a `SIGN-IN-WITH-X` proof: a bearer token bound to the wallet (expiry at most one\nhour, `[credits] session_ttl_secs`), verifiable by every instance sharing\n`CREDITS_SECRET`. Without one: 402 whose `PAYMENT-REQUIRED` carries the sign-in\nchallenge (`accepts: []`). Send it as `Authorization: Bearer <token>` on any paid\nroute: the call's credit price (the provider's cost with the markup) is reserved\nbefore the upstream call, spent on success, given back on failure; the answer carries\n`X-Credits-Remaining`. Too few credits: the usual 402 with `error`\n`insufficient_balance`.\n", "parameters": [{"$ref": "#/components/parameters/SignInWithX"}], "responses": {"200": {"description": "The session.", "content": {"application/json": {"schema": {"type": "object", "required": ["token", "expires_at", "wallet", "balance"], "properties": {"token": {"type": "string"}, "expires_at": {"type": "string", "format": "date-time"}, "wallet": {"type": "string"}, "balance": {"type": "integer"}}}}}}, "400": {"$ref": "#/components/responses/Error"}, "402": {"$ref": "#/components/responses/SignInRequired"}, "404": {"$ref": "#/components/responses/Error"}, "429": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}"##).unwrap_or_default());
    ops.push(o);
    let o = op("DELETE", CREDITS_SESSION_ROUTE, "credits", "delete_credits_session", "Revoke the bearer session token", Access::Free, serde_json::from_str(r##"{"responses": {"204": {"description": "Revoked on every instance."}, "401": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}, "description": "Needs `Authorization: Bearer <token>` from POST /v1/credits/session."}"##).unwrap_or_default());
    ops.push(o);
    let o = op("GET", CREDITS_BALANCE_ROUTE, "credits", "get_credits_balance", "The session wallet's credit balance", Access::Free, serde_json::from_str(r##"{"responses": {"200": {"description": "The balance.", "content": {"application/json": {"schema": {"type": "object", "required": ["wallet", "balance"], "properties": {"wallet": {"type": "string"}, "balance": {"type": "integer"}}}}}}, "401": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}, "description": "Needs `Authorization: Bearer <token>` from POST /v1/credits/session."}"##).unwrap_or_default());
    ops.push(o);
    let o = op("GET", ADMIN_CREDITS_ROUTE, "credits", "list_admin_credits", "Credit balances, largest first (operators)", Access::Admin, serde_json::from_str(r##"{"parameters": [{"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}, {"name": "offset", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0, "default": 0}}], "responses": {"200": {"description": "Balances.", "content": {"application/json": {"schema": {"type": "object", "required": ["accounts"], "properties": {"accounts": {"type": "array", "items": {"type": "object", "properties": {"wallet": {"type": "string"}, "balance": {"type": "integer"}, "updated_ms": {"type": "integer"}}}}}}}}}, "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}"##).unwrap_or_default());
    ops.push(o);
    let mut o = op("GET", ADMIN_CREDITS_WALLET_ROUTE, "credits", "get_admin_credits_wallet", "A wallet's balance and credit movements (operators)", Access::Admin, serde_json::from_str(r##"{"responses": {"200": {"description": "Balance and movements (topup, reserve, spend, void), newest first.", "content": {"application/json": {"schema": {"type": "object", "required": ["wallet", "balance", "movements"], "properties": {"wallet": {"type": "string"}, "balance": {"type": "integer"}, "movements": {"type": "array", "items": {"type": "object", "properties": {"kind": {"type": "string", "enum": ["topup", "reserve", "spend", "void"]}, "amount": {"type": "integer"}, "balance": {"type": "integer"}, "reference": {"type": "string"}, "route": {"type": ["string", "null"]}, "at_ms": {"type": "integer"}}}}}}}}}, "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}"##).unwrap_or_default());
    o.path_params = serde_json::from_str(
        r##"[{"name": "wallet", "in": "path", "required": true, "schema": {"type": "string"}}]"##,
    )
    .unwrap_or_default();
    ops.push(o);
    if !admin {
        ops.retain(|o| !o.path.starts_with("/admin/credits"));
    }
}

/// The provider registry and the routing decision API (`/providers`, `/route`).
fn routing(ops: &mut Vec<Operation>, admin: bool) {
    let o = op("GET", PROVIDERS_ROUTE, "routing", "get_providers", "Every provider with its health per cluster (no URLs, no keys)", Access::Free, serde_json::from_str(r##"{"responses": {"200": {"description": "Configured and registered providers.", "content": {"application/json": {"schema": {"type": "object", "properties": {"providers": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "origin": {"type": "string", "enum": ["config", "registered"]}, "enabled": {"type": "boolean"}, "disabled_reason": {"type": "string"}, "weight": {"type": "integer"}, "clusters": {"type": "object", "additionalProperties": {"type": "object", "properties": {"circuit": {"type": "string", "enum": ["closed", "open", "half_open"]}, "healthy": {"type": "boolean"}, "latency_p50_ms": {"type": ["number", "null"]}, "latency_mean_ms": {"type": ["number", "null"]}, "success_rate": {"type": ["number", "null"]}, "window_calls": {"type": "integer"}, "in_flight": {"type": "integer"}, "requests_served": {"type": "integer"}, "probes": {"type": "integer"}}}}, "costs": {"type": "object"}}}}}}}}}}}"##).unwrap_or_default());
    ops.push(o);
    let o = op("POST", PROVIDERS_REGISTER_ROUTE, "routing", "register_provider", "Register a provider at run time (operators)", Access::Admin, serde_json::from_str(r##"{"description": "Kept in the shared store and served by every instance (another instance's next\nper-method request reads it; its pool refreshes every `routing.registry_refresh_secs`).\nThe key is named by `key_env` and read on each instance: keys are never stored.\nServed only when `ADMIN_TOKEN` is set.\n", "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["name", "clusters"], "additionalProperties": false, "properties": {"name": {"type": "string", "pattern": "^[a-z0-9_-]+$"}, "clusters": {"type": "object", "additionalProperties": {"type": "string", "format": "uri"}}, "key_placement": {"description": "none (default), path, {query: {param}}, {header: {name}}"}, "key_env": {"type": "string"}, "same_as": {"type": "string", "description": "Copy the method tables and price of this provider."}, "rpc": {"type": "object", "additionalProperties": {"type": "integer"}}, "das": {"type": "object", "additionalProperties": {"type": "integer"}}, "atomic_per_million_units": {"type": "integer"}, "weight": {"type": "integer", "minimum": 1, "maximum": 100}}}}}}, "responses": {"201": {"description": "Registered; the provider as `/providers` shows it.", "content": {"application/json": {"schema": {"type": "object"}}}}, "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}"##).unwrap_or_default());
    ops.push(o);
    let mut o = op("DELETE", PROVIDER_ROUTE, "routing", "remove_provider", "Remove a provider registered at run time (operators)", Access::Admin, serde_json::from_str(r##"{"responses": {"204": {"description": "Removed."}, "401": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}"##).unwrap_or_default());
    o.path_params = serde_json::from_str(
        r##"[{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}]"##,
    )
    .unwrap_or_default();
    ops.push(o);
    let o = op("POST", ROUTE_DECISION_ROUTE, "routing", "route_decision", "The routing decision the standard endpoint would make now", Access::Free, serde_json::from_str(r##"{"requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["network", "method"], "additionalProperties": false, "properties": {"network": {"type": "string", "description": "mainnet, devnet, or the cluster's CAIP-2 id"}, "method": {"type": "string"}, "strategy": {"type": "string", "enum": ["cheapest", "fastest", "most_reliable", "load_balanced"]}}}}}}, "responses": {"200": {"description": "The decision (provider names, never URLs).", "content": {"application/json": {"schema": {"type": "object", "properties": {"routed_to": {"type": "string"}, "provider_id": {"type": "string", "description": "{cluster}:{name}"}, "strategy_used": {"type": "string"}, "estimated_latency_ms": {"type": ["number", "null"]}, "fallback_available": {"type": "boolean"}, "fallbacks": {"type": "array", "items": {"type": "string"}}, "excluded_unhealthy": {"type": "integer"}, "price": {"type": ["object", "null"], "properties": {"amount": {"type": "string"}}}}}}}}, "400": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}"##).unwrap_or_default());
    ops.push(o);
    if !admin {
        ops.retain(|o| o.path != PROVIDERS_REGISTER_ROUTE && o.path != PROVIDER_ROUTE);
    }
}

/// The facilitator proxy (only with `[facilitator_proxy] enabled`).
fn facilitator_proxy(ops: &mut Vec<Operation>, config: &Config) {
    let proxy_access = match config.facilitator_proxy.access {
        crate::config::ProxyAccess::Token => Access::ProxyToken,
        crate::config::ProxyAccess::Open => Access::Free,
    };
    let o = op("GET", PROXY_SUPPORTED_ROUTE, "facilitator-proxy", "proxy_supported", "Facilitator proxy, /supported of a healthy target (`[facilitator_proxy]`, off by default)", proxy_access, serde_json::from_str(r##"{"description": "Every proxy answer carries `X-Proxy-Target` (the target's name), `X-Proxy-Attempt`\n(target calls made) and `X-Proxy-Timestamp` (unix ms). Needs\n`Authorization: Bearer <token>` unless `access = \"open\"`.\n", "responses": {"200": {"description": "Standard x402 SupportedResponse.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SupportedResponse"}}}}, "401": {"$ref": "#/components/responses/Error"}, "502": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}"##).unwrap_or_default());
    ops.push(o);
    let o = op("POST", PROXY_VERIFY_ROUTE, "facilitator-proxy", "proxy_verify", "Facilitator proxy, /verify with failover on transport errors and 5xx", proxy_access, serde_json::from_str(r##"{"requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FacilitatorRequest"}}}}, "responses": {"200": {"description": "The target's VerifyResponse.", "content": {"application/json": {"schema": {"type": "object"}}}}, "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Error"}, "502": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}"##).unwrap_or_default());
    ops.push(o);
    let o = op("POST", PROXY_SETTLE_ROUTE, "facilitator-proxy", "proxy_settle", "Facilitator proxy, /settle (moves on only when nothing reached a target)", proxy_access, serde_json::from_str(r##"{"requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FacilitatorRequest"}}}}, "responses": {"200": {"description": "The target's SettleResponse.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SettleResponse"}}}}, "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Error"}, "502": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}"##).unwrap_or_default());
    ops.push(o);
    let o = op("GET", PROXY_HEALTH_ROUTE, "facilitator-proxy", "proxy_health", "Facilitator proxy health (200 when at least one target is healthy)", proxy_access, serde_json::from_str(r##"{"responses": {"200": {"description": "At least one healthy target.", "content": {"application/json": {"schema": {"type": "object"}}}}, "401": {"$ref": "#/components/responses/Error"}, "503": {"description": "No healthy target.", "content": {"application/json": {"schema": {"type": "object"}}}}}}"##).unwrap_or_default());
    ops.push(o);
    let o = op("GET", PROXY_STATUS_ROUTE, "facilitator-proxy", "proxy_status", "Facilitator proxy targets in detail (name, healthy, weight, last check, last error; no URLs)", proxy_access, serde_json::from_str(r##"{"responses": {"200": {"description": "Each target.", "content": {"application/json": {"schema": {"type": "object"}}}}, "401": {"$ref": "#/components/responses/Error"}}}"##).unwrap_or_default());
    ops.push(o);
}
