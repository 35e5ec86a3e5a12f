//! solana-keygen compatible keypair files: a JSON array of the 64 secret+public key bytes.

use super::error::LocalnetError;
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

fn err(path: &Path, reason: impl ToString) -> LocalnetError {
    LocalnetError::Keypair {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Reads a solana-keygen JSON keypair file.
pub fn read_keypair_file(path: &Path) -> Result<Keypair, LocalnetError> {
    let text = std::fs::read_to_string(path).map_err(|e| err(path, e))?;
    let bytes: Vec<u8> = serde_json::from_str(&text).map_err(|e| err(path, e))?;
    Keypair::try_from(bytes.as_slice()).map_err(|e| err(path, e))
}

/// Writes `keypair` in solana-keygen format, creating parent directories. On Unix the file is
/// made owner-readable only, like solana-keygen does, because it holds a secret key.
pub fn write_keypair_file(path: &Path, keypair: &Keypair) -> Result<(), LocalnetError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err(path, e))?;
    }
    let json = serde_json::to_string(&keypair.to_bytes().to_vec()).map_err(|e| err(path, e))?;
    std::fs::write(path, json).map_err(|e| err(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| err(path, e))?;
    }
    Ok(())
}

/// Loads the keypair at `path`, generating and saving a fresh one if the file does not exist.
pub fn load_or_create(path: &Path) -> Result<FundedWallet, LocalnetError> {
    let keypair = if path.exists() {
        read_keypair_file(path)?
    } else {
        let kp = Keypair::new();
        write_keypair_file(path, &kp)?;
        kp
    };
    Ok(FundedWallet {
        keypair: Arc::new(keypair),
        path: path.to_path_buf(),
    })
}
