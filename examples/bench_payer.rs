//! Load generator for the paid-call benchmark (`bench/paid.sh`): every call carries a fresh,
//! really signed x402 `exact` SVM payment, built by this crate's paying client
//! (`client::payer::Payer`: the official client's transfer, a random memo, a blockhash from the
//! cluster reused for 2 s), and must come back 200 with a `PAYMENT-RESPONSE` receipt.
//!
//! It reads the 402 challenge once (the price of the fixed body never changes), then keeps
//! `concurrency` calls in flight, each task paying from its own wallet (wallets are reused
//! round robin when there are fewer wallets than tasks). With `--server-pid` it reads that
//! process's CPU time (utime + stime from /proc) at every window boundary and prints the
//! server's CPU per paid call window by window, so a cost that grows with traffic shows.
//!
//! Usage:
//!   bench_payer --url URL --rpc RPC_URL --wallet a.json [--wallet b.json ...]
//!               [--concurrency 8] [--seconds 10 | --calls N] [--window 30]
//!               [--server-pid PID] [--body JSON]
//!
//! The last line is machine-readable:
//! `summary calls=N ok=N failed=N secs=S rps=R p50_us=P p99_us=P cpu_us_per_call=C`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use solana_keypair::Keypair;
use url::Url;
use x402_gateway::client::challenge::{Challenge, OfferFilter};
use x402_gateway::client::payer::Payer;
use x402_gateway::x402::header::{PAYMENT_RESPONSE, PAYMENT_SIGNATURE};

const DEFAULT_BODY: &str = r#"{"params":["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"]}"#;

struct Args {
    url: Url,
    rpc: Url,
    wallets: Vec<String>,
    concurrency: usize,
    seconds: Option<u64>,
    calls: Option<u64>,
    window: u64,
    server_pid: Option<u32>,
    body: String,
}

