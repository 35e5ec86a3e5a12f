//! From the demo to production, through the real binary: keyed providers are never served
//! unpaid by accident, and `check-config` refuses what `serve` would refuse at start.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_x402-gateway");
/// EX_USAGE, what `main` returns for an unusable configuration.
const EXIT_CONFIG: i32 = 64;
const DEADLINE: Duration = Duration::from_secs(60);

/// Runs the binary in `dir` with exactly `env` (plus PATH) and waits for it to exit.
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the gateway binary runs");
    wait(&mut child);
    child.wait_with_output().expect("output")
}

fn wait(child: &mut Child) {
    let start = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("the gateway did not exit within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
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
    let check = run(dir.path(), &["--config", "unpaid.toml", "check-config"], &key);
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
    let check = run(dir.path(), &["--config", "opted-in.toml", "check-config"], &key);
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        stdout.contains("provider alchemy: enabled")
            && stdout.contains("(payment disabled: calls are free)"),
        "{stdout}"
    );
}
