//! `x402-pay`, the paying client binary, driven as a user runs it (the binary cargo built for
//! this test run, as a child process) against a paid gateway on the local cluster served on
//! real loopback, and against the official reference server: `quote`, `pay`, the `proxy` with a
//! plain JSON-RPC client, and the credits commands. Every test checks real token balances on the
//! cluster.

mod credits;

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use solana_address::Address;
use solana_keypair::Keypair;
use solana_signer::Signer;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use x402_gateway::localnet::{LocalCluster, LocalnetConfig};
use x402_gateway::x402::{decode_header, PaymentRequired};

use crate::common::gateway::{PaidGateway, PaidGatewayBuilder};
use crate::common::loopback;

/// localnet: 1 unit × 1 atomic per unit × 1.2 → 2, + 600 surcharge → the 1000 floor.
const PRICE: u64 = 1000;
/// A command may first read the mint and a blockhash, then wait for a settlement.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// The facilitator endpoints' secret (the reference server and the credits stub settle there).
const FACILITATOR_SECRET: &str = "pay-client-facilitator-s3cret";

/// A paid gateway on a running cluster, served on a loopback listener.
pub(crate) struct Served {
    pub(crate) gateway: PaidGateway,
    pub(crate) base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Served {
    /// The default paid gateway, its facilitator endpoints on (`FACILITATOR_SECRET`).
    pub(crate) async fn start() -> Self {
        Self::with(|b| b).await
    }

    pub(crate) async fn with(
        configure: impl FnOnce(PaidGatewayBuilder) -> PaidGatewayBuilder,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // The clock runs: the client reads blockhashes as from a real cluster.
        let cluster = LocalCluster::start(LocalnetConfig::for_tests(dir.path()))
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let builder = PaidGateway::builder()
            .public_base_url(&base)
            .env("FACILITATOR_SECRET", FACILITATOR_SECRET)
            .with_cluster(cluster, dir);
        let gateway = configure(builder).build().await;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(x402_gateway::serve(
            gateway.app.app.clone(),
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            gateway,
            base,
            _stop: stop,
        }
    }

    pub(crate) fn cluster(&self) -> &LocalCluster {
        &self.gateway.cluster
    }

    pub(crate) fn wallet(&self) -> Address {
        self.cluster().wallets()[0].keypair.pubkey()
    }

    pub(crate) fn keypair_path(&self) -> String {
        self.cluster().wallets()[0].path.display().to_string()
    }

    pub(crate) fn rpc_url(&self) -> String {
        self.cluster().rpc_url()
    }

    /// The standard JSON-RPC route of the gateway.
    pub(crate) fn jsonrpc_url(&self) -> String {
        format!("{}/v1/x402/solana/devnet/rpc", self.base)
    }

    /// `--keypair` and `--rpc` of the cluster's funded wallet.
    pub(crate) fn wallet_args(&self) -> Vec<String> {
        vec![
            "--keypair".into(),
            self.keypair_path(),
            "--rpc".into(),
            self.rpc_url(),
        ]
    }

    /// (wallet, payTo) token balances, and the wallet's lamports.
    pub(crate) fn balances(&self) -> (u64, u64, u64) {
        let c = self.cluster();
        (
            c.token_balance(&self.wallet()),
            c.token_balance(&c.pay_to()),
            c.sol_balance(&self.wallet()),
        )
    }

    /// Exactly `amount` moved from the wallet to payTo since `before`, and no SOL.
    pub(crate) fn assert_paid_since(&self, before: (u64, u64, u64), amount: u64) {
        let now = self.balances();
        assert_eq!(now.0, before.0 - amount, "the wallet paid exactly {amount}");
        assert_eq!(now.1, before.1 + amount, "payTo got exactly {amount}");
        assert_eq!(now.2, before.2, "the wallet paid no SOL: the fee payer did");
    }
}

/// What a finished command printed.
pub(crate) struct Run {
    pub(crate) ok: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ok={}\nstdout:\n{}\nstderr:\n{}",
            self.ok, self.stdout, self.stderr
        )
    }
}

/// The binary, with no wallet or RPC from the test's own environment.
fn command(args: &[String], envs: &[(&str, String)]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_x402-pay"));
    c.args(args)
        .env_remove("X402_KEYPAIR")
        .env_remove("X402_RPC")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in envs {
        c.env(k, v);
    }
    c
}

