//! Timeouts on pingora's timer wheel, made only when they are needed.
//!
//! `pingora_timeout::timeout` reads the clock to check its timer thread each time
//! one is built, and a wait that has to park registers a timer (a lock, a map
//! entry, an allocation) and drops it again. tollgate builds five a request and
//! parks on two of them (the client's next request, the provider's answer), so
//! that was ~2k instructions a request. Here, [`timeout`] touches the wheel only
//! once its future has to wait, and a connection's [`Deadline`] keeps one timer
//! across its waits: a timer that fires no later than the wait needs is reused,
//! and when it fires early the wait re-arms for what is left. A connection
//! answering a request every few milliseconds registers one timer a keep-alive
//! period instead of two a request.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::{Duration, Instant};

type Sleep = Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

/// A timeout elapsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// `future`, cut off after `d`. The timer is made only when the first poll of
/// `future` is not ready.
pub async fn timeout<F: Future>(d: Duration, future: F) -> Result<F::Output, Elapsed> {
    let mut future = pin!(future);
    let mut sleep: Option<Sleep> = None;
    poll_fn(|cx| {
        if let Poll::Ready(v) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        let sleep = sleep.get_or_insert_with(|| Box::pin(pingora_timeout::sleep(d)));
        sleep.as_mut().poll(cx).map(|()| Err(Elapsed))
    })
    .await
}

/// One timer kept across a connection's waits.
#[derive(Default)]
pub struct Deadline {
    sleep: Option<Sleep>,
    /// When `sleep` fires.
    fires: Option<Instant>,
}

impl Deadline {
    /// `future`, cut off after `d`, on this connection's timer (armed, or
    /// re-armed, only when `future` has to wait).
    pub async fn within<F: Future>(
        &mut self,
        d: Duration,
        future: F,
    ) -> Result<F::Output, Elapsed> {
        let mut future = pin!(future);
        let mut until: Option<Instant> = None;
        poll_fn(|cx| {
            if let Poll::Ready(v) = future.as_mut().poll(cx) {
                return Poll::Ready(Ok(v));
            }
            let until = *until.get_or_insert_with(|| Instant::now() + d);
            loop {
                let sleep = match (&mut self.sleep, self.fires) {
                    // A timer firing no later than `until` serves: when it fires
                    // early, the wait re-arms for the rest.
                    (Some(sleep), Some(fires)) if fires <= until => sleep,
                    _ => {
                        let now = Instant::now();
                        if now >= until {
                            return Poll::Ready(Err(Elapsed));
                        }
                        self.fires = Some(until);
                        self.sleep
                            .insert(Box::pin(pingora_timeout::sleep(until - now)))
                    }
                };
                match sleep.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => {
                        self.sleep = None;
                        self.fires = None;
                        if Instant::now() >= until {
                            return Poll::Ready(Err(Elapsed));
                        }
                    }
                }
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ready_future_needs_no_timer_and_a_slow_one_is_cut() {
        assert_eq!(timeout(Duration::from_millis(1), async { 7 }).await, Ok(7));
        let slow = tokio::time::sleep(Duration::from_secs(5));
        assert_eq!(timeout(Duration::from_millis(30), slow).await, Err(Elapsed));
    }

    #[tokio::test]
    async fn a_deadline_reuses_its_timer_and_still_cuts_at_the_right_time() {
        let mut d = Deadline::default();
        // A first wait arms a timer for 200 ms and ends after 20.
        let quick = tokio::time::sleep(Duration::from_millis(20));
        assert_eq!(d.within(Duration::from_millis(200), quick).await, Ok(()));
        assert!(d.fires.is_some());
        // A second wait of 200 ms reuses it (it fires first), and the wait is
        // cut 200 ms after its own start, not when the old timer fires.
        let start = Instant::now();
        let never = std::future::pending::<()>();
        assert_eq!(
            d.within(Duration::from_millis(200), never).await,
            Err(Elapsed)
        );
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        assert!(waited < Duration::from_millis(400), "{waited:?}");
        // A shorter wait than the armed timer gets a timer of its own.
        let mut d = Deadline::default();
        let _ = d.within(Duration::from_secs(60), async {}).await;
        let start = Instant::now();
        let never = std::future::pending::<()>();
        let _ = d
            .within(
                Duration::from_secs(60),
                tokio::time::sleep(Duration::from_millis(5)),
            )
            .await;
        assert!(d.fires.is_some_and(|f| f > start + Duration::from_secs(59)));
        assert_eq!(
            d.within(Duration::from_millis(30), never).await,
            Err(Elapsed)
        );
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
