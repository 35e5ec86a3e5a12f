//! Verification: the static checks (shared with settle) and the RPC-side checks.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{json, Value};
use solana_address::Address;
use solana_hash::Hash;
use solana_signature::Signature;

use super::reasons::*;
use super::request::{parse, Payment};
use super::BLOCKHASH_LIFETIME_BLOCKS;
use super::{Failure, Inner, NetworkState, Rejection};
use crate::solana_rpc::{MintError, RpcError, SignatureStatus, NODE_UNHEALTHY};
use crate::svm::{
    blockhash_has_life, blocks_for, decode_transaction, sign_as_fee_payer, simulation_result,
    verify_exact, DecodedTransaction, ExactPolicy, VerifiedPayment, VerifyError,
};
use crate::x402::FacilitatorRequest;

/// Whether `tx` is the decoding of the base64 `transaction`.
fn same_transaction(tx: &DecodedTransaction, transaction: &str) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(transaction)
        .is_ok_and(|bytes| bytes == tx.wire_bytes())
}

/// A payment that passed every check that needs no chain state beyond the mint.
#[derive(Debug)]
pub(crate) struct Checked<'a> {
    pub net: &'a NetworkState,
    pub payment: Payment,
    pub tx: Arc<DecodedTransaction>,
    pub verified: VerifiedPayment,
}

fn rpc_failure(what: &str, e: &RpcError) -> Failure {
    Failure::Rpc(format!("Solana RPC {what}: {e}"))
}

/// SPL Token and Token-2022 `TokenError::InsufficientFunds` on the transfer (instruction 2).
pub(crate) fn is_insufficient_funds(err: &Value) -> bool {
    *err == json!({"InstructionError": [2, {"Custom": 1}]})
}

/// The refusal for a failed simulation or preflight (`err` non-null).
pub(crate) fn simulation_rejection(err: &Value, logs: &[String]) -> Option<Rejection> {
    let e = simulation_result(Some(err), logs).err()?;
    let reason = if is_insufficient_funds(err) {
        INSUFFICIENT_FUNDS
    } else if err.as_str() == Some("BlockhashNotFound") {
        BLOCKHASH_EXPIRED
    } else {
        e.reason()
    };
    Some(Rejection::new(reason, e.to_string()))
}

/// Refuses a payment whose transaction the cluster already has: it was settled (by us, or
/// by an earlier process whose records are gone), so serving it again would sell one payment
/// twice. The simulation cannot tell: it runs the unsigned copy, whose id is not the landed one.
fn not_landed(
    id: Signature,
    statuses: Result<Vec<Option<SignatureStatus>>, RpcError>,
) -> Result<(), Failure> {
    let statuses = statuses.map_err(|e| rpc_failure("getSignatureStatuses", &e))?;
    match statuses.into_iter().next().flatten() {
        None => Ok(()),
        Some(status) => Err(Rejection::new(
            DUPLICATE_SETTLEMENT,
            format!(
                "this payment already landed in transaction {id} (slot {})",
                status.slot
            ),
        )
        .into()),
    }
}

impl Inner {
    /// Full verification; the payer on success. `pre`: the request's transaction, already
    /// decoded (and its client signatures checked) in this process.
    pub(crate) async fn verify(
        &self,
        req: &FacilitatorRequest,
        pre: Option<&Arc<DecodedTransaction>>,
    ) -> Result<Address, Failure> {
        let checked = self.check_static(req, pre).await?;
        let payer = checked.verified.payer;
        self.check_chain(&checked).await.map_err(|f| match f {
            Failure::Rejected(r) => Failure::Rejected(r.with_payer(payer)),
            other => other,
        })?;
        Ok(payer)
    }

