//! Local verification of an x402 `exact` SVM payment transaction.
//!
//! [`verify_exact`] is pure (no I/O) and total (never panics: every index is bounds-checked).
//! It accepts exactly this shape (`x402-protocol.md` §4.5/§4.6, tightened per `security.md`):
//!
//! | # | instruction | rule |
//! | --- | --- | --- |
//! | 0 | ComputeBudget `SetComputeUnitLimit` | data exactly 5 bytes, no accounts, units ≤ policy cap |
//! | 1 | ComputeBudget `SetComputeUnitPrice` | data exactly 9 bytes, no accounts, price ≤ policy cap |
//! | 2 | SPL Token / Token-2022 `TransferChecked` | data exactly 10 bytes, exactly 4 accounts, source ≠ destination, both writable |
//! | 3..7 | Memo or Lighthouse only | memo: no accounts, 1..=256 bytes UTF-8 |
//!
//! plus: exactly two required signers (fee payer at 0, client at 1); account 0 is
//! `extra.feePayer` and one of our signers; no durable-nonce advance anywhere; none of our signer
//! keys in any instruction's accounts or as a program id, nor as transfer authority or source
//! (nor the fee payer's own ATA as source);
//! the authority is the client signer (account 1); every required signature except slot 0 is a
//! canonical Ed25519 signature (`verify_strict`) over the exact message bytes; mint == asset,
//! on the allow-list, owned by the transfer's token program; decimals == the mint's;
//! destination == ATA(payTo, asset, token program); amount == price; at most one memo, exactly
//! one when `extra.memo` is set (and equal to it) or when the policy requires one; none is
//! accepted otherwise.
//!
//! Check order: requirement/policy consistency, then cheap structure (signer count, fee payer,
//! nonce, isolation, layout), then signatures, then semantics (transfer fields, ATA, memo).
//! Blockhash freshness and simulation need RPC; see `chain.rs` for the pure helpers.

use super::ata::associated_token_address_cached;
use super::constants::*;
use super::decode::DecodedTransaction;
use super::error::VerifyError;
use super::mint::MintInfo;
use ed25519_dalek::{Signature as DalekSignature, VerifyingKey};
use solana_address::Address;
use solana_hash::Hash;
use solana_message::compiled_instruction::CompiledInstruction;

/// What the resource server asks for (built by the server, never taken from the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactRequirements {
    /// Price in the mint's base units (`requirements.amount`).
    pub amount: u64,
    /// Mint (`requirements.asset`).
    pub asset: Address,
    /// Owner wallet whose ATA receives the funds (`requirements.payTo`).
    pub pay_to: Address,
    /// Sponsor key (`requirements.extra.feePayer`).
    pub fee_payer: Address,
    /// Seller memo (`extra.memo`); `None` or empty means unset.
    pub memo: Option<String>,
}

/// Operator policy for sponsoring payments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactPolicy {
    /// Fee payers this facilitator manages (signs with). None of them may appear in a payment
    /// other than as account 0.
    pub our_signers: Vec<Address>,
    /// Cap on `SetComputeUnitLimit`.
    pub max_compute_unit_limit: u32,
    /// Cap on `SetComputeUnitPrice`, µlamports per CU.
    pub max_compute_unit_price: u64,
    /// Mints we accept payment in.
    pub allowed_mints: Vec<Address>,
    /// Require exactly one memo even when `extra.memo` is unset. Default `false`, as in the
    /// official facilitators: v1-era clients and `x402-solana` build no memo, and a memo-less
    /// payment is still unique per (blockhash, message), which is what duplicate detection keys
    /// on. Operators who want every payment tagged set `require_memo = true`.
    pub require_memo: bool,
}

impl ExactPolicy {
    /// A policy with the default caps (see `constants.rs`).
    pub fn new(our_signers: Vec<Address>, allowed_mints: Vec<Address>) -> Self {
        Self {
            our_signers,
            max_compute_unit_limit: DEFAULT_MAX_COMPUTE_UNIT_LIMIT,
            max_compute_unit_price: DEFAULT_MAX_COMPUTE_UNIT_PRICE,
            allowed_mints,
            require_memo: false,
        }
    }
}

