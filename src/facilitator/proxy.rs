//! The high-availability facilitator proxy: `/facilitator/supported`, `/verify`, `/settle`
//! forwarded to the gateway's facilitator set (the in-process one and the remote ones, the same
//! members the paygate uses) through the same failover loop ([`FailoverFacilitator::run_in`]),
//! plus `/facilitator/health` and `/facilitator/status`.
//!
//! - Target choice: a weighted random order of the healthy targets (weights from config).
//! - Health: checked on demand (a target's `/supported`), the result reused for
//!   `health_cache_ms`; a target that fails a proxied call is marked unhealthy at once. The
//!   design this follows checked every target on every request: that doubles the facilitator
//!   traffic and puts a round trip before each call, while a few seconds of staleness is
//!   covered by failover anyway.
//! - Retries with backoff only where a retry cannot double-charge: `/supported` and `/verify`
//!   move on after transport errors and 5xx; `/settle` moves on only when nothing reached the
//!   target (connection refused), never after a timeout or a reset, since the first target may
//!   have broadcast the payment. A naive passthrough that re-sends a settle to another
//!   facilitator can submit one signed payment twice.
//! - Every answer carries `X-Proxy-Target` (the target's name), `X-Proxy-Attempt` (target
//!   calls made) and `X-Proxy-Timestamp` (unix ms); 503 when no target is healthy, 502 when
//!   every attempt failed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use rand::Rng;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::time::Instant;

use super::failover::{Call, FailoverFacilitator, Traced};
use super::http::{parse_body, MAX_BODY_BYTES};
use super::{Facilitator, FacilitatorError};
use crate::config::{FacilitatorProxyConfig, ProxyAccess, Secret};
use crate::error::ApiError;
use crate::routes::{
    PROXY_HEALTH_ROUTE, PROXY_SETTLE_ROUTE, PROXY_STATUS_ROUTE, PROXY_SUPPORTED_ROUTE,
    PROXY_VERIFY_ROUTE,
};

/// `X-Proxy-Target`.
pub(crate) const TARGET_HEADER: &str = "x-proxy-target";
/// `X-Proxy-Attempt`.
pub(crate) const ATTEMPT_HEADER: &str = "x-proxy-attempt";
/// `X-Proxy-Timestamp`.
pub(crate) const TIMESTAMP_HEADER: &str = "x-proxy-timestamp";

#[derive(Debug, Clone, Default)]
struct Health {
    checked_at: Option<Instant>,
    healthy: bool,
    last_error: Option<String>,
}

/// The proxy: the failover set, each target's weight and cached health.
#[derive(Debug)]
pub(crate) struct FacilitatorProxy {
    set: FailoverFacilitator,
    weights: Vec<u32>,
    health: Vec<Mutex<Health>>,
    cache_for: Duration,
    check_timeout: Duration,
}

impl FacilitatorProxy {
    /// Over `members` (the paygate's set), as `config` says.
    pub(crate) fn new(members: Vec<Arc<dyn Facilitator>>, config: &FacilitatorProxyConfig) -> Self {
        let weights = members
            .iter()
            .map(|m| config.weights.get(m.name()).copied().unwrap_or(1))
            .collect();
        let health = members.iter().map(|_| Mutex::default()).collect();
        Self {
            set: FailoverFacilitator::new(members, config.retry.clone()),
            weights,
            health,
            cache_for: Duration::from_millis(config.health_cache_ms),
            check_timeout: Duration::from_millis(config.health_timeout_ms),
        }
    }

    fn name(&self, index: usize) -> &str {
        self.set.members()[index].name()
    }

