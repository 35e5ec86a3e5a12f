//! The shared store on Redis: several gateway instances side by side. Each transition is one
//! Lua script (atomic, one round trip once the script is cached); every key is written with a
//! TTL; every call has a timeout.
//!
//! Connection: one multiplexed `redis::aio::ConnectionManager`, created on first use and
//! reconnecting by itself, shared by every request (commands from concurrent requests are
//! pipelined on it). Not `deadpool-redis`: its pool checks every checked-out connection with an
//! `UNWATCH` + `PING` round trip, which would double the Redis round trips of a paid request
//! (two: claim, record), and a multiplexed connection needs no exclusive checkout anyway.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, RedisError, Value as RedisValue};
use tokio::sync::OnceCell;

use super::{
    ClaimIds, ClaimRecord, ClaimState, LimitCheck, LimitVerdict, PaymentKey, Reservation, Store,
    StoreError, StoreResult, UsageDelta,
};

/// How long the pending index itself lives after its last write (each pending claim has its
/// own TTL; this only bounds an index nobody writes any more).
const PENDING_INDEX_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

/// A Lua script and its SHA-1, sent by `EVALSHA` (and by `EVAL` once if Redis lost it).
struct Lua {
    body: String,
    sha: String,
}

impl Lua {
    fn new(body: String) -> Self {
        use sha1_smol::Sha1;
        let sha = Sha1::from(body.as_bytes()).digest().to_string();
        Self { body, sha }
    }
}

/// GCRA over `nl` limit keys starting at `KEYS[first]`, parameters at `ARGV[arg]`
/// (interval µs, tolerance µs per limit). Mirrors `store::gcra`. Uses the Redis clock, so
/// instances with skewed clocks still share one limit. Returns `nil` and sets the new TATs when
/// every limit allows, else `{2, index, retry_after_us}`; `allowed` gets `{index, remaining,
/// reset_us}` of the tightest limit.
const GCRA_FN: &str = r#"
local function gcra(first, nl, arg)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local news = {}
  local best_i, best_rem, best_reset = 0, -1, 0
  for j = 1, nl do
    local key = KEYS[first + j - 1]
    local interval = tonumber(ARGV[arg + 2 * (j - 1)])
    local tol = tonumber(ARGV[arg + 2 * (j - 1) + 1])
    local tat = tonumber(redis.call('GET', key) or now)
    if tat < now then tat = now end
    local new = tat + interval
    if new > now + tol then
      return {2, j - 1, new - now - tol}, nil
    end
    news[j] = new
    local used = new - now
    local rem = math.floor((tol - used) / interval)
    if best_rem < 0 or rem < best_rem then
      best_i, best_rem, best_reset = j - 1, rem, used
    end
  end
  for j = 1, nl do
    local ttl = math.max(1, math.ceil((news[j] - now) / 1000))
    redis.call('SET', KEYS[first + j - 1], string.format('%.0f', news[j]), 'PX', ttl)
  end
  return nil, {best_i, best_rem, best_reset}
end
"#;

/// The record behind a claim key or one of its aliases.
const RECORD_FN: &str = r#"
local function record_of(key, prefix, is_alias)
  local v = redis.call('GET', key)
  if not v then return nil end
  if is_alias then return redis.call('GET', prefix .. 'pay:' .. v) end
  return v
end
"#;

/// KEYS: claim, aliases (ARGV[1] of them), limits (ARGV[2] of them).
/// ARGV: n_aliases, n_limits, prefix, record, ttl_ms, payment hex, then limit parameters.
/// → {1, record} existing | {2, index, retry_us} limited | {0, index, remaining, reset_us}.
const RESERVE_BODY: &str = r#"
local na, nl, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local existing = record_of(KEYS[1], prefix, false)
if existing then return {1, existing} end
for i = 2, 1 + na do
  existing = record_of(KEYS[i], prefix, true)
  if existing then return {1, existing} end
