//! Pure, local verification of x402 `exact` payments on Solana (SVM). No I/O, no HTTP.
//!
//! Flow for the facilitator: [`decode_transaction`] → [`parse_mint`] (mint account from RPC,
//! cached) → [`verify_exact`] → [`blockhash_has_life`] and [`simulation_result`] with RPC data →
//! at settle, [`sign_as_fee_payer`]. Every rejection is a [`VerifyError`] whose
//! [`VerifyError::reason`] is the x402 reason string. The other side, the payment a wallet
//! builds and signs from a challenge, is [`client`].

pub mod ata;
pub mod chain;
pub mod client;
pub mod constants;
pub mod decode;
pub mod error;
pub mod exact;
pub mod mint;
/// Payment fixtures for tests and benchmarks (feature `test-util`), not in production builds.
#[cfg(any(test, feature = "test-util"))]
pub mod testkit;

pub use ata::{associated_token_address, associated_token_address_cached};
pub use chain::{blockhash_has_life, blocks_for, sign_as_fee_payer, simulation_result};
pub use decode::{decode_transaction, decode_transaction_bytes, DecodedTransaction};
pub use error::VerifyError;
pub use exact::{verify_exact, ExactPolicy, ExactRequirements, VerifiedPayment};
pub use mint::{parse_mint, MintInfo};
