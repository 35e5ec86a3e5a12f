//! The settlement receipt header, by protocol generation: one place decides its name.

use axum::http::{HeaderMap, HeaderValue};

use super::header::{PAYMENT_RESPONSE, X_PAYMENT_RESPONSE};
use super::{encode_header, SettleResponse};

/// The protocol generation a client paid with: it decides the receipt header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentVersion {
    /// `X-PAYMENT` in, `X-PAYMENT-RESPONSE` out.
    V1,
    /// `PAYMENT-SIGNATURE` in, `PAYMENT-RESPONSE` out.
    V2,
}

impl PaymentVersion {
    /// From a wire `x402Version` (anything but 1 answers as v2, the current generation).
    pub fn from_wire(version: u8) -> Self {
        if version == 1 {
            Self::V1
        } else {
            Self::V2
        }
    }

    /// The receipt header's name.
    pub fn receipt_header(self) -> &'static str {
        match self {
            Self::V1 => X_PAYMENT_RESPONSE,
            Self::V2 => PAYMENT_RESPONSE,
        }
    }
}

/// Adds the encoded receipt under the header of `version`.
pub fn add_receipt(headers: &mut HeaderMap, receipt: &SettleResponse, version: PaymentVersion) {
    // Base64 is always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&encode_header(receipt)) {
        headers.insert(version.receipt_header(), value);
    }
}

/// The same, on a kept answer's header list (replacing an earlier receipt).
pub fn add_receipt_to(
    headers: &mut Vec<(String, String)>,
    receipt: &SettleResponse,
    version: PaymentVersion,
) {
    let name = version.receipt_header();
    headers.retain(|(n, _)| n != name);
    headers.push((name.to_string(), encode_header(receipt)));
}
