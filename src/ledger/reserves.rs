//! Credit reservations on a SQLite ledger, committed in groups.
//!
//! SQLite has one writer: with one transaction per reservation, every credit-paid call waited
//! behind the commits of all the others (~4,000 calls/s whatever the load, BENCHMARKS.md). Here
//! one task commits them: the reservations that arrive while a transaction commits join the
//! next one (nothing waits for company: alone, a reservation commits at once). Each is still
//! its own conditional update (a balance never goes below zero, whatever else the group
//! holds), has its own movement row, and is committed before its caller goes on to the
//! upstream. A failed transaction fails every reservation of its group, none of which then
//! took anything.

use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

/// Most reservations in one transaction.
const GROUP: usize = 256;

/// One reservation waiting for its transaction.
#[derive(Debug)]
pub(super) struct Reserve {
    pub(super) wallet: String,
    pub(super) amount: i64,
    pub(super) reference: String,
    pub(super) route: String,
    pub(super) at_ms: i64,
    /// The balance after it, `None` when the balance did not cover it, or why it failed.
    pub(super) reply: oneshot::Sender<Result<Option<i64>, String>>,
}

/// Starts the committing task; reservations are sent to the returned queue.
pub(super) fn spawn(pool: AnyPool, instance: String, depth: usize) -> mpsc::Sender<Reserve> {
    let (tx, mut rx) = mpsc::channel::<Reserve>(depth.max(GROUP));
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut group = vec![first];
            while group.len() < GROUP {
                match rx.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
            // A caller that gave up (its timeout) still gets its reservation decided here;
            // the paygate voids what a lost answer leaves behind.
            group.retain(|r| !r.reply.is_closed());
            if group.is_empty() {
                continue;
            }
            match commit(&pool, &instance, &group).await {
                Ok(balances) => {
                    for (r, balance) in group.into_iter().zip(balances) {
                        let _ = r.reply.send(Ok(balance));
                    }
                }
                Err(e) => {
                    let e = e.to_string();
                    for r in group {
                        let _ = r.reply.send(Err(e.clone()));
                    }
                }
            }
        }
    });
    tx
}

async fn commit(
    pool: &AnyPool,
    instance: &str,
    group: &[Reserve],
) -> Result<Vec<Option<i64>>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut balances = Vec::with_capacity(group.len());
    for r in group {
        let row = sqlx::query(
            "UPDATE credit_accounts SET balance = balance - $2, updated_ms = $3 \
             WHERE wallet = $1 AND balance >= $2 RETURNING balance",
        )
        .bind(&r.wallet)
        .bind(r.amount)
        .bind(r.at_ms)
        .fetch_optional(&mut *tx)
        .await?;
        let balance = row
            .map(|row| row.try_get::<i64, _>("balance"))
            .transpose()?;
        if let Some(balance) = balance {
            sqlx::query(
                "INSERT INTO credit_movements \
                 (wallet, kind, amount, balance, reference, route, at_ms, instance) \
                 VALUES ($1, 'reserve', $2, $3, $4, $5, $6, $7)",
            )
            .bind(&r.wallet)
            .bind(r.amount)
            .bind(balance)
            .bind(&r.reference)
            .bind(&r.route)
            .bind(r.at_ms)
            .bind(instance)
            .execute(&mut *tx)
            .await?;
        }
        balances.push(balance);
    }
    tx.commit().await?;
    Ok(balances)
}
