//! `getSignaturesForAddress`: the transactions that touched an address, newest first, paged
//! as a real node pages them.
//!
//! Rules (agave `get_signatures_for_address`): `limit` 1..=1000 (default 1000); `before`
//! starts below that signature (exclusive) and a `before` the ledger does not know gives an
//! empty page; `until` stops above that signature (exclusive) and an unknown `until` is
//! ignored; commitment `finalized` (the default) lists only finalized transactions,
//! `confirmed` every landed one, `processed` is refused. Each entry is
//! `{signature, slot, err, memo, blockTime, confirmationStatus}`; `memo` is every Memo
//! instruction's text as `[<bytes>] <text>`, joined by `; `, or null.

use serde::Deserialize;
use serde_json::{json, Value};
use solana_address::Address;

use super::encoding;
use super::params::{optional, required, sig_param, CommitmentConfig};
use super::{RpcError, RpcState};
use crate::localnet::chain::{TxRecord, FINALIZED_DEPTH};

/// Largest (and default) page.
const MAX_LIMIT: usize = 1000;

/// SPL Memo v1, whose memos the real index reports too.
const MEMO_V1: Address = Address::from_str_const("Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo");

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(flatten)]
    commitment: CommitmentConfig,
}

pub(super) fn get_signatures_for_address(
    state: &RpcState,
    params: &Value,
) -> Result<Value, RpcError> {
    let addr = encoding::address(&required::<String>(params, 0)?)?;
    let cfg: Config = optional(params, 1)?.unwrap_or_default();
    let limit = cfg.limit.unwrap_or(MAX_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(RpcError::invalid_params(format!(
            "Invalid limit; max {MAX_LIMIT}"
        )));
    }
    let finalized_only = match cfg.commitment.commitment.as_deref() {
        None | Some("finalized" | "root" | "max") => true,
        Some("confirmed" | "single" | "singleGossip") => false,
        Some("processed" | "recent") => {
            return Err(RpcError::invalid_params(
                "Method does not support commitment below `confirmed`",
            ))
        }
        // An unknown name: `check` below refuses it with the real message.
        Some(_) => true,
    };
    let before = cfg.before.as_deref().map(sig_param).transpose()?;
    let until = cfg.until.as_deref().map(sig_param).transpose()?;
    let ch = state.chain.lock();
    cfg.commitment.check(&ch)?;
    let before_seq = match before {
        None => None,
        Some(sig) => match ch.record(&sig) {
            Some(r) => Some(r.seq),
            None => return Ok(json!([])),
        },
    };
    let until_seq = until.and_then(|sig| ch.record(&sig)).map(|r| r.seq);
    let finalized = |r: &TxRecord| ch.slot.saturating_sub(r.slot) >= FINALIZED_DEPTH;
    let page: Vec<Value> = ch
        .history(&addr)
        .filter(|(_, r)| before_seq.is_none_or(|b| r.seq < b))
        .take_while(|(_, r)| until_seq.is_none_or(|u| r.seq > u))
        .filter(|(_, r)| !finalized_only || finalized(r))
        .take(limit)
        .map(|(sig, r)| {
            json!({
                "signature": sig.to_string(),
                "slot": r.slot,
                "err": encoding::opt_tx_error(r.err.as_ref()),
                "memo": memo(r),
                "blockTime": r.block_time,
                "confirmationStatus": if finalized(r) { "finalized" } else { "confirmed" },
            })
        })
        .collect();
    Ok(Value::Array(page))
}

/// The memos of the transaction's top-level Memo instructions, formatted as the real index
/// does (`[<byte length>] <utf-8 text>`, `(unparseable)` when not UTF-8), or null.
fn memo(r: &TxRecord) -> Value {
    let keys = r.tx.message.static_account_keys();
    let memos: Vec<String> =
        r.tx.message
            .instructions()
            .iter()
            .filter(|ix| {
                keys.get(usize::from(ix.program_id_index))
                    .is_some_and(|p| *p == crate::svm::constants::MEMO_PROGRAM || *p == MEMO_V1)
            })
            .map(|ix| {
                let text = std::str::from_utf8(&ix.data).unwrap_or("(unparseable)");
                format!("[{}] {text}", ix.data.len())
            })
            .collect();
    if memos.is_empty() {
        Value::Null
    } else {
        Value::String(memos.join("; "))
    }
}
