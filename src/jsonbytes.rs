//! Byte-level helpers shared by the JSON readers that skip what they do not need
//! (`request::vision`, `usage::chunk`).

/// Offset of the first `"` or `\` in `s`.
///
/// Runs between escapes are often short, so the first 32 bytes are searched a word at a
/// time; a longer run is left to memchr2.
pub(crate) fn find_quote_or_backslash(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let head = s.get(..32).unwrap_or(s);
    let mut words = head.chunks_exact(8);
    let mut offset = 0;
    for word in &mut words {
        let v = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        let quote = v ^ (ONES * u64::from(b'"'));
        let backslash = v ^ (ONES * u64::from(b'\\'));
        // Per byte: high bit set where the byte is zero. Borrows can only flag bytes
        // above a genuine hit, so the lowest flag is exact.
        let hits = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash))
            & HIGH;
        if hits != 0 {
            return Some(offset + (hits.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let special = |&b: &u8| b == b'"' || b == b'\\';
    if let Some(i) = words.remainder().iter().position(special) {
        return Some(offset + i);
    }
    let tail = s.get(head.len()..).unwrap_or_default();
    memchr::memchr2(b'"', b'\\', tail).map(|i| head.len() + i)
}
