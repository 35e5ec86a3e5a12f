//! Decoding of the client's base64 transaction into a [`DecodedTransaction`].
//!
//! Invariants of every `DecodedTransaction` (established here, relied on by `exact.rs`):
//!
//! * the wire form was at most [`MAX_TRANSACTION_BYTES`] bytes (base64 length checked before
//!   decoding, so an oversized header costs nothing);
//! * base64 was standard, padded and canonical (no whitespace, no trailing bits);
//! * the bytes are exactly the canonical bincode encoding of the transaction: no trailing bytes,
//!   no alias encodings of compact-u16 lengths — so the message bytes we hash and verify are the
//!   ones the cluster will verify;
//! * `sanitize()` passed (signature count == `num_required_signatures` ≤ static keys, every
//!   instruction index in range, program ids not the fee payer slot);
//! * the message is legacy or v0, and a v0 message has no address lookup tables (we do not
//!   resolve them, so every account index refers to a static key);
//! * no instruction is a System `AdvanceNonceAccount` (durable-nonce transactions never expire,
//!   which would defeat the time-bounded replay cache);
//! * static account keys are pairwise distinct (the runtime rejects duplicates too, and the
//!   fee-payer isolation checks compare keys, not indexes).
//!
//! `message_hash` = SHA-256 of the message bytes: the replay / dedupe key. It ignores the
//! signature section, so garbage in the attacker-mutable fee-payer slot cannot dodge it.

use super::constants::{
    MAX_TRANSACTION_BASE64_LEN, MAX_TRANSACTION_BYTES, SYSTEM_ADVANCE_NONCE_ACCOUNT, SYSTEM_PROGRAM,
};
use super::error::VerifyError;
use base64::Engine as _;
use bincode::Options as _;
use sha2::{Digest, Sha256};
use solana_address::Address;
use solana_hash::Hash;
use solana_message::VersionedMessage;
use solana_signature::Signature;
use solana_transaction::versioned::VersionedTransaction;

/// A decoded, sanitized, canonical payment transaction (see the module doc for invariants).
/// Two are equal when their wire bytes are (everything else is derived from them).
#[derive(Debug, Clone)]
pub struct DecodedTransaction {
    tx: VersionedTransaction,
    message_offset: usize,
    wire: Vec<u8>,
    message_hash: [u8; 32],
    /// Set once every client signature passed `verify_strict` over these very bytes (the
    /// fields are private and never change after decoding), so a payment checked by the
    /// paygate and then by the in-process facilitator pays for the ed25519 checks once.
    client_signatures_verified: std::sync::OnceLock<()>,
}

impl PartialEq for DecodedTransaction {
    fn eq(&self, other: &Self) -> bool {
        self.wire == other.wire
    }
}

impl Eq for DecodedTransaction {}

impl DecodedTransaction {
    /// Whether the client signatures were already verified on this decoded value.
    pub(crate) fn client_signatures_verified(&self) -> bool {
        self.client_signatures_verified.get().is_some()
    }

    pub(crate) fn mark_client_signatures_verified(&self) {
        let _ = self.client_signatures_verified.set(());
    }

    /// The deserialized transaction.
    pub fn transaction(&self) -> &VersionedTransaction {
        &self.tx
    }

    /// The message.
    pub fn message(&self) -> &VersionedMessage {
        &self.tx.message
    }

    /// Signatures, one per required signer (slot 0 is the fee payer's).
    pub fn signatures(&self) -> &[Signature] {
        &self.tx.signatures
    }

    /// The static account keys (all keys, since lookup tables are rejected).
    pub fn account_keys(&self) -> &[Address] {
        self.tx.message.static_account_keys()
    }

    /// The recent blockhash of the message.
    pub fn recent_blockhash(&self) -> &Hash {
        self.tx.message.recent_blockhash()
    }

    /// The exact serialized message bytes (what every signature signs).
    pub fn message_bytes(&self) -> &[u8] {
        self.wire.get(self.message_offset..).unwrap_or(&[])
    }

    /// The full wire bytes as received.
    pub fn wire_bytes(&self) -> &[u8] {
        &self.wire
    }

    /// Byte offset of the message in the wire bytes (after the signature section).
    pub fn message_offset(&self) -> usize {
        self.message_offset
    }

    /// SHA-256 of the message bytes: the replay / dedupe key.
    pub fn message_hash(&self) -> [u8; 32] {
        self.message_hash
    }

    /// `true` for a legacy (unversioned) message.
    pub fn is_legacy(&self) -> bool {
        matches!(self.tx.message, VersionedMessage::Legacy(_))
    }
}

