//! CPU time of local x402 `exact` verification per payment (decode + verify_exact), one thread,
//! no RPC. Run: `cargo bench --bench verify` (release profile).

use std::hint::black_box;
use std::time::Instant;
use x402_gateway::svm::testkit::PaymentFixture;
use x402_gateway::svm::{decode_transaction, verify_exact};

fn main() {
    let f = PaymentFixture::new();
    let b64 = f.honest_base64();
    let (req, mint, policy) = (f.requirements(), f.mint_info(), f.policy());
    let run = |n: u32| {
        let start = Instant::now();
        for _ in 0..n {
            let tx = decode_transaction(black_box(&b64)).expect("decode");
            let p = verify_exact(&tx, &req, &mint, &policy).expect("verify");
            black_box(p);
        }
        start.elapsed()
    };
    run(2_000); // warm-up
    let mut best = f64::MAX;
    for _ in 0..5 {
        let n = 10_000;
        let us = run(n).as_secs_f64() * 1e6 / f64::from(n);
        best = best.min(us);
        println!("decode+verify_exact: {us:.1} µs/payment");
    }
    // Breakdown: decode only.
    let n = 20_000;
    let start = Instant::now();
    for _ in 0..n {
        black_box(decode_transaction(black_box(&b64)).expect("decode"));
    }
    let decode_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!("decode only: {decode_us:.1} µs/payment");
    println!("best decode+verify_exact: {best:.1} µs/payment (target <= 100 µs)");
}
