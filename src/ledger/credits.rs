//! Prepaid credit balances and their movements. A balance never goes negative: every debit is
//! one conditional update (`balance >= amount`), atomic in both backends, with the `CHECK` as
//! the last line of defence; every change is a movement row written in the same transaction.

use serde::Serialize;
use sqlx::any::Any;
use sqlx::{Row, Transaction};

use super::awaited::{Done, Reservation, Work, MOVEMENT, TOPUP};
use super::sql::Sql;
use super::writer::Behind;
use super::{now_ms, text, Ledger, LedgerError, LedgerResult};

/// A reservation still without an outcome this long after it was made is abandoned, whatever
/// its instance: a call's own task writes its outcome within the request's timeout and the
/// writer's lag, far below this. (Voiding it late when the call did succeed serves that call
/// free, never charges twice: a spend and a void of one call cannot both land.)
pub const ORPHAN_AFTER_MS: i64 = 10 * 60 * 1000;

/// A new reference for one credit-paid call: the time (ms, 12 hex digits) then 8 random bytes.
/// Unique like a random token, but increasing: the movement rows' unique indexes on the
/// reference then grow at their right edge, so a reservation or a spend touches the same few
/// index pages whatever the ledger's size (random references touched a random leaf each, and
/// the cost per call grew as those indexes outgrew the page cache).
pub fn call_reference() -> String {
    format!(
        "{:012x}{}",
        now_ms().max(0),
        hex::encode(rand::random::<[u8; 8]>())
    )
}

/// Most movement ids one reconciler pass reads for orphan reservations.
const ORPHAN_SCAN_WINDOW: i64 = 100_000;

/// One movement of a wallet's credits.
#[derive(Debug, Clone, Serialize)]
pub struct CreditMovement {
    /// `topup`, `reserve`, `spend` or `void`.
    pub kind: String,
    /// Credits moved (a reserve is a debit; spend only makes it final).
    pub amount: i64,
    /// The balance right after it.
    pub balance: i64,
    /// The payment (top-up) or the call (reserve, spend, void) it belongs to.
    pub reference: String,
    /// The route of the call.
    pub route: Option<String>,
    /// When (Unix ms).
    pub at_ms: i64,
}

/// A wallet's balance.
#[derive(Debug, Clone, Serialize)]
pub struct CreditAccount {
    /// The wallet.
    pub wallet: String,
    /// Credits left.
    pub balance: i64,
    /// Last change (Unix ms).
    pub updated_ms: i64,
}

