//! Send limits, the resend cooldown and the per-challenge answer limit, against a real local
//! HTTP gateway and the injected clock.

use crate::support::*;
use serde_json::Value;

const ALICE: &str = "+4915100000001";

async fn set(s: &Server, pairs: &[(&str, &str)]) {
    s.ok("/system/setConfig", pairs).await;
}

/// A PIN request for `user`.
async fn ask(s: &Server, user: &str) -> Value {
    let (st, b) = s.check(&[("user", user), ("pass", "1234")]).await;
    assert_eq!(st, 200, "{b}");
    b
}

fn challenged(b: &Value) -> bool {
    b["result"]["authentication"] == "CHALLENGE"
}

fn limited(b: &Value) -> i64 {
    assert_eq!(b["result"]["authentication"], "REJECT", "{b}");
    assert_eq!(
        msg(b),
        "Too many SMS were requested. Please try again later."
    );
    b["detail"]["retry_after"].as_i64().expect("retry_after")
}

/// A user with an SMS token (PIN 1234) that sends to the user's user-store `mobile`.
async fn dynamic_user(s: &Server, user: &str, mobile: &str) {
    s.ok(
        "/user/",
        &[
            ("user", user),
            ("resolver", "local"),
            ("mobile", mobile),
            ("password", "x"),
        ],
    )
    .await;
    s.ok(
        "/token/init",
        &[
            ("type", "sms"),
            ("user", user),
            ("pin", "1234"),
            ("dynamic_phone", "1"),
        ],
    )
    .await;
}

/// `n` pumping accounts `pump0`… whose numbers lie in one range (+882130…).
async fn pump_accounts(s: &Server, n: usize) {
    for i in 0..n {
        dynamic_user(s, &format!("pump{i}"), &format!("+88213{i:06}")).await;
    }
}

#[tokio::test]
async fn the_phone_limit_holds_at_its_boundary_and_never_touches_the_fail_counter() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    set(&s, &[("sms.limit.phone", "3/600")]).await;
    let serial = s.enroll("alice", "SMS1", "1234", ALICE).await;
    for i in 0..3 {
        assert!(challenged(&ask(&s, "alice").await), "SMS {i}");
    }
    let b = ask(&s, "alice").await;
    let retry = limited(&b);
    assert!((1..=600).contains(&retry), "{retry}");
    assert_eq!(gw.count(), 3);
    assert_eq!(
        s.token_info(&serial).await["failcount"],
        0,
        "limits never lock"
    );
    let (_, a) = s.aget("/audit/", &[("action", "*validate/check")]).await;
    let detail = value(&a)["auditdata"][0]["action_detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(detail, "refused by send limits: SMS1: phone limit");
    assert!(
        s.metrics()
            .await
            .contains("otpgate_sms_limited_total{limit=\"phone\"} 1")
    );
    // One second before the window ends it still holds; at its end it lets one through.
    s.advance(retry - 1);
    limited(&ask(&s, "alice").await);
    s.advance(1);
    assert!(challenged(&ask(&s, "alice").await));
    assert_eq!(gw.count(), 4);
}

#[tokio::test]
async fn user_prefix_and_global_limits_and_a_failed_send_is_given_back() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    // Per user, across the user's numbers.
    set(&s, &[("sms.limit.user", "2/600")]).await;
    s.enroll("alice", "SMS1", "1234", ALICE).await;
    assert!(challenged(&ask(&s, "alice").await));
    assert!(challenged(&ask(&s, "alice").await));
    limited(&ask(&s, "alice").await);
    set(&s, &[("sms.limit.user", "0")]).await;

    // Per destination prefix (+49151 here): the third number of the range is refused, another
    // country's number passes.
    set(
        &s,
        &[
            ("sms.limit.prefix", "2/600"),
            ("sms.limit.prefix_digits", "5"),
        ],
    )
    .await;
    s.advance(600);
    s.enroll("bob", "SMS2", "1234", "+4915100000002").await;
    s.enroll("carol", "SMS3", "1234", "+4915100000003").await;
    assert!(challenged(&ask(&s, "alice").await));
    assert!(challenged(&ask(&s, "bob").await));
    limited(&ask(&s, "carol").await);
    s.enroll("carol", "SMS3", "1234", "+447400123456").await;
    assert!(challenged(&ask(&s, "carol").await));
    set(&s, &[("sms.limit.prefix", "0")]).await;

    // Global.
    s.advance(600);
    set(&s, &[("sms.limit.global", "1/600")]).await;
    assert!(challenged(&ask(&s, "alice").await));
    limited(&ask(&s, "bob").await);
    set(&s, &[("sms.limit.global", "0")]).await;

    // A send that fails does not count.
    set(&s, &[("sms.limit.phone", "1/600")]).await;
    s.advance(600);
    gw.set_mode(Mode::Status(500));
    let b = ask(&s, "alice").await;
    assert_eq!(
        msg(&b),
        "The PIN was correct, but the SMS could not be sent!"
    );
    gw.set_mode(Mode::Ok("ID 1"));
    assert!(
        challenged(&ask(&s, "alice").await),
        "the failed send was given back"
    );
    limited(&ask(&s, "alice").await);
}

