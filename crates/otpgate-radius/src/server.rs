//! The UDP server loop.
//!
//! For every datagram: find the client by source address (unknown → dropped), decode
//! (malformed → dropped), accept only Access-Request, verify the Message-Authenticator
//! (missing where required or wrong → dropped), then answer retransmissions of a request being
//! handled or already answered from a cache keyed by (client, identifier, authenticator).
//! Everything dropped is counted in [`Stats`].

use crate::auth;
use crate::packet::{
    self, ACCESS_ACCEPT, ACCESS_CHALLENGE, ACCESS_REJECT, ACCESS_REQUEST, Packet, attr,
};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long an answered request is remembered for retransmissions.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(30);

/// An address range: an IP or a CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `10.0.0.1`, `10.0.0.0/8`, `::1` or `fd00::/8`.
    pub fn parse(s: &str) -> Option<Self> {
        let (a, p) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = p.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    /// True if `ip` is in this range (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(n) & mask == u128::from(i) & mask
            }
            _ => false,
        }
    }
}

/// A RADIUS client (NAS) allowed to talk to the server.
#[derive(Clone)]
pub struct Client {
    /// Source addresses of the client.
    pub network: Network,
    /// The shared secret.
    pub secret: Vec<u8>,
    /// Drop requests without a valid Message-Authenticator (default; Blast-RADIUS).
    pub require_message_authenticator: bool,
    /// Realm for this client's users (default: the server's default realm).
    pub realm: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("network", &self.network)
            .field(
                "require_message_authenticator",
                &self.require_message_authenticator,
            )
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

/// The decoded request handed to the [`Handler`].
#[derive(Debug, Clone)]
pub struct Request {
    /// The NAS's address.
    pub client: IpAddr,
    /// The realm configured for this NAS.
    pub realm: Option<String>,
    /// User-Name.
    pub user_name: String,
    /// The revealed User-Password (absent: e.g. a CHAP request).
    pub password: Option<String>,
    /// State from a previous Access-Challenge.
    pub state: Option<Vec<u8>>,
}

/// The handler's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Access-Accept.
    Accept {
        /// Reply-Message.
        message: Option<String>,
    },
    /// Access-Reject.
    Reject {
        /// Reply-Message.
        message: Option<String>,
    },
    /// Access-Challenge.
    Challenge {
        /// State to be echoed in the answer.
        state: Vec<u8>,
        /// Reply-Message (the prompt).
        message: String,
    },
}

/// Decides Access-Requests.
pub trait Handler: Send + Sync + 'static {
    /// Decides one request.
    fn handle(&self, req: Request) -> impl Future<Output = Reply> + Send;
}

