//! What can go wrong talking to a provider.

/// An upstream failure. Messages never contain the upstream URL (it may carry the API key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// No answer within the configured timeout.
    #[error("upstream did not answer within {0} ms")]
    Timeout(u64),
    /// Connection refused, reset, TLS failure, DNS failure.
    #[error("upstream unreachable: {0}")]
    Transport(String),
    /// The provider answered with a non-success HTTP status.
    #[error("upstream answered HTTP {0}")]
    Status(u16),
    /// The answer was bigger than we are willing to buffer.
    #[error("upstream answer larger than {0} bytes")]
    TooLarge(usize),
    /// The answer was not the JSON-RPC we asked for.
    #[error("upstream answered with malformed JSON-RPC: {0}")]
    Protocol(String),
}

impl UpstreamError {
    /// True when another attempt (or another provider) might succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            UpstreamError::Timeout(_) | UpstreamError::Transport(_) => true,
            UpstreamError::Status(s) => *s == 429 || *s >= 500,
            UpstreamError::TooLarge(_) | UpstreamError::Protocol(_) => false,
        }
    }

    /// True when the same call may go to another provider: the provider failed to answer
    /// (transport, timeout), is overloaded or broken (5xx, 429), refused our own credentials
    /// (401, 403: the key, not the client's request), or answered something that is not
    /// JSON-RPC. An answer too large for the cap would be as large elsewhere: not retried.
    pub fn fails_over(&self) -> bool {
        match self {
            UpstreamError::Timeout(_)
            | UpstreamError::Transport(_)
            | UpstreamError::Protocol(_) => true,
            UpstreamError::Status(s) => matches!(*s, 401 | 403 | 408 | 429) || *s >= 500,
            UpstreamError::TooLarge(_) => false,
        }
    }

    /// True when the failure says something about the provider's health (an oversized answer
    /// says something about the call).
    pub fn is_provider_fault(&self) -> bool {
        !matches!(self, UpstreamError::TooLarge(_))
    }

    /// Short stable name for logs and `/status`.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Timeout(_) => "timeout",
            UpstreamError::Transport(_) => "transport",
            UpstreamError::Status(_) => "http_status",
            UpstreamError::TooLarge(_) => "too_large",
            UpstreamError::Protocol(_) => "protocol",
        }
    }
}
