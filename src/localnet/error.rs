//! Errors raised while starting or driving the cluster (not JSON-RPC errors; those live in
//! `rpc`).

use std::path::PathBuf;

/// Failure to start or modify the local cluster.
#[derive(Debug, thiserror::Error)]
pub enum LocalnetError {
    /// A configuration value is invalid (bad address, non-loopback listen, ...).
    #[error("invalid localnet config: {0}")]
    Config(String),
    /// A keypair file could not be read, parsed or written.
    #[error("keypair file {path}: {reason}")]
    Keypair {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Binding the JSON-RPC listener failed.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// Requested address.
        addr: std::net::SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
    /// LiteSVM refused a state change (should not happen with well-formed accounts).
    #[error("ledger: {0}")]
    Ledger(String),
}
