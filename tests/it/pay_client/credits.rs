//! The credits commands (`topup`, `balance`, `call`) and the proxy spending credits, against the
//! credits contract ([`super::stub::CreditsStub`] in front of the paid gateway on the local
//! cluster): top-ups are real settled payments, sign-ins real SIWX proofs, and the chain and
//! the credit balances are checked to the unit.

use serde_json::{json, Value};

use super::stub::{CreditsStub, PACKS, PRICE_PER_CALL};
use super::{field, receipt, strings, x402_pay, ProxyProcess, Served, PRICE};

fn pack(name: &str) -> (u64, u64) {
    let &(_, price, credits) = PACKS.iter().find(|(n, _, _)| *n == name).unwrap();
    (price, credits)
}

/// `args` + the wallet, the cluster RPC and a token file in `dir`.
fn with_wallet(s: &Served, dir: &tempfile::TempDir, args: &[&str]) -> Vec<String> {
    let mut all = strings(args);
    all.extend(s.wallet_args());
    all.push("--token-file".into());
    all.push(dir.path().join("token.json").display().to_string());
    all
}

/// Buy a pack (a real payment: the chain moves its price), read the balance (one sign-in, the
/// token kept in the file and reused), spend one credit on a call (nothing moves on chain).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topup_balance_and_call_spend_credits() {
    let s = Served::start().await;
    let stub = CreditsStub::start(&s).await;
    let dir = tempfile::tempdir().unwrap();
    let wallet = s.wallet().to_string();
    let (price, credits) = pack("small");
    let before = s.balances();

    let run = x402_pay(
        &with_wallet(&s, &dir, &["topup", &stub.base, "--pack", "small"]),
        &[],
    )
    .await;
    assert!(run.ok, "{run}");
    assert_eq!(field(&run.stdout, "wallet"), wallet);
    assert_eq!(field(&run.stdout, "credits added"), credits.to_string());
    assert_eq!(field(&run.stdout, "balance"), credits.to_string());
    assert_eq!(receipt(&run.stdout)["success"], true, "{run}");
    s.assert_paid_since(before, price);
    assert_eq!(stub.balance(&wallet), credits);

    for _ in 0..2 {
        let run = x402_pay(&with_wallet(&s, &dir, &["balance", &stub.base]), &[]).await;
        assert!(run.ok, "{run}");
        assert_eq!(field(&run.stdout, "balance"), credits.to_string());
    }
    assert_eq!(stub.sign_ins(), 1, "the second run reused the kept token");
    assert!(dir.path().join("token.json").is_file());

    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "getSlot"}).to_string();
    let run = x402_pay(
        &with_wallet(&s, &dir, &["call", &stub.jsonrpc_url(), "--body", &body]),
        &[],
    )
    .await;
    assert!(run.ok, "{run}");
    let left = credits - PRICE_PER_CALL;
    assert_eq!(field(&run.stdout, "credits remaining"), left.to_string());
    let answer: Value = serde_json::from_str(field(&run.stdout, "answer")).unwrap();
    assert!(answer["result"].is_u64(), "{run}");
    assert_eq!(stub.balance(&wallet), left);
    s.assert_paid_since(before, price);
}

