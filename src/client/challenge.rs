//! A 402 answer, decoded once: the v2 `PAYMENT-REQUIRED` challenge, why payment is (still)
//! required, and the choice of the offer to pay.

use http::HeaderMap;
use serde_json::Value;

use super::error::ClientError;
use crate::x402::header::PAYMENT_REQUIRED;
use crate::x402::{decode_header, PaymentRequired, PaymentRequirements};

/// Challenge headers are small (ours is about 1 KB); refuse anything absurd.
pub const MAX_CHALLENGE_BYTES: usize = 64 * 1024;

/// Which offers the payer is willing to take, beyond "exact on Solana".
#[derive(Debug, Clone, Default)]
pub struct OfferFilter {
    /// Only this CAIP-2 network.
    pub network: Option<String>,
    /// Only this mint.
    pub asset: Option<String>,
}

/// A decoded 402.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// The challenge of the `PAYMENT-REQUIRED` header.
    pub required: PaymentRequired,
    /// The machine code of the 402 body's `error`, when it has one (e.g. the credits API's
    /// `insufficient_balance`).
    pub body_error: Option<String>,
}

impl Challenge {
    /// Decodes a 402's headers and body.
    pub fn from_response(headers: &HeaderMap, body: &[u8]) -> Result<Self, ClientError> {
        let body_json: Option<Value> = serde_json::from_slice(body).ok();
        let Some(header) = headers.get(PAYMENT_REQUIRED) else {
            let v1 = body_json
                .as_ref()
                .and_then(|b| b.get("x402Version"))
                .and_then(Value::as_u64)
                == Some(1);
            return Err(if v1 {
                ClientError::V1Only
            } else {
                ClientError::NotX402("no header".into())
            });
        };
        let required: PaymentRequired = decode_header(header.as_bytes(), MAX_CHALLENGE_BYTES)
            .map_err(|e| ClientError::NotX402(e.to_string()))?;
        Ok(Self {
            required,
            body_error: body_json.as_ref().and_then(error_code),
        })
    }

    /// Why payment is (still) required: the challenge's `error`, else the body's.
    pub fn error(&self) -> Option<&str> {
        self.required
            .error
            .as_deref()
            .or(self.body_error.as_deref())
    }

    /// Whether the server said `code` (as the body's code, or leading the challenge's error).
    pub fn says(&self, code: &str) -> bool {
        self.body_error.as_deref() == Some(code)
            || self
                .required
                .error
                .as_deref()
                .is_some_and(|e| e == code || e.starts_with(&format!("{code}:")))
    }

