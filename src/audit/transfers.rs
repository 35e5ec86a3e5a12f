//! Part two of a pass: the finalized history of each payTo token account, read newest first
//! from where the last pass stopped; a transfer into it that no settled payment records is an
//! `unknown_transfer`.
//!
//! The cursor (`audit_cursors`) is saved after every page fully checked, so a pass cut short
//! (an RPC failure, or [`MAX_PAGES`] read) resumes exactly there: nothing is read twice as
//! new, nothing is skipped.

use super::{AuditPass, AuditedNetwork, ChainAudit, PayToAccount};
use crate::ledger::{now_ms, AuditCursor, Finding, FindingKind, LedgerResult, PaymentState};
use crate::solana_rpc::{Commitment, SignatureInfo, SignaturePage, SolanaRpc, MAX_SIGNATURES_PAGE};

/// Most pages of history one pass reads per account (the rest waits for the next pass).
const MAX_PAGES: usize = 20;

/// Why a walk stopped before the end.
enum Stop {
    /// The RPC failed; the page is read again next pass.
    Rpc,
}

pub(super) async fn check(audit: &ChainAudit, pass: &mut AuditPass) -> LedgerResult<()> {
    for net in &audit.networks {
        let Some(rpc) = &net.rpc else { continue };
        for account in &net.accounts {
            walk(audit, net, rpc, account, pass).await?;
        }
    }
    Ok(())
}

async fn walk(
    audit: &ChainAudit,
    net: &AuditedNetwork,
    rpc: &SolanaRpc,
    account: &PayToAccount,
    pass: &mut AuditPass,
) -> LedgerResult<()> {
    let name = account.account.to_string();
    let mut cursor = audit.ledger.audit_cursor(&net.network, &name).await?;
    for _ in 0..MAX_PAGES {
        let page = SignaturePage {
            before: cursor.before_sig.as_deref(),
            until: cursor.until_sig.as_deref(),
            limit: MAX_SIGNATURES_PAGE,
            commitment: Commitment::Finalized,
        };
        let entries = match rpc
            .get_signatures_for_address(&account.account, &page)
            .await
        {
            Ok(entries) => entries,
            Err(e) => {
                pass.rpc_errors += 1;
                tracing::warn!(error = %e, account = %name, network = %net.network, "chain audit: history not read");
                return Ok(());
            }
        };
        if let Err(Stop::Rpc) = check_page(audit, net, rpc, account, &entries, pass).await? {
            pass.rpc_errors += 1;
            return Ok(());
        }
        if cursor.before_sig.is_none() {
            // The first page of a new walk: its newest entry is where the next walk stops.
            cursor.top_sig = entries.first().map(|e| e.signature.clone());
        }
        match entries.last() {
            Some(last) if entries.len() == MAX_SIGNATURES_PAGE => {
                cursor.before_sig = Some(last.signature.clone());
                audit
                    .ledger
                    .save_audit_cursor(&net.network, &name, &cursor)
                    .await?;
            }
            // The last page: the walk reached `until` (or the account's first transaction).
            _ => {
                let done = AuditCursor {
                    until_sig: cursor.top_sig.take().or(cursor.until_sig.take()),
                    top_sig: None,
                    before_sig: None,
                };
                return audit
                    .ledger
                    .save_audit_cursor(&net.network, &name, &done)
                    .await;
            }
        }
    }
    Ok(())
}

/// Checks one page of history; `Err(Stop::Rpc)` when a transaction could not be read.
async fn check_page(
    audit: &ChainAudit,
    net: &AuditedNetwork,
    rpc: &SolanaRpc,
    account: &PayToAccount,
    entries: &[SignatureInfo],
    pass: &mut AuditPass,
) -> LedgerResult<Result<(), Stop>> {
    pass.transfers += entries.len();
    // A failed transaction moved nothing.
    let landed: Vec<&SignatureInfo> = entries
        .iter()
        .filter(|e| e.err.as_ref().is_none_or(|err| err.is_null()))
        .collect();
    let signatures: Vec<&str> = landed.iter().map(|e| e.signature.as_str()).collect();
    let known = audit.ledger.known_signatures(&signatures).await?;
    for entry in landed {
        let row = known.iter().find(|k| k.signature == entry.signature);
        if row.is_some_and(|r| r.state == PaymentState::Settled) {
            // Recorded; its amount is checked with the settled payments.
            continue;
        }
        let tx = match rpc
            .get_transaction(&entry.signature, Commitment::Finalized)
            .await
        {
            Ok(Some(tx)) => tx,
            Ok(None) => return Ok(Err(Stop::Rpc)),
            Err(e) => {
                tracing::warn!(error = %e, signature = %entry.signature, "chain audit: transaction not read");
                return Ok(Err(Stop::Rpc));
            }
        };
        let received = tx
            .token_delta(&account.account.to_string(), &account.mint.to_string())
            .unwrap_or(0);
        if received <= 0 {
            // Money out of (or not into) the account: the operator's own business.
            continue;
        }
        let detail = match row {
            Some(r) => format!(
                "received {received} of {} on {}; its ledger row is {} (not settled)",
                account.mint, net.network, r.state
            ),
            None => format!(
                "received {received} of {} on {}; no ledger row records it",
                account.mint, net.network
            ),
        };
        audit
            .report(
                Finding {
                    kind: FindingKind::UnknownTransfer,
                    signature: entry.signature.clone(),
                    payment_key: row.map(|r| r.payment_key.clone()),
                    amount: i64::try_from(received).ok(),
                    detail,
                    found_ms: now_ms(),
                },
                pass,
            )
            .await?;
    }
    Ok(Ok(()))
}
