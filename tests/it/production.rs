//! From the demo to production, through the real binary: keyed providers are never served
//! unpaid by accident, and `check-config` refuses what `serve` would refuse at start.

use crate::common::process::{free_port, wait_for_exit, DEADLINE};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_x402-gateway");
/// EX_USAGE, what `main` returns for an unusable configuration.
const EXIT_CONFIG: i32 = 64;

/// Runs the binary in `dir` with exactly `env` (plus PATH) and waits for it to exit.
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the gateway binary runs");
    wait_for_exit(child)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A keyed provider with payments off: both commands refuse it with the same one line, naming
/// the fix; the explicit opt-in is accepted.
#[test]
fn keyed_providers_are_not_served_unpaid_without_the_opt_in() {
    let dir = tempfile::tempdir().unwrap();
    let provider = r#"
[[providers]]
name = "alchemy"
key_env = "ALCHEMY_API_KEY"
key_placement = "path"
[providers.clusters]
mainnet = "https://solana-mainnet.g.alchemy.com/v2"
[providers.rpc]
getBalance = 10
"#;
    std::fs::write(dir.path().join("unpaid.toml"), provider).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let key = [("ALCHEMY_API_KEY", "real-key")];
    let check = run(
        dir.path(),
        &["--config", "unpaid.toml", "check-config"],
        &key,
    );
    let serve = run(
        dir.path(),
        &["--config", "unpaid.toml", "--listen", &listen, "serve"],
        &key,
    );
    let expected = "x402-gateway: config payment.enabled: payments are off but provider \
                    \"alchemy\" has an API key (ALCHEMY_API_KEY): anyone could use it for free; \
                    turn payments on, or set [payment] allow_unpaid = true to serve it unpaid\n";
    for (name, out) in [("check-config", &check), ("serve", &serve)] {
        assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{name}: {out:?}");
        assert_eq!(stderr(out), expected, "{name}");
    }

    let opted_in = format!("{provider}\n[payment]\nallow_unpaid = true\n");
    std::fs::write(dir.path().join("opted-in.toml"), opted_in).unwrap();
    let check = run(
        dir.path(),
        &["--config", "opted-in.toml", "check-config"],
        &key,
    );
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        stdout.contains("provider alchemy: enabled")
            && stdout.contains("(payment disabled: calls are free)"),
        "{stdout}"
    );
}

/// The mainnet example (the container's config) with dummy secrets in the environment.
fn mainnet_env(fee_payer: &str) -> Vec<(&'static str, String)> {
    vec![
        ("PUBLIC_BASE_URL", "https://rpc.example.com".into()),
        (
            "PAY_TO",
            "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM".into(),
        ),
        ("REDIS_URL", "redis://127.0.0.1:6379".into()),
        (
            "LEDGER_URL",
            "postgres://postgres@127.0.0.1:5432/test".into(),
        ),
        ("FEE_PAYER_KEY", fee_payer.into()),
        ("ALCHEMY_API_KEY", "dummy-alchemy-key".into()),
        ("HELIUS_API_KEY", "dummy-helius-key".into()),
    ]
}

fn mainnet_example() -> String {
    format!(
        "{}/gateway.mainnet.example.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn the_mainnet_example_passes_check_config_with_its_secrets_and_prints_prices() {
    let dir = tempfile::tempdir().unwrap();
    let fee_payer = solana_keypair::Keypair::new().to_base58_string();
    let env = mainnet_env(&fee_payer);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let config = mainnet_example();
    let out = run(dir.path(), &["--config", &config, "check-config"], &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    for line in [
        "config ok: listen 127.0.0.1:8080, public URL https://rpc.example.com/",
        "provider alchemy: enabled",
        "provider helius: enabled",
        // (2 × 5000 + 50 000 µlamports × 200 000 CU / 1e6) lamports × $150 × 1.2 = 3600.
        "settlement: 3600 atomic per payment = (2 signatures × 5000 + 10000 priority lamports) \
         × SOL/USD 150 × (1 + 2000 bps) (configured fallback; the oracle replaces it once read)",
        "price on alchemy: 1 getBalance = 3606 atomic",
        "price on helius: 1 getBalance = 3606 atomic",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("calls are free"), "{stdout}");
    assert!(
        !stdout.contains("dummy-alchemy-key") && !stdout.contains(&fee_payer),
        "{stdout}"
    );
}

/// Each required secret missing in turn: one line naming it, exit 64, from `check-config` and
/// from `serve` alike (the fee-payer key used to pass `check-config` and stop `serve`).
#[test]
fn the_mainnet_example_names_each_missing_secret_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let fee_payer = solana_keypair::Keypair::new().to_base58_string();
    let config = mainnet_example();
    let listen = format!("127.0.0.1:{}", free_port());
    for (missing, expected) in [
        (
            "PUBLIC_BASE_URL",
            "config server.public_base_url_env: PUBLIC_BASE_URL is not set",
        ),
        ("REDIS_URL", "config redis.url: is not set: set REDIS_URL"),
        (
            "LEDGER_URL",
            "config ledger.url: is not set: set LEDGER_URL",
        ),
        ("PAY_TO", "config payment.pay_to_env: PAY_TO is not set"),
        (
            "FEE_PAYER_KEY",
            "facilitator: fee payer environment variable FEE_PAYER_KEY is not set",
        ),
    ] {
        let env = mainnet_env(&fee_payer);
        let env: Vec<(&str, &str)> = env
            .iter()
            .filter(|(k, _)| *k != missing)
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        let check = run(dir.path(), &["--config", &config, "check-config"], &env);
        let serve = run(
            dir.path(),
            &["--config", &config, "--listen", &listen, "serve"],
            &env,
        );
        for (name, out) in [("check-config", &check), ("serve", &serve)] {
            let line = stderr(out);
            assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{name}: {out:?}");
            assert!(
                line.starts_with(&format!("x402-gateway: {expected}")) && line.lines().count() == 1,
                "{name} without {missing}: {line}"
            );
        }
    }
}

/// `healthcheck` probes a running gateway (exit 0) and fails on a stopped one (exit 1); a Redis
/// that does not answer at start is one warning in the log, not a refusal to start.
#[test]
fn healthcheck_follows_the_gateway_and_a_dead_redis_is_logged_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let dead_redis = free_port();
    let toml =
        format!("[redis]\nurl = \"redis://127.0.0.1:{dead_redis}\"\ncommand_timeout_ms = 200\n");
    std::fs::write(dir.path().join("gw.toml"), toml).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{listen}/healthz");
    let healthcheck = || run(dir.path(), &["healthcheck", "--url", &url], &[]);

    let down = healthcheck();
    assert_eq!(down.status.code(), Some(1), "{down:?}");
    assert!(
        stderr(&down).starts_with("x402-gateway: healthcheck: connect"),
        "{down:?}"
    );

    let mut server = Command::new(BIN)
        .args(["--config", "gw.toml", "--listen", &listen, "serve"])
        .current_dir(dir.path())
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let start = Instant::now();
    loop {
        if let Some(exit) = server.try_wait().unwrap() {
            panic!("serve exited with {exit}");
        }
        if healthcheck().status.success() {
            break;
        }
        if start.elapsed() > DEADLINE {
            let _ = server.kill();
            panic!("healthcheck never succeeded against {listen}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = server.kill();
    let out = server.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("shared store not reachable at start"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("\"level\":\"WARN\""), "{log}");
    assert_eq!(
        healthcheck().status.code(),
        Some(1),
        "after the gateway stopped"
    );
}