#[tokio::test]
async fn the_client_limit_counts_end_users_named_by_a_trusted_proxy_only() {
    let gw = Gateway::start().await;
    let s = Server::start_with(|c| c.server.trusted_proxies = vec!["127.0.0.0/8".into()]).await;
    s.setup(&gw.url("/sms")).await;
    set(&s, &[("sms.limit.client", "2/600")]).await;
    s.enroll("alice", "SMS1", "1234", ALICE).await;
    s.enroll("bob", "SMS2", "1234", "+4915100000002").await;
    let from = |client: &'static str, user: &'static str| {
        let s = &s;
        async move {
            let (_, b) = s
                .check(&[("user", user), ("pass", "1234"), ("client", client)])
                .await;
            b
        }
    };
    assert!(challenged(&from("203.0.113.5", "alice").await));
    assert!(challenged(&from("203.0.113.5", "bob").await));
    limited(&from("203.0.113.5", "alice").await);
    assert!(
        challenged(&from("203.0.113.6", "alice").await),
        "another end user"
    );
    // X-Forwarded-For: the nearest untrusted entry.
    let r = s
        .client
        .post(s.url("/validate/check"))
        .header("X-Forwarded-For", "203.0.113.5, 127.0.0.9")
        .form(&[("user", "bob"), ("pass", "1234")])
        .send()
        .await
        .unwrap();
    let b: Value = r.json().await.unwrap();
    limited(&b);
    // The application server itself (no end-user address) is not limited per client.
    for _ in 0..3 {
        assert!(challenged(&ask(&s, "bob").await));
    }

    // An untrusted peer cannot name an end user: its `client` parameter is ignored.
    let s2 = Server::start().await;
    s2.setup(&gw.url("/sms")).await;
    set(&s2, &[("sms.limit.client", "1/600")]).await;
    s2.enroll("alice", "SMS1", "1234", ALICE).await;
    for _ in 0..3 {
        let (_, b) = s2
            .check(&[
                ("user", "alice"),
                ("pass", "1234"),
                ("client", "203.0.113.5"),
            ])
            .await;
        assert!(challenged(&b), "{b}");
    }
}

