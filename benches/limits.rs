//! Cost of one rate-limit decision (what a 402 challenge or a free call pays before anything
//! else): `RateLimits::decide` on the in-memory store and on a real Redis (one Lua script round
//! trip on loopback), sequential, one client. Also the in-process usage counter increment.
//!
//! Run: `cargo bench --bench limits` (release). Redis: `REDIS_URL`, else a `redis-server` is
//! spawned on a free loopback port and killed at the end.

use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use x402_gateway::config::{RateLimitsConfig, UsageConfig};
use x402_gateway::ratelimit::{ClientIp, RateLimits};
use x402_gateway::store::memory::MemoryStore;
use x402_gateway::store::redis::RedisStore;
use x402_gateway::store::Store;
use x402_gateway::usage::{Day, Usage, UsageKey};

struct Spawned(Option<Child>);

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn redis_url() -> (String, Spawned) {
    if let Ok(url) = std::env::var("REDIS_URL") {
        return (url, Spawned(None));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (or REDIS_URL) is needed");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (format!("redis://127.0.0.1:{port}"), Spawned(Some(child)))
}

/// p50 and p99 of `n` sequential decisions, µs. Each decision is for its own client address,
/// so every one is allowed (the work is the same either way).
async fn measure(limits: &RateLimits, store: &dyn Store, n: u32) -> (f64, f64) {
    let mut samples = Vec::with_capacity(n as usize);
    for i in 0..n {
        let ip = ClientIp::Addr(std::net::IpAddr::from((i + 1).to_be_bytes()));
        let checks = [limits.challenge(&ip).expect("on")];
        let start = Instant::now();
        let verdict = limits.decide(store, &checks).await;
        samples.push(start.elapsed().as_secs_f64() * 1e6);
        assert!(black_box(verdict).is_allowed());
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.99))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let limits = RateLimits::from_config(&RateLimitsConfig::default());
    let (url, _spawned) = redis_url();
    runtime.block_on(async {
        let memory = MemoryStore::default();
        let prefix = format!("bench-{}:", std::process::id());
        let redis = RedisStore::new(&url, &prefix, Duration::from_millis(250)).unwrap();
        redis.ping().await.expect("redis answers");
        measure(&limits, &memory, 20_000).await; // warm-up
        measure(&limits, &redis, 2_000).await;
        for _ in 0..3 {
            let (m50, m99) = measure(&limits, &memory, 50_000).await;
            let (r50, r99) = measure(&limits, &redis, 20_000).await;
            println!(
                "decide: memory p50 {m50:.2} µs p99 {m99:.2} µs | redis p50 {r50:.1} µs p99 {r99:.1} µs"
            );
        }
    });
    let usage = Usage::new(&UsageConfig::default());
    let key = UsageKey {
        route: "/v1/x402/solana/{cluster}/rpc",
        cluster: "mainnet",
        method: "getBalance",
        provider: "alchemy",
        outcome: "paid",
    };
    let n = 200_000u32;
    let start = Instant::now();
    for _ in 0..n {
        usage.record(Day::today(), black_box(&key), 1000);
    }
    let ns = start.elapsed().as_secs_f64() * 1e9 / f64::from(n);
    println!("usage record (day + two counters): {ns:.0} ns");
}
