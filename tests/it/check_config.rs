//! `check-config` accepts exactly what `serve` accepts: the real binary, both commands, on a
//! configuration `serve` used to refuse after `check-config` had said "config ok" (payments on,
//! no `pay_to`, no `[localnet]`), and on the embedded default (the demo), whose derived settings
//! now exist before validation.

use crate::common::process::{free_port, wait_for_exit, DEADLINE};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use x402_gateway::config::EMBEDDED_DEFAULT;

const BIN: &str = env!("CARGO_BIN_EXE_x402-gateway");
/// EX_USAGE, what `main` returns for an unusable configuration.
const EXIT_CONFIG: i32 = 64;

/// Runs the binary in `dir` (so generated demo keys land there) and waits for it to exit.
fn run(dir: &Path, args: &[&str]) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("GATEWAY_CONFIG")
        .env_remove("GATEWAY_LISTEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the gateway binary runs");
    wait_for_exit(child)
}

#[test]
fn check_config_and_serve_refuse_the_same_config_with_the_same_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("paid.toml"), "[payment]\nenabled = true\n").unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let check = run(dir.path(), &["--config", "paid.toml", "check-config"]);
    let serve = run(
        dir.path(),
        &["--config", "paid.toml", "--listen", &listen, "serve"],
    );
    let expected = "x402-gateway: config payment.pay_to: is required when payment is enabled \
                    (or add [localnet] for the demo)\n";
    for (name, out) in [("check-config", &check), ("serve", &serve)] {
        assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{name}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), expected, "{name}");
    }
}

#[tokio::test]
async fn the_embedded_default_passes_check_config_and_serves_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    // The embedded default exactly (no file): check-config accepts it and shows the derived
    // provider and its prices.
    let check = run(dir.path(), &["check-config"]);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    assert!(stdout.contains("provider localnet: enabled"), "{stdout}");
    assert!(
        stdout.contains("price on localnet: 1 getBalance = "),
        "{stdout}"
    );

    // serve runs it: the same text with the cluster on a free port, so tests run side by side.
    let text = EMBEDDED_DEFAULT.replace("127.0.0.1:8899", "127.0.0.1:0");
    std::fs::write(dir.path().join("demo.toml"), text).unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let args = ["--config", "demo.toml", "--listen", &listen];
    let check = run(dir.path(), &[&args[..], &["check-config"]].concat());
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    let mut server = Command::new(BIN)
        .args([&args[..], &["serve"]].concat())
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let paid = format!("http://{listen}/v1/x402/solana/devnet/localnet/rpc/getBalance");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(exit) = server.try_wait().unwrap() {
            panic!("serve exited with {exit} on a config check-config accepted");
        }
        let answer = client
            .post(&paid)
            .header("content-type", "application/json")
            .body(r#"{"params":["11111111111111111111111111111111"]}"#)
            .send()
            .await;
        if let Ok(answer) = answer {
            break answer.status();
        }
        if start.elapsed() > DEADLINE {
            let _ = server.kill();
            panic!("serve did not answer on {listen} within {DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(status, 402, "the demo charges for the paid route");
}
