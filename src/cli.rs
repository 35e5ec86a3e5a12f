//! Command line: `serve` (default), `check-config`, `healthcheck` and `localnet`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Pay-per-call Solana JSON-RPC and DAS gateway (x402).
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// TOML config file; without it the embedded default (gateway.example.toml) is used.
    #[arg(long, env = "GATEWAY_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Listen address, overriding `server.listen`.
    #[arg(long, env = "GATEWAY_LISTEN", global = true)]
    pub listen: Option<SocketAddr>,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Serve,
    /// Load and validate the config, print a redacted summary, and exit.
    CheckConfig,
    /// GET /healthz of a running gateway (default: on the listen address); exit 0 when it
    /// answers 200, 1 otherwise. For container healthchecks: reads no config.
    Healthcheck {
        /// The URL to probe (http only), e.g. http://127.0.0.1:8080/healthz.
        #[arg(long)]
        url: Option<url::Url>,
        /// Seconds each step (connect, write, read) may take.
        #[arg(long, default_value_t = 3)]
        timeout_secs: u64,
    },
    /// Apply the payment ledger's migrations (`migrations/<backend>/`) to `[ledger]`'s database
    /// and exit; `serve` applies them too, at start.
    Migrate,
    /// Run only the embedded local Solana cluster (the config's `[localnet]`, or defaults).
    #[cfg(feature = "localnet")]
    Localnet,
}
