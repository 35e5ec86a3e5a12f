//! Routing cost: (1) the decision alone per request (pool, candidates priced, strategy order) over
//! a three-provider pool, per strategy; (2) the added p50 of one failover hop: the standard route
//! through the full middleware stack, in process, against an instant loopback upstream, with a
//! pool whose first choice is a dead provider (connection refused on loopback; its circuit kept
//! closed by a huge `failure_threshold`, so every call pays the hop) versus the live provider
//! alone. Calls run one at a time on one thread, the two routers interleaved.
//!
//! Run: `cargo bench --no-default-features --bench routing [-- samples]`.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;
use x402_gateway::config::Config;
use x402_gateway::routing::testkit::DecisionFixture;
use x402_gateway::{build_router, App};

const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"getBalance","params":["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"]}"#;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn main() {
    let samples: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(samples));
}

async fn instant_upstream() -> String {
    let app = Router::new().fallback(axum::routing::post(|| async {
        axum::Json(
            serde_json::json!({"jsonrpc":"2.0","id":1,"result":{"context":{"slot":1},"value":1}}),
        )
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    format!("http://{addr}")
}

fn config(providers: &[(&str, &str, u64)]) -> Config {
    let mut toml = String::from(
        "[payment]\nenabled = false\n[log]\nfilter = \"error\"\n[rate_limits]\nenabled = false\n\
         [routing]\nstrategy = \"cheapest\"\nfailure_threshold = 1000000000\nhealth_check_interval_secs = 0\n",
    );
    for (name, url, rate) in providers {
        toml.push_str(&format!(
            "[[providers]]\nname = \"{name}\"\nkey_placement = \"none\"\n\
             atomic_per_million_units = {rate}\n[providers.clusters]\ndevnet = \"{url}\"\n\
             [providers.rpc]\ngetBalance = 10\n"
        ));
    }
    Config::from_toml(&toml, &HashMap::<String, String>::new()).expect("bench config")
}

async fn call(router: &Router, attempts: &str) -> Duration {
    let request = Request::post("/v1/x402/solana/devnet/rpc")
        .header("content-type", "application/json")
        .body(Body::from(BODY))
        .unwrap();
    let started = Instant::now();
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let _ = body.collect().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(parts.status, 200);
    assert_eq!(parts.headers["x-route-attempts"], attempts);
    elapsed
}

async fn run(samples: usize) {
    // (1) The decision alone.
    let fixture = DecisionFixture::new(3);
    for strategy in ["cheapest", "fastest", "most_reliable", "load_balanced"] {
        for _ in 0..10_000 {
            black_box(fixture.decide(strategy));
        }
        let n = 200_000;
        let started = Instant::now();
        for _ in 0..n {
            black_box(fixture.decide(black_box(strategy)));
        }
        let per = started.elapsed().as_secs_f64() * 1e9 / n as f64;
        println!("decision {strategy:>14}: {per:>7.0} ns per request (3 providers)");
    }

    // (2) One failover hop with a dead first provider.
    let live = instant_upstream().await;
    let dead = format!(
        "http://{}",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    );
    let direct = build_router(
        App::build(config(&[("live", &live, 2_000_000)]))
            .await
            .expect("app"),
    );
    // `dead` is cheaper, so `cheapest` tries it first on every call.
    let hop = build_router(
        App::build(config(&[
            ("dead", &dead, 1_000_000),
            ("live", &live, 2_000_000),
        ]))
        .await
        .expect("app"),
    );
    let warmup = 500;
    let (mut d, mut h) = (Vec::new(), Vec::new());
    for i in 0..samples + warmup {
        let a = call(&direct, "1").await;
        let b = call(&hop, "2").await;
        if i >= warmup {
            d.push(a);
            h.push(b);
        }
    }
    d.sort();
    h.sort();
    let (d50, h50) = (percentile(&d, 0.5), percentile(&h, 0.5));
    let (d99, h99) = (percentile(&d, 0.99), percentile(&h, 0.99));
    println!("standard route, live provider only:   p50 {d50:>7.1} us  p99 {d99:>7.1} us");
    println!("dead first provider, then live (hop): p50 {h50:>7.1} us  p99 {h99:>7.1} us");
    println!(
        "added by one failover hop:            p50 {:>7.1} us",
        h50 - d50
    );
}
