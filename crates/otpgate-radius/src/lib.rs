//! otpgate's RADIUS server (RFC 2865) with the Message-Authenticator of RFC 3579 §3.2.
//!
//! * [`packet`]: parsing and building of packets as pure functions, with length and attribute
//!   bounds checked (never a panic on hostile input).
//! * [`auth`]: User-Password hiding (RFC 2865 §5.2), Response Authenticator (§3), and the
//!   HMAC-MD5 Message-Authenticator, verified on requests and placed first in every reply
//!   (the Blast-RADIUS mitigation, CVE-2024-3596).
//! * [`server`]: a UDP loop that takes a bound socket, a client table, a handler and a
//!   shutdown signal; it drops unknown clients and bad authenticators silently, answers
//!   retransmissions from a cache, and drains in-flight requests at shutdown.
//!
//! * [`client`]: one Access-Request to another server, for privacyIDEA's RADIUS
//!   pass-through.
//!
//! The crate depends on no other otpgate crate: the binary plugs the validation service in
//! through [`server::Handler`].
#![warn(missing_docs)]

pub mod auth;
pub mod client;
pub mod packet;
pub mod server;

/// Why a packet was refused. None of these is ever answered on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RadiusError {
    /// Shorter than a header, longer than 4096 bytes, or a length field that does not fit.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// An attribute value is longer than 253 bytes or the packet would exceed 4096 bytes.
    #[error("packet too large: {0}")]
    TooLarge(&'static str),
    /// The Message-Authenticator is missing but required.
    #[error("Message-Authenticator missing")]
    MissingMessageAuthenticator,
    /// The Message-Authenticator does not verify (wrong secret or tampering).
    #[error("Message-Authenticator invalid")]
    BadMessageAuthenticator,
    /// The hidden User-Password has an impossible length.
    #[error("User-Password malformed")]
    BadPassword,
}
