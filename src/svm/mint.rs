//! Parsing and screening of the mint account the payment is made in.
//!
//! Invariants of every [`MintInfo`] returned by [`parse_mint`]:
//!
//! * the account is owned by SPL Token or Token-2022 (`token_program` is that owner);
//! * the data is an initialized mint (SPL Token: exactly 82 bytes; Token-2022: 82 bytes or a
//!   mint-typed account with well-formed TLV extensions);
//! * a Token-2022 mint carries only extensions from [`ALLOWED_MINT_EXTENSIONS`].
//!
//! The allow-list holds extensions that neither change what the recipient receives or keeps nor
//! run extra code on transfer: `MetadataPointer`, `TokenMetadata`, `GroupPointer`, `TokenGroup`,
//! `GroupMemberPointer`, `TokenGroupMember` (pure metadata) and `MintCloseAuthority` (a mint can
//! only be closed at zero supply, which does not affect a completed payment).
//!
//! Everything else is rejected, deliberately including mints that are common in the wild:
//! `TransferFeeConfig` (recipient gets less — even a zero fee can be raised later),
//! `TransferHook` (runs arbitrary code the sponsor pays for), `PermanentDelegate` (issuer can
//! take the tokens back), `NonTransferable`, `DefaultAccountState` (frozen-by-default accounts),
//! `ConfidentialTransferMint` / `ConfidentialTransferFeeConfig` / `ConfidentialMintBurn`,
//! `InterestBearingConfig` and `ScaledUiAmount` (UI amount ≠ raw amount), `Pausable`, and any
//! extension type this crate version does not know. PYUSD, for example, is rejected (transfer
//! fee config, hook, permanent delegate). Widening the list is a policy decision for later.

use super::constants::{SPL_TOKEN_PROGRAM, TOKEN_2022_PROGRAM};
use super::error::VerifyError;
use solana_address::Address;
use spl_token_2022_interface::extension::{
    BaseStateWithExtensions, ExtensionType, StateWithExtensions,
};
use spl_token_2022_interface::state::Mint;

/// Size of a base mint account.
pub const MINT_BASE_LEN: usize = 82;

/// Token-2022 mint extensions we accept (see the module doc).
pub const ALLOWED_MINT_EXTENSIONS: &[ExtensionType] = &[
    ExtensionType::MetadataPointer,
    ExtensionType::TokenMetadata,
    ExtensionType::GroupPointer,
    ExtensionType::TokenGroup,
    ExtensionType::GroupMemberPointer,
    ExtensionType::TokenGroupMember,
    ExtensionType::MintCloseAuthority,
];

/// What verification needs to know about the payment mint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MintInfo {
    /// Mint address.
    pub address: Address,
    /// Owner program of the mint (SPL Token or Token-2022).
    pub token_program: Address,
    /// Decimals of the mint.
    pub decimals: u8,
}

/// Parse and screen a mint account (`owner_program` = the account's owner, `data` = its data).
pub fn parse_mint(
    address: Address,
    owner_program: &Address,
    data: &[u8],
) -> Result<MintInfo, VerifyError> {
    let is_2022 = if *owner_program == SPL_TOKEN_PROGRAM {
        false
    } else if *owner_program == TOKEN_2022_PROGRAM {
        true
    } else {
        return Err(VerifyError::MintInvalidOwner(*owner_program));
    };
    if !is_2022 && data.len() != MINT_BASE_LEN {
        return Err(VerifyError::MintInvalid("SPL Token mint must be 82 bytes"));
    }
    if data.len() < MINT_BASE_LEN {
        return Err(VerifyError::MintInvalid("account too short for a mint"));
    }
    let state = StateWithExtensions::<Mint>::unpack(data)
        .map_err(|_| VerifyError::MintInvalid("not an initialized mint"))?;
    if !state.base.is_initialized {
        return Err(VerifyError::MintInvalid("not an initialized mint"));
    }
    let types = state
        .get_extension_types()
        .map_err(|_| VerifyError::MintInvalid("unreadable or unknown extensions"))?;
    for t in types {
        if !ALLOWED_MINT_EXTENSIONS.contains(&t) {
            return Err(VerifyError::MintExtensionNotAllowed(extension_name(t)));
        }
    }
    Ok(MintInfo {
        address,
        token_program: *owner_program,
        decimals: state.base.decimals,
    })
}

fn extension_name(t: ExtensionType) -> &'static str {
    use ExtensionType::*;
    match t {
        TransferFeeConfig => "TransferFeeConfig",
        TransferFeeAmount => "TransferFeeAmount",
        MintCloseAuthority => "MintCloseAuthority",
        ConfidentialTransferMint => "ConfidentialTransferMint",
        ConfidentialTransferAccount => "ConfidentialTransferAccount",
        DefaultAccountState => "DefaultAccountState",
        ImmutableOwner => "ImmutableOwner",
        MemoTransfer => "MemoTransfer",
        NonTransferable => "NonTransferable",
        InterestBearingConfig => "InterestBearingConfig",
        CpiGuard => "CpiGuard",
        PermanentDelegate => "PermanentDelegate",
        NonTransferableAccount => "NonTransferableAccount",
        TransferHook => "TransferHook",
        TransferHookAccount => "TransferHookAccount",
        ConfidentialTransferFeeConfig => "ConfidentialTransferFeeConfig",
        ConfidentialTransferFeeAmount => "ConfidentialTransferFeeAmount",
        MetadataPointer => "MetadataPointer",
        TokenMetadata => "TokenMetadata",
        GroupPointer => "GroupPointer",
        TokenGroup => "TokenGroup",
        GroupMemberPointer => "GroupMemberPointer",
        TokenGroupMember => "TokenGroupMember",
        ConfidentialMintBurn => "ConfidentialMintBurn",
        ScaledUiAmount => "ScaledUiAmount",
        Pausable => "Pausable",
        PausableAccount => "PausableAccount",
        _ => "unknown",
    }
}