/// A payment that passed local verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPayment {
    /// Transfer authority (the client wallet): the x402 `payer`.
    pub payer: Address,
    /// Source token account.
    pub source: Address,
    /// Destination token account (ATA of `payTo`).
    pub destination: Address,
    /// Amount in base units.
    pub amount: u64,
    /// Mint.
    pub mint: Address,
    /// Token program of the transfer.
    pub token_program: Address,
    /// Memo text, if any.
    pub memo: Option<String>,
    /// SHA-256 of the message bytes (replay / dedupe key).
    pub message_hash: [u8; 32],
    /// Recent blockhash of the message.
    pub recent_blockhash: Hash,
    /// Fee payer (account 0).
    pub fee_payer: Address,
    /// Requested compute unit limit.
    pub compute_unit_limit: u32,
    /// Requested compute unit price (µlamports per CU).
    pub compute_unit_price: u64,
}

/// Verify a decoded payment against the requirements, the mint and the policy.
pub fn verify_exact(
    tx: &DecodedTransaction,
    req: &ExactRequirements,
    mint: &MintInfo,
    policy: &ExactPolicy,
) -> Result<VerifiedPayment, VerifyError> {
    // --- requirements vs policy -------------------------------------------------------------
    if !policy.our_signers.contains(&req.fee_payer) {
        return Err(VerifyError::FeePayerNotManaged(req.fee_payer));
    }
    if mint.address != req.asset {
        return Err(VerifyError::MintMismatch {
            expected: req.asset,
            found: mint.address,
        });
    }
    if !policy.allowed_mints.contains(&req.asset) {
        return Err(VerifyError::MintNotAllowed(req.asset));
    }

    // --- cheap structure --------------------------------------------------------------------
    let keys = tx.account_keys();
    let key = |i: u8| keys.get(usize::from(i)).copied();
    let required = tx.message().header().num_required_signatures;
    if usize::from(required) > REQUIRED_SIGNATURES {
        return Err(VerifyError::ExcessiveSigners(required));
    }
    if usize::from(required) < REQUIRED_SIGNATURES {
        return Err(VerifyError::MissingSigners(required));
    }
    let account0 = keys
        .first()
        .copied()
        .ok_or(VerifyError::Decode("no account keys"))?;
    if account0 != req.fee_payer {
        return Err(VerifyError::FeePayerMismatch {
            expected: req.fee_payer,
            found: account0,
        });
    }
    let ixs = tx.message().instructions();
    for ix in ixs {
        if key(ix.program_id_index) == Some(SYSTEM_PROGRAM)
            && ix.data.get(..4) == Some(&SYSTEM_ADVANCE_NONCE_ACCOUNT.to_le_bytes()[..])
        {
            return Err(VerifyError::DurableNonce);
        }
    }
    // Fee-payer isolation, before the layout so an attack gets its own reason. Keys are compared
    // (duplicate keys were rejected at decode); the transfer's source (0) and authority (3)
    // positions get the reference reason.
    let ours = |a: &Address| policy.our_signers.contains(a) || *a == req.fee_payer;
    for (i, ix) in ixs.iter().enumerate() {
        let program = key(ix.program_id_index);
        match program {
            Some(p) if !ours(&p) => {}
            _ => return Err(VerifyError::FeePayerInvokedAsProgram(i)),
        }
        let is_token =
            matches!(program, Some(p) if p == SPL_TOKEN_PROGRAM || p == TOKEN_2022_PROGRAM);
        for (j, &a) in ix.accounts.iter().enumerate() {
            match key(a) {
                Some(k) if !ours(&k) => {}
                _ if i == 2 && is_token && (j == 0 || j == 3) => {
                    return Err(VerifyError::FeePayerTransferringFunds)
                }
                _ => return Err(VerifyError::FeePayerInInstructionAccounts(i)),
            }
        }
    }
    if !(MIN_INSTRUCTIONS..=MAX_INSTRUCTIONS).contains(&ixs.len()) {
        return Err(VerifyError::InstructionsLength(ixs.len()));
    }
    let [limit_ix, price_ix, transfer_ix, rest @ ..] = ixs else {
        return Err(VerifyError::InstructionsLength(ixs.len()));
    };
    let compute_unit_limit = parse_compute_limit(limit_ix, &key)?;
    if compute_unit_limit > policy.max_compute_unit_limit {
        return Err(VerifyError::ComputeLimitTooHigh {
            requested: compute_unit_limit,
            max: policy.max_compute_unit_limit,
        });
    }
    let compute_unit_price = parse_compute_price(price_ix, &key)?;
    if compute_unit_price > policy.max_compute_unit_price {
        return Err(VerifyError::ComputePriceTooHigh {
            requested: compute_unit_price,
            max: policy.max_compute_unit_price,
        });
    }
    let transfer = parse_transfer(transfer_ix, &key)?;
    // Source and destination must be writable in the message header, or the transfer fails.
    let header = tx.message().header();
    let is_writable = |i: u8| {
        let i = usize::from(i);
        let signers = usize::from(header.num_required_signatures);
        if i < signers {
            i < signers.saturating_sub(usize::from(header.num_readonly_signed_accounts))
        } else {
            i < keys
                .len()
                .saturating_sub(usize::from(header.num_readonly_unsigned_accounts))
        }
    };
    if !is_writable(transfer.source_index) || !is_writable(transfer.destination_index) {
        return Err(VerifyError::NoTransferInstruction);
    }
    let mut memos: Vec<&str> = Vec::new();
    for (offset, ix) in rest.iter().enumerate() {
        let position = offset + 3;
        match key(ix.program_id_index) {
            Some(p) if p == MEMO_PROGRAM => memos.push(parse_memo(ix, position)?),
            Some(p) if p == LIGHTHOUSE_PROGRAM => {}
            _ => return Err(VerifyError::UnknownInstruction(position)),
        }
    }
    if transfer.authority_index != 1 {
        return Err(VerifyError::AuthorityNotClientSigner);
    }

    // --- signatures ---------------------------------------------------------------------------
    verify_client_signatures(tx, usize::from(required))?;

    // --- semantics ------------------------------------------------------------------------------
    if transfer.program != mint.token_program {
        return Err(VerifyError::TokenProgramMismatch {
            expected: mint.token_program,
            found: transfer.program,
        });
    }
    if transfer.mint != req.asset {
        return Err(VerifyError::MintMismatch {
            expected: req.asset,
            found: transfer.mint,
        });
    }
    if transfer.decimals != mint.decimals {
        return Err(VerifyError::DecimalsMismatch {
            expected: mint.decimals,
            found: transfer.decimals,
        });
    }
    // From here on every derivation input is server-side (asset == mint, program == the mint's).
    // The source must not be the fee payer's own token account (a delegate could drain it).
    if transfer.source
        == associated_token_address_cached(&req.fee_payer, &req.asset, &transfer.program)
    {
        return Err(VerifyError::FeePayerTransferringFunds);
    }
    let expected_destination =
        associated_token_address_cached(&req.pay_to, &req.asset, &transfer.program);
    if transfer.destination != expected_destination {
        return Err(VerifyError::RecipientMismatch {
            expected: expected_destination,
            found: transfer.destination,
        });
    }
    if transfer.amount != req.amount {
        return Err(VerifyError::AmountMismatch {
            expected: req.amount,
            found: transfer.amount,
        });
    }
    let memo = check_memos(&memos, req.memo.as_deref(), policy.require_memo)?;

    Ok(VerifiedPayment {
        payer: transfer.authority,
        source: transfer.source,
        destination: transfer.destination,
        amount: transfer.amount,
        mint: transfer.mint,
        token_program: transfer.program,
        memo,
        message_hash: tx.message_hash(),
        recent_blockhash: *tx.recent_blockhash(),
        fee_payer: account0,
        compute_unit_limit,
        compute_unit_price,
    })
}

