//! The ledger file's on-disk format: a versioned header, then length-prefixed, CRC-32-checked records.
//!
//! ```text
//! file    = header record*
//! header  = "TGLEDGER" (8 bytes) ‖ version u32 LE (= 1)                      12 bytes
//! record  = len u32 LE ‖ crc u32 LE ‖ payload (len bytes)
//! payload = op u8 ‖ amount u64 LE ‖ key (UTF-8, the rest of the payload, 1..=MAX_KEY bytes)
//! op      = 1 Add (spent += amount) | 2 Set (spent = amount, written by compaction)
//! crc     = CRC-32/ISO-HDLC (the zlib/PNG polynomial) of the 4 len bytes followed by the payload
//! ```
//!
//! Replay stops at the first record that is short, oversized, fails its checksum or does not parse:
//! everything before it counts, everything from it on is reported as a torn tail.

/// The 8 magic bytes that open every ledger file.
pub(super) const MAGIC: &[u8; 8] = b"TGLEDGER";
/// The format version this code writes and reads.
pub(super) const VERSION: u32 = 1;
/// Bytes in the file header.
pub(super) const HEADER_LEN: usize = 12;
/// Longest key (access-key name) a record may carry, in bytes.
pub(super) const MAX_KEY: usize = 1024;
/// Bytes of `len` and `crc` before each payload.
const FRAME: usize = 8;
/// Bytes of a payload before its key.
const FIXED: usize = 9;

/// What a record does to a key's spent total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// Adds the amount (one settled or recorded spending).
    Add,
    /// Sets the total (a compacted snapshot).
    Set,
}

/// One decoded record, borrowing its key from the file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Record<'a> {
    /// What the record does.
    pub op: Op,
    /// Access-key name.
    pub key: &'a str,
    /// Micro-USD.
    pub amount: u64,
}

/// The 12-byte header of a version-1 file.
pub(super) fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// What the start of a file says about it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum HeaderCheck {
    /// A complete header of this version: records start at `HEADER_LEN`.
    Valid,
    /// Empty, or a torn prefix of a header (a crash while creating the file): start afresh.
    Fresh,
    /// A ledger file of another format version.
    OtherVersion(u32),
    /// Not a ledger file.
    Foreign,
}

/// Checks the header at the start of `buf`.
pub(super) fn check_header(buf: &[u8]) -> HeaderCheck {
    if buf.len() < HEADER_LEN {
        return if header().starts_with(buf) {
            HeaderCheck::Fresh
        } else {
            HeaderCheck::Foreign
        };
    }
    if &buf[..8] != MAGIC {
        return HeaderCheck::Foreign;
    }
    match u32_at(buf, 8) {
        Some(VERSION) => HeaderCheck::Valid,
        Some(v) => HeaderCheck::OtherVersion(v),
        None => HeaderCheck::Foreign,
    }
}

