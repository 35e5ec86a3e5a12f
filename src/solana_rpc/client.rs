//! A small Solana JSON-RPC client over reqwest, with ordered failover.
//!
//! Invariants:
//! * redirects are never followed and proxy environment variables are ignored (SSRF hygiene);
//! * an endpoint's URL never reaches an error or a log line (it may carry an API key): errors
//!   drop it, the failover warning names the host;
//! * every request has a connect timeout and a total timeout; a response body is read at most
//!   up to `max_response_bytes` and then abandoned ([`RpcError::TooLarge`]);
//! * a call tries each endpoint at most once, starting at the last one that worked, and moves
//!   on only for [`RpcError::is_retryable`] failures. `sendTransaction` is safe to fail over: the
//!   same signed bytes are re-sent and the cluster executes a transaction at most once.

use super::error::RpcError;
use super::types::{
    decode_b58_32, AccountData, RpcAccount, RpcResponse, SignatureInfo, SignatureStatus,
    SimulationResult, TransactionInfo, WithContext,
};
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use solana_address::Address;
use solana_hash::Hash;
use solana_signature::Signature;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use url::Url;

/// Default cap on a response body (a `getMultipleAccounts` of 100 mints fits easily).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// Maximum keys per `getMultipleAccounts` call (the RPC server's own limit).
pub const MAX_MULTIPLE_ACCOUNTS: usize = 100;
/// Maximum signatures per `getSignatureStatuses` call (the RPC server's own limit).
pub const MAX_SIGNATURE_STATUSES: usize = 256;

const COMMITMENT: &str = "confirmed";

/// JSON-RPC client for a list of equivalent Solana RPC endpoints.
#[derive(Debug)]
pub struct SolanaRpc {
    urls: Vec<Url>,
    http: reqwest::Client,
    preferred: AtomicUsize,
    next_id: AtomicU64,
    max_response_bytes: usize,
    send_max_retries: usize,
}

impl SolanaRpc {
    /// A client for `urls` (tried in order) with a total per-request `timeout`.
    ///
    /// # Panics
    /// If the TLS backend cannot be initialised (see [`SolanaRpc::try_new`]).
    pub fn new(urls: Vec<Url>, timeout: Duration) -> Self {
        Self::try_new(urls, timeout).expect("build the HTTP client")
    }

    /// Like [`SolanaRpc::new`], returning an error instead of panicking.
    pub fn try_new(urls: Vec<Url>, timeout: Duration) -> Result<Self, RpcError> {
        let http = crate::http_client::hardened(timeout.min(Duration::from_secs(5)), timeout)
            .build()
            .map_err(|e| RpcError::Transport(e.to_string()))?;
        Ok(Self {
            urls,
            http,
            preferred: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            send_max_retries: 0,
        })
    }

    /// Set the response size cap.
    pub fn with_max_response_bytes(mut self, max: usize) -> Self {
        self.max_response_bytes = max;
        self
    }

    /// Set `maxRetries` for `sendTransaction` (default 0: we rebroadcast ourselves).
    pub fn with_send_max_retries(mut self, retries: usize) -> Self {
        self.send_max_retries = retries;
        self
    }

    /// The configured endpoints.
    pub fn urls(&self) -> &[Url] {
        &self.urls
    }

    /// Call `method` with `params`, failing over between endpoints, and decode `result`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, RpcError> {
        let n = self.urls.len();
        if n == 0 {
            return Err(RpcError::NoEndpoint);
        }
        let start = self.preferred.load(Ordering::Relaxed) % n;
        let mut last = RpcError::NoEndpoint;
        for k in 0..n {
            let i = (start + k) % n;
            let Some(url) = self.urls.get(i) else {
                continue;
            };
            match self.call_one(url, method, &params).await {
                Ok(v) => {
                    self.preferred.store(i, Ordering::Relaxed);
                    return Ok(v);
                }
                Err(e) if e.is_retryable() => {
                    // Host only: an RPC URL may carry an API key in its path or query.
                    let host = url.host_str().unwrap_or_default();
                    tracing::warn!(endpoint = i, host, method, error = %e, "RPC endpoint failed, trying the next");
                    last = e;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    async fn call_one<T: DeserializeOwned>(
        &self,
        url: &Url,
        method: &str,
        params: &Value,
    ) -> Result<T, RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut resp = self
            .http
            .post(url.clone())
            .json(&body)
            .send()
            .await
            .map_err(map_reqwest)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(RpcError::Http(status.as_u16()));
        }
        if resp
            .content_length()
            .is_some_and(|len| len > self.max_response_bytes as u64)
        {
            return Err(RpcError::TooLarge);
        }
        let mut buf = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(map_reqwest)? {
            if buf.len() + chunk.len() > self.max_response_bytes {
                return Err(RpcError::TooLarge);
            }
            buf.extend_from_slice(&chunk);
        }
        let parsed: RpcResponse<T> =
            serde_json::from_slice(&buf).map_err(|e| RpcError::Decode(e.to_string()))?;
        if parsed.id.as_ref().and_then(Value::as_u64) != Some(id) {
            return Err(RpcError::Decode("response id does not match".into()));
        }
        match (parsed.result, parsed.error) {
            (_, Some(err)) => Err(RpcError::Rpc {
                code: err.code,
                message: err.message,
                data: err.data,
            }),
            (Some(result), None) => Ok(result),
            (None, None) => Err(RpcError::Decode("neither result nor error".into())),
        }
    }

    /// `getLatestBlockhash` (confirmed): the blockhash and its last valid block height.
    pub async fn get_latest_blockhash(&self) -> Result<(Hash, u64), RpcError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Latest {
            blockhash: String,
            last_valid_block_height: u64,
        }
        let r: WithContext<Latest> = self
            .call("getLatestBlockhash", json!([{"commitment": COMMITMENT}]))
            .await?;
        let hash = Hash::new_from_array(decode_b58_32(&r.value.blockhash)?);
        Ok((hash, r.value.last_valid_block_height))
    }

