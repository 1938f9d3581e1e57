//! The policy engine's matching rules end to end: extended conditions (user attributes, the
//! token, the HTTP request's headers and parameters), `time` ranges on the server's clock,
//! `check_all_resolvers`, and what a policy must be to be saved.

use crate::support::{Gateway, Server, code, error, msg, value};
use crate::tokens::login;
use chrono::{Datelike, Duration, Local, Timelike};
use otpgate_core::Clock;
use serde_json::json;

fn conditions(c: serde_json::Value) -> String {
    c.to_string()
}

#[tokio::test]
async fn conditions_on_the_user_the_token_and_the_request_decide_which_policies_apply() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "S1", "1234", "+4915100000001").await;

    // passOnNoToken for Bob only, by his given name.
    let bob_only = conditions(json!([["userinfo", "givenname", "equals", "Bob", true]]));
    s.ok(
        "/policy/bob-passes",
        &[
            ("scope", "authentication"),
            ("action", "passOnNoToken"),
            ("conditions", &bob_only),
        ],
    )
    .await;
    let (_, b) = s.check(&[("user", "bob"), ("pass", "x")]).await;
    assert_eq!(value(&b), true, "{b}");
    assert_eq!(msg(&b), "user has no token, accepted due to 'bob-passes'");
    let (_, b) = s.check(&[("user", "carol"), ("pass", "x")]).await;
    assert_eq!(
        value(&b),
        false,
        "the condition does not hold for Carol: {b}"
    );
    assert_eq!(msg(&b), "The user has no tokens assigned");

    // privacyIDEA shows the conditions with their missing-data handling.
    let (_, b) = s.aget("/policy/bob-passes", &[]).await;
    assert_eq!(
        value(&b)[0]["conditions"],
        json!([[
            "userinfo",
            "givenname",
            "equals",
            "Bob",
            true,
            "raise_error"
        ]]),
        "{b}"
    );

    // An attribute users do not have: by default a policy error, not a silent match.
    let dept = conditions(json!([["userinfo", "department", "equals", "sales", true]]));
    s.ok("/policy/bob-passes", &[("conditions", &dept)]).await;
    let (st, b) = s.check(&[("user", "bob"), ("pass", "x")]).await;
    assert_eq!(st, 403, "{b}");
    assert_eq!(code(&b), 303);
    assert_eq!(
        error(&b),
        "Unknown userinfo key 'department' referenced in condition of policy 'bob-passes'!"
    );
    // condition_is_false: the policy just does not apply.
    let dept = conditions(json!([[
        "userinfo",
        "department",
        "equals",
        "sales",
        true,
        "condition_is_false"
    ]]));
    s.ok("/policy/bob-passes", &[("conditions", &dept)]).await;
    let (_, b) = s.check(&[("user", "bob"), ("pass", "x")]).await;
    assert_eq!(msg(&b), "The user has no tokens assigned", "{b}");
    s.adelete("/policy/bob-passes").await;

    // A header of the request: only the branch portal's logins pass.
    let portal = conditions(json!([[
        "HTTP Request header",
        "X-Site",
        "in",
        "branch-a, branch-b",
        true,
        "condition_is_false"
    ]]));
    s.ok(
        "/policy/portal",
        &[
            ("scope", "authentication"),
            ("action", "passOnNoToken"),
            ("conditions", &portal),
        ],
    )
    .await;
    let form = [("user", "carol"), ("pass", "x")];
    let (_, b) = s
        .post_with("/validate/check", &[("x-site", "branch-b")], &form)
        .await;
    assert_eq!(value(&b), true, "header names in any case: {b}");
    let (_, b) = s
        .post_with("/validate/check", &[("X-Site", "hq")], &form)
        .await;
    assert_eq!(value(&b), false, "{b}");
    let (_, b) = s.check(&form).await;
    assert_eq!(value(&b), false, "no header: condition_is_false: {b}");
    s.adelete("/policy/portal").await;

    // A parameter of the request.
    let kiosk = conditions(json!([[
        "Request Data",
        "kiosk",
        "equals",
        "1",
        true,
        "condition_is_false"
    ]]));
    s.ok(
        "/policy/kiosk",
        &[
            ("scope", "authentication"),
            ("action", "passOnNoToken"),
            ("conditions", &kiosk),
        ],
    )
    .await;
    let (_, b) = s
        .check(&[("user", "carol"), ("pass", "x"), ("kiosk", "1")])
        .await;
    assert_eq!(value(&b), true, "{b}");
    let (_, b) = s.check(&[("user", "carol"), ("pass", "x")]).await;
    assert_eq!(value(&b), false, "{b}");
    s.adelete("/policy/kiosk").await;

    // The token the request names: VIP tokens get the terse answer.
    let vip = conditions(json!([[
        "token",
        "description",
        "equals",
        "vip",
        true,
        "condition_is_false"
    ]]));
    s.ok(
        "/policy/terse",
        &[
            ("scope", "authentication"),
            ("action", "hide_specific_error_message"),
            ("conditions", &vip),
        ],
    )
    .await;
    let wrong = [("user", "alice"), ("serial", "S1"), ("pass", "0000")];
    let (_, b) = s.check(&wrong).await;
    assert_eq!(msg(&b), "wrong otp pin", "not a VIP token yet: {b}");
    s.ok("/token/description/S1", &[("description", "vip")])
        .await;
    let (_, b) = s.check(&wrong).await;
    assert_eq!(msg(&b), "Authentication failed.", "{b}");
    let (_, b) = s.check(&[("user", "alice"), ("pass", "0000")]).await;
    assert_eq!(
        msg(&b),
        "wrong otp pin",
        "no token named: condition_is_false: {b}"
    );
    let _ = gw;
}

