//! One paid request, top to bottom: price (from the parsed request) → challenge, or decode →
//! match → local pre-verify → claim (with the payer's and provider's limits: one store round
//! trip) → facilitator verify → upstream → settle only on success → keep the answer with the
//! claim (second round trip) → release it with the receipt.
//!
//! The claim comes before the facilitator's verify so that a duplicate or a replay is answered
//! from the store without a facilitator call; a payment the facilitator refuses has its claim
//! released at once. Every early answer is a [`PaygateError`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::claims::{self, claim_ids, fingerprint};
use super::error::PaygateError;
use super::offer::{Checked, Offer, Refusal};
use super::reconcile;
use super::Paygate;
use crate::credits::{Session, SessionRefusal, TokenError, CREDITS_REMAINING};
use crate::exchange::{Exchange, LimitScope, PaymentOutcome, UpstreamOutcome};
use crate::facilitator::{SettleOutcome, SETTLEMENT_PENDING};
use crate::ledger::{Claimed, NewPayment, PaymentRow, PaymentState, Submission};
use crate::priced::{Charge, Payer, PricedRequest};
use crate::ratelimit::{Checks, ClientIp};
use crate::store::{new_token, CachedResponse, ClaimIds, ClaimRecord, ClaimState, Reservation};
use crate::x402::header::{MAX_PAYMENT_HEADER_BYTES, PAYMENT_SIGNATURE, X_PAYMENT};
use crate::x402::receipt::{add_receipt, PaymentVersion};
use crate::x402::{decode_header_bytes, PaymentHeader, SettleResponse};

/// The challenge's `error` for a request that carried no payment.
const PAYMENT_REQUIRED: &str = "Payment required";

/// What the flow learnt about the payment as it went, for the request record.
#[derive(Debug, Default)]
pub(super) struct Trace {
    /// The price asked (none when the request sells nothing).
    pub(super) amount: Option<u64>,
    /// The payer, once a payment named a verified one.
    pub(super) payer: Option<String>,
}

/// An answer the flow gives as intended (not a refusal).
pub(super) struct Answer {
    pub(super) response: Response,
    /// `None` when there was nothing to sell (the route answered by itself).
    pub(super) outcome: Option<PaymentOutcome>,
    /// The settlement's transaction, when settled.
    pub(super) transaction: Option<String>,
}

impl Answer {
    fn new(response: Response, outcome: PaymentOutcome) -> Self {
        Self {
            response,
            outcome: Some(outcome),
            transaction: None,
        }
    }
}

impl Paygate {
    /// The whole paid-route decision for one request.
    pub(super) async fn handle(
        self: &Arc<Self>,
        request: Request,
        next: Next,
        trace: &mut Trace,
    ) -> Result<Answer, PaygateError> {
        // Route parsing inserts the priced request; a priced route without it is a wiring bug,
        // refused rather than served unpaid.
        let priced = request
            .extensions()
            .get::<Arc<PricedRequest>>()
            .cloned()
            .ok_or(PaygateError::Internal("no priced request on a paid route"))?;
        let amount = match &priced.charge {
            Charge::Quote(quote) => quote.amount,
            Charge::Nothing => {
                // Nothing reaches the provider (every element refused): nothing to sell.
                return Ok(Answer {
                    response: next.run(request).await,
                    outcome: None,
                    transaction: None,
                });
            }
            Charge::Unpriced(e) => {
                trace.amount = Some(0);
                return Err(PaygateError::Unpriced(e.to_string()));
            }
        };
        trace.amount = Some(amount);
        // Only payments on the called cluster's own network are taken.
        if !self.sells(priced.network) {
            return Err(PaygateError::NotSold(priced.network));
        }

        // A credits session instead of a payment (never for a top-up, which buys credits).
        if let (Some(credits), None, Charge::Quote(quote)) =
            (&self.credits, priced.grants, &priced.charge)
        {
            let has_payment = request.headers().contains_key(PAYMENT_SIGNATURE)
                || request.headers().contains_key(X_PAYMENT);
            if !has_payment {
                if let Some(session) = credits.session(request.headers()).await {
                    let price = quote.credits;
                    return self
                        .pay_with_credits(session, request, next, &priced, price, trace)
                        .await;
                }
            }
        }
        let Some((payment, version)) = payment_header(request.headers()) else {
            let peer = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0);
            let client = self.limits.client_ip(peer, request.headers());
            return self
                .challenge(client, request.uri().path(), &priced, amount)
                .await;
        };
        let offer = Offer::new(self, &priced, amount);
        if offer.accepts.is_empty() {
            return Err(PaygateError::NoFeePayer);
        }
        let refused = |offer, refusal| PaygateError::Refused {
            offer: Box::new(offer),
            refusal,
        };
        let payment = match payment {
            Ok(payment) => payment,
            Err(message) => {
                return Err(refused(
                    offer,
                    Refusal::malformed("malformed_payment", message),
                ))
            }
        };
        let checked = match offer.check(&payment) {
            Ok(checked) => checked,
            Err(refusal) => return Err(refused(offer, refusal)),
        };
        trace.payer = Some(checked.payer.clone());
        let ids = match claim_ids(
            checked.key,
            &checked.payer,
            &payment,
            request.headers(),
            self.config.require_payment_identifier,
        ) {
            Ok(ids) => ids,
            Err(message) => {
                return Err(refused(
                    offer,
                    Refusal::malformed("invalid_idempotency_id", message),
                ))
            }
        };
        let fingerprint = fingerprint(
            request.method().as_str(),
            request.uri().path(),
            &priced.body,
        );
        let mut limits = Checks::default();
        limits.push(LimitScope::Payer, self.limits.payer(&checked.payer));
        limits.push(
            LimitScope::Provider,
            self.limits
                .provider_calls(priced.provider.name(), priced.calls),
        );

