//! Slow and idle clients against the real `serve` on a loopback listener: more idle and
//! trickling sockets than the connection cap cannot lock a fresh client out, the server closes
//! them, and a body that stalls is answered 408.

use std::net::SocketAddr;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::common::app::providers_toml;
use crate::common::{MockUpstream, Mode, TestApp};

/// The bound on every wait: generous, so a loaded machine passes; a server that never closes
/// or never answers fails.
const WAIT: Duration = Duration::from_secs(10);

/// The gateway served by `x402_gateway::serve` on 127.0.0.1.
struct Served {
    addr: SocketAddr,
    upstream: MockUpstream,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Served {
    async fn start(server_toml: &str) -> Self {
        let upstream = MockUpstream::start().await;
        let toml = format!(
            "[server]\n{server_toml}\n{}",
            providers_toml(&upstream.url, &upstream.url)
        );
        let app = TestApp::new(&toml).await.app;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(x402_gateway::serve(app, listener, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            upstream,
            stop: Some(stop),
            task,
        }
    }

    async fn connect(&self) -> TcpStream {
        timeout(WAIT, TcpStream::connect(self.addr))
            .await
            .expect("connect within the bound")
            .expect("connect")
    }

    /// A connection that never sends a byte.
    async fn idle(&self) -> TcpStream {
        self.connect().await
    }

    /// A connection that sends a request head one byte every 100 ms and never finishes it.
    async fn trickling(&self) -> (tokio::net::tcp::OwnedReadHalf, JoinHandle<()>) {
        let (read, mut write) = self.connect().await.into_split();
        let writer = tokio::spawn(async move {
            let head = b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nx-slow: ";
            for byte in head.iter().chain(std::iter::repeat(&b'a')) {
                if write.write_all(&[*byte]).await.is_err() {
                    return; // the server closed it
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        (read, writer)
    }

    /// A fresh client's `GET /healthz` (a new connection), answered within the bound.
    async fn healthz(&self) -> Value {
        let client = reqwest::Client::builder().timeout(WAIT).build().unwrap();
        let response = client
            .get(format!("http://{}/healthz", self.addr))
            .send()
            .await
            .expect("a fresh client is served while slow and idle sockets hold the cap");
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        timeout(WAIT, self.task)
            .await
            .expect("serve drains and returns within the bound")
            .unwrap()
            .unwrap();
    }
}

/// Reads until the server closes the connection (EOF or reset) and returns what it sent first.
async fn until_closed(mut stream: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    timeout(WAIT, closed)
        .await
        .expect("the server closes a slow or idle connection within the bound");
    seen
}

/// Idle and trickling connections, each watched until the server closes it.
struct Attack {
    /// One reader per connection, done when the server has closed it.
    closed: FuturesUnordered<JoinHandle<Vec<u8>>>,
    writers: Vec<JoinHandle<()>>,
}

impl Attack {
    /// `idle` silent connections, then `trickling` ones.
    async fn open(served: &Served, idle: usize, trickling: usize) -> Self {
        let closed = FuturesUnordered::new();
        let mut writers = Vec::new();
        for _ in 0..idle {
            closed.push(tokio::spawn(until_closed(served.idle().await)));
        }
        for _ in 0..trickling {
            let (read, writer) = served.trickling().await;
            closed.push(tokio::spawn(until_closed(read)));
            writers.push(writer);
        }
        Self { closed, writers }
    }

    /// Waits (each read within the bound) until `count` connections were closed by the server.
    async fn wait_closed(&mut self, count: usize) {
        for closed in 0..count {
            self.closed
                .next()
                .await
                .unwrap_or_else(|| panic!("only {closed} connections were opened"))
                .expect("reader task");
        }
    }
}

#[tokio::test]
async fn a_cap_full_of_idle_and_trickling_sockets_does_not_lock_out_a_fresh_client() {
    // Timeouts far beyond the bound of every wait here: only the cap's eviction can make room.
    let served = Served::start(
        "max_connections = 20\nheader_read_timeout_ms = 60000\nidle_timeout_ms = 60000",
    )
    .await;
    let mut attack = Attack::open(&served, 20, 10).await;
    assert_eq!(served.healthz().await["status"], "ok");
    // 30 attackers and one client through a cap of 20: the 11 idle the longest gave way.
    attack.wait_closed(11).await;
    attack.writers.iter().for_each(JoinHandle::abort);
    served.stop().await;
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed_by_the_server() {
    let served =
        Served::start("max_connections = 20\nheader_read_timeout_ms = 300\nidle_timeout_ms = 300")
            .await;
    let mut attack = Attack::open(&served, 15, 15).await;
    assert_eq!(served.healthz().await["status"], "ok");
    // Every one of them is closed: evicted at the cap, or timed out (head or idle).
    attack.wait_closed(30).await;
    for writer in attack.writers {
        timeout(WAIT, writer)
            .await
            .expect("the trickling writer sees the close")
            .unwrap();
    }

    // HTTP/1.1 keep-alive: after its answer, a connection that sends nothing more is closed.
    let mut keep_alive = served.connect().await;
    keep_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let answer = String::from_utf8(until_closed(keep_alive).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""status":"ok""#), "{answer}");

    // h2c by prior knowledge: the preface and SETTINGS, then no request, is closed too.
    let mut h2 = served.connect().await;
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let frames = until_closed(h2).await;
    assert!(
        !frames.is_empty(),
        "the server spoke h2 (its SETTINGS) before closing"
    );

    served.stop().await;
}

#[tokio::test]
async fn a_body_that_stalls_is_answered_408_with_the_json_error() {
    let served = Served::start("body_read_timeout_ms = 300\nidle_timeout_ms = 300").await;
    let mut stream = served.connect().await;
    // The head and the start of a 64-byte body, then nothing: the client is the slow party.
    stream
        .write_all(
            b"POST /v1/x402/solana/mainnet/alchemy/rpc/getSlot HTTP/1.1\r\nhost: localhost\r\n\
              content-type: application/json\r\ncontent-length: 64\r\n\r\n{\"params\":",
        )
        .await
        .unwrap();
    let answer = String::from_utf8(until_closed(stream).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_eq!(body["error"]["code"], "request_timeout", "{answer}");
    served.stop().await;
}

#[tokio::test]
async fn shutdown_still_drains_a_request_in_flight() {
    let served = Served::start("").await;
    // Slower than the shutdown below, within the upstream timeout (500 ms).
    served
        .upstream
        .set_mode(Mode::Slow(Duration::from_millis(300)));
    let client = reqwest::Client::builder().timeout(WAIT).build().unwrap();
    let url = format!(
        "http://{}/v1/x402/solana/mainnet/alchemy/rpc/getSlot",
        served.addr
    );
    let request = tokio::spawn(
        client
            .post(url)
            .header("content-type", "application/json")
            .send(),
    );
    let upstream = served.upstream.clone();
    timeout(WAIT, async {
        while upstream.calls() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the request reaches the upstream");
    served.stop().await;
    let response = timeout(WAIT, request)
        .await
        .expect("answered within the bound")
        .unwrap()
        .expect("the request in flight at shutdown is answered, not cut");
    assert_eq!(response.status(), 200);
}
