//! Embedded local Solana cluster: a LiteSVM ledger behind a loopback JSON-RPC 2.0 server.
//!
//! Nobody can reach mainnet or devnet from our machines, yet payments must be tested for
//! real: real ed25519-signed transactions, executed by the real SPL Token / Token-2022 /
//! Associated Token Account / Memo programs that LiteSVM ships, with balances that move.
//!
//! Invariants:
//! - One [`LocalCluster`] owns one ledger; there is no global state, so tests may run many
//!   clusters side by side (each on port 0 with its own keypair directory).
//! - The ledger lives behind a `parking_lot::Mutex` that is never held across an `.await`;
//!   RPC calls run on the blocking pool.
//! - Slots advance on a clock task (`slot_ms`, default 400 ms). Each slot produces a new
//!   blockhash that stays valid for 150 blocks, like a real cluster. [`LocalCluster::
//!   advance_slots`] jumps ahead to test expiry without sleeping.
//! - Signatures are always verified for `sendTransaction`; duplicates and expired blockhashes
//!   are rejected with the real errors (`AlreadyProcessed`, `BlockhashNotFound`).
//! - Fees are real: 5000 lamports per signature plus any prioritization fee.
//! - A landed transaction is `confirmed` at once and `finalized` after 32 slots.
//! - Dropping the handle (or [`LocalCluster::shutdown`]) stops the server and the clock.
//! - Commitment levels are accepted but all reads see the latest state.

mod bootstrap;
mod chain;
mod cli;
mod clock;
pub mod demo;
mod error;
mod fees;
mod keys;
mod rpc;
mod tokens;

pub use crate::config::localnet::{
    LocalnetConfig, TokenProgramKind, WalletConfig, DEVNET_USDC_MINT, LAMPORTS_PER_SOL,
};
pub use crate::keyfile::{read_keypair_file, write_keypair_file};
pub use cli::run_cli;
pub use error::LocalnetError;
pub use keys::FundedWallet;
pub use tokens::TransferFeeParams;

use chain::Chain;
use parking_lot::Mutex;
use solana_address::Address;
use solana_hash::Hash;
use solana_keypair::Keypair;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long [`LocalCluster::shutdown`] lets in-flight requests finish.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// A running local cluster. Drop or [`shutdown`](Self::shutdown) to stop it.
pub struct LocalCluster {
    chain: Arc<Mutex<Chain>>,
    paused: Arc<AtomicBool>,
    send_requests: Arc<AtomicU64>,
    addr: SocketAddr,
    genesis: bootstrap::Genesis,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    clock: Option<JoinHandle<()>>,
}

impl LocalCluster {
    /// Bootstraps the ledger from `cfg`, binds `cfg.listen` (port 0 picks a free port) and
    /// spawns the RPC server and the slot clock on the current tokio runtime.
    pub async fn start(cfg: LocalnetConfig) -> Result<Self, LocalnetError> {
        if !cfg.listen.ip().is_loopback() {
            return Err(LocalnetError::Config(format!(
                "listen address {} is not loopback; the local cluster has no authentication",
                cfg.listen
            )));
        }
        // Genesis does file I/O and loads programs: keep it off the async workers.
        let cfg2 = cfg.clone();
        let (chain, genesis) = tokio::task::spawn_blocking(move || {
            let mut chain = Chain::new();
            bootstrap::bootstrap(&mut chain, &cfg2).map(|g| (chain, g))
        })
        .await
        .map_err(|e| LocalnetError::Ledger(e.to_string()))??;

        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| LocalnetError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| LocalnetError::Bind {
                addr: cfg.listen,
                source,
            })?;

        let chain = Arc::new(Mutex::new(chain));
        let paused = Arc::new(AtomicBool::new(false));
        let (stop, stop_rx) = watch::channel(false);

