//! The SQLite ledger's writer transactions (behind writes, credit reservations) over one
//! rusqlite connection, run on a blocking thread: the statements of a transaction run back to
//! back, one thread hand-off for the whole transaction.
//!
//! Through sqlx every statement is handed to its connection's worker thread and its answer
//! handed back (two context switches each): with a group's reservations (an update and a
//! movement row each) and the spends written behind, that was ~80 µs of the gateway's one
//! core per statement on the benchmark machine and most of a credit-paid call's cost
//! (BENCHMARKS.md, "Prepaid credits"). The awaited writes of the paid path and every read stay
//! on the sqlx pool; this connection takes the write lock only inside its own transactions
//! (`BEGIN IMMEDIATE`, waiting up to the same busy timeout as the pool's connections).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use sqlx::{AnyPool, Row};

use super::reserves::Reservation;
use super::sql::{Arg, Sql};

/// How long a statement waits for another connection's write lock (the pool's is the same).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The writer's own connection to the ledger's file.
pub(super) struct Direct {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Direct")
    }
}

impl Direct {
    /// Opens the file the pool's database lives in (a ledger in memory would be lost with
    /// the process, and the pool's connections would each have their own: refused).
    pub(super) async fn open(pool: &AnyPool) -> Result<Self, String> {
        let row = sqlx::query("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_optional(pool)
            .await
            .map_err(|e| e.to_string())?;
        let file: String = match row {
            Some(row) => row.try_get("file").map_err(|e| e.to_string())?,
            None => String::new(),
        };
        if file.is_empty() {
            return Err(
                "a SQLite ledger must be a file (an in-memory database is not durable)".into(),
            );
        }
        let conn = tokio::task::spawn_blocking(move || {
            let conn = Connection::open_with_flags(
                &file,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            // WAL is a property of the file (the pool set it); NORMAL is per connection.
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            Ok::<_, rusqlite::Error>(conn)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("opening the ledger's writer connection: {e}"))?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// One transaction: `batch` in order, then the reservations; each reservation's balance
    /// after it (`None` where the balance did not cover it). Nothing of it is kept on error.
    pub(super) async fn transaction(
        &self,
        batch: Vec<Sql>,
        reservations: Vec<Reservation>,
        instance: String,
    ) -> Result<Vec<Option<i64>>, String> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for sql in &batch {
                execute(&tx, sql)?;
            }
            let balances = reservations
                .iter()
                .map(|r| reserve(&tx, r, &instance))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            tx.commit()?;
            Ok::<_, rusqlite::Error>(balances)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
    }
}

/// Runs one behind write. Its text uses sqlx's `$N` placeholders, which SQLite reads as named
/// parameters (numbered by first appearance): each is bound to argument N.
fn execute(conn: &Connection, sql: &Sql) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(sql.sql)?;
    for index in 1..=stmt.parameter_count() {
        let arg = stmt
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(index);
        match sql.args.get(arg.wrapping_sub(1)) {
            Some(Arg::Text(v)) => stmt.raw_bind_parameter(index, v.as_deref())?,
            Some(Arg::Int(v)) => stmt.raw_bind_parameter(index, *v)?,
            None => return Err(rusqlite::Error::InvalidParameterCount(arg, sql.args.len())),
        }
    }
    stmt.raw_execute().map(drop)
}

/// One reservation: the conditional debit and, when it took, its movement row.
fn reserve(conn: &Connection, r: &Reservation, instance: &str) -> rusqlite::Result<Option<i64>> {
    let balance = conn
        .prepare_cached(
            "UPDATE credit_accounts SET balance = balance - ?2, updated_ms = ?3 \
             WHERE wallet = ?1 AND balance >= ?2 RETURNING balance",
        )?
        .query_row((&r.wallet, r.amount, r.at_ms), |row| row.get::<_, i64>(0))
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?;
    if let Some(balance) = balance {
        conn.prepare_cached(
            "INSERT INTO credit_movements \
             (wallet, kind, amount, balance, reference, route, at_ms, instance) \
             VALUES (?1, 'reserve', ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute((
            &r.wallet,
            r.amount,
            balance,
            &r.reference,
            &r.route,
            r.at_ms,
            instance,
        ))?;
    }
    Ok(balance)
}
