//! The client's proof: the decoded `SIGN-IN-WITH-X` header (standard base64 of a JSON object
//! that echoes the challenge's `info`, plus `chainId`, `type`, `address` and `signature`).
//!
//! Only the fields below are read. A `message` string sent by a client is ignored: the text that
//! was signed is always rebuilt on the server from these fields ([`super::message`]).

use serde::{Deserialize, Serialize};

use super::SiwxError;
use crate::x402::{decode_header_bytes, DecodeError};

/// Largest `SIGN-IN-WITH-X` header accepted, checked before decoding (a Solana proof with the
/// statement and one resource is about 1 KB of base64).
pub const MAX_SIWX_HEADER_BYTES: usize = 4096;

/// A decoded sign-in proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiwxProof {
    /// The authority asking for the sign-in (must be our configured public origin's).
    pub domain: String,
    /// The signer: a base58 Ed25519 public key (32 bytes).
    pub address: String,
    /// The subject of the sign-in: a URL under our configured origin.
    pub uri: String,
    /// Always `"1"`.
    pub version: String,
    /// CAIP-2 chain id (`solana:<genesis hash prefix>`).
    pub chain_id: String,
    /// Signature algorithm: `ed25519` for Solana.
    #[serde(rename = "type")]
    pub kind: String,
    /// The server's nonce, echoed.
    pub nonce: String,
    /// RFC 3339, echoed.
    pub issued_at: String,
    /// RFC 3339, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<String>,
    /// RFC 3339; the proof is not valid before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// A client-chosen request id, signed but not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Human-readable statement, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// The resources the sign-in covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<String>>,
    /// `siws` for Solana (informational; the chain id decides the verification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_scheme: Option<String>,
    /// Base58 of the 64-byte Ed25519 signature over the rebuilt message.
    pub signature: String,
}

impl SiwxProof {
    /// Decodes a header value: size cap first, then standard base64, then JSON.
    pub fn from_header(value: &[u8]) -> Result<Self, SiwxError> {
        let json = decode_header_bytes(value, MAX_SIWX_HEADER_BYTES).map_err(|e| match e {
            DecodeError::TooLarge(max) => SiwxError::TooLarge(max),
            other => SiwxError::Malformed(other.to_string()),
        })?;
        let proof: Self = serde_json::from_slice(&json)
            .map_err(|e| SiwxError::Malformed(format!("not a sign-in proof: {e}")))?;
        proof.check_lines()?;
        Ok(proof)
    }

    /// Refuses fields that would add or hide lines in the signed text (CAIP-122: no field may
    /// contain a line break), so one message text can only mean one set of fields.
    fn check_lines(&self) -> Result<(), SiwxError> {
        let mut fields: Vec<(&str, &str)> = vec![
            ("domain", &self.domain),
            ("address", &self.address),
            ("uri", &self.uri),
            ("version", &self.version),
            ("chainId", &self.chain_id),
            ("nonce", &self.nonce),
            ("issuedAt", &self.issued_at),
        ];
        for (name, value) in [
            ("expirationTime", &self.expiration_time),
            ("notBefore", &self.not_before),
            ("requestId", &self.request_id),
            ("statement", &self.statement),
        ] {
            if let Some(v) = value {
                fields.push((name, v));
            }
        }
        for r in self.resources.iter().flatten() {
            fields.push(("resources", r));
        }
        match fields.iter().find(|(_, v)| v.chars().any(char::is_control)) {
            Some((name, _)) => Err(SiwxError::Malformed(format!(
                "{name} contains a control character"
            ))),
            None => Ok(()),
        }
    }

    /// Encodes the proof as a header value (clients and tests).
    pub fn to_header(&self) -> String {
        crate::x402::encode_header(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_example() -> (String, serde_json::Value) {
        // Vendored in the repository (see tests/fixtures/x402-vectors/README.md).
        let text = include_str!("../../tests/fixtures/x402-vectors/http-header-examples.json");
        let all: serde_json::Value = serde_json::from_str(text).unwrap();
        let example = all["examples"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["header"] == "SIGN-IN-WITH-X")
            .expect("the spec's SIGN-IN-WITH-X example")
            .clone();
        (
            example["value"].as_str().unwrap().to_string(),
            example["decodedJson"].clone(),
        )
    }

    #[test]
    fn decodes_the_spec_header_example() {
        let (value, decoded) = spec_example();
        let proof = SiwxProof::from_header(value.as_bytes()).unwrap();
        assert_eq!(proof.domain, "api.example.com");
        assert_eq!(proof.chain_id, "eip155:8453");
        assert_eq!(proof.kind, "eip191");
        assert_eq!(proof.nonce, "a1b2c3d4e5f67890a1b2c3d4e5f67890");
        assert_eq!(
            proof.expiration_time.as_deref(),
            Some("2024-01-15T10:35:00.000Z")
        );
        assert_eq!(
            proof.resources,
            Some(vec!["https://api.example.com/premium-data".to_string()])
        );
        // Every field of the example is one we read, and re-encoding gives the same JSON.
        assert_eq!(serde_json::to_value(&proof).unwrap(), decoded);
    }

    #[test]
    fn refuses_oversized_before_decoding() {
        let big = vec![b'A'; MAX_SIWX_HEADER_BYTES + 1];
        assert_eq!(
            SiwxProof::from_header(&big),
            Err(SiwxError::TooLarge(MAX_SIWX_HEADER_BYTES))
        );
    }

    #[test]
    fn refuses_bad_base64_json_and_missing_fields() {
        let b64 = |s: &str| {
            crate::x402::encode_header(&serde_json::from_str::<serde_json::Value>(s).unwrap())
        };
        for value in [
            "%%%not-base64".to_string(),
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b"not json"),
            b64(r#"{"domain":"a"}"#),
            b64(r#"[1,2]"#),
        ] {
            assert!(
                matches!(
                    SiwxProof::from_header(value.as_bytes()),
                    Err(SiwxError::Malformed(_))
                ),
                "{value}"
            );
        }
    }

    #[test]
    fn refuses_line_breaks_in_fields() {
        let (value, mut decoded) = spec_example();
        assert!(SiwxProof::from_header(value.as_bytes()).is_ok());
        decoded["statement"] = "Sign in\nURI: https://evil.example".into();
        let err = SiwxProof::from_header(crate::x402::encode_header(&decoded).as_bytes());
        assert!(matches!(err, Err(SiwxError::Malformed(m)) if m.contains("statement")));
    }
}
