//! Pure helpers for the checks that need cluster data, and for signing as the fee payer.
//!
//! The facilitator fetches the data over RPC (`solana_rpc`) and hands it to these functions, so
//! the decision logic stays pure and testable:
//!
//! * [`blockhash_has_life`]: the payment's blockhash must stay valid long enough for the
//!   upstream call *and* settlement (`security.md` §1.2 G). [`blocks_for`] converts a duration
//!   into blocks at the nominal 400 ms slot time, rounding up.
//! * [`simulation_result`]: a `simulateTransaction` (sigVerify off, since slot 0 is unsigned) with
//!   any `err` rejects the payment.
//! * [`sign_as_fee_payer`]: fill signature slot 0 and produce the wire bytes to send; every other
//!   byte (client signatures, message) stays exactly as received.

use super::decode::DecodedTransaction;
use super::error::VerifyError;
use solana_signature::Signature;
use solana_signer::Signer;
use std::time::Duration;

/// Nominal slot time used to turn durations into block counts.
pub const NOMINAL_SLOT: Duration = Duration::from_millis(400);

/// Blocks needed to cover `d` at [`NOMINAL_SLOT`], rounded up.
pub fn blocks_for(d: Duration) -> u64 {
    let slot = NOMINAL_SLOT.as_millis();
    u64::try_from(d.as_millis().div_ceil(slot)).unwrap_or(u64::MAX)
}

/// Accept when more than `min_remaining_blocks` blocks of validity are left, i.e.
/// `last_valid_block_height - current_block_height >= min_remaining_blocks` (and not expired).
pub fn blockhash_has_life(
    last_valid_block_height: u64,
    current_block_height: u64,
    min_remaining_blocks: u64,
) -> Result<(), VerifyError> {
    match last_valid_block_height.checked_sub(current_block_height) {
        Some(left) if left >= min_remaining_blocks => Ok(()),
        _ => Err(VerifyError::BlockhashExpired {
            last_valid_block_height,
            current_block_height,
            min_remaining_blocks,
        }),
    }
}

/// Map a simulation outcome to a verdict: any `err` rejects, naming the error and the last log
/// lines (at most 5, each cut to 200 characters) in the message.
pub fn simulation_result(
    err: Option<&serde_json::Value>,
    logs: &[String],
) -> Result<(), VerifyError> {
    let Some(err) = err.filter(|e| !e.is_null()) else {
        return Ok(());
    };
    let mut msg = err.to_string();
    msg.truncate(msg.floor_char_boundary_compat(300));
    let tail = logs.len().saturating_sub(5);
    for line in logs.get(tail..).unwrap_or(&[]) {
        msg.push_str(" | ");
        let cut = line.as_str().floor_char_boundary_compat(200);
        msg.push_str(line.get(..cut).unwrap_or(""));
    }
    Err(VerifyError::SimulationFailed(msg))
}

/// Sign the message as the fee payer (slot 0) and return the wire bytes and the signature
/// (which is also the transaction id). Fails if `signer` is not account 0.
pub fn sign_as_fee_payer<S: Signer + ?Sized>(
    tx: &DecodedTransaction,
    signer: &S,
) -> Result<(Vec<u8>, Signature), VerifyError> {
    let pubkey = signer
        .try_pubkey()
        .map_err(|_| VerifyError::WrongSigningKey)?;
    if tx.account_keys().first() != Some(&pubkey) {
        return Err(VerifyError::WrongSigningKey);
    }
    let signature = signer
        .try_sign_message(tx.message_bytes())
        .map_err(|_| VerifyError::WrongSigningKey)?;
    let sig_count = tx.signatures().len();
    let slot0 = tx
        .message_offset()
        .checked_sub(sig_count.saturating_mul(64))
        .ok_or(VerifyError::Decode("signature section"))?;
    let mut wire = tx.wire_bytes().to_vec();
    wire.get_mut(slot0..slot0 + 64)
        .ok_or(VerifyError::Decode("signature section"))?
        .copy_from_slice(signature.as_ref());
    Ok((wire, signature))
}

/// `str::floor_char_boundary` is unstable on our MSRV; this is the same idea.
trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, index: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, index: usize) -> usize {
        if index >= self.len() {
            return self.len();
        }
        (0..=index)
            .rev()
            .find(|&i| self.is_char_boundary(i))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_for_rounds_up() {
        assert_eq!(blocks_for(Duration::ZERO), 0);
        assert_eq!(blocks_for(Duration::from_millis(1)), 1);
        assert_eq!(blocks_for(Duration::from_secs(2)), 5);
        assert_eq!(blocks_for(Duration::from_millis(2001)), 6);
    }

    #[test]
    fn blockhash_life() {
        assert!(blockhash_has_life(1000, 900, 100).is_ok());
        assert!(blockhash_has_life(1000, 901, 100).is_err());
        let e = blockhash_has_life(1000, 1001, 0).unwrap_err();
        assert_eq!(e.reason(), "invalid_exact_svm_payload_blockhash_expired");
        assert!(blockhash_has_life(1000, 1000, 0).is_ok());
    }

    #[test]
    fn simulation_verdict() {
        assert!(simulation_result(None, &[]).is_ok());
        assert!(simulation_result(Some(&serde_json::Value::Null), &[]).is_ok());
        let err = serde_json::json!({"InstructionError": [2, {"Custom": 1}]});
        let logs: Vec<String> = (0..10).map(|i| format!("log {i} é")).collect();
        let e = simulation_result(Some(&err), &logs).unwrap_err();
        assert_eq!(
            e.reason(),
            "invalid_exact_svm_transaction_simulation_failed"
        );
        let text = e.to_string();
        assert!(
            text.contains("InstructionError") && text.contains("log 9") && !text.contains("log 4")
        );
    }

    #[test]
    fn floor_boundary() {
        assert_eq!("héllo".floor_char_boundary_compat(2), 1);
        assert_eq!("abc".floor_char_boundary_compat(10), 3);
    }
}
