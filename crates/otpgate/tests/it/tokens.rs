//! The token endpoints helpdesk scripts and privacyIDEA's admin client call besides the
//! basic ones: assign, unassign, revoke, description, realm, info, copypin, copyuser,
//! setrandompin, ending challenges, and `/validate/samlcheck`; with privacyIDEA's answers.

use crate::support::*;
use serde_json::json;

const ALICE: &str = "+4915100000001";
const BOB: &str = "+4915100000002";

async fn ready() -> (Server, Gateway) {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "SMS1", "1234", ALICE).await;
    // A spare token on the shelf: no owner.
    let (st, b) = s
        .apost(
            "/token/init",
            &[("type", "sms"), ("serial", "SPARE"), ("phone", BOB)],
        )
        .await;
    assert_eq!(st, 200, "{b}");
    (s, gw)
}

/// Logs `user` in with `pin` and then the OTP; the final answer.
pub(crate) async fn login(
    s: &Server,
    gw: &Gateway,
    user: &str,
    pin: &str,
    phone: &str,
) -> serde_json::Value {
    let (_, b) = s.check(&[("user", user), ("pass", pin)]).await;
    let Some(tid) = b["detail"]["transaction_id"].as_str() else {
        return b;
    };
    let otp = gw.last_otp(phone);
    s.check(&[("user", user), ("transaction_id", tid), ("pass", &otp)])
        .await
        .1
}

#[tokio::test]
async fn assign_and_unassign_move_tokens_between_users_like_privacyidea() {
    let (s, gw) = ready().await;
    let (st, b) = s
        .apost(
            "/token/assign",
            &[
                ("serial", "SPARE"),
                ("user", "bob"),
                ("realm", "realm1"),
                ("pin", "bobpin"),
            ],
        )
        .await;
    assert_eq!((st, value(&b).clone()), (200, json!(true)), "{b}");
    let t = s.token_info("SPARE").await;
    assert_eq!(t["username"], "bob");
    assert_eq!(t["realms"], json!(["realm1"]));
    assert!(t["info"]["assignment_date"].is_string(), "{t}");
    let b = login(&s, &gw, "bob", "bobpin", BOB).await;
    assert_eq!(b["result"]["authentication"], "ACCEPT", "{b}");

    // A token that has an owner is not taken from them: privacyIDEA's error 1103.
    let (st, b) = s
        .apost("/token/assign", &[("serial", "SPARE"), ("user", "carol")])
        .await;
    assert_eq!((st, code(&b)), (400, 1103), "{b}");
    assert!(error(&b).contains("already assigned"), "{b}");
    for form in [vec![("user", "carol")], vec![("serial", "SPARE")]] {
        let (st, b) = s.apost("/token/assign", &form).await;
        assert_eq!((st, code(&b)), (400, 905), "{form:?}: {b}");
    }
    let (st, b) = s
        .apost("/token/assign", &[("serial", "NOPE"), ("user", "carol")])
        .await;
    assert_eq!(st, 404, "{b}");

    // Unassigned in the middle of a login: the open challenge dies with the ownership.
    let (_, b) = s.check(&[("user", "bob"), ("pass", "bobpin")]).await;
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let otp = gw.last_otp(BOB);
    let (st, b) = s.apost("/token/unassign", &[("serial", "SPARE")]).await;
    assert_eq!((st, value(&b).clone()), (200, json!(1)), "{b}");
    let (_, b) = s
        .check(&[("user", "bob"), ("transaction_id", &tid), ("pass", &otp)])
        .await;
    assert_eq!(b["result"]["authentication"], "REJECT", "{b}");
    let t = s.token_info("SPARE").await;
    assert_eq!(t["username"], "");
    // The former owner's realm stays a realm of the token, as in privacyIDEA.
    assert_eq!(t["realms"], json!(["realm1"]));
    // The former owner's number goes (otpgate): the next owner's codes must not reach bob's
    // phone; until a number is set the token reads its owner's from the user store.
    assert!(t["info"]["phone"].is_null(), "{t}");
    assert_eq!(t["info"]["dynamic_phone"], "True", "{t}");
    let (_, b) = s
        .aget(
            "/token/",
            &[("tokenrealm", "realm1"), ("assigned", "false")],
        )
        .await;
    assert_eq!(value(&b)["count"], 1, "{b}");

    // The PIN went with the owner: a new owner starts without one, and the SMS goes to the
    // new owner's mobile.
    s.ok("/token/assign", &[("serial", "SPARE"), ("user", "alice")])
        .await;
    let (_, b) = s
        .check(&[("user", "alice"), ("pass", "bobpin"), ("serial", "SPARE")])
        .await;
    assert_eq!(b["result"]["authentication"], "REJECT", "{b}");
    let (_, b) = s
        .check(&[("user", "alice"), ("pass", ""), ("serial", "SPARE")])
        .await;
    assert_eq!(b["result"]["authentication"], "CHALLENGE", "{b}");
    assert_eq!(gw.last().field("phone").as_deref(), Some(ALICE));

    // All of a user's tokens, and lists with serials that name nothing.
    let (_, b) = s.apost("/token/unassign", &[("user", "alice")]).await;
    assert_eq!(
        value(&b),
        &json!({"count_success": 2, "failed": [], "unauthorized": []}),
        "{b}"
    );
    let (_, b) = s.apost("/token/unassign", &[("serial", "SMS1,NOPE")]).await;
    assert_eq!(
        value(&b),
        &json!({"count_success": 1, "failed": ["NOPE"], "unauthorized": []}),
        "{b}"
    );

    // Audited with the user, and events fire under privacyIDEA's names.
    let (_, b) = s
        .aget(
            "/audit/",
            &[("action", "*token/assign*"), ("serial", "SPARE")],
        )
        .await;
    let rows = value(&b)["auditdata"].as_array().unwrap().clone();
    assert!(
        rows.iter().any(|r| r["user"] == "bob"
            && r["action_detail"]
                .as_str()
                .is_some_and(|d| !d.contains("bobpin"))),
        "{rows:?}"
    );
    let (_, b) = s.aget("/event/available", &[]).await;
    for e in [
        "token_assign",
        "token_unassign",
        "token_revoke",
        "token_info",
    ] {
        assert!(
            value(&b).as_array().unwrap().iter().any(|v| v == e),
            "{e}: {b}"
        );
    }
}