    /// Parse, allow-list, mint, strict static verification.
    pub(crate) async fn check_static(
        &self,
        req: &FacilitatorRequest,
        pre: Option<&Arc<DecodedTransaction>>,
    ) -> Result<Checked<'_>, Failure> {
        let payment = parse(req, &self.keys, |n| self.network(n).is_some())?;
        let net = self
            .network(&payment.network)
            .ok_or_else(|| Rejection::new(INVALID_NETWORK, "network not served"))?;
        let asset = payment.requirements.asset;
        if !net.allowed_mints.contains(&asset) {
            return Err(VerifyError::MintNotAllowed(asset).into());
        }
        // Decode before any RPC call: garbage costs no round trip. A transaction this process
        // already decoded is reused when it is the request's own (same wire bytes): the strict
        // checks below still run, only the decode and the ed25519 checks are not repeated.
        let tx = match pre.filter(|tx| same_transaction(tx, &payment.transaction)) {
            Some(tx) => tx.clone(),
            None => Arc::new(decode_transaction(&payment.transaction)?),
        };
        let mint = match net.mints.get(&net.rpc, &asset).await {
            Ok(m) => m,
            Err(MintError::Rpc(e)) => return Err(rpc_failure("getAccountInfo(mint)", &e)),
            Err(MintError::NotFound(_)) => {
                return Err(VerifyError::MintInvalid("mint account not found").into())
            }
            Err(MintError::Invalid(e)) => return Err(e.into()),
        };
        let policy = ExactPolicy {
            max_compute_unit_limit: self.settings.max_compute_unit_limit,
            max_compute_unit_price: self.settings.max_compute_unit_price,
            require_memo: self.settings.require_memo,
            ..ExactPolicy::new(self.keys.pubkeys(), net.allowed_mints.clone())
        };
        let verified = verify_exact(&tx, &payment.requirements, &mint, &policy)?;
        Ok(Checked {
            net,
            payment,
            tx,
            verified,
        })
    }

    /// Blockhash life, simulation and whether the payment already landed, concurrently.
    async fn check_chain(&self, c: &Checked<'_>) -> Result<(), Failure> {
        let net = c.net;
        let hash = c.tx.recent_blockhash();
        let id = [self.transaction_id(c)?];
        let simulate = net
            .rpc
            .simulate_transaction(c.tx.wire_bytes(), false, false);
        let (life, sim, landed) = tokio::join!(
            self.check_blockhash(net, hash),
            simulate,
            net.rpc.get_signature_statuses(&id)
        );
        not_landed(id[0], landed)?;
        life?;
        match sim {
            Ok(s) => match s.err.as_ref().filter(|e| !e.is_null()) {
                None => Ok(()),
                Some(err) => Err(simulation_rejection(err, &s.logs)
                    .unwrap_or_else(|| Rejection::new(SIMULATION_FAILED, "simulation failed"))
                    .into()),
            },
            // A JSON-RPC error object is the node's answer about this transaction: refuse.
            Err(RpcError::Rpc { code, message, .. }) if code != NODE_UNHEALTHY => Err(
                Rejection::new(SIMULATION_FAILED, format!("simulation refused: {message}")).into(),
            ),
            Err(e) => Err(rpc_failure("simulateTransaction", &e)),
        }
    }

    /// The id the transaction will have once we co-sign it. ed25519 signing is deterministic,
    /// so this is the signature a settlement of this payment lands (or landed) under, known
    /// without sending anything.
    fn transaction_id(&self, c: &Checked<'_>) -> Result<Signature, Failure> {
        let keypair = self
            .keys
            .get(&c.verified.fee_payer)
            .ok_or_else(|| Rejection::new(FEE_PAYER_NOT_MANAGED, "fee payer key not loaded"))?;
        Ok(sign_as_fee_payer(&c.tx, keypair)?.1)
    }

    /// The blockhash rule of the module docs.
    async fn check_blockhash(&self, net: &NetworkState, hash: &Hash) -> Result<(), Failure> {
        let known = net.blockhashes.lookup(hash);
        let life = async {
            match known {
                Some(lvbh) => net.rpc.get_block_height().await.map(|h| Some((lvbh, h))),
                None if net.blockhashes.begin_refresh() => {
                    let (latest, lvbh) = net.rpc.get_latest_blockhash().await?;
                    net.blockhashes.record(latest, lvbh);
                    // The newest blockhash was produced at the current block height.
                    Ok((latest == *hash)
                        .then(|| (lvbh, lvbh.saturating_sub(BLOCKHASH_LIFETIME_BLOCKS))))
                }
                None => Ok(None),
            }
        };
        let (valid, life) = tokio::join!(net.rpc.is_blockhash_valid(hash), life);
        if !valid.map_err(|e| rpc_failure("isBlockhashValid", &e))? {
            return Err(Rejection::new(
                BLOCKHASH_EXPIRED,
                format!("blockhash {hash} is no longer valid"),
            )
            .into());
        }
        let need = blocks_for(self.settings.min_blockhash_life);
        if let Some((lvbh, height)) = life.map_err(|e| rpc_failure("block height", &e))? {
            blockhash_has_life(lvbh, height, need)?;
        }
        Ok(())
    }
}
