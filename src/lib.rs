//! x402 payment gateway for Solana JSON-RPC and DAS.

pub mod solana_rpc;
pub mod svm;
