//! Everything that can stop a paid call, one case per cause, each with what to do about it.
//! The proxy turns them into JSON-RPC errors ([`ClientError::reason`] is `error.data.reason`),
//! the command line prints them.

use std::fmt;

use super::wallet::WalletError;

/// Why a call could not be paid (or was paid and still failed).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached, or did not answer in time.
    #[error("{what}: {source}")]
    Transport {
        /// Which call.
        what: String,
        /// The transport error (timeouts included).
        source: reqwest::Error,
    },
    /// The answer is larger than this client reads.
    #[error("the answer of {url} is larger than {max} bytes")]
    AnswerTooLarge {
        /// Whose.
        url: String,
        /// The cap.
        max: usize,
    },
    /// A 402 without a readable `PAYMENT-REQUIRED` header.
    #[error("the server answered 402 without a readable PAYMENT-REQUIRED header ({0}); it does not speak x402 v2")]
    NotX402(String),
    /// A v1-only server (the challenge in the body, no header).
    #[error("the server speaks x402 v1 only (its challenge is in the 402 body); x402-pay pays x402 v2 servers")]
    V1Only,
    /// No `exact` offer on a Solana network (matching the filters).
    #[error("no exact Solana offer{filter} among the accepts: {offered}")]
    NoOffer {
        /// ` for network X / asset Y` when filters were given.
        filter: String,
        /// `scheme on network` of each offer.
        offered: String,
    },
    /// The offer is unusable as written.
    #[error("the offer is malformed: {0}")]
    BadOffer(String),
    /// The price is above `--max-amount` / `--per-call-max`.
    #[error("the price, {amount} atomic units, is above the cap of {cap} for one call (raise --max-amount / --per-call-max to pay it)")]
    OverCap {
        /// Asked.
        amount: u64,
        /// Allowed.
        cap: u64,
    },
    /// The total spend cap would be passed.
    #[error("spend cap reached: {spent} of {cap} atomic units spent (or in flight), this call costs {amount}")]
    SpendCap {
        /// Spent or reserved so far.
        spent: u64,
        /// `--max-spend`.
        cap: u64,
        /// This call's price.
        amount: u64,
    },
    /// The mint or a blockhash could not be read from the cluster.
    #[error("reading {what} from the cluster RPC {rpc}: {message}")]
    Rpc {
        /// `the mint`, `a blockhash`.
        what: &'static str,
        /// Which endpoint.
        rpc: String,
        /// The RPC error.
        message: String,
    },
    /// No cluster RPC is known for the offer's network.
    #[error("no public RPC is known for network {0}: pass --rpc URL (a Solana RPC of that cluster, for the mint and a blockhash)")]
    NoRpc(String),
    /// The payment transaction could not be built.
    #[error("building the payment: {0}")]
    Build(#[from] crate::svm::client::ClientError),
    /// The server refused the payment and asked again (402 with a new challenge).
    #[error("the server refused the payment: {}", Explained(reason, message))]
    Refused {
        /// The machine reason (`invalid_exact_svm_payload_amount_mismatch`...).
        reason: String,
        /// The server's full message.
        message: String,
    },
    /// Settlement failed; nothing was charged and the answer was withheld.
    #[error(
        "the payment did not settle, nothing was charged: {}",
        Explained(reason, message)
    )]
    SettleFailed {
        /// The receipt's `errorReason`.
        reason: String,
        /// The receipt's `errorMessage`.
        message: String,
    },
    /// Settlement was sent but not confirmed: the payment may still land.
    #[error("the settlement {transaction} is not confirmed yet; retry the same call after {retry_after} s to get the answer (the payment may still land)")]
    SettlePending {
        /// The transaction signature, if known.
        transaction: String,
        /// Seconds.
        retry_after: u64,
    },
    /// 409: this payment is already being used or was used for another request.
    #[error("{code}: {message}")]
    Conflict {
        /// `payment_in_progress` / `payment_already_used`.
        code: String,
        /// The server's message.
        message: String,
    },
    /// 429.
    #[error("rate limited ({code}); retry after {retry_after} s")]
    RateLimited {
        /// The server's code.
        code: String,
        /// Seconds.
        retry_after: u64,
    },
    /// 503 of the payment path: nothing was charged.
    #[error("the server cannot take payments right now ({message}); nothing was charged, retry after {retry_after} s")]
    Unavailable {
        /// The server's message.
        message: String,
        /// Seconds.
        retry_after: u64,
    },
    /// The wallet.
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// The credits API said something this client cannot use.
    #[error("credits: {0}")]
    Credits(String),
}

