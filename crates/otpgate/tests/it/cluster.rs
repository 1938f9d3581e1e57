//! Two real otpgate nodes on one PostgreSQL database (`TEST_POSTGRES_URL`, set by
//! `scripts/test`): a challenge created on one node is answered on the other, an OTP is
//! accepted exactly once cluster-wide, counters never lose an increment, and a node with
//! other keys refuses to start.

use crate::support::*;
use otpgate_core::Clock;
use otpgate_store::testdb;
use std::sync::Arc;

/// The PostgreSQL admin URL; None (test skipped) only outside CI.
fn postgres() -> Option<String> {
    match std::env::var(testdb::ENV) {
        Ok(url) => Some(url),
        Err(_) if std::env::var("CI").is_ok() => {
            panic!("CI must set {} (scripts/test does)", testdb::ENV)
        }
        Err(_) => {
            eprintln!("skipped: {} is not set", testdb::ENV);
            None
        }
    }
}

struct Cluster {
    a: Server,
    b: Server,
    gw: Gateway,
    url: String,
}

async fn cluster() -> Option<Cluster> {
    let admin = postgres()?;
    let url = testdb::fresh_postgres(&admin).await.unwrap();
    let gw = Gateway::start().await;
    let u = url.clone();
    let a = Server::start_with(move |c| c.server.database_url = u).await;
    // The second node shares the first one's key files, as every node of a cluster must, and
    // talks to the database over TLS (rustls).
    let (u, keys) = (format!("{url}?sslmode=require"), a.dir.path().join("data"));
    let b = Server::start_with(move |c| {
        c.server.database_url = u;
        c.server.data_dir = keys;
    })
    .await;
    a.setup(&gw.url("/sms")).await;
    a.enroll("alice", "SMS1", "1234", "+4915100000001").await;
    Some(Cluster { a, b, gw, url })
}

#[tokio::test]
async fn a_challenge_from_node_a_is_answered_on_node_b_once() {
    let Some(c) = cluster().await else { return };
    let (_, b) = c.a.check(&[("user", "alice"), ("pass", "1234")]).await;
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let otp = c.gw.last_otp("+4915100000001");
    let (_, r) =
        c.b.check(&[("user", "alice"), ("transaction_id", &tid), ("pass", &otp)])
            .await;
    assert_eq!(value(&r), true, "{r}");
    let (_, r) =
        c.a.check(&[("user", "alice"), ("transaction_id", &tid), ("pass", &otp)])
            .await;
    assert_eq!(value(&r), false);
    // An admin JWT of one node works on the other (shared jwt.secret), and the audit is shared.
    let r =
        c.b.client
            .get(c.b.url("/audit/"))
            .header("Authorization", c.a.token())
            .query(&[("action", "*validate*")])
            .send()
            .await
            .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(value(&body)["count"], 3);
}

#[tokio::test]
async fn one_transaction_raced_across_both_nodes_is_accepted_once() {
    let Some(c) = cluster().await else { return };
    let (_, b) = c.a.check(&[("user", "alice"), ("pass", "1234")]).await;
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let otp = c.gw.last_otp("+4915100000001");
    let targets = (0..16)
        .map(|i| if i % 2 == 0 { &c.a } else { &c.b })
        .map(|node| (node.client.clone(), node.url("/validate/check")))
        .collect();
    assert_eq!(accepted_in_race(targets, &tid, &otp).await, 1);
}

#[tokio::test]
async fn parallel_pin_requests_on_both_nodes_lose_no_counter_step() {
    let Some(c) = cluster().await else { return };
    let mut tasks = Vec::new();
    for i in 0..12 {
        let node = if i % 2 == 0 { &c.a } else { &c.b };
        let (client, url) = (node.client.clone(), node.url("/validate/check"));
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .form(&[("user", "alice"), ("pass", "1234")])
                .send()
                .await
                .unwrap();
            r.json::<serde_json::Value>().await.unwrap()
        }));
    }
    let mut challenges = 0;
    for t in tasks {
        let b = t.await.unwrap();
        assert_eq!(b["result"]["authentication"], "CHALLENGE", "{b}");
        challenges += 1;
    }
    let t = c.a.token_info("SMS1").await;
    assert_eq!(
        t["count"], challenges,
        "every challenge moved the HOTP counter exactly once"
    );
    let otps: std::collections::BTreeSet<String> =
        c.gw.received()
            .iter()
            .filter_map(|r| r.field("text"))
            .collect();
    assert_eq!(
        otps.len(),
        challenges as usize,
        "every SMS carried a different OTP"
    );
    assert_eq!(t["failcount"], 0, "correct PINs count no failure");
}

