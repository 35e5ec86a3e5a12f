//! Signing a `sign-in-with-x` challenge with the wallet: the proof echoes the challenge's
//! `info` field by field, names a Solana chain the server supports, and signs the SIWS text
//! ([`crate::siwx::siws_message`], the same text the server rebuilds).

use serde_json::Value;
use solana_keypair::Keypair;
use solana_signer::Signer;

use super::error::ClientError;
use crate::siwx::{siws_message, SiwxProof, EXTENSION_KEY};

/// The signed proof for the `sign-in-with-x` extension value `ext`.
pub fn sign_in(ext: &Value, wallet: &Keypair) -> Result<SiwxProof, ClientError> {
    let bad = |what: &str| ClientError::Credits(format!("the {EXTENSION_KEY} challenge {what}"));
    let info = ext.get("info").ok_or_else(|| bad("has no info"))?;
    let text = |key: &str| info.get(key).and_then(Value::as_str).map(str::to_owned);
    let required = |key: &str| text(key).ok_or_else(|| bad(&format!("has no info.{key}")));
    let chain_id = ext
        .get("supportedChains")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| {
            c["chainId"]
                .as_str()
                .is_some_and(|id| id.starts_with("solana:"))
                && c["type"].as_str().is_none_or(|t| t == "ed25519")
        })
        .and_then(|c| c["chainId"].as_str())
        .ok_or_else(|| bad("supports no Solana chain"))?
        .to_string();
    let resources = info.get("resources").and_then(Value::as_array).map(|r| {
        r.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    });
    let mut proof = SiwxProof {
        domain: required("domain")?,
        address: wallet.pubkey().to_string(),
        uri: required("uri")?,
        version: text("version").unwrap_or_else(|| "1".into()),
        chain_id,
        kind: "ed25519".into(),
        nonce: required("nonce")?,
        issued_at: required("issuedAt")?,
        expiration_time: text("expirationTime"),
        not_before: text("notBefore"),
        request_id: text("requestId"),
        statement: text("statement"),
        resources,
        signature_scheme: Some("siws".into()),
        signature: String::new(),
    };
    proof.signature = wallet
        .sign_message(siws_message(&proof).as_bytes())
        .to_string();
    Ok(proof)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_proof_verifies_against_the_text_the_server_rebuilds() {
        let wallet = Keypair::new();
        let ext = json!({
            "info": {"domain": "gw.example", "uri": "https://gw.example/v1/credits/session",
                "version": "1", "nonce": "00112233445566778899aabbccddeeff",
                "issuedAt": "2030-01-01T00:00:00.000Z", "expirationTime": "2030-01-01T00:05:00.000Z",
                "statement": "Sign in", "resources": ["https://gw.example/v1/credits/session"]},
            "supportedChains": [{"chainId": "eip155:8453", "type": "eip191"},
                {"chainId": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", "type": "ed25519"}]
        });
        let proof = sign_in(&ext, &wallet).unwrap();
        assert_eq!(proof.chain_id, "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1");
        assert_eq!(proof.address, wallet.pubkey().to_string());
        let signature: [u8; 64] = bs58::decode(&proof.signature)
            .into_vec()
            .unwrap()
            .try_into()
            .unwrap();
        let key = ed25519_dalek::VerifyingKey::from_bytes(&wallet.pubkey().to_bytes()).unwrap();
        key.verify_strict(
            siws_message(&proof).as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&signature),
        )
        .expect("the signature verifies");
        // Round trip through the header codec the server reads.
        let decoded = SiwxProof::from_header(proof.to_header().as_bytes()).unwrap();
        assert_eq!(decoded, proof);
    }

    #[test]
    fn a_challenge_without_a_solana_chain_is_refused() {
        let ext = json!({"info": {"domain": "d", "uri": "u", "nonce": "n", "issuedAt": "t"},
            "supportedChains": [{"chainId": "eip155:1", "type": "eip191"}]});
        let err = sign_in(&ext, &Keypair::new()).unwrap_err().to_string();
        assert!(err.contains("supports no Solana chain"), "{err}");
        let err = sign_in(&json!({"info": {}}), &Keypair::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("info.domain") || err.contains("Solana chain"),
            "{err}"
        );
    }
}
