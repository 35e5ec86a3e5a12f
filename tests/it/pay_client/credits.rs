//! The credits commands (`topup`, `balance`, `call`) and the proxy spending credits, against the
//! gateway's own credits API on the local cluster: top-ups are real settled payments, sign-ins
//! real SIWX proofs; the chain, the balance the client prints, the `X-Credits-Remaining` header
//! and the gateway's ledger (admin API) agree to the unit.

use serde_json::{json, Value};

use super::{field, receipt, strings, x402_pay, ProxyProcess, Served, PRICE};

/// getSlot on the localnet provider: 1 unit × 1 atomic per unit × 1.2 markup, rounded up.
const CREDITS_PER_GET_SLOT: u64 = 2;
const ADMIN_TOKEN: &str = "pay-client-adm1n";
/// (name, price, credits).
const SMALL: (&str, u64, u64) = ("small", 3000, 3000);
/// Two getSlot calls.
const TINY: (&str, u64, u64) = ("tiny", 1000, 2 * CREDITS_PER_GET_SLOT);

/// A paid gateway selling the two packs.
async fn gateway() -> Served {
    let sections = format!(
        r#"
[credits]
enabled = true
session_ttl_secs = 600
[[credits.packs]]
name = "{}"
price = {}
credits = {}
[[credits.packs]]
name = "{}"
price = {}
credits = {}

[rate_limits]
enabled = false
"#,
        SMALL.0, SMALL.1, SMALL.2, TINY.0, TINY.1, TINY.2
    );
    Served::with(|b| {
        b.sections(&sections)
            .env("CREDITS_SECRET", "pay-client-credits-secret")
            .env("ADMIN_TOKEN", ADMIN_TOKEN)
    })
    .await
}

/// `args` + the wallet, the cluster RPC and a token file in `dir`.
fn with_wallet(s: &Served, dir: &tempfile::TempDir, args: &[&str]) -> Vec<String> {
    let mut all = strings(args);
    all.extend(s.wallet_args());
    all.push("--token-file".into());
    all.push(token_file(dir));
    all
}

fn token_file(dir: &tempfile::TempDir) -> String {
    dir.path().join("token.json").display().to_string()
}

/// The kept session token.
fn kept_token(dir: &tempfile::TempDir) -> String {
    let text = std::fs::read_to_string(token_file(dir)).expect("a kept token");
    let session: Value = serde_json::from_str(&text).unwrap();
    session["token"].as_str().unwrap().to_string()
}

/// The wallet's balance in the gateway's ledger (admin API).
async fn ledger_balance(s: &Served, wallet: &str) -> u64 {
    let answer: Value = reqwest::Client::new()
        .get(format!("{}/admin/credits/{wallet}", s.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["balance"]
        .as_u64()
        .unwrap_or_else(|| panic!("no balance in {answer}"))
}

/// Buy a pack (a real payment: the chain moves its price), read the balance (one sign-in, the
/// token kept in the file and reused), spend credits on a call (nothing moves on chain); the
/// ledger agrees at each step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topup_balance_and_call_spend_credits() {
    let s = gateway().await;
    let dir = tempfile::tempdir().unwrap();
    let wallet = s.wallet().to_string();
    let (pack, price, credits) = SMALL;
    let before = s.balances();

    // The quote of a paid route says how to buy credits.
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "getSlot"}).to_string();
    let quote = x402_pay(&strings(&["quote", &s.jsonrpc_url(), "--body", &body]), &[]).await;
    assert!(quote.ok, "{quote}");
    let expected = format!(
        "extension credits: prepaid credits instead of paying per call: packs small (3000 \
         credits for 3000), tiny (4 credits for 1000) at {}/v1/credits/topup; sign in at \
         {}/v1/credits/session",
        s.base, s.base
    );
    assert!(quote.stdout.contains(&expected), "{quote}");

    let run = x402_pay(
        &with_wallet(&s, &dir, &["topup", &s.base, "--pack", pack]),
        &[],
    )
    .await;
    assert!(run.ok, "{run}");
    assert_eq!(field(&run.stdout, "wallet"), wallet);
    assert_eq!(field(&run.stdout, "pack"), pack);
    assert_eq!(field(&run.stdout, "credits added"), credits.to_string());
    assert_eq!(field(&run.stdout, "balance"), credits.to_string());
    assert!(field(&run.stdout, "paid").starts_with(&format!("{price} atomic units ($0.003)")));
    assert_eq!(receipt(&run.stdout)["success"], true, "{run}");
    s.assert_paid_since(before, price);
    assert_eq!(ledger_balance(&s, &wallet).await, credits);

    let run = x402_pay(&with_wallet(&s, &dir, &["balance", &s.base]), &[]).await;
    assert!(run.ok, "{run}");
    assert_eq!(field(&run.stdout, "wallet"), wallet);
    assert_eq!(field(&run.stdout, "balance"), credits.to_string());
    let token = kept_token(&dir);
    let run = x402_pay(&with_wallet(&s, &dir, &["balance", &s.base]), &[]).await;
    assert!(run.ok, "{run}");
    assert_eq!(
        kept_token(&dir),
        token,
        "the second run reused the kept token"
    );

    let run = x402_pay(
        &with_wallet(&s, &dir, &["call", &s.jsonrpc_url(), "--body", &body]),
        &[],
    )
    .await;
    assert!(run.ok, "{run}");
    let left = credits - CREDITS_PER_GET_SLOT;
    assert_eq!(field(&run.stdout, "credits remaining"), left.to_string());
    let answer: Value = serde_json::from_str(field(&run.stdout, "answer")).unwrap();
    assert!(answer["result"].is_u64(), "{run}");
    assert_eq!(ledger_balance(&s, &wallet).await, left);
    s.assert_paid_since(before, price);
}

