//! OTP PINs and admin passwords hashed with Argon2id.
//!
//! Hashing costs tens of milliseconds of CPU by design: callers run it off the async runtime
//! (`spawn_blocking`) and bound how many run at once.

use crate::CoreError;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PinParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for PinParams {
    /// OWASP's Argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl PinParams {
    /// The cheapest parameters Argon2 accepts; for tests and benchmarks that measure the server
    /// rather than the hash.
    pub fn minimal() -> Self {
        Self {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        }
    }

    fn argon2(&self) -> Result<Argon2<'static>, CoreError> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| CoreError::PinHash(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// The 1-KiB blocks of working memory a hash with these parameters needs.
    pub fn block_count(&self) -> usize {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map(|p| p.block_count())
            .unwrap_or(0)
    }

    /// Checks that Argon2 accepts these parameters.
    pub fn check(&self) -> Result<(), CoreError> {
        self.argon2().map(|_| ())
    }

    /// As [`PinParams::hash`], with `memory` as Argon2's working memory (see [`KdfMemory`]).
    pub fn hash_in(&self, pin: &str, memory: &mut KdfMemory) -> Result<String, CoreError> {
        use argon2::password_hash::phc::{Output, ParamsString, Salt};
        let err = |e: &dyn std::fmt::Display| CoreError::PinHash(e.to_string());
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| err(&e))?;
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| err(&e))?;
        let blocks =
            blocks_for(memory, &params).ok_or_else(|| CoreError::PinHash("memory".into()))?;
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        let hashed = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password_into_with_memory(pin.as_bytes(), &salt, &mut out, &mut *blocks);
        blocks.fill(argon2::Block::default());
        hashed.map_err(|e| err(&e))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|e| err(&e))?,
            salt: Some(Salt::new(&salt).map_err(|e| err(&e))?),
            hash: Some(Output::new(&out).map_err(|e| err(&e))?),
        };
        Ok(phc.to_string())
    }

    /// Hashes `pin` with a fresh salt into a PHC string.
    pub fn hash(&self, pin: &str) -> Result<String, CoreError> {
        let hash = self
            .argon2()?
            .hash_password(pin.as_bytes())
            .map_err(|e| CoreError::PinHash(e.to_string()))?;
        Ok(hash.to_string())
    }
}

/// Verifies `pin` against a PHC string made by [`PinParams::hash`] (the parameters are read
/// from the string, so changing the defaults keeps old hashes valid).
pub fn verify(pin: &str, phc: &str) -> bool {
    if let Some(imported) = verify_imported(pin, phc) {
        return imported;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(pin.as_bytes(), &parsed)
        .is_ok()
}

/// Argon2's working memory, reused from one verification to the next (one per computation
/// that may run at once), so the many-MiB buffer is not allocated and freed per login (the
/// allocator would keep freed buffers and the process would grow).
pub type KdfMemory = Vec<argon2::Block>;

/// The first blocks of `memory` that `params` needs, growing it when it is too small.
fn blocks_for<'a>(memory: &'a mut KdfMemory, params: &Params) -> Option<&'a mut [argon2::Block]> {
    let need = params.block_count();
    if memory.len() < need {
        memory.resize(need, argon2::Block::default());
    }
    memory.get_mut(..need)
}

/// As [`verify`], with `memory` as Argon2's working memory (grown when a hash needs more).
pub fn verify_in(pin: &str, phc: &str, memory: &mut KdfMemory) -> bool {
    if let Some(imported) = verify_imported(pin, phc) {
        return imported;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(params) = argon2::Params::try_from(&parsed) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Some(blocks) = blocks_for(memory, &params) else {
        return false;
    };
    let mut buf = [0u8; 64];
    let Some(out) = buf.get_mut(..expected.len()) else {
        return false;
    };
    let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        pin.as_bytes(),
        salt.as_ref(),
        &mut *out,
        &mut *blocks,
    );
    // The blocks are derived from the PIN: they do not stay in the kept buffer.
    blocks.fill(argon2::Block::default());
    hashed.is_ok() && bool::from(subtle::ConstantTimeEq::ct_eq(&*out, expected.as_bytes()))
}

/// The prefix of passlib's PBKDF2-HMAC-SHA512 hashes, privacyIDEA's second PIN and password
/// hash scheme: `$pbkdf2-sha512$ROUNDS$SALT$CHECKSUM` (passlib's base64 with `.` for `+`).
pub const PBKDF2_SHA512: &str = "$pbkdf2-sha512$";