/// Counters of the server (exported as metrics by the binary).
#[derive(Debug, Default)]
pub struct Stats {
    /// Access-Accept sent.
    pub accepts: AtomicU64,
    /// Access-Reject sent.
    pub rejects: AtomicU64,
    /// Access-Challenge sent.
    pub challenges: AtomicU64,
    /// Dropped: the source address is no configured client.
    pub unknown_client: AtomicU64,
    /// Dropped: not a valid packet, or not an Access-Request.
    pub malformed: AtomicU64,
    /// Dropped: Message-Authenticator missing (where required) or wrong.
    pub bad_authenticator: AtomicU64,
    /// Retransmissions answered from the cache or ignored while in progress.
    pub duplicates: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

type Key = (SocketAddr, u8, [u8; 16]);

struct Seen {
    at: Instant,
    reply: Option<Arc<Vec<u8>>>,
}

/// The server's shared state.
struct Shared<H> {
    socket: UdpSocket,
    clients: Vec<Client>,
    handler: H,
    stats: Arc<Stats>,
    seen: Mutex<HashMap<Key, Seen>>,
}

/// Serves RADIUS on `socket` until `shutdown` resolves, then waits for requests in progress.
pub async fn serve<H: Handler>(
    socket: UdpSocket,
    clients: Vec<Client>,
    handler: H,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared {
        socket,
        clients,
        handler,
        stats,
        seen: Mutex::new(HashMap::new()),
    });
    let mut tasks = JoinSet::new();
    let mut buf = vec![0u8; packet::MAX_PACKET_LEN];
    tokio::pin!(shutdown);
    loop {
        let (n, from) = tokio::select! {
            _ = &mut shutdown => break,
            r = shared.socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "RADIUS receive failed");
                    continue;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let Some(datagram) = buf.get(..n) else {
            continue;
        };
        if let Some(work) = shared.admit(datagram, from) {
            let shared = shared.clone();
            tasks.spawn(async move { shared.answer(work).await });
        }
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

struct Work {
    from: SocketAddr,
    client: Client,
    packet: Packet,
}

impl<H: Handler> Shared<H> {
    /// Checks a datagram; returns the work to do, or None if it is dropped or a duplicate.
    fn admit(&self, datagram: &[u8], from: SocketAddr) -> Option<Work> {
        let Some(client) = self
            .clients
            .iter()
            .find(|c| c.network.contains(from.ip()))
            .cloned()
        else {
            bump(&self.stats.unknown_client);
            tracing::debug!(client = %from.ip(), "RADIUS packet from an unknown client dropped");
            return None;
        };
        let packet = match packet::decode(datagram) {
            Ok(p) if p.code == ACCESS_REQUEST => p,
            _ => {
                bump(&self.stats.malformed);
                return None;
            }
        };
        if let Err(e) = auth::verify_request(
            datagram,
            &packet,
            &client.secret,
            client.require_message_authenticator,
        ) {
            bump(&self.stats.bad_authenticator);
            tracing::debug!(client = %from.ip(), error = %e, "RADIUS request dropped");
            return None;
        }
        let key = (from, packet.identifier, packet.authenticator);
        let now = Instant::now();
        let mut seen = self.seen.lock().ok()?;
        seen.retain(|_, s| now.duration_since(s.at) < DUPLICATE_WINDOW);
        if let Some(s) = seen.get(&key) {
            bump(&self.stats.duplicates);
            if let Some(reply) = s.reply.clone() {
                let socket_reply = reply;
                drop(seen);
                // A retransmission of an answered request gets the same answer.
                let _ = self.socket.try_send_to(&socket_reply, from);
            }
            return None;
        }
        seen.insert(
            key,
            Seen {
                at: now,
                reply: None,
            },
        );
        Some(Work {
            from,
            client,
            packet,
        })
    }

    async fn answer(&self, w: Work) {
        let p = &w.packet;
        let user_name = p
            .get(attr::USER_NAME)
            .map(|u| String::from_utf8_lossy(u).into_owned())
            .unwrap_or_default();
        let password = p
            .get(attr::USER_PASSWORD)
            .and_then(|h| auth::unhide_password(h, &w.client.secret, &p.authenticator).ok())
            .map(|pw| String::from_utf8_lossy(&pw).into_owned());
        let decision = if user_name.is_empty() {
            Reply::Reject {
                message: Some("User-Name is missing.".into()),
            }
        } else if password.is_none() {
            Reply::Reject {
                message: Some("Only PAP (User-Password) is supported.".into()),
            }
        } else {
            let req = Request {
                client: w.from.ip(),
                realm: w.client.realm.clone(),
                user_name,
                password,
                state: p.get(attr::STATE).map(<[u8]>::to_vec),
            };
            self.handler.handle(req).await
        };
        let mut reply = Packet {
            code: ACCESS_REJECT,
            identifier: p.identifier,
            authenticator: [0; 16],
            attributes: vec![],
        };
        let message = match decision {
            Reply::Accept { message } => {
                reply.code = ACCESS_ACCEPT;
                bump(&self.stats.accepts);
                message
            }
            Reply::Reject { message } => {
                bump(&self.stats.rejects);
                message
            }
            Reply::Challenge { state, message } => {
                reply.code = ACCESS_CHALLENGE;
                bump(&self.stats.challenges);
                reply.push(attr::STATE, state);
                Some(message)
            }
        };
        for chunk in packet::text_chunks(message.as_deref().unwrap_or_default()) {
            reply.push(attr::REPLY_MESSAGE, chunk);
        }
        for ps in p.all(attr::PROXY_STATE) {
            reply.push(attr::PROXY_STATE, ps.to_vec());
        }
        let bytes = match auth::sign_reply(reply, &p.authenticator, &w.client.secret) {
            Ok(b) => Arc::new(b),
            Err(e) => {
                tracing::warn!(error = %e, "RADIUS reply could not be built");
                return;
            }
        };
        if let Err(e) = self.socket.send_to(&bytes, w.from).await {
            tracing::warn!(error = %e, "RADIUS reply could not be sent");
        }
        if let Ok(mut seen) = self.seen.lock()
            && let Some(s) = seen.get_mut(&(w.from, p.identifier, p.authenticator))
        {
            s.reply = Some(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let n = Network::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(
            n.contains("::ffff:10.0.0.9".parse().unwrap()),
            "IPv4-mapped"
        );
        let one = Network::parse("127.0.0.1").unwrap();
        assert!(
            one.contains("127.0.0.1".parse().unwrap())
                && !one.contains("127.0.0.2".parse().unwrap())
        );
        assert!(
            Network::parse("::1")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(
            Network::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Network::parse("10.0.0.0/33").is_none());
        assert!(Network::parse("nonsense").is_none());
    }
}
