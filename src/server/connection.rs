//! One accepted connection: HTTP/1.1 or h2c on hyper, the peer address for the handlers, and
//! a watchdog that closes it when it sits without a request in flight for too long.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt;

use super::connections::{Activity, InFlight};
use crate::error::ApiError;

/// The connection timeouts the watchdog enforces.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    /// From the accept to the first request head.
    pub(super) header_read: Duration,
    /// From the end of a response to the next request head.
    pub(super) idle: Duration,
}

/// Serves `stream` until the client or a timeout closes it, the table evicts it, or, after
/// `draining` fires, its last request is answered.
pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    activity: Arc<Activity>,
    timeouts: Timeouts,
    mut draining: watch::Receiver<bool>,
) {
    let service = Tracked {
        router,
        peer,
        activity: Arc::clone(&activity),
    };
    let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
    // The accept is the start of the first idle period, so the first wake-up is its deadline.
    let mut watchdog = pin!(tokio::time::sleep(timeouts.header_read));
    let mut drain_started = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = activity.evicted() => {
                tracing::debug!(%peer, "idle connection closed to make room for a new one");
                return;
            }
            _ = draining.changed(), if !drain_started => {
                // Nothing in flight: close now (a half-sent head would otherwise hold the
                // shutdown for a whole head timeout). Otherwise finish what is in flight and
                // take nothing new (HTTP/2: GOAWAY).
                if activity.try_close() {
                    return;
                }
                drain_started = true;
                conn.as_mut().graceful_shutdown();
            }
            () = &mut watchdog => {
                let now = Instant::now();
                match activity.idle_deadline(timeouts.header_read, timeouts.idle) {
                    // Idle past its deadline: dropping the connection closes the socket. Safe,
                    // as no request is in flight (the claim makes sure none starts).
                    Some(deadline) if deadline <= now && activity.try_close() => {
                        tracing::debug!(%peer, "idle connection closed");
                        return;
                    }
                    Some(deadline) if deadline > now => watchdog.as_mut().reset(deadline),
                    // Busy (or a request began as we looked): it becomes idle at the earliest
                    // now, so its deadline is at least one idle period away.
                    _ => watchdog.as_mut().reset(now + timeouts.idle),
                }
            }
        }
    }
}

/// The router as hyper's service for one connection: hands handlers the peer address (what
/// `into_make_service_with_connect_info` did) and counts each request in flight until its
/// response body is sent.
#[derive(Clone)]
struct Tracked {
    router: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<InFlightBody>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response<InFlightBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let Some(in_flight) = self.activity.start_request() else {
            // The watchdog or the table is closing this connection this very moment; nothing
            // will read this answer, but the request must not start a handler.
            let closing = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "connection_closing",
                "the connection is being closed; retry on a new one",
            )
            .into_response();
            return Box::pin(std::future::ready(Ok(closing.map(InFlightBody::done))));
        };
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let response = self.router.clone().oneshot(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| InFlightBody {
                inner: body,
                _in_flight: Some(in_flight),
            }))
        })
    }
}

/// A response body that keeps its request counted in flight until hyper has sent it (or
/// dropped it), so the watchdog never closes a connection in the middle of an answer.
struct InFlightBody {
    inner: Body,
    _in_flight: Option<InFlight>,
}

impl InFlightBody {
    fn done(inner: Body) -> Self {
        Self {
            inner,
            _in_flight: None,
        }
    }
}

impl http_body::Body for InFlightBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