impl ClientError {
    /// A stable snake_case name of the cause (the proxy's `error.data.reason`).
    pub fn reason(&self) -> &str {
        match self {
            Self::Transport { .. } => "gateway_unreachable",
            Self::AnswerTooLarge { .. } => "answer_too_large",
            Self::NotX402(_) | Self::V1Only => "not_x402",
            Self::NoOffer { .. } => "no_solana_offer",
            Self::BadOffer(_) => "malformed_offer",
            Self::OverCap { .. } => "price_over_cap",
            Self::SpendCap { .. } => "spend_cap_reached",
            Self::Rpc { .. } | Self::NoRpc(_) => "cluster_rpc_failed",
            Self::Build(_) => "payment_not_built",
            Self::Refused { reason, .. } | Self::SettleFailed { reason, .. } => reason,
            Self::SettlePending { .. } => "settlement_pending",
            Self::Conflict { code, .. } | Self::RateLimited { code, .. } => code,
            Self::Unavailable { .. } => "payment_unavailable",
            Self::Wallet(_) => "no_wallet",
            Self::Credits(_) => "credits_failed",
        }
    }

    pub(crate) fn transport(what: impl Into<String>, source: reqwest::Error) -> Self {
        Self::Transport {
            what: what.into(),
            source,
        }
    }
}

/// `reason: message` followed by what the reason usually means for the payer.
struct Explained<'a>(&'a String, &'a String);

impl fmt::Display for Explained<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (reason, message) = (self.0, self.1);
        if message.is_empty() || message == reason {
            write!(f, "{reason}")?;
        } else if message.starts_with(reason.as_str()) {
            write!(f, "{message}")?;
        } else {
            write!(f, "{reason}: {message}")?;
        }
        match advice(reason) {
            Some(advice) => write!(f, " ({advice})"),
            None => Ok(()),
        }
    }
}

/// What a refusal reason usually means for the payer, for the reasons a correct client can
/// still meet (the others mean the server and this client disagree on the protocol).
pub fn advice(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "invalid_exact_svm_transaction_simulation_failed" | "transaction_failed"
        | "invalid_exact_svm_transaction_failed" => {
            "the transfer failed on the cluster: usually the wallet lacks the token (or has no \
             token account for this mint), or the payment was already used"
        }
        "insufficient_funds" => "the wallet does not hold enough of the asset",
        "invalid_exact_svm_payload_blockhash_expired" => {
            "the blockhash expired before the server checked it: retry (is --rpc the same cluster as the server's?)"
        }
        "invalid_exact_svm_payload_amount_mismatch" => {
            "the price changed between the challenge and the payment: retry"
        }
        "invalid_exact_svm_fee_payer_not_managed_by_facilitator"
        | "invalid_exact_svm_fee_payer_mismatch" => {
            "the server's fee payer rotated since the challenge: retry"
        }
        "invalid_exact_svm_payload_mint_not_allowed" | "invalid_exact_svm_mint_invalid" => {
            "the server does not take this mint on this cluster (is --rpc the server's cluster?)"
        }
        "duplicate_settlement" => "this payment was already settled for another request",
        "insufficient_balance" => "the credit balance does not cover the call: top up",
        "settlement_pending" => "the settlement may still land: retry the same call later",
        _ => return None,
    })
}
