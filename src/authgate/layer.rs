//! The middleware: challenge, or check, then pass the request on.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::response::refusal;
use super::SiwxGate;
use crate::siwx::time::now_ms;
use crate::x402::header::SIGN_IN_WITH_X;

/// The signed-in wallet, in the request extensions of an auth-only route's handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// Base58 address.
    pub wallet: String,
}

/// What the sign-in amounted to, in the response extensions for the request log.
#[derive(Debug, Clone)]
pub struct AuthSummary {
    /// The wallet, when a proof got as far as naming a verified one.
    pub wallet: Option<String>,
    /// `signed_in`, or the refusal reason (`siwx_required`, `siwx_expired`...).
    pub outcome: &'static str,
}

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
            response.extensions_mut().insert(AuthSummary {
                wallet: Some(verified.address),
                outcome: "signed_in",
            });
            response
        }
        Err(err) => {
            let mut response = refusal(&gate, &err, &resource_url, now);
            response.extensions_mut().insert(AuthSummary {
                wallet: None,
                outcome: err.reason(),
            });
            response
        }
    }
}