/// Decode the base64 `payload.transaction` string.
///
/// The length is checked before any decoding work.
pub fn decode_transaction(b64: &str) -> Result<DecodedTransaction, VerifyError> {
    if b64.len() > MAX_TRANSACTION_BASE64_LEN {
        return Err(VerifyError::Decode("base64 longer than a Solana packet"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| VerifyError::Decode("invalid base64"))?;
    decode_transaction_bytes(bytes)
}

/// Decode wire bytes (see [`decode_transaction`]).
pub fn decode_transaction_bytes(bytes: Vec<u8>) -> Result<DecodedTransaction, VerifyError> {
    if bytes.len() > MAX_TRANSACTION_BYTES {
        return Err(VerifyError::Decode("transaction larger than 1232 bytes"));
    }
    let (sig_count, prefix_len) =
        read_compact_u16(&bytes).ok_or(VerifyError::Decode("bad signature count"))?;
    let message_offset = usize::from(sig_count)
        .checked_mul(64)
        .and_then(|n| n.checked_add(prefix_len))
        .filter(|&off| off < bytes.len())
        .ok_or(VerifyError::Decode("truncated transaction"))?;
    let first = bytes
        .get(message_offset)
        .copied()
        .ok_or(VerifyError::Decode("truncated transaction"))?;
    if first & 0x80 != 0 && first & 0x7f != 0 {
        return Err(VerifyError::UnsupportedVersion(first & 0x7f));
    }

    let tx: VersionedTransaction = bincode::DefaultOptions::new()
        .with_limit(MAX_TRANSACTION_BYTES as u64)
        .with_fixint_encoding()
        .reject_trailing_bytes()
        .deserialize(&bytes)
        .map_err(|_| VerifyError::Decode("not a valid transaction encoding"))?;
    tx.sanitize()
        .map_err(|_| VerifyError::Decode("transaction failed sanitization"))?;
    if tx.signatures.len() != usize::from(sig_count) {
        return Err(VerifyError::Decode("signature count mismatch"));
    }
    if let Some(lookups) = tx.message.address_table_lookups() {
        if !lookups.is_empty() {
            return Err(VerifyError::AddressLookupTables);
        }
    }
    let keys = tx.message.static_account_keys();
    for (i, k) in keys.iter().enumerate() {
        if keys.get(i + 1..).unwrap_or(&[]).contains(k) {
            return Err(VerifyError::DuplicateAccountKeys);
        }
    }
    // Durable-nonce transactions never expire by blockhash, so a time-bounded dedupe is unsafe.
    for ix in tx.message.instructions() {
        if keys.get(usize::from(ix.program_id_index)) == Some(&SYSTEM_PROGRAM)
            && ix.data.get(..4) == Some(&SYSTEM_ADVANCE_NONCE_ACCOUNT.to_le_bytes()[..])
        {
            return Err(VerifyError::DurableNonce);
        }
    }
    // Canonical encoding: the message bytes we verify and hash are the ones we re-serialize.
    let reserialized = tx.message.serialize();
    if bytes.get(message_offset..) != Some(reserialized.as_slice()) {
        return Err(VerifyError::Decode("non-canonical message encoding"));
    }
    let message_hash: [u8; 32] = Sha256::digest(&reserialized).into();
    Ok(DecodedTransaction {
        tx,
        message_offset,
        wire: bytes,
        message_hash,
        client_signatures_verified: std::sync::OnceLock::new(),
    })
}

/// Read a canonical Solana compact-u16 (1–3 bytes). Returns the value and its length.
fn read_compact_u16(bytes: &[u8]) -> Option<(u16, usize)> {
    let mut value: u32 = 0;
    for i in 0..3 {
        let b = *bytes.get(i)?;
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            // Reject alias encodings (a trailing zero continuation byte) and overflow.
            if i > 0 && b == 0 {
                return None;
            }
            return u16::try_from(value).ok().map(|v| (v, i + 1));
        }
        if i == 2 {
            return None;
        }
    }
    None
}

/// Encode a compact-u16 (test helper for the decoder).
#[cfg(test)]
fn write_compact_u16(out: &mut Vec<u8>, mut value: u16) {
    loop {
        let mut b = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(b);
            return;
        }
        b |= 0x80;
        out.push(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_u16_roundtrip_and_aliases() {
        for v in [0u16, 1, 127, 128, 255, 16383, 16384, u16::MAX] {
            let mut out = Vec::new();
            write_compact_u16(&mut out, v);
            assert_eq!(read_compact_u16(&out), Some((v, out.len())));
        }
        assert_eq!(read_compact_u16(&[0x80, 0x00]), None, "alias of 0");
        assert_eq!(read_compact_u16(&[0xff, 0xff, 0x04]), None, "overflow");
        assert_eq!(read_compact_u16(&[0x80, 0x80, 0x80]), None);
        assert_eq!(read_compact_u16(&[]), None);
    }

    #[test]
    fn rejects_oversized_base64_before_decoding() {
        let s = "A".repeat(MAX_TRANSACTION_BASE64_LEN + 4);
        assert_eq!(
            decode_transaction(&s),
            Err(VerifyError::Decode("base64 longer than a Solana packet"))
        );
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "====", "AA==", "not base64!", "AQ=="] {
            let e = decode_transaction(s).unwrap_err();
            assert_eq!(
                e.reason(),
                "invalid_exact_svm_payload_transaction_could_not_be_decoded",
                "{s}"
            );
        }
    }

    #[test]
    fn rejects_unknown_version() {
        // one zero signature, then a message prefix for version 1
        let mut bytes = vec![1u8];
        bytes.extend_from_slice(&[0u8; 64]);
        bytes.push(0x81);
        bytes.extend_from_slice(&[0u8; 40]);
        assert_eq!(
            decode_transaction_bytes(bytes),
            Err(VerifyError::UnsupportedVersion(1))
        );
    }
}
