//! The wallet side of one `exact` payment: reads the mint and a recent blockhash from the
//! offer's cluster (`--rpc`, else the network's public RPC), builds the transfer exactly as the
//! official client does ([`crate::svm::client`]) and wraps it in the `PAYMENT-SIGNATURE` value.
//!
//! Mints are cached for the life of the process (a mint's program and decimals never change)
//! and a blockhash is reused for [`BLOCKHASH_REUSE`]: the random memo keeps two payments in the
//! same blockhash distinct, and the blockhash stays valid for about a minute after that.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::RngCore as _;
use serde_json::{json, Map, Value};
use solana_address::Address;
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signer::Signer;
use url::Url;

use super::assets::public_rpc;
use super::challenge::Challenge;
use super::error::ClientError;
use crate::solana_rpc::SolanaRpc;
use crate::svm::client::{encode, memo_for, ExactTransfer};
use crate::svm::{associated_token_address, parse_mint, MintInfo};
use crate::x402::{encode_header, PaymentPayload, PaymentRequirements};

/// How long a fetched blockhash is used for new payments.
pub const BLOCKHASH_REUSE: Duration = Duration::from_secs(2);

/// A wallet that pays `exact` offers.
pub struct Payer {
    wallet: Keypair,
    rpc_override: Option<Url>,
    timeout: Duration,
    clusters: Mutex<HashMap<String, Arc<Cluster>>>,
}

/// One cluster's RPC and what was read from it.
struct Cluster {
    rpc: SolanaRpc,
    mints: Mutex<HashMap<Address, MintInfo>>,
    blockhash: Mutex<Option<(Instant, Hash)>>,
}

/// An offer's fields as Solana values.
struct Terms {
    mint: Address,
    pay_to: Address,
    fee_payer: Address,
    amount: u64,
}

impl std::fmt::Debug for Payer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payer")
            .field("wallet", &self.wallet.pubkey())
            .field("rpc_override", &self.rpc_override)
            .finish_non_exhaustive()
    }
}

impl Payer {
    /// `rpc`: the cluster RPC for every network (else each network's public RPC); `timeout`:
    /// of each RPC call.
    pub fn new(wallet: Keypair, rpc: Option<Url>, timeout: Duration) -> Self {
        Self {
            wallet,
            rpc_override: rpc,
            timeout,
            clusters: Mutex::new(HashMap::new()),
        }
    }

    /// The wallet's address.
    pub fn address(&self) -> Address {
        self.wallet.pubkey()
    }

    /// The wallet (to sign a sign-in).
    pub fn wallet(&self) -> &Keypair {
        &self.wallet
    }

    /// The `PAYMENT-SIGNATURE` value paying `offer` of `challenge`.
    pub async fn payment_header(
        &self,
        challenge: &Challenge,
        offer: &PaymentRequirements,
    ) -> Result<String, ClientError> {
        let terms = terms(offer)?;
        let cluster = self.cluster(&offer.network)?;
        let mint = cluster.mint(&terms.mint).await?;
        let blockhash = cluster.blockhash().await?;
        let transfer = ExactTransfer {
            fee_payer: terms.fee_payer,
            pay_to: terms.pay_to,
            mint,
            amount: terms.amount,
            memo: memo_for(offer.memo())?,
        };
        // The fee-payer signature slot stays zero: the facilitator signs it at settlement.
        let transaction = transfer.sign(&self.wallet, blockhash)?;
        let payment = PaymentPayload {
            x402_version: 2,
            resource: Some(challenge.required.resource.clone()),
            accepted: offer.clone(),
            payload: json!({ "transaction": encode(&transaction) }),
            extensions: payment_identifier(challenge),
        };
        Ok(encode_header(&payment))
    }

    /// The wallet's balance of `offer`'s asset (for explaining a failed transfer), if readable.
    pub async fn token_balance(&self, offer: &PaymentRequirements) -> Option<u64> {
        let mint = Address::from_str(&offer.asset).ok()?;
        let cluster = self.cluster(&offer.network).ok()?;
        let info = cluster.mint(&mint).await.ok()?;
        let account = associated_token_address(&self.address(), &mint, &info.token_program);
        let balance: Value = cluster
            .rpc
            .call("getTokenAccountBalance", json!([account.to_string()]))
            .await
            .ok()?;
        balance["value"]["amount"].as_str()?.parse().ok()
    }

