//! The request log: one structured event per request, and never a secret.

use std::io::Write;
use std::sync::Arc;

use parking_lot::Mutex;
use tracing::dispatcher::{DefaultGuard, Dispatch};
use tracing::subscriber::NoSubscriber;
use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;

use crate::common::app::{providers_toml, ALCHEMY_KEY, HELIUS_KEY};
use crate::common::{MockUpstream, Mode, TestApp};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Makes `subscriber` this thread's default so that the events of callsites that other test
/// threads register meanwhile still reach it.
///
/// tracing caches each callsite's interest globally, computed when the callsite is first hit.
/// While exactly one dispatcher is registered, tracing-core computes it from the *registering
/// thread's* default only: a `request` callsite first hit by a concurrent test (no subscriber on
/// its thread) while ours is active was cached as `never`, and our capture missed the event
/// (about one run in twenty). With a second live dispatcher registered, tracing-core asks every
/// registered dispatcher under its lock instead, so the interest always includes ours.
fn capture_on_this_thread(subscriber: impl Subscriber + Send + Sync) -> CaptureGuard {
    let second = Dispatch::new(NoSubscriber::default());
    let default = tracing::subscriber::set_default(subscriber);
    CaptureGuard {
        _default: default,
        _second: second,
    }
}

/// Keeps the default subscriber and the second dispatcher alive for the test.
struct CaptureGuard {
    _default: DefaultGuard,
    _second: Dispatch,
}

#[tokio::test(flavor = "current_thread")]
async fn one_json_line_per_request_and_no_secrets() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .finish();
    let _guard = capture_on_this_thread(subscriber);

    let upstream = MockUpstream::start().await;
    let app = TestApp::new(&providers_toml(&upstream.url, &upstream.url)).await;
    let (status, _, _) = app
        .post_json(
            "/v1/x402/solana/mainnet/alchemy/rpc/getBalance",
            r#"{"params":["W"]}"#,
        )
        .await;
    assert_eq!(status, 200);
    upstream.set_mode(Mode::Status(503));
    let (status, _, _) = app
        .post_json(
            "/v1/x402/solana/mainnet/helius/rpc/getBalance",
            r#"{"params":["W"]}"#,
        )
        .await;
    assert_eq!(status, 502);

    let text = String::from_utf8(capture.0.lock().clone()).unwrap();
    assert!(
        !text.contains(ALCHEMY_KEY) && !text.contains(HELIUS_KEY),
        "a key leaked into the logs:\n{text}"
    );
    let events: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &serde_json::Value| e["message"] == "request")
        .collect();
    assert_eq!(events.len(), 2, "{text}");
    let ok = &events[0];
    assert_eq!(
        ok["route"],
        "/v1/x402/solana/{cluster}/{provider}/{surface}/{method}"
    );
    assert_eq!(ok["rpc.method"], "getBalance");
    assert_eq!(ok["upstream.provider"], "alchemy");
    assert_eq!(ok["cluster"], "mainnet");
    assert_eq!(ok["status"], 200);
    assert!(ok["duration_ms"].is_number());
    assert!(ok["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(events[1]["status"], 502);
    assert_eq!(events[1]["upstream.provider"], "helius");
}
