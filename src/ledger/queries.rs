//! The operator's reads: payments filtered and paged, one payment's events, a payer's
//! statement, revenue per day and route. All from the ledger, never from the shared store.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::payments::{PaymentRow, COLUMNS};
use super::state::PaymentState;
use super::{text, Ledger, LedgerResult};

use super::MAX_PAGE;

/// Which payments to list (every field optional), newest first.
#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    /// The paying wallet.
    pub payer: Option<String>,
    /// Where they stand.
    pub state: Option<PaymentState>,
    /// The route's path, exactly.
    pub route: Option<String>,
    /// Created at or after (Unix ms).
    pub from_ms: Option<i64>,
    /// Created before (Unix ms).
    pub to_ms: Option<i64>,
    /// Page size (default 100, at most [`MAX_PAGE`]).
    pub limit: Option<u32>,
    /// Rows to skip.
    pub offset: Option<u32>,
}

impl<'de> Deserialize<'de> for PaymentState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One event of a payment.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentEvent {
    /// What happened (a state name).
    pub event: String,
    /// When (Unix ms).
    pub at_ms: i64,
    /// Which instance.
    pub instance: String,
    /// Signature, reason...
    pub detail: Option<String>,
}

/// Settled revenue of one route on one UTC day.
#[derive(Debug, Clone, Serialize)]
pub struct RevenueRow {
    /// Days since the Unix epoch (UTC).
    pub day: i64,
    /// The route's path.
    pub route: String,
    /// Settled payments.
    pub payments: i64,
    /// Their sum, atomic units.
    pub amount: i64,
}

/// A payer's totals per state.
#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    /// The wallet.
    pub payer: String,
    /// Per state: count and amount.
    pub totals: Vec<StateTotal>,
}

/// Count and amount of a payer's payments in one state.
#[derive(Debug, Clone, Serialize)]
pub struct StateTotal {
    /// The state.
    pub state: PaymentState,
    /// How many.
    pub payments: i64,
    /// Their sum, atomic units.
    pub amount: i64,
}

impl Ledger {
    /// Payments matching `filter`, newest first.
    pub async fn payments(&self, filter: &PaymentFilter) -> LedgerResult<Vec<PaymentRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM payments WHERE ($1 IS NULL OR payer = $1) \
             AND ($2 IS NULL OR state = $2) AND ($3 IS NULL OR route = $3) \
             AND ($4 IS NULL OR created_ms >= $4) AND ($5 IS NULL OR created_ms < $5) \
             ORDER BY created_ms DESC, payment_key LIMIT $6 OFFSET $7"
        );
        let limit = filter.limit.unwrap_or(100).clamp(1, MAX_PAGE);
        self.rows(
            sqlx::query(&sql)
                .bind(filter.payer.as_deref())
                .bind(filter.state.map(PaymentState::as_str))
                .bind(filter.route.as_deref())
                .bind(filter.from_ms)
                .bind(filter.to_ms)
                .bind(i64::from(limit))
                .bind(i64::from(filter.offset.unwrap_or(0))),
        )
        .await
    }

    /// Every event of one payment, oldest first.
    pub async fn events(&self, key: &str) -> LedgerResult<Vec<PaymentEvent>> {
        let rows = self
            .bounded(
                sqlx::query(
                    "SELECT event, at_ms, instance, detail FROM payment_events \
                     WHERE payment_key = $1 ORDER BY id",
                )
                .bind(key)
                .fetch_all(&self.pool),
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(PaymentEvent {
                    event: row.try_get("event")?,
                    at_ms: row.try_get("at_ms")?,
                    instance: row.try_get("instance")?,
                    detail: text(row, "detail")?,
                })
            })
            .collect()
    }

    /// Settled revenue per UTC day and route, for payments settled in `[from_ms, to_ms)`.
    pub async fn revenue(&self, from_ms: i64, to_ms: i64) -> LedgerResult<Vec<RevenueRow>> {
        let rows = self
            .bounded(
                sqlx::query(
                    "SELECT final_ms / 86400000 AS day, route, COUNT(*) AS payments, \
                     CAST(SUM(amount) AS BIGINT) AS amount FROM payments \
                     WHERE state = 'settled' AND final_ms >= $1 AND final_ms < $2 \
                     GROUP BY final_ms / 86400000, route ORDER BY day, route",
                )
                .bind(from_ms)
                .bind(to_ms)
                .fetch_all(&self.pool),
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(RevenueRow {
                    day: row.try_get("day")?,
                    route: row.try_get("route")?,
                    payments: row.try_get("payments")?,
                    amount: row.try_get("amount")?,
                })
            })
            .collect()
    }

    /// A payer's count and amount per state.
    pub async fn statement(&self, payer: &str) -> LedgerResult<Statement> {
        let rows = self
            .bounded(
                sqlx::query(
                    "SELECT state, COUNT(*) AS payments, CAST(SUM(amount) AS BIGINT) AS amount \
                     FROM payments WHERE payer = $1 GROUP BY state ORDER BY state",
                )
                .bind(payer)
                .fetch_all(&self.pool),
            )
            .await?;
        let totals = rows
            .iter()
            .map(state_total)
            .collect::<LedgerResult<Vec<_>>>()?;
        Ok(Statement {
            payer: payer.to_string(),
            totals,
        })
    }

    /// Count and amount per state of the payments not final yet (claimed, verified,
    /// upstream_ok, settle_submitted), every such state listed (0 when none). Read through the
    /// state index, so its cost follows the payments in flight, not the ledger's history: the
    /// reconciler runs it every pass (a `GROUP BY` over every row read the whole table, ~2 KB
    /// of page per payment on SQLite, every 5 s, and evicted the hot pages from the cache).
    pub async fn open_totals(&self) -> LedgerResult<Vec<StateTotal>> {
        let rows = self
            .bounded(
                sqlx::query(
                    "SELECT state, COUNT(*) AS payments, CAST(SUM(amount) AS BIGINT) AS amount \
                     FROM payments WHERE state IN ('claimed', 'verified', 'upstream_ok', \
                     'settle_submitted') GROUP BY state",
                )
                .fetch_all(&self.pool),
            )
            .await?;
        let found = rows
            .iter()
            .map(state_total)
            .collect::<LedgerResult<Vec<_>>>()?;
        Ok(PaymentState::ALL
            .into_iter()
            .filter(|state| !state.is_final())
            .map(|state| {
                found
                    .iter()
                    .find(|t| t.state == state)
                    .cloned()
                    .unwrap_or(StateTotal {
                        state,
                        payments: 0,
                        amount: 0,
                    })
            })
            .collect())
    }
}

/// One row of a `GROUP BY state` count and sum.
fn state_total(row: &sqlx::any::AnyRow) -> LedgerResult<StateTotal> {
    let state: String = row.try_get("state")?;
    Ok(StateTotal {
        state: state.parse().map_err(super::LedgerError::Corrupt)?,
        payments: row.try_get("payments")?,
        amount: row.try_get("amount")?,
    })
}
