//! Talking to Redis: the Lua scripts that admit and settle atomically, and the calls that run them.
//!
//! Each call is one round trip (a script, or GET for a total) on a `ConnectionManager` made on
//! first use, bounded by `Tuning::op_timeout`; errors come back as text for the caller's policy.
//!
//! Every script works on one access key's four Redis keys (one hash slot, thanks to the `{name}`
//! hash tag):
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `KEYS[1]` `<prefix>{<name>}:spent` | string | settled micro-USD, never expires |
//! | `KEYS[2]` `<prefix>{<name>}:held` | string | sum of the open reservations |
//! | `KEYS[3]` `<prefix>{<name>}:ids` | hash | reservation or operation id → amount held, or `s` once ended |
//! | `KEYS[4]` `<prefix>{<name>}:due` | sorted set | id → when (Redis `TIME`, ms) it is pruned |
//!
//! An open reservation is pruned (its amount leaves `held`) when its deadline passes, so a node
//! that dies with requests in flight blocks their credits only for the reservation TTL. An ended
//! id stays as `s` for the dedup window, which makes settling idempotent: an operation retried
//! after a lost reply, or a reservation that reaches Redis after it was given up, counts once.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, Script};
use tokio::sync::OnceCell;

use super::fallback::Deferred;

/// Helpers shared by both scripts.
const PRELUDE: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Drops ids whose deadline passed, a bounded number per call; open ones give back their hold.
local function prune(now)
  local old = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 100)
  if #old == 0 then return end
  for _, id in ipairs(old) do
    local v = redis.call('HGET', KEYS[3], id)
    if v and v ~= 's' then redis.call('DECRBY', KEYS[2], v) end
  end
  redis.call('HDEL', KEYS[3], unpack(old))
  redis.call('ZREM', KEYS[4], unpack(old))
end
local function held()
  local h = tonumber(redis.call('GET', KEYS[2]) or '0')
  if h < 0 then
    redis.call('SET', KEYS[2], 0)
    return 0
  end
  return h
end
-- Bookkeeping keys vanish once a key is idle for `keep` ms; `spent` stays.
local function touch(keep)
  redis.call('PEXPIRE', KEYS[2], keep)
  redis.call('PEXPIRE', KEYS[3], keep)
  redis.call('PEXPIRE', KEYS[4], keep)
end
"#;

/// Reserve. ARGV: balance, estimate, id, reservation TTL ms, keep ms.
/// Returns {admitted 0|1, spent, held}: refused when spent + held >= balance, else `estimate` is
/// held under `id` (unless `id` is already known: a retried or abandoned reservation holds nothing
/// new).
const RESERVE: &str = r#"
local now = now_ms()
prune(now)
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local h = held()
if spent + h >= tonumber(ARGV[1]) then
  return {0, spent, h}
end
if redis.call('HSETNX', KEYS[3], ARGV[3], ARGV[2]) == 1 then
  h = redis.call('INCRBY', KEYS[2], ARGV[2])
  redis.call('ZADD', KEYS[4], now + tonumber(ARGV[4]), ARGV[3])
end
touch(ARGV[5])
return {1, spent, h}
"#;

/// Settle, release or record. ARGV: id, amount, dedup ms, keep ms.
/// Ends `id` once: an open reservation under it gives back its hold, `amount` is added to spent
/// (0 for a release), and `id` is marked ended for the dedup window. Returns {applied 0|1, spent};
/// an id already ended changes nothing.
const SETTLE: &str = r#"
local now = now_ms()
prune(now)
local v = redis.call('HGET', KEYS[3], ARGV[1])
if v == 's' then
  return {0, tonumber(redis.call('GET', KEYS[1]) or '0')}
end
if v then redis.call('DECRBY', KEYS[2], v) end
redis.call('HSET', KEYS[3], ARGV[1], 's')
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[3]), ARGV[1])
local spent = redis.call('INCRBY', KEYS[1], ARGV[2])
touch(ARGV[4])
return {1, spent}
"#;

/// Timings of a `RedisLedger` (tests shorten them).
#[derive(Debug, Clone, Copy)]
pub(super) struct Tuning {
    /// Longest wait for one Redis call (connecting included) before Redis counts as down.
    pub op_timeout: Duration,
    /// How often a down Redis is probed and queued writes are retried.
    pub probe_interval: Duration,
    /// How long an open reservation holds credits if it is never ended (its node died).
    pub reservation_ttl: Duration,
    /// How long an ended id is remembered, so that a retried write counts once.
    pub dedup_ttl: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            op_timeout: Duration::from_millis(1000),
            probe_interval: Duration::from_millis(250),
            reservation_ttl: Duration::from_secs(15 * 60),
            dedup_ttl: Duration::from_secs(2 * 60),
        }
    }
}

