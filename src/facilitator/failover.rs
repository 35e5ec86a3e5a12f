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

/// Which facilitator operation a call is: decides what may move on to another member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `/supported`.
    Supported,
    /// `/verify`.
    Verify,
    /// `/settle`.
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

/// How a call went: its result, the member that produced it (index into the members), how
/// many member calls were made, and which members failed on the way.
#[derive(Debug)]
pub struct Traced<T> {
    /// The answer, or the error that ended the call.
    pub result: Result<T, FacilitatorError>,
    /// The member that answered (or whose error ended the call).
    pub target: Option<usize>,
    /// Member calls made (1 = the first try answered).
    pub attempts: u32,
    /// Members that failed with an error that let the call move on.
    pub failed: Vec<usize>,
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

    /// The members, in config order.
    pub fn members(&self) -> &[Arc<dyn Facilitator>] {
        &self.members
    }

    async fn run<'r, T, F>(&'r self, call: Call, op: F) -> Result<T, FacilitatorError>
    where
        F: FnMut(
            &'r dyn Facilitator,
        ) -> futures::future::BoxFuture<'r, Result<T, FacilitatorError>>,
    {
        let order: Vec<usize> = (0..self.members.len()).collect();
        self.run_in(call, &order, op).await.result
    }

    /// The failover loop over the members at `order` (indices; the paygate uses config order,
    /// the facilitator proxy a weighted random order of the healthy ones), traced.
    pub async fn run_in<'r, T, F>(&'r self, call: Call, order: &[usize], mut op: F) -> Traced<T>
    where
        F: FnMut(
            &'r dyn Facilitator,
        ) -> futures::future::BoxFuture<'r, Result<T, FacilitatorError>>,
    {
        let deadline = Instant::now() + Duration::from_millis(self.policy.budget_ms);
        let mut last = None;
        let mut attempts = 0;
        let mut failed = Vec::new();
        let mut target = None;
        for round in 0..self.policy.attempts.max(1) {
            if round > 0 {
                let wait = self.policy.delay(round - 1);
                if Instant::now() + wait >= deadline {
                    break;
                }
                tokio::time::sleep(wait).await;
            }
            for &index in order {
                let Some(member) = self.members.get(index) else {
                    continue;
                };
                // Every member call is bounded by what is left of the budget, so a hanging
                // facilitator cannot stretch the whole call past `budget_ms`.
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                attempts += 1;
                target = Some(index);
                let answer = match tokio::time::timeout(left, op(member.as_ref())).await {
                    Ok(answer) => answer,
                    Err(_) => Err(FacilitatorError::Timeout(left.as_millis() as u64)),
                };
                match answer {
                    Ok(answer) => {
                        return Traced {
                            result: Ok(answer),
                            target,
                            attempts,
                            failed,
                        }
                    }
                    Err(err) if call.may_try_next(&err) => {
                        tracing::warn!(facilitator = member.name(), error = %err, "facilitator failed; trying the next");
                        failed.push(index);
                        last = Some(err);
                    }
                    Err(err) => {
                        return Traced {
                            result: Err(err),
                            target,
                            attempts,
                            failed,
                        }
                    }
                }
            }
        }
        Traced {
            result: Err(last.unwrap_or_else(|| {
                FacilitatorError::Unavailable("no facilitator answered".into())
            })),
            target,
            attempts,
            failed,
        }
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
