//! Starts the embedded cluster for the offline demo. The settings that point the gateway at it
//! (provider, facilitator, `payTo`, `accepts`) were derived while loading the config
//! (`config::demo`); this only starts the cluster those settings describe, and checks that it
//! is that cluster.

use super::{LocalCluster, LocalnetError};
use crate::config::demo::LOCALNET_PROVIDER;
use crate::config::{Cluster, Config};

/// Starts the cluster of `config.localnet`, if any. The returned handle must live as long as
/// the gateway.
pub async fn start(config: &Config) -> Result<Option<LocalCluster>, LocalnetError> {
    let Some(local) = config.localnet.clone() else {
        return Ok(None);
    };
    let cluster = LocalCluster::start(local).await?;
    // The derivation read the same files and addresses; a mismatch is a bug, not a config.
    let derived_url = config
        .providers
        .iter()
        .find(|p| p.name == LOCALNET_PROVIDER)
        .and_then(|p| p.clusters.get(&Cluster::Devnet));
    if derived_url.map(|u| u.as_str().trim_end_matches('/')) != Some(cluster.rpc_url().as_str()) {
        return Err(LocalnetError::Config(format!(
            "the cluster listens at {}, not where the config points the provider {LOCALNET_PROVIDER:?} ({derived_url:?})",
            cluster.rpc_url()
        )));
    }
    Ok(Some(cluster))
}
