//! A request body that arrives too slowly is answered 408 `request_timeout`, not 504.
//!
//! The body is wrapped so that reading it past the deadline fails; whatever the handler then
//! answers (the RPC body reader says "could not read the request body", an extractor 400), this
//! layer replaces with the 408, since only the client's slowness is to blame. A handler that
//! never reads the body is never cut short, and a body that is already buffered never arms a
//! timer (the deadline is polled only while the body is pending).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::error::ApiError;

/// How long a request body may take from its head to its last byte.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyReadTimeout(pub(crate) Duration);

/// The middleware (`from_fn_with_state`); it must sit inside the request log so the 408 is what
/// gets logged, and outside the whole-request timeout.
pub(crate) async fn limit_body_time(
    State(BodyReadTimeout(limit)): State<BodyReadTimeout>,
    request: Request,
    next: Next,
) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let expired = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + limit;
    let request = request.map(|inner| {
        Body::new(DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            expired: Arc::clone(&expired),
        })
    });
    let response = next.run(request).await;
    if !expired.load(Ordering::Acquire) {
        return response;
    }
    let mut timed_out = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        format!(
            "the request body did not arrive within {} ms",
            limit.as_millis()
        ),
    )
    .into_response();
    // The layers inside may have recorded what they saw (the request record the observer
    // reads is a response extension): only the status and body are replaced.
    let (parts, _) = response.into_parts();
    timed_out.extensions_mut().extend(parts.extensions);
    timed_out
}

/// The body ended early because its deadline passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyReadTimedOut;

struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(BodyReadTimedOut.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use axum::middleware::from_fn_with_state;
    use axum::routing::post;
    use axum::Router;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    fn app() -> Router {
        // The handler reads the body the way the RPC reader does and blames it on the client.
        async fn read(body: Body) -> Response {
            match body.collect().await {
                Ok(bytes) => String::from_utf8_lossy(&bytes.to_bytes())
                    .into_owned()
                    .into_response(),
                Err(_) => (StatusCode::BAD_REQUEST, "could not read the body").into_response(),
            }
        }
        Router::new()
            .route("/", post(read))
            .layer(from_fn_with_state(
                BodyReadTimeout(Duration::from_millis(500)),
                limit_body_time,
            ))
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stalls_past_the_deadline_is_a_408() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        tx.send(Ok(Frame::data(Bytes::from_static(b"{\"par"))))
            .await
            .unwrap();
        let body = Body::new(http_body_util::StreamBody::new(tokio_stream_from(rx)));
        let response = app()
            .oneshot(Request::post("/").body(body).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        let json: serde_json::Value =
            serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes())
                .unwrap();
        assert_eq!(json["error"]["code"], "request_timeout");
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_in_time_passes_untouched() {
        let response = app()
            .oneshot(Request::post("/").body(Body::from("{}")).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"{}");
    }

    /// The receiver as a stream of frames (tokio-stream is not a dependency).
    fn tokio_stream_from(
        mut rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>,
    ) -> impl futures::Stream<Item = Result<Frame<Bytes>, std::io::Error>> {
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
