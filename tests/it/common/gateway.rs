//! A paid gateway on the local cluster, assembled by one typed builder instead of TOML pasted
//! into every test file: x402 payments on (USDC of the local cluster to its `pay_to`), the
//! keyless `localnet` provider (the cluster itself) and the `mock` provider (a [`MockUpstream`]
//! whose calls can be counted or made to fail), with the in-process facilitator or a remote one.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::{json, Value};
use solana_keypair::Keypair;
use solana_signer::Signer;
use x402_gateway::localnet::LocalCluster;
use x402_gateway::svm::testkit::PaymentFixture;
use x402_gateway::x402::network::SOLANA_DEVNET;
use x402_gateway::x402::{decode_header, encode_header, PaymentRequired};

use super::cluster::{payment_fixture, start_cluster};
use super::{MockUpstream, TestApp};

/// The in-process facilitator's `[facilitator]` section for `cluster` (its first fee payer;
/// timings small enough for tests, generous enough for a loaded 2-core machine).
pub fn facilitator_toml(cluster: &LocalCluster) -> String {
    format!(
        r#"
[facilitator]
fee_payer_keypair = "{fee_payer}"
confirm_poll_ms = 50
rebroadcast_ms = 500
settle_deadline_ms = 15000
[[facilitator.networks]]
network = "{SOLANA_DEVNET}"
rpc_urls = ["{rpc}"]
allowed_mints = ["{mint}"]
"#,
        fee_payer = cluster.fee_payers()[0].path.display(),
        rpc = cluster.rpc_url(),
        mint = cluster.mint(),
    )
}

/// The `[redis]` section: the shared store on a real Redis.
#[derive(Debug, Clone)]
pub struct RedisStore {
    pub url: String,
    pub key_prefix: String,
    /// `None`: the gateway's default.
    pub command_timeout_ms: Option<u64>,
}

/// A `[[payment.remote_facilitators]]` entry.
#[derive(Debug, Clone)]
pub struct RemoteFacilitator {
    pub name: String,
    pub url: String,
    /// `None`: the gateway's default.
    pub timeout_ms: Option<u64>,
}

/// A gateway under test with payments on, its cluster and its mock upstream.
pub struct PaidGateway {
    pub cluster: LocalCluster,
    pub app: TestApp,
    pub mock: MockUpstream,
    /// The gateway's config, to start more instances on the same state.
    pub toml: String,
    env: HashMap<String, String>,
    _dir: tempfile::TempDir,
}

/// Settings beyond the defaults; see [`PaidGateway::builder`].
#[derive(Default)]
pub struct PaidGatewayBuilder {
    public_base_url: Option<String>,
    redis: Option<RedisStore>,
    remote_facilitator: Option<RemoteFacilitator>,
    reconcile_interval_ms: Option<u64>,
    require_memo: bool,
    upstream_timeouts_ms: Option<(u64, u64)>,
    sections: String,
    env: HashMap<String, String>,
    cluster: Option<(LocalCluster, tempfile::TempDir)>,
    ledger_url: Option<String>,
    ledger_settings: String,
}

impl PaidGatewayBuilder {
    /// `[server] public_base_url` (resource URLs of the challenges).
    pub fn public_base_url(mut self, url: impl Into<String>) -> Self {
        self.public_base_url = Some(url.into());
        self
    }

    /// The shared store on Redis instead of in memory.
    pub fn with_redis(mut self, redis: RedisStore) -> Self {
        self.redis = Some(redis);
        self
    }

    /// Only this remote facilitator, no in-process `[facilitator]`.
    pub fn with_remote_facilitator(mut self, remote: RemoteFacilitator) -> Self {
        self.remote_facilitator = Some(remote);
        self
    }

    /// `[payment] reconcile_interval_ms` (tests that drive the reconciler by hand set an hour).
    pub fn reconcile_interval_ms(mut self, ms: u64) -> Self {
        self.reconcile_interval_ms = Some(ms);
        self
    }

    /// `[payment] require_memo = true`: memo-less payments are refused.
    pub fn require_memo(mut self) -> Self {
        self.require_memo = true;
        self
    }

