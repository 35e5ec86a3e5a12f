//! The credits session token, kept in a file until it expires: `--token-file`, else
//! `$XDG_CONFIG_HOME/x402-pay/<host>_<port>.json` (or `~/.config/…`). One file per server; it
//! names the wallet it was issued to, so another wallet signs in again instead of borrowing it.
//! The file holds a bearer credential: it is written owner-readable only.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::error::ClientError;
use crate::siwx::time::parse_rfc3339_ms;

/// A token this close to its expiry is not used (a call must not die mid-flight).
pub const EXPIRY_MARGIN_MS: i64 = 30_000;

/// A session with a credits server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The bearer token.
    pub token: String,
    /// When it expires, ms since the epoch.
    pub expires_at_ms: i64,
    /// The wallet it is bound to.
    pub wallet: String,
    /// The credits base URL it was issued by.
    pub base: String,
}

impl Session {
    /// Whether it can still be used at `now_ms` by `wallet` against `base`.
    pub fn usable(&self, wallet: &str, base: &str, now_ms: i64) -> bool {
        self.wallet == wallet && self.base == base && now_ms + EXPIRY_MARGIN_MS < self.expires_at_ms
    }
}

/// `expires_at` as servers write it: seconds or milliseconds since the epoch, or RFC 3339.
pub fn parse_expiry(value: &Value) -> Option<i64> {
    match value {
        // Seconds until the year 5138; milliseconds after 1970-04-26: no overlap in practice.
        Value::Number(n) => n
            .as_i64()
            .map(|v| if v < 100_000_000_000 { v * 1000 } else { v }),
        Value::String(s) => parse_rfc3339_ms(s).or_else(|| {
            s.parse::<i64>()
                .ok()
                .map(|v| if v < 100_000_000_000 { v * 1000 } else { v })
        }),
        _ => None,
    }
}

/// Where one server's token lives.
#[derive(Debug, Clone)]
pub struct TokenFile {
    path: PathBuf,
}

impl TokenFile {
    /// `path`, else the default file for `base`'s host and port.
    pub fn new(path: Option<PathBuf>, base: &Url) -> Result<Self, ClientError> {
        if let Some(path) = path {
            return Ok(Self { path });
        }
        let dir = default_config_dir().ok_or_else(|| {
            ClientError::Credits(
                "neither XDG_CONFIG_HOME nor HOME is set: pass --token-file".into(),
            )
        })?;
        Ok(Self::under(&dir, base))
    }

    /// The file for `base`'s host and port under the configuration directory `dir`.
    pub fn under(dir: &Path, base: &Url) -> Self {
        let host: String = base
            .host_str()
            .unwrap_or("server")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let port = base.port_or_known_default().unwrap_or(0);
        Self {
            path: dir.join("x402-pay").join(format!("{host}_{port}.json")),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored session, if there is a readable one.
    pub fn load(&self) -> Option<Session> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Stores `session` (owner-readable only), replacing the file atomically.
    pub fn save(&self, session: &Session) -> Result<(), ClientError> {
        let failed = |e: std::io::Error| {
            ClientError::Credits(format!(
                "writing the token file {}: {e}",
                self.path.display()
            ))
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        let tmp = self
            .path
            .with_extension(format!("tmp.{}", std::process::id()));
        let text = serde_json::to_string_pretty(session).unwrap_or_default();
        write_private(&tmp, text.as_bytes()).map_err(failed)?;
        std::fs::rename(&tmp, &self.path).map_err(failed)
    }

    /// Forgets the stored session (the server no longer takes it).
    pub fn clear(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `$XDG_CONFIG_HOME`, else `$HOME/.config`.
fn default_config_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn expiry_in_every_usual_shape() {
        assert_eq!(parse_expiry(&json!(1_900_000_000)), Some(1_900_000_000_000));
        assert_eq!(
            parse_expiry(&json!(1_900_000_000_000i64)),
            Some(1_900_000_000_000)
        );
        assert_eq!(
            parse_expiry(&json!("2030-03-17T17:46:40.000Z")),
            Some(1_900_000_000_000)
        );
        assert_eq!(parse_expiry(&json!("1900000000")), Some(1_900_000_000_000));
        assert_eq!(parse_expiry(&json!(null)), None);
        assert_eq!(parse_expiry(&json!("soon")), None);
    }

    #[test]
    fn a_token_is_kept_per_server_and_wallet_until_near_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let base = Url::parse("http://127.0.0.1:8080").unwrap();
        let file = TokenFile::new(Some(dir.path().join("t/s.json")), &base).unwrap();
        assert_eq!(file.load(), None);
        let session = Session {
            token: "tok".into(),
            expires_at_ms: 100_000,
            wallet: "W".into(),
            base: "http://127.0.0.1:8080".into(),
        };
        file.save(&session).unwrap();
        assert_eq!(file.load().as_ref(), Some(&session));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(session.usable("W", "http://127.0.0.1:8080", 100_000 - EXPIRY_MARGIN_MS - 1));
        assert!(!session.usable("W", "http://127.0.0.1:8080", 100_000 - EXPIRY_MARGIN_MS));
        assert!(!session.usable("X", "http://127.0.0.1:8080", 0));
        assert!(!session.usable("W", "http://127.0.0.1:9090", 0));
        file.clear();
        assert_eq!(file.load(), None);
    }

    #[test]
    fn the_default_file_is_named_after_the_server() {
        let base = Url::parse("https://rpc.example.com").unwrap();
        let file = TokenFile::under(Path::new("/home/u/.config"), &base);
        assert_eq!(
            file.path(),
            Path::new("/home/u/.config/x402-pay/rpc.example.com_443.json")
        );
        let v6 = TokenFile::under(Path::new("/c"), &Url::parse("http://[::1]:9/").unwrap());
        assert_eq!(v6.path(), Path::new("/c/x402-pay/___1__9.json"));
    }
}