        // One payment, one answer: claim it (and check the payer's and provider's limits) in one
        // atomic store step, before anything is spent on it.
        let ttl = Duration::from_secs(self.config.claim_ttl_secs.max(1));
        let token = new_token();
        match self
            .store
            .reserve(&ids, &token, &fingerprint, limits.as_slice(), ttl)
            .await
        {
            Ok(Reservation::Reserved { .. }) => {}
            Ok(Reservation::Limited(verdict)) => {
                return Err(PaygateError::Limited(
                    self.limits.too_many(&verdict, &limits),
                ))
            }
            Ok(Reservation::Existing(record)) => return self.existing(&record, &fingerprint).await,
            Err(e) => {
                // Fail closed: without the store we cannot promise one answer per payment.
                // A reserve that timed out may still have claimed: release it (in the
                // background, best effort) so that the 503's Retry-After is true.
                tracing::warn!(error = %e, "payment store unavailable");
                tokio::spawn(release_failed_reservation(
                    self.store.clone(),
                    ids,
                    token,
                    ttl,
                ));
                return Err(PaygateError::StoreUnavailable);
            }
        }

        // The ledger's claim, durable: also the second guard after a lost store (a payment an
        // earlier attempt submitted or settled is answered from its row, never spent again).
        let (pid_alias, idem_alias) = claims::aliases(&ids);
        let claim = self
            .ledger
            .claim(&NewPayment {
                key: &checked.key,
                attempt: &token,
                pid_alias,
                idem_alias,
                payer: &checked.payer,
                pay_to: &checked.pay_to,
                asset: &checked.asset,
                network: &checked.network,
                amount,
                route: request.uri().path(),
                fingerprint: &fingerprint,
                credits: priced.grants,
            })
            .await;
        match claim {
            Ok(Claimed::Fresh) => {}
            Ok(Claimed::Existing(row)) => {
                return self
                    .answer_from_ledger(&row, &ids, &token, &fingerprint)
                    .await
            }
            Err(e) => {
                tracing::warn!(error = %e, "payment ledger unavailable");
                release(self, &ids, &token).await;
                return Err(PaygateError::LedgerUnavailable);
            }
        }

