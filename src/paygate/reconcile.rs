//! The reconciler: drives every payment the ledger holds in a non-final state to a final one.
//! One instance at a time holds its lease (`leases.reconciler`); a pass looks at:
//!
//! - **submitted settlements** whose instance died (stopped heartbeating) or which are older
//!   than `[ledger] settle_grace_ms`: the facilitator is asked to settle the same payment
//!   again. For the SVM `exact` scheme this is safe: the transaction is the client's, signed
//!   over a fixed blockhash, and the fee payer's signature is deterministic, so a second
//!   settle resumes the same transaction (our facilitator re-awaits its signature), finds it
//!   landed (`duplicate_settlement` with the signature), sends it if it never went out and is
//!   still valid, or reports the blockhash expired;
//! - **abandoned attempts**: claimed, verified or answered by the upstream on an instance that
//!   died before submitting anything. Nothing was charged: the row becomes `failed`
//!   (`abandoned`) and the dead instance's store claim is released, so a retry is served
//!   without waiting for the claim to expire.
//!
//! | facilitator says | ledger row | store record |
//! | --- | --- | --- |
//! | `success: true` | settled | settled, with the kept answer and a success receipt |
//! | `duplicate_settlement` with a signature | settled (it landed earlier) | the same |
//! | `settlement_pending`, `duplicate_settlement` without a signature, or unreachable | stays submitted | unchanged (409) |
//! | the blockhash expired without it landing | expired | deleted: the client may pay again |
//! | any other refusal | failed | deleted |

use std::sync::Arc;
use std::time::Duration;

use super::Paygate;
use crate::facilitator::local::reasons::{BLOCKHASH_EXPIRED, SETTLEMENT_EXPIRED};
use crate::facilitator::SettleOutcome;
use crate::ledger::{LedgerResult, PaymentRow, PaymentState};
use crate::store::{CachedResponse, ClaimIds, ClaimRecord, ClaimState};
use crate::x402::receipt::{add_receipt_to, PaymentVersion};
use crate::x402::{FacilitatorRequest, SettleResponse};

/// Payments looked at per pass, of each kind.
const PER_PASS: usize = 16;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Became settled.
    pub settled: usize,
    /// Released: expired, failed or abandoned (nothing charged).
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
                tracing::warn!(error = %e, "reconciling payments failed");
            }
        }
    });
}

/// How long the reconciler's lease lasts: a few passes, so a dead holder is replaced soon.
fn lease(gate: &Paygate) -> Duration {
    let every = gate.config.reconcile_interval_ms.min(60_000);
    Duration::from_millis((every * 3).max(gate.ledger.config().dead_after_ms))
}

/// One pass, when this instance holds (or takes) the lease; an empty pass otherwise.
pub async fn reconcile(gate: &Paygate) -> LedgerResult<Pass> {
    let mut pass = Pass::default();
    if !gate.ledger.lease("reconciler", lease(gate)).await? {
        return Ok(pass);
    }
    for row in gate.ledger.due_submitted(PER_PASS).await? {
        match reconcile_submitted(gate, &row).await {
            Ok(Resolution::Settled) => pass.settled += 1,
            Ok(Resolution::Released) => pass.released += 1,
            Ok(Resolution::Pending) => pass.pending += 1,
            Err(e) => {
                pass.pending += 1;
                tracing::warn!(error = %e, payment = %row.payment_key, "reconciling a submitted settlement failed");
            }
        }
    }
    for row in gate.ledger.abandoned(PER_PASS).await? {
        if gate.ledger.abandon(&row.key()?, &row.attempt).await? {
            if let Err(e) = gate.store.release(&ids_of(&row)?, &row.attempt).await {
                tracing::info!(error = %e, payment = %row.payment_key, "releasing an abandoned claim failed; it expires");
            }
            tracing::info!(payment = %row.payment_key, instance = %row.instance, "abandoned attempt released (nothing charged)");
            pass.released += 1;
        }
    }
    // Credit reservations of a dead instance with no outcome: given back (the client is never
    // charged for a call nobody can show succeeded).
    for (wallet, amount, reference) in gate.ledger.orphan_reservations(PER_PASS).await? {
        if let Some(balance) = gate
            .ledger
            .void_credits(&wallet, amount, &reference)
            .await?
        {
            tracing::info!(%wallet, amount, balance, "orphan credit reservation voided");
            pass.released += 1;
        }
    }
    if let Ok(totals) = gate.ledger.open_totals().await {
        let (mut count, mut value) = (0, 0);
        for total in &totals {
            metrics::gauge!("x402_ledger_payments", "state" => total.state.as_str())
                .set(total.payments as f64);
            if total.state == PaymentState::SettleSubmitted {
                (count, value) = (total.payments, total.amount);
            }
        }
        metrics::gauge!("x402_settlements_pending").set(count as f64);
        metrics::gauge!("x402_value_pending_settlement_atomic").set(value as f64);
    }
    Ok(pass)
}

