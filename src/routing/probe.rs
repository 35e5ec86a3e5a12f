//! The active health probe: off the request path, every `health_check_interval_secs`, a cheap
//! call (`probe_method`, default `getHealth`) to each endpoint that had no call in the last
//! period or whose circuit is not closed. A provider serving traffic is measured by that
//! traffic (passive health), so probes cost the operator nothing on a busy pool; an idle or
//! failing one is measured, and probed back in when it recovers.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::time::Instant;

use crate::config::RoutingConfig;
use crate::upstream::{Circuit, Endpoint, Providers, Source, UpstreamClient, UpstreamError};

/// Starts the probe loop; it ends when `providers` is dropped. Interval 0: no probe.
pub(crate) fn spawn(providers: &Arc<Providers>, client: UpstreamClient, config: &RoutingConfig) {
    if config.health_check_interval_secs == 0 {
        return;
    }
    let period = Duration::from_secs(config.health_check_interval_secs);
    let timeout = Duration::from_millis(config.probe_timeout_ms);
    let body = Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"{}"}}"#,
        config.probe_method
    ));
    let providers: Weak<Providers> = Arc::downgrade(providers);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let Some(providers) = providers.upgrade() else {
                return;
            };
            round(&providers, &client, &body, period, timeout).await;
        }
    });
}

/// Probes every endpoint that needs it, concurrently; returns how many were probed.
pub(crate) async fn round(
    providers: &Providers,
    client: &UpstreamClient,
    body: &Bytes,
    period: Duration,
    timeout: Duration,
) -> usize {
    let now = Instant::now();
    let due: Vec<Endpoint> = providers
        .snapshot()
        .iter()
        .flat_map(|p| p.endpoints.values().cloned())
        .filter(|ep| {
            let h = ep.health();
            h.circuit() != Circuit::Closed
                || h.last_sample_at()
                    .is_none_or(|at| now.saturating_duration_since(at) >= period)
        })
        .collect();
    let count = due.len();
    futures::future::join_all(
        due.iter()
            .map(|ep| probe(client, ep, body.clone(), timeout)),
    )
    .await;
    count
}

#[derive(Deserialize)]
struct ProbeAnswer<'a> {
    #[serde(borrow)]
    result: Option<&'a RawValue>,
}

async fn probe(client: &UpstreamClient, endpoint: &Endpoint, body: Bytes, timeout: Duration) {
    let started = Instant::now();
    let outcome = match client.call(endpoint, body, timeout).await {
        (Ok(reply), _) => match serde_json::from_slice::<ProbeAnswer<'_>>(&reply.body) {
            // A node that answers an error object (e.g. getHealth's "node is behind") is not
            // healthy enough to route to.
            Ok(ProbeAnswer { result: Some(_) }) => Ok(()),
            _ => Err(UpstreamError::Protocol(
                "probe answered without a result".into(),
            )),
        },
        (Err(e), _) => Err(e),
    };
    endpoint.health().record(
        started.elapsed(),
        outcome.as_ref().map(|_| ()),
        Source::Probe,
    );
}
