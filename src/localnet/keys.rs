//! Keypairs funded at genesis, read from (or generated into) solana-keygen files.

use super::error::LocalnetError;
use crate::keyfile::{self, KeyfileError};
use solana_keypair::Keypair;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A keypair funded at genesis, together with the file it lives in.
#[derive(Debug, Clone)]
pub struct FundedWallet {
    /// The signer (shared so the handle stays cheap to clone from).
    pub keypair: Arc<Keypair>,
    /// solana-keygen JSON file holding it.
    pub path: PathBuf,
}

impl From<KeyfileError> for LocalnetError {
    fn from(e: KeyfileError) -> Self {
        LocalnetError::Keypair {
            path: e.path,
            reason: e.reason,
        }
    }
}

/// Loads the keypair at `path`, generating and saving a fresh one if the file does not exist.
pub(super) fn load_or_create(path: &Path) -> Result<FundedWallet, LocalnetError> {
    Ok(FundedWallet {
        keypair: Arc::new(keyfile::load_or_create(path)?),
        path: path.to_path_buf(),
    })
}
