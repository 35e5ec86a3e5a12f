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
pub mod remote;

use async_trait::async_trait;

pub use error::FacilitatorError;

use crate::x402::{FacilitatorRequest, SettleResponse, SupportedResponse, VerifyResponse};

/// `errorReason` of a settle whose outcome is not known yet (the transaction was broadcast).
pub const SETTLEMENT_PENDING: &str = "settlement_pending";

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
}
