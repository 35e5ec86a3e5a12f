//! Credit reservations on a SQLite ledger, committed in groups by the ledger's one writer task
//! (`writer.rs`), in the same transactions as the writes done behind, over the writer's own
//! connection (`direct.rs`, where the statements are).
//!
//! SQLite has one writer: with one transaction per reservation, every credit-paid call waited
//! behind the commits of all the others (~4,000 calls/s whatever the load, BENCHMARKS.md); with
//! the reservations and the behind writes (the spends) committed by two tasks on two
//! connections, each waited for the other's write lock. Here the reservations that arrive while
//! a transaction commits join the next one (nothing waits for company: alone, a reservation
//! commits at once). Each is still its own conditional update (a balance never goes below
//! zero, whatever else the group holds), has its own movement row, and is committed before its
//! caller goes on to the upstream. A failed transaction fails every reservation of its group,
//! none of which then took anything.

use tokio::sync::oneshot;

/// Most reservations in one transaction.
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

/// One reservation waiting for its transaction.
#[derive(Debug)]
pub(super) struct Reserve {
    pub(super) reservation: Reservation,
    /// The balance after it, `None` when the balance did not cover it, or why it failed.
    pub(super) reply: oneshot::Sender<Result<Option<i64>, String>>,
}

/// Tells each reservation of `group` what became of it (after its transaction's commit).
pub(super) fn answer(group: Vec<Reserve>, outcome: Result<Vec<Option<i64>>, String>) {
    match outcome {
        Ok(balances) => {
            for (r, balance) in group.into_iter().zip(balances) {
                let _ = r.reply.send(Ok(balance));
            }
        }
        Err(e) => {
            for r in group {
                let _ = r.reply.send(Err(e.clone()));
            }
        }
    }
}