end
local refused, allowed = gcra(2 + na, nl, 7)
if refused then return refused end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
for i = 2, 1 + na do redis.call('SET', KEYS[i], ARGV[6], 'PX', ARGV[5]) end
return {0, allowed[1], allowed[2], allowed[3]}
"#;

/// KEYS: limits. ARGV: limit parameters. → {2, index, retry_us} | {0, index, remaining, reset_us}.
const LIMITS_BODY: &str = r#"
local refused, allowed = gcra(1, #KEYS, 1)
if refused then return refused end
return {0, allowed[1], allowed[2], allowed[3]}
"#;

/// KEYS: claim, aliases. ARGV: token. Deletes only a claim still in flight under `token`.
const RELEASE_BODY: &str = r#"
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, rec = pcall(cjson.decode, v)
if not ok or rec.state ~= 'in_flight' or rec.token ~= ARGV[1] then return 0 end
redis.call('DEL', unpack(KEYS))
return 1
"#;

/// KEYS: claim, pending index, aliases. ARGV: record, ttl_ms, payment hex, pending (0/1),
/// token, index ttl. → 1 when the caller still held the claim.
const FINISH_BODY: &str = r#"
local held = 0
local v = redis.call('GET', KEYS[1])
if v then
  local ok, rec = pcall(cjson.decode, v)
  if ok and rec.state == 'in_flight' and rec.token == ARGV[5] then held = 1 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
for i = 3, #KEYS do redis.call('SET', KEYS[i], ARGV[3], 'PX', ARGV[2]) end
if ARGV[4] == '1' then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[2], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
else
  redis.call('ZREM', KEYS[2], ARGV[3])
end
return held
"#;

/// KEYS: pending index. ARGV: lease_ms, max, prefix. Leases and returns due payments; drops
/// index entries whose claim expired.
const DUE_BODY: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, hex in ipairs(due) do
  if redis.call('EXISTS', ARGV[3] .. 'pay:' .. hex) == 1 then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), hex)
    table.insert(out, hex)
  else
    redis.call('ZREM', KEYS[1], hex)
  end
end
return out
"#;

/// KEYS: claim, pending index. ARGV: record ('' = release), ttl_ms, payment hex.
const RESOLVE_BODY: &str = r#"
if ARGV[1] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
redis.call('ZREM', KEYS[2], ARGV[3])
return 1
"#;

struct Scripts {
    reserve: Lua,
    limits: Lua,
    release: Lua,
    finish: Lua,
    due: Lua,
    resolve: Lua,
}

impl Scripts {
    fn new() -> Self {
        Self {
            reserve: Lua::new(format!("{GCRA_FN}{RECORD_FN}{RESERVE_BODY}")),
            limits: Lua::new(format!("{GCRA_FN}{LIMITS_BODY}")),
            release: Lua::new(RELEASE_BODY.to_string()),
            finish: Lua::new(FINISH_BODY.to_string()),
            due: Lua::new(DUE_BODY.to_string()),
            resolve: Lua::new(RESOLVE_BODY.to_string()),
        }
    }
}

