//! The `sign-in-with-x` extension of a 402 challenge (x402 `specs/extensions/sign-in-with-x.md`):
//! `info` (what to sign), `supportedChains` (how), `schema` (the proof's JSON Schema).

use serde::Serialize;
use serde_json::{json, Value};

use super::time::format_rfc3339_ms;
use super::Verifier;

/// Extension key in `PaymentRequired.extensions`.
pub const EXTENSION_KEY: &str = "sign-in-with-x";

/// What the client must sign (echoed field by field in its proof).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeInfo {
    /// Our configured public origin's authority (`host[:port]`).
    pub domain: String,
    /// The resource's URL under our configured public origin.
    pub uri: String,
    /// `"1"`.
    pub version: String,
    /// 32 hex characters, server-issued (see [`super::nonce`]).
    pub nonce: String,
    /// Now, RFC 3339 UTC with milliseconds.
    pub issued_at: String,
    /// `issuedAt` + the configured life.
    pub expiration_time: String,
    /// Shown in the wallet.
    pub statement: String,
    /// `[uri]`.
    pub resources: Vec<String>,
}

/// A chain the server accepts proofs from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedChain {
    /// CAIP-2 id.
    pub chain_id: String,
    /// `ed25519` for Solana.
    #[serde(rename = "type")]
    pub kind: String,
    /// `siws`.
    pub signature_scheme: String,
}

/// The whole extension value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SiwxExtension {
    /// What to sign.
    pub info: ChallengeInfo,
    /// Accepted chains.
    pub supported_chains: Vec<SupportedChain>,
    /// JSON Schema (draft 2020-12) of the proof.
    pub schema: Value,
}

/// JSON Schema of a proof (the `SIGN-IN-WITH-X` JSON), as the x402 reference declares it.
pub fn proof_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "domain": {"type": "string"},
            "address": {"type": "string"},
            "statement": {"type": "string"},
            "uri": {"type": "string", "format": "uri"},
            "version": {"type": "string"},
            "chainId": {"type": "string"},
            "type": {"type": "string"},
            "nonce": {"type": "string"},
            "issuedAt": {"type": "string", "format": "date-time"},
            "expirationTime": {"type": "string", "format": "date-time"},
            "notBefore": {"type": "string", "format": "date-time"},
            "requestId": {"type": "string"},
            "resources": {"type": "array", "items": {"type": "string", "format": "uri"}},
            "signatureScheme": {"type": "string"},
            "signature": {"type": "string"}
        },
        "required": ["domain", "address", "uri", "version", "chainId", "type", "nonce", "issuedAt", "signature"]
    })
}

impl Verifier {
    /// A fresh challenge for `resource_url` (an absolute URL under our public origin): new
    /// nonce, `issuedAt` = `now_ms`. Costs one HMAC; nothing is stored.
    pub fn challenge(&self, resource_url: &str, now_ms: i64) -> SiwxExtension {
        let issued_at = format_rfc3339_ms(now_ms);
        let expiration_time = format_rfc3339_ms(now_ms + self.expiration_ms());
        SiwxExtension {
            info: ChallengeInfo {
                domain: self.origin().domain().to_string(),
                uri: resource_url.to_string(),
                version: "1".into(),
                nonce: self.nonce_key().issue(&issued_at, &expiration_time),
                issued_at,
                expiration_time,
                statement: self.statement().to_string(),
                resources: vec![resource_url.to_string()],
            },
            supported_chains: self
                .chains()
                .iter()
                .map(|chain_id| SupportedChain {
                    chain_id: chain_id.clone(),
                    kind: "ed25519".into(),
                    signature_scheme: "siws".into(),
                })
                .collect(),
            schema: proof_schema(),
        }
    }
}
