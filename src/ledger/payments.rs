//! A payment's rows: the claim, each step of its state machine, and the reads that decide
//! what a replay gets.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::awaited::{Done, Resolution, Work};
use super::sql::Sql;
use super::state::PaymentState;
use super::writer::Behind;
use super::{now_ms, text, Backend, Ledger, LedgerError, LedgerResult};
use crate::store::{CachedResponse, PaymentKey};

/// Every column of `payments`, in [`PaymentRow::from_row`]'s order.
pub(super) const COLUMNS: &str = "payment_key, attempt, state, pid_alias, idem_alias, payer, \
    pay_to, asset, network, amount, route, fingerprint, facilitator, instance, signature, \
    settle_request, answer_status, answer_headers, answer_body, receipt, reason, created_ms, \
    claimed_ms, verified_ms, upstream_ms, submitted_ms, final_ms, updated_ms";

/// Moves a submitted payment to its outcome (`$1` state, `$2` signature, `$3` receipt, `$4`
/// reason, `$5` time, `$6` key, `$7` attempt), returning its payer and the credits its
/// settlement grants (no row: it was no longer submitted).
const RESOLVE: &str = "UPDATE payments SET state = $1, signature = COALESCE($2, signature), \
     receipt = COALESCE($3, receipt), reason = $4, final_ms = $5, updated_ms = $5 \
     WHERE payment_key = $6 AND attempt = $7 AND state = 'settle_submitted' \
     RETURNING payer, credits_granted";

/// What a request claims: the payment and what it pays for.
#[derive(Debug, Clone)]
pub struct NewPayment<'a> {
    /// The payment.
    pub key: &'a PaymentKey,
    /// The claim token of this attempt.
    pub attempt: &'a str,
    /// The payer-scoped `payment-identifier` alias, if any.
    pub pid_alias: Option<&'a str>,
    /// The payer-scoped `Idempotency-Key` alias, if any.
    pub idem_alias: Option<&'a str>,
    /// The transfer's authority.
    pub payer: &'a str,
    /// Our receiving wallet.
    pub pay_to: &'a str,
    /// The mint.
    pub asset: &'a str,
    /// CAIP-2 network.
    pub network: &'a str,
    /// Atomic units.
    pub amount: u64,
    /// The route's path.
    pub route: &'a str,
    /// SHA-256 of the request (method, path, body).
    pub fingerprint: &'a str,
    /// Credits its settlement grants the payer (a top-up pack).
    pub credits: Option<u64>,
}

/// What the claim found.
#[derive(Debug)]
pub enum Claimed {
    /// This attempt now owns the row (new, or an earlier attempt charged nothing).
    Fresh,
    /// An earlier attempt submitted or settled this payment (or another payment with the same
    /// idempotency id did): its row decides the answer; nothing may be spent again.
    Existing(Box<PaymentRow>),
}

/// What is recorded before a settlement is sent.
#[derive(Debug)]
pub struct Submission<'a> {
    /// The settlement's transaction signature, when known before sending.
    pub signature: Option<&'a str>,
    /// The facilitator request (JSON) to settle again, for the reconciler.
    pub settle_request: &'a str,
    /// The answer the client gets once it settles.
    pub answer: &'a CachedResponse,
    /// Which facilitator set settles it.
    pub facilitator: &'a str,
}

/// One payment as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentRow {
    /// Hex SHA-256 of the transaction message.
    pub payment_key: String,
    /// The claim token of the attempt that last wrote it.
    #[serde(skip)]
    pub attempt: String,
    /// Where it stands.
    pub state: PaymentState,
    /// Idempotency aliases (store keys), when sent.
    #[serde(skip)]
    pub pid_alias: Option<String>,
    #[serde(skip)]
    pub idem_alias: Option<String>,
    /// The paying wallet.
    pub payer: String,
    /// Our wallet.
    pub pay_to: String,
    /// The mint.
    pub asset: String,
    /// CAIP-2 network.
    pub network: String,
    /// Atomic units.
    pub amount: u64,
    /// The route's path.
    pub route: String,
    /// SHA-256 of the request.
    pub fingerprint: String,
    /// Facilitator used.
    pub facilitator: Option<String>,
    /// The instance that last worked on it.
    pub instance: String,
    /// The settlement's transaction signature.
    pub signature: Option<String>,
    /// The facilitator request to settle again.
    #[serde(skip)]
    pub settle_request: Option<String>,
    /// The kept answer (status, replayed headers, body), once the upstream succeeded.
    #[serde(skip)]
    pub answer: Option<CachedResponse>,
    /// The settlement receipt (JSON), once settled.
    pub receipt: Option<serde_json::Value>,
    /// Why it failed, expired or was abandoned.
    pub reason: Option<String>,
    /// Times (Unix ms) of each step.
    pub created_ms: i64,
    pub claimed_ms: i64,
    pub verified_ms: Option<i64>,
    pub upstream_ms: Option<i64>,
    pub submitted_ms: Option<i64>,
    pub final_ms: Option<i64>,
    pub updated_ms: i64,
}