#[tokio::test]
async fn the_fail_counter_loses_no_increment_across_nodes() {
    let Some(c) = cluster().await else { return };
    c.a.ok("/token/set/SMS1", &[("max_failcount", "100")]).await;
    let mut tasks = Vec::new();
    for i in 0..30 {
        let node = if i % 2 == 0 { &c.a } else { &c.b };
        let (client, url) = (node.client.clone(), node.url("/validate/check"));
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .form(&[("user", "alice"), ("pass", format!("wrong{i}").as_str())])
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(c.b.token_info("SMS1").await["failcount"], 30);
}

#[tokio::test]
async fn a_node_whose_keys_cannot_open_the_database_refuses_to_start() {
    let Some(c) = cluster().await else { return };
    let other = tempfile::tempdir().unwrap();
    let mut config = test_config(other.path());
    config.server.database_url = c.url.clone();
    let clock =
        otpgate_core::ManualClock::new(chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap());
    let err = otpgate::bootstrap::load_with_clock(config, Arc::new(clock))
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .contains("cannot decrypt this database's secrets"),
        "{err:#}"
    );
}

#[tokio::test]
async fn losing_the_database_answers_503_in_the_envelope_and_healthz_says_so() {
    let Some(c) = cluster().await else { return };
    let r = c.a.client.get(c.a.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let admin = postgres().unwrap();
    let name = c
        .url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    let r = c.a.client.get(c.a.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let (st, b) = c.b.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_eq!((st, code(&b)), (503, -503), "{b}");
    assert_eq!(b["result"]["status"], false);
}

#[tokio::test]
async fn both_nodes_share_the_outbox_and_each_notification_goes_out_once() {
    let Some(c) = cluster().await else { return };
    let notify = Gateway::start().await;
    c.a.http_gateway("notify", &notify.url("/notify"), &[])
        .await;
    let numbers: Vec<String> = (0..40).map(|i| format!("+49170000{i:04}")).collect();
    c.a.ok(
        "/event",
        &[
            ("name", "fan-out"),
            ("event", "token_init"),
            ("handlermodule", "UserNotification"),
            ("action", "sendsms"),
            ("option.smsconfig", "notify"),
            ("option.To", "number"),
            ("option.To number", &numbers.join(",")),
            ("option.body", "{serial} enrolled"),
        ],
    )
    .await;
    // Queued on node b (which sees a's handler within its cache time); both nodes deliver.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    c.b.enroll("bob", "SMS2", "1234", "+4915100000002").await;
    let (sa, sb) = (c.a.app.services.clone(), c.b.app.services.clone());
    for _ in 0..400 {
        let (ra, rb) = tokio::join!(sa.deliver_outbox(), sb.deliver_outbox());
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra.retried + rb.retried + ra.dead + rb.dead, 0);
        if notify.count() >= 40 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut phones: Vec<String> = notify
        .received()
        .iter()
        .map(|r| r.field("phone").unwrap())
        .collect();
    assert_eq!(phones.len(), 40, "each notification exactly once");
    phones.sort();
    phones.dedup();
    assert_eq!(phones, numbers);
    let (_, b) = c.a.aget("/event/outbox", &[("status", "sent")]).await;
    assert_eq!(value(&b)["count"], 40);
}

#[tokio::test]
async fn send_limits_are_shared_by_both_nodes_under_a_race() {
    let Some(c) = cluster().await else { return };
    c.a.ok("/system/setConfig", &[("sms.limit.phone", "4/600")])
        .await;
    let before = c.gw.count();
    let (a, b) = (Arc::new(c.a), Arc::new(c.b));
    let mut tasks = Vec::new();
    for i in 0..12 {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let (_, r) = node.check(&[("user", "alice"), ("pass", "1234")]).await;
            r
        }));
    }
    let (mut sent, mut refused) = (0, 0);
    for t in tasks {
        let r = t.await.unwrap();
        if r["result"]["authentication"] == "CHALLENGE" {
            sent += 1;
        } else {
            assert_eq!(
                msg(&r),
                "Too many SMS were requested. Please try again later.",
                "{r}"
            );
            assert!(r["detail"]["retry_after"].as_i64().unwrap() > 0);
            refused += 1;
        }
    }
    assert_eq!((sent, refused), (4, 8));
    assert_eq!(c.gw.count() - before, 4, "4 SMS went out across both nodes");
}

