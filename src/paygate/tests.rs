//! The paygate alone: the real layer over a `service_fn` upstream, a stub facilitator, the
//! in-memory store and real signed payments. The whole answer table (402, 200 + receipt,
//! replay, 409, 429, 503, 504, 500 fail-closed) without a router, a cluster or a socket.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::json;
use solana_signer::Signer;
use tower::util::BoxCloneService;
use tower::{Layer, Service, ServiceExt};

use super::{paygate, Paygate};
use crate::config::{AcceptConfig, PaymentConfig, RateLimitsConfig};
use crate::config::{Config, EMBEDDED_DEFAULT};
use crate::exchange::{Exchange, PaymentOutcome, UpstreamOutcome};
use crate::facilitator::{Facilitator, FacilitatorError, SETTLEMENT_PENDING};
use crate::priced::{Charge, Discovery, PricedRequest, RouteId};
use crate::pricing::Quote;
use crate::ratelimit::RateLimits;
use crate::store::memory::MemoryStore;
use crate::svm::testkit::PaymentFixture;
use crate::upstream::Providers;
use crate::x402::network::SOLANA_DEVNET;
use crate::x402::{
    decode_header, encode_header, FacilitatorRequest, PaymentPayload, PaymentRequired,
    SettleResponse, SupportedKind, SupportedResponse, VerifyResponse,
};

const PATH: &str = "/v1/x402/solana/devnet/alchemy/rpc/getBalance";

/// What the stub facilitator answers, and what it was asked.
#[derive(Debug)]
struct Stub {
    fee_payer: String,
    verify: Mutex<Result<VerifyResponse, FacilitatorError>>,
    settle: Mutex<Result<SettleResponse, FacilitatorError>>,
    verifies: AtomicUsize,
    settles: AtomicUsize,
}

fn settled(success: bool, reason: Option<&str>) -> SettleResponse {
    SettleResponse {
        success,
        error_reason: reason.map(String::from),
        error_message: None,
        transaction: "5igSig".into(),
        network: SOLANA_DEVNET.into(),
        payer: None,
    }
}

#[async_trait]
impl Facilitator for Stub {
    fn name(&self) -> &str {
        "stub"
    }
    async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
        Ok(SupportedResponse {
            kinds: vec![SupportedKind {
                x402_version: 2,
                scheme: "exact".into(),
                network: SOLANA_DEVNET.into(),
                extra: Some(
                    json!({"feePayer": self.fee_payer})
                        .as_object()
                        .cloned()
                        .unwrap(),
                ),
            }],
            extensions: vec![],
            signers: Default::default(),
        })
    }
    async fn verify(&self, _: &FacilitatorRequest) -> Result<VerifyResponse, FacilitatorError> {
        self.verifies.fetch_add(1, Ordering::SeqCst);
        self.verify.lock().clone()
    }
    async fn settle(&self, _: &FacilitatorRequest) -> Result<SettleResponse, FacilitatorError> {
        self.settles.fetch_add(1, Ordering::SeqCst);
        self.settle.lock().clone()
    }
}

/// The layer under test over an upstream that answers `upstream` and counts its calls.
struct Harness {
    fx: PaymentFixture,
    stub: Arc<Stub>,
    service: BoxCloneService<axum::extract::Request, Response, Infallible>,
    upstream_calls: Arc<AtomicUsize>,
    upstream: Arc<Mutex<UpstreamOutcome>>,
    provider: Arc<crate::upstream::Provider>,
    _ledger_dir: tempfile::TempDir,
}

