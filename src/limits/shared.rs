//! Windows shared by every gateway node through Redis: the same GCRA cells as
//! `window`, kept as one Redis string each (the TAT in microseconds of Redis
//! `TIME`) and taken all or none by one Lua script — one round trip per request.
//!
//! Token corrections (real usage minus estimate) are not on the request path:
//! they are summed per window and written every few milliseconds in one script
//! call per access key. Keys: `<prefix>rl:{<key name>}:<scope>:<kind>`, one hash
//! slot per access key.
//!
//! When a call fails or times out, Redis counts as down for a second and the
//! configured fallback (`rate_limits.redis_fallback`) applies; the next request
//! after that tries Redis again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use tokio::sync::{mpsc, OnceCell};

use super::window::{Rate, Standing};
use super::{KeyLimiter, Kind, Verdict};
use crate::ledger::engine::Engine;

/// Takes from every window or none. ARGV: per window, its interval (µs),
/// cost and checked cost. Returns {admitted, then per window: µs its TAT is
/// ahead of now (after the take when admitted), µs until it fits (0: fits)}.
const TAKE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local period = 60000000
local out = {1}
local new = {}
for i = 1, #KEYS do
  local iv = tonumber(ARGV[3 * i - 2])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local over = tat + tonumber(ARGV[3 * i]) * iv - now - period
  if over > 0 then
    out[1] = 0
    out[2 * i] = tat - now
    out[2 * i + 1] = math.ceil(over)
  else
    new[i] = tat + tonumber(ARGV[3 * i - 1]) * iv
    out[2 * i] = new[i] - now
    out[2 * i + 1] = 0
  end
end
if out[1] == 1 then
  for i = 1, #KEYS do
    redis.call('SET', KEYS[i], string.format('%.0f', new[i]), 'PX', math.ceil((new[i] - now) / 1000) + 1000)
  end
end
return out
"#;