#[tokio::test]
async fn conditions_are_checked_when_saved() {
    let s = Server::start().await;
    let save = |name: &'static str, scope: &'static str, c: serde_json::Value| {
        let s = &s;
        async move {
            let c = c.to_string();
            s.apost(
                &format!("/policy/{name}"),
                &[
                    ("scope", scope),
                    ("action", "passOnNoToken"),
                    ("conditions", &c),
                ],
            )
            .await
        }
    };
    for (c, want) in [
        (
            json!([["userinfo", "a", "like", "b", true]]),
            "Invalid condition of policy 'p': ERR905: Unknown comparator 'like'.",
        ),
        (
            json!([["userinf", "a", "equals", "b", true]]),
            "Invalid condition of policy 'p': ERR905: Unknown section 'userinf' set in condition.",
        ),
        (
            json!([["userinfo", "a", "equals", "b", true, "maybe"]]),
            "Invalid condition of policy 'p': ERR905: Unknown handle missing data value 'maybe'!",
        ),
        (
            json!([["container", "a", "equals", "b", true]]),
            "Invalid condition of policy 'p': ERR905: otpgate does not evaluate conditions on the section 'container'; it evaluates: userinfo, tokeninfo, token, HTTP Request header, Request Data.",
        ),
        (
            json!([["userinfo", "a", "equals"]]),
            "A condition has 3 values, but should have 5 or 6. (p)",
        ),
    ] {
        let (st, b) = save("p", "authentication", c).await;
        assert_eq!(st, 400, "{b}");
        assert_eq!(error(&b), format!("ERR905: {want}"));
    }
    // An inactive condition is kept as it is.
    let (st, b) = save(
        "p",
        "authentication",
        json!([["userinfo", "a", "like", "b", false]]),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    // Admin policies: conditions would make an admin's reach depend on each user.
    let (st, b) = s
        .apost(
            "/policy/adm",
            &[
                ("scope", "admin"),
                ("action", "*"),
                (
                    "conditions",
                    &json!([["userinfo", "a", "equals", "b", true]]).to_string(),
                ),
            ],
        )
        .await;
    assert_eq!(st, 400, "{b}");
    assert!(error(&b).contains("conditions of admin policies"), "{b}");
    // privacyIDEA's other rules for a policy.
    for (form, want) in [
        (
            vec![
                ("scope", "authentication"),
                ("action", "passOnNoToken"),
                ("priority", "0"),
            ],
            "Priority must be at least 1",
        ),
        (
            vec![
                ("scope", "authentication"),
                ("action", "passOnNoToken"),
                ("time", "Mon-Fry: 9-17"),
            ],
            "Invalid time format 'Mon-Fry: 9-17'!",
        ),
    ] {
        let (st, b) = s.apost("/policy/q", &form).await;
        assert_eq!(st, 400, "{b}");
        assert_eq!(error(&b), format!("ERR905: {want}"));
    }
    let (st, b) = s
        .apost(
            "/policy/two%20words",
            &[("scope", "authentication"), ("action", "passOnNoToken")],
        )
        .await;
    assert_eq!(st, 400, "{b}");
    assert_eq!(
        error(&b),
        "ERR905: Policy name must not contain white spaces!"
    );
}

#[tokio::test]
async fn time_ranges_follow_the_servers_clock() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.ok(
        "/policy/office",
        &[
            ("scope", "authentication"),
            ("action", "passOnNoToken"),
            ("time", "Mon-Fri: 9-17:30"),
        ],
    )
    .await;
    let (_, b) = s.aget("/policy/office", &[]).await;
    assert_eq!(value(&b)[0]["time"], "Mon-Fri: 9-17:30");
    // To the next Monday, 10:00 server time (the admin's sign-in expires; the checks are
    // anonymous).
    let now = s.clock.now().with_timezone(&Local);
    let days = (7 - now.weekday().num_days_from_monday()) % 7 + 7;
    let target = (now + Duration::days(i64::from(days)))
        .with_hour(10)
        .and_then(|t| t.with_minute(0))
        .unwrap();
    s.clock.set(target.with_timezone(&chrono::Utc));
    let bob = [("user", "bob"), ("pass", "x")];
    let (_, b) = s.check(&bob).await;
    assert_eq!(value(&b), true, "Monday 10:00: {b}");
    s.advance(7 * 3600 + 30 * 60);
    let (_, b) = s.check(&bob).await;
    assert_eq!(value(&b), true, "17:30 is still inside: {b}");
    s.advance(60);
    let (_, b) = s.check(&bob).await;
    assert_eq!(value(&b), false, "17:31: {b}");
    s.advance(5 * 24 * 3600 - 8 * 3600);
    let (_, b) = s.check(&bob).await;
    assert_eq!(value(&b), false, "Saturday 09:31: {b}");
    let _ = gw;
}