        let send_requests = Arc::new(AtomicU64::new(0));
        let app = rpc::router(rpc::RpcState {
            chain: chain.clone(),
            send_requests: send_requests.clone(),
        });
        let mut server_stop = stop_rx.clone();
        let server = tokio::spawn(async move {
            let shutdown = async move {
                while server_stop.changed().await.is_ok() && !*server_stop.borrow() {}
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!(error = %e, "localnet RPC server stopped");
            }
        });
        let clock = tokio::spawn(clock::run(
            chain.clone(),
            paused.clone(),
            cfg.slot_ms,
            stop_rx,
        ));
        tracing::info!(%addr, mint = %genesis.mint, "localnet started");
        Ok(Self {
            chain,
            paused,
            send_requests,
            addr,
            genesis,
            stop,
            server: Some(server),
            clock: Some(clock),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn rpc_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The USDC-like mint created at genesis.
    pub fn mint(&self) -> Address {
        self.genesis.mint
    }

    /// Owner wallet of the pre-created merchant token account.
    pub fn pay_to(&self) -> Address {
        self.genesis.pay_to
    }

    /// The generated `payTo` keypair, when `pay_to` was not configured.
    pub fn pay_to_keypair(&self) -> Option<&FundedWallet> {
        self.genesis.pay_to_keypair.as_ref()
    }

    /// Program owning the genesis mint.
    pub fn token_program(&self) -> Address {
        self.genesis.token_program.program_id()
    }

    /// Mint authority of the genesis mint and of mints added with [`Self::add_mint`].
    pub fn mint_authority(&self) -> &Keypair {
        &self.genesis.mint_authority.keypair
    }

    /// Wallets funded with SOL and tokens, in config order.
    pub fn wallets(&self) -> &[FundedWallet] {
        &self.genesis.wallets
    }

    /// Fee payers funded with SOL, in config order.
    pub fn fee_payers(&self) -> &[FundedWallet] {
        &self.genesis.fee_payers
    }

    /// Associated token account of `owner` for the genesis mint.
    pub fn ata(&self, owner: &Address) -> Address {
        bootstrap::ata(owner, &self.genesis.mint, &self.token_program())
    }

    /// Balance of `owner`'s associated token account for the genesis mint, 0 if none.
    pub fn token_balance(&self, owner: &Address) -> u64 {
        self.token_balance_of(owner, &self.genesis.mint)
    }

    /// Balance of `owner`'s associated token account for `mint` (either program), 0 if none.
    pub fn token_balance_of(&self, owner: &Address, mint: &Address) -> u64 {
        let ch = self.chain.lock();
        let Some(program) = ch.account(mint).map(|a| a.owner) else {
            return 0;
        };
        ch.account(&bootstrap::ata(owner, mint, &program))
            .and_then(|a| tokens::unpack_account(&a.data))
            .map_or(0, |t| t.amount)
    }

    /// Lamports held by `addr`, 0 if the account does not exist.
    pub fn sol_balance(&self, addr: &Address) -> u64 {
        self.chain.lock().lamports(addr)
    }

    /// Latest blockhash and its last valid block height.
    pub fn latest_blockhash(&self) -> (Hash, u64) {
        self.chain.lock().latest_blockhash()
    }

    /// Current slot.
    pub fn slot(&self) -> u64 {
        self.chain.lock().slot
    }

    /// Current block height (equals the slot: no slot is ever skipped).
    pub fn block_height(&self) -> u64 {
        self.chain.lock().block_height
    }

    /// Produces `n` slots at once (new blockhash each), e.g. to expire a blockhash.
    pub fn advance_slots(&self, n: u64) {
        let mut ch = self.chain.lock();
        for _ in 0..n {
            ch.tick();
        }
    }

    /// `sendTransaction` requests the RPC server has received so far (including rejected ones
    /// and re-broadcasts), e.g. to assert that concurrent settles broadcast exactly once.
    pub fn send_transaction_count(&self) -> u64 {
        self.send_requests.load(Ordering::Relaxed)
    }

    /// Stops or resumes the automatic clock (manual [`Self::advance_slots`] still works).
    pub fn pause_clock(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    /// Gives `owner` `lamports` more SOL and `usdc` more atomic units of the genesis mint
    /// (creating its associated token account if needed).
    pub fn fund_wallet(
        &self,
        owner: &Address,
        lamports: u64,
        usdc: u64,
    ) -> Result<(), LocalnetError> {
        let mut ch = self.chain.lock();
        bootstrap::add_lamports(&mut ch, owner, lamports)?;
        bootstrap::mint_to(&mut ch, owner, &self.genesis.mint, usdc)?;
        Ok(())
    }

    /// Creates another mint at `address`, with [`Self::mint_authority`] as authority.
    pub fn add_mint(
        &self,
        address: Address,
        decimals: u8,
        kind: TokenProgramKind,
    ) -> Result<(), LocalnetError> {
        let authority = solana_signer::Signer::pubkey(self.mint_authority());
        bootstrap::create_mint(
            &mut self.chain.lock(),
            address,
            decimals,
            kind,
            authority,
            None,
        )
    }

    /// Creates a Token-2022 mint with the transfer-fee extension (both the older and newer fee
    /// set to `fee`); token accounts created for it carry `TransferFeeAmount`.
    pub fn add_mint_with_transfer_fee(
        &self,
        address: Address,
        decimals: u8,
        fee: TransferFeeParams,
    ) -> Result<(), LocalnetError> {
        let authority = solana_signer::Signer::pubkey(self.mint_authority());
        bootstrap::create_mint(
            &mut self.chain.lock(),
            address,
            decimals,
            TokenProgramKind::Token2022,
            authority,
            Some(fee),
        )
    }

    /// Mints `amount` of `mint` to `owner`'s associated token account (created if missing).
    /// Returns the token account address.
    pub fn mint_to(
        &self,
        owner: &Address,
        mint: &Address,
        amount: u64,
    ) -> Result<Address, LocalnetError> {
        bootstrap::mint_to(&mut self.chain.lock(), owner, mint, amount)
    }

    /// Stops the RPC server and the clock and waits for both to finish. Connections still
    /// busy after a grace period are cut so shutdown cannot hang on a stuck client.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(mut h) = self.server.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut h).await.is_err() {
                h.abort();
            }
        }
        if let Some(h) = self.clock.take() {
            let _ = h.await;
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        // Without an async context we cannot await; signal and abort so nothing outlives us.
        let _ = self.stop.send(true);
        for h in [self.server.take(), self.clock.take()]
            .into_iter()
            .flatten()
        {
            h.abort();
        }
    }
}
