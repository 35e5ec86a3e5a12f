//! SPL Token / Token-2022 account layouts: building genesis mints and token accounts, reading
//! balances back, and the `jsonParsed` form real RPC returns for them.
//!
//! Token-2022's `StateWithExtensions` also parses plain SPL Token accounts (same base layout,
//! no TLV tail), so every reader here goes through it for both programs.

use crate::config::localnet::TokenProgramKind;
use serde_json::{json, Value};
use solana_address::Address;
use solana_program_option::COption;
use solana_program_pack::Pack;
use spl_token_2022_interface::extension::{
    immutable_owner::ImmutableOwner,
    transfer_fee::{TransferFeeAmount, TransferFeeConfig},
    BaseStateWithExtensions, BaseStateWithExtensionsMut, ExtensionType, StateWithExtensions,
    StateWithExtensionsMut,
};
use spl_token_2022_interface::state::{Account, AccountState, Mint};

/// Token-2022 transfer-fee parameters for a test mint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferFeeParams {
    /// Fee in basis points of the transferred amount.
    pub basis_points: u16,
    /// Cap on the fee, in atomic units.
    pub maximum_fee: u64,
}

fn coption(a: Option<Address>) -> COption<Address> {
    a.map_or(COption::None, COption::Some)
}

/// Serialized mint state. `transfer_fee` is only honoured for Token-2022.
pub(super) fn mint_data(
    kind: TokenProgramKind,
    decimals: u8,
    mint_authority: Address,
    supply: u64,
    transfer_fee: Option<TransferFeeParams>,
) -> Result<Vec<u8>, String> {
    let base = Mint {
        mint_authority: COption::Some(mint_authority),
        supply,
        decimals,
        is_initialized: true,
        freeze_authority: COption::None,
    };
    let fee = match (kind, transfer_fee) {
        (TokenProgramKind::Token2022, Some(fee)) => fee,
        _ => {
            let mut data = vec![0u8; Mint::LEN];
            Mint::pack(base, &mut data).map_err(|e| e.to_string())?;
            return Ok(data);
        }
    };
    let len = ExtensionType::try_calculate_account_len::<Mint>(&[ExtensionType::TransferFeeConfig])
        .map_err(|e| e.to_string())?;
    let mut data = vec![0u8; len];
    let mut state = StateWithExtensionsMut::<Mint>::unpack_uninitialized(&mut data)
        .map_err(|e| e.to_string())?;
    let cfg = state
        .init_extension::<TransferFeeConfig>(true)
        .map_err(|e| e.to_string())?;
    cfg.transfer_fee_config_authority = Some(mint_authority).try_into().map_err(|_| "authority")?;
    cfg.withdraw_withheld_authority = Some(mint_authority).try_into().map_err(|_| "authority")?;
    for f in [&mut cfg.older_transfer_fee, &mut cfg.newer_transfer_fee] {
        f.epoch = 0u64.into();
        f.maximum_fee = fee.maximum_fee.into();
        f.transfer_fee_basis_points = fee.basis_points.into();
    }
    state.base = base;
    state.pack_base();
    state.init_account_type().map_err(|e| e.to_string())?;
    Ok(data)
}

/// Serialized, initialized token account. For Token-2022 the account carries the extensions
/// the real program would add: `ImmutableOwner` for associated token accounts and
/// `TransferFeeAmount` when the mint has a transfer fee.
pub(super) fn token_account_data(
    kind: TokenProgramKind,
    mint: Address,
    owner: Address,
    amount: u64,
    mint_has_transfer_fee: bool,
) -> Result<Vec<u8>, String> {
    let base = Account {
        mint,
        owner,
        amount,
        delegate: COption::None,
        state: AccountState::Initialized,
        is_native: COption::None,
        delegated_amount: 0,
        close_authority: coption(None),
    };
    if kind == TokenProgramKind::SplToken {
        let mut data = vec![0u8; Account::LEN];
        Account::pack(base, &mut data).map_err(|e| e.to_string())?;
        return Ok(data);
    }
    let mut exts = vec![ExtensionType::ImmutableOwner];
    if mint_has_transfer_fee {
        exts.push(ExtensionType::TransferFeeAmount);
    }
    let len =
        ExtensionType::try_calculate_account_len::<Account>(&exts).map_err(|e| e.to_string())?;
    let mut data = vec![0u8; len];
    let mut state = StateWithExtensionsMut::<Account>::unpack_uninitialized(&mut data)
        .map_err(|e| e.to_string())?;
    state
        .init_extension::<ImmutableOwner>(true)
        .map_err(|e| e.to_string())?;
    if mint_has_transfer_fee {
        state
            .init_extension::<TransferFeeAmount>(true)
            .map_err(|e| e.to_string())?;
    }
    state.base = base;
    state.pack_base();
    state.init_account_type().map_err(|e| e.to_string())?;
    Ok(data)
}

