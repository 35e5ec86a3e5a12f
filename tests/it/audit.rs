//! The chain audit finds what the ledger and the chain disagree on, on each ledger backend:
//! real transfers planted on the local cluster (one into payTo that no payment records) and
//! settled ledger rows the chain does not confirm (not finalized, unknown, wrong amount, no
//! signature), next to a real paid request that checks out. Then `GET /admin/audit` lists
//! them and `/metrics` counts them.

use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};
use solana_signer::Signer;
use x402_gateway::audit::{audit, AuditPass};
use x402_gateway::ledger::{Claimed, FindingKind, Ledger, NewPayment, PaymentState, Submission};
use x402_gateway::localnet::LocalCluster;
use x402_gateway::store::{CachedResponse, PaymentKey};
use x402_gateway::x402::network::SOLANA_DEVNET;

use crate::common::app::split;
use crate::common::cluster::{ata, b64, legacy_tx, Rpc};
use crate::common::gateway::PaidGateway;
use crate::common::postgres::TestDb;
use crate::limits::{metric_total, scrape, ADMIN_TOKEN};
use crate::payments::{PAID, PRICE};

/// A real `TransferChecked` of `amount` from the cluster's wallet into payTo's token account,
/// sent straight to the cluster (no gateway, no ledger); its signature once confirmed.
async fn transfer_in(cluster: &LocalCluster, amount: u64) -> String {
    let client = &cluster.wallets()[0].keypair;
    let (mint, program) = (cluster.mint(), cluster.token_program());
    let ix = spl_token_interface::instruction::transfer_checked(
        &program,
        &ata(&client.pubkey(), &mint, &program),
        &mint,
        &ata(&cluster.pay_to(), &mint, &program),
        &client.pubkey(),
        &[],
        amount,
        6,
    )
    .unwrap();
    let tx = legacy_tx(
        &[ix],
        &client.pubkey(),
        &[client],
        cluster.latest_blockhash().0,
    );
    let rpc = Rpc::new(cluster.rpc_url());
    let sig = rpc
        .ok("sendTransaction", json!([b64(&tx), {"encoding": "base64"}]))
        .await;
    let sig = sig.as_str().unwrap().to_string();
    rpc.wait_confirmed(&sig).await;
    sig
}

/// A payment recorded as settled with `signature` (claimed, submitted and resolved through
/// the ledger's own calls, as the paygate and the reconciler do); its key.
async fn plant_settled(
    ledger: &Ledger,
    cluster: &LocalCluster,
    amount: u64,
    signature: Option<&str>,
) -> String {
    let key = PaymentKey(rand::random());
    let (payer, pay_to, mint) = (
        cluster.wallets()[0].keypair.pubkey().to_string(),
        cluster.pay_to().to_string(),
        cluster.mint().to_string(),
    );
    let claimed = ledger
        .claim(&NewPayment {
            key: &key,
            attempt: "planted",
            pid_alias: None,
            idem_alias: None,
            payer: &payer,
            pay_to: &pay_to,
            asset: &mint,
            network: SOLANA_DEVNET,
            amount,
            route: PAID,
            fingerprint: "planted",
            credits: None,
        })
        .await
        .unwrap();
    assert!(matches!(claimed, Claimed::Fresh));
    let answer = CachedResponse {
        status: 200,
        headers: vec![],
        body: b"{}".to_vec(),
    };
    let submission = Submission {
        signature: None,
        settle_request: "{}",
        answer: &answer,
        facilitator: "local",
    };
    assert!(ledger.submit(&key, "planted", &submission).await.unwrap());
    assert!(ledger
        .resolve(
            &key,
            "planted",
            PaymentState::Settled,
            signature,
            Some("{}"),
            None
        )
        .await
        .unwrap());
    key.hex()
}

async fn admin_get(env: &PaidGateway, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let (status, body, _) = split(env.app.send(request.body(Body::empty()).unwrap()).await).await;
    (status, body)
}

fn kinds(pass: &AuditPass) -> Vec<FindingKind> {
    let mut kinds: Vec<FindingKind> = pass.findings.iter().map(|f| f.kind).collect();
    kinds.sort_by_key(|k| k.as_str());
    kinds
}

