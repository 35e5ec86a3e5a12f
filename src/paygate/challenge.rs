//! Building 402 challenges: requirements from a server-computed quote, the resource URL from
//! the configured public base URL (never from `Host`), and the Bazaar discovery extension.

use serde_json::{json, Map, Value};
use url::Url;

use crate::config::{AcceptConfig, Surface};
use crate::priced::{Discovery, HttpDiscovery};
use crate::x402::{
    network, PaymentRequired, PaymentRequiredV1, PaymentRequirements, PaymentRequirementsV1,
    ResourceInfo, X402_VERSION,
};

/// The terms of one `accepts` entry for a price.
pub fn requirements(
    accept: &AcceptConfig,
    amount: u64,
    pay_to: &str,
    fee_payer: &str,
    max_timeout_seconds: u64,
) -> PaymentRequirements {
    let mut extra = Map::new();
    extra.insert("feePayer".into(), fee_payer.into());
    PaymentRequirements {
        scheme: "exact".into(),
        network: accept.network.clone(),
        amount: amount.to_string(),
        asset: accept.asset.clone(),
        pay_to: pay_to.into(),
        max_timeout_seconds,
        extra: Some(extra),
    }
}

/// The absolute URL of `path` under the configured public base URL.
pub fn resource_url(public_base_url: &Url, path: &str) -> String {
    let base = public_base_url.as_str().trim_end_matches('/');
    format!("{base}{path}")
}

/// A complete challenge.
pub fn payment_required(
    resource: ResourceInfo,
    accepts: Vec<PaymentRequirements>,
    error: Option<String>,
    extensions: Map<String, Value>,
) -> PaymentRequired {
    PaymentRequired {
        x402_version: X402_VERSION,
        error,
        resource,
        accepts,
        extensions: (!extensions.is_empty()).then_some(extensions),
    }
}

/// One v2 requirement in the v1 shape: v1 network name, `maxAmountRequired`, the resource
/// inlined, and (in challenges) the v1 discovery `outputSchema`. The v1 network name is empty
/// for a network v1 never named; [`v1_challenge`] leaves such entries out.
pub fn v1_requirements(
    r: &PaymentRequirements,
    resource: &ResourceInfo,
    output_schema: Option<Value>,
) -> PaymentRequirementsV1 {
    PaymentRequirementsV1 {
        scheme: r.scheme.clone(),
        network: network::to_v1_name(&r.network)
            .unwrap_or_default()
            .to_string(),
        max_amount_required: r.amount.clone(),
        resource: resource.url.clone(),
        description: resource.description.clone(),
        mime_type: resource.mime_type.clone(),
        pay_to: r.pay_to.clone(),
        max_timeout_seconds: r.max_timeout_seconds,
        asset: r.asset.clone(),
        extra: r.extra.clone(),
        output_schema,
    }
}

/// The same challenge for v1 clients (the 402 body; v2 clients read `PAYMENT-REQUIRED`): the
/// same terms per network v1 can name, with the Bazaar `info` (`{input, output}`) as each
/// entry's `outputSchema`, where v1 discovery read it.
pub fn v1_challenge(required: &PaymentRequired) -> PaymentRequiredV1 {
    let output_schema = required
        .extensions
        .as_ref()
        .and_then(|e| e.get("bazaar"))
        .map(|bazaar| bazaar["info"].clone());
    PaymentRequiredV1 {
        x402_version: 1,
        error: required.error.clone(),
        accepts: required
            .accepts
            .iter()
            .filter(|r| network::to_v1_name(&r.network).is_some())
            .map(|r| v1_requirements(r, &required.resource, output_schema.clone()))
            .collect(),
    }
}

/// The `payment-identifier` extension: the client may (or must) echo it with an `info.id` of
/// 16-128 characters of `[A-Za-z0-9_-]`; a retry with the same id and the same request gets the
/// cached answer, the same id on another request a 409.
pub fn payment_identifier_extension(required: bool) -> Value {
    json!({
        "info": { "required": required },
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "required": { "type": "boolean" },
                "id": { "type": "string", "minLength": 16, "maxLength": 128, "pattern": "^[A-Za-z0-9_-]+$" }
            },
            "required": ["required"]
        }
    })
}