/// Runs `x402-pay ARGS` to the end.
pub(crate) async fn x402_pay(args: &[String], envs: &[(&str, String)]) -> Run {
    let child = command(args, envs).spawn().expect("spawn x402-pay");
    let out = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("x402-pay {args:?} did not finish within {COMMAND_TIMEOUT:?}"))
        .expect("x402-pay output");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub(crate) fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The value after `name: ` on its line of `text`.
pub(crate) fn field<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name:?} line in:\n{text}"))
}

/// The JSON after `receipt: ` (the last thing `pay` prints).
pub(crate) fn receipt(text: &str) -> Value {
    let (_, rest) = text
        .split_once("receipt: ")
        .unwrap_or_else(|| panic!("no receipt in:\n{text}"));
    serde_json::from_str(rest.trim())
        .unwrap_or_else(|e| panic!("receipt is not JSON ({e}): {rest}"))
}

/// A running `x402-pay proxy`, its address and its progress lines.
pub(crate) struct ProxyProcess {
    _child: tokio::process::Child,
    pub(crate) url: String,
    lines: mpsc::UnboundedReceiver<String>,
    http: reqwest::Client,
}

impl ProxyProcess {
    /// Starts `x402-pay proxy --listen 127.0.0.1:0 ARGS` and waits for its first line.
    pub(crate) async fn start(args: &[String], envs: &[(&str, String)]) -> Self {
        let mut all = strings(&["proxy", "--listen", "127.0.0.1:0"]);
        all.extend_from_slice(args);
        let mut child = command(&all, envs).spawn().expect("spawn x402-pay proxy");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, mut lines) = mpsc::unbounded_channel();
        let tx_err = tx.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let _ = tx_err.send(format!("stderr: {line}"));
            }
        });
        let first = tokio::time::timeout(COMMAND_TIMEOUT, lines.recv())
            .await
            .expect("the proxy printed nothing")
            .expect("the proxy exited before listening");
        let url = first
            .strip_prefix("listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("not a listening line: {first}"))
            .to_string();
        Self {
            _child: child,
            url,
            lines,
            http: reqwest::Client::builder()
                .timeout(COMMAND_TIMEOUT)
                .build()
                .unwrap(),
        }
    }

    /// POSTs `body` as a plain JSON-RPC client does: (HTTP status, JSON answer).
    pub(crate) async fn post(&self, body: &str) -> (u16, Value) {
        let answer = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("the proxy answers");
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// The next progress line (the proxy prints it before answering).
    pub(crate) async fn line(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(30), self.lines.recv())
            .await
            .expect("no progress line")
            .expect("the proxy exited")
    }
}

/// The price the gateway asks for `body` on `url` (its 402, decoded).
pub(crate) async fn price_of(url: &str, body: &Value) -> u64 {
    let answer = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 402);
    let required: PaymentRequired =
        decode_header(answer.headers()["payment-required"].as_bytes(), 64 * 1024).unwrap();
    required.accepts[0].amount.parse().unwrap()
}

fn get_slot(id: u64) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "getSlot"}).to_string()
}

// === quote ===

/// `quote` decodes the challenge (price in atomic units and dollars, payTo, fee payer, the
/// Bazaar and payment-identifier extensions) and pays nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quote_shows_the_price_without_paying() {
    let s = Served::start().await;
    let before = s.balances();
    let body = get_slot(1);
    let run = x402_pay(
        &strings(&["quote", &s.jsonrpc_url(), "--body", &body, "--json"]),
        &[],
    )
    .await;
    assert!(run.ok, "{run}");
    let quote: Value = serde_json::from_str(&run.stdout).unwrap();
    let offer = &quote["accepts"][0];
    assert_eq!(offer["scheme"], "exact");
    assert_eq!(offer["amount"], PRICE.to_string());
    assert_eq!(
        offer["usd"], "$0.001",
        "the local mint is at the devnet USDC address"
    );
    assert_eq!(offer["payTo"], s.cluster().pay_to().to_string());
    assert_eq!(
        offer["extra"]["feePayer"],
        s.cluster().fee_payers()[0].keypair.pubkey().to_string()
    );
    assert_eq!(quote["resource"]["url"], s.jsonrpc_url());
    assert_eq!(
        quote["extensions"]["bazaar"]["info"]["input"]["method"],
        "POST"
    );
    assert_eq!(
        quote["extensions"]["payment-identifier"]["info"]["required"],
        false
    );

    let text = x402_pay(&strings(&["quote", &s.jsonrpc_url(), "--body", &body]), &[]).await;
    assert!(text.ok, "{text}");
    for expected in [
        "offer 1: exact on devnet (solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1)",
        "amount:   1000 atomic units = 0.001 USDC = $0.001",
        "extension bazaar: POST json",
        "extension payment-identifier: optional",
    ] {
        assert!(text.stdout.contains(expected), "{expected:?}: {text}");
    }
    s.assert_paid_since(before, 0);
}