/// Redis-backed store.
pub struct RedisStore {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    prefix: String,
    timeout: Duration,
    scripts: Scripts,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No URL: it may carry a password.
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Counts a failed store call (`x402_store_errors_total{kind}`) and passes the error on.
fn counted(e: StoreError) -> StoreError {
    let kind = match e {
        StoreError::Timeout => "timeout",
        StoreError::Unavailable(_) => "unavailable",
        StoreError::Corrupt(_) => "corrupt",
    };
    metrics::counter!("x402_store_errors_total", "kind" => kind).increment(1);
    e
}

fn redis_error(e: &RedisError) -> StoreError {
    if e.is_timeout() {
        StoreError::Timeout
    } else {
        // The kind only: a message could quote the URL.
        StoreError::Unavailable(format!("{:?}", e.kind()))
    }
}

/// Maps a timed command's outcome. (The multiplexed connection matches replies to requests, so
/// a reply that arrives after its caller gave up is discarded, never handed to another caller;
/// a broken connection is re-established by the manager.)
fn checked<T>(
    outcome: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
) -> StoreResult<T> {
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(counted(redis_error(&e))),
        Err(_) => Err(counted(StoreError::Timeout)),
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

fn millis(d: Duration) -> u64 {
    (d.as_millis().min(u128::from(u64::MAX)) as u64).max(1)
}

impl RedisStore {
    /// A store on `url` with keys under `prefix`; connects on first use (the first call, or
    /// `/readyz`), so the gateway starts, and serves its free routes, while Redis is down.
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> StoreResult<Self> {
        let client =
            redis::Client::open(url).map_err(|e| unavailable(format!("{:?}", e.kind())))?;
        Ok(Self {
            client,
            connection: OnceCell::new(),
            prefix: prefix.to_string(),
            timeout,
            scripts: Scripts::new(),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn claim_key(&self, payment: &PaymentKey) -> String {
        self.key(&format!("pay:{}", payment.hex()))
    }

    fn pending_key(&self) -> String {
        self.key("pending")
    }

    async fn connection(&self) -> StoreResult<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout)
            .set_number_of_retries(1)
            .set_max_delay(1000);
        let connect = self
            .connection
            .get_or_try_init(|| ConnectionManager::new_with_config(self.client.clone(), config));
        match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(conn)) => Ok(conn.clone()),
            Ok(Err(e)) => Err(counted(redis_error(&e))),
            Err(_) => Err(counted(StoreError::Timeout)),
        }
    }

    /// Runs one command within the timeout.
    async fn run<T: FromRedisValue>(&self, cmd: &Cmd) -> StoreResult<T> {
        let mut conn = self.connection().await?;
        let outcome = tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut conn)).await;
        checked(outcome)
    }

    /// `EVALSHA`, falling back to `EVAL` (which caches the script) when Redis does not know it.
    async fn eval<T: FromRedisValue>(
        &self,
        lua: &Lua,
        keys: &[String],
        args: &[String],
    ) -> StoreResult<T> {
        let build = |name: &str, script: &str| {
            let mut cmd = redis::cmd(name);
            cmd.arg(script).arg(keys.len()).arg(keys).arg(args);
            cmd
        };
        let mut conn = self.connection().await?;
        let first = build("EVALSHA", &lua.sha);
        let outcome = tokio::time::timeout(self.timeout, first.query_async::<T>(&mut conn)).await;
        match outcome {
            Ok(Err(e)) if e.kind() == redis::ErrorKind::NoScriptError => {
                // A restarted or flushed Redis: send the body once; it is cached again.
                self.run(&build("EVAL", &lua.body)).await
            }
            outcome => checked(outcome),
        }
    }

    fn limit_args(limits: &[LimitCheck], args: &mut Vec<String>) {
        for limit in limits {
            let interval = micros(limit.emission_interval()).max(1);
            args.push(interval.to_string());
            args.push((interval * u64::from(limit.burst.max(1))).to_string());
        }
    }

    fn parse_record(json: &[u8]) -> StoreResult<ClaimRecord> {
        serde_json::from_slice(json).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    fn claim_keys(&self, ids: &ClaimIds) -> Vec<String> {
        std::iter::once(self.claim_key(&ids.payment))
            .chain(ids.aliases.iter().map(|a| self.key(a)))
            .collect()
    }
}

/// Reads a script's `{0, index, remaining, reset}` / `{2, index, retry}` answer.
fn verdict(values: &[RedisValue]) -> StoreResult<LimitVerdict> {
    let int = |i: usize| -> StoreResult<i64> {
        values
            .get(i)
            .and_then(|v| i64::from_redis_value(v).ok())
            .ok_or_else(|| StoreError::Corrupt("short script answer".into()))
    };
    match int(0)? {
        0 => {
            let remaining = int(2)?;
            Ok(LimitVerdict::Allowed {
                index: int(1)? as usize,
                remaining: if remaining < 0 {
                    u32::MAX
                } else {
                    remaining as u32
                },
                reset: Duration::from_micros(int(3)?.max(0) as u64),
            })
        }
        2 => Ok(LimitVerdict::Limited {
            index: int(1)? as usize,
            retry_after: Duration::from_micros(int(2)?.max(0) as u64),
        }),
        other => Err(StoreError::Corrupt(format!(
            "unexpected script code {other}"
        ))),
    }
}