    /// `[upstream] timeout_ms` and `connect_timeout_ms`.
    pub fn upstream_timeouts_ms(mut self, timeout_ms: u64, connect_timeout_ms: u64) -> Self {
        self.upstream_timeouts_ms = Some((timeout_ms, connect_timeout_ms));
        self
    }

    /// Whole sections the builder does not model (`[usage]`, `[rate_limits]`...), appended.
    pub fn sections(mut self, toml: &str) -> Self {
        self.sections.push_str(toml);
        self.sections.push('\n');
        self
    }

    /// An environment variable the config reads (e.g. `ADMIN_TOKEN`).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.to_owned(), value.to_owned());
        self
    }

    /// The ledger at `url` (e.g. a fresh PostgreSQL database) instead of a SQLite file in the
    /// test's directory.
    pub fn ledger_url(mut self, url: impl Into<String>) -> Self {
        self.ledger_url = Some(url.into());
        self
    }

    /// One more `key = value` line of the `[ledger]` section.
    pub fn ledger_setting(mut self, line: &str) -> Self {
        self.ledger_settings.push_str(line);
        self.ledger_settings.push('\n');
        self
    }

    /// Sell on `cluster` (started by the test, e.g. to read its fee payer first).
    pub fn with_cluster(mut self, cluster: LocalCluster, dir: tempfile::TempDir) -> Self {
        self.cluster = Some((cluster, dir));
        self
    }

    pub async fn build(mut self) -> PaidGateway {
        let (cluster, dir) = match self.cluster.take() {
            Some(started) => started,
            None => start_cluster().await,
        };
        let mock = MockUpstream::start().await;
        let toml = self.render(&cluster, &mock, dir.path());
        let app = TestApp::with_env(&toml, self.env.clone()).await;
        PaidGateway {
            cluster,
            app,
            mock,
            toml,
            env: self.env,
            _dir: dir,
        }
    }

    /// The config this builder describes, for `cluster` and `mock`, with the SQLite ledger
    /// (unless [`Self::ledger_url`]) in `dir`: what [`Self::build`] serves, or what a test
    /// hands to the real binary.
    pub fn render(
        &self,
        cluster: &LocalCluster,
        mock: &MockUpstream,
        dir: &std::path::Path,
    ) -> String {
        let mut toml = String::new();
        if let Some(url) = &self.public_base_url {
            writeln!(toml, "[server]\npublic_base_url = \"{url}\"\n").unwrap();
        }
        writeln!(
            toml,
            "[payment]\nenabled = true\npay_to = \"{}\"",
            cluster.pay_to()
        )
        .unwrap();
        if let Some(ms) = self.reconcile_interval_ms {
            writeln!(toml, "reconcile_interval_ms = {ms}").unwrap();
        }
        if self.require_memo {
            writeln!(toml, "require_memo = true").unwrap();
        }
        writeln!(
            toml,
            "[[payment.accepts]]\nnetwork = \"{SOLANA_DEVNET}\"\nasset = \"{}\"",
            cluster.mint()
        )
        .unwrap();
        match &self.remote_facilitator {
            None => toml.push_str(&facilitator_toml(cluster)),
            Some(remote) => {
                writeln!(
                    toml,
                    "[[payment.remote_facilitators]]\nname = \"{}\"\nurl = \"{}\"",
                    remote.name, remote.url
                )
                .unwrap();
                if let Some(ms) = remote.timeout_ms {
                    writeln!(toml, "timeout_ms = {ms}").unwrap();
                }
            }
        }
        write!(
            toml,
            r#"
[[providers]]
name = "localnet"
key_placement = "none"
atomic_per_million_units = 1000000
[providers.clusters]
devnet = "{rpc}"
[providers.rpc]
getSlot = 1
getBalance = 1

[[providers]]
name = "mock"
key_placement = "none"
atomic_per_million_units = 1000000
[providers.clusters]
devnet = "{mock}"
[providers.rpc]
getSlot = 1

"#,
            rpc = cluster.rpc_url(),
            mock = mock.url,
        )
        .unwrap();
        if let Some(redis) = &self.redis {
            writeln!(
                toml,
                "[redis]\nurl = \"{}\"\nkey_prefix = \"{}\"",
                redis.url, redis.key_prefix
            )
            .unwrap();
            if let Some(ms) = redis.command_timeout_ms {
                writeln!(toml, "command_timeout_ms = {ms}").unwrap();
            }
        }
        if let Some((timeout, connect)) = self.upstream_timeouts_ms {
            writeln!(
                toml,
                "[upstream]\ntimeout_ms = {timeout}\nconnect_timeout_ms = {connect}"
            )
            .unwrap();
        }
        // The local cluster's SOL is worth nothing: settlement costs no USD, and a call costs
        // the floor (1000) unless a test prices it otherwise.
        writeln!(toml, "[pricing.settlement]\nsol_usd = \"0\"").unwrap();
        // The ledger: shared by every instance of this config; heartbeats fast enough that a
        // dead instance is noticed within a second; with the reconciler driven by hand, its
        // submitted settlements are due at once.
        let ledger_url = self.ledger_url.clone().unwrap_or_else(|| {
            format!("sqlite://{}?mode=rwc", dir.join("ledger.sqlite3").display())
        });
        writeln!(
            toml,
            "[ledger]\nurl = \"{ledger_url}\"\nheartbeat_ms = 200\ndead_after_ms = 1000"
        )
        .unwrap();
        if self.reconcile_interval_ms.is_some() {
            writeln!(toml, "settle_grace_ms = 0").unwrap();
        }
        toml.push_str(&self.ledger_settings);
        toml.push_str(&self.sections);
        toml
    }
}

