//! A paying x402 client for the gateway, for the offline demo and by-hand checks.
//!
//! ```sh
//! cargo run --example pay -- http://127.0.0.1:8080/v1/x402/solana/devnet/localnet/rpc/getSlot
//! cargo run --example pay -- <url> --keypair .localnet/client.json --rpc http://127.0.0.1:8899 \
//!     --body '{"params":["<address>"]}'
//! ```
//!
//! It asks for the challenge (`PAYMENT-REQUIRED` of the 402), picks the `exact` Solana offer,
//! reads the mint and a recent blockhash from the cluster's RPC (`--rpc`, the embedded
//! cluster by default: the gateway's own RPC routes are paid), builds the transfer exactly as the
//! official TypeScript client does (`x402_gateway::svm::client`: SetComputeUnitLimit 20 000,
//! SetComputeUnitPrice 1, TransferChecked from the wallet's token account to payTo's, Memo; v0
//! message whose fee payer is the facilitator's `extra.feePayer`, signed by the wallet only), sends it as
//! `PAYMENT-SIGNATURE`, and prints the answer and the decoded `PAYMENT-RESPONSE` receipt.
//! Exit status: 0 when the gateway answered 2xx, 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{anyhow, Context};
use clap::Parser;
use serde_json::Value;
use solana_address::Address;
use solana_keypair::Keypair;
use x402_gateway::solana_rpc::SolanaRpc;
use x402_gateway::svm::client::{encode, memo_for, ExactTransfer};
use x402_gateway::svm::{parse_mint, MintInfo};
use x402_gateway::x402::header::{PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE};
use x402_gateway::x402::{
    decode_header, encode_header, PaymentPayload, PaymentRequired, PaymentRequirements,
    SettleResponse,
};

/// Every call to the gateway or the cluster gives up after this.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Challenge and receipt headers are small; refuse anything absurd.
const MAX_HEADER: usize = 16 * 1024;

/// Pay one gateway call with x402 (exact, Solana).
#[derive(Debug, Parser)]
struct Args {
    /// The paid route, e.g. http://127.0.0.1:8080/v1/x402/solana/devnet/localnet/rpc/getSlot.
    url: String,
    /// Paying wallet (solana-keygen JSON file) holding the tokens; the fee payer pays the SOL fee.
    #[arg(long, default_value = ".localnet/client.json")]
    keypair: PathBuf,
    /// Solana RPC used to read the mint and a recent blockhash (not through the paid gateway).
    #[arg(long, default_value = "http://127.0.0.1:8899")]
    rpc: url::Url,
    /// JSON request body, e.g. '{"params":["<address>"]}' (empty by default).
    #[arg(long, default_value = "")]
    body: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("pay: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Returns whether the paid call succeeded.
async fn run(args: Args) -> anyhow::Result<bool> {
    let wallet = read_keypair(&args.keypair)
        .with_context(|| format!("reading the wallet {}", args.keypair.display()))?;
    let http = reqwest::Client::builder().timeout(TIMEOUT).build()?;
    let post = || {
        http.post(&args.url)
            .header("content-type", "application/json")
            .body(args.body.clone())
    };

    // 1. The challenge.
    let first = post().send().await.context("asking for the challenge")?;
    if first.status() != reqwest::StatusCode::PAYMENT_REQUIRED {
        let status = first.status();
        println!("no payment asked ({status}):");
        println!("{}", first.text().await.unwrap_or_default());
        return Ok(status.is_success());
    }
    let header = first
        .headers()
        .get(PAYMENT_REQUIRED)
        .ok_or_else(|| anyhow!("402 without a PAYMENT-REQUIRED header"))?;
    let challenge: PaymentRequired =
        decode_header(header.as_bytes(), MAX_HEADER).context("decoding PAYMENT-REQUIRED")?;
    let offer = challenge
        .accepts
        .iter()
        .find(|r| r.scheme == "exact" && r.network.starts_with("solana:"))
        .ok_or_else(|| anyhow!("no exact Solana offer in {:?}", challenge.accepts))?;
    println!(
        "challenge: {} atomic units of {} to {} on {}",
        offer.amount, offer.asset, offer.pay_to, offer.network
    );

    // 2. The payment transaction, signed by the wallet only.
    let rpc = SolanaRpc::try_new(vec![args.rpc.clone()], TIMEOUT)?;
    let transaction = build_payment(&rpc, &wallet, offer).await?;
    let payment = PaymentPayload {
        x402_version: 2,
        resource: Some(challenge.resource.clone()),
        accepted: offer.clone(),
        payload: serde_json::json!({ "transaction": transaction }),
        extensions: None,
    };

    // 3. Pay.
    let answer = post()
        .header(PAYMENT_SIGNATURE, encode_header(&payment))
        .send()
        .await
        .context("sending the payment")?;
    let status = answer.status();
    let receipt = answer
        .headers()
        .get(PAYMENT_RESPONSE)
        .map(|v| decode_header::<SettleResponse>(v.as_bytes(), MAX_HEADER))
        .transpose()
        .context("decoding PAYMENT-RESPONSE")?;
    let body = answer.text().await.context("reading the answer")?;
    println!("status: {status}");
    println!(
        "answer: {}",
        serde_json::from_str::<Value>(&body)
            .map(|v| v.to_string())
            .unwrap_or(body)
    );
    match receipt {
        Some(r) => println!("receipt: {}", serde_json::to_string_pretty(&r)?),
        None => println!("receipt: none"),
    }
    Ok(status.is_success())
}

/// A solana-keygen file: a JSON array of the 64 secret + public key bytes.
fn read_keypair(path: &std::path::Path) -> anyhow::Result<Keypair> {
    let bytes: Vec<u8> = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    Keypair::try_from(bytes.as_slice()).map_err(|e| anyhow!("not a keypair: {e}"))
}

/// SetComputeUnitLimit, SetComputeUnitPrice, TransferChecked, Memo; v0; base64 wire bytes.
async fn build_payment(
    rpc: &SolanaRpc,
    wallet: &Keypair,
    offer: &PaymentRequirements,
) -> anyhow::Result<String> {
    let address = |s: &str, what: &str| {
        Address::from_str(s).map_err(|_| anyhow!("{what} {s:?} is not a Solana address"))
    };
    let mint = address(&offer.asset, "asset")?;
    let pay_to = address(&offer.pay_to, "payTo")?;
    let fee_payer = address(
        offer
            .fee_payer()
            .ok_or_else(|| anyhow!("the offer has no extra.feePayer"))?,
        "extra.feePayer",
    )?;
    let amount: u64 = offer
        .amount
        .parse()
        .with_context(|| format!("amount {:?}", offer.amount))?;

    let account = rpc
        .get_account_info(&mint)
        .await
        .context("reading the mint")?
        .ok_or_else(|| anyhow!("mint {mint} does not exist on {:?}", rpc.urls()))?;
    let mint_info: MintInfo =
        parse_mint(mint, &account.owner, &account.data).context("parsing the mint")?;
    let (blockhash, _) = rpc
        .get_latest_blockhash()
        .await
        .context("getLatestBlockhash")?;

    let payment = ExactTransfer {
        fee_payer,
        pay_to,
        mint: mint_info,
        amount,
        memo: memo_for(offer.memo())?,
    };
    // The fee-payer signature slot stays zero: the facilitator signs it at settlement.
    let transaction = payment
        .sign(wallet, blockhash)
        .context("building the payment")?;
    Ok(encode(&transaction))
}
