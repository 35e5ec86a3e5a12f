//! The in-process x402 `exact` facilitator for Solana: verification with the RPC-side checks,
//! settlement that always ends, and `/supported`.
//!
//! **Verify** (no funds move): parse the v2 or v1 request (`request.rs`), refuse an asset that
//! is not allowed before any RPC call, fetch the mint (cached), run the strict static checks
//! of [`crate::svm::verify_exact`], then concurrently check the blockhash, simulate
//! (`sigVerify: false`, the client signatures were verified locally) and read the status of
//! the transaction's id: the fee payer's signature over the message, computed here (ed25519 is
//! deterministic, so it is the id the settled transaction has). A status means the payment
//! already landed: `duplicate_settlement`, before the caller spends anything on it (a gateway
//! that lost its records would otherwise call its upstream again for a settled payment). The
//! requests run in parallel: the check adds one request, not a round trip.
//!
//! Blockhash rule: `isBlockhashValid` must be true. When the blockhash's last valid block
//! height is known (we saw it in one of our own `getLatestBlockhash` answers; `blockhash.rs`
//! refreshes them on demand, at most once per slot), it must also have
//! `blocks_for(min_blockhash_life_ms)` blocks left at the current block height. A blockhash we
//! never saw is held to `isBlockhashValid` alone.
//!
//! Business failures are `Ok(isValid: false)` with a reason string ([`reasons`] or
//! [`crate::svm::VerifyError::reason`]) and a human message; an unreachable RPC is
//! `Err(FacilitatorError::Unavailable)`. A simulation that fails on the transfer with SPL
//! `InsufficientFunds` answers the core reason `insufficient_funds`.
//!
//! **Settle** (`settle.rs`):
//! 1. The static verification above (no simulation: the send's preflight simulates). A
//!    refusal ends here, nothing claimed.
//! 2. Claim the SHA-256 of the message bytes ([`SettlementLocks`]). In flight or settled →
//!    `duplicate_settlement`, no broadcast. A pending claim is resumed: its signature is
//!    re-awaited, not re-sent with preflight.
//! 3. Sign as fee payer (the signature, hence the transaction id, is known from here on and is
//!    in every later answer), `sendTransaction` with preflight. Only a definite refusal of
//!    that first send (a JSON-RPC error object other than `-32005`, node unhealthy) means
//!    nothing went out. `-32005`, a timeout, a reset or an HTTP 5xx may come after the node
//!    forwarded the transaction, so it is followed like a sent one: step 4, re-broadcasts
//!    included (the same bytes land at most once).
//! 4. Poll `getSignatureStatuses` every `confirm_poll_ms`; every `rebroadcast_ms` ask
//!    `isBlockhashValid` and re-send the same bytes (`skipPreflight`) while it is valid.
//!
//! | outcome | answer (`transaction`) | claim |
//! | --- | --- | --- |
//! | confirmed, `err: null` | `success: true` (signature) | settled |
//! | confirmed with an error | `invalid_exact_svm_transaction_failed` (signature) | released |
//! | preflight or node refused the send (JSON-RPC error, not `-32005`) | the simulation reason, e.g. `insufficient_funds`, `invalid_exact_svm_payload_blockhash_expired` (`""`) | released |
//! | send failed otherwise (`-32005`, timeout, transport, 5xx) | as followed: one of the other rows | as that row |
//! | preflight says `AlreadyProcessed` | `duplicate_settlement` (signature) | settled |
//! | blockhash invalid and no status in a final read | `invalid_exact_svm_settlement_expired` (signature) | released |
//! | `settle_deadline_ms` reached first, or the status unreadable at expiry | `settlement_pending` (signature) | pending |
//! | RPC or lock store unreachable before the send | `unexpected_settle_error` (`""`) | released |
//!
//! `settle` never returns `Err` except if its task panicked (`Transport`: outcome unknown).
//! Every RPC call has the client's timeout and is also cut at the deadline, so a settle never
//! outlives `settle_deadline_ms`. It runs on its own task: a caller that stops waiting
//! (client gone, timeout) never leaves a claimed payment half-settled.
//!
//! Key material is never logged; settle outcomes are logged with the signature and the
//! message hash (hex).

mod blockhash;
pub mod dedupe;
mod fee_payer;
pub mod reasons;
mod request;
mod settle;
mod verify;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use solana_address::Address;
use solana_signer::Signer;

use super::keys::FeePayerKeys;
use super::{Facilitator, FacilitatorError};
use crate::config::{ConfigError, LocalFacilitatorConfig};
use crate::solana_rpc::{MintCache, SolanaRpc};
use crate::svm::{DecodedTransaction, VerifyError};
use crate::x402::network::to_v1_name;
use crate::x402::{
    FacilitatorRequest, SettleResponse, SupportedKind, SupportedResponse, VerifyResponse,
};
use blockhash::BlockhashCache;
pub use dedupe::{Claim, InMemoryLocks, LockError, MessageHash, SettlementLocks};
pub use fee_payer::FeePayerBalance;

