//! The offline demo: when the config has a `[localnet]` section, the gateway starts the
//! embedded LiteSVM cluster beside itself and sells calls to it as the keyless provider
//! `localnet` on `devnet`, so a fresh clone can make real calls with no key and no network.

use crate::config::{Cluster, Config, KeyPlacement, ProviderConfig};
use crate::facilitator::local::LocalFacilitatorConfig;
use crate::localnet::{LocalCluster, LocalnetError};
use crate::paygate::challenge::AcceptConfig;
use crate::x402::network::SOLANA_DEVNET;

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

/// Starts the embedded cluster when configured and appends the `localnet` provider pointing
/// at it. The returned handle must live as long as the gateway.
pub async fn start_localnet(config: &mut Config) -> Result<Option<LocalCluster>, LocalnetError> {
    let Some(local) = config.localnet.clone() else {
        return Ok(None);
    };
    if config.providers.iter().any(|p| p.name == LOCALNET_PROVIDER) {
        return Err(LocalnetError::Config(format!(
            "a provider is already named {LOCALNET_PROVIDER:?}; rename it or remove [localnet]"
        )));
    }
    let cluster = LocalCluster::start(local).await?;
    config
        .providers
        .push(localnet_provider(&cluster.rpc_url())?);
    if config.facilitator.is_none() {
        config.facilitator = Some(localnet_facilitator(&cluster)?);
    }
    // Payments (when enabled) go to the cluster's payTo, in its USDC-like mint.
    if config.payment.pay_to.is_none() {
        config.payment.pay_to = Some(cluster.pay_to().to_string());
    }
    if config.payment.accepts.is_empty() {
        config.payment.accepts.push(AcceptConfig {
            network: SOLANA_DEVNET.into(),
            asset: cluster.mint().to_string(),
            decimals: config.localnet.as_ref().map(|l| l.decimals).unwrap_or(6),
            token_program: cluster.token_program().to_string(),
        });
    }
    Ok(Some(cluster))
}

/// A facilitator settling on the embedded cluster with its first funded fee payer.
fn localnet_facilitator(cluster: &LocalCluster) -> Result<LocalFacilitatorConfig, LocalnetError> {
    let url = url::Url::parse(&cluster.rpc_url())
        .map_err(|e| LocalnetError::Config(format!("cluster URL: {e}")))?;
    let fee_payer = cluster.fee_payers().first().ok_or_else(|| {
        LocalnetError::Config("[localnet] needs a fee payer for the facilitator".into())
    })?;
    let mut config =
        LocalFacilitatorConfig::single(SOLANA_DEVNET, vec![url], vec![cluster.mint().to_string()]);
    config.fee_payer_keypair = Some(fee_payer.path.clone());
    Ok(config)
}

fn localnet_provider(rpc_url: &str) -> Result<ProviderConfig, LocalnetError> {
    let url =
        url::Url::parse(rpc_url).map_err(|e| LocalnetError::Config(format!("cluster URL: {e}")))?;
    Ok(ProviderConfig {
        name: LOCALNET_PROVIDER.into(),
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
            .map(|m| (m.to_string(), 1))
            .collect(),
        das: Default::default(),
        disabled_reason: None,
    })
}
