//! The UDP server loop.
//!
//! For every datagram: find the client by source address (unknown → dropped), decode
//! (malformed → dropped), accept only Access-Request, verify the Message-Authenticator
//! (missing where required or wrong → dropped), then answer retransmissions of a request being
//! handled or already answered from a cache keyed by (client, identifier, authenticator).
//! At most [`Limits::max_in_flight`] requests are decided at once; beyond that datagrams are
//! dropped (the NAS retransmits), and a decision that takes longer than
//! [`Limits::handler_timeout`] is answered with a Reject. Everything dropped is counted in
//! [`Stats`].

use crate::auth;
use crate::packet::{
    self, ACCESS_ACCEPT, ACCESS_CHALLENGE, ACCESS_REJECT, ACCESS_REQUEST, Packet, attr,
};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long an answer is remembered for retransmissions (counted from the answer; a request
/// still being decided is remembered for the decision's timeout on top).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(30);

/// How many requests the duplicate cache remembers at most (oldest forgotten first).
const MAX_REMEMBERED: usize = 65_536;

/// Bounds on the work the server takes on.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests decided at the same time; further datagrams are dropped and counted.
    pub max_in_flight: usize,
    /// A decision taking longer is answered with an Access-Reject.
    pub handler_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_in_flight: 1024,
            handler_timeout: Duration::from_secs(30),
        }
    }
}

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
    /// Dropped: [`Limits::max_in_flight`] requests were already being decided.
    pub overloaded: AtomicU64,
    /// Rejected because the decision exceeded [`Limits::handler_timeout`].
    pub timeouts: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

type Key = (SocketAddr, u8, [u8; 16]);

struct Seen {
    at: Instant,
    reply: Option<Arc<Vec<u8>>>,
}

/// Requests seen recently, with their answers once sent. Entries expire in arrival order, so
/// forgetting is a pop from the front rather than a scan of the whole map.
struct SeenCache {
    map: HashMap<Key, Seen>,
    order: VecDeque<(Instant, Key)>,
    /// How long an entry lives: the answer window plus the longest decision.
    window: Duration,
}

impl SeenCache {
    fn new(handler_timeout: Duration) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            window: DUPLICATE_WINDOW + handler_timeout,
        }
    }

    /// Stores the answer of a request and restarts its time from now.
    fn answer(&mut self, key: &Key, reply: Arc<Vec<u8>>, now: Instant) {
        if let Some(s) = self.map.get_mut(key) {
            s.reply = Some(reply);
            s.at = now;
            self.order.push_back((now, *key));
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, key)) = self.order.front().copied() {
            if now.duration_since(at) < self.window && self.order.len() < MAX_REMEMBERED {
                break;
            }
            self.order.pop_front();
            if self.map.get(&key).is_some_and(|s| s.at == at) {
                self.map.remove(&key);
            }
        }
    }

    fn insert(&mut self, key: Key, now: Instant) {
        self.order.push_back((now, key));
        self.map.insert(
            key,
            Seen {
                at: now,
                reply: None,
            },
        );
    }
}

