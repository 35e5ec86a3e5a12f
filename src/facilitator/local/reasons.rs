//! Reason strings this facilitator answers besides the [`crate::svm::VerifyError`] ones.
//!
//! Core spec strings where one fits (`invalid_network`, `invalid_payload`, …), the TypeScript
//! NEWER `invalid_exact_svm_*` strings otherwise, and one of our own:
//! [`SETTLEMENT_EXPIRED`] (broadcast, then the blockhash expired without the transaction
//! landing: definitely not paid, safe to retry with a new payment).

pub use crate::facilitator::SETTLEMENT_PENDING;

pub use crate::x402::reasons::*;
/// The payer's token account holds less than the amount (simulation or preflight said so).
pub const INSUFFICIENT_FUNDS: &str = "insufficient_funds";
/// The blockhash is expired or has too little life left (nothing was broadcast).
pub const BLOCKHASH_EXPIRED: &str = "invalid_exact_svm_payload_blockhash_expired";
/// Simulation (or the send's preflight) failed for another reason.
pub const SIMULATION_FAILED: &str = "invalid_exact_svm_transaction_simulation_failed";
/// The node refused the transaction, or it landed with an error.
pub const TRANSACTION_FAILED: &str = "invalid_exact_svm_transaction_failed";
/// Broadcast, and the blockhash expired without the transaction landing.
pub const SETTLEMENT_EXPIRED: &str = "invalid_exact_svm_settlement_expired";
pub use crate::facilitator::DUPLICATE_SETTLEMENT;
/// Settlement could not start (Solana RPC or the lock store unreachable); nothing was sent.
pub const UNEXPECTED_SETTLE_ERROR: &str = "unexpected_settle_error";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::svm::VerifyError;
    use solana_address::Address;

    #[test]
    fn strings_agree_with_the_svm_verifier() {
        assert_eq!(
            VerifyError::FeePayerNotManaged(Address::default()).reason(),
            FEE_PAYER_NOT_MANAGED
        );
        assert_eq!(
            VerifyError::SimulationFailed(String::new()).reason(),
            SIMULATION_FAILED
        );
        let expired = VerifyError::BlockhashExpired {
            last_valid_block_height: 0,
            current_block_height: 0,
            min_remaining_blocks: 0,
        };
        assert_eq!(expired.reason(), BLOCKHASH_EXPIRED);
    }
}