#[tokio::test]
async fn check_all_resolvers_matches_any_resolver_of_the_users_realm() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.ok("/resolver/staff", &[("type", "internalresolver")])
        .await;
    s.ok("/realm/realm1", &[("resolvers", "local,staff")]).await;
    s.ok(
        "/policy/staff",
        &[
            ("scope", "authentication"),
            ("action", "passOnNoToken"),
            ("resolver", "staff"),
        ],
    )
    .await;
    let bob = [("user", "bob"), ("pass", "x")];
    let (_, b) = s.check(&bob).await;
    assert_eq!(value(&b), false, "Bob is in resolver local: {b}");
    s.ok("/policy/staff", &[("check_all_resolvers", "true")])
        .await;
    let (_, b) = s.aget("/policy/staff", &[]).await;
    assert_eq!(value(&b)[0]["check_all_resolvers"], true, "{b}");
    let (_, b) = s.check(&bob).await;
    assert_eq!(value(&b), true, "realm1 also has resolver staff: {b}");
    let _ = gw;
}

const ALICE: &str = "+4915100000001";

async fn authz(s: &Server, name: &str, action: &str, extra: &[(&str, &str)]) {
    let mut form = vec![("scope", "authorization"), ("action", action)];
    form.extend_from_slice(extra);
    s.ok(&format!("/policy/{name}"), &form).await;
}

