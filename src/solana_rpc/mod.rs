//! A small Solana JSON-RPC client (reqwest, not solana-client) with endpoint failover, plus a
//! TTL cache of mint accounts for payment verification.

mod client;
mod error;
mod mint_cache;
mod types;

#[cfg(test)]
mod tests;

pub use client::{
    Commitment, SignaturePage, SolanaRpc, DEFAULT_MAX_RESPONSE_BYTES, MAX_MULTIPLE_ACCOUNTS,
    MAX_SIGNATURES_PAGE, MAX_SIGNATURE_STATUSES,
};
pub use error::{RpcError, NODE_UNHEALTHY};
pub use mint_cache::{MintCache, MintError, DEFAULT_MINT_TTL, MINT_CACHE_CAPACITY};
pub use types::{
    AccountData, EncodedMessage, EncodedTransaction, LoadedAddresses, SignatureInfo,
    SignatureStatus, SimulationResult, TokenAmount, TokenBalance, TransactionInfo, TransactionMeta,
};
