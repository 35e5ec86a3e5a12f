//! The offline demo's derived settings: with a `[localnet]` section the gateway sells calls to
//! the embedded LiteSVM cluster as the keyless provider `localnet` on `devnet`, so a fresh
//! clone can make real (paid) calls with no key and no network.
//!
//! Everything is derived here, while loading and before validation, from the `[localnet]`
//! values alone: the cluster's URL (its pinned listen address), its mint and token program,
//! its `payTo` (the configured one, or the keypair file genesis uses, generated here if
//! missing) and its first fee payer's keypair file (also generated here if missing). So `check-config` validates exactly the
//! configuration `serve` runs with, and `serve` then starts the cluster from the same values
//! (`localnet::demo::start`).

use std::net::{SocketAddr, TcpListener};

use solana_signer::Signer;
use url::Url;

use super::localnet::LocalnetConfig;
use super::{
    AcceptConfig, Cluster, Config, ConfigError, KeyPlacement, LocalFacilitatorConfig,
    ProviderConfig, ServiceConfig,
};
use crate::keyfile;
use crate::x402::network::SOLANA_DEVNET;

/// Where the embedded cluster's HTTP server answers the demo's small REST API.
pub const DEMO_API_PREFIX: &str = "/demo-api";

/// Id of the service added for that API (mounted at `/demo/…`).
pub const DEMO_SERVICE: &str = "demo";

/// Name of the provider added for the embedded cluster.
pub const LOCALNET_PROVIDER: &str = "localnet";

/// Methods the embedded cluster answers, sold at one unit each.
const LOCALNET_METHODS: &[&str] = &[
    "getAccountInfo",
    "getBalance",
    "getBlockHeight",
    "getEpochInfo",
    "getFeeForMessage",
    "getGenesisHash",
    "getHealth",
    "getLatestBlockhash",
    "getMinimumBalanceForRentExemption",
    "getMultipleAccounts",
    "getRecentPrioritizationFees",
    "getSignatureStatuses",
    "getSlot",
    "getTokenAccountBalance",
    "getTokenAccountsByOwner",
    "getTransaction",
    "getVersion",
    "isBlockhashValid",
    "sendTransaction",
    "simulateTransaction",
];

/// Appends the `localnet` provider and fills `[facilitator]`, `payment.pay_to` and
/// `payment.accepts` where the file left them out. Does nothing without `[localnet]`.
pub(super) fn resolve(config: &mut Config) -> Result<(), ConfigError> {
    let Some(local) = config.localnet.as_mut() else {
        return Ok(());
    };
    if config.providers.iter().any(|p| p.name == LOCALNET_PROVIDER) {
        return Err(ConfigError::invalid(
            "localnet",
            format!(
                "a provider is already named {LOCALNET_PROVIDER:?}; rename it or remove [localnet]"
            ),
        ));
    }
    local.listen = pin_port(local.listen)?;
    let local = local.clone();
    let url = cluster_url(&local)?;
    config
        .providers
        .push(provider(LOCALNET_PROVIDER, url.clone(), 1));
    if let Some(mirror) = &local.mirror_provider {
        if mirror == LOCALNET_PROVIDER || config.providers.iter().any(|p| &p.name == mirror) {
            return Err(ConfigError::invalid(
                "localnet.mirror_provider",
                format!("a provider is already named {mirror:?}"),
            ));
        }
        // The same cluster behind a second name, dearer: routing has a pool to choose from.
        config.providers.push(provider(mirror, url.clone(), 2));
    }
    // One small `[[services]]` entry, so the demo shows a free and a paid HTTP route, the
    // catalog and discovery offline: the cluster's REST API (status free, balances paid).
    if !config.services.iter().any(|s| s.id == DEMO_SERVICE) {
        config.services.push(demo_service(&url)?);
    }
    if config.facilitator.is_none() {
        config.facilitator = Some(facilitator(&local, url)?);
    }
    // Payments (when enabled) go to the cluster's payTo, in its USDC-like mint.
    if config.payment.pay_to.is_none() {
        config.payment.pay_to = Some(pay_to(&local)?);
    }
    if config.payment.accepts.is_empty() {
        config.payment.accepts.push(AcceptConfig {
            network: SOLANA_DEVNET.into(),
            asset: local.mint.clone(),
            decimals: local.decimals,
            token_program: local.token_program.program_id().to_string(),
        });
    }
    Ok(())
}

