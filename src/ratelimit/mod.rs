//! Rate limits (GCRA, all-or-nothing, one store round trip):
//! - unpaid requests (402 challenges) per client IP, when payments are on;
//! - requests per client IP and the provider's upstream budget, when payments are off;
//! - paid calls per payer wallet and the provider's upstream budget: checked by the paygate
//!   inside its payment reservation (same round trip), through [`RateLimits::payer`] and
//!   [`RateLimits::provider`].
//!
//! The shared store decides (Redis: one Lua script on the Redis clock, so every instance sees
//! one limit). When the store fails, limits fail **open** to a process-local
//! [`MemoryStore`] with the very same checks (each instance then enforces the limits on its
//! own) and the error is counted; the store is tried again after `store_retry_ms`.
//!
//! Refusals are `429` with `Retry-After` (whole seconds, rounded up) and the
//! `RateLimit-Limit` / `RateLimit-Remaining` / `RateLimit-Reset` / `RateLimit-Policy` headers
//! of draft-ietf-httpapi-ratelimit-headers-06 (also sent on allowed responses of the limited
//! routes), with the JSON error envelope.

pub mod client_ip;
mod layer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub use client_ip::{client_ip, ClientIp};
pub use layer::{rate_limit, LimitGate};

use crate::config::{LimitSpec, RateLimitsConfig};
use crate::error::ApiError;
use crate::exchange::{Exchange, LimitScope};
use crate::store::memory::MemoryStore;
use crate::store::{LimitCheck, LimitVerdict, Store};

/// `RateLimit-Limit`: requests in the window.
pub const RATELIMIT_LIMIT: &str = "ratelimit-limit";
/// `RateLimit-Remaining`: requests left right now.
pub const RATELIMIT_REMAINING: &str = "ratelimit-remaining";
/// `RateLimit-Reset`: seconds until the quota is back (full, or for a 429 until one request fits).
pub const RATELIMIT_RESET: &str = "ratelimit-reset";
/// `RateLimit-Policy`: `<burst>;w=<window seconds>`.
pub const RATELIMIT_POLICY: &str = "ratelimit-policy";

/// Longest window a derived (batch) check may get: ten years.
const MAX_PERIOD: Duration = Duration::from_secs(10 * 366 * 86_400);

/// The limit checks of one request, each with the scope that built it (so a refusal names its
/// limit without parsing a key).
#[derive(Debug, Clone, Default)]
pub struct Checks {
    checks: Vec<LimitCheck>,
    scopes: Vec<LimitScope>,
}

impl Checks {
    /// Adds `check` (when the limit is on) under `scope`.
    pub fn push(&mut self, scope: LimitScope, check: Option<LimitCheck>) {
        if let Some(check) = check {
            self.checks.push(check);
            self.scopes.push(scope);
        }
    }

    /// The checks, in order, as the store takes them.
    pub fn as_slice(&self) -> &[LimitCheck] {
        &self.checks
    }

    /// No limit applies.
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    fn get(&self, index: usize) -> Option<(LimitScope, &LimitCheck)> {
        Some((*self.scopes.get(index)?, self.checks.get(index)?))
    }
}

/// A refusal by a limit: `429` with `Retry-After`, the `RateLimit-*` headers and the JSON
/// envelope, and the refusing scope in the request record.
#[derive(Debug, Clone)]
pub struct TooMany {
    scope: LimitScope,
    wait_secs: u64,
    limit: Option<LimitCheck>,
}

impl TooMany {
    /// The refusing limit.
    pub fn scope(&self) -> LimitScope {
        self.scope
    }
}

impl IntoResponse for TooMany {
    fn into_response(self) -> Response {
        let wait = self.wait_secs;
        let (code, message) = match self.scope {
            LimitScope::Provider => (
                "provider_budget_exhausted",
                format!("the provider's request budget is used up; retry in {wait} s"),
            ),
            LimitScope::Payer => (
                "rate_limited",
                format!("too many paid calls from this wallet; retry in {wait} s"),
            ),
            LimitScope::Ip => (
                "rate_limited",
                format!("too many requests from this client; retry in {wait} s"),
            ),
        };
        let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message)
            .retry_after(wait)
            .into_response();
        if let Some(limit) = &self.limit {
            set_headers(response.headers_mut(), limit, 0, wait);
        }
        Exchange::of(&mut response).limited = Some(self.scope);
        response
    }
}

/// The limits, built once from `[rate_limits]` (`app.limits`).
#[derive(Debug)]
pub struct RateLimits {
    config: RateLimitsConfig,
    /// Decides while the shared store is failing.
    local: MemoryStore,
    /// Until when (µs since `epoch`) the local limiter decides without asking the store.
    local_until: AtomicU64,
    epoch: Instant,
}

