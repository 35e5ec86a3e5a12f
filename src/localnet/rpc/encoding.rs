//! Wire encodings shared by the methods: transaction decoding, account encodings
//! (`binary`/`base58`/`base64`/`jsonParsed` + `dataSlice`), and the JSON shapes of
//! transactions, statuses and metadata exactly as real RPC spells them.

use super::RpcError;
use crate::localnet::chain::{Chain, TokenBalance};
use crate::localnet::tokens;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use litesvm::types::TransactionMetadata;
use serde::Deserialize;
use serde_json::{json, Value};
use solana_account::Account;
use solana_address::Address;
use solana_message::VersionedMessage;
use solana_transaction::versioned::VersionedTransaction;
use solana_transaction_error::TransactionError;

/// Largest wire transaction (`PACKET_DATA_SIZE`).
const PACKET_DATA_SIZE: usize = 1232;
/// Real RPC refuses base58 account data above this size.
const MAX_BASE58_BYTES: usize = 128;

/// `dataSlice` config.
#[derive(Debug, Clone, Copy, Deserialize)]
pub(super) struct DataSlice {
    pub offset: usize,
    pub length: usize,
}

/// Decodes a wire transaction sent as base58 (the RPC default) or base64, then sanitizes it.
pub(super) fn decode_transaction(
    data: &str,
    encoding: Option<&str>,
) -> Result<VersionedTransaction, RpcError> {
    let bytes = match encoding.unwrap_or("base58") {
        "base58" => {
            if data.len() > 1683 {
                return Err(RpcError::invalid_params(format!(
                    "base58 encoded solana_transaction::versioned::VersionedTransaction too large: {} bytes (max: encoded/raw 1683/{PACKET_DATA_SIZE})",
                    data.len()
                )));
            }
            bs58::decode(data)
                .into_vec()
                .map_err(|e| RpcError::invalid_params(format!("invalid base58 encoding: {e:?}")))?
        }
        "base64" => {
            if data.len() > 1644 {
                return Err(RpcError::invalid_params(format!(
                    "base64 encoded solana_transaction::versioned::VersionedTransaction too large: {} bytes (max: encoded/raw 1644/{PACKET_DATA_SIZE})",
                    data.len()
                )));
            }
            B64.decode(data)
                .map_err(|e| RpcError::invalid_params(format!("invalid base64 encoding: {e:?}")))?
        }
        other => {
            return Err(RpcError::invalid_params(format!(
                "unsupported encoding: {other}. Supported encodings: base58, base64"
            )))
        }
    };
    if bytes.len() > PACKET_DATA_SIZE {
        return Err(RpcError::invalid_params(format!(
            "decoded solana_transaction::versioned::VersionedTransaction too large: {} bytes (max: {PACKET_DATA_SIZE} bytes)",
            bytes.len()
        )));
    }
    let tx: VersionedTransaction = bincode::deserialize(&bytes).map_err(|e| {
        RpcError::invalid_params(format!(
            "failed to deserialize solana_transaction::versioned::VersionedTransaction: {e}"
        ))
    })?;
    tx.sanitize()
        .map_err(|e| RpcError::invalid_params(format!("invalid transaction: {e}")))?;
    if tx.signatures.is_empty() {
        return Err(RpcError::invalid_params(
            "invalid transaction: no signatures",
        ));
    }
    Ok(tx)
}

/// Decodes a base64 serialized message (`getFeeForMessage`).
pub(super) fn decode_message(data: &str) -> Result<VersionedMessage, RpcError> {
    let bytes = B64
        .decode(data)
        .map_err(|e| RpcError::invalid_params(format!("invalid base64 encoding: {e:?}")))?;
    let msg: VersionedMessage = bincode::deserialize(&bytes)
        .map_err(|e| RpcError::invalid_params(format!("failed to deserialize message: {e}")))?;
    msg.sanitize()
        .map_err(|e| RpcError::invalid_params(format!("invalid message: {e}")))?;
    Ok(msg)
}

/// Parses an address parameter.
pub(super) fn address(s: &str) -> Result<Address, RpcError> {
    s.parse::<Address>()
        .map_err(|e| RpcError::invalid_param(format!("{e:?}")))
}

