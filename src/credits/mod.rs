//! Prepaid credits: pay once on-chain for a pack, then spend per call at the provider's cost.
//!
//! - `POST /v1/credits/topup {"pack": …}` is an ordinary x402 `exact` route (the paygate sells
//!   it like any other); the pack's credits go to the payer wallet in the same ledger
//!   transaction that marks the payment settled, so exactly once whatever crashes or replays.
//! - `POST /v1/credits/session` with a `SIGN-IN-WITH-X` proof returns a bearer token bound to
//!   the wallet (HMAC-signed: every instance with the key verifies it; `DELETE` revokes it).
//! - Paid routes take `Authorization: Bearer <token>` instead of a payment: the paygate
//!   reserves the call's credit price (`Quote::credits`) in the ledger before the upstream
//!   call, makes it final on success and gives it back on failure.
//! - `GET /v1/credits/balance` with the token.

mod token;

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

pub(crate) use token::{Session, SessionKey, TokenError};

use crate::config::CreditsConfig;
use crate::error::ApiError;
use crate::exchange::{Exchange, UpstreamOutcome};
use crate::ledger::{now_ms, Ledger};
use crate::priced::{Charge, Discovery, Payer, PricedRequest, RouteId};
use crate::pricing::Quote;
use crate::siwx::SignedIn;
use crate::store::Store;
use crate::upstream::Provider;

/// The response header with the balance left after a credit-paid call.
pub const CREDITS_REMAINING: &str = "x-credits-remaining";

/// Most bytes of a top-up body.
const MAX_TOPUP_BODY: usize = 1024;

/// Everything the credit routes and the paygate's credit path need, built once.
#[derive(Debug)]
pub struct Credits {
    pub(crate) config: CreditsConfig,
    key: SessionKey,
    pub(crate) ledger: Arc<Ledger>,
    store: Arc<dyn Store>,
    /// The budget top-ups count against (they call no upstream).
    budget: Arc<Provider>,
    /// The network top-ups are sold on (the first `[[payment.accepts]]`).
    network: &'static str,
    /// Where the routes are, for the challenge's `credits` extension.
    base_url: String,
}

/// The credit routes' error: one JSON body per case.
fn refuse(status: StatusCode, code: &'static str, message: &str) -> Response {
    ApiError::new(status, code, message).into_response()
}

impl Credits {
    /// Built when `[credits] enabled`; `secret` signs the session tokens.
    pub fn new(
        config: &CreditsConfig,
        secret: Option<&str>,
        ledger: Arc<Ledger>,
        store: Arc<dyn Store>,
        network: &'static str,
        public_base_url: &url::Url,
    ) -> Self {
        let key = match secret {
            Some(secret) => SessionKey::from_secret(secret),
            None => {
                tracing::warn!(
                    "{} is not set: credit sessions are valid only on the instance that issued them",
                    config.secret_env
                );
                SessionKey::random()
            }
        };
        Self {
            config: config.clone(),
            key,
            ledger,
            store,
            budget: Arc::new(Provider::budget_only("credits")),
            network,
            base_url: public_base_url.as_str().trim_end_matches('/').to_string(),
        }
    }

    /// The `credits` extension of every paid route's challenge: how to pay with credits instead.
    pub(crate) fn extension(&self) -> Value {
        json!({
            "info": {
                "unit": "1 credit = 1 atomic unit of the asset",
                "topup": format!("{}{}", self.base_url, crate::routes::CREDITS_TOPUP_ROUTE),
                "session": format!("{}{}", self.base_url, crate::routes::CREDITS_SESSION_ROUTE),
                "balance": format!("{}{}", self.base_url, crate::routes::CREDITS_BALANCE_ROUTE),
                "packs": self.config.packs.iter().map(|p| json!({
                    "name": p.name, "price": p.price.to_string(), "credits": p.credits,
                })).collect::<Vec<_>>(),
                "how": "POST the session URL with a SIGN-IN-WITH-X proof (its 402 carries the sign-in challenge) for a bearer token; send `Authorization: Bearer <token>` on paid routes; buy credits by paying the topup URL with {\"pack\": name}",
            }
        })
    }

    /// The session of a request's bearer token: `None` without one, `Err` for a token that is
    /// not valid (forged, expired or revoked) or a store that cannot say.
    pub(crate) async fn session(
        &self,
        headers: &HeaderMap,
    ) -> Option<Result<Session, SessionRefusal>> {
        let token = bearer(headers)?;
        let session = match self.key.verify(token, now_ms()) {
            Ok(session) => session,
            Err(e) => return Some(Err(SessionRefusal::Token(e))),
        };
        Some(match self.store.get(&revoked_key(&session.jti)).await {
            Ok(None) => Ok(session),
            Ok(Some(_)) => Err(SessionRefusal::Token(TokenError::Invalid)),
            Err(e) => {
                tracing::warn!(error = %e, "credit session revocation check failed");
                Err(SessionRefusal::StoreUnavailable)
            }
        })
    }
}

/// Why a bearer token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionRefusal {
    /// Forged, malformed, expired or revoked.
    Token(TokenError),
    /// The revocation list could not be read (fail closed).
    StoreUnavailable,
}

fn revoked_key(jti: &str) -> String {
    format!("credits:revoked:{jti}")
}

/// The credentials of an `Authorization: Bearer` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopupBody {
    pack: String,
}

