//! Every answer the paygate gives instead of the upstream's, in one enum mapped to HTTP once.
//!
//! | variant | status | body | `Retry-After` | outcome |
//! | --- | --- | --- | --- | --- |
//! | `Internal` | 500 | `internal_error` (a logged bug) | | `unavailable` |
//! | `Unpriced` | 500 | `unpriced` (the provider has no price) | | `unavailable` |
//! | `NotSold` | 404 | `network_not_sold` (no accepted payment on the cluster's network) | | `unavailable` |
//! | `NoFeePayer` | 503 | `payment_unavailable` | 2 | `unavailable` |
//! | `Refused` | 400 (malformed) / 402 | the challenge, `error` says why | | `refused` |
//! | `Limited` | 429 | `rate_limited` / `provider_budget_exhausted` | the limit's wait | `limited` |
//! | `Conflict` | 409 | `payment_in_progress` / `payment_already_used` | | `duplicate` |
//! | `StoreUnavailable` | 503 | `payment_unavailable` | 2 | `unavailable` |
//! | `LedgerUnavailable` | 503 | `payment_unavailable` | 2 | `unavailable` |
//! | `FacilitatorUnavailable` | 503 | `payment_unavailable` | 2 | `unavailable` / `settle_failed` |
//! | `UpstreamUnreadable` | 502 | `upstream_failed` | | `not_charged` |
//! | `SettleRefused` | 402 | `{}` + receipt (why) | | `settle_failed` |
//! | `SettlePending` | 504 | `{}` + receipt (`settlement_pending`) | the reconciler's pace | `settle_pending` |

use std::borrow::Cow;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::offer::{Offer, Refusal};
use crate::error::ApiError;
use crate::exchange::PaymentOutcome;
use crate::ratelimit::TooMany;
use crate::x402::receipt::{add_receipt, PaymentVersion};
use crate::x402::SettleResponse;

/// Seconds after which a 503 of the payment path may be retried.
const RETRY_UNAVAILABLE_SECS: u64 = 2;

