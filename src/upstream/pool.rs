//! Idle upstream connections, kept by tollgate rather than by pingora's connector.
//!
//! Pingora's pool hands each released connection to a spawned task that watches
//! it while idle; taking it back means waking that task and waiting for it to let
//! go of the connection's lock, and its LRU keeps 128 connections for all peers
//! together, so more concurrent requests than that reconnect. Here an idle
//! connection is just parked: a stack per peer (the most recently used on top, so
//! the oldest expire), checked for a close or stray bytes when it is parked and
//! when it is taken. A task sweeps expired and closed connections of every peer
//! once a second, outside the lock, so a quiet gateway closes them too.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use pingora_core::protocols::Stream;
use tokio::io::AsyncReadExt;

/// Most idle connections kept for one peer.
const IDLE_PER_PEER: usize = 1024;

/// Most idle connections kept over all peers (each holds a file descriptor).
const IDLE_TOTAL: usize = 4096;

/// How often idle connections of every peer are checked for expiry and closes.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

struct Idle {
    stream: Stream,
    until: Instant,
}

#[derive(Default)]
struct Inner {
    peers: HashMap<u64, VecDeque<Idle>>,
    total: usize,
}

/// Idle connections by peer (pingora's `reuse_hash`: address, TLS, SNI).
#[derive(Default)]
pub struct Pool {
    inner: Mutex<Inner>,
    sweeping: OnceLock<()>,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An idle connection to the peer that is still open and unexpired.
    pub fn take(&self, peer: u64) -> Option<Stream> {
        let now = Instant::now();
        loop {
            let mut idle = {
                let mut inner = self.lock();
                let idle = inner.peers.get_mut(&peer)?.pop_back()?;
                inner.total -= 1;
                idle
            };
            // An expired or closed connection is dropped here, outside the lock.
            if idle.until > now && still_idle(&mut idle.stream) {
                return Some(idle.stream);
            }
        }
    }

    /// Parks a connection whose exchange ended cleanly, for `idle_timeout`, and
    /// starts the sweeping task on first use (it needs a tokio runtime). It is
    /// not read here: [`Pool::take`] and the sweep check it, and a peer that
    /// closed it after its answer has rarely done so yet.
    pub fn put(self: &Arc<Self>, peer: u64, stream: Stream, idle_timeout: Duration) {
        if self.sweeping.get().is_none() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                if self.sweeping.set(()).is_ok() {
                    runtime.spawn(sweep_every(Arc::downgrade(self)));
                }
            }
        }
        let idle = Idle {
            stream,
            until: Instant::now() + idle_timeout,
        };
        let refused;
        {
            let mut inner = self.lock();
            let room = inner.total < IDLE_TOTAL;
            let stack = inner.peers.entry(peer).or_default();
            refused = if !room {
                Some(idle)
            } else if stack.len() >= IDLE_PER_PEER {
                stack.push_back(idle);
                stack.pop_front()
            } else {
                stack.push_back(idle);
                inner.total += 1;
                None
            };
        }
        // A socket closes here, outside the lock.
        drop(refused);
    }

    /// Closes expired and closed idle connections of every peer. The stacks are
    /// checked outside the lock (each check may read a socket); what stays goes
    /// back under whatever was parked meanwhile, which is newer.
    fn sweep(&self) {
        let now = Instant::now();
        let peers = std::mem::take(&mut self.lock().peers);
        let mut kept: Vec<(u64, VecDeque<Idle>)> = Vec::with_capacity(peers.len());
        for (peer, stack) in peers {
            let alive: VecDeque<Idle> = stack
                .into_iter()
                .filter_map(|mut idle| {
                    (idle.until > now && still_idle(&mut idle.stream)).then_some(idle)
                })
                .collect();
            if !alive.is_empty() {
                kept.push((peer, alive));
            }
        }
        let mut surplus = Vec::new();
        {
            let mut inner = self.lock();
            for (peer, mut older) in kept {
                let stack = inner.peers.entry(peer).or_default();
                older.append(stack);
                while older.len() > IDLE_PER_PEER {
                    surplus.extend(older.pop_front());
                }
                *stack = older;
            }
            inner.total = inner.peers.values().map(VecDeque::len).sum();
        }
        drop(surplus);
    }

    /// Idle connections held, over all peers.
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.lock().total
    }
}

