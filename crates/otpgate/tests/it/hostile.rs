//! Hostile input: a battery of malformed requests across every endpoint, as anonymous callers
//! and as the admin. Nothing may answer 5xx; every error is privacyIDEA's JSON envelope; the
//! server keeps working afterwards and the data is intact.

use crate::support::*;
use serde_json::Value;

/// Every route, by method and path (with a path parameter where the route has one).
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/auth"),
    ("GET", "/validate/check"),
    ("POST", "/validate/check"),
    ("POST", "/validate/radiuscheck"),
    ("POST", "/validate/triggerchallenge"),
    ("GET", "/validate/polltransaction"),
    ("GET", "/validate/polltransaction/123"),
    ("POST", "/token/init"),
    ("GET", "/token/"),
    ("DELETE", "/token/SMS1"),
    ("POST", "/token/enable"),
    ("POST", "/token/disable/SMS1"),
    ("POST", "/token/reset"),
    ("POST", "/token/setpin"),
    ("POST", "/token/set"),
    ("POST", "/token/assign"),
    ("POST", "/token/unassign"),
    ("POST", "/token/revoke"),
    ("POST", "/token/description/SMS1"),
    ("POST", "/token/realm/SMS1"),
    ("POST", "/token/info/SMS1/ticket"),
    ("DELETE", "/token/info/SMS1/ticket"),
    ("POST", "/token/copypin"),
    ("POST", "/token/copyuser"),
    ("POST", "/token/setrandompin"),
    ("DELETE", "/token/challenges/transaction/123"),
    ("POST", "/validate/samlcheck"),
    ("GET", "/smsgateway/"),
    ("POST", "/smsgateway"),
    ("GET", "/smsgateway/providers"),
    ("DELETE", "/smsgateway/gw"),
    ("GET", "/smtpserver/"),
    ("POST", "/smtpserver/mail"),
    ("POST", "/system/setConfig"),
    ("GET", "/system/"),
    ("POST", "/resolver/r"),
    ("POST", "/resolver/test"),
    ("POST", "/realm/realm9"),
    ("POST", "/defaultrealm/realm9"),
    ("GET", "/user/"),
    ("POST", "/user/"),
    ("POST", "/policy/p"),
    ("GET", "/audit/"),
    ("POST", "/event"),
    ("GET", "/event/1"),
    ("DELETE", "/event/1"),
    ("POST", "/event/enable/1"),
    ("GET", "/event/conditions/UserNotification"),
    ("GET", "/event/outbox"),
    ("POST", "/event/outbox/1/retry"),
    ("GET", "/fraud/blocks"),
    ("POST", "/fraud/blocks/+49"),
    ("DELETE", "/fraud/blocks/+49"),
];

/// Parameters the endpoints read, all sent with the same hostile value.
const KEYS: &[&str] = &[
    "user",
    "pass",
    "serial",
    "realm",
    "transaction_id",
    "type",
    "phone",
    "pin",
    "name",
    "module",
    "key",
    "value",
    "scope",
    "action",
    "resolver",
    "resolvers",
    "username",
    "password",
    "identifier",
    "server",
    "port",
    "otplen",
    "page",
    "pagesize",
    "sortby",
    "option.URL",
    "sms.identifier",
    "fileName",
    "LDAPURI",
    "LDAPBASE",
    "BINDPW",
    "USERINFO",
    "LOGINNAMEATTRIBUTE",
    "LDAPSEARCHFILTER",
    "client",
    "active",
    "event",
    "handlermodule",
    "conditions",
    "option.smsconfig",
    "option.To",
    "option.body",
    "status",
    "reason",
];

