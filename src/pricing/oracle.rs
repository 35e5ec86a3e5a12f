//! SOL/USD off the request path: a Pyth `PriceUpdateV2` account read through one of our own
//! mainnet providers every `refresh_secs`, fed to [`Settlement::observe`].
//!
//! The price used is the high end of Pyth's interval (price + confidence): a settlement is
//! never priced below what it may cost. A price older than `max_age_secs` (or none at all)
//! hands the price back to the configured fallback, with a warning and the
//! `x402_settlement_sol_usd_source` metric saying so.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::settlement::{Settlement, SolUsdSource};
use crate::config::{Cluster, OracleConfig};
use crate::upstream::{Providers, UpstreamClient};

/// The Pyth receiver program, owner of every `PriceUpdateV2` account.
pub const PYTH_RECEIVER: &str = "rec5EKMGg6MxZYaMdyBfgwp4d5rB9T1VQH5pJv5LtFJ";

/// The Pyth SOL/USD feed id.
pub const SOL_USD_FEED_ID: [u8; 32] = [
    0xef, 0x0d, 0x8b, 0x6f, 0xda, 0x2c, 0xeb, 0xa4, 0x1d, 0xa1, 0x5d, 0x40, 0x95, 0xd1, 0xda, 0x39,
    0x2a, 0x0d, 0x2f, 0x8e, 0xd0, 0xc6, 0xc7, 0xbc, 0x0f, 0x4c, 0xfa, 0xc8, 0xc2, 0x80, 0xb5, 0x6d,
];

/// One price out of a `PriceUpdateV2` account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PythPrice {
    /// The feed.
    pub feed_id: [u8; 32],
    /// Price × 10^-exponent.
    pub price: i64,
    /// Confidence interval, same scale.
    pub conf: u64,
    /// Decimal exponent (e.g. -8).
    pub exponent: i32,
    /// Unix seconds.
    pub publish_time: i64,
}

impl PythPrice {
    /// The high end (price + confidence) in micro-USD, rounded up; `None` for a price that
    /// is not positive or does not fit.
    pub fn high_micros(&self) -> Option<u64> {
        if self.price <= 0 {
            return None;
        }
        let value = self.price as u128 + self.conf as u128;
        let shift = self.exponent.checked_add(6)?;
        let micros = if shift >= 0 {
            value.checked_mul(10u128.checked_pow(shift as u32)?)?
        } else {
            value.div_ceil(10u128.checked_pow(shift.unsigned_abs())?)
        };
        u64::try_from(micros).ok()
    }
}

/// Why an account is not a price we take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OracleError {
    /// Shorter than the layout.
    #[error("account data too short ({0} bytes)")]
    Short(usize),
    /// Not a `PriceUpdateV2` account.
    #[error("not a PriceUpdateV2 account (discriminator)")]
    Discriminator,
    /// Only partly verified against the Wormhole guardians.
    #[error("price update only partially verified")]
    PartiallyVerified,
    /// Another feed than SOL/USD.
    #[error("the account holds another feed than SOL/USD")]
    WrongFeed,
    /// Not owned by the Pyth receiver program.
    #[error("account owner {0} is not the Pyth receiver program")]
    WrongOwner(String),
    /// The RPC answer could not be read or named no account.
    #[error("getAccountInfo: {0}")]
    Rpc(String),
    /// Zero, negative or absurd.
    #[error("unusable price")]
    Unusable,
}

fn discriminator() -> [u8; 8] {
    let hash = Sha256::digest(b"account:PriceUpdateV2");
    let mut out = [0u8; 8];
    out.copy_from_slice(&hash[..8]);
    out
}

/// Decodes a `PriceUpdateV2` account (Anchor, Borsh): discriminator, write authority,
/// verification level (`Partial { num_signatures }` or `Full`), the price message, the slot.
pub fn parse_price_update(data: &[u8]) -> Result<PythPrice, OracleError> {
    let short = || OracleError::Short(data.len());
    if data.get(..8).ok_or_else(short)? != discriminator() {
        return Err(OracleError::Discriminator);
    }
    let mut at = 8 + 32;
    match *data.get(at).ok_or_else(short)? {
        0 => return Err(OracleError::PartiallyVerified),
        1 => at += 1,
        _ => return Err(OracleError::Discriminator),
    }
    let msg = data.get(at..at + 32 + 8 + 8 + 4 + 8).ok_or_else(short)?;
    let mut feed_id = [0u8; 32];
    feed_id.copy_from_slice(&msg[..32]);
    let le8 = |o: usize| <[u8; 8]>::try_from(&msg[o..o + 8]).expect("8 bytes");
    Ok(PythPrice {
        feed_id,
        price: i64::from_le_bytes(le8(32)),
        conf: u64::from_le_bytes(le8(40)),
        exponent: i32::from_le_bytes(<[u8; 4]>::try_from(&msg[48..52]).expect("4 bytes")),
        publish_time: i64::from_le_bytes(le8(52)),
    })
}