/// What became of one submitted payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolution {
    /// It landed: settled, the kept answer released with a success receipt.
    Settled,
    /// It did not land: nothing was charged.
    Released,
    /// Still unknown: looked at again later.
    Pending,
}

async fn reconcile_submitted(gate: &Paygate, row: &PaymentRow) -> LedgerResult<Resolution> {
    let key = row.key()?;
    let settled_ttl = Duration::from_secs(gate.config.settled_ttl_secs.max(1));
    let request: FacilitatorRequest = match row
        .settle_request
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
    {
        Ok(Some(request)) => request,
        Ok(None) | Err(_) => {
            tracing::error!(payment = %row.payment_key, "submitted settlement unreadable; left for an operator");
            return Ok(Resolution::Pending);
        }
    };
    let settled = match gate.facilitator.settle(&request).await {
        Ok(s) => s,
        Err(e) => {
            tracing::info!(error = %e, payment = %row.payment_key, "submitted settlement: facilitator unreachable");
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
        let receipt_json = serde_json::to_string(&receipt).unwrap_or_default();
        gate.ledger
            .resolve(
                &key,
                &row.attempt,
                PaymentState::Settled,
                Some(&receipt.transaction),
                Some(&receipt_json),
                None,
            )
            .await?;
        let record = ClaimRecord {
            fingerprint: row.fingerprint.clone(),
            state: ClaimState::Settled {
                response: None,
                ledger_key: Some(row.payment_key.clone()),
            },
        };
        if let Err(e) = gate
            .store
            .resolve_pending(&key, Some(&record), settled_ttl)
            .await
        {
            // The ledger has it: a replay finds the row settled and restores the store.
            tracing::info!(error = %e, payment = %row.payment_key, "store not updated after reconciling");
        }
        tracing::info!(payment = %row.payment_key, transaction = %settled.transaction, "submitted settlement confirmed");
        return Ok(Resolution::Settled);
    }
    // Pending, or landed without a signature to name: look again later.
    if matches!(outcome, SettleOutcome::Pending | SettleOutcome::Duplicate) {
        return Ok(Resolution::Pending);
    }
    let reason = settled.error_reason.as_deref().unwrap_or("settle_failed");
    let receipt_json = serde_json::to_string(&settled).unwrap_or_default();
    gate.ledger
        .resolve(
            &key,
            &row.attempt,
            unsettled_state(reason),
            None,
            Some(&receipt_json),
            Some(reason),
        )
        .await?;
    if let Err(e) = gate.store.resolve_pending(&key, None, settled_ttl).await {
        tracing::info!(error = %e, payment = %row.payment_key, "store claim not released after reconciling; it expires");
    }
    tracing::info!(payment = %row.payment_key, reason, "submitted settlement did not land; released");
    Ok(Resolution::Released)
}

/// The final state of a settlement that did not happen: `expired` when its blockhash died,
/// `failed` otherwise.
pub(super) fn unsettled_state(reason: &str) -> PaymentState {
    if reason == SETTLEMENT_EXPIRED || reason == BLOCKHASH_EXPIRED {
        PaymentState::Expired
    } else {
        PaymentState::Failed
    }
}

/// The answer a settled row gives to a replay: the kept answer with its success receipt.
pub(super) fn kept_answer(row: &PaymentRow) -> Option<CachedResponse> {
    let answer = row.answer.clone()?;
    let receipt: Option<SettleResponse> = row
        .receipt
        .clone()
        .and_then(|r| serde_json::from_value(r).ok());
    let request: Option<FacilitatorRequest> = row
        .settle_request
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok());
    match (receipt, request) {
        (Some(receipt), Some(request)) if row.state == PaymentState::Settled => {
            with_receipt(Some(answer), &receipt, &request)
        }
        _ => Some(answer),
    }
}

fn with_receipt(
    answer: Option<CachedResponse>,
    receipt: &SettleResponse,
    request: &FacilitatorRequest,
) -> Option<CachedResponse> {
    answer.map(|mut kept| {
        add_receipt_to(
            &mut kept.headers,
            receipt,
            PaymentVersion::from_wire(request.x402_version()),
        );
        kept
    })
}

/// The store ids of a row's claim.
fn ids_of(row: &PaymentRow) -> LedgerResult<ClaimIds> {
    Ok(ClaimIds {
        payment: row.key()?,
        aliases: [&row.pid_alias, &row.idem_alias]
            .into_iter()
            .flatten()
            .cloned()
            .collect(),
    })
}
