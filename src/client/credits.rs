//! The prepaid-credits API of a gateway, from the wallet's side:
//!
//! - `POST {base}/v1/credits/topup {"pack": NAME}`: an ordinary `exact` paid route → 200
//!   `{"wallet", "pack", "credits_added", "balance"}` with the receipt;
//! - `POST {base}/v1/credits/session`: 402 with the `sign-in-with-x` challenge, then, with the
//!   signed `SIGN-IN-WITH-X` proof, 200 `{"token", "expires_at", "wallet", "balance"}`;
//! - `GET {base}/v1/credits/balance` with `Authorization: Bearer` → `{"wallet", "balance"}`;
//! - any paid route with the bearer token: 200 with `X-Credits-Remaining`, or the usual 402
//!   (body error `insufficient_balance` when the token was good but the balance too low).
//!
//! [`Spender`] is the policy on top: credits first, a top-up when they run out (up to a count),
//! per-call `exact` when allowed, one new sign-in when the server stops taking the token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::{HeaderName, HeaderValue, StatusCode};
use parking_lot::Mutex;
use serde_json::{json, Value};
use url::Url;

use super::call::{self, Answer, Http, Paid, Paying, Request};
use super::challenge::{error_message, Challenge};
use super::error::ClientError;
use super::payer::Payer;
use super::session::{parse_expiry, Session, TokenFile};
use super::siwx::sign_in;
use crate::siwx::time::now_ms;
use crate::siwx::EXTENSION_KEY;
use crate::x402::header::SIGN_IN_WITH_X;

/// Top-up route, under the credits base URL.
pub const TOPUP_PATH: &str = "/v1/credits/topup";
/// Sign-in route.
pub const SESSION_PATH: &str = "/v1/credits/session";
/// Balance route.
pub const BALANCE_PATH: &str = "/v1/credits/balance";
/// The balance left after a credit-paid call.
pub const CREDITS_REMAINING: &str = "x-credits-remaining";
/// The 402 body error of a good token with too small a balance.
pub const INSUFFICIENT_BALANCE: &str = "insufficient_balance";

/// A top-up's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopUp {
    /// The credited wallet (the payer).
    pub wallet: String,
    /// The pack bought.
    pub pack: String,
    /// Credits granted.
    pub credits_added: u64,
    /// The balance after.
    pub balance: u64,
}

/// A balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    /// Whose.
    pub wallet: String,
    /// Credits.
    pub balance: u64,
}

/// What a call with the bearer token gave.
#[derive(Debug)]
pub enum Spend {
    /// Served (any answer but a 402/401: credits were debited only on success).
    Served {
        /// The answer.
        answer: Answer,
        /// `X-Credits-Remaining`.
        remaining: Option<u64>,
    },
    /// The token was good, the balance too low: the 402's `exact` challenge.
    Insufficient(Box<Challenge>),
    /// The token was not taken (expired, revoked, unknown): the 402's challenge, if any.
    NotAccepted(Option<Box<Challenge>>),
}

/// The credits API of one gateway, for one wallet.
#[derive(Debug)]
pub struct Credits {
    http: Http,
    payer: Arc<Payer>,
    base: Url,
    tokens: TokenFile,
    session: Mutex<Option<Session>>,
    /// One sign-in at a time: concurrent calls wait for it instead of each signing in.
    signing_in: tokio::sync::Mutex<()>,
}

/// The credits base of a route URL: its origin (`scheme://host:port`).
pub fn base_of(url: &Url) -> Url {
    let mut base = url.clone();
    base.set_path("");
    base.set_query(None);
    base.set_fragment(None);
    base
}

/// A non-negative integer written as a JSON number or string.
fn integer(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.trim().parse().ok())
}

impl Credits {
    /// The API under `base` (e.g. `https://gw.example`), its token kept in `tokens`.
    pub fn new(http: Http, payer: Arc<Payer>, base: Url, tokens: TokenFile) -> Self {
        Self {
            http,
            payer,
            base,
            tokens,
            session: Mutex::new(None),
            signing_in: tokio::sync::Mutex::new(()),
        }
    }

    /// `{base}{path}` (the base may carry a path prefix).
    pub fn endpoint(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{prefix}{path}"));
        url
    }

    fn base_key(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_string()
    }

