//! One rate window kept in the process: GCRA (the generic cell rate algorithm)
//! on a single atomic, so admission is a compare-and-swap, never a lock.
//!
//! A window of `limit` per minute spaces units `interval = 1 min / limit` apart
//! and remembers one instant, the theoretical arrival time (TAT): when the window
//! would be empty again. Taking `cost` units moves the TAT `cost × interval`
//! later; it is allowed while the TAT stays within one minute of now. That is a
//! bucket of `limit` units refilling continuously, so a full minute's budget may
//! be spent at once, and then one unit comes back every interval.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use crate::decimal::decimal;

/// The period every limit is counted over.
pub const PERIOD: Duration = Duration::from_secs(60);
const PERIOD_NS: u64 = 60_000_000_000;

/// Nanoseconds since the process's first use of a window.
pub fn now_ns() -> u64 {
    static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);
    // An u64 of nanoseconds lasts 584 years.
    EPOCH.elapsed().as_nanos() as u64
}

/// A per-minute rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub limit: u64,
    /// Nanoseconds between two units (at least 1).
    pub interval_ns: u64,
}

impl Rate {
    pub fn per_minute(limit: u64) -> Rate {
        let limit = limit.max(1);
        Rate {
            limit,
            interval_ns: (PERIOD_NS / limit).max(1),
        }
    }

    /// What to report once the TAT is `ahead_ns` past now.
    pub fn standing(&self, ahead_ns: u64) -> Standing {
        Standing {
            limit: self.limit,
            remaining: (PERIOD_NS.saturating_sub(ahead_ns) / self.interval_ns).min(self.limit),
            reset_ns: ahead_ns,
        }
    }

    /// The cost checked against the window: a request larger than the whole
    /// budget is let through when the window is empty, not refused forever.
    fn checked(&self, cost: u64) -> u64 {
        cost.min(self.limit)
    }

    fn span(&self, units: u64) -> u64 {
        units.saturating_mul(self.interval_ns)
    }
}

/// Where a window stands after an admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub limit: u64,
    pub remaining: u64,
    /// Until the window is empty again.
    pub reset_ns: u64,
}

/// A window in this process.
#[derive(Debug)]
pub struct Window {
    pub rate: Rate,
    tat: AtomicU64,
}

impl Window {
    pub fn new(rate: Rate) -> Window {
        Window {
            rate,
            tat: AtomicU64::new(0),
        }
    }

    /// Takes `cost` units at `now`, or says how long until they would fit (ns).
    pub fn take(&self, now: u64, cost: u64) -> Result<Standing, u64> {
        let r = self.rate;
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let base = tat.max(now);
            let checked = base.saturating_add(r.span(r.checked(cost)));
            let over = checked.saturating_sub(now).saturating_sub(PERIOD_NS);
            if over > 0 {
                return Err(over);
            }
            let new = base.saturating_add(r.span(cost));
            match self
                .tat
                .compare_exchange_weak(tat, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(r.standing(new - now)),
                Err(seen) => tat = seen,
            }
        }
    }

    /// Corrects a past take by `delta` units: more when a request used more
    /// than was taken, fewer (given back) when it used less.
    pub fn adjust(&self, now: u64, delta: i64) {
        let r = self.rate;
        let _ = self
            .tat
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |tat| {
                Some(if delta >= 0 {
                    tat.max(now).saturating_add(r.span(delta.unsigned_abs()))
                } else {
                    // Units given back never make the window emptier than empty.
                    tat.saturating_sub(r.span(delta.unsigned_abs()))
                        .max(tat.min(now))
                })
            });
    }

    /// Where the window stands at `now`, taking nothing.
    pub fn standing(&self, now: u64) -> Standing {
        let tat = self.tat.load(Ordering::Relaxed);
        self.rate.standing(tat.saturating_sub(now))
    }
}

