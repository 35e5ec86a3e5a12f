//! The writes done behind the request: one task applies them in order, several per
//! transaction when they queue up (one commit for many event rows). On SQLite the same task
//! commits the credit reservations (`reserves.rs`).

use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::direct::Direct;
use super::reserves::{self, Reserve};
use super::sql::Sql;

/// Most writes applied in one transaction.
const BATCH: usize = 128;

/// One item of the writer's queue.
#[derive(Debug)]
pub(super) enum Behind {
    /// A statement.
    Write(Sql),
    /// Answers once every earlier write is applied.
    Flush(oneshot::Sender<()>),
}

/// Credit reservations to commit with the behind writes (SQLite only), and the instance name
/// their movement rows carry.
pub(super) struct Reservations {
    pub(super) queue: mpsc::Receiver<Reserve>,
    pub(super) instance: String,
}

/// Where the writer's transactions run.
#[derive(Debug)]
pub(super) enum Engine {
    /// PostgreSQL: the pool (reservations are one statement each, on the request path).
    Pool(AnyPool),
    /// SQLite: the writer's own connection on a blocking thread, which also commits the
    /// credit reservations.
    Direct(Direct),
}

impl Engine {
    /// One transaction: `batch` in order, then the reservations of `group`; their balances
    /// after them. Nothing of it is kept on error.
    async fn transaction(
        &self,
        batch: &[Sql],
        instance: &str,
        group: &[Reserve],
    ) -> Result<Vec<Option<i64>>, String> {
        match self {
            Self::Direct(direct) => {
                let reservations = group.iter().map(|r| r.reservation.clone()).collect();
                direct
                    .transaction(batch.to_vec(), reservations, instance.to_string())
                    .await
            }
            Self::Pool(_) if !group.is_empty() => {
                Err("credit reservations are grouped on SQLite only".into())
            }
            Self::Pool(pool) => {
                let work = async {
                    let mut tx = pool.begin().await?;
                    for sql in batch {
                        sql.query().execute(&mut *tx).await?;
                    }
                    tx.commit().await
                };
                match tokio::time::timeout(Duration::from_secs(10), work).await {
                    Ok(result) => result.map(|()| Vec::new()).map_err(|e| e.to_string()),
                    Err(_) => Err(sqlx::Error::PoolTimedOut.to_string()),
                }
            }
        }
    }
}

/// Starts the writer task. On SQLite it also commits the credit reservations
/// (`reserves.rs`): one task, one connection, one transaction for whatever has queued up of
/// both, so a reservation never waits for the behind writes' write lock (nor they for it),
/// and a transaction's statements cost one thread hand-off together (`direct.rs`).
pub(super) fn spawn(
    engine: Engine,
    mut rx: mpsc::Receiver<Behind>,
    reservations: Option<Reservations>,
) {
    tokio::spawn(async move {
        let (mut reserves, instance) = match reservations {
            Some(r) => (Some(r.queue), r.instance),
            None => (None, String::new()),
        };
        let mut batch = Vec::with_capacity(BATCH);
        let mut flushes = Vec::new();
        let mut group = Vec::new();
        let mut behind_open = true;
        while behind_open || reserves.is_some() {
            // Wait for the first item of either queue (the reservations first: a caller waits).
            tokio::select! {
                biased;
                first = recv(&mut reserves), if reserves.is_some() => match first {
                    Some(r) => group.push(r),
                    None => reserves = None,
                },
                first = rx.recv(), if behind_open => match first {
                    Some(item) => collect(item, &mut batch, &mut flushes),
                    None => behind_open = false,
                },
            }
            // Then whatever else has queued meanwhile, up to a transaction's worth of each.
            if let Some(queue) = reserves.as_mut() {
                while group.len() < reserves::GROUP {
                    match queue.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
            }
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(next) => collect(next, &mut batch, &mut flushes),
                    Err(_) => break,
                }
            }
            // A caller that gave up (its timeout) still gets its reservation decided here;
            // the paygate voids what a lost answer leaves behind.
            group.retain(|r| !r.reply.is_closed());
            if group.is_empty() {
                if !batch.is_empty() {
                    apply(&engine, &batch).await;
                }
            } else {
                let outcome = engine.transaction(&batch, &instance, &group).await;
                let failed = outcome.is_err();
                reserves::answer(std::mem::take(&mut group), outcome);
                if failed && !batch.is_empty() {
                    // The reservations failed at once (their callers wait); the behind writes
                    // get their retries on their own.
                    apply(&engine, &batch).await;
                }
            }
            batch.clear();
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
        }
    });
}

/// The next reservation, or `None` once the queue is closed.
async fn recv(queue: &mut Option<mpsc::Receiver<Reserve>>) -> Option<Reserve> {
    match queue {
        Some(queue) => queue.recv().await,
        None => None,
    }
}

fn collect(item: Behind, batch: &mut Vec<Sql>, flushes: &mut Vec<oneshot::Sender<()>>) {
    match item {
        Behind::Write(sql) => batch.push(sql),
        Behind::Flush(done) => flushes.push(done),
    }
}

/// Applies `batch` in one transaction, retrying a few times (the database may be restarting);
/// a batch that still fails is logged and counted, never retried forever.
async fn apply(engine: &Engine, batch: &[Sql]) {
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=5 {
        match engine.transaction(batch, "", &[]).await {
            Ok(_) => return,
            Err(e) if attempt < 5 => {
                tracing::warn!(error = %e, attempt, "ledger background write failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                metrics::counter!("x402_ledger_dropped_writes_total").increment(batch.len() as u64);
                tracing::error!(error = %e, writes = batch.len(), "ledger background writes dropped");
            }
        }
    }
}
