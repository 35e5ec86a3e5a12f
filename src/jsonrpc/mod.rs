//! JSON-RPC 2.0 as the gateway needs it: parse a client body once into typed calls (single or
//! batch, with per-element errors as the spec demands), and build error objects.
//!
//! No I/O and no HTTP here; the handlers decide statuses.

mod depth;
mod parse;

use serde::Serialize;
use serde_json::Value;

pub use depth::exceeds_depth;
pub use parse::{parse_body, Body, BodyError, Element};

/// Standard and gateway-defined JSON-RPC error codes.
pub mod codes {
    /// Invalid JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a valid request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// Method not sold here.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Parameters refused (shape or guardrail).
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal error.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// The upstream did not answer in time (gateway-defined, in the server range).
    pub const UPSTREAM_TIMEOUT: i64 = -32050;
    /// The upstream failed (transport error, 5xx, malformed answer).
    pub const UPSTREAM_FAILED: i64 = -32051;
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorObject {
    /// The error code.
    pub code: i64,
    /// Human-readable message.
    pub message: String,
    /// Optional structured detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    /// An error without data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Adds structured detail.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// The full response object for `id`.
    pub fn into_response(self, id: &Value) -> Value {
        serde_json::json!({ "jsonrpc": "2.0", "id": id, "error": self })
    }
}

/// One valid call: a method with its parameters, and the client's id (`None` = notification).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The client's id, kept exactly as sent (string, number or null). `None` for notifications.
    pub id: Option<Value>,
    /// The method name.
    pub method: String,
    /// The parameters, if any (array or object).
    pub params: Option<Value>,
}

impl Call {
    /// The request object sent upstream, with `id` in place of the client's.
    pub fn to_upstream(&self, id: &Value) -> Value {
        let mut obj = serde_json::Map::with_capacity(4);
        obj.insert("jsonrpc".into(), "2.0".into());
        obj.insert("id".into(), id.clone());
        obj.insert("method".into(), self.method.clone().into());
        if let Some(params) = &self.params {
            obj.insert("params".into(), params.clone());
        }
        Value::Object(obj)
    }
}