/// Checks an account encoding and slice combination the way real RPC does.
pub(super) fn check_account_encoding(
    encoding: &str,
    slice: Option<DataSlice>,
) -> Result<(), RpcError> {
    match encoding {
        "binary" | "base58" | "base64" => Ok(()),
        "jsonParsed" if slice.is_some_and(|s| s.length > 0) => Err(RpcError::new(
            super::INVALID_REQUEST,
            "Sliced account data can only be encoded using binary (base 58) or base64 encoding.",
        )),
        "jsonParsed" => Ok(()),
        "base64+zstd" => Err(RpcError::invalid_params(
            "base64+zstd is not supported by the local cluster; use base64",
        )),
        other => Err(RpcError::invalid_params(format!(
            "unknown variant `{other}`"
        ))),
    }
}

/// The `UiAccount` object for `acc` in `encoding` (defaults decided by the caller).
pub(super) fn encode_account(
    chain: &Chain,
    acc: &Account,
    encoding: &str,
    slice: Option<DataSlice>,
) -> Result<Value, RpcError> {
    let sliced = |d: &[u8]| -> Vec<u8> {
        match slice {
            Some(s) => {
                let start = s.offset.min(d.len());
                let end = start.saturating_add(s.length).min(d.len());
                d[start..end].to_vec()
            }
            None => d.to_vec(),
        }
    };
    let data = match encoding {
        "jsonParsed" => {
            match tokens::json_parsed(&acc.owner, &acc.data, |m| chain.mint_decimals(m)) {
                Some(v) => v,
                // Real RPC falls back to base64 for accounts it cannot parse.
                None => json!([B64.encode(&acc.data), "base64"]),
            }
        }
        "base64" => json!([B64.encode(sliced(&acc.data)), "base64"]),
        "binary" | "base58" => {
            let d = sliced(&acc.data);
            if d.len() > MAX_BASE58_BYTES {
                return Err(RpcError::new(
                    super::INVALID_REQUEST,
                    "Encoded binary (base 58) data should be less than 128 bytes, please use Base64 encoding.",
                ));
            }
            let s = bs58::encode(d).into_string();
            if encoding == "binary" {
                Value::String(s)
            } else {
                json!([s, "base58"])
            }
        }
        other => {
            return Err(RpcError::invalid_params(format!(
                "unknown variant `{other}`"
            )))
        }
    };
    Ok(json!({
        "data": data,
        "executable": acc.executable,
        "lamports": acc.lamports,
        "owner": acc.owner.to_string(),
        "rentEpoch": acc.rent_epoch,
        "space": acc.data.len(),
    }))
}

/// A `TransactionError` as real RPC serializes it (`"BlockhashNotFound"`,
/// `{"InstructionError":[0,{"Custom":1}]}`).
pub(super) fn tx_error(err: &TransactionError) -> Value {
    serde_json::to_value(err).unwrap_or_else(|_| Value::String(err.to_string()))
}

pub(super) fn opt_tx_error(err: Option<&TransactionError>) -> Value {
    err.map_or(Value::Null, tx_error)
}

/// The legacy `status` field: `{"Ok":null}` or `{"Err":...}`.
pub(super) fn status(err: Option<&TransactionError>) -> Value {
    match err {
        None => json!({"Ok": null}),
        Some(e) => json!({"Err": tx_error(e)}),
    }
}

pub(super) fn return_data(meta: &TransactionMetadata) -> Value {
    let rd = &meta.return_data;
    if rd.data.is_empty() && rd.program_id == Address::default() {
        return Value::Null;
    }
    json!({"programId": rd.program_id.to_string(), "data": [B64.encode(&rd.data), "base64"]})
}

pub(super) fn inner_instructions(meta: &TransactionMetadata) -> Value {
    let list: Vec<Value> = meta
        .inner_instructions
        .iter()
        .enumerate()
        .filter(|(_, ixs)| !ixs.is_empty())
        .map(|(index, ixs)| {
            let ixs: Vec<Value> = ixs
                .iter()
                .map(|ix| {
                    json!({
                        "programIdIndex": ix.instruction.program_id_index,
                        "accounts": ix.instruction.accounts,
                        "data": bs58::encode(&ix.instruction.data).into_string(),
                        "stackHeight": ix.stack_height,
                    })
                })
                .collect();
            json!({"index": index, "instructions": ixs})
        })
        .collect();
    Value::Array(list)
}

