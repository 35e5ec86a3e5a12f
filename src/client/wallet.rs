//! The paying wallet: a Solana keypair from `--keypair FILE` or the `X402_KEYPAIR` variable, each
//! either a solana-keygen JSON array of the 64 secret+public bytes or the base58 of those bytes
//! (what Phantom and most wallets export).

use std::path::{Path, PathBuf};

use solana_keypair::Keypair;

/// The environment variable holding the key itself (not a path).
pub const KEYPAIR_ENV: &str = "X402_KEYPAIR";

/// Why no wallet could be loaded. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// Neither `--keypair` nor `X402_KEYPAIR`.
    #[error("no wallet: pass --keypair FILE (a solana-keygen JSON file) or set {KEYPAIR_ENV}")]
    Missing,
    /// The file could not be read.
    #[error("reading the keypair file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is neither form.
    #[error("{origin} is not a keypair: {reason}")]
    Invalid {
        /// `the keypair file <path>` or `X402_KEYPAIR`.
        origin: String,
        /// What is wrong (never the key).
        reason: &'static str,
    },
}

/// The wallet from `file` if given, otherwise from `env` (the value of `X402_KEYPAIR`).
pub fn load_wallet(file: Option<&Path>, env: Option<&str>) -> Result<Keypair, WalletError> {
    match (file, env.map(str::trim).filter(|v| !v.is_empty())) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).map_err(|source| WalletError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            parse_keypair(&text).map_err(|reason| WalletError::Invalid {
                origin: format!("the keypair file {}", path.display()),
                reason,
            })
        }
        (None, Some(value)) => parse_keypair(value).map_err(|reason| WalletError::Invalid {
            origin: KEYPAIR_ENV.to_string(),
            reason,
        }),
        (None, None) => Err(WalletError::Missing),
    }
}

/// A JSON array of 64 bytes, or base58 of the same 64 bytes.
pub fn parse_keypair(text: &str) -> Result<Keypair, &'static str> {
    let text = text.trim();
    let bytes: Vec<u8> = if text.starts_with('[') {
        serde_json::from_str(text).map_err(|_| "not a JSON array of bytes (0-255)")?
    } else {
        bs58::decode(text)
            .into_vec()
            .map_err(|_| "neither a JSON byte array nor base58")?
    };
    if bytes.len() != 64 {
        return Err("a keypair is 64 bytes (32 secret, 32 public)");
    }
    // `try_from` also checks that the public half belongs to the secret half.
    Keypair::try_from(bytes.as_slice()).map_err(|_| "the public key does not match the secret key")
}

#[cfg(test)]
mod tests {
    use solana_signer::Signer;

    use super::*;

    #[test]
    fn both_forms_give_the_same_wallet() {
        let keypair = Keypair::new();
        let json = serde_json::to_string(&keypair.to_bytes().to_vec()).unwrap();
        let base58 = keypair.to_base58_string();
        assert_eq!(parse_keypair(&json).unwrap().pubkey(), keypair.pubkey());
        assert_eq!(
            parse_keypair(&format!("  {base58}\n")).unwrap().pubkey(),
            keypair.pubkey()
        );
    }

    #[test]
    fn the_file_wins_over_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let (in_file, in_env) = (Keypair::new(), Keypair::new());
        let path = dir.path().join("k.json");
        std::fs::write(
            &path,
            serde_json::to_string(&in_file.to_bytes().to_vec()).unwrap(),
        )
        .unwrap();
        let env = in_env.to_base58_string();
        let loaded = load_wallet(Some(&path), Some(&env)).unwrap();
        assert_eq!(loaded.pubkey(), in_file.pubkey());
        let loaded = load_wallet(None, Some(&env)).unwrap();
        assert_eq!(loaded.pubkey(), in_env.pubkey());
    }

    #[test]
    fn refusals_name_the_problem_not_the_key() {
        assert!(matches!(load_wallet(None, None), Err(WalletError::Missing)));
        assert!(matches!(
            load_wallet(None, Some("  ")),
            Err(WalletError::Missing)
        ));
        let short = bs58::encode([7u8; 32]).into_string();
        let err = load_wallet(None, Some(&short)).unwrap_err().to_string();
        assert!(err.contains("64 bytes") && !err.contains(&short), "{err}");
        let mut bytes = Keypair::new().to_bytes();
        bytes[40] ^= 1;
        let mismatched = serde_json::to_string(&bytes.to_vec()).unwrap();
        let err = load_wallet(None, Some(&mismatched))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not match"), "{err}");
        assert!(load_wallet(None, Some("[1,2,300]")).is_err());
        let missing = load_wallet(Some(Path::new("/nonexistent/k.json")), None).unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/k.json"));
    }
}
