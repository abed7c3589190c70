//! The server: accept loop, per-connection serving (HTTP/1.1 and h2c), faults, routing by path suffix.

use std::convert::Infallible;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::service::service_fn;
use hyper::{Method, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};

use crate::anthropic::Anthropic;
use crate::body::ConnCtl;
use crate::openai::OpenAi;
use crate::record::{self, Recorded};
use crate::reply::{self, Resp};
use crate::responses::Responses;
use crate::scan::{self, ReqInfo};
use crate::tpl::{Statics, Vars};
use crate::Fault;

/// The faults in force.
#[derive(Default)]
pub(crate) struct Faults {
    pub all: Option<Fault>,
    pub by_key: Vec<(String, Fault)>,
}

/// Answer settings fixed when the server starts.
pub(crate) struct Config {
    pub chunks: usize,
    pub delay: Duration,
    pub chunk_text: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub record: bool,
}

/// State shared by the accept loop, every connection and the [`crate::MockHandle`].
pub(crate) struct Shared {
    chunks: usize,
    delay: Duration,
    record: bool,
    openai: OpenAi,
    responses: Responses,
    anthropic: Anthropic,
    faults: RwLock<Faults>,
    /// Lets the common no-fault path skip the lock.
    has_faults: AtomicBool,
    pub log: Mutex<Vec<Recorded>>,
    pub requests: AtomicUsize,
    pub connections: AtomicUsize,
    next_id: AtomicU64,
}

impl Shared {
    pub(crate) fn new(cfg: Config, faults: Faults) -> Self {
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let full_text = cfg.chunk_text.repeat(cfg.chunks);
        let st = Statics {
            created,
            chunk_text: &cfg.chunk_text,
            full_text: &full_text,
            prompt_tokens: cfg.prompt_tokens,
            completion_tokens: cfg.completion_tokens,
        };
        let has = faults.all.is_some() || !faults.by_key.is_empty();
        Shared {
            chunks: cfg.chunks,
            delay: cfg.delay,
            record: cfg.record,
            openai: OpenAi::new(&st),
            responses: Responses::new(&st),
            anthropic: Anthropic::new(&st),
            faults: RwLock::new(faults),
            has_faults: AtomicBool::new(has),
            log: Mutex::new(Vec::new()),
            requests: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
        }
    }

    /// Changes the faults in force.
    pub(crate) fn update_faults(&self, f: impl FnOnce(&mut Faults)) {
        let mut faults = self.faults.write().unwrap_or_else(|e| e.into_inner());
        f(&mut faults);
        let has = faults.all.is_some() || !faults.by_key.is_empty();
        self.has_faults.store(has, Relaxed);
    }

    /// The fault for this request: its credential's, else the global one.
    fn fault_for(&self, headers: &hyper::HeaderMap) -> Option<Fault> {
        if !self.has_faults.load(Relaxed) {
            return None;
        }
        let faults = self.faults.read().unwrap_or_else(|e| e.into_inner());
        if !faults.by_key.is_empty() {
            if let Some(cred) = record::credential(headers) {
                if let Some((_, f)) = faults.by_key.iter().find(|(k, _)| k == cred) {
                    return Some(f.clone());
                }
            }
        }
        faults.all.clone()
    }

