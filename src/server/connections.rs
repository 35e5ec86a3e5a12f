//! The table of open connections: how many there are, which have a request in flight, and
//! which one gives way when the cap is reached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Set in [`Activity::in_flight`] once a connection is claimed for closing; a request that
/// arrives after it is not started.
const CLOSING: usize = 1 << (usize::BITS - 1);

/// What the server knows about one connection, shared by its task, its requests and the table.
#[derive(Debug)]
pub(super) struct Activity {
    /// Requests whose response has not been sent yet, plus [`CLOSING`] once claimed.
    in_flight: AtomicUsize,
    /// When the connection last had no request in flight (ms since `epoch`): its accept, then
    /// the end of each response.
    idle_since_ms: AtomicU64,
    /// A request head has arrived on this connection.
    served: AtomicBool,
    /// Woken when the table closes this connection to make room.
    evicted: Notify,
    epoch: Instant,
}

impl Activity {
    fn new(epoch: Instant) -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(millis_since(epoch)),
            served: AtomicBool::new(false),
            evicted: Notify::new(),
            epoch,
        }
    }

    /// Marks a request in flight until the returned guard drops (with the response body, once it
    /// is sent or abandoned). `None` when the connection is already being closed.
    pub(super) fn start_request(self: &Arc<Self>) -> Option<InFlight> {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight(Arc::clone(self));
        if before & CLOSING != 0 {
            return None; // the guard's drop takes the count back
        }
        self.served.store(true, Ordering::Relaxed);
        Some(guard)
    }

    /// Claims the connection for closing if it has no request in flight.
    pub(super) fn try_close(&self) -> bool {
        self.in_flight
            .compare_exchange(0, CLOSING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// When this connection, if it stays idle, is to be closed: `header_read` after the accept
    /// while no request head has arrived yet, `idle` after the last response otherwise. `None`
    /// while a request is in flight.
    pub(super) fn idle_deadline(&self, header_read: Duration, idle: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) != 0 {
            return None;
        }
        let since = Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire));
        let allowed = if self.served.load(Ordering::Relaxed) {
            idle
        } else {
            header_read
        };
        Some(self.epoch + since + allowed)
    }

    /// Resolves once the table has closed this connection to make room.
    pub(super) async fn evicted(&self) {
        self.evicted.notified().await
    }

    fn idle_since(&self) -> Option<u64> {
        (self.in_flight.load(Ordering::Acquire) == 0)
            .then(|| self.idle_since_ms.load(Ordering::Acquire))
    }
}

/// One request in flight on a connection.
#[derive(Debug)]
pub(super) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        // The time first, then the count: whoever sees zero also sees when it became zero.
        let now = millis_since(self.0.epoch);
        self.0.idle_since_ms.store(now, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Every open connection, up to `cap`.
#[derive(Debug)]
pub(super) struct Connections {
    cap: usize,
    epoch: Instant,
    next_id: AtomicU64,
    table: Mutex<HashMap<u64, Arc<Activity>>>,
}

impl Connections {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            cap,
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            table: Mutex::new(HashMap::new()),
        }
    }

    /// Leaves room for one more connection: true when under the cap, or when the connection idle
    /// the longest (no request in flight) was closed for it; false when every connection has a
    /// request in flight.
    ///
    /// Evicting rather than refusing: an idle socket is only a bet that its client will send
    /// again (and re-opening one costs the client a round trip), while the new connection is a
    /// client here now. So a cap full of idle or trickling sockets never locks a fresh client
    /// out, and the oldest go first, so an attacker must open `cap` sockets within one client's
    /// round trip to push a real request out.
    pub(super) fn make_room(&self) -> bool {
        let mut table = self.table.lock();
        if table.len() < self.cap {
            return true;
        }
        loop {
            let Some((&id, _)) = table
                .iter()
                .filter_map(|(id, activity)| activity.idle_since().map(|since| (id, since)))
                .min_by_key(|&(_, since)| since)
            else {
                return false;
            };
            // A request may have started since the scan: then that connection stays and the
            // scan runs again (it is busy now, so it is skipped).
            if table[&id].try_close() {
                let activity = table.remove(&id).expect("present under the lock");
                activity.evicted.notify_one();
                return true;
            }
        }
    }

    /// Adds a connection; [`Connections::remove`] takes it out when its task ends.
    pub(super) fn register(&self) -> (u64, Arc<Activity>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new(self.epoch));
        self.table.lock().insert(id, Arc::clone(&activity));
        (id, activity)
    }

    pub(super) fn remove(&self, id: u64) {
        self.table.lock().remove(&id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().len()
    }
}

fn millis_since(epoch: Instant) -> u64 {
    Instant::now().saturating_duration_since(epoch).as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn at_the_cap_the_longest_idle_connection_gives_way() {
        let connections = Connections::new(2);
        let (_, oldest) = connections.register();
        tokio::time::advance(Duration::from_millis(10)).await;
        let (_, busy) = connections.register();
        let request = busy.start_request().expect("open connection");
        assert!(connections.make_room(), "the idle one gives way");
        assert!(oldest.start_request().is_none(), "claimed for closing");
        assert_eq!(connections.len(), 1);
        let (_, _third) = connections.register();
        // Now one busy and one idle (the third): the idle one goes, never the busy one.
        assert!(connections.make_room());
        assert_eq!(connections.len(), 1);
        drop(request);
        assert!(connections.make_room(), "under the cap");
    }

    #[tokio::test(start_paused = true)]
    async fn with_every_connection_busy_there_is_no_room() {
        let connections = Connections::new(1);
        let (_, busy) = connections.register();
        let request = busy.start_request().expect("open connection");
        assert!(!connections.make_room());
        assert_eq!(busy.idle_deadline(Duration::ZERO, Duration::ZERO), None);
        drop(request);
        assert!(connections.make_room(), "idle again, so it can give way");
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_head_has_the_header_timeout_later_ones_the_idle_timeout() {
        let (header, idle) = (Duration::from_millis(100), Duration::from_secs(5));
        let connections = Connections::new(4);
        let start = Instant::now();
        let (_, activity) = connections.register();
        assert_eq!(activity.idle_deadline(header, idle), Some(start + header));
        let request = activity.start_request().unwrap();
        tokio::time::advance(Duration::from_millis(30)).await;
        drop(request);
        let ended = start + Duration::from_millis(30);
        assert_eq!(activity.idle_deadline(header, idle), Some(ended + idle));
    }
}
