//! The load generator (`otpgate-load`) against the real server on port 0: its own SMS
//! gateway receives the OTPs, every mode completes flows without errors, and the figures are
//! consistent. (Speed is measured by the benchmark scripts, never here.)

use crate::support::*;
use otpgate_load::{Mode, Options, run_with, start_gateway};
use std::time::Duration;

async fn ready(
    users: usize,
) -> (
    Server,
    std::net::SocketAddr,
    std::sync::Arc<otpgate_load::Inbox>,
) {
    let s = Server::start().await;
    let (addr, inbox) = start_gateway("127.0.0.1:0".parse().unwrap()).await.unwrap();
    s.ok("/resolver/bench", &[("type", "internalresolver")])
        .await;
    s.ok("/realm/benchrealm", &[("resolvers", "bench")]).await;
    s.http_gateway("benchgw", &format!("http://{addr}/sms/send"), &[])
        .await;
    s.default_gateway_sending_every_time("benchgw").await;
    // The peer harness's numbers (+49151 and 7 digits) are not real German mobiles.
    s.ok(
        "/system/setConfig",
        &[
            ("sms.number_check", "lenient"),
            ("sms.limit.prefix", "0"),
            ("sms.limit.global", "0"),
        ],
    )
    .await;
    for i in 0..users {
        let user = format!("user{i:04}");
        let phone = format!("+49151{i:07}");
        s.ok(
            "/user/",
            &[("user", &user), ("resolver", "bench"), ("mobile", &phone)],
        )
        .await;
        let (st, b) = s
            .apost(
                "/token/init",
                &[
                    ("type", "sms"),
                    ("user", &user),
                    ("pin", &format!("pin{user}")),
                    ("dynamic_phone", "1"),
                ],
            )
            .await;
        assert_eq!(st, 200, "{b}");
    }
    (s, addr, inbox)
}

fn options(s: &Server, addr: std::net::SocketAddr, mode: Mode, users: usize) -> Options {
    Options {
        base_urls: vec![s.base.clone()],
        gateway_listen: addr,
        users,
        user_offset: 0,
        concurrency: 3,
        duration: Duration::from_millis(800),
        warmup: Duration::from_millis(200),
        mode,
        user_prefix: "user".into(),
        pin_prefix: "pin".into(),
        phone_prefix: "+49151".into(),
        sms_wait: Duration::from_secs(3),
        timeout: Duration::from_secs(10),
        server_pid: Some(std::process::id()),
    }
}

#[tokio::test]
async fn every_mode_completes_flows_through_its_own_gateway_without_errors() {
    let users = 6;
    let (s, addr, inbox) = ready(users).await;
    for mode in [Mode::Txid, Mode::Pinotp, Mode::Step1, Mode::Step2] {
        let r = run_with(options(&s, addr, mode, users), inbox.clone())
            .await
            .unwrap();
        let j = &r.json;
        assert_eq!(r.errors, 0, "{mode:?}: {j}");
        assert!(r.completed > 0, "{mode:?}: {j}");
        let completed = j["completed"].as_u64().unwrap();
        assert_eq!(completed, r.completed);
        match mode {
            Mode::Txid | Mode::Pinotp => {
                assert_eq!(
                    j["latency_ms"]["flow"]["n"].as_u64(),
                    Some(completed),
                    "{j}"
                );
                assert!(
                    j["latency_ms"]["step2"]["n"].as_u64().unwrap() >= completed,
                    "{j}"
                );
            }
            Mode::Step1 => assert_eq!(j["latency_ms"]["step2"]["n"], 0, "{j}"),
            Mode::Step2 => assert_eq!(
                j["latency_ms"]["step2"]["n"].as_u64(),
                Some(completed),
                "{j}"
            ),
        }
        assert!(j["rate_per_s"].as_f64().unwrap() > 0.0);
        assert!(j["cpu"]["server_cpu_s"].as_f64().is_some(), "{j}");
        let (rss, anon) = (
            j["server_rss_max_mib"].as_f64().unwrap(),
            j["server_rss_anon_max_mib"].as_f64().unwrap(),
        );
        assert!(0.0 < anon && anon < rss, "{j}");
    }
    // Every SMS the gateway received was a real one of the server's.
    assert!(inbox.received() > 0);
    let m = s.metrics().await;
    assert!(
        m.contains("otpgate_sms_attempts_total{gateway=\"benchgw\",result=\"delivered\"}"),
        "{m}"
    );
}

#[tokio::test]
async fn requests_go_to_every_base_url_in_turn() {
    let (s, addr, inbox) = ready(2).await;
    // The second "node" is a port nobody listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let mut o = options(&s, addr, Mode::Txid, 2);
    o.base_urls.push(dead);
    o.duration = Duration::from_millis(400);
    let received = inbox.received();
    let r = run_with(o, inbox.clone()).await.unwrap();
    assert_eq!(r.json["nodes"], 2, "{}", r.json);
    let refused: u64 = ["step1_connect", "step2_connect"]
        .iter()
        .filter_map(|k| r.json["errors"][k]["count"].as_u64())
        .sum();
    assert!(refused > 0, "{}", r.json);
    assert!(inbox.received() > received, "the live node sent SMS");
}

#[tokio::test]
async fn failures_are_counted_by_kind_with_a_sample() {
    let (s, addr, inbox) = ready(2).await;
    // A wrong PIN prefix: step 1 is rejected, no challenge.
    let mut o = options(&s, addr, Mode::Txid, 2);
    o.pin_prefix = "wrong".into();
    o.duration = Duration::from_millis(300);
    let r = run_with(o, inbox).await.unwrap();
    assert_eq!(r.completed, 0);
    assert!(r.errors > 0);
    let e = &r.json["errors"]["step1_no_challenge"];
    assert!(
        e["count"].as_u64().unwrap() > 0 && e["sample"].as_str().unwrap().contains("REJECT"),
        "{}",
        r.json
    );
    // Step-2 mode with no challenge to answer stops with its errors (it went round for good).
    let (s, addr, inbox) = ready(2).await;
    let mut o = options(&s, addr, Mode::Step2, 2);
    o.pin_prefix = "wrong".into();
    let r = tokio::time::timeout(Duration::from_secs(30), run_with(o, inbox))
        .await
        .expect("step-2 mode stops when no challenge succeeds")
        .unwrap();
    assert_eq!(r.completed, 0);
    assert!(
        r.json["errors"]["step1_no_challenge"]["count"].as_u64() > Some(0),
        "{}",
        r.json
    );
}