    /// Every target's health, checking (concurrently) those whose cached result is stale.
    async fn healthy(&self) -> Vec<bool> {
        let now = Instant::now();
        let stale: Vec<usize> = (0..self.health.len())
            .filter(|&i| {
                self.weights[i] > 0
                    && self.health[i]
                        .lock()
                        .checked_at
                        .is_none_or(|at| now.saturating_duration_since(at) >= self.cache_for)
            })
            .collect();
        let checks = stale.iter().map(|&i| async move {
            let member = &self.set.members()[i];
            let outcome = match tokio::time::timeout(self.check_timeout, member.supported()).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!(
                    "no /supported answer within {} ms",
                    self.check_timeout.as_millis()
                )),
            };
            let mut h = self.health[i].lock();
            h.checked_at = Some(Instant::now());
            h.healthy = outcome.is_ok();
            h.last_error = outcome.err();
        });
        futures::future::join_all(checks).await;
        (0..self.health.len())
            .map(|i| self.weights[i] > 0 && self.health[i].lock().healthy)
            .collect()
    }

    /// The healthy targets in a weighted random order (each next one drawn by weight among
    /// those left).
    fn order(&self, healthy: &[bool]) -> Vec<usize> {
        let mut left: Vec<usize> = (0..healthy.len()).filter(|&i| healthy[i]).collect();
        let mut order = Vec::with_capacity(left.len());
        let mut rng = rand::thread_rng();
        while !left.is_empty() {
            let total: u64 = left.iter().map(|&i| u64::from(self.weights[i])).sum();
            let mut pick = rng.gen_range(0..total.max(1));
            let mut chosen = 0;
            for (k, &i) in left.iter().enumerate() {
                let w = u64::from(self.weights[i]);
                if pick < w {
                    chosen = k;
                    break;
                }
                pick -= w;
            }
            order.push(left.remove(chosen));
        }
        order
    }

    fn mark_failed(&self, failed: &[usize], error: &str) {
        for &i in failed {
            let mut h = self.health[i].lock();
            h.healthy = false;
            h.checked_at = Some(Instant::now());
            h.last_error = Some(error.to_owned());
        }
    }

    /// Runs `op` over the healthy targets; the answer with the `X-Proxy-*` headers.
    async fn forward<'r, T, F>(&'r self, call: Call, op: F) -> Response
    where
        T: serde::Serialize,
        F: FnMut(
            &'r dyn Facilitator,
        ) -> futures::future::BoxFuture<'r, Result<T, FacilitatorError>>,
    {
        let healthy = self.healthy().await;
        let order = self.order(&healthy);
        if order.is_empty() {
            let response = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_healthy_target",
                "no facilitator target is healthy",
            )
            .retry_after(1)
            .into_response();
            return self.stamp(response, None, 0);
        }
        let Traced {
            result,
            target,
            attempts,
            failed,
        } = self.set.run_in(call, &order, op).await;
        // A target that failed (the call moving on or not) is unhealthy until rechecked.
        let mut unhealthy = failed;
        if let (Err(e), Some(t)) = (&result, target) {
            if e.is_retryable() && !unhealthy.contains(&t) {
                unhealthy.push(t);
            }
        }
        if let Some(e) = result.as_ref().err() {
            self.mark_failed(&unhealthy, &e.to_string());
        } else {
            self.mark_failed(&unhealthy, "failed a proxied call");
        }
        let response = match result {
            Ok(answer) => Json(answer).into_response(),
            Err(e) => {
                let unknown = call == Call::Settle && e.maybe_sent();
                let message = if unknown {
                    format!("{e}; the settlement may have been broadcast: it is not re-sent")
                } else {
                    format!("every attempt failed; last: {e}")
                };
                ApiError::new(StatusCode::BAD_GATEWAY, "facilitator_failed", message)
                    .into_response()
            }
        };
        self.stamp(response, target, attempts)
    }

    fn stamp(&self, mut response: Response, target: Option<usize>, attempts: u32) -> Response {
        let headers = response.headers_mut();
        if let Some(name) = target.and_then(|i| HeaderValue::from_str(self.name(i)).ok()) {
            headers.insert(TARGET_HEADER, name);
        }
        headers.insert(ATTEMPT_HEADER, HeaderValue::from(attempts));
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        headers.insert(TIMESTAMP_HEADER, HeaderValue::from(now_ms));
        response
    }
}

/// The access rule: `None` = open; else the SHA-256 of the bearer token (compared in constant
/// time, so neither its bytes nor its length leak).
#[derive(Clone)]
struct Access {
    token: Option<[u8; 32]>,
}