/// `verify_strict` every required signature except slot 0 (the fee payer's, filled at settle).
fn verify_client_signatures(tx: &DecodedTransaction, required: usize) -> Result<(), VerifyError> {
    if tx.client_signatures_verified() {
        return Ok(());
    }
    let message = tx.message_bytes();
    for index in 1..required {
        let invalid = VerifyError::SignatureInvalid { index };
        let sig = tx.signatures().get(index).ok_or(invalid.clone())?;
        let key = tx.account_keys().get(index).ok_or(invalid.clone())?;
        let vk = VerifyingKey::from_bytes(key.as_array()).map_err(|_| invalid.clone())?;
        let sig = DalekSignature::from_bytes(sig.as_array());
        vk.verify_strict(message, &sig).map_err(|_| invalid)?;
    }
    tx.mark_client_signatures_verified();
    Ok(())
}

fn parse_compute_limit(
    ix: &CompiledInstruction,
    key: &impl Fn(u8) -> Option<Address>,
) -> Result<u32, VerifyError> {
    let err = VerifyError::ComputeLimitInstruction;
    if key(ix.program_id_index) != Some(COMPUTE_BUDGET_PROGRAM)
        || !ix.accounts.is_empty()
        || ix.data.len() != SET_COMPUTE_UNIT_LIMIT_LEN
        || ix.data.first() != Some(&SET_COMPUTE_UNIT_LIMIT_DISCRIMINATOR)
    {
        return Err(err);
    }
    let bytes: [u8; 4] = ix
        .data
        .get(1..5)
        .and_then(|s| s.try_into().ok())
        .ok_or(err)?;
    Ok(u32::from_le_bytes(bytes))
}

