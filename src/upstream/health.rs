//! Per-endpoint health: counters for `/status`, a rolling window of recent calls (latency and
//! outcome) for routing, requests in flight, and a circuit breaker.
//!
//! Every answer (passive) and every active probe is recorded here. The circuit opens after
//! `failure_threshold` consecutive failures; while open the endpoint is not chosen; after
//! `open_for` it is half-open (chosen only after every closed one); one success closes it, one
//! failure opens it again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::time::Instant;

use super::UpstreamError;

/// What `/status` shows about one endpoint. Contains no URL and no key.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HealthSnapshot {
    /// Calls made since start (probes not included).
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

/// The knobs of [`EndpointHealth`], from `[routing]`.
#[derive(Debug, Clone, Copy)]
pub struct HealthPolicy {
    /// Calls kept in the rolling window.
    pub window: usize,
    /// Consecutive failures that open the circuit.
    pub failure_threshold: u32,
    /// How long the circuit stays open before a trial.
    pub open_for: Duration,
    /// Half-life of the latency estimate's decay while no call is recorded, so a provider
    /// that was slow once is eventually tried again.
    pub decay_half_life: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            window: 10,
            failure_threshold: 3,
            open_for: Duration::from_secs(30),
            decay_half_life: Duration::from_secs(30),
        }
    }
}

/// The circuit breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Circuit {
    /// Chosen normally.
    Closed,
    /// Failing: not chosen until `open_for` has passed.
    Open,
    /// `open_for` has passed: tried after every closed endpoint; one answer decides.
    HalfOpen,
}

/// Whether a recorded call counts as an active probe or a client's call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A client's request.
    Request,
    /// The background health probe.
    Probe,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    latency_ms: f64,
    ok: bool,
}

#[derive(Debug, Default)]
struct State {
    counters: HealthSnapshot,
    window: VecDeque<Sample>,
    last_sample_at: Option<Instant>,
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    probes: u64,
}

/// What routing reads about an endpoint at one instant.
#[derive(Debug, Clone, Copy)]
pub struct RouteView {
    /// The circuit.
    pub circuit: Circuit,
    /// Mean latency of the window's successful calls, decayed by idle time; `None` before any.
    pub latency_ms: Option<f64>,
    /// Successes over calls in the window; 1.0 before any call.
    pub success_rate: f64,
    /// Requests in flight right now.
    pub in_flight: u32,
}

/// The `/providers` view of one endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct HealthDetail {
    /// The circuit.
    pub circuit: Circuit,
    /// Whether routing may choose it (circuit not open).
    pub healthy: bool,
    /// Median latency of the window's successful calls.
    pub latency_p50_ms: Option<f64>,
    /// Mean latency of the window's successful calls.
    pub latency_mean_ms: Option<f64>,
    /// Successes over calls in the window.
    pub success_rate: Option<f64>,
    /// Calls in the window.
    pub window_calls: usize,
    /// Requests in flight.
    pub in_flight: u32,
    /// Requests served since start (successful answers).
    pub requests_served: u64,
    /// Active probes sent since start.
    pub probes: u64,
}

/// Shared, cheap-to-update health record.
#[derive(Debug)]
pub struct EndpointHealth {
    state: Mutex<State>,
    in_flight: AtomicU32,
    policy: HealthPolicy,
}

impl Default for EndpointHealth {
    fn default() -> Self {
        Self::new(HealthPolicy::default())
    }
}

/// Decrements the in-flight count when the call ends, however it ends.
#[derive(Debug)]
pub struct InFlight<'a>(&'a AtomicU32);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl EndpointHealth {
    /// A fresh record.
    pub fn new(policy: HealthPolicy) -> Self {
        Self {
            state: Mutex::new(State::default()),
            in_flight: AtomicU32::new(0),
            policy: HealthPolicy {
                window: policy.window.max(1),
                ..policy
            },
        }
    }

