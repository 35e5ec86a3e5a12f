//! Positional-parameter and commitment helpers shared by every method file (`methods`, `tx`),
//! kept apart so that the method files depend on them and never on each other.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use solana_signature::Signature;

use super::{RpcError, API_VERSION};
use crate::localnet::chain::Chain;

/// `{"context": {"apiVersion", "slot"}, "value": ...}`.
pub(super) fn with_context(ch: &Chain, value: Value) -> Value {
    json!({"context": {"apiVersion": API_VERSION, "slot": ch.slot}, "value": value})
}

/// Positional param `i`, absent or `null` → `None`.
pub(super) fn optional<T: DeserializeOwned>(
    params: &Value,
    i: usize,
) -> Result<Option<T>, RpcError> {
    match params.get(i) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(RpcError::invalid_params),
    }
}

/// Positional param `i`, which must be present.
pub(super) fn required<T: DeserializeOwned>(params: &Value, i: usize) -> Result<T, RpcError> {
    optional(params, i)?
        .ok_or_else(|| RpcError::invalid_params("invalid length 0, expected at least 1 param"))
}

/// A base58 transaction signature parameter.
pub(super) fn sig_param(s: &str) -> Result<Signature, RpcError> {
    s.parse::<Signature>()
        .map_err(|e| RpcError::invalid_param(format!("{e:?}")))
}

/// `commitment` / `minContextSlot`. Commitment is accepted and ignored: a single-node ledger
/// has one state, and transactions are reported `confirmed` as soon as they land.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CommitmentConfig {
    #[serde(default)]
    pub commitment: Option<String>,
    #[serde(default)]
    pub min_context_slot: Option<u64>,
}

impl CommitmentConfig {
    pub(super) fn check(&self, ch: &Chain) -> Result<(), RpcError> {
        if let Some(c) = &self.commitment {
            if !matches!(
                c.as_str(),
                "processed"
                    | "confirmed"
                    | "finalized"
                    | "recent"
                    | "single"
                    | "singleGossip"
                    | "root"
                    | "max"
            ) {
                return Err(RpcError::invalid_params(format!("unknown variant `{c}`")));
            }
        }
        match self.min_context_slot {
            Some(min) if min > ch.slot => {
                let mut e = RpcError::new(
                    super::MIN_CONTEXT_SLOT_NOT_REACHED,
                    "Minimum context slot has not been reached",
                );
                e.data = Some(json!({"contextSlot": ch.slot}));
                Err(e)
            }
            _ => Ok(()),
        }
    }
}
