//! The verifier against proofs signed with real Ed25519 keys.

use ed25519_dalek::{Signer, SigningKey, Verifier as _};
use serde_json::Value;
use url::Url;

use super::time::{format_rfc3339_ms, parse_rfc3339_ms};
use super::*;
use crate::config::SiwxConfig;

const NOW: i64 = 1_760_000_000_000;
const RESOURCE: &str = "https://api.example.com/v1/x402/tokens/v1/tokens";
const MAINNET: &str = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp";

fn verifier() -> Verifier {
    Verifier::new(
        &SiwxConfig::default(),
        PublicOrigin::new(&Url::parse("https://api.example.com").unwrap()),
        NonceKey::from_secret("test-secret"),
    )
}

fn wallet() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

/// The proof a well-behaved client builds from a challenge issued at `issued_ms`.
fn unsigned(v: &Verifier, key: &SigningKey, issued_ms: i64) -> SiwxProof {
    let ext = v.challenge(RESOURCE, issued_ms);
    SiwxProof {
        domain: ext.info.domain,
        address: bs58::encode(key.verifying_key().as_bytes()).into_string(),
        uri: ext.info.uri,
        version: ext.info.version,
        chain_id: MAINNET.into(),
        kind: "ed25519".into(),
        nonce: ext.info.nonce,
        issued_at: ext.info.issued_at,
        expiration_time: Some(ext.info.expiration_time),
        not_before: None,
        request_id: None,
        statement: Some(ext.info.statement),
        resources: Some(ext.info.resources),
        signature_scheme: Some("siws".into()),
        signature: String::new(),
    }
}

fn sign(mut proof: SiwxProof, key: &SigningKey) -> SiwxProof {
    proof.signature =
        bs58::encode(key.sign(siws_message(&proof).as_bytes()).to_bytes()).into_string();
    proof
}

/// Re-issues the nonce for edited times, as the server would have for such a challenge.
fn renonce(proof: &mut SiwxProof) {
    proof.nonce = NonceKey::from_secret("test-secret")
        .issue(&proof.issued_at, proof.expiration_time.as_deref().unwrap());
}

#[test]
fn a_signed_challenge_verifies() {
    let v = verifier();
    let key = wallet();
    let proof = sign(unsigned(&v, &key, NOW), &key);
    let ok = v.verify(&proof, RESOURCE, NOW + 1_000).expect("valid");
    assert_eq!(ok.address, proof.address);
    assert_eq!(ok.nonce, proof.nonce);
    assert_eq!(ok.expires_at_ms, NOW + 300_000);
    assert_eq!(ok.proof_hash.len(), 64);
    // It also survives the header round trip.
    let decoded = SiwxProof::from_header(proof.to_header().as_bytes()).unwrap();
    assert_eq!(v.verify(&decoded, RESOURCE, NOW).unwrap(), ok);
}

#[test]
fn the_challenge_has_the_documented_shape() {
    let v = verifier();
    let ext = serde_json::to_value(v.challenge(RESOURCE, NOW)).unwrap();
    let info = &ext["info"];
    assert_eq!(info["domain"], "api.example.com");
    assert_eq!(info["uri"], RESOURCE);
    assert_eq!(info["version"], "1");
    assert_eq!(info["issuedAt"], format_rfc3339_ms(NOW));
    assert_eq!(
        parse_rfc3339_ms(info["expirationTime"].as_str().unwrap()),
        Some(NOW + 300_000)
    );
    assert_eq!(info["statement"], SiwxConfig::default().statement);
    assert_eq!(info["resources"], serde_json::json!([RESOURCE]));
    let nonce = info["nonce"].as_str().unwrap();
    assert!(nonce.len() == 32 && nonce.bytes().all(|b| b.is_ascii_hexdigit()));
    let chains: Vec<&str> = ext["supportedChains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["type"], "ed25519");
            c["chainId"].as_str().unwrap()
        })
        .collect();
    assert_eq!(chains, [MAINNET, "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"]);
    assert_eq!(
        ext["schema"]["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let required: Vec<&str> = ext["schema"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        required,
        [
            "domain",
            "address",
            "uri",
            "version",
            "chainId",
            "type",
            "nonce",
            "issuedAt",
            "signature"
        ]
    );
    // Port and scheme make the domain: a non-default port is part of it.
    let local = Verifier::new(
        &SiwxConfig::default(),
        PublicOrigin::new(&Url::parse("http://127.0.0.1:8080/").unwrap()),
        NonceKey::random(),
    );
    assert_eq!(
        local.challenge("http://127.0.0.1:8080/x", NOW).info.domain,
        "127.0.0.1:8080"
    );
}

