//! Pure domain of otpgate: no I/O, no async runtime, no SQL, no HTTP.
//!
//! Everything here is a value or a pure function over values, so it is tested without a
//! database or network: HOTP (RFC 4226), secrets at rest (AES-256-GCM with key ids), PIN
//! hashes (Argon2id), admin JWTs (HS256), privacyIDEA's SMS text templates and REGEXP phone
//! rewriting, and the injectable clock and randomness every other crate uses.
#![warn(missing_docs)]

pub mod clock;
pub mod crypt;
pub mod error;
pub mod hotp;
pub mod jwt;
pub mod net;
pub mod number;
pub mod params;
pub mod phone;
pub mod picrypt;
pub mod pin;
pub mod policy;
pub mod random;
pub mod random_pin;
pub mod reach;
pub mod secret;
pub mod sms_text;
pub mod template;
pub mod token;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::CoreError;
pub use random::{OsRandom, RandomSource};