        // From here the claim is ours. The rest runs on its own task: a client that hangs up, or
        // the global request timeout, must never leave a claimed (maybe settled) payment
        // unrecorded.
        let paid = Paid {
            gate: self.clone(),
            offer,
            checked,
            ids,
            token,
            fingerprint,
            version,
        };
        match tokio::spawn(paid.run(request, next)).await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::error!(error = %e, "paid request task failed");
                Err(PaygateError::Internal("paid request task failed"))
            }
        }
    }

    /// The answer to a payment that already has a record: its kept answer for the same
    /// request (from the ledger when the store only points there), else a 409 saying why.
    async fn existing(
        &self,
        record: &ClaimRecord,
        fingerprint: &str,
    ) -> Result<Answer, PaygateError> {
        let conflict = |code, message| Err(PaygateError::Conflict { code, message });
        let in_progress = || {
            conflict(
                "payment_in_progress",
                "this payment's settlement is being confirmed; retry later",
            )
        };
        match &record.state {
            ClaimState::InFlight { .. } => {
                conflict("payment_in_progress", "this payment is being processed")
            }
            ClaimState::Pending { .. } => in_progress(),
            ClaimState::Settled { .. } if record.fingerprint != fingerprint => conflict(
                "payment_already_used",
                "this payment (or its idempotency id) was already used for another request",
            ),
            ClaimState::Settled {
                response: Some(kept),
                ..
            } => Ok(Answer::new(claims::replay(kept), PaymentOutcome::Replayed)),
            ClaimState::Settled {
                response: None,
                ledger_key: Some(key),
            } => match self.ledger.payment_by_hex(key).await {
                Ok(Some(row)) if row.state == PaymentState::Settled => {
                    match reconcile::kept_answer(&row) {
                        Some(kept) => {
                            Ok(Answer::new(claims::replay(&kept), PaymentOutcome::Replayed))
                        }
                        None => conflict("payment_already_used", "this payment was already used"),
                    }
                }
                // Settled a moment ago: the ledger's "settled" is being written behind.
                Ok(Some(row)) if row.state == PaymentState::SettleSubmitted => in_progress(),
                Ok(_) => conflict("payment_already_used", "this payment was already used"),
                Err(e) => {
                    tracing::warn!(error = %e, "payment ledger unavailable for a replay");
                    Err(PaygateError::LedgerUnavailable)
                }
            },
            ClaimState::Settled { response: None, .. } => {
                conflict("payment_already_used", "this payment was already used")
            }
        }
    }

    /// The answer to a payment whose ledger row says an earlier attempt submitted or settled
    /// it (the store had lost, or never had, its record): the kept answer for the same
    /// request, else a 409. The store learns the row's state again, so the next replay is
    /// answered from it.
    async fn answer_from_ledger(
        &self,
        row: &PaymentRow,
        ids: &ClaimIds,
        token: &str,
        fingerprint: &str,
    ) -> Result<Answer, PaygateError> {
        let conflict = |code, message| Err(PaygateError::Conflict { code, message });
        // Another payment with the same idempotency id: this one is not spent; free it.
        let same_payment = row.payment_key == ids.payment.hex();
        let kept = reconcile::kept_answer(row);
        let state = match row.state {
            PaymentState::Settled => ClaimState::Settled {
                response: None,
                ledger_key: Some(row.payment_key.clone()),
            },
            PaymentState::SettleSubmitted => ClaimState::Pending {
                transaction: row.signature.clone(),
                response: row.answer.clone(),
                settle_request: row.settle_request.clone().unwrap_or_default(),
            },
            _ => {
                release(self, ids, token).await;
                return Err(PaygateError::Internal("ledger returned an unspent payment"));
            }
        };
        if same_payment {
            let record = ClaimRecord {
                fingerprint: row.fingerprint.clone(),
                state,
            };
            let ttl = Duration::from_secs(self.config.settled_ttl_secs.max(1));
            if let Err(e) = self.store.finish(ids, token, &record, ttl).await {
                tracing::warn!(error = %e, "restoring a payment's record in the store failed");
            }
        } else {
            release(self, ids, token).await;
        }
        match (row.state, kept) {
            (PaymentState::Settled, Some(kept)) if row.fingerprint == fingerprint => {
                Ok(Answer::new(claims::replay(&kept), PaymentOutcome::Replayed))
            }
            (PaymentState::Settled, _) => conflict(
                "payment_already_used",
                "this payment (or its idempotency id) was already used",
            ),
            _ => conflict(
                "payment_in_progress",
                "this payment's settlement is being confirmed; retry later",
            ),
        }
    }

    /// A call paid with prepaid credits: the session's wallet, its payer limit and the
    /// provider budget, then the call's credit price reserved in the ledger (never below zero)
    /// before the upstream call, made final on success and given back on failure. Credits
    /// that do not cover the call (or a token that is not valid) get the usual challenge, so
    /// the client may pay per call instead.
    async fn pay_with_credits(
        self: &Arc<Self>,
        session: Result<Session, SessionRefusal>,
        request: Request,
        next: Next,
        priced: &PricedRequest,
        price: u64,
        trace: &mut Trace,
    ) -> Result<Answer, PaygateError> {
        let amount = trace.amount.unwrap_or_default();
        let refused = |code: &'static str, detail: String| PaygateError::Refused {
            offer: Box::new(Offer::new(self, priced, amount)),
            refusal: Refusal::payment(code, Some(detail)),
        };
        let session = match session {
            Ok(session) => session,
            Err(SessionRefusal::StoreUnavailable) => return Err(PaygateError::StoreUnavailable),
            Err(SessionRefusal::Token(e)) => {
                return Err(refused(
                    if e == TokenError::Expired {
                        "session_expired"
                    } else {
                        "invalid_session"
                    },
                    "sign in again at /v1/credits/session, or pay this call".into(),
                ))
            }
        };
        trace.payer = Some(session.wallet.clone());
        let mut checks = Checks::default();
        checks.push(LimitScope::Payer, self.limits.payer(&session.wallet));
        checks.push(
            LimitScope::Provider,
            self.limits
                .provider_calls(priced.provider.name(), priced.calls),
        );
        if !checks.is_empty() {
            let verdict = self
                .limits
                .decide(self.store.as_ref(), checks.as_slice())
                .await;
            if !verdict.is_allowed() {
                return Err(PaygateError::Limited(
                    self.limits.too_many(&verdict, &checks),
                ));
            }
        }
        let reference = crate::ledger::call_reference();
        let path = request.uri().path().to_string();
        let balance = if price == 0 {
            None
        } else {
            match self
                .ledger
                .reserve_credits(&session.wallet, price as i64, &reference, &path)
                .await
            {
                Ok(Some(balance)) => Some(balance),
                Ok(None) => {
                    return Err(refused(
                        "insufficient_balance",
                        format!("this call costs {price} credits; top up at /v1/credits/topup or pay this call"),
                    ))
                }
                Err(e) => {
                    // The reserve may have committed before its answer was lost: the 503 says
                    // "not charged", so give it back (only if it was taken) once the ledger
                    // answers again; the reconciler catches what this misses.
                    tracing::warn!(error = %e, "payment ledger unavailable for credits");
                    tokio::spawn(void_lost_reservation(
                        self.ledger.clone(),
                        session.wallet.clone(),
                        price as i64,
                        reference,
                    ));
                    return Err(PaygateError::LedgerUnavailable);
                }
            }
        };
        // Reserved: the rest runs on its own task, so a client that hangs up never leaves a
        // reservation without its outcome.
        let gate = self.clone();
        let wallet = session.wallet;
        let call = async move {
            let mut response = next.run(request).await;
            let success =
                Exchange::get(&response).and_then(|e| e.upstream) == Some(UpstreamOutcome::Success);
            let mut remaining = balance;
            if let Some(left) = balance {
                if success {
                    gate.ledger
                        .spend_credits(&wallet, price as i64, left, &reference);
                } else {
                    match gate
                        .ledger
                        .void_credits(&wallet, price as i64, &reference)
                        .await
                    {
                        Ok(Some(back)) => remaining = Some(back),
                        Ok(None) => {}
                        // Left reserved: the reconciler gives it back once this instance is
                        // gone; never a charge for a failed call for good.
                        Err(e) => tracing::warn!(error = %e, "voiding a credit reservation failed"),
                    }
                }
            }
            let remaining = match remaining {
                Some(remaining) => remaining,
                None => gate.ledger.credit_balance(&wallet).await.unwrap_or(0),
            };
            response
                .headers_mut()
                .insert(CREDITS_REMAINING, HeaderValue::from(remaining.max(0)));
            let outcome = if success {
                PaymentOutcome::Credits
            } else {
                PaymentOutcome::NotCharged
            };
            Answer {
                response,
                outcome: Some(outcome),
                transaction: None,
            }
        };
        tokio::spawn(call).await.map_err(|e| {
            tracing::error!(error = %e, "credit-paid request task failed");
            PaygateError::Internal("credit-paid request task failed")
        })
    }

    /// The answer to a request without payment: the per-IP challenge limit, then the challenge
    /// for this route and price, built once and then served from the cache.
    async fn challenge(
        &self,
        client: ClientIp,
        path: &str,
        priced: &PricedRequest,
        amount: u64,
    ) -> Result<Answer, PaygateError> {
        let mut checks = Checks::default();
        checks.push(LimitScope::Ip, self.limits.challenge(&client));
        let verdict = self
            .limits
            .decide(self.store.as_ref(), checks.as_slice())
            .await;
        if !verdict.is_allowed() {
            return Err(PaygateError::Limited(
                self.limits.too_many(&verdict, &checks),
            ));
        }
        let generation = self.generation();
        let encoded = match self.challenges.get(generation, path, amount) {
            Some(encoded) => encoded,
            None => {
                let offer = Offer::new(self, priced, amount);
                if offer.accepts.is_empty() {
                    return Err(PaygateError::NoFeePayer);
                }
                let encoded = offer.encoded(PAYMENT_REQUIRED);
                self.challenges
                    .put(generation, path, amount, encoded.clone());
                encoded
            }
        };
        let mut response = encoded.response(StatusCode::PAYMENT_REQUIRED);
        if !checks.is_empty() {
            self.limits
                .annotate(&verdict, &checks, response.headers_mut());
        }
        Ok(Answer::new(response, PaymentOutcome::Challenge))
    }
}

