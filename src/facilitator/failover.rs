//! Several facilitators in order, with exponential backoff between rounds.
//!
//! Rules (a weaker facilitator must never overrule a stronger one's "no", and a settle that may
//! have broadcast must never be sent twice):
//! - `verify` / `supported`: a retryable error (transport, timeout, 5xx) moves on to the next
//!   facilitator; a definitive answer (including `isValid: false`) is returned as is.
//! - `settle`: only an error that proves nothing was sent (`Connect`) moves on; any other error
//!   is returned at once as an unknown outcome.
//! - After a full round of failures, wait `base × factor^round` (capped) and try again, up to
//!   `attempts` rounds, never past the time budget.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Facilitator, FacilitatorError};
use crate::config::FailoverPolicy;
use crate::svm::DecodedTransaction;
use crate::x402::{FacilitatorRequest, SettleResponse, SupportedResponse, VerifyResponse};

impl FailoverPolicy {
    fn delay(&self, round: u32) -> Duration {
        let ms = self
            .base_ms
            .saturating_mul(u64::from(self.factor).saturating_pow(round))
            .min(self.cap_ms);
        Duration::from_millis(ms)
    }
}

/// Facilitators tried in order.
#[derive(Debug)]
pub struct FailoverFacilitator {
    members: Vec<Arc<dyn Facilitator>>,
    policy: FailoverPolicy,
}

/// What to do with an error in a given call.
#[derive(Clone, Copy)]
enum Call {
    Supported,
    Verify,
    Settle,
}

impl Call {
    fn may_try_next(self, err: &FacilitatorError) -> bool {
        match self {
            Call::Supported | Call::Verify => err.is_retryable(),
            Call::Settle => !err.maybe_sent(),
        }
    }
}

impl FailoverFacilitator {
    /// Wraps `members` (at least one) with `policy`.
    pub fn new(members: Vec<Arc<dyn Facilitator>>, policy: FailoverPolicy) -> Self {
        assert!(
            !members.is_empty(),
            "failover needs at least one facilitator"
        );
        Self { members, policy }
    }

    async fn run<'r, T, F>(&'r self, call: Call, mut op: F) -> Result<T, FacilitatorError>
    where
        F: FnMut(
            &'r dyn Facilitator,
        ) -> futures::future::BoxFuture<'r, Result<T, FacilitatorError>>,
    {
        let deadline = Instant::now() + Duration::from_millis(self.policy.budget_ms);
        let mut last = None;
        for round in 0..self.policy.attempts.max(1) {
            if round > 0 {
                let wait = self.policy.delay(round - 1);
                if Instant::now() + wait >= deadline {
                    break;
                }
                tokio::time::sleep(wait).await;
            }
            for member in &self.members {
                // Every member call is bounded by what is left of the budget, so a hanging
                // facilitator cannot stretch the whole call past `budget_ms`.
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                let answer = match tokio::time::timeout(left, op(member.as_ref())).await {
                    Ok(answer) => answer,
                    Err(_) => Err(FacilitatorError::Timeout(left.as_millis() as u64)),
                };
                match answer {
                    Ok(answer) => return Ok(answer),
                    Err(err) if call.may_try_next(&err) => {
                        tracing::warn!(facilitator = member.name(), error = %err, "facilitator failed; trying the next");
                        last = Some(err);
                    }
                    Err(err) => return Err(err),
                }
            }
        }
        Err(last.unwrap_or_else(|| FacilitatorError::Unavailable("no facilitator answered".into())))
    }
}

#[async_trait]
impl Facilitator for FailoverFacilitator {
    fn name(&self) -> &str {
        "failover"
    }

    async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
        self.run(Call::Supported, |f| Box::pin(f.supported())).await
    }

    async fn verify(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<VerifyResponse, FacilitatorError> {
        self.run(Call::Verify, |f| Box::pin(f.verify(request)))
            .await
    }

    async fn settle(
        &self,
        request: &FacilitatorRequest,
    ) -> Result<SettleResponse, FacilitatorError> {
        self.run(Call::Settle, |f| Box::pin(f.settle(request)))
            .await
    }

    async fn verify_decoded(
        &self,
        request: &FacilitatorRequest,
        tx: &Arc<DecodedTransaction>,
    ) -> Result<VerifyResponse, FacilitatorError> {
        self.run(Call::Verify, |f| Box::pin(f.verify_decoded(request, tx)))
            .await
    }

    async fn settle_decoded(
        &self,
        request: &FacilitatorRequest,
        tx: &Arc<DecodedTransaction>,
    ) -> Result<SettleResponse, FacilitatorError> {
        self.run(Call::Settle, |f| Box::pin(f.settle_decoded(request, tx)))
            .await
    }
}