// === pay ===

/// `--max-amount` below the price: refused before anything is signed, the cap named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_refuses_a_price_above_max_amount() {
    let s = Served::start().await;
    let before = s.balances();
    let mut args = strings(&["pay", &s.jsonrpc_url(), "--body", &get_slot(1)]);
    args.extend(s.wallet_args());
    args.extend(strings(&["--max-amount", "999"]));
    let run = x402_pay(&args, &[]).await;
    assert!(!run.ok, "{run}");
    assert!(
        run.stderr
            .contains("the price, 1000 atomic units, is above the cap of 999"),
        "{run}"
    );
    s.assert_paid_since(before, 0);
    // At the price it pays: the answer, the receipt, the balances.
    let mut args = strings(&["pay", &s.jsonrpc_url(), "--body", &get_slot(1)]);
    args.extend(s.wallet_args());
    args.extend(strings(&["--max-amount", "1000"]));
    let run = x402_pay(&args, &[]).await;
    assert!(run.ok, "{run}");
    assert_eq!(field(&run.stdout, "status"), "200 OK");
    let answer: Value = serde_json::from_str(field(&run.stdout, "answer")).unwrap();
    assert!(answer["result"].is_u64(), "{run}");
    assert!(field(&run.stdout, "paid").starts_with("1000 atomic units ($0.001) of "));
    let receipt = receipt(&run.stdout);
    assert_eq!(receipt["success"], true);
    assert_eq!(receipt["payer"], s.wallet().to_string());
    s.assert_paid_since(before, PRICE);
}

/// A wallet (from `X402_KEYPAIR`, base58) holding none of the token: the gateway refuses the
/// payment and the client says why and what it usually means; nothing moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_explains_a_refused_payment() {
    let s = Served::start().await;
    let before = s.balances();
    let empty = Keypair::new();
    let run = x402_pay(
        &strings(&[
            "pay",
            &s.jsonrpc_url(),
            "--body",
            &get_slot(1),
            "--rpc",
            &s.rpc_url(),
        ]),
        &[("X402_KEYPAIR", empty.to_base58_string())],
    )
    .await;
    assert!(!run.ok, "{run}");
    assert!(
        run.stderr.contains(
            "the server refused the payment: invalid_exact_svm_transaction_simulation_failed"
        ) && run.stderr.contains("usually the wallet lacks the token"),
        "{run}"
    );
    assert!(
        !run.stderr.contains(&empty.to_base58_string()),
        "no key in errors"
    );
    s.assert_paid_since(before, 0);

    // No wallet at all: said before any call.
    let run = x402_pay(&strings(&["pay", &s.jsonrpc_url()]), &[]).await;
    assert!(
        !run.ok && run.stderr.contains("no wallet: pass --keypair"),
        "{run}"
    );
}