pub(super) fn token_balances(list: &[TokenBalance]) -> Value {
    list.iter()
        .map(|b| {
            json!({
                "accountIndex": b.account_index,
                "mint": b.mint.to_string(),
                "owner": b.owner.to_string(),
                "programId": b.program_id.to_string(),
                "uiTokenAmount": tokens::ui_token_amount(b.amount, b.decimals),
            })
        })
        .collect()
}

/// `"legacy"` or `0`.
pub(super) fn version(tx: &VersionedTransaction) -> Value {
    match &tx.message {
        VersionedMessage::Legacy(_) => json!("legacy"),
        VersionedMessage::V0(_) => json!(0),
        #[allow(unreachable_patterns)]
        _ => json!(1),
    }
}

/// The `transaction` field in `encoding` (`json`, `jsonParsed`, `base64`, `base58`).
pub(super) fn encode_transaction(
    tx: &VersionedTransaction,
    encoding: &str,
    loaded: &(Vec<Address>, Vec<Address>),
) -> Result<Value, RpcError> {
    let wire =
        || bincode::serialize(tx).map_err(|e| RpcError::new(super::INTERNAL_ERROR, e.to_string()));
    let sigs: Vec<String> = tx.signatures.iter().map(|s| s.to_string()).collect();
    let msg = &tx.message;
    let keys = msg.static_account_keys();
    let header = msg.header();
    Ok(match encoding {
        "base64" => json!([B64.encode(wire()?), "base64"]),
        "base58" | "binary" => json!([bs58::encode(wire()?).into_string(), "base58"]),
        "json" => {
            let instructions: Vec<Value> = msg
                .instructions()
                .iter()
                .map(|ix| {
                    json!({
                        "programIdIndex": ix.program_id_index,
                        "accounts": ix.accounts,
                        "data": bs58::encode(&ix.data).into_string(),
                        "stackHeight": null,
                    })
                })
                .collect();
            let mut m = json!({
                "accountKeys": keys.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
                "header": {
                    "numRequiredSignatures": header.num_required_signatures,
                    "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
                    "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
                },
                "instructions": instructions,
                "recentBlockhash": msg.recent_blockhash().to_string(),
            });
            if let Some(lookups) = msg.address_table_lookups() {
                m["addressTableLookups"] = lookups
                    .iter()
                    .map(|l| {
                        json!({
                            "accountKey": l.account_key.to_string(),
                            "writableIndexes": l.writable_indexes,
                            "readonlyIndexes": l.readonly_indexes,
                        })
                    })
                    .collect();
            }
            json!({"message": m, "signatures": sigs})
        }
        "jsonParsed" => {
            // Account keys in parsed form; instructions stay "partially decoded" (program id,
            // account addresses, base58 data), the form real RPC uses for programs it does not
            // parse.
            let all: Vec<(Address, &str)> = keys
                .iter()
                .map(|k| (*k, "transaction"))
                .chain(
                    loaded
                        .0
                        .iter()
                        .chain(&loaded.1)
                        .map(|k| (*k, "lookupTable")),
                )
                .collect();
            let account_keys: Vec<Value> = all
                .iter()
                .enumerate()
                .map(|(i, (k, src))| {
                    json!({
                        "pubkey": k.to_string(),
                        "signer": msg.is_signer(i),
                        "source": src,
                        "writable": if i < keys.len() { msg.is_maybe_writable(i, None) } else { i < keys.len() + loaded.0.len() },
                    })
                })
                .collect();
            let key_at = |i: u8| {
                all.get(i as usize)
                    .map(|(k, _)| k.to_string())
                    .unwrap_or_default()
            };
            let instructions: Vec<Value> = msg
                .instructions()
                .iter()
                .map(|ix| {
                    json!({
                        "programId": key_at(ix.program_id_index),
                        "accounts": ix.accounts.iter().map(|a| key_at(*a)).collect::<Vec<_>>(),
                        "data": bs58::encode(&ix.data).into_string(),
                        "stackHeight": null,
                    })
                })
                .collect();
            json!({
                "message": {
                    "accountKeys": account_keys,
                    "instructions": instructions,
                    "recentBlockhash": msg.recent_blockhash().to_string(),
                },
                "signatures": sigs,
            })
        }
        other => {
            return Err(RpcError::invalid_params(format!(
                "unknown variant `{other}`"
            )))
        }
    })
}