/// The prefix otpgate gives privacyIDEA's oldest PIN hashes when it imports them:
/// `$pi-sha256$SEED$HASH`, SHA-256 over the PIN and the token's `pin_seed` (both hex).
pub const PI_LEGACY_SHA256: &str = "$pi-sha256$";

/// Whether `hash` is one of the formats otpgate verifies (Argon2 PHC strings and the
/// imported privacyIDEA formats).
pub fn is_supported_hash(hash: &str) -> bool {
    hash.starts_with(PBKDF2_SHA512)
        || hash.starts_with(PI_LEGACY_SHA256)
        || (hash.starts_with("$argon2") && PasswordHash::new(hash).is_ok())
}

/// Whether a hash brought from elsewhere costs no more than otpgate is willing to spend on
/// one check (Argon2: at most 256 MiB, 32 passes, 16 lanes; PBKDF2 is bounded when parsed):
/// a larger one would let anyone who knows the account name make a node allocate and compute
/// that much per attempt.
pub fn cost_is_bounded(hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return true;
    };
    Params::try_from(&parsed)
        .is_ok_and(|p| p.m_cost() <= 262_144 && p.t_cost() <= 32 && p.p_cost() <= 16)
}

/// Whether `hash`, which just verified, should be replaced by a hash made with `params`: an
/// imported privacyIDEA format (PBKDF2, legacy SHA-256), or an Argon2 hash of another
/// variant or other parameters (privacyIDEA's default costs 64 MiB, 9 passes, 4 lanes: about
/// fifteen times otpgate's default).
pub fn needs_rehash(hash: &str, params: &PinParams) -> bool {
    if hash.starts_with(PBKDF2_SHA512) || hash.starts_with(PI_LEGACY_SHA256) {
        return true;
    }
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let Ok(got) = Params::try_from(&parsed) else {
        return false;
    };
    parsed.algorithm != Algorithm::Argon2id.ident()
        || parsed.version != Some(Version::V0x13.into())
        || got.m_cost() != params.memory_kib
        || got.t_cost() != params.iterations
        || got.p_cost() != params.parallelism
}

/// Verification of the hash formats a privacyIDEA import brings (None: not one of them).
fn verify_imported(pin: &str, hash: &str) -> Option<bool> {
    if let Some(rest) = hash.strip_prefix(PBKDF2_SHA512) {
        return Some(verify_pbkdf2_sha512(pin, rest).unwrap_or(false));
    }
    if let Some(rest) = hash.strip_prefix(PI_LEGACY_SHA256) {
        use sha2::Digest;
        let (seed, expected) = rest.split_once('$')?;
        let seed = crate::secret::decode_hex(seed.as_bytes())?;
        let mut h = sha2::Sha256::new();
        h.update(pin.as_bytes());
        h.update(seed.as_slice());
        let got: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        return Some(crate::secret::ct_eq(&got, &expected.to_ascii_lowercase()));
    }
    None
}

