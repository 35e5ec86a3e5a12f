//! `[payment]`: whether the RPC routes are paid, who is paid, in what, through which facilitators.

use serde::Deserialize;

use super::facilitator::{FailoverPolicy, RemoteFacilitatorConfig};
use super::ConfigError;

/// Payment settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentConfig {
    /// `false`: every route answers unpaid. `true`: RPC routes answer 402 until paid.
    pub enabled: bool,
    /// With payments off, serve providers that hold an API key anyway (anyone can then spend
    /// the operator's key for free). Without it such a config is refused at load.
    pub allow_unpaid: bool,
    /// Owner wallet (base58) whose associated token account receives payments. The demo fills
    /// it from `[localnet]` when absent.
    pub pay_to: Option<String>,
    /// Environment variable holding `pay_to` (wins over the file), so one image serves several
    /// operators; when named and payments are on, it must be set.
    pub pay_to_env: Option<String>,
    /// `maxTimeoutSeconds` of every requirement: about a blockhash's life.
    pub max_timeout_seconds: u64,
    /// Ways to pay (one `accepts` entry each). The demo fills devnet USDC when empty.
    pub accepts: Vec<AcceptConfig>,
    /// Facilitators over HTTP, tried after the in-process one (when `[facilitator]` is set).
    pub remote_facilitators: Vec<RemoteFacilitatorConfig>,
    /// Backoff across facilitators.
    pub failover: FailoverPolicy,
    /// How often the facilitators' `/supported` (our fee payer) is refreshed, in seconds.
    pub supported_refresh_secs: u64,
    /// `resource.description` of challenges.
    pub description: String,
    /// How long a claim on a payment in flight lives if its request never finishes it (it
    /// must outlast verify + upstream + settle); seconds.
    pub claim_ttl_secs: u64,
    /// How long a settled payment and the answer it bought are kept (replay protection and
    /// answer recovery); seconds.
    pub settled_ttl_secs: u64,
    /// How often the reconciler looks at settlements whose outcome was unknown; milliseconds.
    pub reconcile_interval_ms: u64,
    /// Whether clients must send the x402 `payment-identifier` extension.
    pub require_payment_identifier: bool,
    /// Refuse payments without a memo instruction even when the offer sets no `extra.memo`.
    /// Default `false`, as the official facilitators: v1-era clients and `x402-solana` build
    /// no memo. A memo-less payment is still one transaction per (blockhash, message), so
    /// duplicate detection is unchanged; `true` is for operators who want every payment tagged.
    pub require_memo: bool,
}

impl PaymentConfig {
    /// With payments on: who is paid and in what must be known (the demo derives both from
    /// `[localnet]` before this runs). Facilitators are checked across sections by `Config`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: String| {
            Err(ConfigError::invalid(format!("payment.{field}"), message))
        };
        if !self.enabled {
            return Ok(());
        }
        match &self.pay_to {
            None if self.pay_to_env.is_some() => {
                let var = self.pay_to_env.as_deref().unwrap_or_default();
                return invalid(
                    "pay_to_env",
                    format!("{var} is not set (the wallet whose USDC account is paid)"),
                );
            }
            None => {
                return invalid(
                    "pay_to",
                    "is required when payment is enabled (or add [localnet] for the demo)".into(),
                )
            }
            Some(pay_to) if !is_address(pay_to) => {
                return invalid("pay_to", format!("{pay_to:?} is not a base58 address"))
            }
            Some(_) => {}
        }
        if self.accepts.is_empty() {
            return invalid(
                "accepts",
                "needs at least one network and asset when payment is enabled".into(),
            );
        }
        for (i, accept) in self.accepts.iter().enumerate() {
            let reference = accept.network.strip_prefix("solana:").unwrap_or("");
            if reference.is_empty() {
                return invalid(
                    &format!("accepts[{i}].network"),
                    format!("{:?} is not a Solana CAIP-2 id", accept.network),
                );
            }
            for (field, value) in [
                ("asset", &accept.asset),
                ("token_program", &accept.token_program),
            ] {
                if !is_address(value) {
                    return invalid(
                        &format!("accepts[{i}].{field}"),
                        format!("{value:?} is not a base58 address"),
                    );
                }
            }
        }
        for (field, value) in [
            ("max_timeout_seconds", self.max_timeout_seconds),
            ("claim_ttl_secs", self.claim_ttl_secs),
            ("settled_ttl_secs", self.settled_ttl_secs),
            ("reconcile_interval_ms", self.reconcile_interval_ms),
        ] {
            if value == 0 {
                return invalid(field, "must be greater than 0".into());
            }
        }
        Ok(())
    }
}

/// A base58 string of 32 bytes (a Solana address).
fn is_address(s: &str) -> bool {
    s.parse::<solana_address::Address>().is_ok()
}

impl Default for PaymentConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            allow_unpaid: false,
            pay_to: None,
            pay_to_env: None,
            max_timeout_seconds: 60,
            accepts: Vec::new(),
            remote_facilitators: Vec::new(),
            failover: FailoverPolicy::default(),
            supported_refresh_secs: 300,
            description: "Solana JSON-RPC call, paid per request".into(),
            claim_ttl_secs: 180,
            settled_ttl_secs: 24 * 3600,
            reconcile_interval_ms: 5000,
            require_payment_identifier: false,
            require_memo: false,
        }
    }
}

/// One way to pay that the gateway offers (`[[payment.accepts]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptConfig {
    /// CAIP-2 network.
    pub network: String,
    /// Mint of a 6-decimal USD stablecoin (prices are in its atomic units).
    pub asset: String,
    /// The mint's decimals, for local pre-verification (the facilitator checks the chain's).
    #[serde(default = "default_decimals")]
    pub decimals: u8,
    /// The mint's token program, for local pre-verification (default SPL Token).
    #[serde(default = "default_token_program")]
    pub token_program: String,
}

fn default_decimals() -> u8 {
    6
}

/// SPL Token program id.
pub fn default_token_program() -> String {
    "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA".into()
}
