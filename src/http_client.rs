//! The one way this crate builds outbound HTTP clients (providers, Solana RPC, facilitators):
//! connect and total timeouts, redirects off (a redirect is never legitimate here and could
//! point anywhere), and no proxy from the environment (HTTP(S)_PROXY must not silently reroute
//! paid traffic or keys).

use std::time::Duration;

/// A hardened reqwest builder; callers add what is specific to them (pool size, user agent).
pub(crate) fn hardened(connect_timeout: Duration, timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
}