/// Encodes a `PriceUpdateV2` account (tests, the demo's stand-in oracle).
pub fn encode_price_update(price: &PythPrice, posted_slot: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(134);
    out.extend_from_slice(&discriminator());
    out.extend_from_slice(&[0u8; 32]);
    out.push(1); // Full
    out.extend_from_slice(&price.feed_id);
    out.extend_from_slice(&price.price.to_le_bytes());
    out.extend_from_slice(&price.conf.to_le_bytes());
    out.extend_from_slice(&price.exponent.to_le_bytes());
    out.extend_from_slice(&price.publish_time.to_le_bytes());
    out.extend_from_slice(&price.publish_time.to_le_bytes()); // prev_publish_time
    out.extend_from_slice(&price.price.to_le_bytes()); // ema_price
    out.extend_from_slice(&price.conf.to_le_bytes()); // ema_conf
    out.extend_from_slice(&posted_slot.to_le_bytes());
    out
}

#[derive(Deserialize)]
struct RpcAnswer {
    result: Option<AccountResult>,
    error: Option<serde_json::Value>,
}
#[derive(Deserialize)]
struct AccountResult {
    value: Option<AccountValue>,
}
#[derive(Deserialize)]
struct AccountValue {
    data: (String, String),
    owner: String,
}

/// Reads the SOL/USD price out of a `getAccountInfo` answer.
pub fn price_from_rpc(body: &[u8]) -> Result<PythPrice, OracleError> {
    let answer: RpcAnswer =
        serde_json::from_slice(body).map_err(|e| OracleError::Rpc(e.to_string()))?;
    if let Some(error) = answer.error {
        return Err(OracleError::Rpc(error.to_string()));
    }
    let value = answer
        .result
        .and_then(|r| r.value)
        .ok_or_else(|| OracleError::Rpc("no such account".into()))?;
    if value.owner != PYTH_RECEIVER {
        return Err(OracleError::WrongOwner(value.owner));
    }
    if value.data.1 != "base64" {
        return Err(OracleError::Rpc(format!("encoding {}", value.data.1)));
    }
    let data = base64::engine::general_purpose::STANDARD
        .decode(&value.data.0)
        .map_err(|e| OracleError::Rpc(e.to_string()))?;
    let price = parse_price_update(&data)?;
    if price.feed_id != SOL_USD_FEED_ID {
        return Err(OracleError::WrongFeed);
    }
    Ok(price)
}

/// The oracle reader: where to read and what to feed.
pub struct Oracle {
    config: OracleConfig,
    providers: Arc<Providers>,
    upstream: UpstreamClient,
    settlement: Arc<Settlement>,
    /// Called after the published price moved (re-renders the discovery documents).
    on_change: Box<dyn Fn() + Send + Sync>,
}

impl Oracle {
    /// A reader of `config`'s account through `providers`' mainnet endpoint.
    pub fn new(
        config: OracleConfig,
        providers: Arc<Providers>,
        upstream: UpstreamClient,
        settlement: Arc<Settlement>,
        on_change: Box<dyn Fn() + Send + Sync>,
    ) -> Self {
        Self {
            config,
            providers,
            upstream,
            settlement,
            on_change,
        }
    }

    /// Reads the account once.
    pub async fn read(&self) -> Result<PythPrice, OracleError> {
        let provider = self
            .providers
            .get(&self.config.provider)
            .ok_or_else(|| OracleError::Rpc(format!("no provider {}", self.config.provider)))?;
        let endpoint = provider.endpoints.get(&Cluster::Mainnet).ok_or_else(|| {
            OracleError::Rpc(format!("provider {} has no mainnet URL", provider.name()))
        })?;
        let body = serde_json::json!({
            "jsonrpc": "2.0", "id": 1, "method": "getAccountInfo",
            "params": [self.config.account, {"encoding": "base64", "commitment": "confirmed"}],
        });
        let (reply, _) = self
            .upstream
            .call(
                endpoint,
                Bytes::from(body.to_string()),
                self.upstream.timeout(),
            )
            .await;
        let reply = reply.map_err(|e| OracleError::Rpc(e.to_string()))?;
        price_from_rpc(&reply.body)
    }