#[tokio::test]
async fn authorization_policies_decide_who_logs_in_with_which_token_and_what_the_answer_shows() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "S1", "1234", ALICE).await;
    s.enroll("bob", "S2", "5678", "+4915100000002").await;

    // authorized=deny_access for Bob only: refused before any SMS, privacyIDEA's answer.
    authz(&s, "deny-bob", "authorized=deny_access", &[("user", "bob")]).await;
    let sent = gw.count();
    let (st, b) = s.check(&[("user", "bob"), ("pass", "5678")]).await;
    assert_eq!((st, code(&b)), (400, 401), "{b}");
    assert_eq!(
        error(&b),
        "ERR401: User is not authorized to authenticate under these conditions."
    );
    assert_eq!(gw.count(), sent, "no SMS for a refused user");
    assert_eq!(
        login(&s, &gw, "alice", "1234", ALICE).await["result"]["value"],
        true
    );
    s.adelete("/policy/deny-bob").await;

    // serial: matched whoever the user is (privacyIDEA's Match.action_only), also with a
    // realm in the policy.
    authz(&s, "only-hw", "serial=^HW", &[("realm", "elsewhere")]).await;
    let (st, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_eq!((st, code(&b)), (403, 303), "{b}");
    assert_eq!(error(&b), "Serial is not allowed for authentication!");
    authz(&s, "only-hw", "serial=^HW ^S", &[("realm", "elsewhere")]).await;
    let (st, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_eq!(st, 200, "one of the expressions matches: {b}");
    s.adelete("/policy/only-hw").await;

    // tokentype
    authz(&s, "types", "tokentype=hotp totp", &[]).await;
    let (st, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_eq!(st, 403, "{b}");
    assert_eq!(error(&b), "Tokentype not allowed for authentication!");
    authz(&s, "types", "tokentype=hotp sms", &[]).await;
    assert_eq!(
        login(&s, &gw, "alice", "1234", ALICE).await["result"]["value"],
        true
    );
    s.adelete("/policy/types").await;

    // tokeninfo: the token's number must be Austrian.
    authz(&s, "at", r"tokeninfo=phone/^\+43/", &[]).await;
    let (st, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_eq!(st, 403, "{b}");
    assert_eq!(
        error(&b),
        "Tokeninfo field phone with contents does not match regular expression."
    );
    authz(&s, "at", r"tokeninfo=phone/^\+49/", &[]).await;
    assert_eq!(
        login(&s, &gw, "alice", "1234", ALICE).await["result"]["value"],
        true
    );
    s.adelete("/policy/at").await;

    // application_tokentype: `type` is ignored without the policy, narrows the tokens with it.
    let typed = [("user", "alice"), ("pass", "1234"), ("type", "hotp")];
    let (_, b) = s.check(&typed).await;
    assert_eq!(b["result"]["authentication"], "CHALLENGE", "{b}");
    authz(&s, "app", "application_tokentype", &[]).await;
    let (_, b) = s.check(&typed).await;
    assert_eq!(msg(&b), "The user has no tokens assigned", "{b}");
    s.adelete("/policy/app").await;

    // What the answer shows.
    authz(
        &s,
        "who",
        "add_user_in_response, add_resolver_in_response",
        &[],
    )
    .await;
    let b = login(&s, &gw, "alice", "1234", ALICE).await;
    assert_eq!(b["detail"]["user"]["username"], "alice", "{b}");
    assert_eq!(b["detail"]["user"]["givenname"], "Alice");
    assert_eq!(b["detail"]["user"]["password"], "");
    assert_eq!(b["detail"]["user-resolver"], "local");
    assert_eq!(b["detail"]["user-realm"], "realm1");
    let (_, b) = s.check(&[("user", "alice"), ("pass", "0000")]).await;
    assert!(b["detail"].get("user").is_none(), "only on success: {b}");
    s.adelete("/policy/who").await;
    authz(&s, "quiet", "no_detail_on_fail, no_detail_on_success", &[]).await;
    let (_, b) = s.check(&[("user", "alice"), ("pass", "0000")]).await;
    assert_eq!(value(&b), false);
    assert!(b.get("detail").is_none(), "{b}");
    s.adelete("/policy/quiet").await;
    authz(&s, "quiet", "no_detail_on_success", &[]).await;
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let otp = gw.last_otp(ALICE);
    let (_, b) = s
        .check(&[("user", "alice"), ("transaction_id", &tid), ("pass", &otp)])
        .await;
    assert_eq!(value(&b), true);
    assert!(b.get("detail").is_none(), "{b}");
}

#[tokio::test]
async fn login_limits_count_the_users_logins_in_the_audit_log() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "S1", "1234", ALICE).await;
    authz(&s, "fails", "auth_max_fail=2/5m", &[]).await;
    for _ in 0..2 {
        let (_, b) = s.check(&[("user", "alice"), ("pass", "0000")]).await;
        assert_eq!(msg(&b), "wrong otp pin", "{b}");
    }
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_eq!(value(&b), false, "{b}");
    assert_eq!(
        msg(&b),
        "Only 2 failed authentications per 0:05:00 allowed."
    );
    s.advance(301);
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_eq!(
        b["result"]["authentication"], "CHALLENGE",
        "the span passed: {b}"
    );
    s.adelete("/policy/fails").await;

    authz(&s, "once", "auth_max_success=1/1h", &[]).await;
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let otp = gw.last_otp(ALICE);
    let (_, b) = s
        .check(&[("user", "alice"), ("transaction_id", &tid), ("pass", &otp)])
        .await;
    assert_eq!(value(&b), true, "{b}");
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_eq!(
        msg(&b),
        "Only 1 successful authentications per 1:00:00 allowed.",
        "{b}"
    );
}

#[tokio::test]
async fn last_auth_refuses_a_token_unused_for_too_long_and_does_not_renew_it() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "S1", "1234", ALICE).await;
    authz(&s, "recent", "last_auth=1h", &[]).await;
    // Never used: allowed, and the success is recorded.
    assert_eq!(
        login(&s, &gw, "alice", "1234", ALICE).await["result"]["value"],
        true
    );
    let last = s.token_info("S1").await["info"]["last_auth"].clone();
    s.advance(2 * 3600);
    for _ in 0..2 {
        let b = login(&s, &gw, "alice", "1234", ALICE).await;
        assert_eq!(b["result"]["value"], false, "{b}");
        assert_eq!(
            msg(&b),
            format!(
                "The last successful authentication was {}. It is too long ago.",
                last.as_str().unwrap()
            ),
            "the refused login renewed nothing"
        );
    }
}

