//! The built-in RADIUS server: the two-step SMS login as Access-Challenge, against the real
//! router and UDP socket, with otpgate's own codec as the client (interop with FreeRADIUS's
//! `radclient` is in `cli.rs`).

use crate::support::*;
use otpgate::config::RadiusClientConfig;
use otpgate_radius::auth;
use otpgate_radius::packet::{
    self, ACCESS_ACCEPT, ACCESS_CHALLENGE, ACCESS_REJECT, ACCESS_REQUEST, Packet, attr,
};
use std::time::Duration;
use tokio::net::UdpSocket;

const SECRET: &str = "a-long-radius-secret-4711";
const PHONE: &str = "+4915100000001";

fn client_config(address: &str, require_ma: bool) -> RadiusClientConfig {
    RadiusClientConfig {
        address: address.into(),
        secret: Some(SECRET.into()),
        secret_file: None,
        realm: None,
        require_message_authenticator: require_ma,
    }
}

async fn ready(clients: Vec<RadiusClientConfig>) -> (Server, Gateway) {
    let gw = Gateway::start().await;
    let s = Server::start_with(|c| c.radius.clients = clients).await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "SMS1", "1234", PHONE).await;
    (s, gw)
}

struct Nas {
    socket: UdpSocket,
    server: std::net::SocketAddr,
    secret: Vec<u8>,
    next_id: std::sync::atomic::AtomicU8,
}

impl Nas {
    async fn new(s: &Server, secret: &str) -> Nas {
        Nas {
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            server: s.radius.unwrap(),
            secret: secret.as_bytes().to_vec(),
            next_id: std::sync::atomic::AtomicU8::new(0),
        }
    }

    fn request(&self, user: &str, password: &str, state: Option<&[u8]>) -> Packet {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .wrapping_add(1);
        let authenticator: [u8; 16] =
            std::array::from_fn(|i| (i as u8).wrapping_mul(31).wrapping_add(id));
        let mut p = Packet {
            code: ACCESS_REQUEST,
            identifier: id,
            authenticator,
            attributes: vec![],
        };
        p.push(attr::USER_NAME, user.as_bytes().to_vec());
        p.push(
            attr::USER_PASSWORD,
            auth::hide_password(password.as_bytes(), &self.secret, &authenticator).unwrap(),
        );
        if let Some(st) = state {
            p.push(attr::STATE, st.to_vec());
        }
        p
    }

    /// Sends raw bytes; the reply, or None if nothing came within a short wait.
    async fn exchange(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        self.socket.send_to(bytes, self.server).await.unwrap();
        let mut buf = vec![0u8; 4096];
        match tokio::time::timeout(Duration::from_millis(400), self.socket.recv_from(&mut buf))
            .await
        {
            Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
            _ => None,
        }
    }

    async fn send(&self, p: Packet) -> Packet {
        let authenticator = p.authenticator;
        let raw = self
            .exchange(&auth::sign_request(p, &self.secret).unwrap())
            .await
            .expect("a reply");
        auth::verify_reply(&raw, &authenticator, &self.secret)
            .expect("reply authenticators verify");
        let reply = packet::decode(&raw).unwrap();
        assert_eq!(
            reply.attributes[0].typ,
            attr::MESSAGE_AUTHENTICATOR,
            "Message-Authenticator first"
        );
        reply
    }
}

fn text(p: &Packet) -> String {
    p.all(attr::REPLY_MESSAGE)
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect()
}

#[tokio::test]
async fn challenge_flow_pin_then_otp() {
    let (s, gw) = ready(vec![client_config("127.0.0.1", true)]).await;
    let nas = Nas::new(&s, SECRET).await;
    let r = nas.send(nas.request("alice", "1234", None)).await;
    assert_eq!(r.code, ACCESS_CHALLENGE);
    assert_eq!(text(&r), "Enter the OTP from the SMS:");
    let state = r.get(attr::STATE).unwrap().to_vec();
    assert!(
        !String::from_utf8_lossy(&state).contains(&gw.received().len().to_string())
            || state.len() > 20,
        "State is opaque"
    );
    let otp = gw.last_otp(PHONE);
    assert!(!state.windows(otp.len()).any(|w| w == otp.as_bytes()));
    let r = nas.send(nas.request("alice", &otp, Some(&state))).await;
    assert_eq!(r.code, ACCESS_ACCEPT, "{}", text(&r));
    assert_eq!(text(&r), "Found matching challenge");
    // The same State and OTP again: the challenge is consumed.
    let r = nas.send(nas.request("alice", &otp, Some(&state))).await;
    assert_eq!(r.code, ACCESS_REJECT);
    // The audit has the RADIUS entries.
    let (_, b) = s.aget("/audit/", &[("action", "RADIUS*")]).await;
    assert_eq!(value(&b)["count"], 3);
    assert_eq!(value(&b)["auditdata"][1]["authentication"], "ACCEPT");
}

