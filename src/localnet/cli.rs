//! `cargo run -- localnet`: the library side of the subcommand (the binary wires clap).

use super::{LocalCluster, LocalnetConfig};
use solana_signer::Signer;

/// `x402-gateway localnet`: starts the cluster, prints how to use it, runs until Ctrl-C.
pub async fn run_cli(cfg: LocalnetConfig) -> anyhow::Result<()> {
    let cluster = LocalCluster::start(cfg.clone()).await?;
    println!("Local Solana cluster (LiteSVM) running");
    println!("  RPC URL:        {}", cluster.rpc_url());
    println!(
        "  mint:           {} ({} decimals, {})",
        cluster.mint(),
        cfg.decimals,
        cluster.token_program()
    );
    println!("  payTo:          {}", cluster.pay_to());
    if let Some(w) = cluster.pay_to_keypair() {
        println!("  payTo keypair:  {}", w.path.display());
    }
    for w in cluster.fee_payers() {
        println!(
            "  fee payer:      {} ({})",
            w.keypair.pubkey(),
            w.path.display()
        );
    }
    for w in cluster.wallets() {
        let pk = w.keypair.pubkey();
        println!(
            "  wallet:         {pk} ({}) {} lamports, {} tokens (atomic)",
            w.path.display(),
            cluster.sol_balance(&pk),
            cluster.token_balance(&pk)
        );
    }
    println!(
        "  slot time:      {} ms; blockhashes valid for 150 slots",
        cfg.slot_ms
    );
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    cluster.shutdown().await;
    Ok(())
}