/// The `bazaar` extension: how to call the route (input) and what comes back (output), with a
/// JSON Schema (draft 2020-12) that validates `info`.
pub fn bazaar_extension(route: &Discovery) -> Value {
    let (body, body_schema) = match route {
        Discovery::Http(http) => return http_bazaar_extension(http),
        Discovery::Method { surface, .. } => {
            let (example, params_schema) = match surface {
                Surface::Rpc => (json!({"params": []}), json!({"type": "array"})),
                Surface::Das => (json!({"params": {}}), json!({"type": "object"})),
            };
            let schema = json!({
                "type": "object",
                "properties": {"params": params_schema},
                "additionalProperties": false
            });
            (example, schema)
        }
        Discovery::Standard => (
            json!({"jsonrpc": "2.0", "id": 1, "method": "getSlot"}),
            json!({
                "oneOf": [
                    {"type": "object", "required": ["jsonrpc", "method"]},
                    {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["jsonrpc", "method"]}}
                ]
            }),
        ),
        Discovery::CreditsTopup => (
            json!({"pack": "small"}),
            json!({
                "type": "object",
                "properties": {"pack": {"type": "string"}},
                "required": ["pack"],
                "additionalProperties": false
            }),
        ),
    };
    let output_example = match route {
        Discovery::CreditsTopup => {
            json!({"wallet": "<payer>", "pack": "small", "credits_added": 100000, "balance": 100000})
        }
        _ => json!({"jsonrpc": "2.0", "id": 1, "result": {}}),
    };
    json!({
        "info": {
            "input": {"type": "http", "method": "POST", "bodyType": "json", "body": body},
            "output": {"type": "json", "example": output_example}
        },
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "input": {
                    "type": "object",
                    "properties": {
                        "type": {"const": "http"},
                        "method": {"enum": ["POST"]},
                        "bodyType": {"const": "json"},
                        "body": body_schema
                    },
                    "required": ["type", "method", "bodyType", "body"],
                    "additionalProperties": false
                },
                "output": {"type": "object"}
            },
            "required": ["input"]
        }
    })
}

