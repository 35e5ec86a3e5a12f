//! Interop: x402 clients nobody on this project wrote pay the gateway unmodified over real HTTP
//! on loopback, each with a real signed USDC transfer settled on the embedded local cluster: the
//! official TypeScript (`@x402/fetch`, `@x402/axios`) and Python (`x402`) clients, the legacy v1
//! `x402-fetch`, a `@solana/web3.js` `Connection` with the paying fetch, PayAI's `x402-solana`,
//! and our own `x402-pay pay`. Versions are pinned by `tests/interop/package-lock.json`
//! and `tests/interop/requirements.txt`.
//!
//! Needs `node` (v20+) with `npm`, and `python3` with `venv`, on PATH. The pinned packages are
//! installed by the tests themselves (`npm ci --prefix tests/interop`, a venv at
//! `tests/interop/.venv`) when missing or stale; without the tools, or when an install fails, the
//! tests fail naming the fix: they never skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use solana_signer::Signer;
use x402_gateway::localnet::{LocalCluster, LocalnetConfig};
use x402_gateway::x402::network::SOLANA_DEVNET;

use crate::common::gateway::PaidGateway;

/// localnet: 1 unit × 1 atomic per unit × 1.2 → 2, + 600 surcharge → the 1000 floor.
const PRICE: u64 = 1000;
/// The client script may need a cold Node start plus two RPC reads and a settlement.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

pub(crate) fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// How long `npm ci` may take on a cold npm cache (a few dozen packages from the registry).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);

/// `node` and the pinned packages (installed here when missing), or a panic naming the fix.
///
/// One install per test process: the `OnceLock` makes concurrent callers wait for the first one
/// instead of racing two `npm ci` runs over the same `node_modules`. Only this binary installs
/// them (the interop test lives in the one integration-test binary), so no cross-process lock.
pub(crate) fn require_node() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = INSTALLED.get_or_init(install_pinned_packages) {
        panic!("{e}");
    }
}

fn install_pinned_packages() -> Result<(), String> {
    install_node_packages(&interop_dir())
}

/// `node` and the official reference servers of `bench/reference/` (installed here when
/// missing), or a panic naming the fix; their directory.
pub(crate) fn require_reference_server() -> PathBuf {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/reference");
    if let Err(e) = INSTALLED.get_or_init(|| install_node_packages(&dir)) {
        panic!("{e}");
    }
    dir
}

/// `node`, `npm`, and a complete `npm ci` of `dir` (run here when missing or stale).
fn install_node_packages(dir: &Path) -> Result<(), String> {
    let fix = format!(
        "install Node 20+ and npm (on PATH), then rerun; the test installs {}'s pinned \
         packages itself",
        dir.display()
    );
    for tool in ["node", "npm"] {
        match Command::new(tool).arg("--version").output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => return Err(format!("`{tool} --version` failed ({}); {fix}", out.status)),
            Err(e) => {
                return Err(format!(
                    "`{tool}` is not installed or not on PATH ({e}); {fix}"
                ))
            }
        }
    }
    if let Some(missing) = missing_pinned_package(dir) {
        eprintln!(
            "interop: {missing}; running npm ci --prefix {}",
            dir.display()
        );
        npm_ci(dir)?;
        if let Some(missing) = missing_pinned_package(dir) {
            return Err(format!(
                "after `npm ci --prefix {}`: {missing}",
                dir.display()
            ));
        }
    }
    Ok(())
}

/// The first pinned dependency of `dir/package.json` that `node_modules` lacks (or holds at
/// another version), or `None` when a complete `npm ci` is in place.
fn missing_pinned_package(dir: &Path) -> Option<String> {
    let modules = dir.join("node_modules");
    // npm writes its hidden lockfile last: without it an install was interrupted.
    if !modules.join(".package-lock.json").is_file() {
        return Some(format!("{} has no completed install", modules.display()));
    }
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("package.json")).expect("package.json"),
    )
    .expect("package.json is JSON");
    let pinned = manifest["dependencies"].as_object().expect("dependencies");
    pinned.iter().find_map(|(name, version)| {
        let path = modules.join(name).join("package.json");
        let installed = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok());
        match installed {
            Some(p) if p["version"] == *version => None,
            Some(p) => Some(format!("{name} is {} (pinned {version})", p["version"])),
            None => Some(format!("{} is missing", path.display())),
        }
    })
}

