//! Prometheus metrics: one process-wide recorder (`metrics` facade +
//! `metrics-exporter-prometheus`, no listener of its own), rendered on `GET /metrics`.
//!
//! Families (all prefixed `x402_`):
//! - `http_request_duration_seconds{route,method,status}` histogram, every request;
//! - `payments_total{outcome,reason}` verify/settle outcomes from the request record's
//!   payment part; `payment_duplicates_total{reason}` (409 on a payment already in flight
//!   or used); `revenue_atomic_total` settled amounts in atomic units;
//! - `rate_limited_total{scope}` (429s: `ip`, `payer`, `provider`),
//!   `rate_limit_store_errors_total`, `rate_limit_local_checks_total` (fail-open decisions);
//! - `usage_unflushed` (gauge), `usage_flush_errors_total`, `usage_dropped_total`;
//! - emitted by the store and the paygate's reconciler: `store_errors_total{kind}`,
//!   `settlements_pending`, `ledger_payments{state}`, `value_pending_settlement_atomic`
//!   (gauges);
//! - the in-process facilitator's fee payers: `fee_payer_fees_lamports_total{fee_payer,network}`,
//!   `fee_payer_balance_lamports{fee_payer,network}` (gauge, polled);
//! - the chain audit: `audit_findings_total{kind}` (new findings), `audit_findings{kind}` and
//!   `audit_last_pass_timestamp_seconds` (gauges).

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use parking_lot::Mutex;

use crate::error::ApiError;

/// The latency histogram's name.
pub(crate) const REQUEST_DURATION: &str = "x402_http_request_duration_seconds";

/// Latency buckets, seconds: loopback hops to slow upstreams and settlements.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Distinct `reason` label values kept; later new ones become `other` (label cardinality must
/// not grow with what a remote facilitator says).
const MAX_REASONS: usize = 64;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once (later calls return the same handle). `None` when
/// another recorder was installed first (an embedding program's own).
pub(crate) fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.into()), BUCKETS)
                .map(|b| b.build_recorder());
            let recorder = match recorder {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "metrics recorder not built");
                    return None;
                }
            };
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics is unavailable");
                return None;
            }
            describe();
            // Histogram samples are folded into buckets on upkeep; without a listener of its
            // own the recorder relies on us for it. A thread, because the recorder outlives
            // any one runtime (tests build many).
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "metrics upkeep thread not started; /metrics does it");
            }
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "HTTP request latency by route template, method and status"
    );
    describe_counter!(
        "x402_payments_total",
        "Paygate outcomes (challenge, settled, refused, settle_failed...) by reason"
    );
    describe_counter!(
        "x402_payment_duplicates_total",
        "Requests refused because their payment was in flight or already used"
    );
    describe_counter!(
        "x402_revenue_atomic_total",
        "Settled amounts, atomic units of the payment asset"
    );
    describe_counter!(
        "x402_rate_limited_total",
        "Requests refused by a rate limit, by scope (ip, payer, provider)"
    );
    describe_counter!(
        "x402_rate_limit_store_errors_total",
        "Rate-limit checks the shared store failed (then decided locally)"
    );
    describe_counter!(
        "x402_rate_limit_local_checks_total",
        "Rate-limit checks decided by the process-local limiter (fail open)"
    );
    describe_counter!("x402_store_errors_total", "Failed shared-store calls");
    describe_gauge!(
        "x402_settlements_pending",
        "Settlements whose outcome is not known yet"
    );
    describe_gauge!(
        "x402_ledger_payments",
        "Payments in the ledger not final yet, by state (set by the reconciler)"
    );
    describe_gauge!(
        "x402_value_pending_settlement_atomic",
        "Sum of the payments submitted for settlement and not final yet, atomic units"
    );
    describe_counter!(
        "x402_fee_payer_fees_lamports_total",
        "Lamports the in-process facilitator's fee payers paid for settlements that landed"
    );
    describe_gauge!(
        "x402_fee_payer_balance_lamports",
        "Lamports each fee payer holds, as last polled ([facilitator] balance_poll_secs)"
    );
    describe_counter!(
        "x402_audit_findings_total",
        "Chain audit findings recorded by this process, by kind"
    );
    describe_gauge!(
        "x402_audit_findings",
        "Chain audit findings in the ledger, by kind (as of the last pass)"
    );
    describe_gauge!(
        "x402_audit_last_pass_timestamp_seconds",
        "When this process last finished a chain audit pass (Unix seconds)"
    );
    describe_gauge!(
        "x402_usage_unflushed",
        "Usage counters not yet written to the store"
    );
    describe_counter!(
        "x402_usage_flush_errors_total",
        "Usage flushes the store refused (counts kept)"
    );
    describe_counter!(
        "x402_usage_dropped_total",
        "Usage counters dropped because too many were unflushed"
    );
}

/// `GET /metrics`: the Prometheus text format.
pub(crate) async fn get_metrics() -> Response {
    match install() {
        Some(handle) => {
            let mut response = handle.render().into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        None => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics_unavailable",
            "another metrics recorder owns this process",
        )
        .into_response(),
    }
}

/// The route template as a label: our own route constants are `'static` (no copy per request);
/// any other matched path (a route added by an embedding program) is copied.
pub(super) fn route_label(matched: Option<&str>) -> metrics::SharedString {
    let Some(path) = matched else {
        return metrics::SharedString::const_str("unmatched");
    };
    let tokens = std::iter::once(&crate::routes::TOKENS_ROUTE);
    match crate::routes::ROUTES
        .iter()
        .chain(tokens)
        .find(|r| **r == path)
    {
        Some(route) => metrics::SharedString::const_str(route),
        None => metrics::SharedString::from_owned(path.to_owned()),
    }
}

/// The status code as a label, without formatting the common ones per request.
pub(super) fn status_label(status: StatusCode) -> metrics::SharedString {
    let common = match status.as_u16() {
        200 => "200",
        400 => "400",
        401 => "401",
        402 => "402",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        _ => return metrics::SharedString::from_owned(status.as_u16().to_string()),
    };
    metrics::SharedString::const_str(common)
}

/// Known HTTP methods by name; anything else (clients may send any token) is `other`.
pub(super) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// A reason as a bounded label: its leading snake_case code (`invalid_exact_svm_…: detail` →
/// `invalid_exact_svm_…`), `none`, or `other`.
pub(super) fn reason_label(reason: Option<&str>) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let Some(reason) = reason else {
        return "none".into();
    };
    let code = reason
        .split(|c: char| c == ':' || c.is_whitespace())
        .next()
        .unwrap_or("");
    let valid = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return "other".into();
    }
    let mut seen = SEEN.get_or_init(Default::default).lock();
    if seen.contains(code) || seen.len() < MAX_REASONS {
        seen.insert(code.to_owned());
        code.to_owned()
    } else {
        "other".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_become_bounded_codes() {
        assert_eq!(reason_label(None), "none");
        assert_eq!(
            reason_label(Some("invalid_exact_svm_payload_amount_mismatch: paid 1")),
            "invalid_exact_svm_payload_amount_mismatch"
        );
        assert_eq!(
            reason_label(Some("payment_in_progress")),
            "payment_in_progress"
        );
        assert_eq!(
            reason_label(Some("No matching payment requirements")),
            "other"
        );
        assert_eq!(reason_label(Some(&"a".repeat(65))), "other");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
