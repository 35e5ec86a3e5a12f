//! A routing decision over a synthetic pool, for the decision-cost benchmark (test-util only).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Cluster, Config, Strategy};
use crate::jsonrpc::Call;
use crate::upstream::{Provider, Providers, Source};

/// `providers` keyless providers on devnet selling `getBalance`, each with a full latency
/// window, ready to be routed.
#[derive(Debug)]
pub struct DecisionFixture {
    providers: Vec<Arc<Provider>>,
    config: Config,
    call: Call,
}

impl DecisionFixture {
    /// Builds the pool.
    pub fn new(providers: usize) -> Self {
        let mut toml = String::from("[payment]\nenabled = false\n");
        for i in 0..providers {
            toml.push_str(&format!(
                "[[providers]]\nname = \"p{i}\"\nkey_placement = \"none\"\n\
                 atomic_per_million_units = {}\n[providers.clusters]\n\
                 devnet = \"http://127.0.0.1:9/\"\n[providers.rpc]\ngetBalance = {}\n",
                1_000_000 + i,
                i + 1
            ));
        }
        let config =
            Config::from_toml(&toml, &HashMap::<String, String>::new()).expect("bench config");
        let list = Providers::from_config(&config).expect("bench providers");
        let providers: Vec<Arc<Provider>> = list.snapshot().to_vec();
        for (i, p) in providers.iter().enumerate() {
            for _ in 0..config.routing.latency_window {
                p.endpoints[&Cluster::Devnet].health().record(
                    Duration::from_micros(500 + 100 * i as u64),
                    Ok(()),
                    Source::Request,
                );
            }
        }
        Self {
            providers,
            config,
            call: Call {
                id: Some(1.into()),
                method: "getBalance".into(),
                params: None,
            },
        }
    }

    /// One decision as the standard route makes it: pool, candidates with their prices, order.
    /// Returns the index of the chosen provider.
    pub fn decide(&self, strategy: &str) -> usize {
        let strategy = Strategy::parse(strategy).expect("a strategy name");
        let pool = super::pool(&self.providers, &self.config.routing, Cluster::Devnet);
        let (candidates, _charge) = super::candidates(
            &pool,
            &[&self.call],
            &crate::pricing::Pricing::new(&self.config).tariff(),
        );
        let plan = super::decide(strategy, candidates, Instant::now());
        let name = plan.primary().map(|c| c.provider.name()).unwrap_or("p0");
        name[1..].parse().unwrap_or(0)
    }
}