    /// A usable session already held (in memory or in the token file), without signing in.
    pub fn stored(&self) -> Option<Session> {
        let wallet = self.payer.address().to_string();
        let (base, now) = (self.base_key(), now_ms());
        let mut held = self.session.lock();
        if let Some(s) = held.as_ref().filter(|s| s.usable(&wallet, &base, now)) {
            return Some(s.clone());
        }
        let loaded = self
            .tokens
            .load()
            .filter(|s| s.usable(&wallet, &base, now))?;
        *held = Some(loaded.clone());
        Some(loaded)
    }

    /// The held session, else a new one.
    pub async fn session(&self) -> Result<Session, ClientError> {
        if let Some(s) = self.stored() {
            return Ok(s);
        }
        let _one = self.signing_in.lock().await;
        // Another call may have signed in while this one waited.
        match self.stored() {
            Some(s) => Ok(s),
            None => self.sign_in().await,
        }
    }

    /// Forgets the session (the server no longer takes it).
    pub fn forget(&self) {
        *self.session.lock() = None;
        self.tokens.clear();
    }

    /// Signs in with the wallet: the challenge, the signed proof, the token (saved).
    pub async fn sign_in(&self) -> Result<Session, ClientError> {
        let url = self.endpoint(SESSION_PATH);
        let request = Request::post(url.clone(), "{}");
        let first = self
            .send(&request, &[], "asking for the sign-in challenge")
            .await?;
        if first.status != StatusCode::PAYMENT_REQUIRED {
            return Err(unexpected("the sign-in challenge", &url, &first));
        }
        let challenge = Challenge::from_response(&first.headers, &first.body)?;
        let ext = challenge.extension(EXTENSION_KEY).ok_or_else(|| {
            ClientError::Credits(format!(
                "the 402 of {url} carries no {EXTENSION_KEY} challenge"
            ))
        })?;
        let proof = sign_in(ext, self.payer.wallet())?;
        let value = HeaderValue::from_str(&proof.to_header())
            .map_err(|_| ClientError::Credits("the sign-in proof is not ASCII".into()))?;
        let answer = self
            .send(
                &request,
                &[(HeaderName::from_static(SIGN_IN_WITH_X), value)],
                "signing in",
            )
            .await?;
        if !answer.status.is_success() {
            return Err(unexpected("the signed sign-in", &url, &answer));
        }
        let body = answer.json().unwrap_or(Value::Null);
        let token = body["token"].as_str().filter(|t| !t.is_empty());
        let expires = parse_expiry(&body["expires_at"]);
        let (Some(token), Some(expires_at_ms)) = (token, expires) else {
            return Err(ClientError::Credits(format!(
                "the session answer of {url} lacks token or expires_at: {body}"
            )));
        };
        let wallet = self.payer.address().to_string();
        if body["wallet"].as_str().is_some_and(|w| w != wallet) {
            return Err(ClientError::Credits(format!(
                "the session of {url} is for wallet {}, not {wallet}",
                body["wallet"]
            )));
        }
        let session = Session {
            token: token.to_string(),
            expires_at_ms,
            wallet,
            base: self.base_key(),
        };
        self.tokens.save(&session)?;
        *self.session.lock() = Some(session.clone());
        Ok(session)
    }

    /// The balance (signing in first when no session is held, and again once if the server
    /// no longer takes the held one).
    pub async fn balance(&self) -> Result<Balance, ClientError> {
        let url = self.endpoint(BALANCE_PATH);
        for attempt in 0..2 {
            let session = self.session().await?;
            let answer = self
                .send(
                    &Request::get(url.clone()),
                    &[bearer(&session)?],
                    "reading the balance",
                )
                .await?;
            if matches!(
                answer.status,
                StatusCode::UNAUTHORIZED | StatusCode::PAYMENT_REQUIRED
            ) && attempt == 0
            {
                self.forget();
                continue;
            }
            if !answer.status.is_success() {
                return Err(unexpected("the balance", &url, &answer));
            }
            let body = answer.json().unwrap_or(Value::Null);
            return match (body["wallet"].as_str(), integer(&body["balance"])) {
                (Some(wallet), Some(balance)) => Ok(Balance {
                    wallet: wallet.to_string(),
                    balance,
                }),
                _ => Err(ClientError::Credits(format!(
                    "the balance answer of {url} is not {{wallet, balance}}: {body}"
                ))),
            };
        }
        Err(ClientError::Credits(format!(
            "{url} refused a fresh session token"
        )))
    }

