//! solana-keygen compatible keypair files: a JSON array of the 64 secret+public key bytes.
//!
//! A leaf: the config's demo derivation (which needs the local cluster's `payTo` before the
//! cluster starts) and the local cluster itself both read the same files through it.

use std::path::{Path, PathBuf};

use solana_keypair::Keypair;

/// A keypair file that could not be read, parsed or written.
#[derive(Debug, thiserror::Error)]
#[error("keypair file {}: {reason}", path.display())]
pub struct KeyfileError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

fn err(path: &Path, reason: impl ToString) -> KeyfileError {
    KeyfileError {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Reads a solana-keygen JSON keypair file.
pub fn read_keypair_file(path: &Path) -> Result<Keypair, KeyfileError> {
    let text = std::fs::read_to_string(path).map_err(|e| err(path, e))?;
    let bytes: Vec<u8> = serde_json::from_str(&text).map_err(|e| err(path, e))?;
    Keypair::try_from(bytes.as_slice()).map_err(|e| err(path, e))
}

/// Writes `keypair` in solana-keygen format, creating parent directories. On Unix the file is
/// made owner-readable only, like solana-keygen does, because it holds a secret key.
pub fn write_keypair_file(path: &Path, keypair: &Keypair) -> Result<(), KeyfileError> {
    create_parent(path)?;
    write_private(path, keypair)
}

/// Loads the keypair at `path`, generating and saving a fresh one if the file does not exist.
///
/// Safe to call from several threads or processes at once (tests load the embedded config in
/// parallel): the new key is written to a private temporary file and hard-linked into place,
/// which fails if the file appeared meanwhile, so every caller ends up with the one key that
/// won, and nobody reads a half-written file.
pub(crate) fn load_or_create(path: &Path) -> Result<Keypair, KeyfileError> {
    if path.exists() {
        return read_keypair_file(path);
    }
    create_parent(path)?;
    let keypair = Keypair::new();
    let tmp = path.with_extension(format!(
        "json.{}.{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    write_private(&tmp, &keypair)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(keypair),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_keypair_file(path),
        Err(e) => Err(err(path, e)),
    }
}

fn create_parent(path: &Path) -> Result<(), KeyfileError> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir).map_err(|e| err(path, e)),
        None => Ok(()),
    }
}

fn write_private(path: &Path, keypair: &Keypair) -> Result<(), KeyfileError> {
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
