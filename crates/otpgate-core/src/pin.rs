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

#[cfg(test)]
mod tests {
    use super::*;

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
