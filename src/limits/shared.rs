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
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use tokio::sync::{mpsc, OnceCell};

use super::window::{Rate, Standing};
use super::{KeyLimiter, Kind, Verdict};

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

/// Corrections queued for the writer: (access key's hash tag, [(window key, µs)]).
type Correction = (String, Vec<(Box<str>, f64)>);

/// The Redis side. Its connection and correction writer are made on first use,
/// on the runtime of the request that needed them (the proxy service's, which
/// lives as long as the process); calls go out from the request's own task.
pub struct SharedWindows {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    take: Script,
    adjust: Arc<Script>,
    timeout: Duration,
    corrections: OnceLock<mpsc::UnboundedSender<Correction>>,
    /// Until when (ms since the window epoch) Redis counts as down.
    down_until: AtomicU64,
}

impl SharedWindows {
    pub fn new(url: &str, timeout: Duration) -> Result<Arc<SharedWindows>, String> {
        Ok(Arc::new(SharedWindows {
            client: redis::Client::open(url).map_err(|e| e.to_string())?,
            conn: OnceCell::new(),
            take: Script::new(TAKE),
            adjust: Arc::new(Script::new(ADJUST)),
            timeout,
            corrections: OnceLock::new(),
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

    /// The connection, made on first use (within the timeout).
    async fn conn(&self) -> Result<ConnectionManager, String> {
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout);
        let make = || ConnectionManager::new_with_config(self.client.clone(), config);
        match tokio::time::timeout(self.timeout, self.conn.get_or_try_init(make)).await {
            Ok(Ok(c)) => Ok(c.clone()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no connection within {:?}", self.timeout)),
        }
    }

    /// Takes one request and `tokens` from the windows of `mask`, all or none:
    /// one script call.
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
        let mut inv = self.take.prepare_invoke();
        for &(i, kind, rate) in &windows {
            let cost = if kind == Kind::Tokens { tokens } else { 1 };
            inv.key(k.redis_key(i, kind))
                .arg(rate.interval_ns as f64 / 1000.0)
                .arg(cost)
                .arg(cost.min(rate.limit));
        }
        let mut conn = self.conn().await?;
        let reply: Vec<i64> =
            match tokio::time::timeout(self.timeout, inv.invoke_async(&mut conn)).await {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err(format!("no answer within {:?}", self.timeout)),
            };
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

    /// Queues a correction of `delta` tokens for the token windows of `mask`
    /// (written by a background task, off the request path).
    pub(super) fn adjust(self: &Arc<Self>, k: &KeyLimiter, mask: u64, delta: i64) {
        let windows: Vec<(Box<str>, f64)> = k
            .windows(mask)
            .filter(|(_, kind, _)| *kind == Kind::Tokens)
            .map(|(i, kind, w)| {
                let us = delta as f64 * w.rate.interval_ns as f64 / 1000.0;
                (k.redis_key(i, kind).into(), us)
            })
            .collect();
        if windows.is_empty() {
            return;
        }
        let tx = self.corrections.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(flush(Arc::downgrade(self), rx));
            tx
        });
        let _ = tx.send((k.name.to_string(), windows));
    }
}

/// Sums queued corrections and writes them, one script call per access key,
/// until the windows are gone.
async fn flush(windows: Weak<SharedWindows>, mut rx: mpsc::UnboundedReceiver<Correction>) {
    while let Some(first) = rx.recv().await {
        tokio::time::sleep(FLUSH_EVERY).await;
        let mut groups: HashMap<String, HashMap<Box<str>, f64>> = HashMap::new();
        let mut add = |(group, windows): Correction| {
            let g = groups.entry(group).or_default();
            for (key, us) in windows {
                *g.entry(key).or_default() += us;
            }
        };
        add(first);
        while let Ok(more) = rx.try_recv() {
            add(more);
        }
        let Some(w) = windows.upgrade() else { return };
        let Ok(mut conn) = w.conn().await else {
            log::warn!("rate limits: corrections not written: Redis unreachable");
            continue;
        };
        for windows in groups.into_values() {
            let mut inv = w.adjust.prepare_invoke();
            for (key, us) in &windows {
                inv.key(&**key).arg(format!("{us:.0}"));
            }
            let call = inv.invoke_async::<i64>(&mut conn);
            match tokio::time::timeout(w.timeout, call).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => log::warn!("rate limits: correction not written: {e}"),
                Err(_) => log::warn!("rate limits: correction not written: timeout"),
            }
        }
    }
}

fn now_ms() -> u64 {
    super::window::now_ns() / 1_000_000
}