#[tokio::test]
async fn pin_plus_otp_wrong_values_and_forged_state() {
    let (s, gw) = ready(vec![client_config("127.0.0.1", true)]).await;
    let nas = Nas::new(&s, SECRET).await;
    let r = nas.send(nas.request("alice", "1234", None)).await;
    assert_eq!(r.code, ACCESS_CHALLENGE);
    let otp = gw.last_otp(PHONE);
    let r = nas
        .send(nas.request("alice", &format!("1234{otp}"), None))
        .await;
    assert_eq!(
        (r.code, text(&r)),
        (ACCESS_ACCEPT, "matching 1 tokens".to_owned())
    );
    let r = nas.send(nas.request("alice", "wrong", None)).await;
    assert_eq!(
        (r.code, text(&r)),
        (ACCESS_REJECT, "wrong otp pin".to_owned())
    );
    // An unknown user is indistinguishable from a wrong password; the audit has the reason.
    let r = nas.send(nas.request("nobody", "x", None)).await;
    assert_eq!(
        (r.code, text(&r)),
        (ACCESS_REJECT, "wrong otp pin".to_owned())
    );
    let (_, b) = s.aget("/audit/", &[("user", "nobody")]).await;
    assert!(
        value(&b)["auditdata"][0]["info"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{b}"
    );
    let r = nas
        .send(nas.request("alice", "123456", Some(b"v1:k1:forged")))
        .await;
    assert_eq!(
        (r.code, text(&r)),
        (ACCESS_REJECT, "The challenge is not valid.".to_owned())
    );
    let text_metrics = s.metrics().await;
    assert!(
        text_metrics.contains("otpgate_radius_packets_total{outcome=\"reject\"} 3"),
        "{text_metrics}"
    );
}

#[tokio::test]
async fn retransmissions_get_the_same_answer_and_proxy_state_is_echoed() {
    let (s, gw) = ready(vec![client_config("127.0.0.1", true)]).await;
    let nas = Nas::new(&s, SECRET).await;
    let mut req = nas.request("alice", "1234", None);
    req.push(attr::PROXY_STATE, b"ps-1".to_vec());
    req.push(attr::PROXY_STATE, b"ps-2".to_vec());
    let bytes = auth::sign_request(req, SECRET.as_bytes()).unwrap();
    let first = nas.exchange(&bytes).await.unwrap();
    let again = nas.exchange(&bytes).await.unwrap();
    assert_eq!(first, again, "a retransmission gets the cached answer");
    assert_eq!(gw.count(), 1, "and no second SMS");
    let p = packet::decode(&first).unwrap();
    assert_eq!(
        p.all(attr::PROXY_STATE).collect::<Vec<_>>(),
        vec![&b"ps-1"[..], &b"ps-2"[..]]
    );
    assert_eq!(
        s.app
            .radius_stats
            .duplicates
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn unknown_clients_wrong_secrets_and_missing_authenticators_are_dropped() {
    let (s, _gw) = ready(vec![client_config("127.0.0.1", true)]).await;
    let wrong = Nas::new(&s, "not-the-secret").await;
    let req = wrong.request("alice", "1234", None);
    assert!(
        wrong
            .exchange(&auth::sign_request(req, b"not-the-secret").unwrap())
            .await
            .is_none()
    );
    let nas = Nas::new(&s, SECRET).await;
    let unsigned = packet::encode(&nas.request("alice", "1234", None)).unwrap();
    assert!(
        nas.exchange(&unsigned).await.is_none(),
        "no Message-Authenticator: dropped"
    );
    assert!(nas.exchange(b"garbage").await.is_none());
    let stats = &s.app.radius_stats;
    assert_eq!(
        stats
            .bad_authenticator
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    assert_eq!(
        stats.malformed.load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    let (other, _gw2) = ready(vec![client_config("10.0.0.0/8", true)]).await;
    let stranger = Nas::new(&other, SECRET).await;
    let req = stranger.request("alice", "1234", None);
    assert!(
        stranger
            .exchange(&auth::sign_request(req, SECRET.as_bytes()).unwrap())
            .await
            .is_none()
    );
    assert_eq!(
        other
            .app
            .radius_stats
            .unknown_client
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn message_authenticator_can_be_made_optional_per_client() {
    let (s, _gw) = ready(vec![client_config("127.0.0.1", false)]).await;
    let nas = Nas::new(&s, SECRET).await;
    let req = nas.request("alice", "1234", None);
    let authenticator = req.authenticator;
    let raw = nas
        .exchange(&packet::encode(&req).unwrap())
        .await
        .expect("answered");
    auth::verify_reply(&raw, &authenticator, SECRET.as_bytes()).unwrap();
    assert_eq!(packet::decode(&raw).unwrap().code, ACCESS_CHALLENGE);
}

#[tokio::test]
async fn the_client_realm_selects_the_users_realm() {
    let gw = Gateway::start().await;
    let mut cfg = client_config("127.0.0.1", true);
    cfg.realm = Some("other".into());
    let s = Server::start_with(|c| c.radius.clients = vec![cfg]).await;
    s.setup(&gw.url("/sms")).await;
    s.ok("/resolver/staff", &[("type", "internalresolver")])
        .await;
    s.ok("/realm/other", &[("resolvers", "staff")]).await;
    s.ok(
        "/user/",
        &[
            ("user", "alice"),
            ("resolver", "staff"),
            ("mobile", "+4917612345678"),
        ],
    )
    .await;
    s.enroll("alice", "SMS1", "1234", PHONE).await;
    let (st, _) = s
        .apost(
            "/token/init",
            &[
                ("type", "sms"),
                ("user", "alice"),
                ("realm", "other"),
                ("serial", "SMSO"),
                ("pin", "other-pin"),
                ("dynamic_phone", "1"),
            ],
        )
        .await;
    assert_eq!(st, 200);
    let nas = Nas::new(&s, SECRET).await;
    let r = nas.send(nas.request("alice", "other-pin", None)).await;
    assert_eq!(r.code, ACCESS_CHALLENGE, "{}", text(&r));
    assert_eq!(gw.last().field("phone").as_deref(), Some("+4917612345678"));
}

/// A writer the test reads back: the log lines at warn and above.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Dropped RADIUS requests are said at warn — which client, why, and the setting to change —
/// once a minute per address and reason (Debian's libpam-radius-auth sends no
/// Message-Authenticator; its logins timed out with nothing in the log at the default level).
#[tokio::test]
async fn dropped_radius_requests_are_logged_at_warn_once_with_the_setting_to_change() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test's runtime runs on this thread: the server's tasks log here too.
    let _guard = tracing::subscriber::set_default(subscriber);
    let (s, _gw) = ready(vec![client_config("127.0.0.1", true)]).await;
    let nas = Nas::new(&s, SECRET).await;
    for _ in 0..3 {
        let unsigned = packet::encode(&nas.request("alice", "1234", None)).unwrap();
        assert!(nas.exchange(&unsigned).await.is_none());
    }
    let wrong = Nas::new(&s, "not-the-secret").await;
    for _ in 0..2 {
        let req = wrong.request("alice", "1234", None);
        assert!(
            wrong
                .exchange(&auth::sign_request(req, b"not-the-secret").unwrap())
                .await
                .is_none()
        );
    }
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        text.matches("without a Message-Authenticator dropped")
            .count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("require_message_authenticator = false") && text.contains("127.0.0.1"),
        "{text}"
    );
    assert_eq!(
        text.matches("wrong Message-Authenticator dropped").count(),
        1,
        "{text}"
    );
}
