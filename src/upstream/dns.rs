//! `Dns`: a provider host's addresses, resolved asynchronously and cached, so a
//! name that does not resolve is an error answer, never a panic.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

/// How long resolved addresses are used before a background refresh.
const TTL: Duration = Duration::from_secs(60);
/// How long a request waits for a first resolution.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Resolved {
    addrs: Vec<SocketAddr>,
    at: Instant,
}

#[derive(Debug)]
pub struct Dns {
    host: Box<str>,
    port: u16,
    fixed: Option<SocketAddr>,
    cache: Arc<ArcSwapOption<Resolved>>,
    next: AtomicUsize,
}

impl Dns {
    pub fn new(host: &str, port: u16) -> Dns {
        Dns {
            fixed: host
                .parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, port)),
            host: host.into(),
            port,
            cache: Arc::new(ArcSwapOption::empty()),
            next: AtomicUsize::new(0),
        }
    }

    /// An address for the next attempt, round robin over the resolved set.
    pub async fn addr(&self) -> Result<SocketAddr, String> {
        if let Some(addr) = self.fixed {
            return Ok(addr);
        }
        let cached = self.cache.load_full();
        let resolved = match cached {
            Some(r) => {
                if r.at.elapsed() > TTL {
                    self.refresh_in_background();
                }
                r
            }
            None => {
                let r = tokio::time::timeout(RESOLVE_TIMEOUT, resolve(&self.host, self.port))
                    .await
                    .map_err(|_| format!("resolving {} timed out", self.host))??;
                let r = Arc::new(r);
                self.cache.store(Some(r.clone()));
                r
            }
        };
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        resolved
            .addrs
            .get(i % resolved.addrs.len().max(1))
            .copied()
            .ok_or_else(|| format!("{} has no address", self.host))
    }

    fn refresh_in_background(&self) {
        let (host, port, cache) = (self.host.to_string(), self.port, self.cache.clone());
        // Mark the entry fresh first so that concurrent requests spawn one refresh only.
        if let Some(old) = cache.load_full() {
            cache.store(Some(Arc::new(Resolved {
                addrs: old.addrs.clone(),
                at: Instant::now(),
            })));
        }
        tokio::spawn(async move {
            match resolve(&host, port).await {
                Ok(r) => cache.store(Some(Arc::new(r))),
                Err(e) => log::warn!("keeping old addresses: {e}"),
            }
        });
    }
}

async fn resolve(host: &str, port: u16) -> Result<Resolved, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("{host} resolved to no address"));
    }
    Ok(Resolved {
        addrs,
        at: Instant::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ip_literals_need_no_lookup() {
        let dns = Dns::new("127.0.0.1", 9);
        assert_eq!(dns.addr().await.unwrap(), "127.0.0.1:9".parse().unwrap());
    }

    #[tokio::test]
    async fn unresolvable_names_are_errors() {
        let dns = Dns::new("no-such-host.invalid", 443);
        assert!(dns.addr().await.is_err());
    }

    #[tokio::test]
    async fn localhost_resolves() {
        let dns = Dns::new("localhost", 80);
        assert_eq!(dns.addr().await.unwrap().port(), 80);
    }
}
