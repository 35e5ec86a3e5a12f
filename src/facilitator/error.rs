//! Failures talking to a facilitator (a definitive `isValid:false` is not an error).

/// Why a facilitator call produced no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FacilitatorError {
    /// Could not connect: nothing was sent.
    #[error("facilitator unreachable: {0}")]
    Connect(String),
    /// The request may have been sent but no answer came in time.
    #[error("facilitator did not answer within {0} ms")]
    Timeout(u64),
    /// Failure after the request was (possibly) sent: reset, truncated answer.
    #[error("facilitator transport error: {0}")]
    Transport(String),
    /// The facilitator answered with an HTTP error and no usable body.
    #[error("facilitator answered HTTP {0}")]
    Status(u16),
    /// The answer was not the JSON we expect.
    #[error("facilitator answered with malformed JSON: {0}")]
    Protocol(String),
    /// The facilitator cannot serve this payment at all (e.g. RPC for the network is down).
    #[error("facilitator unavailable: {0}")]
    Unavailable(String),
}

impl FacilitatorError {
    /// Another attempt (or another facilitator) may succeed: transport trouble and 5xx only.
    pub fn is_retryable(&self) -> bool {
        match self {
            FacilitatorError::Connect(_)
            | FacilitatorError::Timeout(_)
            | FacilitatorError::Transport(_)
            | FacilitatorError::Unavailable(_) => true,
            FacilitatorError::Status(s) => *s >= 500,
            FacilitatorError::Protocol(_) => false,
        }
    }

    /// Whether the request may have reached the facilitator (so a settle may have broadcast).
    pub fn maybe_sent(&self) -> bool {
        !matches!(self, FacilitatorError::Connect(_))
    }
}