/// The official x402 reference server (`@x402/hono`, `bench/reference/server.mjs`, settling
/// through this gateway's facilitator endpoints on the local cluster) is paid by `x402-pay pay`:
/// the handler's answer, a success receipt, and exactly its price moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_pays_the_official_reference_server() {
    let dir = crate::interop::require_reference_server();
    let s = Served::start().await;
    let before = s.balances();
    let port = loopback::closed_port().port();
    let mut server = tokio::process::Command::new("node")
        .arg(dir.join("server.mjs"))
        .env("PORT", port.to_string())
        .env("FRAMEWORK", "hono")
        .env(
            "FACILITATOR_URL",
            format!("{}/api/internal/facilitator", s.base),
        )
        .env("FACILITATOR_SECRET", FACILITATOR_SECRET)
        .env("PAY_TO", s.cluster().pay_to().to_string())
        .env("MINT", s.cluster().mint().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node bench/reference/server.mjs");
    let url = format!("http://127.0.0.1:{port}/v1/x402/solana/devnet/bench/rpc/getBalance");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut up = false;
    for _ in 0..300 {
        if let Ok(r) = http
            .post(&url)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
        {
            up = r.status() == 402;
            break;
        }
        if let Ok(Some(status)) = server.try_wait() {
            panic!("the reference server exited {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the reference server never answered 402");

    let body = json!({"params": [s.wallet().to_string()]}).to_string();
    let mut args = strings(&["pay", &url, "--body", &body, "--max-amount", "1000"]);
    args.extend(s.wallet_args());
    let run = x402_pay(&args, &[]).await;
    assert!(run.ok, "{run}");
    assert_eq!(field(&run.stdout, "status"), "200 OK");
    let answer: Value = serde_json::from_str(field(&run.stdout, "answer")).unwrap();
    assert_eq!(
        answer["result"]["value"], 1_000_000_000u64,
        "the reference handler's answer"
    );
    let receipt = receipt(&run.stdout);
    assert_eq!(receipt["success"], true, "{run}");
    assert_eq!(receipt["payer"], s.wallet().to_string());
    s.assert_paid_since(before, 1000);
}

// === proxy ===

/// A plain JSON-RPC client talks to the unpaid proxy: single calls and a batch are paid per call
/// behind its back, the gateway's own errors come back unchanged and unpaid, and once the spend
/// cap would be passed the call gets a JSON-RPC error (no hang); the chain moved exactly what
/// the proxy printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_pays_per_call_within_the_spend_cap() {
    let s = Served::start().await;
    let before = s.balances();
    let wallet = s.wallet().to_string();
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "getBalance", "params": [wallet]},
        {"jsonrpc": "2.0", "id": 2, "method": "getSlot"}
    ]);
    let single = price_of(
        &s.jsonrpc_url(),
        &json!({"jsonrpc": "2.0", "id": 1, "method": "getSlot"}),
    )
    .await;
    let batch_price = price_of(&s.jsonrpc_url(), &batch).await;
    let cap = single + batch_price + single - 1;
    let mut args = strings(&["--upstream", &s.jsonrpc_url(), "--no-credits"]);
    args.extend(s.wallet_args());
    args.extend(strings(&["--max-spend", &cap.to_string()]));
    let mut proxy = ProxyProcess::start(&args, &[]).await;

    let (status, answer) = proxy.post(&get_slot(7)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["id"], 7);
    assert!(answer["result"].is_u64(), "{answer}");
    let line = proxy.line().await;
    assert!(
        line.contains(&format!(
            "getSlot paid {single} ($0.001)  total {single}/{cap}"
        )),
        "{line}"
    );

    let (status, answer) = proxy.post(&batch.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer[0]["result"]["value"], before.2, "{answer}");
    assert!(answer[1]["result"].is_u64(), "{answer}");
    let spent = single + batch_price;
    assert!(proxy
        .line()
        .await
        .contains(&format!("[getBalance,getSlot] paid {batch_price}")),);

    // The gateway's refusals pass through unchanged, and nothing is paid for them.
    let (status, answer) = proxy
        .post(r#"{"jsonrpc":"2.0","id":3,"method":"requestAirdrop","params":[]}"#)
        .await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (403, &json!(-32601)),
        "{answer}"
    );
    assert!(proxy.line().await.contains("requestAirdrop free"));
    let (status, answer) = proxy.post("{not json").await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (400, &json!(-32700)),
        "{answer}"
    );
    let _ = proxy.line().await;

    // The next payment would pass the cap: a JSON-RPC error, HTTP 200, with its id.
    let (status, answer) = proxy.post(&get_slot(9)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["id"], 9);
    assert_eq!(answer["error"]["code"], -32042, "{answer}");
    assert_eq!(answer["error"]["data"]["reason"], "spend_cap_reached");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("spend cap reached: {spent} of {cap}")),
        "{answer}"
    );
    assert!(proxy.line().await.contains("NOT PAID"));
    s.assert_paid_since(before, spent);
}

/// A payment the gateway refuses (a wallet without the token) and a price above
/// `--per-call-max` reach the tool as JSON-RPC errors naming the reason, for a single call and
/// each element of a batch; nothing moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_turns_refused_payments_into_jsonrpc_errors() {
    let s = Served::start().await;
    let before = s.balances();
    let empty = Keypair::new();
    let proxy = ProxyProcess::start(
        &strings(&[
            "--upstream",
            &s.jsonrpc_url(),
            "--rpc",
            &s.rpc_url(),
            "--no-credits",
        ]),
        &[("X402_KEYPAIR", empty.to_base58_string())],
    )
    .await;
    let (status, answer) = proxy.post(&get_slot(1)).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer["error"]["data"]["reason"], "invalid_exact_svm_transaction_simulation_failed",
        "{answer}"
    );

    let mut args = strings(&["--upstream", &s.jsonrpc_url(), "--no-credits"]);
    args.extend(s.wallet_args());
    args.extend(strings(&["--per-call-max", "999"]));
    let capped = ProxyProcess::start(&args, &[]).await;
    let (status, answer) = capped
        .post(r#"[{"jsonrpc":"2.0","id":"a","method":"getSlot"},{"jsonrpc":"2.0","id":"b","method":"getSlot"}]"#)
        .await;
    assert_eq!(status, 200);
    for (i, id) in ["a", "b"].iter().enumerate() {
        assert_eq!(answer[i]["id"], *id, "{answer}");
        assert_eq!(
            answer[i]["error"]["data"]["reason"], "price_over_cap",
            "{answer}"
        );
    }
    s.assert_paid_since(before, 0);
}

