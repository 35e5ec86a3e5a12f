//! One HTTP call, paid with `exact` when the server asks: send it unpaid, read the 402's
//! challenge, pick the offer, check the caps, sign, send it again with `PAYMENT-SIGNATURE`,
//! and say what happened (the answer with its receipt, or why the payment failed).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::Value;
use url::Url;

use super::budget::Budget;
use super::challenge::{error_code, error_message, Challenge, OfferFilter};
use super::error::ClientError;
use super::payer::{amount_of, Payer};
use crate::x402::header::{PAYMENT_RESPONSE, PAYMENT_SIGNATURE, X_PAYMENT_RESPONSE};
use crate::x402::{decode_header, PaymentRequirements, SettleResponse};

/// Answers larger than this are refused (the gateway's own cap is far lower).
pub const MAX_ANSWER_BYTES: usize = 128 * 1024 * 1024;

/// Refusals worth one immediate retry with the fresh challenge the 402 carries: the terms moved
/// between the challenge and the payment (a price, a fee payer, a blockhash).
const RETRYABLE: &[&str] = &[
    "invalid_exact_svm_payload_amount_mismatch",
    "invalid_exact_svm_fee_payer_not_managed_by_facilitator",
    "invalid_exact_svm_fee_payer_mismatch",
    "invalid_exact_svm_payload_blockhash_expired",
    "invalid_payment_requirements",
];

/// One request to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// `POST` or `GET`.
    pub method: Method,
    /// Where.
    pub url: Url,
    /// The body (sent as `application/json` when not empty or when POSTing).
    pub body: Bytes,
    /// Extra headers (e.g. `Authorization`).
    pub headers: HeaderMap,
}

impl Request {
    /// A POST of `body` as JSON.
    pub fn post(url: Url, body: impl Into<Bytes>) -> Self {
        Self {
            method: Method::POST,
            url,
            body: body.into(),
            headers: HeaderMap::new(),
        }
    }

    /// A GET.
    pub fn get(url: Url) -> Self {
        Self {
            method: Method::GET,
            url,
            body: Bytes::new(),
            headers: HeaderMap::new(),
        }
    }
}

/// An answer, read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Answer {
    /// The decoded `PAYMENT-RESPONSE` (or v1 `X-PAYMENT-RESPONSE`), if any.
    pub fn receipt(&self) -> Option<SettleResponse> {
        [PAYMENT_RESPONSE, X_PAYMENT_RESPONSE]
            .iter()
            .find_map(|name| self.headers.get(*name))
            .and_then(|v| decode_header(v.as_bytes(), 16 * 1024).ok())
    }

    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// `Retry-After` in seconds (1 when absent or unreadable).
    pub fn retry_after(&self) -> u64 {
        self.headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(1)
    }

    /// The body's error code, else `fallback`.
    fn code_or(&self, fallback: &str) -> String {
        self.json()
            .as_ref()
            .and_then(error_code)
            .unwrap_or_else(|| fallback.to_string())
    }

    /// The body's error message, else its text.
    fn message(&self) -> String {
        self.json()
            .as_ref()
            .and_then(error_message)
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned())
    }
}

/// The HTTP side: one client with connect and total timeouts, no redirects, no proxy from the
/// environment (a payment header must only ever go where the user pointed it).
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
}

impl Http {
    /// Every call gives up after `timeout` (connecting after at most 10 s of it).
    pub fn new(timeout: Duration) -> Result<Self, ClientError> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("x402-pay/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::transport("building the HTTP client", e))?;
        Ok(Self { client })
    }

    /// Sends `request` with `extra` headers and reads the whole answer; `what` names the call
    /// in errors.
    pub async fn send(
        &self,
        request: &Request,
        extra: &[(HeaderName, HeaderValue)],
        what: &str,
    ) -> Result<Answer, ClientError> {
        self.send_raw(request, extra).await.map_err(|e| match e {
            Some(source) => ClientError::transport(format!("{what} {}", request.url), source),
            None => ClientError::AnswerTooLarge {
                url: request.url.to_string(),
                max: MAX_ANSWER_BYTES,
            },
        })
    }

