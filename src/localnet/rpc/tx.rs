//! Transaction methods: `sendTransaction`, `simulateTransaction`, `getSignatureStatuses`,
//! `getTransaction`, `getFeeForMessage`, `requestAirdrop`.
//!
//! Confirmation policy: a transaction that lands is `confirmed` immediately (a one-node
//! cluster reaches supermajority the moment it votes on its own block) and `finalized` once
//! [`FINALIZED_DEPTH`] slots have passed; until then `confirmations` counts slots since.

use super::encoding::{self, decode_transaction};
use super::params::{optional, required, sig_param, with_context, CommitmentConfig};
use super::{RpcError, RpcState};
use crate::localnet::chain::{first_signature, FINALIZED_DEPTH};
use crate::localnet::fees;
use litesvm::types::TransactionMetadata;
use serde::Deserialize;
use serde_json::{json, Value};
use solana_account::Account;
use solana_message::VersionedMessage;
use solana_transaction::versioned::VersionedTransaction;
use solana_transaction_error::TransactionError;

/// Seconds since the Unix epoch, for `blockTime`.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Every required signature verifies against its signer key.
fn signatures_valid(tx: &VersionedTransaction) -> bool {
    tx.verify_with_results().iter().all(|ok| *ok)
}

fn sig_verify_failure() -> RpcError {
    RpcError::new(
        super::TRANSACTION_SIGNATURE_VERIFICATION_FAILURE,
        "Transaction signature verification failure",
    )
}

/// The `RpcSimulateTransactionResult` object.
fn simulation_result(
    err: Option<&TransactionError>,
    meta: Option<&TransactionMetadata>,
    accounts: Value,
    inner: bool,
    replacement: Value,
) -> Value {
    json!({
        "err": encoding::opt_tx_error(err),
        "logs": meta.map(|m| m.logs.clone()).unwrap_or_default(),
        "accounts": accounts,
        "unitsConsumed": meta.map_or(0, |m| m.compute_units_consumed),
        "returnData": meta.map_or(Value::Null, encoding::return_data),
        "innerInstructions": match (inner, meta) {
            (true, Some(m)) => encoding::inner_instructions(m),
            (true, None) => json!([]),
            _ => Value::Null,
        },
        "replacementBlockhash": replacement,
        "loadedAccountsDataSize": 0,
        "fee": meta.map_or(Value::Null, |m| json!(m.fee)),
    })
}