impl PaymentRow {
    pub(super) fn from_row(row: &AnyRow) -> LedgerResult<Self> {
        let state: String = row.try_get("state")?;
        let status: Option<i64> = row.try_get("answer_status")?;
        let answer = match status {
            Some(status) => {
                let headers = text(row, "answer_headers")?.unwrap_or_default();
                Some(CachedResponse {
                    status: u16::try_from(status)
                        .map_err(|_| LedgerError::Corrupt(format!("status {status}")))?,
                    headers: serde_json::from_str(&headers)
                        .map_err(|e| LedgerError::Corrupt(e.to_string()))?,
                    body: row
                        .try_get::<Option<Vec<u8>>, _>("answer_body")?
                        .unwrap_or_default(),
                })
            }
            None => None,
        };
        let amount: i64 = row.try_get("amount")?;
        Ok(Self {
            payment_key: row.try_get("payment_key")?,
            attempt: row.try_get("attempt")?,
            state: state.parse().map_err(LedgerError::Corrupt)?,
            pid_alias: text(row, "pid_alias")?,
            idem_alias: text(row, "idem_alias")?,
            payer: row.try_get("payer")?,
            pay_to: row.try_get("pay_to")?,
            asset: row.try_get("asset")?,
            network: row.try_get("network")?,
            amount: amount.max(0) as u64,
            route: row.try_get("route")?,
            fingerprint: row.try_get("fingerprint")?,
            facilitator: text(row, "facilitator")?,
            instance: row.try_get("instance")?,
            signature: text(row, "signature")?,
            settle_request: text(row, "settle_request")?,
            answer,
            receipt: text(row, "receipt")?.and_then(|r| serde_json::from_str(&r).ok()),
            reason: text(row, "reason")?,
            created_ms: row.try_get("created_ms")?,
            claimed_ms: row.try_get("claimed_ms")?,
            verified_ms: row.try_get("verified_ms")?,
            upstream_ms: row.try_get("upstream_ms")?,
            submitted_ms: row.try_get("submitted_ms")?,
            final_ms: row.try_get("final_ms")?,
            updated_ms: row.try_get("updated_ms")?,
        })
    }

    /// The payment key.
    pub fn key(&self) -> LedgerResult<PaymentKey> {
        let bytes = hex::decode(&self.payment_key)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| LedgerError::Corrupt(format!("key {}", self.payment_key)))?;
        Ok(PaymentKey(bytes))
    }
}

