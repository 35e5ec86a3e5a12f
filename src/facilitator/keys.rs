//! Fee-payer keypairs of the in-process facilitator.
//!
//! Accepted encodings, in a file or in an environment variable's value:
//! - a solana-keygen JSON array of 64 byte values (secret key then public key);
//! - a JSON array of such arrays (several fee payers);
//! - one or more base58 strings of the 64-byte secret+public key (Phantom's "export private
//!   key" format), separated by commas or whitespace.
//!
//! Invariants: every keypair is checked (the public half must match the secret half); the set
//! is non-empty and has no duplicates; `Debug` shows public keys only; errors name the source
//! (path or variable name) and what is wrong with it, never any byte of the key.

use std::fmt;
use std::path::Path;

use solana_address::Address;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// Length of a keypair: 32 secret bytes followed by the 32-byte public key.
const KEYPAIR_BYTES: usize = 64;

/// Why fee-payer keys could not be loaded. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("fee payer keypair file {path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error (no content).
        reason: String,
    },
    /// The environment variable is not set or empty.
    #[error("fee payer environment variable {0} is not set")]
    MissingEnv(String),
    /// The content is not one of the accepted encodings.
    #[error("fee payer keys from {origin}: {reason}")]
    Format {
        /// `file <path>` or `env <NAME>`.
        origin: String,
        /// What is wrong (never the content).
        reason: String,
    },
    /// No key at all.
    #[error("no fee payer key configured ({0})")]
    Empty(String),
}

/// One or more fee-payer keypairs. The first one is the default advertised in `/supported`.
pub struct FeePayerKeys {
    keys: Vec<Keypair>,
}

impl FeePayerKeys {
    /// Wraps keypairs; refuses an empty set and duplicates (by public key).
    pub fn new(keys: Vec<Keypair>) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Empty("empty key list".into()));
        }
        let mut seen: Vec<Address> = Vec::with_capacity(keys.len());
        for k in &keys {
            let pk = k.pubkey();
            if seen.contains(&pk) {
                return Err(KeyError::Format {
                    origin: "key list".into(),
                    reason: format!("fee payer {pk} is listed twice"),
                });
            }
            seen.push(pk);
        }
        Ok(Self { keys })
    }

    /// Reads keys from a file (solana-keygen JSON, a JSON array of keypairs, or base58).
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::Io {
            path: path.display().to_string(),
            reason: e.kind().to_string(),
        })?;
        Self::parse(&format!("file {}", path.display()), &text)
    }

    /// Reads keys from the environment variable `name`.
    pub fn from_env(name: &str) -> Result<Self, KeyError> {
        match std::env::var(name) {
            Ok(v) if !v.trim().is_empty() => Self::parse(&format!("env {name}"), &v),
            Ok(_) | Err(std::env::VarError::NotPresent) => {
                Err(KeyError::MissingEnv(name.to_owned()))
            }
            Err(std::env::VarError::NotUnicode(_)) => Err(KeyError::Format {
                origin: format!("env {name}"),
                reason: "value is not valid UTF-8".into(),
            }),
        }
    }

    /// Loads from `file` if given, else from the environment variable `env` if given.
    pub fn load(file: Option<&Path>, env: Option<&str>) -> Result<Self, KeyError> {
        match (file, env) {
            (Some(path), _) => Self::from_file(path),
            (None, Some(name)) => Self::from_env(name),
            (None, None) => Err(KeyError::Empty(
                "set fee_payer_keypair or fee_payer_env".into(),
            )),
        }
    }

    /// Parses `text` in any accepted encoding; `source` names where it came from in errors.
    pub fn parse(source: &str, text: &str) -> Result<Self, KeyError> {
        let fail = |reason: &str| KeyError::Format {
            origin: source.to_owned(),
            reason: reason.to_owned(),
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(KeyError::Empty(source.to_owned()));
        }
        let keys = if text.starts_with('[') {
            parse_json(text).map_err(&fail)?
        } else {
            text.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .enumerate()
                .map(|(i, s)| {
                    parse_base58(s).map_err(|r| fail(&format!("base58 key #{}: {r}", i + 1)))
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        Self::new(keys).map_err(|e| match e {
            KeyError::Empty(_) => KeyError::Empty(source.to_owned()),
            KeyError::Format { reason, .. } => fail(&reason),
            other => other,
        })
    }

    /// Public keys, in order.
    pub fn pubkeys(&self) -> Vec<Address> {
        self.keys.iter().map(Signer::pubkey).collect()
    }

    /// The default fee payer (the first key).
    pub fn primary(&self) -> &Keypair {
        // `new` guarantees at least one key.
        &self.keys[0]
    }

    /// The keypair whose public key is `address`.
    pub fn get(&self, address: &Address) -> Option<&Keypair> {
        self.keys.iter().find(|k| k.pubkey() == *address)
    }

    /// Number of keys (at least one).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always `false` (kept for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl fmt::Debug for FeePayerKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pubkeys: Vec<String> = self.keys.iter().map(|k| k.pubkey().to_string()).collect();
        f.debug_struct("FeePayerKeys")
            .field("pubkeys", &pubkeys)
            .field("secret_keys", &"[redacted]")
            .finish()
    }
}

/// A keypair from its 64 bytes, checking that the public half matches the secret half.
fn keypair_from_bytes(bytes: &[u8]) -> Result<Keypair, &'static str> {
    if bytes.len() != KEYPAIR_BYTES {
        return Err("a keypair is 64 bytes (secret key then public key)");
    }
    Keypair::try_from(bytes).map_err(|_| "the public key does not match the secret key")
}

