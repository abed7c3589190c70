//! Decimal digits of an integer without the formatting machinery, for the
//! numbers written into headers on every request.

/// The decimal digits of a number, on the stack.
pub(crate) struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.digits[self.start..]
    }
}

/// The decimal digits of `n`.
pub(crate) fn decimal(mut n: u64) -> Decimal {
    let mut d = Decimal {
        digits: [0; 20],
        start: 20,
    };
    loop {
        d.start -= 1;
        d.digits[d.start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return d;
        }
    }
}

/// The number a field value of decimal digits gives (`Content-Length`): at
/// most 19 digits and nothing else, so it cannot overflow.
pub(crate) fn parse(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn digits() {
        for n in [0, 7, 10, 1234567890, u64::MAX] {
            assert_eq!(super::decimal(n).as_slice(), n.to_string().as_bytes());
            if n < u64::MAX {
                assert_eq!(super::parse(n.to_string().as_bytes()), Some(n));
            }
        }
        for bad in [&b""[..], b"+1", b"1 ", b"0x1", b"12345678901234567890"] {
            assert_eq!(super::parse(bad), None);
        }
    }
}
