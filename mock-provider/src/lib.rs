//! A mock LLM provider: a real HTTP/1.1 + h2c server speaking OpenAI and Anthropic wire formats.
//!
//! Used in-process by tollgate's integration tests ([`MockProvider::start`]) and as the
//! `mock-provider` binary by its load tests ([`MockProvider::serve`]).
//!
//! Routes are matched by path suffix, so any prefix works (`/v1/chat/completions`,
//! `/openai/v1/chat/completions`, `/v1beta/openai/chat/completions`, ...):
//!
//! | suffix | answer |
//! | --- | --- |
//! | `POST .../chat/completions` | `chat.completion` JSON, or SSE `chat.completion.chunk`s with `"stream": true` |
//! | `POST .../completions` | legacy `text_completion` JSON / SSE |
//! | `POST .../embeddings` | one `[0.1, 0.2, 0.3]` embedding per input (base64 if asked) |
//! | `POST .../responses` | Responses API JSON / SSE event sequence |
//! | `POST .../messages` | Anthropic message JSON / SSE event sequence |
//! | `POST .../messages/count_tokens` | `{"input_tokens": N}` |
//! | `GET .../models` | OpenAI model list (Anthropic's shape if `anthropic-version` is sent) |
//! | anything else | 404 with an OpenAI-shaped error |
//!
//! The request's `model` is echoed back. A request header `x-mock-status: CODE` makes the
//! answer an error JSON with that status (Anthropic-shaped on `.../messages`). Faults
//! ([`Fault`]) apply on top of that answer: a key's fault wins over the global one.

mod anthropic;
mod body;
mod openai;
mod record;
mod reply;
mod responses;
mod scan;
mod server;
mod tpl;

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

pub use record::Recorded;
use server::{Config, Faults, Shared};

/// Something going wrong on purpose.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this status with this body (`application/json`), plus `Retry-After` if set.
    Status {
        code: u16,
        retry_after: Option<String>,
        body: String,
    },
    /// Read the request, never answer (the connection stays open).
    Hang,
    /// Read the request, close the connection without answering.
    Drop,
    /// Streams: send the headers and the first `after_chunks` SSE events (one HTTP chunk
    /// each), then close the connection (no terminating chunk). JSON: send the headers with
    /// the full Content-Length and half the body, then close.
    DropMidStream { after_chunks: usize },
    /// Wait this long before answering normally.
    Delay(Duration),
    /// Answer normally, plus `count` extra headers (`x-mock-pad-0`, …) of `size` bytes each.
    HugeHeaders { count: usize, size: usize },
    /// Answer 200 with this `Content-Type` and a chunked body that repeats `chunk`
    /// forever (one HTTP chunk each, as fast as the reader takes them).
    Endless { content_type: String, chunk: String },
    /// Answer normally, but one byte per HTTP chunk with this pause before each.
    Drip(Duration),
}

/// A mock provider being configured; [`MockProvider::start`] or [`MockProvider::serve`] runs it.
#[derive(Clone, Debug)]
pub struct MockProvider {
    chunks: usize,
    chunk_delay: Duration,
    chunk_size: Option<usize>,
    prompt_tokens: u64,
    completion_tokens: u64,
    record: bool,
    fault: Option<Fault>,
    key_faults: Vec<(String, Fault)>,
}

impl Default for MockProvider {
    fn default() -> Self {
        Self::new()
    }
}

/// The text of each content chunk by default.
const DEFAULT_CHUNK: &str = "hello ";

impl MockProvider {
    /// 3 chunks of `"hello "`, no delay, usage 11/7, recording on, no faults.
    pub fn new() -> Self {
        MockProvider {
            chunks: 3,
            chunk_delay: Duration::ZERO,
            chunk_size: None,
            prompt_tokens: 11,
            completion_tokens: 7,
            record: true,
            fault: None,
            key_faults: Vec::new(),
        }
    }

    /// SSE content chunks per stream (the JSON answer's text is the same chunks joined).
    pub fn chunks(mut self, n: usize) -> Self {
        self.chunks = n;
        self
    }