/// The sweeping task: ends when the pool is gone.
async fn sweep_every(pool: Weak<Pool>) {
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        match pool.upgrade() {
            Some(pool) => pool.sweep(),
            None => return,
        }
    }
}

/// True when an idle connection has nothing to read: not closed by the peer,
/// no error, and no bytes a server should never send unasked (any of which
/// would corrupt the next exchange). Reads at most one byte, without waiting;
/// a connection for which it returns false must be dropped.
fn still_idle(stream: &mut Stream) -> bool {
    let mut byte = [0u8; 1];
    // `unconstrained`: tokio's cooperative budget must not turn a ready read
    // into "would wait".
    let read = tokio::task::unconstrained(stream.read(&mut byte));
    let mut read = std::pin::pin!(read);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    read.as_mut().poll(&mut cx).is_pending()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    /// A connected pair: the pooled (client) side and the server's side.
    async fn pair() -> (Stream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let l4 = pingora_core::protocols::l4::stream::Stream::from(client.unwrap());
        (Box::new(l4), accepted.unwrap().0)
    }

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn an_open_connection_comes_back_and_only_once() {
        let pool = Arc::new(Pool::default());
        let (stream, _server) = pair().await;
        pool.put(7, stream, Duration::from_secs(60));
        assert!(pool.take(8).is_none(), "another peer's key");
        assert!(pool.take(7).is_some());
        assert!(pool.take(7).is_none());
    }

    #[tokio::test]
    async fn closed_expired_and_chatty_connections_are_never_handed_out() {
        let pool = Arc::new(Pool::default());
        let (closed, server) = pair().await;
        pool.put(1, closed, Duration::from_secs(60));
        drop(server);
        settle().await;
        assert!(pool.take(1).is_none(), "the server closed it");

        let (chatty, mut server) = pair().await;
        pool.put(2, chatty, Duration::from_secs(60));
        server.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        settle().await;
        assert!(pool.take(2).is_none(), "unasked bytes");

        let (old, _server) = pair().await;
        pool.put(3, old, Duration::from_millis(1));
        settle().await;
        assert!(pool.take(3).is_none(), "expired");
        assert_eq!(pool.idle_count(), 0);
    }

    #[tokio::test]
    async fn a_sweep_closes_what_expired_for_every_peer_and_keeps_the_rest() {
        let pool = Arc::new(Pool::default());
        let (a, _sa) = pair().await;
        pool.put(1, a, Duration::from_millis(1));
        let (b, _sb) = pair().await;
        pool.put(2, b, Duration::from_secs(60));
        settle().await;
        pool.sweep();
        assert_eq!(
            pool.idle_count(),
            1,
            "peer 1's expired connection was swept"
        );
        assert!(pool.take(2).is_some(), "peer 2's connection was kept");
    }

    #[tokio::test]
    async fn a_quiet_pool_is_swept_by_its_task() {
        let pool = Arc::new(Pool::default());
        let (a, _sa) = pair().await;
        pool.put(1, a, Duration::from_millis(1));
        tokio::time::sleep(SWEEP_EVERY + Duration::from_millis(300)).await;
        assert_eq!(pool.idle_count(), 0, "nothing else touched the pool");
    }

    #[tokio::test]
    async fn a_peer_keeps_at_most_its_share_the_newest() {
        let pool = Arc::new(Pool::default());
        let mut servers = Vec::new();
        for _ in 0..IDLE_PER_PEER + 2 {
            let (s, server) = pair().await;
            servers.push(server);
            pool.put(5, s, Duration::from_secs(60));
        }
        assert_eq!(pool.idle_count(), IDLE_PER_PEER);
    }
}
