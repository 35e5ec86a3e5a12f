//! Per-endpoint health, updated after every call and read by `/status` (and, later, routing).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::Serialize;

use super::UpstreamError;

/// What `/status` shows about one endpoint. Contains no URL and no key.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HealthSnapshot {
    /// Calls made since start.
    pub requests: u64,
    /// Calls that failed (transport, timeout, HTTP error, malformed answer).
    pub failures: u64,
    /// Latency of the most recent call, in milliseconds.
    pub last_latency_ms: Option<f64>,
    /// Unix seconds of the most recent success.
    pub last_success_at: Option<u64>,
    /// The most recent failure, described without secrets.
    pub last_error: Option<String>,
    /// Unix seconds of the most recent failure.
    pub last_error_at: Option<u64>,
}

/// Shared, cheap-to-update health record.
#[derive(Debug, Default)]
pub struct EndpointHealth(Mutex<HealthSnapshot>);

impl EndpointHealth {
    /// Records one call.
    pub fn record(&self, latency: Duration, outcome: Result<(), &UpstreamError>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut h = self.0.lock();
        h.requests += 1;
        h.last_latency_ms = Some((latency.as_secs_f64() * 1000.0 * 100.0).round() / 100.0);
        match outcome {
            Ok(()) => h.last_success_at = Some(now),
            Err(e) => {
                h.failures += 1;
                h.last_error = Some(e.to_string());
                h.last_error_at = Some(now);
            }
        }
    }

    /// A copy of the current record.
    pub fn snapshot(&self) -> HealthSnapshot {
        self.0.lock().clone()
    }
}
