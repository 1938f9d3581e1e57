//! Randomness with one source. Production uses the operating system ([`OsRandom`]); tests
//! that need repeatable values pass their own [`RandomSource`].

use crate::CoreError;

/// A source of random bytes.
pub trait RandomSource: Send + Sync + std::fmt::Debug {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]) -> Result<(), CoreError>;

    /// `n` random bytes.
    fn bytes(&self, n: usize) -> Result<Vec<u8>, CoreError> {
        let mut v = vec![0u8; n];
        self.fill(&mut v)?;
        Ok(v)
    }

    /// `n` random bytes as `2n` lower-case hex digits (ids, nonces).
    fn hex(&self, n: usize) -> Result<String, CoreError> {
        Ok(self.bytes(n)?.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// `n` random decimal digits, uniformly distributed (rejection sampling).
    fn digits(&self, n: usize) -> Result<String, CoreError> {
        self.pick(b"0123456789", n)
    }

    /// `n` characters drawn uniformly from `alphabet` (at most 256 symbols).
    fn pick(&self, alphabet: &[u8], n: usize) -> Result<String, CoreError> {
        let len = alphabet.len();
        if len == 0 || len > 256 {
            return Err(CoreError::InvalidKey("alphabet size"));
        }
        // Largest multiple of len that fits in a byte: bytes above it are rejected.
        let limit = 256 - (256 % len);
        let mut out = String::with_capacity(n);
        let mut buf = [0u8; 32];
        while out.len() < n {
            self.fill(&mut buf)?;
            for b in buf {
                let b = usize::from(b);
                if b < limit {
                    if let Some(c) = alphabet.get(b % len) {
                        out.push(char::from(*c));
                    }
                    if out.len() == n {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The operating system's cryptographic random number generator.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), CoreError> {
        getrandom::fill(buf).map_err(|_| CoreError::Random)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_have_requested_length_and_alphabet() {
        let d = OsRandom.digits(20).unwrap();
        assert_eq!(d.len(), 20);
        assert!(d.bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(d, OsRandom.digits(20).unwrap());
    }

    #[test]
    fn alphabet_is_uniform_enough() {
        let s = OsRandom.pick(b"ab", 4000).unwrap();
        let a = s.bytes().filter(|&b| b == b'a').count();
        assert!((1600..2400).contains(&a), "a={a}");
    }
}