    /// Buys `pack` with an `exact` payment.
    pub async fn topup(
        &self,
        paying: Paying<'_>,
        pack: &str,
    ) -> Result<(TopUp, Paid), ClientError> {
        let url = self.endpoint(TOPUP_PATH);
        let request = Request::post(url.clone(), json!({ "pack": pack }).to_string());
        let paid = call::call(&self.http, paying, &request).await?;
        let answer = &paid.answer;
        if !answer.status.is_success() {
            return Err(unexpected(&format!("the top-up ({pack})"), &url, answer));
        }
        let body = answer.json().unwrap_or(Value::Null);
        let topup = match (
            body["wallet"].as_str(),
            integer(&body["credits_added"]),
            integer(&body["balance"]),
        ) {
            (Some(wallet), Some(credits_added), Some(balance)) => TopUp {
                wallet: wallet.to_string(),
                pack: body["pack"].as_str().unwrap_or(pack).to_string(),
                credits_added,
                balance,
            },
            _ => {
                return Err(ClientError::Credits(format!(
                    "the top-up answer of {url} is not {{wallet, pack, credits_added, balance}}: {body}"
                )))
            }
        };
        Ok((topup, paid))
    }

    /// Sends `request` with the bearer token of `session`.
    pub async fn spend(&self, session: &Session, request: &Request) -> Result<Spend, ClientError> {
        let answer = self
            .send(request, &[bearer(session)?], "calling with credits")
            .await?;
        Ok(match answer.status {
            StatusCode::PAYMENT_REQUIRED => {
                let challenge = Box::new(Challenge::from_response(&answer.headers, &answer.body)?);
                if challenge.says(INSUFFICIENT_BALANCE) {
                    Spend::Insufficient(challenge)
                } else {
                    Spend::NotAccepted(Some(challenge))
                }
            }
            StatusCode::UNAUTHORIZED => Spend::NotAccepted(None),
            _ => Spend::Served {
                remaining: answer
                    .headers
                    .get(CREDITS_REMAINING)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok()),
                answer,
            },
        })
    }

    async fn send(
        &self,
        request: &Request,
        extra: &[(HeaderName, HeaderValue)],
        what: &str,
    ) -> Result<Answer, ClientError> {
        self.http.send(request, extra, what).await
    }
}

fn bearer(session: &Session) -> Result<(HeaderName, HeaderValue), ClientError> {
    let value = HeaderValue::from_str(&format!("Bearer {}", session.token))
        .map_err(|_| ClientError::Credits("the session token is not a valid header".into()))?;
    Ok((http::header::AUTHORIZATION, value))
}

fn unexpected(what: &str, url: &Url, answer: &Answer) -> ClientError {
    let detail = answer
        .json()
        .as_ref()
        .and_then(error_message)
        .unwrap_or_else(|| {
            String::from_utf8_lossy(&answer.body)
                .chars()
                .take(300)
                .collect()
        });
    let hint = if answer.status == StatusCode::NOT_FOUND {
        " (does this server sell credits?)"
    } else {
        ""
    };
    ClientError::Credits(format!(
        "{what} at {url} answered {}{hint}: {detail}",
        answer.status
    ))
}

/// How a call is paid when credits are in play.
#[derive(Debug)]
pub struct Spender {
    /// The credits API.
    pub credits: Credits,
    /// Sign in when no session is held (else use credits only when a token is stored).
    pub sign_in: bool,
    /// Pay per call with `exact` when credits cannot serve the call.
    pub fallback_exact: bool,
    /// Buy this pack when the balance runs out, at most `max_topups` times.
    pub auto_topup: Option<String>,
    /// See `auto_topup`.
    pub max_topups: u32,
    topups: tokio::sync::Mutex<u32>,
    generation: AtomicU64,
    /// Why credits were given up for this run (a sign-in that failed for good), once.
    off: Mutex<Option<String>>,
    credits_off: std::sync::atomic::AtomicBool,
}

/// How a call was paid.
#[derive(Debug)]
pub enum Outcome {
    /// With credits.
    Credits {
        /// The answer.
        answer: Answer,
        /// `X-Credits-Remaining`.
        remaining: Option<u64>,
    },
    /// Per call (or not at all, when the server asked nothing).
    Exact(Box<Paid>),
}

/// A top-up bought while serving a call.
#[derive(Debug)]
pub struct Bought {
    /// The answer.
    pub topup: TopUp,
    /// The payment.
    pub paid: Paid,
}

