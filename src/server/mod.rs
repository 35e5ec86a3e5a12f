//! Accepting and serving connections, with the protections `axum::serve` lacks against slow and
//! idle clients: a request-head timeout, an idle timeout, a cap on open connections, and (in
//! the layer stack) a request-body timeout.
//!
//! - The head: hyper's HTTP/1 `header_read_timeout`, which hyper 1.x arms whenever the
//!   connection waits for a head (`proto/h1/conn.rs`, `poll_read_head` and `State::idle`), so on
//!   HTTP/1 it also bounds keep-alive idle time. hyper-util's version sniffing reads the first
//!   bytes before hyper sees the connection, without a timer: the watchdog (`connection`) closes
//!   a connection whose first head has not arrived within the same timeout of its accept.
//! - Idle: the watchdog closes a connection with no request in flight for `idle_timeout_ms`
//!   (HTTP/2 has no head timeout; this is what frees its idle connections).
//! - The cap: `connections::Connections::make_room`.
//! - The body: `body_deadline`, answered 408.

pub(crate) mod body_deadline;
mod connection;
mod connections;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::ServerConfig;
use connection::Timeouts;
use connections::Connections;

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and waits for
/// the open connections to finish their requests.
pub(crate) async fn run(
    listener: TcpListener,
    router: Router,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let connections = Arc::new(Connections::new(fit_to_open_file_limit(
        config.max_connections,
        open_file_limit(),
    )));
    let builder = Arc::new(builder(config));
    let timeouts = Timeouts {
        header_read: config.header_read_timeout(),
        idle: config.idle_timeout(),
    };
    // Every connection task holds a receiver: `drain` signals through it, then waits until the
    // last one is dropped.
    let (drain_tx, drain_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        // Small request/response exchanges: no Nagle delay on our answers.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "TCP_NODELAY not set");
        }
        // At the cap with every connection busy, this one waits (and nothing more is accepted)
        // until one finishes or goes idle.
        while !connections.make_room() {
            tokio::select! {
                biased;
                () = &mut shutdown => {
                    drop(stream);
                    return drain(drain_tx, drain_rx).await;
                }
                () = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }
        let (id, activity) = connections.register();
        let connections = Arc::clone(&connections);
        let (router, builder, draining) = (router.clone(), Arc::clone(&builder), drain_rx.clone());
        tokio::spawn(async move {
            connection::serve(stream, peer, router, builder, activity, timeouts, draining).await;
            connections.remove(id);
        });
    }
    drop(listener);
    drain(drain_tx, drain_rx).await;
}

/// Asks every connection to finish its requests and close, and waits until all have.
async fn drain(drain_tx: watch::Sender<bool>, drain_rx: watch::Receiver<bool>) {
    drop(drain_rx);
    let _ = drain_tx.send(true);
    tracing::info!(
        connections = drain_tx.receiver_count(),
        "draining open connections"
    );
    drain_tx.closed().await;
}

/// HTTP/1.1 and h2c (by prior knowledge), as `axum::serve` speaks them, with the head timeout.
fn builder(config: &ServerConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout());
    builder.http2().timer(TokioTimer::new());
    builder
}

/// As `axum::serve` (and hyper 0.14 before it): a failed accept for one client is skipped; any
/// other error (out of file descriptors, most likely) is logged and accepting pauses a second
/// so the process can close some.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; pausing accepts for 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The connection cap, lowered when the process may not open that many files: past the limit
/// `accept` fails and every client, `/healthz` included, waits. Keeps a quarter of the limit
/// (at most 256) for everything else the process opens: upstream and Redis sockets, files.
fn fit_to_open_file_limit(configured: usize, limit: Option<u64>) -> usize {
    let Some(limit) = limit else {
        return configured;
    };
    let reserve = (limit / 4).min(256);
    let fits = usize::try_from(limit - reserve)
        .unwrap_or(usize::MAX)
        .max(1);
    if configured > fits {
        tracing::warn!(
            max_connections = configured,
            open_file_limit = limit,
            using = fits,
            "server.max_connections lowered to fit the open-file limit (raise it with ulimit -n)"
        );
        fits
    } else {
        configured
    }
}

/// The soft open-file limit (`RLIMIT_NOFILE`), from `/proc/self/limits` (no `unsafe` libc call
/// in this crate); `None` where that file does not exist or says `unlimited`.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_file_limit(&limits)
}

fn parse_open_file_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_is_read_from_proc() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max cpu time              unlimited            unlimited            seconds   \n\
                    Max open files            1024                 1048576              files     \n";
        assert_eq!(parse_open_file_limit(text), Some(1024));
        let unlimited = text.replace("1024 ", "unlimited ");
        assert_eq!(parse_open_file_limit(&unlimited), None);
    }

    #[test]
    fn the_cap_fits_under_the_open_file_limit() {
        assert_eq!(fit_to_open_file_limit(4096, Some(1024)), 768);
        assert_eq!(fit_to_open_file_limit(4096, Some(1_048_576)), 4096);
        assert_eq!(fit_to_open_file_limit(4096, None), 4096);
        assert_eq!(fit_to_open_file_limit(4096, Some(0)), 1);
    }
}