/// Each case edits the proof *before* signing, so the signature is good and only the check
/// under test can refuse it.
#[test]
fn each_check_refuses_with_its_reason() {
    let v = verifier();
    let key = wallet();
    type Edit = Box<dyn Fn(&mut SiwxProof)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "version",
            Box::new(|p| p.version = "2".into()),
            "siwx_unsupported_version",
        ),
        (
            "testnet chain",
            Box::new(|p| p.chain_id = "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z".into()),
            "siwx_unsupported_chain",
        ),
        (
            "evm chain",
            Box::new(|p| p.chain_id = "eip155:8453".into()),
            "siwx_unsupported_chain",
        ),
        (
            "type",
            Box::new(|p| p.kind = "eip191".into()),
            "siwx_unsupported_chain",
        ),
        (
            "scheme",
            Box::new(|p| p.signature_scheme = Some("eip191".into())),
            "siwx_unsupported_chain",
        ),
        (
            "domain",
            Box::new(|p| p.domain = "evil.example".into()),
            "siwx_wrong_domain",
        ),
        (
            "domain with port",
            Box::new(|p| p.domain = "api.example.com:443".into()),
            "siwx_wrong_domain",
        ),
        (
            "uri host",
            Box::new(|p| p.uri = "https://evil.example/v1/x402/tokens/v1/tokens".into()),
            "siwx_wrong_uri",
        ),
        (
            "uri scheme",
            Box::new(|p| p.uri = "http://api.example.com/v1/x402/tokens/v1/tokens".into()),
            "siwx_wrong_uri",
        ),
        (
            "uri port",
            Box::new(|p| p.uri = "https://api.example.com:8443/v1/x402/tokens/v1/tokens".into()),
            "siwx_wrong_uri",
        ),
        (
            "uri junk",
            Box::new(|p| p.uri = "not a url".into()),
            "siwx_wrong_uri",
        ),
        (
            "other resource",
            Box::new(|p| {
                p.uri = "https://api.example.com/v1/x402/tokens/other".into();
                p.resources = Some(vec![p.uri.clone()]);
            }),
            "siwx_wrong_resource",
        ),
        (
            "no expiration",
            Box::new(|p| p.expiration_time = None),
            "siwx_invalid_time",
        ),
        (
            "unparseable issuedAt",
            Box::new(|p| p.issued_at = "yesterday".into()),
            "siwx_invalid_time",
        ),
        (
            "invented nonce",
            Box::new(|p| p.nonce = "a1b2c3d4e5f67890a1b2c3d4e5f67890".into()),
            "siwx_invalid_nonce",
        ),
        (
            "stretched expiry",
            Box::new(|p| p.expiration_time = Some(format_rfc3339_ms(NOW + 86_400_000))),
            "siwx_invalid_nonce",
        ),
        (
            "issued in the future",
            Box::new(|p| {
                p.issued_at = format_rfc3339_ms(NOW + 60_000);
                p.expiration_time = Some(format_rfc3339_ms(NOW + 360_000));
                renonce(p);
            }),
            "siwx_issued_in_future",
        ),
        (
            "too old",
            Box::new(|p| {
                p.issued_at = format_rfc3339_ms(NOW - 400_000);
                p.expiration_time = Some(format_rfc3339_ms(NOW + 60_000));
                renonce(p);
            }),
            "siwx_too_old",
        ),
        (
            "expired",
            Box::new(|p| {
                p.issued_at = format_rfc3339_ms(NOW - 120_000);
                p.expiration_time = Some(format_rfc3339_ms(NOW - 1));
                renonce(p);
            }),
            "siwx_expired",
        ),
        (
            "not before",
            Box::new(|p| p.not_before = Some(format_rfc3339_ms(NOW + 120_000))),
            "siwx_not_yet_valid",
        ),
    ];
    for (name, edit, reason) in cases {
        let mut proof = unsigned(&v, &key, NOW);
        edit(&mut proof);
        let proof = sign(proof, &key);
        let err = v.verify(&proof, RESOURCE, NOW).expect_err(name);
        assert_eq!(err.reason(), reason, "{name}: {err}");
    }
}

#[test]
fn skew_is_tolerated_within_bounds() {
    let v = verifier();
    let key = wallet();
    // Issued 20 s "in the future" (another instance's clock) and notBefore 20 s ahead: fine.
    let mut proof = unsigned(&v, &key, NOW + 20_000);
    proof.not_before = Some(format_rfc3339_ms(NOW + 20_000));
    assert!(v.verify(&sign(proof, &key), RESOURCE, NOW).is_ok());
}

