//! The writes a caller waits for on a SQLite ledger: credit reservations and the paid path's
//! steps (claim, submit, resolve), committed in groups by the ledger's one writer task
//! (`writer.rs`), in the same transactions as the writes done behind, over the writer's own
//! connection (`direct.rs`, where they run).
//!
//! SQLite has one writer: with one transaction per reservation, every credit-paid call waited
//! behind the commits of all the others (~4,000 calls/s whatever the load, BENCHMARKS.md); with
//! the reservations and the behind writes (the spends) committed by two tasks on two
//! connections, each waited for the other's write lock. Through the sqlx pool every statement
//! of a paid call's claim, submit and resolve was also one thread hand-off there and back, and
//! every pooled connection's commit emptied the writer connection's page cache (and its commits
//! theirs). Here the work that arrives while a transaction commits joins the next one (nothing
//! waits for company: alone, it commits at once). Each item runs in its own savepoint, so one
//! failing statement fails only its own caller; each is committed before its caller goes on
//! (a reservation before the upstream call, a submission before the settlement is sent). A
//! failed transaction fails every item of its group, none of which then changed anything.

use tokio::sync::oneshot;

use super::sql::Sql;

/// Most awaited items in one transaction.
pub(super) const GROUP: usize = 256;

/// One reservation: `amount` credits of `wallet` for the call `reference` on `route`.
#[derive(Debug, Clone)]
pub(super) struct Reservation {
    pub(super) wallet: String,
    pub(super) amount: i64,
    pub(super) reference: String,
    pub(super) route: String,
    pub(super) at_ms: i64,
}

/// A submitted payment's resolution: `update` moves it out of `settle_submitted` and returns
/// its payer and the credits its settlement grants; when `settled`, those credits go to the
/// payer in the same transaction (exactly once: the row leaves `settle_submitted` once).
#[derive(Debug, Clone)]
pub(super) struct Resolution {
    pub(super) update: Sql,
    pub(super) settled: bool,
    pub(super) payment_key: String,
    pub(super) at_ms: i64,
}

/// A settled top-up's credit to its payer's balance (`$1` wallet, `$2` credits, `$3` time):
/// the new balance. Run on either connection kind (`credits.rs`, `direct.rs`), as is
/// [`MOVEMENT`].
pub(super) const TOPUP: &str =
    "INSERT INTO credit_accounts (wallet, balance, updated_ms) VALUES ($1, $2, $3) \
     ON CONFLICT (wallet) DO UPDATE SET balance = credit_accounts.balance + excluded.balance, \
     updated_ms = excluded.updated_ms RETURNING balance";

/// A movement row: wallet, kind, amount, balance after, reference, route, time, instance.
pub(super) const MOVEMENT: &str =
    "INSERT INTO credit_movements (wallet, kind, amount, balance, reference, route, at_ms, instance) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// What a caller waits for.
#[derive(Debug, Clone)]
pub(super) enum Work {
    /// The conditional debit and, when it took, its movement row.
    Reserve(Reservation),
    /// One statement.
    Execute(Sql),
    /// A submitted payment's outcome.
    Resolve(Resolution),
}

/// What became of a [`Work`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Done {
    /// The balance after the reservation; `None` when the balance did not cover it.
    Reserved(Option<i64>),
    /// How many rows the statement changed.
    Changed(usize),
    /// Whether the payment was still submitted (and is now resolved).
    Resolved(bool),
}

/// One item waiting for its transaction.
#[derive(Debug)]
pub(super) struct Awaited {
    pub(super) work: Work,
    /// What became of it, or why it failed.
    pub(super) reply: oneshot::Sender<Result<Done, String>>,
}

/// Tells each item of `group` what became of it (after its transaction's commit): `outcome`
/// holds one result per item, or why the whole transaction failed.
pub(super) fn answer(group: Vec<Awaited>, outcome: Result<Vec<Result<Done, String>>, String>) {
    match outcome {
        Ok(done) => {
            for (item, done) in group.into_iter().zip(done) {
                let _ = item.reply.send(done);
            }
        }
        Err(e) => {
            for item in group {
                let _ = item.reply.send(Err(e.clone()));
            }
        }
    }
}
