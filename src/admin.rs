//! Operator routes behind `Authorization: Bearer <ADMIN_TOKEN>`: `GET /admin/usage`, the
//! payment ledger's views (`/admin/payments…`, `/admin/payers/{payer}/statement`,
//! `/admin/revenue`: see `crate::ledger::admin`), and `GET /metrics` unless
//! `[metrics] public = true`.
//!
//! Without `ADMIN_TOKEN` in the environment the token-protected routes are not mounted at all
//! (404, like the facilitator's): there is no token that could open them.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::config::Secret;
use crate::error::ApiError;
use crate::observability::prometheus;
use crate::routes::{
    ADMIN_CREDITS_ROUTE, ADMIN_CREDITS_WALLET_ROUTE, ADMIN_PAYMENTS_ROUTE, ADMIN_PAYMENT_ROUTE,
    ADMIN_REVENUE_ROUTE, ADMIN_STATEMENT_ROUTE, METRICS_ROUTE, USAGE_ROUTE,
};
use crate::{ledger, usage};

/// The admin token, kept as a digest: comparing digests in constant time leaks neither the
/// token's bytes nor its length.
#[derive(Clone, Copy)]
pub(crate) struct AdminToken([u8; 32]);

impl AdminToken {
    /// From the configured secret.
    pub(crate) fn new(secret: &Secret) -> Self {
        Self(Sha256::digest(secret.expose().as_bytes()).into())
    }

    /// Whether `headers` carry `Authorization: Bearer <token>`.
    pub(crate) fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
        else {
            return false;
        };
        let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        bool::from(given.ct_eq(&self.0))
    }
}

/// The credentials of a `Bearer` authorization (the scheme is case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

pub(crate) async fn require_admin(
    State(token): State<AdminToken>,
    request: Request,
    next: Next,
) -> Response {
    if token.allows(request.headers()) {
        return next.run(request).await;
    }
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or wrong admin bearer token",
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"admin\""),
    );
    response
}

/// The operator routes that this configuration serves.
pub(crate) fn routes(app: &AppState) -> Router<AppState> {
    let token = app
        .config
        .admin_token
        .as_ref()
        .filter(|t| !t.is_empty())
        .map(AdminToken::new);
    let mut protected = Router::new();
    let mut open = Router::new();
    if token.is_some() {
        protected = protected.route(USAGE_ROUTE, get(usage::admin::get_usage));
        let payments = Router::new()
            .route(ADMIN_PAYMENTS_ROUTE, get(ledger::admin::list_payments))
            .route(ADMIN_PAYMENT_ROUTE, get(ledger::admin::get_payment))
            .route(ADMIN_STATEMENT_ROUTE, get(ledger::admin::payer_statement))
            .route(ADMIN_REVENUE_ROUTE, get(ledger::admin::revenue))
            .with_state(app.ledger.clone());
        protected = protected.merge(payments);
        if app.credits.is_some() {
            let credits = Router::new()
                .route(ADMIN_CREDITS_ROUTE, get(ledger::admin::credit_accounts))
                .route(
                    ADMIN_CREDITS_WALLET_ROUTE,
                    get(ledger::admin::credit_wallet),
                )
                .with_state(app.ledger.clone());
            protected = protected.merge(credits);
        }
    }
    if app.config.metrics.public {
        open = open.route(METRICS_ROUTE, get(prometheus::get_metrics));
    } else if token.is_some() {
        protected = protected.route(METRICS_ROUTE, get(prometheus::get_metrics));
    }
    if let Some(token) = token {
        protected = protected.route_layer(from_fn_with_state(token, require_admin));
    }
    open.merge(protected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_is_allowed() {
        let token = AdminToken::new(&Secret::new("adm1n-t0ken"));
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, v.parse().unwrap());
            h
        };
        assert!(token.allows(&with("Bearer adm1n-t0ken")));
        assert!(token.allows(&with("bearer adm1n-t0ken")));
        assert!(!token.allows(&with("Bearer adm1n-t0ke")));
        assert!(!token.allows(&with("Bearer adm1n-t0kenX")));
        assert!(!token.allows(&with("Basic adm1n-t0ken")));
        assert!(!token.allows(&with("adm1n-t0ken")));
        assert!(!token.allows(&with("Bearer ")));
        assert!(!token.allows(&HeaderMap::new()));
    }
}
