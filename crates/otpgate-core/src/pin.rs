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

#[cfg(test)]
mod tests {
    use super::*;

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
