//! What the shared store adds to a paid request: the claim (`reserve`, with a payer and a
//! provider limit) and the record (`finish` with a kept 1 KiB answer), memory vs Redis.
//! Run: `cargo bench --bench store` (spawns `redis-server` on a free port, or uses `REDIS_URL`).
//! Sequential (one request at a time) for the unloaded p50/p99, then 64 concurrent callers.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use x402_gateway::store::memory::MemoryStore;
use x402_gateway::store::redis::RedisStore;
use x402_gateway::store::{
    new_token, CachedResponse, ClaimIds, ClaimRecord, ClaimState, LimitCheck, PaymentKey,
    Reservation, Store,
};

const TTL: Duration = Duration::from_secs(600);

async fn one(store: &dyn Store, n: u64) -> Duration {
    let mut payment = [0u8; 32];
    payment[..8].copy_from_slice(&n.to_le_bytes());
    payment[8..16].copy_from_slice(&rand_tag().to_le_bytes());
    let ids = ClaimIds {
        payment: PaymentKey(payment),
        aliases: vec![],
    };
    let limits = [
        LimitCheck {
            key: format!("rl:payer:{}", n % 100),
            burst: 1_000_000,
            period: Duration::from_secs(1),
        },
        LimitCheck {
            key: "rl:provider:bench".into(),
            burst: 1_000_000,
            period: Duration::from_secs(1),
        },
    ];
    let start = Instant::now();
    let token = match store
        .reserve(&ids, &new_token(), "fp", &limits, TTL)
        .await
        .expect("reserve")
    {
        Reservation::Reserved { token } => token,
        other => panic!("{other:?}"),
    };
    let record = ClaimRecord {
        fingerprint: "fp".into(),
        state: ClaimState::Settled {
            response: Some(CachedResponse {
                status: 200,
                headers: vec![("payment-response".into(), "x".repeat(300))],
                body: vec![b'7'; 1024],
            }),
            ledger_key: None,
        },
    };
    store
        .finish(&ids, &token, &record, TTL)
        .await
        .expect("finish");
    start.elapsed()
}

fn rand_tag() -> u64 {
    use std::sync::OnceLock;
    static TAG: OnceLock<u64> = OnceLock::new();
    *TAG.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    })
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

async fn bench(name: &str, store: Arc<dyn Store>) {
    for i in 0..500 {
        one(store.as_ref(), 10_000_000 + i).await; // warm-up (scripts cached, connection up)
    }
    let mut times = Vec::new();
    for i in 0..5_000 {
        times.push(one(store.as_ref(), i).await);
    }
    times.sort();
    println!(
        "{name:>6} sequential: p50 {:.1} µs, p99 {:.1} µs per paid request (claim + record)",
        pct(&times, 0.5),
        pct(&times, 0.99)
    );
    let start = Instant::now();
    let tasks: Vec<_> = (0..64u64)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..500 {
                    one(store.as_ref(), 1_000_000 + t * 1000 + i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let rate = 64.0 * 500.0 / start.elapsed().as_secs_f64();
    println!("{name:>6} 64 concurrent: {rate:.0} paid requests/s through the store");
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (url, mut child) = match std::env::var("REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server");
            std::thread::sleep(Duration::from_millis(300));
            (format!("redis://127.0.0.1:{port}"), Some(child))
        }
    };
    runtime.block_on(async {
        bench("memory", Arc::new(MemoryStore::default())).await;
        let redis = RedisStore::new(&url, "bench:", Duration::from_secs(2)).unwrap();
        bench("redis", Arc::new(redis)).await;
    });
    if let Some(child) = child.as_mut() {
        let _ = child.kill();
    }
}