impl Access {
    fn allows(&self, headers: &axum::http::HeaderMap) -> bool {
        let Some(expected) = self.token else {
            return true;
        };
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, token)| {
                scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()
            })
            .map(|(_, token)| token.trim());
        let Some(given) = given else {
            return false;
        };
        let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        bool::from(given.ct_eq(&expected))
    }
}

/// The proxy's routes, behind its access rule.
pub(crate) fn routes(
    proxy: Arc<FacilitatorProxy>,
    access: ProxyAccess,
    token: Option<&Secret>,
) -> Router {
    let access = Access {
        token: match access {
            ProxyAccess::Open => None,
            // Config loading refuses `token` access without a token; an empty one refuses all.
            ProxyAccess::Token => {
                Some(Sha256::digest(token.unwrap_or(&Secret::new("")).expose().as_bytes()).into())
            }
        },
    };
    Router::new()
        .route(PROXY_SUPPORTED_ROUTE, get(supported))
        .route(PROXY_VERIFY_ROUTE, post(verify))
        .route(PROXY_SETTLE_ROUTE, post(settle))
        .route(PROXY_HEALTH_ROUTE, get(health))
        .route(PROXY_STATUS_ROUTE, get(status))
        .with_state(proxy)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(from_fn_with_state(access, require_access))
}

async fn require_access(State(access): State<Access>, request: Request, next: Next) -> Response {
    if access.allows(request.headers()) {
        return next.run(request).await;
    }
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or wrong bearer token",
    )
    .into_response()
}

async fn supported(State(proxy): State<Arc<FacilitatorProxy>>) -> Response {
    proxy
        .forward(Call::Supported, |f| Box::pin(f.supported()))
        .await
}

async fn verify(
    State(proxy): State<Arc<FacilitatorProxy>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = match parse_body(body) {
        Ok(Ok(r)) => r,
        Ok(Err(refused)) => return Json(refused.verify_answer()).into_response(),
        Err(e) => return e.into_response(),
    };
    proxy
        .forward(Call::Verify, |f| Box::pin(f.verify(&request)))
        .await
}

async fn settle(
    State(proxy): State<Arc<FacilitatorProxy>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = match parse_body(body) {
        Ok(Ok(r)) => r,
        Ok(Err(refused)) => return Json(refused.settle_answer()).into_response(),
        Err(e) => return e.into_response(),
    };
    // On its own task: a caller that disconnects does not cancel a settlement.
    let task = tokio::spawn(async move {
        proxy
            .forward(Call::Settle, |f| Box::pin(f.settle(&request)))
            .await
    });
    match task.await {
        Ok(response) => response,
        Err(e) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "facilitator_failed",
            format!("settlement task failed: {e}"),
        )
        .into_response(),
    }
}

async fn health(State(proxy): State<Arc<FacilitatorProxy>>) -> Response {
    let healthy = proxy.healthy().await;
    let count = healthy.iter().filter(|h| **h).count();
    let status = if count > 0 {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if count > 0 { "ok" } else { "unavailable" },
        "healthy": count,
        "targets": healthy.len(),
    });
    proxy.stamp((status, Json(body)).into_response(), None, 0)
}

async fn status(State(proxy): State<Arc<FacilitatorProxy>>) -> Response {
    let healthy = proxy.healthy().await;
    let now = Instant::now();
    let targets: Vec<_> = healthy
        .iter()
        .enumerate()
        .map(|(i, ok)| {
            let h = proxy.health[i].lock().clone();
            let mut t = BTreeMap::new();
            t.insert("name", json!(proxy.name(i)));
            t.insert("healthy", json!(ok));
            t.insert("weight", json!(proxy.weights[i]));
            t.insert(
                "checked_ms_ago",
                json!(h
                    .checked_at
                    .map(|at| now.saturating_duration_since(at).as_millis() as u64)),
            );
            t.insert("last_error", json!(h.last_error));
            t
        })
        .collect();
    proxy.stamp(Json(json!({ "targets": targets })).into_response(), None, 0)
}
