//! x402 payment gateway for Solana JSON-RPC and DAS.
#[cfg(feature = "localnet")]
pub mod localnet;
