//! HOTP, RFC 4226, with the SHA-256/SHA-512 variants privacyIDEA's `hashlib` allows.

use crate::CoreError;
use hmac::{Hmac, KeyInit, Mac};

/// The HMAC hash of a token (privacyIDEA's `hashlib`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashLib {
    /// HMAC-SHA1, the RFC 4226 default.
    #[default]
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl HashLib {
    /// Parses privacyIDEA's names (`sha1`, `sha256`, `sha512`, any case).
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sha1" => Ok(Self::Sha1),
            "sha256" => Ok(Self::Sha256),
            "sha512" => Ok(Self::Sha512),
            other => Err(CoreError::HashLib(other.to_owned())),
        }
    }

    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    /// The key length privacyIDEA generates for this hash (20/32/64 bytes).
    pub fn key_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }
}

fn mac<M: Mac + KeyInit>(key: &[u8], counter: u64) -> Result<Vec<u8>, CoreError> {
    let mut m =
        <M as KeyInit>::new_from_slice(key).map_err(|_| CoreError::InvalidKey("hmac key"))?;
    m.update(&counter.to_be_bytes());
    Ok(m.finalize().into_bytes().to_vec())
}

/// The HOTP value for `counter`, zero-padded to `digits` (6 or 8).
pub fn hotp(key: &[u8], counter: u64, digits: u32, hash: HashLib) -> Result<String, CoreError> {
    let digest = match hash {
        HashLib::Sha1 => mac::<Hmac<sha1::Sha1>>(key, counter)?,
        HashLib::Sha256 => mac::<Hmac<sha2::Sha256>>(key, counter)?,
        HashLib::Sha512 => mac::<Hmac<sha2::Sha512>>(key, counter)?,
    };
    // Dynamic truncation (RFC 4226 §5.3).
    let last = digest
        .last()
        .copied()
        .ok_or(CoreError::InvalidKey("empty digest"))?;
    let offset = usize::from(last & 0x0f);
    let window = digest
        .get(offset..offset + 4)
        .ok_or(CoreError::InvalidKey("digest too short"))?;
    let mut four = [0u8; 4];
    four.copy_from_slice(window);
    let bin = u32::from_be_bytes(four) & 0x7fff_ffff;
    let modulus = 10u64.pow(digits);
    Ok(format!(
        "{:0width$}",
        u64::from(bin) % modulus,
        width = digits as usize
    ))
}

/// Compares a submitted OTP with the expected one in constant time (for equal lengths).
pub fn otp_eq(submitted: &str, expected: &str) -> bool {
    crate::secret::ct_eq(submitted, expected)
}

/// Searches `[start, start + window)` for a counter whose HOTP equals `otp`.
pub fn find_counter(
    key: &[u8],
    otp: &str,
    start: u64,
    window: u64,
    digits: u32,
    hash: HashLib,
) -> Result<Option<u64>, CoreError> {
    if otp.len() != digits as usize {
        return Ok(None);
    }
    let mut found = None;
    for c in start..start.saturating_add(window) {
        // No early exit: the search costs the same whether or not (and where) it matches.
        if otp_eq(otp, &hotp(key, c, digits, hash)?) && found.is_none() {
            found = Some(c);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc4226_appendix_d() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (c, e) in expected.iter().enumerate() {
            assert_eq!(
                hotp(KEY, c as u64, 6, HashLib::Sha1).unwrap(),
                *e,
                "counter {c}"
            );
        }
    }

    #[test]
    fn privacyidea_vectors() {
        // Key 3132…3930 is the ASCII of "12345678901234567890".
        assert_eq!(hotp(KEY, 1, 6, HashLib::Sha1).unwrap(), "287082");
        assert_eq!(hotp(KEY, 3, 6, HashLib::Sha1).unwrap(), "969429");
        assert_eq!(hotp(KEY, 0, 6, HashLib::Sha256).unwrap(), "875740");
    }

    #[test]
    fn eight_digits_and_sha512() {
        // RFC 4226 counter 0 truncated value 1284755224 -> 8 digits.
        assert_eq!(hotp(KEY, 0, 8, HashLib::Sha1).unwrap(), "84755224");
        assert_eq!(hotp(KEY, 0, 6, HashLib::Sha512).unwrap().len(), 6);
    }

    #[test]
    fn find_counter_window() {
        assert_eq!(
            find_counter(KEY, "969429", 1, 10, 6, HashLib::Sha1).unwrap(),
            Some(3)
        );
        assert_eq!(
            find_counter(KEY, "969429", 4, 10, 6, HashLib::Sha1).unwrap(),
            None
        );
        assert_eq!(
            find_counter(KEY, "96942", 0, 10, 6, HashLib::Sha1).unwrap(),
            None
        );
    }

    #[test]
    fn hashlib_names() {
        assert_eq!(HashLib::parse("SHA256").unwrap(), HashLib::Sha256);
        assert!(HashLib::parse("md5").is_err());
        assert_eq!(HashLib::Sha512.key_len(), 64);
    }
}
