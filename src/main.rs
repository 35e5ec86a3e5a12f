//! Binary entry point: parse the command line, load the config (exit 64 on a bad one), build,
//! serve until SIGINT/SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use tokio::net::TcpListener;
use x402_gateway::cli::{Cli, Command};
use x402_gateway::config::{Config, ProcessEnv};
use x402_gateway::{observability, App};

/// EX_USAGE: the configuration is unusable.
const EXIT_CONFIG: u8 = 64;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), &ProcessEnv) {
        Ok(config) => config.with_listen(cli.listen),
        Err(e) => {
            eprintln!("x402-gateway: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => {
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
            ExitCode::SUCCESS
        }
        Command::Serve => serve(config).await,
    }
}

async fn serve(config: Config) -> ExitCode {
    observability::init_tracing(&config.log);
    let listen = config.server.listen;
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
    for p in app.providers.iter() {
        match &p.config.disabled_reason {
            None => tracing::info!(provider = p.name(), "provider enabled"),
            Some(why) => tracing::warn!(provider = p.name(), reason = %why, "provider disabled"),
        }
    }
    tracing::info!(%listen, "gateway listening");
    match x402_gateway::serve(app, listener, x402_gateway::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("x402-gateway: server error: {e}");
            ExitCode::FAILURE
        }
    }
}
