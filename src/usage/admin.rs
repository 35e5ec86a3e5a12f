//! `GET /admin/usage?day=YYYY-MM-DD` (default: today, UTC), behind the admin token.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use std::sync::Arc;

use super::{Day, Usage};
use crate::error::ApiError;
use crate::store::Store;

/// What the report reads: the counters and the store they are flushed to.
#[derive(Debug, Clone)]
pub struct UsageReport {
    /// This instance's counters.
    pub usage: Arc<Usage>,
    /// The shared store.
    pub store: Arc<dyn Store>,
}

/// The day's counters as JSON rows, current to this request (this instance's unflushed counts
/// included).
pub async fn get_usage(State(app): State<UsageReport>, RawQuery(query): RawQuery) -> Response {
    let day = match parse_query(query.as_deref().unwrap_or("")) {
        Ok(day) => day,
        Err(message) => {
            return ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message).into_response()
        }
    };
    match app.usage.report(app.store.as_ref(), day).await {
        Ok(rows) => {
            let requests: i64 = rows.iter().map(|r| r.requests).sum();
            let revenue: i64 = rows.iter().map(|r| r.revenue_atomic).sum();
            let mut response = Json(json!({
                "day": day.to_string(),
                "store": app.store.backend(),
                "rows": rows,
                "totals": { "requests": requests, "revenue_atomic": revenue },
            }))
            .into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => {
            tracing::warn!(error = %e, "usage report: store unavailable");
            let mut response = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the usage store is unavailable; retry shortly",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            response
        }
    }
}

/// `day=YYYY-MM-DD`, nothing else.
fn parse_query(query: &str) -> Result<Day, String> {
    let mut day = None;
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "day" if day.is_none() => {
                day =
                    Some(Day::parse(&value).ok_or_else(|| {
                        format!("day must be a date as YYYY-MM-DD, not {value:?}")
                    })?);
            }
            "day" => return Err("day is given twice".into()),
            other => {
                return Err(format!(
                    "unknown query parameter {other:?}; only day is accepted"
                ))
            }
        }
    }
    Ok(day.unwrap_or_else(Day::today))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_strict() {
        assert_eq!(parse_query("").unwrap(), Day::today());
        assert_eq!(
            parse_query("day=2025-01-31").unwrap(),
            Day::parse("2025-01-31").unwrap()
        );
        assert!(parse_query("day=2025-02-31").is_err());
        assert!(parse_query("day=2025-01-01&day=2025-01-02").is_err());
        assert!(parse_query("days=2025-01-01").is_err());
    }
}
