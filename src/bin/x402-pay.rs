//! `x402-pay`: a paying client for any x402 `exact` server on Solana, and a local proxy that
//! lets unmodified Solana tools use a paid JSON-RPC gateway. The logic lives in
//! `x402_gateway::client`; this file is the command line and the printing.
//!
//! Exit status: 0 when the call (or command) succeeded, 1 when it failed (a non-2xx answer, a
//! payment refused or not made), 2 for a bad command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use http::Method;
use serde_json::Value;
use url::Url;
use x402_gateway::client::assets;
use x402_gateway::client::budget::Budget;
use x402_gateway::client::call::{self, Answer, Http, Paid, Paying, Request};
use x402_gateway::client::challenge::{Challenge, OfferFilter};
use x402_gateway::client::credits::{base_of, Bought, Credits, Outcome, Spender};
use x402_gateway::client::payer::Payer;
use x402_gateway::client::proxy::{self, Proxy};
use x402_gateway::client::quote::{quote_json, quote_text};
use x402_gateway::client::session::TokenFile;
use x402_gateway::client::wallet::{load_wallet, KEYPAIR_ENV};

/// Pay x402 `exact` Solana servers: quote, pay, proxy, credits.
#[derive(Debug, Parser)]
#[command(
    name = "x402-pay",
    version,
    about = "Pay x402 `exact` Solana servers: quote, pay, a paying JSON-RPC proxy, prepaid credits"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