#[tokio::test]
async fn set_realm_setrealm_and_mangle_rewrite_the_login() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "S1", "1234", ALICE).await;
    s.ok("/resolver/staff", &[("type", "internalresolver")])
        .await;
    s.ok("/realm/realm2", &[("resolvers", "staff")]).await;
    s.ok(
        "/user/",
        &[
            ("user", "dave"),
            ("resolver", "staff"),
            ("password", "dave-pw"),
        ],
    )
    .await;
    s.ok(
        "/policy/pass2",
        &[
            ("scope", "authentication"),
            ("action", "passOnNoToken"),
            ("realm", "realm2"),
        ],
    )
    .await;
    let dave = [("user", "dave"), ("pass", "x")];
    let (st, b) = s.check(&dave).await;
    assert_eq!(st, 400, "dave is not in the default realm: {b}");

    // set_realm (authentication scope, privacyIDEA 3.14).
    s.ok(
        "/policy/to2",
        &[
            ("scope", "authentication"),
            ("action", "set_realm=realm2"),
            ("user", "dave"),
        ],
    )
    .await;
    let (_, b) = s.check(&dave).await;
    assert_eq!(value(&b), true, "{b}");
    s.adelete("/policy/to2").await;

    // setrealm (authorization scope) needs the user found where the request names him: a
    // user of both realms is moved to realm2.
    s.ok("/realm/realm2", &[("resolvers", "staff,local")]).await;
    authz(&s, "move", "setrealm=realm2", &[("user", "carol")]).await;
    let (_, b) = s.check(&[("user", "carol"), ("pass", "x")]).await;
    assert_eq!(
        msg(&b),
        "user has no token, accepted due to 'pass2'",
        "carol logged in to realm2: {b}"
    );
    s.adelete("/policy/move").await;

    // mangle: strip a mail domain from the login, and a prefix from the pass (one rule per
    // policy, as in privacyIDEA).
    for (name, rule) in [
        ("strip-domain", r"mangle=user/(.*)@corp\.example$/\1/"),
        ("strip-prefix", r"mangle=pass/^x(.*)$/\1/"),
    ] {
        s.ok(
            &format!("/policy/{name}"),
            &[("scope", "authentication"), ("action", rule)],
        )
        .await;
    }
    let (st, b) = s
        .check(&[("user", "alice@corp.example"), ("pass", "x1234")])
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["result"]["authentication"], "CHALLENGE", "{b}");
}

#[tokio::test]
async fn authorization_actions_are_checked_when_saved() {
    let s = Server::start().await;
    for (action, want) in [
        ("auth_max_fail=3/5d", "takes a limit like 3/5m"),
        ("last_auth=7w", "takes a span like"),
        ("serial=^(", "takes regular expressions"),
        ("tokeninfo=phone", "takes key/<regular expression>/"),
        ("authorized=maybe", "takes grant_access, deny_access"),
        (
            "api_key_required",
            "does not issue privacyIDEA's validate API keys",
        ),
    ] {
        let (st, b) = s
            .apost(
                "/policy/z",
                &[("scope", "authorization"), ("action", action)],
            )
            .await;
        assert_eq!(st, 400, "{action}: {b}");
        assert!(error(&b).contains(want), "{action}: {b}");
    }
    let (st, b) = s
        .apost(
            "/policy/z",
            &[("scope", "authentication"), ("action", "mangle=phone/a/b/")],
        )
        .await;
    assert_eq!(st, 400, "{b}");
}

#[tokio::test]
async fn a_user_without_a_token_enrolls_a_phone_during_the_login() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.ok(
        "/policy/rollout",
        &[
            ("scope", "authentication"),
            (
                "action",
                "passthru, otppin=userstore, enroll_via_multichallenge=sms",
            ),
        ],
    )
    .await;
    // The password lets Bob in, and the answer asks for his number instead.
    let (_, b) = s.check(&[("user", "bob"), ("pass", "bob-pw")]).await;
    assert_eq!(b["result"]["authentication"], "CHALLENGE", "{b}");
    assert_eq!(value(&b), false);
    assert_eq!(msg(&b), "Please enter your new phone number!");
    assert_eq!(b["detail"]["enroll_via_multichallenge"], true, "{b}");
    assert_eq!(b["detail"]["enroll_via_multichallenge_optional"], false);
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let serial = b["detail"]["serial"].as_str().unwrap().to_owned();
    assert_eq!(s.token_info(&serial).await["rollout_state"], "clientwait");
    let sent = gw.count();
    let answer = |pass: &'static str| {
        let (s, tid) = (&s, tid.clone());
        async move {
            s.check(&[("user", "bob"), ("transaction_id", &tid), ("pass", pass)])
                .await
                .1
        }
    };
    let b = answer("no number").await;
    assert_eq!(msg(&b), "The phone number is not valid.", "{b}");
    assert_eq!(gw.count(), sent, "no SMS yet");
    // The number gets an SMS in the same transaction.
    let b = answer("+4915100000022").await;
    assert_eq!(b["result"]["authentication"], "CHALLENGE", "{b}");
    assert_eq!(msg(&b), "Enter the OTP from the SMS:");
    assert_eq!(b["detail"]["transaction_id"], tid.as_str());
    assert_eq!(s.token_info(&serial).await["rollout_state"], "verify");
    let otp = gw.last_otp("+4915100000022");
    let (_, b) = s
        .check(&[("user", "bob"), ("transaction_id", &tid), ("pass", &otp)])
        .await;
    assert_eq!(value(&b), true, "{b}");
    assert_eq!(b["detail"]["serial"], serial.as_str());
    let t = s.token_info(&serial).await;
    assert_eq!(t["rollout_state"], "enrolled", "{t}");
    assert_eq!(t["info"]["phone"], "+4915100000022");
    assert!(t["info"].get("enroll_via_multichallenge").is_none(), "{t}");
    // From now on Bob logs in with his token, the password as its PIN.
    assert_eq!(
        login(&s, &gw, "bob", "bob-pw", "+4915100000022").await["result"]["value"],
        true
    );

    // Carol leaves half-way; her next login starts over (one pending token, a new one),
    // with the policy's own prompt.
    s.ok(
        "/policy/prompt",
        &[
            ("scope", "authentication"),
            (
                "action",
                "enroll_via_multichallenge_text=Your mobile number\\, please",
            ),
        ],
    )
    .await;
    let (_, b) = s.check(&[("user", "carol"), ("pass", "carol-pw")]).await;
    let first = b["detail"]["serial"].as_str().unwrap().to_owned();
    let (_, b) = s.check(&[("user", "carol"), ("pass", "carol-pw")]).await;
    assert_eq!(msg(&b), "Your mobile number, please", "{b}");
    assert_ne!(b["detail"]["serial"], first.as_str());
    let (_, b) = s.aget("/token/", &[("user", "carol")]).await;
    assert_eq!(value(&b)["count"], 1, "the first one was dropped: {b}");
    // A wrong password starts nothing.
    let (_, b) = s.check(&[("user", "carol"), ("pass", "wrong")]).await;
    assert_eq!(value(&b), false);
    assert!(
        b["detail"].get("enroll_via_multichallenge").is_none(),
        "{b}"
    );
}

