//! Method dispatch and the read-only methods (accounts, balances, blockhashes, cluster info).
//! Transaction methods live in `tx.rs`, an address's history in `history.rs`.

use super::encoding::{self, DataSlice};
use super::params::{optional, required, with_context, CommitmentConfig};
use super::{history, tx, RpcError, RpcState, API_VERSION};
use crate::config::localnet::TokenProgramKind;
use crate::localnet::chain::{Chain, MAX_PROCESSING_AGE};
use crate::localnet::tokens;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

/// Slots per epoch of a default (mainnet-like) epoch schedule.
const SLOTS_PER_EPOCH: u64 = 432_000;
/// `getMultipleAccounts` limit of real RPC.
const MAX_MULTIPLE_ACCOUNTS: usize = 100;

/// Routes one call. Every method locks the ledger at most once, briefly.
pub(super) fn dispatch(state: &RpcState, method: &str, params: &Value) -> Result<Value, RpcError> {
    let chain = &state.chain;
    match method {
        "getHealth" => Ok(json!("ok")),
        "getVersion" => Ok(json!({"solana-core": API_VERSION, "feature-set": 3_294_202_862u32})),
        "getGenesisHash" => Ok(json!(chain.lock().genesis_hash.to_string())),
        "getSlot" => with_config(
            params,
            0,
            |c: CommitmentConfig, ch| {
                c.check(ch)?;
                Ok(json!(ch.slot))
            },
            chain,
        ),
        "getBlockHeight" => with_config(
            params,
            0,
            |c: CommitmentConfig, ch| {
                c.check(ch)?;
                Ok(json!(ch.block_height))
            },
            chain,
        ),
        "getEpochInfo" => with_config(
            params,
            0,
            |c: CommitmentConfig, ch| {
                c.check(ch)?;
                Ok(json!({
                    "absoluteSlot": ch.slot,
                    "blockHeight": ch.block_height,
                    "epoch": ch.slot / SLOTS_PER_EPOCH,
                    "slotIndex": ch.slot % SLOTS_PER_EPOCH,
                    "slotsInEpoch": SLOTS_PER_EPOCH,
                    "transactionCount": ch.transaction_count,
                }))
            },
            chain,
        ),
        "getLatestBlockhash" => with_config(
            params,
            0,
            |c: CommitmentConfig, ch| {
                c.check(ch)?;
                let (hash, lvbh) = ch.latest_blockhash();
                Ok(with_context(
                    ch,
                    json!({"blockhash": hash.to_string(), "lastValidBlockHeight": lvbh}),
                ))
            },
            chain,
        ),
        "isBlockhashValid" => {
            let hash: String = required(params, 0)?;
            let hash = hash
                .parse::<solana_hash::Hash>()
                .map_err(|e| RpcError::invalid_param(format!("{e:?}")))?;
            with_config(
                params,
                1,
                |c: CommitmentConfig, ch| {
                    c.check(ch)?;
                    Ok(with_context(
                        ch,
                        json!(ch.blockhash_last_valid(&hash).is_some()),
                    ))
                },
                chain,
            )
        }
        "getMinimumBalanceForRentExemption" => {
            let len: usize = required(params, 0)?;
            Ok(json!(chain
                .lock()
                .svm
                .minimum_balance_for_rent_exemption(len)))
        }
        "getBalance" => {
            let addr = encoding::address(&required::<String>(params, 0)?)?;
            with_config(
                params,
                1,
                |c: CommitmentConfig, ch| {
                    c.check(ch)?;
                    Ok(with_context(ch, json!(ch.lamports(&addr))))
                },
                chain,
            )
        }
        "getAccountInfo" => {
            let addr = encoding::address(&required::<String>(params, 0)?)?;
            let cfg: AccountConfig = optional(params, 1)?.unwrap_or_default();
            // Real RPC's default for getAccountInfo is legacy `binary` (bare base58 string).
            let enc = cfg.encoding.clone().unwrap_or_else(|| "binary".into());
            encoding::check_account_encoding(&enc, cfg.data_slice)?;
            let ch = chain.lock();
            cfg.commitment.check(&ch)?;
            let value = match ch.account(&addr) {
                Some(acc) => encoding::encode_account(&ch, &acc, &enc, cfg.data_slice)?,
                None => Value::Null,
            };
            Ok(with_context(&ch, value))
        }
        "getMultipleAccounts" => {
            let addrs: Vec<String> = required(params, 0)?;
            if addrs.len() > MAX_MULTIPLE_ACCOUNTS {
                return Err(RpcError::invalid_params(format!(
                    "Too many inputs provided; max {MAX_MULTIPLE_ACCOUNTS}"
                )));
            }
            let addrs = addrs
                .iter()
                .map(|a| encoding::address(a))
                .collect::<Result<Vec<_>, _>>()?;
            let cfg: AccountConfig = optional(params, 1)?.unwrap_or_default();
            // getMultipleAccounts defaults to base64 in real RPC.
            let enc = cfg.encoding.clone().unwrap_or_else(|| "base64".into());
            encoding::check_account_encoding(&enc, cfg.data_slice)?;
            let ch = chain.lock();
            cfg.commitment.check(&ch)?;
            let values = addrs
                .iter()
                .map(|a| match ch.account(a) {
                    Some(acc) => encoding::encode_account(&ch, &acc, &enc, cfg.data_slice),
                    None => Ok(Value::Null),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(with_context(&ch, Value::Array(values)))
        }
        "getTokenAccountBalance" => {
            let addr = encoding::address(&required::<String>(params, 0)?)?;
            let cfg: CommitmentConfig = optional(params, 1)?.unwrap_or_default();
            let ch = chain.lock();
            cfg.check(&ch)?;
            let acc = ch
                .account(&addr)
                .filter(|a| TokenProgramKind::from_program_id(&a.owner).is_some())
                .ok_or_else(|| RpcError::invalid_param("could not find account"))?;
            let t = tokens::unpack_account(&acc.data)
                .ok_or_else(|| RpcError::invalid_param("not a Token account"))?;
            let decimals = ch
                .mint_decimals(&t.mint)
                .ok_or_else(|| RpcError::invalid_param("could not find mint"))?;
            Ok(with_context(
                &ch,
                tokens::ui_token_amount(t.amount, decimals),
            ))
        }
        "getTokenAccountsByOwner" => token_accounts_by_owner(state, params),
        "getRecentPrioritizationFees" => {
            let addrs: Vec<String> = optional(params, 0)?.unwrap_or_default();
            if addrs.len() > 128 {
                return Err(RpcError::invalid_params(
                    "Too many inputs provided; max 128",
                ));
            }
            let addrs = addrs
                .iter()
                .map(|a| encoding::address(a))
                .collect::<Result<Vec<_>, _>>()?;
            let ch = chain.lock();
            let first = ch.slot.saturating_sub(MAX_PROCESSING_AGE - 1);
            let fees: Vec<Value> = (first..=ch.slot)
                .map(|slot| {
                    // Per slot: the lowest price among transactions that write-lock any of
                    // the given accounts (or any transaction if none given), else 0.
                    let fee = ch
                        .priority_fees
                        .iter()
                        .filter(|(s, _, w)| {
                            *s == slot && (addrs.is_empty() || w.iter().any(|k| addrs.contains(k)))
                        })
                        .map(|(_, p, _)| *p)
                        .min()
                        .unwrap_or(0);
                    json!({"slot": slot, "prioritizationFee": fee})
                })
                .collect();
            Ok(Value::Array(fees))
        }
        "getFeeForMessage" => tx::get_fee_for_message(state, params),
        "sendTransaction" => {
            state
                .send_requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tx::send_transaction(state, params)
        }
        "simulateTransaction" => tx::simulate_transaction(state, params),
        "getSignatureStatuses" => tx::get_signature_statuses(state, params),
        "getTransaction" => tx::get_transaction(state, params),
        "getSignaturesForAddress" => history::get_signatures_for_address(state, params),
        "requestAirdrop" => tx::request_airdrop(state, params),
        _ => Err(RpcError::method_not_found()),
    }
}

fn with_config<C: DeserializeOwned + Default>(
    params: &Value,
    i: usize,
    f: impl FnOnce(C, &Chain) -> Result<Value, RpcError>,
    chain: &parking_lot::Mutex<Chain>,
) -> Result<Value, RpcError> {
    let cfg: C = optional(params, i)?.unwrap_or_default();
    let ch = chain.lock();
    f(cfg, &ch)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountConfig {
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    data_slice: Option<DataSlice>,
    #[serde(flatten)]
    commitment: CommitmentConfig,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenAccountsFilter {
    #[serde(default)]
    mint: Option<String>,
    #[serde(default)]
    program_id: Option<String>,
}

fn token_accounts_by_owner(state: &RpcState, params: &Value) -> Result<Value, RpcError> {
    let owner = encoding::address(&required::<String>(params, 0)?)?;
    let filter: TokenAccountsFilter = required(params, 1)?;
    let cfg: AccountConfig = optional(params, 2)?.unwrap_or_default();
    let enc = cfg.encoding.clone().unwrap_or_else(|| "binary".into());
    encoding::check_account_encoding(&enc, cfg.data_slice)?;
    let (mint, program) = match (&filter.mint, &filter.program_id) {
        (Some(m), None) => (Some(encoding::address(m)?), None),
        (None, Some(p)) => {
            let p = encoding::address(p)?;
            if TokenProgramKind::from_program_id(&p).is_none() {
                return Err(RpcError::invalid_param("unrecognized Token program id"));
            }
            (None, Some(p))
        }
        _ => {
            return Err(RpcError::invalid_params(
                "expected exactly one of `mint` or `programId`",
            ))
        }
    };
    let ch = chain_lock(state);
    cfg.commitment.check(&ch)?;
    if let Some(m) = &mint {
        // Real RPC requires the mint to exist and be owned by a token program.
        let ok = ch
            .account(m)
            .is_some_and(|a| TokenProgramKind::from_program_id(&a.owner).is_some());
        if !ok {
            return Err(RpcError::invalid_param("could not find mint"));
        }
    }
    let found = ch.scan(|_, acc_owner, data| {
        TokenProgramKind::from_program_id(acc_owner).is_some()
            && program.is_none_or(|p| *acc_owner == p)
            && tokens::unpack_account(data)
                .is_some_and(|t| t.owner == owner && mint.is_none_or(|m| t.mint == m))
    });
    let list = found
        .iter()
        .map(|(k, a)| {
            Ok(json!({
                "pubkey": k.to_string(),
                "account": encoding::encode_account(&ch, a, &enc, cfg.data_slice)?,
            }))
        })
        .collect::<Result<Vec<_>, RpcError>>()?;
    Ok(with_context(&ch, Value::Array(list)))
}

fn chain_lock(state: &RpcState) -> parking_lot::MutexGuard<'_, Chain> {
    state.chain.lock()
}
