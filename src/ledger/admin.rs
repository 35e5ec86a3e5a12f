//! The operator's view of the ledger, behind the admin token (mounted by `crate::admin`):
//!
//! - `GET /admin/payments`: payments filtered (payer, state, route, time range) and paged,
//!   newest first, as JSON or CSV (`format=csv`);
//! - `GET /admin/payments/{key}`: one payment with every event, oldest first;
//! - `GET /admin/payers/{payer}/statement`: a payer's totals per state and recent payments;
//! - `GET /admin/revenue`: settled revenue per UTC day and route, as JSON or CSV.
//!
//! Everything is read from the ledger (the durable record), never from the shared store.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{now_ms, Ledger, LedgerError, PaymentFilter, PaymentRow, RevenueRow};
use crate::error::ApiError;

/// How an answer is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Format {
    /// `application/json` (default).
    #[default]
    Json,
    /// `text/csv`, one row per line, a header line first.
    Csv,
}

/// `GET /admin/payments` query: the filter's fields (see [`PaymentFilter`]) plus the format.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PaymentsQuery {
    payer: Option<String>,
    state: Option<super::PaymentState>,
    route: Option<String>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    limit: Option<u32>,
    offset: Option<u32>,
    #[serde(default)]
    format: Format,
}

impl PaymentsQuery {
    fn filter(self) -> (PaymentFilter, Format) {
        let filter = PaymentFilter {
            payer: self.payer,
            state: self.state,
            route: self.route,
            from_ms: self.from_ms,
            to_ms: self.to_ms,
            limit: self.limit,
            offset: self.offset,
        };
        (filter, self.format)
    }
}

/// `GET /admin/revenue` query.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevenueQuery {
    /// Settled at or after (Unix ms; default: 30 days ago).
    from_ms: Option<i64>,
    /// Settled before (Unix ms; default: now).
    to_ms: Option<i64>,
    #[serde(default)]
    format: Format,
}

const DAY_MS: i64 = 86_400_000;

pub(crate) async fn list_payments(
    State(ledger): State<Arc<Ledger>>,
    query: Result<Query<PaymentsQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return invalid_query(e),
    };
    let (filter, format) = query.filter();
    let rows = match ledger.payments(&filter).await {
        Ok(rows) => rows,
        Err(e) => return unavailable(e),
    };
    match format {
        Format::Json => no_store(
            Json(json!({
                "payments": rows,
                "limit": filter.limit.unwrap_or(100).clamp(1, super::MAX_PAGE),
                "offset": filter.offset.unwrap_or(0),
            }))
            .into_response(),
        ),
        Format::Csv => csv(payments_csv(&rows), "payments.csv"),
    }
}

pub(crate) async fn get_payment(
    State(ledger): State<Arc<Ledger>>,
    Path(key): Path<String>,
) -> Response {
    if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_payment_key",
            "a payment key is 64 hex characters (SHA-256 of the transaction message)",
        )
        .into_response();
    }
    let key = key.to_ascii_lowercase();
    let row = match ledger.payment_by_hex(&key).await {
        Ok(Some(row)) => row,
        Ok(None) => {
            return ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such payment")
                .into_response()
        }
        Err(e) => return unavailable(e),
    };
    match ledger.events(&key).await {
        Ok(events) => no_store(Json(json!({ "payment": row, "events": events })).into_response()),
        Err(e) => unavailable(e),
    }
}

pub(crate) async fn payer_statement(
    State(ledger): State<Arc<Ledger>>,
    Path(payer): Path<String>,
) -> Response {
    if payer.is_empty() || payer.len() > 64 || !payer.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_payer",
            "a payer is a base58 wallet address",
        )
        .into_response();
    }
    let statement = match ledger.statement(&payer).await {
        Ok(s) => s,
        Err(e) => return unavailable(e),
    };
    let recent = PaymentFilter {
        payer: Some(payer),
        limit: Some(100),
        ..Default::default()
    };
    match ledger.payments(&recent).await {
        Ok(rows) => no_store(
            Json(json!({
                "payer": statement.payer,
                "totals": statement.totals,
                "recent": rows,
            }))
            .into_response(),
        ),
        Err(e) => unavailable(e),
    }
}

pub(crate) async fn revenue(
    State(ledger): State<Arc<Ledger>>,
    query: Result<Query<RevenueQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return invalid_query(e),
    };
    let to = query.to_ms.unwrap_or_else(|| now_ms() + 1);
    let from = query.from_ms.unwrap_or(to - 30 * DAY_MS);
    let rows = match ledger.revenue(from, to).await {
        Ok(rows) => rows,
        Err(e) => return unavailable(e),
    };
    match query.format {
        Format::Json => {
            let total: i64 = rows.iter().map(|r| r.amount).sum();
            let payments: i64 = rows.iter().map(|r| r.payments).sum();
            let days: Vec<_> = rows
                .iter()
                .map(|r| {
                    json!({
                        "day": day_string(r.day),
                        "route": r.route,
                        "payments": r.payments,
                        "amount": r.amount,
                    })
                })
                .collect();
            no_store(
                Json(json!({
                    "from_ms": from,
                    "to_ms": to,
                    "rows": days,
                    "totals": { "payments": payments, "amount": total },
                }))
                .into_response(),
            )
        }
        Format::Csv => csv(revenue_csv(&rows), "revenue.csv"),
    }
}