struct Global {
    /// The paying wallet: a solana-keygen JSON file or a file holding the base58 key. Without
    /// it, the key itself is read from the X402_KEYPAIR variable (JSON array or base58).
    #[arg(long, global = true)]
    keypair: Option<PathBuf>,
    /// A Solana RPC of the cluster the server is paid on, to read the mint and a recent
    /// blockhash (never the paid gateway). Default: the network's public RPC.
    #[arg(long, env = "X402_RPC", global = true)]
    rpc: Option<Url>,
    /// Seconds any outbound call may take.
    #[arg(long, default_value_t = 60, global = true)]
    timeout: u64,
    /// Only pay offers on this CAIP-2 network (e.g. solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp).
    #[arg(long, global = true)]
    network: Option<String>,
    /// Only pay offers in this mint.
    #[arg(long, global = true)]
    asset: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what a call would cost (every offer and extension, decoded) without paying.
    Quote {
        #[command(flatten)]
        call: CallArgs,
        /// Print the decoded challenge as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Pay one call with `exact` and print the answer and the decoded receipt.
    Pay {
        #[command(flatten)]
        call: CallArgs,
        /// Refuse to pay more than this (atomic units of the asset).
        #[arg(long)]
        max_amount: Option<u64>,
    },
    /// Serve an unpaid local JSON-RPC endpoint that pays the gateway behind the scenes.
    Proxy {
        /// Where to listen (loopback), e.g. 127.0.0.1:8899.
        #[arg(long, default_value = "127.0.0.1:8898")]
        listen: SocketAddr,
        /// The gateway's JSON-RPC URL, e.g. https://gw.example/v1/x402/solana/mainnet/rpc.
        #[arg(long)]
        upstream: Url,
        /// Stop paying once this much (atomic units) is spent in all, top-ups included.
        #[arg(long)]
        max_spend: Option<u64>,
        /// Refuse any single payment above this (atomic units).
        #[arg(long)]
        per_call_max: Option<u64>,
        #[command(flatten)]
        credits: CreditArgs,
        /// Never use credits, even with a stored session: pay every call with `exact`.
        #[arg(long)]
        no_credits: bool,
        /// Sign in for a credits session at the first call when none is stored.
        #[arg(long)]
        sign_in: bool,
    },
    /// Buy a pack of credits (an `exact` payment to {base}/v1/credits/topup).
    Topup {
        /// The gateway's base URL, e.g. https://gw.example.
        url: Url,
        /// The pack's name.
        #[arg(long)]
        pack: String,
        /// Refuse to pay more than this (atomic units).
        #[arg(long)]
        max_amount: Option<u64>,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Show the wallet's credit balance (signing in when no session is stored).
    Balance {
        /// The gateway's base URL.
        url: Url,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Make one call paid with credits (signing in when needed, topping up when allowed).
    Call {
        #[command(flatten)]
        call: CallArgs,
        #[command(flatten)]
        credits: CreditArgs,
        /// Refuse a top-up pack priced above this (atomic units).
        #[arg(long)]
        max_amount: Option<u64>,
    },
}

/// One call.
#[derive(Debug, Args)]
struct CallArgs {
    /// The URL.
    url: Url,
    /// The JSON body (`@FILE` reads it from a file). Default: empty.
    #[arg(long, default_value = "")]
    body: String,
    /// POST (default) or GET.
    #[arg(long, default_value = "POST", value_parser = parse_method)]
    method: Method,
}

/// Where the session token is kept.
#[derive(Debug, Args)]
struct SessionArgs {
    /// The session token file (default: ~/.config/x402-pay/<host>_<port>.json).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// The credits API's base URL when it is not the URL's origin.
    #[arg(long)]
    credits_base: Option<Url>,
}

/// Credits options of `call` and `proxy`.
#[derive(Debug, Args)]
struct CreditArgs {
    #[command(flatten)]
    session: SessionArgs,
    /// Buy this pack when the balance runs out.
    #[arg(long)]
    auto_topup: Option<String>,
    /// At most this many automatic top-ups.
    #[arg(long, default_value_t = 1, requires = "auto_topup")]
    max_topups: u32,
}

fn parse_method(s: &str) -> Result<Method, String> {
    match s.to_ascii_uppercase().as_str() {
        "POST" => Ok(Method::POST),
        "GET" => Ok(Method::GET),
        _ => Err(format!("{s}: POST or GET")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("x402-pay: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether the command succeeded.
async fn run(cli: Cli) -> anyhow::Result<bool> {
    let g = &cli.global;
    let http = Http::new(Duration::from_secs(g.timeout.max(1)))?;
    let filter = OfferFilter {
        network: g.network.clone(),
        asset: g.asset.clone(),
    };
    match cli.command {
        Command::Quote { call, json } => quote(&http, &call, json).await,
        Command::Pay { call, max_amount } => {
            let payer = payer(g)?;
            let budget = Budget::new(max_amount, None);
            let paying = Paying {
                payer: &payer,
                budget: &budget,
                filter: &filter,
            };
            let paid = call::call(&http, paying, &request(&call)?).await?;
            print_paid(&paid);
            Ok(paid.answer.status.is_success())
        }
        Command::Proxy {
            listen,
            upstream,
            max_spend,
            per_call_max,
            credits,
            no_credits,
            sign_in,
        } => {
            let payer = Arc::new(payer(g)?);
            let spender = if no_credits {
                None
            } else {
                let api = credits_api(&http, &payer, &upstream, &credits.session)?;
                Some(Spender::new(
                    api,
                    sign_in,
                    true,
                    credits.auto_topup.clone(),
                    credits.max_topups,
                ))
            };
            let (listener, addr) = proxy::bind(listen)
                .await
                .with_context(|| format!("listening on {listen}"))?;
            println!(
                "listening on http://{addr} -> {upstream} (wallet {}, max spend {}, per call max {}, credits {})",
                payer.address(),
                max_spend.map_or("none".into(), |m| m.to_string()),
                per_call_max.map_or("none".into(), |m| m.to_string()),
                match (&spender, sign_in) {
                    (None, _) => "off",
                    (Some(_), true) => "on (signs in)",
                    (Some(_), false) => "when a session is stored",
                }
            );
            let proxy = Proxy {
                upstream,
                http,
                payer,
                budget: Budget::new(per_call_max, max_spend),
                filter,
                spender,
                log: Arc::new(|line| println!("{line}")),
            };
            proxy::serve(proxy, listener, x402_gateway::shutdown_signal()).await?;
            Ok(true)
        }
        Command::Topup {
            url,
            pack,
            max_amount,
            session,
        } => {
            let payer = Arc::new(payer(g)?);
            let budget = Budget::new(max_amount, None);
            let paying = Paying {
                payer: &payer,
                budget: &budget,
                filter: &filter,
            };
            let api = credits_api(&http, &payer, &url, &session)?;
            let (topup, paid) = api.topup(paying, &pack).await?;
            if let Some(offer) = &paid.offer {
                println!("paid: {}", describe_offer(offer));
            }
            println!("wallet: {}", topup.wallet);
            println!("pack: {}", topup.pack);
            println!("credits added: {}", topup.credits_added);
            println!("balance: {}", topup.balance);
            print_receipt(&paid);
            Ok(true)
        }
        Command::Balance { url, session } => {
            let payer = Arc::new(payer(g)?);
            let api = credits_api(&http, &payer, &url, &session)?;
            let balance = api.balance().await?;
            println!("wallet: {}", balance.wallet);
            println!("balance: {}", balance.balance);
            Ok(true)
        }
        Command::Call {
            call,
            credits,
            max_amount,
        } => {
            let payer = Arc::new(payer(g)?);
            let budget = Budget::new(max_amount, None);
            let paying = Paying {
                payer: &payer,
                budget: &budget,
                filter: &filter,
            };
            let api = credits_api(&http, &payer, &call.url, &credits.session)?;
            let spender = Spender::new(
                api,
                true,
                false,
                credits.auto_topup.clone(),
                credits.max_topups,
            );
            let on_topup = |b: &Bought| {
                println!(
                    "topped up: {} +{} credits (balance {}), paid {} atomic units",
                    b.topup.pack,
                    b.topup.credits_added,
                    b.topup.balance,
                    b.paid.offer.as_ref().map_or("0", |o| o.amount.as_str())
                )
            };
            match spender
                .serve(&http, paying, &request(&call)?, &on_topup)
                .await?
            {
                Outcome::Credits { answer, remaining } => {
                    println!("status: {}", answer.status);
                    println!(
                        "credits remaining: {}",
                        remaining.map_or("?".into(), |r| r.to_string())
                    );
                    println!("answer: {}", answer_text(&answer));
                    Ok(answer.status.is_success())
                }
                // Not reached with per-call payments off, except for a free answer.
                Outcome::Exact(paid) => {
                    print_paid(&paid);
                    Ok(paid.answer.status.is_success())
                }
            }
        }
    }
}

async fn quote(http: &Http, args: &CallArgs, json: bool) -> anyhow::Result<bool> {
    let answer = http.send(&request(args)?, &[], "calling").await?;
    if answer.status != http::StatusCode::PAYMENT_REQUIRED {
        println!("no payment asked: {}", answer.status);
        println!("answer: {}", answer_text(&answer));
        return Ok(answer.status.is_success());
    }
    let challenge = Challenge::from_response(&answer.headers, &answer.body)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&quote_json(&challenge))?);
    } else {
        print!("{}", quote_text(&challenge));
    }
    Ok(true)
}

fn payer(g: &Global) -> anyhow::Result<Payer> {
    let env = std::env::var(KEYPAIR_ENV).ok();
    let wallet = load_wallet(g.keypair.as_deref(), env.as_deref())?;
    Ok(Payer::new(
        wallet,
        g.rpc.clone(),
        Duration::from_secs(g.timeout.max(1)),
    ))
}

fn credits_api(
    http: &Http,
    payer: &Arc<Payer>,
    url: &Url,
    args: &SessionArgs,
) -> anyhow::Result<Credits> {
    let base = args.credits_base.clone().unwrap_or_else(|| base_of(url));
    let tokens = TokenFile::new(args.token_file.clone(), &base)?;
    Ok(Credits::new(http.clone(), payer.clone(), base, tokens))
}

fn request(args: &CallArgs) -> anyhow::Result<Request> {
    let body: Bytes = match args.body.strip_prefix('@') {
        Some(path) => std::fs::read(path)
            .with_context(|| format!("reading the body from {path}"))?
            .into(),
        None => args.body.clone().into(),
    };
    if !body.is_empty() && serde_json::from_slice::<Value>(&body).is_err() {
        bail!("--body is not JSON");
    }
    let mut request = match args.method {
        Method::GET => Request::get(args.url.clone()),
        _ => Request::post(args.url.clone(), Bytes::new()),
    };
    if args.method == Method::GET && !body.is_empty() {
        return Err(anyhow!("--body with --method GET: a GET has no body"));
    }
    request.body = body;
    Ok(request)
}

fn describe_offer(offer: &x402_gateway::x402::PaymentRequirements) -> String {
    let dollars = offer
        .amount
        .parse()
        .ok()
        .and_then(|a| assets::usd(&offer.network, &offer.asset, a))
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    format!(
        "{} atomic units{dollars} of {} to {} on {}",
        offer.amount, offer.asset, offer.pay_to, offer.network
    )
}

fn answer_text(answer: &Answer) -> String {
    match answer.json() {
        Some(v) => v.to_string(),
        None => String::from_utf8_lossy(&answer.body).into_owned(),
    }
}

/// `paid:`, `status:`, `answer:` (one line), then `receipt:` (pretty JSON, last).
fn print_paid(paid: &Paid) {
    match &paid.offer {
        Some(offer) => println!("paid: {}", describe_offer(offer)),
        None => println!("paid: nothing (no payment asked)"),
    }
    println!("status: {}", paid.answer.status);
    println!("answer: {}", answer_text(&paid.answer));
    print_receipt(paid);
}

fn print_receipt(paid: &Paid) {
    match &paid.receipt {
        Some(r) => println!(
            "receipt: {}",
            serde_json::to_string_pretty(r).unwrap_or_default()
        ),
        None => println!("receipt: none"),
    }
}
