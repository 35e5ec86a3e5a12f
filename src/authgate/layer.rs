//! The middleware: challenge, or check, then pass the request on.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::response::refusal;
use super::SiwxGate;
use crate::exchange::{AuthOutcome, AuthRecord, Exchange};
use crate::siwx::time::now_ms;
use crate::x402::header::SIGN_IN_WITH_X;

pub use crate::siwx::SignedIn;

/// Route layer: the request passes only with a valid `SIGN-IN-WITH-X` proof for this route.
pub async fn require_siwx(
    State(gate): State<Arc<SiwxGate>>,
    mut request: Request,
    next: Next,
) -> Response {
    // The resource is named from the configured public origin and the path only: `Host` and
    // `X-Forwarded-*` never take part.
    let resource_url = gate.verifier().origin().resource_url(request.uri().path());
    let header = request.headers().get(SIGN_IN_WITH_X).map(|v| v.as_bytes());
    let now = now_ms();
    match gate.authorize(header, &resource_url, now).await {
        Ok(verified) => {
            request.extensions_mut().insert(SignedIn {
                wallet: verified.address.clone(),
            });
            let mut response = next.run(request).await;
            Exchange::of(&mut response).auth = Some(AuthRecord {
                wallet: Some(verified.address),
                outcome: AuthOutcome::SignedIn,
            });
            response
        }
        Err(err) => {
            let mut response = refusal(&gate, &err, &resource_url, now);
            Exchange::of(&mut response).auth = Some(AuthRecord {
                wallet: None,
                outcome: AuthOutcome::Refused(err.reason()),
            });
            response
        }
    }
}