impl PaidGateway {
    pub fn builder() -> PaidGatewayBuilder {
        PaidGatewayBuilder::default()
    }

    /// The default paid gateway, with resource URLs on `https://gateway.example`.
    pub async fn start() -> Self {
        Self::builder()
            .public_base_url("https://gateway.example")
            .build()
            .await
    }

    /// Another gateway instance with the same config (and so the same shared store, if Redis).
    pub async fn instance(&self) -> TestApp {
        TestApp::with_env(&self.toml, self.env.clone()).await
    }

    pub fn client(&self) -> &Keypair {
        &self.cluster.wallets()[0].keypair
    }

    /// A payment built as the official client builds it, for `amount`, to `pay_to`.
    pub fn fixture(&self, amount: u64, nonce: u8) -> PaymentFixture {
        payment_fixture(&self.cluster, amount, nonce)
    }

    /// The challenge for `path`, decoded from `PAYMENT-REQUIRED`.
    pub async fn challenge(&self, path: &str) -> PaymentRequired {
        let (status, _, head) = self.app.post_json(path, "").await;
        assert_eq!(status, 402);
        decode_header(head.headers()["payment-required"].as_bytes(), 16 * 1024).unwrap()
    }

    /// `PAYMENT-SIGNATURE` for `fixture`, accepting `accepted` (as the client copies it).
    pub fn header(accepted: &Value, fixture: &PaymentFixture) -> String {
        encode_header(&json!({
            "x402Version": 2,
            "resource": {"url": "https://gateway.example/x", "description": "", "mimeType": "application/json"},
            "accepted": accepted,
            "payload": {"transaction": fixture.honest_base64()},
        }))
    }

    pub async fn pay(&self, path: &str, header: &str) -> (u16, Value, axum::http::Response<()>) {
        self.pay_body(path, header, "").await
    }

    pub async fn pay_body(
        &self,
        path: &str,
        header: &str,
        body: &str,
    ) -> (u16, Value, axum::http::Response<()>) {
        self.pay_body_with(path, header, body, &[]).await
    }

    pub async fn pay_body_with(
        &self,
        path: &str,
        header: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Value, axum::http::Response<()>) {
        self.app.post_paid(path, header, body, headers).await
    }

    /// Token balances of (the client wallet, `pay_to`).
    pub fn balances(&self) -> (u64, u64) {
        let client = self.client().pubkey();
        (
            self.cluster.token_balance(&client),
            self.cluster.token_balance(&self.cluster.pay_to()),
        )
    }
}
