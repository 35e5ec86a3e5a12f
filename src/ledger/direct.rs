//! The SQLite ledger's writer transactions (behind writes, and the writes a caller waits for:
//! credit reservations, a paid call's claim, submission and resolution) over one rusqlite
//! connection, run on a blocking thread: the statements of a transaction run back to back, one
//! thread hand-off for the whole transaction.
//!
//! Through sqlx every statement is handed to its connection's worker thread and its answer
//! handed back (two context switches each): with a group's reservations (an update and a
//! movement row each) and the spends written behind, that was ~80 µs of the gateway's one
//! core per statement on the benchmark machine and most of a credit-paid call's cost
//! (BENCHMARKS.md, "Prepaid credits"); a paid call's claim, submit and resolve were five such
//! hand-offs. Reads, and the rare writes off the hot path (voids, abandons, leases,
//! heartbeats), stay on the sqlx pool; this connection takes the write lock only inside its
//! own transactions (`BEGIN IMMEDIATE`, waiting up to the same busy timeout as the pool's
//! connections).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, DropBehavior, OpenFlags, Statement, Transaction, TransactionBehavior};
use sqlx::{AnyPool, Row};

use super::awaited::{Done, Reservation, Resolution, Work, MOVEMENT, TOPUP};
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
            // Every statement the writer runs stays prepared: reservations, the paid path's
            // steps, the behind writes (more than rusqlite's default of 16 kept).
            conn.set_prepared_statement_cache_capacity(64);
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

    /// One transaction: `batch` in order, then each item of `group` (whatever became of each,
    /// in order); the batch and each item in their own savepoint, so a failing statement
    /// undoes only its own part. `Err` when the transaction itself failed: nothing of it is
    /// kept.
    pub(super) async fn transaction(
        &self,
        batch: Vec<Sql>,
        group: Vec<Work>,
        instance: String,
    ) -> Result<Round, String> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let behind = if batch.is_empty() {
                Ok(())
            } else {
                in_savepoint(&mut tx, |c| {
                    batch.iter().try_for_each(|sql| execute(c, sql))
                })?
                .map_err(|e| e.to_string())
            };
            let mut done = Vec::with_capacity(group.len());
            for work in &group {
                let outcome = in_savepoint(&mut tx, |c| run(c, work, &instance))?;
                done.push(outcome.map_err(|e| e.to_string()));
            }
            tx.commit()?;
            Ok::<_, rusqlite::Error>(Round { behind, done })
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
    }
}

/// What a committed transaction did: whether its behind writes were kept, and what became of
/// each awaited item.
#[derive(Debug)]
pub(super) struct Round {
    pub(super) behind: Result<(), String>,
    pub(super) done: Vec<Result<Done, String>>,
}

/// Runs `f` in a savepoint: its result, rolled back on error. The outer error is the
/// transaction's (the savepoint itself could not be taken, released or rolled back).
fn in_savepoint<T>(
    tx: &mut Transaction<'_>,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<rusqlite::Result<T>> {
    let mut sp = tx.savepoint()?;
    match f(&sp) {
        Ok(value) => {
            sp.commit()?;
            Ok(Ok(value))
        }
        Err(e) => {
            sp.set_drop_behavior(DropBehavior::Rollback);
            sp.finish()?;
            Ok(Err(e))
        }
    }
}

/// Runs one awaited item.
fn run(conn: &Connection, work: &Work, instance: &str) -> rusqlite::Result<Done> {
    match work {
        Work::Reserve(r) => reserve(conn, r, instance).map(Done::Reserved),
        Work::Execute(sql) => {
            let mut stmt = prepare(conn, sql)?;
            stmt.raw_execute().map(Done::Changed)
        }
        Work::Resolve(r) => resolve(conn, r, instance).map(Done::Resolved),
    }
}

/// Prepares `sql` (cached) with its arguments bound. Its text uses sqlx's `$N` placeholders,
/// which SQLite reads as named parameters (numbered by first appearance): each is bound to
/// argument N.
fn prepare<'c>(conn: &'c Connection, sql: &Sql) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
    let mut stmt = conn.prepare_cached(sql.sql)?;
    bind(&mut stmt, sql)?;
    Ok(stmt)
}