    /// [`Self::send`]; `Err(None)` for an answer over [`MAX_ANSWER_BYTES`].
    async fn send_raw(
        &self,
        request: &Request,
        extra: &[(HeaderName, HeaderValue)],
    ) -> Result<Answer, Option<reqwest::Error>> {
        let mut builder = self
            .client
            .request(request.method.clone(), request.url.clone())
            .headers(request.headers.clone());
        if request.method == Method::POST || !request.body.is_empty() {
            builder = builder
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(request.body.clone());
        }
        for (name, value) in extra {
            builder = builder.header(name, value);
        }
        let mut response = builder.send().await?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(None);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            headers,
            body: body.into(),
        })
    }
}

/// What a call gave.
#[derive(Debug)]
pub struct Paid {
    /// The server's answer (the upstream's, for a gateway).
    pub answer: Answer,
    /// The offer paid, `None` when no payment was asked.
    pub offer: Option<PaymentRequirements>,
    /// The settlement receipt, if the server sent one.
    pub receipt: Option<SettleResponse>,
    /// The total spent so far in this run, after this call.
    pub spent: u64,
}

/// How to pay.
#[derive(Debug, Clone, Copy)]
pub struct Paying<'a> {
    /// The wallet.
    pub payer: &'a Payer,
    /// The caps.
    pub budget: &'a Budget,
    /// Which offers to take.
    pub filter: &'a OfferFilter,
}

/// Sends `request`; pays when the server answers 402.
pub async fn call(http: &Http, paying: Paying<'_>, request: &Request) -> Result<Paid, ClientError> {
    let answer = http.send(request, &[], "calling").await?;
    if answer.status != StatusCode::PAYMENT_REQUIRED {
        return Ok(Paid {
            answer,
            offer: None,
            receipt: None,
            spent: paying.budget.spent(),
        });
    }
    let challenge = Challenge::from_response(&answer.headers, &answer.body)?;
    pay(http, paying, request, challenge).await
}

/// Pays `request` against `challenge` (from a 402 already received), retrying once with the
/// fresh challenge when the terms moved in between.
pub async fn pay(
    http: &Http,
    paying: Paying<'_>,
    request: &Request,
    challenge: Challenge,
) -> Result<Paid, ClientError> {
    match pay_once(http, paying, request, &challenge).await {
        Err(Retry::Again(fresh)) => pay_once(http, paying, request, &fresh)
            .await
            .map_err(Retry::into_error),
        other => other.map_err(Retry::into_error),
    }
}

/// A failed attempt: final, or worth one more with this fresh challenge.
enum Retry {
    Final(ClientError),
    Again(Box<Challenge>),
}

impl Retry {
    fn into_error(self) -> ClientError {
        match self {
            Self::Final(e) => e,
            // A second "terms moved" in a row: report it.
            Self::Again(fresh) => ClientError::Refused {
                reason: refusal_code(&fresh),
                message: fresh.error().unwrap_or_default().to_string(),
            },
        }
    }
}

impl From<ClientError> for Retry {
    fn from(e: ClientError) -> Self {
        Self::Final(e)
    }
}