#[tokio::test]
async fn revoke_description_info_and_realms_change_one_token() {
    let (s, gw) = ready().await;
    // Description, through both routes.
    assert_eq!(
        s.ok("/token/description/SMS1", &[("description", "desk phone")])
            .await,
        json!(true)
    );
    assert_eq!(s.token_info("SMS1").await["description"], "desk phone");
    s.ok(
        "/token/description",
        &[("serial", "SMS1"), ("description", "")],
    )
    .await;
    assert_eq!(s.token_info("SMS1").await["description"], "");
    let (st, b) = s.apost("/token/description/SMS1", &[]).await;
    assert_eq!((st, code(&b)), (400, 905), "{b}");

    // Token info: free keys, and the SMS keys checked as /token/set checks them.
    assert_eq!(
        s.ok("/token/info/SMS1/ticket", &[("value", "INC-42")])
            .await,
        json!(true)
    );
    assert_eq!(s.token_info("SMS1").await["info"]["ticket"], "INC-42");
    let (st, b) = s.adelete("/token/info/SMS1/ticket").await;
    assert_eq!((st, value(&b).clone()), (200, json!(true)), "{b}");
    assert!(s.token_info("SMS1").await["info"]["ticket"].is_null());
    s.ok("/token/info/SMS1/phone", &[("value", "+49 151 1111 2222")])
        .await;
    assert_eq!(
        s.token_info("SMS1").await["info"]["phone"],
        "+4915111112222"
    );
    for (path, form, why) in [
        (
            "/token/info/SMS1/phone",
            vec![("value", "no number")],
            "phone number",
        ),
        (
            "/token/info/SMS1/hashlib",
            vec![("value", "md9")],
            "hashlib",
        ),
        ("/token/info/SMS1/x", vec![], "value"),
    ] {
        let (st, b) = s.apost(path, &form).await;
        assert_eq!(st, 400, "{path}: {b}");
        assert!(error(&b).contains(why), "{path}: {b}");
    }
    for key in ["hashlib", "phone"] {
        let (st, b) = s.adelete(&format!("/token/info/SMS1/{key}")).await;
        assert_eq!(st, 400, "{key}: {b}");
    }
    let (st, _) = s.adelete("/token/info/NOPE/x").await;
    assert_eq!(st, 404);
    s.ok("/token/info/SMS1/phone", &[("value", ALICE)]).await;

    // Realms: unknown ones are dropped, the owner's always stays; a JSON list as privacyIDEA's
    // web UI sends it.
    s.ok("/realm/realm2", &[("resolvers", "local")]).await;
    let (st, b) = s
        .apost_json(
            "/token/realm/SPARE",
            &json!({"realms": ["realm2", "realm1"]}),
        )
        .await;
    assert_eq!((st, value(&b).clone()), (200, json!(true)), "{b}");
    assert_eq!(
        s.token_info("SPARE").await["realms"],
        json!(["realm1", "realm2"])
    );
    assert_eq!(
        s.ok("/token/realm/SPARE", &[("realms", "realm2, nosuch")])
            .await,
        json!(true)
    );
    assert_eq!(s.token_info("SPARE").await["realms"], json!(["realm2"]));
    s.ok("/token/realm/SMS1", &[("realms", "realm2")]).await;
    assert_eq!(
        s.token_info("SMS1").await["realms"],
        json!(["realm1", "realm2"])
    );
    let (_, b) = s.aget("/token/", &[("tokenrealm", "realm2")]).await;
    assert_eq!(value(&b)["count"], 2, "{b}");
    // `[]` removes all but the owner's; a blank `realms` is a missing one (privacyIDEA).
    let (st, b) = s
        .apost_json("/token/realm/SMS1", &json!({"realms": []}))
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(s.token_info("SMS1").await["realms"], json!(["realm1"]));
    let (st, b) = s.apost("/token/realm/SMS1", &[]).await;
    assert_eq!((st, code(&b)), (400, 905), "{b}");

    // Revoked for good: no more SMS, and enabling does not bring it back.
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let otp = gw.last_otp(ALICE);
    assert_eq!(s.ok("/token/revoke/SMS1", &[]).await, json!(1));
    let t = s.token_info("SMS1").await;
    assert_eq!(
        (&t["revoked"], &t["locked"], &t["active"]),
        (&json!(true), &json!(true), &json!(false)),
        "{t}"
    );
    // privacyIDEA's answer when all of a user's tokens are revoked: error 1007.
    let (_, b) = s
        .check(&[("user", "alice"), ("transaction_id", &tid), ("pass", &otp)])
        .await;
    assert_eq!(code(&b), 1007, "{b}");
    // A revoked token cannot be changed (privacyIDEA's 1007).
    for (path, form) in [
        ("/token/description/SMS1", vec![("description", "x")]),
        ("/token/info/SMS1/ticket", vec![("value", "x")]),
        ("/token/realm/SMS1", vec![("realms", "realm2")]),
        ("/token/unassign", vec![("serial", "SMS1")]),
    ] {
        let (st, b) = s.apost(path, &form).await;
        assert_eq!((st, code(&b)), (400, 1007), "{path}: {b}");
    }
    s.ok("/token/enable/SMS1", &[]).await;
    let sent = gw.count();
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_ne!(b["result"]["authentication"], "ACCEPT", "{b}");
    assert_eq!(gw.count(), sent, "a revoked token sent an SMS");
    assert_eq!(s.ok("/token/revoke", &[("user", "alice")]).await, json!(1));
}

