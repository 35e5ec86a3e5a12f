//! The money metrics on `/metrics`: what the fee payer spent on fees (exactly the SOL it
//! lost), its balance as last polled, and the ledger's payments by state and value pending
//! settlement (set by the reconciler).

use solana_signer::Signer;
use x402_gateway::x402::network::SOLANA_DEVNET;

use crate::common::gateway::PaidGateway;
use crate::limits::{scrape, ADMIN_TOKEN};
use crate::payments::{PAID, PRICE};

/// The value of the `family` sample whose labels include every one of `labels`.
fn sample(text: &str, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn fee_payer_and_ledger_metrics_show_what_the_money_did() {
    let env = PaidGateway::builder()
        .public_base_url("https://gateway.example")
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .build()
        .await;
    let fee_payer = env.cluster.fee_payers()[0].keypair.pubkey();
    let fee_payer_label = fee_payer.to_string();
    let labels = [
        ("fee_payer", fee_payer_label.as_str()),
        ("network", SOLANA_DEVNET),
    ];
    let sol_before = env.cluster.sol_balance(&fee_payer);

    for nonce in [1, 2] {
        let challenge = env.challenge(PAID).await;
        let accepted = serde_json::to_value(&challenge.accepts[0]).unwrap();
        let header = PaidGateway::header(&accepted, &env.fixture(PRICE, nonce));
        let (status, body, _) = env.pay(PAID, &header).await;
        assert_eq!(status, 200, "{body}");
    }
    let spent = sol_before - env.cluster.sol_balance(&fee_payer);
    assert!(spent > 0);

    let app = &env.app.app;
    let facilitator = app.facilitator.clone().expect("the in-process facilitator");
    let polled = facilitator.poll_balances().await;
    assert_eq!(polled[0].lamports, env.cluster.sol_balance(&fee_payer));
    let gate = app.paygate.clone().expect("payments are on");
    app.ledger.flush().await;
    x402_gateway::paygate::reconcile::reconcile(&gate)
        .await
        .unwrap();

    let text = scrape(&env.app).await;
    // This test's fee payer is its own (a fresh keypair per cluster): exact values.
    assert_eq!(
        sample(&text, "x402_fee_payer_fees_lamports_total", &labels),
        Some(spent as f64),
        "fees counted = SOL the fee payer lost:\n{text}"
    );
    assert_eq!(
        sample(&text, "x402_fee_payer_balance_lamports", &labels),
        Some(env.cluster.sol_balance(&fee_payer) as f64),
        "{text}"
    );
    // Process-wide gauges (other tests set them too): present.
    assert!(
        sample(
            &text,
            "x402_ledger_payments",
            &[("state", "settle_submitted")]
        )
        .is_some(),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("x402_value_pending_settlement_atomic ")),
        "{text}"
    );
    for described in [
        "# HELP x402_fee_payer_fees_lamports_total",
        "# HELP x402_fee_payer_balance_lamports",
        "# HELP x402_ledger_payments",
        "# HELP x402_value_pending_settlement_atomic",
    ] {
        assert!(text.contains(described), "{described} missing");
    }
}
