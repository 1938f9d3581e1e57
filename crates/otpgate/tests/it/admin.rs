//! Admin authentication, tokens, users, realms, resolvers, policies, system config, audit,
//! and the envelope for hostile or unknown requests.

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn auth_issues_a_jwt_and_refuses_like_privacyidea() {
    let s = Server::start().await;
    let (st, b) = s
        .post("/auth", &[("username", "admin"), ("password", ADMIN_PW)])
        .await;
    assert_eq!(st, 200);
    assert_eq!(b["id"], 2);
    assert_eq!(b["result"]["authentication"], "ACCEPT");
    let v = value(&b);
    assert_eq!(
        (
            v["role"].as_str(),
            v["username"].as_str(),
            v["realm"].as_str()
        ),
        (Some("admin"), Some("admin"), Some(""))
    );
    let token = v["token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3);
    let cases: Vec<(Vec<(&str, &str)>, i64, &str)> = vec![
        (
            vec![("username", "admin"), ("password", "wrong")],
            4031,
            "Authentication failed.",
        ),
        (
            vec![("password", "x")],
            4032,
            "Authentication failure. Missing Username",
        ),
        (vec![("username", "admin")], 4031, "Authentication failed."),
        (
            vec![("username", "nobody"), ("password", "x")],
            4031,
            "Authentication failed.",
        ),
    ];
    for (form, c, m) in cases {
        let (st, b) = s.post("/auth", &form).await;
        assert_eq!((st, code(&b), error(&b)), (401, c, m), "{form:?}");
        assert_eq!(b["detail"], json!({}));
    }
    // A service account names the users' realm (privacyIDEA's Java client does): a local
    // admin signs in whatever realm is given, as long as the realm exists.
    s.ok("/resolver/local", &[("type", "internalresolver")])
        .await;
    s.ok("/realm/realm1", &[("resolvers", "local")]).await;
    let (st, b) = s
        .post(
            "/auth",
            &[
                ("username", "admin"),
                ("password", ADMIN_PW),
                ("realm", "realm1"),
            ],
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        (value(&b)["role"].as_str(), value(&b)["realm"].as_str()),
        (Some("admin"), Some(""))
    );
    let (st, b) = s
        .post(
            "/auth",
            &[
                ("username", "admin"),
                ("password", ADMIN_PW),
                ("realm", "nosuch"),
            ],
        )
        .await;
    assert_eq!(
        (st, code(&b), error(&b)),
        (401, 4031, "Authentication failure. Unknown realm: nosuch.")
    );
    let (st, b) = s
        .post(
            "/auth",
            &[
                ("username", "admin"),
                ("password", "wrong"),
                ("realm", "realm1"),
            ],
        )
        .await;
    assert_eq!(
        (st, code(&b), error(&b)),
        (401, 4031, "Authentication failed.")
    );
    // Header handling on an admin endpoint.
    let get = |h: Option<(&'static str, String)>| {
        let mut rb = s.client.get(s.url("/smsgateway/"));
        if let Some((k, v)) = h {
            rb = rb.header(k, v);
        }
        async move {
            let r = rb.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let (st, b) = get(None).await;
    assert_eq!(
        (st, code(&b), error(&b)),
        (
            401,
            4033,
            "Authentication failure. Missing Authorization header."
        )
    );
    let (st, b) = get(Some(("Authorization", format!("Bearer {token}")))).await;
    assert_eq!((st, code(&b)), (401, 4304));
    let (st, b) = get(Some(("Authorization", "garbage".into()))).await;
    assert_eq!((st, code(&b)), (401, 4304));
    assert_eq!(
        get(Some(("PI-Authorization", token.to_owned()))).await.0,
        200
    );
    assert_eq!(get(Some(("Authorization", token.to_owned()))).await.0, 200);
    // Tokens expire after an hour.
    s.advance(3601);
    let (st, b) = get(Some(("Authorization", token.to_owned()))).await;
    assert_eq!((st, code(&b)), (401, 4305));
}

#[tokio::test]
async fn users_of_internal_resolver_log_in_with_user_role() {
    let s = Server::start().await;
    s.setup("http://127.0.0.1:9/x").await;
    let (st, b) = s
        .post("/auth", &[("username", "alice"), ("password", "alice-pw")])
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(value(&b)["role"], "user");
    assert_eq!(value(&b)["realm"], "realm1");
    let token = value(&b)["token"].as_str().unwrap().to_owned();
    let r = s
        .client
        .get(s.url("/smsgateway/"))
        .header("Authorization", token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["result"]["error"]["code"],
        4306
    );
}

#[tokio::test]
async fn token_lifecycle_and_list() {
    let s = Server::start().await;
    s.setup("http://127.0.0.1:9/x").await;
    s.enroll("alice", "SMSA", "1", "+4915100000091").await;
    s.enroll("bob", "SMSB", "1", "+4915100000092").await;
    let (st, b) = s
        .apost(
            "/token/init",
            &[
                ("type", "sms"),
                ("phone", "+4915100000093"),
                ("pin", "x"),
                ("description", "spare"),
            ],
        )
        .await;
    assert_eq!(st, 200);
    let spare = b["detail"]["serial"].as_str().unwrap().to_owned();
    assert!(spare.starts_with("PISM") && spare.len() == 12, "{spare}");
    assert_eq!(b["detail"]["rollout_state"], "enrolled");
    let (_, b) = s.aget("/token/", &[]).await;
    let v = value(&b);
    assert_eq!(v["count"], 3);
    assert_eq!(
        (v["prev"].clone(), v["next"].clone()),
        (json!(null), json!(null))
    );
    let t = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["serial"] == "SMSA")
        .unwrap()
        .clone();
    for k in [
        "id",
        "description",
        "serial",
        "tokentype",
        "resolver",
        "user_id",
        "otplen",
        "maxfail",
        "active",
        "revoked",
        "locked",
        "failcount",
        "count",
        "count_window",
        "sync_window",
        "rollout_state",
        "info",
        "realms",
        "username",
        "user_realm",
    ] {
        assert!(t.get(k).is_some(), "token field {k} missing: {t}");
    }
    assert_eq!(
        (
            t["username"].as_str(),
            t["user_realm"].as_str(),
            t["resolver"].as_str()
        ),
        (Some("alice"), Some("realm1"), Some("local"))
    );
    assert_eq!(
        (
            t["maxfail"].as_i64(),
            t["otplen"].as_i64(),
            t["tokentype"].as_str()
        ),
        (Some(10), Some(6), Some("sms"))
    );
    assert_eq!(t["info"]["phone"], "+4915100000091");
    assert_eq!(t["info"]["tokenkind"], "software");
    assert_eq!(
        t["readonly_info_keys"],
        json!([
            "assignment_date",
            "phone",
            "tokenkind",
            "hashlib",
            "creation_date"
        ])
    );
    assert!(t["info"].get("otpkey").is_none());
    // Filters and paging.
    assert_eq!(
        value(&s.aget("/token/", &[("user", "alice")]).await.1)["count"],
        1
    );
    assert_eq!(
        value(&s.aget("/token/", &[("serial", "SMS*")]).await.1)["count"],
        2
    );
    assert_eq!(
        value(&s.aget("/token/", &[("assigned", "false")]).await.1)["count"],
        1
    );
    let p2 = value(
        &s.aget("/token/", &[("pagesize", "1"), ("page", "2")])
            .await
            .1,
    )
    .clone();
    assert_eq!(
        (
            p2["tokens"].as_array().unwrap().len(),
            p2["prev"].clone(),
            p2["next"].clone()
        ),
        (1, json!(1), json!(3))
    );
    let (st, b) = s.aget("/token/", &[("user", "nosuch")]).await;
    assert_eq!((st, code(&b)), (400, 904));
    // enable/disable report how many changed.
    assert_eq!(s.ok("/token/disable/SMSA", &[]).await, 1);
    assert_eq!(s.ok("/token/disable/SMSA", &[]).await, 0);
    assert_eq!(s.ok("/token/enable", &[("serial", "SMSA")]).await, 1);
    assert_eq!(
        s.ok("/token/disable", &[("user", "alice"), ("realm", "realm1")])
            .await,
        1
    );
    assert_eq!(s.ok("/token/setpin/SMSA", &[("otppin", "new")]).await, 1);
    assert_eq!(s.ok("/token/setpin/SMSA", &[]).await, 0);
    assert_eq!(
        s.ok(
            "/token/set/SMSA",
            &[("description", "d"), ("count_window", "20")]
        )
        .await,
        2
    );
    // Unknown serials and missing addressing.
    for path in [
        "/token/disable/NOPE",
        "/token/enable/NOPE",
        "/token/reset/NOPE",
        "/token/setpin/NOPE",
        "/token/set/NOPE",
    ] {
        let (st, b) = s.apost(path, &[]).await;
        assert_eq!(
            (st, code(&b), error(&b)),
            (404, 601, "No token found for serials: NOPE"),
            "{path}"
        );
    }
    let (st, b) = s.adelete("/token/NOPE").await;
    assert_eq!((st, code(&b)), (404, 601));
    let (st, b) = s.apost("/token/disable", &[]).await;
    assert_eq!(
        (st, error(&b)),
        (400, "ERR905: Missing parameter: 'serial' or 'serials'")
    );
    assert_eq!(value(&s.adelete("/token/SMSA").await.1), &json!(1));
    assert_eq!(value(&s.aget("/token/", &[]).await.1)["count"], 2);
}

#[tokio::test]
async fn token_init_errors_and_reinit() {
    let s = Server::start().await;
    s.setup("http://127.0.0.1:9/x").await;
    let cases: Vec<(Vec<(&str, &str)>, u16, i64, &str)> = vec![
        (
            vec![("type", "sms"), ("pin", "x"), ("user", "alice")],
            400,
            905,
            "ERR905: Missing parameter: phone",
        ),
        (
            vec![
                ("type", "sms"),
                ("phone", "+4915100000011"),
                ("user", "nosuch"),
            ],
            400,
            904,
            "ERR904: The user can not be found in any resolver in this realm!",
        ),
        (
            vec![
                ("type", "sms"),
                ("phone", "+4915100000011"),
                ("sms.identifier", "gw"),
            ],
            403,
            303,
            "The requested sms.identifier is not allowed to be enrolled.",
        ),
        (
            vec![("type", "hotp"), ("phone", "+4915100000011")],
            400,
            905,
            "otpgate serves SMS tokens",
        ),
        (
            vec![
                ("type", "sms"),
                ("phone", "+4915100000011"),
                ("otplen", "7"),
            ],
            400,
            905,
            "otplen must be 6 or 8",
        ),
        (
            vec![
                ("type", "sms"),
                ("phone", "+4915100000011"),
                ("serial", "BAD SERIAL*"),
            ],
            400,
            905,
            "Invalid serial number",
        ),
        (
            vec![
                ("type", "sms"),
                ("phone", "+4915100000011"),
                ("dynamic_phone", "1"),
            ],
            400,
            905,
            "exclude each other",
        ),
    ];
    for (form, st, c, m) in cases {
        let (status, b) = s.apost("/token/init", &form).await;
        assert_eq!((status, code(&b)), (st, c), "{form:?}: {b}");
        assert!(error(&b).contains(m), "{form:?}: {}", error(&b));
    }
    s.ok(
        "/policy/gws",
        &[
            ("scope", "admin"),
            (
                "action",
                "sms_gateways=gw other, enrollSMS, tokenlist, set, configwrite, policyread, policywrite, policydelete",
            ),
        ],
    )
    .await;
    let (st, b) = s
        .apost(
            "/token/init",
            &[
                ("type", "sms"),
                ("phone", "+4915100000011"),
                ("sms.identifier", "gw"),
                ("serial", "T1"),
                ("user", "alice"),
            ],
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(s.token_info("T1").await["info"]["sms.identifier"], "gw");
    // The policy holds for /token/set too: no way around it to an unlisted gateway.
    let (st, b) = s
        .apost(
            "/token/set",
            &[("serial", "T1"), ("sms.identifier", "third")],
        )
        .await;
    assert_eq!((st, code(&b)), (403, 303), "{b}");
    assert_eq!(s.token_info("T1").await["info"]["sms.identifier"], "gw");
    // Re-init for the same user replaces phone and description; another user is refused.
    let (st, _) = s
        .apost(
            "/token/init",
            &[
                ("type", "sms"),
                ("phone", "+4915100000012"),
                ("serial", "T1"),
                ("user", "alice"),
            ],
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(s.token_info("T1").await["info"]["phone"], "+4915100000012");
    let (st, b) = s
        .apost(
            "/token/init",
            &[
                ("type", "sms"),
                ("phone", "+4915100000013"),
                ("serial", "T1"),
                ("user", "bob"),
            ],
        )
        .await;
    assert_eq!(
        (st, error(&b)),
        (
            400,
            "ERR301: This token is already assigned to another user."
        )
    );
    // DefaultMaxFailCount and DefaultOtpLen apply to new tokens.
    s.ok(
        "/system/setConfig",
        &[("DefaultMaxFailCount", "3"), ("DefaultOtpLen", "8")],
    )
    .await;
    s.apost(
        "/token/init",
        &[
            ("type", "sms"),
            ("phone", "+4915100000014"),
            ("serial", "T2"),
        ],
    )
    .await;
    let t = s.token_info("T2").await;
    assert_eq!(
        (t["maxfail"].as_i64(), t["otplen"].as_i64()),
        (Some(3), Some(8))
    );
}

#[tokio::test]
async fn resolvers_realms_and_users() {
    let s = Server::start().await;
    let file = s.passwd_file(&[
        "alice:x:1000:1000:Alice Smith,,+4915100000001,,alice@example.com:/home/alice:/bin/bash",
        "bob:x:1001:1001:Bob Jones,,+4915100000002,+4930,bob@example.com:/h:/bin/sh",
    ]);
    assert_eq!(
        s.ok(
            "/resolver/resolver1",
            &[("type", "passwdresolver"), ("fileName", &file)]
        )
        .await,
        1
    );
    let (st, b) = s
        .apost("/resolver/bad", &[("type", "nosuchresolver")])
        .await;
    assert_eq!((st, code(&b)), (400, 905));
    let (st, b) = s
        .apost(
            "/resolver/bad",
            &[
                ("type", "passwdresolver"),
                ("fileName", "/nonexistent/file"),
            ],
        )
        .await;
    assert_eq!((st, code(&b)), (400, 905));
    let (_, b) = s.aget("/resolver/", &[]).await;
    assert_eq!(
        value(&b)["resolver1"],
        json!({"resolvername": "resolver1", "type": "passwdresolver", "data": {"fileName": file}, "censor_keys": []})
    );
    assert_eq!(value(&s.aget("/resolver/nosuch", &[]).await.1), &json!({}));
    assert_eq!(
        s.ok("/realm/realm1", &[("resolvers", "resolver1,nosuchres")])
            .await,
        json!({"added": ["resolver1"], "failed": ["nosuchres"]})
    );
    let (_, b) = s.aget("/realm/", &[]).await;
    assert_eq!(
        value(&b)["realm1"]["default"],
        true,
        "the first realm becomes the default"
    );
    assert_eq!(value(&b)["realm1"]["resolver"][0]["type"], "passwdresolver");
    assert_eq!(
        value(&s.aget("/defaultrealm", &[]).await.1)["realm1"]["default"],
        true
    );
    let (_, b) = s.aget("/user/", &[("realm", "realm1")]).await;
    let users = value(&b).as_array().unwrap().clone();
    assert_eq!(users.len(), 2);
    assert_eq!(
        users[1],
        json!({"username": "bob", "userid": "1001", "givenname": "Bob", "surname": "Jones", "email": "bob@example.com", "mobile": "+4915100000002", "phone": "+4930", "description": "Bob Jones,,+4915100000002,+4930,bob@example.com", "realm": "realm1", "resolver": "resolver1", "editable": false})
    );
    assert_eq!(
        value(&s.aget("/user/", &[("username", "al*")]).await.1)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        value(&s.aget("/user/", &[("realm", "nosuchrealm")]).await.1),
        &json!([])
    );
    // The passwd file is re-read when it changes.
    std::fs::write(&file, "carol:x:7:7:Carol,,+1,,:/:/bin/sh\n").unwrap();
    let (_, b) = s.aget("/user/", &[]).await;
    assert_eq!(value(&b)[0]["username"], "carol");
    // The internal store is editable.
    s.ok("/resolver/local", &[("type", "internalresolver")])
        .await;
    s.ok("/realm/realm2", &[("resolvers", "local")]).await;
    s.ok(
        "/user/",
        &[
            ("user", "dave"),
            ("resolver", "local"),
            ("mobile", "+4915112345678"),
            ("email", "d@x"),
        ],
    )
    .await;
    // A mobile number enrollment would refuse is refused here already, saying why.
    let (st, b) = s
        .apost(
            "/user/",
            &[("user", "erin"), ("resolver", "local"), ("mobile", "+4917")],
        )
        .await;
    assert_eq!((st, code(&b)), (400, 905), "{b}");
    assert!(
        error(&b).contains("mobile") && error(&b).contains("+4917"),
        "{b}"
    );
    let (st, b) = s
        .apost("/user/", &[("user", "dave"), ("resolver", "local")])
        .await;
    assert_eq!((st, code(&b)), (400, 905));
    let (st, b) = s
        .apost("/user/", &[("user", "eve"), ("resolver", "resolver1")])
        .await;
    assert_eq!(
        (st, code(&b)),
        (400, 905),
        "a passwd resolver is not editable: {b}"
    );
    let r = s
        .client
        .put(s.url("/user/"))
        .header("Authorization", s.token())
        .form(&[
            ("user", "dave"),
            ("resolver", "local"),
            ("mobile", "+4916012345678"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, b) = s.aget("/user/", &[("realm", "realm2")]).await;
    assert_eq!(
        (
            value(&b)[0]["mobile"].as_str(),
            value(&b)[0]["email"].as_str(),
            value(&b)[0]["editable"].as_bool()
        ),
        (Some("+4916012345678"), Some("d@x"), Some(true))
    );
    assert_eq!(value(&s.adelete("/user/local/dave").await.1), &json!(true));
    assert_eq!(s.adelete("/user/local/dave").await.0, 400);
    // Default realm, realm and resolver deletion.
    assert_eq!(s.apost("/defaultrealm/realm2", &[]).await.0, 200);
    assert!(
        value(&s.aget("/defaultrealm", &[]).await.1)
            .get("realm2")
            .is_some()
    );
    let (st, b) = s.apost("/defaultrealm/nosuch", &[]).await;
    assert_eq!((st, code(&b)), (404, 601));
    let (st, b) = s.adelete("/resolver/resolver1").await;
    assert_eq!(
        (st, error(&b)),
        (
            400,
            "ERR302: The resolver 'resolver1' is still contained in realm 'realm1'."
        )
    );
    assert_eq!(value(&s.aget("/realm/superuser", &[]).await.1), &json!([]));
    assert_eq!(s.adelete("/realm/realm1").await.0, 200);
    let (st, b) = s.adelete("/realm/realm1").await;
    assert_eq!(
        (st, error(&b)),
        (404, "The requested Realm could not be found.")
    );
    assert_eq!(value(&s.adelete("/resolver/resolver1").await.1), &json!(1));
    assert_eq!(value(&s.adelete("/resolver/resolver1").await.1), &json!(-1));
}

#[tokio::test]
async fn policies_crud() {
    let s = Server::start().await;
    let v = s
        .ok(
            "/policy/pol_smstext",
            &[
                ("scope", "authentication"),
                ("action", "smstext='Your OTP: {otp}'"),
                ("realm", "realm1"),
                ("active", "true"),
            ],
        )
        .await;
    assert_eq!(v, json!({"setPolicy pol_smstext": 1}));
    // An SMS text that leaves one SMS is saved with a warning; a short one has none.
    let warning = |name: &'static str, action: String| {
        let s = &s;
        async move {
            let (st, b) = s
                .apost(
                    &format!("/policy/{name}"),
                    &[("scope", "authentication"), ("action", &action)],
                )
                .await;
            assert_eq!(st, 200, "{b}");
            b["detail"]["warnings"][0]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    let long = format!("smstext='{} {{otp}}'", "Ihr Anmeldecode lautet".repeat(7));
    let w = warning("pol_long", long).await;
    assert!(w.contains("needs 2 SMS") && w.contains("GSM-7"), "{w}");
    let cyrillic = "smstext='Ваш код: {otp}. Действителен 5 минут\\, никому его не сообщайте\\, даже сотрудникам банка.'";
    assert!(warning("pol_ucs2", cyrillic.into()).await.contains("UCS-2"));
    let bad = "smstext='Code {otp} {nosuchtag}'";
    assert!(
        warning("pol_bad", bad.into())
            .await
            .contains("cannot be rendered")
    );
    for name in ["pol_long", "pol_ucs2", "pol_bad"] {
        s.adelete(&format!("/policy/{name}")).await;
    }
    let (_, b) = s
        .apost(
            "/policy/pol_smstext",
            &[
                ("scope", "authentication"),
                ("action", "smstext='Your OTP: {otp}'"),
                ("realm", "realm1"),
                ("active", "true"),
            ],
        )
        .await;
    assert!(
        b.get("detail").is_none_or(|d| d.get("warnings").is_none()),
        "{b}"
    );
    let (_, b) = s.aget("/policy/", &[]).await;
    let p = &value(&b)[0];
    assert_eq!(p["action"], json!({"smstext": "'Your OTP: {otp}'"}));
    assert_eq!(
        (
            p["realm"].clone(),
            p["priority"].clone(),
            p["active"].clone()
        ),
        (json!(["realm1"]), json!(1), json!(true))
    );
    assert_eq!(
        value(&s.aget("/policy/pol_smstext", &[]).await.1)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        value(&s.aget("/policy/", &[("scope", "admin")]).await.1),
        &json!([])
    );
    let (st, b) = s
        .apost(
            "/policy/pol_bad",
            &[("scope", "nosuchscope"), ("action", "x")],
        )
        .await;
    assert_eq!(
        (st, error(&b)),
        (
            400,
            "ERR905: Invalid scope 'nosuchscope' in policy 'pol_bad'!"
        )
    );
    let (st, b) = s.apost("/policy/p", &[("action", "x")]).await;
    assert_eq!((st, error(&b)), (400, "ERR905: Missing parameter: scope"));
    assert_eq!(s.apost("/policy/disable/pol_smstext", &[]).await.0, 200);
    assert_eq!(
        value(&s.aget("/policy/pol_smstext", &[]).await.1)[0]["active"],
        false
    );
    assert_eq!(value(&s.adelete("/policy/pol_smstext").await.1), &json!(1));
    let (st, b) = s.adelete("/policy/pol_smstext").await;
    assert_eq!((st, code(&b)), (404, 601));
}

#[tokio::test]
async fn system_config() {
    let s = Server::start().await;
    let v = s
        .ok(
            "/system/setConfig",
            &[
                ("sms.providerTimeout", "300"),
                ("DefaultMaxFailCount", "10"),
            ],
        )
        .await;
    assert_eq!(
        v,
        json!({"DefaultMaxFailCount": "insert", "sms.providerTimeout": "insert"})
    );
    let v = s
        .ok("/system/setConfig", &[("sms.providerTimeout", "120")])
        .await;
    assert_eq!(v, json!({"sms.providerTimeout": "update"}));
    let (_, b) = s
        .apost_json(
            "/system/setConfig",
            &json!({"sms.concurrent_challenges": true}),
        )
        .await;
    assert_eq!(value(&b), &json!({"sms.concurrent_challenges": "insert"}));
    let (_, b) = s.aget("/system/", &[]).await;
    assert_eq!(value(&b)["sms.providerTimeout"], "120");
    assert_eq!(value(&b)["sms.concurrent_challenges"], "True");
    assert_eq!(
        value(&s.aget("/system/sms.providerTimeout", &[]).await.1),
        &json!("120")
    );
    assert_eq!(value(&s.aget("/system/nosuch", &[]).await.1), &json!(null));
    for (k, v) in [
        ("DefaultMaxFailCount", "many"),
        ("PrependPin", "sometimes"),
        ("DefaultOtpLen", "5"),
    ] {
        let (st, b) = s.apost("/system/setConfig", &[(k, v)]).await;
        assert_eq!((st, code(&b)), (400, 905), "{k}={v}");
    }
    assert_eq!(
        value(&s.adelete("/system/sms.providerTimeout").await.1),
        &json!(true)
    );
    assert_eq!(
        value(&s.adelete("/system/sms.providerTimeout").await.1),
        &json!(false)
    );
}

#[tokio::test]
async fn audit_records_calls_without_secrets() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "SMS1", "secret-pin-77", "+4915100000001")
        .await;
    let (_, b) = s
        .check(&[("user", "alice"), ("pass", "secret-pin-77")])
        .await;
    let tid = b["detail"]["transaction_id"].as_str().unwrap();
    let otp = gw.last_otp("+4915100000001");
    s.check(&[("user", "alice"), ("transaction_id", tid), ("pass", &otp)])
        .await;
    s.check(&[("user", "alice"), ("pass", "wrong-pin")]).await;
    let (_, b) = s
        .aget("/audit/", &[("action", "*validate*"), ("page_size", "10")])
        .await;
    let v = value(&b);
    assert_eq!(v["count"], 3);
    let rows = v["auditdata"].as_array().unwrap();
    assert_eq!(rows[0]["info"], "wrong otp pin");
    assert_eq!(rows[0]["success"], 0);
    assert_eq!(rows[1]["authentication"], "ACCEPT");
    assert_eq!(rows[1]["success"], 1);
    assert_eq!(
        (
            rows[1]["user"].as_str(),
            rows[1]["realm"].as_str(),
            rows[1]["serial"].as_str()
        ),
        (Some("alice"), Some("realm1"), Some("SMS1"))
    );
    assert_eq!(rows[2]["authentication"], "CHALLENGE");
    assert_eq!(rows[2]["action_detail"], "SMS1 via gw");
    assert_eq!(rows[2]["client"], "127.0.0.1");
    let (_, all) = s.aget("/audit/", &[("page_size", "1000")]).await;
    let text = all.to_string();
    for secret in ["secret-pin-77", otp.as_str(), ADMIN_PW, "alice-pw"] {
        assert!(!text.contains(secret), "audit contains a secret");
    }
    let admin_rows: Vec<_> = value(&all)["auditdata"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "POST /token/init")
        .cloned()
        .collect();
    assert_eq!(admin_rows[0]["administrator"], "admin");
    assert_eq!(
        value(
            &s.aget(
                "/audit/",
                &[("user", "ali*"), ("page", "2"), ("page_size", "1")]
            )
            .await
            .1
        )["current"],
        2
    );
}

/// Concurrent requests' audit rows are written together, and each request is answered only
/// after its row committed: right after the last answer every row is there.
#[tokio::test]
async fn every_concurrent_request_is_audited_before_it_is_answered() {
    let s = std::sync::Arc::new(Server::start().await);
    let calls: Vec<_> = (0..60)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let user = format!("nobody{i}");
                s.check(&[("user", user.as_str()), ("pass", "x")]).await
            })
        })
        .collect();
    for c in calls {
        let (status, b) = c.await.unwrap();
        assert_eq!(status, 400, "{b}");
    }
    let (_, b) = s
        .aget("/audit/", &[("action", "*validate*"), ("page_size", "100")])
        .await;
    let v = value(&b);
    assert_eq!(v["count"], 60, "{v}");
    let mut users: Vec<String> = v["auditdata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["user"].as_str().unwrap().to_owned())
        .collect();
    users.sort();
    users.dedup();
    assert_eq!(users.len(), 60, "each request has its own row");
}

#[tokio::test]
async fn health_metrics_and_envelopes_for_bad_requests() {
    let s = Server::start().await;
    let r = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Every answer, errors and unknown paths included, carries the protective headers.
    for path in [
        "/healthz",
        "/validate/polltransaction",
        "/no/such/path",
        "/token/",
    ] {
        let r = s.client.get(s.url(path)).send().await.unwrap();
        let h = r.headers();
        for (name, value) in [
            ("cache-control", "no-store"),
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
        ] {
            assert_eq!(
                h.get(name).map(|v| v.to_str().unwrap()),
                Some(value),
                "{path} {name}"
            );
        }
        assert!(h.contains_key("content-security-policy"), "{path}");
    }
    s.check(&[("user", "x"), ("pass", "y")]).await;
    let text = s.metrics().await;
    assert!(
        text.contains("otpgate_auth_total{endpoint=\"check\",result=\"error\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("otpgate_http_requests_total{route=\"/validate/check\",status=\"400\"} 1"),
        "{text}"
    );
    let (st, b) = s.get("/no/such/path", &[]).await;
    assert_eq!((st, b["result"]["status"].clone()), (404, json!(false)));
    let r = s.client.put(s.url("/validate/check")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let big = "x".repeat(2 * 1024 * 1024);
    let (st, b) = s
        .post("/validate/check", &[("user", "alice"), ("pass", &big)])
        .await;
    assert_eq!((st, code(&b)), (413, -413));
    let r = s
        .client
        .post(s.url("/validate/check"))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = s
        .client
        .post(s.url("/validate/check"))
        .header("Content-Type", "application/json")
        .body("[1,2]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = s
        .client
        .post(s.url("/validate/check"))
        .header("Content-Type", "application/json")
        .body(r#"{"user": {"nested": [1]}, "pass": 5}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "an unknown user, not a crash");
    assert_eq!(r.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn graceful_shutdown_finishes() {
    let s = Server::start().await;
    s.check(&[("user", "x"), ("pass", "y")]).await;
    s.shutdown().await;
}

#[tokio::test]
async fn hostile_admin_input_is_refused_or_bounded() {
    let s = Server::start().await;
    let data = s.dir.path().join("data");
    // A resolver may not read otpgate's own files (they would become user names) or devices.
    for file in [
        data.join("jwt.secret").display().to_string(),
        data.join("encryption.keys").display().to_string(),
        "/dev/zero".into(),
    ] {
        let (st, b) = s
            .apost(
                "/resolver/leak",
                &[("type", "passwdresolver"), ("fileName", &file)],
            )
            .await;
        assert_eq!((st, code(&b)), (400, 905), "{file}: {b}");
    }
    // A sink may not write outside the data directory or over otpgate's own files.
    for file in [
        "../escape.jsonl",
        "/tmp/x.jsonl",
        "encryption.keys",
        "otpgate.sqlite",
        ".hidden",
    ] {
        let (st, b) = s
            .apost(
                "/smsgateway",
                &[("name", "sink"), ("module", "sink"), ("option.FILE", file)],
            )
            .await;
        assert_eq!((st, code(&b)), (400, 905), "{file}: {b}");
    }
    assert_eq!(
        s.ok(
            "/smsgateway",
            &[
                ("name", "sink"),
                ("module", "sink"),
                ("option.FILE", "demo-sms.jsonl")
            ]
        )
        .await,
        1
    );
    // Huge page numbers, duplicate resolvers, an out-of-range lockout timeout.
    assert_eq!(
        s.aget(
            "/token/",
            &[("page", "9223372036854775807"), ("pagesize", "15")]
        )
        .await
        .0,
        200
    );
    assert_eq!(
        s.aget(
            "/audit/",
            &[("page", "9223372036854775807"), ("page_size", "1000")]
        )
        .await
        .0,
        200
    );
    s.ok("/resolver/local", &[("type", "internalresolver")])
        .await;
    assert_eq!(
        s.ok("/realm/Home", &[("resolvers", "local,local")]).await,
        json!({"added": ["local"], "failed": []})
    );
    let (st, b) = s
        .apost(
            "/system/setConfig",
            &[("failcounter_clear_timeout", "200000000000")],
        )
        .await;
    assert_eq!((st, code(&b)), (400, 905));
    assert_eq!(
        s.ok("/system/setConfig", &[("sms.concurrent_challenges", "on")])
            .await,
        json!({"sms.concurrent_challenges": "insert"})
    );
    // Realm names are case-insensitive.
    s.ok("/user/", &[("user", "alice"), ("resolver", "local")])
        .await;
    let (st, b) = s
        .apost(
            "/token/init",
            &[
                ("type", "sms"),
                ("user", "alice"),
                ("realm", "HOME"),
                ("phone", "+4915100000091"),
            ],
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(s.apost("/defaultrealm/HoMe", &[]).await.0, 200);
}

#[tokio::test]
async fn verify_enrollment_keeps_an_sms_token_unusable_until_its_first_otp_comes_back() {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.ok(
        "/policy/verify",
        &[("scope", "enrollment"), ("action", "verify_enrollment=sms")],
    )
    .await;
    let (st, b) = s
        .apost(
            "/token/init",
            &[
                ("type", "sms"),
                ("user", "alice"),
                ("pin", "1234"),
                ("phone", "+4915100000031"),
            ],
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["detail"]["rollout_state"], "verify", "{b}");
    assert_eq!(
        b["detail"]["verify"]["message"],
        "Enter the OTP from the SMS:"
    );
    let serial = b["detail"]["serial"].as_str().unwrap().to_owned();
    let otp = gw.last_otp("+4915100000031");
    // Not enrolled yet: no login.
    let (_, r) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_ne!(r["result"]["authentication"], "CHALLENGE", "{r}");
    let (st, b) = s
        .apost(
            "/token/init",
            &[("type", "sms"), ("serial", &serial), ("verify", "000000")],
        )
        .await;
    assert_eq!(st, 400, "{b}");
    assert_eq!(
        error(&b),
        "ERR905: Verification of the new token failed.",
        "{b}"
    );
    let (st, b) = s
        .apost(
            "/token/init",
            &[("type", "sms"), ("serial", &serial), ("verify", &otp)],
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["detail"]["rollout_state"], "enrolled", "{b}");
    let (_, r) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_eq!(r["result"]["authentication"], "CHALLENGE", "{r}");
    // Without the policy, tokens are enrolled at once.
    s.adelete("/policy/verify").await;
    let (_, b) = s
        .apost(
            "/token/init",
            &[
                ("type", "sms"),
                ("user", "bob"),
                ("phone", "+4915100000032"),
            ],
        )
        .await;
    assert_eq!(b["detail"]["rollout_state"], "enrolled", "{b}");
}

/// `/auth` with an unknown name costs the Argon2 verification a known admin's wrong password
/// costs, so the time does not tell which admin names exist (timed, the unknown name answered
/// in 0.6 ms against 16–24 ms). Counted, not timed: each refusal is one computation.
#[tokio::test]
async fn auth_refusals_cost_one_argon2_verification_whether_the_name_exists_or_not() {
    let s = Server::start().await;
    let kdf_total = || async {
        let m = s.metrics().await;
        m.lines()
            .find_map(|l| l.strip_prefix("otpgate_kdf_total "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap()
    };
    // The node's equal-cost hash is made once, at the first refusal that needs it.
    s.post("/auth", &[("username", "nobody"), ("password", "x")])
        .await;
    for name in ["admin", "nobody", "Admin2"] {
        let before = kdf_total().await;
        let (st, _) = s
            .post("/auth", &[("username", name), ("password", "wrong")])
            .await;
        assert_eq!(st, 401);
        assert_eq!(kdf_total().await - before, 1, "{name}");
    }
}

#[tokio::test]
async fn the_alert_rules_name_only_metrics_the_server_serves() {
    let s = Server::start().await;
    let metrics = s.metrics().await;
    let families: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/alerts.yml"
    ))
    .unwrap();
    let mut named = std::collections::BTreeSet::new();
    for (i, _) in rules.match_indices("otpgate_") {
        let name: String = rules[i..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name)
            .to_owned();
        named.insert(family);
    }
    assert!(named.len() >= 8, "{named:?}");
    for n in &named {
        assert!(
            families.contains(n.as_str()),
            "{n} is not served: {families:?}"
        );
    }
}
