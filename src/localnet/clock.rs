//! The slot clock: a tokio task that produces one block (slot + blockhash) every `slot_ms`.
//!
//! It holds the ledger mutex only for the duration of one `tick` and never across an await,
//! and it exits as soon as the shutdown signal flips, so no task outlives its cluster.

use super::chain::Chain;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// Runs until `stop` becomes true (or its sender is dropped). `slot_ms == 0` means no
/// automatic clock: slots only move through `advance_slots`.
pub(super) async fn run(
    chain: Arc<Mutex<Chain>>,
    paused: Arc<AtomicBool>,
    slot_ms: u64,
    mut stop: watch::Receiver<bool>,
) {
    if slot_ms == 0 {
        // Still wait for shutdown so the task lifecycle is uniform.
        while stop.changed().await.is_ok() && !*stop.borrow() {}
        return;
    }
    let mut interval = tokio::time::interval(Duration::from_millis(slot_ms));
    // A stalled runtime should not produce a burst of catch-up slots.
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval.tick().await; // the first tick fires immediately; genesis is slot 0
    loop {
        tokio::select! {
            _ = interval.tick() => {
                if !paused.load(Ordering::Relaxed) {
                    chain.lock().tick();
                }
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
}