    /// `isBlockhashValid` (confirmed).
    pub async fn is_blockhash_valid(&self, hash: &Hash) -> Result<bool, RpcError> {
        let r: WithContext<bool> = self
            .call(
                "isBlockhashValid",
                json!([hash.to_string(), {"commitment": COMMITMENT}]),
            )
            .await?;
        Ok(r.value)
    }

    /// `getBlockHeight` (confirmed).
    pub async fn get_block_height(&self) -> Result<u64, RpcError> {
        self.call("getBlockHeight", json!([{"commitment": COMMITMENT}]))
            .await
    }

    /// `getAccountInfo` (base64, confirmed); `None` if the account does not exist.
    pub async fn get_account_info(
        &self,
        address: &Address,
    ) -> Result<Option<AccountData>, RpcError> {
        let r: WithContext<Option<RpcAccount>> = self
            .call(
                "getAccountInfo",
                json!([address.to_string(), {"encoding": "base64", "commitment": COMMITMENT}]),
            )
            .await?;
        r.value.map(RpcAccount::into_account_data).transpose()
    }

    /// `getMultipleAccounts` (base64, confirmed), at most [`MAX_MULTIPLE_ACCOUNTS`] keys.
    pub async fn get_multiple_accounts(
        &self,
        addresses: &[Address],
    ) -> Result<Vec<Option<AccountData>>, RpcError> {
        if addresses.len() > MAX_MULTIPLE_ACCOUNTS {
            return Err(RpcError::Decode(
                "too many keys for getMultipleAccounts".into(),
            ));
        }
        let keys: Vec<String> = addresses.iter().map(ToString::to_string).collect();
        let r: WithContext<Vec<Option<RpcAccount>>> = self
            .call(
                "getMultipleAccounts",
                json!([keys, {"encoding": "base64", "commitment": COMMITMENT}]),
            )
            .await?;
        if r.value.len() != addresses.len() {
            return Err(RpcError::Decode("account count mismatch".into()));
        }
        r.value
            .into_iter()
            .map(|a| a.map(RpcAccount::into_account_data).transpose())
            .collect()
    }

