//! CPU time of SIWX per request, one thread, no store: issuing a challenge (nonce HMAC, times,
//! JSON) and checking a proof (header decode, field checks, nonce HMAC, SIWS text,
//! `verify_strict`). Run: `cargo bench --bench siwx` (release profile).

use std::hint::black_box;
use std::time::Instant;

use ed25519_dalek::{Signer, SigningKey};
use url::Url;
use x402_gateway::config::SiwxConfig;
use x402_gateway::siwx::time::now_ms;
use x402_gateway::siwx::{siws_message, NonceKey, PublicOrigin, SiwxProof, Verifier};

const RESOURCE: &str = "https://gw.example/v1/x402/tokens/v1/tokens/abc";

fn best_of(label: &str, n: u32, mut f: impl FnMut()) {
    for _ in 0..n / 5 {
        f(); // warm-up
    }
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        best = best.min(start.elapsed().as_secs_f64() * 1e6 / f64::from(n));
    }
    println!("{label}: {best:.2} µs (best of 5 × {n})");
}

fn main() {
    let verifier = Verifier::new(
        &SiwxConfig::default(),
        PublicOrigin::new(&Url::parse("https://gw.example").unwrap()),
        NonceKey::from_secret("bench"),
    );
    let now = now_ms();
    best_of("challenge (nonce + JSON)", 50_000, || {
        let ext = verifier.challenge(black_box(RESOURCE), now);
        black_box(serde_json::to_vec(&ext).unwrap());
    });

    let key = SigningKey::from_bytes(&[7u8; 32]);
    let info = verifier.challenge(RESOURCE, now).info;
    let mut proof = SiwxProof {
        domain: info.domain,
        address: bs58::encode(key.verifying_key().as_bytes()).into_string(),
        uri: info.uri,
        version: info.version,
        chain_id: "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp".into(),
        kind: "ed25519".into(),
        nonce: info.nonce,
        issued_at: info.issued_at,
        expiration_time: Some(info.expiration_time),
        not_before: None,
        request_id: None,
        statement: Some(info.statement),
        resources: Some(info.resources),
        signature_scheme: Some("siws".into()),
        signature: String::new(),
    };
    proof.signature =
        bs58::encode(key.sign(siws_message(&proof).as_bytes()).to_bytes()).into_string();
    let header = proof.to_header();
    println!("proof header: {} bytes", header.len());
    best_of("decode + verify (verify_strict)", 20_000, || {
        let p = SiwxProof::from_header(black_box(header.as_bytes())).unwrap();
        black_box(verifier.verify(&p, RESOURCE, now).unwrap());
    });
}
