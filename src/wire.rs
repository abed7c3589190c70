//! Byte-level helpers shared by tollgate's HTTP/1.1 server (`downstream::h1`)
//! and client (`upstream::h1`): reading a socket into a buffer that holds
//! nothing between reads, finding a header's end, and counting transfer codings.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Poll};

use bytes::{Buf, Bytes, BytesMut};
use pingora_core::protocols::Stream;
use tokio::io::{AsyncRead, ReadBuf};

/// Most bytes taken from the socket by one read.
const READ_SIZE: usize = 16 * 1024;

/// Reads what the socket has (up to `READ_SIZE`) and appends it to `buf`; 0 at
/// the end of the stream. The read lands in a stack buffer (inside the poll,
/// so not part of any future) and is copied into `buf`, which therefore
/// holds no spare capacity while a connection waits. Cancel-safe: `buf`
/// changes only in the poll that completes.
pub(crate) async fn fill(stream: &mut Stream, buf: &mut BytesMut) -> std::io::Result<usize> {
    std::future::poll_fn(|cx| {
        let mut scratch = [const { MaybeUninit::<u8>::uninit() }; READ_SIZE];
        let mut read = ReadBuf::uninit(&mut scratch);
        ready!(Pin::new(&mut *stream).poll_read(cx, &mut read))?;
        buf.extend_from_slice(read.filled());
        Poll::Ready(Ok(read.filled().len()))
    })
    .await
}

/// The first `n` bytes of `buf`, as a chunk of their own.
pub(crate) fn take(buf: &mut BytesMut, n: usize) -> Bytes {
    if n == buf.len() {
        std::mem::take(buf).freeze()
    } else {
        buf.split_to(n).freeze()
    }
}

/// Drops the first `n` bytes of `buf`, releasing an emptied buffer.
pub(crate) fn consume(buf: &mut BytesMut, n: usize) {
    if n == buf.len() {
        *buf = BytesMut::new();
    } else {
        buf.advance(n);
    }
}

/// The transfer codings a message's `Transfer-Encoding` fields name, counted
/// over all of them (RFC 9112 §6.1). tollgate reads a body with none or with a
/// lone `chunked`; any other list (`gzip, chunked`, `chunked` twice) would pass
/// coded bytes on as the content.
#[derive(Default)]
pub(crate) struct Codings {
    all: usize,
    chunked: usize,
}

impl Codings {
    /// Adds the codings of one field value.
    pub(crate) fn see(&mut self, value: &[u8]) {
        for coding in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            if !coding.is_empty() {
                self.all += 1;
                self.chunked += usize::from(coding.eq_ignore_ascii_case(b"chunked"));
            }
        }
    }

    /// None, or a lone `chunked`.
    pub(crate) fn understood(&self) -> bool {
        self.all == 0 || self.is_chunked()
    }

    /// A lone `chunked`.
    pub(crate) fn is_chunked(&self) -> bool {
        (self.all, self.chunked) == (1, 1)
    }
}

/// Whether `buf` holds the blank line that ends a header section (`\n\r\n`
/// or, as httparse also accepts, `\n\n`). One memchr pass: cheaper than two
/// substring searches, each with its own searcher to set up.
pub(crate) fn has_header_end(buf: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', buf).any(|i| {
        matches!(
            buf.get(i + 1..),
            Some([b'\n', ..]) | Some([b'\r', b'\n', ..])
        )
    })
}

#[cfg(test)]
mod tests {
    use super::has_header_end;

    #[test]
    fn header_ends() {
        for yes in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"a\n\n",
            b"\n\r\nx",
            b"x\r\n\n",
        ] {
            assert!(has_header_end(yes), "{}", yes.escape_ascii());
        }
        for no in [
            &b""[..],
            b"GET / HTTP/1.1\r\n",
            b"a\r\nb\r\n\r",
            b"\n\r",
            b"\r\n\r",
        ] {
            assert!(!has_header_end(no), "{}", no.escape_ascii());
        }
    }
}