/// Route parser of `POST /v1/credits/topup`: the pack, priced, as the paygate's priced request.
pub(crate) async fn parse_topup(
    State(credits): State<Arc<Credits>>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_TOPUP_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "a top-up body is {\"pack\": name}",
            )
        }
    };
    let pack = match serde_json::from_slice::<TopupBody>(&bytes) {
        Ok(body) => body.pack,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                &format!("expected {{\"pack\": name}}: {e}"),
            )
        }
    };
    let Some(pack) = credits.config.pack(&pack) else {
        let names: Vec<&str> = credits
            .config
            .packs
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        return refuse(
            StatusCode::BAD_REQUEST,
            "unknown_pack",
            &format!("no pack {pack:?}; packs: {}", names.join(", ")),
        );
    };
    let priced = PricedRequest {
        route: RouteId::CreditsTopup,
        resource: format!("{}{}", credits.base_url, parts.uri.path()),
        charge: Charge::Quote(Quote {
            amount: pack.price,
            calls: 0,
            units: 0,
            credits: 0,
        }),
        provider: credits.budget.clone(),
        network: credits.network,
        calls: 0,
        discovery: Discovery::CreditsTopup,
        body: bytes.clone(),
        grants: Some(pack.credits),
    };
    parts.extensions.insert(Arc::new(priced));
    parts.extensions.insert(pack.clone());
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The top-up's answer, built after the payment was verified and before it settles (the
/// paygate settles it, then credits the payer in the same ledger step).
pub(crate) async fn topup(
    State(credits): State<Arc<Credits>>,
    Extension(pack): Extension<crate::config::PackConfig>,
    payer: Option<Extension<Payer>>,
) -> Response {
    let Some(Extension(Payer(wallet))) = payer else {
        // Only the paygate gets here, and it always names the payer.
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "top-up without a payer",
        );
    };
    let balance = match credits.ledger.credit_balance(&wallet).await {
        Ok(balance) => balance,
        Err(e) => {
            tracing::warn!(error = %e, "credit balance unavailable");
            // Not a success: the paygate does not settle, nothing is charged.
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "ledger_unavailable",
                "the payment ledger is unavailable; retry shortly",
            );
        }
    };
    let mut response = Json(json!({
        "wallet": wallet,
        "pack": pack.name,
        "credits_added": pack.credits,
        "balance": balance.saturating_add(pack.credits as i64),
    }))
    .into_response();
    Exchange::of(&mut response).upstream = Some(UpstreamOutcome::Success);
    response
}

/// `POST /v1/credits/session` (behind the sign-in layer): a token for the signed-in wallet.
pub(crate) async fn issue_session(
    State(credits): State<Arc<Credits>>,
    Extension(signed_in): Extension<SignedIn>,
) -> Response {
    let ttl = Duration::from_secs(credits.config.session_ttl_secs);
    let session = Session {
        wallet: signed_in.wallet,
        exp: now_ms() + ttl.as_millis() as i64,
        jti: hex::encode(rand::random::<[u8; 12]>()),
    };
    let balance = match credits.ledger.credit_balance(&session.wallet).await {
        Ok(balance) => balance,
        Err(_) => {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "ledger_unavailable",
                "the payment ledger is unavailable; retry shortly",
            )
        }
    };
    let token = credits.key.issue(&session);
    no_store(Json(json!({
        "token": token,
        "expires_at": crate::siwx::time::format_rfc3339_ms(session.exp),
        "wallet": session.wallet,
        "balance": balance,
    })))
}

/// `DELETE /v1/credits/session`: revokes the bearer token (every instance refuses it after).
pub(crate) async fn revoke_session(
    State(credits): State<Arc<Credits>>,
    headers: HeaderMap,
) -> Response {
    let session = match credits.session(&headers).await {
        Some(Ok(session)) => session,
        Some(Err(refusal)) => return session_refused(refusal),
        None => return session_refused(SessionRefusal::Token(TokenError::Invalid)),
    };
    let ttl = Duration::from_millis((session.exp - now_ms()).max(1) as u64);
    match credits
        .store
        .put_once(&revoked_key(&session.jti), "1", ttl)
        .await
    {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => session_refused(SessionRefusal::StoreUnavailable),
    }
}

/// `GET /v1/credits/balance` with the bearer token.
pub(crate) async fn balance(State(credits): State<Arc<Credits>>, headers: HeaderMap) -> Response {
    let session = match credits.session(&headers).await {
        Some(Ok(session)) => session,
        Some(Err(refusal)) => return session_refused(refusal),
        None => return session_refused(SessionRefusal::Token(TokenError::Invalid)),
    };
    match credits.ledger.credit_balance(&session.wallet).await {
        Ok(balance) => no_store(Json(
            json!({ "wallet": session.wallet, "balance": balance }),
        )),
        Err(_) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "ledger_unavailable",
            "the payment ledger is unavailable; retry shortly",
        ),
    }
}

/// The answer to a bearer token the credit routes cannot accept.
pub(crate) fn session_refused(refusal: SessionRefusal) -> Response {
    match refusal {
        SessionRefusal::Token(e) => {
            let mut response = refuse(
                StatusCode::UNAUTHORIZED,
                match e {
                    TokenError::Invalid => "invalid_session",
                    TokenError::Expired => "session_expired",
                },
                "sign in again: POST /v1/credits/session with a SIGN-IN-WITH-X proof",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"credits\""),
            );
            response
        }
        SessionRefusal::StoreUnavailable => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "payment_unavailable",
            "the session store is unavailable",
        )
        .retry_after(2)
        .into_response(),
    }
}

fn no_store(json: Json<Value>) -> Response {
    let mut response = json.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