fn parse_compute_price(
    ix: &CompiledInstruction,
    key: &impl Fn(u8) -> Option<Address>,
) -> Result<u64, VerifyError> {
    let err = VerifyError::ComputePriceInstruction;
    if key(ix.program_id_index) != Some(COMPUTE_BUDGET_PROGRAM)
        || !ix.accounts.is_empty()
        || ix.data.len() != SET_COMPUTE_UNIT_PRICE_LEN
        || ix.data.first() != Some(&SET_COMPUTE_UNIT_PRICE_DISCRIMINATOR)
    {
        return Err(err);
    }
    let bytes: [u8; 8] = ix
        .data
        .get(1..9)
        .and_then(|s| s.try_into().ok())
        .ok_or(err)?;
    Ok(u64::from_le_bytes(bytes))
}

struct Transfer {
    program: Address,
    source: Address,
    mint: Address,
    destination: Address,
    authority: Address,
    authority_index: u8,
    source_index: u8,
    destination_index: u8,
    amount: u64,
    decimals: u8,
}

fn parse_transfer(
    ix: &CompiledInstruction,
    key: &impl Fn(u8) -> Option<Address>,
) -> Result<Transfer, VerifyError> {
    let err = VerifyError::NoTransferInstruction;
    let program = key(ix.program_id_index).ok_or(err.clone())?;
    if (program != SPL_TOKEN_PROGRAM && program != TOKEN_2022_PROGRAM)
        || ix.data.len() != TRANSFER_CHECKED_LEN
        || ix.data.first() != Some(&TRANSFER_CHECKED_DISCRIMINATOR)
    {
        return Err(err);
    }
    let [s, m, d, a] = ix.accounts.as_slice() else {
        return Err(err);
    };
    if s == d {
        return Err(err);
    }
    let amount: [u8; 8] = ix
        .data
        .get(1..9)
        .and_then(|b| b.try_into().ok())
        .ok_or(err.clone())?;
    let decimals = *ix.data.get(9).ok_or(err.clone())?;
    Ok(Transfer {
        program,
        source: key(*s).ok_or(err.clone())?,
        mint: key(*m).ok_or(err.clone())?,
        destination: key(*d).ok_or(err.clone())?,
        authority: key(*a).ok_or(err)?,
        authority_index: *a,
        source_index: *s,
        destination_index: *d,
        amount: u64::from_le_bytes(amount),
        decimals,
    })
}

fn parse_memo(ix: &CompiledInstruction, position: usize) -> Result<&str, VerifyError> {
    if !ix.accounts.is_empty() || ix.data.is_empty() || ix.data.len() > MAX_MEMO_BYTES {
        return Err(VerifyError::InvalidMemo(position));
    }
    std::str::from_utf8(&ix.data).map_err(|_| VerifyError::InvalidMemo(position))
}