impl Ledger {
    /// Claims the payment for `attempt` (on the request path, one statement; two when the
    /// request carries idempotency ids). Refuses to take over a payment an earlier attempt
    /// submitted or settled: that one's row is returned instead.
    pub async fn claim(&self, p: &NewPayment<'_>) -> LedgerResult<Claimed> {
        if p.pid_alias.is_some() || p.idem_alias.is_some() {
            // `state || ''` keeps the state out of the index choice: on `state IN (...)`
            // SQLite's planner (no statistics) picked `payments_state` and walked every
            // settled payment, row by row, on every paid call (CPU per call grew with the
            // ledger: bench/paid.sh). The alias indexes find the few rows that matter.
            let sql = format!(
                "SELECT {COLUMNS} FROM payments WHERE (pid_alias = $1 OR idem_alias = $2) \
                 AND payment_key <> $3 AND state || '' IN ('settle_submitted', 'settled') LIMIT 1"
            );
            let found = self
                .bounded(
                    sqlx::query(&sql)
                        .bind(p.pid_alias)
                        .bind(p.idem_alias)
                        .bind(p.key.hex())
                        .fetch_optional(&self.pool),
                )
                .await?;
            if let Some(row) = found {
                return Ok(Claimed::Existing(Box::new(PaymentRow::from_row(&row)?)));
            }
        }
        let now = now_ms();
        let done = self
            .execute_awaited(
                Sql::new(
                    "INSERT INTO payments (payment_key, attempt, state, pid_alias, idem_alias, \
                     payer, pay_to, asset, network, amount, route, fingerprint, instance, \
                     created_ms, claimed_ms, updated_ms, credits_granted) \
                     VALUES ($1, $2, 'claimed', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
                     ON CONFLICT (payment_key) DO UPDATE SET attempt = excluded.attempt, \
                     state = 'claimed', pid_alias = excluded.pid_alias, \
                     idem_alias = excluded.idem_alias, amount = excluded.amount, \
                     route = excluded.route, fingerprint = excluded.fingerprint, \
                     credits_granted = excluded.credits_granted, \
                     instance = excluded.instance, claimed_ms = excluded.claimed_ms, \
                     verified_ms = NULL, upstream_ms = NULL, submitted_ms = NULL, \
                     final_ms = NULL, signature = NULL, settle_request = NULL, \
                     answer_status = NULL, answer_headers = NULL, answer_body = NULL, \
                     receipt = NULL, reason = NULL, updated_ms = excluded.updated_ms \
                     WHERE payments.state NOT IN ('settle_submitted', 'settled')",
                )
                .text(p.key.hex())
                .text(p.attempt.to_string())
                .text(p.pid_alias.map(str::to_string))
                .text(p.idem_alias.map(str::to_string))
                .text(p.payer.to_string())
                .text(p.pay_to.to_string())
                .text(p.asset.to_string())
                .text(p.network.to_string())
                .int(p.amount as i64)
                .text(p.route.to_string())
                .text(p.fingerprint.to_string())
                .text(self.instance.clone())
                .int(now)
                .int(now)
                .int(now)
                .int(p.credits.map(|c| c as i64)),
            )
            .await?;
        if done == 1 {
            self.event(p.key, "claimed", None);
            return Ok(Claimed::Fresh);
        }
        match self.payment(p.key).await? {
            Some(row) => Ok(Claimed::Existing(Box::new(row))),
            // Deleted between the two statements: nothing deletes rows, so this is corruption.
            None => Err(LedgerError::Corrupt("claimed row vanished".into())),
        }
    }

    /// The facilitator accepted the payment (behind).
    pub fn verified(&self, key: &PaymentKey, attempt: &str) {
        self.step(key, attempt, PaymentState::Verified, "verified_ms", None);
    }

    /// The upstream answered: with success (settlement follows) or not (nothing charged).
    /// Behind.
    pub fn upstream(&self, key: &PaymentKey, attempt: &str, success: bool) {
        let state = if success {
            PaymentState::UpstreamOk
        } else {
            PaymentState::UpstreamFailed
        };
        self.step(key, attempt, state, "upstream_ms", None);
    }

    /// Refused or given up before anything was submitted (behind): `failed`, with why.
    pub fn refused(&self, key: &PaymentKey, attempt: &str, reason: &str) {
        self.step(
            key,
            attempt,
            PaymentState::Failed,
            "final_ms",
            Some(reason.to_string()),
        );
    }

