//! Idle upstream connections, kept by tollgate rather than by pingora's connector.
//!
//! Pingora's pool hands each released connection to a spawned task that watches
//! it while idle; taking it back means waking that task and waiting for it to let
//! go of the connection's lock, and its LRU keeps 128 connections for all peers
//! together, so more concurrent requests than that reconnect. Here an idle
//! connection is just parked: a stack per peer (the most recently used first,
//! so the oldest expire), checked for a close or stray bytes when it is taken,
//! and swept of expired and closed connections at most once a second.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pingora_core::protocols::Stream;
use tokio::io::AsyncReadExt;

/// Most idle connections kept for one peer.
pub const IDLE_PER_PEER: usize = 1024;

/// How often idle connections of every peer are checked for expiry and closes.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

struct Idle {
    stream: Stream,
    until: Instant,
}

struct Inner {
    peers: HashMap<u64, Vec<Idle>>,
    swept: Instant,
}

/// Idle connections by peer (pingora's `reuse_hash`: address, TLS, SNI).
pub struct Pool {
    inner: Mutex<Inner>,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            inner: Mutex::new(Inner {
                peers: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }
}

impl Pool {
    /// An idle connection to the peer that is still open and unexpired.
    pub fn take(&self, peer: u64) -> Option<Stream> {
        loop {
            let idle = {
                let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                inner.peers.get_mut(&peer)?.pop()?
            };
            // Taking the newest first: once one has expired, so have the rest.
            if idle.until <= Instant::now() {
                let expired = {
                    let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                    inner.peers.remove(&peer)
                };
                drop(expired);
                return None;
            }
            let mut stream = idle.stream;
            if still_idle(&mut stream) {
                return Some(stream);
            }
        }
    }

    /// Parks a connection whose exchange ended cleanly, for `idle_timeout`.
    pub fn put(&self, peer: u64, mut stream: Stream, idle_timeout: Duration) {
        if !still_idle(&mut stream) {
            return;
        }
        let now = Instant::now();
        let mut dropped = Vec::new();
        {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            let stack = inner.peers.entry(peer).or_default();
            if stack.len() >= IDLE_PER_PEER {
                dropped.push(stack.remove(0));
            }
            stack.push(Idle {
                stream,
                until: now + idle_timeout,
            });
            if now.duration_since(inner.swept) >= SWEEP_EVERY {
                inner.swept = now;
                sweep(&mut inner.peers, now, &mut dropped);
            }
        }
        // Sockets close here, outside the lock.
        drop(dropped);
    }

    /// Idle connections held, over all peers.
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.peers.values().map(Vec::len).sum()
    }
}

/// Moves expired and closed connections of every peer into `dropped`.
fn sweep(peers: &mut HashMap<u64, Vec<Idle>>, now: Instant, dropped: &mut Vec<Idle>) {
    for stack in peers.values_mut() {
        let mut kept = Vec::with_capacity(stack.len());
        for mut idle in stack.drain(..) {
            if idle.until > now && still_idle(&mut idle.stream) {
                kept.push(idle);
            } else {
                dropped.push(idle);
            }
        }
        *stack = kept;
    }
    peers.retain(|_, stack| !stack.is_empty());
}

/// True when an idle connection has nothing to read: not closed by the peer,
/// no error, and no bytes a server should never send unasked (any of which
/// would corrupt the next exchange). Reads at most one byte, without waiting.
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
        let pool = Pool::default();
        let (stream, _server) = pair().await;
        pool.put(7, stream, Duration::from_secs(60));
        assert!(pool.take(8).is_none(), "another peer's key");
        assert!(pool.take(7).is_some());
        assert!(pool.take(7).is_none());
    }

    #[tokio::test]
    async fn closed_expired_and_chatty_connections_are_never_handed_out() {
        let pool = Pool::default();
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
    async fn a_sweep_closes_what_expired_for_every_peer() {
        let pool = Pool::default();
        let (a, _sa) = pair().await;
        pool.put(1, a, Duration::from_millis(1));
        settle().await;
        pool.inner.lock().unwrap().swept -= SWEEP_EVERY;
        let (b, _sb) = pair().await;
        pool.put(2, b, Duration::from_secs(60));
        assert_eq!(
            pool.idle_count(),
            1,
            "peer 1's expired connection was swept"
        );
    }

    #[tokio::test]
    async fn a_peer_keeps_at_most_its_share_the_newest() {
        let pool = Pool::default();
        let mut servers = Vec::new();
        for _ in 0..IDLE_PER_PEER + 2 {
            let (s, server) = pair().await;
            servers.push(server);
            pool.put(5, s, Duration::from_secs(60));
        }
        assert_eq!(pool.idle_count(), IDLE_PER_PEER);
    }
}
