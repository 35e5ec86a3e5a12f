//! Routing the standard JSON-RPC endpoint across a cluster's providers.
//!
//! - [`pool`]: which providers may serve a request (the cluster's pool, narrowed to those
//!   selling every call of it) and the request's price (the highest of theirs, fixed before
//!   the 402; failover never changes it).
//! - [`decide`]: the strategy orders them (`cheapest`, `fastest`, `most_reliable`,
//!   `load_balanced`); open circuits are left out, half-open ones go last. The forwarding
//!   handler walks that order on failures (`proxy::forward`), so a paid call is paid once and
//!   settled only after the answer that succeeded, whoever served it.
//! - [`probe`]: the active health probe; passive health is recorded by every answer.
//! - [`registry`]: providers registered at run time, shared through the store, and the
//!   `/providers`, `/providers/register`, `/route` routes.
//!
//! Per-method routes (`/{cluster}/{provider}/...`) name their provider and are not routed.

pub(crate) mod api;
mod decide;
mod pool;
pub(crate) mod probe;
pub(crate) mod registry;
#[cfg(feature = "test-util")]
pub mod testkit;

pub(crate) use decide::{decide, Candidate, Plan};
pub(crate) use pool::{candidates, pool};

use axum::http::HeaderMap;

use crate::config::{Cluster, RoutingConfig, Strategy};

/// The request header a client may use to ask for a strategy.
pub const STRATEGY_HEADER: &str = "x-route-strategy";
/// The response header naming the provider that served the call (never its URL).
pub const PROVIDER_HEADER: &str = "x-route-provider";
/// The response header counting the providers tried for the call (1 = no failover).
pub const ATTEMPTS_HEADER: &str = "x-route-attempts";

/// The strategy for a request on `cluster`: the client's `X-Route-Strategy` when the operator
/// allows it there, else the cluster's. An unknown or disallowed value is an error (never
/// silently ignored, so a client knows its choice was not applied).
pub(crate) fn strategy_for(
    config: &RoutingConfig,
    cluster: Cluster,
    headers: &HeaderMap,
) -> Result<Strategy, String> {
    let Some(value) = headers.get(STRATEGY_HEADER) else {
        return Ok(config.strategy_of(cluster));
    };
    let allowed = config.client_strategies_of(cluster);
    let names = || {
        allowed
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let asked = value
        .to_str()
        .ok()
        .and_then(|v| Strategy::parse(v.trim()))
        .ok_or_else(|| format!("{STRATEGY_HEADER} must be one of: {}", names()))?;
    if !allowed.contains(&asked) {
        return Err(format!(
            "{STRATEGY_HEADER} {asked} is not allowed on {cluster} (allowed: {})",
            if allowed.is_empty() {
                "none".into()
            } else {
                names()
            }
        ));
    }
    Ok(asked)
}