async fn pay_once(
    http: &Http,
    paying: Paying<'_>,
    request: &Request,
    challenge: &Challenge,
) -> Result<Paid, Retry> {
    let offer = challenge.select(paying.filter)?;
    let amount = amount_of(offer)?;
    let reservation = paying.budget.reserve(amount)?;
    let header = paying.payer.payment_header(challenge, offer).await?;
    let value = HeaderValue::from_str(&header)
        .map_err(|_| ClientError::BadOffer("the payment header is not ASCII".into()))?;
    let sent = http
        .send_raw(
            request,
            &[(HeaderName::from_static(PAYMENT_SIGNATURE), value)],
        )
        .await;
    let answer = match sent {
        Ok(answer) => answer,
        // Never connected: the payment was not sent.
        Err(Some(e)) if e.is_connect() => {
            return Err(ClientError::transport(format!("paying {}", request.url), e).into())
        }
        // Sent, outcome unknown: counted as spent, so the cap holds whatever happened.
        Err(e) => {
            reservation.commit();
            let what = format!(
                "paying {} (the payment may have settled; it counts against the spend cap)",
                request.url
            );
            return Err(match e {
                Some(e) => ClientError::transport(what, e),
                None => ClientError::AnswerTooLarge {
                    url: what,
                    max: MAX_ANSWER_BYTES,
                },
            }
            .into());
        }
    };
    let receipt = answer.receipt();
    let settled = receipt.as_ref().is_some_and(|r| r.success);
    let status = answer.status;
    if status.is_success() || settled {
        let spent = reservation.commit();
        return Ok(Paid {
            answer,
            offer: Some(offer.clone()),
            receipt,
            spent,
        });
    }
    match status {
        StatusCode::PAYMENT_REQUIRED => match receipt {
            Some(r) => Err(ClientError::SettleFailed {
                reason: r.error_reason.unwrap_or_else(|| "settle_failed".into()),
                message: r.error_message.unwrap_or_default(),
            }
            .into()),
            None => {
                let fresh = Challenge::from_response(&answer.headers, &answer.body)?;
                let reason = refusal_code(&fresh);
                if RETRYABLE.contains(&reason.as_str()) {
                    return Err(Retry::Again(Box::new(fresh)));
                }
                let mut message = fresh.error().unwrap_or_default().to_string();
                if reason.contains("simulation_failed") || reason.contains("transaction_failed") {
                    if let Some(balance) = paying.payer.token_balance(offer).await {
                        message.push_str(&format!(
                            "; the wallet holds {balance} atomic units of {}, the price is {amount}",
                            offer.asset
                        ));
                    }
                }
                Err(ClientError::Refused { reason, message }.into())
            }
        },
        StatusCode::GATEWAY_TIMEOUT if receipt.is_some() => {
            // Settlement sent, not confirmed: it may still land.
            reservation.commit();
            Err(ClientError::SettlePending {
                transaction: receipt.map(|r| r.transaction).unwrap_or_default(),
                retry_after: answer.retry_after(),
            }
            .into())
        }
        StatusCode::CONFLICT => Err(ClientError::Conflict {
            code: answer.code_or("conflict"),
            message: answer.message(),
        }
        .into()),
        StatusCode::TOO_MANY_REQUESTS => Err(ClientError::RateLimited {
            code: answer.code_or("rate_limited"),
            retry_after: answer.retry_after(),
        }
        .into()),
        StatusCode::SERVICE_UNAVAILABLE if answer.code_or("") == "payment_unavailable" => {
            Err(ClientError::Unavailable {
                message: answer.message(),
                retry_after: answer.retry_after(),
            }
            .into())
        }
        // Any other failure (the upstream's error, a refused request): x402 servers settle only
        // after a successful answer, so nothing was charged; the answer is the caller's to show.
        _ => Ok(Paid {
            answer,
            offer: Some(offer.clone()),
            receipt,
            spent: paying.budget.spent(),
        }),
    }
}

/// The machine code of a refusal: the challenge's `error` up to its first `:`, else the body's.
fn refusal_code(challenge: &Challenge) -> String {
    challenge
        .required
        .error
        .as_deref()
        .map(|e| e.split(':').next().unwrap_or(e).trim().to_string())
        .filter(|c| !c.is_empty() && !c.contains(' '))
        .or_else(|| challenge.body_error.clone())
        .unwrap_or_else(|| "payment_refused".into())
}