/// One malformed request body or query: (description, content type, body or query).
fn payloads() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let form = |v: &str| -> Vec<u8> {
        KEYS.iter()
            .map(|k| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes()
    };
    let mut nested = "[".repeat(20_000);
    nested.push_str(&"]".repeat(20_000));
    let wrong_types = serde_json::json!({
        "user": {"a": 1}, "pass": [1, 2], "serial": 12, "realm": null, "type": true,
        "phone": 1.5e300, "pin": {"$ne": ""}, "name": ["x"], "scope": {}, "page": "-1",
        "pagesize": "999999999999999999999", "otplen": "9", "port": "70000"
    });
    vec![
        ("NUL bytes", "application/x-www-form-urlencoded", form("a%00b")),
        ("invalid UTF-8", "application/x-www-form-urlencoded", form("%FF%FE%C0%AF")),
        ("broken percent-encoding", "application/x-www-form-urlencoded", form("%zz%")),
        ("SQL injection", "application/x-www-form-urlencoded", form("%27%20OR%201%3D1%20--")),
        ("path traversal", "application/x-www-form-urlencoded", form("..%2F..%2Fetc%2Fpasswd")),
        ("LDAP and template injection", "application/x-www-form-urlencoded", form("%24%7Bjndi%3Aldap%3A%2F%2Fx%7D%7B%7B7*7%7D%7D*)(%7C(uid%3D*")),
        ("control characters", "application/x-www-form-urlencoded", form("%0D%0ASet-Cookie%3A%20x%3D1%1B%5B31m")),
        ("a long value", "application/x-www-form-urlencoded", form(&"A".repeat(20_000))),
        ("empty values", "application/x-www-form-urlencoded", form("")),
        ("duplicate parameters", "application/x-www-form-urlencoded", [form("a"), form("b")].join(&b'&')),
        ("deeply nested JSON", "application/json", nested.into_bytes()),
        ("wrong JSON types", "application/json", wrong_types.to_string().into_bytes()),
        ("truncated JSON", "application/json", b"{\"user\": \"al".to_vec()),
        ("JSON that is not an object", "application/json", b"\"just a string\"".to_vec()),
        ("XML", "text/xml", b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>".to_vec()),
        ("multipart without boundary", "multipart/form-data", b"--x\r\n".to_vec()),
        ("a wrong charset", "application/x-www-form-urlencoded; charset=ebcdic", form("a")),
    ]
}

fn is_envelope_error(b: &Value) -> bool {
    b["result"]["status"] == false && b["result"]["error"]["code"].is_i64()
}

#[tokio::test]
async fn malformed_requests_never_get_a_5xx_and_errors_use_the_envelope() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "SMS1", "1234", "+4915100000001").await;
    let mut tried = 0;
    let mut failures = Vec::new();
    for (method, path) in ROUTES {
        for (what, ctype, body) in payloads() {
            for admin in [false, true] {
                let url = s.url(path);
                let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                let mut rb = s.client.request(m.clone(), url);
                rb = if m == reqwest::Method::GET || m == reqwest::Method::DELETE {
                    // The same hostile values as a query string (raw, undecoded).
                    let mut query = String::from_utf8_lossy(&body).into_owned();
                    if !ctype.contains("form") {
                        query = format!("x={}", query.len());
                    }
                    // A URL stays below 8 KB (larger request lines are the HTTP layer's 414).
                    query.truncate(8 * 1024);
                    s.client.request(m, format!("{}?{}", s.url(path), query))
                } else {
                    rb.header("Content-Type", ctype).body(body.clone())
                };
                if admin {
                    rb = rb.header("Authorization", s.token());
                }
                tried += 1;
                let r = match rb.send().await {
                    Ok(r) => r,
                    Err(e) => {
                        let e: String = e.to_string().chars().take(200).collect();
                        failures.push(format!(
                            "{method} {path} [{what}, admin={admin}] → no answer: {e}"
                        ));
                        continue;
                    }
                };
                let status = r.status().as_u16();
                let text = r.text().await.unwrap();
                // radiuscheck answers errors with an empty 400, as privacyIDEA does.
                let empty_ok = *path == "/validate/radiuscheck" && text.is_empty();
                let ok = status < 500
                    && (status < 400
                        || empty_ok
                        || serde_json::from_str::<Value>(&text)
                            .is_ok_and(|b| is_envelope_error(&b)));
                if !ok {
                    failures.push(format!(
                        "{method} {path} [{what}, admin={admin}] → {status}: {}",
                        text.chars().take(200).collect::<String>()
                    ));
                }
            }
        }
    }
    assert!(tried >= 100, "{tried} requests");
    assert!(
        failures.is_empty(),
        "{} of {tried} requests misbehaved:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Still serving and consistent. The admin half of the battery legitimately deleted the
    // token and the gateway and may have changed the default realm and sms.identifier, so a
    // fresh gateway and token prove a whole login still works.
    let (st, _) = s.get("/healthz", &[]).await;
    assert_eq!(st, 200);
    s.ok(
        "/smsgateway",
        &[
            ("name", "gw2"),
            ("module", "http"),
            ("option.URL", &gw.url("/sms")),
            ("option.HTTP_METHOD", "POST"),
            ("option.RETURN_SUCCESS", "ID"),
            ("option.text", "{otp}"),
            ("option.phone", "{phone}"),
        ],
    )
    .await;
    s.ok("/system/setConfig", &[("sms.identifier", "gw2")])
        .await;
    let (st, b) = s
        .apost(
            "/token/init",
            &[
                ("type", "sms"),
                ("user", "alice"),
                ("realm", "realm1"),
                ("serial", "SMS2"),
                ("pin", "1234"),
                ("phone", "+4915100000001"),
            ],
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (_, b) = s
        .check(&[("user", "alice"), ("realm", "realm1"), ("pass", "1234")])
        .await;
    assert_eq!(b["result"]["authentication"], "CHALLENGE", "{b}");
    let tid = b["detail"]["transaction_id"].as_str().unwrap();
    let otp = gw.last_otp("+4915100000001");
    let (_, b) = s
        .check(&[
            ("user", "alice"),
            ("realm", "realm1"),
            ("transaction_id", tid),
            ("pass", &otp),
        ])
        .await;
    assert_eq!(b["result"]["value"], true, "{b}");
}

/// One request to `/validate/check` with an `X-Forwarded-For` header (or none).
async fn check_from(s: &Server, xff: Option<&str>) -> reqwest::Response {
    let mut rb = s
        .client
        .post(s.url("/validate/check"))
        .form(&[("user", "alice"), ("pass", "wrong")]);
    if let Some(x) = xff {
        rb = rb.header("X-Forwarded-For", x);
    }
    rb.send().await.unwrap()
}

#[tokio::test]
async fn anonymous_endpoints_are_rate_limited_per_address_with_429_and_retry_after() {
    let gw = Gateway::start().await;
    let s = Server::start_with(|c| {
        c.server.rate_limit_per_sec = 1.0;
        // The helper's admin login (POST /auth, also anonymous) takes one.
        c.server.rate_limit_burst = 4;
    })
    .await;
    s.setup(&gw.url("/sms")).await;
    let audit_before = s.aget("/audit/", &[]).await.1["result"]["value"]["count"].clone();
    for _ in 0..3 {
        assert_eq!(check_from(&s, None).await.status(), 200);
    }
    let r = check_from(&s, None).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let b: Value = r.json().await.unwrap();
    assert!(is_envelope_error(&b), "{b}");
    assert_eq!(b["result"]["error"]["code"], -429);
    // Admin endpoints are not covered (they need a login), and the refusal wrote no audit row.
    let (st, audit) = s.aget("/audit/", &[]).await;
    assert_eq!(st, 200);
    assert_eq!(
        audit["result"]["value"]["count"].as_i64().unwrap(),
        audit_before.as_i64().unwrap() + 4,
        "three audited checks and the first audit read, no row for the 429"
    );
    // The bucket refills on the clock: one more per second.
    s.advance(1);
    assert_eq!(check_from(&s, None).await.status(), 200);
    assert_eq!(check_from(&s, None).await.status(), 429);
    let m = s.metrics().await;
    assert!(
        m.contains("otpgate_rate_limited_total{route=\"/validate/check\"} 2"),
        "{m}"
    );
}

async fn audit_rows(s: &Server) -> i64 {
    s.aget("/audit/", &[]).await.1["result"]["value"]["count"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn failed_admin_authentications_are_limited_per_address_and_not_audited_beyond() {
    // Behind a trusted proxy, so the attacker's address differs from the admin's.
    let s = Server::start_with(|c| {
        c.server.rate_limit_per_sec = 1.0;
        c.server.rate_limit_burst = 5;
        c.server.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let before = audit_rows(&s).await;
    let attack = || {
        s.client
            .get(s.url("/token/"))
            .header("X-Forwarded-For", "203.0.113.9")
            .header("Authorization", "not-a-token")
            .send()
    };
    // Five failures (the burst) are answered 401 and audited; then 429, before any work.
    for _ in 0..5 {
        assert_eq!(attack().await.unwrap().status(), 401);
    }
    for _ in 0..20 {
        let r = attack().await.unwrap();
        assert_eq!(r.status(), 429);
        assert!(r.headers().contains_key("retry-after"));
    }
    // The admin elsewhere is not affected; the audit log holds the five failures and the first
    // read only.
    assert_eq!(audit_rows(&s).await, before + 6);
    // The failures refill on the clock.
    s.advance(1);
    assert_eq!(attack().await.unwrap().status(), 401);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_end_user_is_limited_not_the_proxy() {
    let gw = Gateway::start().await;
    let s = Server::start_with(|c| {
        c.server.rate_limit_per_sec = 1.0;
        c.server.rate_limit_burst = 2;
        c.server.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    s.setup(&gw.url("/sms")).await;
    for _ in 0..2 {
        assert_eq!(check_from(&s, Some("203.0.113.5")).await.status(), 200);
    }
    assert_eq!(check_from(&s, Some("203.0.113.5")).await.status(), 429);
    assert_eq!(
        check_from(&s, Some("203.0.113.6, 127.0.0.1"))
            .await
            .status(),
        200,
        "another end user"
    );
    // The proxy speaking for many users without naming one is not limited per address.
    for _ in 0..10 {
        assert_eq!(check_from(&s, None).await.status(), 200);
    }
}

#[tokio::test]
async fn argon2_work_beyond_its_bounds_is_shed_with_503_not_queued() {
    let gw = Gateway::start().await;
    let s = Server::start_with(|c| {
        // One costly PIN verification at a time and no queue: concurrent PIN checks beyond
        // the one running are refused at once.
        c.security.pin_hash = otpgate_core::pin::PinParams {
            memory_kib: 64 * 1024,
            iterations: 4,
            parallelism: 1,
        };
        c.security.kdf_concurrency = 1;
        c.security.kdf_queue = 0;
    })
    .await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "SMS1", "1234", "+4915100000001").await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (client, url) = (s.client.clone(), s.url("/validate/check"));
            tokio::spawn(async move {
                client
                    .post(url)
                    .form(&[("user", "alice"), ("pass", "wrong")])
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut busy = 0;
    let mut answered = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status().as_u16() {
            503 => {
                assert_eq!(r.headers()["retry-after"], "1");
                let b: Value = r.json().await.unwrap();
                assert_eq!(b["result"]["error"]["code"], -503, "{b}");
                assert_eq!(
                    b["result"]["error"]["message"],
                    "The server is busy. Please try again later."
                );
                busy += 1;
            }
            200 => answered += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        busy >= 1 && answered >= 1,
        "busy {busy}, answered {answered}"
    );
    let m = s.metrics().await;
    assert!(m.contains(&format!("otpgate_kdf_shed_total {busy}")), "{m}");
    assert!(
        m.contains("otpgate_kdf_waiting 0") && m.contains("otpgate_kdf_concurrency 1"),
        "{m}"
    );
    // A refused request is not a failed login: the fail counter counts only the checks made.
    let t = s.token_info("SMS1").await;
    assert_eq!(t["failcount"].as_i64().unwrap(), answered, "{t}");
    assert!(
        m.contains(
            "otpgate_http_request_duration_seconds_bucket{route=\"/validate/check\",le=\"+Inf\"} 8"
        ),
        "{m}"
    );
}

#[tokio::test]
async fn https_listener_serves_the_api_with_hsts_and_idle_handshakes_delay_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, cert_path, key_path) = crate::support::tls_files(dir.path());
    let gw = Gateway::start().await;
    let (c, k) = (cert_path.clone(), key_path.clone());
    let s = Server::start_with(move |cfg| {
        cfg.server.tls_cert = Some(c);
        cfg.server.tls_key = Some(k);
    })
    .await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "SMS1", "1234", "+4915100000001").await;

    // Connections that never finish a handshake hold no one up (from another address: one
    // address may hold 16 handshakes at most).
    let port = s.base.rsplit(':').next().unwrap().to_owned();
    let mut idle = Vec::new();
    for _ in 0..16 {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        idle.push(
            sock.connect(format!("127.0.0.1:{port}").parse().unwrap())
                .await
                .unwrap(),
        );
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let url = format!("https://localhost:{port}");
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        client
            .post(format!("{url}/validate/check"))
            .form(&[("user", "alice"), ("pass", "1234")])
            .send(),
    )
    .await
    .expect("answered while 16 connections idle in their handshake")
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["result"]["authentication"], "CHALLENGE", "{b}");
    // The audit knows the client's address (ConnectInfo works over TLS).
    let (_, audit) = s.aget("/audit/", &[("action", "*validate/check*")]).await;
    assert_eq!(
        audit["result"]["value"]["auditdata"][0]["client"], "127.0.0.1",
        "{audit}"
    );
    // Plain HTTP to the HTTPS port gets no answer from the API.
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = plain
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(r.is_err() || r.unwrap().status() != 200);
    drop(idle);
}

#[tokio::test]
async fn ambiguous_body_framing_is_refused_and_the_connection_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start().await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    for head in [
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
    ] {
        let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let req = format!(
            "POST /validate/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n{head}\r\n5\r\nuser=\r\n0\r\n\r\n"
        );
        sock.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            sock.read_to_end(&mut buf),
        )
        .await
        .expect("the server closes the connection");
        let text = String::from_utf8_lossy(&buf);
        assert!(
            text.starts_with("HTTP/1.1 400") || text.is_empty(),
            "{head}: {text}"
        );
        if !text.is_empty() {
            assert!(
                text.contains("framing is ambiguous") || text.contains("ERR905"),
                "{text}"
            );
        }
    }
    // One chunked body alone is fine.
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    sock.write_all(
        b"POST /validate/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nuser=\r\n0\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        sock.read_to_end(&mut buf),
    )
    .await;
    let text = String::from_utf8_lossy(&buf);
    assert!(!text.contains("framing is ambiguous"), "{text}");
}

/// Sends `raw` on a fresh connection and reads until the server closes it (bounded).
async fn raw_exchange(addr: &str, raw: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    sock.write_all(raw).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        sock.read_to_end(&mut buf),
    )
    .await
    .expect("the server closes the connection");
    String::from_utf8_lossy(&buf).into_owned()
}

/// A line ending in a bare LF — in a request line, a header, a chunk-size line, a trailer, or
/// a pipelined second request — is refused with 400 and the connection closed (hyper accepted
/// them: a proxy that reads such bytes differently could smuggle a request past itself).
/// Properly framed requests, also pipelined and with LFs inside their bodies, are answered.
#[tokio::test]
async fn bare_lf_line_endings_are_refused_and_crlf_requests_answered() {
    let s = Server::start().await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    for bad in [
        "GET /healthz HTTP/1.1\nHost: x\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\nTransfer-Encoding: chunked\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\n",
        "POST /validate/check HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nuser=\r\n0\r\n\r\n",
    ] {
        let text = raw_exchange(&addr, bad.as_bytes()).await;
        assert!(text.starts_with("HTTP/1.1 400"), "{bad:?}: {text}");
    }
    // In a trailer: the connection is closed without an answer.
    let text = raw_exchange(
        &addr,
        b"POST /validate/check HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\n\r\n",
    )
    .await;
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 400"),
        "{text}"
    );
    // A pipelined second request with a bare LF: the first is answered, the second refused.
    let text = raw_exchange(
        &addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\nHost: x\r\n\r\n",
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("HTTP/1.1 400"), "{text}");
    // CRLF everywhere, pipelined, a body with LFs in it and a chunked one: all answered.
    let text = raw_exchange(
        &addr,
        b"POST /validate/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 17\r\n\r\nuser=a%0A&pass=\nx\
          POST /validate/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nuser=\nb\r\n0\r\n\r\n\
          GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    // Three answers: two in the API's envelope (whatever they say), then /healthz.
    assert_eq!(text.matches("HTTP/1.1 ").count(), 3, "{text}");
    assert_eq!(text.matches("\"jsonrpc\"").count(), 2, "{text}");
    assert!(text.trim_end().ends_with("ok"), "{text}");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = Gateway::start().await;
    let s = Server::start_with(|c| c.server.header_read_timeout_secs = 1).await;
    s.setup(&gw.url("/sms")).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..10 {
        let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
        sock.write_all(b"POST /validate/check HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(sock);
    }
    // Meanwhile everyone else is served.
    let (st, b) = s.check(&[("user", "alice"), ("pass", "wrong")]).await;
    assert_eq!(st, 200, "{b}");
    // The slow ones are closed (hyper may say 408 first) once the header timeout passes.
    for mut sock in slow {
        let mut buf = vec![0u8; 512];
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), sock.read(&mut buf))
            .await
            .expect("the connection was closed within the bound")
            .unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
    }
}

/// Ten addresses flood `/auth` with made-up names (each an Argon2 verification) while alice
/// logs in from an eleventh: the Argon2 queue is shared by address in turn, and a full queue
/// pushes out a flooder's newest waiter rather than refuse her, so her logins get their
/// challenge (the attack that got 14 of 15 such logins refused with 503).
#[tokio::test]
async fn a_flood_from_ten_addresses_does_not_starve_a_user_of_argon2_turns() {
    let gw = Gateway::start().await;
    let s = Server::start_with(|c| {
        c.security.pin_hash = otpgate_core::pin::PinParams {
            memory_kib: 8 * 1024,
            iterations: 2,
            parallelism: 1,
        };
        c.security.kdf_concurrency = 1;
        c.security.kdf_queue = 8;
        c.server.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "SMS1", "1234", "+4915100000001").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut flood = Vec::new();
    for a in 0..10 {
        for n in 0..6 {
            let (client, url, stop) = (s.client.clone(), s.url("/auth"), stop.clone());
            flood.push(tokio::spawn(async move {
                let mut i = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    i += 1;
                    let name = format!("guess-{a}-{n}-{i}");
                    let _ = client
                        .post(&url)
                        .header("X-Forwarded-For", format!("192.0.2.{}", a + 1))
                        .form(&[("username", name.as_str()), ("password", "x")])
                        .send()
                        .await;
                }
            }));
        }
    }
    // Let the flood fill the queue.
    while !s.metrics().await.contains("otpgate_kdf_waiting 8") {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let mut challenged = 0;
    for _ in 0..10 {
        let r = s
            .client
            .post(s.url("/validate/check"))
            .header("X-Forwarded-For", "203.0.113.50")
            .form(&[("user", "alice"), ("pass", "1234")])
            .send()
            .await
            .unwrap();
        let b: Value = r.json().await.unwrap();
        challenged += usize::from(b["result"]["authentication"] == "CHALLENGE");
        if b["result"]["authentication"] != "CHALLENGE" {
            eprintln!("alice refused: {b}");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for f in flood {
        f.await.unwrap();
    }
    let m = s.metrics().await;
    let shed: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("otpgate_kdf_shed_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    assert!(shed > 0, "the flood saturated the Argon2 work: {m}");
    assert!(challenged >= 8, "alice got {challenged} of 10 challenges");
}

/// The HTTPS listener under attack: silent connections beyond what one address may hold
/// (before, one address could take all 256 handshake slots for 10 s each), garbage instead of
/// ClientHellos, and a user logging in from another address meanwhile. And certificate
/// files that are not what they should be stop the start with a clear reason.
#[tokio::test]
async fn the_https_listener_survives_handshake_floods_and_refuses_bad_certificate_files() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, cert_path, key_path) = crate::support::tls_files(dir.path());
    let gw = Gateway::start().await;
    let (c, k) = (cert_path.clone(), key_path.clone());
    let s = Server::start_with(move |cfg| {
        cfg.server.tls_cert = Some(c);
        cfg.server.tls_key = Some(k);
    })
    .await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "SMS1", "1234", "+4915100000001").await;
    let port: u16 = s.base.rsplit(':').next().unwrap().parse().unwrap();
    let target = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let connect_from = |last: u8| async move {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(std::net::SocketAddr::from(([127, 0, 0, last], 0)))
            .unwrap();
        sock.connect(target).await.unwrap()
    };
    // Closed by the server within a second (EOF or reset), or still open.
    let closed = |mut c: tokio::net::TcpStream| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 512];
        loop {
            match tokio::time::timeout(std::time::Duration::from_secs(1), c.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue, // a TLS alert
                Err(_) => return false,
            }
        }
    };
    // 40 silent connections from one address: it may hold 16 handshakes; the rest are closed
    // at once instead of taking slots everyone needs.
    let mut silent = Vec::new();
    for _ in 0..40 {
        silent.push(connect_from(2).await);
    }
    let checks: Vec<_> = silent
        .into_iter()
        .map(|c| tokio::spawn(closed(c)))
        .collect();
    let mut shut = 0;
    for c in checks {
        shut += usize::from(c.await.unwrap());
    }
    assert_eq!(
        40 - shut,
        otpgate::tls::MAX_HANDSHAKES_PER_ADDRESS,
        "silent connections held"
    );
    // 100 connections that send garbage where a ClientHello belongs are closed at once too.
    let mut junk_closed = 0;
    for i in 0..100u32 {
        let mut c = connect_from(4).await;
        let junk: Vec<u8> = (0..64u32).map(|j| (i * 31 + j * 7) as u8).collect();
        let _ = c.write_all(&junk).await;
        junk_closed += usize::from(closed(c).await);
    }
    assert_eq!(junk_closed, 100);
    let client = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        client
            .post(format!("https://localhost:{port}/validate/check"))
            .form(&[("user", "alice"), ("pass", "1234")])
            .send(),
    )
    .await
    .expect("answered while another address holds its 16 handshakes")
    .unwrap();
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["result"]["authentication"], "CHALLENGE", "{b}");

    // Certificate files that cannot work: refused with the reason, no start.
    let other = tempfile::tempdir().unwrap();
    let (_, other_cert, other_key) = crate::support::tls_files(other.path());
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    for (cert, key, says) in [
        (&cert_path, &other_key, "tls_key"),
        (&other_cert, &key_path, "tls_key"),
        (&garbage, &key_path, "tls_cert"),
        (&empty, &key_path, "no certificate"),
        (&cert_path, &empty, "tls_key"),
        (&cert_path, &dir.path().join("missing.pem"), "tls_key"),
    ] {
        let e = otpgate::tls::server_config(cert, key).unwrap_err();
        assert!(
            e.contains(says),
            "{}, {}: {e}",
            cert.display(),
            key.display()
        );
    }
}
