//! The error type of the core crate. Messages never contain secrets.

/// What can go wrong in a pure domain operation.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CoreError {
    /// A key or a value has the wrong length or shape.
    #[error("invalid key material: {0}")]
    InvalidKey(&'static str),
    /// A sealed secret could not be opened (wrong key, tampered, unknown key id).
    #[error("secret cannot be decrypted: {0}")]
    Decrypt(&'static str),
    /// The operating system's random source failed.
    #[error("random source failed")]
    Random,
    /// A PIN hash could not be computed or parsed.
    #[error("pin hash error: {0}")]
    PinHash(String),
    /// An unsupported hash algorithm name.
    #[error("unsupported hashlib: {0}")]
    HashLib(String),
    /// A template refers to a tag that does not exist or has a stray brace.
    #[error("template error: {0}")]
    Template(String),
    /// Policies that match with the same priority give an action different values.
    #[error("{0}")]
    PolicyConflict(String),
    /// A PIN contents policy privacyIDEA would refuse.
    #[error("{0}")]
    PinPolicy(String),
    /// A JWT is malformed, wrongly signed or expired.
    #[error("{0}")]
    Jwt(JwtError),
}

/// Why a JWT was refused; each maps to one privacyIDEA auth error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtError {
    /// Not three base64url parts, bad JSON, or an algorithm other than HS256.
    Malformed,
    /// The signature does not verify.
    BadSignature,
    /// `exp` is in the past.
    Expired,
}

impl std::fmt::Display for JwtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JwtError::Malformed => "malformed token",
            JwtError::BadSignature => "signature verification failed",
            JwtError::Expired => "token has expired",
        })
    }
}