    /// The first `exact` offer on a Solana network that passes `filter` and names a fee payer.
    pub fn select(&self, filter: &OfferFilter) -> Result<&PaymentRequirements, ClientError> {
        self.required
            .accepts
            .iter()
            .filter(|r| r.scheme == "exact" && r.network.starts_with("solana:"))
            .filter(|r| filter.network.as_ref().is_none_or(|n| *n == r.network))
            .filter(|r| filter.asset.as_ref().is_none_or(|a| *a == r.asset))
            .find(|r| r.fee_payer().is_some())
            .ok_or_else(|| ClientError::NoOffer {
                filter: describe_filter(filter),
                offered: if self.required.accepts.is_empty() {
                    "none".into()
                } else {
                    self.required
                        .accepts
                        .iter()
                        .map(|r| format!("{} on {}", r.scheme, r.network))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })
    }

    /// The extension `key` of the challenge.
    pub fn extension(&self, key: &str) -> Option<&Value> {
        self.required.extensions.as_ref()?.get(key)
    }
}

fn describe_filter(filter: &OfferFilter) -> String {
    let mut parts = Vec::new();
    if let Some(n) = &filter.network {
        parts.push(format!("network {n}"));
    }
    if let Some(a) = &filter.asset {
        parts.push(format!("asset {a}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" for {}", parts.join(" and "))
    }
}

/// The machine code of an error body: `{"error": "code"}`, `{"error": {"code": "..."}}`, or a
/// JSON-RPC error's `error.data.reason`.
pub fn error_code(body: &Value) -> Option<String> {
    let error = body.get("error")?;
    error
        .as_str()
        .or_else(|| error.get("code").and_then(Value::as_str))
        .or_else(|| error.pointer("/data/reason").and_then(Value::as_str))
        .map(str::to_owned)
}

/// The message of an error body (`error.message`), else its code.
pub fn error_message(body: &Value) -> Option<String> {
    body.pointer("/error/message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| error_code(body))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use serde_json::json;

    use super::*;
    use crate::x402::encode_header;

    fn offer(scheme: &str, network: &str, fee_payer: bool) -> Value {
        let mut o = json!({"scheme": scheme, "network": network, "amount": "1000",
            "asset": "A", "payTo": "P", "maxTimeoutSeconds": 60});
        if fee_payer {
            o["extra"] = json!({"feePayer": "F"});
        }
        o
    }

    fn challenge(
        accepts: Value,
        error: Option<&str>,
        body: &str,
    ) -> Result<Challenge, ClientError> {
        let mut required = json!({"x402Version": 2, "resource": {"url": "https://x/y"},
            "accepts": accepts});
        if let Some(e) = error {
            required["error"] = e.into();
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            PAYMENT_REQUIRED,
            HeaderValue::from_str(&encode_header(&required)).unwrap(),
        );
        Challenge::from_response(&headers, body.as_bytes())
    }

    #[test]
    fn picks_the_first_exact_solana_offer_with_a_fee_payer() {
        let c = challenge(
            json!([
                offer("exact", "eip155:8453", true),
                offer("upto", "solana:x", true),
                offer("exact", "solana:nofee", false),
                offer("exact", "solana:a", true),
                offer("exact", "solana:b", true),
            ]),
            None,
            "",
        )
        .unwrap();
        assert_eq!(
            c.select(&OfferFilter::default()).unwrap().network,
            "solana:a"
        );
        let only_b = OfferFilter {
            network: Some("solana:b".into()),
            asset: None,
        };
        assert_eq!(c.select(&only_b).unwrap().network, "solana:b");
        let none = OfferFilter {
            network: Some("solana:c".into()),
            asset: None,
        };
        let err = c.select(&none).unwrap_err().to_string();
        assert!(
            err.contains("for network solana:c") && err.contains("exact on eip155:8453"),
            "{err}"
        );
    }

    #[test]
    fn reasons_come_from_the_challenge_or_the_body() {
        let c = challenge(json!([]), Some("insufficient_balance: 3 < 5"), "").unwrap();
        assert!(c.says("insufficient_balance"));
        assert!(!c.says("insufficient"));
        let c = challenge(
            json!([]),
            Some("Payment required"),
            r#"{"error":{"code":"insufficient_balance","message":"m"}}"#,
        )
        .unwrap();
        assert!(c.says("insufficient_balance"));
        assert_eq!(c.error(), Some("Payment required"));
        assert!(matches!(
            c.select(&OfferFilter::default()),
            Err(ClientError::NoOffer { offered, .. }) if offered == "none"
        ));
    }

    #[test]
    fn v1_and_non_x402_402s_are_told_apart() {
        let headers = HeaderMap::new();
        assert!(matches!(
            Challenge::from_response(&headers, br#"{"x402Version":1,"accepts":[]}"#),
            Err(ClientError::V1Only)
        ));
        assert!(matches!(
            Challenge::from_response(&headers, b"pay me"),
            Err(ClientError::NotX402(_))
        ));
        let mut garbage = HeaderMap::new();
        garbage.insert(PAYMENT_REQUIRED, HeaderValue::from_static("%%%"));
        assert!(matches!(
            Challenge::from_response(&garbage, b""),
            Err(ClientError::NotX402(_))
        ));
    }

    #[test]
    fn error_codes_of_the_usual_bodies() {
        assert_eq!(error_code(&json!({"error": "x"})).as_deref(), Some("x"));
        assert_eq!(
            error_code(&json!({"error": {"code": "y", "message": "m"}})).as_deref(),
            Some("y")
        );
        assert_eq!(
            error_code(
                &json!({"jsonrpc": "2.0", "error": {"code": -32602, "data": {"reason": "z"}}})
            )
            .as_deref(),
            Some("z")
        );
        assert_eq!(error_code(&json!({"result": 1})), None);
        assert_eq!(
            error_message(&json!({"error": {"code": "y", "message": "m"}})).as_deref(),
            Some("m")
        );
    }
}
