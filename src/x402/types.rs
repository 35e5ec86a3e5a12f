//! x402 JSON messages. Unknown fields are tolerated (ignored) so newer clients keep working;
//! `extra`, `extensions` and the scheme payload stay as JSON maps because their shape belongs to
//! the scheme or extension that reads them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::header::DecodeError;

/// The protocol version we speak natively.
pub const X402_VERSION: u8 = 2;

/// The resource a challenge is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    /// Absolute URL of the resource, from our configured public base URL.
    pub url: String,
    /// Human description.
    #[serde(default)]
    pub description: String,
    /// MIME type of the paid answer.
    #[serde(default)]
    pub mime_type: String,
}

/// One way to pay (an entry of `accepts`, and `PaymentPayload.accepted`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirements {
    /// `exact`.
    pub scheme: String,
    /// CAIP-2 network id.
    pub network: String,
    /// Atomic units of `asset`, as a decimal string.
    pub amount: String,
    /// Token mint.
    pub asset: String,
    /// Owner wallet that receives (its associated token account does).
    pub pay_to: String,
    /// How long the payment may take.
    pub max_timeout_seconds: u64,
    /// Scheme-specific terms (SVM: `feePayer`, `memo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Map<String, Value>>,
}

/// Which field of `accepted` differs from what the server requires for this request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("accepted.{field} does not match the requirement for this request")]
pub struct Mismatch {
    /// The differing field.
    pub field: &'static str,
}

impl PaymentRequirements {
    /// A string field of `extra`, treating `""` as absent.
    pub fn extra_str(&self, key: &str) -> Option<&str> {
        self.extra
            .as_ref()
            .and_then(|e| e.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The SVM fee payer.
    pub fn fee_payer(&self) -> Option<&str> {
        self.extra_str("feePayer")
    }

    /// The seller memo the transfer must carry, if any.
    pub fn memo(&self) -> Option<&str> {
        self.extra_str("memo")
    }

    /// Checks that `self` (what the client accepted) is the same deal as `required`: every field
    /// that defines what is paid, to whom, on which chain and through which fee payer. Hints a
    /// server may add per request (e.g. `extra.recentBlockhash`) are not compared.
    pub fn matches(&self, required: &PaymentRequirements) -> Result<(), Mismatch> {
        let checks: [(&'static str, bool); 8] = [
            ("scheme", self.scheme == required.scheme),
            ("network", self.network == required.network),
            ("amount", self.amount == required.amount),
            ("asset", self.asset == required.asset),
            ("payTo", self.pay_to == required.pay_to),
            (
                "maxTimeoutSeconds",
                self.max_timeout_seconds == required.max_timeout_seconds,
            ),
            ("extra.feePayer", self.fee_payer() == required.fee_payer()),
            ("extra.memo", self.memo() == required.memo()),
        ];
        match checks.into_iter().find(|(_, ok)| !ok) {
            Some((field, _)) => Err(Mismatch { field }),
            None => Ok(()),
        }
    }
}

/// The 402 challenge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    /// Always 2.
    pub x402_version: u8,
    /// Why payment is (still) required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The resource.
    pub resource: ResourceInfo,
    /// Ways to pay.
    pub accepts: Vec<PaymentRequirements>,
    /// Extensions (`bazaar`, `sign-in-with-x`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Map<String, Value>>,
}

/// A v2 payment (decoded `PAYMENT-SIGNATURE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayload {
    /// 2.
    pub x402_version: u8,
    /// The resource, as the client copied it from the challenge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceInfo>,
    /// The requirement the client chose.
    pub accepted: PaymentRequirements,
    /// Scheme payload (SVM exact: `{"transaction": base64}`).
    pub payload: Value,
    /// Extensions echoed by the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Map<String, Value>>,
}

/// A v1 payment (decoded `X-PAYMENT`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayloadV1 {
    /// 1.
    pub x402_version: u8,
    /// `exact`.
    pub scheme: String,
    /// v1 network name (`solana`, `solana-devnet`).
    pub network: String,
    /// Scheme payload.
    pub payload: Value,
}

