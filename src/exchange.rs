//! The record of one request: what each layer did, typed, filled once by the layer that acted
//! and read by the one observing layer (request log, metrics, usage counters).
//!
//! A leaf: it imports nothing from the request path, so every layer can write to it and the
//! observer can read it without the layers knowing each other. Each layer puts its part into
//! the [`Exchange`] response extension on the way out ([`Exchange::of`]); no layer reads
//! another's part except the paygate, which settles only on [`UpstreamOutcome::Success`].

use std::borrow::Cow;

use axum::response::Response;

use crate::config::Cluster;

/// What the upstream call amounted to (payment settles only on `Success`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamOutcome {
    /// HTTP 2xx and a JSON-RPC `result` (for a batch: at least one element with a `result`).
    Success,
    /// The provider answered, but only with JSON-RPC errors.
    RpcError,
    /// No usable answer (timeout, transport, HTTP error, malformed).
    Failed,
    /// Nothing was sent upstream (everything was refused, or only notifications).
    NotCalled,
}

impl UpstreamOutcome {
    /// Log value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::RpcError => "rpc_error",
            Self::Failed => "failed",
            Self::NotCalled => "not_called",
        }
    }
}

/// Which RPC call a request made, for the log and the usage counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcCall {
    /// The JSON-RPC method, `batch`, or `invalid`.
    pub method: String,
    /// The provider's name.
    pub provider: String,
    /// The cluster.
    pub cluster: Cluster,
}

/// What happened to a request's payment (or to the absence of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// No payment: answered with the 402 challenge.
    Challenge,
    /// Paid, settled on chain, answered.
    Settled,
    /// Our or the upstream's failure: nothing charged, the payment may be reused.
    NotCharged,
    /// Settlement refused or impossible: nothing charged, answer withheld.
    SettleFailed,
    /// Settlement sent but not confirmed: answer withheld until the reconciler decides.
    SettlePending,
    /// The payment did not pass our checks or the facilitator's.
    Refused,
    /// The kept answer of an already settled payment, sent again.
    Replayed,
    /// The payment (or its idempotency id) is in flight or bought another request: 409.
    Duplicate,
    /// The payer's limit or the provider's budget refused it: 429.
    Limited,
    /// The store or the facilitator could not be reached: 503.
    Unavailable,
    /// Paid with prepaid credits (a session token), answered.
    Credits,
}

impl PaymentOutcome {
    /// Label and log value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Challenge => "challenge",
            Self::Settled => "settled",
            Self::NotCharged => "not_charged",
            Self::SettleFailed => "settle_failed",
            Self::SettlePending => "settle_pending",
            Self::Refused => "refused",
            Self::Replayed => "replayed",
            Self::Duplicate => "duplicate",
            Self::Limited => "limited",
            Self::Unavailable => "unavailable",
            Self::Credits => "credits",
        }
    }
}

/// What the payment amounted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    /// Price asked, in atomic units.
    pub amount: u64,
    /// Payer wallet, once the payment named a verified one.
    pub payer: Option<String>,
    /// Transaction signature, when settled or pending.
    pub transaction: Option<String>,
    /// What happened.
    pub outcome: PaymentOutcome,
    /// Why, for refusals and failures: a verify/settle reason code (`invalid_exact_svm_*`,
    /// `insufficient_funds`...), `payment_in_progress`, `store_unavailable`...
    pub reason: Option<Cow<'static, str>>,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitScope {
    /// Per client IP.
    Ip,
    /// Per payer wallet.
    Payer,
    /// A provider's upstream budget.
    Provider,
}

impl LimitScope {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Payer => "payer",
            Self::Provider => "provider",
        }
    }
}

/// What a wallet sign-in amounted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// A valid proof: the wallet is signed in.
    SignedIn,
    /// Refused, with the sign-in error's reason code (`siwx_required`, `siwx_expired`...).
    Refused(&'static str),
}

impl AuthOutcome {
    /// Log value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::SignedIn => "signed_in",
            Self::Refused(reason) => reason,
        }
    }
}

/// A sign-in's part of the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRecord {
    /// The wallet, when a proof got as far as naming a verified one.
    pub wallet: Option<String>,
    /// What happened.
    pub outcome: AuthOutcome,
}

/// The record of one request, a response extension. Every part is optional: a layer that did
/// not act leaves its part empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exchange {
    /// The RPC call (RPC routes, after parsing).
    pub rpc: Option<RpcCall>,
    /// The upstream call (set by the forwarding handler).
    pub upstream: Option<UpstreamOutcome>,
    /// The payment (set by the paygate).
    pub payment: Option<PaymentRecord>,
    /// The limit that refused the request with a 429.
    pub limited: Option<LimitScope>,
    /// The wallet sign-in (auth-only routes).
    pub auth: Option<AuthRecord>,
}

impl Exchange {
    /// The record of `response`, created empty on first use.
    pub fn of(response: &mut Response) -> &mut Exchange {
        let extensions = response.extensions_mut();
        if extensions.get::<Exchange>().is_none() {
            extensions.insert(Exchange::default());
        }
        extensions
            .get_mut::<Exchange>()
            .expect("inserted just above")
    }

    /// The record of `response`, if any layer wrote one.
    pub fn get(response: &Response) -> Option<&Exchange> {
        response.extensions().get::<Exchange>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_fill_one_record() {
        let mut response = Response::new(axum::body::Body::empty());
        assert!(Exchange::get(&response).is_none());
        Exchange::of(&mut response).upstream = Some(UpstreamOutcome::Success);
        Exchange::of(&mut response).limited = Some(LimitScope::Payer);
        let record = Exchange::get(&response).unwrap();
        assert_eq!(record.upstream, Some(UpstreamOutcome::Success));
        assert_eq!(record.limited, Some(LimitScope::Payer));
        assert!(record.payment.is_none());
    }
}
