//! Fee arithmetic, mirroring what LiteSVM (and a real bank) charge: 5000 lamports per
//! signature plus the prioritization fee requested through the Compute Budget program.

use solana_message::VersionedMessage;

/// Base fee, as on mainnet and in LiteSVM's default fee structure.
pub(super) const LAMPORTS_PER_SIGNATURE: u64 = 5_000;
/// Default compute-unit limit per non-compute-budget instruction when none is requested.
const DEFAULT_CU_PER_INSTRUCTION: u64 = 200_000;
/// Maximum compute-unit limit of a transaction.
const MAX_CU_LIMIT: u64 = 1_400_000;

/// Micro-lamports per compute unit requested by a `SetComputeUnitPrice` instruction, else 0.
pub(super) fn compute_unit_price(msg: &VersionedMessage) -> u64 {
    compute_budget(msg).1
}

/// (compute-unit limit, compute-unit price) requested by the message, with agave's default
/// limit of 200k CU per non-compute-budget instruction (capped at 1.4M) when unset.
pub(super) fn compute_budget(msg: &VersionedMessage) -> (u64, u64) {
    let keys = msg.static_account_keys();
    let (mut limit, mut price, mut others) = (None, 0u64, 0u64);
    for ix in msg.instructions() {
        let is_cb = keys
            .get(ix.program_id_index as usize)
            .is_some_and(solana_compute_budget_interface::check_id);
        if !is_cb {
            others += 1;
            continue;
        }
        match ix.data.split_first() {
            Some((2, rest)) if rest.len() >= 4 => {
                limit = rest[..4]
                    .try_into()
                    .ok()
                    .map(u32::from_le_bytes)
                    .map(u64::from)
            }
            Some((3, rest)) if rest.len() >= 8 => {
                price = rest[..8].try_into().map(u64::from_le_bytes).unwrap_or(0)
            }
            _ => {}
        }
    }
    let limit = limit
        .unwrap_or(others * DEFAULT_CU_PER_INSTRUCTION)
        .min(MAX_CU_LIMIT);
    (limit, price)
}

/// Fee the ledger charges for `msg`: 5000 lamports per signature plus the prioritization fee
/// (price × limit / 1e6, rounded up).
pub(super) fn fee_for(msg: &VersionedMessage) -> u64 {
    let sigs = u64::from(msg.header().num_required_signatures);
    let (limit, price) = compute_budget(msg);
    let prio = (u128::from(price) * u128::from(limit)).div_ceil(1_000_000);
    sigs * LAMPORTS_PER_SIGNATURE + u64::try_from(prio).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use solana_compute_budget_interface::ComputeBudgetInstruction as Cb;
    use solana_hash::Hash;
    use solana_message::Message;

    fn msg(ixs: &[solana_instruction::Instruction]) -> VersionedMessage {
        let payer = solana_address::Address::new_unique();
        VersionedMessage::Legacy(Message::new_with_blockhash(
            ixs,
            Some(&payer),
            &Hash::default(),
        ))
    }

    #[test]
    fn base_fee_per_signature() {
        assert_eq!(fee_for(&msg(&[])), 5_000);
    }

    #[test]
    fn prioritization_fee_rounds_up() {
        let m = msg(&[Cb::set_compute_unit_limit(3), Cb::set_compute_unit_price(1)]);
        assert_eq!(compute_budget(&m), (3, 1));
        assert_eq!(fee_for(&m), 5_001);
        // Price without a limit uses the default per-instruction limit (no other ix → 0 CU).
        let m = msg(&[Cb::set_compute_unit_price(1_000_000)]);
        assert_eq!(fee_for(&m), 5_000);
    }
}
