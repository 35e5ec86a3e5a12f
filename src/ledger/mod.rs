//! The durable payment ledger: one row per payment with its state machine, an append-only
//! event row per transition, written ahead of every step that moves money.
//!
//! SQLite in a file by default (`cargo run` needs no server; WAL with `synchronous=NORMAL`
//! survives a killed process, not a power cut), PostgreSQL for several instances; one `Any`
//! pool over both, the schema in `migrations/<backend>/`, applied at start and by `migrate`.
//!
//! What is written where (README, "Payment ledger"):
//! - on the request path, awaited: the claim (one upsert that also tells whether an earlier
//!   attempt already settled or submitted this payment), the kept answer with the settle
//!   request *before* the settlement is sent, and the settlement's outcome (`settled` with its
//!   receipt, before the answer goes out, so a replay right after reads it; or a refusal);
//! - behind, by one writer task in order: event rows, `verified`, the upstream's outcome.

pub(crate) mod admin;
mod audit;
mod awaited;
mod credits;
mod direct;
mod payments;
mod queries;
mod sql;
mod state;
mod writer;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use tokio::sync::mpsc;

pub use audit::{AuditCursor, Finding, FindingFilter, FindingKind, KnownSignature, SettledPayment};
pub use credits::{call_reference, CreditAccount, CreditMovement, ORPHAN_AFTER_MS};
pub use payments::{Claimed, NewPayment, PaymentRow, Submission};
pub use queries::{PaymentEvent, PaymentFilter, RevenueRow, StateTotal, Statement};

/// Most rows one page of an operator's listing may hold.
pub const MAX_PAGE: u32 = 1_000;
pub use state::PaymentState;

use crate::config::LedgerConfig;
use sql::Sql;
use writer::Behind;

/// The schema of each backend, embedded at build time.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// A ledger call that failed; the paygate refuses to move money it could not record.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    /// No answer within `[ledger] timeout_ms`.
    #[error("ledger timed out")]
    Timeout,
    /// The database refused or is unreachable.
    #[error("ledger unavailable: {0}")]
    Database(String),
    /// A stored value could not be read back.
    #[error("ledger data unreadable: {0}")]
    Corrupt(String),
    /// Applying the migrations failed.
    #[error("ledger migration failed: {0}")]
    Migration(String),
}

impl From<sqlx::Error> for LedgerError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut => Self::Timeout,
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                Self::Corrupt(e.to_string())
            }
            other => Self::Database(other.to_string()),
        }
    }
}

/// Result of a ledger call.
pub type LedgerResult<T> = Result<T, LedgerError>;

/// Which database holds the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default.
    Sqlite,
    /// Several instances.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    fn of(url: &str) -> Self {
        if url.starts_with("sqlite:") {
            Self::Sqlite
        } else {
            Self::Postgres
        }
    }

    fn migrator(self) -> &'static sqlx::migrate::Migrator {
        match self {
            Self::Sqlite => &SQLITE_MIGRATIONS,
            Self::Postgres => &POSTGRES_MIGRATIONS,
        }
    }
}

/// The ledger: a pool, this instance's name, and the queue of writes done behind.
#[derive(Debug)]
pub struct Ledger {
    pool: AnyPool,
    backend: Backend,
    instance: String,
    timeout: Duration,
    behind: mpsc::Sender<Behind>,
    /// The writes a caller waits for, committed in groups by the writer task (used on
    /// SQLite; on PostgreSQL they run on the request path over the pool).
    awaited: mpsc::Sender<awaited::Awaited>,
    config: LedgerConfig,
    /// Below this `credit_movements` id every reservation has its outcome (the reconciler's
    /// orphan scan starts here; 0 after a start: one full scan, then only what is new).
    orphan_scan_from: std::sync::atomic::AtomicI64,
}

impl Ledger {
    /// Connects, applies the migrations, and starts the background writer and heartbeat.
    pub async fn open(config: &LedgerConfig) -> LedgerResult<Arc<Self>> {
        let pool = connect(config).await?;
        let backend = Backend::of(&config.connect_url());
        migrate_pool(&pool, backend).await?;
        let (tx, rx) = mpsc::channel(config.queue);
        let instance = format!("gw-{}", hex::encode(rand::random::<[u8; 6]>()));
        // SQLite: the writer task also commits the awaited writes (one writer). On PostgreSQL
        // they run on the request path; the queue stays unused.
        let (awaited, queue) = mpsc::channel(config.queue.max(awaited::GROUP));
        let awaiting = (backend == Backend::Sqlite).then(|| writer::Awaiting {
            queue,
            instance: instance.clone(),
        });
        let ledger = Arc::new(Self {
            pool: pool.clone(),
            backend,
            awaited,
            instance,
            timeout: Duration::from_millis(config.timeout_ms),
            behind: tx,
            config: config.clone(),
            orphan_scan_from: std::sync::atomic::AtomicI64::new(0),
        });
        let engine = match backend {
            Backend::Sqlite => writer::Engine::Direct(
                direct::Direct::open(&pool)
                    .await
                    .map_err(LedgerError::Database)?,
            ),
            Backend::Postgres => writer::Engine::Pool(pool),
        };
        writer::spawn(engine, rx, awaiting);
        ledger.heartbeat().await?;
        spawn_heartbeat(&ledger);
        Ok(ledger)
    }

