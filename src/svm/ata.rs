//! Associated token account derivation.
//!
//! ATA(owner, mint, token program) = PDA of seeds `[owner, token_program, mint]` under the
//! Associated Token Account program. The token program is part of the seeds, so the same owner
//! and mint give different ATAs under SPL Token and Token-2022 — the destination check must
//! always derive under the transfer's own program (a bug the Go baseline had).
//!
//! A derivation costs a SHA-256 plus an off-curve test per bump tried (≈ 10–20 µs), a large
//! share of the verification budget. [`associated_token_address_cached`] memoises results in a
//! small process-wide map; the verifier only calls it with server-side inputs (payTo, fee
//! payer, allow-listed mint, the two token programs), and the map is cleared when it reaches
//! [`ATA_CACHE_CAPACITY`] entries, so it stays bounded whatever the callers pass.

use parking_lot::Mutex;
use solana_address::Address;
use std::collections::HashMap;
use std::sync::LazyLock;

/// Maximum entries of the derivation cache before it is cleared.
pub const ATA_CACHE_CAPACITY: usize = 4096;

type Key = (Address, Address, Address);
static CACHE: LazyLock<Mutex<HashMap<Key, Address>>> = LazyLock::new(Default::default);

/// The associated token account of `owner` for `mint` under `token_program`.
pub fn associated_token_address(
    owner: &Address,
    mint: &Address,
    token_program: &Address,
) -> Address {
    spl_associated_token_account_interface::address::get_associated_token_address_with_program_id(
        owner,
        mint,
        token_program,
    )
}

/// [`associated_token_address`] through the bounded process-wide cache.
pub fn associated_token_address_cached(
    owner: &Address,
    mint: &Address,
    token_program: &Address,
) -> Address {
    let key = (*owner, *mint, *token_program);
    if let Some(hit) = CACHE.lock().get(&key) {
        return *hit;
    }
    let derived = associated_token_address(owner, mint, token_program);
    let mut cache = CACHE.lock();
    if cache.len() >= ATA_CACHE_CAPACITY {
        cache.clear();
    }
    cache.insert(key, derived);
    derived
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::svm::constants::{ASSOCIATED_TOKEN_PROGRAM, SPL_TOKEN_PROGRAM, TOKEN_2022_PROGRAM};

    fn a(s: &str) -> Address {
        s.parse().unwrap()
    }

    /// Vectors from `tests/fixtures/x402-vectors/ata-create-fixtures*.json` (`context` objects,
    /// upstream x402-foundation/x402 test fixtures, Apache-2.0) and the README's PYUSD
    /// SPL-derived address.
    #[test]
    fn matches_official_fixture_vectors() {
        let pay_to = a("GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse");
        let usdc = a("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v");
        let pyusd = a("2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo");
        assert_eq!(
            associated_token_address(&pay_to, &usdc, &SPL_TOKEN_PROGRAM),
            a("DNDTCnZkNk358qDFZd9unHtnrc73SsXcpVWtwJJMrR4B")
        );
        assert_eq!(
            associated_token_address(&pay_to, &pyusd, &TOKEN_2022_PROGRAM),
            a("5AJ5PmLBPTY9JkKPSkSdNrghd1iqoWh1U55g3ByVG41y")
        );
        // Same owner and mint under the wrong program: a different address.
        assert_eq!(
            associated_token_address(&pay_to, &pyusd, &SPL_TOKEN_PROGRAM),
            a("6v1NJ9vKgoG2v7BJXjcZhBtdsMk33bSYsUX51DV3Jw17")
        );
    }

    #[test]
    fn cached_matches_uncached() {
        let owner = Address::new_from_array([0x21; 32]);
        let mint = Address::new_from_array([0x22; 32]);
        for program in [SPL_TOKEN_PROGRAM, TOKEN_2022_PROGRAM] {
            let direct = associated_token_address(&owner, &mint, &program);
            assert_eq!(
                associated_token_address_cached(&owner, &mint, &program),
                direct
            );
            assert_eq!(
                associated_token_address_cached(&owner, &mint, &program),
                direct
            );
        }
    }

    /// Re-read the vendored vector files themselves (tests/fixtures/x402-vectors/README.md).
    #[test]
    fn matches_vector_files() {
        let files = [
            (
                "ata-create-fixtures.json",
                include_str!("../../tests/fixtures/x402-vectors/ata-create-fixtures.json"),
            ),
            (
                "ata-create-fixtures-token2022.json",
                include_str!(
                    "../../tests/fixtures/x402-vectors/ata-create-fixtures-token2022.json"
                ),
            ),
        ];
        for (name, text) in files {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            let ctx = &v["context"];
            let get = |k: &str| a(ctx[k].as_str().unwrap());
            assert_eq!(
                associated_token_address(
                    &get("payTo"),
                    &get("payment_mint"),
                    &get("transfer_token_program")
                ),
                get("transfer_destination"),
                "{name}"
            );
            // The fixture instruction that is accepted lists the ATA program.
            assert_eq!(
                v["fixtures"][0]["instruction"]["program_id"].as_str(),
                Some(ASSOCIATED_TOKEN_PROGRAM.to_string().as_str())
            );
        }
    }
}
