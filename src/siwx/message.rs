//! The Sign-In-With-Solana (CAIP-122) message text, rebuilt on the server from a proof's fields.
//!
//! Lines joined with `\n`, no trailing newline, UTF-8, signed raw (x402 `formatSIWSMessage`):
//!
//! ```text
//! {domain} wants you to sign in with your Solana account:
//! {address}
//!
//! {statement}                  (this line and the blank after it only with a statement)
//!
//! URI: {uri}
//! Version: {version}
//! Chain ID: {reference}        (the part of the CAIP-2 id after `solana:`)
//! Nonce: {nonce}
//! Issued At: {issuedAt}
//! Expiration Time: {…}         (optional lines, in this order)
//! Not Before: {…}
//! Request ID: {…}
//! Resources:                   (optional block)
//! - {resource}
//! ```

use super::SiwxProof;

/// The exact text a Solana wallet signed for `proof`.
pub fn siws_message(proof: &SiwxProof) -> String {
    let reference = proof
        .chain_id
        .strip_prefix("solana:")
        .unwrap_or(&proof.chain_id);
    let mut lines: Vec<String> = vec![
        format!(
            "{} wants you to sign in with your Solana account:",
            proof.domain
        ),
        proof.address.clone(),
        String::new(),
    ];
    if let Some(statement) = proof.statement.as_deref().filter(|s| !s.is_empty()) {
        lines.push(statement.to_string());
        lines.push(String::new());
    }
    lines.push(format!("URI: {}", proof.uri));
    lines.push(format!("Version: {}", proof.version));
    lines.push(format!("Chain ID: {reference}"));
    lines.push(format!("Nonce: {}", proof.nonce));
    lines.push(format!("Issued At: {}", proof.issued_at));
    if let Some(v) = &proof.expiration_time {
        lines.push(format!("Expiration Time: {v}"));
    }
    if let Some(v) = &proof.not_before {
        lines.push(format!("Not Before: {v}"));
    }
    if let Some(v) = &proof.request_id {
        lines.push(format!("Request ID: {v}"));
    }
    if let Some(resources) = proof.resources.as_ref().filter(|r| !r.is_empty()) {
        lines.push("Resources:".to_string());
        lines.extend(resources.iter().map(|r| format!("- {r}")));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's `SIGN-IN-WITH-X` example (x402-vectors), moved to a Solana chain: the vector
    /// is EVM, but every field it carries appears in the SIWS text, in the spec's order.
    fn vector_on_solana() -> SiwxProof {
        // Vendored in the repository (see tests/fixtures/x402-vectors/README.md).
        let text = include_str!("../../tests/fixtures/x402-vectors/http-header-examples.json");
        let all: serde_json::Value = serde_json::from_str(text).unwrap();
        let example = all["examples"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["header"] == "SIGN-IN-WITH-X")
            .unwrap();
        let mut proof = SiwxProof::from_header(example["value"].as_str().unwrap().as_bytes())
            .expect("the spec example decodes");
        proof.chain_id = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp".into();
        proof.kind = "ed25519".into();
        proof.address = "9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu".into();
        proof
    }

    #[test]
    fn the_spec_example_as_siws_text() {
        let expected = "\
api.example.com wants you to sign in with your Solana account:
9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu

Sign in to access premium data

URI: https://api.example.com/premium-data
Version: 1
Chain ID: 5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp
Nonce: a1b2c3d4e5f67890a1b2c3d4e5f67890
Issued At: 2024-01-15T10:30:00.000Z
Expiration Time: 2024-01-15T10:35:00.000Z
Resources:
- https://api.example.com/premium-data";
        assert_eq!(siws_message(&vector_on_solana()), expected);
    }

    #[test]
    fn optional_lines_come_in_order_and_absent_ones_leave_no_gap() {
        let mut proof = vector_on_solana();
        proof.statement = None;
        proof.expiration_time = None;
        proof.resources = None;
        let bare = siws_message(&proof);
        assert_eq!(
            bare,
            "\
api.example.com wants you to sign in with your Solana account:
9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu

URI: https://api.example.com/premium-data
Version: 1
Chain ID: 5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp
Nonce: a1b2c3d4e5f67890a1b2c3d4e5f67890
Issued At: 2024-01-15T10:30:00.000Z"
        );
        proof.request_id = Some("req-7".into());
        proof.not_before = Some("2024-01-15T10:30:00.000Z".into());
        proof.expiration_time = Some("2024-01-15T10:35:00.000Z".into());
        proof.resources = Some(vec!["https://a/1".into(), "https://a/2".into()]);
        let full = siws_message(&proof);
        assert!(full.ends_with(
            "\
Issued At: 2024-01-15T10:30:00.000Z
Expiration Time: 2024-01-15T10:35:00.000Z
Not Before: 2024-01-15T10:30:00.000Z
Request ID: req-7
Resources:
- https://a/1
- https://a/2"
        ));
        assert!(!full.ends_with('\n'));
    }
}