async fn audit_finds_what_was_planted(env: PaidGateway) {
    let cluster = &env.cluster;
    let app = &env.app.app;
    let ledger = app.ledger.clone();
    let chain_audit = app.audit.clone().expect("payments are on");

    // A real paid request: settled through the gateway, recorded as it happened.
    let challenge = env.challenge(PAID).await;
    let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
    let header = PaidGateway::header(&accepted, &env.fixture(PRICE, 1));
    let (status, body, _) = env.pay(PAID, &header).await;
    assert_eq!(status, 200, "{body}");
    ledger.flush().await;

    // Planted on the chain: a transfer into payTo that no payment records.
    let unknown = transfer_in(cluster, 777).await;
    // A transfer of 5000 recorded as a payment of 4000.
    let short = transfer_in(cluster, 5_000).await;
    let short_key = plant_settled(&ledger, cluster, 4_000, Some(&short)).await;
    cluster.advance_slots(32); // everything so far is finalized
                               // A settled payment whose transaction landed but is not finalized.
    let fresh = transfer_in(cluster, 333).await;
    let fresh_key = plant_settled(&ledger, cluster, 333, Some(&fresh)).await;
    // A settled payment whose signature the chain never saw, and one without a signature.
    let bogus = solana_signature::Signature::from([9u8; 64]).to_string();
    let bogus_key = plant_settled(&ledger, cluster, 1_000, Some(&bogus)).await;
    let unsigned_key = plant_settled(&ledger, cluster, 1_000, None).await;

    let pass = audit(&chain_audit).await.unwrap();
    assert_eq!(pass.confirmed, 1, "the real payment checks out: {pass:?}");
    assert_eq!(pass.deferred, 0, "{pass:?}");
    assert_eq!(pass.rpc_errors, 0, "{pass:?}");
    assert_eq!(
        pass.transfers, 3,
        "finalized history: the payment, 777, 5000: {pass:?}"
    );
    assert_eq!(
        kinds(&pass),
        [
            FindingKind::AmountMismatch,
            FindingKind::MissingOnChain,
            FindingKind::NoSignature,
            FindingKind::NotFinalized,
            FindingKind::UnknownTransfer,
        ],
        "{pass:?}"
    );
    let found = |kind| pass.findings.iter().find(|f| f.kind == kind).unwrap();
    let transfer = found(FindingKind::UnknownTransfer);
    assert_eq!(
        (
            transfer.signature.as_str(),
            transfer.amount,
            &transfer.payment_key
        ),
        (unknown.as_str(), Some(777), &None)
    );
    let mismatch = found(FindingKind::AmountMismatch);
    assert_eq!(
        (mismatch.signature.as_str(), mismatch.amount),
        (short.as_str(), Some(5_000))
    );
    assert_eq!(mismatch.payment_key.as_deref(), Some(short_key.as_str()));
    let unfinalized = found(FindingKind::NotFinalized);
    assert_eq!(unfinalized.signature, fresh);
    assert_eq!(unfinalized.payment_key.as_deref(), Some(fresh_key.as_str()));
    let missing = found(FindingKind::MissingOnChain);
    assert_eq!(missing.signature, bogus);
    assert_eq!(missing.payment_key.as_deref(), Some(bogus_key.as_str()));
    assert_eq!(found(FindingKind::NoSignature).signature, unsigned_key);

    // The next pass has nothing new: every payment was judged, the history read.
    let again = audit(&chain_audit).await.unwrap();
    assert_eq!(again, AuditPass::default(), "nothing checked twice");
    // Once the 333 transfer is finalized the history walk reads it, from where it stopped,
    // and finds it recorded.
    cluster.advance_slots(32);
    let later = audit(&chain_audit).await.unwrap();
    assert_eq!(later.transfers, 1, "{later:?}");
    assert!(later.findings.is_empty(), "{later:?}");

    // The operator's view.
    let (status, body) = admin_get(&env, "/admin/audit", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["findings"].as_array().unwrap().len(), 5, "{body}");
    assert_eq!(
        body["counts"],
        json!({"not_finalized": 1, "amount_mismatch": 1, "missing_on_chain": 1,
               "no_signature": 1, "unknown_transfer": 1})
    );
    let (status, body) = admin_get(
        &env,
        "/admin/audit?kind=unknown_transfer&limit=10",
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["findings"],
        json!([{"kind": "unknown_transfer", "signature": unknown, "payment_key": null,
                "amount": 777, "detail": body["findings"][0]["detail"],
                "found_ms": body["findings"][0]["found_ms"]}])
    );
    let (status, body) = admin_get(&env, "/admin/audit?kind=lost", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_query", "{body}");
    let (status, _) = admin_get(&env, "/admin/audit?page=2", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 400);
    assert_eq!(admin_get(&env, "/admin/audit", None).await.0, 401);

    // Counted: new findings by kind, and every recorded finding by kind.
    let text = scrape(&env.app).await;
    assert!(metric_total(&text, "x402_audit_findings_total") >= 5.0);
    for kind in FindingKind::ALL {
        let counter = format!("x402_audit_findings_total{{kind=\"{kind}\"}}");
        assert!(text.contains(&counter), "{counter} missing:\n{text}");
        assert!(
            text.contains(&format!("x402_audit_findings{{kind=\"{kind}\"}}")),
            "{text}"
        );
    }
}

fn gateway() -> crate::common::gateway::PaidGatewayBuilder {
    PaidGateway::builder()
        .public_base_url("https://gateway.example")
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        // Driven by hand; a settled payment is judged at once (the test finalizes by hand).
        .ledger_setting("audit_interval_secs = 0")
        .ledger_setting("audit_finality_secs = 0")
}

#[tokio::test]
async fn reconciliation_finds_a_planted_unknown_transfer_and_unfinalized_row_on_sqlite() {
    audit_finds_what_was_planted(gateway().build().await).await;
}

#[tokio::test]
async fn reconciliation_finds_a_planted_unknown_transfer_and_unfinalized_row_on_postgres() {
    let db = TestDb::create().await;
    audit_finds_what_was_planted(gateway().ledger_url(db.url.clone()).build().await).await;
}

#[tokio::test]
async fn a_settled_payment_too_young_to_judge_waits_for_a_later_pass() {
    let env = PaidGateway::builder()
        .ledger_setting("audit_interval_secs = 0")
        .ledger_setting("audit_finality_secs = 3600")
        .build()
        .await;
    let cluster = &env.cluster;
    let ledger = env.app.app.ledger.clone();
    let chain_audit = env.app.app.audit.clone().unwrap();
    let fresh = transfer_in(cluster, 333).await;
    plant_settled(&ledger, cluster, 333, Some(&fresh)).await;
    let bogus = solana_signature::Signature::from([8u8; 64]).to_string();
    plant_settled(&ledger, cluster, 1_000, Some(&bogus)).await;

    // Not finalized yet / not known yet, settled a moment ago: no verdict, looked at again.
    for _ in 0..2 {
        let pass = audit(&chain_audit).await.unwrap();
        assert_eq!(pass.deferred, 2, "{pass:?}");
        assert!(pass.findings.is_empty(), "{pass:?}");
    }
    // Finalized now: the real one checks out; the unknown one is still too young to call.
    cluster.advance_slots(32);
    let pass = audit(&chain_audit).await.unwrap();
    assert_eq!((pass.confirmed, pass.deferred), (1, 1), "{pass:?}");
    assert!(pass.findings.is_empty(), "{pass:?}");
}

#[tokio::test]
async fn the_audit_runs_by_itself_once_per_interval_across_instances() {
    let env = PaidGateway::builder()
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .ledger_setting("audit_interval_secs = 1")
        .ledger_setting("audit_finality_secs = 0")
        .build()
        .await;
    let ledger = env.app.app.ledger.clone();
    // The lease: one holder per interval, and the holder cannot take it again early either.
    let other = env.instance().await;
    let other_ledger = other.app.ledger.clone();
    let hour = std::time::Duration::from_secs(3600);
    assert!(ledger.take_due("test-job", hour).await.unwrap());
    assert!(!ledger.take_due("test-job", hour).await.unwrap());
    assert!(!other_ledger.take_due("test-job", hour).await.unwrap());

    // The scheduled pass finds a planted transfer without being called.
    let unknown = transfer_in(&env.cluster, 4_242).await;
    env.cluster.advance_slots(32);
    let mut listed = Value::Null;
    for _ in 0..100 {
        let (status, body) = admin_get(
            &env,
            "/admin/audit?kind=unknown_transfer",
            Some(ADMIN_TOKEN),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        if !body["findings"].as_array().unwrap().is_empty() {
            listed = body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(listed["findings"][0]["signature"], unknown, "{listed}");
    assert_eq!(listed["counts"]["unknown_transfer"], 1);
}