#[tokio::test]
async fn a_pin_request_in_the_resend_cooldown_reuses_the_live_challenge() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    set(&s, &[("sms.resend_cooldown_secs", "30")]).await;
    s.enroll("alice", "SMS1", "1234", ALICE).await;
    let first = ask(&s, "alice").await;
    let tid = first["detail"]["transaction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(first["detail"].get("retry_after").is_none());
    s.advance(10);
    let again = ask(&s, "alice").await;
    assert!(challenged(&again), "{again}");
    assert_eq!(again["detail"]["transaction_id"], tid.as_str());
    assert_eq!(again["detail"]["retry_after"], 20);
    // The prompt says no new SMS is coming (a PAM user would otherwise wait for one).
    let reused = "The code sent 10 seconds ago is still valid. Enter the OTP from the SMS:";
    assert_eq!(again["detail"]["message"], reused, "{again}");
    assert_eq!(again["detail"]["multi_challenge"][0]["message"], reused);
    assert_eq!(again["detail"]["multi_challenge"][0]["serial"], "SMS1");
    assert_eq!(gw.count(), 1, "no second SMS");
    assert!(
        s.metrics()
            .await
            .contains("otpgate_sms_limited_total{limit=\"resend_cooldown\"} 1")
    );
    // The OTP of the one SMS answers it.
    let otp = gw.last_otp(ALICE);
    let (_, ok) = s
        .check(&[("user", "alice"), ("transaction_id", &tid), ("pass", &otp)])
        .await;
    assert_eq!(value(&ok), true, "{ok}");
    // Once answered, a PIN request opens a new challenge with a new code.
    let next = ask(&s, "alice").await;
    let next_tid = next["detail"]["transaction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(next_tid, tid);
    assert_eq!(gw.count(), 2);
    let code = gw.last_otp(ALICE);
    assert_ne!(code, otp);
}

#[tokio::test]
async fn after_the_cooldown_the_same_code_goes_out_again_within_the_send_limits() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    set(
        &s,
        &[
            ("sms.resend_cooldown_secs", "30"),
            ("sms.limit.user", "3/600"),
        ],
    )
    .await;
    // The steps below span 96 s of one 600-s send-limit window.
    s.start_of_window(600);
    s.enroll("alice", "SMS1", "1234", ALICE).await;
    let first = ask(&s, "alice").await;
    let tid = first["detail"]["transaction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = gw.last_otp(ALICE);
    // Past the cooldown the live challenge's code is sent again: same transaction, same
    // code, the ordinary prompt, no retry_after; the user never holds two different codes.
    s.advance(31);
    let again = ask(&s, "alice").await;
    assert!(challenged(&again), "{again}");
    assert_eq!(again["detail"]["transaction_id"], tid.as_str());
    assert_eq!(again["detail"]["message"], "Enter the OTP from the SMS:");
    assert!(again["detail"].get("retry_after").is_none(), "{again}");
    assert_eq!(gw.count(), 2);
    assert_eq!(gw.last_otp(ALICE), code, "the same code");
    // Within the cooldown of that re-send: nothing goes out, the prompt says so.
    s.advance(5);
    let soon = ask(&s, "alice").await;
    assert_eq!(
        soon["detail"]["message"],
        "The code sent 5 seconds ago is still valid. Enter the OTP from the SMS:"
    );
    assert_eq!(gw.count(), 2);
    // The re-sends count against the send limits: the third SMS passes, the fourth does
    // not, and the answer keeps the live challenge with the limit's retry_after.
    s.advance(30);
    ask(&s, "alice").await;
    assert_eq!(gw.count(), 3);
    s.advance(30);
    let capped = ask(&s, "alice").await;
    assert!(challenged(&capped), "{capped}");
    assert_eq!(capped["detail"]["transaction_id"], tid.as_str());
    assert_eq!(gw.count(), 3, "the send limit holds");
    assert!(
        capped["detail"]["retry_after"].as_i64().unwrap() > 0,
        "{capped}"
    );
    assert!(msg(&capped).contains("still valid"), "{capped}");
    // The one code answers the one transaction.
    let (_, ok) = s
        .check(&[("user", "alice"), ("transaction_id", &tid), ("pass", &code)])
        .await;
    assert_eq!(value(&ok), true, "{ok}");
    // A challenge with less than a cooldown left is not re-sent: a new one is opened.
    s.advance(601);
    let fresh = ask(&s, "alice").await;
    let fresh_tid = fresh["detail"]["transaction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.advance(300 - 20);
    let late = ask(&s, "alice").await;
    assert_ne!(
        late["detail"]["transaction_id"],
        fresh_tid.as_str(),
        "{late}"
    );
    // The policy text for a re-used challenge, with its own tags.
    s.ok(
        "/policy/reused",
        &[
            ("scope", "authentication"),
            (
                "action",
                "sms_challenge_reused_text=Code von vor {sent_ago} s gilt noch ({phone_redacted})",
            ),
        ],
    )
    .await;
    s.advance(3);
    let de = ask(&s, "alice").await;
    assert!(
        msg(&de).starts_with("Code von vor 3 s gilt noch (") && !msg(&de).contains("{"),
        "{de}"
    );
}

#[tokio::test]
async fn parallel_pin_requests_send_one_sms_within_the_cooldown() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "SMS1", "1234", ALICE).await;
    set(&s, &[("sms.resend_cooldown_secs", "30")]).await;
    let before = gw.count();
    let mut tasks = Vec::new();
    // Eight at once (fewer than the fail counter's maximum: each attempt holds a place on it
    // while it is decided).
    for _ in 0..8 {
        let url = s.url("/validate/check");
        let client = s.client.clone();
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
    let mut tids = std::collections::BTreeSet::new();
    for t in tasks {
        let b = t.await.unwrap();
        assert_eq!(b["result"]["authentication"], "CHALLENGE", "{b}");
        tids.insert(b["detail"]["transaction_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        gw.count() - before,
        1,
        "one SMS for eight parallel PIN requests"
    );
    assert_eq!(tids.len(), 1, "one transaction: {tids:?}");
    let tid = tids.into_iter().next().unwrap();
    let otp = gw.last_otp(ALICE);
    let (_, r) = s
        .check(&[("user", "alice"), ("transaction_id", &tid), ("pass", &otp)])
        .await;
    assert_eq!(value(&r), true, "{r}");
}

#[tokio::test]
async fn parallel_wrong_answers_get_no_more_checks_than_the_challenge_allows() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "SMS1", "1234", ALICE).await;
    let b = ask(&s, "alice").await;
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let otp = gw.last_otp(ALICE);
    let wrong = if otp == "000000" { "111111" } else { "000000" };
    // Eight wrong answers at once: each is claimed before it is checked, at most three claims
    // succeed (the store test `parallel_answers_claim_no_more_checks_than_a_challenge_allows`
    // proves the claim), and the challenge is discarded once.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = s.url("/validate/check");
        let form = [
            ("user", "alice".to_owned()),
            ("transaction_id", tid.clone()),
            ("pass", wrong.to_owned()),
        ];
        let client = s.client.clone();
        tasks.push(tokio::spawn(async move {
            client.post(url).form(&form).send().await.unwrap().status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let (_, r) = s
        .check(&[("user", "alice"), ("transaction_id", &tid), ("pass", &otp)])
        .await;
    assert_eq!(value(&r), false, "the challenge is used up: {r}");
    let (_, a) = s
        .aget("/audit/", &[("action_detail", "challenge discarded*")])
        .await;
    assert_eq!(value(&a)["count"], 1, "discarded once: {a}");
}

#[tokio::test]
async fn a_challenge_dies_after_three_wrong_answers() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    let serial = s.enroll("alice", "SMS1", "1234", ALICE).await;
    let b = ask(&s, "alice").await;
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let otp = gw.last_otp(ALICE);
    let wrong = if otp == "000000" { "111111" } else { "000000" };
    for _ in 0..3 {
        let (_, r) = s
            .check(&[("user", "alice"), ("transaction_id", &tid), ("pass", wrong)])
            .await;
        assert_eq!(msg(&r), "Response did not match the challenge.");
    }
    let (_, r) = s
        .check(&[("user", "alice"), ("transaction_id", &tid), ("pass", &otp)])
        .await;
    assert_eq!(value(&r), false, "the challenge is gone: {r}");
    assert_eq!(s.token_info(&serial).await["failcount"], 4);
    let (_, a) = s
        .aget("/audit/", &[("action_detail", "challenge discarded*")])
        .await;
    assert_eq!(value(&a)["count"], 1);

    // sms.challenge_max_attempts=0: no such limit (privacyIDEA's behaviour).
    set(&s, &[("sms.challenge_max_attempts", "0")]).await;
    s.ok(&format!("/token/reset/{serial}"), &[]).await;
    let b = ask(&s, "alice").await;
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let otp = gw.last_otp(ALICE);
    for _ in 0..4 {
        s.check(&[("user", "alice"), ("transaction_id", &tid), ("pass", wrong)])
            .await;
    }
    let (_, r) = s
        .check(&[("user", "alice"), ("transaction_id", &tid), ("pass", &otp)])
        .await;
    assert_eq!(value(&r), true, "{r}");
}

#[tokio::test]
async fn sms_pumping_into_one_prefix_is_stopped_while_normal_users_pass() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    set(
        &s,
        &[
            ("sms.limit.prefix", "10/3600"),
            ("sms.limit.prefix_digits", "6"),
        ],
    )
    .await;
    s.enroll("alice", "SMS1", "1234", ALICE).await;
    // An attacker has 30 accounts whose numbers are in one expensive range and asks for one
    // SMS each: per-user and per-number limits never trigger.
    pump_accounts(&s, 30).await;
    let mut sent = 0;
    for i in 0..30 {
        let b = ask(&s, &format!("pump{i}")).await;
        if challenged(&b) {
            sent += 1;
        } else {
            limited(&b);
        }
        // A normal user logs in now and then and is never affected.
        if i % 10 == 0 {
            assert!(challenged(&ask(&s, "alice").await));
        }
    }
    assert_eq!(sent, 10, "the range got 10 SMS, not 30");
    let m = s.metrics().await;
    assert!(
        m.contains("otpgate_sms_limited_total{limit=\"prefix\"} 20"),
        "{m}"
    );
    assert_eq!(
        gw.received()
            .iter()
            .filter(|r| r.field("phone").unwrap().starts_with("+88213"))
            .count(),
        10
    );
}

#[tokio::test]
async fn numbers_are_normalised_at_enrollment_and_invalid_or_premium_ones_refused() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    let init = |serial: &'static str, phone: &'static str| {
        let s = &s;
        async move {
            s.apost(
                "/token/init",
                &[
                    ("type", "sms"),
                    ("user", "alice"),
                    ("serial", serial),
                    ("pin", "1234"),
                    ("phone", phone),
                ],
            )
            .await
        }
    };
    // Any common notation is stored as E.164.
    let (st, b) = init("N1", "+49 (0)151 1234-5678").await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(s.token_info("N1").await["info"]["phone"], "+4915112345678");
    // National notation needs a default region.
    let (st, b) = init("N2", "0151 12345678").await;
    assert_eq!((st, code(&b)), (400, 905));
    assert!(error(&b).contains("international notation"), "{b}");
    set(&s, &[("sms.default_region", "DE")]).await;
    let (st, _) = init("N2", "0151 12345679").await;
    assert_eq!(st, 200);
    assert_eq!(s.token_info("N2").await["info"]["phone"], "+4915112345679");
    // Invalid and premium-rate numbers are refused with a clear error.
    let (st, b) = init("N3", "+49 151 1").await;
    assert_eq!((st, code(&b)), (400, 905));
    assert!(error(&b).contains("not a valid phone number"), "{b}");
    let (st, b) = init("N3", "+49 900 1234567").await;
    assert_eq!((st, code(&b)), (400, 905));
    assert!(
        error(&b).contains("premium_rate numbers are not accepted"),
        "{b}"
    );
    // A country allow-list for the realm.
    set(&s, &[("sms.allowed_countries.realm1", "AT,CH")]).await;
    let (st, b) = init("N3", "+49 151 12345670").await;
    assert_eq!((st, code(&b)), (400, 905));
    assert!(error(&b).contains("numbers of DE are not accepted"), "{b}");
    let (st, _) = init("N3", "+43 664 1234567").await;
    assert_eq!(st, 200);
    let (st, b) = s
        .apost("/system/setConfig", &[("sms.allowed_countries", "DE,??")])
        .await;
    assert_eq!((st, code(&b)), (400, 905));
}

#[tokio::test]
async fn the_toll_fraud_guard_refuses_at_send_time_and_gateways_get_their_notation() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    // User-store numbers are not checked at enrollment (dynamic_phone): the send is.
    dynamic_user(&s, "mallory", "+49 900 1234567").await;
    let (_, b) = s.check(&[("user", "mallory"), ("pass", "1234")]).await;
    assert_eq!(b["result"]["authentication"], "REJECT", "{b}");
    assert_eq!(msg(&b), "The phone number of this token is not allowed.");
    assert_eq!(gw.count(), 0);
    assert!(
        s.metrics()
            .await
            .contains("otpgate_sms_limited_total{limit=\"number_type\"} 1")
    );
    let (_, a) = s.aget("/audit/", &[("user", "mallory")]).await;
    let detail = value(&a)["auditdata"][0]["action_detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.contains("premium_rate numbers are not accepted"),
        "{detail}"
    );

    // A national user-store number goes out in E.164 with the default region, and each
    // gateway gets its NUMBER_FORMAT.
    set(&s, &[("sms.default_region", "DE")]).await;
    dynamic_user(&s, "nat", "0151 2345 6789").await;
    assert_eq!(
        value(&s.check(&[("user", "nat"), ("pass", "1234")]).await.1),
        false
    );
    assert_eq!(gw.last().field("phone").as_deref(), Some("+4915123456789"));
    for (format, expect) in [
        ("digits", "4915123456789"),
        ("00", "004915123456789"),
        ("national", "015123456789"),
    ] {
        s.http_gateway("gw", &gw.url("/sms"), &[("option.NUMBER_FORMAT", format)])
            .await;
        s.check(&[("user", "nat"), ("pass", "1234")]).await;
        assert_eq!(
            gw.last().field("phone").as_deref(),
            Some(expect),
            "{format}"
        );
    }
    let (st, b) = s
        .apost(
            "/smsgateway",
            &[
                ("name", "gw"),
                ("module", "http"),
                ("option.URL", &gw.url("/sms")),
                ("option.NUMBER_FORMAT", "e.123"),
            ],
        )
        .await;
    assert_eq!((st, code(&b)), (400, 905), "{b}");
    // The allow-list holds at send time too.
    set(&s, &[("sms.allowed_countries", "AT")]).await;
    let (_, b) = s.check(&[("user", "nat"), ("pass", "1234")]).await;
    assert_eq!(msg(&b), "The phone number of this token is not allowed.");
}

