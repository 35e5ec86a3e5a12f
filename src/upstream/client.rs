//! The outbound HTTP client shared by every provider call: hyper-util's pooled client over
//! rustls, sending to each endpoint's pre-parsed URI.
//!
//! Not reqwest (which the other outbound clients use): a provider call is on the hot path of
//! every proxied request, and reqwest re-parses the URL into a URI, builds a request through its
//! builder and arms its own timer per call (18% of a free call's user-space instructions,
//! `bench/instructions.sh`). The hardening is the same as `http_client::hardened`: connect and
//! total timeouts, no redirects (hyper never follows one), no proxy from the environment
//! (hyper never reads one).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_rustls::{ConfigBuilderExt, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::{Endpoint, UpstreamError};
use crate::config::UpstreamConfig;

const AGENT: &str = concat!("x402-gateway/", env!("CARGO_PKG_VERSION"));

/// A provider's answer: HTTP 2xx with a body no bigger than the cap.
#[derive(Debug, Clone)]
pub struct UpstreamReply {
    /// The HTTP status (always 2xx here).
    pub status: u16,
    /// The raw body, exactly as the provider sent it.
    pub body: Bytes,
    /// How long the exchange took.
    pub latency: Duration,
}

/// Pooled HTTP client for provider calls.
#[derive(Debug, Clone)]
pub struct UpstreamClient {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    max_response_bytes: usize,
}

impl UpstreamClient {
    /// Builds the client: rustls with the Mozilla roots (HTTP/2 by ALPN, plain HTTP allowed for
    /// local nodes), a keep-alive pool, TCP_NODELAY and the connect timeout.
    pub fn new(config: &UpstreamConfig) -> Result<Self, rustls::Error> {
        let mut tcp = HttpConnector::new();
        tcp.set_connect_timeout(Some(Duration::from_millis(config.connect_timeout_ms)));
        tcp.set_nodelay(true);
        // The TLS layer below takes the https:// URIs.
        tcp.enforce_http(false);
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(
                // ring by name, as reqwest does: the process-default provider would depend on
                // which crypto backends the dependency graph happens to enable.
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()?
                .with_webpki_roots()
                .with_no_client_auth(),
            )
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(tcp);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            // Without a timer the pool never expires idle connections.
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(Self {
            http,
            timeout: Duration::from_millis(config.timeout_ms),
            max_response_bytes: config.max_response_bytes,
        })
    }

    /// POSTs a JSON-RPC body to `endpoint` and returns the provider's 2xx answer, or why not,
    /// with how long it took either way, within the client's timeout or `within` if that is
    /// shorter (the caller's own deadline: one timer per call, not one per layer). The caller
    /// records the outcome in the endpoint's health once it has judged the answer (a 2xx body
    /// may still be garbage).
    pub async fn call(
        &self,
        endpoint: &Endpoint,
        body: Bytes,
        within: Duration,
    ) -> (Result<UpstreamReply, UpstreamError>, Duration) {
        let started = Instant::now();
        let limit = self.timeout.min(within);
        let result = match tokio::time::timeout(limit, self.exchange(endpoint, body)).await {
            Ok(result) => result,
            Err(_) => Err(UpstreamError::Timeout(limit.as_millis() as u64)),
        };
        let latency = started.elapsed();
        let result = result.map(|(status, body)| UpstreamReply {
            status,
            body,
            latency,
        });
        (result, latency)
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn exchange(
        &self,
        endpoint: &Endpoint,
        body: Bytes,
    ) -> Result<(u16, Bytes), UpstreamError> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = endpoint.uri().clone();
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, HeaderValue::from_static(AGENT));
        if let Some((name, value)) = endpoint.key_header() {
            headers.insert(name.clone(), value.clone());
        }
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| self.classify(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(UpstreamError::Status(status.as_u16()));
        }
        let max = self.max_response_bytes;
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > max as u64) {
            return Err(UpstreamError::TooLarge(max));
        }
        let body = Limited::new(response.into_body(), max)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<LengthLimitError>() {
                    UpstreamError::TooLarge(max)
                } else {
                    UpstreamError::Transport(chain(&*e))
                }
            })?
            .to_bytes();
        Ok((status.as_u16(), body))
    }

    /// A client failure as an [`UpstreamError`]. hyper's errors never carry the URI (and so
    /// never the key in it); a connect timeout is a timeout like any other.
    fn classify(&self, err: &hyper_util::client::legacy::Error) -> UpstreamError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(cause) = source {
            if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::TimedOut {
                    return UpstreamError::Timeout(self.timeout.as_millis() as u64);
                }
            }
            source = cause.source();
        }
        UpstreamError::Transport(chain(err))
    }
}