/// What stopped a paid request before (or instead of) the upstream's answer.
#[derive(Debug)]
pub(crate) enum PaygateError {
    /// A state the router's wiring rules out (a priced route without a priced request): fail
    /// closed, never an unpaid upstream call.
    Internal(&'static str),
    /// The provider has no price (`atomic_per_million_units`) yet payments are on.
    Unpriced(String),
    /// No `[[payment.accepts]]` entry is on the called cluster's network: a call is never
    /// sold for a payment on another network.
    NotSold(&'static str),
    /// The facilitator has not advertised a fee payer yet, so no offer can be made.
    NoFeePayer,
    /// Our checks or the facilitator's verify refused the payment: the challenge again.
    Refused {
        /// The offer, to build the challenge from.
        offer: Box<Offer>,
        /// Why.
        refusal: Refusal,
    },
    /// The payer's limit or the provider's budget.
    Limited(TooMany),
    /// The payment already has a record that does not answer this request.
    Conflict {
        /// `payment_in_progress` or `payment_already_used`.
        code: &'static str,
        /// What to do about it.
        message: &'static str,
    },
    /// The store did not answer: without it one answer per payment cannot be promised.
    StoreUnavailable,
    /// The ledger did not answer: no money moves unrecorded, so nothing was charged.
    LedgerUnavailable,
    /// The facilitator did not answer; nothing was charged.
    FacilitatorUnavailable {
        /// While settling (rather than verifying).
        settling: bool,
    },
    /// The upstream answered success but its body could not be collected; nothing charged.
    UpstreamUnreadable,
    /// Settlement definitely failed: nothing charged, the answer is withheld.
    SettleRefused {
        /// The facilitator's receipt (why).
        receipt: Box<SettleResponse>,
        /// Which receipt header.
        version: PaymentVersion,
    },
    /// Settlement sent but not confirmed: the answer is withheld until the reconciler decides.
    SettlePending {
        /// The receipt (`settlement_pending`, the transaction when known).
        receipt: Box<SettleResponse>,
        /// Which receipt header.
        version: PaymentVersion,
        /// When the reconciler will have looked at it again: a retry then may get the answer.
        retry_after_secs: u64,
    },
}

impl PaygateError {
    /// The settlement's transaction, when one is known.
    pub(crate) fn transaction(&self) -> Option<String> {
        match self {
            Self::SettlePending { receipt, .. } => {
                Some(receipt.transaction.clone()).filter(|t| !t.is_empty())
            }
            _ => None,
        }
    }

    /// The outcome and reason recorded for this answer.
    pub(crate) fn outcome(&self) -> (PaymentOutcome, Option<Cow<'static, str>>) {
        use PaymentOutcome as O;
        match self {
            Self::Internal(_) => (O::Unavailable, Some("internal_error".into())),
            Self::Unpriced(_) => (O::Unavailable, Some("unpriced".into())),
            Self::NotSold(_) => (O::Unavailable, Some("network_not_sold".into())),
            Self::NoFeePayer => (O::Unavailable, Some("no_fee_payer".into())),
            Self::Refused { refusal, .. } => (O::Refused, Some(refusal.code.clone())),
            Self::Limited(_) => (O::Limited, None),
            Self::Conflict { code, .. } => (O::Duplicate, Some(Cow::Borrowed(code))),
            Self::StoreUnavailable => (O::Unavailable, Some("store_unavailable".into())),
            Self::LedgerUnavailable => (O::Unavailable, Some("ledger_unavailable".into())),
            Self::FacilitatorUnavailable { settling } => {
                let outcome = if *settling {
                    O::SettleFailed
                } else {
                    O::Unavailable
                };
                (outcome, Some("facilitator_unavailable".into()))
            }
            Self::UpstreamUnreadable => (O::NotCharged, None),
            Self::SettleRefused { receipt, .. } => (
                O::SettleFailed,
                Some(
                    receipt
                        .error_reason
                        .clone()
                        .map_or(Cow::Borrowed("settle_failed"), Cow::Owned),
                ),
            ),
            Self::SettlePending { .. } => (
                O::SettlePending,
                Some(crate::facilitator::SETTLEMENT_PENDING.into()),
            ),
        }
    }
}

fn unavailable(message: &str) -> Response {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "payment_unavailable",
        message,
    )
    .retry_after(RETRY_UNAVAILABLE_SECS)
    .into_response()
}

/// The answer withheld: the receipt says why, the body is empty JSON.
fn withheld(status: StatusCode, receipt: &SettleResponse, version: PaymentVersion) -> Response {
    let mut response = (status, Json(json!({}))).into_response();
    add_receipt(response.headers_mut(), receipt, version);
    response
}

impl IntoResponse for PaygateError {
    fn into_response(self) -> Response {
        match self {
            Self::Internal(why) => {
                tracing::error!(why, "bug in the paid route; refused (fail closed)");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "internal error",
                )
                .into_response()
            }
            Self::Unpriced(why) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "unpriced", why).into_response()
            }
            Self::NotSold(network) => ApiError::new(
                StatusCode::NOT_FOUND,
                "network_not_sold",
                format!(
                    "this gateway takes no payment on {network}, so it does not sell calls to \
                     that cluster (the operator adds a [[payment.accepts]] entry for it)"
                ),
            )
            .into_response(),
            Self::NoFeePayer => unavailable("the facilitator has not advertised a fee payer yet"),
            Self::Refused { offer, refusal } => offer.challenge(refusal.status, &refusal.message),
            Self::Limited(too_many) => too_many.into_response(),
            Self::Conflict { code, message } => {
                ApiError::new(StatusCode::CONFLICT, code, message).into_response()
            }
            Self::StoreUnavailable => unavailable("the payment store is unavailable"),
            Self::LedgerUnavailable => unavailable("the payment ledger is unavailable"),
            Self::FacilitatorUnavailable { .. } => {
                unavailable("the payment facilitator is unavailable")
            }
            Self::UpstreamUnreadable => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_failed",
                "upstream answer unreadable",
            )
            .into_response(),
            Self::SettleRefused { receipt, version } => {
                withheld(StatusCode::PAYMENT_REQUIRED, &receipt, version)
            }
            Self::SettlePending {
                receipt,
                version,
                retry_after_secs,
            } => {
                let mut response = withheld(StatusCode::GATEWAY_TIMEOUT, &receipt, version);
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
                response
            }
        }
    }
}
