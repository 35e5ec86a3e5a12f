//! Header names and the codec: standard base64 (RFC 4648, `+/`, padding optional) of the UTF-8
//! JSON text. The size cap is checked before decoding anything.

use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// v2 challenge header (server → client, on 402).
pub const PAYMENT_REQUIRED: &str = "payment-required";
/// v2 payment header (client → server).
pub const PAYMENT_SIGNATURE: &str = "payment-signature";
/// v2 settlement receipt (server → client).
pub const PAYMENT_RESPONSE: &str = "payment-response";
/// v1 payment header.
pub const X_PAYMENT: &str = "x-payment";
/// v1 settlement receipt.
pub const X_PAYMENT_RESPONSE: &str = "x-payment-response";
/// Sign-in-with-X proof.
pub const SIGN_IN_WITH_X: &str = "sign-in-with-x";

/// Largest payment header accepted (a Solana payment is ~1.5 KB; the spec examples are ~2 KB).
pub const MAX_PAYMENT_HEADER_BYTES: usize = 8 * 1024;

const ENCODER: GeneralPurpose = base64::engine::general_purpose::STANDARD;
const DECODER: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a header could not be decoded. Messages name the problem, never echo the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Over the size cap.
    #[error("header is larger than {0} bytes")]
    TooLarge(usize),
    /// Not standard base64.
    #[error("header is not standard base64")]
    Base64,
    /// Decoded bytes are not the JSON we expect.
    #[error("header is not valid JSON for this message: {0}")]
    Json(String),
    /// An `x402Version` we do not speak.
    #[error("unsupported x402Version {0}")]
    Version(u64),
}

/// Encodes a message as a header value.
pub fn encode_header<T: Serialize>(value: &T) -> String {
    // Serializing our own typed structs cannot fail (no maps with non-string keys).
    ENCODER.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// Decodes a header value to its JSON bytes, refusing anything over `max` bytes before
/// touching it. For messages that dispatch on a field (e.g. [`super::PaymentHeader::from_json`]).
pub fn decode_header_bytes(value: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
    if value.len() > max {
        return Err(DecodeError::TooLarge(max));
    }
    DECODER
        .decode(value.trim_ascii())
        .map_err(|_| DecodeError::Base64)
}

/// Decodes a header value into `T`, refusing anything over `max` bytes before touching it.
pub fn decode_header<T: DeserializeOwned>(value: &[u8], max: usize) -> Result<T, DecodeError> {
    let bytes = decode_header_bytes(value, max)?;
    serde_json::from_slice(&bytes).map_err(|e| DecodeError::Json(e.to_string()))
}
