//! Byte-level helpers shared by tollgate's HTTP/1.1 server (`downstream::h1`)
//! and client (`upstream::h1`).

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