/// Blocks a blockhash stays valid for (agave `MAX_PROCESSING_AGE`).
pub const BLOCKHASH_LIFETIME_BLOCKS: u64 = 150;

/// Why the in-process facilitator cannot be built: its configuration is invalid, or a key or
/// RPC client it names cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("local facilitator: {0}")]
pub struct LocalFacilitatorError(pub String);

impl From<ConfigError> for LocalFacilitatorError {
    fn from(e: ConfigError) -> Self {
        Self(e.to_string())
    }
}

/// A refusal with its reason string, a human message and the payer when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub reason: &'static str,
    pub message: String,
    pub payer: Option<Address>,
}

impl Rejection {
    pub(crate) fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            payer: None,
        }
    }

    pub(crate) fn with_payer(mut self, payer: Address) -> Self {
        self.payer = Some(payer);
        self
    }

    fn into_verify_response(self) -> VerifyResponse {
        VerifyResponse {
            is_valid: false,
            invalid_reason: Some(self.reason.to_owned()),
            invalid_message: Some(self.message),
            payer: self.payer.map(|p| p.to_string()),
        }
    }
}

impl From<VerifyError> for Rejection {
    fn from(e: VerifyError) -> Self {
        Self::new(e.reason(), e.to_string())
    }
}

/// Why a check did not pass: a definite refusal, or the RPC could not be asked.
#[derive(Debug)]
pub(crate) enum Failure {
    Rejected(Rejection),
    Rpc(String),
}

impl From<Rejection> for Failure {
    fn from(r: Rejection) -> Self {
        Failure::Rejected(r)
    }
}

impl From<VerifyError> for Failure {
    fn from(e: VerifyError) -> Self {
        Failure::Rejected(e.into())
    }
}

/// Everything needed to serve one network.
#[derive(Debug)]
pub(crate) struct NetworkState {
    pub network: String,
    pub rpc: SolanaRpc,
    pub mints: MintCache,
    pub allowed_mints: Vec<Address>,
    pub blockhashes: BlockhashCache,
}

/// Timings and caps from the configuration, as durations.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub max_compute_unit_limit: u32,
    pub max_compute_unit_price: u64,
    pub min_blockhash_life: Duration,
    pub confirm_poll: Duration,
    pub rebroadcast: Duration,
    pub settle_deadline: Duration,
    pub dedupe_ttl: Duration,
    pub require_memo: bool,
    pub low_balance_lamports: u64,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub keys: FeePayerKeys,
    pub networks: Vec<NetworkState>,
    pub settings: Settings,
    pub locks: Arc<dyn SettlementLocks>,
}

impl Inner {
    pub(crate) fn network(&self, caip2: &str) -> Option<&NetworkState> {
        self.networks.iter().find(|n| n.network == caip2)
    }
}

/// The in-process `exact` SVM facilitator. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct LocalFacilitator {
    inner: Arc<Inner>,
}

impl LocalFacilitator {
    /// Loads the fee-payer keys named by `config` (file, else environment) and builds the
    /// facilitator with in-process settlement locks.
    pub fn from_config(config: &LocalFacilitatorConfig) -> Result<Self, LocalFacilitatorError> {
        let keys = FeePayerKeys::load(
            config.fee_payer_keypair.as_deref(),
            config.fee_payer_env.as_deref(),
        )
        .map_err(|e| LocalFacilitatorError(e.to_string()))?;
        Self::new(config, keys)
    }

    /// A facilitator signing with `keys`, with in-process settlement locks.
    pub fn new(
        config: &LocalFacilitatorConfig,
        keys: FeePayerKeys,
    ) -> Result<Self, LocalFacilitatorError> {
        Self::with_locks(config, keys, Arc::new(InMemoryLocks::new()))
    }

