//! Part one of a pass: every settled payment not yet audited, against its transaction.

use std::time::Duration;

use solana_address::Address;
use solana_signature::Signature;

use super::{AuditPass, ChainAudit};
use crate::ledger::{now_ms, Finding, FindingKind, LedgerResult, SettledPayment};
use crate::solana_rpc::{Commitment, SolanaRpc, TransactionInfo, MAX_SIGNATURE_STATUSES};
use crate::svm::ata::associated_token_address_cached;
use crate::svm::constants::{SPL_TOKEN_PROGRAM, TOKEN_2022_PROGRAM};

/// What the chain says about one settled payment.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Finalized, and moved exactly the recorded amount into payTo's token account.
    Confirmed,
    /// Not judged yet (settled too recently, or the chain could not be read).
    Later,
    /// Wrong: a finding, and the payment counts as audited.
    Finding(Finding),
}

pub(super) async fn check(audit: &ChainAudit, pass: &mut AuditPass) -> LedgerResult<()> {
    let mut after: Option<(i64, String)> = None;
    loop {
        let page = audit
            .ledger
            .unaudited_settled(
                after.as_ref().map(|(ms, key)| (*ms, key.as_str())),
                MAX_SIGNATURE_STATUSES,
            )
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.final_ms, last.payment_key.clone()));
        let full = page.len() == MAX_SIGNATURE_STATUSES;
        let mut audited = Vec::new();
        for network in distinct(page.iter().map(|p| p.network.as_str())) {
            let rows: Vec<&SettledPayment> = page.iter().filter(|p| p.network == network).collect();
            let Some(rpc) = audit.network(network).and_then(|n| n.rpc.as_ref()) else {
                pass.deferred += rows.len();
                continue;
            };
            for (row, verdict) in rows
                .iter()
                .zip(judge(rpc, &rows, audit.finality, pass).await)
            {
                match verdict {
                    Verdict::Confirmed => {
                        pass.confirmed += 1;
                        audited.push(row.payment_key.clone());
                    }
                    Verdict::Later => pass.deferred += 1,
                    Verdict::Finding(finding) => {
                        audit.report(finding, pass).await?;
                        audited.push(row.payment_key.clone());
                    }
                }
            }
        }
        audit.ledger.mark_audited(&audited).await?;
        if !full {
            break;
        }
    }
    Ok(())
}

/// The distinct values of `items`, in first-seen order.
fn distinct<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// The verdict on each of `rows` (at most [`MAX_SIGNATURE_STATUSES`]), in order.
async fn judge(
    rpc: &SolanaRpc,
    rows: &[&SettledPayment],
    finality: Duration,
    pass: &mut AuditPass,
) -> Vec<Verdict> {
    let now = now_ms();
    let old_enough =
        |row: &SettledPayment| now.saturating_sub(row.final_ms) >= finality.as_millis() as i64;
    let signatures: Vec<Option<Signature>> = rows
        .iter()
        .map(|r| r.signature.as_deref().and_then(|s| s.parse().ok()))
        .collect();
    let wanted: Vec<Signature> = signatures.iter().flatten().copied().collect();
    let statuses = match rpc.get_signature_statuses_in_history(&wanted).await {
        Ok(statuses) => statuses,
        Err(e) => {
            pass.rpc_errors += 1;
            tracing::warn!(error = %e, "chain audit: signature statuses not read");
            return rows.iter().map(|_| Verdict::Later).collect();
        }
    };
    let mut statuses = statuses.into_iter();
    let mut verdicts = Vec::with_capacity(rows.len());
    for (row, signature) in rows.iter().zip(&signatures) {
        let finding = |kind, amount, detail: String| {
            Verdict::Finding(Finding {
                kind,
                signature: row
                    .signature
                    .clone()
                    .unwrap_or_else(|| row.payment_key.clone()),
                payment_key: Some(row.payment_key.clone()),
                amount,
                detail,
                found_ms: now,
            })
        };
        let Some(signature) = signature else {
            verdicts.push(match &row.signature {
                None => finding(
                    FindingKind::NoSignature,
                    None,
                    "settled without a transaction signature".into(),
                ),
                Some(s) => finding(
                    FindingKind::MissingOnChain,
                    None,
                    format!("{s:?} is not a transaction signature"),
                ),
            });
            continue;
        };
        let status = statuses.next().flatten();
        let verdict = match status {
            None if old_enough(row) => finding(
                FindingKind::MissingOnChain,
                None,
                format!(
                    "{} does not know this transaction, settled {} s ago",
                    row.network,
                    (now - row.final_ms) / 1000
                ),
            ),
            Some(s) if s.confirmation_status.as_deref() != Some("finalized") && old_enough(row) => {
                finding(
                    FindingKind::NotFinalized,
                    None,
                    format!(
                        "still {} in slot {}, settled {} s ago",
                        s.confirmation_status.as_deref().unwrap_or("processed"),
                        s.slot,
                        (now - row.final_ms) / 1000
                    ),
                )
            }
            None => Verdict::Later,
            Some(s) if s.confirmation_status.as_deref() != Some("finalized") => Verdict::Later,
            Some(s) if s.err.as_ref().is_some_and(|e| !e.is_null()) => finding(
                FindingKind::AmountMismatch,
                Some(0),
                format!(
                    "landed with an error ({}): nothing moved, {} recorded",
                    s.err.unwrap_or_default(),
                    row.amount
                ),
            ),
            Some(_) => match rpc
                .get_transaction(&signature.to_string(), Commitment::Finalized)
                .await
            {
                Ok(Some(tx)) => amount_verdict(row, &tx, now),
                Ok(None) => {
                    // Finalized per its status, yet not served: a node without full history.
                    pass.rpc_errors += 1;
                    Verdict::Later
                }
                Err(e) => {
                    pass.rpc_errors += 1;
                    tracing::warn!(error = %e, signature = %signature, "chain audit: transaction not read");
                    Verdict::Later
                }
            },
        };
        verdicts.push(verdict);
    }
    verdicts
}

/// The token amount `tx` moved into `owner`'s associated token account of `mint` (under
/// either token program: a mint belongs to one, so only one such account can exist).
fn received(tx: &TransactionInfo, owner: &Address, mint: &Address) -> i128 {
    [SPL_TOKEN_PROGRAM, TOKEN_2022_PROGRAM]
        .iter()
        .map(|program| {
            let account = associated_token_address_cached(owner, mint, program);
            tx.token_delta(&account.to_string(), &mint.to_string())
                .unwrap_or(0)
        })
        .sum()
}

fn amount_verdict(row: &SettledPayment, tx: &TransactionInfo, now: i64) -> Verdict {
    let (Ok(pay_to), Ok(mint)) = (row.pay_to.parse::<Address>(), row.asset.parse::<Address>())
    else {
        return Verdict::Later;
    };
    let moved = received(tx, &pay_to, &mint);
    if moved == i128::from(row.amount) {
        return Verdict::Confirmed;
    }
    Verdict::Finding(Finding {
        kind: FindingKind::AmountMismatch,
        signature: row.signature.clone().unwrap_or_default(),
        payment_key: Some(row.payment_key.clone()),
        amount: i64::try_from(moved).ok(),
        detail: format!(
            "moved {moved} of {} into {}'s token account, {} recorded",
            row.asset, row.pay_to, row.amount
        ),
        found_ms: now,
    })
}
