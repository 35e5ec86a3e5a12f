//! Settlement that always ends: the claim, the broadcast and the confirmation loop. The steps
//! and the outcome table are in the module docs of [`super`].

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use solana_address::Address;
use solana_hash::Hash;
use solana_signature::Signature;
use tokio::time::timeout_at;

use super::dedupe::Claim;
use super::fee_payer;
use super::reasons::*;
use super::verify::{simulation_rejection, Checked};
use super::{Failure, Inner, Rejection};
use crate::solana_rpc::{RpcError, SolanaRpc, NODE_UNHEALTHY};
use crate::svm::{sign_as_fee_payer, DecodedTransaction};
use crate::x402::{FacilitatorRequest, SettleResponse};

/// JSON-RPC code of a failed `sendTransaction` preflight.
const PREFLIGHT_FAILURE: i64 = -32002;

/// How a broadcast ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Landing {
    /// Confirmed (or finalized) without error.
    Confirmed,
    /// Confirmed with a transaction error (fee paid, transfer not made).
    Failed(String),
    /// Refused before broadcast (preflight or node error).
    Refused(Rejection),
    /// The cluster has already processed this transaction.
    AlreadyProcessed,
    /// The blockhash expired and the transaction did not land.
    Expired,
    /// Outcome unknown when the deadline came (or the chain could not be read).
    Pending(String),
}

/// Timing of [`send_and_confirm`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Confirm {
    pub poll: std::time::Duration,
    pub rebroadcast: std::time::Duration,
    pub deadline: Instant,
}

fn response(
    success: bool,
    reason: Option<&str>,
    message: Option<String>,
    signature: Option<Signature>,
    network: &str,
    payer: Option<Address>,
) -> SettleResponse {
    SettleResponse {
        success,
        error_reason: reason.map(str::to_owned),
        error_message: message,
        transaction: signature.map(|s| s.to_string()).unwrap_or_default(),
        network: network.to_owned(),
        payer: payer.map(|p| p.to_string()),
    }
}

/// The `network` label of a request that was refused before its terms were read.
fn request_network(req: &FacilitatorRequest) -> String {
    match req {
        FacilitatorRequest::V2 { requirements, .. } => requirements.network.clone(),
        FacilitatorRequest::V1 { requirements, .. } => requirements.network.clone(),
    }
}

impl Inner {
    /// Settles `req`; see the module docs. Never returns before the outcome is decided and the
    /// claim updated, never later than the deadline.
    pub(crate) async fn settle(
        &self,
        req: &FacilitatorRequest,
        pre: Option<&Arc<DecodedTransaction>>,
    ) -> SettleResponse {
        let deadline = Instant::now() + self.settings.settle_deadline;
        let checked = match self.check_static(req, pre).await {
            Ok(c) => c,
            Err(Failure::Rejected(r)) => {
                return response(
                    false,
                    Some(r.reason),
                    Some(r.message),
                    None,
                    &request_network(req),
                    r.payer,
                )
            }
            Err(Failure::Rpc(e)) => {
                tracing::warn!(error = %e, "settle refused before broadcast: RPC unavailable");
                return response(
                    false,
                    Some(UNEXPECTED_SETTLE_ERROR),
                    Some(format!("nothing was sent: {e}")),
                    None,
                    &request_network(req),
                    None,
                );
            }
        };
        self.settle_checked(&checked, deadline).await
    }

