//! The chain audit: the ledger checked against the chain, once per `[ledger]
//! audit_interval_secs` (a day by default), by one instance at a time (the `audit` lease,
//! taken only when the last pass is that old, so restarts do not re-run it).
//!
//! A pass does two things:
//! - [`settled`]: every `settled` payment not yet audited: its transaction must be finalized
//!   and must have moved the recorded amount of the recorded asset into payTo's associated
//!   token account (`getSignatureStatuses` with history, then `getTransaction`'s token
//!   balances). Otherwise a finding: `not_finalized`, `missing_on_chain` (both only once the
//!   payment settled more than `audit_finality_secs` ago; younger ones wait for the next
//!   pass), `amount_mismatch`, or `no_signature`. A payment is marked audited once judged.
//! - [`transfers`]: the finalized history of each payTo token account
//!   (`getSignaturesForAddress`, newest first, from where the last pass stopped): a transfer
//!   into it that no settled payment records is an `unknown_transfer`.
//!
//! Findings are rows of `audit_findings` (one per kind and transaction), logged as warnings,
//! counted (`x402_audit_findings_total{kind}`, new ones; `x402_audit_findings{kind}`, all
//! recorded) and listed by `GET /admin/audit`. An RPC failure costs nothing but time: what it
//! left unchecked is checked on the next pass.
//!
//! Which RPC: the in-process facilitator's `rpc_urls` for the network, else the first
//! configured (not run-time registered) provider endpoint of that cluster that takes its key
//! in the URL (or none); a network with neither is not audited (a warning at start).

pub mod admin;
mod settled;
mod transfers;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use solana_address::Address;

use crate::config::{Cluster, Config};
use crate::ledger::{Finding, FindingKind, Ledger, LedgerResult};
use crate::solana_rpc::SolanaRpc;
use crate::svm::ata::associated_token_address;
use crate::upstream::{Origin, Providers};

/// The audit's lease in `leases`.
const LEASE: &str = "audit";

/// One network the gateway is paid on: how to read its chain, and payTo's token accounts.
#[derive(Debug)]
struct AuditedNetwork {
    /// CAIP-2.
    network: String,
    /// `None`: no RPC endpoint for it; its payments are not audited.
    rpc: Option<SolanaRpc>,
    /// payTo's associated token account of each accepted asset.
    accounts: Vec<PayToAccount>,
}

/// payTo's token account for one mint.
#[derive(Debug, Clone, Copy)]
struct PayToAccount {
    mint: Address,
    account: Address,
}

