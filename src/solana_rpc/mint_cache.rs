//! A TTL cache of parsed mint accounts ([`MintInfo`]), so a payment costs no mint fetch.
//!
//! Only successfully parsed mints are cached; a mint that fails screening is fetched again next
//! time (a rejected mint is not on the hot path of honest traffic). The map is bounded: at
//! [`MINT_CACHE_CAPACITY`] entries, expired entries are dropped and, if still full, the map is
//! cleared. Concurrent misses may fetch the same mint twice; that is harmless.

use super::client::SolanaRpc;
use super::error::RpcError;
use crate::svm::{parse_mint, MintInfo, VerifyError};
use parking_lot::Mutex;
use solana_address::Address;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Default time to live of a cached mint.
pub const DEFAULT_MINT_TTL: Duration = Duration::from_secs(600);
/// Maximum cached mints.
pub const MINT_CACHE_CAPACITY: usize = 1024;

/// Why a mint could not be provided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    /// The RPC call failed.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The mint account does not exist.
    #[error("mint account {0} not found")]
    NotFound(Address),
    /// The account is not an acceptable mint.
    #[error(transparent)]
    Invalid(#[from] VerifyError),
}

/// TTL cache of [`MintInfo`] by mint address.
#[derive(Debug)]
pub struct MintCache {
    ttl: Duration,
    map: Mutex<HashMap<Address, (Instant, MintInfo)>>,
}

impl Default for MintCache {
    fn default() -> Self {
        Self::new(DEFAULT_MINT_TTL)
    }
}

impl MintCache {
    /// An empty cache whose entries live for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The cached mint if fresh, else fetch it with `getAccountInfo`, parse, screen and cache.
    pub async fn get(&self, rpc: &SolanaRpc, mint: &Address) -> Result<MintInfo, MintError> {
        if let Some((at, info)) = self.map.lock().get(mint) {
            if at.elapsed() < self.ttl {
                return Ok(*info);
            }
        }
        let account = rpc
            .get_account_info(mint)
            .await?
            .ok_or(MintError::NotFound(*mint))?;
        let info = parse_mint(*mint, &account.owner, &account.data)?;
        let mut map = self.map.lock();
        if map.len() >= MINT_CACHE_CAPACITY {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            if map.len() >= MINT_CACHE_CAPACITY {
                map.clear();
            }
        }
        map.insert(*mint, (Instant::now(), info));
        Ok(info)
    }

    /// Drop a cached entry.
    pub fn invalidate(&self, mint: &Address) {
        self.map.lock().remove(mint);
    }

    /// Number of cached entries (fresh or not).
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