/// Releases a reservation whose reserve call failed or timed out (it may have claimed all the
/// same, e.g. on a frozen Redis that answers later): retried with backoff until the store
/// answers or the claim would have expired anyway. Commands on one connection run in order,
/// so the release never overtakes the reserve it undoes.
async fn release_failed_reservation(
    store: Arc<dyn crate::store::Store>,
    ids: ClaimIds,
    token: String,
    claim_ttl: Duration,
) {
    let give_up = tokio::time::Instant::now() + claim_ttl;
    let mut wait = Duration::from_millis(100);
    loop {
        match store.release(&ids, &token).await {
            Ok(()) => return,
            Err(e) if tokio::time::Instant::now() + wait >= give_up => {
                tracing::info!(error = %e, "releasing a failed reservation failed; it expires");
                return;
            }
            Err(_) => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Frees a claim: nothing was charged, the payment may be used again.
async fn release(gate: &Paygate, ids: &ClaimIds, token: &str) {
    if let Err(e) = gate.store.release(ids, token).await {
        // The claim expires on its own (claim_ttl_secs); until then the payment gets 409.
        tracing::warn!(error = %e, payment = ?ids.payment, "claim release failed");
    }
}

/// A claimed payment, carried through verify, upstream and settlement.
struct Paid {
    gate: Arc<Paygate>,
    offer: Offer,
    checked: Checked,
    ids: ClaimIds,
    token: String,
    fingerprint: String,
    version: PaymentVersion,
}

impl Paid {
    /// Verify, call the upstream, record, settle. Whatever it returns, the claim has been
    /// released (nothing charged) or finished (settled or pending) before it returns, and the
    /// ledger knows which.
    async fn run(self, request: Request, next: Next) -> Result<Answer, PaygateError> {
        let ledger = &self.gate.ledger;
        let key = &self.checked.key;
        // The facilitator's verdict (a definitive "no" is a 402; an unreachable one is a 503).
        match self
            .gate
            .facilitator
            .verify_decoded(&self.checked.request, &self.checked.tx)
            .await
        {
            Ok(v) if v.is_valid => ledger.verified(key, &self.token),
            Ok(v) => {
                let reason = v.invalid_reason.unwrap_or_else(|| "invalid_payment".into());
                ledger.refused(key, &self.token, &reason);
                self.release().await;
                return Err(PaygateError::Refused {
                    refusal: Refusal::payment(reason, None),
                    offer: Box::new(self.offer),
                });
            }
            Err(e) => {
                ledger.refused(key, &self.token, "facilitator_unavailable");
                self.release().await;
                tracing::warn!(error = %e, "facilitator verify failed");
                return Err(PaygateError::FacilitatorUnavailable { settling: false });
            }
        }

        let mut request = request;
        request
            .extensions_mut()
            .insert(Payer(self.checked.payer.clone()));
        let response = next.run(request).await;
        let upstream = Exchange::get(&response).and_then(|e| e.upstream);
        if upstream != Some(UpstreamOutcome::Success) {
            // Our or the upstream's failure: the client is not charged and may reuse the payment.
            ledger.upstream(key, &self.token, false);
            self.release().await;
            return Ok(Answer::new(response, PaymentOutcome::NotCharged));
        }
        ledger.upstream(key, &self.token, true);
        // The forwarding handler buffered the answer under `upstream.max_response_bytes`; the
        // same cap bounds this read, so nothing unbounded is ever held for the claim.
        let (mut parts, body) = response.into_parts();
        let body = match axum::body::to_bytes(body, MAX_KEPT_BODY_BYTES).await {
            Ok(body) => body,
            Err(e) => {
                ledger.refused(key, &self.token, "upstream_unreadable");
                self.release().await;
                tracing::warn!(error = %e, "upstream answer unreadable");
                return Err(PaygateError::UpstreamUnreadable);
            }
        };
        parts
            .headers
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
        crate::failpoint::hold("after_upstream").await;

        // Written ahead: the answer and what to settle, before anything is sent. A crash after
        // this leaves a row the reconciler follows to the chain's verdict.
        let kept = claims::keep(parts.status, &parts.headers, &body);
        let settle_request = serde_json::to_string(&self.checked.request)
            .expect("a facilitator request is always serializable");
        let submission = Submission {
            signature: None,
            settle_request: &settle_request,
            answer: &kept,
            facilitator: self.gate.facilitator.name(),
        };
        match ledger.submit(key, &self.token, &submission).await {
            Ok(true) => {}
            Ok(false) => {
                // Another attempt took the payment over (ours was presumed dead): it decides.
                self.release().await;
                return Err(PaygateError::Conflict {
                    code: "payment_in_progress",
                    message: "this payment is being processed",
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "payment ledger unavailable before settlement");
                ledger.refused(key, &self.token, "ledger_unavailable");
                self.release().await;
                return Err(PaygateError::LedgerUnavailable);
            }
        }
        crate::failpoint::hold("before_settle").await;

        let settled = match self
            .gate
            .facilitator
            .settle_decoded(&self.checked.request, &self.checked.tx)
            .await
        {
            Ok(settled) => settled,
            Err(e) if !e.maybe_sent() => {
                self.unsettled(PaymentState::Failed, None, "facilitator_unavailable")
                    .await;
                self.release().await;
                return Err(PaygateError::FacilitatorUnavailable { settling: true });
            }
            Err(e) => {
                // It may have been broadcast: the row stays submitted for the reconciler, and
                // the store's record answers retries with 409 meanwhile.
                tracing::warn!(error = %e, "settle outcome unknown");
                self.pending(None, kept, settle_request).await;
                return Err(PaygateError::SettlePending {
                    receipt: Box::new(SettleResponse {
                        success: false,
                        error_reason: Some(SETTLEMENT_PENDING.into()),
                        error_message: Some(e.to_string()),
                        transaction: String::new(),
                        network: self.checked.network.clone(),
                        payer: Some(self.checked.payer.clone()),
                    }),
                    version: self.version,
                    retry_after_secs: self.gate.pending_retry_after_secs(),
                });
            }
        };
        crate::failpoint::hold("after_settle").await;
        match SettleOutcome::of(&settled) {
            SettleOutcome::Confirmed => {
                add_receipt(&mut parts.headers, &settled, self.version);
                // Awaited: a replay right after this answer reads the row (answer + receipt).
                // If it fails, the row stays submitted and the reconciler settles it again
                // (finding it landed); replays get 409 until then.
                let receipt = serde_json::to_string(&settled).unwrap_or_default();
                if let Err(e) = ledger
                    .resolve(
                        key,
                        &self.token,
                        PaymentState::Settled,
                        Some(&settled.transaction),
                        Some(&receipt),
                        None,
                    )
                    .await
                {
                    tracing::warn!(error = %e, "recording a settled payment in the ledger failed");
                }
                // The answer is in the ledger (written before settling): the store keeps only
                // where to find it, so its memory does not grow with answer sizes.
                self.finish(ClaimState::Settled {
                    response: None,
                    ledger_key: Some(key.hex()),
                })
                .await;
                crate::failpoint::hold("before_answer").await;
                Ok(Answer {
                    response: Response::from_parts(parts, Body::from(body)),
                    outcome: Some(PaymentOutcome::Settled),
                    transaction: Some(settled.transaction).filter(|t| !t.is_empty()),
                })
            }
            SettleOutcome::Pending => {
                self.pending(Some(settled.transaction.clone()), kept, settle_request)
                    .await;
                Err(PaygateError::SettlePending {
                    receipt: Box::new(settled),
                    version: self.version,
                    retry_after_secs: self.gate.pending_retry_after_secs(),
                })
            }
            // A landed duplicate here is this very transaction landing earlier for a request
            // whose claim was lost: not paid by *this* request, so refused as any other "no".
            SettleOutcome::Duplicate | SettleOutcome::Refused => {
                // Definitely not paid now: withhold the answer; the payment may be retried.
                let reason = settled.error_reason.as_deref().unwrap_or("settle_failed");
                let state = reconcile::unsettled_state(reason);
                self.unsettled(state, Some(&settled), reason).await;
                self.release().await;
                Err(PaygateError::SettleRefused {
                    receipt: Box::new(settled),
                    version: self.version,
                })
            }
        }
    }

    /// Nothing was charged: the payment may be used again.
    async fn release(&self) {
        release(&self.gate, &self.ids, &self.token).await;
    }

    /// A submitted settlement definitely did not happen: recorded (awaited, so that a retry
    /// of the same payment finds the row free) as `state` with why.
    async fn unsettled(&self, state: PaymentState, receipt: Option<&SettleResponse>, reason: &str) {
        let receipt_json = receipt.and_then(|r| serde_json::to_string(r).ok());
        let signature = receipt.map(|r| r.transaction.as_str());
        if let Err(e) = self
            .gate
            .ledger
            .resolve(
                &self.checked.key,
                &self.token,
                state,
                signature,
                receipt_json.as_deref(),
                Some(reason),
            )
            .await
        {
            // The row stays submitted: the reconciler settles again and gets the same "no".
            tracing::warn!(error = %e, "recording an unsettled payment failed");
        }
    }

    async fn finish(&self, state: ClaimState) {
        let record = ClaimRecord {
            fingerprint: self.fingerprint.clone(),
            state,
        };
        let ttl = Duration::from_secs(self.gate.config.settled_ttl_secs.max(1));
        if let Err(e) = self
            .gate
            .store
            .finish(&self.ids, &self.token, &record, ttl)
            .await
        {
            // The client paid: it still gets its answer. A replay of this payment is then
            // answered from the ledger (the claim finds its row settled).
            tracing::error!(error = %e, payment = ?self.ids.payment, "recording a settled payment failed");
        }
    }

    /// The settlement's outcome is unknown: keep the claim (a retry gets 409) with the answer;
    /// the ledger row (submitted) is what the reconciler follows.
    async fn pending(
        &self,
        transaction: Option<String>,
        kept: CachedResponse,
        settle_request: String,
    ) {
        self.finish(ClaimState::Pending {
            transaction: transaction.filter(|t| !t.is_empty()),
            response: Some(kept),
            settle_request,
        })
        .await;
    }
}

/// Upper bound on an answer collected to keep with a claim. The forwarding handler already
/// refused anything over `upstream.max_response_bytes`; this only makes the bound local.
const MAX_KEPT_BODY_BYTES: usize = 64 * 1024 * 1024;

/// A credit reservation whose answer was lost (timeout, dropped connection): voided once the
/// ledger answers, a few attempts apart; `void_credits` gives back only what a reserve took.
async fn void_lost_reservation(
    ledger: Arc<crate::ledger::Ledger>,
    wallet: String,
    amount: i64,
    reference: String,
) {
    let pause = Duration::from_millis(ledger.config().timeout_ms.max(100));
    for _ in 0..5 {
        tokio::time::sleep(pause).await;
        match ledger.void_credits(&wallet, amount, &reference).await {
            Ok(Some(balance)) => {
                tracing::info!(%wallet, amount, balance, "lost credit reservation voided");
                return;
            }
            Ok(None) => return,
            Err(e) => tracing::warn!(error = %e, "voiding a lost credit reservation"),
        }
    }
}

/// The payment header and its version, decoded; `None` when there is none.
fn payment_header(headers: &HeaderMap) -> Option<(Result<PaymentHeader, String>, PaymentVersion)> {
    let (value, version) = match (headers.get(PAYMENT_SIGNATURE), headers.get(X_PAYMENT)) {
        (Some(v), _) => (v, PaymentVersion::V2),
        (None, Some(v)) => (v, PaymentVersion::V1),
        (None, None) => return None,
    };
    let decoded = decode_header_bytes(value.as_bytes(), MAX_PAYMENT_HEADER_BYTES)
        .and_then(|json| PaymentHeader::from_json(&json))
        .map_err(|e| format!("malformed payment header: {e}"));
    Some((decoded, version))
}