/// v1 requirements, as sent to a facilitator for a v1 payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirementsV1 {
    /// `exact`.
    pub scheme: String,
    /// v1 network name.
    pub network: String,
    /// Atomic amount.
    pub max_amount_required: String,
    /// Resource URL.
    pub resource: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// MIME type.
    #[serde(default)]
    pub mime_type: String,
    /// Receiver.
    pub pay_to: String,
    /// Timeout.
    pub max_timeout_seconds: u64,
    /// Mint.
    pub asset: String,
    /// Scheme terms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Map<String, Value>>,
    /// v1 discovery (what Bazaar's `info` became in v2): `{input, output}`. Only in challenges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
}

/// The v1 402 challenge, sent as the 402 *body* (v1 had no `PAYMENT-REQUIRED` header).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequiredV1 {
    /// Always 1.
    pub x402_version: u8,
    /// Why payment is (still) required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Ways to pay, each naming the resource itself.
    pub accepts: Vec<PaymentRequirementsV1>,
}

/// A decoded payment header of either version.
#[derive(Debug, Clone, PartialEq)]
pub enum PaymentHeader {
    /// `PAYMENT-SIGNATURE` (boxed: it is much larger than the v1 shape).
    V2(Box<PaymentPayload>),
    /// `X-PAYMENT`.
    V1(PaymentPayloadV1),
}

impl PaymentHeader {
    /// Parses decoded header JSON, dispatching on `x402Version`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Version {
            x402_version: u64,
        }
        let version: Version =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?;
        match version.x402_version {
            2 => serde_json::from_slice(bytes)
                .map(|p| PaymentHeader::V2(Box::new(p)))
                .map_err(|e| DecodeError::Json(e.to_string())),
            1 => serde_json::from_slice(bytes)
                .map(PaymentHeader::V1)
                .map_err(|e| DecodeError::Json(e.to_string())),
            other => Err(DecodeError::Version(other)),
        }
    }

    /// The protocol version.
    pub fn version(&self) -> u8 {
        match self {
            PaymentHeader::V2(_) => 2,
            PaymentHeader::V1(_) => 1,
        }
    }

    /// The scheme payload.
    pub fn payload(&self) -> &Value {
        match self {
            PaymentHeader::V2(p) => &p.payload,
            PaymentHeader::V1(p) => &p.payload,
        }
    }

    /// The SVM exact transaction (base64), if the payload has one.
    pub fn svm_transaction(&self) -> Option<&str> {
        self.payload().get("transaction").and_then(Value::as_str)
    }
}

/// `POST /verify` and `POST /settle` body, typed by protocol generation. On the wire it is
/// `{"x402Version", "paymentPayload", "paymentRequirements"}`; parsing it types both halves
/// once (a payload or requirements of the wrong shape is refused with its reason), so nothing
/// behind the facilitator boundary handles `serde_json::Value`.
#[derive(Debug, Clone, PartialEq)]
pub enum FacilitatorRequest {
    /// A v2 payment against v2 requirements.
    V2 {
        /// The client's payment.
        payload: Box<PaymentPayload>,
        /// The server's own requirements.
        requirements: Box<PaymentRequirements>,
    },
    /// A v1 payment against v1 requirements.
    V1 {
        /// The client's payment.
        payload: Box<PaymentPayloadV1>,
        /// The server's own requirements.
        requirements: Box<PaymentRequirementsV1>,
    },
}

/// The wire shape of [`FacilitatorRequest`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireRequest<P, R> {
    /// Mirrors the payload's version.
    pub x402_version: u8,
    /// The client's payment.
    pub payment_payload: P,
    /// The server's own requirements.
    pub payment_requirements: R,
}

/// Why a facilitator request could not be typed: answered as a refusal with `reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct RequestShapeError {
    /// `invalid_x402_version`, `invalid_payload` or `invalid_payment_requirements`.
    pub reason: &'static str,
    /// What exactly.
    pub message: String,
}

impl FacilitatorRequest {
    /// The protocol generation.
    pub fn x402_version(&self) -> u8 {
        match self {
            Self::V2 { .. } => 2,
            Self::V1 { .. } => 1,
        }
    }

