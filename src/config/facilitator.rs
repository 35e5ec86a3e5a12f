//! `[facilitator]` (the in-process `exact` SVM facilitator), `[[payment.remote_facilitators]]`
//! and `[payment.failover]`: every facilitator setting. Every field of the local one has a
//! default except the networks; [`LocalFacilitatorConfig::validate`] checks the combination.

use std::path::PathBuf;
use std::time::Duration;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use solana_address::Address;
use url::Url;

use crate::svm::constants::{DEFAULT_MAX_COMPUTE_UNIT_LIMIT, DEFAULT_MAX_COMPUTE_UNIT_PRICE};
use crate::svm::constants::{SPEC_MAX_COMPUTE_UNIT_LIMIT, SPEC_MAX_COMPUTE_UNIT_PRICE};

use super::ConfigError;

/// One Solana network the facilitator serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// CAIP-2 id, e.g. `solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1` (devnet). Payments for any other
    /// network are refused with `invalid_network`.
    pub network: String,
    /// Equivalent JSON-RPC endpoints of that network, tried in order with failover.
    pub rpc_urls: Vec<Url>,
    /// Base58 mints accepted as payment on this network (at least one). Anything else is
    /// refused before any RPC call (`invalid_exact_svm_payload_mint_not_allowed`).
    pub allowed_mints: Vec<String>,
}

/// `[facilitator]`: configuration of the in-process facilitator (`facilitator::local`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalFacilitatorConfig {
    /// Networks served (at least one). Default: none.
    pub networks: Vec<NetworkConfig>,
    /// Fee-payer keypair file (solana-keygen JSON array, a JSON array of such arrays, or base58).
    /// When set it wins over `fee_payer_env`. Default: unset.
    pub fee_payer_keypair: Option<PathBuf>,
    /// Environment variable holding the fee-payer key(s) (base58 64-byte secret, several
    /// separated by commas, or the JSON forms). Used when `fee_payer_keypair` is unset.
    /// Default: `FEE_PAYER_KEY`.
    pub fee_payer_env: Option<String>,
    /// Cap on `SetComputeUnitLimit` a client may ask the sponsor to pay for.
    /// Default: 200 000 (`svm::constants::DEFAULT_MAX_COMPUTE_UNIT_LIMIT`); at most 400 000.
    pub max_compute_unit_limit: u32,
    /// Cap on `SetComputeUnitPrice` in µlamports per CU.
    /// Default: 50 000 (`svm::constants::DEFAULT_MAX_COMPUTE_UNIT_PRICE`); at most 5 000 000.
    pub max_compute_unit_price: u64,
    /// Total timeout of one JSON-RPC request to one endpoint, in ms. Default: 3000.
    pub rpc_timeout_ms: u64,
    /// Life a payment's blockhash must still have at verification, in ms (converted to blocks
    /// at 400 ms per block): enough for the upstream call and the settlement. Must be below the
    /// 60 s a fresh blockhash lives. Default: 15 000 (38 blocks).
    pub min_blockhash_life_ms: u64,
    /// Interval between `getSignatureStatuses` polls while confirming, in ms. Default: 400.
    pub confirm_poll_ms: u64,
    /// Interval between re-broadcasts of the same signed bytes (and blockhash-validity checks)
    /// while confirming, in ms. Default: 2000.
    pub rebroadcast_ms: u64,
    /// Longest a settle may take, in ms, counted from the start of the call. Reached while
    /// the blockhash is still valid, the outcome is `settlement_pending` with the signature.
    /// Default: 30 000.
    pub settle_deadline_ms: u64,
    /// How long a settled, pending or in-flight payment (by message hash) is remembered, in
    /// seconds, so the same payment is not settled twice. Must outlive a blockhash (≥ 90 s)
    /// and the settle deadline. Default: 120.
    pub dedupe_ttl_secs: u64,
    /// Refuse payments without a memo instruction even when the requirements set no
    /// `extra.memo` (a set `extra.memo` is always checked). Default `false`, as the official
    /// facilitators; the gateway's own pre-check follows `[payment] require_memo`.
    pub require_memo: bool,
    /// How often each fee payer's SOL balance is read (in the background, never on the
    /// request path) into `x402_fee_payer_balance_lamports`, in seconds; 0 turns it off.
    /// Default: 60.
    pub balance_poll_secs: u64,
    /// A fee payer holding fewer lamports than this is logged as a warning at every poll.
    /// Default: 100 000 000 (0.1 SOL, about 20 000 settlements at the base fee).
    pub low_balance_lamports: u64,
}