fn parse_base58(s: &str) -> Result<Keypair, &'static str> {
    let mut buf = [0u8; KEYPAIR_BYTES];
    let n = bs58::decode(s)
        .onto(&mut buf[..])
        .map_err(|_| "not base58 of 64 bytes")?;
    let out = keypair_from_bytes(buf.get(..n).unwrap_or_default());
    buf.fill(0);
    out
}

/// One JSON array of 64 numbers, or an array of such arrays. Hand-rolled over `Value` so an
/// error message can never quote a value from the input.
fn parse_json(text: &str) -> Result<Vec<Keypair>, &'static str> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| "not valid JSON")?;
    let items = value.as_array().ok_or("expected a JSON array")?;
    if items.first().is_some_and(serde_json::Value::is_array) {
        items.iter().map(json_keypair).collect()
    } else {
        Ok(vec![json_keypair(&value)?])
    }
}

fn json_keypair(value: &serde_json::Value) -> Result<Keypair, &'static str> {
    let items = value
        .as_array()
        .ok_or("expected an array of 64 byte values")?;
    let mut bytes = Vec::with_capacity(items.len());
    for v in items {
        let b = v
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .ok_or("expected an array of 64 byte values (0-255)")?;
        bytes.push(b);
    }
    let out = keypair_from_bytes(&bytes);
    bytes.fill(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kp(seed: u8) -> Keypair {
        Keypair::new_from_array([seed; 32])
    }

    fn json_of(k: &Keypair) -> String {
        serde_json::to_string(&k.to_bytes().to_vec()).unwrap()
    }

    #[test]
    fn solana_keygen_json_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fee-payer.json");
        std::fs::write(&path, json_of(&kp(7))).unwrap();
        let keys = FeePayerKeys::from_file(&path).unwrap();
        assert_eq!(keys.pubkeys(), vec![kp(7).pubkey()]);
        assert_eq!(keys.primary().pubkey(), kp(7).pubkey());
        assert!(keys.get(&kp(7).pubkey()).is_some());
        assert!(keys.get(&kp(8).pubkey()).is_none());
    }

    #[test]
    fn base58_single_and_several() {
        let one = FeePayerKeys::parse("env X", &kp(1).to_base58_string()).unwrap();
        assert_eq!(one.pubkeys(), vec![kp(1).pubkey()]);
        let text = format!(
            " {},\n{} ",
            kp(1).to_base58_string(),
            kp(2).to_base58_string()
        );
        let two = FeePayerKeys::parse("env X", &text).unwrap();
        assert_eq!(two.pubkeys(), vec![kp(1).pubkey(), kp(2).pubkey()]);
        assert_eq!(two.len(), 2);
    }

    #[test]
    fn json_array_of_arrays() {
        let text = format!("[{}, {}]", json_of(&kp(3)), json_of(&kp(4)));
        let keys = FeePayerKeys::parse("env X", &text).unwrap();
        assert_eq!(keys.pubkeys(), vec![kp(3).pubkey(), kp(4).pubkey()]);
    }

    #[test]
    fn env_variable() {
        let name = "X402_TEST_FEE_PAYER_KEYS_ENV";
        std::env::set_var(name, kp(5).to_base58_string());
        let keys = FeePayerKeys::from_env(name).unwrap();
        assert_eq!(keys.pubkeys(), vec![kp(5).pubkey()]);
        std::env::remove_var(name);
        assert_eq!(
            FeePayerKeys::from_env(name).unwrap_err(),
            KeyError::MissingEnv(name.into())
        );
    }

    #[test]
    fn load_prefers_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        std::fs::write(&path, json_of(&kp(9))).unwrap();
        let keys = FeePayerKeys::load(Some(&path), Some("X402_TEST_UNSET_VARIABLE")).unwrap();
        assert_eq!(keys.pubkeys(), vec![kp(9).pubkey()]);
        assert!(matches!(
            FeePayerKeys::load(None, None),
            Err(KeyError::Empty(_))
        ));
        let missing = dir.path().join("missing.json");
        let err = FeePayerKeys::load(Some(&missing), None).unwrap_err();
        assert!(err.to_string().contains("missing.json"), "{err}");
    }

    #[test]
    fn debug_and_errors_never_show_key_bytes() {
        let k = kp(11);
        let secret_b58 = k.to_base58_string();
        let keys = FeePayerKeys::parse("env X", &secret_b58).unwrap();
        let dbg = format!("{keys:?}");
        assert!(dbg.contains(&k.pubkey().to_string()));
        assert!(dbg.contains("redacted"));
        assert!(!dbg.contains(&secret_b58));
        let secret_json = json_of(&k);
        assert!(!dbg.contains(&secret_json[1..20]));

        // A keypair whose public half was tampered with: error names the source only.
        let mut bytes = k.to_bytes();
        bytes[63] ^= 1;
        let bad_json = serde_json::to_string(&bytes.to_vec()).unwrap();
        let bad_b58 = bs58::encode(bytes).into_string();
        for text in [bad_json.as_str(), bad_b58.as_str()] {
            let err = FeePayerKeys::parse("env FEE_PAYER_KEY", text).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("env FEE_PAYER_KEY"), "{msg}");
            assert!(
                !msg.contains(&bad_b58) && !msg.contains(&bad_json[1..20]),
                "{msg}"
            );
        }
        // Out-of-range byte: the value is not quoted back.
        let err = FeePayerKeys::parse("file k.json", "[300, 1, 2]").unwrap_err();
        assert!(!err.to_string().contains("300"), "{err}");
        let err = FeePayerKeys::parse("file k.json", "[1, 2").unwrap_err();
        assert!(err.to_string().contains("not valid JSON"));
    }

    #[test]
    fn refuses_empty_short_and_duplicate() {
        assert!(matches!(
            FeePayerKeys::parse("env X", "  "),
            Err(KeyError::Empty(_))
        ));
        assert!(matches!(
            FeePayerKeys::parse("env X", "[]"),
            Err(KeyError::Format { .. })
        ));
        let short = bs58::encode([1u8; 32]).into_string();
        assert!(FeePayerKeys::parse("env X", &short).is_err());
        let dup = format!("{0},{0}", kp(1).to_base58_string());
        let err = FeePayerKeys::parse("env X", &dup).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
        assert!(matches!(FeePayerKeys::new(vec![]), Err(KeyError::Empty(_))));
    }
}
