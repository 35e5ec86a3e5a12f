//! Client body → typed calls, following JSON-RPC 2.0 batch rules:
//! an empty batch is one `-32600`; each malformed element gets its own `-32600` with the id it
//! carried (or `null`); a body that is not JSON is one `-32700`.

use serde_json::Value;

use super::{codes, exceeds_depth, Call, ErrorObject};

/// One element of a body: a valid call, or the error the client gets for it.
#[derive(Debug, Clone, PartialEq)]
pub enum Element {
    /// A well-formed call (its method and params are not judged here).
    Call(Call),
    /// A malformed element and the response it earns.
    Invalid {
        /// The id the element carried, or `null` when none could be read.
        id: Value,
        /// The error to answer with.
        error: ErrorObject,
    },
}

/// A parsed body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A single request object.
    Single(Element),
    /// A batch (non-empty, within the cap).
    Batch(Vec<Element>),
}

/// A body that cannot be treated as requests at all: one error object answers it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BodyError {
    /// Not JSON.
    #[error("parse error: {0}")]
    Parse(String),
    /// Nested deeper than allowed.
    #[error("invalid request: JSON nested deeper than {0} levels")]
    TooDeep(usize),
    /// `[]`.
    #[error("invalid request: empty batch")]
    EmptyBatch,
    /// More elements than allowed.
    #[error("invalid request: batch of {len} calls exceeds the limit of {max}")]
    BatchTooLarge {
        /// Elements sent.
        len: usize,
        /// The configured cap.
        max: usize,
    },
}

impl BodyError {
    /// The JSON-RPC error object (answered with id `null`).
    pub fn to_error_object(&self) -> ErrorObject {
        let code = match self {
            BodyError::Parse(_) => codes::PARSE_ERROR,
            _ => codes::INVALID_REQUEST,
        };
        ErrorObject::new(code, self.to_string())
    }
}

/// Parses a client body. `max_depth` is checked before parsing; `max_batch` caps batches.
pub fn parse_body(bytes: &[u8], max_depth: usize, max_batch: usize) -> Result<Body, BodyError> {
    if exceeds_depth(bytes, max_depth) {
        return Err(BodyError::TooDeep(max_depth));
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| BodyError::Parse(e.to_string()))?;
    match value {
        Value::Array(items) if items.is_empty() => Err(BodyError::EmptyBatch),
        Value::Array(items) if items.len() > max_batch => Err(BodyError::BatchTooLarge {
            len: items.len(),
            max: max_batch,
        }),
        Value::Array(items) => Ok(Body::Batch(items.into_iter().map(element).collect())),
        other => Ok(Body::Single(element(other))),
    }
}

fn element(value: Value) -> Element {
    let Value::Object(mut obj) = value else {
        return invalid(Value::Null, "request must be a JSON object");
    };
    let id = match obj.remove("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => Some(id),
        Some(_) => return invalid(Value::Null, "id must be a string, a number or null"),
    };
    let reply_id = id.clone().unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid(reply_id, "jsonrpc must be \"2.0\"");
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) if !m.is_empty() => m,
        _ => return invalid(reply_id, "method must be a non-empty string"),
    };
    let params = match obj.remove("params") {
        None => None,
        Some(p @ (Value::Array(_) | Value::Object(_))) => Some(p),
        Some(_) => return invalid(reply_id, "params must be an array or an object"),
    };
    Element::Call(Call { id, method, params })
}

fn invalid(id: Value, message: &str) -> Element {
    Element::Invalid {
        id,
        error: ErrorObject::new(
            codes::INVALID_REQUEST,
            format!("invalid request: {message}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(s: &str) -> Result<Body, BodyError> {
        parse_body(s.as_bytes(), 32, 3)
    }

    #[test]
    fn single_call_keeps_id_and_params() {
        let body = parse(
            r#"{"jsonrpc":"2.0","id":"a","method":"getSlot","params":[{"commitment":"confirmed"}]}"#,
        );
        let Ok(Body::Single(Element::Call(call))) = body else {
            panic!("{body:?}")
        };
        assert_eq!(call.id, Some(json!("a")));
        assert_eq!(call.method, "getSlot");
        assert_eq!(call.params, Some(json!([{"commitment":"confirmed"}])));
    }

    #[test]
    fn notification_has_no_id() {
        let Ok(Body::Single(Element::Call(call))) =
            parse(r#"{"jsonrpc":"2.0","method":"getSlot"}"#)
        else {
            panic!()
        };
        assert_eq!(call.id, None);
    }

    #[test]
    fn batch_rules() {
        assert_eq!(parse("[]"), Err(BodyError::EmptyBatch));
        assert_eq!(
            parse("[1,2,3,4]"),
            Err(BodyError::BatchTooLarge { len: 4, max: 3 })
        );
        assert!(matches!(parse("{"), Err(BodyError::Parse(_))));
        assert!(matches!(parse(""), Err(BodyError::Parse(_))));
        let Ok(Body::Batch(items)) = parse(
            r#"[1, {"jsonrpc":"2.0","id":7,"method":""}, {"jsonrpc":"2.0","id":8,"method":"getSlot"}]"#,
        ) else {
            panic!()
        };
        assert!(
            matches!(&items[0], Element::Invalid { id: Value::Null, error } if error.code == codes::INVALID_REQUEST)
        );
        assert!(matches!(&items[1], Element::Invalid { id, .. } if id == &json!(7)));
        assert!(matches!(&items[2], Element::Call(_)));
    }

    #[test]
    fn wrong_version_and_bad_params_are_invalid_requests() {
        for body in [
            r#"{"jsonrpc":"1.0","id":1,"method":"getSlot"}"#,
            r#"{"id":1,"method":"getSlot"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"getSlot","params":"x"}"#,
            r#"{"jsonrpc":"2.0","id":{},"method":"getSlot"}"#,
        ] {
            let Ok(Body::Single(Element::Invalid { error, .. })) = parse(body) else {
                panic!("{body}")
            };
            assert_eq!(error.code, codes::INVALID_REQUEST, "{body}");
        }
    }

    #[test]
    fn too_deep_is_refused_before_parsing() {
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert_eq!(parse(&deep), Err(BodyError::TooDeep(32)));
    }
}
