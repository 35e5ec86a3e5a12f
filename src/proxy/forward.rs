//! The handler that calls the upstream with a parsed [`RpcRequest`] and shapes the answer.
//!
//! Single calls are forwarded with the client's id and the provider's body is returned
//! verbatim. Batches are forwarded with the gateway's own ids (the element index), so a client
//! cannot confuse the matching with duplicate ids, and the answers are put back in the client's
//! order with the client's ids. Invalid elements answer themselves and notifications get nothing.

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::{ProxyError, RpcRequest, RpcRoutes};
use crate::exchange::{Exchange, UpstreamOutcome};
use crate::jsonrpc::{codes, Body, Call, Element, ErrorObject};
use crate::upstream::UpstreamError;

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
    let (mut response, outcome) = match &rpc.body {
        Body::Single(Element::Call(call)) => forward_single(&app, &rpc, call).await,
        Body::Single(Element::Invalid { id, error }) => (
            (
                StatusCode::BAD_REQUEST,
                axum::Json(error.clone().into_response(id)),
            )
                .into_response(),
            UpstreamOutcome::NotCalled,
        ),
        Body::Batch(items) => forward_batch(&app, &rpc, items).await,
    };
    Exchange::of(&mut response).upstream = Some(outcome);
    response
}

async fn forward_single(
    app: &RpcRoutes,
    rpc: &RpcRequest,
    call: &Call,
) -> (Response, UpstreamOutcome) {
    // A notification still reaches the provider (sendTransaction as fire-and-forget is legal),
    // with an id of ours; its answer is dropped as JSON-RPC requires.
    let upstream_id = call.id.clone().unwrap_or(Value::from(0));
    let body = serde_json::to_vec(&call.to_upstream(&upstream_id)).unwrap_or_default();
    let reply = match app.upstream.call(&rpc.endpoint, body).await {
        Ok(reply) => reply,
        Err(e) => {
            let response = ProxyError::from(e).into_response_for(call.id.as_ref());
            return (response, UpstreamOutcome::Failed);
        }
    };
    let malformed = |message: &str| malformed_answer(message, call.id.as_ref());
    // serde's derived struct impl also accepts a JSON array; a single call wants an object.
    if first_json_byte(&reply.body) != Some(b'{') {
        return malformed("a single call was answered with something other than an object");
    }
    let outcome = match serde_json::from_slice::<Answer<'_>>(&reply.body) {
        Ok(a) if a.result.is_some() => UpstreamOutcome::Success,
        Ok(a) if a.error.is_some() => UpstreamOutcome::RpcError,
        Ok(_) => return malformed("answer has neither result nor error"),
        Err(e) => return malformed(&e.to_string()),
    };
    if call.id.is_none() {
        return (StatusCode::NO_CONTENT.into_response(), outcome);
    }
    (json_response(StatusCode::OK, reply.body.into()), outcome)
}

async fn forward_batch(
    app: &RpcRoutes,
    rpc: &RpcRequest,
    items: &[Element],
) -> (Response, UpstreamOutcome) {
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
    if !outgoing.is_empty() {
        let body = serde_json::to_vec(&outgoing).unwrap_or_default();
        let reply = match app.upstream.call(&rpc.endpoint, body).await {
            Ok(reply) => reply,
            Err(e) => return (ProxyError::from(e).into_response(), UpstreamOutcome::Failed),
        };
        outcome = match fill_batch_answers(items, &reply.body, &mut answers) {
            Ok(outcome) => outcome,
            Err(message) => return malformed_answer(&message, None),
        };
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
        return (StatusCode::NO_CONTENT.into_response(), outcome);
    }
    let body = serde_json::to_vec(&out).unwrap_or_default();
    (json_response(StatusCode::OK, body), outcome)
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

fn malformed_answer(message: &str, id: Option<&Value>) -> (Response, UpstreamOutcome) {
    let err = ProxyError::Upstream(UpstreamError::Protocol(message.chars().take(200).collect()));
    (err.into_response_for(id), UpstreamOutcome::Failed)
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
