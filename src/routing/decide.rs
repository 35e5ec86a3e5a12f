//! The routing decision: a pool's eligible providers, ordered by a strategy into the list
//! failover walks. Pure apart from reading each endpoint's health once (one short lock) and,
//! for `load_balanced`, the thread's RNG.

use std::cmp::Ordering;
use std::sync::Arc;

use rand::Rng;
use tokio::time::Instant;

use crate::config::Strategy;
use crate::upstream::{Circuit, Endpoint, Provider, RouteView};

/// A provider that can serve the request, with what it would cost us to charge for it.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// The provider.
    pub provider: Arc<Provider>,
    /// Its endpoint on the request's cluster.
    pub endpoint: Endpoint,
    /// The price of this request if this provider serves it (`None`: unpriced).
    pub cost: Option<u64>,
}

/// The decision for one request: the candidates in the order they will be tried.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The strategy that ordered them.
    pub strategy: Strategy,
    /// Healthy candidates first (by the strategy), then half-open ones; open ones are left out.
    pub order: Vec<Candidate>,
    /// Eligible candidates left out because their circuit is open.
    pub excluded: usize,
}

impl Plan {
    /// A plan of one fixed provider (the per-method routes), whatever its health.
    pub(crate) fn fixed(candidate: Candidate) -> Self {
        Self {
            strategy: Strategy::MostReliable,
            order: vec![candidate],
            excluded: 0,
        }
    }

    /// The first choice.
    pub(crate) fn primary(&self) -> Option<&Candidate> {
        self.order.first()
    }
}

/// Orders `candidates` (in pool order, which breaks ties) by `strategy`.
pub(crate) fn decide(strategy: Strategy, candidates: Vec<Candidate>, now: Instant) -> Plan {
    let mut closed = Vec::with_capacity(candidates.len());
    let mut half_open = Vec::new();
    let mut excluded = 0;
    for (index, c) in candidates.into_iter().enumerate() {
        let view = c.endpoint.health().view(now);
        let entry = Ranked {
            index,
            view,
            candidate: c,
        };
        match view.circuit {
            Circuit::Closed => closed.push(entry),
            Circuit::HalfOpen => half_open.push(entry),
            Circuit::Open => excluded += 1,
        }
    }
    rank(strategy, &mut closed);
    rank(strategy, &mut half_open);
    let order = closed
        .into_iter()
        .chain(half_open)
        .map(|r| r.candidate)
        .collect();
    Plan {
        strategy,
        order,
        excluded,
    }
}

struct Ranked {
    index: usize,
    view: RouteView,
    candidate: Candidate,
}

impl Ranked {
    /// In-flight requests per unit of weight.
    fn load(&self) -> f64 {
        f64::from(self.view.in_flight) / f64::from(self.candidate.provider.config.weight.max(1))
    }
}

fn rank(strategy: Strategy, list: &mut [Ranked]) {
    match strategy {
        Strategy::Cheapest => list.sort_by(|a, b| {
            let cost = |r: &Ranked| r.candidate.cost.unwrap_or(u64::MAX);
            cost(a).cmp(&cost(b)).then(a.index.cmp(&b.index))
        }),
        // A provider with no sample yet ranks as 0 ms: it gets tried, and measured. One whose
        // recent calls all failed has no latency to offer: it ranks last.
        Strategy::Fastest => list.sort_by(|a, b| {
            let latency = |r: &Ranked| match r.view.latency_ms {
                Some(ms) => ms,
                None if r.view.success_rate < 1.0 => f64::INFINITY,
                None => 0.0,
            };
            latency(a)
                .total_cmp(&latency(b))
                .then(a.index.cmp(&b.index))
        }),
        Strategy::MostReliable => list.sort_by(|a, b| {
            b.view
                .success_rate
                .total_cmp(&a.view.success_rate)
                .then(a.index.cmp(&b.index))
        }),
        Strategy::LoadBalanced => {
            // Power of two choices: two distinct random candidates, the less loaded first (a
            // tie goes to the first drawn, which is random); the rest, least loaded first, are
            // the failover order.
            if list.len() >= 2 {
                let mut rng = rand::thread_rng();
                let a = rng.gen_range(0..list.len());
                let mut b = rng.gen_range(0..list.len() - 1);
                if b >= a {
                    b += 1;
                }
                let pick = match list[b].load().partial_cmp(&list[a].load()) {
                    Some(Ordering::Less) => b,
                    _ => a,
                };
                list.swap(0, pick);
                list[1..].sort_by(|x, y| x.load().total_cmp(&y.load()).then(x.index.cmp(&y.index)));
            }
        }
    }
}
