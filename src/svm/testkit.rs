//! Deterministic payment fixtures (fixed keys, mint and blockhash) and the instruction pieces to
//! build honest and malformed payments from them, shared by the unit tests, the integration tests
//! and the benchmarks. Compiled only for tests and with the `test-util` feature, never into the
//! production library; the honest payment itself is [`super::client`]'s.

use super::ata::associated_token_address;
use super::client::{encode, partially_sign, transfer_checked, ExactTransfer};
use super::constants::*;
use super::exact::{ExactPolicy, ExactRequirements};
use super::mint::MintInfo;
use solana_address::Address;
use solana_hash::Hash;
use solana_instruction::{AccountMeta, Instruction};
use solana_keypair::Keypair;
use solana_message::{legacy, v0, AddressLookupTableAccount, VersionedMessage};
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;

/// Everything one payment needs, with deterministic keys.
pub struct PaymentFixture {
    /// The sponsor (account 0, signs at settle).
    pub fee_payer: Keypair,
    /// A second key the facilitator manages.
    pub spare_signer: Keypair,
    /// The paying wallet (transfer authority).
    pub client: Keypair,
    /// Merchant wallet.
    pub pay_to: Address,
    /// Payment mint.
    pub mint: Address,
    /// Token program of the mint.
    pub token_program: Address,
    /// Mint decimals.
    pub decimals: u8,
    /// Price.
    pub amount: u64,
    /// Seller memo (`extra.memo`).
    pub memo: Option<String>,
    /// Recent blockhash.
    pub blockhash: Hash,
}

impl PaymentFixture {
    /// A USDC-like SPL Token payment of 1000 base units.
    pub fn new() -> Self {
        Self::with_program(SPL_TOKEN_PROGRAM)
    }

    /// The same payment under `token_program`.
    pub fn with_program(token_program: Address) -> Self {
        Self {
            fee_payer: Keypair::new_from_array([1; 32]),
            spare_signer: Keypair::new_from_array([3; 32]),
            client: Keypair::new_from_array([2; 32]),
            pay_to: Address::new_from_array([0x42; 32]),
            mint: Address::from_str_const("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"),
            token_program,
            decimals: 6,
            amount: 1000,
            memo: None,
            blockhash: Hash::new_from_array([0x5a; 32]),
        }
    }

    /// Requirements matching the fixture.
    pub fn requirements(&self) -> ExactRequirements {
        ExactRequirements {
            amount: self.amount,
            asset: self.mint,
            pay_to: self.pay_to,
            fee_payer: self.fee_payer.pubkey(),
            memo: self.memo.clone(),
        }
    }

    /// Default policy managing the fee payer and the spare signer, allowing the mint.
    pub fn policy(&self) -> ExactPolicy {
        ExactPolicy::new(
            vec![self.fee_payer.pubkey(), self.spare_signer.pubkey()],
            vec![self.mint],
        )
    }

    /// Mint info matching the fixture.
    pub fn mint_info(&self) -> MintInfo {
        MintInfo {
            address: self.mint,
            token_program: self.token_program,
            decimals: self.decimals,
        }
    }

    /// The client's ATA.
    pub fn source(&self) -> Address {
        associated_token_address(&self.client.pubkey(), &self.mint, &self.token_program)
    }

    /// The merchant's ATA.
    pub fn destination(&self) -> Address {
        associated_token_address(&self.pay_to, &self.mint, &self.token_program)
    }

    /// `SetComputeUnitLimit(units)`.
    pub fn limit_ix(&self, units: u32) -> Instruction {
        solana_compute_budget_interface::ComputeBudgetInstruction::set_compute_unit_limit(units)
    }

    /// `SetComputeUnitPrice(micro_lamports)`.
    pub fn price_ix(&self, micro_lamports: u64) -> Instruction {
        solana_compute_budget_interface::ComputeBudgetInstruction::set_compute_unit_price(
            micro_lamports,
        )
    }

    /// `TransferChecked` built with the interface crate of `program`.
    #[allow(clippy::too_many_arguments)]
    pub fn transfer_ix_with(
        &self,
        program: &Address,
        source: &Address,
        mint: &Address,
        destination: &Address,
        authority: &Address,
        amount: u64,
        decimals: u8,
    ) -> Instruction {
        transfer_checked(
            program,
            source,
            mint,
            destination,
            authority,
            amount,
            decimals,
        )
        .expect("a token program")
    }

    /// The correct `TransferChecked`.
    pub fn transfer_ix(&self) -> Instruction {
        self.transfer_ix_with(
            &self.token_program,
            &self.source(),
            &self.mint,
            &self.destination(),
            &self.client.pubkey(),
            self.amount,
            self.decimals,
        )
    }

    /// A Memo instruction (no accounts).
    pub fn memo_ix(&self, data: &[u8]) -> Instruction {
        Instruction::new_with_bytes(MEMO_PROGRAM, data, vec![])
    }

    /// A Lighthouse-like assertion instruction over the given accounts.
    pub fn lighthouse_ix(&self, accounts: Vec<AccountMeta>) -> Instruction {
        Instruction::new_with_bytes(LIGHTHOUSE_PROGRAM, &[0x10, 0, 1, 2, 3], accounts)
    }

    /// The memo text the honest client would write (the seller memo, or a fixed nonce).
    pub fn memo_text(&self) -> String {
        match self.memo.as_deref() {
            Some(m) if !m.is_empty() => m.to_owned(),
            _ => "0123456789abcdef0123456789abcdef".to_owned(),
        }
    }

    /// The honest payment this fixture describes, as the client builds it.
    pub fn exact_transfer(&self) -> ExactTransfer {
        ExactTransfer {
            fee_payer: self.fee_payer.pubkey(),
            pay_to: self.pay_to,
            mint: self.mint_info(),
            amount: self.amount,
            memo: self.memo_text(),
        }
    }

    /// The honest instruction list: limit 20 000, price 1, transfer, memo.
    pub fn instructions(&self) -> Vec<Instruction> {
        self.exact_transfer()
            .instructions(&self.client.pubkey())
            .expect("a token program")
    }

    /// Compile a v0 message (fee payer = account 0) and sign with the client only.
    pub fn sign_v0(&self, ixs: &[Instruction]) -> VersionedTransaction {
        self.sign_v0_with(ixs, &[], &[&self.client])
    }

    /// Compile a v0 message with lookup tables and sign with `signers` (others left zero).
    pub fn sign_v0_with(
        &self,
        ixs: &[Instruction],
        tables: &[AddressLookupTableAccount],
        signers: &[&Keypair],
    ) -> VersionedTransaction {
        let msg = v0::Message::try_compile(&self.fee_payer.pubkey(), ixs, tables, self.blockhash)
            .expect("compile v0");
        partially_sign(VersionedMessage::V0(msg), signers)
    }

    /// Compile a legacy message and sign with the client only.
    pub fn sign_legacy(&self, ixs: &[Instruction]) -> VersionedTransaction {
        let msg = legacy::Message::new_with_blockhash(
            ixs,
            Some(&self.fee_payer.pubkey()),
            &self.blockhash,
        );
        partially_sign(VersionedMessage::Legacy(msg), &[&self.client])
    }

    /// The honest payment, base64.
    pub fn honest_base64(&self) -> String {
        encode(&self.sign_v0(&self.instructions()))
    }
}

impl Default for PaymentFixture {
    fn default() -> Self {
        Self::new()
    }
}
