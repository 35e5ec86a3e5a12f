//! The pending-settlement reconciler: a payment whose settlement outcome was unknown (the
//! facilitator timed out after it may have broadcast, or answered `settlement_pending`) is
//! kept as pending, and followed here until the chain decides.
//!
//! It asks the facilitator to settle the same payment again. For the SVM `exact` scheme this is
//! safe: the transaction is the client's, signed over a fixed blockhash, and the fee payer's
//! signature is deterministic, so a second settle either resumes the same transaction (our
//! facilitator re-awaits its signature), finds it landed (`duplicate_settlement` with the
//! signature), sends it if it never went out and is still valid, or reports the blockhash
//! expired. Outcomes:
//!
//! | facilitator says | claim becomes |
//! | --- | --- |
//! | `success: true` | settled, with the kept answer and its `PAYMENT-RESPONSE` (a retry gets it) |
//! | `duplicate_settlement` with a signature | settled (it landed earlier) |
//! | `settlement_pending`, `duplicate_settlement` without a signature, or unreachable | pending, looked at again |
//! | any other refusal (expired, failed on chain, ...) | released: nothing was charged |
//!
//! Each pending payment is leased to one instance at a time (`Store::due_pending`).

use std::sync::Arc;
use std::time::Duration;

use super::Paygate;
use crate::facilitator::SettleOutcome;
use crate::store::{ClaimRecord, ClaimState, PaymentKey, StoreResult};
use crate::x402::receipt::{add_receipt_to, PaymentVersion};
use crate::x402::{FacilitatorRequest, SettleResponse};

/// How long one instance holds a pending payment before another may look at it.
const LEASE: Duration = Duration::from_secs(60);
/// Pending payments looked at per pass.
const PER_PASS: usize = 16;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Became settled.
    pub settled: usize,
    /// Released (nothing charged).
    pub released: usize,
    /// Still pending.
    pub pending: usize,
}

pub(super) fn spawn(gate: &Arc<Paygate>) {
    let weak = Arc::downgrade(gate);
    let every = Duration::from_millis(gate.config.reconcile_interval_ms.max(50));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(gate) = weak.upgrade() else { return };
            if let Err(e) = reconcile(&gate).await {
                tracing::warn!(error = %e, "reconciling pending settlements failed");
            }
        }
    });
}

/// One pass over the pending payments that are due.
pub async fn reconcile(gate: &Paygate) -> StoreResult<Pass> {
    let due = gate.store.due_pending(LEASE, PER_PASS).await?;
    let mut pass = Pass::default();
    for payment in due {
        match reconcile_one(gate, &payment).await {
            Ok(Resolution::Settled) => pass.settled += 1,
            Ok(Resolution::Released) => pass.released += 1,
            Ok(Resolution::Pending) => pass.pending += 1,
            Err(e) => {
                pass.pending += 1;
                tracing::warn!(error = %e, ?payment, "reconciling a pending settlement failed");
            }
        }
    }
    if let Ok(count) = gate.store.pending_count().await {
        metrics::gauge!("x402_settlements_pending").set(count as f64);
    }
    Ok(pass)
}

/// What became of one pending payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolution {
    /// It landed: settled, the kept answer released with a success receipt.
    Settled,
    /// It did not land (or the claim is gone): nothing was charged.
    Released,
    /// Still unknown: looked at again later.
    Pending,
}

async fn reconcile_one(gate: &Paygate, payment: &PaymentKey) -> StoreResult<Resolution> {
    let settled_ttl = Duration::from_secs(gate.config.settled_ttl_secs.max(1));
    let Some(record) = gate.store.claim(payment).await? else {
        // Expired meanwhile: drop it from the index.
        gate.store
            .resolve_pending(payment, None, settled_ttl)
            .await?;
        return Ok(Resolution::Released);
    };
    let ClaimState::Pending {
        response,
        settle_request,
        ..
    } = &record.state
    else {
        return match record.state {
            // Already settled by another path: just leave the index.
            ClaimState::Settled { .. } => {
                gate.store
                    .resolve_pending(payment, Some(&record), settled_ttl)
                    .await?;
                Ok(Resolution::Settled)
            }
            // Re-claimed by a request in flight (the pending claim had expired): its own
            // finish updates the index; rewriting the record here would extend its lease.
            _ => Ok(Resolution::Pending),
        };
    };
    let request: FacilitatorRequest = match serde_json::from_str(settle_request) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, ?payment, "pending settlement unreadable; left for an operator");
            return Ok(Resolution::Pending);
        }
    };
    let settled = match gate.facilitator.settle(&request).await {
        Ok(s) => s,
        Err(e) => {
            tracing::info!(error = %e, ?payment, "pending settlement: facilitator unreachable");
            return Ok(Resolution::Pending);
        }
    };
    let outcome = SettleOutcome::of(&settled);
    let landed = outcome == SettleOutcome::Confirmed
        || (outcome == SettleOutcome::Duplicate && !settled.transaction.is_empty());
    if landed {
        // The receipt the client should have had: success, with the landed transaction.
        let receipt = SettleResponse {
            success: true,
            error_reason: None,
            error_message: None,
            ..settled.clone()
        };
        let response = response.clone().map(|mut kept| {
            add_receipt_to(
                &mut kept.headers,
                &receipt,
                PaymentVersion::from_wire(request.x402_version()),
            );
            kept
        });
        let record = ClaimRecord {
            fingerprint: record.fingerprint.clone(),
            state: ClaimState::Settled { response },
        };
        gate.store
            .resolve_pending(payment, Some(&record), settled_ttl)
            .await?;
        tracing::info!(?payment, transaction = %settled.transaction, "pending settlement confirmed");
        return Ok(Resolution::Settled);
    }
    // Pending, or landed without a signature to name: look again later.
    if matches!(outcome, SettleOutcome::Pending | SettleOutcome::Duplicate) {
        return Ok(Resolution::Pending);
    }
    let reason = settled.error_reason.as_deref();
    gate.store
        .resolve_pending(payment, None, settled_ttl)
        .await?;
    tracing::info!(?payment, reason = ?reason, "pending settlement did not land; released");
    Ok(Resolution::Released)
}
