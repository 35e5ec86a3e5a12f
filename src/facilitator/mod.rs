//! Facilitators: who verifies and settles payments. The paygate talks to one [`Facilitator`];
//! implementations are the in-process SVM facilitator (`local`), a client for the standard
//! facilitator HTTP API (`remote`), and [`failover`] over several of them.
//!
//! Outcome contract for `settle` (the paygate relies on it):
//! - `Ok(success: true)`: the payment is on chain (confirmed). Release the answer.
//! - `Ok(success: false, errorReason: "settlement_pending", transaction: sig)`: broadcast, not
//!   yet confirmed, blockhash still alive: outcome unknown. Withhold, record pending.
//! - `Ok(success: false, other reason)`: definitely not paid (refused before broadcast, or the
//!   blockhash expired without the transaction landing). Withhold; the payment may be retried.
//! - `Err(e)` with `e.maybe_sent() == false`: nothing reached the facilitator; another may try.
//! - `Err(e)` otherwise (timeout, reset mid-request): unknown. Never re-send to another one.

mod error;
pub mod failover;
pub mod http;
pub mod keys;
pub mod local;
pub(crate) mod proxy;
pub mod remote;

use std::sync::Arc;

use async_trait::async_trait;

pub use error::FacilitatorError;

use crate::config::EnvSource;
use crate::config::{FailoverPolicy, RemoteFacilitatorConfig};
use failover::FailoverFacilitator;
use remote::RemoteFacilitator;

use crate::svm::DecodedTransaction;
use crate::x402::{FacilitatorRequest, SettleResponse, SupportedResponse, VerifyResponse};

/// `errorReason` of a settle whose outcome is not known yet (the transaction was broadcast).
pub const SETTLEMENT_PENDING: &str = "settlement_pending";

/// `errorReason` of a settle whose transaction is already on chain (with its signature when the
/// facilitator knows it).
pub const DUPLICATE_SETTLEMENT: &str = "duplicate_settlement";

/// What a settle answer means for the payment, decided here once (the contract above).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleOutcome {
    /// On chain, confirmed by this settle.
    Confirmed,
    /// Already on chain: a duplicate of a transaction that landed earlier (the signature, when
    /// the facilitator knows it, is in `transaction`).
    Duplicate,
    /// Broadcast (or possibly), not confirmed yet: unknown.
    Pending,
    /// Definitely not paid.
    Refused,
}

impl SettleOutcome {
    /// Classifies a settle answer.
    pub fn of(settled: &SettleResponse) -> Self {
        if settled.success {
            return Self::Confirmed;
        }
        match settled.error_reason.as_deref() {
            Some(SETTLEMENT_PENDING) => Self::Pending,
            Some(DUPLICATE_SETTLEMENT) => Self::Duplicate,
            _ => Self::Refused,
        }
    }
}

/// A facilitator for x402 payments.
#[async_trait]
pub trait Facilitator: Send + Sync + std::fmt::Debug {
    /// A short name for logs, metrics and failover decisions.
    fn name(&self) -> &str;

    /// What the facilitator supports (kinds, fee payers, extensions).
    async fn supported(&self) -> Result<SupportedResponse, FacilitatorError>;

    /// Checks a payment against the server's requirements without moving funds.
    async fn verify(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<VerifyResponse, FacilitatorError>;

    /// Settles a verified payment on chain. See the module docs for the outcome contract.
    async fn settle(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<SettleResponse, FacilitatorError>;

    /// [`Facilitator::verify`] of a payment whose transaction this process already decoded
    /// and whose client signatures it already checked (the paygate's pre-verification, `tx`
    /// decoded from the request's own `payload.transaction`). An in-process facilitator reuses
    /// `tx`: no second decode, no second ed25519 check. Any other verifies the request in full.
    async fn verify_decoded(
        &self,
        request: &FacilitatorRequest,
        tx: &Arc<DecodedTransaction>,
    ) -> Result<VerifyResponse, FacilitatorError> {
        let _ = tx;
        self.verify(request).await
    }

    /// [`Facilitator::settle`] with the transaction already decoded (see `verify_decoded`).
    async fn settle_decoded(
        &self,
        request: &FacilitatorRequest,
        tx: &Arc<DecodedTransaction>,
    ) -> Result<SettleResponse, FacilitatorError> {
        let _ = tx;
        self.settle(request).await
    }
}

/// The facilitator set, in order: the in-process one first (when configured), then the remote
/// ones in config order. Shared by the paygate ([`from_config`]) and the facilitator proxy.
pub fn members(
    local: Option<Arc<dyn Facilitator>>,
    remotes: &[RemoteFacilitatorConfig],
    env: &dyn EnvSource,
) -> Result<Vec<Arc<dyn Facilitator>>, String> {
    let mut members: Vec<Arc<dyn Facilitator>> = local.into_iter().collect();
    for remote in remotes {
        members.push(Arc::new(RemoteFacilitator::new(remote, env)?));
    }
    Ok(members)
}

/// The facilitator the paygate talks to, assembled in one place: the in-process one first (when
/// configured), then the remote ones in config order, behind failover when there are several.
/// `Ok(None)` when there is none at all.
pub fn from_config(
    local: Option<Arc<dyn Facilitator>>,
    remotes: &[RemoteFacilitatorConfig],
    failover: &FailoverPolicy,
    env: &dyn EnvSource,
) -> Result<Option<Arc<dyn Facilitator>>, String> {
    let mut members = members(local, remotes, env)?;
    Ok(match members.len() {
        0 => None,
        1 => members.pop(),
        _ => Some(Arc::new(FailoverFacilitator::new(
            members,
            failover.clone(),
        ))),
    })
}
