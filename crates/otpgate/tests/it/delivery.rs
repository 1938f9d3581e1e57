//! Delivery receipts (`{dlr_url}`, `/smsgateway/dlr/<reference>`), the SMS records
//! (`GET /smsgateway/messages`) and `otpgate_sms_delivery_total`, with a real local HTTP
//! gateway.

use crate::support::{Gateway, Mode, Server};
use serde_json::Value;

const ALICE: &str = "+4915100000001";

/// A server whose public URL is `https://otp.example.org` and whose default gateway passes a
/// Kannel-style receipt URL in the parameter `dlr`.
async fn server_with_receipts(gw: &Gateway) -> Server {
    let s =
        Server::start_with(|c| c.server.public_url = Some("https://otp.example.org/".into())).await;
    s.setup(&gw.url("/sms")).await;
    s.http_gateway(
        "gw",
        &gw.url("/sms"),
        &[
            ("option.dlr-mask", "31"),
            ("option.dlr", "{dlr_url}?status=%d"),
        ],
    )
    .await;
    s.enroll("alice", "SMS1", "1234", ALICE).await;
    s
}

/// The receipt path the gateway got in its last request (`/smsgateway/dlr/<reference>`).
fn receipt_path(gw: &Gateway) -> String {
    let dlr = gw.last().field("dlr").expect("no dlr parameter");
    let path = dlr
        .strip_prefix("https://otp.example.org")
        .unwrap_or_else(|| panic!("not on the public URL: {dlr}"));
    let path = path.strip_suffix("?status=%d").unwrap_or(path).to_owned();
    assert!(path.starts_with("/smsgateway/dlr/"), "{path}");
    path
}