impl Default for LocalFacilitatorConfig {
    fn default() -> Self {
        Self {
            networks: Vec::new(),
            fee_payer_keypair: None,
            fee_payer_env: Some("FEE_PAYER_KEY".into()),
            max_compute_unit_limit: DEFAULT_MAX_COMPUTE_UNIT_LIMIT,
            max_compute_unit_price: DEFAULT_MAX_COMPUTE_UNIT_PRICE,
            rpc_timeout_ms: 3000,
            min_blockhash_life_ms: 15_000,
            confirm_poll_ms: 400,
            rebroadcast_ms: 2000,
            settle_deadline_ms: 30_000,
            dedupe_ttl_secs: 120,
            require_memo: false,
            balance_poll_secs: 60,
            low_balance_lamports: 100_000_000,
        }
    }
}

impl LocalFacilitatorConfig {
    /// A configuration serving one network with defaults everywhere else.
    pub fn single(network: &str, rpc_urls: Vec<Url>, allowed_mints: Vec<String>) -> Self {
        Self {
            networks: vec![NetworkConfig {
                network: network.to_owned(),
                rpc_urls,
                allowed_mints,
            }],
            ..Self::default()
        }
    }

    /// Checks every rule stated on the fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail =
            |field: &str, m: String| Err(ConfigError::invalid(format!("facilitator.{field}"), m));
        if self.networks.is_empty() {
            return fail("networks", "at least one network is required".into());
        }
        for (i, n) in self.networks.iter().enumerate() {
            if !n.network.starts_with("solana:") || n.network.len() <= "solana:".len() {
                return fail(
                    &format!("networks[{i}].network"),
                    "must be a solana: CAIP-2 id".into(),
                );
            }
            if self.networks[..i].iter().any(|o| o.network == n.network) {
                return fail(
                    &format!("networks[{i}].network"),
                    format!("{} is listed twice", n.network),
                );
            }
            if n.rpc_urls.is_empty() {
                return fail(
                    &format!("networks[{i}].rpc_urls"),
                    "at least one URL is required".into(),
                );
            }
            if let Some(u) = n
                .rpc_urls
                .iter()
                .find(|u| !matches!(u.scheme(), "http" | "https"))
            {
                return fail(
                    &format!("networks[{i}].rpc_urls"),
                    format!("{u} is not an http(s) URL"),
                );
            }
            if n.allowed_mints.is_empty() {
                return fail(
                    &format!("networks[{i}].allowed_mints"),
                    "at least one mint is required".into(),
                );
            }
            if let Some(m) = n
                .allowed_mints
                .iter()
                .find(|m| m.parse::<Address>().is_err())
            {
                return fail(
                    &format!("networks[{i}].allowed_mints"),
                    format!("{m} is not a base58 address"),
                );
            }
        }
        if self.max_compute_unit_limit == 0
            || self.max_compute_unit_limit > SPEC_MAX_COMPUTE_UNIT_LIMIT
        {
            return fail(
                "max_compute_unit_limit",
                format!("must be in 1..={SPEC_MAX_COMPUTE_UNIT_LIMIT}"),
            );
        }
        if self.max_compute_unit_price > SPEC_MAX_COMPUTE_UNIT_PRICE {
            return fail(
                "max_compute_unit_price",
                format!("must be at most {SPEC_MAX_COMPUTE_UNIT_PRICE}"),
            );
        }
        if self.rpc_timeout_ms == 0 || self.rpc_timeout_ms > 60_000 {
            return fail("rpc_timeout_ms", "must be in 1..=60000".into());
        }
        if self.min_blockhash_life_ms >= 60_000 {
            return fail(
                "min_blockhash_life_ms",
                "must be below 60000 (a blockhash lives ~60 s)".into(),
            );
        }
        if self.confirm_poll_ms == 0 || self.confirm_poll_ms > self.rebroadcast_ms {
            return fail(
                "confirm_poll_ms",
                "must be positive and at most rebroadcast_ms".into(),
            );
        }
        if self.rebroadcast_ms > self.settle_deadline_ms {
            return fail(
                "rebroadcast_ms",
                "must be at most settle_deadline_ms".into(),
            );
        }
        if self.dedupe_ttl_secs < 90
            || self.dedupe_ttl_secs.saturating_mul(1000) <= self.settle_deadline_ms
        {
            return fail(
                "dedupe_ttl_secs",
                "must be at least 90 and longer than settle_deadline_ms".into(),
            );
        }
        Ok(())
    }

    /// `rpc_timeout_ms` as a duration.
    pub fn rpc_timeout(&self) -> Duration {
        Duration::from_millis(self.rpc_timeout_ms)
    }
}