/// The gateway down: the tool gets a JSON-RPC error at once, not a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_answers_when_the_gateway_is_unreachable() {
    let down = format!(
        "http://{}/v1/x402/solana/devnet/rpc",
        loopback::closed_port()
    );
    let proxy = ProxyProcess::start(
        &strings(&["--upstream", &down, "--no-credits", "--timeout", "5"]),
        &[("X402_KEYPAIR", Keypair::new().to_base58_string())],
    )
    .await;
    let (status, answer) = proxy.post(&get_slot(4)).await;
    assert_eq!(status, 200);
    assert_eq!(answer["id"], 4);
    assert_eq!(
        answer["error"]["data"]["reason"], "gateway_unreachable",
        "{answer}"
    );
}

/// A plain `@solana/web3.js` `Connection` (no x402 code at all) pointed at the proxy: single
/// calls and a batch are answered, paid behind its back, and the call past the spend cap makes
/// web3.js throw the proxy's JSON-RPC error; the chain moved exactly the three payments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web3_connection_works_unmodified_through_the_proxy() {
    let node = crate::interop::node();
    let s = Served::start().await;
    let before = s.balances();
    let wallet = s.wallet().to_string();
    let single = price_of(
        &s.jsonrpc_url(),
        &json!({"jsonrpc": "2.0", "id": 1, "method": "getSlot"}),
    )
    .await;
    let batch = price_of(
        &s.jsonrpc_url(),
        &json!([
            {"jsonrpc": "2.0", "id": 1, "method": "getBalance", "params": [wallet]},
            {"jsonrpc": "2.0", "id": 2, "method": "getSlot"}
        ]),
    )
    .await;
    let spent = 2 * single + batch;
    let mut args = strings(&["--upstream", &s.jsonrpc_url(), "--no-credits"]);
    args.extend(s.wallet_args());
    args.extend(strings(&["--max-spend", &spent.to_string()]));
    let proxy = ProxyProcess::start(&args, &[]).await;

    let child = tokio::process::Command::new(node)
        .arg(crate::interop::interop_dir().join("web3_through_proxy.mjs"))
        .args([&proxy.url, &wallet])
        .current_dir(crate::interop::interop_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node web3_through_proxy.mjs");
    let out = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .expect("web3_through_proxy.mjs did not finish in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"));
    assert_eq!(report["lamports"], before.2, "{report}");
    assert_eq!(report["batchLamports"], before.2, "{report}");
    assert!(
        report["slot"].is_u64() && report["batchSlot"].is_u64(),
        "{report}"
    );
    let refused = report["refused"].as_str().unwrap_or_default();
    assert!(
        refused.contains(&format!("spend cap reached: {spent} of {spent}")),
        "{report}"
    );
    s.assert_paid_since(before, spent);
}

/// `--sign-in` against a gateway that sells no credits (its session route answers 404): the
/// proxy says so once and pays per call from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_with_sign_in_pays_per_call_where_no_credits_are_sold() {
    let s = Served::start().await;
    let before = s.balances();
    let dir = tempfile::tempdir().unwrap();
    let mut args = strings(&["--upstream", &s.jsonrpc_url(), "--sign-in"]);
    args.extend(s.wallet_args());
    args.extend(strings(&[
        "--token-file",
        &dir.path().join("t.json").display().to_string(),
    ]));
    let mut proxy = ProxyProcess::start(&args, &[]).await;
    for id in 1..=2 {
        let (status, answer) = proxy.post(&get_slot(id)).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer["result"].is_u64(), "{answer}");
    }
    let first = proxy.line().await;
    assert!(
        first.starts_with("credits off for this run, paying per call: credits:")
            && first.contains("404 Not Found"),
        "{first}"
    );
    for _ in 1..=2 {
        let line = proxy.line().await;
        assert!(line.contains(&format!("getSlot paid {PRICE}")), "{line}");
    }
    s.assert_paid_since(before, 2 * PRICE);
}
