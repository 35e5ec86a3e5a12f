//! Wire types of the Solana JSON-RPC responses we use, and the typed results we return.

use super::error::RpcError;
use base64::Engine as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use solana_address::Address;

/// A JSON-RPC 2.0 response envelope.
#[derive(Debug, Deserialize)]
pub(crate) struct RpcResponse<T> {
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(default = "none")]
    pub result: Option<T>,
    #[serde(default)]
    pub error: Option<RpcErrorObject>,
}

fn none<T>() -> Option<T> {
    None
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