impl Spender {
    /// The policy; see the fields.
    pub fn new(
        credits: Credits,
        sign_in: bool,
        fallback_exact: bool,
        auto_topup: Option<String>,
        max_topups: u32,
    ) -> Self {
        Self {
            credits,
            sign_in,
            fallback_exact,
            auto_topup,
            max_topups,
            topups: tokio::sync::Mutex::new(0),
            generation: AtomicU64::new(0),
            off: Mutex::new(None),
            credits_off: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Why credits were given up (reported once: `None` afterwards).
    pub fn take_off_reason(&self) -> Option<String> {
        self.off.lock().take()
    }

    /// Top-ups bought so far.
    pub async fn topups(&self) -> u32 {
        *self.topups.lock().await
    }

    /// Serves `request`: credits, a top-up, a new sign-in, or `exact`, as allowed. Top-ups
    /// bought on the way are handed to `on_topup` (to print them).
    pub async fn serve(
        &self,
        http: &Http,
        paying: Paying<'_>,
        request: &Request,
        on_topup: &(dyn Fn(&Bought) + Sync),
    ) -> Result<Outcome, ClientError> {
        let mut signed_in_again = false;
        loop {
            let generation = self.generation.load(Ordering::Acquire);
            let session = if self.sign_in && !self.credits_off.load(Ordering::Acquire) {
                match self.credits.session().await {
                    Ok(session) => Some(session),
                    // No session to be had (no credits API, a refused sign-in): per call from
                    // now on, when allowed. A transport error only skips credits this time.
                    Err(e) if self.fallback_exact => {
                        if !matches!(e, ClientError::Transport { .. }) {
                            self.credits_off.store(true, Ordering::Release);
                            *self.off.lock() = Some(e.to_string());
                        }
                        None
                    }
                    Err(e) => return Err(e),
                }
            } else {
                self.credits.stored()
            };
            let Some(session) = session else {
                return self.exact(http, paying, request, None).await;
            };
            match self.credits.spend(&session, request).await? {
                Spend::Served { answer, remaining } => {
                    return Ok(Outcome::Credits { answer, remaining })
                }
                Spend::Insufficient(challenge) => {
                    if self.top_up(paying, generation, on_topup).await? {
                        continue;
                    }
                    if !self.fallback_exact {
                        return Err(ClientError::Credits(format!(
                            "{INSUFFICIENT_BALANCE}: the credit balance does not cover this call{}",
                            match &self.auto_topup {
                                Some(_) => format!(
                                    " and the {} top-up(s) allowed are used",
                                    self.max_topups
                                ),
                                None => " (top up, or pass --auto-topup PACK)".to_string(),
                            }
                        )));
                    }
                    return self.exact(http, paying, request, Some(*challenge)).await;
                }
                Spend::NotAccepted(challenge) => {
                    self.credits.forget();
                    if self.sign_in && !signed_in_again {
                        signed_in_again = true;
                        continue;
                    }
                    return self
                        .exact(http, paying, request, challenge.map(|c| *c))
                        .await;
                }
            }
        }
    }

    /// Buys the auto-top-up pack, unless another call bought one since `seen` (then the caller
    /// just retries) or the count is used. Whether the caller should retry with credits.
    async fn top_up(
        &self,
        paying: Paying<'_>,
        seen: u64,
        on_topup: &(dyn Fn(&Bought) + Sync),
    ) -> Result<bool, ClientError> {
        let Some(pack) = &self.auto_topup else {
            return Ok(false);
        };
        let mut count = self.topups.lock().await;
        if self.generation.load(Ordering::Acquire) != seen {
            return Ok(true);
        }
        if *count >= self.max_topups {
            return Ok(false);
        }
        let (topup, paid) = self.credits.topup(paying, pack).await?;
        *count += 1;
        self.generation.fetch_add(1, Ordering::AcqRel);
        on_topup(&Bought { topup, paid });
        Ok(true)
    }

    async fn exact(
        &self,
        http: &Http,
        paying: Paying<'_>,
        request: &Request,
        challenge: Option<Challenge>,
    ) -> Result<Outcome, ClientError> {
        if !self.fallback_exact {
            return Err(ClientError::Credits(
                "the server did not take the credits session and paying per call is off".into(),
            ));
        }
        let paid = match challenge {
            Some(challenge) => call::pay(http, paying, request, challenge).await?,
            None => call::call(http, paying, request).await?,
        };
        Ok(Outcome::Exact(Box::new(paid)))
    }
}