/// An error and its causes, `: `-separated.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Cluster, KeyPlacement, Secret};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A caller's deadline longer than the client's timeout.
    const LONG: Duration = Duration::from_secs(10);

    fn config(max_response_bytes: usize) -> UpstreamConfig {
        UpstreamConfig {
            timeout_ms: 500,
            connect_timeout_ms: 200,
            max_response_bytes,
            ..UpstreamConfig::default()
        }
    }

    /// A one-shot HTTP/1.1 server on loopback: returns the request head it read and answers
    /// `response` (raw bytes), then keeps the connection open briefly.
    async fn serve_once(response: &'static [u8]) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // Read until the JSON body's closing brace has arrived.
            while !seen.ends_with(b"}") {
                let n = socket.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            socket.write_all(response).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            String::from_utf8_lossy(&seen).into_owned()
        });
        (format!("http://{addr}/v2"), task)
    }

    fn endpoint(base: &str, placement: KeyPlacement) -> Endpoint {
        let key = Secret::new("K3Y");
        Endpoint::new(
            "p",
            Cluster::Devnet,
            &url::Url::parse(base).unwrap(),
            &placement,
            Some(&key),
        )
        .unwrap()
    }

    /// POSTs `{}` to `base` (the key in the path) with a long caller deadline.
    async fn post_empty(
        client: &UpstreamClient,
        base: &str,
    ) -> Result<UpstreamReply, UpstreamError> {
        client
            .call(
                &endpoint(base, KeyPlacement::Path),
                Bytes::from_static(b"{}"),
                LONG,
            )
            .await
            .0
    }

    #[tokio::test]
    async fn posts_the_body_with_the_key_and_returns_the_answer_verbatim() {
        let (base, server) = serve_once(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 35\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":7}",
        )
        .await;
        let client = UpstreamClient::new(&config(1024)).unwrap();
        let e = endpoint(
            &base,
            KeyPlacement::Header {
                name: "x-api-key".into(),
            },
        );
        let (reply, _) = client
            .call(
                &e,
                Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"method":"getSlot"}"#),
                LONG,
            )
            .await;
        let reply = reply.unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(&reply.body[..], br#"{"jsonrpc":"2.0","id":1,"result":7}"#);
        let head = server.await.unwrap().to_ascii_lowercase();
        assert!(head.starts_with("post /v2 http/1.1\r\n"), "{head}");
        assert!(head.contains("x-api-key: k3y\r\n"), "{head}");
        assert!(
            head.contains("content-type: application/json\r\n"),
            "{head}"
        );
        assert!(head.contains("user-agent: x402-gateway/"), "{head}");
        assert!(
            head.ends_with(r#"{"jsonrpc":"2.0","id":1,"method":"getslot"}"#),
            "{head}"
        );
    }

    #[tokio::test]
    async fn the_key_in_the_path_reaches_the_provider() {
        let (base, server) = serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").await;
        let client = UpstreamClient::new(&config(1024)).unwrap();
        let reply = post_empty(&client, &base).await;
        assert!(reply.is_ok());
        let head = server.await.unwrap();
        assert!(head.starts_with("POST /v2/K3Y HTTP/1.1\r\n"), "{head}");
    }

    #[tokio::test]
    async fn a_non_2xx_status_is_an_error() {
        let (base, _server) =
            serve_once(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n").await;
        let client = UpstreamClient::new(&config(1024)).unwrap();
        let reply = post_empty(&client, &base).await;
        assert_eq!(reply.unwrap_err(), UpstreamError::Status(503));
    }

    #[tokio::test]
    async fn an_answer_over_the_cap_is_refused_by_its_length_or_while_streaming() {
        let (base, _server) =
            serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\n{\"result\":\"xxxxxxx\"}")
                .await;
        let client = UpstreamClient::new(&config(10)).unwrap();
        let reply = post_empty(&client, &base).await;
        assert_eq!(reply.unwrap_err(), UpstreamError::TooLarge(10));

        // No declared length: chunked, refused once the chunks pass the cap.
        let (base, _server) = serve_once(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n8\r\n{\"result\r\n8\r\n\":\"xxxxx\r\n4\r\nxx\"}\r\n0\r\n\r\n",
        )
        .await;
        let reply = post_empty(&client, &base).await;
        assert_eq!(reply.unwrap_err(), UpstreamError::TooLarge(10));
    }

    #[tokio::test]
    async fn a_silent_provider_times_out_and_a_closed_port_is_a_transport_error() {
        // Accepts, reads, never answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _held = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(socket);
        });
        let client = UpstreamClient::new(&config(1024)).unwrap();
        let (reply, latency) = client
            .call(
                &endpoint(&format!("http://{addr}/"), KeyPlacement::Path),
                Bytes::from_static(b"{}"),
                LONG,
            )
            .await;
        assert_eq!(reply.unwrap_err(), UpstreamError::Timeout(500));
        assert!(latency >= Duration::from_millis(500), "{latency:?}");
        // A caller's deadline shorter than the client's timeout is the one kept.
        let (reply, latency) = client
            .call(
                &endpoint(&format!("http://{addr}/"), KeyPlacement::Path),
                Bytes::from_static(b"{}"),
                Duration::from_millis(100),
            )
            .await;
        assert_eq!(reply.unwrap_err(), UpstreamError::Timeout(100));
        assert!(latency < Duration::from_millis(500), "{latency:?}");

        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let reply = post_empty(&client, &format!("http://{addr}/")).await;
        match reply.unwrap_err() {
            UpstreamError::Transport(message) => {
                assert!(!message.contains("K3Y"), "{message}");
            }
            other => panic!("expected a transport error, got {other:?}"),
        }
    }
}
