//! Rejection reasons of the local `exact` SVM verifier.
//!
//! Every variant maps to one machine-readable reason ([`VerifyError::reason`]) and a human
//! message (`Display`). Reasons are the TypeScript NEWER strings of `x402-protocol.md` §4.10
//! wherever one exists. Rules the reference does not have get our own string, all listed here:
//!
//! | variant | reason |
//! | --- | --- |
//! | `AddressLookupTables` | `invalid_exact_svm_payload_address_lookup_tables_unsupported` |
//! | `DuplicateAccountKeys` | `invalid_exact_svm_payload_duplicate_account_keys` |
//! | `DurableNonce` | `invalid_exact_svm_payload_durable_nonce_not_allowed` |
//! | `MissingSigners` | `invalid_exact_svm_payload_missing_signers` |
//! | `FeePayerInInstructionAccounts` | `invalid_exact_svm_payload_transaction_fee_payer_included_in_instruction_accounts` (v1 legacy string) |
//! | `FeePayerInvokedAsProgram` | `invalid_exact_svm_payload_fee_payer_invoked_as_program` |
//! | `AuthorityNotClientSigner` | `invalid_exact_svm_payload_transfer_authority_not_signer` |
//! | `TokenProgramMismatch` | `invalid_exact_svm_payload_token_program_mismatch` |
//! | `MintNotAllowed` | `invalid_exact_svm_payload_mint_not_allowed` |
//! | `DecimalsMismatch` | `invalid_exact_svm_payload_decimals_mismatch` |
//! | `InvalidMemo` | `invalid_exact_svm_payload_memo_invalid` |
//! | `MintInvalidOwner` | `invalid_exact_svm_mint_invalid_owner` |
//! | `MintInvalid` | `invalid_exact_svm_mint_invalid` |
//! | `MintExtensionNotAllowed` | `invalid_exact_svm_mint_extension_not_allowed` |
//! | `BlockhashExpired` | `invalid_exact_svm_payload_blockhash_expired` |
//! | `WrongSigningKey` | `invalid_exact_svm_invalid_fee_payer` (official string) |
//!
//! Decode failures of any kind (size, base64, bincode, sanitize, trailing or non-canonical bytes)
//! share `invalid_exact_svm_payload_transaction_could_not_be_decoded`; the message says which.

use solana_address::Address;

