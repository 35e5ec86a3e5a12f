//! The local cluster for tests: start one per test in a temp dir, talk JSON-RPC over real HTTP,
//! build real signed SPL token transfers.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use solana_address::Address;
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_message::{Message, VersionedMessage};
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;
use solana_transaction::Transaction;
use x402_gateway::localnet::{LocalCluster, LocalnetConfig};
use x402_gateway::svm::testkit::PaymentFixture;

/// A running cluster with its temp dir (kept alive as long as the cluster).
pub struct TestNet {
    pub cluster: LocalCluster,
    pub rpc: Rpc,
    pub _dir: tempfile::TempDir,
}

/// The one cluster starter: own cluster on port 0, keypairs in a fresh temp dir (keep it as
/// long as the cluster), clock paused so slot arithmetic in tests is deterministic (tests move
/// time with `advance_slots`).
pub async fn start_cluster() -> (LocalCluster, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = start_cluster_with(LocalnetConfig::for_tests(dir.path())).await;
    (cluster, dir)
}

/// [`start_cluster`] with a custom config.
pub async fn start_cluster_with(cfg: LocalnetConfig) -> LocalCluster {
    let cluster = LocalCluster::start(cfg).await.expect("start localnet");
    cluster.pause_clock(true);
    cluster
}

impl TestNet {
    pub async fn start() -> Self {
        let (cluster, dir) = start_cluster().await;
        Self::on(cluster, dir)
    }

    pub async fn start_with(cfg: LocalnetConfig, dir: tempfile::TempDir) -> Self {
        Self::on(start_cluster_with(cfg).await, dir)
    }

    fn on(cluster: LocalCluster, dir: tempfile::TempDir) -> Self {
        let rpc = Rpc::new(cluster.rpc_url());
        Self {
            cluster,
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
}

/// Minimal JSON-RPC client over reqwest.
pub struct Rpc {
    pub url: String,
    pub http: reqwest::Client,
}

impl Rpc {
    pub fn new(url: String) -> Self {
        Self {
            url,
            http: reqwest::Client::new(),
        }
    }

    /// Sends a raw body and returns (status, parsed JSON or Null for an empty body).
    pub async fn raw(&self, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let resp = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("http");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    /// Full response envelope of one call.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let (status, v) = self.raw(body.to_string()).await;
        assert_eq!(status, 200, "{method}: HTTP {status}");
        assert_eq!(v["jsonrpc"], "2.0");
        assert_eq!(v["id"], 1);
        v
    }

    /// `result` of a call that must succeed.
    pub async fn ok(&self, method: &str, params: Value) -> Value {
        let v = self.call(method, params).await;
        assert!(v.get("error").is_none(), "{method} failed: {v}");
        v["result"].clone()
    }

    /// `error` of a call that must fail.
    pub async fn err(&self, method: &str, params: Value) -> Value {
        let v = self.call(method, params).await;
        assert!(
            v.get("result").is_none(),
            "{method} unexpectedly succeeded: {v}"
        );
        v["error"].clone()
    }

    pub async fn latest_blockhash(&self) -> (Hash, u64) {
        let r = self.ok("getLatestBlockhash", json!([])).await;
        let hash = r["value"]["blockhash"].as_str().unwrap().parse().unwrap();
        (hash, r["value"]["lastValidBlockHeight"].as_u64().unwrap())
    }

    pub async fn token_balance(&self, token_account: &Address) -> u64 {
        let r = self
            .ok("getTokenAccountBalance", json!([token_account.to_string()]))
            .await;
        r["value"]["amount"].as_str().unwrap().parse().unwrap()
    }

    pub async fn send(&self, tx: &VersionedTransaction) -> Value {
        self.call("sendTransaction", json!([b64(tx), {"encoding": "base64"}]))
            .await
    }

    /// Polls `getSignatureStatuses` until the transaction is confirmed (bounded by attempts,
    /// not by asserting on time).
    pub async fn wait_confirmed(&self, sig: &str) -> Value {
        for _ in 0..200 {
            let r = self.ok("getSignatureStatuses", json!([[sig]])).await;
            let st = &r["value"][0];
            if matches!(
                st["confirmationStatus"].as_str(),
                Some("confirmed" | "finalized")
            ) {
                return st.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("transaction {sig} never confirmed");
    }
}

pub fn b64(tx: &VersionedTransaction) -> String {
    B64.encode(bincode::serialize(tx).unwrap())
}

pub fn ata(owner: &Address, mint: &Address, program: &Address) -> Address {
    spl_associated_token_account_interface::address::get_associated_token_address_with_program_id(
        owner, mint, program,
    )
}

/// A USDC `TransferChecked` from `from`'s ATA to `to`'s ATA, fee paid by `payer`.
pub fn transfer_checked_ix(
    net: &TestNet,
    from: &Address,
    to: &Address,
    amount: u64,
) -> solana_instruction::Instruction {
    let c = &net.cluster;
    let program = c.token_program();
    spl_token_interface::instruction::transfer_checked(
        &program,
        &ata(from, &c.mint(), &program),
        &c.mint(),
        &ata(to, &c.mint(), &program),
        from,
        &[],
        amount,
        6,
    )
    .unwrap()
}

/// Legacy transaction with `payer` as fee payer, signed by all `signers`.
pub fn legacy_tx(
    ixs: &[solana_instruction::Instruction],
    payer: &Address,
    signers: &[&Keypair],
    hash: Hash,
) -> VersionedTransaction {
    let msg = Message::new_with_blockhash(ixs, Some(payer), &hash);
    let mut tx = Transaction::new_unsigned(msg);
    tx.partial_sign(signers, hash);
    VersionedTransaction::from(tx)
}

/// v0 transaction (no lookup tables), signed by `signers` (which must cover every signer).
pub fn v0_tx(
    ixs: &[solana_instruction::Instruction],
    payer: &Keypair,
    signers: &[&Keypair],
    hash: Hash,
) -> VersionedTransaction {
    let msg = solana_message::v0::Message::try_compile(&payer.pubkey(), ixs, &[], hash).unwrap();
    VersionedTransaction::try_new(VersionedMessage::V0(msg), signers).unwrap()
}

/// An honest payment of `amount` from the cluster's wallet to its `pay_to`, fee payer its first
/// fee payer, on the latest blockhash; `nonce` makes the memo (and so the message) unique.
pub fn payment_fixture(cluster: &LocalCluster, amount: u64, nonce: u8) -> PaymentFixture {
    PaymentFixture {
        fee_payer: cluster.fee_payers()[0].keypair.insecure_clone(),
        spare_signer: Keypair::new(),
        client: cluster.wallets()[0].keypair.insecure_clone(),
        pay_to: cluster.pay_to(),
        mint: cluster.mint(),
        token_program: cluster.token_program(),
        decimals: 6,
        amount,
        memo: Some(format!("{nonce:02x}{}", "5e".repeat(15))),
        blockhash: cluster.latest_blockhash().0,
    }
}