/// Test helpers that build raw mint account data (also used by the integration tests).
#[doc(hidden)]
pub mod test_data {
    use super::MINT_BASE_LEN;
    use spl_token_2022_interface::extension::ExtensionType;

    /// Base 82-byte mint layout: authority option, supply, decimals, initialized, freeze option.
    pub fn base_mint(decimals: u8, initialized: bool) -> Vec<u8> {
        let mut d = Vec::with_capacity(MINT_BASE_LEN);
        d.extend_from_slice(&1u32.to_le_bytes());
        d.extend_from_slice(&[7u8; 32]);
        d.extend_from_slice(&1_000_000_000u64.to_le_bytes());
        d.push(decimals);
        d.push(u8::from(initialized));
        d.extend_from_slice(&0u32.to_le_bytes());
        d.extend_from_slice(&[0u8; 32]);
        d
    }

    /// A Token-2022 mint with the given extensions (each with a zeroed value of `len` bytes).
    pub fn mint_2022(decimals: u8, extensions: &[(ExtensionType, u16)]) -> Vec<u8> {
        let mut d = base_mint(decimals, true);
        if extensions.is_empty() {
            return d;
        }
        d.resize(165, 0); // padded to the Account length
        d.push(1); // AccountType::Mint
        for (t, len) in extensions {
            d.extend_from_slice(&u16::from(*t).to_le_bytes());
            d.extend_from_slice(&len.to_le_bytes());
            d.extend(std::iter::repeat_n(0u8, usize::from(*len)));
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::test_data::*;
    use super::*;

    fn addr() -> Address {
        Address::new_from_array([9; 32])
    }

    #[test]
    fn spl_token_mint() {
        let info = parse_mint(addr(), &SPL_TOKEN_PROGRAM, &base_mint(6, true)).unwrap();
        assert_eq!(info.decimals, 6);
        assert_eq!(info.token_program, SPL_TOKEN_PROGRAM);
        assert_eq!(info.address, addr());
    }

    #[test]
    fn rejects_wrong_owner_uninitialized_and_bad_lengths() {
        let sys = Address::default();
        assert_eq!(
            parse_mint(addr(), &sys, &base_mint(6, true)),
            Err(VerifyError::MintInvalidOwner(sys))
        );
        assert!(matches!(
            parse_mint(addr(), &SPL_TOKEN_PROGRAM, &base_mint(6, false)),
            Err(VerifyError::MintInvalid(_))
        ));
        let mut long = base_mint(6, true);
        long.push(0);
        assert!(matches!(
            parse_mint(addr(), &SPL_TOKEN_PROGRAM, &long),
            Err(VerifyError::MintInvalid(_))
        ));
        assert!(matches!(
            parse_mint(addr(), &TOKEN_2022_PROGRAM, &[0u8; 10]),
            Err(VerifyError::MintInvalid(_))
        ));
        // A token *account* (AccountType 2) is not a mint.
        let mut acct = mint_2022(6, &[(ExtensionType::MetadataPointer, 64)]);
        acct[165] = 2;
        assert!(matches!(
            parse_mint(addr(), &TOKEN_2022_PROGRAM, &acct),
            Err(VerifyError::MintInvalid(_))
        ));
    }

    #[test]
    fn token_2022_allowed_extensions() {
        let d = mint_2022(
            9,
            &[
                (ExtensionType::MetadataPointer, 64),
                (ExtensionType::MintCloseAuthority, 32),
            ],
        );
        let info = parse_mint(addr(), &TOKEN_2022_PROGRAM, &d).unwrap();
        assert_eq!(info.decimals, 9);
        assert_eq!(info.token_program, TOKEN_2022_PROGRAM);
        let plain = parse_mint(addr(), &TOKEN_2022_PROGRAM, &mint_2022(2, &[])).unwrap();
        assert_eq!(plain.decimals, 2);
    }

    #[test]
    fn token_2022_forbidden_extensions() {
        for t in [
            ExtensionType::TransferFeeConfig,
            ExtensionType::TransferHook,
            ExtensionType::PermanentDelegate,
            ExtensionType::NonTransferable,
            ExtensionType::DefaultAccountState,
            ExtensionType::ConfidentialTransferMint,
            ExtensionType::InterestBearingConfig,
            ExtensionType::ScaledUiAmount,
            ExtensionType::Pausable,
        ] {
            let d = mint_2022(6, &[(ExtensionType::MetadataPointer, 64), (t, 8)]);
            let e = parse_mint(addr(), &TOKEN_2022_PROGRAM, &d).unwrap_err();
            assert_eq!(e, VerifyError::MintExtensionNotAllowed(extension_name(t)));
            assert_eq!(e.reason(), "invalid_exact_svm_mint_extension_not_allowed");
        }
    }

    #[test]
    fn unknown_extension_type_fails_closed() {
        let mut d = mint_2022(6, &[(ExtensionType::MetadataPointer, 4)]);
        d[166] = 0xee;
        d[167] = 0x7e;
        assert!(matches!(
            parse_mint(addr(), &TOKEN_2022_PROGRAM, &d),
            Err(VerifyError::MintInvalid(_))
        ));
    }
}
