//! Auth-only routes: a layer that lets a request through only with a valid wallet sign-in
//! (`SIGN-IN-WITH-X`), for routes that are not sold per call but call an upstream with the
//! gateway's own key.
//!
//! Put it on any router with [`require`], or call [`require_siwx`] from a route layer (it is how
//! a configured service's `"siwx"` routes are gated, the Tokens API's among them, and how the
//! credits session route asks for a wallet). On success the request carries a [`SignedIn`]
//! extension (the wallet) for the handler.
//!
//! Invariants:
//! - nothing reaches the inner service without a proof that passed every check of
//!   [`crate::siwx::Verifier::verify`], the wallet's rate limit and the single-use nonce spend;
//! - the store is never guessed: a store error is a 503 with `Retry-After` (fail closed);
//! - challenges write nothing to the store (the nonce is HMAC-authenticated, see
//!   [`crate::siwx`]), so 402s cost no state however many are asked for.

mod layer;
mod response;

use std::sync::Arc;
use std::time::Duration;

use axum::middleware::from_fn_with_state;
use axum::Router;

pub use layer::{require_siwx, SignedIn};

use crate::config::{AuthMode, SiwxConfig};
use crate::siwx::{NonceKey, PublicOrigin, SiwxError, SiwxProof, Verified, Verifier};
use crate::store::{LimitCheck, LimitVerdict, Store};

/// Puts `mode` on every route of `router` (as a route layer: unmatched paths still 404).
pub fn require<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    mode: AuthMode,
    gate: Arc<SiwxGate>,
) -> Router<S> {
    match mode {
        AuthMode::Siwx => router.route_layer(from_fn_with_state(gate, require_siwx)),
    }
}

/// Everything the sign-in layer needs, built once.
#[derive(Debug)]
pub struct SiwxGate {
    verifier: Verifier,
    store: Arc<dyn Store>,
    session: bool,
    skew: Duration,
    burst: u32,
    period: Duration,
}

/// Store key of a spent nonce.
fn nonce_key(nonce: &str) -> String {
    format!("siwx:nonce:{nonce}")
}

impl SiwxGate {
    /// The gate for `config` under the public origin `origin`, nonces under `key`.
    pub fn new(
        config: &SiwxConfig,
        origin: PublicOrigin,
        key: NonceKey,
        store: Arc<dyn Store>,
    ) -> Self {
        Self {
            verifier: Verifier::new(config, origin, key),
            store,
            session: config.session,
            skew: Duration::from_secs(config.clock_skew_seconds),
            burst: config.rate_limit_burst,
            period: Duration::from_secs(config.rate_limit_period_secs),
        }
    }

    /// The verifier (challenges and stateless checks).
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Whether one proof may serve several requests.
    pub fn session_mode(&self) -> bool {
        self.session
    }

    /// Decides a request for `resource_url` carrying `header` (the raw `SIGN-IN-WITH-X`
    /// value, if any) at `now_ms`: stateless checks, then the wallet's rate limit, then the
    /// nonce spend.
    pub async fn authorize(
        &self,
        header: Option<&[u8]>,
        resource_url: &str,
        now_ms: i64,
    ) -> Result<Verified, SiwxError> {
        let header = header.ok_or(SiwxError::Missing)?;
        let proof = SiwxProof::from_header(header)?;
        let verified = self.verifier.verify(&proof, resource_url, now_ms)?;

        // After the signature: a forged proof cannot spend another wallet's budget.
        let limit = LimitCheck {
            key: format!("rl:siwx:{}", verified.address),
            burst: self.burst,
            period: self.period,
        };
        match self.store.check_limits(&[limit]).await {
            Ok(LimitVerdict::Allowed { .. }) => {}
            Ok(LimitVerdict::Limited { retry_after, .. }) => {
                return Err(SiwxError::RateLimited { retry_after })
            }
            Err(e) => {
                tracing::warn!(error = %e, "siwx rate limit: store unavailable");
                return Err(SiwxError::StoreUnavailable);
            }
        }

        // Spent for the rest of the proof's life (+ skew): after that the proof is refused as
        // expired anyway, so the record can go.
        let left = u64::try_from(verified.expires_at_ms - now_ms).unwrap_or(0);
        let ttl = Duration::from_millis(left) + self.skew + Duration::from_secs(1);
        let key = nonce_key(&verified.nonce);
        let spent = self
            .store
            .put_once(&key, &verified.proof_hash, ttl)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "siwx nonce: store unavailable");
                SiwxError::StoreUnavailable
            })?;
        if spent {
            return Ok(verified);
        }
        if self.session {
            // The same proof again (same text, same signature) is its own session; another
            // proof that reuses the nonce is not.
            match self.store.get(&key).await {
                Ok(Some(hash)) if hash == verified.proof_hash => return Ok(verified),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "siwx session: store unavailable");
                    return Err(SiwxError::StoreUnavailable);
                }
            }
        }
        Err(SiwxError::NonceReused)
    }
}