async fn messages(s: &Server, query: &[(&str, &str)]) -> Vec<Value> {
    let (st, b) = s.aget("/smsgateway/messages", query).await;
    assert_eq!(st, 200, "{b}");
    b["result"]["value"]["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn receipts_reach_the_record_of_the_sms_and_the_metric() {
    let gw = Gateway::start().await;
    let s = server_with_receipts(&gw).await;
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let path = receipt_path(&gw);

    // One record, accepted by the gateway, before any receipt.
    let list = messages(&s, &[("transaction_id", &tid)]).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let m = &list[0];
    assert_eq!(m["state"], "accepted", "{m}");
    assert_eq!(m["serial"], "SMS1");
    assert_eq!(m["user"], "alice");
    assert_eq!(m["gateway"], "gw");
    assert_eq!(m["country"], "DE");
    assert_eq!(m["prefix"], "+4915100", "sms.limit.prefix_digits (7)");
    assert_eq!(m["parts"], 1);
    assert!(m["sent"].is_string() && m["accepted"].is_string() && m["done"].is_null());

    // Kannel's order: 8 (accepted by the SMSC, intermediate), then 1 (delivered), by GET
    // with the status in the query; a repeated receipt changes nothing.
    let (st, b) = s.get(&path, &[("status", "8")]).await;
    assert_eq!(
        (st, &b["result"]["value"]),
        (200, &Value::Bool(true)),
        "{b}"
    );
    assert_eq!(
        messages(&s, &[("transaction_id", &tid)]).await[0]["state"],
        "accepted"
    );
    let (st, b) = s.get(&path, &[("status", "1")]).await;
    assert_eq!(
        (st, &b["result"]["value"]),
        (200, &Value::Bool(true)),
        "{b}"
    );
    let (_, b) = s.post(&path, &[("status", "1")]).await;
    assert_eq!(b["result"]["value"], false, "a repeat: {b}");
    // A late intermediate receipt does not undo the delivery.
    let (_, b) = s.post(&path, &[("status", "8")]).await;
    assert_eq!(b["result"]["value"], false, "{b}");
    let m = messages(&s, &[("transaction_id", &tid)]).await.remove(0);
    assert_eq!(m["state"], "delivered", "{m}");
    assert_eq!(m["status"], "1");
    assert!(m["done"].is_string() && m["delivery_ms"].is_number(), "{m}");

    // The reference (the key to the unauthenticated receipt URL) is not shown.
    assert!(m.get("reference").is_none(), "{m}");
    // An admin whose policies reach another realm only sees none of these.
    s.ok(
        "/policy/all",
        &[("scope", "admin"), ("action", "*"), ("adminuser", "admin")],
    )
    .await;
    s.ok(
        "/policy/helpers",
        &[
            ("scope", "admin"),
            ("action", "smsgateway_read"),
            ("adminuser", "helper"),
            ("realm", "elsewhere"),
        ],
    )
    .await;
    s.app
        .services
        .add_admin("helper", "helper-password")
        .await
        .unwrap();
    let (_, auth) = s
        .post(
            "/auth",
            &[("username", "helper"), ("password", "helper-password")],
        )
        .await;
    let jwt = auth["result"]["value"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r: Value = s
        .client
        .get(s.url("/smsgateway/messages"))
        .header("Authorization", jwt)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"]["value"]["count"], 0, "{r}");
    assert_eq!(
        messages(&s, &[]).await.len(),
        1,
        "the admin reaching everyone sees it"
    );
    let (st, _) = s
        .aget(
            "/smsgateway/stats",
            &[("since", "0"), ("until", "2100-01-01T00:00:00Z")],
        )
        .await;
    assert_eq!(st, 400, "a window longer than 31 days");
    // Filters.
    assert_eq!(messages(&s, &[("state", "delivered")]).await.len(), 1);
    assert!(messages(&s, &[("state", "failed")]).await.is_empty());
    assert_eq!(
        messages(&s, &[("serial", "SMS1"), ("gateway", "gw")])
            .await
            .len(),
        1
    );
    assert!(messages(&s, &[("user", "bob")]).await.is_empty());
    assert!(messages(&s, &[("since", "2000000000")]).await.is_empty());
    assert_eq!(
        messages(&s, &[("until", "2100-01-01T00:00:00Z")])
            .await
            .len(),
        1
    );
    let (st, b) = s
        .aget("/smsgateway/messages", &[("since", "yesterday")])
        .await;
    assert_eq!(st, 400, "{b}");

    // Forged or unknown references: 404, no effect.
    for forged in [
        "/smsgateway/dlr/00000000000000000000000000000000",
        "/smsgateway/dlr/not-a-reference",
        &format!("{}0", path),
    ] {
        let (st, b) = s.get(forged, &[("status", "16")]).await;
        assert_eq!(st, 404, "{forged}: {b}");
    }
    // A receipt without its status parameter is a 400.
    let (st, _) = s.get(&path, &[("stat", "1")]).await;
    assert_eq!(st, 400);

    let metrics = s.metrics().await;
    assert!(
        metrics.contains("otpgate_sms_delivery_total{gateway=\"gw\",state=\"accepted\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("otpgate_sms_delivery_total{gateway=\"gw\",state=\"delivered\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("otpgate_sms_delivery_seconds_count{gateway=\"gw\"} 1"),
        "{metrics}"
    );
    // The login completes as ever, and its SMS counts as converted.
    let otp = gw.last_otp(ALICE);
    let (_, b) = s
        .check(&[("user", "alice"), ("transaction_id", &tid), ("pass", &otp)])
        .await;
    assert_eq!(b["result"]["value"], true, "{b}");
    // A second login's SMS that is never answered, refused by the gateway.
    gw.set_mode(Mode::Status(500));
    s.check(&[("user", "alice"), ("pass", "1234")]).await;
    let mut stats = Value::Null;
    for _ in 0..50 {
        let (st, b) = s.aget("/smsgateway/stats", &[]).await;
        assert_eq!(st, 200, "{b}");
        stats = b["result"]["value"].clone();
        if stats["routes"][0]["conversion"] == 50.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let total = &stats["routes"][0];
    assert_eq!(
        (total["gateway"].as_str(), total["country"].as_str()),
        (Some("gw"), Some("")),
        "{stats}"
    );
    assert_eq!(
        (
            total["sent"].as_i64(),
            total["delivered"].as_i64(),
            total["not_sent"].as_i64()
        ),
        (Some(2), Some(1), Some(1)),
        "{stats}"
    );
    assert_eq!(total["delivery_rate"], 100.0, "{stats}");
    assert_eq!(total["conversion"], 50.0, "{stats}");
    assert!(
        total["median_ms"].is_number() && total["flagged"] == false,
        "{stats}"
    );
    assert_eq!(stats["routes"][1]["country"], "DE", "{stats}");
    let (_, b) = s
        .aget("/smsgateway/stats", &[("since", "2100-01-01T00:00:00Z")])
        .await;
    assert_eq!(b["result"]["value"]["routes"], serde_json::json!([]), "{b}");
}

#[tokio::test]
async fn own_status_values_and_a_receipt_before_the_gateways_answer() {
    let gw = Gateway::start().await;
    let s = server_with_receipts(&gw).await;
    s.http_gateway(
        "gw",
        &gw.url("/sms"),
        &[
            ("option.SEND_DATA_AS_JSON", "1"),
            ("option.callback", "{dlr_url}"),
            ("option.DLR_STATUS", "event"),
            ("option.DLR_DELIVERED", "handset"),
            ("option.DLR_FAILED", "lost"),
        ],
    )
    .await;
    // JSON body: the tag inside it; a JSON receipt with the gateway's own words.
    s.check(&[("user", "alice"), ("pass", "1234")]).await;
    let url = gw.last().json.unwrap()["callback"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!url.contains("DLR_"), "{url}");
    let path = url
        .strip_prefix("https://otp.example.org")
        .unwrap()
        .to_owned();
    let (st, b) = s
        .post_json(&path, &serde_json::json!({"event": "lost", "id": "x"}))
        .await;
    assert_eq!(
        (st, &b["result"]["value"]),
        (200, &Value::Bool(true)),
        "{b}"
    );
    let m = messages(&s, &[]).await.remove(0);
    assert_eq!(
        (m["state"].as_str(), m["status"].as_str()),
        (Some("failed"), Some("lost"))
    );
    assert!(
        !gw.last()
            .json
            .unwrap()
            .as_object()
            .unwrap()
            .contains_key("DLR_STATUS")
    );

    // A gateway that takes the SMS but has not answered when its receipt comes: the receipt
    // is kept, and the late (here: missing) answer does not overwrite it.
    gw.set_mode(Mode::Hang);
    s.ok("/system/setConfig", &[("sms.send_budget_ms", "1500")])
        .await;
    let before = gw.count();
    let waiting = {
        let base = s.url("/validate/check");
        let client = s.client.clone();
        tokio::spawn(async move {
            client
                .post(base)
                .form(&[("user", "alice"), ("pass", "1234")])
                .send()
                .await
        })
    };
    for _ in 0..100 {
        if gw.count() > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let url = gw.last().json.unwrap()["callback"]
        .as_str()
        .expect("the second SMS did not reach the gateway")
        .to_owned();
    let path = url
        .strip_prefix("https://otp.example.org")
        .unwrap()
        .to_owned();
    let (st, b) = s
        .post_json(&path, &serde_json::json!({"event": "handset"}))
        .await;
    assert_eq!(
        (st, &b["result"]["value"]),
        (200, &Value::Bool(true)),
        "{b}"
    );
    let answer = waiting.await.unwrap().unwrap();
    assert_eq!(answer.status(), 200);
    let latest = messages(&s, &[]).await.remove(0);
    assert_eq!(latest["state"], "delivered", "{latest}");
    let metrics = s.metrics().await;
    assert!(
        metrics.contains("otpgate_sms_delivery_total{gateway=\"gw\",state=\"not_sent\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn without_a_public_url_the_tag_is_empty_and_the_sms_still_goes() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.http_gateway("gw", &gw.url("/sms"), &[("option.dlr", "{dlr_url}")])
        .await;
    s.enroll("alice", "SMS1", "1234", ALICE).await;
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert!(b["detail"]["transaction_id"].is_string(), "{b}");
    assert_eq!(gw.last().field("dlr").as_deref(), Some(""));
    assert_eq!(messages(&s, &[]).await[0]["state"], "accepted");
    // The list is an admin's: anonymous callers get 401.
    let (st, _) = s.get("/smsgateway/messages", &[]).await;
    assert_eq!(st, 401);
}

/// Two gateways that pass receipt URLs: `gw` (with `FAILOVER=backup` and `DLR_TIMEOUT=30`)
/// and `backup`.
async fn server_with_a_backup(gw: &Gateway, backup: &Gateway) -> Server {
    let s =
        Server::start_with(|c| c.server.public_url = Some("https://otp.example.org".into())).await;
    s.setup(&gw.url("/sms")).await;
    let dlr = ("option.dlr", "{dlr_url}?status=%d");
    s.http_gateway("backup", &backup.url("/sms"), &[dlr]).await;
    s.http_gateway(
        "gw",
        &gw.url("/sms"),
        &[
            dlr,
            ("option.FAILOVER", "backup"),
            ("option.DLR_TIMEOUT", "30"),
        ],
    )
    .await;
    s.enroll("alice", "SMS1", "1234", ALICE).await;
    s
}

/// Waits (up to 5 s) until `g` got `n` requests.
async fn until_received(g: &Gateway, n: usize) {
    for _ in 0..250 {
        if g.count() >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the gateway got {} requests, not {n}", g.count());
}

#[tokio::test]
async fn a_failed_receipt_sends_the_same_code_through_the_backup() {
    let (gw, backup) = (Gateway::start().await, Gateway::start().await);
    let s = server_with_a_backup(&gw, &backup).await;
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let first = gw.last_otp(ALICE);
    assert_eq!(backup.count(), 0);
    let (st, _) = s.get(&receipt_path(&gw), &[("status", "16")]).await;
    assert_eq!(st, 200);
    until_received(&backup, 1).await;
    assert_eq!(backup.last_otp(ALICE), first, "the same code");
    let list = messages(&s, &[("transaction_id", &tid)]).await;
    let states: Vec<(&str, &str)> = list
        .iter()
        .map(|m| (m["gateway"].as_str().unwrap(), m["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        vec![("backup", "accepted"), ("gw", "failed")],
        "{list:?}"
    );
    let (_, b) = s
        .check(&[
            ("user", "alice"),
            ("transaction_id", &tid),
            ("pass", &first),
        ])
        .await;
    assert_eq!(b["result"]["value"], true, "{b}");
    // The dashboard shows both routes: the primary's failed receipt, the backup pending.
    let mut browser = crate::web::Browser::new(&s);
    browser.admin_login().await;
    let d = browser.get("/ui/admin/").await;
    assert!(d.body.contains("Delivery, last 24 hours"), "{}", d.body);
    assert!(
        d.body.contains("<td data-label=\"Route\">gw</td><td data-label=\"Sent\">1</td><td data-label=\"Delivered\">0</td><td data-label=\"Failed\">1</td>"),
        "{}",
        d.body
    );
    assert!(
        d.body
            .contains("<td data-label=\"Route\">backup</td><td data-label=\"Sent\">1</td>"),
        "{}",
        d.body
    );
    // The backup's own failure after the login: the challenge is answered, nothing more goes.
    let backup_path = receipt_path(&backup);
    s.get(&backup_path, &[("status", "16")]).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!((gw.count(), backup.count()), (1, 1));
}

#[tokio::test]
async fn no_receipt_within_dlr_timeout_fails_over_and_a_delivered_one_does_not() {
    let (gw, backup) = (Gateway::start().await, Gateway::start().await);
    let s = server_with_a_backup(&gw, &backup).await;
    // Delivered in time: no second SMS, whatever time passes then.
    s.check(&[("user", "alice"), ("pass", "1234")]).await;
    s.get(&receipt_path(&gw), &[("status", "1")]).await;
    s.advance(60);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(backup.count(), 0);
    // No receipt at all: after DLR_TIMEOUT (30 s on the server's clock) the backup carries it.
    let (_, b) = s.check(&[("user", "bob"), ("pass", "1234")]).await;
    assert!(
        b["detail"]["transaction_id"].is_null(),
        "bob has no token: {b}"
    );
    s.enroll("bob", "SMS2", "5678", "+4915100000002").await;
    let (_, b) = s.check(&[("user", "bob"), ("pass", "5678")]).await;
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let code = gw.last_otp("+4915100000002");
    s.advance(20);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(backup.count(), 0, "not before DLR_TIMEOUT");
    s.advance(11);
    until_received(&backup, 1).await;
    assert_eq!(backup.last_otp("+4915100000002"), code);
    let (_, b) = s
        .check(&[("user", "bob"), ("transaction_id", &tid), ("pass", &code)])
        .await;
    assert_eq!(b["result"]["value"], true, "{b}");
}

/// A free port on 127.0.0.1 (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real Kannel (Debian's `kannel` and `kannel-extras`): bearerbox, its fake SMSC
/// `fakesmsc` (holding the other end, its standard input kept open) and smsbox with a
/// `sendsms` user, from a generated configuration; stopped by their PIDs when dropped. None
/// (said) when Kannel is not installed.
struct Kannel {
    sendsms: u16,
    children: Vec<std::process::Child>,
    dir: tempfile::TempDir,
}

impl Kannel {
    // Starting servers and waiting for them; no test depends on the time it takes.
    #[allow(clippy::disallowed_methods)]
    fn start() -> Option<Kannel> {
        const BEARERBOX: &str = "/usr/sbin/bearerbox";
        const SMSBOX: &str = "/usr/sbin/smsbox";
        const FAKESMSC: &str = "/usr/lib/kannel/test/fakesmsc";
        if [BEARERBOX, SMSBOX, FAKESMSC]
            .iter()
            .any(|p| !std::path::Path::new(p).exists())
        {
            eprintln!("skipped: Kannel (kannel, kannel-extras) is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let (admin, boxes, smsc, sendsms) = (free_port(), free_port(), free_port(), free_port());
        let conf = dir.path().join("kannel.conf");
        std::fs::write(
            &conf,
            format!(
                "group = core\nadmin-port = {admin}\nadmin-password = admin-secret\n\
                 smsbox-port = {boxes}\nbox-allow-ip = \"127.0.0.1\"\n\
                 log-file = \"{d}/bearerbox.log\"\nlog-level = 1\ndlr-storage = internal\n\n\
                 group = smsc\nsmsc = fake\nsmsc-id = fake\nhost = 127.0.0.1\nport = {smsc}\n\n\
                 group = smsbox\nbearerbox-host = 127.0.0.1\nbearerbox-port = {boxes}\n\
                 sendsms-port = {sendsms}\nglobal-sender = 12345\n\
                 log-file = \"{d}/smsbox.log\"\nlog-level = 1\n\n\
                 group = sendsms-user\nusername = otpgate\npassword = kannel-pw\n\n\
                 group = sms-service\nkeyword = default\ntext = \"no service\"\n"
            ),
        )
        .unwrap();
        let quiet = || std::process::Stdio::null();
        let mut children = vec![
            std::process::Command::new(BEARERBOX)
                .arg(&conf)
                .stdout(quiet())
                .stderr(quiet())
                .spawn()
                .unwrap(),
        ];
        let wait_for = |port: u16| {
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            panic!("Kannel did not open port {port}");
        };
        wait_for(smsc);
        // fakesmsc in its interactive mode: it holds the SMSC side while its input is open.
        children.push(
            std::process::Command::new(FAKESMSC)
                .args(["-H", "127.0.0.1", "-r", &smsc.to_string(), "-m", "0"])
                .stdin(std::process::Stdio::piped())
                .stdout(quiet())
                .stderr(quiet())
                .spawn()
                .unwrap(),
        );
        children.push(
            std::process::Command::new(SMSBOX)
                .arg(&conf)
                .stdout(quiet())
                .stderr(quiet())
                .spawn()
                .unwrap(),
        );
        wait_for(sendsms);
        Some(Kannel {
            sendsms,
            children,
            dir,
        })
    }
}

impl Drop for Kannel {
    // Waiting for processes to exit in clean-up; no test depends on the time it takes.
    #[allow(clippy::disallowed_methods)]
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = std::process::Command::new("kill")
                .arg(c.id().to_string())
                .status();
            for _ in 0..50 {
                if c.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = &self.dir;
    }
}

/// Forwards GET requests to a base URL set once the server runs (its port is not known when
/// its `public_url` is configured): the public URL Kannel calls back.
async fn relay() -> (String, std::sync::Arc<std::sync::Mutex<String>>) {
    let target = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let t = target.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let t = t.clone();
        async move {
            let base = t.lock().unwrap().clone();
            let url = format!(
                "{base}{}",
                uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
            );
            match reqwest::Client::new().get(url).send().await {
                Ok(r) => axum::http::StatusCode::from_u16(r.status().as_u16()).unwrap(),
                Err(_) => axum::http::StatusCode::BAD_GATEWAY,
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, target)
}

#[tokio::test]
async fn a_login_through_kannel_shows_its_sms_delivered() {
    let Some(kannel) = Kannel::start() else {
        return;
    };
    let (public, target) = relay().await;
    let s = Server::start_with(|c| c.server.public_url = Some(public.clone())).await;
    *target.lock().unwrap() = s.url("");
    let unused = Gateway::start().await;
    s.setup(&unused.url("/sms")).await;
    let sendsms = format!("http://127.0.0.1:{}/cgi-bin/sendsms", kannel.sendsms);
    s.ok(
        "/smsgateway",
        &[
            ("name", "kannel"),
            ("module", "http"),
            ("option.URL", &sendsms),
            ("option.HTTP_METHOD", "GET"),
            ("option.username", "otpgate"),
            ("option.password", "kannel-pw"),
            ("option.to", "{phone}"),
            ("option.text", "{otp}"),
            ("option.dlr-mask", "31"),
            ("option.dlr-url", "{dlr_url}?status=%d"),
            ("option.RETURN_SUCCESS", "Accepted"),
        ],
    )
    .await;
    s.default_gateway_sending_every_time("kannel").await;
    s.enroll("alice", "SMS1", "1234", ALICE).await;
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    let tid = b["detail"]["transaction_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no challenge through Kannel: {b}"))
        .to_owned();
    // Kannel reports 8 (taken by the SMSC) and then 1 (delivered) within moments.
    let mut state = String::new();
    for _ in 0..100 {
        let list = messages(&s, &[("transaction_id", &tid)]).await;
        state = list[0]["state"].as_str().unwrap_or_default().to_owned();
        if state == "delivered" {
            assert_eq!(list[0]["status"], "1");
            assert_eq!(list[0]["gateway"], "kannel");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(state, "delivered", "Kannel's receipts did not arrive");
    let metrics = s.metrics().await;
    assert!(
        metrics.contains("otpgate_sms_delivery_total{gateway=\"kannel\",state=\"delivered\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_queued_answer_counts_as_accepted_when_the_gateway_says_so() {
    let gw = Gateway::start().await;
    let s = server_with_receipts(&gw).await;
    // Kannel's answer while its SMSC link is down.
    gw.set_mode(Mode::Ok("3: Queued for later delivery"));
    let define = async |queued: &str| {
        let url = gw.url("/sms");
        let mut form = vec![
            ("name", "gw"),
            ("module", "http"),
            ("option.URL", url.as_str()),
            ("option.HTTP_METHOD", "POST"),
            ("option.RETURN_SUCCESS", "Accepted"),
            ("option.text", "{otp}"),
            ("option.phone", "{phone}"),
            ("option.dlr", "{dlr_url}?status=%d"),
        ];
        if !queued.is_empty() {
            form.push(("option.RETURN_QUEUED", queued));
        }
        s.ok("/smsgateway", &form).await;
    };
    define("").await;
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert!(
        b["detail"]["transaction_id"].is_null(),
        "a send failure: {b}"
    );
    assert_eq!(messages(&s, &[]).await[0]["state"], "not_sent");
    define("Queued").await;
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    let tid = b["detail"]["transaction_id"]
        .as_str()
        .unwrap_or_else(|| panic!("queued is taken: {b}"))
        .to_owned();
    assert_eq!(
        messages(&s, &[("transaction_id", &tid)]).await[0]["state"],
        "accepted"
    );
    // Delivered later; the code works.
    s.get(&receipt_path(&gw), &[("status", "1")]).await;
    assert_eq!(
        messages(&s, &[("transaction_id", &tid)]).await[0]["state"],
        "delivered"
    );
    let otp = gw.last_otp(ALICE);
    let (_, b) = s
        .check(&[("user", "alice"), ("transaction_id", &tid), ("pass", &otp)])
        .await;
    assert_eq!(b["result"]["value"], true, "{b}");
}

#[tokio::test]
async fn when_no_gateway_takes_the_sms_the_same_code_goes_by_e_mail_where_a_policy_allows() {
    use crate::support::{SmtpOptions, SmtpPeer};
    let gw = Gateway::start().await;
    gw.set_mode(Mode::Status(500));
    let smtp = SmtpPeer::start(SmtpOptions::default()).await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    let port = smtp.port.to_string();
    s.ok(
        "/smtpserver/mailhub",
        &[
            ("server", "127.0.0.1"),
            ("port", &port),
            ("sender", "otp@example.com"),
            ("tls", "0"),
        ],
    )
    .await;
    s.ok(
        "/user/",
        &[
            ("user", "dora"),
            ("resolver", "local"),
            ("mobile", "+4915100000004"),
            ("email", "dora.test@example.org"),
            ("password", "dora-pw"),
        ],
    )
    .await;
    s.enroll("dora", "SMS4", "1234", "+4915100000004").await;
    s.enroll("alice", "SMS1", "1234", ALICE).await;
    // Without the policy the login is refused as before.
    let (_, b) = s.check(&[("user", "dora"), ("pass", "1234")]).await;
    assert_eq!(
        b["detail"]["message"], "The PIN was correct, but the SMS could not be sent!",
        "{b}"
    );
    assert!(smtp.mails().is_empty());
    // The policy must name a server that exists.
    let (st, b) = s
        .apost(
            "/policy/fallback",
            &[
                ("scope", "authentication"),
                ("action", "sms_email_fallback=nomail"),
            ],
        )
        .await;
    assert_eq!(st, 400, "{b}");
    assert!(b.to_string().contains("there is no SMTP server"), "{b}");
    s.ok(
        "/policy/fallback",
        &[
            ("scope", "authentication"),
            (
                "action",
                "sms_email_fallback=mailhub, smstext=Your code: {otp}",
            ),
        ],
    )
    .await;
    let (_, b) = s.check(&[("user", "dora"), ("pass", "1234")]).await;
    assert_eq!(
        b["detail"]["message"],
        "The SMS could not be sent. Enter the code sent by e-mail to d***@example.org:",
        "{b}"
    );
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec!["dora.test@example.org".to_owned()]);
    let code: String = mails[0]
        .data
        .split("Your code: ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    assert!(
        code.chars().all(|c| c.is_ascii_digit()),
        "{}",
        mails[0].data
    );
    let (_, b) = s
        .check(&[("user", "dora"), ("transaction_id", &tid), ("pass", &code)])
        .await;
    assert_eq!(b["result"]["value"], true, "{b}");
    // The audit says where the code went.
    let (_, b) = s.aget("/audit/", &[("serial", "SMS4")]).await;
    assert!(
        b.to_string()
            .contains("SMS4 by e-mail (mailhub), no gateway took the SMS"),
        "{b}"
    );
    // A user without an address in the user store gets the old answer.
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_eq!(
        b["detail"]["message"], "The PIN was correct, but the SMS could not be sent!",
        "{b}"
    );
    assert_eq!(smtp.mails().len(), 1);
}
