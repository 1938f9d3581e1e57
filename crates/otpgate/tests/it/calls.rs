//! The service owns every call: whatever front end a request comes through, one call checks
//! the right, fires the events, runs the work and writes one audit row that says how it
//! ended — also when the caller gave up waiting, and when a request was refused before it
//! became a call.

use crate::events::until;
use crate::support::*;
use crate::web::Browser;
use serde_json::Value;

/// The audit rows of `action` (a `*` pattern), newest first.
async fn audit_rows(s: &Server, action: &str) -> Vec<Value> {
    let (st, b) = s
        .aget("/audit/", &[("action", action), ("page_size", "100")])
        .await;
    assert_eq!(st, 200, "{b}");
    value(&b)["auditdata"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_login_cut_off_by_the_request_timeout_ends_as_a_whole_and_its_row_says_how() {
    // The phone-number metadata loads once per process (slowly in a debug build): not within
    // the one second this server gives a request.
    otpgate_core::number::parse("+4915100000001", None).unwrap();
    let gw = Gateway::start().await;
    let s = Server::start_with(|c| c.server.request_timeout_secs = 1).await;
    s.setup(&gw.url("/sms")).await;
    // The gateway hangs; its own timeout (2 s) ends the send after the request's (1 s).
    s.http_gateway("slow", &gw.url("/slow"), &[("option.TIMEOUT", "2")])
        .await;
    s.default_gateway_sending_every_time("slow").await;
    s.enroll("alice", "SMS1", "pin-1", "+4915100000001").await;
    gw.set_mode(Mode::Hang);
    let (st, b) = s.check(&[("user", "alice"), ("pass", "pin-1")]).await;
    assert_eq!(st, 503, "the caller is answered when its time is up: {b}");
    // The call goes on to its end: the send fails, the challenge is removed, and the one
    // audit row of the request tells that, not the caller's timeout.
    until("the check's audit row", async || {
        !audit_rows(&s, "*/validate/check*").await.is_empty()
    })
    .await;
    let rows = audit_rows(&s, "*/validate/check*").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["authentication"], "REJECT", "{rows:?}");
    assert_eq!(
        rows[0]["info"],
        "The PIN was correct, but the SMS could not be sent!"
    );
    assert!(rows[0]["duration"].as_f64().unwrap() >= 1.5, "{rows:?}");
    let (_, chal) = s.aget("/token/challenges/", &[]).await;
    assert_eq!(
        value(&chal)["count"],
        0,
        "no challenge outlives its failed SMS"
    );
}

#[tokio::test]
async fn refused_calls_are_audited_with_their_reason_and_their_caller() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    // A parameter the service refuses: the admin and the reason, not only a status.
    let (st, _) = s
        .apost(
            "/token/init",
            &[
                ("type", "sms"),
                ("user", "alice"),
                ("phone", "+4915100000001"),
                ("otplen", "7"),
            ],
        )
        .await;
    assert_eq!(st, 400);
    let rows = audit_rows(&s, "POST /token/init").await;
    assert_eq!(rows[0]["success"], 0);
    assert_eq!(rows[0]["administrator"], "admin");
    assert_eq!(rows[0]["info"], "ERR905: otplen must be 6 or 8.");
    // No credentials: refused before the right is checked, audited all the same.
    let (st, _) = s.get("/token/", &[]).await;
    assert_eq!(st, 401);
    let rows = audit_rows(&s, "GET /token/").await;
    assert!(
        rows[0]["info"]
            .as_str()
            .unwrap()
            .contains("Missing Authorization header"),
        "{rows:?}"
    );
    // A body that cannot be read: refused before authentication, with the parser's reason.
    let r = s
        .client
        .post(s.url("/token/init"))
        .header("Authorization", "x")
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let rows = audit_rows(&s, "POST /token/init").await;
    assert_eq!(
        rows[0]["info"],
        "ERR905: The request body is not valid JSON."
    );
    // A web form from another site: refused before its work, audited through the service
    // with the signed-in admin.
    let mut b = Browser::new(&s);
    b.admin_login().await;
    let p = b
        .post("/ui/admin/tokens/NOPE/disable", &[("csrf", "forged")])
        .await;
    assert_eq!(p.status, 403, "{}", p.body);
    let rows = audit_rows(&s, "POST /ui/admin/tokens/<serial>/<action>").await;
    assert_eq!(rows[0]["success"], 0);
    // The audit says why, not only the status.
    assert_eq!(
        rows[0]["info"],
        "HTTP 403: The form has expired. Go back, reload the page and try again."
    );
    assert_eq!(rows[0]["administrator"], "admin");
    // A form refused for its fields before any call: the fields' errors.
    let p = Browser::new(&s)
        .post("/ui/login", &[("user", ""), ("pass", "x")])
        .await;
    assert_eq!(p.status, 422, "{}", p.body);
    let rows = audit_rows(&s, "POST /ui/login").await;
    assert_eq!(rows[0]["info"], "HTTP 422: Enter your user name.");
}

#[tokio::test]
async fn a_web_change_and_an_api_change_are_the_same_call() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "SMS1", "pin-1", "+4915100000001").await;
    s.enroll("bob", "SMS2", "pin-2", "+4915100000002").await;
    s.ok("/token/disable/SMS1", &[]).await;
    let mut b = Browser::new(&s);
    let csrf = b.admin_login().await;
    let p = b
        .post("/ui/admin/tokens/SMS2/disable", &[("csrf", &csrf)])
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let api = &audit_rows(&s, "POST /token/disable/<serial>").await[0];
    let web = &audit_rows(&s, "POST /ui/admin/tokens/<serial>/<action>").await[0];
    for (row, serial, user) in [(api, "SMS1", "alice"), (web, "SMS2", "bob")] {
        assert_eq!(row["success"], 1, "{row}");
        assert_eq!(row["administrator"], "admin");
        assert_eq!(row["serial"], serial);
        assert_eq!(
            (
                row["user"].as_str(),
                row["realm"].as_str(),
                row["token_type"].as_str()
            ),
            (Some(user), Some("realm1"), Some("sms")),
            "the service fills the subject for every front end: {row}"
        );
    }
}