#[test]
fn tampering_after_signing_breaks_the_signature() {
    let v = verifier();
    let key = wallet();
    let good = sign(unsigned(&v, &key, NOW), &key);
    type Edit = Box<dyn Fn(&mut SiwxProof)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "statement",
            Box::new(|p| p.statement = Some("Pay me".into())),
        ),
        ("no statement", Box::new(|p| p.statement = None)),
        (
            "resources",
            Box::new(|p| {
                p.resources
                    .as_mut()
                    .unwrap()
                    .push("https://api.example.com/v1/x402/tokens/more".into())
            }),
        ),
        ("request id", Box::new(|p| p.request_id = Some("r1".into()))),
        (
            "devnet",
            Box::new(|p| p.chain_id = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1".into()),
        ),
        (
            "another wallet's address",
            Box::new(|p| {
                p.address = bs58::encode(
                    SigningKey::from_bytes(&[9u8; 32])
                        .verifying_key()
                        .as_bytes(),
                )
                .into_string()
            }),
        ),
    ];
    for (name, edit) in edits {
        let mut proof = good.clone();
        edit(&mut proof);
        let err = v.verify(&proof, RESOURCE, NOW).expect_err(name);
        assert_eq!(err, SiwxError::BadSignature, "{name}");
    }
}

#[test]
fn encodings_must_have_exact_lengths_and_canonical_base58() {
    let v = verifier();
    let key = wallet();
    let good = sign(unsigned(&v, &key, NOW), &key);
    let sig = bs58::decode(&good.signature).into_vec().unwrap();

    let mut short = good.clone();
    short.signature = bs58::encode(&sig[..63]).into_string();
    assert_eq!(
        v.verify(&short, RESOURCE, NOW),
        Err(SiwxError::InvalidSignatureEncoding)
    );
    let mut long = good.clone();
    long.signature = bs58::encode([&sig[..], &[0]].concat()).into_string();
    assert_eq!(
        v.verify(&long, RESOURCE, NOW),
        Err(SiwxError::InvalidSignatureEncoding)
    );
    let mut not_b58 = good.clone();
    not_b58.signature = "0OIl".repeat(22);
    assert_eq!(
        v.verify(&not_b58, RESOURCE, NOW),
        Err(SiwxError::InvalidSignatureEncoding)
    );

    let mut short_key = good.clone();
    short_key.address = bs58::encode(&key.verifying_key().as_bytes()[..31]).into_string();
    assert_eq!(
        v.verify(&short_key, RESOURCE, NOW),
        Err(SiwxError::InvalidAddress)
    );
    // A hex address (EVM style) is not base58 of 32 bytes.
    let mut hex_key = good.clone();
    hex_key.address = "0x857b06519E91e3A54538791bDbb0E22373e36b66".into();
    assert_eq!(
        v.verify(&hex_key, RESOURCE, NOW),
        Err(SiwxError::InvalidAddress)
    );
}

#[test]
fn small_order_keys_are_refused_by_verify_strict() {
    // The identity point: every signature with R = identity and s = 0 "verifies" under the
    // lenient rules; verify_strict refuses weak keys.
    let v = verifier();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut proof = unsigned(&v, &wallet(), NOW);
    proof.address = bs58::encode(identity).into_string();
    let mut sig = [0u8; 64];
    sig[0] = 1;
    proof.signature = bs58::encode(sig).into_string();
    // The lenient check would let it in: this is what verify_strict is for.
    let weak = ed25519_dalek::VerifyingKey::from_bytes(&identity).unwrap();
    let forged = ed25519_dalek::Signature::from_bytes(&sig);
    assert!(weak
        .verify(siws_message(&proof).as_bytes(), &forged)
        .is_ok());
    assert_eq!(
        v.verify(&proof, RESOURCE, NOW),
        Err(SiwxError::BadSignature)
    );
}

#[test]
fn status_classes() {
    use std::time::Duration;
    for (err, fresh) in [
        (SiwxError::Missing, true),
        (SiwxError::Expired, true),
        (SiwxError::NonceReused, true),
        (SiwxError::InvalidNonce, true),
        (SiwxError::BadSignature, false),
        (SiwxError::WrongDomain("x".into()), false),
        (SiwxError::Malformed("x".into()), false),
        (
            SiwxError::RateLimited {
                retry_after: Duration::from_secs(1),
            },
            false,
        ),
        (SiwxError::StoreUnavailable, false),
    ] {
        assert_eq!(err.needs_new_proof(), fresh, "{err:?}");
        assert!(err.reason().starts_with("siwx_"));
    }
}