/// `GET /admin/credits` query: a page of balances.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageQuery {
    limit: Option<u32>,
    offset: Option<u32>,
}

/// `GET /admin/credits`: every wallet's credit balance, largest first.
pub(crate) async fn credit_accounts(
    State(ledger): State<Arc<Ledger>>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return invalid_query(e),
    };
    let limit = query.limit.unwrap_or(100);
    match ledger
        .credit_accounts(limit, query.offset.unwrap_or(0))
        .await
    {
        Ok(accounts) => no_store(Json(json!({ "accounts": accounts })).into_response()),
        Err(e) => unavailable(e),
    }
}

/// `GET /admin/credits/{wallet}`: a wallet's balance and its movements, newest first.
pub(crate) async fn credit_wallet(
    State(ledger): State<Arc<Ledger>>,
    Path(wallet): Path<String>,
) -> Response {
    if wallet.is_empty() || wallet.len() > 64 || !wallet.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_wallet",
            "a wallet is a base58 address",
        )
        .into_response();
    }
    let balance = match ledger.credit_balance(&wallet).await {
        Ok(balance) => balance,
        Err(e) => return unavailable(e),
    };
    match ledger.credit_movements(&wallet, 1_000).await {
        Ok(movements) => no_store(
            Json(json!({ "wallet": wallet, "balance": balance, "movements": movements }))
                .into_response(),
        ),
        Err(e) => unavailable(e),
    }
}

fn invalid_query(e: QueryRejection) -> Response {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()).into_response()
}

fn unavailable(e: LedgerError) -> Response {
    tracing::warn!(error = %e, "admin: ledger unavailable");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "ledger_unavailable",
        "the payment ledger is unavailable; retry shortly",
    )
    .retry_after(5)
    .into_response()
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn csv(body: String, name: &'static str) -> Response {
    let mut response = no_store(body.into_response());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// A CSV field: quoted when it holds a separator, a quote or a line break (RFC 4180); a
/// leading `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet never runs it.
fn field(out: &mut String, value: &str) {
    let value = match value.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@') => format!("'{value}"),
        _ => value.to_string(),
    };
    if value.contains([',', '"', '\n', '\r']) {
        let _ = write!(out, "\"{}\"", value.replace('"', "\"\""));
    } else {
        out.push_str(&value);
    }
}

fn line(out: &mut String, fields: &[&str]) {
    for (i, value) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, value);
    }
    out.push_str("\r\n");
}

fn payments_csv(rows: &[PaymentRow]) -> String {
    let mut out = String::new();
    line(
        &mut out,
        &[
            "payment_key",
            "state",
            "payer",
            "pay_to",
            "asset",
            "network",
            "amount",
            "route",
            "signature",
            "reason",
            "created_ms",
            "final_ms",
        ],
    );
    for r in rows {
        let amount = r.amount.to_string();
        let created = r.created_ms.to_string();
        let final_ms = r.final_ms.map(|t| t.to_string()).unwrap_or_default();
        line(
            &mut out,
            &[
                &r.payment_key,
                r.state.as_str(),
                &r.payer,
                &r.pay_to,
                &r.asset,
                &r.network,
                &amount,
                &r.route,
                r.signature.as_deref().unwrap_or(""),
                r.reason.as_deref().unwrap_or(""),
                &created,
                &final_ms,
            ],
        );
    }
    out
}

fn revenue_csv(rows: &[RevenueRow]) -> String {
    let mut out = String::new();
    line(&mut out, &["day", "route", "payments", "amount"]);
    for r in rows {
        let (payments, amount) = (r.payments.to_string(), r.amount.to_string());
        line(
            &mut out,
            &[&day_string(r.day), &r.route, &payments, &amount],
        );
    }
    out
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01, UTC).
fn day_string(days: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(day_string(0), "1970-01-01");
        assert_eq!(day_string(20_454), "2026-01-01");
        assert_eq!(day_string(11_016), "2000-02-29");
    }

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        let mut out = String::new();
        line(&mut out, &["a,b", "say \"hi\"", "=SUM(A1)", "plain"]);
        assert_eq!(out, "\"a,b\",\"say \"\"hi\"\"\",'=SUM(A1),plain\r\n");
    }
}