    fn cluster(&self, network: &str) -> Result<Arc<Cluster>, ClientError> {
        let mut clusters = self.clusters.lock();
        if let Some(c) = clusters.get(network) {
            return Ok(c.clone());
        }
        let url = match &self.rpc_override {
            Some(url) => url.clone(),
            None => public_rpc(network)
                .and_then(|u| Url::parse(u).ok())
                .ok_or_else(|| ClientError::NoRpc(network.to_string()))?,
        };
        let rpc =
            SolanaRpc::try_new(vec![url.clone()], self.timeout).map_err(|e| ClientError::Rpc {
                what: "nothing (no HTTP client)",
                rpc: url.to_string(),
                message: e.to_string(),
            })?;
        let cluster = Arc::new(Cluster {
            rpc,
            mints: Mutex::new(HashMap::new()),
            blockhash: Mutex::new(None),
        });
        clusters.insert(network.to_string(), cluster.clone());
        Ok(cluster)
    }
}

impl Cluster {
    fn url(&self) -> String {
        self.rpc
            .urls()
            .first()
            .map(Url::to_string)
            .unwrap_or_default()
    }

    async fn mint(&self, mint: &Address) -> Result<MintInfo, ClientError> {
        if let Some(info) = self.mints.lock().get(mint) {
            return Ok(*info);
        }
        let failed = |message: String| ClientError::Rpc {
            what: "the mint",
            rpc: self.url(),
            message,
        };
        let account = self
            .rpc
            .get_account_info(mint)
            .await
            .map_err(|e| failed(e.to_string()))?
            .ok_or_else(|| failed(format!("mint {mint} does not exist on this cluster")))?;
        let info = parse_mint(*mint, &account.owner, &account.data)
            .map_err(|e| failed(format!("{mint} is not a usable mint: {e}")))?;
        self.mints.lock().insert(*mint, info);
        Ok(info)
    }

    async fn blockhash(&self) -> Result<Hash, ClientError> {
        if let Some((at, hash)) = *self.blockhash.lock() {
            if at.elapsed() < BLOCKHASH_REUSE {
                return Ok(hash);
            }
        }
        let (hash, _) = self
            .rpc
            .get_latest_blockhash()
            .await
            .map_err(|e| ClientError::Rpc {
                what: "a blockhash",
                rpc: self.url(),
                message: e.to_string(),
            })?;
        *self.blockhash.lock() = Some((Instant::now(), hash));
        Ok(hash)
    }
}

fn terms(offer: &PaymentRequirements) -> Result<Terms, ClientError> {
    let address = |s: &str, what: &str| {
        Address::from_str(s)
            .map_err(|_| ClientError::BadOffer(format!("{what} {s:?} is not a Solana address")))
    };
    let fee_payer = offer
        .fee_payer()
        .ok_or_else(|| ClientError::BadOffer("no extra.feePayer".into()))?;
    Ok(Terms {
        mint: address(&offer.asset, "asset")?,
        pay_to: address(&offer.pay_to, "payTo")?,
        fee_payer: address(fee_payer, "extra.feePayer")?,
        amount: amount_of(offer)?,
    })
}

/// The atomic price of `offer`.
pub fn amount_of(offer: &PaymentRequirements) -> Result<u64, ClientError> {
    offer
        .amount
        .parse()
        .map_err(|_| ClientError::BadOffer(format!("amount {:?} is not an integer", offer.amount)))
}

/// The `payment-identifier` extension with a fresh id, when the server offers it: a retry of
/// the same payment then gets the kept answer instead of a 409.
fn payment_identifier(challenge: &Challenge) -> Option<Map<String, Value>> {
    let declared = challenge.extension("payment-identifier")?;
    let mut id = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut id);
    let mut info = declared
        .get("info")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    info.insert("id".into(), hex::encode(id).into());
    let mut extensions = Map::new();
    extensions.insert("payment-identifier".into(), json!({ "info": info }));
    Some(extensions)
}
