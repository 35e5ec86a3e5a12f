//! Reading a configured service's answer safely (its reqwest client talks to a keyed upstream;
//! the RPC providers' client has its own capped read in `client.rs`).

use bytes::{Bytes, BytesMut};
use std::time::Duration;

use super::UpstreamError;

/// The body of `response`, refused as soon as it would exceed `max` bytes (by its declared
/// length, or while streaming).
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, UpstreamError> {
    if response
        .content_length()
        .is_some_and(|len| len > max as u64)
    {
        return Err(UpstreamError::TooLarge(max));
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify(e, timeout))? {
        if buf.len() + chunk.len() > max {
            return Err(UpstreamError::TooLarge(max));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// A reqwest failure as an [`UpstreamError`], without the URL (it may carry a key).
pub(crate) fn classify(err: reqwest::Error, timeout: Duration) -> UpstreamError {
    if err.is_timeout() {
        return UpstreamError::Timeout(timeout.as_millis() as u64);
    }
    // `without_url` drops the keyed URL; the source chain (hyper, io) never carries it.
    let err = err.without_url();
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    UpstreamError::Transport(message)
}