impl Harness {
    async fn new(limits: RateLimitsConfig) -> Self {
        let fx = PaymentFixture::new();
        let stub = Arc::new(Stub {
            fee_payer: fx.fee_payer.pubkey().to_string(),
            verify: Mutex::new(Ok(VerifyResponse {
                is_valid: true,
                invalid_reason: None,
                invalid_message: None,
                payer: None,
            })),
            settle: Mutex::new(Ok(settled(true, None))),
            verifies: AtomicUsize::new(0),
            settles: AtomicUsize::new(0),
        });
        let config = PaymentConfig {
            enabled: true,
            pay_to: Some(fx.pay_to.to_string()),
            accepts: vec![AcceptConfig {
                network: SOLANA_DEVNET.into(),
                asset: fx.mint.to_string(),
                decimals: fx.decimals,
                token_program: fx.token_program.to_string(),
            }],
            ..PaymentConfig::default()
        };
        let ledger_dir = tempfile::tempdir().unwrap();
        let ledger = crate::ledger::Ledger::open(&crate::config::LedgerConfig {
            data_dir: ledger_dir.path().to_path_buf(),
            ..Default::default()
        })
        .await
        .unwrap();
        let gate = Paygate::build(
            &config,
            stub.clone(),
            Arc::new(MemoryStore::default()),
            ledger,
            None,
            Arc::new(RateLimits::from_config(&limits)),
        )
        .await
        .unwrap();
        let upstream_calls = Arc::new(AtomicUsize::new(0));
        let upstream = Arc::new(Mutex::new(UpstreamOutcome::Success));
        let (calls, outcome) = (upstream_calls.clone(), upstream.clone());
        let inner = tower::service_fn(move |_: axum::extract::Request| {
            calls.fetch_add(1, Ordering::SeqCst);
            let outcome = *outcome.lock();
            async move {
                let mut response =
                    Response::new(Body::from(r#"{"jsonrpc":"2.0","id":1,"result":7}"#));
                Exchange::of(&mut response).upstream = Some(outcome);
                Ok::<_, Infallible>(response)
            }
        });
        let service = BoxCloneService::new(from_fn_with_state(gate, paygate).layer(inner));
        let config =
            Config::from_toml(EMBEDDED_DEFAULT, &std::collections::HashMap::new()).unwrap();
        let provider = Providers::from_config(&config)
            .unwrap()
            .get("alchemy")
            .unwrap()
            .clone();
        Self {
            fx,
            stub,
            service,
            upstream_calls,
            upstream,
            provider,
            _ledger_dir: ledger_dir,
        }
    }

    fn priced(&self, body: &'static str) -> PricedRequest {
        PricedRequest {
            route: RouteId::RpcMethod,
            resource: format!("http://gateway.test{PATH}"),
            charge: Charge::Quote(Quote {
                amount: self.fx.amount,
                calls: 1,
                units: 1,
                credits: 1,
            }),
            provider: self.provider.clone(),
            network: SOLANA_DEVNET,
            calls: 1,
            discovery: Discovery::Standard,
            body: Bytes::from_static(body.as_bytes()),
            grants: None,
        }
    }

    async fn send(&self, priced: Option<PricedRequest>, payment: Option<&str>) -> Response {
        let mut request = Request::post(PATH);
        if let Some(payment) = payment {
            request = request.header("payment-signature", payment);
        }
        let mut request = request.body(Body::empty()).unwrap();
        if let Some(priced) = priced {
            request.extensions_mut().insert(Arc::new(priced));
        }
        let mut service = self.service.clone();
        service.ready().await.unwrap().call(request).await.unwrap()
    }

    /// A real signed payment of the challenge's offer.
    async fn payment(&self) -> String {
        self.payment_by(&self.fx).await
    }

    /// A real signed payment of the challenge's offer, built from `fx`.
    async fn payment_by(&self, fx: &PaymentFixture) -> String {
        let challenge = self.send(Some(self.priced("{}")), None).await;
        assert_eq!(challenge.status(), StatusCode::PAYMENT_REQUIRED);
        let required: PaymentRequired = decode_header(
            challenge.headers()["payment-required"].as_bytes(),
            16 * 1024,
        )
        .unwrap();
        encode_header(&PaymentPayload {
            x402_version: 2,
            resource: Some(required.resource.clone()),
            accepted: required.accepts[0].clone(),
            payload: json!({"transaction": fx.honest_base64()}),
            extensions: None,
        })
    }
}

fn outcome(response: &Response) -> Option<PaymentOutcome> {
    Exchange::get(response)?.payment.as_ref().map(|p| p.outcome)
}

fn unlimited() -> RateLimitsConfig {
    RateLimitsConfig {
        enabled: false,
        ..RateLimitsConfig::default()
    }
}

#[tokio::test]
async fn an_unpaid_request_gets_the_challenge_and_never_reaches_the_upstream() {
    let h = Harness::new(unlimited()).await;
    let response = h.send(Some(h.priced("{}")), None).await;
    assert_eq!(response.status(), StatusCode::PAYMENT_REQUIRED);
    let required: PaymentRequired =
        decode_header(response.headers()["payment-required"].as_bytes(), 16 * 1024).unwrap();
    assert_eq!(required.accepts[0].amount, h.fx.amount.to_string());
    assert_eq!(required.resource.url, format!("http://gateway.test{PATH}"));
    assert_eq!(outcome(&response), Some(PaymentOutcome::Challenge));
    assert_eq!(h.upstream_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_paid_route_without_a_priced_request_fails_closed() {
    let h = Harness::new(unlimited()).await;
    let payment = h.payment().await;
    for header in [None, Some(payment.as_str())] {
        let response = h.send(None, header).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    assert_eq!(h.upstream_calls.load(Ordering::SeqCst), 0, "never unpaid");
    assert_eq!(h.stub.verifies.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn nothing_to_sell_passes_through_without_a_payment_record() {
    let h = Harness::new(unlimited()).await;
    let mut priced = h.priced("{}");
    priced.charge = Charge::Nothing;
    let response = h.send(Some(priced), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(outcome(&response), None);
}

#[tokio::test]
async fn one_payment_buys_one_answer_and_its_replay() {
    let h = Harness::new(unlimited()).await;
    let payment = h.payment().await;
    let first = h.send(Some(h.priced("{}")), Some(&payment)).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert!(first.headers().contains_key("payment-response"));
    assert_eq!(outcome(&first), Some(PaymentOutcome::Settled));
    let record = Exchange::get(&first).unwrap().payment.clone().unwrap();
    assert_eq!(record.amount, h.fx.amount);
    assert_eq!(record.payer, Some(h.fx.client.pubkey().to_string()));
    assert_eq!(record.transaction.as_deref(), Some("5igSig"));

    // The same request again: the kept answer, no second upstream call or settlement.
    let again = h.send(Some(h.priced("{}")), Some(&payment)).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(outcome(&again), Some(PaymentOutcome::Replayed));
    assert!(again.headers().contains_key("payment-response"));
    // Another request with the same payment: 409.
    let other = h
        .send(Some(h.priced(r#"{"params":[]}"#)), Some(&payment))
        .await;
    assert_eq!(other.status(), StatusCode::CONFLICT);
    assert_eq!(outcome(&other), Some(PaymentOutcome::Duplicate));
    assert_eq!(h.upstream_calls.load(Ordering::SeqCst), 1);
    assert_eq!(h.stub.settles.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_upstream_failure_is_not_charged_and_the_payment_stays_usable() {
    let h = Harness::new(unlimited()).await;
    let payment = h.payment().await;
    *h.upstream.lock() = UpstreamOutcome::Failed;
    let failed = h.send(Some(h.priced("{}")), Some(&payment)).await;
    assert_eq!(outcome(&failed), Some(PaymentOutcome::NotCharged));
    assert_eq!(h.stub.settles.load(Ordering::SeqCst), 0);
    *h.upstream.lock() = UpstreamOutcome::Success;
    let retried = h.send(Some(h.priced("{}")), Some(&payment)).await;
    assert_eq!(retried.status(), StatusCode::OK);
    assert_eq!(h.stub.settles.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn facilitator_refusals_and_outages_map_to_402_and_503() {
    let h = Harness::new(unlimited()).await;
    let payment = h.payment().await;
    *h.stub.verify.lock() = Ok(VerifyResponse {
        is_valid: false,
        invalid_reason: Some("insufficient_funds".into()),
        invalid_message: None,
        payer: None,
    });
    let refused = h.send(Some(h.priced("{}")), Some(&payment)).await;
    assert_eq!(refused.status(), StatusCode::PAYMENT_REQUIRED);
    let required: PaymentRequired =
        decode_header(refused.headers()["payment-required"].as_bytes(), 16 * 1024).unwrap();
    assert_eq!(required.error.as_deref(), Some("insufficient_funds"));
    let record = Exchange::get(&refused).unwrap().payment.clone().unwrap();
    assert_eq!(record.outcome, PaymentOutcome::Refused);
    assert_eq!(record.reason.as_deref(), Some("insufficient_funds"));

    *h.stub.verify.lock() = Err(FacilitatorError::Timeout(1000));
    let down = h.send(Some(h.priced("{}")), Some(&payment)).await;
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(down.headers()["retry-after"], "2");
    assert_eq!(outcome(&down), Some(PaymentOutcome::Unavailable));
    assert_eq!(h.upstream_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_unknown_settlement_withholds_the_answer_and_holds_the_payment() {
    let h = Harness::new(unlimited()).await;
    let payment = h.payment().await;
    *h.stub.settle.lock() = Ok(settled(false, Some(SETTLEMENT_PENDING)));
    let pending = h.send(Some(h.priced("{}")), Some(&payment)).await;
    assert_eq!(pending.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(pending.headers().contains_key("payment-response"));
    assert_eq!(pending.headers()["retry-after"], "5", "one reconciler pass");
    let record = Exchange::get(&pending).unwrap().payment.clone().unwrap();
    assert_eq!(record.outcome, PaymentOutcome::SettlePending);
    assert_eq!(record.transaction.as_deref(), Some("5igSig"));
    let retry = h.send(Some(h.priced("{}")), Some(&payment)).await;
    assert_eq!(retry.status(), StatusCode::CONFLICT);

    // A refused settlement releases the payment: the answer is withheld with a 402.
    let h = Harness::new(unlimited()).await;
    let payment = h.payment().await;
    *h.stub.settle.lock() = Ok(settled(false, Some("invalid_exact_svm_settlement_expired")));
    let refused = h.send(Some(h.priced("{}")), Some(&payment)).await;
    assert_eq!(refused.status(), StatusCode::PAYMENT_REQUIRED);
    assert_eq!(outcome(&refused), Some(PaymentOutcome::SettleFailed));
    *h.stub.settle.lock() = Ok(settled(true, None));
    let retried = h.send(Some(h.priced("{}")), Some(&payment)).await;
    assert_eq!(retried.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_payers_limit_refuses_with_retry_after_before_any_facilitator_call() {
    let mut limits: RateLimitsConfig =
        toml::from_str("calls_per_payer = { burst = 1, period_secs = 60 }").unwrap();
    limits.challenge_per_ip = toml::from_str("burst = 100\nperiod_secs = 1").unwrap();
    let h = Harness::new(limits).await;
    let payment = h.payment().await;
    let first = h.send(Some(h.priced("{}")), Some(&payment)).await;
    assert_eq!(first.status(), StatusCode::OK);
    let mut other = PaymentFixture::new();
    other.amount = h.fx.amount;
    other.blockhash = solana_hash::Hash::new_from_array([0x77; 32]);
    let second_payment = h.payment_by(&other).await;
    let limited = h.send(Some(h.priced("{}")), Some(&second_payment)).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(outcome(&limited), Some(PaymentOutcome::Limited));
    assert_eq!(h.stub.verifies.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_cluster_without_an_accepted_network_is_not_sold_for_another_networks_money() {
    let h = Harness::new(unlimited()).await;
    let payment = h.payment().await;
    let mut mainnet = h.priced("{}");
    mainnet.network = crate::x402::network::SOLANA_MAINNET;
    for header in [None, Some(payment.as_str())] {
        let response = h.send(Some(mainnet.clone()), header).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(!response.headers().contains_key("payment-required"));
    }
    assert_eq!(h.upstream_calls.load(Ordering::SeqCst), 0);
    assert_eq!(h.stub.verifies.load(Ordering::SeqCst), 0);
}
