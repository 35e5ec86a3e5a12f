//! The in-process facilitator on a local cluster, and payments built the way the official
//! client builds them (limit, price, TransferChecked, memo; v0 message; client signs; fee-payer
//! slot left zero).

use std::time::Duration;

use serde_json::{json, Value};
use solana_address::Address;
use solana_keypair::Keypair;
use solana_signer::Signer;
use x402_gateway::config::LocalFacilitatorConfig;
use x402_gateway::facilitator::keys::FeePayerKeys;
use x402_gateway::facilitator::local::LocalFacilitator;
use x402_gateway::localnet::LocalCluster;
use x402_gateway::solana_rpc::SolanaRpc;
use x402_gateway::svm::testkit::PaymentFixture;
use x402_gateway::x402::network::SOLANA_DEVNET;
use x402_gateway::x402::FacilitatorRequest;

use super::cluster::{payment_fixture, start_cluster};

/// Price used by default: 0.001 USDC.
pub const AMOUNT: u64 = 1_000;

/// A cluster (clock paused), its temp dir and a facilitator serving it as devnet.
pub struct Env {
    pub cluster: LocalCluster,
    pub facilitator: LocalFacilitator,
    pub rpc: SolanaRpc,
    pub _dir: tempfile::TempDir,
}

/// Timings small enough for tests, generous enough for a loaded 2-core machine.
pub fn test_config(rpc_url: &str, mint: &Address) -> LocalFacilitatorConfig {
    LocalFacilitatorConfig {
        confirm_poll_ms: 50,
        rebroadcast_ms: 500,
        settle_deadline_ms: 15_000,
        ..LocalFacilitatorConfig::single(
            SOLANA_DEVNET,
            vec![rpc_url.parse().unwrap()],
            vec![mint.to_string()],
        )
    }
}

impl Env {
    pub async fn start() -> Self {
        let (cluster, dir) = start_cluster().await;
        let keys =
            FeePayerKeys::new(vec![cluster.fee_payers()[0].keypair.insecure_clone()]).unwrap();
        let cfg = test_config(&cluster.rpc_url(), &cluster.mint());
        let facilitator = LocalFacilitator::new(&cfg, keys).expect("facilitator");
        let rpc = SolanaRpc::new(
            vec![cluster.rpc_url().parse().unwrap()],
            Duration::from_secs(5),
        );
        Self {
            cluster,
            facilitator,
            rpc,
            _dir: dir,
        }
    }

    pub fn client(&self) -> &Keypair {
        &self.cluster.wallets()[0].keypair
    }

    pub fn fee_payer(&self) -> &Keypair {
        &self.cluster.fee_payers()[0].keypair
    }

    /// An honest payment of `amount` on the latest blockhash; `nonce` makes the memo (and so
    /// the message) unique.
    pub fn fixture(&self, amount: u64, nonce: u8) -> PaymentFixture {
        payment_fixture(&self.cluster, amount, nonce)
    }

    /// The requirements JSON of the gateway's 402 for `fixture`, fee payer `fee_payer`.
    pub fn requirements(&self, amount: u64, fee_payer: &Address) -> Value {
        json!({
            "scheme": "exact",
            "network": SOLANA_DEVNET,
            "amount": amount.to_string(),
            "asset": self.cluster.mint().to_string(),
            "payTo": self.cluster.pay_to().to_string(),
            "maxTimeoutSeconds": 60,
            "extra": {"feePayer": fee_payer.to_string()}
        })
    }

    /// The honest payment's request body, exactly as `@x402/core` `HTTPFacilitatorClient`
    /// serializes it.
    pub fn body(&self, fixture: &PaymentFixture) -> Value {
        let req = self.requirements(fixture.amount, &fixture.fee_payer.pubkey());
        body_v2(&req, &req, &fixture.honest_base64())
    }

    pub fn request(&self, fixture: &PaymentFixture) -> FacilitatorRequest {
        serde_json::from_value(self.body(fixture)).unwrap()
    }
}

/// `{"x402Version":2,"paymentPayload":{…},"paymentRequirements":{…}}`.
pub fn body_v2(accepted: &Value, required: &Value, transaction: &str) -> Value {
    json!({
        "x402Version": 2,
        "paymentPayload": {
            "x402Version": 2,
            "resource": {
                "url": "http://127.0.0.1/rpc",
                "description": "Solana JSON-RPC getBalance",
                "mimeType": "application/json"
            },
            "accepted": accepted,
            "payload": {"transaction": transaction},
            "extensions": {}
        },
        "paymentRequirements": required
    })
}

pub fn request_of(body: &Value) -> FacilitatorRequest {
    serde_json::from_value(body.clone()).unwrap()
}

/// Fails the test instead of hanging it.
pub async fn guard<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("did not finish within the 60 s guard")
}
