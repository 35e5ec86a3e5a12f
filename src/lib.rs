//! x402 payment gateway for Solana JSON-RPC and DAS.