    async fn settle_checked(&self, c: &Checked<'_>, deadline: Instant) -> SettleResponse {
        let key = c.tx.message_hash();
        let hash_hex = hex::encode(key);
        let network = c.payment.network_label.as_str();
        let payer = Some(c.verified.payer);
        let ttl = self.settings.dedupe_ttl;
        let fail = |reason: &str, message: String, sig: Option<Signature>| {
            response(false, Some(reason), Some(message), sig, network, payer)
        };

        let resumed = match self.locks.claim(&key, ttl).await {
            Ok(Claim::Acquired) => false,
            Ok(Claim::Resumed(_)) => true,
            Ok(Claim::InFlight) => {
                tracing::info!(message_hash = %hash_hex, "duplicate settle refused (in flight)");
                return fail(
                    DUPLICATE_SETTLEMENT,
                    "this payment is already being settled".into(),
                    None,
                );
            }
            Ok(Claim::Settled(sig)) => {
                tracing::info!(message_hash = %hash_hex, signature = %sig, "duplicate settle refused (settled)");
                return fail(
                    DUPLICATE_SETTLEMENT,
                    "this payment has already been settled".into(),
                    Some(sig),
                );
            }
            Err(e) => {
                tracing::warn!(message_hash = %hash_hex, error = %e, "settle refused before broadcast");
                return fail(
                    UNEXPECTED_SETTLE_ERROR,
                    format!("nothing was sent: {e}"),
                    None,
                );
            }
        };

        // From here the claim is ours: every path below updates it.
        let signed = self
            .keys
            .get(&c.verified.fee_payer)
            .ok_or_else(|| Rejection::new(FEE_PAYER_NOT_MANAGED, "fee payer key not loaded"))
            .and_then(|kp| sign_as_fee_payer(&c.tx, kp).map_err(Rejection::from));
        let (wire, sig) = match signed {
            Ok(s) => s,
            Err(r) => {
                self.release(&key, &hash_hex).await;
                return fail(r.reason, r.message, None);
            }
        };

        let timing = Confirm {
            poll: self.settings.confirm_poll,
            rebroadcast: self.settings.rebroadcast,
            deadline,
        };
        let landing = send_and_confirm(
            &c.net.rpc,
            &wire,
            sig,
            c.tx.recent_blockhash(),
            timing,
            resumed,
        )
        .await;
        tracing::info!(
            message_hash = %hash_hex,
            signature = %sig,
            network,
            outcome = ?landing,
            "settle finished"
        );
        if matches!(landing, Landing::Confirmed | Landing::Failed(_)) {
            // It landed: the fee payer paid its fee, transfer or not.
            fee_payer::count_fee(&c.net.network, c.tx.signatures().len(), &c.verified);
        }
        match landing {
            Landing::Confirmed => {
                self.mark_settled(&key, sig, &hash_hex).await;
                response(true, None, None, Some(sig), network, payer)
            }
            Landing::AlreadyProcessed => {
                self.mark_settled(&key, sig, &hash_hex).await;
                fail(
                    DUPLICATE_SETTLEMENT,
                    "the cluster has already processed this payment".into(),
                    Some(sig),
                )
            }
            Landing::Failed(err) => {
                self.release(&key, &hash_hex).await;
                fail(
                    TRANSACTION_FAILED,
                    format!("transaction landed with an error: {err}"),
                    Some(sig),
                )
            }
            Landing::Refused(r) => {
                self.release(&key, &hash_hex).await;
                fail(r.reason, r.message, None)
            }
            Landing::Expired => {
                self.release(&key, &hash_hex).await;
                fail(
                    SETTLEMENT_EXPIRED,
                    "the blockhash expired before the transaction landed; it never will".into(),
                    Some(sig),
                )
            }
            Landing::Pending(why) => {
                if let Err(e) = self
                    .locks
                    .mark_pending(&key, sig, self.settings.dedupe_ttl)
                    .await
                {
                    tracing::error!(message_hash = %hash_hex, error = %e, "could not record the pending settlement");
                }
                fail(
                    SETTLEMENT_PENDING,
                    format!("broadcast, not confirmed yet: {why}"),
                    Some(sig),
                )
            }
        }
    }

    async fn release(&self, key: &[u8; 32], hash_hex: &str) {
        if let Err(e) = self.locks.release(key).await {
            // The claim expires on its own after the TTL.
            tracing::warn!(message_hash = %hash_hex, error = %e, "could not release the settlement claim");
        }
    }

    async fn mark_settled(&self, key: &[u8; 32], sig: Signature, hash_hex: &str) {
        if let Err(e) = self
            .locks
            .mark_settled(key, sig, self.settings.dedupe_ttl)
            .await
        {
            tracing::error!(message_hash = %hash_hex, error = %e, "could not record the settlement");
        }
    }
}