#[tokio::test]
async fn copies_random_pins_ending_challenges_and_samlcheck() {
    let (s, gw) = ready().await;
    // copyuser: SPARE becomes alice's (without a PIN); copypin: with SMS1's PIN.
    assert_eq!(
        s.ok("/token/copyuser", &[("from", "SMS1"), ("to", "SPARE")])
            .await,
        json!(true)
    );
    assert_eq!(s.token_info("SPARE").await["username"], "alice");
    assert_eq!(
        s.ok("/token/copypin", &[("from", "SMS1"), ("to", "SPARE")])
            .await,
        json!(true)
    );
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_eq!(
        b["detail"]["multi_challenge"].as_array().map(Vec::len),
        Some(2),
        "{b}"
    );
    for (form, code_) in [
        (vec![("from", "NOPE"), ("to", "SPARE")], 1016),
        (vec![("from", "SMS1"), ("to", "NOPE")], 1017),
        (vec![("to", "SPARE")], 905),
        (vec![("from", "SMS1"), ("to", "SMS1")], 905),
    ] {
        let (st, b) = s.apost("/token/copypin", &form).await;
        assert_eq!((st, code(&b)), (400, code_), "{form:?}: {b}");
    }
    s.apost(
        "/token/init",
        &[("type", "sms"), ("serial", "LONE"), ("phone", BOB)],
    )
    .await;
    let (st, b) = s
        .apost("/token/copyuser", &[("from", "LONE"), ("to", "SPARE")])
        .await;
    assert_eq!((st, code(&b)), (400, 301), "{b}");
    assert!(error(&b).contains("no owner"), "{b}");

    // Ending a login in progress.
    let (_, b) = s
        .check(&[("user", "alice"), ("pass", "1234"), ("serial", "SMS1")])
        .await;
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let otp = gw.last_otp(ALICE);
    let (st, b) = s
        .adelete(&format!("/token/challenges/transaction/{tid}"))
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(value(&b)["status"], true, "{b}");
    assert!(value(&b)["deleted"].as_u64().unwrap() >= 1, "{b}");
    let (_, b) = s
        .check(&[("user", "alice"), ("transaction_id", &tid), ("pass", &otp)])
        .await;
    assert_eq!(b["result"]["authentication"], "REJECT", "{b}");
    let (st, b) = s.adelete("/token/challenges/expired").await;
    assert_eq!((st, value(&b)["status"].clone()), (200, json!(true)), "{b}");

    // samlcheck: /validate/check's decision, and the user's attributes once accepted.
    let (_, b) = s
        .post("/validate/samlcheck", &[("user", "bob"), ("pass", "x")])
        .await;
    assert_eq!(value(&b)["auth"], false, "{b}");
    s.ok(
        "/token/assign",
        &[("serial", "LONE"), ("user", "bob"), ("pin", "bp")],
    )
    .await;
    let (_, b) = s
        .post("/validate/samlcheck", &[("user", "bob"), ("pass", "bp")])
        .await;
    assert_eq!(value(&b), &json!({"auth": false, "attributes": {}}), "{b}");
    assert_eq!(b["result"]["authentication"], "CHALLENGE");
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let (_, b) = s
        .post(
            "/validate/samlcheck",
            &[
                ("user", "bob"),
                ("transaction_id", &tid),
                ("pass", &gw.last_otp(BOB)),
            ],
        )
        .await;
    // Attributes only with ReturnSamlAttributes (off by default, as in privacyIDEA).
    assert_eq!(value(&b), &json!({"auth": true, "attributes": {}}), "{b}");
    s.ok("/system/setConfig", &[("ReturnSamlAttributes", "True")])
        .await;
    let (_, b) = s
        .post("/validate/samlcheck", &[("user", "bob"), ("pass", "bp")])
        .await;
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let otp = gw.last_otp(BOB);
    let (_, b) = s
        .post(
            "/validate/samlcheck",
            &[("user", "bob"), ("transaction_id", &tid), ("pass", &otp)],
        )
        .await;
    assert_eq!(value(&b)["auth"], true, "{b}");
    let a = &value(&b)["attributes"];
    assert_eq!(
        (&a["username"], &a["givenname"], &a["mobile"], &a["realm"]),
        (&json!("bob"), &json!("Bob"), &json!(BOB), &json!("realm1")),
        "{b}"
    );

    // setrandompin needs the admin policy that says how long; the PIN comes back once.
    let (st, b) = s.apost("/token/setrandompin/SMS1", &[]).await;
    assert_eq!(st, 400, "{b}");
    assert!(error(&b).contains("otp_pin_set_random"), "{b}");
    s.ok(
        "/policy/random",
        &[
            ("scope", "admin"),
            (
                "action",
                "otp_pin_set_random=8, otp_pin_contents=-cs, setrandompin, tokenlist, auditlog, policyread, policywrite, policydelete",
            ),
        ],
    )
    .await;
    let (st, b) = s.apost("/token/setrandompin", &[("serial", "SMS1")]).await;
    assert_eq!((st, value(&b).clone()), (200, json!(1)), "{b}");
    let pin = b["detail"]["pin"].as_str().unwrap().to_owned();
    assert!(
        pin.len() == 8 && pin.bytes().all(|c| c.is_ascii_digit()),
        "{pin}"
    );
    // The random PIN is SMS1's PIN now.
    let (_, b) = s
        .check(&[("user", "alice"), ("pass", &pin), ("serial", "SMS1")])
        .await;
    assert_eq!(b["result"]["authentication"], "CHALLENGE", "{b}");
    // The admin policy lists what admins may do: assigning is not among it.
    let (st, b) = s
        .apost("/token/assign", &[("serial", "SPARE"), ("user", "bob")])
        .await;
    assert_eq!((st, code(&b)), (403, 303), "{b}");
    // The audit records that a random PIN was set, never the PIN.
    let (_, b) = s.aget("/audit/", &[("action", "*setrandompin*")]).await;
    let text = b.to_string();
    assert!(text.contains("otppin (random)"), "{text}");
    assert!(!text.contains(&pin), "{text}");
}

