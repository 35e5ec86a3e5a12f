//! Errors of the JSON-RPC client and which of them justify trying the next endpoint.

/// JSON-RPC code a Solana node returns when it is unhealthy (behind the cluster).
pub const NODE_UNHEALTHY: i64 = -32005;

/// A failed JSON-RPC call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// Connection refused, reset, TLS failure, or similar.
    #[error("transport error: {0}")]
    Transport(String),
    /// Connect or total timeout elapsed.
    #[error("request timed out")]
    Timeout,
    /// Non-2xx HTTP status (redirects are not followed and show up here too).
    #[error("HTTP status {0}")]
    Http(u16),
    /// The node answered with a JSON-RPC error object.
    #[error("JSON-RPC error {code}: {message}")]
    Rpc {
        /// JSON-RPC error code.
        code: i64,
        /// Error message.
        message: String,
        /// Optional `data` member.
        data: Option<serde_json::Value>,
    },
    /// The body was not the JSON-RPC response we expected.
    #[error("could not decode the response: {0}")]
    Decode(String),
    /// The response body exceeded the configured size cap.
    #[error("response larger than the size cap")]
    TooLarge,
    /// No endpoint is configured.
    #[error("no RPC endpoint configured")]
    NoEndpoint,
}

impl RpcError {
    /// Whether the next endpoint should be tried: transport errors, timeouts, HTTP 5xx and 429,
    /// and JSON-RPC `-32005` (node unhealthy). Never other JSON-RPC errors: those are answers.
    pub fn is_retryable(&self) -> bool {
        match self {
            RpcError::Transport(_) | RpcError::Timeout => true,
            RpcError::Http(status) => *status == 429 || (500..=599).contains(status),
            RpcError::Rpc { code, .. } => *code == NODE_UNHEALTHY,
            RpcError::Decode(_) | RpcError::TooLarge | RpcError::NoEndpoint => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_classes() {
        assert!(RpcError::Timeout.is_retryable());
        assert!(RpcError::Transport("reset".into()).is_retryable());
        assert!(RpcError::Http(503).is_retryable());
        assert!(RpcError::Http(429).is_retryable());
        assert!(!RpcError::Http(404).is_retryable());
        assert!(!RpcError::Http(307).is_retryable());
        let rpc = |code| RpcError::Rpc {
            code,
            message: String::new(),
            data: None,
        };
        assert!(rpc(NODE_UNHEALTHY).is_retryable());
        assert!(!rpc(-32602).is_retryable());
        assert!(!rpc(-32002).is_retryable());
        assert!(!RpcError::TooLarge.is_retryable());
        assert!(!RpcError::Decode("x".into()).is_retryable());
    }
}