fn preflight_failure(err: &TransactionError, meta: Option<&TransactionMetadata>) -> RpcError {
    let mut e = RpcError::new(
        super::SEND_TRANSACTION_PREFLIGHT_FAILURE,
        format!("Transaction simulation failed: {err}"),
    );
    e.data = Some(simulation_result(
        Some(err),
        meta,
        Value::Null,
        false,
        Value::Null,
    ));
    e
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendConfig {
    #[serde(default)]
    skip_preflight: bool,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    preflight_commitment: Option<String>,
    #[serde(default)]
    max_retries: Option<usize>,
    #[serde(default)]
    min_context_slot: Option<u64>,
}

/// Signatures are always verified, even with `skipPreflight` (a real RPC node would forward
/// such a transaction and the leader would silently drop it; rejecting it up front is more
/// useful and uses the same error). Other preflight failures with `skipPreflight` behave as
/// on a real cluster: the signature is returned and the transaction never lands (expired
/// blockhash, duplicate) or lands failed and pays its fee (program error).
pub(super) fn send_transaction(state: &RpcState, params: &Value) -> Result<Value, RpcError> {
    let data: String = required(params, 0)?;
    let cfg: SendConfig = optional(params, 1)?.unwrap_or_default();
    let _ = (&cfg.preflight_commitment, cfg.max_retries);
    let tx = decode_transaction(&data, cfg.encoding.as_deref())?;
    let sig = first_signature(&tx);
    if !signatures_valid(&tx) {
        return Err(sig_verify_failure());
    }
    let mut ch = state.chain.lock();
    CommitmentConfig {
        commitment: None,
        min_context_slot: cfg.min_context_slot,
    }
    .check(&ch)?;
    if let Err(err) = ch.check_age_and_status(&tx) {
        if cfg.skip_preflight {
            return Ok(json!(sig.to_string()));
        }
        return Err(preflight_failure(&err, None));
    }
    if !cfg.skip_preflight {
        if let Err(failed) = ch.simulate(&tx) {
            return Err(preflight_failure(&failed.err, Some(&failed.meta)));
        }
    }
    ch.execute(tx, unix_now());
    Ok(json!(sig.to_string()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SimAccounts {
    addresses: Vec<String>,
    #[serde(default)]
    encoding: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SimConfig {
    #[serde(default)]
    sig_verify: bool,
    #[serde(default)]
    replace_recent_blockhash: bool,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    accounts: Option<SimAccounts>,
    #[serde(default)]
    inner_instructions: bool,
    #[serde(flatten)]
    commitment: CommitmentConfig,
}

pub(super) fn simulate_transaction(state: &RpcState, params: &Value) -> Result<Value, RpcError> {
    let data: String = required(params, 0)?;
    let cfg: SimConfig = optional(params, 1)?.unwrap_or_default();
    let mut tx = decode_transaction(&data, cfg.encoding.as_deref())?;
    if cfg.sig_verify && cfg.replace_recent_blockhash {
        return Err(RpcError::invalid_params(
            "sigVerify may not be used with replaceRecentBlockhash",
        ));
    }
    if cfg.sig_verify && !signatures_valid(&tx) {
        return Err(sig_verify_failure());
    }
    let (acc_addrs, acc_enc) = match &cfg.accounts {
        Some(a) => {
            let enc = a.encoding.clone().unwrap_or_else(|| "base64".into());
            if matches!(enc.as_str(), "binary" | "base58") {
                return Err(RpcError::invalid_params("base58 encoding not supported"));
            }
            encoding::check_account_encoding(&enc, None)?;
            let addrs = a
                .addresses
                .iter()
                .map(|s| encoding::address(s))
                .collect::<Result<Vec<_>, _>>()?;
            (Some(addrs), enc)
        }
        None => (None, String::new()),
    };
    let ch = state.chain.lock();
    cfg.commitment.check(&ch)?;
    let mut replacement = Value::Null;
    if cfg.replace_recent_blockhash {
        let (hash, lvbh) = ch.latest_blockhash();
        tx.message.set_recent_blockhash(hash);
        replacement = json!({"blockhash": hash.to_string(), "lastValidBlockHeight": lvbh});
    }
    let value = match ch.check_age_and_status(&tx) {
        Err(err) => simulation_result(
            Some(&err),
            None,
            Value::Null,
            cfg.inner_instructions,
            replacement,
        ),
        Ok(()) => {
            let (err, meta, post) = match ch.simulate(&tx) {
                Ok(info) => (None, info.meta, info.post_accounts),
                Err(f) => (Some(f.err.clone()), f.meta.clone(), Vec::new()),
            };
            let accounts = match &acc_addrs {
                None => Value::Null,
                Some(addrs) => Value::Array(
                    addrs
                        .iter()
                        .map(|a| {
                            let acc = post
                                .iter()
                                .find(|(k, _)| k == a)
                                .map(|(_, s)| Account::from(s.clone()))
                                .or_else(|| ch.account(a));
                            match acc {
                                Some(acc) => encoding::encode_account(&ch, &acc, &acc_enc, None),
                                None => Ok(Value::Null),
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            simulation_result(
                err.as_ref(),
                Some(&meta),
                accounts,
                cfg.inner_instructions,
                replacement,
            )
        }
    };
    Ok(with_context(&ch, value))
}

pub(super) fn get_signature_statuses(state: &RpcState, params: &Value) -> Result<Value, RpcError> {
    let sigs: Vec<String> = required(params, 0)?;
    if sigs.len() > 256 {
        return Err(RpcError::invalid_params(
            "Too many inputs provided; max 256",
        ));
    }
    let sigs = sigs
        .iter()
        .map(|s| sig_param(s))
        .collect::<Result<Vec<_>, _>>()?;
    let ch = state.chain.lock();
    let value: Vec<Value> = sigs
        .iter()
        .map(|s| match ch.record(s) {
            None => Value::Null,
            Some(r) => {
                let age = ch.slot.saturating_sub(r.slot);
                let finalized = age >= FINALIZED_DEPTH;
                json!({
                    "slot": r.slot,
                    "confirmations": if finalized { Value::Null } else { json!(age) },
                    "err": encoding::opt_tx_error(r.err.as_ref()),
                    "status": encoding::status(r.err.as_ref()),
                    "confirmationStatus": if finalized { "finalized" } else { "confirmed" },
                })
            }
        })
        .collect();
    Ok(with_context(&ch, Value::Array(value)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetTxConfig {
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    commitment: Option<String>,
    #[serde(default)]
    max_supported_transaction_version: Option<u8>,
}

pub(super) fn get_transaction(state: &RpcState, params: &Value) -> Result<Value, RpcError> {
    let sig = sig_param(&required::<String>(params, 0)?)?;
    // The second param may be a bare encoding string (deprecated form) or a config object.
    let cfg: GetTxConfig = match params.get(1) {
        Some(Value::String(enc)) => GetTxConfig {
            encoding: Some(enc.clone()),
            ..Default::default()
        },
        _ => optional(params, 1)?.unwrap_or_default(),
    };
    if cfg.commitment.as_deref() == Some("processed") {
        return Err(RpcError::invalid_params(
            "Method does not support commitment below `confirmed`",
        ));
    }
    let enc = cfg.encoding.unwrap_or_else(|| "json".into());
    let ch = state.chain.lock();
    let Some(r) = ch.record(&sig) else {
        return Ok(Value::Null);
    };
    let is_v0 = matches!(r.tx.message, VersionedMessage::V0(_));
    if is_v0 && cfg.max_supported_transaction_version.is_none() {
        return Err(RpcError::new(
            super::UNSUPPORTED_TRANSACTION_VERSION,
            "Transaction version (0) is not supported by the requesting client. Please try the request again with the following configuration parameter: \"maxSupportedTransactionVersion\": 0",
        ));
    }
    let addrs = |v: &[solana_address::Address]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let mut meta = json!({
        "err": encoding::opt_tx_error(r.err.as_ref()),
        "status": encoding::status(r.err.as_ref()),
        "fee": r.meta.fee,
        "preBalances": r.pre_balances,
        "postBalances": r.post_balances,
        "innerInstructions": encoding::inner_instructions(&r.meta),
        "logMessages": r.meta.logs,
        "preTokenBalances": encoding::token_balances(&r.pre_token_balances),
        "postTokenBalances": encoding::token_balances(&r.post_token_balances),
        "rewards": [],
        "loadedAddresses": {"writable": addrs(&r.loaded.0), "readonly": addrs(&r.loaded.1)},
        "computeUnitsConsumed": r.meta.compute_units_consumed,
    });
    let rd = encoding::return_data(&r.meta);
    if !rd.is_null() {
        meta["returnData"] = rd;
    }
    let mut out = json!({
        "slot": r.slot,
        "blockTime": r.block_time,
        "meta": meta,
        "transaction": encoding::encode_transaction(&r.tx, &enc, &r.loaded)?,
    });
    if cfg.max_supported_transaction_version.is_some() {
        out["version"] = encoding::version(&r.tx);
    }
    Ok(out)
}

pub(super) fn get_fee_for_message(state: &RpcState, params: &Value) -> Result<Value, RpcError> {
    let msg = encoding::decode_message(&required::<String>(params, 0)?)?;
    let cfg: CommitmentConfig = optional(params, 1)?.unwrap_or_default();
    let ch = state.chain.lock();
    cfg.check(&ch)?;
    // Like a real bank: no fee for a message whose blockhash is unknown or expired.
    let fee = ch
        .blockhash_last_valid(msg.recent_blockhash())
        .map(|_| fees::fee_for(&msg));
    Ok(with_context(&ch, json!(fee)))
}

pub(super) fn request_airdrop(state: &RpcState, params: &Value) -> Result<Value, RpcError> {
    let to = encoding::address(&required::<String>(params, 0)?)?;
    let lamports: u64 = required(params, 1)?;
    let cfg: CommitmentConfig = optional(params, 2)?.unwrap_or_default();
    let mut ch = state.chain.lock();
    cfg.check(&ch)?;
    ch.airdrop(&to, lamports, unix_now())
        .map(|s| json!(s.to_string()))
        .map_err(|e| {
            RpcError::new(
                super::INTERNAL_ERROR,
                format!("airdrop request failed: {e}"),
            )
        })
}
