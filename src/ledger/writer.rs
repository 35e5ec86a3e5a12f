//! The writes done behind the request: one task applies them in order, several per
//! transaction when they queue up (one commit for many event rows). On SQLite the same task
//! commits the writes a caller waits for (`awaited.rs`).

use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::awaited::{self, Awaited};
use super::direct::{Direct, Round};
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

/// The awaited writes to commit with the behind writes (SQLite only), and the instance name
/// their movement rows carry.
pub(super) struct Awaiting {
    pub(super) queue: mpsc::Receiver<Awaited>,
    pub(super) instance: String,
}

/// Where the writer's transactions run.
#[derive(Debug)]
pub(super) enum Engine {
    /// PostgreSQL: the pool (awaited writes run on the request path, one statement or
    /// transaction each).
    Pool(AnyPool),
    /// SQLite: the writer's own connection on a blocking thread, which also commits the
    /// awaited writes.
    Direct(Direct),
}

impl Engine {
    /// One transaction: `batch` in order, then the items of `group` (see
    /// [`Direct::transaction`]).
    async fn transaction(
        &self,
        batch: &[Sql],
        instance: &str,
        group: &[Awaited],
    ) -> Result<Round, String> {
        match self {
            Self::Direct(direct) => {
                let work = group.iter().map(|a| a.work.clone()).collect();
                direct
                    .transaction(batch.to_vec(), work, instance.to_string())
                    .await
            }
            Self::Pool(_) if !group.is_empty() => {
                Err("awaited writes are grouped on SQLite only".into())
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
                    Ok(result) => result
                        .map(|()| Round {
                            behind: Ok(()),
                            done: Vec::new(),
                        })
                        .map_err(|e| e.to_string()),
                    Err(_) => Err(sqlx::Error::PoolTimedOut.to_string()),
                }
            }
        }
    }
}

/// Starts the writer task. On SQLite it also commits the awaited writes (`awaited.rs`): one
/// task, one connection, one transaction for whatever has queued up of both, so an awaited
/// write never waits for the behind writes' write lock (nor they for it), and a
/// transaction's statements cost one thread hand-off together (`direct.rs`).
pub(super) fn spawn(engine: Engine, mut rx: mpsc::Receiver<Behind>, awaiting: Option<Awaiting>) {
    tokio::spawn(async move {
        let (mut waiting, instance) = match awaiting {
            Some(r) => (Some(r.queue), r.instance),
            None => (None, String::new()),
        };
        let mut batch = Vec::with_capacity(BATCH);
        let mut flushes = Vec::new();
        let mut group = Vec::new();
        let mut behind_open = true;
        while behind_open || waiting.is_some() {
            // Wait for the first item of either queue (the awaited first: a caller waits).
            tokio::select! {
                biased;
                first = recv(&mut waiting), if waiting.is_some() => match first {
                    Some(r) => group.push(r),
                    None => waiting = None,
                },
                first = rx.recv(), if behind_open => match first {
                    Some(item) => collect(item, &mut batch, &mut flushes),
                    None => behind_open = false,
                },
            }
            // Then whatever else has queued meanwhile, up to a transaction's worth of each.
            if let Some(queue) = waiting.as_mut() {
                while group.len() < awaited::GROUP {
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
            // A caller that gave up (its timeout) no longer waits: its item is dropped, as if
            // its timeout had struck before the statement ran (the paygate voids or the
            // reconciler finishes what a lost answer leaves behind).
            group.retain(|a| !a.reply.is_closed());
            if group.is_empty() {
                if !batch.is_empty() {
                    apply(&engine, &batch).await;
                }
            } else {
                let outcome = engine.transaction(&batch, &instance, &group).await;
                let behind = match &outcome {
                    Ok(round) => round.behind.clone(),
                    Err(e) => Err(e.clone()),
                };
                awaited::answer(std::mem::take(&mut group), outcome.map(|r| r.done));
                if behind.is_err() && !batch.is_empty() {
                    // The awaited items were answered at once (their callers wait); the behind
                    // writes get their retries on their own.
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

/// The next awaited item, or `None` once the queue is closed.
async fn recv(queue: &mut Option<mpsc::Receiver<Awaited>>) -> Option<Awaited> {
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
        let outcome = engine
            .transaction(batch, "", &[])
            .await
            .and_then(|round| round.behind);
        match outcome {
            Ok(()) => return,
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