/// Why a payment transaction (or the mint it pays in) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The base64 string, bincode bytes or message structure is malformed.
    #[error("transaction could not be decoded: {0}")]
    Decode(&'static str),
    /// The message version is neither legacy nor v0.
    #[error("unsupported transaction version {0}")]
    UnsupportedVersion(u8),
    /// A v0 message uses address lookup tables, which we do not resolve (fail closed).
    #[error("address lookup tables are not supported")]
    AddressLookupTables,
    /// The same key appears twice among the static account keys.
    #[error("duplicate account keys in the message")]
    DuplicateAccountKeys,
    /// The transaction advances a durable nonce (it would never expire).
    #[error("durable-nonce transactions are not accepted")]
    DurableNonce,
    /// `extra.feePayer` is not one of the keys this facilitator signs with.
    #[error("fee payer {0} is not managed by this facilitator")]
    FeePayerNotManaged(Address),
    /// Static account 0 is not `extra.feePayer`.
    #[error("account 0 is {found}, expected the fee payer {expected}")]
    FeePayerMismatch {
        /// `extra.feePayer`.
        expected: Address,
        /// Static account 0 of the message.
        found: Address,
    },
    /// More than two required signers.
    #[error("{0} required signers, only the fee payer and the client are allowed")]
    ExcessiveSigners(u8),
    /// Fewer than two required signers.
    #[error("{0} required signers, need the fee payer and the client")]
    MissingSigners(u8),
    /// A required signature (other than the fee payer's) is missing, non-canonical or wrong.
    #[error("signature {index} is missing or invalid")]
    SignatureInvalid {
        /// Signature slot.
        index: usize,
    },
    /// Instruction count outside 3..=7.
    #[error("{0} instructions, expected between 3 and 7")]
    InstructionsLength(usize),
    /// Instruction 0 is not a well-formed `SetComputeUnitLimit`.
    #[error("instruction 0 must be SetComputeUnitLimit")]
    ComputeLimitInstruction,
    /// The requested unit limit exceeds the policy cap.
    #[error("compute unit limit {requested} exceeds the cap {max}")]
    ComputeLimitTooHigh {
        /// Units requested.
        requested: u32,
        /// Policy cap.
        max: u32,
    },
    /// Instruction 1 is not a well-formed `SetComputeUnitPrice`.
    #[error("instruction 1 must be SetComputeUnitPrice")]
    ComputePriceInstruction,
    /// The unit price exceeds the policy cap.
    #[error("compute unit price {requested} µlamports exceeds the cap {max}")]
    ComputePriceTooHigh {
        /// µlamports per CU requested.
        requested: u64,
        /// Policy cap.
        max: u64,
    },
    /// Instruction 2 is not a well-formed single-signer `TransferChecked`.
    #[error("instruction 2 must be a TransferChecked of SPL Token or Token-2022")]
    NoTransferInstruction,
    /// An instruction after the transfer is neither Memo nor Lighthouse (position is 0-based).
    #[error("instruction {0} is neither Memo nor Lighthouse")]
    UnknownInstruction(usize),
    /// The fee payer key is listed in an instruction's accounts.
    #[error("the fee payer appears in the accounts of instruction {0}")]
    FeePayerInInstructionAccounts(usize),
    /// The fee payer key is an instruction's program id.
    #[error("the fee payer is invoked as a program by instruction {0}")]
    FeePayerInvokedAsProgram(usize),
    /// The fee payer (or another key we sign with) is the transfer authority or source.
    #[error("the fee payer would be transferring funds")]
    FeePayerTransferringFunds,
    /// The transfer authority is not the client signer (account 1).
    #[error("the transfer authority is not the client signer")]
    AuthorityNotClientSigner,
    /// The transfer's token program differs from the mint's owner program.
    #[error("transfer uses token program {found}, the mint is owned by {expected}")]
    TokenProgramMismatch {
        /// Owner program of the mint.
        expected: Address,
        /// Program of the transfer instruction.
        found: Address,
    },
    /// The transferred mint is not the required asset.
    #[error("mint {found} does not match the asset {expected}")]
    MintMismatch {
        /// `requirements.asset`.
        expected: Address,
        /// Mint of the transfer (or of the supplied mint info).
        found: Address,
    },
    /// The asset is not on the allow-list.
    #[error("mint {0} is not accepted")]
    MintNotAllowed(Address),
    /// `TransferChecked.decimals` differs from the mint's decimals.
    #[error("transfer decimals {found}, the mint has {expected}")]
    DecimalsMismatch {
        /// The mint's decimals.
        expected: u8,
        /// Decimals in the instruction.
        found: u8,
    },
    /// The destination is not ATA(payTo, asset, token program).
    #[error("destination {found} is not the associated token account {expected} of payTo")]
    RecipientMismatch {
        /// Derived ATA.
        expected: Address,
        /// Destination of the transfer.
        found: Address,
    },
    /// The amount differs from the price.
    #[error("amount {found} does not equal the price {expected}")]
    AmountMismatch {
        /// `requirements.amount`.
        expected: u64,
        /// Amount in the transfer.
        found: u64,
    },
    /// Not exactly one Memo instruction.
    #[error("{0} memo instructions, expected exactly one")]
    MemoCount(usize),
    /// The memo text differs from `extra.memo`.
    #[error("memo does not match the required memo")]
    MemoMismatch,
    /// A Memo instruction has accounts, is empty, too long or not UTF-8.
    #[error("memo instruction {0} is malformed (accounts, empty, over 256 bytes or not UTF-8)")]
    InvalidMemo(usize),
    /// The mint account is not owned by SPL Token or Token-2022.
    #[error("mint account owner {0} is not a token program")]
    MintInvalidOwner(Address),
    /// The mint account data is not an initialized mint.
    #[error("mint account is not a valid initialized mint: {0}")]
    MintInvalid(&'static str),
    /// A Token-2022 mint extension that changes what the recipient gets or what runs.
    #[error("mint extension {0} is not allowed")]
    MintExtensionNotAllowed(&'static str),
    /// The blockhash expires too soon (or already expired).
    #[error("blockhash valid until block {last_valid_block_height}, current {current_block_height}, need {min_remaining_blocks} blocks left")]
    BlockhashExpired {
        /// Last block height at which the blockhash is valid.
        last_valid_block_height: u64,
        /// Current block height.
        current_block_height: u64,
        /// Blocks of life the caller needs.
        min_remaining_blocks: u64,
    },
    /// `simulateTransaction` returned an error.
    #[error("simulation failed: {0}")]
    SimulationFailed(String),
    /// The key offered to sign is not static account 0.
    #[error("signing key does not match account 0")]
    WrongSigningKey,
}

impl VerifyError {
    /// The machine-readable x402 reason string (`errorReason` / `invalidReason`).
    pub fn reason(&self) -> &'static str {
        use VerifyError::*;
        match self {
            Decode(_) => "invalid_exact_svm_payload_transaction_could_not_be_decoded",
            UnsupportedVersion(_) => "unsupported_transaction_version",
            AddressLookupTables => "invalid_exact_svm_payload_address_lookup_tables_unsupported",
            DuplicateAccountKeys => "invalid_exact_svm_payload_duplicate_account_keys",
            DurableNonce => "invalid_exact_svm_payload_durable_nonce_not_allowed",
            FeePayerNotManaged(_) => "invalid_exact_svm_fee_payer_not_managed_by_facilitator",
            FeePayerMismatch { .. } => "invalid_exact_svm_fee_payer_mismatch",
            ExcessiveSigners(_) => "invalid_exact_svm_payload_excessive_signers",
            MissingSigners(_) => "invalid_exact_svm_payload_missing_signers",
            SignatureInvalid { .. } => "invalid_exact_svm_payload_signature_invalid",
            InstructionsLength(_) => "invalid_exact_svm_payload_transaction_instructions_length",
            ComputeLimitInstruction => {
                "invalid_exact_svm_payload_transaction_instructions_compute_limit_instruction"
            }
            ComputeLimitTooHigh { .. } => {
                "invalid_exact_svm_payload_transaction_instructions_compute_limit_instruction_too_high"
            }
            ComputePriceInstruction => {
                "invalid_exact_svm_payload_transaction_instructions_compute_price_instruction"
            }
            ComputePriceTooHigh { .. } => {
                "invalid_exact_svm_payload_transaction_instructions_compute_price_instruction_too_high"
            }
            NoTransferInstruction => "invalid_exact_svm_payload_no_transfer_instruction",
            UnknownInstruction(3) => "invalid_exact_svm_payload_unknown_fourth_instruction",
            UnknownInstruction(4) => "invalid_exact_svm_payload_unknown_fifth_instruction",
            UnknownInstruction(5) => "invalid_exact_svm_payload_unknown_sixth_instruction",
            UnknownInstruction(6) => "invalid_exact_svm_payload_unknown_seventh_instruction",
            UnknownInstruction(_) => "invalid_exact_svm_payload_unknown_instruction",
            FeePayerInInstructionAccounts(_) => {
                "invalid_exact_svm_payload_transaction_fee_payer_included_in_instruction_accounts"
            }
            FeePayerInvokedAsProgram(_) => "invalid_exact_svm_payload_fee_payer_invoked_as_program",
            FeePayerTransferringFunds => {
                "invalid_exact_svm_payload_transaction_fee_payer_transferring_funds"
            }
            AuthorityNotClientSigner => "invalid_exact_svm_payload_transfer_authority_not_signer",
            TokenProgramMismatch { .. } => "invalid_exact_svm_payload_token_program_mismatch",
            MintMismatch { .. } => "invalid_exact_svm_payload_mint_mismatch",
            MintNotAllowed(_) => "invalid_exact_svm_payload_mint_not_allowed",
            DecimalsMismatch { .. } => "invalid_exact_svm_payload_decimals_mismatch",
            RecipientMismatch { .. } => "invalid_exact_svm_payload_recipient_mismatch",
            AmountMismatch { .. } => "invalid_exact_svm_payload_amount_mismatch",
            MemoCount(_) => "invalid_exact_svm_payload_memo_count",
            MemoMismatch => "invalid_exact_svm_payload_memo_mismatch",
            InvalidMemo(_) => "invalid_exact_svm_payload_memo_invalid",
            MintInvalidOwner(_) => "invalid_exact_svm_mint_invalid_owner",
            MintInvalid(_) => "invalid_exact_svm_mint_invalid",
            MintExtensionNotAllowed(_) => "invalid_exact_svm_mint_extension_not_allowed",
            BlockhashExpired { .. } => "invalid_exact_svm_payload_blockhash_expired",
            SimulationFailed(_) => "invalid_exact_svm_transaction_simulation_failed",
            WrongSigningKey => "invalid_exact_svm_invalid_fee_payer",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positional_unknown_instruction_reasons() {
        assert_eq!(
            VerifyError::UnknownInstruction(3).reason(),
            "invalid_exact_svm_payload_unknown_fourth_instruction"
        );
        assert_eq!(
            VerifyError::UnknownInstruction(6).reason(),
            "invalid_exact_svm_payload_unknown_seventh_instruction"
        );
        assert_eq!(
            VerifyError::UnknownInstruction(9).reason(),
            "invalid_exact_svm_payload_unknown_instruction"
        );
    }

    #[test]
    fn every_reason_is_prefixed_snake_case() {
        let samples = [
            VerifyError::Decode("x"),
            VerifyError::AddressLookupTables,
            VerifyError::DurableNonce,
            VerifyError::MemoMismatch,
            VerifyError::SimulationFailed("e".into()),
        ];
        for e in samples {
            let r = e.reason();
            assert!(r.starts_with("invalid_exact_svm_"), "{r}");
            assert!(r.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{r}");
            assert!(!e.to_string().is_empty());
        }
    }
}