fn bind(stmt: &mut Statement<'_>, sql: &Sql) -> rusqlite::Result<()> {
    for index in 1..=stmt.parameter_count() {
        let arg = stmt
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(index);
        match sql.args.get(arg.wrapping_sub(1)) {
            Some(Arg::Text(v)) => stmt.raw_bind_parameter(index, v.as_deref())?,
            Some(Arg::Int(v)) => stmt.raw_bind_parameter(index, *v)?,
            Some(Arg::Blob(v)) => stmt.raw_bind_parameter(index, v.as_deref())?,
            None => return Err(rusqlite::Error::InvalidParameterCount(arg, sql.args.len())),
        }
    }
    Ok(())
}

/// Runs one behind write.
fn execute(conn: &Connection, sql: &Sql) -> rusqlite::Result<()> {
    prepare(conn, sql)?.raw_execute().map(drop)
}

/// A submitted payment's resolution and, for a settled top-up, its payer's credit (the same
/// statements as the pool's path in `payments.rs` and `credits.rs`).
fn resolve(conn: &Connection, r: &Resolution, instance: &str) -> rusqlite::Result<bool> {
    let returned = {
        let mut stmt = prepare(conn, &r.update)?;
        let mut rows = stmt.raw_query();
        match rows.next()? {
            Some(row) => Some((row.get::<_, String>(0)?, row.get::<_, Option<i64>>(1)?)),
            None => None,
        }
    };
    let Some((payer, credits)) = returned else {
        return Ok(false);
    };
    if let Some(credits) = credits.filter(|c| *c > 0 && r.settled) {
        let topup = Sql::new(TOPUP)
            .text(payer.clone())
            .int(credits)
            .int(r.at_ms);
        let balance = prepare(conn, &topup)?
            .raw_query()
            .next()?
            .map(|row| row.get::<_, i64>(0))
            .transpose()?
            .ok_or(rusqlite::Error::QueryReturnedNoRows)?;
        let movement = Sql::new(MOVEMENT)
            .text(payer)
            .text("topup".to_string())
            .int(credits)
            .int(balance)
            .text(r.payment_key.clone())
            .text(None)
            .int(r.at_ms)
            .text(instance.to_string());
        execute(conn, &movement)?;
    }
    Ok(true)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One failing statement undoes only its own part of a transaction: the behind batch it
    /// belongs to, or its own awaited item; everything else commits.
    #[tokio::test]
    async fn a_failing_item_fails_alone() {
        let (_dir, ledger) = super::super::temp_sqlite().await;
        let direct = Direct::open(&ledger.pool).await.unwrap();
        let lease = |name: &str| {
            Sql::new("INSERT INTO leases (name, owner, until_ms) VALUES ($1, 'me', $2)")
                .text(name.to_string())
                .int(1)
        };
        // `owner` is NOT NULL: these fail.
        let broken = |name: &str| {
            Sql::new("INSERT INTO leases (name, owner, until_ms) VALUES ($1, NULL, 1)")
                .text(name.to_string())
        };
        let round = direct
            .transaction(
                vec![lease("behind-1"), broken("behind-2")],
                vec![
                    Work::Execute(lease("first")),
                    Work::Execute(broken("second")),
                    Work::Execute(lease("third")),
                ],
                "test".into(),
            )
            .await
            .unwrap();
        assert!(round.behind.is_err());
        assert_eq!(round.done.len(), 3);
        assert_eq!(round.done[0], Ok(Done::Changed(1)));
        assert!(round.done[1].as_ref().unwrap_err().contains("NOT NULL"));
        assert_eq!(round.done[2], Ok(Done::Changed(1)));
        let names: Vec<String> = sqlx::query("SELECT name FROM leases ORDER BY name")
            .fetch_all(&ledger.pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>("name"))
            .collect();
        assert_eq!(names, ["first", "third"]);
    }
}
