//! Cost of one settlement-dedupe claim (`InMemoryLocks::claim`, the in-process facilitator's
//! "one settlement per message" lock) while many entries are live: 0, 4k (the sweep threshold)
//! and 50k (a sustained ~400 settlements/s within the 120 s lock TTL). Before the amortised
//! sweep, every claim past 4,096 live entries scanned them all.
//!
//! Run: `cargo bench --bench dedupe` (release).

use std::time::{Duration, Instant};

use x402_gateway::facilitator::local::{InMemoryLocks, SettlementLocks};

const TTL: Duration = Duration::from_secs(120);

fn key(i: u32) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..4].copy_from_slice(&i.to_le_bytes());
    key[4] = 0xd5;
    key
}

async fn measure(live: u32, samples: u32) -> (f64, f64) {
    let locks = InMemoryLocks::new();
    for i in 0..live {
        locks.claim(&key(i), TTL).await.unwrap();
    }
    let mut times = Vec::with_capacity(samples as usize);
    for i in 0..samples {
        let k = key(live + i);
        let started = Instant::now();
        std::hint::black_box(locks.claim(&k, TTL).await.unwrap());
        times.push(started.elapsed().as_nanos() as f64);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize] / 1000.0;
    (at(0.5), at(0.99))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("| live entries | claim p50 (µs) | claim p99 (µs) | mean over 20k claims (µs) |");
    println!("| ---: | ---: | ---: | ---: |");
    for live in [0u32, 4_096, 50_000] {
        let samples = 20_000;
        let (p50, p99) = runtime.block_on(measure(live, samples));
        let mean = runtime.block_on(async {
            let locks = InMemoryLocks::new();
            for i in 0..live {
                locks.claim(&key(i), TTL).await.unwrap();
            }
            let t = Instant::now();
            for i in 0..samples {
                locks.claim(&key(live + i), TTL).await.unwrap();
            }
            t.elapsed().as_secs_f64() * 1e6 / f64::from(samples)
        });
        println!("| {live} | {p50:.2} | {p99:.2} | {mean:.2} |");
    }
}