    /// One refresh: read, judge freshness against `now` (Unix seconds), publish.
    pub async fn refresh(&self, now: i64) {
        let (micros, source) = match self.read().await.and_then(|p| {
            p.high_micros()
                .map(|m| (m, p.publish_time))
                .ok_or(OracleError::Unusable)
        }) {
            Ok((micros, published)) if now - published <= self.config.max_age_secs as i64 => {
                metrics::counter!("x402_oracle_reads_total", "outcome" => "fresh").increment(1);
                (
                    micros,
                    SolUsdSource::Oracle {
                        publish_time: published,
                    },
                )
            }
            Ok((_, published)) => {
                metrics::counter!("x402_oracle_reads_total", "outcome" => "stale").increment(1);
                let reason = format!(
                    "oracle price is {}s old (max_age_secs {})",
                    now - published,
                    self.config.max_age_secs
                );
                (
                    self.settlement.fallback_sol_usd(),
                    SolUsdSource::Fallback { reason },
                )
            }
            Err(e) => {
                metrics::counter!("x402_oracle_reads_total", "outcome" => "error").increment(1);
                // A failed read keeps a reading that is still fresh; once it has aged out, the
                // fallback applies.
                if let SolUsdSource::Oracle { publish_time } = self.settlement.view().source {
                    if now - publish_time <= self.config.max_age_secs as i64 {
                        tracing::warn!(error = %e, "SOL/USD oracle read failed; last price still fresh");
                        return;
                    }
                }
                (
                    self.settlement.fallback_sol_usd(),
                    SolUsdSource::Fallback {
                        reason: e.to_string(),
                    },
                )
            }
        };
        if let SolUsdSource::Fallback { reason } = &source {
            tracing::warn!(%reason, "SOL/USD oracle unusable: settlement priced with the configured fallback sol_usd");
        }
        for kind in ["config", "oracle", "fallback"] {
            let on = if kind == source.label() { 1.0 } else { 0.0 };
            metrics::gauge!("x402_settlement_sol_usd_source", "source" => kind).set(on);
        }
        if self.settlement.observe(micros, source) {
            tracing::info!(
                settlement_atomic = self.settlement.atomic(),
                "settlement cost republished"
            );
            (self.on_change)();
        }
    }

    /// Refreshes now and then every `refresh_secs`, for the life of the process.
    pub fn spawn(self) {
        let every = Duration::from_secs(self.config.refresh_secs.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                self.refresh(unix_now()).await;
            }
        });
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sol(price: i64, conf: u64, publish_time: i64) -> PythPrice {
        PythPrice {
            feed_id: SOL_USD_FEED_ID,
            price,
            conf,
            exponent: -8,
            publish_time,
        }
    }

    #[test]
    fn a_price_update_round_trips_and_reads_its_high_end() {
        let p = sol(14_512_345_678, 6_000_000, 1_790_000_000);
        let data = encode_price_update(&p, 42);
        assert_eq!(data.len(), 133);
        assert_eq!(parse_price_update(&data), Ok(p));
        // 145.12345678 + 0.06 = 145.18345678 → 145.183457 (rounded up).
        assert_eq!(p.high_micros(), Some(145_183_457));
        assert_eq!(sol(0, 1, 0).high_micros(), None);
        assert_eq!(sol(-5, 1, 0).high_micros(), None);
        let positive_exponent = PythPrice {
            exponent: 2,
            ..sol(3, 0, 0)
        };
        assert_eq!(positive_exponent.high_micros(), Some(300_000_000));
    }

    #[test]
    fn anything_else_than_a_fully_verified_sol_usd_update_is_refused() {
        let p = sol(15_000_000_000, 0, 1);
        let data = encode_price_update(&p, 1);
        assert_eq!(parse_price_update(&data[..60]), Err(OracleError::Short(60)));
        let mut other = data.clone();
        other[0] ^= 1;
        assert_eq!(parse_price_update(&other), Err(OracleError::Discriminator));
        let mut partial = data.clone();
        partial[40] = 0;
        assert_eq!(
            parse_price_update(&partial),
            Err(OracleError::PartiallyVerified)
        );
        let rpc = |owner: &str, data: &[u8]| {
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "result": {"context": {"slot": 1}, "value": {
                "data": [base64::engine::general_purpose::STANDARD.encode(data), "base64"],
                "owner": owner, "lamports": 1, "executable": false, "rentEpoch": 0}}})
            .to_string()
        };
        assert_eq!(price_from_rpc(rpc(PYTH_RECEIVER, &data).as_bytes()), Ok(p));
        assert!(matches!(
            price_from_rpc(rpc("11111111111111111111111111111111", &data).as_bytes()),
            Err(OracleError::WrongOwner(_))
        ));
        let btc = encode_price_update(
            &PythPrice {
                feed_id: [7; 32],
                ..p
            },
            1,
        );
        assert_eq!(
            price_from_rpc(rpc(PYTH_RECEIVER, &btc).as_bytes()),
            Err(OracleError::WrongFeed)
        );
        let missing = r#"{"jsonrpc":"2.0","id":1,"result":{"context":{"slot":1},"value":null}}"#;
        assert!(matches!(
            price_from_rpc(missing.as_bytes()),
            Err(OracleError::Rpc(_))
        ));
    }
}