/// Appends one encoded record to `out`. Keys longer than `MAX_KEY` are cut at a character boundary
/// (access-key names are far shorter; this only keeps a record decodable).
pub(super) fn encode(out: &mut Vec<u8>, op: Op, key: &str, amount: u64) {
    let key = truncate(key, MAX_KEY);
    let len = FIXED + key.len();
    let start = out.len();
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(match op {
        Op::Add => 1,
        Op::Set => 2,
    });
    out.extend_from_slice(&amount.to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    let mut crc = Crc32::new();
    crc.update(&out[start..start + 4]);
    crc.update(&out[start + FRAME..]);
    out[start + 4..start + FRAME].copy_from_slice(&crc.finish().to_le_bytes());
}

/// Bytes `encode` uses for a record of `key` (after any cut to `MAX_KEY`).
pub(super) fn encoded_len(key: &str) -> usize {
    FRAME + FIXED + truncate(key, MAX_KEY).len()
}

/// Decodes the record at the start of `buf`: the record and its encoded length, or `None` when
/// the bytes there are not a whole, valid record.
pub(super) fn decode(buf: &[u8]) -> Option<(Record<'_>, usize)> {
    let len = u32_at(buf, 0)? as usize;
    if !(FIXED + 1..=FIXED + MAX_KEY).contains(&len) || buf.len() < FRAME + len {
        return None;
    }
    let payload = &buf[FRAME..FRAME + len];
    let mut crc = Crc32::new();
    crc.update(&buf[..4]);
    crc.update(payload);
    if crc.finish() != u32_at(buf, 4)? {
        return None;
    }
    let op = match payload[0] {
        1 => Op::Add,
        2 => Op::Set,
        _ => return None,
    };
    let amount = u64::from_le_bytes(payload[1..FIXED].try_into().ok()?);
    let key = std::str::from_utf8(&payload[FIXED..]).ok()?;
    Some((Record { op, key, amount }, FRAME + len))
}

/// Decodes every record of `body` (the bytes after the header) in order, calling `f` on each.
/// Returns how many bytes were valid; any bytes after that are a torn or corrupt tail.
pub(super) fn replay(body: &[u8], mut f: impl FnMut(Record<'_>)) -> usize {
    let mut at = 0;
    while at < body.len() {
        match decode(&body[at..]) {
            Some((record, used)) => {
                f(record);
                at += used;
            }
            None => break,
        }
    }
    at
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// CRC-32/ISO-HDLC (reflected polynomial 0xEDB88320), table-driven.
pub(super) struct Crc32(u32);

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

impl Crc32 {
    /// A fresh checksum.
    pub(super) fn new() -> Self {
        Crc32(0xFFFF_FFFF)
    }

    /// Feeds `bytes`.
    pub(super) fn update(&mut self, bytes: &[u8]) {
        let mut c = self.0;
        for &b in bytes {
            c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }

    /// The checksum of everything fed.
    pub(super) fn finish(&self) -> u32 {
        self.0 ^ 0xFFFF_FFFF
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc(bytes: &[u8]) -> u32 {
        let mut c = Crc32::new();
        c.update(bytes);
        c.finish()
    }

    #[test]
    fn crc32_matches_the_standard_check_values() {
        assert_eq!(crc(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc(b""), 0);
        assert_eq!(
            crc(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn records_round_trip() {
        let mut buf = Vec::new();
        encode(&mut buf, Op::Add, "team-a", 42);
        encode(&mut buf, Op::Set, "ключ", u64::MAX);
        assert_eq!(buf.len(), encoded_len("team-a") + encoded_len("ключ"));
        let mut seen = Vec::new();
        let used = replay(&buf, |r| seen.push((r.op, r.key.to_string(), r.amount)));
        assert_eq!(used, buf.len());
        assert_eq!(
            seen,
            vec![
                (Op::Add, "team-a".to_string(), 42),
                (Op::Set, "ключ".to_string(), u64::MAX)
            ]
        );
    }

    #[test]
    fn every_truncation_and_every_bit_flip_is_rejected() {
        let mut buf = Vec::new();
        encode(&mut buf, Op::Add, "k", 7);
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut]).is_none(), "cut at {cut}");
        }
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[byte] ^= 1 << bit;
                assert!(decode(&bad).is_none(), "flip {byte}.{bit}");
            }
        }
    }

    #[test]
    fn replay_stops_at_a_torn_tail() {
        let mut buf = Vec::new();
        encode(&mut buf, Op::Add, "a", 1);
        encode(&mut buf, Op::Add, "b", 2);
        let good = buf.len();
        encode(&mut buf, Op::Add, "c", 3);
        buf.truncate(buf.len() - 3);
        let mut n = 0;
        assert_eq!(replay(&buf, |_| n += 1), good);
        assert_eq!(n, 2);
    }

    #[test]
    fn headers_are_classified() {
        let h = header();
        assert_eq!(check_header(&h), HeaderCheck::Valid);
        assert_eq!(check_header(&h[..5]), HeaderCheck::Fresh);
        assert_eq!(check_header(b""), HeaderCheck::Fresh);
        assert_eq!(check_header(b"hello world!!"), HeaderCheck::Foreign);
        let mut v2 = h;
        v2[8] = 2;
        assert_eq!(check_header(&v2), HeaderCheck::OtherVersion(2));
    }

    #[test]
    fn long_keys_are_cut_on_a_char_boundary() {
        let key = "é".repeat(MAX_KEY);
        let mut buf = Vec::new();
        encode(&mut buf, Op::Add, &key, 1);
        let (r, _) = decode(&buf).unwrap();
        assert!(r.key.len() <= MAX_KEY);
        assert!(key.starts_with(r.key));
    }
}