/// Classifies a JSON-RPC error answer to the first `sendTransaction` (nothing was broadcast).
fn refused(code: i64, message: &str, data: Option<&Value>) -> Landing {
    let sim_err = data.and_then(|d| d.get("err")).filter(|e| !e.is_null());
    if code == PREFLIGHT_FAILURE {
        if let Some(err) = sim_err {
            if err.as_str() == Some("AlreadyProcessed") {
                return Landing::AlreadyProcessed;
            }
            let logs: Vec<String> = data
                .and_then(|d| d.get("logs"))
                .and_then(|l| serde_json::from_value(l.clone()).ok())
                .unwrap_or_default();
            if let Some(r) = simulation_rejection(err, &logs) {
                return Landing::Refused(r);
            }
        }
    }
    Landing::Refused(Rejection::new(
        TRANSACTION_FAILED,
        format!("the RPC node refused the transaction ({code}): {message}"),
    ))
}

/// Broadcasts `wire` (whose transaction id is `sig`) and follows it until an outcome of
/// [`Landing`] is certain or `timing.deadline` passes. With `resumed`, the transaction was
/// broadcast by an earlier settle: skip the preflight send and start by reading its status.
pub(crate) async fn send_and_confirm(
    rpc: &SolanaRpc,
    wire: &[u8],
    sig: Signature,
    blockhash: &Hash,
    timing: Confirm,
    resumed: bool,
) -> Landing {
    let deadline = timing.deadline;
    let mut next_rebroadcast = Instant::now();
    if !resumed {
        match timeout_at(deadline.into(), rpc.send_transaction(wire, false)).await {
            Ok(Ok(_)) => {}
            Ok(Err(RpcError::Rpc {
                code,
                message,
                data,
            })) if code != NODE_UNHEALTHY => return refused(code, &message, data.as_ref()),
            // Timeout, reset, 5xx: it may have been forwarded. Follow it like a sent one.
            Ok(Err(e)) => {
                tracing::warn!(signature = %sig, error = %e, "sendTransaction failed; following the signature")
            }
            Err(_) => return Landing::Pending("deadline reached while sending".into()),
        }
        next_rebroadcast += timing.rebroadcast;
    }
    loop {
        if let Ok(Ok(statuses)) =
            timeout_at(deadline.into(), rpc.get_signature_statuses(&[sig])).await
        {
            if let Some(s) = statuses.into_iter().next().flatten() {
                if s.is_confirmed() {
                    return match s.err.filter(|e| !e.is_null()) {
                        None => Landing::Confirmed,
                        Some(e) => Landing::Failed(e.to_string()),
                    };
                }
            }
        }
        if Instant::now() >= next_rebroadcast {
            match timeout_at(deadline.into(), rpc.is_blockhash_valid(blockhash)).await {
                Ok(Ok(false)) => return final_status(rpc, sig, deadline).await,
                Ok(Ok(true)) => {
                    let _ = timeout_at(deadline.into(), rpc.send_transaction(wire, true)).await;
                }
                _ => {}
            }
            next_rebroadcast = Instant::now() + timing.rebroadcast;
        }
        let wake = (Instant::now() + timing.poll).min(deadline);
        tokio::time::sleep_until(wake.into()).await;
        if Instant::now() >= deadline {
            return Landing::Pending("not confirmed within the settle deadline".into());
        }
    }
}

/// The blockhash is no longer valid: one last status read decides between landed and expired.
async fn final_status(rpc: &SolanaRpc, sig: Signature, deadline: Instant) -> Landing {
    match timeout_at(deadline.into(), rpc.get_signature_statuses(&[sig])).await {
        Ok(Ok(statuses)) => match statuses.into_iter().next().flatten() {
            None => Landing::Expired,
            Some(s) if s.is_confirmed() => match s.err.filter(|e| !e.is_null()) {
                None => Landing::Confirmed,
                Some(e) => Landing::Failed(e.to_string()),
            },
            // Seen but not confirmed past its expiry: most likely a dead fork, but not certain.
            Some(_) => Landing::Pending("processed but not confirmed at blockhash expiry".into()),
        },
        Ok(Err(e)) => Landing::Pending(format!("could not read the status at expiry: {e}")),
        Err(_) => Landing::Pending("deadline reached at blockhash expiry".into()),
    }
}