#[tokio::test]
async fn a_prefix_whose_sends_spike_without_logins_is_blocked_and_can_be_lifted() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    set(
        &s,
        &[
            ("sms.fraud.min_success_percent", "50"),
            ("sms.fraud.min_sends", "5"),
            ("sms.limit.prefix_digits", "6"),
        ],
    )
    .await;
    // Alice logs in (her prefix has successes), the pumping accounts never answer.
    s.enroll("alice", "SMS1", "1234", ALICE).await;
    pump_accounts(&s, 8).await;
    for _ in 0..6 {
        let b = ask(&s, "alice").await;
        let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
        let otp = gw.last_otp(ALICE);
        let (_, r) = s
            .check(&[("user", "alice"), ("transaction_id", &tid), ("pass", &otp)])
            .await;
        assert_eq!(value(&r), true);
    }
    let mut results = Vec::new();
    for i in 0..8 {
        let b = ask(&s, &format!("pump{i}")).await;
        results.push(challenged(&b));
        if !challenged(&b) {
            assert_eq!(msg(&b), "The phone number of this token is not allowed.");
        }
    }
    assert_eq!(
        results,
        [true, true, true, true, true, false, false, false],
        "blocked after 5 sends without a login"
    );
    assert!(challenged(&ask(&s, "alice").await), "her prefix is fine");
    let (_, b) = s.aget("/fraud/blocks", &[]).await;
    let blocks = value(&b).as_array().unwrap().clone();
    assert_eq!(blocks.len(), 1, "{b}");
    assert_eq!(
        (&blocks[0]["prefix"], &blocks[0]["source"]),
        (&Value::from("+882130"), &Value::from("auto"))
    );
    assert!(
        blocks[0]["reason"]
            .as_str()
            .unwrap()
            .contains("5 SMS but 0 successful logins")
    );
    assert!(
        s.metrics()
            .await
            .contains("otpgate_sms_limited_total{limit=\"prefix_blocked\"} 3")
    );
    let (_, a) = s.aget("/audit/", &[("action", "FRAUD*")]).await;
    assert_eq!(value(&a)["auditdata"][0]["action_detail"], "prefix +882130");
    // Lifted by an admin: the range may send again (its counters start afresh).
    let (st, _) = s.adelete("/fraud/blocks/+882130").await;
    assert_eq!(st, 200);
    assert!(challenged(&ask(&s, "pump7").await));
    let (st, b) = s.adelete("/fraud/blocks/+882130").await;
    assert_eq!((st, code(&b)), (404, 601));
    // An admin blocks a whole country code by hand.
    assert_eq!(
        s.ok("/fraud/blocks/+49", &[("reason", "no SMS to Germany")])
            .await,
        true
    );
    let b = ask(&s, "alice").await;
    assert_eq!(msg(&b), "The phone number of this token is not allowed.");
    let (_, a) = s
        .aget(
            "/audit/",
            &[("action", "*validate/check"), ("user", "alice")],
        )
        .await;
    assert!(
        value(&a)["auditdata"][0]["action_detail"]
            .as_str()
            .unwrap()
            .contains("no SMS to Germany")
    );
    let (st, b) = s.apost("/fraud/blocks/49x", &[]).await;
    assert_eq!((st, code(&b)), (400, 905));
}

