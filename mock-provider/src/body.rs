//! The response body: prebuilt frames, one HTTP chunk each, with optional pacing and an abrupt cut.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::Sleep;

/// Per-connection control: lets a request's handler (or its body) close the whole connection.
#[derive(Default)]
pub(crate) struct ConnCtl {
    kill: Notify,
    grace_ms: AtomicU64,
}

impl ConnCtl {
    /// Asks the connection task to drop the connection after `grace` (time for already
    /// queued bytes, e.g. HTTP/2 frames written by another task, to reach the socket).
    pub(crate) fn kill(&self, grace: Duration) {
        self.grace_ms
            .store(grace.as_millis() as u64, Ordering::Relaxed);
        self.kill.notify_one();
    }

    /// Resolves once [`ConnCtl::kill`] was called; returns the grace period.
    pub(crate) async fn killed(&self) -> Duration {
        self.kill.notified().await;
        Duration::from_millis(self.grace_ms.load(Ordering::Relaxed))
    }
}

/// How a body ends once its frames are sent.
pub(crate) enum End {
    /// Normally (terminating chunk / END_STREAM).
    Finish,
    /// Never: the connection is closed abruptly instead.
    Kill(std::sync::Arc<ConnCtl>),
    /// The cut was requested; the body stays pending until the connection is dropped.
    Dead,
}

/// How long the connection is kept after a mid-stream cut so the sent frames get out.
pub(crate) const CUT_GRACE: Duration = Duration::from_millis(20);

/// A body of prebuilt frames. Frames marked `paced` wait the chunk delay first.
pub(crate) struct MockBody {
    frames: VecDeque<(bool, Bytes)>,
    delay: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    slept: bool,
    end: End,
    exact_len: Option<u64>,
    /// Sent again and again once the frames run out (the body never ends).
    repeat: Option<Bytes>,
}

impl MockBody {
    /// A complete body sent in one piece (gets a Content-Length).
    pub(crate) fn full(b: Bytes) -> Self {
        let len = b.len() as u64;
        let mut frames = VecDeque::with_capacity(1);
        if !b.is_empty() {
            frames.push_back((false, b));
        }
        MockBody {
            frames,
            delay: Duration::ZERO,
            sleep: None,
            slept: false,
            end: End::Finish,
            exact_len: Some(len),
            repeat: None,
        }
    }

    /// A streamed body (HTTP/1.1 chunked): each frame becomes its own chunk.
    pub(crate) fn stream(frames: VecDeque<(bool, Bytes)>, delay: Duration) -> Self {
        MockBody {
            frames,
            delay,
            sleep: None,
            slept: false,
            end: End::Finish,
            exact_len: None,
            repeat: None,
        }
    }

    /// A chunked body that sends `chunk` forever.
    pub(crate) fn endless(chunk: Bytes) -> Self {
        let mut body = Self::stream(VecDeque::new(), Duration::ZERO);
        body.repeat = Some(chunk);
        body
    }

    /// The same bytes, one per frame, each after `pause` (a complete body keeps its length).
    pub(crate) fn drip(mut self, pause: Duration) -> Self {
        let bytes: Vec<u8> = self
            .frames
            .drain(..)
            .flat_map(|(_, b)| b.to_vec())
            .collect();
        self.frames = bytes
            .into_iter()
            .map(|b| (true, Bytes::copy_from_slice(&[b])))
            .collect();
        self.delay = pause;
        self
    }

    /// Truncates the body to its first `n` frames and makes it end with a connection cut.
    /// A single-frame (JSON) body is cut to half its bytes instead.
    pub(crate) fn cut(mut self, n: usize, ctl: std::sync::Arc<ConnCtl>) -> Self {
        if self.exact_len.is_some() {
            if let Some((_, b)) = self.frames.pop_front() {
                self.frames.push_back((false, b.slice(..b.len() / 2)));
            }
            self.exact_len = None; // the caller sets an explicit Content-Length header
        } else {
            self.frames.truncate(n);
        }
        self.end = End::Kill(ctl);
        self
    }

    /// Total length of a complete body, if it is sent in one piece.
    pub(crate) fn exact_len(&self) -> Option<u64> {
        self.exact_len
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        loop {
            if let Some(sleep) = this.sleep.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.sleep = None;
                this.slept = true;
            }
            match this.frames.pop_front() {
                Some((true, data)) if !this.slept && !this.delay.is_zero() => {
                    this.frames.push_front((true, data));
                    this.sleep = Some(Box::pin(tokio::time::sleep(this.delay)));
                }
                Some((_, data)) => {
                    this.slept = false;
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                None if this.repeat.is_some() => {
                    return Poll::Ready(this.repeat.clone().map(|b| Ok(Frame::data(b))));
                }
                None => {
                    return match std::mem::replace(&mut this.end, End::Dead) {
                        End::Finish => {
                            this.end = End::Finish;
                            Poll::Ready(None)
                        }
                        End::Kill(ctl) => {
                            ctl.kill(CUT_GRACE);
                            Poll::Pending // forever: the connection is dropped under us
                        }
                        End::Dead => Poll::Pending,
                    };
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.repeat.is_none()
            && self.frames.is_empty()
            && self.sleep.is_none()
            && matches!(self.end, End::Finish)
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact_len {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