/// The `bazaar` extension of a configured HTTP service's route: query parameters or a JSON body
/// per its method, with the configured schemas, and the `routeTemplate` of a parameterised path.
fn http_bazaar_extension(http: &HttpDiscovery) -> Value {
    let open = json!({"type": "object"});
    let input_schema = http.input_schema.clone().unwrap_or_else(|| open.clone());
    let (input, input_props, required) = if http.has_body() {
        (
            json!({"type": "http", "method": http.method, "bodyType": "json", "body": {}}),
            json!({
                "type": {"const": "http"},
                "method": {"enum": [http.method]},
                "bodyType": {"const": "json"},
                "body": input_schema,
                "pathParams": {"type": "object"}
            }),
            json!(["type", "method", "bodyType", "body"]),
        )
    } else {
        (
            json!({"type": "http", "method": http.method, "queryParams": {}}),
            json!({
                "type": {"const": "http"},
                "method": {"enum": [http.method]},
                "queryParams": input_schema,
                "pathParams": {"type": "object"}
            }),
            json!(["type", "method"]),
        )
    };
    let mut output = json!({"type": "json"});
    if let Some(schema) = &http.output_schema {
        output["schema"] = schema.clone();
    }
    let mut ext = json!({
        "info": {"input": input, "output": output},
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "input": {
                    "type": "object",
                    "properties": input_props,
                    "required": required,
                    "additionalProperties": false
                },
                "output": {"type": "object"}
            },
            "required": ["input"]
        }
    });
    if http.parameterised {
        ext["routeTemplate"] = json!(http.route_template);
    }
    ext
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_token_program;

    #[test]
    fn requirements_carry_the_quote_and_the_fee_payer() {
        let accept = AcceptConfig {
            network: crate::x402::network::SOLANA_DEVNET.into(),
            asset: crate::x402::network::USDC_DEVNET.into(),
            decimals: 6,
            token_program: default_token_program(),
        };
        let r = requirements(&accept, 1234, "PayTo111", "FeePayer111", 60);
        assert_eq!(r.amount, "1234");
        assert_eq!(r.fee_payer(), Some("FeePayer111"));
        assert_eq!(r.memo(), None);
        assert!(r.matches(&r.clone()).is_ok());
    }

    #[test]
    fn the_v1_challenge_has_the_same_terms_in_the_v1_shape() {
        let accept = |network: &str| AcceptConfig {
            network: network.into(),
            asset: crate::x402::network::USDC_DEVNET.into(),
            decimals: 6,
            token_program: default_token_program(),
        };
        let devnet = requirements(&accept(network::SOLANA_DEVNET), 1234, "PayTo1", "Fee1", 60);
        let custom = requirements(&accept("solana:custom"), 1234, "PayTo1", "Fee1", 60);
        let route = Discovery::Standard;
        let mut extensions = Map::new();
        extensions.insert("bazaar".into(), bazaar_extension(&route));
        let resource = ResourceInfo {
            url: "https://rpc.example.com/v1/x402/solana/devnet/rpc".into(),
            description: "d".into(),
            mime_type: "application/json".into(),
        };
        let v2 = payment_required(
            resource,
            vec![devnet.clone(), custom],
            Some("Payment required".into()),
            extensions,
        );
        let v1 = serde_json::to_value(v1_challenge(&v2)).unwrap();
        assert_eq!(v1["x402Version"], 1);
        assert_eq!(v1["error"], "Payment required");
        let accepts = v1["accepts"].as_array().unwrap();
        assert_eq!(accepts.len(), 1, "v1 cannot name solana:custom: {v1}");
        let a = &accepts[0];
        assert_eq!(a["network"], "solana-devnet");
        assert_eq!(a["maxAmountRequired"], "1234");
        assert_eq!(
            a["resource"],
            "https://rpc.example.com/v1/x402/solana/devnet/rpc"
        );
        assert_eq!(a["description"], "d");
        assert_eq!(a["mimeType"], "application/json");
        assert_eq!(a["payTo"], "PayTo1");
        assert_eq!(a["asset"], devnet.asset);
        assert_eq!(a["maxTimeoutSeconds"], 60);
        assert_eq!(a["extra"]["feePayer"], "Fee1");
        assert_eq!(a["scheme"], "exact");
        assert_eq!(
            a["outputSchema"],
            bazaar_extension(&route)["info"],
            "v1 discovery: {{input, output}}"
        );
        assert!(a.get("amount").is_none() && v1.get("resource").is_none());
    }

    #[test]
    fn resource_url_comes_from_the_base_url() {
        let base = Url::parse("https://rpc.example.com/").unwrap();
        assert_eq!(
            resource_url(&base, "/v1/x402/solana/mainnet/rpc"),
            "https://rpc.example.com/v1/x402/solana/mainnet/rpc"
        );
        let prefixed = Url::parse("https://example.com/gateway").unwrap();
        assert_eq!(
            resource_url(&prefixed, "/healthz"),
            "https://example.com/gateway/healthz"
        );
    }

    #[test]
    fn bazaar_input_matches_its_own_schema_shape() {
        let ext = bazaar_extension(&Discovery::Method {
            surface: Surface::Das,
            method: "getAsset".into(),
        });
        assert_eq!(ext["info"]["input"]["method"], "POST");
        assert_eq!(ext["info"]["input"]["body"], json!({"params": {}}));
        assert_eq!(
            ext["schema"]["properties"]["input"]["properties"]["body"]["properties"]["params"]
                ["type"],
            "object"
        );
        let required: Vec<&str> = ext["schema"]["properties"]["input"]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for key in required {
            assert!(
                ext["info"]["input"].get(key).is_some(),
                "info.input lacks required {key}"
            );
        }
    }
}
