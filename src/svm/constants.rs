//! Program ids, instruction discriminators and default limits for x402 `exact` on Solana.
//!
//! Every value here comes from `docs/x402-protocol.md` §4.11 (or the Solana wire format).
//! Defaults are never looser than the spec:
//!
//! * [`DEFAULT_MAX_COMPUTE_UNIT_PRICE`] = 50 000 µlamports/CU — the spec's smart-wallet default
//!   and 100× tighter than the static-path hard maximum of 5 000 000
//!   ([`SPEC_MAX_COMPUTE_UNIT_PRICE`]). The official client sends 1 µlamport/CU.
//! * [`DEFAULT_MAX_COMPUTE_UNIT_LIMIT`] = 200 000 CU — half of the spec's smart-wallet default
//!   (400 000). The official client asks for 20 000 CU, but wallets (Phantom) may re-estimate the
//!   limit and append Lighthouse assertions, so a 20 k cap would reject honest payments. With
//!   both defaults the sponsor's worst-case priority fee is 200 000 × 50 000 / 10⁶ =
//!   10 000 lamports, the same as the base fee of a two-signature transaction.

use solana_address::Address;

/// SPL Token program.
pub const SPL_TOKEN_PROGRAM: Address =
    Address::from_str_const("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
/// Token-2022 program.
pub const TOKEN_2022_PROGRAM: Address =
    Address::from_str_const("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb");
/// Associated Token Account program.
pub const ASSOCIATED_TOKEN_PROGRAM: Address =
    Address::from_str_const("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL");
/// Compute Budget program.
pub const COMPUTE_BUDGET_PROGRAM: Address =
    Address::from_str_const("ComputeBudget111111111111111111111111111111");
/// SPL Memo program (v2).
pub const MEMO_PROGRAM: Address =
    Address::from_str_const("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr");
/// Lighthouse (wallet-injected assertion) program.
pub const LIGHTHOUSE_PROGRAM: Address =
    Address::from_str_const("L2TExMFKdjpN9kozasaurPirfHy9P8sbXoAN1qA3S95");
/// System program.
pub const SYSTEM_PROGRAM: Address = Address::from_str_const("11111111111111111111111111111111");

/// ComputeBudget `SetComputeUnitLimit` discriminator (data = `[2, u32 LE]`).
pub const SET_COMPUTE_UNIT_LIMIT_DISCRIMINATOR: u8 = 2;
/// ComputeBudget `SetComputeUnitPrice` discriminator (data = `[3, u64 LE]`).
pub const SET_COMPUTE_UNIT_PRICE_DISCRIMINATOR: u8 = 3;
/// Exact data length of `SetComputeUnitLimit`.
pub const SET_COMPUTE_UNIT_LIMIT_LEN: usize = 5;
/// Exact data length of `SetComputeUnitPrice`.
pub const SET_COMPUTE_UNIT_PRICE_LEN: usize = 9;
/// Token `TransferChecked` discriminator (data = `[12, amount u64 LE, decimals u8]`).
pub const TRANSFER_CHECKED_DISCRIMINATOR: u8 = 12;
/// Exact data length of `TransferChecked`.
pub const TRANSFER_CHECKED_LEN: usize = 10;
/// Exact account count of a single-signer `TransferChecked`: source, mint, destination, authority.
pub const TRANSFER_CHECKED_ACCOUNTS: usize = 4;
/// System program `AdvanceNonceAccount` instruction index (u32 LE), the durable-nonce marker.
pub const SYSTEM_ADVANCE_NONCE_ACCOUNT: u32 = 4;

/// Spec hard maximum for the unit price on the static path (5 lamports/CU).
pub const SPEC_MAX_COMPUTE_UNIT_PRICE: u64 = 5_000_000;
/// Default cap on the unit price, in µlamports per CU (see the module doc).
pub const DEFAULT_MAX_COMPUTE_UNIT_PRICE: u64 = 50_000;
/// Spec smart-wallet default cap on the unit limit.
pub const SPEC_MAX_COMPUTE_UNIT_LIMIT: u32 = 400_000;
/// Default cap on the unit limit (see the module doc).
pub const DEFAULT_MAX_COMPUTE_UNIT_LIMIT: u32 = 200_000;

/// Maximum memo length in bytes (spec `MAX_MEMO_BYTES`).
pub const MAX_MEMO_BYTES: usize = 256;
/// Maximum serialized transaction size (the Solana packet data size).
pub const MAX_TRANSACTION_BYTES: usize = 1232;
/// Maximum base64 length of a transaction: `4 * ceil(1232 / 3)`.
pub const MAX_TRANSACTION_BASE64_LEN: usize = MAX_TRANSACTION_BYTES.div_ceil(3) * 4;
/// Minimum instruction count: limit, price, transfer.
pub const MIN_INSTRUCTIONS: usize = 3;
/// Maximum instruction count (spec NEWER: 3..=7).
pub const MAX_INSTRUCTIONS: usize = 7;
/// Required signatures: the fee payer (slot 0) and the client (slot 1), nothing else.
pub const REQUIRED_SIGNATURES: usize = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_cap_matches_packet_size() {
        assert_eq!(MAX_TRANSACTION_BASE64_LEN, 1644);
    }

    #[test]
    fn program_ids_match_the_interface_crates() {
        assert_eq!(SPL_TOKEN_PROGRAM, spl_token_interface::id());
        assert_eq!(TOKEN_2022_PROGRAM, spl_token_2022_interface::id());
        assert_eq!(
            ASSOCIATED_TOKEN_PROGRAM,
            spl_associated_token_account_interface::program::id()
        );
        assert_eq!(
            COMPUTE_BUDGET_PROGRAM,
            solana_compute_budget_interface::id()
        );
    }
}