/// `call --auto-topup`: no credits, so it buys the pack (under `--max-amount`, within
/// `--max-topups`) and is served; without auto-top-up an empty balance is a clear error and
/// nothing is paid; a revoked session leads to one new sign-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_tops_up_when_the_balance_runs_out() {
    let s = gateway().await;
    let dir = tempfile::tempdir().unwrap();
    let wallet = s.wallet().to_string();
    let (pack, price, credits) = TINY;
    let before = s.balances();
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "getSlot"},
        {"jsonrpc": "2.0", "id": 2, "method": "getSlot"}
    ])
    .to_string();
    let url = s.jsonrpc_url();
    let call = |extra: &[&str]| {
        let mut args = vec!["call", url.as_str(), "--body", &batch];
        args.extend_from_slice(extra);
        with_wallet(&s, &dir, &args)
    };

    // The pack costs more than --max-amount: refused, nothing moves.
    let capped = x402_pay(&call(&["--auto-topup", pack, "--max-amount", "999"]), &[]).await;
    assert!(!capped.ok, "{capped}");
    assert!(capped.stderr.contains("above the cap of 999"), "{capped}");
    s.assert_paid_since(before, 0);

    let run = x402_pay(&call(&["--auto-topup", pack, "--max-topups", "1"]), &[]).await;
    assert!(run.ok, "{run}");
    assert!(
        run.stdout.contains(&format!(
            "topped up: {pack} +{credits} credits (balance {credits}), paid {price}"
        )),
        "{run}"
    );
    assert_eq!(field(&run.stdout, "credits remaining"), "0");
    s.assert_paid_since(before, price);
    assert_eq!(ledger_balance(&s, &wallet).await, 0);

    let empty = x402_pay(&call(&[]), &[]).await;
    assert!(!empty.ok, "{empty}");
    assert!(
        empty.stderr.contains("insufficient_balance") && empty.stderr.contains("--auto-topup"),
        "{empty}"
    );
    s.assert_paid_since(before, price);

    // The server revokes the kept token: the next command signs in again, once.
    let token = kept_token(&dir);
    let revoked = reqwest::Client::new()
        .delete(format!("{}/v1/credits/session", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    let run = x402_pay(&with_wallet(&s, &dir, &["balance", &s.base]), &[]).await;
    assert!(run.ok, "{run}");
    assert_eq!(field(&run.stdout, "balance"), "0");
    assert_ne!(kept_token(&dir), token, "a new session was kept");
}

/// The proxy with `--sign-in`: a plain JSON-RPC client's calls are served with credits (the
/// chain does not move, the header's balance counts down) until they run out, then paid per
/// call with `exact` within the spend cap, then refused at the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_spends_credits_then_pays_per_call() {
    let s = gateway().await;
    let dir = tempfile::tempdir().unwrap();
    let wallet = s.wallet().to_string();
    let (pack, price, credits) = TINY;
    let before = s.balances();
    let run = x402_pay(
        &with_wallet(&s, &dir, &["topup", &s.base, "--pack", pack]),
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
                &s.jsonrpc_url(),
                "--sign-in",
                "--max-spend",
                &PRICE.to_string(),
            ],
        ),
        &[],
    )
    .await;
    let get_slot = json!({"jsonrpc": "2.0", "id": 1, "method": "getSlot"}).to_string();
    let mut left = credits;
    while left > 0 {
        let (status, answer) = proxy.post(&get_slot).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer["result"].is_u64(), "{answer}");
        left -= CREDITS_PER_GET_SLOT;
        let line = proxy.line().await;
        assert!(
            line.contains(&format!("getSlot credits (remaining {left})")),
            "{line}"
        );
        // The header the proxy printed, the ledger itself and the admin API agree.
        let ledger = &s.gateway.app.app.ledger;
        assert_eq!(ledger.credit_balance(&wallet).await.unwrap(), left as i64);
        assert_eq!(ledger_balance(&s, &wallet).await, left);
    }
    s.assert_paid_since(before, price);
    assert_eq!(ledger_balance(&s, &wallet).await, 0);

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
}
