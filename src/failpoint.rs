//! Pause points for the crash tests: with `X402_FAILPOINT=<name>` set, a build with the
//! `test-util` feature stops the paid request at that step forever, after printing
//! `x402-failpoint: holding at <name>` on stderr, so a test can kill the process (SIGKILL)
//! exactly there and restart it. Without the feature every point compiles to nothing.
//!
//! Points, in the order a paid request meets them: `after_upstream` (answered, nothing
//! recorded for settlement), `before_settle` (kept answer recorded, nothing sent),
//! `after_settle` (landed, not yet recorded), `before_answer` (recorded, not yet answered).

/// Holds the current task forever at `point` when the environment names it.
#[cfg(feature = "test-util")]
pub(crate) async fn hold(point: &'static str) {
    static CHOSEN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let chosen = CHOSEN.get_or_init(|| std::env::var("X402_FAILPOINT").ok());
    if chosen.as_deref() == Some(point) {
        eprintln!("x402-failpoint: holding at {point}");
        std::future::pending::<()>().await;
    }
}

/// Holds the current task forever at `point` when the environment names it (not in this
/// build: a no-op).
#[cfg(not(feature = "test-util"))]
#[inline(always)]
pub(crate) async fn hold(_point: &'static str) {}