#[tokio::test]
async fn a_pin_set_by_an_admin_is_changed_at_the_first_login() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.ok(
        "/policy/first-use",
        &[
            ("scope", "enrollment"),
            ("action", "change_pin_on_first_use, change_pin_every=90d"),
        ],
    )
    .await;
    s.ok(
        "/policy/via-validate",
        &[
            ("scope", "authentication"),
            ("action", "change_pin_via_validate"),
        ],
    )
    .await;
    s.enroll("alice", "S1", "1234", ALICE).await;
    assert!(
        s.token_info("S1").await["info"]["next_pin_change"].is_string(),
        "due at once"
    );
    // The right OTP does not log Alice in yet: she must choose a PIN, twice.
    let b = login(&s, &gw, "alice", "1234", ALICE).await;
    assert_eq!(b["result"]["authentication"], "CHALLENGE", "{b}");
    assert_eq!(msg(&b), "Please enter a new PIN");
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let step = |pass: &'static str, tid: String| {
        let s = &s;
        async move {
            s.check(&[("user", "alice"), ("transaction_id", &tid), ("pass", pass)])
                .await
                .1
        }
    };
    let b = step("12", tid.clone()).await;
    assert_eq!(
        msg(&b),
        "Please enter a new PIN",
        "too short, asked again: {b}"
    );
    let b = step("9876", tid.clone()).await;
    assert_eq!(msg(&b), "Please enter the new PIN again", "{b}");
    let b = step("9999", tid.clone()).await;
    assert_eq!(msg(&b), "PINs do not match", "{b}");
    assert_eq!(value(&b), false);
    // The mismatch ended the change; the next login starts it again.
    let b = login(&s, &gw, "alice", "1234", ALICE).await;
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    step("9876", tid.clone()).await;
    let b = step("9876", tid.clone()).await;
    assert_eq!(value(&b), true, "{b}");
    assert_eq!(msg(&b), "PIN successfully set.");
    // The new PIN works, and the next change is due in 90 days.
    assert_eq!(
        login(&s, &gw, "alice", "9876", ALICE).await["result"]["value"],
        true
    );
    let next = s.token_info("S1").await["info"]["next_pin_change"]
        .as_str()
        .unwrap()
        .to_owned();
    let next = chrono::DateTime::parse_from_str(&next, "%Y-%m-%dT%H:%M%z").unwrap();
    let days = (next.with_timezone(&chrono::Utc) - s.clock.now()).num_days();
    assert!((89..=90).contains(&days), "{next}");
    s.advance(91 * 24 * 3600);
    // (A new admin sign-in after the clock moved.)
    let b = login(&s, &gw, "alice", "9876", ALICE).await;
    assert_eq!(msg(&b), "Please enter a new PIN", "due again: {b}");
}

