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

#[cfg(test)]
mod tests {
    #[test]
    fn digits() {
        for n in [0, 7, 10, 1234567890, u64::MAX] {
            assert_eq!(super::decimal(n).as_slice(), n.to_string().as_bytes());
        }
    }
}