fn check_memos(
    memos: &[&str],
    required: Option<&str>,
    require_memo: bool,
) -> Result<Option<String>, VerifyError> {
    match required.filter(|m| !m.is_empty()) {
        Some(expected) => match memos {
            [m] if *m == expected => Ok(Some(expected.to_owned())),
            [_] => Err(VerifyError::MemoMismatch),
            _ => Err(VerifyError::MemoCount(memos.len())),
        },
        None => match memos {
            [] if !require_memo => Ok(None),
            [m] => Ok(Some((*m).to_owned())),
            _ => Err(VerifyError::MemoCount(memos.len())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memo_rules() {
        assert_eq!(check_memos(&["a"], Some("a"), true), Ok(Some("a".into())));
        assert_eq!(
            check_memos(&["b"], Some("a"), true),
            Err(VerifyError::MemoMismatch)
        );
        assert_eq!(
            check_memos(&[], Some("a"), false),
            Err(VerifyError::MemoCount(0))
        );
        assert_eq!(
            check_memos(&["a", "a"], Some("a"), true),
            Err(VerifyError::MemoCount(2))
        );
        assert_eq!(check_memos(&[], Some(""), false), Ok(None));
        assert_eq!(check_memos(&[], None, true), Err(VerifyError::MemoCount(0)));
        assert_eq!(check_memos(&["x"], Some(""), true), Ok(Some("x".into())));
        assert_eq!(
            check_memos(&["x", "y"], None, false),
            Err(VerifyError::MemoCount(2))
        );
    }

    /// A signed honest payment of `f`, edited by `edit`, checked under `policy`.
    fn verify_with(
        f: &super::super::testkit::PaymentFixture,
        edit: impl FnOnce(&mut Vec<solana_instruction::Instruction>),
        policy: &ExactPolicy,
    ) -> Result<VerifiedPayment, VerifyError> {
        let mut ixs = f.instructions();
        edit(&mut ixs);
        let b64 = super::super::client::encode(&f.sign_v0(&ixs));
        let tx = super::super::decode::decode_transaction(&b64)?;
        verify_exact(&tx, &f.requirements(), &f.mint_info(), policy)
    }

    /// The three instructions v1-era clients and `x402-solana` build: limit, price, transfer.
    fn drop_memo(ixs: &mut Vec<solana_instruction::Instruction>) {
        ixs.truncate(3);
    }

    #[test]
    fn memo_less_payment_is_accepted_when_no_memo_is_required() {
        let f = super::super::testkit::PaymentFixture::new();
        let policy = f.policy();
        assert!(
            !policy.require_memo,
            "the default follows the official facilitators"
        );
        let paid = verify_with(&f, drop_memo, &policy).expect("memo-less payment");
        assert_eq!(paid.memo, None);
        assert_eq!(paid.amount, f.amount);
    }

    #[test]
    fn memo_less_payment_is_refused_when_the_policy_requires_a_memo() {
        let f = super::super::testkit::PaymentFixture::new();
        let policy = ExactPolicy {
            require_memo: true,
            ..f.policy()
        };
        let refused = verify_with(&f, drop_memo, &policy).unwrap_err();
        assert_eq!(refused, VerifyError::MemoCount(0));
        assert_eq!(refused.reason(), "invalid_exact_svm_payload_memo_count");
        // The same payment with its nonce memo passes the strict policy.
        verify_with(&f, |_| {}, &policy).expect("one memo");
    }

    #[test]
    fn a_seller_memo_is_still_checked_without_the_policy() {
        let mut f = super::super::testkit::PaymentFixture::new();
        f.memo = Some("pi_3abc123def456".into());
        let policy = f.policy();
        assert!(!policy.require_memo);
        let missing = verify_with(&f, drop_memo, &policy).unwrap_err();
        assert_eq!(missing.reason(), "invalid_exact_svm_payload_memo_count");
        let other = |ixs: &mut Vec<solana_instruction::Instruction>| {
            ixs[3] = f.memo_ix(b"pi_other");
        };
        assert_eq!(
            verify_with(&f, other, &policy).unwrap_err(),
            VerifyError::MemoMismatch
        );
        let paid = verify_with(&f, |_| {}, &policy).expect("the seller memo");
        assert_eq!(paid.memo.as_deref(), Some("pi_3abc123def456"));
    }

    #[test]
    fn memo_must_be_utf8_without_accounts() {
        let ok = CompiledInstruction::new_from_raw_parts(1, b"hi".to_vec(), vec![]);
        assert_eq!(parse_memo(&ok, 3), Ok("hi"));
        let bad = CompiledInstruction::new_from_raw_parts(1, vec![0xff], vec![]);
        assert_eq!(parse_memo(&bad, 4), Err(VerifyError::InvalidMemo(4)));
        let accts = CompiledInstruction::new_from_raw_parts(1, b"hi".to_vec(), vec![0]);
        assert_eq!(parse_memo(&accts, 3), Err(VerifyError::InvalidMemo(3)));
        let long = CompiledInstruction::new_from_raw_parts(1, vec![b'a'; 257], vec![]);
        assert_eq!(parse_memo(&long, 3), Err(VerifyError::InvalidMemo(3)));
    }
}
