//! The handler that calls the upstream with a parsed [`RpcRequest`] and shapes the answer.
//!
//! Single calls are forwarded with the client's id and the provider's body is returned
//! verbatim. Batches are forwarded with the gateway's own ids (the element index), so a client
//! cannot confuse the matching with duplicate ids, and the answers are put back in the client's
//! order with the client's ids. Invalid elements answer themselves and notifications get nothing.
//!
//! Failover lives here, inside the forwarding step: the paygate around it verified the payment
//! once and settles only after this handler returns a success, so a call that needed two
//! providers is still paid once, and never settled after a failure.

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::{ProxyError, RpcRequest, RpcRoutes};
use crate::exchange::{Exchange, UpstreamOutcome};
use crate::jsonrpc::{codes, Body, Call, Element, ErrorObject};
use crate::routing;
use crate::upstream::{Circuit, Source, UpstreamError};

/// One element of a provider's answer, borrowed from its body.
#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(default)]
    id: Value,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

/// Handler for both RPC routes.
pub(crate) async fn forward(
    State(app): State<Arc<RpcRoutes>>,
    Extension(rpc): Extension<Arc<RpcRequest>>,
) -> Response {
    let (mut response, outcome, served) = match &rpc.body {
        Body::Single(Element::Call(call)) => forward_single(&app, &rpc, call).await,
        Body::Single(Element::Invalid { id, error }) => (
            (
                StatusCode::BAD_REQUEST,
                axum::Json(error.clone().into_response(id)),
            )
                .into_response(),
            UpstreamOutcome::NotCalled,
            None,
        ),
        Body::Batch(items) => forward_batch(&app, &rpc, items).await,
    };
    if let Some(served) = served {
        let headers = response.headers_mut();
        if let Ok(name) = HeaderValue::from_str(&served.provider) {
            headers.insert(routing::PROVIDER_HEADER, name);
        }
        headers.insert(routing::ATTEMPTS_HEADER, HeaderValue::from(served.attempts));
    }
    Exchange::of(&mut response).upstream = Some(outcome);
    response
}

/// Who answered (or, after a failure, was tried last) and after how many attempts.
struct Served {
    provider: String,
    attempts: u32,
}

/// Sends `body` to the plan's providers in order until one gives an answer that `judge`
/// accepts. A transport error, timeout, HTTP 5xx/429 (see `UpstreamError::fails_over`) or an
/// answer `judge` refuses (garbage) moves on to the next provider, within the routing deadline
/// and attempt cap; anything `judge` accepts, a JSON-RPC error object included, is the answer.
/// Every attempt is recorded in its endpoint's health (passive health).
async fn send<T>(
    app: &RpcRoutes,
    rpc: &RpcRequest,
    body: Bytes,
    judge: impl Fn(&[u8]) -> Result<T, String>,
) -> (Result<(T, Bytes), UpstreamError>, Option<Served>) {
    let deadline = Instant::now() + Duration::from_millis(app.routing.deadline_ms);
    let cap = app.routing.max_attempts;
    let mut served: Option<Served> = None;
    let mut last = None;
    for (i, candidate) in rpc.plan.order.iter().enumerate() {
        let attempts = served.as_ref().map_or(0, |s| s.attempts);
        let left = deadline.saturating_duration_since(Instant::now());
        if attempts >= cap || left.is_zero() {
            break;
        }
        let health = candidate.endpoint.health();
        // A provider whose circuit opened since the decision is skipped by failover.
        if i > 0 && health.circuit() == Circuit::Open {
            continue;
        }
        served = Some(Served {
            provider: candidate.provider.name().to_owned(),
            attempts: attempts + 1,
        });
        let in_flight = health.start();
        let started = Instant::now();
        let (result, _) = app
            .upstream
            .call(&candidate.endpoint, body.clone(), left)
            .await;
        let judged = result.and_then(|reply| match judge(&reply.body) {
            Ok(t) => Ok((t, reply.body)),
            Err(message) => Err(UpstreamError::Protocol(message.chars().take(200).collect())),
        });
        drop(in_flight);
        let latency = started.elapsed();
        match judged {
            Ok(answer) => {
                health.record(latency, Ok(()), Source::Request);
                return (Ok(answer), served);
            }
            Err(e) => {
                let fault = if e.is_provider_fault() {
                    Err(&e)
                } else {
                    Ok(())
                };
                health.record(latency, fault, Source::Request);
                if !e.fails_over() {
                    return (Err(e), served);
                }
                tracing::info!(
                    provider = candidate.provider.name(),
                    error = %e,
                    "provider failed; the call moves to the next one"
                );
                last = Some(e);
            }
        }
    }
    let err = last.unwrap_or(UpstreamError::Timeout(app.routing.deadline_ms));
    (Err(err), served)
}

async fn forward_single(
    app: &RpcRoutes,
    rpc: &RpcRequest,
    call: &Call,
) -> (Response, UpstreamOutcome, Option<Served>) {
    // A notification still reaches the provider (sendTransaction as fire-and-forget is legal),
    // with an id of ours; its answer is dropped as JSON-RPC requires.
    let upstream_id = call.id.clone().unwrap_or(Value::from(0));
    let body = serde_json::to_vec(&call.to_upstream(&upstream_id)).unwrap_or_default();
    let (result, served) = send(app, rpc, body.into(), judge_single).await;
    let (outcome, body) = match result {
        Ok(answer) => answer,
        Err(e) => {
            return (
                ProxyError::from(e).into_response_for(call.id.as_ref()),
                UpstreamOutcome::Failed,
                served,
            )
        }
    };
    if call.id.is_none() {
        return (StatusCode::NO_CONTENT.into_response(), outcome, served);
    }
    // The provider's bytes, as they came (no copy, no re-serialisation).
    (json_response(StatusCode::OK, body), outcome, served)
}

