//! Fault injection: the database cut off and back (PostgreSQL behind a TCP proxy that can drop
//! every connection and refuse new ones), a SQLite database locked by another process's
//! writer. otpgate answers 503 in the error envelope, never a 5xx of its own making or a hang,
//! counts nothing against users, and recovers by itself.

use crate::support::*;
use otpgate_store::testdb;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy to one address that can cut every connection and refuse new ones.
struct TcpCut {
    port: u16,
    open: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl TcpCut {
    async fn start(target: SocketAddr) -> TcpCut {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let links = Arc::new(Mutex::new(Vec::new()));
        let (o, l) = (open.clone(), links.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !o.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                l.lock().unwrap().push(link.abort_handle());
            }
        });
        TcpCut { port, open, links }
    }

    /// Drops every connection and refuses new ones.
    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for l in self.links.lock().unwrap().drain(..) {
            l.abort();
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// `url` with its host and port replaced by 127.0.0.1:`port`.
fn via_port(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let userinfo = authority.rsplit_once('@').map(|(u, _)| format!("{u}@"));
    format!(
        "{scheme}://{}127.0.0.1:{port}/{path}",
        userinfo.unwrap_or_default()
    )
}

async fn healthz(s: &Server) -> u16 {
    s.client
        .get(s.url("/healthz"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Polls until `/healthz` answers 200 again (bounded).
async fn until_healthy(s: &Server) {
    for _ in 0..200 {
        if healthz(s).await == 200 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("otpgate did not recover");
}

async fn login(s: &Server, gw: &Gateway) -> bool {
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    let Some(tid) = b["detail"]["transaction_id"].as_str() else {
        return false;
    };
    let otp = gw.last_otp("+4915100000001");
    let (_, b) = s
        .check(&[("user", "alice"), ("transaction_id", tid), ("pass", &otp)])
        .await;
    b["result"]["value"] == true
}

#[tokio::test]
async fn postgresql_cut_off_answers_503_and_otpgate_recovers_when_it_is_back() {
    let Ok(admin) = std::env::var(testdb::ENV) else {
        assert!(std::env::var("CI").is_err(), "CI must set {}", testdb::ENV);
        return;
    };
    let url = testdb::fresh_postgres(&admin).await.unwrap();
    let target: SocketAddr = {
        let authority = url.split_once("://").unwrap().1.split('/').next().unwrap();
        let hostport = authority.rsplit('@').next().unwrap();
        tokio::net::lookup_host(hostport)
            .await
            .unwrap()
            .next()
            .unwrap()
    };
    let proxy = TcpCut::start(target).await;
    let gw = Gateway::start().await;
    let proxied = via_port(&url, proxy.port);
    let s = Server::start_with(move |c| c.server.database_url = proxied).await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "SMS1", "1234", "+4915100000001").await;
    assert!(login(&s, &gw).await);

    proxy.cut();
    assert_eq!(healthz(&s).await, 503);
    let sent = gw.count();
    for form in [
        vec![("user", "alice"), ("pass", "1234")],
        vec![("user", "alice"), ("pass", "1234123456")],
    ] {
        let (st, b) = s.check(&form).await;
        assert_eq!((st, code(&b)), (503, -503), "{b}");
        assert_eq!(b["result"]["status"], false);
    }
    let (st, b) = s.aget("/token/", &[]).await;
    assert_eq!((st, code(&b)), (503, -503), "{b}");
    assert_eq!(gw.count(), sent, "no SMS while the database is away");

    proxy.restore();
    until_healthy(&s).await;
    assert!(login(&s, &gw).await, "logins work again");
    let t = s.token_info("SMS1").await;
    assert_eq!(
        t["failcount"], 0,
        "the outage counted nothing against alice: {t}"
    );
}

#[tokio::test]
async fn a_sqlite_database_locked_by_another_writer_answers_503_and_recovers() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "SMS1", "1234", "+4915100000001").await;
    let file = s.dir.path().join("data").join("otpgate.sqlite");
    assert!(file.exists());
    // Another process's writer holds the write lock (as a stuck backup or a manual session
    // would) for longer than SQLite's busy timeout.
    use sqlx::Connection;
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let r = s
        .client
        .post(s.url("/validate/check"))
        .form(&[("user", "alice"), ("pass", "1234")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(code(&b), -503, "{b}");
    // Reads still work under WAL while the writer waits.
    assert_eq!(healthz(&s).await, 200);
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    other.close().await.unwrap();
    assert!(login(&s, &gw).await, "logins work once the lock is gone");
    assert_eq!(s.token_info("SMS1").await["failcount"], 0);
}