/// Each node keeps one copy of the settings and rereads it when the database's settings
/// version moved: a change on node A applies to node B's very next request.
#[tokio::test]
async fn a_policy_changed_on_node_a_applies_to_node_b_at_once() {
    let Some(c) = cluster().await else { return };
    let ghost = [("user", "ghost"), ("pass", "1234")];
    // Node B reads (and keeps) the settings without the policy.
    let (status, r) = c.b.check(&ghost).await;
    assert_eq!(status, 400, "{r}");
    assert_eq!(r["result"]["error"]["code"], 904, "{r}");
    let (_, r) =
        c.a.apost(
            "/policy/pass",
            &[("scope", "authentication"), ("action", "passOnNoUser")],
        )
        .await;
    assert!(r["result"]["status"] == true, "{r}");
    let (_, r) = c.b.check(&ghost).await;
    assert_eq!(value(&r), true, "node B still used its old copy: {r}");
    let (_, r) = c.a.adelete("/policy/pass").await;
    assert!(r["result"]["status"] == true, "{r}");
    let (status, r) = c.b.check(&ghost).await;
    assert_eq!(
        (status, &r["result"]["error"]["code"]),
        (400, &serde_json::json!(904)),
        "node B still used its old copy: {r}"
    );
    // A realm change too: alice becomes unknown on node B as soon as node A removes the
    // default realm's resolver from it.
    let (_, r) = c.b.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert!(r["detail"]["transaction_id"].is_string(), "{r}");
    let (_, r) = c.a.adelete("/realm/realm1").await;
    assert!(r["result"]["status"] == true, "{r}");
    let (status, r) = c.b.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_eq!(status, 400, "{r}");
}

