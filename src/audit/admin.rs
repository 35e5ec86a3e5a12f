//! `GET /admin/audit?kind=&limit=&offset=`: the chain audit's findings, newest first, with
//! the count of each kind; behind the admin token (mounted by `crate::admin` beside the
//! ledger's other views).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::ledger::{FindingFilter, FindingKind, Ledger, LedgerError};

/// The findings page and every kind's count.
pub(crate) async fn get_audit(
    State(ledger): State<Arc<Ledger>>,
    query: Result<Query<FindingFilter>, QueryRejection>,
) -> Response {
    let filter = match query {
        Ok(Query(filter)) => filter,
        Err(rejection) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!(
                    "{}; accepted: kind ({}), limit, offset",
                    rejection.body_text(),
                    FindingKind::ALL.map(FindingKind::as_str).join(", ")
                ),
            )
            .into_response()
        }
    };
    let read = async {
        Ok::<_, LedgerError>((
            ledger.findings(&filter).await?,
            ledger.finding_counts().await?,
        ))
    };
    match read.await {
        Ok((findings, counts)) => {
            let counts: Map<String, Value> = FindingKind::ALL
                .iter()
                .map(|kind| {
                    let n = counts
                        .iter()
                        .find(|(k, _)| k == kind)
                        .map_or(0, |(_, n)| *n);
                    (kind.as_str().to_owned(), json!(n))
                })
                .collect();
            let mut response =
                Json(json!({"findings": findings, "counts": counts})).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => {
            tracing::warn!(error = %e, "audit findings: ledger unavailable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ledger_unavailable",
                "the payment ledger is unavailable; retry shortly",
            )
            .retry_after(5)
            .into_response()
        }
    }
}