    /// Types a request read as loose JSON, with the refusal reason of whatever is off.
    pub fn from_wire(wire: WireRequest<Value, Value>) -> Result<Self, RequestShapeError> {
        use super::reasons::{INVALID_PAYLOAD, INVALID_PAYMENT_REQUIREMENTS, INVALID_X402_VERSION};
        let refuse = |reason, message: String| RequestShapeError { reason, message };
        let payload_version = wire
            .payment_payload
            .get("x402Version")
            .and_then(Value::as_u64);
        match wire.x402_version {
            1 | 2 if payload_version.is_some_and(|v| v != u64::from(wire.x402_version)) => {
                return Err(refuse(
                    INVALID_X402_VERSION,
                    "paymentPayload.x402Version differs from x402Version".into(),
                ))
            }
            1 | 2 => {}
            v => {
                return Err(refuse(
                    INVALID_X402_VERSION,
                    format!("x402Version {v} is not supported (1 or 2)"),
                ))
            }
        }
        let payload =
            |e: serde_json::Error| refuse(INVALID_PAYLOAD, format!("paymentPayload: {e}"));
        let requirements = |e: serde_json::Error| {
            refuse(
                INVALID_PAYMENT_REQUIREMENTS,
                format!("paymentRequirements: {e}"),
            )
        };
        Ok(if wire.x402_version == 2 {
            Self::V2 {
                payload: serde_json::from_value(wire.payment_payload).map_err(payload)?,
                requirements: serde_json::from_value(wire.payment_requirements)
                    .map_err(requirements)?,
            }
        } else {
            Self::V1 {
                payload: serde_json::from_value(wire.payment_payload).map_err(payload)?,
                requirements: serde_json::from_value(wire.payment_requirements)
                    .map_err(requirements)?,
            }
        })
    }
}

impl Serialize for FacilitatorRequest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::V2 {
                payload,
                requirements,
            } => WireRequest {
                x402_version: 2,
                payment_payload: payload,
                payment_requirements: requirements,
            }
            .serialize(serializer),
            Self::V1 {
                payload,
                requirements,
            } => WireRequest {
                x402_version: 1,
                payment_payload: payload,
                payment_requirements: requirements,
            }
            .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for FacilitatorRequest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireRequest::<Value, Value>::deserialize(deserializer)?;
        Self::from_wire(wire).map_err(serde::de::Error::custom)
    }
}

/// `/verify` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// Valid?
    pub is_valid: bool,
    /// Machine reason when invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    /// Human detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_message: Option<String>,
    /// The payer (SVM: transfer authority).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
}

/// `/settle` answer, and the `PAYMENT-RESPONSE` content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleResponse {
    /// Settled?
    pub success: bool,
    /// Machine reason when not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    /// Human detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Transaction signature (base58), `""` when nothing was broadcast.
    #[serde(default)]
    pub transaction: String,
    /// CAIP-2 network (v1: the v1 name).
    #[serde(default)]
    pub network: String,
    /// The payer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
}

/// One kind a facilitator supports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedKind {
    /// Protocol version.
    pub x402_version: u8,
    /// Scheme.
    pub scheme: String,
    /// Network.
    pub network: String,
    /// Kind terms (SVM: `feePayer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Map<String, Value>>,
}

/// `/supported` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedResponse {
    /// Supported kinds.
    pub kinds: Vec<SupportedKind>,
    /// Extension keys implemented.
    #[serde(default)]
    pub extensions: Vec<String>,
    /// Signer addresses per CAIP family pattern (`solana:*`).
    #[serde(default)]
    pub signers: BTreeMap<String, Vec<String>>,
}