/// A legacy RADIUS server for the pass-through tests: a real UDP socket that checks the
/// Message-Authenticator, reveals the password with the shared secret and accepts one user
/// and password; it counts the requests it answered.
struct LegacyRadius {
    port: u16,
    seen: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl LegacyRadius {
    async fn start(secret: &'static [u8], user: &'static str, password: &'static str) -> Self {
        use otpgate_radius::{auth, packet};
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = seen.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let raw = &buf[..n];
                let Ok(req) = packet::decode(raw) else {
                    continue;
                };
                if auth::verify_request(raw, &req, secret, true).is_err() {
                    continue;
                }
                let hidden = req.get(packet::attr::USER_PASSWORD).unwrap_or_default();
                let given =
                    auth::unhide_password(hidden, secret, &req.authenticator).unwrap_or_default();
                let ok = req.get(packet::attr::USER_NAME) == Some(user.as_bytes())
                    && given == password.as_bytes();
                let reply = packet::Packet {
                    code: if ok {
                        packet::ACCESS_ACCEPT
                    } else {
                        packet::ACCESS_REJECT
                    },
                    identifier: req.identifier,
                    authenticator: req.authenticator,
                    attributes: Vec::new(),
                };
                let bytes = auth::sign_reply(reply, &req.authenticator, secret).unwrap();
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = socket.send_to(&bytes, from).await;
            }
        });
        LegacyRadius { port, seen }
    }
}

#[tokio::test]
async fn users_without_a_token_pass_through_to_a_legacy_radius_server() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    let legacy = LegacyRadius::start(b"legacy-secret", "bob", "123456").await;
    let port = legacy.port.to_string();
    // A policy naming a server that is not defined is refused.
    let (st, b) = s
        .apost(
            "/policy/legacy",
            &[("scope", "authentication"), ("action", "passthru=oldotp")],
        )
        .await;
    assert_eq!(st, 400, "{b}");
    assert!(
        error(&b).contains("there is no RADIUS server oldotp"),
        "{b}"
    );
    s.ok(
        "/radiusserver/oldotp",
        &[
            ("server", "127.0.0.1"),
            ("port", &port),
            ("secret", "legacy-secret"),
            ("timeout", "2"),
            ("retries", "1"),
        ],
    )
    .await;
    let (_, b) = s.aget("/radiusserver/", &[]).await;
    assert_eq!(value(&b)["oldotp"]["secret"], "__CENSORED__", "{b}");
    assert_eq!(value(&b)["oldotp"]["port"], legacy.port);
    // The test request, with the stored secret.
    let test = |user: &'static str, pass: &'static str| {
        let s = &s;
        async move {
            s.apost(
                "/radiusserver/test_request",
                &[
                    ("identifier", "oldotp"),
                    ("username", user),
                    ("password", pass),
                ],
            )
            .await
        }
    };
    assert_eq!(value(&test("bob", "123456").await.1), true);
    assert_eq!(value(&test("bob", "000000").await.1), false);
    s.ok(
        "/policy/legacy",
        &[("scope", "authentication"), ("action", "passthru=oldotp")],
    )
    .await;
    // Bob has no token: what the old server accepts gets him in.
    let (_, b) = s.check(&[("user", "bob"), ("pass", "123456")]).await;
    assert_eq!(value(&b), true, "{b}");
    assert_eq!(
        msg(&b),
        "against RADIUS server oldotp due to 'legacy'",
        "{b}"
    );
    let (_, b) = s.check(&[("user", "bob"), ("pass", "999999")]).await;
    assert_eq!(value(&b), false, "{b}");
    // Alice has a token: no pass-through, her own login.
    s.enroll("alice", "S1", "1234", ALICE).await;
    let asked = legacy.seen.load(std::sync::atomic::Ordering::SeqCst);
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_eq!(b["result"]["authentication"], "CHALLENGE", "{b}");
    assert_eq!(
        legacy.seen.load(std::sync::atomic::Ordering::SeqCst),
        asked,
        "the old server is not asked"
    );
    // A kept secret goes nowhere else; a server that does not answer is a refusal, not an
    // error.
    let (st, b) = s
        .apost(
            "/radiusserver/oldotp",
            &[
                ("server", "127.0.0.1"),
                ("port", "9"),
                ("secret", "__CENSORED__"),
            ],
        )
        .await;
    assert_eq!(st, 400, "{b}");
    assert!(error(&b).contains("Give the secret again"), "{b}");
    s.ok(
        "/radiusserver/oldotp",
        &[
            ("server", "127.0.0.1"),
            ("port", "9"),
            ("secret", "legacy-secret"),
            ("timeout", "1"),
            ("retries", "0"),
        ],
    )
    .await;
    let (st, b) = s.check(&[("user", "bob"), ("pass", "123456")]).await;
    assert_eq!((st, value(&b)), (200, &json!(false)), "{b}");
}