/// Credits a settled top-up (inside the transaction that marks the payment settled).
pub(super) async fn credit_topup(
    tx: &mut Transaction<'_, Any>,
    wallet: &str,
    credits: i64,
    payment_key: &str,
    instance: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let row = sqlx::query(TOPUP)
        .bind(wallet)
        .bind(credits)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
    let balance: i64 = row.try_get("balance")?;
    movement(
        tx,
        wallet,
        "topup",
        credits,
        balance,
        payment_key,
        None,
        instance,
        now,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn movement(
    tx: &mut Transaction<'_, Any>,
    wallet: &str,
    kind: &str,
    amount: i64,
    balance: i64,
    reference: &str,
    route: Option<&str>,
    instance: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(MOVEMENT)
        .bind(wallet)
        .bind(kind)
        .bind(amount)
        .bind(balance)
        .bind(reference)
        .bind(route)
        .bind(now)
        .bind(instance)
        .execute(&mut **tx)
        .await
        .map(drop)
}

impl Ledger {
    /// A wallet's balance (0 without an account).
    pub async fn credit_balance(&self, wallet: &str) -> LedgerResult<i64> {
        let row = self
            .bounded(
                sqlx::query("SELECT balance FROM credit_accounts WHERE wallet = $1")
                    .bind(wallet)
                    .fetch_optional(&self.pool),
            )
            .await?;
        Ok(match row {
            Some(row) => row.try_get("balance")?,
            None => 0,
        })
    }

    /// Reserves `amount` credits of `wallet` for the call `reference` (on the request path):
    /// the new balance, or `None` when the balance does not cover it (nothing changed).
    pub async fn reserve_credits(
        &self,
        wallet: &str,
        amount: i64,
        reference: &str,
        route: &str,
    ) -> LedgerResult<Option<i64>> {
        let now = now_ms();
        if self.backend == super::Backend::Postgres {
            // One statement, one round trip, one commit: the debit and its movement row, or
            // nothing when the balance does not cover it (the row lock serialises debits).
            let row = self
                .bounded(
                    sqlx::query(
                        "WITH debit AS (UPDATE credit_accounts SET balance = balance - $2, \
                         updated_ms = $3 WHERE wallet = $1 AND balance >= $2 RETURNING balance) \
                         INSERT INTO credit_movements (wallet, kind, amount, balance, reference, \
                         route, at_ms, instance) SELECT $1, 'reserve', $2, balance, $4, $5, $3, $6 \
                         FROM debit RETURNING balance",
                    )
                    .bind(wallet)
                    .bind(amount)
                    .bind(now)
                    .bind(reference)
                    .bind(route)
                    .bind(&self.instance)
                    .fetch_optional(&self.pool),
                )
                .await?;
            return row
                .map(|row| row.try_get::<i64, _>("balance"))
                .transpose()
                .map_err(Into::into);
        }
        // SQLite: committed by the writer task in a group with the reservations (and behind
        // writes) that arrive meanwhile (one writer; see `awaited.rs`, `direct.rs`).
        let reservation = Reservation {
            wallet: wallet.to_string(),
            amount,
            reference: reference.to_string(),
            route: route.to_string(),
            at_ms: now,
        };
        match self.awaited(Work::Reserve(reservation)).await? {
            Done::Reserved(balance) => Ok(balance),
            other => Err(LedgerError::Corrupt(format!("writer answered {other:?}"))),
        }
    }

    /// The call succeeded: its reservation is final (behind the request).
    pub fn spend_credits(&self, wallet: &str, amount: i64, balance: i64, reference: &str) {
        self.queue(Behind::Write(
            Sql::new(
                "INSERT INTO credit_movements (wallet, kind, amount, balance, reference, at_ms, instance) \
                 VALUES ($1, 'spend', $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .text(wallet.to_string())
            .int(amount)
            .int(balance)
            .text(reference.to_string())
            .int(now_ms())
            .text(self.instance.clone()),
        ));
    }

    /// The call failed (ours or the upstream's): the reservation comes back (awaited). `Ok(None)`
    /// when it was already voided or spent, or was never made (a reserve whose outcome we did
    /// not learn may not have committed: nothing is given back that was not taken).
    pub async fn void_credits(
        &self,
        wallet: &str,
        amount: i64,
        reference: &str,
    ) -> LedgerResult<Option<i64>> {
        let now = now_ms();
        let work = async {
            let mut tx = self.pool.begin().await?;
            // The outcome first: if the call was already spent (or voided), nothing changes.
            let claimed = sqlx::query(
                "INSERT INTO credit_movements (wallet, kind, amount, balance, reference, at_ms, instance) \
                 SELECT $1, 'void', $2, 0, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM credit_movements \
                 WHERE reference = $3 AND kind = 'reserve' AND wallet = $1 AND amount = $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(wallet)
            .bind(amount)
            .bind(reference)
            .bind(now)
            .bind(&self.instance)
            .execute(&mut *tx)
            .await?;
            if claimed.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(None);
            }
            let row = sqlx::query(
                "UPDATE credit_accounts SET balance = balance + $2, updated_ms = $3 \
                 WHERE wallet = $1 RETURNING balance",
            )
            .bind(wallet)
            .bind(amount)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let balance: i64 = row.try_get("balance")?;
            sqlx::query(
                "UPDATE credit_movements SET balance = $1 WHERE reference = $2 AND kind = 'void'",
            )
            .bind(balance)
            .bind(reference)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(Some(balance))
        };
        self.bounded(work).await
    }

    /// Reservations with no outcome: of a dead instance, or of any instance once older than
    /// [`ORPHAN_AFTER_MS`] (a reserve whose answer timed out after it committed leaves one on
    /// a live instance): (wallet, amount, reference). Voided by the reconciler (the client is
    /// never charged for a call we cannot show succeeded).
    ///
    /// Only reservations from the scan mark on are read, at most [`ORPHAN_SCAN_WINDOW`] ids
    /// of them: below the mark every reservation has its outcome, so a pass costs the
    /// reservations since the oldest open one, not the ledger's history (a full scan every
    /// pass grew with every credit-paid call ever made; after a start the mark catches up a
    /// window per pass).
    pub async fn orphan_reservations(
        &self,
        max: usize,
    ) -> LedgerResult<Vec<(String, i64, String)>> {
        // Old enough that a live instance's queued "spend" would have landed long ago.
        let quiet = self.config.dead_after_ms.max(self.config.settle_grace_ms) as i64;
        let now = now_ms();
        let alive_since = now - quiet;
        let abandoned_before = now - ORPHAN_AFTER_MS;
        let from = self
            .orphan_scan_from
            .load(std::sync::atomic::Ordering::Relaxed);
        let rows = self
            .bounded(
                sqlx::query(
                    "SELECT m.wallet, m.amount, m.reference FROM credit_movements m \
                     WHERE m.kind = 'reserve' AND m.id >= $4 AND m.id < $5 AND m.at_ms < $1 \
                     AND (m.at_ms < $3 OR m.instance NOT IN \
                       (SELECT instance FROM instances WHERE seen_ms >= $1)) \
                     AND NOT EXISTS (SELECT 1 FROM credit_movements o \
                       WHERE o.reference = m.reference AND o.kind IN ('spend', 'void')) \
                     ORDER BY m.id LIMIT $2",
                )
                .bind(alive_since)
                .bind(max as i64)
                .bind(abandoned_before)
                .bind(from)
                .bind(from.saturating_add(ORPHAN_SCAN_WINDOW))
                .fetch_all(&self.pool),
            )
            .await?;
        let orphans = rows
            .iter()
            .map(|row| {
                Ok((
                    row.try_get("wallet")?,
                    row.try_get("amount")?,
                    row.try_get("reference")?,
                ))
            })
            .collect::<LedgerResult<Vec<_>>>()?;
        // The new mark: the oldest reservation still open, or one made too recently to be
        // sure every older one is visible. SQLite commits one writer at a time, so ids become
        // visible in order; on PostgreSQL a reservation's id is taken before its commit, so
        // one committed late may appear below ids already seen: the mark stays clear of the
        // last minute (and of twice the ledger timeout, after which a late commit is voided
        // by the paygate itself).
        let settle_margin = match self.backend {
            super::Backend::Sqlite => 0,
            super::Backend::Postgres => (2 * self.config.timeout_ms).max(60_000) as i64,
        };
        let row = self
            .bounded(
                sqlx::query(
                    "SELECT (SELECT MIN(m.id) FROM credit_movements m WHERE m.kind = 'reserve' \
                       AND m.id >= $1 AND m.id < $3 AND (m.at_ms >= $2 OR NOT EXISTS \
                         (SELECT 1 FROM credit_movements o WHERE o.reference = m.reference \
                          AND o.kind IN ('spend', 'void')))) AS open, \
                     (SELECT MAX(id) FROM credit_movements) AS last",
                )
                .bind(from)
                .bind(now - settle_margin)
                .bind(from.saturating_add(ORPHAN_SCAN_WINDOW))
                .fetch_one(&self.pool),
            )
            .await?;
        let open: Option<i64> = row.try_get("open")?;
        let last: Option<i64> = row.try_get("last")?;
        let next = open.unwrap_or_else(|| {
            from.saturating_add(ORPHAN_SCAN_WINDOW)
                .min(last.map_or(from, |last| last + 1))
        });
        self.orphan_scan_from
            .fetch_max(next, std::sync::atomic::Ordering::Relaxed);
        Ok(orphans)
    }

    /// Moves the movements of `reference` `by_ms` into the past (tests of the reconciler's
    /// age rules).
    #[cfg(feature = "test-util")]
    pub async fn age_credit_movements(&self, reference: &str, by_ms: i64) -> LedgerResult<()> {
        self.bounded(
            sqlx::query("UPDATE credit_movements SET at_ms = at_ms - $1 WHERE reference = $2")
                .bind(by_ms)
                .bind(reference)
                .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    /// A wallet's movements, newest first.
    pub async fn credit_movements(
        &self,
        wallet: &str,
        limit: u32,
    ) -> LedgerResult<Vec<CreditMovement>> {
        let rows = self
            .bounded(
                sqlx::query(
                    "SELECT kind, amount, balance, reference, route, at_ms FROM credit_movements \
                     WHERE wallet = $1 ORDER BY id DESC LIMIT $2",
                )
                .bind(wallet)
                .bind(i64::from(limit.clamp(1, super::MAX_PAGE)))
                .fetch_all(&self.pool),
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(CreditMovement {
                    kind: row.try_get("kind")?,
                    amount: row.try_get("amount")?,
                    balance: row.try_get("balance")?,
                    reference: row.try_get("reference")?,
                    route: text(row, "route")?,
                    at_ms: row.try_get("at_ms")?,
                })
            })
            .collect()
    }

    /// Every balance, largest first, paged.
    pub async fn credit_accounts(
        &self,
        limit: u32,
        offset: u32,
    ) -> LedgerResult<Vec<CreditAccount>> {
        let rows = self
            .bounded(
                sqlx::query(
                    "SELECT wallet, balance, updated_ms FROM credit_accounts \
                     ORDER BY balance DESC, wallet LIMIT $1 OFFSET $2",
                )
                .bind(i64::from(limit.clamp(1, super::MAX_PAGE)))
                .bind(i64::from(offset))
                .fetch_all(&self.pool),
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(CreditAccount {
                    wallet: row.try_get("wallet")?,
                    balance: row.try_get("balance")?,
                    updated_ms: row.try_get("updated_ms")?,
                })
            })
            .collect()
    }
}
