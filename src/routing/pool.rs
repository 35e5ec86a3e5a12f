//! A cluster's pool, and the candidates for one request: the pool's providers that sell every
//! call of it, each with the price of the request if it served it. The request's price is the
//! highest of them, fixed before the 402 and never changed by failover.

use std::sync::Arc;

use crate::config::{Cluster, RoutingConfig};
use crate::jsonrpc::Call;
use crate::priced::Charge;
use crate::pricing::{self, Tariff};
use crate::upstream::{Endpoint, Origin, Provider};

use super::Candidate;

/// The enabled providers serving `cluster`, in list order: the configured pool (or every
/// configured provider when none is set), plus every provider registered for the cluster.
pub(crate) fn pool(
    providers: &[Arc<Provider>],
    routing: &RoutingConfig,
    cluster: Cluster,
) -> Vec<(Arc<Provider>, Endpoint)> {
    let only = routing.pool_of(cluster);
    providers
        .iter()
        .filter(|p| match (&p.origin, only) {
            (Origin::Config, Some(names)) => names.iter().any(|n| n == p.name()),
            _ => true,
        })
        .filter_map(|p| p.endpoints.get(&cluster).map(|ep| (p.clone(), ep.clone())))
        .collect()
}

/// The pool members that sell every method of `calls`, each priced for them, and the price of
/// the request: the highest of theirs (so whichever serves it, the price covers it). An
/// unpriced candidate makes the request unpriced (refused when payments are on).
pub(crate) fn candidates(
    pool: &[(Arc<Provider>, Endpoint)],
    calls: &[&Call],
    tariff: &Tariff,
) -> (Vec<Candidate>, Charge) {
    let mut out = Vec::with_capacity(pool.len());
    let mut charge = Charge::Nothing;
    for (provider, endpoint) in pool {
        if !calls
            .iter()
            .all(|c| provider.config.surface_of(&c.method).is_some())
        {
            continue;
        }
        let quote = pricing::quote(tariff, &provider.config, calls.iter().copied());
        let cost = match &quote {
            Ok(Some(q)) => Some(q.amount),
            _ => None,
        };
        charge = match (charge, quote) {
            (Charge::Unpriced(e), _) | (_, Err(e)) => Charge::Unpriced(e),
            (Charge::Quote(a), Ok(Some(b))) => {
                Charge::Quote(if b.amount > a.amount { b } else { a })
            }
            (Charge::Nothing, Ok(Some(b))) => Charge::Quote(b),
            (c, Ok(None)) => c,
        };
        out.push(Candidate {
            provider: provider.clone(),
            endpoint: endpoint.clone(),
            cost,
        });
    }
    (out, charge)
}
