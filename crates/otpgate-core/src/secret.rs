//! Secrets at rest: AES-256-GCM with a key id, so keys can rotate.
//!
//! A sealed value is `v1:<key-id>:<base64(nonce ‖ ciphertext ‖ tag)>`. The associated data
//! (AAD) binds a ciphertext to its place (e.g. `token.key:<serial>`), so a value copied into
//! another row does not decrypt.

use crate::{CoreError, RandomSource};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// Compares two secrets (an OTP, a CSRF token) in constant time for equal lengths: the time
/// tells nothing about how much of a guess was right.
pub fn ct_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Bytes of hex text (either case); None when it is not hex.
pub fn decode_hex(text: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() / 2));
    for pair in text.chunks_exact(2) {
        let &[hi, lo] = <&[u8; 2]>::try_from(pair).ok()?;
        out.push(digit(hi)? << 4 | digit(lo)?);
    }
    Some(out)
}

/// A set of AES-256 keys by id, one of which encrypts new values.
#[derive(Clone)]
pub struct KeyRing {
    keys: BTreeMap<String, Zeroizing<[u8; 32]>>,
    active: String,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("ids", &self.keys.keys())
            .field("active", &self.active)
            .finish()
    }
}

impl KeyRing {
    /// A ring with one key, which is active.
    pub fn single(id: &str, key: [u8; 32]) -> Self {
        let mut keys = BTreeMap::new();
        keys.insert(id.to_owned(), Zeroizing::new(key));
        Self {
            keys,
            active: id.to_owned(),
        }
    }

    /// Parses the key file format: one `id:base64key` per line, `#` comments; the last key
    /// is the active one.
    pub fn parse(text: &str) -> Result<Self, CoreError> {
        let mut keys = BTreeMap::new();
        let mut active = None;
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (id, b64) = line
                .split_once(':')
                .ok_or(CoreError::InvalidKey("expected id:base64key"))?;
            let raw = Zeroizing::new(
                STANDARD
                    .decode(b64.trim())
                    .map_err(|_| CoreError::InvalidKey("key is not base64"))?,
            );
            let key: [u8; 32] = raw
                .as_slice()
                .try_into()
                .map_err(|_| CoreError::InvalidKey("key must be 32 bytes"))?;
            let id = id.trim();
            if id.is_empty() || id.contains(':') {
                return Err(CoreError::InvalidKey("empty key id"));
            }
            keys.insert(id.to_owned(), Zeroizing::new(key));
            active = Some(id.to_owned());
        }
        let active = active.ok_or(CoreError::InvalidKey("no key in key file"))?;
        Ok(Self { keys, active })
    }

    /// A new random key file body with one key of id `k1`.
    pub fn generate_file(rng: &dyn RandomSource) -> Result<String, CoreError> {
        let key = Zeroizing::new(rng.bytes(32)?);
        Ok(format!(
            "# otpgate encryption keys: one id:base64(32 bytes) per line; the last line encrypts new secrets.\nk1:{}\n",
            STANDARD.encode(key.as_slice())
        ))
    }

    /// The id of the key that encrypts new values.
    pub fn active_id(&self) -> &str {
        &self.active
    }

    /// Whether the ring holds the key `id`.
    pub fn holds(&self, id: &str) -> bool {
        self.keys.contains_key(id)
    }

    /// The ids of the ring's keys.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// This ring with the keys of `newer` added and `newer`'s active key active. A key id
    /// both hold keeps this ring's key (values sealed with it must go on opening).
    pub fn merged_with(&self, newer: &KeyRing) -> KeyRing {
        let mut keys = self.keys.clone();
        for (id, key) in &newer.keys {
            keys.entry(id.clone()).or_insert_with(|| key.clone());
        }
        KeyRing {
            keys,
            active: newer.active.clone(),
        }
    }

    /// The id of the key that sealed `sealed` (None if it is no sealed value).
    pub fn key_id_of(sealed: &str) -> Option<&str> {
        let mut parts = sealed.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("v1"), Some(id), Some(_)) => Some(id),
            _ => None,
        }
    }

    /// Encrypts `plaintext`, bound to `aad`.
    pub fn seal(
        &self,
        rng: &dyn RandomSource,
        plaintext: &[u8],
        aad: &str,
    ) -> Result<String, CoreError> {
        let key = self
            .keys
            .get(&self.active)
            .ok_or(CoreError::InvalidKey("active key missing"))?;
        let cipher = Aes256Gcm::new_from_slice(key.as_slice())
            .map_err(|_| CoreError::InvalidKey("aes key"))?;
        let mut nonce = [0u8; 12];
        rng.fill(&mut nonce)?;
        let ct = cipher
            .encrypt(
                &Nonce::try_from(&nonce[..]).map_err(|_| CoreError::InvalidKey("nonce"))?,
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| CoreError::InvalidKey("encryption failed"))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        Ok(format!("v1:{}:{}", self.active, STANDARD.encode(blob)))
    }

    /// Decrypts a value made by [`KeyRing::seal`] with the same `aad`.
    pub fn open(&self, sealed: &str, aad: &str) -> Result<Zeroizing<Vec<u8>>, CoreError> {
        let mut parts = sealed.splitn(3, ':');
        let (Some("v1"), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CoreError::Decrypt("unknown format"));
        };
        let key = self
            .keys
            .get(id)
            .ok_or(CoreError::Decrypt("unknown key id"))?;
        let blob = STANDARD
            .decode(b64)
            .map_err(|_| CoreError::Decrypt("not base64"))?;
        let (nonce, ct) = blob
            .split_at_checked(12)
            .ok_or(CoreError::Decrypt("too short"))?;
        let cipher = Aes256Gcm::new_from_slice(key.as_slice())
            .map_err(|_| CoreError::InvalidKey("aes key"))?;
        cipher
            .decrypt(
                &Nonce::try_from(nonce).map_err(|_| CoreError::Decrypt("nonce"))?,
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CoreError::Decrypt("authentication failed"))
    }

    /// Convenience: seal a UTF-8 string.
    pub fn seal_str(
        &self,
        rng: &dyn RandomSource,
        plaintext: &str,
        aad: &str,
    ) -> Result<String, CoreError> {
        self.seal(rng, plaintext.as_bytes(), aad)
    }

    /// Convenience: open to a UTF-8 string.
    pub fn open_str(&self, sealed: &str, aad: &str) -> Result<Zeroizing<String>, CoreError> {
        let bytes = self.open(sealed, aad)?;
        String::from_utf8(bytes.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| CoreError::Decrypt("not UTF-8"))
    }
}