/// Base state of a mint, if `data` is one.
pub(super) fn unpack_mint(data: &[u8]) -> Option<Mint> {
    StateWithExtensions::<Mint>::unpack(data)
        .ok()
        .map(|s| s.base)
}

/// True if the mint carries a Token-2022 transfer-fee config.
pub(super) fn mint_has_transfer_fee(data: &[u8]) -> bool {
    StateWithExtensions::<Mint>::unpack(data)
        .map(|s| s.get_extension::<TransferFeeConfig>().is_ok())
        .unwrap_or(false)
}

/// Base state of a token account, if `data` is one. Mints are 82 bytes and multisigs 355, so
/// the length check in `unpack` keeps them apart.
pub(super) fn unpack_account(data: &[u8]) -> Option<Account> {
    StateWithExtensions::<Account>::unpack(data)
        .ok()
        .map(|s| s.base)
}

/// `amount` as a decimal string without trailing zeros, like real RPC's `uiAmountString`.
pub(super) fn ui_amount_string(amount: u64, decimals: u8) -> String {
    if decimals == 0 {
        return amount.to_string();
    }
    let d = decimals as usize;
    let s = format!("{amount:0>width$}", width = d + 1);
    let (int, frac) = s.split_at(s.len() - d);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

/// The `UiTokenAmount` object.
pub(super) fn ui_token_amount(amount: u64, decimals: u8) -> Value {
    let ui = ui_amount_string(amount, decimals);
    json!({
        "amount": amount.to_string(),
        "decimals": decimals,
        "uiAmount": ui.parse::<f64>().ok(),
        "uiAmountString": ui,
    })
}

fn opt_key(c: &COption<Address>) -> Value {
    match c {
        COption::Some(a) => Value::String(a.to_string()),
        COption::None => Value::Null,
    }
}

fn program_name(kind: TokenProgramKind) -> &'static str {
    match kind {
        TokenProgramKind::SplToken => "spl-token",
        TokenProgramKind::Token2022 => "spl-token-2022",
    }
}

fn fee_json(f: &spl_token_2022_interface::extension::transfer_fee::TransferFee) -> Value {
    json!({
        "epoch": u64::from(f.epoch),
        "maximumFee": u64::from(f.maximum_fee),
        "transferFeeBasisPoints": u16::from(f.transfer_fee_basis_points),
    })
}

fn extensions_json<S: spl_token_2022_interface::extension::BaseState + Pack>(
    state: &StateWithExtensions<S>,
) -> Vec<Value> {
    let types = state.get_extension_types().unwrap_or_default();
    types
        .into_iter()
        .map(|t| match t {
            ExtensionType::ImmutableOwner => json!({"extension": "immutableOwner"}),
            ExtensionType::TransferFeeAmount => {
                let withheld = state
                    .get_extension::<TransferFeeAmount>()
                    .map(|e| u64::from(e.withheld_amount))
                    .unwrap_or(0);
                json!({"extension": "transferFeeAmount", "state": {"withheldAmount": withheld}})
            }
            ExtensionType::TransferFeeConfig => match state.get_extension::<TransferFeeConfig>() {
                Ok(c) => json!({"extension": "transferFeeConfig", "state": {
                    "transferFeeConfigAuthority": Option::<Address>::from(c.transfer_fee_config_authority).map(|a| a.to_string()),
                    "withdrawWithheldAuthority": Option::<Address>::from(c.withdraw_withheld_authority).map(|a| a.to_string()),
                    "withheldAmount": u64::from(c.withheld_amount),
                    "olderTransferFee": fee_json(&c.older_transfer_fee),
                    "newerTransferFee": fee_json(&c.newer_transfer_fee),
                }}),
                Err(_) => json!({"extension": "unparseableExtension"}),
            },
            _ => json!({"extension": "unparseableExtension"}),
        })
        .collect()
}