/// The demo's service: the embedded cluster's REST API at `{cluster}/demo-api`.
fn demo_service(cluster: &Url) -> Result<ServiceConfig, ConfigError> {
    let base = format!(
        "{}{}",
        cluster.as_str().trim_end_matches('/'),
        DEMO_API_PREFIX
    );
    let text = format!(
        r#"
id = "{DEMO_SERVICE}"
base_url = "{base}"
title = "Local cluster REST API"
description = "The embedded cluster's slot and version (free) and any account's balance (paid)."
timeout_ms = 5000
[routes]
"GET /v1/status" = {{ access = "free", description = "The cluster's slot and version" }}
"GET /v1/balance/:address" = {{ price = "0.001", description = "An account's lamports", output_schema = {{ type = "object", properties = {{ address = {{ type = "string" }}, lamports = {{ type = "integer" }}, slot = {{ type = "integer" }} }} }} }}
"#
    );
    toml::from_str(&text)
        .map_err(|e| ConfigError::invalid("localnet", format!("demo service: {e}")))
}

/// The listen address with a concrete port: the provider URL must be known before the cluster
/// binds, so port 0 ("any free port", what tests use) is chosen here. The port is free when
/// chosen and the cluster binds it moments later.
fn pin_port(listen: SocketAddr) -> Result<SocketAddr, ConfigError> {
    if !listen.ip().is_loopback() {
        return Err(ConfigError::invalid(
            "localnet.listen",
            format!("{listen} is not loopback; the local cluster has no authentication"),
        ));
    }
    if listen.port() != 0 {
        return Ok(listen);
    }
    TcpListener::bind(listen)
        .and_then(|l| l.local_addr())
        .map_err(|e| ConfigError::invalid("localnet.listen", format!("no free port: {e}")))
}

fn cluster_url(local: &LocalnetConfig) -> Result<Url, ConfigError> {
    Url::parse(&format!("http://{}", local.listen))
        .map_err(|e| ConfigError::invalid("localnet.listen", e.to_string()))
}

/// The configured `pay_to`, or the owner of the keypair file genesis will use (generated now
/// if it does not exist yet, so genesis finds the same key).
fn pay_to(local: &LocalnetConfig) -> Result<String, ConfigError> {
    if let Some(pay_to) = &local.pay_to {
        return Ok(pay_to.clone());
    }
    keyfile::load_or_create(&local.pay_to_keypair_path())
        .map(|k| k.pubkey().to_string())
        .map_err(|e| ConfigError::invalid("localnet.keypair_dir", e.to_string()))
}

/// A facilitator settling on the embedded cluster with its first funded fee payer.
fn facilitator(local: &LocalnetConfig, url: Url) -> Result<LocalFacilitatorConfig, ConfigError> {
    let fee_payer = local.fee_payers.first().ok_or_else(|| {
        ConfigError::invalid(
            "localnet.fee_payers",
            "needs a fee payer for the derived facilitator (or configure [facilitator])",
        )
    })?;
    // Generated now if missing (genesis funds the same file), so the facilitator's key loads
    // from `check-config` on a fresh clone as it does in `serve`.
    keyfile::load_or_create(fee_payer)
        .map_err(|e| ConfigError::invalid("localnet.fee_payers", e.to_string()))?;
    let mut config =
        LocalFacilitatorConfig::single(SOLANA_DEVNET, vec![url], vec![local.mint.clone()]);
    config.fee_payer_keypair = Some(fee_payer.clone());
    Ok(config)
}

fn provider(name: &str, url: Url, units: u64) -> ProviderConfig {
    ProviderConfig {
        name: name.into(),
        enabled: Some(true),
        key_placement: KeyPlacement::None,
        key_env: None,
        api_key: None,
        clusters: [(Cluster::Devnet, url)].into(),
        unit: Some("requests".into()),
        verified_at: None,
        // One atomic USDC unit per call: the demo chain costs us nothing.
        atomic_per_million_units: Some(1_000_000),
        rpc: LOCALNET_METHODS
            .iter()
            .map(|m| (m.to_string(), units))
            .collect(),
        das: Default::default(),
        weight: 1,
        disabled_reason: None,
    }
}
