//! A gateway built from a TOML snippet whose providers point at mock upstreams.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{Request, Response};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use x402_gateway::config::Config;
use x402_gateway::{build_router, App, AppState};

pub const ALCHEMY_KEY: &str = "alchemy-test-key-5ecr3t";
pub const HELIUS_KEY: &str = "helius-test-key-5ecr3t";

pub struct TestApp {
    pub app: AppState,
    pub router: Router,
    /// The ledger's directory when the config left it at its default (never the repository's
    /// `data/`): one fresh SQLite ledger per test app.
    _ledger_dir: Option<tempfile::TempDir>,
}

/// Config with `alchemy` (key in path) and `helius` (key in query) on the given base URLs,
/// served unpaid (`[payment] allow_unpaid = true`).
pub fn providers_toml(alchemy: &str, helius: &str) -> String {
    format!(
        r#"
[upstream]
timeout_ms = 500
connect_timeout_ms = 200
max_response_bytes = 65536

[[providers]]
name = "alchemy"
key_env = "ALCHEMY_API_KEY"
key_placement = "path"
[providers.clusters]
mainnet = "{alchemy}/v2"
devnet = "{alchemy}/v2"
[providers.rpc]
getBalance = 10
getSlot = 20
getAccountInfo = 10
getProgramAccounts = 20
getHealth = 20
[providers.das]
getAsset = 80

[[providers]]
name = "helius"
key_env = "HELIUS_API_KEY"
key_placement = {{ query = {{ param = "api-key" }} }}
[providers.clusters]
mainnet = "{helius}/"
[providers.rpc]
getBalance = 1
[providers.das]
getAsset = 10

# These tests serve the keyed providers unpaid on purpose.
[payment]
allow_unpaid = true
"#
    )
}

impl TestApp {
    pub async fn new(toml: &str) -> Self {
        let env: HashMap<String, String> = [
            ("ALCHEMY_API_KEY".to_string(), ALCHEMY_KEY.to_string()),
            ("HELIUS_API_KEY".to_string(), HELIUS_KEY.to_string()),
        ]
        .into();
        Self::with_env(toml, env).await
    }

    pub async fn with_env(toml: &str, env: HashMap<String, String>) -> Self {
        let mut config = Config::from_toml(toml, &env).expect("test config");
        let ledger_dir = (config.ledger.url.is_none() && config.ledger.file_url.is_none())
            .then(|| tempfile::tempdir().expect("tempdir"));
        if let Some(dir) = &ledger_dir {
            config.ledger.data_dir = dir.path().to_path_buf();
        }
        let app = App::build(config).await.expect("app builds");
        let router = build_router(app.clone());
        Self {
            app,
            router,
            _ledger_dir: ledger_dir,
        }
    }

    pub async fn send(&self, request: Request<Body>) -> Response<Body> {
        self.router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible")
    }

    pub async fn post_json(
        &self,
        path: &str,
        body: impl Into<String>,
    ) -> (u16, Value, Response<()>) {
        let request = Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.into()))
            .unwrap();
        split(self.send(request).await).await
    }

    /// POSTs `body` to `path` with `PAYMENT-SIGNATURE: payment` and the `extra` headers.
    pub async fn post_paid(
        &self,
        path: &str,
        payment: &str,
        body: &str,
        extra: &[(&str, &str)],
    ) -> (u16, Value, Response<()>) {
        let mut request = Request::post(path)
            .header("content-type", "application/json")
            .header("payment-signature", payment);
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::from(body.to_owned())).unwrap();
        split(self.send(request).await).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value, Response<()>) {
        split(
            self.send(Request::get(path).body(Body::empty()).unwrap())
                .await,
        )
        .await
    }
}

/// Status, parsed JSON body (Null when empty or not JSON), and the head.
pub async fn split(response: Response<Body>) -> (u16, Value, Response<()>) {
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (parts.status.as_u16(), json, Response::from_parts(parts, ()))
}

/// A `[facilitator]` section with a fresh fee-payer keypair file in `dir` (no RPC is called
/// until a payment is verified). Returns the TOML and the fee payer's address.
pub fn facilitator_toml(dir: &std::path::Path) -> (String, String) {
    use solana_keypair::Keypair;
    use solana_signer::Signer;
    let keypair = Keypair::new();
    let path = dir.join("fee-payer.json");
    x402_gateway::localnet::write_keypair_file(&path, &keypair).unwrap();
    let toml = format!(
        r#"
[facilitator]
fee_payer_keypair = "{}"
[[facilitator.networks]]
network = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"
rpc_urls = ["http://127.0.0.1:9"]
allowed_mints = ["4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"]
"#,
        path.display()
    );
    (toml, keypair.pubkey().to_string())
}
