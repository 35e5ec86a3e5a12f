//! The writes done behind the request: one task applies them in order, several per
//! transaction when they queue up (one commit for many event rows).

use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

/// Most writes applied in one transaction.
const BATCH: usize = 128;

/// One statement with its arguments, built by the ledger and applied later.
#[derive(Debug)]
pub(super) enum Behind {
    /// A statement.
    Write(Sql),
    /// Answers once every earlier write is applied.
    Flush(oneshot::Sender<()>),
}

/// An SQL statement and its arguments (text, integers, bytes, or null).
#[derive(Debug, Clone)]
pub(super) struct Sql {
    pub(super) sql: &'static str,
    pub(super) args: Vec<Arg>,
}

/// An argument of a [`Sql`].
#[derive(Debug, Clone)]
pub(super) enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
}

impl Sql {
    pub(super) fn new(sql: &'static str) -> Self {
        Self {
            sql,
            args: Vec::new(),
        }
    }

    pub(super) fn text(mut self, value: impl Into<Option<String>>) -> Self {
        self.args.push(Arg::Text(value.into()));
        self
    }

    pub(super) fn int(mut self, value: impl Into<Option<i64>>) -> Self {
        self.args.push(Arg::Int(value.into()));
        self
    }

    pub(super) fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        let mut query = sqlx::query(self.sql);
        for arg in &self.args {
            query = match arg {
                Arg::Text(v) => query.bind(v.as_deref()),
                Arg::Int(v) => query.bind(*v),
            };
        }
        query
    }
}

pub(super) fn spawn(pool: AnyPool, mut rx: mpsc::Receiver<Behind>) {
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        let mut flushes = Vec::new();
        while let Some(first) = rx.recv().await {
            collect(first, &mut batch, &mut flushes);
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(next) => collect(next, &mut batch, &mut flushes),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                apply(&pool, &batch).await;
                batch.clear();
            }
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
        }
    });
}

fn collect(item: Behind, batch: &mut Vec<Sql>, flushes: &mut Vec<oneshot::Sender<()>>) {
    match item {
        Behind::Write(sql) => batch.push(sql),
        Behind::Flush(done) => flushes.push(done),
    }
}

/// Applies `batch` in one transaction, retrying a few times (the database may be restarting);
/// a batch that still fails is logged and counted, never retried forever.
async fn apply(pool: &AnyPool, batch: &[Sql]) {
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=5 {
        match try_apply(pool, batch).await {
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

async fn try_apply(pool: &AnyPool, batch: &[Sql]) -> Result<(), sqlx::Error> {
    let work = async {
        let mut tx = pool.begin().await?;
        for sql in batch {
            sql.query().execute(&mut *tx).await?;
        }
        tx.commit().await
    };
    match tokio::time::timeout(Duration::from_secs(10), work).await {
        Ok(result) => result,
        Err(_) => Err(sqlx::Error::PoolTimedOut),
    }
}
