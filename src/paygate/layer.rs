//! The paygate as a route layer: thin glue between axum and [`Paygate::handle`] that writes the
//! payment's part of the request record. Mounted only when payments are on (the router decides).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::flow::Trace;
use super::Paygate;
use crate::exchange::{Exchange, PaymentRecord};

/// Route layer (inside route parsing): the route is sold for an x402 payment.
pub async fn paygate(State(gate): State<Arc<Paygate>>, request: Request, next: Next) -> Response {
    let mut trace = Trace::default();
    let (mut response, outcome, reason, transaction) =
        match gate.handle(request, next, &mut trace).await {
            Ok(answer) => (answer.response, answer.outcome, None, answer.transaction),
            Err(error) => {
                let (outcome, reason) = error.outcome();
                let transaction = error.transaction();
                (error.into_response(), Some(outcome), reason, transaction)
            }
        };
    if let Some(outcome) = outcome {
        Exchange::of(&mut response).payment = Some(PaymentRecord {
            amount: trace.amount.unwrap_or(0),
            payer: trace.payer,
            transaction,
            outcome,
            reason,
        });
    }
    response
}
