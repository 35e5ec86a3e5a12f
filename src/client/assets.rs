//! What an offer's network and asset are, in words, and an atomic amount in dollars when the
//! asset is a known dollar stablecoin. Only well-known mints are priced: an unknown mint shows
//! its atomic amount alone rather than a guessed dollar value.

use crate::x402::network::{SOLANA_DEVNET, SOLANA_MAINNET, USDC_DEVNET, USDC_MAINNET};

/// Solana testnet's CAIP-2 id.
pub const SOLANA_TESTNET: &str = "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z";

/// A dollar stablecoin this client recognises: (network, mint, symbol, decimals).
const STABLECOINS: &[(&str, &str, &str, u8)] = &[
    (SOLANA_MAINNET, USDC_MAINNET, "USDC", 6),
    (
        SOLANA_MAINNET,
        "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB",
        "USDT",
        6,
    ),
    (
        SOLANA_MAINNET,
        "2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo",
        "PYUSD",
        6,
    ),
    (SOLANA_DEVNET, USDC_DEVNET, "USDC", 6),
    // The official SDKs reuse the devnet USDC mint address on testnet.
    (SOLANA_TESTNET, USDC_DEVNET, "USDC", 6),
];

/// A known dollar stablecoin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stablecoin {
    /// `USDC`, `USDT`, `PYUSD`.
    pub symbol: &'static str,
    /// Decimals of the mint.
    pub decimals: u8,
}

/// The stablecoin `asset` is on `network`, if it is one we know.
pub fn stablecoin(network: &str, asset: &str) -> Option<Stablecoin> {
    STABLECOINS
        .iter()
        .find(|(n, mint, _, _)| *n == network && *mint == asset)
        .map(|&(_, _, symbol, decimals)| Stablecoin { symbol, decimals })
}

/// `mainnet`, `devnet`, `testnet`, or the id itself.
pub fn network_name(network: &str) -> &str {
    match network {
        SOLANA_MAINNET => "mainnet",
        SOLANA_DEVNET => "devnet",
        SOLANA_TESTNET => "testnet",
        other => other,
    }
}

/// The public RPC of a Solana network, for the mint and a blockhash when `--rpc` is not given
/// (the official clients use the same defaults).
pub fn public_rpc(network: &str) -> Option<&'static str> {
    match network {
        SOLANA_MAINNET => Some("https://api.mainnet-beta.solana.com"),
        SOLANA_DEVNET => Some("https://api.devnet.solana.com"),
        SOLANA_TESTNET => Some("https://api.testnet.solana.com"),
        _ => None,
    }
}

/// `atomic` with `decimals` as a decimal string without trailing zeros (`1500`, 6 → `0.0015`).
pub fn decimal(atomic: u64, decimals: u8) -> String {
    let scale = 10u128.pow(u32::from(decimals));
    let (whole, frac) = (u128::from(atomic) / scale, u128::from(atomic) % scale);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:0width$}", width = usize::from(decimals));
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// The amount in dollars (`$0.001`), when `asset` is a known stablecoin on `network`.
pub fn usd(network: &str, asset: &str, atomic: u64) -> Option<String> {
    stablecoin(network, asset).map(|coin| format!("${}", decimal(atomic, coin.decimals)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_of_known_stablecoins_only() {
        assert_eq!(
            usd(SOLANA_DEVNET, USDC_DEVNET, 1000).as_deref(),
            Some("$0.001")
        );
        assert_eq!(
            usd(SOLANA_MAINNET, USDC_MAINNET, 2_500_000).as_deref(),
            Some("$2.5")
        );
        assert_eq!(usd(SOLANA_MAINNET, USDC_MAINNET, 0).as_deref(), Some("$0"));
        // The devnet mint on mainnet is not USDC.
        assert_eq!(usd(SOLANA_MAINNET, USDC_DEVNET, 1000), None);
        assert_eq!(decimal(u64::MAX, 6), "18446744073709.551615");
        assert_eq!(decimal(7, 0), "7");
        assert_eq!(network_name("solana:custom"), "solana:custom");
    }
}