#[tokio::test]
async fn saving_a_gateway_whose_text_costs_extra_parts_warns() {
    let s = Server::start().await;
    let long = format!(
        "{}{{otp}}",
        "Your one-time code for the ACME Corporation portal is: ".repeat(3)
    );
    let (st, b) = s
        .apost(
            "/smsgateway",
            &[
                ("name", "wordy"),
                ("module", "http"),
                ("option.URL", "http://127.0.0.1:9/"),
                ("option.text", &long),
                ("option.to", "{phone}"),
            ],
        )
        .await;
    assert_eq!(st, 200, "saved all the same: {b}");
    let w = b["detail"]["warnings"][0].as_str().unwrap();
    assert!(
        w.contains("option text") && w.contains("need 2 parts"),
        "{w}"
    );
    let (_, b) = s
        .apost(
            "/smsgateway",
            &[
                ("name", "wordy"),
                ("module", "http"),
                ("option.URL", "http://127.0.0.1:9/"),
                ("option.text", "{otp}"),
            ],
        )
        .await;
    assert!(b["detail"].is_null(), "{b}");
}

#[tokio::test]
async fn the_optional_verify_back_off_doubles_after_each_failure() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    set(&s, &[("sms.verify_backoff_secs", "10")]).await;
    let serial = s.enroll("alice", "SMS1", "1234", ALICE).await;
    let b = ask(&s, "alice").await;
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let otp = gw.last_otp(ALICE);
    let wrong = if otp == "000000" { "111111" } else { "000000" };
    let answer = |pass: &str| {
        let (s, tid, pass) = (&s, tid.clone(), pass.to_owned());
        async move {
            s.check(&[("user", "alice"), ("transaction_id", &tid), ("pass", &pass)])
                .await
                .1
        }
    };
    assert_eq!(
        msg(&answer(wrong).await),
        "Response did not match the challenge."
    );
    // Right away, even the right OTP waits: the attempt is not judged and not counted.
    let r = answer(&otp).await;
    assert_eq!(
        msg(&r),
        "Too many failed attempts. Please wait before trying again."
    );
    assert_eq!(r["detail"]["retry_after"], 10);
    assert_eq!(s.token_info(&serial).await["failcount"], 1);
    s.advance(9);
    assert_eq!(answer(&otp).await["detail"]["retry_after"], 1);
    s.advance(1);
    // The second failure doubles the wait.
    assert_eq!(
        msg(&answer(wrong).await),
        "Response did not match the challenge."
    );
    assert_eq!(answer(&otp).await["detail"]["retry_after"], 20);
    s.advance(20);
    assert_eq!(value(&answer(&otp).await), true, "judged after the wait");
    assert_eq!(s.token_info(&serial).await["failcount"], 0);
}

