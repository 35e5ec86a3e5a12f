//! Binary entry point: parse the command line, load the config (exit 64 on a bad one), build,
//! serve until SIGINT/SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokio::net::TcpListener;
use x402_gateway::cli::{Cli, Command};
use x402_gateway::config::{Config, ProcessEnv};
use x402_gateway::jsonrpc::Call;
use x402_gateway::pricing::quote;
use x402_gateway::{healthcheck, init_tracing, App};

/// mimalloc instead of the system allocator: a request allocates and frees many small objects
/// across the runtime's threads, and glibc's malloc/free were ~30% of the CPU of a 402 challenge
/// in `perf` (BENCHMARKS.md). Built without transparent huge pages (`no_thp` in Cargo.toml): with
/// them its arenas' RSS grew in 2 MiB steps (idle 31 MiB instead of 20).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// EX_USAGE: the configuration is unusable.
const EXIT_CONFIG: u8 = 64;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck { url, timeout_secs }) = &cli.command {
        let url = url
            .clone()
            .unwrap_or_else(|| healthcheck::default_url(cli.listen));
        return match healthcheck::probe(&url, Duration::from_secs(*timeout_secs)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(why) => {
                eprintln!("x402-gateway: healthcheck: {why}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match Config::load(cli.config.as_deref(), &ProcessEnv) {
        Ok(config) => config.with_listen(cli.listen),
        Err(e) => {
            eprintln!("x402-gateway: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if config.server.worker_threads > 0 {
        runtime.worker_threads(config.server.worker_threads);
    }
    match runtime.enable_all().build() {
        Ok(runtime) => runtime.block_on(run(cli, config)),
        Err(e) => {
            eprintln!("x402-gateway: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, config: Config) -> ExitCode {
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => {
            // What `serve` would refuse before connecting anything (the fee-payer key...).
            if let Err(e) = App::preflight(&config) {
                eprintln!("x402-gateway: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
            println!(
                "config ok: listen {}, public URL {}",
                config.server.listen, config.server.public_base_url
            );
            for p in &config.providers {
                let state = match (&p.disabled_reason, p.is_enabled()) {
                    (_, true) => "enabled".to_string(),
                    (Some(why), false) => format!("disabled ({why})"),
                    (None, false) => "disabled".to_string(),
                };
                println!(
                    "provider {}: {state}, {} rpc + {} das methods",
                    p.name,
                    p.rpc.len(),
                    p.das.len()
                );
            }
            println!("ledger: {}", config.ledger.describe());
            print_prices(&config);
            ExitCode::SUCCESS
        }
        #[cfg(feature = "localnet")]
        Command::Localnet => {
            let local = config.localnet.clone().unwrap_or_default();
            match x402_gateway::localnet::run_cli(local).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("x402-gateway: localnet: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        // Answered before the config is loaded (see `main`).
        Command::Migrate => match x402_gateway::ledger::Ledger::migrate(&config.ledger).await {
            Ok(applied) => {
                println!(
                    "ledger migrated ({}): {} migrations applied: {:?}",
                    config.ledger.describe(),
                    applied.len(),
                    applied
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("x402-gateway: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Healthcheck { .. } => ExitCode::SUCCESS,
        Command::Serve => serve(config).await,
    }
}

async fn serve(config: Config) -> ExitCode {
    init_tracing(&config.log);
    if config.serves_keys_unpaid() {
        // Loading refused this without the opt-in; with it, say so on every start.
        let keyed: Vec<&str> = config.keyed_providers().map(|p| p.name.as_str()).collect();
        tracing::warn!(
            providers = ?keyed,
            "payments are off and allow_unpaid = true: anyone can call these keyed providers for free"
        );
    }
    let listen = config.server.listen;
    // The embedded cluster must outlive the server: keep its handle in this frame. What points
    // the gateway at it was derived while loading the config.
    #[cfg(feature = "localnet")]
    let _localnet = match x402_gateway::localnet::demo::start(&config).await {
        Ok(Some(cluster)) => {
            announce_localnet(&cluster, listen, config.payment.enabled);
            Some(cluster)
        }
        Ok(None) => None,
        Err(e) => {
            eprintln!("x402-gateway: localnet: {e}");
            return ExitCode::FAILURE;
        }
    };
    #[cfg(not(feature = "localnet"))]
    if config.localnet.is_some() {
        tracing::warn!("[localnet] ignored: this build has no localnet feature");
    }
    let app = match App::build(config).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("x402-gateway: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let listener = match TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("x402-gateway: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Not fatal: /readyz answers 503 until the store does; but say it once, at start.
    if app.store.backend() != "memory" {
        let timeout = Duration::from_secs(5);
        match tokio::time::timeout(timeout, app.store.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(
                backend = app.store.backend(),
                error = %e,
                "shared store not reachable at start; /readyz answers 503 until it is"
            ),
            Err(_) => tracing::warn!(
                backend = app.store.backend(),
                "shared store did not answer within {timeout:?} at start; /readyz answers 503 until it does"
            ),
        }
    }
    for p in app.providers.snapshot().iter() {
        match &p.config.disabled_reason {
            None => tracing::info!(provider = p.name(), "provider enabled"),
            Some(why) => tracing::warn!(provider = p.name(), reason = %why, "provider disabled"),
        }
    }
    tracing::info!(%listen, "gateway listening");
    let ledger = app.ledger.clone();
    let served = x402_gateway::serve(app, listener, x402_gateway::shutdown_signal()).await;
    // What was written behind (events, outcomes) reaches the ledger before the process ends.
    ledger.flush().await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("x402-gateway: server error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What a few representative calls cost on each enabled provider: one `getBalance` (or the
/// provider's first method) and a full batch of it, so an operator sees the effect of
/// `[pricing]` before serving.
fn print_prices(config: &Config) {
    let paid = if config.payment.enabled {
        ""
    } else {
        " (payment disabled: calls are free)"
    };
    let batch = config.server.max_batch;
    let pricing = x402_gateway::pricing::Pricing::new(config);
    let tariff = pricing.tariff();
    let s = pricing.settlement().view();
    println!(
        "settlement: {} atomic per payment = ({} signatures × {} + {} priority lamports) × SOL/USD {} × (1 + {} bps){}",
        s.atomic,
        s.signatures,
        s.lamports_per_signature,
        s.priority_fee_lamports,
        s.sol_usd,
        s.margin_bps,
        if config.pricing.settlement.oracle.is_some() {
            " (configured fallback; the oracle replaces it once read)"
        } else {
            ""
        }
    );
    for p in config.enabled_providers() {
        let method = if p.rpc.contains_key("getBalance") {
            Some("getBalance")
        } else {
            p.rpc.keys().chain(p.das.keys()).next().map(String::as_str)
        };
        let Some(method) = method else { continue };
        let call = |method: &str| Call {
            id: None,
            method: method.to_string(),
            params: None,
        };
        let price = |method: &str, n: usize| {
            let call = call(method);
            match quote(&tariff, p, std::iter::repeat_n(&call, n)) {
                Ok(Some(q)) => format!("{} atomic", q.amount),
                Ok(None) => "nothing".to_string(),
                Err(e) => format!("unpriced ({e})"),
            }
        };
        // The method that costs the provider most, to show the top of the price range.
        let dearest = p
            .rpc
            .iter()
            .chain(p.das.iter())
            .max_by_key(|(_, units)| **units)
            .map_or(method, |(m, _)| m.as_str());
        println!(
            "price on {}: 1 {method} = {}, batch of {batch} {method} = {}, 1 {dearest} = {}{paid}",
            p.name,
            price(method, 1),
            price(method, batch),
            price(dearest, 1)
        );
    }
}

#[cfg(feature = "localnet")]
fn announce_localnet(
    cluster: &x402_gateway::localnet::LocalCluster,
    listen: std::net::SocketAddr,
    paid: bool,
) {
    use solana_signer::Signer;
    println!(
        "Embedded local Solana cluster at {} (provider \"localnet\", cluster devnet)",
        cluster.rpc_url()
    );
    println!("  mint {}  payTo {}", cluster.mint(), cluster.pay_to());
    for w in cluster.wallets() {
        println!(
            "  funded wallet {} ({})",
            w.keypair.pubkey(),
            w.path.display()
        );
    }
    let (wallet, keypair) = cluster
        .wallets()
        .first()
        .map(|w| (w.keypair.pubkey().to_string(), w.path.display().to_string()))
        .unwrap_or_default();
    let url = format!("http://{listen}/v1/x402/solana/devnet/localnet/rpc/getBalance");
    if paid {
        // Calls are paid: the paying client signs the USDC transfer with the funded wallet.
        println!(
            "Try: cargo run --bin x402-pay -- pay {url} \\\n  --keypair {keypair} --rpc {} \\\n  --body '{{\"params\":[\"{wallet}\"]}}'",
            cluster.rpc_url()
        );
    } else {
        println!(
            "Try: curl -s {url} \\\n  -H 'content-type: application/json' -d '{{\"params\":[\"{wallet}\"]}}'"
        );
    }
}