/// The server's shared state.
struct Shared<H> {
    socket: UdpSocket,
    clients: Vec<Client>,
    handler: H,
    stats: Arc<Stats>,
    limits: Limits,
    seen: Mutex<SeenCache>,
    /// When each (address, reason) was last logged at warn: at most once a minute each.
    warned: Mutex<HashMap<(IpAddr, &'static str), Instant>>,
}

/// The shortest time between two warnings of one address for one reason.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The most (address, reason) pairs remembered for warnings (a flood of sources costs no
/// more memory; beyond, warnings are simply not repeated until it is cleared).
const MAX_WARNED: usize = 10_000;

/// Serves RADIUS on `socket` until `shutdown` resolves, then waits for requests in progress.
pub async fn serve<H: Handler>(
    socket: UdpSocket,
    clients: Vec<Client>,
    handler: H,
    stats: Arc<Stats>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared {
        socket,
        clients,
        handler,
        stats,
        limits,
        seen: Mutex::new(SeenCache::new(limits.handler_timeout)),
        warned: Mutex::new(HashMap::new()),
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
        while tasks.try_join_next().is_some() {}
        // Retransmissions of answered requests are answered from the cache even under load.
        if let Some(work) = shared.admit(datagram, from) {
            if tasks.len() >= shared.limits.max_in_flight {
                // Shed the new request; its retransmission gets a fresh chance.
                shared.forget(&work);
                bump(&shared.stats.overloaded);
                continue;
            }
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
    /// Whether a drop of `ip`'s datagram for `reason` is to be logged at warn now (once a
    /// minute per address and reason: a NAS that is set up wrongly is seen in the log at the
    /// default level, a flood does not fill it).
    fn warn_now(&self, ip: IpAddr, reason: &'static str) -> bool {
        let Ok(mut w) = self.warned.lock() else {
            return false;
        };
        let now = Instant::now();
        if w.len() >= MAX_WARNED {
            w.retain(|_, at| now.duration_since(*at) < WARN_EVERY);
        }
        match w.get(&(ip, reason)) {
            Some(at) if now.duration_since(*at) < WARN_EVERY => false,
            _ if w.len() >= MAX_WARNED => false,
            _ => {
                w.insert((ip, reason), now);
                true
            }
        }
    }

    /// Checks a datagram; returns the work to do, or None if it is dropped or a duplicate.
    fn admit(&self, datagram: &[u8], from: SocketAddr) -> Option<Work> {
        let Some(client) = self
            .clients
            .iter()
            .find(|c| c.network.contains(from.ip()))
            .cloned()
        else {
            bump(&self.stats.unknown_client);
            if self.warn_now(from.ip(), "unknown") {
                tracing::warn!(client = %from.ip(), "RADIUS packet from an address that is no configured client dropped: add it to [[radius.clients]] (network) if it is a NAS of yours");
            } else {
                tracing::debug!(client = %from.ip(), "RADIUS packet from an unknown client dropped");
            }
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
            let missing = matches!(e, crate::RadiusError::MissingMessageAuthenticator);
            if missing && self.warn_now(from.ip(), "missing") {
                tracing::warn!(client = %from.ip(), "RADIUS request without a Message-Authenticator dropped: this client must send one (Blast-RADIUS, CVE-2024-3596). If the NAS cannot (e.g. Debian's libpam-radius-auth 2.0), set require_message_authenticator = false for it in [[radius.clients]]");
            } else if !missing && self.warn_now(from.ip(), "bad") {
                tracing::warn!(client = %from.ip(), "RADIUS request with a wrong Message-Authenticator dropped: the shared secret of this client differs from the NAS's");
            } else {
                tracing::debug!(client = %from.ip(), error = %e, "RADIUS request dropped");
            }
            return None;
        }
        let key = (from, packet.identifier, packet.authenticator);
        let now = Instant::now();
        let mut seen = self.seen.lock().ok()?;
        seen.expire(now);
        if let Some(s) = seen.map.get(&key) {
            bump(&self.stats.duplicates);
            if let Some(reply) = s.reply.clone() {
                let socket_reply = reply;
                drop(seen);
                // A retransmission of an answered request gets the same answer.
                let _ = self.socket.try_send_to(&socket_reply, from);
            }
            return None;
        }
        seen.insert(key, now);
        Some(Work {
            from,
            client,
            packet,
        })
    }

    /// Forgets a request that was admitted but not taken on.
    fn forget(&self, w: &Work) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.map
                .remove(&(w.from, w.packet.identifier, w.packet.authenticator));
        }
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
            match tokio::time::timeout(self.limits.handler_timeout, self.handler.handle(req)).await
            {
                Ok(reply) => reply,
                Err(_) => {
                    bump(&self.stats.timeouts);
                    tracing::warn!(client = %w.from.ip(), "RADIUS request timed out");
                    Reply::Reject {
                        message: Some("The request could not be processed.".into()),
                    }
                }
            }
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
        if let Ok(mut seen) = self.seen.lock() {
            seen.answer(
                &(w.from, p.identifier, p.authenticator),
                bytes,
                Instant::now(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts at once, or never answers, or waits for the test's go-ahead, announcing entry.
    enum TestHandler {
        Never,
        Gated {
            entered: tokio::sync::mpsc::UnboundedSender<()>,
            go: Arc<tokio::sync::Semaphore>,
        },
    }

    impl Handler for TestHandler {
        async fn handle(&self, _req: Request) -> Reply {
            match self {
                Self::Never => std::future::pending().await,
                Self::Gated { entered, go } => {
                    let _ = entered.send(());
                    let _permit = go.acquire().await;
                    Reply::Accept { message: None }
                }
            }
        }
    }

    const SECRET: &[u8] = b"testing123";

    async fn start(
        handler: TestHandler,
        limits: Limits,
    ) -> (SocketAddr, Arc<Stats>, tokio::sync::oneshot::Sender<()>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let client = Client {
            network: Network::parse("127.0.0.1").unwrap(),
            secret: SECRET.to_vec(),
            require_message_authenticator: true,
            realm: None,
        };
        let stats = Arc::new(Stats::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let s = stats.clone();
        tokio::spawn(async move {
            serve(socket, vec![client], handler, s, limits, async {
                let _ = stopped.await;
            })
            .await
        });
        (addr, stats, stop)
    }

    fn request(identifier: u8) -> (Vec<u8>, [u8; 16]) {
        let authenticator = [identifier; 16];
        let mut p = Packet {
            code: ACCESS_REQUEST,
            identifier,
            authenticator,
            attributes: vec![],
        };
        p.push(attr::USER_NAME, b"alice".to_vec());
        p.push(
            attr::USER_PASSWORD,
            auth::hide_password(b"secret", SECRET, &authenticator).unwrap(),
        );
        (auth::sign_request(p, SECRET).unwrap(), authenticator)
    }

    async fn exchange(socket: &UdpSocket, to: SocketAddr, identifier: u8) -> Packet {
        let (bytes, authenticator) = request(identifier);
        socket.send_to(&bytes, to).await.unwrap();
        receive(socket, &authenticator).await
    }

    async fn receive(socket: &UdpSocket, authenticator: &[u8; 16]) -> Packet {
        let mut buf = [0u8; 4096];
        let (n, _) = tokio::time::timeout(Duration::from_secs(10), socket.recv_from(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        auth::verify_reply(&buf[..n], authenticator, SECRET).unwrap();
        packet::decode(&buf[..n]).unwrap()
    }

    #[tokio::test]
    async fn a_decision_that_takes_too_long_is_rejected_and_counted() {
        let limits = Limits {
            handler_timeout: Duration::from_millis(50),
            ..Limits::default()
        };
        let (addr, stats, _stop) = start(TestHandler::Never, limits).await;
        let nas = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let reply = exchange(&nas, addr, 7).await;
        assert_eq!(reply.code, ACCESS_REJECT);
        assert_eq!(
            reply.get(attr::REPLY_MESSAGE),
            Some(&b"The request could not be processed."[..])
        );
        assert_eq!(stats.timeouts.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn requests_beyond_the_in_flight_limit_are_dropped_and_counted() {
        let (entered, mut entries) = tokio::sync::mpsc::unbounded_channel();
        let go = Arc::new(tokio::sync::Semaphore::new(0));
        let handler = TestHandler::Gated {
            entered,
            go: go.clone(),
        };
        let limits = Limits {
            max_in_flight: 1,
            ..Limits::default()
        };
        let (addr, stats, _stop) = start(handler, limits).await;
        let nas = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (first, first_auth) = request(1);
        nas.send_to(&first, addr).await.unwrap();
        entries.recv().await.unwrap();
        // The first request is being decided: a second one is shed before any work.
        let (second, _) = request(2);
        nas.send_to(&second, addr).await.unwrap();
        let shed = async {
            while stats.overloaded.load(Ordering::Relaxed) == 0 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), shed)
            .await
            .expect("the second request is counted as dropped");
        go.add_permits(10);
        assert_eq!(receive(&nas, &first_auth).await.code, ACCESS_ACCEPT);
        // With room again, the retransmitted second request is decided normally.
        assert_eq!(exchange(&nas, addr, 2).await.code, ACCESS_ACCEPT);
        assert_eq!(stats.overloaded.load(Ordering::Relaxed), 1);
        assert_eq!(stats.accepts.load(Ordering::Relaxed), 2);
    }

    fn key(n: u8) -> Key {
        (SocketAddr::from(([127, 0, 0, 1], 1)), n, [n; 16])
    }

    #[test]
    fn the_duplicate_cache_forgets_in_arrival_order() {
        let t0 = Instant::now();
        let mut c = SeenCache::new(Duration::ZERO);
        c.insert(key(1), t0);
        c.insert(key(2), t0 + Duration::from_secs(10));
        c.expire(t0 + Duration::from_secs(29));
        assert_eq!(c.map.len(), 2);
        c.expire(t0 + Duration::from_secs(30));
        assert!(!c.map.contains_key(&key(1)) && c.map.contains_key(&key(2)));
        c.expire(t0 + Duration::from_secs(40));
        assert!(c.map.is_empty() && c.order.is_empty());
    }

    #[test]
    fn answers_are_remembered_from_when_they_were_given() {
        let t0 = Instant::now();
        // Decisions may take 10 s: an undecided request lives 40 s.
        let mut c = SeenCache::new(Duration::from_secs(10));
        c.insert(key(1), t0);
        c.expire(t0 + Duration::from_secs(39));
        assert!(c.map.contains_key(&key(1)), "still being decided");
        // Answered after 39 s: remembered for the full window from then.
        c.answer(&key(1), Arc::new(vec![1]), t0 + Duration::from_secs(39));
        c.expire(t0 + Duration::from_secs(75));
        assert!(c.map.get(&key(1)).is_some_and(|s| s.reply.is_some()));
        c.expire(t0 + Duration::from_secs(79));
        assert!(c.map.is_empty());
    }

    #[test]
    fn the_duplicate_cache_is_bounded() {
        let t0 = Instant::now();
        let mut c = SeenCache::new(Duration::ZERO);
        for i in 0..MAX_REMEMBERED + 10 {
            c.expire(t0);
            let port = u16::try_from(i % 60_000).unwrap();
            let k = (
                SocketAddr::from(([10, 0, 0, 1], port)),
                (i / 60_000) as u8,
                [0; 16],
            );
            c.insert(k, t0);
        }
        assert!(c.order.len() <= MAX_REMEMBERED && c.map.len() <= MAX_REMEMBERED);
    }

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