    /// Counts a request in flight until the guard drops.
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    /// Records one call (a client's or a probe's).
    pub fn record(&self, latency: Duration, outcome: Result<(), &UpstreamError>, source: Source) {
        let now_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let now = Instant::now();
        let latency_ms = (latency.as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
        let mut h = self.state.lock();
        if source == Source::Request {
            h.counters.requests += 1;
            h.counters.last_latency_ms = Some(latency_ms);
        } else {
            h.probes += 1;
        }
        if h.window.len() == self.policy.window {
            h.window.pop_front();
        }
        h.window.push_back(Sample {
            latency_ms,
            ok: outcome.is_ok(),
        });
        h.last_sample_at = Some(now);
        match outcome {
            Ok(()) => {
                h.counters.last_success_at = Some(now_unix);
                h.consecutive_failures = 0;
                h.opened_at = None;
            }
            Err(e) => {
                if source == Source::Request {
                    h.counters.failures += 1;
                }
                h.counters.last_error = Some(e.to_string());
                h.counters.last_error_at = Some(now_unix);
                h.consecutive_failures = h.consecutive_failures.saturating_add(1);
                let half_open = h
                    .opened_at
                    .is_some_and(|at| now.duration_since(at) >= self.policy.open_for);
                if half_open || h.consecutive_failures >= self.policy.failure_threshold {
                    h.opened_at = Some(now);
                }
            }
        }
    }

    /// A copy of the `/status` counters.
    pub fn snapshot(&self) -> HealthSnapshot {
        self.state.lock().counters.clone()
    }

    /// The circuit now.
    pub fn circuit(&self) -> Circuit {
        circuit_of(&self.state.lock(), Instant::now(), self.policy.open_for)
    }

    /// When the last call (or probe) was recorded.
    pub fn last_sample_at(&self) -> Option<Instant> {
        self.state.lock().last_sample_at
    }

    /// What routing needs, read under one short lock.
    pub fn view(&self, now: Instant) -> RouteView {
        let h = self.state.lock();
        let circuit = circuit_of(&h, now, self.policy.open_for);
        let (sum, ok) = h
            .window
            .iter()
            .filter(|s| s.ok)
            .fold((0.0, 0usize), |(sum, n), s| (sum + s.latency_ms, n + 1));
        let latency_ms = (ok > 0).then(|| {
            let idle = h
                .last_sample_at
                .map(|at| now.saturating_duration_since(at))
                .unwrap_or_default();
            let halvings = idle.as_secs_f64() / self.policy.decay_half_life.as_secs_f64().max(1e-3);
            sum / ok as f64 * 0.5f64.powf(halvings)
        });
        let success_rate = if h.window.is_empty() {
            1.0
        } else {
            ok as f64 / h.window.len() as f64
        };
        RouteView {
            circuit,
            latency_ms,
            success_rate,
            in_flight: self.in_flight.load(Ordering::Relaxed),
        }
    }

    /// The `/providers` view.
    pub fn detail(&self) -> HealthDetail {
        let h = self.state.lock();
        let circuit = circuit_of(&h, Instant::now(), self.policy.open_for);
        let mut latencies: Vec<f64> = h
            .window
            .iter()
            .filter(|s| s.ok)
            .map(|s| s.latency_ms)
            .collect();
        latencies.sort_by(f64::total_cmp);
        let ok = latencies.len();
        HealthDetail {
            circuit,
            healthy: circuit != Circuit::Open,
            latency_p50_ms: latencies.get(ok / 2).copied(),
            latency_mean_ms: (ok > 0).then(|| latencies.iter().sum::<f64>() / ok as f64),
            success_rate: (!h.window.is_empty()).then(|| ok as f64 / h.window.len() as f64),
            window_calls: h.window.len(),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            requests_served: h.counters.requests - h.counters.failures,
            probes: h.probes,
        }
    }
}

fn circuit_of(h: &State, now: Instant, open_for: Duration) -> Circuit {
    match h.opened_at {
        None => Circuit::Closed,
        Some(at) if now.saturating_duration_since(at) < open_for => Circuit::Open,
        Some(_) => Circuit::HalfOpen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HealthPolicy {
        HealthPolicy {
            window: 4,
            failure_threshold: 2,
            open_for: Duration::from_secs(10),
            decay_half_life: Duration::from_secs(10),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_circuit_opens_after_consecutive_failures_and_closes_on_a_success() {
        let h = EndpointHealth::new(policy());
        let err = UpstreamError::Status(503);
        let ms = Duration::from_millis(5);
        h.record(ms, Err(&err), Source::Request);
        assert_eq!(h.circuit(), Circuit::Closed, "one failure is not enough");
        h.record(ms, Err(&err), Source::Request);
        assert_eq!(h.circuit(), Circuit::Open);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(h.circuit(), Circuit::HalfOpen);
        // A failed trial opens it again at once.
        h.record(ms, Err(&err), Source::Probe);
        assert_eq!(h.circuit(), Circuit::Open);
        tokio::time::advance(Duration::from_secs(10)).await;
        h.record(ms, Ok(()), Source::Probe);
        assert_eq!(h.circuit(), Circuit::Closed);
        let d = h.detail();
        assert_eq!((d.window_calls, d.probes), (4, 2));
        assert_eq!(d.success_rate, Some(0.25));
        assert_eq!(h.snapshot().requests, 2, "probes are not client requests");
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_rolls_and_latency_decays_with_idle_time() {
        let h = EndpointHealth::new(policy());
        for ms in [100, 100, 100, 100, 20, 20, 20, 20] {
            h.record(Duration::from_millis(ms), Ok(()), Source::Request);
        }
        let v = h.view(Instant::now());
        assert_eq!(v.latency_ms, Some(20.0), "only the last 4 calls count");
        assert_eq!(v.success_rate, 1.0);
        tokio::time::advance(Duration::from_secs(10)).await;
        let v = h.view(Instant::now());
        assert_eq!(v.latency_ms, Some(10.0), "one half-life idle halves it");
        let guard = h.start();
        assert_eq!(h.view(Instant::now()).in_flight, 1);
        drop(guard);
        assert_eq!(h.view(Instant::now()).in_flight, 0);
    }
}