/// `jsonParsed` form of a token program account, or `None` if it is not a mint or token
/// account (real RPC then falls back to base64). `mint_decimals` looks up a mint's decimals,
/// which a token account needs for its `tokenAmount`.
pub(super) fn json_parsed(
    owner_program: &Address,
    data: &[u8],
    mint_decimals: impl Fn(&Address) -> Option<u8>,
) -> Option<Value> {
    let kind = TokenProgramKind::from_program_id(owner_program)?;
    let is_2022 = kind == TokenProgramKind::Token2022;
    let parsed = if let Ok(acc) = StateWithExtensions::<Account>::unpack(data) {
        let a = acc.base;
        let decimals = mint_decimals(&a.mint)?;
        let mut info = json!({
            "isNative": a.is_native.is_some(),
            "mint": a.mint.to_string(),
            "owner": a.owner.to_string(),
            "state": match a.state {
                AccountState::Uninitialized => "uninitialized",
                AccountState::Initialized => "initialized",
                AccountState::Frozen => "frozen",
            },
            "tokenAmount": ui_token_amount(a.amount, decimals),
        });
        if let COption::Some(d) = a.delegate {
            info["delegate"] = json!(d.to_string());
            info["delegatedAmount"] = ui_token_amount(a.delegated_amount, decimals);
        }
        if let COption::Some(c) = a.close_authority {
            info["closeAuthority"] = json!(c.to_string());
        }
        if let COption::Some(r) = a.is_native {
            info["rentExemptReserve"] = ui_token_amount(r, decimals);
        }
        if is_2022 {
            let exts = extensions_json(&acc);
            if !exts.is_empty() {
                info["extensions"] = Value::Array(exts);
            }
        }
        json!({"type": "account", "info": info})
    } else if let Ok(mint) = StateWithExtensions::<Mint>::unpack(data) {
        let m = mint.base;
        let mut info = json!({
            "decimals": m.decimals,
            "freezeAuthority": opt_key(&m.freeze_authority),
            "isInitialized": m.is_initialized,
            "mintAuthority": opt_key(&m.mint_authority),
            "supply": m.supply.to_string(),
        });
        if is_2022 {
            let exts = extensions_json(&mint);
            if !exts.is_empty() {
                info["extensions"] = Value::Array(exts);
            }
        }
        json!({"type": "mint", "info": info})
    } else {
        return None;
    };
    Some(json!({"program": program_name(kind), "parsed": parsed, "space": data.len()}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ui_amount_strings_are_trimmed_like_real_rpc() {
        assert_eq!(ui_amount_string(0, 6), "0");
        assert_eq!(ui_amount_string(1, 6), "0.000001");
        assert_eq!(ui_amount_string(1_500_000, 6), "1.5");
        assert_eq!(ui_amount_string(100_000_000, 6), "100");
        assert_eq!(ui_amount_string(42, 0), "42");
        assert_eq!(ui_amount_string(u64::MAX, 9), "18446744073.709551615");
    }

    #[test]
    fn token_2022_layouts_round_trip() {
        let auth = Address::new_unique();
        let fee = TransferFeeParams {
            basis_points: 50,
            maximum_fee: 9,
        };
        let mint = mint_data(TokenProgramKind::Token2022, 6, auth, 0, Some(fee)).unwrap();
        assert!(mint_has_transfer_fee(&mint));
        assert_eq!(unpack_mint(&mint).unwrap().decimals, 6);
        assert!(unpack_account(&mint).is_none());
        let owner = Address::new_unique();
        let acc = token_account_data(TokenProgramKind::Token2022, auth, owner, 5, true).unwrap();
        assert_eq!(unpack_account(&acc).unwrap().amount, 5);
        assert!(unpack_mint(&acc).is_none());
        let plain = mint_data(TokenProgramKind::SplToken, 2, auth, 7, None).unwrap();
        assert_eq!(plain.len(), 82);
        assert!(!mint_has_transfer_fee(&plain));
        let parsed = json_parsed(&spl_token_interface::id(), &plain, |_| None).unwrap();
        assert_eq!(parsed["parsed"]["info"]["supply"], "7");
        assert!(json_parsed(&Address::default(), &plain, |_| None).is_none());
    }
}