/// Everything a pass needs, built once.
#[derive(Debug)]
pub struct ChainAudit {
    ledger: Arc<Ledger>,
    networks: Vec<AuditedNetwork>,
    /// A settled payment younger than this is not judged unfinalized or missing yet.
    finality: Duration,
    /// `[ledger] audit_interval_secs`.
    interval: Duration,
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AuditPass {
    /// Settled payments the chain confirmed exactly as recorded.
    pub confirmed: usize,
    /// Settled payments left for a later pass: settled too recently to judge, or on a network
    /// without an RPC endpoint.
    pub deferred: usize,
    /// Transactions read from the history of payTo's token accounts.
    pub transfers: usize,
    /// Findings recorded by this pass (not those already recorded before).
    pub findings: Vec<Finding>,
    /// RPC calls that failed (what they would have checked is checked next pass).
    pub rpc_errors: usize,
}

impl ChainAudit {
    /// The audit of the payments `config` takes (`[[payment.accepts]]` to `pay_to`).
    pub(crate) fn from_config(
        config: &Config,
        ledger: Arc<Ledger>,
        providers: &Providers,
    ) -> Result<Self, String> {
        let pay_to: Address = config
            .payment
            .pay_to
            .as_deref()
            .ok_or("payment.pay_to is required")?
            .parse()
            .map_err(|_| "payment.pay_to is not an address")?;
        let timeout = Duration::from_millis(config.upstream.timeout_ms);
        let mut accounts: BTreeMap<&str, Vec<PayToAccount>> = BTreeMap::new();
        for accept in &config.payment.accepts {
            let mint: Address = accept
                .asset
                .parse()
                .map_err(|_| format!("asset {} is not an address", accept.asset))?;
            let program: Address = accept
                .token_program
                .parse()
                .map_err(|_| format!("token program {} is not an address", accept.token_program))?;
            accounts
                .entry(&accept.network)
                .or_default()
                .push(PayToAccount {
                    mint,
                    account: associated_token_address(&pay_to, &mint, &program),
                });
        }
        let networks = accounts
            .into_iter()
            .map(|(network, accounts)| {
                let rpc = match rpc_urls(config, providers, network) {
                    Some(urls) => Some(
                        SolanaRpc::try_new(urls, timeout)
                            .map_err(|e| format!("RPC client for {network}: {e}"))?,
                    ),
                    None => {
                        tracing::warn!(network, "no RPC endpoint for this network ([facilitator.networks] or a provider): its payments are not audited against the chain");
                        None
                    }
                };
                Ok(AuditedNetwork {
                    network: network.to_owned(),
                    rpc,
                    accounts,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self {
            ledger,
            networks,
            finality: Duration::from_secs(config.ledger.audit_finality_secs),
            interval: Duration::from_secs(config.ledger.audit_interval_secs),
        })
    }

    fn network(&self, caip2: &str) -> Option<&AuditedNetwork> {
        self.networks.iter().find(|n| n.network == caip2)
    }

    /// Records `finding` when new: logged, counted, and added to `pass`.
    async fn report(&self, finding: Finding, pass: &mut AuditPass) -> LedgerResult<()> {
        if self.ledger.record_finding(&finding).await? {
            metrics::counter!("x402_audit_findings_total", "kind" => finding.kind.as_str())
                .increment(1);
            tracing::warn!(
                kind = %finding.kind,
                signature = %finding.signature,
                payment = finding.payment_key.as_deref().unwrap_or(""),
                detail = %finding.detail,
                "chain audit finding"
            );
            pass.findings.push(finding);
        }
        Ok(())
    }
}

/// The RPC endpoints the audit reads `network` through (see the module docs).
fn rpc_urls(config: &Config, providers: &Providers, network: &str) -> Option<Vec<url::Url>> {
    let from_facilitator = config
        .facilitator
        .as_ref()
        .and_then(|f| f.networks.iter().find(|n| n.network == network))
        .map(|n| n.rpc_urls.clone())
        .filter(|urls| !urls.is_empty());
    from_facilitator.or_else(|| {
        let cluster = Cluster::ALL.into_iter().find(|c| c.caip2() == network)?;
        // Only the operator's own providers: a provider registered at run time is not
        // trusted to tell us what the chain says about our money.
        providers
            .snapshot()
            .iter()
            .filter(|p| p.origin == Origin::Config)
            .find_map(|p| p.endpoints.get(&cluster)?.rpc_url().cloned())
            .map(|url| vec![url])
    })
}

/// One pass, now (the caller holds the lease, or is a test or an operator's tool): see the
/// module docs.
pub async fn audit(audit: &ChainAudit) -> LedgerResult<AuditPass> {
    let mut pass = AuditPass::default();
    settled::check(audit, &mut pass).await?;
    transfers::check(audit, &mut pass).await?;
    let counts = audit.ledger.finding_counts().await?;
    for kind in FindingKind::ALL {
        let n = counts
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n);
        metrics::gauge!("x402_audit_findings", "kind" => kind.as_str()).set(n as f64);
    }
    metrics::gauge!("x402_audit_last_pass_timestamp_seconds")
        .set(crate::ledger::now_ms() as f64 / 1000.0);
    tracing::info!(
        confirmed = pass.confirmed,
        deferred = pass.deferred,
        transfers = pass.transfers,
        findings = pass.findings.len(),
        rpc_errors = pass.rpc_errors,
        "chain audit pass done"
    );
    Ok(pass)
}

/// Runs a pass whenever the lease says one is due, while `audit` lives. Looks every minute
/// (or every interval, when shorter), so a restart delays a due pass by a minute at most.
pub fn spawn(audit: &Arc<ChainAudit>) {
    let weak = Arc::downgrade(audit);
    let every = audit.interval;
    let tick = every.clamp(Duration::from_secs(1), Duration::from_secs(60));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(tick).await;
            let Some(audit) = weak.upgrade() else { return };
            match audit.ledger.take_due(LEASE, every).await {
                Ok(true) => {
                    if let Err(e) = self::audit(&audit).await {
                        tracing::warn!(error = %e, "chain audit pass failed; the next one resumes");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "chain audit lease not read"),
            }
        }
    });
}