/// PostgreSQL refuses text with a NUL byte. Audit rows are written in batches; a batch that
/// holds such a row is written row by row, so the hostile request loses only its own row.
#[tokio::test]
async fn a_row_postgresql_refuses_costs_no_other_requests_audit() {
    let Some(c) = cluster().await else { return };
    let a = Arc::new(c.a);
    let calls: Vec<_> = (0..48)
        .map(|i| {
            let a = a.clone();
            tokio::spawn(async move {
                let user = format!("nobody{i}");
                let realm = if i % 8 == 0 { "bad\0realm" } else { "" };
                a.check(&[("user", user.as_str()), ("realm", realm), ("pass", "x")])
                    .await
            })
        })
        .collect();
    for call in calls {
        let (status, b) = call.await.unwrap();
        assert!(status < 500, "{b}");
    }
    let (_, b) = a
        .aget("/audit/", &[("action", "*validate*"), ("page_size", "100")])
        .await;
    let v = value(&b);
    let users: std::collections::BTreeSet<String> = v["auditdata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["user"].as_str().unwrap().to_owned())
        .collect();
    for i in (0..48).filter(|i| i % 8 != 0) {
        assert!(
            users.contains(&format!("nobody{i}")),
            "nobody{i} lost its audit row: {v}"
        );
    }
}

#[tokio::test]
async fn web_sessions_and_dashboard_counts_span_the_nodes() {
    let Some(c) = cluster().await else { return };
    // Both nodes on one clock (each test server's manual clock starts at its own start; across
    // 00:00 UTC they could disagree about "today").
    c.b.clock.set(c.a.clock.now());
    // The PIN step on node A, the OTP step on node B.
    let mut on_a = crate::web::Browser::new(&c.a);
    let p = on_a
        .post("/ui/login", &[("user", "alice"), ("pass", "1234")])
        .await;
    assert_eq!(p.location, "/ui/login/otp", "{}", p.body);
    let otp = c.gw.last_otp("+4915100000001");
    let mut on_b = crate::web::Browser::new(&c.b);
    on_b.cookies = on_a.cookies.clone();
    let p = on_b.post("/ui/login/otp", &[("otp", &otp)]).await;
    assert_eq!(p.location, "/ui/me", "{}", p.body);
    let csrf = on_b.get("/ui/me").await.csrf();
    // Signed out on B: the same cookie is dead on A.
    let copy = on_b.cookies.clone();
    on_b.post("/ui/logout", &[("csrf", &csrf)]).await;
    on_a.cookies = copy;
    assert_eq!(on_a.get("/ui/me").await.location, "/ui/login");
    // Node A's SMS (flushed by its ticker; here at once) is on node B's dashboard.
    c.a.app.services.flush_sms_stats().await.unwrap();
    let mut admin = crate::web::Browser::new(&c.b);
    admin.admin_login().await;
    let d = admin.get("/ui/admin/").await;
    assert!(
        d.body.contains("<dt>SMS sent today</dt><dd>1</dd>"),
        "{}",
        d.body
    );
}

/// The per-address rate limit is the cluster's: with two live nodes each allows half the
/// burst, so an address spreading its requests over both gets what one node would allow it
/// (before, each node allowed the whole burst: twice as much).
#[tokio::test]
async fn the_per_address_rate_limit_is_shared_by_the_live_nodes() {
    let Some(admin) = postgres() else {
        return;
    };
    let url = testdb::fresh_postgres(&admin).await.unwrap();
    let limited = |c: &mut otpgate::config::Config| {
        c.server.rate_limit_per_sec = 0.5;
        c.server.rate_limit_burst = 10;
    };
    let u = url.clone();
    let a = Server::start_with(move |c| {
        c.server.database_url = u;
        limited(c);
    })
    .await;
    let (u, keys) = (url.clone(), a.dir.path().join("data"));
    let b = Server::start_with(move |c| {
        c.server.database_url = u;
        c.server.data_dir = keys;
        limited(c);
    })
    .await;
    // Both say they are alive (the server does this every 5 s); a node that has not heard of
    // the other yet counts itself alone, so the first beat is repeated.
    for _ in 0..2 {
        otpgate::serve::share_limits(&a.app).await;
        otpgate::serve::share_limits(&b.app).await;
    }
    // The clocks stand still: no bucket refills during the test.
    let mut allowed = 0;
    for i in 0..20 {
        let s = if i % 2 == 0 { &a } else { &b };
        let (st, _) = s.check(&[("user", "nobody"), ("pass", "x")]).await;
        allowed += usize::from(st != 429);
    }
    assert_eq!(allowed, 10, "the cluster allows one burst in all");
    // A node whose peer is gone takes the whole rate again.
    drop(b);
    a.advance(60);
    otpgate::serve::share_limits(&a.app).await;
    let m = a.metrics().await;
    assert!(m.contains("otpgate_rate_limit_nodes 1"), "{m}");
}

#[tokio::test]
async fn a_failed_receipt_taken_by_the_other_node_fails_over_from_the_sending_node() {
    let Some(admin) = postgres() else { return };
    let url = testdb::fresh_postgres(&admin).await.unwrap();
    let (gw, backup) = (Gateway::start().await, Gateway::start().await);
    let public = "https://otp.example.org";
    let u = url.clone();
    let a = Server::start_with(move |c| {
        c.server.database_url = u;
        c.server.public_url = Some(public.into());
    })
    .await;
    let (u, keys) = (url.clone(), a.dir.path().join("data"));
    let b = Server::start_with(move |c| {
        c.server.database_url = u;
        c.server.data_dir = keys;
        c.server.public_url = Some(public.into());
    })
    .await;
    a.setup(&gw.url("/sms")).await;
    a.http_gateway(
        "backup",
        &backup.url("/sms"),
        &[("option.dlr", "{dlr_url}")],
    )
    .await;
    a.http_gateway(
        "gw",
        &gw.url("/sms"),
        &[("option.dlr", "{dlr_url}"), ("option.FAILOVER", "backup")],
    )
    .await;
    a.enroll("alice", "SMS1", "1234", "+4915100000001").await;
    let (_, r) = a.check(&[("user", "alice"), ("pass", "1234")]).await;
    let tid = r["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let code = gw.last_otp("+4915100000001");
    // The gateway reports the failure to node B; node A, which sent the SMS, sees it in the
    // shared record and sends the same code through the backup.
    let dlr = gw.last().field("dlr").unwrap();
    let path = dlr.strip_prefix(public).unwrap().to_owned();
    let (st, r) = b.get(&path, &[("status", "16")]).await;
    assert_eq!(
        (st, value(&r)),
        (200, &serde_json::Value::Bool(true)),
        "{r}"
    );
    for _ in 0..150 {
        if backup.count() > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(backup.last_otp("+4915100000001"), code);
    let (_, r) = b
        .check(&[("user", "alice"), ("transaction_id", &tid), ("pass", &code)])
        .await;
    assert_eq!(value(&r), true, "{r}");
}