/// Moves each window's TAT by ARGV[i] µs (later for more usage, earlier for
/// less, never earlier than empty).
const ADJUST: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, #KEYS do
  local d = tonumber(ARGV[i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  local new
  if d >= 0 then
    new = math.max(tat, now) + d
  else
    new = math.max(tat + d, math.min(tat, now))
  end
  if new > now then
    redis.call('SET', KEYS[i], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000) + 1000)
  else
    redis.call('DEL', KEYS[i])
  end
end
return 1
"#;

/// How long Redis counts as down after a failed call.
const DOWN_FOR_MS: u64 = 1000;
/// How often summed corrections are written.
const FLUSH_EVERY: Duration = Duration::from_millis(20);

/// The Redis side, on the engine's runtime.
struct Conn {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    take: Script,
    adjust: Script,
    timeout: Duration,
    corrections: mpsc::UnboundedSender<(String, Vec<(String, f64)>)>,
}

pub struct SharedWindows {
    engine: Engine<Conn>,
    prefix: String,
    /// Until when (ms since the window epoch) Redis counts as down.
    down_until: AtomicU64,
}

impl SharedWindows {
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<Arc<SharedWindows>, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let engine = Engine::new(move |handle| {
            let (tx, rx) = mpsc::unbounded_channel();
            let conn = Arc::new(Conn {
                client: client.clone(),
                conn: OnceCell::new(),
                take: Script::new(TAKE),
                adjust: Script::new(ADJUST),
                timeout,
                corrections: tx,
            });
            handle.spawn(flush(Arc::downgrade(&conn), rx));
            Ok(conn)
        });
        Ok(Arc::new(SharedWindows {
            engine,
            prefix: prefix.to_string(),
            down_until: AtomicU64::new(0),
        }))
    }

    pub fn is_up(&self) -> bool {
        now_ms() >= self.down_until.load(Ordering::Relaxed)
    }

    pub fn mark_down(&self, why: &str) {
        let was_up = self.is_up();
        self.down_until
            .store(now_ms() + DOWN_FOR_MS, Ordering::Relaxed);
        if was_up {
            log::warn!("rate limits: Redis unreachable ({why}); using the fallback policy");
        }
    }

    fn key(&self, k: &KeyLimiter, scope: usize, kind: Kind) -> String {
        format!(
            "{}rl:{{{}}}:{}:{}",
            self.prefix,
            k.name,
            k.scope_key(scope),
            kind.label()
        )
    }

    /// Takes one request and `tokens` from the windows of `mask`, all or none.
    pub(super) async fn take(
        &self,
        k: &KeyLimiter,
        mask: u64,
        tokens: u64,
    ) -> Result<Vec<(usize, Kind, Verdict)>, String> {
        let windows: Vec<(usize, Kind, Rate)> = k
            .windows(mask)
            .map(|(i, kind, w)| (i, kind, w.rate))
            .collect();
        let keys: Vec<String> = windows
            .iter()
            .map(|&(i, kind, _)| self.key(k, i, kind))
            .collect();
        let mut args: Vec<String> = Vec::with_capacity(windows.len() * 3);
        for &(_, kind, rate) in &windows {
            let cost = if kind == Kind::Tokens { tokens } else { 1 };
            args.push(format!("{:.3}", rate.interval_ns as f64 / 1000.0));
            args.push(cost.to_string());
            args.push(cost.min(rate.limit).to_string());
        }
        let reply: Vec<i64> = self
            .engine
            .run(move |c| async move {
                let mut inv = c.take.prepare_invoke();
                for key in &keys {
                    inv.key(key);
                }
                for a in &args {
                    inv.arg(a);
                }
                c.call(&inv).await
            })
            .await?;
        if reply.len() != 1 + 2 * windows.len() {
            return Err(format!("unexpected reply of {} values", reply.len()));
        }
        Ok(windows
            .iter()
            .enumerate()
            .map(|(n, &(i, kind, rate))| {
                let ahead = u64::try_from(reply[1 + 2 * n]).unwrap_or(0) * 1000;
                let retry = u64::try_from(reply[2 + 2 * n]).unwrap_or(0) * 1000;
                let standing: Standing = rate.standing(ahead);
                let v = if retry == 0 {
                    Verdict::Fits(standing)
                } else {
                    Verdict::Wait {
                        retry_ns: retry,
                        standing,
                    }
                };
                (i, kind, v)
            })
            .collect())
    }

    /// Queues a correction of `delta` tokens for the token windows of `mask`.
    pub(super) fn adjust(&self, k: &KeyLimiter, mask: u64, delta: i64) {
        let windows: Vec<(String, f64)> = k
            .windows(mask)
            .filter(|(_, kind, _)| *kind == Kind::Tokens)
            .map(|(i, kind, w)| {
                let us = delta as f64 * w.rate.interval_ns as f64 / 1000.0;
                (self.key(k, i, kind), us)
            })
            .collect();
        if windows.is_empty() {
            return;
        }
        let group = format!("{}rl:{{{}}}", self.prefix, k.name);
        match self.engine.get() {
            Ok((_, c)) => {
                let _ = c.corrections.send((group, windows));
            }
            Err(e) => log::warn!("rate limits: correction lost: {e}"),
        }
    }
}

impl Conn {
    async fn call<T: redis::FromRedisValue>(
        &self,
        inv: &redis::ScriptInvocation<'_>,
    ) -> Result<T, String> {
        let run = async {
            let config = ConnectionManagerConfig::new()
                .set_number_of_retries(1)
                .set_connection_timeout(self.timeout)
                .set_response_timeout(self.timeout);
            let new = || ConnectionManager::new_with_config(self.client.clone(), config);
            let mut conn = self.conn.get_or_try_init(new).await?.clone();
            inv.invoke_async(&mut conn).await
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }
}

/// Sums queued corrections and writes them, one script call per access key,
/// until the engine stops.
async fn flush(
    conn: std::sync::Weak<Conn>,
    mut rx: mpsc::UnboundedReceiver<(String, Vec<(String, f64)>)>,
) {
    while let Some(first) = rx.recv().await {
        tokio::time::sleep(FLUSH_EVERY).await;
        let mut groups: HashMap<String, HashMap<String, f64>> = HashMap::new();
        let mut add = |(group, windows): (String, Vec<(String, f64)>)| {
            let g = groups.entry(group).or_default();
            for (key, us) in windows {
                *g.entry(key).or_default() += us;
            }
        };
        add(first);
        while let Ok(more) = rx.try_recv() {
            add(more);
        }
        let Some(c) = conn.upgrade() else { return };
        for windows in groups.into_values() {
            let mut inv = c.adjust.prepare_invoke();
            for (key, us) in &windows {
                inv.key(key).arg(format!("{us:.0}"));
            }
            if let Err(e) = c.call::<i64>(&inv).await {
                log::warn!("rate limits: correction not written: {e}");
            }
        }
    }
}

fn now_ms() -> u64 {
    super::window::now_ns() / 1_000_000
}