#[async_trait]
impl Store for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.run::<String>(&redis::cmd("PING")).await.map(|_| ())
    }

    async fn reserve(
        &self,
        ids: &ClaimIds,
        token: &str,
        fingerprint: &str,
        limits: &[LimitCheck],
        ttl: Duration,
    ) -> StoreResult<Reservation> {
        let token = token.to_string();
        let record = ClaimRecord {
            fingerprint: fingerprint.to_string(),
            state: ClaimState::InFlight {
                token: token.clone(),
            },
        };
        let mut keys = self.claim_keys(ids);
        keys.extend(limits.iter().map(|l| self.key(&l.key)));
        let mut args = vec![
            ids.aliases.len().to_string(),
            limits.len().to_string(),
            self.prefix.clone(),
            serde_json::to_string(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            millis(ttl).to_string(),
            ids.payment.hex(),
        ];
        Self::limit_args(limits, &mut args);
        let answer: Vec<RedisValue> = self.eval(&self.scripts.reserve, &keys, &args).await?;
        match answer.first().and_then(|v| i64::from_redis_value(v).ok()) {
            Some(1) => {
                let bytes: Vec<u8> = answer
                    .get(1)
                    .and_then(|v| Vec::<u8>::from_redis_value(v).ok())
                    .ok_or_else(|| StoreError::Corrupt("record missing".into()))?;
                Ok(Reservation::Existing(Self::parse_record(&bytes)?))
            }
            Some(0) => Ok(Reservation::Reserved { token }),
            Some(2) => Ok(Reservation::Limited(verdict(&answer)?)),
            _ => Err(StoreError::Corrupt("unexpected reserve answer".into())),
        }
    }

    async fn release(&self, ids: &ClaimIds, token: &str) -> StoreResult<()> {
        let keys = self.claim_keys(ids);
        self.eval::<i64>(&self.scripts.release, &keys, &[token.to_string()])
            .await
            .map(|_| ())
    }

    async fn finish(
        &self,
        ids: &ClaimIds,
        token: &str,
        record: &ClaimRecord,
        ttl: Duration,
    ) -> StoreResult<()> {
        let mut keys = vec![self.claim_key(&ids.payment), self.pending_key()];
        keys.extend(ids.aliases.iter().map(|a| self.key(a)));
        let pending = matches!(record.state, ClaimState::Pending { .. });
        let args = [
            serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            millis(ttl).to_string(),
            ids.payment.hex(),
            if pending { "1" } else { "0" }.to_string(),
            token.to_string(),
            PENDING_INDEX_TTL_MS.to_string(),
        ];
        let held: i64 = self.eval(&self.scripts.finish, &keys, &args).await?;
        if held == 0 {
            tracing::warn!(payment = ?ids.payment, "claim finished after its in-flight lease expired");
        }
        Ok(())
    }

    async fn claim(&self, payment: &PaymentKey) -> StoreResult<Option<ClaimRecord>> {
        let bytes: Option<Vec<u8>> = self
            .run(redis::cmd("GET").arg(self.claim_key(payment)))
            .await?;
        bytes.map(|b| Self::parse_record(&b)).transpose()
    }

    async fn due_pending(&self, lease: Duration, max: usize) -> StoreResult<Vec<PaymentKey>> {
        let hexes: Vec<String> = self
            .eval(
                &self.scripts.due,
                &[self.pending_key()],
                &[
                    millis(lease).to_string(),
                    max.to_string(),
                    self.prefix.clone(),
                ],
            )
            .await?;
        Ok(hexes
            .iter()
            .filter_map(|h| {
                let bytes = hex::decode(h).ok()?;
                Some(PaymentKey(bytes.try_into().ok()?))
            })
            .collect())
    }

    async fn pending_count(&self) -> StoreResult<u64> {
        self.run(redis::cmd("ZCARD").arg(self.pending_key())).await
    }

    async fn resolve_pending(
        &self,
        payment: &PaymentKey,
        outcome: Option<&ClaimRecord>,
        ttl: Duration,
    ) -> StoreResult<()> {
        let record = match outcome {
            Some(r) => serde_json::to_string(r).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            None => String::new(),
        };
        self.eval::<i64>(
            &self.scripts.resolve,
            &[self.claim_key(payment), self.pending_key()],
            &[record, millis(ttl).to_string(), payment.hex()],
        )
        .await
        .map(|_| ())
    }

    async fn check_limits(&self, limits: &[LimitCheck]) -> StoreResult<LimitVerdict> {
        if limits.is_empty() {
            return Ok(LimitVerdict::Allowed {
                index: 0,
                remaining: u32::MAX,
                reset: Duration::ZERO,
            });
        }
        let keys: Vec<String> = limits.iter().map(|l| self.key(&l.key)).collect();
        let mut args = Vec::with_capacity(limits.len() * 2);
        Self::limit_args(limits, &mut args);
        let answer: Vec<RedisValue> = self.eval(&self.scripts.limits, &keys, &args).await?;
        verdict(&answer)
    }

    async fn put_once(&self, key: &str, value: &str, ttl: Duration) -> StoreResult<bool> {
        let set: Option<String> = self
            .run(
                redis::cmd("SET")
                    .arg(self.key(key))
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl)),
            )
            .await?;
        Ok(set.is_some())
    }

    async fn get(&self, key: &str) -> StoreResult<Option<String>> {
        self.run(redis::cmd("GET").arg(self.key(key))).await
    }

    async fn take(&self, key: &str) -> StoreResult<Option<String>> {
        self.run(redis::cmd("GETDEL").arg(self.key(key))).await
    }

    async fn add_usage(&self, deltas: &[UsageDelta], ttl: Duration) -> StoreResult<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        // One MULTI-less pipeline packed into one round trip: HINCRBYs, then one PEXPIRE per day.
        let mut pipe = redis::pipe();
        let mut days: Vec<&str> = Vec::new();
        for d in deltas {
            pipe.cmd("HINCRBY")
                .arg(self.key(&format!("usage:{}", d.day)))
                .arg(&d.field)
                .arg(d.delta)
                .ignore();
            if !days.contains(&d.day.as_str()) {
                days.push(&d.day);
            }
        }
        for day in days {
            pipe.cmd("PEXPIRE")
                .arg(self.key(&format!("usage:{day}")))
                .arg(millis(ttl))
                .ignore();
        }
        let mut conn = self.connection().await?;
        let outcome = tokio::time::timeout(self.timeout, pipe.query_async::<()>(&mut conn)).await;
        checked(outcome)
    }

    async fn usage(&self, day: &str) -> StoreResult<Vec<(String, i64)>> {
        let mut rows: Vec<(String, i64)> = self
            .run(redis::cmd("HGETALL").arg(self.key(&format!("usage:{day}"))))
            .await?;
        rows.sort();
        Ok(rows)
    }

    async fn map_put(&self, map: &str, field: &str, value: &str) -> StoreResult<()> {
        self.run(
            redis::cmd("HSET")
                .arg(self.key(&format!("map:{map}")))
                .arg(field)
                .arg(value),
        )
        .await
    }

    async fn map_remove(&self, map: &str, field: &str) -> StoreResult<bool> {
        let removed: u64 = self
            .run(
                redis::cmd("HDEL")
                    .arg(self.key(&format!("map:{map}")))
                    .arg(field),
            )
            .await?;
        Ok(removed > 0)
    }

    async fn map_all(&self, map: &str) -> StoreResult<Vec<(String, String)>> {
        let mut rows: Vec<(String, String)> = self
            .run(redis::cmd("HGETALL").arg(self.key(&format!("map:{map}"))))
            .await?;
        rows.sort();
        Ok(rows)
    }
}
