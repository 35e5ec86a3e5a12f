//! What a call would cost, decoded for a person (`x402-pay quote`) or a program (`--json`):
//! every offer with its network, asset, amount in atomic units and dollars, payTo, fee payer
//! and memo, and every extension (sign-in, Bazaar, payment identifier, others verbatim).

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::assets::{network_name, stablecoin, usd};
use super::challenge::Challenge;
use crate::x402::PaymentRequirements;

/// The challenge as JSON: the decoded challenge, each offer with `usd` and `symbol` added
/// where the asset is a known stablecoin, and the body's error code.
pub fn quote_json(challenge: &Challenge) -> Value {
    let accepts: Vec<Value> = challenge
        .required
        .accepts
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
            if let (Some(coin), Ok(atomic)) =
                (stablecoin(&r.network, &r.asset), r.amount.parse::<u64>())
            {
                v["symbol"] = coin.symbol.into();
                v["usd"] = usd(&r.network, &r.asset, atomic).into();
            }
            v
        })
        .collect();
    json!({
        "x402Version": challenge.required.x402_version,
        "error": challenge.required.error,
        "bodyError": challenge.body_error,
        "resource": challenge.required.resource,
        "accepts": accepts,
        "extensions": challenge.required.extensions,
    })
}

/// The challenge in words, one fact per line.
pub fn quote_text(challenge: &Challenge) -> String {
    let required = &challenge.required;
    let mut out = String::new();
    let resource = &required.resource;
    let _ = write!(out, "resource: {}", resource.url);
    if !resource.description.is_empty() {
        let _ = write!(out, " ({})", resource.description);
    }
    out.push('\n');
    if let Some(error) = challenge.error() {
        let _ = writeln!(out, "why: {error}");
    }
    if required.accepts.is_empty() {
        out.push_str("offers: none (no way to pay this call)\n");
    }
    for (i, r) in required.accepts.iter().enumerate() {
        out.push_str(&offer_text(i + 1, r));
    }
    for (key, ext) in required.extensions.iter().flatten() {
        let _ = writeln!(out, "extension {key}: {}", extension_text(key, ext));
    }
    out
}

fn offer_text(n: usize, r: &PaymentRequirements) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "offer {n}: {} on {} ({})",
        r.scheme,
        network_name(&r.network),
        r.network
    );
    let price = match (r.amount.parse::<u64>(), stablecoin(&r.network, &r.asset)) {
        (Ok(atomic), Some(coin)) => format!(
            "{atomic} atomic units = {} {} = {}",
            super::assets::decimal(atomic, coin.decimals),
            coin.symbol,
            usd(&r.network, &r.asset, atomic).unwrap_or_default()
        ),
        (Ok(atomic), None) => format!("{atomic} atomic units (unknown asset: no dollar price)"),
        (Err(_), _) => format!("{:?} (not an integer: this offer cannot be paid)", r.amount),
    };
    let _ = writeln!(out, "  amount:   {price}");
    let asset_name = stablecoin(&r.network, &r.asset)
        .map(|c| format!(" ({})", c.symbol))
        .unwrap_or_default();
    let _ = writeln!(out, "  asset:    {}{asset_name}", r.asset);
    let _ = writeln!(out, "  payTo:    {}", r.pay_to);
    let _ = writeln!(
        out,
        "  feePayer: {}",
        r.fee_payer()
            .unwrap_or("(none: an SVM exact offer needs one)")
    );
    if let Some(memo) = r.memo() {
        let _ = writeln!(out, "  memo:     {memo}");
    }
    let _ = writeln!(out, "  timeout:  {} s", r.max_timeout_seconds);
    for (key, value) in r.extra.iter().flatten() {
        if key != "feePayer" && key != "memo" {
            let _ = writeln!(out, "  extra.{key}: {value}");
        }
    }
    out
}