    /// The normal answer to a request.
    fn route(&self, parts: &Parts, body: &Bytes) -> Resp {
        let full_path = parts.uri.path();
        let path = full_path.strip_suffix('/').unwrap_or(full_path);
        let post = parts.method == Method::POST;
        let info = if post {
            scan::inspect(body)
        } else {
            ReqInfo::default()
        };
        let v = Vars {
            model: info.model.unwrap_or(b"mock-model"),
            id: self.next_id.fetch_add(1, Relaxed),
            seq: 0,
        };
        if let Some(code) = parts
            .headers
            .get("x-mock-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u16>().ok())
        {
            let msg = format!("mock-provider: status {code} requested by x-mock-status");
            return reply::error(code, path, &msg);
        }
        let (chunks, delay) = (self.chunks, self.delay);
        if post {
            if path.ends_with("/chat/completions") {
                return self.openai.chat(&info, &v, chunks, delay);
            } else if path.ends_with("/completions") {
                return self.openai.completion(&info, &v, chunks, delay);
            } else if path.ends_with("/embeddings") {
                return self.openai.embeddings(&info, &v);
            } else if path.ends_with("/responses") {
                return self.responses.respond(&info, &v, chunks, delay);
            } else if path.ends_with("/messages") {
                return self.anthropic.messages(&info, &v, chunks, delay);
            } else if path.ends_with("/messages/count_tokens") {
                return self.anthropic.count_tokens(&v);
            }
        } else if parts.method == Method::GET && path.ends_with("/models") {
            return self
                .openai
                .models(parts.headers.contains_key("anthropic-version"));
        }
        let msg = format!("Invalid URL ({} {})", parts.method, full_path);
        reply::error(404, "", &msg)
    }
}

/// Waits forever (the connection is closed under the caller, or the client gives up).
async fn never() -> ! {
    let never: Infallible = std::future::pending().await;
    match never {}
}

async fn handle(
    req: Request<Incoming>,
    sh: Arc<Shared>,
    ctl: Arc<ConnCtl>,
) -> Result<Resp, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(reply::error(
                400,
                "",
                "mock-provider: could not read the request body",
            ))
        }
    };
    sh.requests.fetch_add(1, Relaxed);
    if sh.record {
        let rec = Recorded::new(&parts, body.clone());
        sh.log.lock().unwrap_or_else(|e| e.into_inner()).push(rec);
    }
    let fault = sh.fault_for(&parts.headers);
    match &fault {
        None => {}
        Some(Fault::Status {
            code,
            retry_after,
            body,
        }) => return Ok(reply::status(*code, retry_after.as_deref(), body)),
        Some(Fault::Hang) => never().await,
        Some(Fault::Drop) => {
            ctl.kill(Duration::ZERO);
            never().await
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(*d).await,
        Some(Fault::Endless {
            content_type,
            chunk,
        }) => return Ok(reply::endless(content_type, chunk)),
        Some(Fault::DropMidStream { .. } | Fault::HugeHeaders { .. } | Fault::Drip(_)) => {}
    }
    let resp = sh.route(&parts, &body);
    Ok(match fault {
        Some(Fault::DropMidStream { after_chunks }) => reply::cut(resp, after_chunks, ctl),
        Some(Fault::HugeHeaders { count, size }) => reply::padded(resp, count, size),
        Some(Fault::Drip(pause)) => reply::drip(resp, pause),
        _ => resp,
    })
}

/// Accept errors that only concern one connection or are momentary.
fn transient(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock | TimedOut | OutOfMemory
    ) || matches!(e.raw_os_error(), Some(23 | 24 | 105)) // ENFILE, EMFILE, ENOBUFS (Linux)
}

/// Serves `listener` until a non-transient accept error.
pub(crate) async fn accept_loop(listener: TcpListener, sh: Arc<Shared>) -> io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http2().max_concurrent_streams(1024);
    let builder = Arc::new(builder);
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) if transient(&e) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        sh.connections.fetch_add(1, Relaxed);
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_conn(stream, sh.clone(), builder.clone()));
    }
}

async fn serve_conn(
    stream: TcpStream,
    sh: Arc<Shared>,
    builder: Arc<auto::Builder<TokioExecutor>>,
) {
    let ctl = Arc::new(ConnCtl::default());
    let svc_ctl = ctl.clone();
    let svc = service_fn(move |req| handle(req, sh.clone(), svc_ctl.clone()));
    let mut conn = std::pin::pin!(builder.serve_connection(TokioIo::new(stream), svc));
    tokio::select! {
        biased;
        _ = conn.as_mut() => {}
        grace = ctl.killed() => {
            // give frames already handed to the connection a moment to reach the socket
            if !grace.is_zero() {
                let _ = tokio::time::timeout(grace, conn.as_mut()).await;
            }
        }
    }
}