    /// A facilitator whose duplicate-settlement claims live in `locks` (e.g. shared Redis).
    pub fn with_locks(
        config: &LocalFacilitatorConfig,
        keys: FeePayerKeys,
        locks: Arc<dyn SettlementLocks>,
    ) -> Result<Self, LocalFacilitatorError> {
        config.validate()?;
        let networks = config
            .networks
            .iter()
            .map(|n| {
                let rpc =
                    SolanaRpc::try_new(n.rpc_urls.clone(), config.rpc_timeout()).map_err(|e| {
                        LocalFacilitatorError(format!("RPC client for {}: {e}", n.network))
                    })?;
                let allowed_mints = n
                    .allowed_mints
                    .iter()
                    .map(|m| m.parse::<Address>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        LocalFacilitatorError(format!("bad allowed mint for {}", n.network))
                    })?;
                Ok(NetworkState {
                    network: n.network.clone(),
                    rpc,
                    mints: MintCache::default(),
                    allowed_mints,
                    blockhashes: BlockhashCache::new(),
                })
            })
            .collect::<Result<Vec<_>, LocalFacilitatorError>>()?;
        let ms = Duration::from_millis;
        let settings = Settings {
            max_compute_unit_limit: config.max_compute_unit_limit,
            max_compute_unit_price: config.max_compute_unit_price,
            min_blockhash_life: ms(config.min_blockhash_life_ms),
            confirm_poll: ms(config.confirm_poll_ms),
            rebroadcast: ms(config.rebroadcast_ms),
            settle_deadline: ms(config.settle_deadline_ms),
            dedupe_ttl: Duration::from_secs(config.dedupe_ttl_secs),
            require_memo: config.require_memo,
            low_balance_lamports: config.low_balance_lamports,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                keys,
                networks,
                settings,
                locks,
            }),
        })
    }

    /// Public keys of the fee payers, the default one first.
    pub fn fee_payers(&self) -> Vec<Address> {
        self.inner.keys.pubkeys()
    }

    /// Reads every fee payer's SOL balance on every network once: sets
    /// `x402_fee_payer_balance_lamports` and warns about balances below
    /// `[facilitator] low_balance_lamports`.
    pub async fn poll_balances(&self) -> Vec<FeePayerBalance> {
        self.inner.poll_balances().await
    }

    /// Polls the balances every `every` in the background (the first poll at once) for as
    /// long as this facilitator lives. Call it from a tokio runtime.
    pub fn spawn_balance_poller(&self, every: Duration) {
        fee_payer::spawn_poller(Arc::downgrade(&self.inner), every);
    }

    /// CAIP-2 ids of the networks served.
    pub fn networks(&self) -> Vec<String> {
        self.inner
            .networks
            .iter()
            .map(|n| n.network.clone())
            .collect()
    }

    /// The `/supported` answer (no I/O).
    pub fn supported_response(&self) -> SupportedResponse {
        let fee_payer = self.inner.keys.primary().pubkey().to_string();
        let extra: Map<String, Value> = json!({ "feePayer": fee_payer })
            .as_object()
            .cloned()
            .unwrap_or_default();
        let kind = |version: u8, network: &str| SupportedKind {
            x402_version: version,
            scheme: "exact".into(),
            network: network.into(),
            extra: Some(extra.clone()),
        };
        let mut kinds: Vec<SupportedKind> = self
            .inner
            .networks
            .iter()
            .map(|n| kind(2, &n.network))
            .collect();
        kinds.extend(
            self.inner
                .networks
                .iter()
                .filter_map(|n| to_v1_name(&n.network))
                .map(|v1| kind(1, v1)),
        );
        let signers = self
            .inner
            .keys
            .pubkeys()
            .iter()
            .map(ToString::to_string)
            .collect();
        SupportedResponse {
            kinds,
            extensions: Vec::new(),
            signers: [("solana:*".to_owned(), signers)].into_iter().collect(),
        }
    }
}

#[async_trait]
impl Facilitator for LocalFacilitator {
    fn name(&self) -> &str {
        "local"
    }

    async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
        Ok(self.supported_response())
    }

    async fn verify(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<VerifyResponse, FacilitatorError> {
        self.verify_with(request, None).await
    }

    async fn settle(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<SettleResponse, FacilitatorError> {
        self.settle_with(request, None).await
    }

    async fn verify_decoded(
        &self,
        request: &FacilitatorRequest,
        tx: &Arc<DecodedTransaction>,
    ) -> Result<VerifyResponse, FacilitatorError> {
        self.verify_with(request, Some(tx)).await
    }

    async fn settle_decoded(
        &self,
        request: &FacilitatorRequest,
        tx: &Arc<DecodedTransaction>,
    ) -> Result<SettleResponse, FacilitatorError> {
        self.settle_with(request, Some(tx)).await
    }
}

impl LocalFacilitator {
    async fn verify_with(
        &self,
        request: &FacilitatorRequest,
        pre: Option<&Arc<DecodedTransaction>>,
    ) -> Result<VerifyResponse, FacilitatorError> {
        match self.inner.verify(request, pre).await {
            Ok(payer) => Ok(VerifyResponse {
                is_valid: true,
                invalid_reason: None,
                invalid_message: None,
                payer: Some(payer.to_string()),
            }),
            Err(Failure::Rejected(r)) => Ok(r.into_verify_response()),
            Err(Failure::Rpc(e)) => Err(FacilitatorError::Unavailable(e)),
        }
    }

    /// Settles on its own task: a caller that goes away never cuts a settlement short.
    async fn settle_with(
        &self,
        request: &FacilitatorRequest,
        pre: Option<&Arc<DecodedTransaction>>,
    ) -> Result<SettleResponse, FacilitatorError> {
        let inner = self.inner.clone();
        let request = request.clone();
        let pre = pre.cloned();
        tokio::spawn(async move { inner.settle(&request, pre.as_ref()).await })
            .await
            .map_err(|e| FacilitatorError::Transport(format!("settlement task failed: {e}")))
    }
}