fn usage(problem: &str) -> ! {
    eprintln!("bench_payer: {problem}");
    eprintln!(
        "usage: bench_payer --url URL --rpc RPC_URL --wallet FILE [--wallet FILE ...] \
         [--concurrency N] [--seconds S | --calls N] [--window S] [--server-pid PID] [--body JSON]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let (mut url, mut rpc, mut wallets) = (None, None, Vec::new());
    let mut args = Args {
        url: Url::parse("http://127.0.0.1/").expect("static url"),
        rpc: Url::parse("http://127.0.0.1/").expect("static url"),
        wallets: Vec::new(),
        concurrency: 8,
        seconds: None,
        calls: None,
        window: 30,
        server_pid: None,
        body: DEFAULT_BODY.to_string(),
    };
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        let number = |v: String| -> u64 {
            v.parse()
                .unwrap_or_else(|_| usage(&format!("{v:?} is not a number")))
        };
        match flag.as_str() {
            "--url" => url = Some(value()),
            "--rpc" => rpc = Some(value()),
            "--wallet" => wallets.push(value()),
            "--concurrency" => args.concurrency = number(value()).max(1) as usize,
            "--seconds" => args.seconds = Some(number(value())),
            "--calls" => args.calls = Some(number(value())),
            "--window" => args.window = number(value()).max(1),
            "--server-pid" => args.server_pid = Some(number(value()) as u32),
            "--body" => args.body = value(),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let parse = |s: Option<String>, what: &str| {
        let s = s.unwrap_or_else(|| usage(&format!("{what} is required")));
        Url::parse(&s).unwrap_or_else(|e| usage(&format!("{what} {s:?}: {e}")))
    };
    args.url = parse(url, "--url");
    args.rpc = parse(rpc, "--rpc");
    if wallets.is_empty() {
        usage("at least one --wallet is required");
    }
    args.wallets = wallets;
    if args.seconds.is_none() && args.calls.is_none() {
        args.seconds = Some(10);
    }
    args
}

fn read_wallet(path: &str) -> Keypair {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| usage(&format!("cannot read wallet {path}: {e}")));
    let bytes: Vec<u8> = serde_json::from_str(&text)
        .unwrap_or_else(|e| usage(&format!("wallet {path} is not a keypair file: {e}")));
    Keypair::try_from(bytes.as_slice())
        .unwrap_or_else(|e| usage(&format!("wallet {path} is not a keypair: {e}")))
}

/// utime + stime of `pid`, in microseconds.
fn cpu_us(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let (utime, stime): (u64, u64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    // The clock tick is 100 Hz on Linux x86_64 and aarch64 (bench/paid.sh checks getconf CLK_TCK).
    Some((utime + stime) * 10_000)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[derive(Default)]
struct Shared {
    latencies: Mutex<Vec<u32>>,
    ok: AtomicU64,
    failed: AtomicU64,
    started: AtomicU64,
    stop: AtomicBool,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args = parse_args();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client");

    // The challenge, once.
    let unpaid = http
        .post(args.url.clone())
        .header("content-type", "application/json")
        .body(args.body.clone())
        .send()
        .await
        .unwrap_or_else(|e| usage(&format!("cannot reach {}: {e}", args.url)));
    if unpaid.status() != 402 {
        usage(&format!(
            "an unpaid call answered {}, not 402",
            unpaid.status()
        ));
    }
    let headers = unpaid.headers().clone();
    let body = unpaid.bytes().await.unwrap_or_default();
    let challenge = Arc::new(
        Challenge::from_response(&headers, &body)
            .unwrap_or_else(|e| usage(&format!("the 402 is not a usable challenge: {e}"))),
    );
    let offer = Arc::new(
        challenge
            .select(&OfferFilter::default())
            .unwrap_or_else(|e| usage(&format!("no offer to pay: {e}")))
            .clone(),
    );
    eprintln!(
        "bench_payer: paying {} {} atomic of {} on {} per call, {} tasks, {} wallets",
        args.url,
        offer.amount,
        offer.asset,
        offer.network,
        args.concurrency,
        args.wallets.len()
    );

    let payers: Vec<Arc<Payer>> = args
        .wallets
        .iter()
        .map(|w| {
            Arc::new(Payer::new(
                read_wallet(w),
                Some(args.rpc.clone()),
                Duration::from_secs(10),
            ))
        })
        .collect();
    // Warm each payer (mint and blockhash reads) outside the measurement.
    for p in &payers {
        if let Err(e) = p.payment_header(&challenge, &offer).await {
            usage(&format!("cannot build a payment: {e}"));
        }
    }

    let shared = Arc::new(Shared::default());
    let body = bytes::Bytes::from(args.body.clone());
    let limit = args.calls;
    let mut tasks = Vec::new();
    for i in 0..args.concurrency {
        let (http, url, body) = (http.clone(), args.url.clone(), body.clone());
        let (payer, challenge, offer) = (
            payers[i % payers.len()].clone(),
            challenge.clone(),
            offer.clone(),
        );
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            let mut errors_shown = 0;
            while !shared.stop.load(Ordering::Relaxed) {
                if let Some(limit) = limit {
                    if shared.started.fetch_add(1, Ordering::Relaxed) >= limit {
                        break;
                    }
                }
                let header = match payer.payment_header(&challenge, &offer).await {
                    Ok(h) => h,
                    Err(e) => {
                        eprintln!("bench_payer: cannot build a payment: {e}");
                        shared.failed.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let t0 = Instant::now();
                let answer = http
                    .post(url.clone())
                    .header("content-type", "application/json")
                    .header(PAYMENT_SIGNATURE, header)
                    .body(body.clone())
                    .send()
                    .await;
                let outcome = match answer {
                    Ok(r) => {
                        let status = r.status();
                        let receipt = r.headers().contains_key(PAYMENT_RESPONSE);
                        let text = r.bytes().await;
                        if status == 200 && receipt && text.is_ok() {
                            Ok(())
                        } else {
                            Err(format!(
                                "{status} receipt={receipt} {}",
                                text.map(|b| String::from_utf8_lossy(&b[..b.len().min(300)])
                                    .into_owned())
                                    .unwrap_or_default()
                            ))
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                let us = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
                match outcome {
                    Ok(()) => {
                        shared.ok.fetch_add(1, Ordering::Relaxed);
                        shared.latencies.lock().push(us);
                    }
                    Err(e) => {
                        shared.failed.fetch_add(1, Ordering::Relaxed);
                        if errors_shown < 3 {
                            errors_shown += 1;
                            eprintln!("bench_payer: a paid call failed: {e}");
                        }
                    }
                }
            }
        }));
    }

    // Windows: CPU per call of the server, and RSS, at each boundary.
    let start = Instant::now();
    let cpu0 = args.server_pid.and_then(cpu_us);
    let (mut last_cpu, mut last_ok, mut last_at) = (cpu0, 0u64, start);
    let deadline = args.seconds.map(|s| start + Duration::from_secs(s));
    let mut window_index = 0;
    loop {
        let done = tasks.iter().all(|t| t.is_finished());
        let now = Instant::now();
        let past_deadline = deadline.is_some_and(|d| now >= d);
        let window_end = now.duration_since(last_at) >= Duration::from_secs(args.window);
        if window_end || past_deadline || done {
            let ok = shared.ok.load(Ordering::Relaxed);
            let calls = ok - last_ok;
            if let (Some(pid), Some(before)) = (args.server_pid, last_cpu) {
                let cpu = cpu_us(pid);
                if calls > 0 {
                    if let Some(after) = cpu {
                        println!(
                            "window {window_index} t={:.0}s calls={calls} total={ok} rps={:.0} cpu_us_per_call={:.1} rss_kib={}",
                            now.duration_since(start).as_secs_f64(),
                            calls as f64 / now.duration_since(last_at).as_secs_f64(),
                            (after - before) as f64 / calls as f64,
                            rss_kib(pid).unwrap_or(0)
                        );
                    }
                }
                last_cpu = cpu;
            }
            window_index += 1;
            last_ok = ok;
            last_at = now;
        }
        if past_deadline {
            shared.stop.store(true, Ordering::Relaxed);
        }
        if done || past_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_total = match (args.server_pid.and_then(cpu_us), cpu0) {
        (Some(a), Some(b)) => Some(a - b),
        _ => None,
    };
    let mut lat = std::mem::take(&mut *shared.latencies.lock());
    lat.sort_unstable();
    let ok = shared.ok.load(Ordering::Relaxed);
    println!(
        "summary calls={} ok={ok} failed={} secs={secs:.1} rps={:.0} p50_us={} p99_us={} cpu_us_per_call={} rss_kib={}",
        ok + shared.failed.load(Ordering::Relaxed),
        shared.failed.load(Ordering::Relaxed),
        ok as f64 / secs,
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        cpu_total
            .filter(|_| ok > 0)
            .map(|c| format!("{:.1}", c as f64 / ok as f64))
            .unwrap_or_else(|| "-".into()),
        args.server_pid.and_then(rss_kib).unwrap_or(0),
    );
}