/// A request as admin `jwt`.
async fn as_admin(
    s: &Server,
    jwt: &str,
    method: reqwest::Method,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let rb = s
        .client
        .request(method.clone(), s.url(path))
        .header("Authorization", jwt);
    let rb = if method == reqwest::Method::GET {
        rb.query(form)
    } else {
        rb.form(form)
    };
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn a_realm_scoped_helpdesk_admin_acts_only_within_its_realm() {
    let (s, _gw) = ready().await;
    // A second branch: realm `branch` with dave and his token.
    s.ok("/resolver/local2", &[("type", "internalresolver")])
        .await;
    s.ok("/realm/branch", &[("resolvers", "local2")]).await;
    s.ok(
        "/user/",
        &[
            ("user", "dave"),
            ("resolver", "local2"),
            ("mobile", "+4915100000004"),
        ],
    )
    .await;
    s.ok(
        "/token/init",
        &[
            ("type", "sms"),
            ("user", "dave"),
            ("realm", "branch"),
            ("serial", "DSMS"),
            ("pin", "d"),
            ("dynamic_phone", "1"),
        ],
    )
    .await;
    s.app
        .services
        .add_admin("helpdesk", "helpdesk-pw")
        .await
        .unwrap();
    s.ok(
        "/policy/root",
        &[
            ("scope", "admin"),
            ("adminuser", "admin"),
            (
                "action",
                "policyread, policywrite, policydelete, tokenlist, auditlog",
            ),
        ],
    )
    .await;
    s.ok(
        "/policy/helpdesk",
        &[
            ("scope", "admin"),
            ("adminuser", "helpdesk"),
            ("realm", "realm1"),
            (
                "action",
                "tokenlist, enable, disable, assign, unassign, triggerchallenge, getchallenges, userlist, auditlog, enrollSMS, updateuser, cancelchallenge",
            ),
        ],
    )
    .await;
    let (_, b) = s
        .post(
            "/auth",
            &[("username", "helpdesk"), ("password", "helpdesk-pw")],
        )
        .await;
    let hd = b["result"]["value"]["token"].as_str().unwrap().to_owned();
    use reqwest::Method;
    // The token list holds realm1's tokens only (SPARE has no owner and no realm).
    let (_, b) = as_admin(&s, &hd, Method::GET, "/token/", &[]).await;
    let serials: Vec<&str> = value(&b)["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["serial"].as_str().unwrap())
        .collect();
    assert_eq!(serials, ["SMS1"], "{b}");
    let (_, b) = as_admin(&s, &hd, Method::GET, "/token/", &[("serial", "DSMS")]).await;
    assert_eq!(value(&b)["count"], 0, "{b}");
    // Changes outside the realm: privacyIDEA's 403 and message.
    for (path, form) in [
        ("/token/disable/DSMS", vec![]),
        (
            "/token/disable",
            vec![("user", "dave"), ("realm", "branch")],
        ),
        (
            "/validate/triggerchallenge",
            vec![("user", "dave"), ("realm", "branch")],
        ),
        (
            "/token/assign",
            vec![("serial", "SPARE"), ("user", "dave"), ("realm", "branch")],
        ),
    ] {
        let (st, b) = as_admin(&s, &hd, Method::POST, path, &form).await;
        assert_eq!((st, code(&b)), (403, 303), "{path}: {b}");
        assert!(
            error(&b).starts_with("Admin actions are defined, but the action "),
            "{b}"
        );
    }
    assert_eq!(s.token_info("DSMS").await["active"], true);
    // Inside the realm it works; a token without owner may be given to a realm1 user.
    let (st, b) = as_admin(&s, &hd, Method::POST, "/token/disable/SMS1", &[]).await;
    assert_eq!((st, value(&b).clone()), (200, json!(1)), "{b}");
    let (st, b) = as_admin(
        &s,
        &hd,
        Method::POST,
        "/token/assign",
        &[("serial", "SPARE"), ("user", "bob")],
    )
    .await;
    assert_eq!((st, value(&b).clone()), (200, json!(true)), "{b}");
    // A list of serials: the ones outside are left alone and named.
    let (_, b) = as_admin(
        &s,
        &hd,
        Method::POST,
        "/token/unassign",
        &[("serial", "SPARE,DSMS")],
    )
    .await;
    assert_eq!(
        value(&b),
        &json!({"count_success": 1, "failed": [], "unauthorized": ["DSMS"]}),
        "{b}"
    );
    assert_eq!(s.token_info("DSMS").await["username"], "dave");
    // Now SPARE is realm1's (its former owner's realm): still the helpdesk's.
    let (_, b) = as_admin(&s, &hd, Method::GET, "/token/", &[("serial", "SPARE")]).await;
    assert_eq!(value(&b)["count"], 1, "{b}");
    // A right the policy does not list is refused everywhere.
    let (st, _) = as_admin(&s, &hd, Method::POST, "/token/reset/SMS1", &[]).await;
    assert_eq!(st, 403);
    // Re-initialising branch B's token, changing its user, ending its login: refused.
    let (st, b) = as_admin(
        &s,
        &hd,
        Method::POST,
        "/token/init",
        &[
            ("type", "sms"),
            ("serial", "DSMS"),
            ("phone", "+4915100000099"),
        ],
    )
    .await;
    assert_eq!((st, code(&b)), (403, 303), "{b}");
    let (st, b) = as_admin(
        &s,
        &hd,
        Method::PUT,
        "/user/",
        &[
            ("user", "dave"),
            ("resolver", "local2"),
            ("mobile", "+4915100000099"),
        ],
    )
    .await;
    assert_eq!((st, code(&b)), (403, 303), "{b}");
    let (_, b) = s
        .check(&[("user", "dave"), ("realm", "branch"), ("pass", "d")])
        .await;
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let (st, b) = as_admin(
        &s,
        &hd,
        Method::DELETE,
        &format!("/token/challenges/transaction/{tid}"),
        &[],
    )
    .await;
    assert_eq!((st, code(&b)), (403, 303), "{b}");
    // Users and the audit log: realm1's only.
    let (st, _) = as_admin(&s, &hd, Method::GET, "/user/", &[("realm", "branch")]).await;
    assert_eq!(st, 403);
    let (st, b) = as_admin(&s, &hd, Method::GET, "/user/", &[("realm", "realm1")]).await;
    assert_eq!(st, 200, "{b}");
    assert!(value(&b).as_array().unwrap().len() >= 3, "{b}");
    let (_, b) = as_admin(&s, &hd, Method::GET, "/audit/", &[("page_size", "1000")]).await;
    let rows = value(&b)["auditdata"].as_array().unwrap().clone();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["realm"] == "realm1"), "{rows:?}");
    // The main admin, with an unscoped policy, sees every token.
    let (_, b) = s.aget("/token/", &[]).await;
    assert_eq!(value(&b)["count"], 3, "{b}");
}

