//! Wire types of the Solana JSON-RPC responses we use, and the typed results we return.

use super::error::RpcError;
use base64::Engine as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use solana_address::Address;

/// A JSON-RPC 2.0 response envelope.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub(crate) struct RpcResponse<T> {
    #[serde(default)]
    pub id: Option<Value>,
    /// Present (`Some`) whenever the member is, even as `null`: a `T` that is an `Option`
    /// reads `"result": null` (e.g. `getTransaction` of an unknown signature) as `Some(None)`.
    #[serde(default = "none", deserialize_with = "present")]
    pub result: Option<T>,
    #[serde(default)]
    pub error: Option<RpcErrorObject>,
}

fn none<T>() -> Option<T> {
    None
}

fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// The JSON-RPC `error` member.
#[derive(Debug, Deserialize)]
pub(crate) struct RpcErrorObject {
    pub code: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub data: Option<Value>,
}

/// `{"context": {...}, "value": ...}`; the context is ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct WithContext<T> {
    pub value: T,
}

/// An account as returned with `encoding: "base64"`.
#[derive(Debug, Deserialize)]
pub(crate) struct RpcAccount {
    pub data: (String, String),
    pub owner: String,
    pub lamports: u64,
}

impl RpcAccount {
    pub(crate) fn into_account_data(self) -> Result<AccountData, RpcError> {
        if self.data.1 != "base64" {
            return Err(RpcError::Decode(format!(
                "account encoding {}",
                self.data.1
            )));
        }
        let data = base64::engine::general_purpose::STANDARD
            .decode(self.data.0.as_bytes())
            .map_err(|e| RpcError::Decode(e.to_string()))?;
        Ok(AccountData {
            owner: Address::new_from_array(decode_b58_32(&self.owner)?),
            lamports: self.lamports,
            data,
        })
    }
}

/// An account's owner, balance and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountData {
    /// Owner program.
    pub owner: Address,
    /// Balance in lamports.
    pub lamports: u64,
    /// Raw data.
    pub data: Vec<u8>,
}

/// Result of `simulateTransaction`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulationResult {
    /// The transaction error, `None` on success.
    #[serde(default)]
    pub err: Option<Value>,
    /// Program logs (empty when the node sent none).
    #[serde(default, deserialize_with = "null_as_default")]
    pub logs: Vec<String>,
    /// Compute units consumed.
    #[serde(default)]
    pub units_consumed: Option<u64>,
}

/// One entry of `getSignatureStatuses`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureStatus {
    /// Slot the transaction was processed in.
    pub slot: u64,
    /// The transaction error, `None` on success.
    #[serde(default)]
    pub err: Option<Value>,
    /// `processed`, `confirmed` or `finalized`.
    #[serde(default)]
    pub confirmation_status: Option<String>,
}

impl SignatureStatus {
    /// `true` once the status is `confirmed` or `finalized`.
    pub fn is_confirmed(&self) -> bool {
        matches!(
            self.confirmation_status.as_deref(),
            Some("confirmed") | Some("finalized")
        )
    }
}

/// One entry of `getSignaturesForAddress`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureInfo {
    /// The transaction's signature (base58).
    pub signature: String,
    /// Slot it landed in.
    pub slot: u64,
    /// The transaction error, `None` on success.
    #[serde(default)]
    pub err: Option<Value>,
    /// Its memos, as the node formats them.
    #[serde(default)]
    pub memo: Option<String>,
    /// Unix seconds, when known.
    #[serde(default)]
    pub block_time: Option<i64>,
    /// `processed`, `confirmed` or `finalized`.
    #[serde(default)]
    pub confirmation_status: Option<String>,
}

/// What `getTransaction` (`encoding: json`) says about a landed transaction, reduced to what
/// the chain audit reads: its error, fee, accounts and token balances.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionInfo {
    /// Slot it landed in.
    pub slot: u64,
    /// Unix seconds, when known.
    #[serde(default)]
    pub block_time: Option<i64>,
    /// Status metadata.
    pub meta: Option<TransactionMeta>,
    /// The transaction (only its account keys are read).
    pub transaction: EncodedTransaction,
}

/// `meta` of [`TransactionInfo`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionMeta {
    /// The transaction error, `None` on success.
    #[serde(default)]
    pub err: Option<Value>,
    /// Lamports the fee payer paid.
    #[serde(default)]
    pub fee: u64,
    /// Token balances before.
    #[serde(default, deserialize_with = "null_as_default")]
    pub pre_token_balances: Vec<TokenBalance>,
    /// Token balances after.
    #[serde(default, deserialize_with = "null_as_default")]
    pub post_token_balances: Vec<TokenBalance>,
    /// Accounts loaded from lookup tables (v0 messages).
    #[serde(default)]
    pub loaded_addresses: Option<LoadedAddresses>,
}

/// `meta.loadedAddresses`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct LoadedAddresses {
    /// Writable, in order.
    #[serde(default)]
    pub writable: Vec<String>,
    /// Read-only, in order.
    #[serde(default)]
    pub readonly: Vec<String>,
}

/// One entry of `preTokenBalances` / `postTokenBalances`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenBalance {
    /// Index into the transaction's accounts (static keys, then loaded writable, readonly).
    pub account_index: usize,
    /// The mint.
    pub mint: String,
    /// The token account's owner.
    #[serde(default)]
    pub owner: Option<String>,
    /// The token program.
    #[serde(default)]
    pub program_id: Option<String>,
    /// The balance.
    pub ui_token_amount: TokenAmount,
}

/// `uiTokenAmount`: only the exact atomic amount is read.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TokenAmount {
    /// Atomic units, as a decimal string.
    pub amount: String,
}

/// `transaction` in `json` encoding.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EncodedTransaction {
    /// The message.
    pub message: EncodedMessage,
}

/// `transaction.message` in `json` encoding.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncodedMessage {
    /// Static account keys, base58.
    pub account_keys: Vec<String>,
}

impl TransactionInfo {
    /// Every account of the transaction in `accountIndex` order: the static keys, then the
    /// loaded writable and read-only ones.
    pub fn account_keys(&self) -> Vec<&str> {
        let loaded = self.meta.as_ref().and_then(|m| m.loaded_addresses.as_ref());
        self.transaction
            .message
            .account_keys
            .iter()
            .chain(loaded.into_iter().flat_map(|l| l.writable.iter()))
            .chain(loaded.into_iter().flat_map(|l| l.readonly.iter()))
            .map(String::as_str)
            .collect()
    }

    /// How much `account`'s `mint` balance changed (post − pre; an account absent from a
    /// side counts 0 there). `None` when an amount is not a number.
    pub fn token_delta(&self, account: &str, mint: &str) -> Option<i128> {
        let keys = self.account_keys();
        let meta = self.meta.as_ref()?;
        let sum = |list: &[TokenBalance]| -> Option<i128> {
            list.iter()
                .filter(|b| b.mint == mint && keys.get(b.account_index) == Some(&account))
                .map(|b| b.ui_token_amount.amount.parse::<i128>().ok())
                .sum()
        };
        Some(sum(&meta.post_token_balances)? - sum(&meta.pre_token_balances)?)
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A base58 string that must decode to exactly 32 bytes (an address or a blockhash).
pub(crate) fn decode_b58_32(s: &str) -> Result<[u8; 32], RpcError> {
    let mut out = [0u8; 32];
    let n = bs58::decode(s)
        .onto(&mut out)
        .map_err(|e| RpcError::Decode(e.to_string()))?;
    if n != 32 {
        return Err(RpcError::Decode("expected 32 bytes".into()));
    }
    Ok(out)
}
