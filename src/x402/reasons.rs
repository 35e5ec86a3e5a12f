//! Refusal reasons of the x402 protocol layer (core spec strings where one fits, the TypeScript
//! `invalid_exact_svm_*` strings otherwise), shared by the paygate and the facilitators.

/// `x402Version` (top level or in the payload) is not 1 or 2, or they differ.
pub const INVALID_X402_VERSION: &str = "invalid_x402_version";
/// The network is not one we serve (or not a Solana v1 name).
pub const INVALID_NETWORK: &str = "invalid_network";
/// `paymentPayload` does not have the shape of its version.
pub const INVALID_PAYLOAD: &str = "invalid_payload";
/// `paymentRequirements` is malformed, or `accepted` differs from it.
pub const INVALID_PAYMENT_REQUIREMENTS: &str = "invalid_payment_requirements";
/// Scheme other than `exact`.
pub const UNSUPPORTED_SCHEME: &str = "unsupported_scheme";
/// `accepted.network` differs from the requirements' network.
pub const NETWORK_MISMATCH: &str = "invalid_exact_svm_network_mismatch";
/// `extra.feePayer` missing.
pub const MISSING_FEE_PAYER: &str = "invalid_exact_svm_payload_missing_fee_payer";
/// `extra.feePayer` is not one of our keys.
pub const FEE_PAYER_NOT_MANAGED: &str = "invalid_exact_svm_fee_payer_not_managed_by_facilitator";
/// `payload.transaction` missing or not a string.
pub const INVALID_PAYLOAD_TRANSACTION: &str = "invalid_exact_svm_payload_transaction";