#[tokio::test]
async fn the_country_limit_counts_per_destination_country() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    set(&s, &[("sms.limit.country", "2/600")]).await;
    s.enroll("alice", "SMS1", "1234", ALICE).await;
    s.enroll("bob", "SMS2", "1234", "+4915100000002").await;
    s.enroll("carol", "SMS3", "1234", "+4917100000003").await;
    assert!(challenged(&ask(&s, "alice").await));
    assert!(challenged(&ask(&s, "bob").await));
    assert!(
        limited(&ask(&s, "carol").await) > 0,
        "a third German number"
    );
    s.enroll("carol", "SMS3", "1234", "+447400123456").await;
    assert!(challenged(&ask(&s, "carol").await), "another country");
}

#[tokio::test]
async fn lenient_number_checks_store_made_up_numbers_as_given() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    let made_up = [
        ("type", "sms"),
        ("user", "alice"),
        ("serial", "L1"),
        ("pin", "1234"),
        ("phone", "+491510000000"),
    ];
    let (st, _) = s.apost("/token/init", &made_up).await;
    assert_eq!(st, 400, "strict by default");
    set(&s, &[("sms.number_check", "lenient")]).await;
    let (st, b) = s.apost("/token/init", &made_up).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(s.token_info("L1").await["info"]["phone"], "+491510000000");
    assert!(challenged(&ask(&s, "alice").await));
    assert_eq!(
        gw.last().field("phone").as_deref(),
        Some("+491510000000"),
        "sent as stored"
    );
    // Valid numbers are still normalised, and premium rate still refused.
    let (st, b) = s
        .apost(
            "/token/init",
            &[
                ("type", "sms"),
                ("user", "alice"),
                ("serial", "L2"),
                ("pin", "1234"),
                ("phone", "+49 900 1234567"),
            ],
        )
        .await;
    assert_eq!((st, code(&b)), (400, 905));
    let (st, b) = s
        .apost("/system/setConfig", &[("sms.number_check", "loose")])
        .await;
    assert_eq!((st, code(&b)), (400, 905));
}
