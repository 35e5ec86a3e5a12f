//! `[payment]`: whether the RPC routes are paid, who is paid, in what, through which facilitators.

use serde::Deserialize;

use super::challenge::AcceptConfig;
use crate::facilitator::failover::FailoverPolicy;
use crate::facilitator::remote::RemoteFacilitatorConfig;

/// Payment settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentConfig {
    /// `false`: every route answers unpaid. `true`: RPC routes answer 402 until paid.
    pub enabled: bool,
    /// Owner wallet (base58) whose associated token account receives payments. The demo fills
    /// it from `[localnet]` when absent.
    pub pay_to: Option<String>,
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
}

impl Default for PaymentConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            pay_to: None,
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
        }
    }
}