    fn step(
        &self,
        key: &PaymentKey,
        attempt: &str,
        state: PaymentState,
        time_column: &'static str,
        reason: Option<String>,
    ) {
        let sql: &'static str = match time_column {
            "verified_ms" => {
                "UPDATE payments SET state = $1, verified_ms = $2, updated_ms = $2, reason = $3 \
                 WHERE payment_key = $4 AND attempt = $5 \
                 AND state IN ('claimed', 'verified', 'upstream_ok')"
            }
            "upstream_ms" => {
                "UPDATE payments SET state = $1, upstream_ms = $2, updated_ms = $2, reason = $3 \
                 WHERE payment_key = $4 AND attempt = $5 \
                 AND state IN ('claimed', 'verified', 'upstream_ok')"
            }
            _ => {
                "UPDATE payments SET state = $1, final_ms = $2, updated_ms = $2, reason = $3 \
                 WHERE payment_key = $4 AND attempt = $5 \
                 AND state IN ('claimed', 'verified', 'upstream_ok')"
            }
        };
        let now = now_ms();
        self.queue(Behind::Write(
            Sql::new(sql)
                .text(state.as_str().to_string())
                .int(now)
                .text(reason.clone())
                .text(key.hex())
                .text(attempt.to_string()),
        ));
        self.event(key, state.as_str(), reason);
    }

    /// Records the kept answer and the settle request, and moves the payment to
    /// `settle_submitted`, *before* the settlement is sent (on the request path). `Ok(false)`:
    /// this attempt no longer owns the payment; nothing may be sent.
    pub async fn submit(
        &self,
        key: &PaymentKey,
        attempt: &str,
        s: &Submission<'_>,
    ) -> LedgerResult<bool> {
        let headers = serde_json::to_string(&s.answer.headers)
            .map_err(|e| LedgerError::Corrupt(e.to_string()))?;
        let now = now_ms();
        let done = self
            .execute_awaited(
                Sql::new(
                    "UPDATE payments SET state = 'settle_submitted', signature = $1, \
                     settle_request = $2, answer_status = $3, answer_headers = $4, \
                     answer_body = $5, facilitator = $6, submitted_ms = $7, \
                     upstream_ms = COALESCE(upstream_ms, $7), updated_ms = $7 \
                     WHERE payment_key = $8 AND attempt = $9 \
                     AND state IN ('claimed', 'verified', 'upstream_ok')",
                )
                .text(s.signature.map(str::to_string))
                .text(s.settle_request.to_string())
                .int(i64::from(s.answer.status))
                .text(headers)
                .blob(s.answer.body.clone())
                .text(s.facilitator.to_string())
                .int(now)
                .text(key.hex())
                .text(attempt.to_string()),
            )
            .await?;
        let owned = done == 1;
        if owned {
            self.event(key, "settle_submitted", s.signature.map(str::to_string));
        }
        Ok(owned)
    }

    /// Resolves a submitted payment (awaited): `settled` (with its receipt), or `expired` /
    /// `failed` (nothing charged, with why). `Ok(false)` when it was no longer submitted.
    pub async fn resolve(
        &self,
        key: &PaymentKey,
        attempt: &str,
        state: PaymentState,
        signature: Option<&str>,
        receipt: Option<&str>,
        reason: Option<&str>,
    ) -> LedgerResult<bool> {
        debug_assert!(matches!(
            state,
            PaymentState::Settled | PaymentState::Expired | PaymentState::Failed
        ));
        let now = now_ms();
        let update = Sql::new(RESOLVE)
            .text(state.as_str().to_string())
            .text(signature.filter(|s| !s.is_empty()).map(str::to_string))
            .text(receipt.map(str::to_string))
            .text(reason.map(str::to_string))
            .int(now)
            .text(key.hex())
            .text(attempt.to_string());
        let settled = state == PaymentState::Settled;
        let resolved = match self.backend {
            Backend::Sqlite => {
                let resolution = Resolution {
                    update,
                    settled,
                    payment_key: key.hex(),
                    at_ms: now,
                };
                match self.awaited(Work::Resolve(resolution)).await? {
                    Done::Resolved(resolved) => resolved,
                    other => {
                        return Err(LedgerError::Corrupt(format!("writer answered {other:?}")))
                    }
                }
            }
            Backend::Postgres => {
                self.bounded(self.resolve_on_pool(&update, settled, key, now))
                    .await?
            }
        };

        if resolved {
            let detail = reason.or(signature).map(str::to_string);
            self.event(key, state.as_str(), detail);
        }
        Ok(resolved)
    }

    /// [`Ledger::resolve`] on the pool, in one transaction (PostgreSQL).
    async fn resolve_on_pool(
        &self,
        update: &Sql,
        settled: bool,
        key: &PaymentKey,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let row = update.query().fetch_optional(&mut *tx).await?;
        // A settled top-up credits its payer, in the same transaction: exactly once, since
        // the row leaves `settle_submitted` only once.
        if let (true, Some(row)) = (settled, &row) {
            let payer: String = row.try_get("payer")?;
            let credits: Option<i64> = row.try_get("credits_granted")?;
            if let Some(credits) = credits.filter(|c| *c > 0) {
                super::credits::credit_topup(
                    &mut tx,
                    &payer,
                    credits,
                    &key.hex(),
                    &self.instance,
                    now,
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(row.is_some())
    }

    /// Gives up an attempt whose instance died before it submitted anything (awaited):
    /// `failed` with reason `abandoned`; nothing was charged.
    pub async fn abandon(&self, key: &PaymentKey, attempt: &str) -> LedgerResult<bool> {
        let now = now_ms();
        let done = self
            .bounded(
                sqlx::query(
                    "UPDATE payments SET state = 'failed', reason = 'abandoned', final_ms = $1, \
                     updated_ms = $1 WHERE payment_key = $2 AND attempt = $3 \
                     AND state IN ('claimed', 'verified', 'upstream_ok')",
                )
                .bind(now)
                .bind(key.hex())
                .bind(attempt)
                .execute(&self.pool),
            )
            .await?;
        let abandoned = done.rows_affected() == 1;
        if abandoned {
            self.event(key, "failed", Some("abandoned".into()));
        }
        Ok(abandoned)
    }

    /// One payment's row.
    pub async fn payment(&self, key: &PaymentKey) -> LedgerResult<Option<PaymentRow>> {
        self.payment_by_hex(&key.hex()).await
    }

    /// One payment's row, by its hex key.
    pub async fn payment_by_hex(&self, key: &str) -> LedgerResult<Option<PaymentRow>> {
        let sql = format!("SELECT {COLUMNS} FROM payments WHERE payment_key = $1");
        let row = self
            .bounded(sqlx::query(&sql).bind(key).fetch_optional(&self.pool))
            .await?;
        row.as_ref().map(PaymentRow::from_row).transpose()
    }

    /// Submitted payments the reconciler should follow: their instance is dead, or they were
    /// submitted more than `settle_grace_ms` ago.
    pub async fn due_submitted(&self, max: usize) -> LedgerResult<Vec<PaymentRow>> {
        let now = now_ms();
        let sql = format!(
            "SELECT {COLUMNS} FROM payments WHERE state = 'settle_submitted' AND \
             (submitted_ms < $1 OR instance NOT IN \
              (SELECT instance FROM instances WHERE seen_ms >= $2)) \
             ORDER BY submitted_ms LIMIT $3"
        );
        self.rows(
            sqlx::query(&sql)
                .bind(now - self.config.settle_grace_ms as i64)
                .bind(now - self.config.dead_after_ms as i64)
                .bind(max as i64),
        )
        .await
    }

    /// Attempts whose instance died before they submitted anything.
    pub async fn abandoned(&self, max: usize) -> LedgerResult<Vec<PaymentRow>> {
        let now = now_ms();
        let sql = format!(
            "SELECT {COLUMNS} FROM payments WHERE state IN ('claimed', 'verified', 'upstream_ok') \
             AND claimed_ms < $1 AND instance NOT IN \
             (SELECT instance FROM instances WHERE seen_ms >= $1) \
             ORDER BY claimed_ms LIMIT $2"
        );
        self.rows(
            sqlx::query(&sql)
                .bind(now - self.config.dead_after_ms as i64)
                .bind(max as i64),
        )
        .await
    }

    pub(super) async fn rows<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> LedgerResult<Vec<PaymentRow>> {
        let rows = self.bounded(query.fetch_all(&self.pool)).await?;
        rows.iter().map(PaymentRow::from_row).collect()
    }

    /// Appends an event row (behind).
    pub(super) fn event(&self, key: &PaymentKey, event: &str, detail: Option<String>) {
        self.queue(Behind::Write(
            Sql::new(
                "INSERT INTO payment_events (payment_key, event, at_ms, instance, detail) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .text(key.hex())
            .text(event.to_string())
            .int(now_ms())
            .text(self.instance.clone())
            .text(detail),
        ));
    }
}