/// A single call's answer: one object with a `result` or an `error`.
fn judge_single(body: &[u8]) -> Result<UpstreamOutcome, String> {
    // serde's derived struct impl also accepts a JSON array; a single call wants an object.
    if first_json_byte(body) != Some(b'{') {
        return Err("a single call was answered with something other than an object".into());
    }
    match serde_json::from_slice::<Answer<'_>>(body) {
        Ok(a) if a.result.is_some() => Ok(UpstreamOutcome::Success),
        Ok(a) if a.error.is_some() => Ok(UpstreamOutcome::RpcError),
        Ok(_) => Err("answer has neither result nor error".into()),
        Err(e) => Err(e.to_string()),
    }
}

async fn forward_batch(
    app: &RpcRoutes,
    rpc: &RpcRequest,
    items: &[Element],
) -> (Response, UpstreamOutcome, Option<Served>) {
    let outgoing: Vec<Value> = items
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            Element::Call(call) => Some(call.to_upstream(&Value::from(i))),
            Element::Invalid { .. } => None,
        })
        .collect();

    let mut answers: Vec<Option<Value>> = vec![None; items.len()];
    let mut outcome = UpstreamOutcome::NotCalled;
    let mut served = None;
    if !outgoing.is_empty() {
        let body = serde_json::to_vec(&outgoing).unwrap_or_default();
        let judge = |body: &[u8]| {
            let mut answers: Vec<Option<Value>> = vec![None; items.len()];
            fill_batch_answers(items, body, &mut answers).map(|outcome| (outcome, answers))
        };
        let (result, by) = send(app, rpc, body.into(), judge).await;
        served = by;
        match result {
            Ok(((o, a), _)) => {
                outcome = o;
                answers = a;
            }
            Err(e) => {
                return (
                    ProxyError::from(e).into_response(),
                    UpstreamOutcome::Failed,
                    served,
                )
            }
        }
    }

    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Element::Invalid { id, error } => out.push(error.clone().into_response(id)),
            Element::Call(Call { id: None, .. }) => {}
            Element::Call(Call { id: Some(id), .. }) => {
                out.push(answers[i].take().unwrap_or_else(|| {
                    ErrorObject::new(
                        codes::UPSTREAM_FAILED,
                        "upstream returned no answer for this call",
                    )
                    .into_response(id)
                }))
            }
        }
    }
    if out.is_empty() {
        return (StatusCode::NO_CONTENT.into_response(), outcome, served);
    }
    let body = serde_json::to_vec(&out).unwrap_or_default();
    (json_response(StatusCode::OK, body.into()), outcome, served)
}

/// Matches the provider's batch answer to our elements by the index ids we sent.
fn fill_batch_answers(
    items: &[Element],
    body: &[u8],
    answers: &mut [Option<Value>],
) -> Result<UpstreamOutcome, String> {
    let client_id = |i: usize| match items.get(i) {
        Some(Element::Call(call)) => call.id.clone(),
        _ => None,
    };
    // A provider that refuses the batch as a whole answers one object: every call gets it.
    // (Check the first byte: serde's derived struct impl would also accept an array.)
    if first_json_byte(body) == Some(b'{') {
        let single: Answer<'_> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let error = single
            .error
            .ok_or("batch answered with a single non-error object")?;
        for (i, slot) in answers.iter_mut().enumerate() {
            if let Some(id) = client_id(i) {
                *slot = Some(rebuild(&id, None, Some(error)));
            }
        }
        return Ok(UpstreamOutcome::RpcError);
    }
    let parsed: Vec<Answer<'_>> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut any_result = false;
    for answer in parsed {
        let Some(i) = answer.id.as_u64().map(|i| i as usize) else {
            continue;
        };
        let Some(id) = client_id(i) else { continue };
        if answer.result.is_some() {
            any_result = true;
        }
        if let Some(slot) = answers.get_mut(i) {
            *slot = Some(rebuild(&id, answer.result, answer.error));
        }
    }
    Ok(if any_result {
        UpstreamOutcome::Success
    } else {
        UpstreamOutcome::RpcError
    })
}

fn rebuild(id: &Value, result: Option<&RawValue>, error: Option<&RawValue>) -> Value {
    let mut obj = serde_json::Map::with_capacity(3);
    obj.insert("jsonrpc".into(), "2.0".into());
    obj.insert("id".into(), id.clone());
    // RawValue → Value re-parses only this element; bounded by the response cap.
    match (result, error) {
        (Some(r), _) => obj.insert(
            "result".into(),
            serde_json::from_str(r.get()).unwrap_or(Value::Null),
        ),
        (None, Some(e)) => obj.insert(
            "error".into(),
            serde_json::from_str(e.get()).unwrap_or(Value::Null),
        ),
        (None, None) => obj.insert(
            "error".into(),
            serde_json::to_value(ErrorObject::new(
                codes::UPSTREAM_FAILED,
                "upstream answer has neither result nor error",
            ))
            .unwrap_or(Value::Null),
        ),
    };
    Value::Object(obj)
}

fn first_json_byte(body: &[u8]) -> Option<u8> {
    body.iter().copied().find(|b| !b.is_ascii_whitespace())
}

fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
