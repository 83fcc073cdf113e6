//! A size cap on a streamed body: reading past `limit` bytes fails (and says so), so a
//! provider cannot make the parser read an unbounded document.

use std::io::{self, BufRead, Read};

/// A [`BufRead`] that yields at most `limit` bytes of `inner`, then fails if more follow.
#[derive(Debug)]
pub struct Capped<R> {
    inner: R,
    left: usize,
    exceeded: bool,
}

impl<R> Capped<R> {
    pub fn new(inner: R, limit: usize) -> Self {
        Self {
            inner,
            left: limit,
            exceeded: false,
        }
    }

    /// Whether the body went past the limit (the error the reader saw was the cap).
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }
}

impl<R: BufRead> BufRead for Capped<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let left = self.left;
        let buf = self.inner.fill_buf()?;
        if buf.is_empty() {
            return Ok(buf);
        }
        if left == 0 {
            self.exceeded = true;
            return Err(io::Error::other("document over the size limit"));
        }
        let n = buf.len().min(left);
        Ok(&buf[..n])
    }

    fn consume(&mut self, amount: usize) {
        self.left -= amount;
        self.inner.consume(amount);
    }
}

impl<R: BufRead> Read for Capped<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_limit_and_fails_past_it() {
        let mut exact = Capped::new(&b"abcd"[..], 4);
        let mut out = Vec::new();
        exact.read_to_end(&mut out).expect("within the limit");
        assert_eq!((out.as_slice(), exact.exceeded()), (&b"abcd"[..], false));

        let mut over = Capped::new(&b"abcde"[..], 4);
        let mut out = Vec::new();
        assert!(over.read_to_end(&mut out).is_err());
        assert!(over.exceeded());
        assert_eq!(out, b"abcd");
    }
}