/// `npm ci --prefix DIR --no-audit --no-fund`, bounded by `INSTALL_TIMEOUT`.
fn npm_ci(dir: &Path) -> Result<(), String> {
    let mut npm = Command::new("npm");
    npm.arg("ci")
        .arg("--prefix")
        .arg(dir)
        .args(["--no-audit", "--no-fund"]);
    run_install(
        npm,
        &format!("npm ci --prefix {} --no-audit --no-fund", dir.display()),
        "the npm registry must be reachable, or run it by hand",
    )
}

/// Runs an install command with inherited output, bounded by `INSTALL_TIMEOUT`.
fn run_install(mut command: Command, shown: &str, fix: &str) -> Result<(), String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawning `{shown}` failed: {e}"))?;
    let deadline = Instant::now() + INSTALL_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                return Err(format!("`{shown}` exited {status} (output above); {fix}"))
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{shown}` did not finish within {INSTALL_TIMEOUT:?}"
                ));
            }
            Err(e) => return Err(format!("waiting for `{shown}`: {e}")),
        }
    }
}

/// The venv's python with `tests/interop/requirements.txt` installed (here, when missing), or a
/// panic naming the fix. One install per test process, as for node.
pub(crate) fn python() -> PathBuf {
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match INSTALLED.get_or_init(install_python_requirements) {
        Ok(python) => python.clone(),
        Err(e) => panic!("{e}"),
    }
}

fn install_python_requirements() -> Result<PathBuf, String> {
    let fix = "install Python 3.10+ with the venv module (`python3 -m venv`, Debian: \
               python3-venv) on PATH, then rerun; the test installs tests/interop/requirements.txt \
               into tests/interop/.venv itself";
    match Command::new("python3").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return Err(format!(
                "`python3 --version` failed ({}); {fix}",
                out.status
            ))
        }
        Err(e) => {
            return Err(format!(
                "`python3` is not installed or not on PATH ({e}); {fix}"
            ))
        }
    }
    let venv = interop_dir().join(".venv");
    let python = venv.join("bin/python");
    let requirements = std::fs::read_to_string(interop_dir().join("requirements.txt"))
        .map_err(|e| format!("reading tests/interop/requirements.txt: {e}"))?;
    // Written after a complete install: a venv whose stamp differs is reinstalled.
    let stamp = venv.join("installed-requirements.txt");
    if python.is_file() && std::fs::read_to_string(&stamp).ok().as_ref() == Some(&requirements) {
        return Ok(python);
    }
    eprintln!(
        "interop: installing tests/interop/requirements.txt into {}",
        venv.display()
    );
    let mut create = Command::new("python3");
    create.args(["-m", "venv"]).arg(&venv);
    run_install(create, "python3 -m venv tests/interop/.venv", fix)?;
    let mut pip = Command::new(&python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "-q",
        "-r",
    ])
    .arg(interop_dir().join("requirements.txt"));
    run_install(
        pip,
        "tests/interop/.venv/bin/python -m pip install -r tests/interop/requirements.txt",
        "PyPI must be reachable, or run it by hand",
    )?;
    std::fs::write(&stamp, &requirements)
        .map_err(|e| format!("writing {}: {e}", stamp.display()))?;
    Ok(python)
}

/// The paid gateway (in-process facilitator, the `localnet` provider) on `cluster`, served on a
/// real loopback listener. Returns it, its base URL and the sender that stops the server.
async fn serve_gateway(
    cluster: LocalCluster,
    dir: tempfile::TempDir,
) -> (PaidGateway, String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let gateway = PaidGateway::builder()
        .public_base_url(&base)
        .with_cluster(cluster, dir)
        .build()
        .await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(x402_gateway::serve(
        gateway.app.app.clone(),
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    (gateway, base, stop)
}

/// Runs one client script once (`program script url keypair rpc_url body`); returns its JSON
/// report `{status, body, paymentResponse, payer}`.
async fn run_client(program: &Path, script: &str, args: [String; 4]) -> Value {
    let child = tokio::process::Command::new(program)
        .arg(interop_dir().join(script))
        .args(args)
        .current_dir(interop_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {} {script}: {e}", program.display()));
    let out = tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within {CLIENT_TIMEOUT:?}"))
        .expect("client output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} exited {}:\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default().trim())
        .unwrap_or_else(|e| panic!("{script} output is not JSON ({e}): {stdout}\nstderr: {stderr}"))
}

/// A paid gateway on a running (unpaused) cluster, served on loopback.
async fn paid_gateway() -> (PaidGateway, String, tokio::sync::oneshot::Sender<()>) {
    let dir = tempfile::tempdir().unwrap();
    // The clock runs (no pause): clients see slots advance as on a real cluster.
    let cluster = LocalCluster::start(LocalnetConfig::for_tests(dir.path()))
        .await
        .unwrap();
    serve_gateway(cluster, dir).await
}

/// Pays `getBalance` of the client wallet with `script` run by `program` and checks the 200,
/// the upstream's answer, the success receipt and the exact balance changes.
async fn pays_get_balance(program: &Path, script: &str) {
    pays_get_balance_with(|args| run_client(program, script, args)).await
}

/// [`pays_get_balance`] with any client: `pay([url, keypair, rpc_url, body])` returns its report.
async fn pays_get_balance_with<F, Fut>(pay: F)
where
    F: FnOnce([String; 4]) -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let buyer = Buyer::new().await;
    let url = format!(
        "{}/v1/x402/solana/devnet/localnet/rpc/getBalance",
        buyer.base
    );
    let body = serde_json::json!({ "params": [buyer.client.to_string()] }).to_string();
    let report = pay([url, buyer.keypair(), buyer.rpc_url(), body]).await;

    assert_eq!(report["status"], 200, "{report:#}");
    assert_eq!(report["payer"], buyer.client.to_string());
    assert_eq!(
        report["body"]["result"]["value"], buyer.lamports,
        "the upstream's answer (the wallet's lamports; the fee payer paid the fee): {report:#}"
    );
    assert_success_receipt(&report, &buyer.client.to_string());
    buyer.assert_paid(1);
}

/// A paid gateway on loopback, its first wallet as the client, and the balances before paying.
struct Buyer {
    gateway: PaidGateway,
    base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
    client: solana_address::Address,
    lamports: u64,
    client_before: u64,
    pay_to_before: u64,
}

impl Buyer {
    async fn new() -> Self {
        let (gateway, base, _stop) = paid_gateway().await;
        let cluster = &gateway.cluster;
        let client = cluster.wallets()[0].keypair.pubkey();
        let lamports = cluster.sol_balance(&client);
        let client_before = cluster.token_balance(&client);
        let pay_to_before = cluster.token_balance(&cluster.pay_to());
        Self {
            gateway,
            base,
            _stop,
            client,
            lamports,
            client_before,
            pay_to_before,
        }
    }

    fn keypair(&self) -> String {
        self.gateway.cluster.wallets()[0].path.display().to_string()
    }

    fn rpc_url(&self) -> String {
        self.gateway.cluster.rpc_url()
    }

    /// Exactly `payments` × the price moved from the client to `payTo`, and no SOL: the
    /// facilitator's fee payer paid the fees.
    fn assert_paid(&self, payments: u64) {
        let cluster = &self.gateway.cluster;
        assert_eq!(
            cluster.token_balance(&self.client),
            self.client_before - payments * PRICE
        );
        assert_eq!(
            cluster.token_balance(&cluster.pay_to()),
            self.pay_to_before + payments * PRICE
        );
        assert_eq!(
            cluster.sol_balance(&self.client),
            self.lamports,
            "the client paid no SOL: the facilitator's fee payer did"
        );
    }
}

/// `paymentResponse`: success, our network, the payer, a transaction signature.
fn assert_success_receipt(report: &Value, payer: &str) {
    let receipt = &report["paymentResponse"];
    assert_eq!(receipt["success"], true, "{report:#}");
    assert_eq!(receipt["payer"], payer, "{report:#}");
    assert!(
        receipt["network"] == SOLANA_DEVNET || receipt["network"] == "solana-devnet",
        "{report:#}"
    );
    let signature = receipt["transaction"].as_str().unwrap_or_default();
    assert!(
        bs58::decode(signature).into_vec().ok().map(|b| b.len()) == Some(64),
        "a transaction signature: {receipt}"
    );
}

/// `node`, with the pinned packages of `tests/interop` installed.
pub(crate) fn node() -> &'static Path {
    require_node();
    Path::new("node")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_typescript_client_pays_unmodified() {
    pays_get_balance(node(), "pay.mjs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_v1_typescript_client_pays_unmodified() {
    pays_get_balance(node(), "pay_v1.mjs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_axios_client_pays_unmodified() {
    pays_get_balance(node(), "pay_axios.mjs").await;
}

/// A web3.js `Connection` on the standard JSON-RPC route with the official paying fetch: a
/// `getBalance` and a batch (`getBalance` + `getSlot`), each one paid request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web3_connection_with_the_paying_fetch_pays_single_calls_and_batches() {
    let program = node();
    let buyer = Buyer::new().await;
    let route = format!("{}/v1/x402/solana/devnet/rpc", buyer.base);
    let report = run_client(
        program,
        "web3_connection.mjs",
        [
            route,
            buyer.keypair(),
            buyer.rpc_url(),
            buyer.client.to_string(),
        ],
    )
    .await;

    let (client, lamports) = (buyer.client, buyer.lamports);
    assert_eq!(report["lamports"], lamports, "{report:#}");
    assert_eq!(report["batchLamports"], lamports, "{report:#}");
    assert!(report["batchSlot"].is_u64(), "{report:#}");
    let receipts = report["receipts"].as_array().expect("receipts");
    assert_eq!(
        receipts.len(),
        2,
        "one payment per HTTP request: {report:#}"
    );
    for receipt in receipts {
        assert_success_receipt(
            &serde_json::json!({"paymentResponse": receipt}),
            &client.to_string(),
        );
    }
    buyer.assert_paid(2);
}

/// PayAI's `x402-solana` builds no memo instruction: it pays because the offer sets no
/// `extra.memo` (README "Memo rule").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payai_x402_solana_client_pays_unmodified() {
    pays_get_balance(node(), "pay_x402_solana.mjs").await;
}

/// The official Python client (`x402` 2.25.0 from PyPI, httpx, SVM with `rpc_url=`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_client_pays_unmodified() {
    pays_get_balance(&python(), "pay.py").await;
}

/// Our own client, `x402-pay pay` (as `tests/interop/x402_pay.sh` runs it, with the binary cargo
/// built for this test run first on PATH).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_x402_pay_client_pays() {
    pays_get_balance_with(run_x402_pay).await;
}

/// `PATH` with the directory of the `x402-pay` cargo built for this test run first.
pub(crate) fn path_with_x402_pay() -> std::ffi::OsString {
    let bin = Path::new(env!("CARGO_BIN_EXE_x402-pay"))
        .parent()
        .expect("the binary's directory")
        .to_path_buf();
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&rest)))
        .expect("PATH entries")
}

/// Runs `sh tests/interop/x402_pay.sh url keypair rpc_url body` and turns its text output
/// (`status: …`, `answer: <json>`, `receipt: <json>`) into the scripts' JSON report.
async fn run_x402_pay(args: [String; 4]) -> Value {
    let child = tokio::process::Command::new("sh")
        .arg(interop_dir().join("x402_pay.sh"))
        .args(args)
        .env("PATH", path_with_x402_pay())
        .env_remove("X402_KEYPAIR")
        .env_remove("X402_RPC")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn sh x402_pay.sh");
    let out = tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output())
        .await
        .expect("x402-pay pay did not finish in time")
        .expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "x402-pay exited {}:\n{stdout}\n{stderr}",
        out.status
    );
    let field = |name: &str| {
        stdout
            .split_once(&format!("{name}: "))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            .1
    };
    let status: u16 = field("status")[..3].parse().expect("an HTTP status");
    let answer = field("answer").lines().next().unwrap_or_default();
    let receipt: Value = serde_json::from_str(field("receipt").trim()).expect("a JSON receipt");
    serde_json::json!({
        "status": status,
        "body": serde_json::from_str::<Value>(answer).expect("a JSON answer"),
        "payer": receipt["payer"],
        "paymentResponse": receipt,
    })
}

/// Every README code block that names its source (`<!-- snippet: tests/interop/FILE -->` on
/// the line before the fence) is that file's text between `snippet:start` and `snippet:end`,
/// de-indented: the README shows the code the tests run.
#[test]
fn readme_snippets_are_the_files_the_tests_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut checked = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(file) = line
            .trim()
            .strip_prefix("<!-- snippet: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "a code block after the {file} marker"
        );
        let shown: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        let text = std::fs::read_to_string(root.join(file))
            .unwrap_or_else(|e| panic!("README names {file}: {e}"));
        assert_eq!(
            shown,
            snippet(&text, file),
            "README's {file} snippet drifted"
        );
        checked.push(file.to_owned());
    }
    for file in [
        "tests/interop/pay.mjs",
        "tests/interop/pay_v1.mjs",
        "tests/interop/pay_axios.mjs",
        "tests/interop/web3_connection.mjs",
        "tests/interop/pay_x402_solana.mjs",
        "tests/interop/pay.py",
        "tests/interop/x402_pay.sh",
    ] {
        assert!(
            checked.iter().any(|c| c == file),
            "README shows no snippet of {file}"
        );
    }
}

/// The lines between the `snippet:start` and `snippet:end` markers, without their common indent.
fn snippet<'a>(text: &'a str, file: &str) -> Vec<&'a str> {
    let body: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("snippet:start"))
        .skip(1)
        .take_while(|l| !l.contains("snippet:end"))
        .collect();
    assert!(
        !body.is_empty(),
        "{file} has no snippet:start/snippet:end region"
    );
    let indent = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    body.iter().map(|l| l.get(indent..).unwrap_or("")).collect()
}

/// The whole credits flow with clients nobody on this project wrote driving it: the official
/// TypeScript client buys the `small` pack (the default packs, `[credits] enabled = true`)
/// unmodified, then the wallet signs in and spends the credits through `x402-pay proxy` with a
/// plain JSON-RPC client. At each step the ledger (read directly), the `X-Credits-Remaining`
/// header, the admin API and the chain agree to the atomic unit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_typescript_client_buys_a_pack_and_the_proxy_spends_it() {
    use crate::pay_client::{ProxyProcess, Served};

    const ADMIN_TOKEN: &str = "interop-credits-adm1n";
    /// The default `small` pack: 0.10 USDC for 100000 credits.
    const SMALL: (u64, i64) = (100_000, 100_000);
    /// getSlot on the localnet provider: 1 unit × 1 atomic per unit × 1.2 markup, rounded up.
    const GET_SLOT: i64 = 2;
    let program = node();
    let s = Served::with(|b| {
        b.sections("[credits]\nenabled = true\n\n[rate_limits]\nenabled = false\n")
            .env("CREDITS_SECRET", "interop-credits-secret")
            .env("ADMIN_TOKEN", ADMIN_TOKEN)
    })
    .await;
    let wallet = s.wallet().to_string();
    let ledger = s.gateway.app.app.ledger.clone();
    let before = s.balances();
    let admin = |wallet: String| {
        let url = format!("{}/admin/credits/{wallet}", s.base);
        async move {
            let answer: Value = reqwest::Client::new()
                .get(url)
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer
        }
    };

    // The official client pays the top-up route like any other.
    let report = run_client(
        program,
        "topup.mjs",
        [
            s.base.clone(),
            s.keypair_path(),
            s.rpc_url(),
            "small".into(),
        ],
    )
    .await;
    assert_eq!(report["status"], 200, "{report:#}");
    assert_eq!(report["payer"], wallet, "{report:#}");
    let body = &report["body"];
    assert_eq!(body["wallet"], wallet, "{report:#}");
    assert_eq!(body["pack"], "small", "{report:#}");
    assert_eq!(body["credits_added"], SMALL.1, "{report:#}");
    assert_eq!(body["balance"], SMALL.1, "{report:#}");
    assert_success_receipt(&report, &wallet);
    let signature = report["paymentResponse"]["transaction"].as_str().unwrap();

    // The chain: the balances, and the transaction itself, moved exactly the pack's price.
    s.assert_paid_since(before, SMALL.0);
    let tx: Value = reqwest::Client::new()
        .post(s.rpc_url())
        .json(&serde_json::json!({
            "jsonrpc": "2.0", "id": 1, "method": "getTransaction",
            "params": [signature, {
                "encoding": "json", "commitment": "confirmed", "maxSupportedTransactionVersion": 0
            }],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let meta = &tx["result"]["meta"];
    let token_of = |balances: &Value, owner: &str| -> i128 {
        balances
            .as_array()
            .unwrap_or_else(|| panic!("token balances in {tx}"))
            .iter()
            .filter(|b| b["owner"] == owner)
            .map(|b| {
                b["uiTokenAmount"]["amount"]
                    .as_str()
                    .unwrap()
                    .parse::<i128>()
                    .unwrap()
            })
            .sum()
    };
    let pay_to = s.cluster().pay_to().to_string();
    for (owner, delta) in [(&wallet, -(SMALL.0 as i128)), (&pay_to, SMALL.0 as i128)] {
        assert_eq!(
            token_of(&meta["postTokenBalances"], owner)
                - token_of(&meta["preTokenBalances"], owner),
            delta,
            "{owner} in {tx}"
        );
    }

    // The ledger: one top-up of the pack's credits, referencing the settled payment of that
    // very transaction; the admin API says the same.
    assert_eq!(ledger.credit_balance(&wallet).await.unwrap(), SMALL.1);
    let movements = ledger.credit_movements(&wallet, 100).await.unwrap();
    assert_eq!(movements.len(), 1, "{movements:?}");
    assert_eq!(
        (
            movements[0].kind.as_str(),
            movements[0].amount,
            movements[0].balance
        ),
        ("topup", SMALL.1, SMALL.1)
    );
    let payment = ledger
        .payment_by_hex(&movements[0].reference)
        .await
        .unwrap()
        .expect("the top-up's payment row");
    assert_eq!(payment.state, x402_gateway::ledger::PaymentState::Settled);
    assert_eq!(payment.amount, SMALL.0);
    assert_eq!(payment.payer, wallet);
    assert_eq!(payment.signature.as_deref(), Some(signature));
    let answer = admin(wallet.clone()).await;
    assert_eq!(answer["balance"], SMALL.1, "{answer}");

    // The proxy signs in (SIWX) and spends credits; per-call payments are capped at 0.
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token.json").display().to_string();
    let mut args = vec![
        "--upstream".to_string(),
        s.jsonrpc_url(),
        "--sign-in".into(),
        "--max-spend".into(),
        "0".into(),
        "--token-file".into(),
        token_file.clone(),
    ];
    args.extend(s.wallet_args());
    let mut proxy = ProxyProcess::start(&args, &[]).await;
    let single = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "getSlot"}).to_string();
    let batch = serde_json::json!([
        {"jsonrpc": "2.0", "id": 1, "method": "getSlot"},
        {"jsonrpc": "2.0", "id": 2, "method": "getSlot"}
    ])
    .to_string();
    let mut left = SMALL.1;
    for (request, calls) in [(&single, 1), (&single, 1), (&batch, 2), (&single, 1)] {
        let (status, answer) = proxy.post(request).await;
        assert_eq!(status, 200, "{answer}");
        match calls {
            1 => assert!(answer["result"].is_u64(), "{answer}"),
            _ => assert!(
                answer
                    .as_array()
                    .is_some_and(|a| a.len() == 2 && a.iter().all(|r| r["result"].is_u64())),
                "{answer}"
            ),
        }
        left -= calls * GET_SLOT;
        // The proxy prints the gateway's X-Credits-Remaining header.
        let line = proxy.line().await;
        assert!(
            line.contains(&format!("credits (remaining {left})")),
            "{line}"
        );
        assert_eq!(ledger.credit_balance(&wallet).await.unwrap(), left);
        assert_eq!(admin(wallet.clone()).await["balance"], left);
    }

    // The header itself, on a call with the session the proxy kept.
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(&token_file).unwrap()).unwrap();
    let response = reqwest::Client::new()
        .post(s.jsonrpc_url())
        .bearer_auth(kept["token"].as_str().unwrap())
        .header("content-type", "application/json")
        .body(single.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    left -= GET_SLOT;
    assert_eq!(
        response.headers()["x-credits-remaining"].to_str().unwrap(),
        left.to_string()
    );
    assert_eq!(ledger.credit_balance(&wallet).await.unwrap(), left);
    let answer = admin(wallet.clone()).await;
    assert_eq!(answer["balance"], left, "{answer}");
    // Every credit spent is a movement; the sum of them is what left the balance.
    let spent: i64 = answer["movements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "reserve")
        .map(|m| m["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(SMALL.1 - spent, left, "{answer}");
    // And nothing more moved on chain: only the top-up was paid.
    s.assert_paid_since(before, SMALL.0);
}
