//! A RADIUS client (RFC 2865) for privacyIDEA's RADIUS pass-through: one Access-Request with
//! User-Name, the hidden User-Password, NAS-Identifier and a Message-Authenticator (RFC 3579),
//! sent again after each timeout up to `retries` times; a reply counts only when its
//! identifier matches and its Response Authenticator (and Message-Authenticator, when there
//! is one) verifies with the shared secret.

use crate::auth::{hide_password, sign_request, verify_reply};
use crate::packet::{self, ACCESS_ACCEPT, ACCESS_CHALLENGE, ACCESS_REQUEST, Packet, attr};
use std::time::Duration;
use tokio::net::UdpSocket;

/// What the server answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Access-Accept.
    Accept,
    /// Access-Reject (or any other code).
    Reject,
    /// Access-Challenge (the pass-through does not follow challenges).
    Challenge,
}

/// Why no answer came (never a secret in the text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(pub String);

/// One server and how to talk to it.
#[derive(Debug, Clone)]
pub struct Server<'a> {
    /// `host:port`.
    pub address: &'a str,
    /// The shared secret.
    pub secret: &'a [u8],
    /// Seconds to wait for each try.
    pub timeout: Duration,
    /// Tries after the first.
    pub retries: u32,
    /// NAS-Identifier.
    pub nas_identifier: &'a str,
}

/// Sends an Access-Request for `user` with `password`; `authenticator` is the Request
/// Authenticator (16 random bytes from the caller, who owns the randomness).
pub async fn access_request(
    server: &Server<'_>,
    user: &str,
    password: &str,
    authenticator: [u8; 16],
) -> Result<Answer, ClientError> {
    let err = |e: &dyn std::fmt::Display| ClientError(format!("RADIUS {}: {e}", server.address));
    // The name lookup counts against the first try's time too.
    let target = tokio::time::timeout(server.timeout, tokio::net::lookup_host(server.address))
        .await
        .map_err(|_| err(&"the name lookup timed out"))?
        .map_err(|e| err(&e))?
        .next()
        .ok_or_else(|| err(&"no address"))?;
    let local = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(local).await.map_err(|e| err(&e))?;
    socket.connect(target).await.map_err(|e| err(&e))?;
    let identifier = authenticator[0];
    let mut request = Packet {
        code: ACCESS_REQUEST,
        identifier,
        authenticator,
        attributes: Vec::new(),
    };
    request.push(attr::USER_NAME, user.as_bytes());
    let hidden =
        hide_password(password.as_bytes(), server.secret, &authenticator).map_err(|e| err(&e))?;
    request.push(attr::USER_PASSWORD, hidden);
    request.push(attr::NAS_IDENTIFIER, server.nas_identifier.as_bytes());
    let bytes = sign_request(request, server.secret).map_err(|e| err(&e))?;
    let mut buf = vec![0u8; packet::MAX_PACKET_LEN];
    for _ in 0..=server.retries {
        socket.send(&bytes).await.map_err(|e| err(&e))?;
        let deadline = tokio::time::Instant::now() + server.timeout;
        loop {
            let got = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await;
            let Ok(received) = got else {
                break; // this try timed out
            };
            let n = received.map_err(|e| err(&e))?;
            let raw = buf.get(..n).unwrap_or_default();
            let Ok(reply) = packet::decode(raw) else {
                continue;
            };
            if reply.identifier != identifier
                || verify_reply(raw, &authenticator, server.secret).is_err()
            {
                // Not ours, or forged: keep waiting for the real answer.
                continue;
            }
            return Ok(match reply.code {
                ACCESS_ACCEPT => Answer::Accept,
                ACCESS_CHALLENGE => Answer::Challenge,
                _ => Answer::Reject,
            });
        }
    }
    Err(err(&"no answer"))
}