    /// Delay before each SSE content chunk.
    pub fn chunk_delay(mut self, d: Duration) -> Self {
        self.chunk_delay = d;
        self
    }

    /// Bytes of content text per chunk (ASCII, `"hello hello ..."` cut to size).
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = Some(bytes);
        self
    }

    /// Token usage reported (`prompt_tokens`/`input_tokens`, `completion_tokens`/`output_tokens`).
    pub fn usage(mut self, prompt_tokens: u64, completion_tokens: u64) -> Self {
        self.prompt_tokens = prompt_tokens;
        self.completion_tokens = completion_tokens;
        self
    }

    /// Keep a log of requests (on by default; load tests turn it off).
    pub fn record(mut self, on: bool) -> Self {
        self.record = on;
        self
    }

    /// A fault for every request (unless the request's key has its own).
    pub fn fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// A fault for requests whose credential (`Authorization: Bearer KEY` or `x-api-key: KEY`) is `key`.
    pub fn fault_for_key(mut self, key: &str, fault: Fault) -> Self {
        self.key_faults.retain(|(k, _)| k != key);
        self.key_faults.push((key.to_owned(), fault));
        self
    }

    fn into_shared(self) -> Arc<Shared> {
        let chunk_text = match self.chunk_size {
            None => DEFAULT_CHUNK.to_owned(),
            Some(n) => DEFAULT_CHUNK
                .bytes()
                .cycle()
                .take(n)
                .map(char::from)
                .collect(),
        };
        let cfg = Config {
            chunks: self.chunks,
            delay: self.chunk_delay,
            chunk_text,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            record: self.record,
        };
        let faults = Faults {
            all: self.fault,
            by_key: self.key_faults,
        };
        Arc::new(Shared::new(cfg, faults))
    }

    /// Binds `127.0.0.1:0` and serves on a thread of its own (with its own tokio runtime).
    /// Returns once the socket is listening. Panics if it cannot bind.
    pub fn start(self) -> MockHandle {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("mock-provider: bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("mock-provider: set_nonblocking");
        let addr = listener.local_addr().expect("mock-provider: local_addr");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("mock-provider: tokio runtime");
        let listener = {
            let _ctx = rt.enter();
            tokio::net::TcpListener::from_std(listener).expect("mock-provider: listener")
        };
        let shared = self.into_shared();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("mock-provider-{}", addr.port()))
            .spawn(move || {
                rt.block_on(async move {
                    tokio::select! {
                        r = server::accept_loop(listener, sh) => {
                            if let Err(e) = r {
                                eprintln!("mock-provider: accept failed: {e}");
                            }
                        }
                        _ = stopped => {}
                    }
                });
                // dropping `rt` here drops every connection task
            })
            .expect("mock-provider: spawn thread");
        MockHandle {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Serves `listener` on the caller's runtime until a fatal accept error.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        server::accept_loop(listener, self.into_shared()).await
    }
}

/// A running mock started by [`MockProvider::start`]. Dropping it stops the server (closing
/// its connections) and joins its thread.
pub struct MockHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `"http://127.0.0.1:PORT"`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Recorded requests in arrival order (empty when recording is off).
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Requests received since start (or [`MockHandle::clear`]), recorded or not.
    pub fn request_count(&self) -> usize {
        self.shared.requests.load(Relaxed)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Relaxed)
    }

    /// Forgets the recorded requests and resets [`MockHandle::request_count`].
    pub fn clear(&self) {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.shared.requests.store(0, Relaxed);
    }

    /// Replaces the global fault while running (`None` removes it).
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.shared.update_faults(|f| f.all = fault);
    }

    /// Sets (`Some`) or removes (`None`) the fault for one key while running.
    pub fn set_fault_for_key(&self, key: &str, fault: Option<Fault>) {
        self.shared.update_faults(|f| {
            f.by_key.retain(|(k, _)| k != key);
            if let Some(fault) = fault {
                f.by_key.push((key.to_owned(), fault));
            }
        });
    }
}

impl Drop for MockHandle {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
