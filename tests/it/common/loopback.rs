//! Loopback HTTP for tests: serve a mock router on a free port, or name a port nobody serves.

use std::net::SocketAddr;

/// Serves `app` on a free loopback port for the rest of the test; its address.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    addr
}

/// A loopback address nothing listens on (bound, then released): connections are refused.
pub fn closed_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}