/// `call --auto-topup`: no credits, so it buys the pack (within `--max-topups` and under
/// `--max-amount`) and is served; without auto-top-up an empty balance is a clear error and
/// nothing is paid; a session the server stopped taking leads to one new sign-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_tops_up_when_the_balance_runs_out() {
    let s = Served::start().await;
    let stub = CreditsStub::start(&s).await;
    let dir = tempfile::tempdir().unwrap();
    let wallet = s.wallet().to_string();
    let (price, credits) = pack("tiny");
    let before = s.balances();
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "getSlot"},
        {"jsonrpc": "2.0", "id": 2, "method": "getSlot"}
    ])
    .to_string();

    // The pack costs more than --max-amount: refused, nothing moves.
    let capped = x402_pay(
        &with_wallet(
            &s,
            &dir,
            &[
                "call",
                &stub.jsonrpc_url(),
                "--body",
                &batch,
                "--auto-topup",
                "tiny",
                "--max-amount",
                "999",
            ],
        ),
        &[],
    )
    .await;
    assert!(!capped.ok, "{capped}");
    assert!(capped.stderr.contains("above the cap of 999"), "{capped}");
    s.assert_paid_since(before, 0);

    let run = x402_pay(
        &with_wallet(
            &s,
            &dir,
            &[
                "call",
                &stub.jsonrpc_url(),
                "--body",
                &batch,
                "--auto-topup",
                "tiny",
                "--max-topups",
                "1",
            ],
        ),
        &[],
    )
    .await;
    assert!(run.ok, "{run}");
    assert!(
        run.stdout.contains(&format!(
            "topped up: tiny +{credits} credits (balance {credits}), paid {price}"
        )),
        "{run}"
    );
    assert_eq!(field(&run.stdout, "credits remaining"), "0");
    s.assert_paid_since(before, price);
    assert_eq!(stub.balance(&wallet), 0);

    let empty = x402_pay(
        &with_wallet(&s, &dir, &["call", &stub.jsonrpc_url(), "--body", &batch]),
        &[],
    )
    .await;
    assert!(!empty.ok, "{empty}");
    assert!(
        empty.stderr.contains("insufficient_balance") && empty.stderr.contains("--auto-topup"),
        "{empty}"
    );
    s.assert_paid_since(before, price);

    let sign_ins = stub.sign_ins();
    stub.expire_sessions();
    let run = x402_pay(&with_wallet(&s, &dir, &["balance", &stub.base]), &[]).await;
    assert!(run.ok, "{run}");
    assert_eq!(stub.sign_ins(), sign_ins + 1, "signed in again once");
}

/// The proxy with `--sign-in`: calls are served with credits (the chain does not move) until
/// they run out, then paid per call with `exact` within the spend cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_spends_credits_then_pays_per_call() {
    let s = Served::start().await;
    let stub = CreditsStub::start(&s).await;
    let dir = tempfile::tempdir().unwrap();
    let wallet = s.wallet().to_string();
    let (price, credits) = pack("tiny");
    let before = s.balances();
    let run = x402_pay(
        &with_wallet(&s, &dir, &["topup", &stub.base, "--pack", "tiny"]),
        &[],
    )
    .await;
    assert!(run.ok, "{run}");

    let mut proxy = ProxyProcess::start(
        &with_wallet(
            &s,
            &dir,
            &[
                "--upstream",
                &stub.jsonrpc_url(),
                "--sign-in",
                "--max-spend",
                &PRICE.to_string(),
            ],
        ),
        &[],
    )
    .await;
    let get_slot = json!({"jsonrpc": "2.0", "id": 1, "method": "getSlot"}).to_string();
    for left in (0..credits).rev() {
        let (status, answer) = proxy.post(&get_slot).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer["result"].is_u64(), "{answer}");
        let line = proxy.line().await;
        assert!(
            line.contains(&format!("getSlot credits (remaining {left})")),
            "{line}"
        );
    }
    s.assert_paid_since(before, price);

    // Out of credits: paid per call through the gateway, once; then the spend cap.
    let (status, answer) = proxy.post(&get_slot).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["result"].is_u64(), "{answer}");
    let line = proxy.line().await;
    assert!(
        line.contains(&format!(
            "getSlot paid {PRICE} ($0.001)  total {PRICE}/{PRICE}"
        )),
        "{line}"
    );
    let (_, answer) = proxy.post(&get_slot).await;
    assert_eq!(
        answer["error"]["data"]["reason"], "spend_cap_reached",
        "{answer}"
    );
    s.assert_paid_since(before, price + PRICE);
    assert_eq!(stub.balance(&wallet), 0);
}
