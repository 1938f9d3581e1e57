//! Event handlers and the outbox: the `/event` API, notifications through real local HTTP
//! gateways and a real SMTP server, retries on the injected clock, dead-lettering.

use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

/// Waits (bounded, polling) until `f` holds.
pub(crate) async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..400 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn outbox(s: &Server, status: Option<&str>) -> Value {
    let q: Vec<(&str, &str)> = status.map(|st| ("status", st)).into_iter().collect();
    let (st, b) = s.aget("/event/outbox", &q).await;
    assert_eq!(st, 200, "{b}");
    value(&b).clone()
}

async fn enrollment_sms_handler(s: &Server) -> i64 {
    let (st, b) = s
        .apost(
            "/event",
            &[
                ("name", "enrolled"),
                ("event", "token_init"),
                ("handlermodule", "UserNotification"),
                ("action", "sendsms"),
                ("position", "post"),
                ("option.smsconfig", "notify"),
                ("option.To", "tokenowner"),
                (
                    "option.body",
                    "Hello {user}, token {serial} was enrolled by {admin}.",
                ),
            ],
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert!(b["detail"].is_null(), "no warnings: {b}");
    value(&b).as_i64().unwrap()
}

#[tokio::test]
async fn event_api_round_trip_and_bad_input() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.http_gateway("notify", &gw.url("/notify"), &[]).await;
    let id = enrollment_sms_handler(&s).await;

    let (_, b) = s.aget("/event/", &[]).await;
    let list = value(&b).as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    let h = &list[0];
    assert_eq!(h["id"], id);
    assert_eq!(h["name"], "enrolled");
    assert_eq!(h["event"], json!(["token_init"]));
    assert_eq!(
        (&h["handlermodule"], &h["action"], &h["position"]),
        (
            &json!("UserNotification"),
            &json!("sendsms"),
            &json!("post")
        )
    );
    assert_eq!((&h["active"], &h["ordering"]), (&json!(true), &json!(0)));
    assert_eq!(h["options"]["smsconfig"], "notify");
    assert_eq!(h["options"]["To"], "tokenowner");
    assert_eq!(h["conditions"], json!({}));
    let (_, one) = s.aget(&format!("/event/{id}"), &[]).await;
    assert_eq!(value(&one), &json!([h]));

    // Introspection.
    let (_, b) = s.aget("/event/available", &[]).await;
    for e in ["token_init", "validate_check", "token_delete", "auth"] {
        assert!(value(&b).as_array().unwrap().contains(&json!(e)), "{e}");
    }
    let (_, b) = s.aget("/event/handlermodules", &[]).await;
    assert_eq!(value(&b), &json!(["UserNotification"]));
    let (_, b) = s.aget("/event/actions/UserNotification", &[]).await;
    assert_eq!(
        value(&b)["sendsms"]["smsconfig"]["value"],
        json!(["gw", "notify"])
    );
    assert_eq!(value(&b)["sendmail"]["emailconfig"]["required"], true);
    let (_, b) = s.aget("/event/conditions/UserNotification", &[]).await;
    for c in [
        "realm",
        "tokentype",
        "serial",
        "result_value",
        "result_authentication",
        "token_has_owner",
        "failcounter",
        "token_locked",
    ] {
        assert!(value(&b)[c]["desc"].is_string(), "{c}");
    }
    assert_eq!(value(&b)["realm"]["value"], json!([{"name": "realm1"}]));
    let (_, b) = s.aget("/event/positions/UserNotification", &[]).await;
    assert_eq!(value(&b), &json!(["post", "pre"]));

    // Update by id replaces everything; JSON conditions.
    let (st, b) = s
        .apost_json(
            "/event",
            &json!({"id": id, "name": "enrolled2", "event": "token_init,token_delete", "handlermodule": "UserNotification",
                    "action": "sendsms", "option.smsconfig": "notify", "ordering": 2,
                    "conditions": {"realm": "realm1", "tokentype": "sms"}}),
        )
        .await;
    assert_eq!((st, value(&b).as_i64()), (200, Some(id)), "{b}");
    let (_, b) = s.aget(&format!("/event/{id}"), &[]).await;
    let h = &value(&b)[0];
    assert_eq!(h["event"], json!(["token_init", "token_delete"]));
    assert_eq!(
        h["conditions"],
        json!({"realm": "realm1", "tokentype": "sms"})
    );
    assert_eq!(h["ordering"], 2);
    assert!(h["options"].get("body").is_none(), "options are replaced");

    // Disable, enable, delete.
    assert_eq!(s.ok(&format!("/event/disable/{id}"), &[]).await, json!(id));
    let (_, b) = s.aget(&format!("/event/{id}"), &[]).await;
    assert_eq!(value(&b)[0]["active"], false);
    assert_eq!(s.ok(&format!("/event/enable/{id}"), &[]).await, json!(id));
    let (st, b) = s.adelete(&format!("/event/{id}")).await;
    assert_eq!((st, value(&b)), (200, &json!(id)));
    let (st, b) = s.adelete(&format!("/event/{id}")).await;
    assert_eq!((st, code(&b)), (404, 601), "{b}");
    let (st, b) = s.apost("/event/enable/99", &[]).await;
    assert_eq!((st, code(&b)), (404, 601));
    let (st, b) = s.aget("/event/abc", &[]).await;
    assert_eq!((st, code(&b)), (400, 905), "{b}");

    // Warnings for what will not work as written.
    let (st, b) = s
        .apost(
            "/event",
            &[
                ("name", "odd"),
                ("event", "token_init,container_init"),
                ("handlermodule", "UserNotification"),
                ("action", "sendmail"),
                ("option.emailconfig", "nosuchserver"),
                ("option.To", "email"),
                ("option.To email", "helpdesk@example.com"),
                ("option.subject", "About {serial} {nosuchtag}"),
                ("conditions", r#"{"user_token_number": ">2"}"#),
            ],
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let warnings = b["detail"]["warnings"].to_string();
    for w in [
        "container_init",
        "nosuchserver",
        "{nosuchtag}",
        "user_token_number",
    ] {
        assert!(warnings.contains(w), "{w} in {warnings}");
    }

    // Clear errors.
    let base = [
        ("name", "x"),
        ("event", "token_init"),
        ("handlermodule", "UserNotification"),
        ("action", "sendsms"),
        ("option.smsconfig", "notify"),
    ];
    for (extra, needle) in [
        (("handlermodule", "Token"), "Unknown handler module: Token"),
        (("action", "savefile"), "sendsms and sendmail"),
        (("position", "middle"), "position"),
        (("conditions", "[1]"), "must be a dictionary"),
        (("conditions", r#"{"serial": "(["}"#), "regular expression"),
        (("conditions", r#"{"failcounter": "lots"}"#), "failcounter"),
        (("option.smsconfig", ""), "option.smsconfig"),
        (("option.To", "everyone"), "option.To"),
        (("option.To", "number"), "option.To number"),
        (("ordering", "-1"), "ordering"),
    ] {
        let mut form: Vec<(&str, &str)> = base
            .iter()
            .filter(|(k, _)| *k != extra.0)
            .copied()
            .collect();
        form.push(extra);
        let (st, b) = s.apost("/event", &form).await;
        assert_eq!((st, code(&b)), (400, 905), "{extra:?}: {b}");
        assert!(error(&b).contains(needle), "{extra:?}: {b}");
    }
    let (st, b) = s.apost("/event", &[("name", "x")]).await;
    assert_eq!((st, code(&b)), (400, 905), "{b}");
    // Admins only.
    let (st, _) = s.get("/event/", &[]).await;
    assert_eq!(st, 401);
}

#[tokio::test]
async fn enrollment_sms_reaches_the_users_mobile_and_is_audited() {
    let gw = Gateway::start().await;
    let notify = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.http_gateway("notify", &notify.url("/notify"), &[]).await;
    enrollment_sms_handler(&s).await;
    let serial = s.enroll("alice", "SMS0001", "1234", "+4915100000099").await;

    until("the enrollment SMS", async || notify.count() == 1).await;
    let sms = notify.last();
    assert_eq!(
        sms.field("phone").as_deref(),
        Some("+4915100000001"),
        "the user's mobile from the user store, not the token's phone"
    );
    assert_eq!(
        sms.field("text").as_deref(),
        Some(format!("Hello Alice, token {serial} was enrolled by admin.").as_str())
    );
    assert_eq!(gw.count(), 0, "the token's own gateway is not used");
    until("the outbox to settle", async || {
        outbox(&s, Some("sent")).await["count"] == 1
    })
    .await;
    let item = &outbox(&s, None).await["items"][0];
    assert_eq!(item["status"], "sent");
    assert_eq!(item["delivered_by"], "notify");
    assert_eq!(
        (&item["channel"], &item["event"]),
        (&json!("sms"), &json!("token_init"))
    );
    assert_eq!(item["attempts"], 1);
    assert!(item.get("body").is_none(), "bodies are not listed: {item}");

    // The audit has the handler run and the delivery.
    let (_, a) = s.aget("/audit/", &[("action", "POST-EVENT*")]).await;
    let run = &value(&a)["auditdata"][0];
    assert_eq!(
        run["action"],
        "POST-EVENT token_init>>UserNotification:sendsms"
    );
    assert_eq!(run["serial"], serial.as_str());
    assert_eq!(run["info"], "1 notification(s) queued");
    let (_, a) = s.aget("/audit/", &[("action", "OUTBOX*")]).await;
    let d = &value(&a)["auditdata"][0];
    assert_eq!(d["success"], 1);
    assert_eq!(d["info"], "delivered by notify to +4915100000001");
    let m = s.metrics().await;
    assert!(
        m.contains("otpgate_notifications_total{channel=\"sms\",result=\"sent\"} 1"),
        "{m}"
    );
    assert!(m.contains("otpgate_outbox_items{status=\"sent\"} 1"), "{m}");

    // Conditions: a handler for another realm, and a disabled one, never fire.
    let (_, b) = s
        .apost(
            "/event",
            &[
                ("name", "other realm"),
                ("event", "token_init"),
                ("handlermodule", "UserNotification"),
                ("action", "sendsms"),
                ("option.smsconfig", "notify"),
                ("conditions", r#"{"realm": "elsewhere"}"#),
            ],
        )
        .await;
    assert!(value(&b).is_i64(), "{b}");
    let (_, list) = s.aget("/event/", &[]).await;
    let first = value(&list)[0]["id"].as_i64().unwrap();
    s.ok(&format!("/event/disable/{first}"), &[]).await;
    s.enroll("bob", "SMS0002", "1234", "+4915100000098").await;
    // The worker is woken at once; give it a moment, then nothing more arrived.
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.app.services.deliver_outbox().await.unwrap();
    assert_eq!(notify.count(), 1);
}

#[tokio::test]
async fn failed_logins_mail_the_helpdesk_when_the_token_locks() {
    let smtp = SmtpPeer::start(SmtpOptions::default()).await;
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.ok(
        "/smtpserver/helpdesk-mail",
        &[
            ("server", "127.0.0.1"),
            ("port", &smtp.port.to_string()),
            ("sender", "otpgate@example.com"),
        ],
    )
    .await;
    let (st, b) = s
        .apost_json(
            "/event",
            &json!({"name": "locked", "event": "validate_check", "handlermodule": "UserNotification",
                    "action": "sendmail", "option.emailconfig": "helpdesk-mail", "option.To": "email",
                    "option.To email": "helpdesk@example.com",
                    "option.subject": "Locked: {username}@{userrealm}",
                    "option.body": "{givenname} {surname} locked token {serial} from {client_ip}.",
                    "conditions": {"result_value": "False", "token_locked": "True", "failcounter": ">=2"}}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let serial = s.enroll("alice", "SMS0001", "1234", "+4915100000001").await;
    s.ok(&format!("/token/set/{serial}"), &[("max_failcount", "2")])
        .await;
    // The first failure does not lock: no mail.
    let (_, r) = s.check(&[("user", "alice"), ("pass", "1234000000")]).await;
    assert_eq!(value(&r), false, "{r}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.app.services.deliver_outbox().await.unwrap();
    assert!(smtp.mails().is_empty());
    // The second one reaches the maximum: one mail.
    let (_, r) = s.check(&[("user", "alice"), ("pass", "1234000000")]).await;
    assert_eq!(value(&r), false, "{r}");
    until("the helpdesk mail", async || smtp.mails().len() == 1).await;
    let mail = &smtp.mails()[0];
    assert_eq!(mail.to, vec!["helpdesk@example.com".to_owned()]);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Locked: alice@realm1")
    );
    assert_eq!(
        mail.body(),
        format!("Alice Test locked token {serial} from 127.0.0.1.")
    );
    // A successful login (after an admin reset) sends nothing.
    s.ok(&format!("/token/reset/{serial}"), &[]).await;
    let (_, r) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    let tid = r["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let otp = gw.last_otp("+4915100000001");
    let (_, r) = s
        .check(&[("user", "alice"), ("transaction_id", &tid), ("pass", &otp)])
        .await;
    assert_eq!(value(&r), true, "{r}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.app.services.deliver_outbox().await.unwrap();
    assert_eq!(smtp.mails().len(), 1);
}

/// A server whose enrollment SMS go to a `notify` gateway that answers `status`, retried
/// after 30 s (no breaker), with `config` on top; returns (token gateway, notify, server).
async fn down_notify(status: u16, config: &[(&str, &str)]) -> (Gateway, Gateway, Server) {
    let gw = Gateway::start().await;
    let notify = Gateway::start().await;
    notify.set_mode(Mode::Status(status));
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.http_gateway("notify", &notify.url("/notify"), &[]).await;
    let mut pairs = vec![
        ("event.outbox_retry_secs", "30"),
        ("sms.breaker_threshold", "0"),
    ];
    pairs.extend_from_slice(config);
    s.ok("/system/setConfig", &pairs).await;
    enrollment_sms_handler(&s).await;
    (gw, notify, s)
}

/// A notification gateway that takes the SMS but answers only after otpgate's timeout (the
/// duplicate the attack found): the retry carries the same `Idempotency-Key` (and
/// `{message_id}`) as the attempt that timed out, so a gateway that honours it sends one SMS.
/// Each login SMS has an id of its own.
#[tokio::test]
async fn a_notification_sent_again_after_a_timeout_carries_the_same_idempotency_key() {
    let gw = Gateway::start().await;
    let notify = Gateway::start().await;
    notify.set_mode(Mode::Hang);
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.http_gateway(
        "notify",
        &notify.url("/notify"),
        &[("option.TIMEOUT", "1"), ("option.ref", "{message_id}")],
    )
    .await;
    s.ok(
        "/system/setConfig",
        &[
            ("event.outbox_retry_secs", "30"),
            ("sms.breaker_threshold", "0"),
        ],
    )
    .await;
    enrollment_sms_handler(&s).await;
    s.apost(
        "/token/init",
        &[
            ("type", "sms"),
            ("user", "alice"),
            ("serial", "SMS0001"),
            ("phone", "+4915100000091"),
        ],
    )
    .await;
    until("the first attempt timed out", async || {
        outbox(&s, Some("pending")).await["items"][0]["attempts"] == 1
    })
    .await;
    notify.set_mode(Mode::Ok("ID 1"));
    s.advance(31);
    s.app.services.outbox().wake();
    until("the retry", async || {
        outbox(&s, Some("sent")).await["count"] == 1
    })
    .await;
    let got = notify.received();
    assert_eq!(got.len(), 2);
    let key = |r: &Received| r.headers.get("idempotency-key").cloned().unwrap();
    assert_eq!(key(&got[0]), key(&got[1]));
    assert!(
        key(&got[0]).starts_with("otpgate-outbox-"),
        "{}",
        key(&got[0])
    );
    assert_eq!(got[1].field("ref"), Some(key(&got[1])));

    // Login SMS: a new id each.
    s.enroll("bob", "SMS2", "1234", "+4915100000002").await;
    for _ in 0..2 {
        s.check(&[("user", "bob"), ("pass", "1234")]).await;
    }
    let ids: Vec<String> = gw
        .received()
        .iter()
        .filter_map(|r| r.headers.get("idempotency-key").cloned())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    // `IDEMPOTENCY_HEADER` empty: no such header.
    s.http_gateway("gw", &gw.url("/sms"), &[("option.IDEMPOTENCY_HEADER", "")])
        .await;
    s.check(&[("user", "bob"), ("pass", "1234")]).await;
    assert!(!gw.last().headers.contains_key("idempotency-key"));
}

#[tokio::test]
async fn a_down_gateway_is_retried_with_back_off_on_the_injected_clock() {
    let (_gw, notify, s) = down_notify(500, &[]).await;
    let (st, b) = s
        .apost(
            "/token/init",
            &[
                ("type", "sms"),
                ("user", "alice"),
                ("serial", "SMS0001"),
                ("phone", "+4915100000091"),
            ],
        )
        .await;
    assert_eq!(
        st, 200,
        "the answer does not wait for or depend on the notification: {b}"
    );
    until("the first attempt", async || {
        outbox(&s, Some("pending")).await["items"][0]["attempts"] == 1
    })
    .await;
    let item = outbox(&s, None).await["items"][0].clone();
    assert!(
        item["last_error"].as_str().unwrap().contains("500"),
        "{item}"
    );
    assert_eq!(notify.count(), 1);

    // Not due before 30 s have passed on the clock.
    notify.set_mode(Mode::Ok("ID 1"));
    s.advance(29);
    s.app.services.deliver_outbox().await.unwrap();
    assert_eq!(notify.count(), 1);
    s.advance(2);
    s.app.services.outbox().wake();
    until("the retry", async || {
        outbox(&s, Some("sent")).await["count"] == 1
    })
    .await;
    assert_eq!(notify.count(), 2);
    let item = &outbox(&s, None).await["items"][0];
    assert_eq!(
        (&item["attempts"], &item["delivered_by"]),
        (&json!(2), &json!("notify"))
    );
}

#[tokio::test]
async fn too_old_and_interrupted_items_are_dead_lettered_and_can_be_requeued() {
    let (_gw, notify, s) = down_notify(503, &[("event.outbox_max_age_secs", "60")]).await;
    s.enroll("alice", "SMS0001", "1234", "+4915100000091").await;
    until("the first attempt", async || {
        outbox(&s, Some("pending")).await["items"][0]["attempts"] == 1
    })
    .await;
    assert_eq!(notify.count(), 1);
    // The second attempt fails too, and a third would come after the maximum age.
    s.advance(31);
    s.app.services.outbox().wake();
    until("the dead letter", async || {
        outbox(&s, Some("dead")).await["count"] == 1
    })
    .await;
    assert_eq!(notify.count(), 2);
    let dead = outbox(&s, Some("dead")).await["items"][0].clone();
    let err = dead["last_error"].as_str().unwrap();
    assert!(
        err.contains("not delivered within 60 s") && err.contains("503"),
        "{err}"
    );
    let (_, a) = s
        .aget("/audit/", &[("action", "OUTBOX*"), ("success", "0")])
        .await;
    assert!(
        value(&a)["auditdata"][0]["info"]
            .as_str()
            .unwrap()
            .starts_with("dead-lettered")
    );
    assert!(
        s.metrics()
            .await
            .contains("otpgate_notifications_total{channel=\"sms\",result=\"dead\"} 1")
    );

    // An admin requeues it once the gateway works again.
    notify.set_mode(Mode::Ok("ID 1"));
    let id = dead["id"].as_i64().unwrap();
    assert_eq!(
        s.ok(&format!("/event/outbox/{id}/retry"), &[]).await,
        json!(id)
    );
    until("the requeued item", async || {
        outbox(&s, Some("sent")).await["count"] == 1
    })
    .await;
    let (st, b) = s.apost(&format!("/event/outbox/{id}/retry"), &[]).await;
    assert_eq!((st, code(&b)), (404, 601), "only dead items are requeued");
    let (st, b) = s.aget("/event/outbox", &[("status", "lost")]).await;
    assert_eq!((st, code(&b)), (400, 905));

    // An item whose worker died while sending is never resent on its own.
    s.enroll("bob", "SMS0002", "1234", "+4915100000092").await;
    until("the second notification", async || {
        outbox(&s, Some("sent")).await["count"] == 2
    })
    .await;
    assert_eq!(notify.count(), 4);
    // Queued for an hour from now, so only this test touches it.
    let store = s.app.services.store();
    let now = s.app.services.clock().now_ms() + 3_600_000;
    store
        .outbox_insert(
            &[otpgate_store::NewOutboxItem {
                dedupe_key: "crashed".into(),
                handler_id: 1,
                handler_name: "enrolled".into(),
                event: "token_init".into(),
                channel: "sms".into(),
                config: "notify".into(),
                recipient: "+4915100000093".into(),
                subject: String::new(),
                body: "x".into(),
            }],
            now,
        )
        .await
        .unwrap();
    let (rows, _) = store.outbox_list(Some("pending"), 1, 10).await.unwrap();
    let crashed = rows
        .iter()
        .find(|r| r.item.dedupe_key == "crashed")
        .unwrap()
        .id;
    assert!(store.outbox_claim(crashed, now, now + 1000).await.unwrap());
    assert!(
        !store.outbox_claim(crashed, now, now + 1000).await.unwrap(),
        "claimed once"
    );
    s.advance(3602);
    assert_eq!(s.app.services.reap_interrupted_outbox().await.unwrap(), 1);
    let (rows, _) = store.outbox_list(Some("dead"), 1, 10).await.unwrap();
    let r = rows.iter().find(|r| r.id == crashed).unwrap();
    assert_eq!(r.last_error, otpgate_store::INTERRUPTED);
    assert_eq!(notify.count(), 4, "not sent");
    // The same notification queued twice is one item.
    let again = otpgate_store::NewOutboxItem {
        dedupe_key: "crashed".into(),
        ..Default::default()
    };
    assert_eq!(store.outbox_insert(&[again], now).await.unwrap(), 0);
}

#[tokio::test]
async fn recipients_numbers_admins_and_named_users_and_pre_handlers() {
    let gw = Gateway::start().await;
    let notify = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.http_gateway("notify", &notify.url("/notify"), &[]).await;
    s.app
        .services
        .set_admin_contact("admin", Some("admin@example.com"), Some("+4917000000000"))
        .await
        .unwrap();
    for (name, to, extra_key, extra) in [
        ("numbers", "number", "option.To number", "+111, +222"),
        (
            "admin",
            "internal admin",
            "option.To internal admin",
            "admin",
        ),
        ("carol", "userstore", "option.To userstore", "carol@realm1"),
    ] {
        let (st, b) = s
            .apost(
                "/event",
                &[
                    ("name", name),
                    ("event", "token_delete"),
                    ("handlermodule", "UserNotification"),
                    ("action", "sendsms"),
                    ("option.smsconfig", "notify"),
                    ("option.To", to),
                    (extra_key, extra),
                    (
                        "option.body",
                        "{serial} of {username} deleted by {admin} ({recipient_givenname})",
                    ),
                ],
            )
            .await;
        assert_eq!(st, 200, "{b}");
    }
    // A pre handler sees the request only: it fires even when the call then fails.
    let (st, b) = s
        .apost(
            "/event",
            &[
                ("name", "pre"),
                ("event", "token_delete"),
                ("position", "pre"),
                ("handlermodule", "UserNotification"),
                ("action", "sendsms"),
                ("option.smsconfig", "notify"),
                ("option.To", "number"),
                ("option.To number", "+999"),
                ("option.body", "about to delete {serial}"),
            ],
        )
        .await;
    assert_eq!(st, 200, "{b}");
    // A pre handler on token_init finds the owner from the request's user (default realm).
    let (st, b) = s
        .apost(
            "/event",
            &[
                ("name", "pre-init"),
                ("event", "token_init"),
                ("position", "pre"),
                ("handlermodule", "UserNotification"),
                ("action", "sendsms"),
                ("option.smsconfig", "notify"),
                ("option.body", "a token for {username} is being set up"),
            ],
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let serial = s.enroll("alice", "SMS0001", "1234", "+4915100000091").await;
    until("the pre-init notification", async || notify.count() == 1).await;
    let first = notify.last();
    assert_eq!(first.field("phone").as_deref(), Some("+4915100000001"));
    assert_eq!(
        first.field("text").as_deref(),
        Some("a token for alice is being set up")
    );
    let (st, _) = s.adelete(&format!("/token/{serial}")).await;
    assert_eq!(st, 200);
    until("five more notifications", async || notify.count() == 6).await;
    let mut got: Vec<(String, String)> = notify
        .received()
        .iter()
        .skip(1)
        .map(|r| (r.field("phone").unwrap(), r.field("text").unwrap()))
        .collect();
    got.sort();
    let text = |r: &str| format!("{serial} of alice deleted by admin ({r})");
    assert_eq!(
        got,
        vec![
            ("+111".to_owned(), text("")),
            ("+222".to_owned(), text("")),
            ("+4915100000003".to_owned(), text("Carol")),
            ("+4917000000000".to_owned(), text("")),
            ("+999".to_owned(), format!("about to delete {serial}")),
        ]
    );
    // The pre handler fires for a failing call; post handlers do not.
    let (st, _) = s.adelete("/token/NOSUCH").await;
    assert_eq!(st, 404);
    until("the pre notification", async || notify.count() == 7).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(notify.count(), 7);
}
