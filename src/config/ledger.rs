//! `[ledger]`: where every payment is recorded durably (SQLite by default, PostgreSQL for
//! several instances), and how its background work is paced.

use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, Secret};

/// File name of the embedded SQLite ledger inside `data_dir`.
pub const SQLITE_FILE: &str = "ledger.sqlite3";

/// A backend the operator requires (`[ledger] backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequiredBackend {
    /// A PostgreSQL URL must be set.
    Postgres,
}

/// `[ledger]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerConfig {
    /// Directory of the embedded SQLite ledger (`<data_dir>/ledger.sqlite3`), created when
    /// missing. Relative paths are relative to the working directory. Ignored with `url`.
    pub data_dir: PathBuf,
    /// `postgres://…` (several instances share it) or `sqlite://…`; overrides `data_dir`.
    /// `LEDGER_URL` in the environment wins (a URL may carry a password).
    #[serde(skip)]
    pub url: Option<Secret>,
    /// The same in the file, for URLs without secrets (e.g. a local socket).
    #[serde(rename = "url")]
    pub file_url: Option<String>,
    /// `postgres`: refuse to start unless `LEDGER_URL` (or `url`) names a PostgreSQL database,
    /// so that instances behind one load balancer never each keep their own SQLite ledger.
    pub backend: Option<RequiredBackend>,
    /// Pool size (a SQLite ledger opens at most `ledger::SQLITE_MAX_CONNECTIONS`, 2).
    pub max_connections: u32,
    /// Every ledger call (acquire included) fails after this long: the paygate then refuses to
    /// move money rather than move it unrecorded.
    pub timeout_ms: u64,
    /// How often an instance marks itself alive; the reconciler finishes the payments of an
    /// instance not seen for `dead_after_ms` (it was killed mid-payment).
    pub heartbeat_ms: u64,
    /// See `heartbeat_ms`.
    pub dead_after_ms: u64,
    /// A live instance's submitted settlement is left to it this long before the reconciler
    /// follows it too (following it earlier is safe, only wasteful).
    pub settle_grace_ms: u64,
    /// How often the chain audit runs (every `settled` row checked against the chain, unknown
    /// transfers into `pay_to` reported); 0 turns it off.
    pub audit_interval_secs: u64,
    /// The chain audit reports a settled payment as `not_finalized` or `missing_on_chain` only
    /// once it settled this long ago (a transaction takes ~13 s to finalize); younger ones are
    /// looked at again on the next pass.
    pub audit_finality_secs: u64,
    /// Most queued background writes (event rows, outcomes) before a payment waits for room.
    pub queue: usize,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            url: None,
            file_url: None,
            backend: None,
            max_connections: 8,
            timeout_ms: 5_000,
            heartbeat_ms: 2_000,
            dead_after_ms: 10_000,
            settle_grace_ms: 30_000,
            audit_interval_secs: 86_400,
            audit_finality_secs: 600,
            queue: 10_000,
        }
    }
}

impl LedgerConfig {
    /// The URL to connect to: `LEDGER_URL`, else `url`, else the SQLite file in `data_dir`.
    pub fn connect_url(&self) -> String {
        if let Some(url) = &self.url {
            return url.expose().to_string();
        }
        if let Some(url) = &self.file_url {
            return url.clone();
        }
        format!(
            "sqlite://{}?mode=rwc",
            self.data_dir.join(SQLITE_FILE).display()
        )
    }

    /// What `check-config` prints: the backend and, for SQLite, the file.
    pub fn describe(&self) -> String {
        match (&self.url, &self.file_url) {
            (Some(_), _) => "from LEDGER_URL".into(),
            (None, Some(url)) if url.starts_with("sqlite:") => url.clone(),
            (None, Some(_)) => "postgres (url in the config)".into(),
            (None, None) => format!("sqlite {}", self.data_dir.join(SQLITE_FILE).display()),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: &str| ConfigError::Invalid {
            field: format!("ledger.{field}"),
            message: message.into(),
        };
        let url = self
            .url
            .as_ref()
            .map(|u| u.expose().to_string())
            .or(self.file_url.clone());
        if let Some(url) = &url {
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                return Err(invalid("url", "must be a sqlite: or postgres:// URL"));
            }
        }
        if self.backend == Some(RequiredBackend::Postgres)
            && !url.as_deref().is_some_and(|u| u.starts_with("postgres"))
        {
            return Err(invalid(
                "url",
                "is not set: set LEDGER_URL (or url) to a postgres:// URL, or remove backend for the embedded SQLite ledger",
            ));
        }
        if self.max_connections == 0 {
            return Err(invalid("max_connections", "must be positive"));
        }
        for (field, value) in [
            ("timeout_ms", self.timeout_ms),
            ("heartbeat_ms", self.heartbeat_ms),
        ] {
            if value == 0 {
                return Err(invalid(field, "must be positive"));
            }
        }
        if self.dead_after_ms < 2 * self.heartbeat_ms {
            return Err(invalid(
                "dead_after_ms",
                "must be at least twice heartbeat_ms (one late heartbeat is not a death)",
            ));
        }
        if self.queue == 0 {
            return Err(invalid("queue", "must be positive"));
        }
        Ok(())
    }
}