/// The AAD of the key check value stored in the database at first start.
pub const KEY_CHECK_AAD: &str = "otpgate.keycheck";
/// The plaintext of the key check value.
pub const KEY_CHECK_PLAINTEXT: &[u8] = b"otpgate key check v1";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OsRandom;

    fn ring() -> KeyRing {
        KeyRing::parse(&KeyRing::generate_file(&OsRandom).unwrap()).unwrap()
    }

    #[test]
    fn a_merged_ring_keeps_every_old_key_and_takes_the_new_active_one() {
        let old = ring();
        let sealed_old = old.seal(&OsRandom, b"x", "a").unwrap();
        let newer = KeyRing::parse(
            "k2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nk3:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
        )
        .unwrap();
        let m = old.merged_with(&newer);
        assert_eq!(m.active_id(), "k3");
        assert_eq!(m.ids().collect::<Vec<_>>(), vec!["k1", "k2", "k3"]);
        assert_eq!(m.open(&sealed_old, "a").unwrap().as_slice(), b"x");
        assert!(m.seal(&OsRandom, b"y", "a").unwrap().starts_with("v1:k3:"));
        assert_eq!(KeyRing::key_id_of(&sealed_old), Some("k1"));
        assert_eq!(KeyRing::key_id_of("nonsense"), None);
        // A file that gives an old id another key does not replace the key in use.
        let clash = KeyRing::parse("k1:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=").unwrap();
        assert_eq!(
            old.merged_with(&clash)
                .open(&sealed_old, "a")
                .unwrap()
                .as_slice(),
            b"x"
        );
    }

    #[test]
    fn round_trip_and_aad_binding() {
        let r = ring();
        let s = r.seal(&OsRandom, b"top secret", "token.key:PISM1").unwrap();
        assert!(s.starts_with("v1:k1:"));
        assert_eq!(
            r.open(&s, "token.key:PISM1").unwrap().as_slice(),
            b"top secret"
        );
        assert!(r.open(&s, "token.key:PISM2").is_err());
    }

    #[test]
    fn other_key_cannot_open_and_rotation_keeps_old_keys() {
        let a = ring();
        let b = ring();
        let s = a.seal(&OsRandom, b"x", "aad").unwrap();
        assert_eq!(
            b.open(&s, "aad").unwrap_err(),
            CoreError::Decrypt("authentication failed")
        );
        let file =
            "k1:".to_owned() + &STANDARD.encode([7u8; 32]) + "\nk2:" + &STANDARD.encode([9u8; 32]);
        let rotated = KeyRing::parse(&file).unwrap();
        assert_eq!(rotated.active_id(), "k2");
        let old = KeyRing::single("k1", [7u8; 32])
            .seal(&OsRandom, b"old", "aad")
            .unwrap();
        assert_eq!(rotated.open(&old, "aad").unwrap().as_slice(), b"old");
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        assert!(KeyRing::parse("").is_err());
        assert!(KeyRing::parse("k1:short").is_err());
        let r = ring();
        for s in [
            "",
            "v1",
            "v1:k1",
            "v1:k1:!!!",
            "v1:k1:AAAA",
            "v2:k1:AAAA",
            "v1:zz:AAAA",
        ] {
            assert!(r.open(s, "aad").is_err(), "{s}");
        }
    }

    #[test]
    fn debug_does_not_print_keys() {
        let s = format!("{:?}", KeyRing::single("k1", [0x41; 32]));
        assert!(!s.contains("65") && !s.contains("QUFB"), "{s}");
    }
}