/// One `[[payment.remote_facilitators]]` entry: a facilitator over HTTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteFacilitatorConfig {
    /// Name for logs.
    pub name: String,
    /// Base URL; `/supported`, `/verify`, `/settle` are appended.
    pub url: Url,
    /// Auth headers, each read from an environment variable: header name → variable name
    /// (e.g. `{ authorization = "CDP_FACILITATOR_AUTH" }`, `{ x-facilitator-secret = "FACILITATOR_SECRET" }`).
    #[serde(default)]
    pub headers_from_env: BTreeMap<String, String>,
    /// Connect timeout.
    #[serde(default = "default_connect_ms")]
    pub connect_timeout_ms: u64,
    /// Whole-call timeout (a settle includes on-chain confirmation: keep it generous).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_connect_ms() -> u64 {
    1_000
}

fn default_timeout_ms() -> u64 {
    30_000
}

/// Backoff policy (`[payment.failover]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailoverPolicy {
    /// Rounds over all facilitators.
    pub attempts: u32,
    /// First wait between rounds.
    pub base_ms: u64,
    /// Longest wait between rounds.
    pub cap_ms: u64,
    /// Growth of the wait per round.
    pub factor: u32,
    /// Total time a call may take, waits included (keep it under `maxTimeoutSeconds`).
    pub budget_ms: u64,
}

impl Default for FailoverPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base_ms: 1_000,
            cap_ms: 10_000,
            factor: 2,
            budget_ms: 20_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> LocalFacilitatorConfig {
        LocalFacilitatorConfig::single(
            crate::x402::network::SOLANA_DEVNET,
            vec!["http://127.0.0.1:8899".parse().unwrap()],
            vec![crate::x402::network::USDC_DEVNET.into()],
        )
    }

    #[test]
    fn defaults_validate_once_a_network_is_set() {
        assert!(LocalFacilitatorConfig::default().validate().is_err());
        ok().validate().unwrap();
        let d = LocalFacilitatorConfig::default();
        assert_eq!(d.fee_payer_env.as_deref(), Some("FEE_PAYER_KEY"));
        assert_eq!(d.dedupe_ttl_secs, 120);
    }

    #[test]
    fn parses_toml_and_refuses_unknown_fields() {
        let text = r#"
            fee_payer_keypair = "/etc/x402/fee-payer.json"
            settle_deadline_ms = 20000
            [[networks]]
            network = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"
            rpc_urls = ["https://a.example/", "https://b.example/"]
            allowed_mints = ["4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"]
        "#;
        let c: LocalFacilitatorConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.networks[0].rpc_urls.len(), 2);
        assert_eq!(c.settle_deadline_ms, 20_000);
        assert_eq!(c.rpc_timeout_ms, 3000);
        assert!(toml::from_str::<LocalFacilitatorConfig>("bogus = 1").is_err());
    }

    #[test]
    fn refuses_bad_combinations() {
        let mut c = ok();
        c.min_blockhash_life_ms = 60_000;
        assert!(c.validate().is_err());
        let mut c = ok();
        c.dedupe_ttl_secs = 30;
        assert!(c.validate().is_err());
        let mut c = ok();
        c.networks[0].allowed_mints = vec!["not-a-mint".into()];
        assert!(c.validate().is_err());
        let mut c = ok();
        c.networks[0].network = "eip155:8453".into();
        assert!(c.validate().is_err());
        let mut c = ok();
        c.max_compute_unit_price = 5_000_001;
        assert!(c.validate().is_err());
        let mut c = ok();
        c.confirm_poll_ms = 0;
        assert!(c.validate().is_err());
    }
}