#[tokio::test]
async fn wildcards_exclusions_and_what_policies_may_hold() {
    let (s, gw) = ready().await;
    let _ = gw;
    s.ok("/realm/realm2", &[("resolvers", "local")]).await;
    s.app
        .services
        .add_admin("helpdesk", "helpdesk-pw")
        .await
        .unwrap();
    // privacyIDEA's superuser policy: `action=*` grants every right.
    s.ok(
        "/policy/root",
        &[("scope", "admin"), ("adminuser", "admin"), ("action", "*")],
    )
    .await;
    let (st, b) = s
        .apost("/system/setConfig", &[("DefaultMaxFailCount", "9")])
        .await;
    assert_eq!(st, 200, "{b}");
    // All realms but realm1, by exclusion: SMS1 (alice, realm1) is out of reach, a token put
    // into realm2 is in.
    s.ok(
        "/policy/hd",
        &[
            ("scope", "admin"),
            ("adminuser", "helpdesk"),
            ("realm", "*, -realm1"),
            ("action", "tokenlist, enable, disable"),
        ],
    )
    .await;
    s.ok("/token/realm/SPARE", &[("realms", "realm2")]).await;
    let (_, b) = s
        .post(
            "/auth",
            &[("username", "helpdesk"), ("password", "helpdesk-pw")],
        )
        .await;
    let hd = b["result"]["value"]["token"].as_str().unwrap().to_owned();
    let (_, b) = as_admin(&s, &hd, reqwest::Method::GET, "/token/", &[]).await;
    let serials: Vec<&str> = value(&b)["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["serial"].as_str().unwrap())
        .collect();
    assert_eq!(serials, ["SPARE"], "{b}");
    let (st, _) = as_admin(&s, &hd, reqwest::Method::POST, "/token/disable/SMS1", &[]).await;
    assert_eq!(st, 403);
    let (st, _) = as_admin(&s, &hd, reqwest::Method::POST, "/token/disable/SPARE", &[]).await;
    assert_eq!(st, 200);
    // An admin no `tokenlist` policy matches gets an empty list (privacyIDEA), not a 403; a
    // policy for the admins of a realm does not apply to local admins.
    s.app
        .services
        .add_admin("auditor", "auditor-pw")
        .await
        .unwrap();
    s.ok(
        "/policy/audit",
        &[
            ("scope", "admin"),
            ("adminuser", "auditor"),
            ("action", "auditlog"),
        ],
    )
    .await;
    s.ok(
        "/policy/realmadmins",
        &[
            ("scope", "admin"),
            ("adminrealm", "admins"),
            ("action", "tokenlist"),
        ],
    )
    .await;
    let (_, b) = s
        .post(
            "/auth",
            &[("username", "auditor"), ("password", "auditor-pw")],
        )
        .await;
    let au = b["result"]["value"]["token"].as_str().unwrap().to_owned();
    let (st, b) = as_admin(&s, &au, reqwest::Method::GET, "/token/", &[]).await;
    assert_eq!((st, value(&b)["count"].clone()), (200, json!(0)), "{b}");
    let (st, _) = as_admin(&s, &au, reqwest::Method::POST, "/token/disable/SPARE", &[]).await;
    assert_eq!(st, 403);
    // Conditions are evaluated (tests/it/policies.rs): this one saves, and applies to no one
    // (users have no `groups` attribute, and it says condition_is_false).
    let (st, b) = s
        .apost(
            "/policy/pass",
            &[
                ("scope", "authentication"),
                ("action", "passOnNoToken"),
                (
                    "conditions",
                    r#"[["userinfo", "groups", "contains", "vip", true, "condition_is_false"]]"#,
                ),
            ],
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (_, b) = s.aget("/policy/pass", &[]).await;
    assert_eq!(value(&b)[0]["conditions"][0][1], "groups", "{b}");
    s.adelete("/policy/pass").await;
    // Typos, values an action cannot take, features otpgate lacks and scopes it does not
    // evaluate are refused at save, naming what is evaluated, instead of doing nothing.
    for (scope, action, why) in [
        (
            "authentication",
            "otppin=userstor",
            "takes tokenpin, userstore, none",
        ),
        (
            "authentication",
            "passthru=radius1",
            "there is no RADIUS server radius1",
        ),
        (
            "authentication",
            "auth_cache=4h",
            "does not know or evaluate the authentication action 'auth_cache'. It evaluates: otppin, smstext",
        ),
        ("authentication", "", "Missing parameter: action"),
        ("admin", "enabel", "the admin action 'enabel'"),
        (
            "admin",
            "otp_pin_set_random=99",
            "takes a number from 1 to 64",
        ),
        (
            "webui",
            "login_mode=privacyIDEA",
            "does not evaluate webui policies",
        ),
        (
            "enrollment",
            "pinhandling=privacyidea.lib.pinhandling.base.PinHandler",
            "the enrollment action 'pinhandling'",
        ),
    ] {
        let (st, b) = s
            .apost("/policy/typo", &[("scope", scope), ("action", action)])
            .await;
        assert_eq!((st, code(&b)), (400, 905), "{scope} {action}: {b}");
        assert!(error(&b).contains(why), "{scope} {action}: {b}");
    }
    let (st, b) = s
        .apost(
            "/policy/fromlan",
            &[
                ("scope", "admin"),
                ("action", "tokenlist"),
                ("client", "10.0.0.0/8"),
            ],
        )
        .await;
    assert_eq!((st, code(&b)), (400, 905), "{b}");
    assert!(
        error(&b).contains("client address of admin policies"),
        "{b}"
    );
    for (scope, action) in [
        ("admin", "*, -delete"),
        (
            "authentication",
            "otppin=userstore, smsautosend, preferred_client_mode=poll",
        ),
        ("enrollment", "verify_enrollment=sms"),
    ] {
        let (st, b) = s
            .apost(
                "/policy/fine",
                &[("scope", scope), ("action", action), ("active", "false")],
            )
            .await;
        assert_eq!(st, 200, "{scope} {action}: {b}");
    }
    // A partial update changes only what it gives (privacyIDEA's set_policy).
    s.ok(
        "/policy/part",
        &[
            ("scope", "authentication"),
            ("action", "smsautosend"),
            ("realm", "realm1"),
            ("priority", "3"),
        ],
    )
    .await;
    s.ok(
        "/policy/part",
        &[("action", "smsautosend, reset_all_user_tokens")],
    )
    .await;
    let (_, b) = s.aget("/policy/part", &[]).await;
    let p = &value(&b)[0];
    assert_eq!(
        (&p["scope"], &p["realm"], &p["priority"]),
        (&json!("authentication"), &json!(["realm1"]), &json!(3)),
        "{b}"
    );
    assert_eq!(p["action"]["reset_all_user_tokens"], true, "{b}");
}

#[tokio::test]
async fn pins_an_admin_sets_follow_the_pin_policies() {
    let (s, _gw) = ready().await;
    s.ok(
        "/policy/root",
        &[
            ("scope", "admin"),
            ("adminuser", "admin"),
            (
                "action",
                "*, otp_pin_minlength=4, otp_pin_maxlength=8, otp_pin_contents=cn",
            ),
        ],
    )
    .await;
    for (pin, why) in [
        ("ab1", "The minimum OTP PIN length is 4"),
        ("abcdefgh1", "The maximum OTP PIN length is 8"),
        ("abcd", "Missing character in PIN: 0123456789"),
    ] {
        let (st, b) = s.apost("/token/setpin/SMS1", &[("otppin", pin)]).await;
        assert_eq!((st, code(&b), error(&b)), (403, 303, why), "{pin}: {b}");
    }
    assert_eq!(
        s.ok("/token/setpin/SMS1", &[("otppin", "abc1")]).await,
        json!(1)
    );
    let (_, b) = s.check(&[("user", "alice"), ("pass", "abc1")]).await;
    assert_eq!(b["result"]["authentication"], "CHALLENGE", "{b}");
    // The same at enrollment and assignment; the type-specific form wins.
    let (st, b) = s
        .apost(
            "/token/init",
            &[
                ("type", "sms"),
                ("serial", "P1"),
                ("phone", BOB),
                ("pin", "12"),
            ],
        )
        .await;
    assert_eq!(
        (st, error(&b)),
        (403, "The minimum OTP PIN length is 4"),
        "{b}"
    );
    // No PIN at all is the empty PIN: a minimum length refuses a token without one, as in
    // privacyIDEA (otpgate enrolled it before).
    let (st, b) = s
        .apost(
            "/token/init",
            &[("type", "sms"), ("serial", "P0"), ("phone", BOB)],
        )
        .await;
    assert_eq!(
        (st, error(&b)),
        (403, "The minimum OTP PIN length is 4"),
        "{b}"
    );
    s.ok(
        "/policy/smspin",
        &[
            ("scope", "admin"),
            ("adminuser", "admin"),
            ("action", "sms_otp_pin_minlength=2"),
        ],
    )
    .await;
    let (st, b) = s
        .apost(
            "/token/assign",
            &[("serial", "SPARE"), ("user", "bob"), ("pin", "b1")],
        )
        .await;
    assert_eq!(st, 200, "{b}");
    // The sms_ forms of the maximum and the contents win over the general ones (12345 has no
    // letter, which the general otp_pin_contents=cn would want).
    s.ok(
        "/policy/smspin",
        &[("action", "sms_otp_pin_maxlength=5, sms_otp_pin_contents=n")],
    )
    .await;
    for (pin, why) in [
        ("123456", "The maximum OTP PIN length is 5"),
        ("abcd", "Missing character in PIN: 0123456789"),
    ] {
        let (st, b) = s.apost("/token/setpin/SMS1", &[("otppin", pin)]).await;
        assert_eq!((st, error(&b)), (403, why), "{pin}: {b}");
    }
    assert_eq!(
        s.ok("/token/setpin/SMS1", &[("otppin", "12345")]).await,
        json!(1)
    );
}

#[tokio::test]
async fn pin_and_gateway_policies_follow_the_target_users_realm_and_priority() {
    let (s, _gw) = ready().await;
    s.ok("/resolver/staff", &[("type", "internalresolver")])
        .await;
    s.ok("/realm/realm2", &[("resolvers", "staff")]).await;
    s.ok(
        "/user/",
        &[("user", "dave"), ("resolver", "staff"), ("mobile", BOB)],
    )
    .await;
    s.ok(
        "/token/assign",
        &[("serial", "SPARE"), ("user", "dave@realm2")],
    )
    .await;
    s.http_gateway("gw2", "http://127.0.0.1:9/", &[]).await;
    for (name, realm, action, priority) in [
        ("root", "", "*", "1"),
        (
            "pins-1",
            "realm1",
            "otp_pin_minlength=4, sms_gateways=gw",
            "1",
        ),
        (
            "pins-2",
            "realm2",
            "otp_pin_minlength=8, sms_gateways=gw2",
            "1",
        ),
        // A worse priority for realm2: it does not conflict with pins-2, it loses.
        ("pins-2-old", "realm2", "otp_pin_minlength=6", "5"),
    ] {
        s.ok(
            &format!("/policy/{name}"),
            &[
                ("scope", "admin"),
                ("adminuser", "admin"),
                ("realm", realm),
                ("action", action),
                ("priority", priority),
            ],
        )
        .await;
    }
    let (st, b) = s.apost("/token/setpin/SMS1", &[("otppin", "12345")]).await;
    assert_eq!(st, 200, "alice is in realm1, 4 will do: {b}");
    let (st, b) = s
        .apost("/token/setpin/SPARE", &[("otppin", "1234567")])
        .await;
    assert_eq!(
        (st, error(&b)),
        (403, "The minimum OTP PIN length is 8"),
        "dave is in realm2: {b}"
    );
    // Each realm's gateways.
    let set = |serial: &'static str, gw: &'static str| {
        let s = &s;
        async move {
            s.apost(&format!("/token/set/{serial}"), &[("sms.identifier", gw)])
                .await
                .0
        }
    };
    assert_eq!(set("SMS1", "gw2").await, 403);
    assert_eq!(set("SMS1", "gw").await, 200);
    assert_eq!(set("SPARE", "gw").await, 403);
    assert_eq!(set("SPARE", "gw2").await, 200);
    // Two values at the best priority are privacyIDEA's conflict.
    s.ok(
        "/policy/pins-2b",
        &[
            ("scope", "admin"),
            ("adminuser", "admin"),
            ("realm", "realm2"),
            ("action", "otp_pin_minlength=9"),
        ],
    )
    .await;
    let (st, b) = s
        .apost("/token/setpin/SPARE", &[("otppin", "123456789")])
        .await;
    assert_eq!(
        (st, error(&b)),
        (
            403,
            "There are policies with conflicting actions: ['pins-2', 'pins-2b']"
        ),
        "{b}"
    );
}

#[tokio::test]
async fn a_user_excluded_by_an_admin_policy_is_left_out_of_the_token_list() {
    let (s, _gw) = ready().await;
    let (st, b) = init_for(&s, "bob", "B1", BOB).await;
    assert_eq!(st, 200, "{b}");
    s.app
        .services
        .add_admin("helpdesk", "helpdesk-pw")
        .await
        .unwrap();
    for (name, adminuser, users) in [("root", "admin", ""), ("hd", "helpdesk", "*, -alice")] {
        s.ok(
            &format!("/policy/{name}"),
            &[
                ("scope", "admin"),
                ("adminuser", adminuser),
                ("user", users),
                (
                    "action",
                    if name == "root" {
                        "*"
                    } else {
                        "tokenlist, disable"
                    },
                ),
            ],
        )
        .await;
    }
    let (_, b) = s
        .post(
            "/auth",
            &[("username", "helpdesk"), ("password", "helpdesk-pw")],
        )
        .await;
    let hd = b["result"]["value"]["token"].as_str().unwrap().to_owned();
    let (st, b) = as_admin(&s, &hd, reqwest::Method::GET, "/token/", &[]).await;
    assert_eq!(st, 200, "{b}");
    let mut serials: Vec<&str> = value(&b)["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["serial"].as_str().unwrap())
        .collect();
    serials.sort_unstable();
    assert_eq!(serials, ["B1", "SPARE"], "alice's token is not listed: {b}");
    let (st, _) = as_admin(&s, &hd, reqwest::Method::POST, "/token/disable/SMS1", &[]).await;
    assert_eq!(st, 403);
}

#[tokio::test]
async fn otp_pin_random_gives_a_new_token_a_pin_nobody_chose() {
    let (s, gw) = ready().await;
    s.ok(
        "/policy/random",
        &[
            ("scope", "enrollment"),
            ("realm", "realm1"),
            ("action", "otp_pin_random=12"),
        ],
    )
    .await;
    let (st, b) = s
        .apost(
            "/token/init",
            &[
                ("type", "sms"),
                ("user", "bob"),
                ("serial", "B1"),
                ("phone", BOB),
                ("pin", "1234"),
            ],
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert!(
        b["detail"].get("pin").is_none(),
        "the PIN is not shown: {b}"
    );
    let (_, b) = s.check(&[("user", "bob"), ("pass", "1234")]).await;
    assert_eq!(msg(&b), "wrong otp pin", "the given PIN was replaced: {b}");
    // The user store's password still gets bob in.
    s.ok(
        "/policy/up",
        &[("scope", "authentication"), ("action", "otppin=userstore")],
    )
    .await;
    assert_eq!(
        login(&s, &gw, "bob", "bob-pw", BOB).await["result"]["value"],
        true
    );
}

#[tokio::test]
async fn a_changed_admin_password_ends_the_old_api_tokens() {
    let (s, _gw) = ready().await;
    s.app
        .services
        .add_admin("helpdesk", "old-password")
        .await
        .unwrap();
    let sign_in = |pw: &'static str| {
        let s = &s;
        async move {
            let (_, b) = s
                .post("/auth", &[("username", "helpdesk"), ("password", pw)])
                .await;
            b["result"]["value"]["token"].as_str().unwrap().to_owned()
        }
    };
    let old = sign_in("old-password").await;
    let (st, _) = as_admin(&s, &old, reqwest::Method::GET, "/token/", &[]).await;
    assert_eq!(st, 200);
    s.advance(1);
    s.app
        .services
        .add_admin("helpdesk", "new-password")
        .await
        .unwrap();
    let (st, b) = as_admin(&s, &old, reqwest::Method::GET, "/token/", &[]).await;
    assert_eq!((st, code(&b)), (401, 4305), "{b}");
    let new = sign_in("new-password").await;
    let (st, _) = as_admin(&s, &new, reqwest::Method::GET, "/token/", &[]).await;
    assert_eq!(st, 200, "a token issued after the change");
}

#[tokio::test]
async fn every_admin_right_guards_its_endpoints() {
    use reqwest::Method;
    let (s, _gw) = ready().await;
    s.enroll("bob", "REV", "1234", BOB).await;
    s.app
        .services
        .add_admin("helpdesk", "helpdesk-pw")
        .await
        .unwrap();
    s.ok(
        "/policy/root",
        &[("scope", "admin"), ("adminuser", "admin"), ("action", "*")],
    )
    .await;
    let (_, b) = s
        .post(
            "/auth",
            &[("username", "helpdesk"), ("password", "helpdesk-pw")],
        )
        .await;
    let hd = b["result"]["value"]["token"].as_str().unwrap().to_owned();
    // Each right with a request that needs it (in an order that leaves what later ones use).
    let table: Vec<(&str, Method, &str, Vec<(&str, &str)>)> = vec![
        (
            "enrollSMS",
            Method::POST,
            "/token/init",
            vec![("type", "sms"), ("serial", "N1"), ("phone", BOB)],
        ),
        ("enable", Method::POST, "/token/enable/SMS1", vec![]),
        ("disable", Method::POST, "/token/disable/N1", vec![]),
        ("reset", Method::POST, "/token/reset/SMS1", vec![]),
        (
            "setpin",
            Method::POST,
            "/token/setpin/SMS1",
            vec![("otppin", "1234")],
        ),
        (
            "set",
            Method::POST,
            "/token/set/SMS1",
            vec![("max_failcount", "9")],
        ),
        (
            "setdescription",
            Method::POST,
            "/token/description/SMS1",
            vec![("description", "d")],
        ),
        (
            "settokeninfo",
            Method::POST,
            "/token/info/SMS1/note",
            vec![("value", "v")],
        ),
        (
            "tokenrealms",
            Method::POST,
            "/token/realm/SPARE",
            vec![("realms", "realm1")],
        ),
        (
            "copytokenpin",
            Method::POST,
            "/token/copypin",
            vec![("from", "SMS1"), ("to", "REV")],
        ),
        (
            "assign",
            Method::POST,
            "/token/assign",
            vec![("serial", "SPARE"), ("user", "carol")],
        ),
        (
            "unassign",
            Method::POST,
            "/token/unassign",
            vec![("serial", "SPARE")],
        ),
        (
            "copytokenuser",
            Method::POST,
            "/token/copyuser",
            vec![("from", "SMS1"), ("to", "SPARE")],
        ),
        (
            "setrandompin",
            Method::POST,
            "/token/setrandompin/SMS1",
            vec![],
        ),
        (
            "cancelchallenge",
            Method::DELETE,
            "/token/challenges/transaction/12345678901234567890",
            vec![],
        ),
        ("getchallenges", Method::GET, "/token/challenges/", vec![]),
        (
            "triggerchallenge",
            Method::POST,
            "/validate/triggerchallenge",
            vec![("user", "alice")],
        ),
        ("revoke", Method::POST, "/token/revoke/REV", vec![]),
        ("delete", Method::DELETE, "/token/N1", vec![]),
        (
            "radiusserver_write",
            Method::POST,
            "/radiusserver/r1",
            vec![("server", "127.0.0.1"), ("secret", "s")],
        ),
        ("radiusserver_read", Method::GET, "/radiusserver/", vec![]),
        ("smsgateway_read", Method::GET, "/smsgateway/", vec![]),
        (
            "smsgateway_write",
            Method::POST,
            "/smsgateway",
            vec![("name", "gw9"), ("module", "sink")],
        ),
        (
            "smtpserver_write",
            Method::POST,
            "/smtpserver/m1",
            vec![("server", "127.0.0.1")],
        ),
        ("smtpserver_read", Method::GET, "/smtpserver/", vec![]),
        (
            "configwrite",
            Method::POST,
            "/system/setConfig",
            vec![("some.key", "1")],
        ),
        ("configread", Method::GET, "/system/", vec![]),
        ("configdelete", Method::DELETE, "/system/some.key", vec![]),
        (
            "policywrite",
            Method::POST,
            "/policy/extra",
            vec![("scope", "authentication"), ("action", "passOnNoUser")],
        ),
        ("policyread", Method::GET, "/policy/", vec![]),
        ("policydelete", Method::DELETE, "/policy/extra", vec![]),
        (
            "resolverwrite",
            Method::POST,
            "/resolver/r2",
            vec![("type", "internalresolver")],
        ),
        ("resolverread", Method::GET, "/resolver/", vec![]),
        (
            "realmwrite",
            Method::POST,
            "/realm/realm3",
            vec![("resolvers", "r2")],
        ),
        ("realmread", Method::GET, "/realm/", vec![]),
        ("realmdelete", Method::DELETE, "/realm/realm3", vec![]),
        ("resolverdelete", Method::DELETE, "/resolver/r2", vec![]),
        ("userlist", Method::GET, "/user/", vec![("realm", "realm1")]),
        (
            "adduser",
            Method::POST,
            "/user/",
            vec![("user", "eve"), ("resolver", "local")],
        ),
        (
            "updateuser",
            Method::PUT,
            "/user/",
            vec![("user", "eve"), ("resolver", "local"), ("surname", "E")],
        ),
        ("deleteuser", Method::DELETE, "/user/local/eve", vec![]),
        ("auditlog", Method::GET, "/audit/", vec![]),
        (
            "eventhandling_write",
            Method::POST,
            "/event",
            vec![
                ("name", "e1"),
                ("event", "token_init"),
                ("handlermodule", "UserNotification"),
                ("action", "sendsms"),
                ("option.To", "tokenowner"),
            ],
        ),
        ("eventhandling_read", Method::GET, "/event/", vec![]),
    ];
    for (right, method, path, form) in table {
        let without = format!("*, -{right}");
        s.ok(
            "/policy/hd",
            &[
                ("scope", "admin"),
                ("adminuser", "helpdesk"),
                ("action", &without),
            ],
        )
        .await;
        let (st, b) = as_admin(&s, &hd, method.clone(), path, &form).await;
        assert_eq!(
            (st, error(&b)),
            (
                403,
                format!("Admin actions are defined, but the action {right} is not allowed!")
                    .as_str()
            ),
            "{right}: {method} {path}: {b}"
        );
        s.ok("/policy/hd", &[("action", "*")]).await;
        let (st, b) = as_admin(&s, &hd, method.clone(), path, &form).await;
        assert_ne!(st, 403, "{right}: {method} {path}: {b}");
    }
}

#[tokio::test]
async fn enrollpin_and_configdelete_are_rights_of_their_own() {
    let (s, _gw) = ready().await;
    s.ok(
        "/policy/root",
        &[
            ("scope", "admin"),
            ("adminuser", "admin"),
            ("action", "*, -enrollpin, -configdelete"),
        ],
    )
    .await;
    let (st, b) = init_for(&s, "bob", "B1", BOB).await;
    assert_eq!(st, 200, "no PIN, no right needed: {b}");
    let (st, b) = s
        .apost(
            "/token/init",
            &[
                ("type", "sms"),
                ("user", "bob"),
                ("serial", "B2"),
                ("phone", BOB),
                ("pin", "1234"),
            ],
        )
        .await;
    assert_eq!(
        (st, code(&b), error(&b)),
        (
            403,
            303,
            "Setting a PIN is not allowed due to missing 'enrollpin' right."
        ),
        "{b}"
    );
    s.ok("/system/setConfig", &[("some.key", "1")]).await;
    let (st, b) = s.adelete("/system/some.key").await;
    assert_eq!(st, 403, "configwrite is not configdelete: {b}");
    s.ok("/policy/root", &[("action", "*")]).await;
    let (st, b) = s.adelete("/system/some.key").await;
    assert_eq!(st, 200, "{b}");
}

#[tokio::test]
async fn enrollment_policies_limit_the_tokens_of_a_user() {
    let (s, _gw) = ready().await;
    s.ok(
        "/policy/limit",
        &[
            ("scope", "enrollment"),
            ("realm", "realm1"),
            (
                "action",
                "max_token_per_user=2, max_active_token_per_user=1",
            ),
        ],
    )
    .await;
    // alice has one active token: a second is one active too many.
    let (st, b) = init_for(&s, "alice", "A2", ALICE).await;
    assert_eq!(
        (st, error(&b)),
        (403, "The number of active tokens for this user is limited!"),
        "{b}"
    );
    // Re-initialising her own token is no new token.
    let (st, b) = init_for(&s, "alice", "SMS1", ALICE).await;
    assert_eq!(st, 200, "{b}");
    // With her token disabled, a second fits; a third does not.
    s.ok("/token/disable/SMS1", &[]).await;
    s.ok("/token/assign", &[("serial", "SPARE"), ("user", "alice")])
        .await;
    s.ok("/token/disable/SPARE", &[]).await;
    let (st, b) = init_for(&s, "alice", "A3", ALICE).await;
    assert_eq!(
        (st, error(&b)),
        (403, "The number of tokens for this user is limited!"),
        "{b}"
    );
    // The largest limit of the matching policies counts.
    s.ok(
        "/policy/more",
        &[("scope", "enrollment"), ("action", "max_token_per_user=3")],
    )
    .await;
    let (st, b) = init_for(&s, "alice", "A3", ALICE).await;
    assert_eq!(st, 200, "the larger limit: {b}");
    let (st, b) = init_for(&s, "alice", "A4", ALICE).await;
    assert_eq!(
        (st, error(&b)),
        (403, "The number of tokens for this user is limited!"),
        "{b}"
    );
    // bob (no token yet) gets one — with a description, once the policy asks for one.
    s.ok(
        "/policy/desc",
        &[
            ("scope", "enrollment"),
            ("action", "require_description=sms"),
        ],
    )
    .await;
    let init = |desc: &'static str| {
        let mut form = vec![
            ("type", "sms"),
            ("user", "bob"),
            ("serial", "B1"),
            ("phone", BOB),
        ];
        if !desc.is_empty() {
            form.push(("description", desc));
        }
        form
    };
    let (st, b) = s.apost("/token/init", &init("")).await;
    assert_eq!(
        (st, error(&b)),
        (403, "Description required for sms token."),
        "{b}"
    );
    let (st, b) = s.apost("/token/init", &init("bob's phone")).await;
    assert_eq!(st, 200, "{b}");
    // The sms_ forms, with their own messages.
    s.ok(
        "/policy/sms-limits",
        &[
            ("scope", "enrollment"),
            ("user", "bob"),
            ("action", "sms_max_active_token_per_user=1"),
        ],
    )
    .await;
    let (st, b) = init_for(&s, "bob", "B2", BOB).await;
    assert_eq!(
        (st, error(&b)),
        (
            403,
            "The number of active tokens of type sms for this user is limited!"
        ),
        "{b}"
    );
    s.ok(
        "/policy/sms-limits",
        &[("action", "sms_max_token_per_user=1")],
    )
    .await;
    s.ok("/token/disable/B1", &[]).await;
    let (st, b) = init_for(&s, "bob", "B2", BOB).await;
    assert_eq!(
        (st, error(&b)),
        (
            403,
            "The number of tokens of type sms for this user is limited!"
        ),
        "{b}"
    );
}

/// `/token/init` of an SMS token `serial` for `user` sending to `phone`.
async fn init_for(s: &Server, user: &str, serial: &str, phone: &str) -> (u16, serde_json::Value) {
    s.apost(
        "/token/init",
        &[
            ("type", "sms"),
            ("user", user),
            ("serial", serial),
            ("phone", phone),
        ],
    )
    .await
}