impl SupportedResponse {
    /// The fee payer advertised for `(scheme, network)` in a v2 kind.
    pub fn fee_payer(&self, scheme: &str, network: &str) -> Option<&str> {
        self.kinds
            .iter()
            .filter(|k| {
                k.x402_version == X402_VERSION && k.scheme == scheme && k.network == network
            })
            .find_map(|k| k.extra.as_ref()?.get("feePayer")?.as_str())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::x402::{decode_header, encode_header};

    fn examples() -> Vec<Value> {
        // Vendored in the repository (see tests/fixtures/x402-vectors/README.md).
        let text = include_str!("../../tests/fixtures/x402-vectors/http-header-examples.json");
        let doc: Value = serde_json::from_str(text).unwrap();
        doc["examples"].as_array().unwrap().clone()
    }

    #[test]
    fn official_header_examples_decode_and_reencode_identically() {
        let mut checked = 0;
        for ex in examples() {
            let header = ex["header"].as_str().unwrap();
            let value = ex["value"].as_str().unwrap();
            let decoded = ex["decodedJson"].clone();
            match header {
                "PAYMENT-REQUIRED" => {
                    let typed: PaymentRequired =
                        decode_header(value.as_bytes(), 16 * 1024).unwrap();
                    assert_eq!(typed.x402_version, 2);
                    assert_eq!(
                        serde_json::to_value(&typed.accepts).unwrap(),
                        decoded["accepts"]
                    );
                }
                "PAYMENT-SIGNATURE" | "X-PAYMENT" => {
                    let raw: Value = decode_header(value.as_bytes(), 16 * 1024).unwrap();
                    assert_eq!(raw, decoded);
                    let bytes = serde_json::to_vec(&raw).unwrap();
                    let typed = PaymentHeader::from_json(&bytes).unwrap();
                    assert_eq!(
                        typed.version() as u64,
                        decoded["x402Version"].as_u64().unwrap()
                    );
                }
                "PAYMENT-RESPONSE" | "X-PAYMENT-RESPONSE" => {
                    let typed: SettleResponse = decode_header(value.as_bytes(), 16 * 1024).unwrap();
                    assert_eq!(serde_json::to_value(&typed).unwrap(), decoded);
                    if ex["reencodesIdentically"] == json!(true) {
                        assert_eq!(
                            encode_header(&typed),
                            value,
                            "compact re-encoding is byte-identical"
                        );
                    }
                }
                _ => {
                    let raw: Value = decode_header(value.as_bytes(), 16 * 1024).unwrap();
                    assert_eq!(raw, decoded);
                }
            }
            checked += 1;
        }
        assert_eq!(checked, 10);
    }

    #[test]
    fn decoder_refuses_oversize_non_base64_and_unknown_versions() {
        let big = "A".repeat(9000);
        assert_eq!(
            decode_header::<Value>(big.as_bytes(), 8192),
            Err(DecodeError::TooLarge(8192))
        );
        assert_eq!(
            decode_header::<Value>(b"not*base64", 8192),
            Err(DecodeError::Base64)
        );
        assert_eq!(
            decode_header::<Value>(b"eyJ4Ijox-_", 8192),
            Err(DecodeError::Base64),
            "base64url is refused"
        );
        let v3 = encode_header(&json!({"x402Version": 3}));
        let raw: Value = decode_header(v3.as_bytes(), 8192).unwrap();
        assert_eq!(
            PaymentHeader::from_json(&serde_json::to_vec(&raw).unwrap()),
            Err(DecodeError::Version(3))
        );
        // Unpadded base64 is accepted, as the reference decoder does.
        let padded = encode_header(&json!({"a": 1}));
        let unpadded = padded.trim_end_matches('=');
        assert_eq!(
            decode_header::<Value>(unpadded.as_bytes(), 8192).unwrap(),
            json!({"a": 1})
        );
    }

    fn req() -> PaymentRequirements {
        PaymentRequirements {
            scheme: "exact".into(),
            network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1".into(),
            amount: "1000".into(),
            asset: "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU".into(),
            pay_to: "2wKupLR9q6wXYppw8Gr2NvWxKBUqm4PPJKkQfoxHDBg4".into(),
            max_timeout_seconds: 60,
            extra: Some(
                json!({"feePayer": "EwWqGE4ZFKLofuestmU4LDdK7XM1N4ALgdZccwYugwGd"})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        }
    }

    #[test]
    fn matching_compares_the_deal_not_the_hints() {
        let required = req();
        let mut accepted = req();
        accepted
            .extra
            .as_mut()
            .unwrap()
            .insert("recentBlockhash".into(), json!("abc"));
        accepted
            .extra
            .as_mut()
            .unwrap()
            .insert("memo".into(), json!(""));
        assert_eq!(accepted.matches(&required), Ok(()));
        let mut cheap = req();
        cheap.amount = "999".into();
        assert_eq!(cheap.matches(&required), Err(Mismatch { field: "amount" }));
        let mut other_fee_payer = req();
        other_fee_payer.extra = None;
        assert_eq!(
            other_fee_payer.matches(&required),
            Err(Mismatch {
                field: "extra.feePayer"
            })
        );
        let mut elsewhere = req();
        elsewhere.pay_to = "9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu".into();
        assert_eq!(
            elsewhere.matches(&required),
            Err(Mismatch { field: "payTo" })
        );
    }
}