    /// Applies every migration not yet applied (the `migrate` subcommand), and nothing else.
    pub async fn migrate(config: &LedgerConfig) -> LedgerResult<Vec<i64>> {
        let pool = connect(config).await?;
        let backend = Backend::of(&config.connect_url());
        migrate_pool(&pool, backend).await?;
        let applied = sqlx::query("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await?
            .iter()
            .map(|row| row.try_get::<i64, _>(0))
            .collect::<Result<Vec<_>, _>>()?;
        pool.close().await;
        Ok(applied)
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// This instance's name in the ledger (events, heartbeats).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The config it was opened with.
    pub fn config(&self) -> &LedgerConfig {
        &self.config
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> LedgerResult<()> {
        self.bounded(async { self.pool.execute("SELECT 1").await.map(drop) })
            .await
    }

    /// Waits until every write queued so far is applied (graceful shutdown, tests).
    pub async fn flush(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.behind.send(Behind::Flush(done)).await.is_ok() {
            let _ = tokio::time::timeout(self.timeout * 4, wait).await;
        }
    }

    /// Marks this instance alive.
    async fn heartbeat(&self) -> LedgerResult<()> {
        let now = now_ms();
        self.bounded(
            sqlx::query(
                "INSERT INTO instances (instance, started_ms, seen_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (instance) DO UPDATE SET seen_ms = excluded.seen_ms",
            )
            .bind(&self.instance)
            .bind(now)
            .bind(now)
            .execute(&self.pool),
        )
        .await
        .map(drop)
    }

    /// SQLite: copies the WAL into the database and truncates it. Under sustained paid load
    /// the automatic (passive) checkpoints never find both connections idle, so the WAL was
    /// never reset: it grew by ~100 KB per paid call (4 GB in five minutes) and every commit's
    /// checkpoint attempt cost more (bench/paid.sh flat). A truncating checkpoint waits for
    /// readers (the busy timeout) and resets it.
    async fn checkpoint(&self) {
        let done = self
            .bounded(sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").fetch_optional(&self.pool))
            .await;
        if let Err(e) = done {
            tracing::warn!(error = %e, "ledger checkpoint failed");
        }
    }

    /// Takes (or keeps) the lease `name` for `ttl`; `true` when this instance holds it.
    pub async fn lease(&self, name: &str, ttl: Duration) -> LedgerResult<bool> {
        let now = now_ms();
        let done = self
            .bounded(
                sqlx::query(
                    "INSERT INTO leases (name, owner, until_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms \
                     WHERE leases.until_ms < $4 OR leases.owner = excluded.owner",
                )
                .bind(name)
                .bind(&self.instance)
                .bind(now + ttl.as_millis() as i64)
                .bind(now)
                .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Runs one database call under the ledger's timeout.
    async fn bounded<T, F>(&self, call: F) -> LedgerResult<T>
    where
        F: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(LedgerError::from),
            Err(_) => Err(LedgerError::Timeout),
        }
    }

    /// Hands `work` to the writer task and waits (under the ledger's timeout) for its
    /// transaction's commit (SQLite only: see `awaited.rs`).
    async fn awaited(&self, work: awaited::Work) -> LedgerResult<awaited::Done> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let stopped = || LedgerError::Database("the ledger's writer task stopped".into());
        let wait = async {
            self.awaited
                .send(awaited::Awaited { work, reply })
                .await
                .map_err(|_| stopped())?;
            answer
                .await
                .map_err(|_| stopped())?
                .map_err(LedgerError::Database)
        };
        match tokio::time::timeout(self.timeout, wait).await {
            Ok(result) => result,
            Err(_) => Err(LedgerError::Timeout),
        }
    }

    /// One statement the caller waits for: the rows it changed. On SQLite the writer task
    /// commits it (with whatever else queued meanwhile); on PostgreSQL it runs on the pool.
    async fn execute_awaited(&self, sql: Sql) -> LedgerResult<u64> {
        match self.backend {
            Backend::Sqlite => match self.awaited(awaited::Work::Execute(sql)).await? {
                awaited::Done::Changed(rows) => Ok(rows as u64),
                other => Err(LedgerError::Corrupt(format!("writer answered {other:?}"))),
            },
            Backend::Postgres => self
                .bounded(sql.query().execute(&self.pool))
                .await
                .map(|done| done.rows_affected()),
        }
    }

    /// Queues a write done behind the request; waits for room (bounded) when the queue is full.
    fn queue(&self, write: Behind) {
        match self.behind.try_send(write) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(write)) => {
                // Backpressure without blocking the caller: a task waits for room.
                let sender = self.behind.clone();
                let timeout = self.timeout;
                tokio::spawn(async move {
                    if tokio::time::timeout(timeout, sender.send(write))
                        .await
                        .is_err()
                    {
                        metrics::counter!("x402_ledger_dropped_writes_total").increment(1);
                        tracing::error!("ledger write queue full: a background write was dropped");
                    }
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                metrics::counter!("x402_ledger_dropped_writes_total").increment(1);
            }
        }
    }
}

/// A SQLite ledger in a fresh temporary directory (unit tests; the directory lives as long
/// as the returned guard).
#[cfg(test)]
pub(crate) async fn temp_sqlite() -> (tempfile::TempDir, Arc<Ledger>) {
    let dir = tempfile::tempdir().unwrap();
    let config = LedgerConfig {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let ledger = Ledger::open(&config).await.unwrap();
    (dir, ledger)
}

/// The most connections a SQLite ledger opens, whatever `max_connections` says.
pub const SQLITE_MAX_CONNECTIONS: u32 = 2;

/// Opens the pool (creating the SQLite file and its directory when missing).
async fn connect(config: &LedgerConfig) -> LedgerResult<AnyPool> {
    sqlx::any::install_default_drivers();
    let url = config.connect_url();
    let backend = Backend::of(&url);
    if backend == Backend::Sqlite && config.url.is_none() && config.file_url.is_none() {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            LedgerError::Database(format!(
                "cannot create the ledger directory {}: {e}",
                config.data_dir.display()
            ))
        })?;
    }
    // SQLite writes one transaction at a time, and a connection's page cache is dropped
    // whenever another connection wrote: past two connections (one writing, one reading) a
    // pool only adds cold caches and thread hand-offs. bench/paid.sh: 8 connections cost
    // ~1.2 ms of CPU per paid call, 2 cost ~0.87 ms, at a higher rate.
    let pool_size = match backend {
        Backend::Sqlite => config.max_connections.min(SQLITE_MAX_CONNECTIONS),
        _ => config.max_connections,
    };
    let options = AnyPoolOptions::new()
        .max_connections(pool_size)
        .acquire_timeout(Duration::from_millis(config.timeout_ms))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL: readers never wait for the writer; NORMAL: a commit survives the
                    // process being killed (the OS has it), one fsync per checkpoint. The busy
                    // timeout first, so that the other two wait for a lock held by another
                    // connection instead of failing the new connection at once.
                    conn.execute(
                        "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                         PRAGMA synchronous = NORMAL;",
                    )
                    .await?;
                }
                Ok(())
            })
        });
    match tokio::time::timeout(
        Duration::from_millis(config.timeout_ms),
        options.connect(&url),
    )
    .await
    {
        Ok(pool) => Ok(pool?),
        Err(_) => Err(LedgerError::Timeout),
    }
}

async fn migrate_pool(pool: &AnyPool, backend: Backend) -> LedgerResult<()> {
    backend
        .migrator()
        .run(pool)
        .await
        .map_err(|e| LedgerError::Migration(e.to_string()))
}

/// Marks the instance alive every `heartbeat_ms` while the ledger lives.
fn spawn_heartbeat(ledger: &Arc<Ledger>) {
    let weak = Arc::downgrade(ledger);
    let every = Duration::from_millis(ledger.config.heartbeat_ms);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(ledger) = weak.upgrade() else { return };
            if let Err(e) = ledger.heartbeat().await {
                tracing::warn!(error = %e, "ledger heartbeat failed");
            }
            if ledger.backend == Backend::Sqlite {
                ledger.checkpoint().await;
            }
        }
    });
}

/// Now, in Unix milliseconds (the ledger's clock).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Reads an optional text column.
fn text(row: &AnyRow, column: &str) -> LedgerResult<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(column)?)
}