/// One Redis call.
enum Call<'a> {
    /// A script (loaded again if Redis forgot it).
    Script(redis::ScriptInvocation<'a>),
    /// A plain command.
    Cmd(redis::Cmd),
}

/// One Redis database seen through the ledger's scripts.
pub(super) struct RedisStore {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    prefix: String,
    /// Unique per ledger instance; prefixes every id this node writes.
    node: String,
    reserve: Script,
    settle: Script,
    /// Timings.
    pub tuning: Tuning,
}

impl RedisStore {
    /// A store for `url` (not connected yet) whose keys start with `prefix`.
    pub(super) fn new(url: &str, prefix: &str, tuning: Tuning) -> Result<Self, String> {
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        let seed = (
            std::process::id(),
            INSTANCES.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now(),
        );
        Ok(RedisStore {
            client: redis::Client::open(url).map_err(|e| e.to_string())?,
            conn: OnceCell::new(),
            prefix: prefix.to_string(),
            node: format!("{:016x}", RandomState::new().hash_one(seed)),
            reserve: Script::new(&format!("{PRELUDE}{RESERVE}")),
            settle: Script::new(&format!("{PRELUDE}{SETTLE}")),
            tuning,
        })
    }

    fn keys(&self, key: &str) -> [String; 4] {
        let p = &self.prefix;
        [
            format!("{p}{{{key}}}:spent"),
            format!("{p}{{{key}}}:held"),
            format!("{p}{{{key}}}:ids"),
            format!("{p}{{{key}}}:due"),
        ]
    }

    fn id(&self, id: u64) -> String {
        format!("{}:{id:x}", self.node)
    }

    /// How long idle bookkeeping keys are kept: longer than any id they hold.
    fn keep_ms(&self) -> u128 {
        2 * self
            .tuning
            .reservation_ttl
            .max(self.tuning.dedup_ttl)
            .as_millis()
    }

    /// Runs `call` on the connection (made on first use), within the op timeout.
    async fn query<T: FromRedisValue>(&self, call: Call<'_>) -> Result<T, String> {
        let run = async {
            let config = ConnectionManagerConfig::new()
                .set_number_of_retries(1)
                .set_factor(10)
                .set_max_delay(100)
                .set_connection_timeout(self.tuning.op_timeout)
                .set_response_timeout(self.tuning.op_timeout);
            let new = || ConnectionManager::new_with_config(self.client.clone(), config);
            let mut conn = self.conn.get_or_try_init(new).await?.clone();
            match call {
                Call::Script(inv) => inv.invoke_async(&mut conn).await,
                Call::Cmd(cmd) => cmd.query_async(&mut conn).await,
            }
        };
        match tokio::time::timeout(self.tuning.op_timeout, run).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.tuning.op_timeout)),
        }
    }

    pub(super) async fn ping(&self) -> Result<(), String> {
        let _pong: String = self.query(Call::Cmd(redis::cmd("PING"))).await?;
        Ok(())
    }

    /// The reserve script: (admitted, spent, held).
    pub(super) async fn run_reserve(
        &self,
        key: &str,
        balance: u64,
        estimate: u64,
        id: u64,
    ) -> Result<(bool, u64, u64), String> {
        let mut inv = self.reserve.prepare_invoke();
        for k in self.keys(key) {
            inv.key(k);
        }
        inv.arg(balance)
            .arg(estimate)
            .arg(self.id(id))
            .arg(self.tuning.reservation_ttl.as_millis() as u64)
            .arg(self.keep_ms() as u64);
        let (admitted, spent, held): (u8, u64, u64) = self.query(Call::Script(inv)).await?;
        Ok((admitted == 1, spent, held))
    }

    /// The settle script: the key's spent total afterwards.
    pub(super) async fn run_settle(&self, d: &Deferred) -> Result<u64, String> {
        let mut inv = self.settle.prepare_invoke();
        for k in self.keys(&d.key) {
            inv.key(k);
        }
        inv.arg(self.id(d.id))
            .arg(d.amount)
            .arg(self.tuning.dedup_ttl.as_millis() as u64)
            .arg(self.keep_ms() as u64);
        let (_applied, spent): (u8, u64) = self.query(Call::Script(inv)).await?;
        Ok(spent)
    }

    /// The key's settled total.
    pub(super) async fn spent(&self, key: &str) -> Result<u64, String> {
        let mut get = redis::cmd("GET");
        get.arg(&self.keys(key)[0]);
        let spent: Option<u64> = self.query(Call::Cmd(get)).await?;
        Ok(spent.unwrap_or(0))
    }
}
