//! The policy engine's matching rules end to end: extended conditions (user attributes, the
//! token, the HTTP request's headers and parameters), `time` ranges on the server's clock,
//! `check_all_resolvers`, and what a policy must be to be saved.

use crate::support::{Gateway, Server, code, error, msg, value};
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
            "Invalid condition of policy 'p': Unknown comparator 'like'.",
        ),
        (
            json!([["userinf", "a", "equals", "b", true]]),
            "Invalid condition of policy 'p': Unknown section 'userinf' set in condition.",
        ),
        (
            json!([["userinfo", "a", "equals", "b", true, "maybe"]]),
            "Invalid condition of policy 'p': Unknown handle missing data value 'maybe'!",
        ),
        (
            json!([["container", "a", "equals", "b", true]]),
            "Invalid condition of policy 'p': otpgate does not evaluate conditions on the section 'container'; it evaluates: userinfo, tokeninfo, token, HTTP Request header, Request Data.",
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
