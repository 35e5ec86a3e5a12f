//! Genesis: the USDC-like mint, funded wallets and the `payTo` associated token account.
//!
//! Genesis state is written directly into the ledger (like a real cluster's genesis config),
//! not produced by transactions; everything after genesis goes through real transactions.

use super::chain::Chain;
use super::error::LocalnetError;
use super::keys::{self, FundedWallet};
use super::tokens::{self, TransferFeeParams};
use crate::config::localnet::{LocalnetConfig, TokenProgramKind};
use solana_account::Account;
use solana_address::Address;
use solana_program_pack::Pack;
use solana_signer::Signer;
use std::str::FromStr;

/// What genesis produced, kept by the cluster handle.
pub(super) struct Genesis {
    pub mint: Address,
    pub token_program: TokenProgramKind,
    pub pay_to: Address,
    pub pay_to_keypair: Option<FundedWallet>,
    pub mint_authority: FundedWallet,
    pub wallets: Vec<FundedWallet>,
    pub fee_payers: Vec<FundedWallet>,
}

fn ledger(e: impl ToString) -> LocalnetError {
    LocalnetError::Ledger(e.to_string())
}

/// Parses a base58 address from the config.
pub(super) fn parse_address(what: &str, s: &str) -> Result<Address, LocalnetError> {
    Address::from_str(s).map_err(|e| LocalnetError::Config(format!("{what} `{s}`: {e}")))
}

/// Associated token account of `owner` for `mint` under `program`.
pub(super) fn ata(owner: &Address, mint: &Address, program: &Address) -> Address {
    spl_associated_token_account_interface::address::get_associated_token_address_with_program_id(
        owner, mint, program,
    )
}

/// Adds `lamports` to `addr` (creating a system account if needed).
pub(super) fn add_lamports(
    chain: &mut Chain,
    addr: &Address,
    lamports: u64,
) -> Result<(), LocalnetError> {
    let mut acc = chain.account(addr).unwrap_or(Account {
        lamports: 0,
        data: vec![],
        owner: Address::default(),
        executable: false,
        rent_epoch: u64::MAX,
    });
    acc.lamports = acc.lamports.saturating_add(lamports);
    chain.set_account(*addr, acc).map_err(ledger)
}

/// Writes an initialized mint at `address` with `authority` as mint authority.
pub(super) fn create_mint(
    chain: &mut Chain,
    address: Address,
    decimals: u8,
    kind: TokenProgramKind,
    authority: Address,
    transfer_fee: Option<TransferFeeParams>,
) -> Result<(), LocalnetError> {
    let data = tokens::mint_data(kind, decimals, authority, 0, transfer_fee).map_err(ledger)?;
    let lamports = chain.svm.minimum_balance_for_rent_exemption(data.len());
    let account = Account {
        lamports,
        data,
        owner: kind.program_id(),
        executable: false,
        rent_epoch: u64::MAX,
    };
    chain.set_account(address, account).map_err(ledger)
}

/// Mints `amount` of `mint` into `owner`'s associated token account, creating the ATA if it
/// does not exist. Supply is updated so the mint stays consistent with its accounts.
pub(super) fn mint_to(
    chain: &mut Chain,
    owner: &Address,
    mint: &Address,
    amount: u64,
) -> Result<Address, LocalnetError> {
    let mut mint_acc = chain
        .account(mint)
        .ok_or_else(|| LocalnetError::Config(format!("mint {mint} does not exist")))?;
    let kind = TokenProgramKind::from_program_id(&mint_acc.owner)
        .ok_or_else(|| LocalnetError::Config(format!("{mint} is not a token mint")))?;
    let has_fee = tokens::mint_has_transfer_fee(&mint_acc.data);
    let ata = ata(owner, mint, &kind.program_id());
    let existing = chain
        .account(&ata)
        .and_then(|a| tokens::unpack_account(&a.data))
        .map(|a| a.amount)
        .unwrap_or(0);
    let new_amount = existing
        .checked_add(amount)
        .ok_or_else(|| ledger("token amount overflow"))?;
    let data =
        tokens::token_account_data(kind, *mint, *owner, new_amount, has_fee).map_err(ledger)?;
    let lamports = chain.svm.minimum_balance_for_rent_exemption(data.len());
    let account = Account {
        lamports,
        data,
        owner: kind.program_id(),
        executable: false,
        rent_epoch: u64::MAX,
    };
    chain.set_account(ata, account).map_err(ledger)?;
    // Update supply in place: the base mint layout is identical for both programs.
    let mut base = tokens::unpack_mint(&mint_acc.data).ok_or_else(|| ledger("bad mint data"))?;
    base.supply = base.supply.saturating_add(amount);
    Pack::pack_into_slice(
        &base,
        &mut mint_acc.data[..spl_token_2022_interface::state::Mint::LEN],
    );
    chain.set_account(*mint, mint_acc).map_err(ledger)?;
    Ok(ata)
}

/// Builds genesis from `cfg` into `chain`.
pub(super) fn bootstrap(chain: &mut Chain, cfg: &LocalnetConfig) -> Result<Genesis, LocalnetError> {
    let mint = parse_address("mint", &cfg.mint)?;
    let mint_authority = keys::load_or_create(&cfg.keypair_dir.join("mint-authority.json"))?;
    create_mint(
        chain,
        mint,
        cfg.decimals,
        cfg.token_program,
        mint_authority.keypair.pubkey(),
        None,
    )?;

    let (pay_to, pay_to_keypair) = match &cfg.pay_to {
        Some(s) => (parse_address("pay_to", s)?, None),
        None => {
            let w = keys::load_or_create(&cfg.pay_to_keypair_path())?;
            (w.keypair.pubkey(), Some(w))
        }
    };
    // The merchant's ATA exists up front so the first payment is a plain TransferChecked.
    mint_to(chain, &pay_to, &mint, 0)?;

    let mut fee_payers = Vec::new();
    for path in &cfg.fee_payers {
        let w = keys::load_or_create(path)?;
        add_lamports(chain, &w.keypair.pubkey(), cfg.fee_payer_lamports)?;
        fee_payers.push(w);
    }
    let mut wallets = Vec::new();
    for wc in &cfg.wallets {
        let w = keys::load_or_create(&wc.keypair)?;
        add_lamports(chain, &w.keypair.pubkey(), wc.lamports())?;
        mint_to(chain, &w.keypair.pubkey(), &mint, wc.usdc)?;
        wallets.push(w);
    }
    Ok(Genesis {
        mint,
        token_program: cfg.token_program,
        pay_to,
        pay_to_keypair,
        mint_authority,
        wallets,
        fee_payers,
    })
}