#[tokio::test]
async fn passthru_assign_gives_the_user_the_token_whose_otp_they_typed() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    // An unassigned token in realm1 with a known key (RFC 4226's test key).
    let (st, b) = s
        .apost(
            "/token/init",
            &[
                ("type", "sms"),
                ("serial", "SPARE"),
                ("phone", "+4915100000002"),
                ("otpkey", "3132333435363738393031323334353637383930"),
            ],
        )
        .await;
    assert_eq!(st, 200, "{b}");
    s.ok("/token/realm/SPARE", &[("realms", "realm1")]).await;
    // RFC 4226 Appendix D: counter 2 gives 359152; the PIN comes first.
    let legacy = LegacyRadius::start(b"legacy-secret", "bob", "pw359152").await;
    s.ok(
        "/radiusserver/oldotp",
        &[
            ("server", "127.0.0.1"),
            ("port", &legacy.port.to_string()),
            ("secret", "legacy-secret"),
        ],
    )
    .await;
    s.ok(
        "/policy/legacy",
        &[
            ("scope", "authentication"),
            ("action", "passthru=oldotp, passthru_assign=pin:6"),
        ],
    )
    .await;
    let (_, b) = s.check(&[("user", "bob"), ("pass", "pw359152")]).await;
    assert_eq!(value(&b), true, "{b}");
    assert_eq!(
        msg(&b),
        "auto-assigned SPARE,against RADIUS server oldotp due to 'legacy'"
    );
    let t = s.token_info("SPARE").await;
    assert_eq!(t["username"], "bob", "{t}");
    assert_eq!(t["count"], 3, "past the OTP used: {t}");
    // From now on Bob logs in with his token and the PIN he typed.
    let (_, b) = s.check(&[("user", "bob"), ("pass", "pw")]).await;
    assert_eq!(b["result"]["authentication"], "CHALLENGE", "{b}");
    let (st, b) = s
        .apost(
            "/policy/bad",
            &[
                ("scope", "authentication"),
                ("action", "passthru_assign=six"),
            ],
        )
        .await;
    assert_eq!(st, 400, "{b}");
}

#[tokio::test]
async fn disabled_token_types_and_force_challenge_response() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "S1", "1234", ALICE).await;
    s.ok(
        "/policy/no-sms",
        &[
            ("scope", "authentication"),
            ("action", "disabled_token_types=hotp sms, passOnNoToken"),
        ],
    )
    .await;
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_eq!(value(&b), false);
    assert_eq!(
        msg(&b),
        "No suitable token found for authentication.",
        "her token still counts: no pass-through: {b}"
    );
    s.adelete("/policy/no-sms").await;
    s.ok(
        "/policy/forced",
        &[
            ("scope", "authentication"),
            ("action", "force_challenge_response"),
        ],
    )
    .await;
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let otp = gw.last_otp(ALICE);
    let (_, b) = s
        .check(&[("user", "alice"), ("pass", &format!("1234{otp}"))])
        .await;
    assert_eq!(value(&b), false, "PIN+OTP in one is refused: {b}");
    let (_, b) = s
        .check(&[("user", "alice"), ("transaction_id", &tid), ("pass", &otp)])
        .await;
    assert_eq!(value(&b), true, "the answer to the challenge works: {b}");
}

#[tokio::test]
async fn policies_for_client_applications_and_user_names_in_any_case() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.ok(
        "/policy/cp",
        &[
            ("scope", "authentication"),
            ("action", "passOnNoToken"),
            ("user_agents", "privacyidea-cp, FreeRADIUS"),
        ],
    )
    .await;
    let (_, b) = s.aget("/policy/cp", &[]).await;
    assert_eq!(
        value(&b)[0]["user_agents"],
        json!(["privacyidea-cp", "FreeRADIUS"]),
        "{b}"
    );
    let bob = [("user", "bob"), ("pass", "x")];
    let (_, b) = s
        .post_with(
            "/validate/check",
            &[("User-Agent", "privacyidea-cp/2.0 Windows/Laptop-1")],
            &bob,
        )
        .await;
    assert_eq!(value(&b), true, "{b}");
    let (_, b) = s
        .post_with("/validate/check", &[("User-Agent", "curl/8.5")], &bob)
        .await;
    assert_eq!(value(&b), false, "another application: {b}");
    s.adelete("/policy/cp").await;
    // A user named in another case matches only with user_case_insensitive.
    s.ok(
        "/policy/bob",
        &[
            ("scope", "authentication"),
            ("action", "passOnNoToken"),
            ("user", "BOB"),
        ],
    )
    .await;
    let (_, b) = s.check(&bob).await;
    assert_eq!(value(&b), false, "{b}");
    s.ok("/policy/bob", &[("user_case_insensitive", "true")])
        .await;
    let (_, b) = s.check(&bob).await;
    assert_eq!(value(&b), true, "{b}");
    // Admin policies are not matched by user agent, so one restricted to one is refused; and
    // otpgate's nodes are alike, so a pinode too.
    for (field, v) in [("user_agents", "privacyidea-cp"), ("pinode", "node1")] {
        let (st, b) = s
            .apost(
                "/policy/adm",
                &[
                    (
                        "scope",
                        if field == "pinode" {
                            "authentication"
                        } else {
                            "admin"
                        },
                    ),
                    (
                        "action",
                        if field == "pinode" {
                            "passOnNoToken"
                        } else {
                            "*"
                        },
                    ),
                    (field, v),
                ],
            )
            .await;
        assert_eq!(st, 400, "{field}: {b}");
    }
}