impl RateLimits {
    /// From `[rate_limits]`.
    pub fn from_config(config: &RateLimitsConfig) -> Self {
        Self {
            config: config.clone(),
            local: MemoryStore::default(),
            local_until: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Whether any limit applies.
    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    fn check(&self, spec: &LimitSpec, key: String) -> Option<LimitCheck> {
        if !self.config.enabled {
            return None;
        }
        let (burst, period) = spec.active()?;
        Some(LimitCheck { key, burst, period })
    }

    /// The client address of a request (see [`client_ip`]).
    pub fn client_ip(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> ClientIp {
        client_ip(
            peer,
            headers,
            &self.config.trusted_proxies,
            self.config.ipv6_prefix_len,
        )
    }

    /// Unpaid requests (challenges) from `client`.
    pub fn challenge(&self, client: &ClientIp) -> Option<LimitCheck> {
        self.check(
            &self.config.challenge_per_ip,
            format!("rl:ip:{}", client.key()),
        )
    }

    /// Requests from `client` when payments are off.
    pub fn client(&self, client: &ClientIp) -> Option<LimitCheck> {
        self.check(&self.config.calls_per_ip, format!("rl:ip:{}", client.key()))
    }

    /// Paid calls by `payer` (a wallet address).
    pub fn payer(&self, payer: &str) -> Option<LimitCheck> {
        self.check(&self.config.calls_per_payer, format!("rl:payer:{payer}"))
    }

    /// One upstream call to `provider`.
    pub fn provider(&self, provider: &str) -> Option<LimitCheck> {
        self.provider_calls(provider, 1)
    }

    /// One upstream request to `provider` carrying `calls` calls (a batch), charged exactly
    /// `calls` calls against the budget.
    ///
    /// GCRA charges one emission interval per check, so a request of `n` calls is checked on
    /// the same key as `b' = max(1, burst / n)` requests of `n` calls each per
    /// `period × n × b' / burst`: the interval is exactly `n` single intervals and the window is
    /// at most the budget's. Admission is therefore a little stricter than for `n` single calls
    /// (never looser), the charge exact. A batch larger than the burst needs the whole budget
    /// free.
    pub fn provider_calls(&self, provider: &str, calls: usize) -> Option<LimitCheck> {
        let spec = self
            .config
            .providers
            .get(provider)
            .unwrap_or(&self.config.provider_default);
        let mut check = self.check(spec, format!("rl:provider:{provider}"))?;
        let calls = u32::try_from(calls.max(1)).unwrap_or(u32::MAX);
        if calls > 1 {
            let burst = (check.burst / calls).max(1);
            // calls × burst' ≤ max(calls, burst): no overflow. Capped so that the stores'
            // microsecond arithmetic stays far from u64::MAX whatever the config.
            check.period = check
                .period
                .checked_mul(calls * burst)
                .map_or(MAX_PERIOD, |p| p / check.burst)
                .min(MAX_PERIOD);
            check.burst = burst;
        }
        Some(check)
    }

    /// Checks `limits` on the shared store; on a store error, on the local limiter (fail open).
    pub async fn decide(&self, store: &dyn Store, limits: &[LimitCheck]) -> LimitVerdict {
        if limits.is_empty() {
            return LimitVerdict::Allowed {
                index: 0,
                remaining: u32::MAX,
                reset: Duration::ZERO,
            };
        }
        let now = self.epoch.elapsed().as_micros() as u64;
        if now >= self.local_until.load(Ordering::Relaxed) {
            match store.check_limits(limits).await {
                Ok(verdict) => return verdict,
                Err(e) => {
                    metrics::counter!("x402_rate_limit_store_errors_total").increment(1);
                    let retry = Duration::from_millis(self.config.store_retry_ms);
                    let until = now + retry.as_micros() as u64;
                    // Logged once per retry window, not once per request.
                    if self.local_until.swap(until, Ordering::Relaxed) <= now {
                        tracing::warn!(error = %e, retry_ms = self.config.store_retry_ms,
                            "rate limits: store failed, limiting locally (fail open)");
                    }
                }
            }
        }
        metrics::counter!("x402_rate_limit_local_checks_total").increment(1);
        match self.local.check_limits(limits).await {
            Ok(verdict) => verdict,
            // The memory store cannot fail; if it ever did, letting the request through is
            // the fail-open policy.
            Err(_) => LimitVerdict::Allowed {
                index: 0,
                remaining: u32::MAX,
                reset: Duration::ZERO,
            },
        }
    }

    /// The refusal by `verdict` over `checks` (the checks it was computed on).
    pub fn too_many(&self, verdict: &LimitVerdict, checks: &Checks) -> TooMany {
        let (index, retry_after) = match verdict {
            LimitVerdict::Limited { index, retry_after } => (*index, *retry_after),
            // Not a refusal: answer one anyway rather than let a caller's slip through.
            LimitVerdict::Allowed { index, .. } => (*index, Duration::from_secs(1)),
        };
        let (scope, limit) = match checks.get(index) {
            Some((scope, limit)) => (scope, Some(limit.clone())),
            None => (LimitScope::Ip, None),
        };
        TooMany {
            scope,
            wait_secs: whole_seconds(retry_after).max(1),
            limit,
        }
    }

    /// Adds the `RateLimit-*` headers of an allowed `verdict` to a response.
    pub fn annotate(&self, verdict: &LimitVerdict, checks: &Checks, headers: &mut HeaderMap) {
        if let LimitVerdict::Allowed {
            index,
            remaining,
            reset,
        } = verdict
        {
            if let Some((_, limit)) = checks.get(*index) {
                set_headers(headers, limit, *remaining, whole_seconds(*reset));
            }
        }
    }
}

fn set_headers(headers: &mut HeaderMap, limit: &LimitCheck, remaining: u32, reset: u64) {
    let mut put = |name: &'static str, value: HeaderValue| {
        headers.insert(HeaderName::from_static(name), value);
    };
    put(RATELIMIT_LIMIT, HeaderValue::from(limit.burst));
    put(
        RATELIMIT_REMAINING,
        HeaderValue::from(remaining.min(limit.burst)),
    );
    put(RATELIMIT_RESET, HeaderValue::from(reset));
    if let Ok(policy) = HeaderValue::from_str(&format!(
        "{};w={}",
        limit.burst,
        whole_seconds(limit.period)
    )) {
        put(RATELIMIT_POLICY, policy);
    }
}

/// Seconds, rounded up (a client that waits this long is never early).
fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(toml: &str) -> RateLimits {
        RateLimits::from_config(&toml::from_str(toml).unwrap())
    }

    #[test]
    fn keys_are_scoped() {
        let l = limits("");
        let ip = ClientIp::Addr("192.0.2.1".parse().unwrap());
        assert_eq!(l.challenge(&ip).unwrap().key, "rl:ip:192.0.2.1");
        assert_eq!(l.payer("Wallet1").unwrap().key, "rl:payer:Wallet1");
        assert_eq!(l.provider("alchemy").unwrap().key, "rl:provider:alchemy");
        let off = limits("enabled = false");
        assert!(off.challenge(&ip).is_none() && off.payer("w").is_none());
    }

    #[test]
    fn a_batch_costs_as_many_calls_as_it_carries() {
        let l = limits("providers = { p = { burst = 50, period_secs = 1 } }");
        let one = l.provider("p").unwrap();
        assert_eq!(one.emission_interval(), Duration::from_millis(20));
        let three = l.provider_calls("p", 3).unwrap();
        // Exactly three single calls, within the same window.
        assert_eq!(three.emission_interval(), one.emission_interval() * 3);
        assert!(three.period <= Duration::from_secs(1));
        let huge = l.provider_calls("p", 100).unwrap();
        assert_eq!(huge.burst, 1);
        assert_eq!(huge.emission_interval(), one.emission_interval() * 100);
    }

    #[tokio::test]
    async fn batches_drain_the_provider_budget_at_their_size() {
        let l = limits("providers = { p = { burst = 10, period_secs = 60 } }");
        let store = MemoryStore::default();
        // 10 calls of budget: three batches of 3 fit (9 calls), a fourth does not.
        for _ in 0..3 {
            let c = [l.provider_calls("p", 3).unwrap()];
            assert!(l.decide(&store, &c).await.is_allowed());
        }
        let c = [l.provider_calls("p", 3).unwrap()];
        assert!(!l.decide(&store, &c).await.is_allowed());
        // Charged exactly: the tenth call fits, an eleventh does not.
        let one = [l.provider("p").unwrap()];
        assert!(l.decide(&store, &one).await.is_allowed());
        assert!(!l.decide(&store, &one).await.is_allowed());
    }

    #[test]
    fn too_many_carries_retry_after_and_ratelimit_headers() {
        let l = limits("");
        let mut checks = Checks::default();
        checks.push(
            LimitScope::Ip,
            Some(LimitCheck {
                key: "rl:ip:192.0.2.1".into(),
                burst: 5,
                period: Duration::from_secs(60),
            }),
        );
        let verdict = LimitVerdict::Limited {
            index: 0,
            retry_after: Duration::from_millis(11_200),
        };
        let r = l.too_many(&verdict, &checks).into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        let h = r.headers();
        assert_eq!(h["retry-after"], "12");
        assert_eq!(h[RATELIMIT_LIMIT], "5");
        assert_eq!(h[RATELIMIT_REMAINING], "0");
        assert_eq!(h[RATELIMIT_RESET], "12");
        assert_eq!(h[RATELIMIT_POLICY], "5;w=60");
        assert_eq!(
            Exchange::get(&r).and_then(|e| e.limited),
            Some(LimitScope::Ip)
        );
        assert_eq!(whole_seconds(Duration::from_secs(3)), 3);
    }
}