fn extension_text(key: &str, ext: &Value) -> String {
    let info = &ext["info"];
    match key {
        "sign-in-with-x" => {
            let chains: Vec<String> = ext["supportedChains"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["chainId"].as_str().map(str::to_owned))
                .collect();
            format!(
                "sign in as a wallet on {} for {} (chains {}, expires {})",
                info["domain"].as_str().unwrap_or("?"),
                info["uri"].as_str().unwrap_or("?"),
                if chains.is_empty() {
                    "?".to_string()
                } else {
                    chains.join(", ")
                },
                info["expirationTime"].as_str().unwrap_or("never"),
            )
        }
        "bazaar" => {
            let input = &info["input"];
            let mut text = format!(
                "{} {}",
                input["method"].as_str().unwrap_or("?"),
                input["bodyType"].as_str().unwrap_or("")
            );
            if !input["body"].is_null() {
                let _ = write!(text, ", body like {}", input["body"]);
            }
            if !info["output"]["example"].is_null() {
                let _ = write!(text, ", answers like {}", info["output"]["example"]);
            }
            text
        }
        "payment-identifier" => {
            if info["required"] == true {
                "required (x402-pay always sends one)".into()
            } else {
                "optional (x402-pay sends one, so a retry gets the same answer)".into()
            }
        }
        "credits" => {
            let packs: Vec<String> = info["packs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    format!(
                        "{} ({} credits for {})",
                        p["name"].as_str().unwrap_or("?"),
                        p["credits"],
                        p["price"]
                            .as_str()
                            .map_or(p["price"].to_string(), str::to_owned)
                    )
                })
                .collect();
            format!(
                "prepaid credits instead of paying per call: packs {} at {}; sign in at {} \
                 (x402-pay topup / call / proxy --sign-in)",
                if packs.is_empty() {
                    "?".to_string()
                } else {
                    packs.join(", ")
                },
                info["topup"].as_str().unwrap_or("?"),
                info["session"].as_str().unwrap_or("?"),
            )
        }
        _ => ext.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue};

    use super::*;
    use crate::x402::encode_header;
    use crate::x402::header::PAYMENT_REQUIRED;
    use crate::x402::network::{SOLANA_DEVNET, USDC_DEVNET};

    #[test]
    fn every_offer_and_extension_is_shown() {
        let required = json!({
            "x402Version": 2,
            "error": "Payment required",
            "resource": {"url": "https://gw.example/v1/x402/solana/devnet/rpc", "description": "d"},
            "accepts": [
                {"scheme": "exact", "network": SOLANA_DEVNET, "amount": "1500", "asset": USDC_DEVNET,
                 "payTo": "PayTo1", "maxTimeoutSeconds": 60, "extra": {"feePayer": "Fee1", "memo": "m1"}},
                {"scheme": "exact", "network": "solana:custom", "amount": "7", "asset": "Mint2",
                 "payTo": "PayTo2", "maxTimeoutSeconds": 30, "extra": {"feePayer": "Fee2", "paymentFlow": "upfront"}}
            ],
            "extensions": {
                "bazaar": {"info": {"input": {"method": "POST", "bodyType": "json", "body": {"jsonrpc": "2.0"}}}},
                "payment-identifier": {"info": {"required": false}},
                "sign-in-with-x": {"info": {"domain": "gw.example", "uri": "https://gw.example/a",
                    "expirationTime": "2030-01-01T00:00:00.000Z"},
                    "supportedChains": [{"chainId": SOLANA_DEVNET, "type": "ed25519"}]},
                "credits": {"info": {"topup": "https://gw.example/v1/credits/topup",
                    "session": "https://gw.example/v1/credits/session",
                    "packs": [{"name": "small", "price": "100000", "credits": 100000}]}},
                "other": {"x": 1}
            }
        });
        let mut headers = HeaderMap::new();
        headers.insert(
            PAYMENT_REQUIRED,
            HeaderValue::from_str(&encode_header(&required)).unwrap(),
        );
        let challenge = Challenge::from_response(&headers, b"").unwrap();
        let text = quote_text(&challenge);
        for expected in [
            "resource: https://gw.example/v1/x402/solana/devnet/rpc (d)",
            "why: Payment required",
            "offer 1: exact on devnet",
            "1500 atomic units = 0.0015 USDC = $0.0015",
            "asset:    4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU (USDC)",
            "feePayer: Fee1",
            "memo:     m1",
            "offer 2: exact on solana:custom",
            "7 atomic units (unknown asset: no dollar price)",
            "extra.paymentFlow: \"upfront\"",
            "extension bazaar: POST json, body like {\"jsonrpc\":\"2.0\"}",
            "extension payment-identifier: optional",
            "extension sign-in-with-x: sign in as a wallet on gw.example for https://gw.example/a (chains solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1, expires 2030-01-01T00:00:00.000Z)",
            "extension credits: prepaid credits instead of paying per call: packs small (100000 credits for 100000) at https://gw.example/v1/credits/topup; sign in at https://gw.example/v1/credits/session",
            "extension other: {\"x\":1}",
        ] {
            assert!(text.contains(expected), "{expected:?} not in\n{text}");
        }
        let v = quote_json(&challenge);
        assert_eq!(v["accepts"][0]["usd"], "$0.0015");
        assert_eq!(v["accepts"][0]["symbol"], "USDC");
        assert!(v["accepts"][1].get("usd").is_none());
        assert_eq!(
            v["extensions"]["credits"]["info"]["packs"][0]["name"],
            "small"
        );
    }
}
