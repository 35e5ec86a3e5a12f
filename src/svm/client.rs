//! The paying client's side of the `exact` scheme on Solana: the payment transaction a wallet
//! sends in `PAYMENT-SIGNATURE`, built exactly as the official TypeScript client builds it
//! (`x402-protocol.md` §4.3): SetComputeUnitLimit 20 000, SetComputeUnitPrice 1, TransferChecked
//! from the wallet's token account to payTo's, Memo; a v0 message whose fee payer is the
//! facilitator's `extra.feePayer`, signed by the wallet only (the fee-payer slot stays 64 zero
//! bytes until the facilitator signs it at settlement).
//!
//! Used by the `x402-pay` client (`crate::client::payer`) and by the test fixtures; pure, no
//! I/O (the caller reads the mint and a recent blockhash from the cluster).

use base64::Engine as _;
use rand::RngCore as _;
use solana_address::Address;
use solana_hash::Hash;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_message::{v0, CompileError, VersionedMessage};
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;

use super::ata::associated_token_address;
use super::constants::{MAX_MEMO_BYTES, MEMO_PROGRAM, SPL_TOKEN_PROGRAM, TOKEN_2022_PROGRAM};
use super::mint::MintInfo;

/// The official client's compute-unit limit.
pub const COMPUTE_UNIT_LIMIT: u32 = 20_000;
/// The official client's compute-unit price (micro-lamports per unit).
pub const COMPUTE_UNIT_PRICE_MICROLAMPORTS: u64 = 1;

/// Why a payment could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// TransferChecked exists only in SPL Token and Token-2022.
    #[error("{0} is not a token program (SPL Token or Token-2022)")]
    NotATokenProgram(Address),
    /// The seller asked for a memo longer than the facilitator accepts.
    #[error("extra.memo is {0} bytes; at most {MAX_MEMO_BYTES} are accepted")]
    MemoTooLong(usize),
    /// The instructions do not fit a v0 message.
    #[error("compiling the payment message: {0}")]
    Compile(#[from] CompileError),
}

/// One `exact` payment: what the offer asks for, with the mint as read from the chain.
#[derive(Debug, Clone)]
pub struct ExactTransfer {
    /// The facilitator's fee payer (`extra.feePayer`): account 0 of the message.
    pub fee_payer: Address,
    /// The merchant wallet (`payTo`); the tokens go to its associated token account.
    pub pay_to: Address,
    /// The payment mint, its token program and decimals.
    pub mint: MintInfo,
    /// The price in the mint's base units.
    pub amount: u64,
    /// The Memo instruction's text (see [`memo_for`]).
    pub memo: String,
}

impl ExactTransfer {
    /// `TransferChecked` of `amount` from `owner`'s token account to payTo's.
    pub fn transfer_checked(&self, owner: &Address) -> Result<Instruction, ClientError> {
        let program = &self.mint.token_program;
        let mint = &self.mint.address;
        transfer_checked(
            program,
            &associated_token_address(owner, mint, program),
            mint,
            &associated_token_address(&self.pay_to, mint, program),
            owner,
            self.amount,
            self.mint.decimals,
        )
    }

    /// Limit, price, TransferChecked, Memo: the official client's instruction list.
    pub fn instructions(&self, owner: &Address) -> Result<Vec<Instruction>, ClientError> {
        use solana_compute_budget_interface::ComputeBudgetInstruction;
        Ok(vec![
            ComputeBudgetInstruction::set_compute_unit_limit(COMPUTE_UNIT_LIMIT),
            ComputeBudgetInstruction::set_compute_unit_price(COMPUTE_UNIT_PRICE_MICROLAMPORTS),
            self.transfer_checked(owner)?,
            Instruction::new_with_bytes(MEMO_PROGRAM, self.memo.as_bytes(), vec![]),
        ])
    }

    /// The v0 payment transaction for `blockhash`, signed by `wallet` only.
    pub fn sign(
        &self,
        wallet: &Keypair,
        blockhash: Hash,
    ) -> Result<VersionedTransaction, ClientError> {
        let instructions = self.instructions(&wallet.pubkey())?;
        let message = v0::Message::try_compile(&self.fee_payer, &instructions, &[], blockhash)?;
        Ok(partially_sign(VersionedMessage::V0(message), &[wallet]))
    }
}

/// The memo to send: the seller's `extra.memo` when it asks for one, otherwise a random 16-byte
/// hex nonce, so that two payments of the same amount are different transactions.
pub fn memo_for(seller_memo: Option<&str>) -> Result<String, ClientError> {
    match seller_memo {
        Some(m) if m.len() > MAX_MEMO_BYTES => Err(ClientError::MemoTooLong(m.len())),
        Some(m) => Ok(m.to_owned()),
        None => {
            let mut nonce = [0u8; 16];
            rand::thread_rng().fill_bytes(&mut nonce);
            Ok(hex::encode(nonce))
        }
    }
}

/// `TransferChecked` built with the interface crate of `program`.
pub fn transfer_checked(
    program: &Address,
    source: &Address,
    mint: &Address,
    destination: &Address,
    authority: &Address,
    amount: u64,
    decimals: u8,
) -> Result<Instruction, ClientError> {
    // Both interface crates only refuse a program id other than their own, checked here.
    let built = if *program == TOKEN_2022_PROGRAM {
        spl_token_2022_interface::instruction::transfer_checked(
            program,
            source,
            mint,
            destination,
            authority,
            &[],
            amount,
            decimals,
        )
    } else if *program == SPL_TOKEN_PROGRAM {
        spl_token_interface::instruction::transfer_checked(
            program,
            source,
            mint,
            destination,
            authority,
            &[],
            amount,
            decimals,
        )
    } else {
        return Err(ClientError::NotATokenProgram(*program));
    };
    built.map_err(|_| ClientError::NotATokenProgram(*program))
}

/// Signs `message` with every given keypair that is a required signer; other slots stay zero.
pub fn partially_sign(message: VersionedMessage, signers: &[&Keypair]) -> VersionedTransaction {
    let bytes = message.serialize();
    let required = usize::from(message.header().num_required_signatures);
    let signatures = message
        .static_account_keys()
        .iter()
        .take(required)
        .map(|k| {
            signers
                .iter()
                .find(|s| s.pubkey() == *k)
                .map(|s| s.sign_message(&bytes))
                .unwrap_or_default()
        })
        .collect::<Vec<Signature>>();
    VersionedTransaction {
        signatures,
        message,
    }
}

/// Wire bytes of a transaction.
pub fn wire(tx: &VersionedTransaction) -> Vec<u8> {
    bincode::serialize(tx).expect("a VersionedTransaction always serializes")
}

/// Base64 of the wire bytes: the `payload.transaction` of an `exact` payment.
pub fn encode(tx: &VersionedTransaction) -> String {
    base64::engine::general_purpose::STANDARD.encode(wire(tx))
}
