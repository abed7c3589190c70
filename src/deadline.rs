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

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;

type Sleep = Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

/// A timer of `d`: on pingora's wheel, or tokio's above pingora's threshold
/// (15 minutes by default) as pingora's own `timeout` does, so that a long wait
/// given up does not hold a wheel slot until it would have fired.
fn sleep(d: Duration) -> Sleep {
    match pingora_timeout::fast_timeout::fast_timeout_to_tokio_threshold() {
        Some(threshold) if d.as_secs() > threshold.as_secs() => Box::pin(tokio::time::sleep(d)),
        _ => Box::pin(pingora_timeout::sleep(d)),
    }
}

/// A timeout elapsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// `future`, cut off after `d`. The timer is made only when the first poll of
/// `future` is not ready.
pub fn timeout<F: Future>(d: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        d,
        timer: None,
    }
}

// Named futures, not `async fn`s: an `async fn` would keep its argument and its
// pinned copy apart, and these sit inside every connection's future, whose size
// decides its allocation's size class (a few dozen bytes more cost ~1 KiB a
// connection in mimalloc's classes).
pin_project! {
    /// See [`timeout`].
    pub struct Timeout<F> {
        #[pin]
        future: F,
        d: Duration,
        timer: Option<Sleep>,
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let me = self.project();
        if let Poll::Ready(v) = me.future.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        let d = *me.d;
        let timer = me.timer.get_or_insert_with(|| sleep(d));
        timer.as_mut().poll(cx).map(|()| Err(Elapsed))
    }
}

/// One timer kept across a connection's waits. One pointer wide, for the same
/// reason as the futures above.
#[derive(Default)]
pub struct Deadline(Option<Box<Armed>>);

struct Armed {
    sleep: Sleep,
    /// When `sleep` fires.
    fires: Instant,
}

impl Deadline {
    /// `future`, cut off after `d`, on this connection's timer (armed, or
    /// re-armed, only when `future` has to wait).
    pub fn within<F: Future>(&mut self, d: Duration, future: F) -> Within<'_, F> {
        Within {
            deadline: self,
            future,
            d,
            until: None,
        }
    }
}

pin_project! {
    /// See [`Deadline::within`].
    pub struct Within<'a, F> {
        deadline: &'a mut Deadline,
        #[pin]
        future: F,
        d: Duration,
        // Set at the first wait; `Some(None)`: a deadline past what an
        // `Instant` holds, which is none.
        until: Option<Option<Instant>>,
    }
}

impl<F: Future> Future for Within<'_, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let me = self.project();
        if let Poll::Ready(v) = me.future.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        let d = *me.d;
        let Some(until) = *me
            .until
            .get_or_insert_with(|| Instant::now().checked_add(d))
        else {
            return Poll::Pending;
        };
        let slot = &mut me.deadline.0;
        loop {
            let armed = match slot {
                // A timer firing no later than `until` serves: when it fires
                // early, the wait re-arms for the rest.
                Some(armed) if armed.fires <= until => armed,
                _ => {
                    let now = Instant::now();
                    if now >= until {
                        return Poll::Ready(Err(Elapsed));
                    }
                    slot.insert(Box::new(Armed {
                        sleep: sleep(until - now),
                        fires: until,
                    }))
                }
            };
            match armed.sleep.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) => {
                    *slot = None;
                    if Instant::now() >= until {
                        return Poll::Ready(Err(Elapsed));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the armed timer lives, to tell a reused one from a new one.
    fn armed(d: &Deadline) -> Option<*const Armed> {
        d.0.as_deref().map(|a| a as *const Armed)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test]
    async fn a_ready_future_needs_no_timer_and_a_slow_one_is_cut() {
        assert_eq!(timeout(ms(1), async { 7 }).await, Ok(7));
        let slow = tokio::time::sleep(Duration::from_secs(5));
        assert_eq!(timeout(ms(30), slow).await, Err(Elapsed));
        // Beyond pingora's threshold the timer is tokio's; a ready future still wins.
        let long = Duration::from_secs(3600);
        assert_eq!(timeout(long, async { 8 }).await, Ok(8));
        assert_eq!(timeout(Duration::MAX, async { 9 }).await, Ok(9));
    }

    #[tokio::test]
    async fn a_deadline_arms_only_for_a_wait_and_reuses_its_timer() {
        let mut d = Deadline::default();
        assert_eq!(d.within(ms(200), async {}).await, Ok(()));
        assert!(armed(&d).is_none(), "a ready future armed a timer");
        // A wait arms a timer for 200 ms and ends after 20.
        assert_eq!(d.within(ms(200), tokio::time::sleep(ms(20))).await, Ok(()));
        assert!(armed(&d).is_some());
        // A second wait of 200 ms reuses it (it fires first), and is cut 200 ms
        // after its own start, not when the old timer fires: that one fires
        // early for it, and the wait re-arms for the rest.
        let start = Instant::now();
        let never = std::future::pending::<()>();
        assert_eq!(d.within(ms(200), never).await, Err(Elapsed));
        let waited = start.elapsed();
        assert!(waited >= ms(200), "cut after {waited:?}");
        assert!(waited < Duration::from_secs(2), "cut after {waited:?}");
        // The next wait starts with no timer (the last one fired) and arms one.
        assert_eq!(d.within(ms(500), tokio::time::sleep(ms(5))).await, Ok(()));
        let second = armed(&d).expect("armed");
        assert_eq!(d.within(ms(500), tokio::time::sleep(ms(5))).await, Ok(()));
        assert_eq!(armed(&d), Some(second), "a timer that serves was replaced");
    }

    #[tokio::test]
    async fn a_shorter_wait_gets_its_own_timer_and_a_dropped_wait_leaves_one() {
        let mut d = Deadline::default();
        let _ = d
            .within(Duration::from_secs(60), tokio::time::sleep(ms(5)))
            .await;
        let long = armed(&d).expect("armed");
        // The 60 s timer fires too late for a 30 ms wait.
        let start = Instant::now();
        let never = std::future::pending::<()>();
        assert_eq!(d.within(ms(30), never).await, Err(Elapsed));
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_ne!(armed(&d), Some(long));
        // A wait dropped while it waits (as `select!` drops a losing branch)
        // leaves its timer armed, and a later wait is still cut on time.
        let mut d = Deadline::default();
        tokio::select! {
            r = d.within(Duration::from_secs(5), std::future::pending::<()>()) => panic!("{r:?}"),
            () = tokio::time::sleep(ms(10)) => {}
        }
        let kept = armed(&d).expect("armed");
        assert_eq!(d.within(Duration::from_secs(5), async {}).await, Ok(()));
        assert_eq!(armed(&d), Some(kept));
        let start = Instant::now();
        let never = std::future::pending::<()>();
        assert_eq!(d.within(ms(40), never).await, Err(Elapsed));
        assert!(start.elapsed() >= ms(40));
        // A deadline no `Instant` can hold is none: the future decides.
        assert_eq!(
            d.within(Duration::MAX, tokio::time::sleep(ms(5))).await,
            Ok(())
        );
    }
}
