//! x402 payment gateway for Solana JSON-RPC and DAS.
//!
//! Load, build, run are separate steps: [`config::Config::load`] parses and validates without
//! connecting anything, [`app::App::build`] creates the clients, [`serve`] binds and drains on
//! shutdown. Tests call [`build_router`] and drive it in process or on a loopback listener.
//!
//! `pub` means part of the library's API on purpose (what the binary, tests, benches and
//! examples use); everything else is `pub(crate)` inside private modules, and
//! `unreachable_pub` keeps it so.

#![warn(unreachable_pub)]

pub(crate) mod admin;
pub(crate) mod app;
pub mod audit;
pub mod authgate;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod config;
pub mod credits;
pub(crate) mod error;
pub(crate) mod exchange;
pub mod facilitator;
pub(crate) mod failpoint;
pub(crate) mod guardrails;
pub(crate) mod health;
pub mod healthcheck;
pub(crate) mod http_client;
pub mod jsonrpc;
#[cfg(feature = "localnet")]
pub(crate) mod keyfile;
pub mod ledger;
#[cfg(feature = "localnet")]
pub mod localnet;
pub(crate) mod observability;
pub mod paygate;
pub mod priced;
pub mod pricing;
pub(crate) mod proxy;
pub mod ratelimit;
pub(crate) mod router;
pub mod routes;
pub mod routing;
mod server;
pub(crate) mod services;
pub mod siwx;
pub mod solana_rpc;
pub(crate) mod stack;
pub mod store;
pub mod svm;
pub(crate) mod upstream;
pub mod usage;
pub mod x402;

use axum::Router;
use tokio::net::TcpListener;

pub use app::{App, AppState};
pub use observability::init_tracing;

/// The complete application: routes plus the global layer stack.
pub fn build_router(app: AppState) -> Router {
    stack::apply(router::router(app.clone()), &app)
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains in-flight requests.
/// Slow and idle clients are shed per `[server]` (head, idle and body timeouts, a connection
/// cap); handlers see the peer as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    app: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = build_router(app.clone());
    server::run(listener, router, &app.config.server, shutdown).await;
    // The last usage counts of this process (the periodic flush may not have run since).
    if let Err(e) = app.usage.flush(app.store.as_ref()).await {
        tracing::error!(error = %e, "usage counters not flushed at shutdown");
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