/// `ROUNDS$SALT$CHECKSUM` of a passlib `pbkdf2_sha512` hash; None when malformed.
fn verify_pbkdf2_sha512(pin: &str, rest: &str) -> Option<bool> {
    use base64::Engine;
    use hmac::{Hmac, KeyInit, Mac};
    let mut parts = rest.split('$');
    let rounds: u32 = parts.next()?.parse().ok()?;
    let ab64 = |s: &str| {
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(s.replace('.', "+"))
            .ok()
    };
    let salt = ab64(parts.next()?)?;
    let expected = ab64(parts.next()?)?;
    if parts.next().is_some() || rounds == 0 || rounds > 10_000_000 || expected.len() != 64 {
        return None;
    }
    // PBKDF2 (RFC 8018) with one block: SHA-512's output is the whole derived key.
    let prf = Hmac::<sha2::Sha512>::new_from_slice(pin.as_bytes()).ok()?;
    let mut mac = prf.clone();
    mac.update(&salt);
    mac.update(&1u32.to_be_bytes());
    let mut u = mac.finalize().into_bytes();
    let mut t = u;
    for _ in 1..rounds {
        let mut mac = prf.clone();
        mac.update(&u);
        u = mac.finalize().into_bytes();
        for (a, b) in t.iter_mut().zip(u.iter()) {
            *a ^= b;
        }
    }
    Some(bool::from(subtle::ConstantTimeEq::ct_eq(
        t.as_slice(),
        expected.as_slice(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privacyideas_hash_formats_verify() {
        // Made by passlib 1.7.4 (privacyIDEA 3.14's) and by privacyIDEA's legacy `hash`.
        let pbkdf2 = "$pbkdf2-sha512$1000$qXUuZSzlPCektDbmHCOEkA$TU2IuyZJKUW1p7ZFTl8zy/s4UH5Lodzn6Ovph.3FQCWagOgswYWpSnzgrJ9L1RjQxSP6GwZBLMzhUkvoPzyHdg";
        let legacy =
            "$pi-sha256$00112233$cdf311d2a150124ef8ee37f631ef64c045344632d4d3f4a0c3a5cf1dda52ae88";
        let mut memory = KdfMemory::new();
        for h in [pbkdf2, legacy] {
            assert!(is_supported_hash(h));
            assert!(
                verify("1234", h) && verify_in("1234", h, &mut memory),
                "{h}"
            );
            assert!(!verify("1235", h) && !verify_in("", h, &mut memory), "{h}");
        }
        assert!(!verify("1234", "$pbkdf2-sha512$0$qXUu$TU2I"));
        assert!(!verify("1234", "$pi-sha256$0$cdf3"));
        assert!(!is_supported_hash("cdf311d2a150124ef8ee37f631ef64c0"));
        assert!(is_supported_hash(&PinParams::minimal().hash("x").unwrap()));
    }

    #[test]
    fn foreign_costs_and_formats_are_rehashed() {
        let ours = PinParams::minimal();
        assert!(!needs_rehash(&ours.hash("1234").unwrap(), &ours));
        assert!(needs_rehash(
            &ours.hash("1234").unwrap(),
            &PinParams::default()
        ));
        // privacyIDEA 3.14's default (passlib argon2, 9 rounds, 64 MiB, 4 lanes).
        let pi = "$argon2id$v=19$m=65536,t=9,p=4$rXUuJYRQKiVE6D0HgBDifA$9LPgElW1gHADf3FXcWo0i7WiQWQAfQJwTG9ysDntH3Q";
        assert!(needs_rehash(pi, &PinParams::default()));
        assert!(needs_rehash("$pbkdf2-sha512$1000$qXUu$TU2I", &ours));
        assert!(needs_rehash("$pi-sha256$00$ab", &ours));
        assert!(
            !needs_rehash("not a hash", &ours),
            "nothing that did not verify"
        );
        // privacyIDEA's default is within the bounds, 4 GiB is not.
        assert!(cost_is_bounded(pi));
        assert!(!cost_is_bounded(
            "$argon2id$v=19$m=4194304,t=9,p=4$rXUuJYRQKiVE6D0HgBDifA$9LPgElW1gHADf3FXcWo0i7WiQWQAfQJwTG9ysDntH3Q"
        ));
    }

    #[test]
    fn verify_in_reused_memory_agrees_with_verify() {
        let mut memory = KdfMemory::new();
        for params in [
            PinParams::minimal(),
            PinParams {
                memory_kib: 256,
                iterations: 2,
                parallelism: 2,
            },
        ] {
            let h = params.hash("1234").unwrap();
            assert!(verify_in("1234", &h, &mut memory));
            assert!(!verify_in("1235", &h, &mut memory));
            assert!(!verify_in("", &h, &mut memory));
            assert_eq!(verify("1234", &h), verify_in("1234", &h, &mut memory));
        }
        assert_eq!(memory.len(), 256, "grown to the largest need, then reused");
        let h = PinParams::default().hash_in("pin", &mut memory).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(
            verify("pin", &h) && !verify("pim", &h),
            "a standard PHC string"
        );
        assert!(verify_in("pin", &h, &mut memory));
        assert!(!verify_in("1234", "not a hash", &mut memory));
        assert!(!verify_in(
            "1234",
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ",
            &mut memory
        ));
    }

    #[test]
    fn hash_and_verify() {
        let p = PinParams::minimal();
        let h = p.hash("1234").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("1234", &h));
        assert!(!verify("1235", &h));
        assert!(!verify("", &h));
        assert_ne!(h, p.hash("1234").unwrap(), "salted");
    }

    #[test]
    fn empty_pin_and_garbage_hash() {
        let h = PinParams::minimal().hash("").unwrap();
        assert!(verify("", &h));
        assert!(!verify("x", &h));
        assert!(!verify("x", "not a hash"));
    }

    #[test]
    fn default_params_are_argon2id_owasp() {
        let h = PinParams::default().hash("pw").unwrap();
        assert!(h.contains("m=19456,t=2,p=1"), "{h}");
    }
}
