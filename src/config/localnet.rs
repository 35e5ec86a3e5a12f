//! `[localnet]`: configuration of the embedded cluster (`crate::localnet`). Every field has a default so an empty `[localnet]`
//! section (or `LocalnetConfig::default()`) gives a working cluster.

use serde::{Deserialize, Serialize};
use solana_address::Address;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Devnet USDC: unmodified x402 clients configured for `solana-devnet` look for this mint.
pub const DEVNET_USDC_MINT: &str = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";

/// 1 SOL in lamports.
pub const LAMPORTS_PER_SOL: u64 = 1_000_000_000;

/// Which SPL token program owns a mint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenProgramKind {
    /// `TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA`
    #[default]
    SplToken,
    /// `TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb`
    #[serde(rename = "token_2022", alias = "token2022")]
    Token2022,
}

impl TokenProgramKind {
    /// The program id.
    pub fn program_id(self) -> Address {
        match self {
            TokenProgramKind::SplToken => spl_token_interface::id(),
            TokenProgramKind::Token2022 => spl_token_2022_interface::id(),
        }
    }

    /// Inverse of [`TokenProgramKind::program_id`].
    pub fn from_program_id(id: &Address) -> Option<Self> {
        if *id == spl_token_interface::id() {
            Some(TokenProgramKind::SplToken)
        } else if *id == spl_token_2022_interface::id() {
            Some(TokenProgramKind::Token2022)
        } else {
            None
        }
    }
}

/// A wallet funded at genesis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletConfig {
    /// solana-keygen JSON keypair file; created if missing. Relative paths are relative to the
    /// process working directory.
    pub keypair: PathBuf,
    /// SOL to fund (may be fractional). Ignored if `lamports` is set. Default 10 SOL.
    #[serde(default)]
    pub sol: Option<f64>,
    /// Exact lamports to fund; takes precedence over `sol`.
    #[serde(default)]
    pub lamports: Option<u64>,
    /// Atomic units of the configured mint (USDC: 1_000_000 = 1 USDC), default 100 USDC.
    #[serde(default = "default_wallet_usdc")]
    pub usdc: u64,
}

impl WalletConfig {
    /// A wallet with the default 10 SOL and 100 USDC.
    pub fn new(keypair: impl Into<PathBuf>) -> Self {
        Self {
            keypair: keypair.into(),
            sol: None,
            lamports: None,
            usdc: default_wallet_usdc(),
        }
    }

    /// Lamports this wallet is funded with.
    pub fn lamports(&self) -> u64 {
        match (self.lamports, self.sol) {
            (Some(l), _) => l,
            (None, Some(sol)) if sol.is_finite() && sol > 0.0 => {
                (sol * LAMPORTS_PER_SOL as f64) as u64
            }
            (None, Some(_)) => 0,
            (None, None) => 10 * LAMPORTS_PER_SOL,
        }
    }
}

fn default_wallet_usdc() -> u64 {
    100_000_000
}

/// `[localnet]` configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalnetConfig {
    /// Loopback address for the JSON-RPC server; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Slot duration in milliseconds (a real cluster targets 400 ms). A new blockhash is
    /// produced every slot and expires 150 slots later.
    pub slot_ms: u64,
    /// Base58 address of the USDC-like mint created at genesis.
    pub mint: String,
    /// Decimals of that mint.
    pub decimals: u8,
    /// Program that owns the mint.
    pub token_program: TokenProgramKind,
    /// Owner wallet whose associated token account is created up front. If `None`, a keypair
    /// `pay-to.json` is generated (or reused) in `keypair_dir`.
    pub pay_to: Option<String>,
    /// Keypair files funded with SOL only (facilitator fee payers); created if missing.
    pub fee_payers: Vec<PathBuf>,
    /// Keypair files funded with SOL and tokens (paying clients); created if missing.
    pub wallets: Vec<WalletConfig>,
    /// Lamports given to each fee payer (default 10 SOL).
    pub fee_payer_lamports: u64,
    /// Directory for generated keypairs (default wallets, pay-to, mint authority).
    pub keypair_dir: PathBuf,
    /// A second keyless provider of this name on the same cluster (priced 2 units a call), so
    /// the standard route's routing across a pool is visible offline. Default: none.
    pub mirror_provider: Option<String>,
}

impl Default for LocalnetConfig {
    fn default() -> Self {
        let dir = PathBuf::from(".localnet");
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8899)),
            slot_ms: 400,
            mint: DEVNET_USDC_MINT.to_string(),
            decimals: 6,
            token_program: TokenProgramKind::SplToken,
            pay_to: None,
            fee_payers: vec![dir.join("fee-payer.json")],
            wallets: vec![WalletConfig::new(dir.join("client.json"))],
            fee_payer_lamports: 10 * LAMPORTS_PER_SOL,
            keypair_dir: dir,
            mirror_provider: None,
        }
    }
}

impl LocalnetConfig {
    /// The generated `payTo` keypair used when `pay_to` is not configured. The config's demo
    /// derivation and the cluster's genesis both read it here, so they agree on `payTo`.
    pub fn pay_to_keypair_path(&self) -> PathBuf {
        self.keypair_dir.join("pay-to.json")
    }

    /// Defaults with every generated file placed under `dir` and port 0: what tests want.
    pub fn for_tests(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            fee_payers: vec![dir.join("fee-payer.json")],
            wallets: vec![WalletConfig::new(dir.join("client.json"))],
            keypair_dir: dir,
            ..Self::default()
        }
    }
}