/// Writes a duration as OpenAI's `x-ratelimit-reset-*` headers do (`20ms`,
/// `1.5s`, `6m0s`, `1h2m3s`) into `buf` without allocating; returns its length.
pub fn write_reset(buf: &mut [u8; 32], ns: u64) -> usize {
    use std::io::Write;
    let ms = ns.div_ceil(1_000_000);
    if ms < 1000 {
        // The common case, without the formatting machinery.
        let digits = decimal(ms);
        let digits = digits.as_slice();
        buf[..digits.len()].copy_from_slice(digits);
        buf[digits.len()..digits.len() + 2].copy_from_slice(b"ms");
        return digits.len() + 2;
    }
    let mut w = &mut buf[..];
    let _ = {
        let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
        let (m, rest) = (rest / 60_000, rest % 60_000);
        let _ = match (h, m) {
            (0, 0) => Ok(()),
            (0, m) => write!(w, "{m}m"),
            (h, m) => write!(w, "{h}h{m}m"),
        };
        let (secs, frac) = (rest / 1000, rest % 1000);
        match frac {
            0 => write!(w, "{secs}s"),
            f if f % 100 == 0 => write!(w, "{secs}.{}s", f / 100),
            f if f % 10 == 0 => write!(w, "{secs}.{:02}s", f / 10),
            f => write!(w, "{secs}.{f:03}s"),
        }
    };
    32 - w.len()
}

/// Appends `n` in decimal.
pub fn put_u64(out: &mut bytes::BytesMut, n: u64) {
    out.extend_from_slice(decimal(n).as_slice());
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn a_minutes_budget_at_once_then_one_per_interval() {
        let w = Window::new(Rate::per_minute(5));
        let t0 = 1000 * SEC;
        for left in (0..5).rev() {
            assert_eq!(w.take(t0, 1).unwrap().remaining, left);
        }
        let wait = w.take(t0, 1).unwrap_err();
        assert_eq!(wait, 12 * SEC);
        assert!(w.take(t0 + 12 * SEC - 1, 1).is_err());
        assert!(w.take(t0 + 12 * SEC, 1).is_ok());
        assert_eq!(w.standing(t0 + 72 * SEC).remaining, 5);
    }

    #[test]
    fn costs_and_corrections() {
        let w = Window::new(Rate::per_minute(1000));
        let t0 = 10 * SEC;
        assert_eq!(w.take(t0, 100).unwrap().remaining, 900);
        // The request used 700 more than estimated.
        w.adjust(t0, 700);
        assert_eq!(w.standing(t0).remaining, 200);
        assert!(w.take(t0, 300).is_err());
        // Another used 150 fewer.
        w.adjust(t0, -150);
        assert_eq!(w.standing(t0).remaining, 350);
        // Giving back more than was taken leaves the window empty, not negative.
        w.adjust(t0, -5000);
        assert_eq!(w.standing(t0).remaining, 1000);
        assert_eq!(w.standing(t0).reset_ns, 0);
    }

    #[test]
    fn oversized_requests_pass_only_an_empty_window() {
        let w = Window::new(Rate::per_minute(100));
        assert!(w.take(SEC, 5000).is_ok());
        assert_eq!(w.standing(SEC).remaining, 0);
        assert!(w.take(SEC, 1).is_err());
    }

    #[test]
    fn concurrent_takes_never_exceed_the_limit() {
        let w = std::sync::Arc::new(Window::new(Rate::per_minute(1000)));
        let now = 5 * SEC;
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let w = w.clone();
                std::thread::spawn(move || (0..600).filter(|_| w.take(now, 1).is_ok()).count())
            })
            .collect();
        let admitted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(admitted, 1000);
    }

    fn reset_text(ns: u64) -> String {
        let mut buf = [0u8; 32];
        let n = write_reset(&mut buf, ns);
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn reset_texts() {
        assert_eq!(reset_text(0), "0ms");
        assert_eq!(reset_text(20_000_000), "20ms");
        assert_eq!(reset_text(1_500_000_000), "1.5s");
        assert_eq!(reset_text(12 * SEC), "12s");
        assert_eq!(reset_text(360 * SEC), "6m0s");
        assert_eq!(reset_text(3723 * SEC), "1h2m3s");
        assert_eq!(reset_text(61_250_000_000), "1m1.25s");
        assert_eq!(reset_text(u64::MAX), "5124095h34m33.71s");
    }
}