    /// `simulateTransaction` of the wire bytes (base64, confirmed).
    pub async fn simulate_transaction(
        &self,
        wire: &[u8],
        sig_verify: bool,
        replace_recent_blockhash: bool,
    ) -> Result<SimulationResult, RpcError> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(wire);
        let r: WithContext<SimulationResult> = self
            .call(
                "simulateTransaction",
                json!([b64, {
                    "encoding": "base64",
                    "commitment": COMMITMENT,
                    "sigVerify": sig_verify,
                    "replaceRecentBlockhash": replace_recent_blockhash,
                }]),
            )
            .await?;
        Ok(r.value)
    }

    /// `sendTransaction` of the wire bytes (base64, `maxRetries` as configured, default 0).
    pub async fn send_transaction(
        &self,
        wire: &[u8],
        skip_preflight: bool,
    ) -> Result<Signature, RpcError> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(wire);
        let sig: String = self
            .call(
                "sendTransaction",
                json!([b64, {
                    "encoding": "base64",
                    "skipPreflight": skip_preflight,
                    "preflightCommitment": COMMITMENT,
                    "maxRetries": self.send_max_retries,
                }]),
            )
            .await?;
        let bytes = bs58::decode(&sig)
            .into_vec()
            .map_err(|e| RpcError::Decode(e.to_string()))?;
        Signature::try_from(bytes).map_err(|_| RpcError::Decode("bad signature".into()))
    }

    /// `getSignatureStatuses` (recent cache only), at most [`MAX_SIGNATURE_STATUSES`].
    pub async fn get_signature_statuses(
        &self,
        signatures: &[Signature],
    ) -> Result<Vec<Option<SignatureStatus>>, RpcError> {
        self.signature_statuses(signatures, false).await
    }

    /// `getSignatureStatuses` searching the node's whole history (older signatures than the
    /// recent status cache holds), at most [`MAX_SIGNATURE_STATUSES`].
    pub async fn get_signature_statuses_in_history(
        &self,
        signatures: &[Signature],
    ) -> Result<Vec<Option<SignatureStatus>>, RpcError> {
        self.signature_statuses(signatures, true).await
    }

    async fn signature_statuses(
        &self,
        signatures: &[Signature],
        history: bool,
    ) -> Result<Vec<Option<SignatureStatus>>, RpcError> {
        if signatures.len() > MAX_SIGNATURE_STATUSES {
            return Err(RpcError::Decode("too many signatures".into()));
        }
        let sigs: Vec<String> = signatures.iter().map(ToString::to_string).collect();
        let r: WithContext<Vec<Option<SignatureStatus>>> = self
            .call(
                "getSignatureStatuses",
                json!([sigs, {"searchTransactionHistory": history}]),
            )
            .await?;
        if r.value.len() != signatures.len() {
            return Err(RpcError::Decode("status count mismatch".into()));
        }
        Ok(r.value)
    }

    /// `getBalance` (confirmed): lamports held by `address` (0 when it does not exist).
    pub async fn get_balance(&self, address: &Address) -> Result<u64, RpcError> {
        let r: WithContext<u64> = self
            .call(
                "getBalance",
                json!([address.to_string(), {"commitment": COMMITMENT}]),
            )
            .await?;
        Ok(r.value)
    }

    /// `getSignaturesForAddress`: one page of `address`'s transactions, newest first.
    pub async fn get_signatures_for_address(
        &self,
        address: &Address,
        page: &SignaturePage<'_>,
    ) -> Result<Vec<SignatureInfo>, RpcError> {
        let mut config = json!({
            "limit": page.limit.clamp(1, MAX_SIGNATURES_PAGE),
            "commitment": page.commitment.as_str(),
        });
        if let Some(before) = page.before {
            config["before"] = json!(before);
        }
        if let Some(until) = page.until {
            config["until"] = json!(until);
        }
        self.call(
            "getSignaturesForAddress",
            json!([address.to_string(), config]),
        )
        .await
    }

    /// `getTransaction` (`json` encoding, v0 messages accepted) at `commitment`; `None` when
    /// the node does not know the signature (or not at that commitment).
    pub async fn get_transaction(
        &self,
        signature: &str,
        commitment: Commitment,
    ) -> Result<Option<TransactionInfo>, RpcError> {
        self.call(
            "getTransaction",
            json!([signature, {
                "encoding": "json",
                "commitment": commitment.as_str(),
                "maxSupportedTransactionVersion": 0,
            }]),
        )
        .await
    }
}

/// Largest `limit` of one `getSignaturesForAddress` page (the RPC server's own limit).
pub const MAX_SIGNATURES_PAGE: usize = 1000;

/// A commitment level a read may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commitment {
    /// Voted on by a supermajority.
    Confirmed,
    /// Rooted: can no longer be rolled back.
    Finalized,
}

impl Commitment {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Finalized => "finalized",
        }
    }
}

/// Which page of `getSignaturesForAddress` to read.
#[derive(Debug, Clone, Copy)]
pub struct SignaturePage<'a> {
    /// Start below this signature (exclusive); `None`: the newest.
    pub before: Option<&'a str>,
    /// Stop above this signature (exclusive); `None`: the oldest the node has.
    pub until: Option<&'a str>,
    /// At most this many (1..=[`MAX_SIGNATURES_PAGE`]).
    pub limit: usize,
    /// Only transactions at this commitment.
    pub commitment: Commitment,
}

fn map_reqwest(e: reqwest::Error) -> RpcError {
    // reqwest's message names the URL, which may carry an API key: never keep it.
    let e = e.without_url();
    if e.is_timeout() {
        RpcError::Timeout
    } else if e.is_decode() {
        RpcError::Decode(e.to_string())
    } else {
        RpcError::Transport(e.to_string())
    }
}
