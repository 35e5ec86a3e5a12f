//! CAIP-2 network ids for Solana and their v1 names.

/// Solana mainnet-beta (first 32 chars of the genesis hash).
pub const SOLANA_MAINNET: &str = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp";
/// Solana devnet.
pub const SOLANA_DEVNET: &str = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
/// Mainnet USDC mint.
pub const USDC_MAINNET: &str = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v";
/// Devnet USDC mint.
pub const USDC_DEVNET: &str = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU";

/// v1 network name → CAIP-2 id.
pub fn from_v1_name(name: &str) -> Option<&'static str> {
    match name {
        "solana" => Some(SOLANA_MAINNET),
        "solana-devnet" => Some(SOLANA_DEVNET),
        _ => None,
    }
}

/// The known CAIP-2 id equal to `caip2`, as a `'static` string (configs hold owned ones).
pub fn known(caip2: &str) -> Option<&'static str> {
    [SOLANA_MAINNET, SOLANA_DEVNET]
        .into_iter()
        .find(|n| *n == caip2)
}

/// CAIP-2 id → v1 network name.
pub fn to_v1_name(caip2: &str) -> Option<&'static str> {
    match caip2 {
        SOLANA_MAINNET => Some("solana"),
        SOLANA_DEVNET => Some("solana-devnet"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_names_round_trip() {
        for id in [SOLANA_MAINNET, SOLANA_DEVNET] {
            assert_eq!(from_v1_name(to_v1_name(id).unwrap()), Some(id));
        }
        assert_eq!(from_v1_name("base-sepolia"), None);
    }
}
