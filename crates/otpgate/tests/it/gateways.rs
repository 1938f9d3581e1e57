//! `/smsgateway` and the HTTP provider against real local servers: every parameter, the
//! failure answers, TLS verification, proxies and secrets at rest.

use crate::support::*;
use serde_json::json;

const HTTP: &str = "privacyidea.lib.smsprovider.HttpSMSProvider.HttpSMSProvider";
const PHONE: &str = "+4915100000001";

/// A server with alice, a token and a gateway `gw` built from `options`.
async fn with_gateway(options: &[(&str, &str)]) -> Server {
    let s = Server::start().await;
    s.setup("http://127.0.0.1:9/unused").await;
    let mut form = vec![("name", "gw"), ("module", HTTP)];
    form.extend_from_slice(options);
    s.ok("/smsgateway", &form).await;
    s.enroll("alice", "SMS1", "1234", PHONE).await;
    s
}

async fn login(s: &Server) -> serde_json::Value {
    s.check(&[("user", "alice"), ("pass", "1234")]).await.1
}

fn challenged(b: &serde_json::Value) -> bool {
    b["result"]["authentication"] == "CHALLENGE"
}

#[tokio::test]
async fn gateway_crud_like_privacyidea() {
    let s = Server::start().await;
    assert_eq!(
        s.aget("/smsgateway/", &[]).await.1["result"]["value"],
        json!([])
    );
    let id = s
        .ok(
            "/smsgateway",
            &[
                ("name", "myGW"),
                ("module", HTTP),
                ("description", "d"),
                ("option.URL", "http://example.com/"),
                ("option.to", "{phone}"),
                ("option.text", "{otp}"),
                ("option.from", "ACME"),
                ("header.X-Api", "abc"),
            ],
        )
        .await;
    assert_eq!(id, 1);
    let (_, b) = s.aget("/smsgateway/1", &[]).await;
    let g = &b["result"]["value"][0];
    assert_eq!(g["name"], "myGW");
    assert_eq!(g["providermodule"], HTTP);
    assert_eq!(
        g["options"],
        json!({"URL": "http://example.com/", "text": "{otp}", "to": "{phone}", "from": "ACME"})
    );
    assert_eq!(g["headers"], json!({"X-Api": "abc"}));
    assert_eq!(
        s.aget("/smsgateway/99", &[]).await.1["result"]["value"],
        json!([])
    );
    // Replace-all: options and headers not sent are removed, the description too.
    assert_eq!(
        s.ok(
            "/smsgateway",
            &[
                ("name", "myGW"),
                ("module", "http"),
                ("option.URL", "http://example.com/"),
                ("option.text", "{otp}"),
                ("option.to", "{phone}"),
            ]
        )
        .await,
        1
    );
    let g = s.aget("/smsgateway/", &[]).await.1["result"]["value"][0].clone();
    assert_eq!(
        g["options"],
        json!({"URL": "http://example.com/", "text": "{otp}", "to": "{phone}"})
    );
    assert_eq!(g["headers"], json!({}));
    assert_eq!(g["description"], json!(null));
    // Option deletes.
    s.ok(
        "/smsgateway",
        &[
            ("name", "myGW"),
            ("module", HTTP),
            ("option.URL", "http://example.com/"),
            ("option.text", "{otp}"),
            ("option.to", "{phone}"),
            ("option.x", "1"),
            ("header.h1", "v"),
        ],
    )
    .await;
    let (st, _) = s.adelete("/smsgateway/option/1/option.x").await;
    assert_eq!(st, 200);
    let (st, b) = s.adelete("/smsgateway/option/1/option.h1").await;
    assert_eq!(
        (st, code(&b), error(&b)),
        (
            404,
            601,
            "The requested SMSGatewayOption could not be found."
        )
    );
    assert_eq!(s.adelete("/smsgateway/option/1/header.h1").await.0, 200);
    assert_eq!(
        s.adelete("/smsgateway/option/1/URL").await.0,
        200,
        "a bare key is an option"
    );
    // Delete by name.
    let (st, b) = s.adelete("/smsgateway/myGW").await;
    assert_eq!((st, value(&b).clone()), (200, json!(1)));
    let (st, b) = s.adelete("/smsgateway/myGW").await;
    assert_eq!(
        (st, code(&b), error(&b)),
        (404, 601, "The requested SMSGateway could not be found.")
    );
}

#[tokio::test]
async fn gateway_input_errors_name_the_problem() {
    let s = Server::start().await;
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("name", "g"), ("option.URL", "http://x/")],
            "ERR905: Missing parameter: module",
        ),
        (
            vec![("module", HTTP), ("option.URL", "http://x/")],
            "ERR905: Missing parameter: name",
        ),
        (
            vec![
                ("name", "g"),
                ("module", "privacyidea.lib.smsprovider.Nope.Nope"),
            ],
            "Unknown SMS provider module",
        ),
        (vec![("name", "g"), ("module", HTTP)], "URL is required"),
        (
            vec![
                ("name", "g"),
                ("module", HTTP),
                ("option.URL", "http://x/"),
                ("option.text", "{otp}"),
                ("option.to", "{phone}"),
                ("option.TIMEOUT", "soon"),
            ],
            "TIMEOUT",
        ),
        (
            vec![
                ("name", "g"),
                ("module", HTTP),
                ("option.URL", "http://x/"),
                ("option.text", "{otp}"),
                ("option.to", "{phone}"),
                ("option.HTTP_METHOD", "PUT"),
            ],
            "HTTP_METHOD",
        ),
        (
            vec![
                ("name", "g"),
                ("module", HTTP),
                ("option.URL", "http://x/"),
                ("option.text", "{otp}"),
                ("option.PARAMETER", r#"{"from":"otpgate"}"#),
                ("option.from", "{phone}"),
            ],
            "The key from is set both as a fixed PARAMETER and as an option",
        ),
        (
            vec![("name", "g"), ("module", "sink"), ("header.X", "1")],
            "does not take headers",
        ),
        (
            vec![
                ("name", "g"),
                ("module", HTTP),
                ("option.URL", "http://x/"),
                ("option.text", "{otp}"),
                ("option.to", "{phone}"),
                ("option.REGEXP", "/([/x/"),
            ],
            "REGEXP",
        ),
    ];
    for (form, expected) in cases {
        let (st, b) = s.apost("/smsgateway", &form).await;
        assert_eq!((st, code(&b)), (400, 905), "{form:?}: {b}");
        assert!(error(&b).contains(expected), "{form:?}: {}", error(&b));
    }
    assert_eq!(
        s.aget("/smsgateway/", &[]).await.1["result"]["value"],
        json!([]),
        "nothing was saved"
    );
}

#[tokio::test]
async fn providers_list_parameters() {
    let s = Server::start().await;
    let (_, b) = s.aget("/smsgateway/providers", &[]).await;
    let p = &b["result"]["value"][HTTP];
    assert_eq!(p["options_allowed"], true);
    assert_eq!(p["headers_allowed"], true);
    assert_eq!(p["parameters"]["URL"]["required"], true);
    assert_eq!(
        p["parameters"]["HTTP_METHOD"]["values"],
        json!(["GET", "POST"])
    );
    assert_eq!(p["parameters"]["PASSWORD"]["secret"], true);
    assert_eq!(b["result"]["value"]["sink"]["options_allowed"], false);
    assert_eq!(
        b["result"]["value"].as_object().unwrap().len(),
        7,
        "HTTP, Sipgate, SMTP, SMPP, modem, Script and sink"
    );
    let modem = &b["result"]["value"]["modem"]["parameters"];
    assert_eq!(modem["DEVICE"]["required"], true);
    for (_, p) in b["result"]["value"].as_object().unwrap() {
        assert!(
            p["parameters"]["FAILOVER"].is_object(),
            "every provider takes FAILOVER"
        );
    }
    assert_eq!(modem["SIM_PIN"]["secret"], true);
    assert_eq!(modem["MODE"]["values"], json!(["auto", "text", "pdu"]));
    assert_eq!(
        b["result"]["value"]["privacyidea.lib.smsprovider.SmppSMSProvider.SmppSMSProvider"]["parameters"]
            ["SMSC_HOST"]["required"],
        true
    );
}

#[tokio::test]
async fn post_form_with_basic_auth_headers_and_regexp() {
    let gw = Gateway::start_with_basic(Some(("user", "p@ss:word"))).await;
    let s = with_gateway(&[
        ("option.URL", &gw.url("/send")),
        ("option.HTTP_METHOD", "post"),
        ("option.USERNAME", "user"),
        ("option.PASSWORD", "p@ss:word"),
        ("option.RETURN_SUCCESS", "ID"),
        ("option.REGEXP", r"/^\+49/0049/"),
        ("option.to", "{phone}"),
        ("option.text", "{otp}"),
        ("option.body", "Code {otp}"),
        ("option.list", r#"["{phone}", "x"]"#),
        ("header.X-Api-Key", "k1"),
    ])
    .await;
    assert!(challenged(&login(&s).await));
    let r = gw.last();
    assert_eq!(r.method, "POST");
    assert_eq!(r.form["to"], vec!["004915100000001"]);
    assert!(r.form["body"][0].starts_with("Code "));
    assert_eq!(
        r.form["list"],
        vec!["004915100000001", "x"],
        "a JSON list becomes repeated keys"
    );
    assert_eq!(r.headers["x-api-key"], "k1");
    assert!(
        !r.form.contains_key("URL") && !r.form.contains_key("PASSWORD"),
        "parameters are not sent as fields"
    );
    // Wrong credentials: the gateway answers 401.
    s.ok(
        "/smsgateway",
        &[
            ("name", "gw"),
            ("module", HTTP),
            ("option.URL", &gw.url("/send")),
            ("option.HTTP_METHOD", "POST"),
            ("option.USERNAME", "user"),
            ("option.PASSWORD", "wrong"),
            ("option.to", "{phone}"),
            ("option.text", "{otp}"),
        ],
    )
    .await;
    let b = login(&s).await;
    assert_eq!(
        msg(&b),
        "The PIN was correct, but the SMS could not be sent!"
    );
    assert!(b["detail"]["sms_error"].as_str().unwrap().contains("401"));
}

#[tokio::test]
async fn credentials_in_the_url_become_basic_auth() {
    let gw = Gateway::start_with_basic(Some(("u", "pw"))).await;
    let url = format!("http://u:pw@{}/send", gw.addr);
    let s = with_gateway(&[
        ("option.URL", &url),
        ("option.phone", "{phone}"),
        ("option.text", "{otp}"),
    ])
    .await;
    assert!(challenged(&login(&s).await));
    assert_eq!(gw.last().method, "GET");
    assert_eq!(gw.last().query["phone"], vec![PHONE]);
}

#[tokio::test]
async fn json_body_and_fixed_parameters() {
    let gw = Gateway::start().await;
    let s = with_gateway(&[
        ("option.URL", &gw.url("/api/v2/sms")),
        ("option.HTTP_METHOD", "POST"),
        ("option.SEND_DATA_AS_JSON", "yes"),
        ("option.RETURN_SUCCESS", "ID"),
        ("option.to", r#"["{phone}"]"#),
        ("option.text", "Your OTP: {otp}"),
        ("option.PARAMETER", r#"{"from": "otpgate", "priority": 1}"#),
        (
            "option.receivers",
            r#"[{"phone":"{phone}","message":"{otp}"}]"#,
        ),
    ])
    .await;
    s.ok(
        "/policy/t",
        &[
            ("scope", "authentication"),
            ("action", r#"smstext='say "{otp}"'"#),
        ],
    )
    .await;
    assert!(challenged(&login(&s).await));
    let j = gw.last().json.expect("a JSON body");
    assert_eq!(j["to"], json!([PHONE]));
    assert!(
        j["text"].as_str().unwrap().starts_with("Your OTP: say \""),
        "{j}"
    );
    assert_eq!(
        (j["from"].clone(), j["priority"].clone()),
        (json!("otpgate"), json!(1))
    );
    assert_eq!(j["receivers"][0]["phone"], PHONE);
    assert!(
        j["receivers"][0]["message"].as_str().unwrap().contains('"'),
        "quotes in the text stay inside the JSON string"
    );
}

#[tokio::test]
async fn return_success_return_fail_and_status_codes() {
    let gw = Gateway::start().await;
    let s = with_gateway(&[
        ("option.URL", &gw.url("/s")),
        ("option.RETURN_FAIL", "REJECTED"),
        ("option.to", "{phone}"),
        ("option.text", "{otp}"),
    ])
    .await;
    gw.set_mode(Mode::Ok("status: REJECTED"));
    let b = login(&s).await;
    assert!(
        b["detail"]["sms_error"]
            .as_str()
            .unwrap()
            .contains("predefined error"),
        "{b}"
    );
    gw.set_mode(Mode::Ok("queued"));
    assert!(challenged(&login(&s).await));
    gw.set_mode(Mode::Status(202));
    assert!(challenged(&login(&s).await), "201/202 count as success");
    gw.set_mode(Mode::Status(204));
    assert!(!challenged(&login(&s).await));
}

#[tokio::test]
async fn timeout_turns_a_hanging_gateway_into_a_send_failure() {
    let gw = Gateway::start().await;
    gw.set_mode(Mode::Hang);
    let s = with_gateway(&[
        ("option.URL", &gw.url("/s")),
        ("option.TIMEOUT", "0.3"),
        ("option.to", "{phone}"),
        ("option.text", "{otp}"),
    ])
    .await;
    let b = login(&s).await;
    assert_eq!(
        msg(&b),
        "The PIN was correct, but the SMS could not be sent!"
    );
    assert!(
        b["detail"]["sms_error"].as_str().unwrap().contains("0.3 s"),
        "{b}"
    );
}

#[tokio::test]
async fn unreachable_gateway_is_a_send_failure() {
    let s = with_gateway(&[
        ("option.URL", "http://127.0.0.1:9/s"),
        ("option.to", "{phone}"),
        ("option.text", "{otp}"),
    ])
    .await;
    let b = login(&s).await;
    assert_eq!(
        msg(&b),
        "The PIN was correct, but the SMS could not be sent!"
    );
}

#[tokio::test]
async fn https_certificate_is_verified_unless_check_ssl_is_no() {
    let tls = RawServer::start(true).await;
    let url = format!("https://127.0.0.1:{}/sms", tls.addr.port());
    let s = with_gateway(&[
        ("option.URL", &url),
        ("option.RETURN_SUCCESS", "ID"),
        ("option.to", "{phone}"),
        ("option.text", "{otp}"),
    ])
    .await;
    let b = login(&s).await;
    assert!(
        !challenged(&b),
        "self-signed certificate refused by default: {b}"
    );
    assert!(
        b["detail"]["sms_error"]
            .as_str()
            .unwrap()
            .contains("certificate"),
        "{b}"
    );
    s.ok(
        "/smsgateway",
        &[
            ("name", "gw"),
            ("module", HTTP),
            ("option.URL", &url),
            ("option.CHECK_SSL", "no"),
            ("option.RETURN_SUCCESS", "ID"),
            ("option.to", "{phone}"),
            ("option.text", "{otp}"),
        ],
    )
    .await;
    assert!(challenged(&login(&s).await));
    assert!(
        tls.heads().iter().any(|h| h.starts_with("GET /sms?")),
        "{:?}",
        tls.heads()
    );
}

#[tokio::test]
async fn requests_go_through_the_configured_proxy() {
    let proxy = RawServer::start(false).await;
    let proxy_url = format!("http://127.0.0.1:{}", proxy.addr.port());
    // The gateway host does not exist: only the proxy can answer.
    for key in ["option.HTTP_PROXY", "option.PROXY"] {
        let s = with_gateway(&[
            ("option.URL", "http://sms-gateway.invalid/send"),
            ("option.RETURN_SUCCESS", "ID"),
            ("option.to", "{phone}"),
            ("option.text", "{otp}"),
            (key, &proxy_url),
        ])
        .await;
        let b = login(&s).await;
        assert!(challenged(&b), "{key}: {b}");
        assert!(
            proxy
                .heads()
                .last()
                .unwrap()
                .starts_with("GET http://sms-gateway.invalid/send?"),
            "{:?}",
            proxy.heads()
        );
    }
    // HTTPS_PROXY does not apply to an http:// URL.
    let s = with_gateway(&[
        ("option.URL", "http://sms-gateway.invalid/send"),
        ("option.to", "{phone}"),
        ("option.text", "{otp}"),
        ("option.HTTPS_PROXY", &proxy_url),
    ])
    .await;
    assert!(!challenged(&login(&s).await));
}

#[tokio::test]
async fn secrets_are_encrypted_at_rest_censored_and_kept() {
    let gw = Gateway::start_with_basic(Some(("u", "s3cr3t-pass"))).await;
    let s = with_gateway(&[
        ("option.URL", &gw.url("/s")),
        ("option.USERNAME", "u"),
        ("option.PASSWORD", "s3cr3t-pass"),
        ("header.Authorization", "Bearer tok-123"),
        ("option.to", "{phone}"),
        ("option.text", "{otp}"),
    ])
    .await;
    let g = s.aget("/smsgateway/", &[]).await.1["result"]["value"][0].clone();
    assert_eq!(g["options"]["PASSWORD"], "__CENSORED__");
    assert_eq!(g["headers"]["Authorization"], "__CENSORED__");
    assert_eq!(g["secret_options"], json!(["PASSWORD"]));
    assert_eq!(g["secret_headers"], json!(["Authorization"]));
    let db = std::fs::read(s.dir.path().join("data/otpgate.sqlite")).unwrap();
    let wal = std::fs::read(s.dir.path().join("data/otpgate.sqlite-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        let hay = String::from_utf8_lossy(bytes);
        assert!(
            !hay.contains("s3cr3t-pass") && !hay.contains("tok-123"),
            "plaintext secret in the database"
        );
    }
    // Sending __CENSORED__ back keeps the stored value.
    s.ok(
        "/smsgateway",
        &[
            ("name", "gw"),
            ("module", HTTP),
            ("option.URL", &gw.url("/s")),
            ("option.USERNAME", "u"),
            ("option.PASSWORD", "__CENSORED__"),
            ("header.Authorization", "__CENSORED__"),
            ("option.to", "{phone}"),
            ("option.text", "{otp}"),
        ],
    )
    .await;
    // The gateway demands basic auth, but the Authorization header option overrides it: send only basic auth.
    s.adelete(&format!(
        "/smsgateway/option/{}/header.Authorization",
        g["id"]
    ))
    .await;
    assert!(challenged(&login(&s).await));
    // An explicit secret flag on any option.
    s.ok(
        "/smsgateway",
        &[
            ("name", "gw"),
            ("module", HTTP),
            ("option.URL", &gw.url("/s")),
            ("option.text", "{otp}"),
            ("option.to", "{phone}"),
            ("option.apikey", "k"),
            ("secret.option.apikey", "1"),
        ],
    )
    .await;
    let g = s.aget("/smsgateway/", &[]).await.1["result"]["value"][0].clone();
    assert_eq!(g["options"]["apikey"], "__CENSORED__");
}

#[tokio::test]
async fn sink_provider_writes_json_lines_to_the_data_dir() {
    let s = Server::start().await;
    s.setup("http://127.0.0.1:9/unused").await;
    s.ok("/smsgateway", &[("name", "gw"), ("module", "sink")])
        .await;
    s.enroll("alice", "SMS1", "1234", PHONE).await;
    let b = login(&s).await;
    assert!(challenged(&b));
    let text = std::fs::read_to_string(s.dir.path().join("data/sink-sms.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(
        (line["gateway"].as_str(), line["phone"].as_str()),
        (Some("gw"), Some(PHONE))
    );
    let tid = b["detail"]["transaction_id"].as_str().unwrap();
    let (_, b) = s
        .check(&[
            ("user", "alice"),
            ("transaction_id", tid),
            ("pass", line["text"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(value(&b), true);
}

#[tokio::test]
async fn gateway_rights_follow_admin_policies() {
    let s = Server::start().await;
    s.ok(
        "/policy/adm",
        &[
            ("scope", "admin"),
            (
                "action",
                "smsgateway_read, policyread, policywrite, policydelete",
            ),
        ],
    )
    .await;
    assert_eq!(s.aget("/smsgateway/", &[]).await.0, 200);
    let (st, b) = s
        .apost("/smsgateway", &[("name", "g"), ("module", "sink")])
        .await;
    assert_eq!(
        (st, code(&b), error(&b)),
        (
            403,
            303,
            "Admin actions are defined, but the action smsgateway_write is not allowed!"
        )
    );
    s.ok(
        "/policy/adm",
        &[
            ("scope", "admin"),
            (
                "action",
                "smsgateway_read, smsgateway_write, policyread, policywrite, policydelete",
            ),
        ],
    )
    .await;
    assert_eq!(
        s.apost("/smsgateway", &[("name", "g"), ("module", "sink")])
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn censored_secrets_cannot_be_declassified_and_url_credentials_are_secret() {
    let s = Server::start().await;
    s.ok(
        "/smsgateway",
        &[
            ("name", "gw"),
            ("module", HTTP),
            ("option.URL", "https://user:pw-123@sms.example.com/send"),
            ("option.text", "{otp}"),
            ("option.to", "{phone}"),
            ("option.PASSWORD", "pass-456"),
        ],
    )
    .await;
    let g = s.aget("/smsgateway/", &[]).await.1["result"]["value"][0].clone();
    assert_eq!(g["options"]["URL"], "__CENSORED__");
    assert_eq!(g["options"]["PASSWORD"], "__CENSORED__");
    s.ok(
        "/smsgateway",
        &[
            ("name", "gw"),
            ("module", HTTP),
            ("option.URL", "__CENSORED__"),
            ("option.text", "{otp}"),
            ("option.to", "{phone}"),
            ("option.PASSWORD", "__CENSORED__"),
            ("secret.option.PASSWORD", "0"),
            ("secret.option.URL", "0"),
        ],
    )
    .await;
    let g = s.aget("/smsgateway/", &[]).await.1["result"]["value"][0].clone();
    assert_eq!(
        (
            g["options"]["URL"].as_str(),
            g["options"]["PASSWORD"].as_str()
        ),
        (Some("__CENSORED__"), Some("__CENSORED__"))
    );
    assert!(!g.to_string().contains("pw-123") && !g.to_string().contains("pass-456"));
}

/// Writes an executable script into `dir`.
fn script(dir: &std::path::Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn script_provider_runs_only_scripts_from_its_directory() {
    let scripts = tempfile::tempdir().unwrap();
    let out = scripts.path().join("sent.txt");
    script(
        scripts.path(),
        "send.sh",
        &format!(
            "env > {1}; printf '%s|' \"$1\" >> {0}; cat >> {0}; echo >> {0}",
            out.display(),
            scripts.path().join("env.txt").display()
        ),
    );
    script(scripts.path(), "fail.sh", "cat >/dev/null; exit 3");
    let grandchild = scripts.path().join("grandchild.pid");
    script(
        scripts.path(),
        "slow.sh",
        &format!("sleep 30 &\necho $! > {}\nwait", grandchild.display()),
    );
    script(
        scripts.path(),
        "late.sh",
        &format!(
            "cat > {0}.tmp; sleep 0.3; mv {0}.tmp {0}",
            scripts.path().join("late.txt").display()
        ),
    );
    let dir = scripts.path().to_owned();
    let s = Server::start_with(move |c| c.providers.scripts_dir = Some(dir)).await;
    s.setup("http://127.0.0.1:9/unused").await;
    s.enroll("alice", "SMS1", "1234", PHONE).await;
    let gw = |script: &str, mode: &str| {
        vec![
            ("name", "gw".to_owned()),
            ("module", "script".to_owned()),
            ("option.script", script.to_owned()),
            ("option.background", mode.to_owned()),
            ("option.TIMEOUT", "1".to_owned()),
            ("option.REGEXP", r"/\+/00/".to_owned()),
        ]
    };
    let save = |form: Vec<(&'static str, String)>| {
        let s = &s;
        async move {
            let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            s.apost("/smsgateway", &f).await
        }
    };
    assert_eq!(save(gw("send.sh", "wait")).await.0, 200);
    let b = login(&s).await;
    assert!(challenged(&b), "{b}");
    let line = std::fs::read_to_string(&out).unwrap();
    let (phone, text) = line.trim_end().split_once('|').unwrap();
    assert_eq!(
        phone, "004915100000001",
        "REGEXP applied, phone as the argument"
    );
    assert_eq!(text.len(), 6, "the message on stdin: {text}");
    // The script does not inherit the server's environment (database URL, credentials).
    let env = std::fs::read_to_string(scripts.path().join("env.txt")).unwrap();
    assert!(
        env.lines()
            .any(|l| l == "PATH=/usr/local/bin:/usr/bin:/bin"),
        "{env}"
    );
    assert!(
        std::env::var_os("CARGO_MANIFEST_DIR").is_some() && !env.contains("CARGO"),
        "{env}"
    );
    // A non-zero exit, a timeout and a missing script are send failures.
    for name in ["fail.sh", "slow.sh", "missing.sh"] {
        assert_eq!(save(gw(name, "wait")).await.0, 200);
        let b = login(&s).await;
        assert_eq!(
            msg(&b),
            "The PIN was correct, but the SMS could not be sent!",
            "{name}"
        );
    }
    // The timeout ended what slow.sh started too (its process group).
    let pid = std::fs::read_to_string(&grandchild).unwrap();
    let stat = format!("/proc/{}/stat", pid.trim());
    let gone = || {
        std::fs::read_to_string(&stat)
            .map(|st| {
                st.split(") ")
                    .nth(1)
                    .is_some_and(|rest| rest.starts_with('Z'))
            })
            .unwrap_or(true)
    };
    for _ in 0..100 {
        if gone() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(gone(), "the script's child outlived the timeout");
    // Background mode returns at once, before the script has finished.
    assert_eq!(save(gw("late.sh", "background")).await.0, 200);
    assert!(challenged(&login(&s).await));
    assert!(
        !scripts.path().join("late.txt").exists(),
        "answered before the script finished"
    );
    for _ in 0..100 {
        if scripts.path().join("late.txt").exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        std::fs::read_to_string(scripts.path().join("late.txt"))
            .unwrap()
            .len(),
        6
    );
    // No paths: only plain names in the scripts directory.
    for bad in ["../send.sh", "/bin/sh", "sub/x.sh"] {
        let (st, b) = save(gw(bad, "wait")).await;
        assert_eq!((st, code(&b)), (400, 905), "{bad}");
    }
}

#[tokio::test]
async fn sipgate_provider_speaks_xml_rpc_escaped_with_auth_and_faults() {
    let peer = XmlRpcPeer::start("sipuser", "sip-pass-9");
    let url = format!("http://127.0.0.1:{}/RPC2", peer.port);
    let s = Server::start().await;
    s.setup("http://127.0.0.1:9/unused").await;
    s.ok(
        "/smsgateway",
        &[
            ("name", "gw"),
            (
                "module",
                "privacyidea.lib.smsprovider.SipgateSMSProvider.SipgateSMSProvider",
            ),
            ("option.URL", &url),
            ("option.USERNAME", "sipuser"),
            ("option.PASSWORD", "sip-pass-9"),
            ("option.REGEXP", "/[ -]//"),
        ],
    )
    .await;
    s.enroll("alice", "SMS1", "1234", "+49 151-0000-0001").await;
    s.ok(
        "/policy/text",
        &[
            ("scope", "authentication"),
            ("action", r#"smstext=Code <&>"' {otp}"#),
        ],
    )
    .await;
    let b = login(&s).await;
    assert!(challenged(&b), "{b}");
    let call = peer.calls().pop().expect("one call");
    assert_eq!(call["RemoteUri"], "sip:4915100000001@sipgate.de");
    assert_eq!(call["TOS"], "text");
    let content = call["Content"].as_str().unwrap();
    assert!(
        content.starts_with("Code <&>\"' ") && otp_in(content).len() == 6,
        "{content}"
    );
    // An XML-RPC fault inside HTTP 200 is a failure (privacyIDEA misses it).
    s.ok(
        "/policy/text",
        &[
            ("scope", "authentication"),
            ("action", "smstext=FAULT {otp}"),
        ],
    )
    .await;
    let b = login(&s).await;
    assert_eq!(
        msg(&b),
        "The PIN was correct, but the SMS could not be sent!"
    );
    assert!(
        b["detail"]["sms_error"]
            .as_str()
            .unwrap()
            .contains("fault 1"),
        "{b}"
    );
    // Wrong credentials: HTTP 401.
    s.ok(
        "/smsgateway",
        &[
            ("name", "gw"),
            ("module", "sipgate"),
            ("option.URL", &url),
            ("option.USERNAME", "sipuser"),
            ("option.PASSWORD", "wrong"),
        ],
    )
    .await;
    let b = login(&s).await;
    assert!(
        b["detail"]["sms_error"].as_str().unwrap().contains("401"),
        "{b}"
    );
    // USERNAME and PASSWORD are required.
    let (st, b) = s
        .apost(
            "/smsgateway",
            &[
                ("name", "gw2"),
                ("module", "sipgate"),
                ("option.USERNAME", "u"),
            ],
        )
        .await;
    assert_eq!((st, code(&b)), (400, 905));
}

#[tokio::test]
async fn smtp_servers_crud_and_test_email() {
    let smtp = SmtpPeer::start(SmtpOptions {
        starttls: true,
        auth: Some(("mailer".into(), "mail-pw-1".into())),
        ..Default::default()
    })
    .await;
    let s = Server::start().await;
    let port = smtp.port.to_string();
    let form = |extra: &[(&'static str, &'static str)]| {
        let mut f: Vec<(&str, String)> = vec![
            ("server", "127.0.0.1".into()),
            ("port", port.clone()),
            ("username", "mailer".into()),
            ("password", "mail-pw-1".into()),
            ("sender", "otp@example.com".into()),
            ("tls", "1".into()),
            ("tls_verify", "0".into()),
            ("description", "local".into()),
        ];
        f.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        f
    };
    let as_refs = |f: &Vec<(&'static str, String)>| {
        f.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>()
    };
    let f = as_refs(&form(&[]));
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(s.ok("/smtpserver/mailhub", &f).await, json!(true));
    let (_, b) = s.aget("/smtpserver/", &[]).await;
    let v = &value(&b)["mailhub"];
    assert_eq!(
        (
            v["server"].as_str(),
            v["port"].as_i64(),
            v["password"].as_str()
        ),
        (
            Some("127.0.0.1"),
            Some(smtp.port.into()),
            Some("__CENSORED__")
        )
    );
    let db = std::fs::read(s.dir.path().join("data/otpgate.sqlite-wal")).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&db).contains("mail-pw-1"),
        "the password is encrypted at rest"
    );
    let (_, b) = s
        .apost(
            "/smtpserver/send_test_email",
            &[
                ("identifier", "mailhub"),
                ("recipient", "admin@example.com"),
            ],
        )
        .await;
    assert_eq!(value(&b), true, "{b}");
    let mail = smtp.mails().pop().unwrap();
    assert_eq!(
        (mail.to.clone(), mail.user.as_deref(), mail.tls),
        (vec!["admin@example.com".to_owned()], Some("mailer"), true)
    );
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("otpgate test email")
    );
    // Unsaved settings can be tried too; a wrong password is a clear false.
    let mut bad = form(&[]);
    bad.retain(|(k, _)| *k != "password");
    bad.push(("password", "wrong".into()));
    bad.push(("identifier", "mailhub".into()));
    bad.push(("recipient", "admin@example.com".into()));
    let bad: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_, b) = s.apost("/smtpserver/send_test_email", &bad).await;
    assert_eq!(value(&b), false);
    assert!(msg(&b).contains("535"), "{b}");
    assert_eq!(
        s.adelete("/smtpserver/mailhub").await.1["result"]["value"],
        true
    );
    assert_eq!(s.adelete("/smtpserver/mailhub").await.0, 404);
    let (st, b) = s.apost("/smtpserver/x", &[("port", "25")]).await;
    assert_eq!((st, error(&b)), (400, "ERR905: Missing parameter: server"));
}

async fn smtp_gateway(s: &Server, smtp: &SmtpPeer, tls: &str, verify: &str) {
    let port = smtp.port.to_string();
    s.ok(
        "/smtpserver/mailhub",
        &[
            ("server", "127.0.0.1"),
            ("port", &port),
            ("sender", "otp@example.com"),
            ("tls", tls),
            ("tls_verify", verify),
            ("username", "mailer"),
            ("password", "mail-pw-1"),
        ],
    )
    .await;
    s.ok(
        "/smsgateway",
        &[
            ("name", "gw"),
            (
                "module",
                "privacyidea.lib.smsprovider.SmtpSMSProvider.SmtpSMSProvider",
            ),
            ("option.SMTPIDENTIFIER", "mailhub"),
            ("option.MAILTO", "{phone}@sms.example.com"),
            ("option.REGEXP", r"/\+//"),
        ],
    )
    .await;
}

#[tokio::test]
async fn smtp_provider_delivers_the_otp_as_mail() {
    let smtp = SmtpPeer::start(SmtpOptions {
        starttls: true,
        auth: Some(("mailer".into(), "mail-pw-1".into())),
        ..Default::default()
    })
    .await;
    let s = Server::start().await;
    s.setup("http://127.0.0.1:9/unused").await;
    smtp_gateway(&s, &smtp, "1", "0").await;
    s.enroll("alice", "SMS1", "1234", PHONE).await;
    let b = login(&s).await;
    assert!(challenged(&b), "{b}");
    let mail = smtp.mails().pop().expect("a mail");
    assert_eq!(mail.to, vec!["4915100000001@sms.example.com".to_owned()]);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("4915100000001"),
        "SUBJECT defaults to {{phone}}"
    );
    let otp = mail.body();
    assert_eq!(otp.len(), 6, "BODY defaults to {{otp}}: {otp:?}");
    assert!(mail.tls && mail.user.as_deref() == Some("mailer"));
    let tid = b["detail"]["transaction_id"].as_str().unwrap();
    let (_, r) = s
        .check(&[("user", "alice"), ("transaction_id", tid), ("pass", &otp)])
        .await;
    assert_eq!(value(&r), true);
    // SMTPIDENTIFIED (the seed's spelling), custom SUBJECT and BODY with tags.
    s.ok(
        "/smsgateway",
        &[
            ("name", "gw"),
            ("module", "smtp"),
            ("option.SMTPIDENTIFIED", "mailhub"),
            ("option.MAILTO", "sms@example.com"),
            ("option.SUBJECT", "To {phone}"),
            ("option.BODY", "Code: {otp}"),
        ],
    )
    .await;
    assert!(challenged(&login(&s).await));
    let mail = smtp.mails().pop().unwrap();
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some(format!("To {PHONE}").as_str())
    );
    assert!(mail.body().starts_with("Code: "));
}

#[tokio::test]
async fn smtp_provider_failures_are_send_failures() {
    // 550 for the recipient.
    let smtp = SmtpPeer::start(SmtpOptions {
        reject_recipients: true,
        ..Default::default()
    })
    .await;
    let s = Server::start().await;
    s.setup("http://127.0.0.1:9/unused").await;
    smtp_gateway(&s, &smtp, "0", "1").await;
    s.ok(
        "/smtpserver/mailhub",
        &[
            ("server", "127.0.0.1"),
            ("port", &smtp.port.to_string()),
            ("sender", "otp@example.com"),
        ],
    )
    .await;
    s.enroll("alice", "SMS1", "1234", PHONE).await;
    let b = login(&s).await;
    assert_eq!(
        msg(&b),
        "The PIN was correct, but the SMS could not be sent!"
    );
    assert!(
        b["detail"]["sms_error"].as_str().unwrap().contains("550"),
        "{b}"
    );
    // A self-signed certificate with verification on (the default) is refused.
    let tls = SmtpPeer::start(SmtpOptions {
        starttls: true,
        ..Default::default()
    })
    .await;
    s.ok(
        "/smtpserver/mailhub",
        &[
            ("server", "127.0.0.1"),
            ("port", &tls.port.to_string()),
            ("sender", "otp@example.com"),
            ("tls", "1"),
        ],
    )
    .await;
    let b = login(&s).await;
    assert!(
        b["detail"]["sms_error"].as_str().unwrap().contains("TLS"),
        "{b}"
    );
    // Implicit TLS (smtps://) with verification off delivers.
    let smtps = SmtpPeer::start(SmtpOptions {
        implicit_tls: true,
        ..Default::default()
    })
    .await;
    s.ok(
        "/smtpserver/mailhub",
        &[
            ("server", "smtps://127.0.0.1"),
            ("port", &smtps.port.to_string()),
            ("sender", "otp@example.com"),
            ("tls_verify", "0"),
        ],
    )
    .await;
    assert!(challenged(&login(&s).await));
    assert!(smtps.mails().pop().unwrap().tls);
    // A gateway naming an unknown SMTP server is refused when saved.
    let (st, b) = s
        .apost(
            "/smsgateway",
            &[
                ("name", "gw2"),
                ("module", "smtp"),
                ("option.SMTPIDENTIFIER", "nope"),
                ("option.MAILTO", "x@example.com"),
            ],
        )
        .await;
    assert_eq!((st, code(&b)), (400, 905));
}

#[tokio::test]
async fn smpp_provider_binds_submits_and_reports_failures() {
    let smsc = Smsc::start(SmscOptions {
        system_id: "otpgate".into(),
        password: "smpp-pw".into(),
        ..Default::default()
    })
    .await;
    let s = Server::start().await;
    s.setup("http://127.0.0.1:9/unused").await;
    let port = smsc.port.to_string();
    let gw = |pw: &str, port: &str| {
        vec![
            ("name", "gw".to_owned()),
            (
                "module",
                "privacyidea.lib.smsprovider.SmppSMSProvider.SmppSMSProvider".to_owned(),
            ),
            ("option.SMSC_HOST", "127.0.0.1".to_owned()),
            ("option.SMSC_PORT", port.to_owned()),
            ("option.SYSTEM_ID", "otpgate".to_owned()),
            ("option.PASSWORD", pw.to_owned()),
            ("option.S_ADDR", "OTPGATE".to_owned()),
            ("option.S_ADDR_TON", "0x5".to_owned()),
            ("option.D_ADDR_TON", "1".to_owned()),
            ("option.D_ADDR_NPI", "1".to_owned()),
            ("option.TIMEOUT", "0.5".to_owned()),
            ("option.REGEXP", r"/\+//".to_owned()),
        ]
    };
    let save = |f: Vec<(&'static str, String)>| {
        let s = &s;
        async move {
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            s.apost("/smsgateway", &f).await
        }
    };
    assert_eq!(save(gw("smpp-pw", &port)).await.0, 200);
    s.enroll("alice", "SMS1", "1234", PHONE).await;
    let b = login(&s).await;
    assert!(challenged(&b), "{b}");
    let sub = smsc.submits().pop().unwrap();
    assert_eq!(
        (
            sub.destination.as_str(),
            sub.source.as_str(),
            sub.source_ton,
            sub.dest_ton,
            sub.dest_npi
        ),
        ("4915100000001", "OTPGATE", 5, 1, 1)
    );
    assert_eq!((sub.data_coding, sub.esm_class), (0, 0));
    let otp = String::from_utf8(sub.message.clone()).unwrap();
    let tid = b["detail"]["transaction_id"].as_str().unwrap();
    assert_eq!(
        value(
            &s.check(&[("user", "alice"), ("transaction_id", tid), ("pass", &otp)])
                .await
                .1
        ),
        true
    );
    // A long UCS-2 text goes as concatenated parts with a UDH; the OTP stays in one part.
    s.ok(
        "/policy/t",
        &[
            ("scope", "authentication"),
            ("action", &format!("smstext={} {{otp}}", "Ж".repeat(80))),
        ],
    )
    .await;
    let before = smsc.submits().len();
    assert!(challenged(&login(&s).await));
    let parts: Vec<_> = smsc.submits()[before..].to_vec();
    assert_eq!(parts.len(), 2);
    assert!(
        parts
            .iter()
            .all(|p| p.data_coding == 8 && p.esm_class == 0x40)
    );
    assert_eq!(
        &parts[1].message[..6],
        &[5, 0, 3, parts[0].message[3], 2, 2]
    );
    // Wrong password: bind refused; an SMSC that errors submit_sm; one that never answers.
    assert_eq!(save(gw("wrong", &port)).await.0, 200);
    let b = login(&s).await;
    assert!(
        b["detail"]["sms_error"]
            .as_str()
            .unwrap()
            .contains("bind refused"),
        "{b}"
    );
    let failing = Smsc::start(SmscOptions {
        system_id: "otpgate".into(),
        password: "smpp-pw".into(),
        submit_error: Some(0x45),
        ..Default::default()
    })
    .await;
    assert_eq!(save(gw("smpp-pw", &failing.port.to_string())).await.0, 200);
    let b = login(&s).await;
    assert!(
        b["detail"]["sms_error"]
            .as_str()
            .unwrap()
            .contains("0x00000045"),
        "{b}"
    );
    let silent = Smsc::start(SmscOptions {
        silent: true,
        ..Default::default()
    })
    .await;
    assert_eq!(save(gw("smpp-pw", &silent.port.to_string())).await.0, 200);
    let b = login(&s).await;
    assert!(
        b["detail"]["sms_error"].as_str().unwrap().contains("0.5 s"),
        "{b}"
    );
    // SMSC_HOST and SMSC_PORT are required.
    let (st, b) = s
        .apost(
            "/smsgateway",
            &[("name", "x"), ("module", "smpp"), ("option.SMSC_HOST", "h")],
        )
        .await;
    assert_eq!((st, code(&b)), (400, 905));
}

#[tokio::test]
async fn kept_secrets_do_not_follow_a_changed_destination() {
    let s = Server::start().await;
    s.ok(
        "/smsgateway",
        &[
            ("name", "gw"),
            ("module", HTTP),
            ("option.URL", "https://sms.example.com/send"),
            ("option.text", "{otp}"),
            ("option.to", "{phone}"),
            ("option.USERNAME", "u"),
            ("option.PASSWORD", "pw-1"),
        ],
    )
    .await;
    let (st, b) = s
        .apost(
            "/smsgateway",
            &[
                ("name", "gw"),
                ("module", HTTP),
                ("option.URL", "https://evil.example.com/"),
                ("option.text", "{otp}"),
                ("option.to", "{phone}"),
                ("option.USERNAME", "u"),
                ("option.PASSWORD", "__CENSORED__"),
            ],
        )
        .await;
    assert_eq!((st, code(&b)), (400, 905), "{b}");
    assert!(error(&b).contains("URL"));
    // Same destination: kept; the password typed again: a new destination is fine.
    s.ok(
        "/smsgateway",
        &[
            ("name", "gw"),
            ("module", HTTP),
            ("option.URL", "https://sms.example.com/send"),
            ("option.text", "{otp}"),
            ("option.to", "{phone}"),
            ("option.USERNAME", "u"),
            ("option.PASSWORD", "__CENSORED__"),
        ],
    )
    .await;
    s.ok(
        "/smsgateway",
        &[
            ("name", "gw"),
            ("module", HTTP),
            ("option.URL", "https://new.example.com/"),
            ("option.text", "{otp}"),
            ("option.to", "{phone}"),
            ("option.USERNAME", "u"),
            ("option.PASSWORD", "pw-2"),
        ],
    )
    .await;
    // SMTP: the stored password is not sent to another server, not even by a test mail.
    s.ok(
        "/smtpserver/hub",
        &[
            ("server", "mail.example.com"),
            ("username", "m"),
            ("password", "mail-pw"),
        ],
    )
    .await;
    let (st, b) = s
        .apost(
            "/smtpserver/send_test_email",
            &[
                ("identifier", "hub"),
                ("recipient", "a@example.com"),
                ("server", "127.0.0.1"),
                ("username", "m"),
                ("password", "__CENSORED__"),
            ],
        )
        .await;
    assert_eq!((st, code(&b)), (400, 905), "{b}");
    let (st, _) = s
        .apost(
            "/smtpserver/hub",
            &[
                ("server", "other.example.com"),
                ("username", "m"),
                ("password", "__CENSORED__"),
            ],
        )
        .await;
    assert_eq!(st, 400);
}

/// Saves a GSM modem gateway named `gw` on `device` with extra options.
async fn save_modem(s: &Server, device: &str, extra: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let mut form = vec![
        ("name", "gw"),
        ("module", "modem"),
        ("option.DEVICE", device),
    ];
    if !extra.iter().any(|(k, _)| *k == "option.TIMEOUT") {
        form.push(("option.TIMEOUT", "2"));
    }
    form.extend_from_slice(extra);
    s.apost("/smsgateway", &form).await
}

#[tokio::test]
async fn gsm_modem_provider_speaks_at_commands_over_a_serial_line() {
    let modem = FakeModem::start(ModemOptions {
        sim_pin: Some("4711".into()),
        ..Default::default()
    });
    let s = Server::start().await;
    s.setup("http://127.0.0.1:9/unused").await;
    let pin = ("option.SIM_PIN", "4711");
    let (st, b) = save_modem(&s, &modem.device, &[pin, ("option.MODE", "pdu")]).await;
    assert_eq!(st, 200, "{b}");
    let g = s.aget("/smsgateway/", &[]).await.1["result"]["value"][0].clone();
    assert_eq!(g["options"]["SIM_PIN"], "__CENSORED__");
    s.enroll("alice", "SMS1", "1234", PHONE).await;
    let b = login(&s).await;
    assert!(challenged(&b), "{b}");
    let log = modem.log();
    assert_eq!(
        log.commands[..8],
        [
            "AT",
            "ATE0",
            "AT+CPIN?",
            "AT+CPIN=\"4711\"",
            "AT+CREG?",
            // Status reports asked for; this modem does not offer them.
            "AT+CNMI=2,1,0,1,0",
            "AT+CMGF=0",
            &format!("AT+CMGS={}", log.bodies[0].len() / 2 - 1),
        ],
        "start-up dialogue, then one PDU whose length excludes the SMSC field"
    );
    let sms = decode_submit(&log.bodies[0]);
    assert_eq!(
        (
            sms.smsc.as_slice(),
            sms.international,
            sms.destination.as_str(),
            sms.dcs
        ),
        (&[0u8][..], true, "4915100000001", 0)
    );
    let tid = b["detail"]["transaction_id"].as_str().unwrap();
    let (_, ok) = s
        .check(&[
            ("user", "alice"),
            ("transaction_id", tid),
            ("pass", &sms.text),
        ])
        .await;
    assert_eq!(value(&ok), true, "the OTP arrived intact: {}", sms.text);
    // The port stays open: the next message goes without a second start-up dialogue.
    let before = modem.log().commands.len();
    assert!(challenged(&login(&s).await));
    let commands = modem.log().commands;
    assert_eq!(commands[before..].len(), 2);
    assert_eq!(commands[before], "AT+CMGF=0");
    // MODE auto (the default): a plain ASCII text goes in text mode, the number quoted, the
    // text as it is; the changed definition reopens the device.
    let (st, _) = save_modem(&s, &modem.device, &[("option.SIM_PIN", "__CENSORED__")]).await;
    assert_eq!(st, 200);
    assert!(challenged(&login(&s).await));
    let log = modem.log();
    assert!(
        log.commands.ends_with(&[
            "AT+CMGF=1".to_owned(),
            "AT+CMGS=\"+4915100000001\"".to_owned()
        ]),
        "{:?}",
        log.commands
    );
    let text = log.bodies.last().unwrap();
    assert!(
        text.len() == 6 && text.bytes().all(|b| b.is_ascii_digit()),
        "{text}"
    );
    // A long Cyrillic text: PDU mode, UCS-2 in two concatenated parts, the OTP whole in one.
    s.ok(
        "/policy/t",
        &[
            ("scope", "authentication"),
            ("action", &format!("smstext={} {{otp}}", "Ж".repeat(80))),
        ],
    )
    .await;
    let before = modem.log().bodies.len();
    assert!(challenged(&login(&s).await));
    let parts: Vec<DecodedSubmit> = modem.log().bodies[before..]
        .iter()
        .map(|h| decode_submit(h))
        .collect();
    assert_eq!(parts.len(), 2);
    assert!(parts.iter().all(|p| p.dcs == 8));
    assert_eq!(parts[0].udh[..3], [5, 0, 3]);
    assert_eq!(
        (parts[0].udh[4], parts[0].udh[5], parts[1].udh[5]),
        (2, 1, 2)
    );
    assert_eq!(
        parts[0].udh[3], parts[1].udh[3],
        "one reference for both parts"
    );
    let whole = format!("{}{}", parts[0].text, parts[1].text);
    assert!(whole.starts_with(&"Ж".repeat(80)));
    let otp = whole.rsplit(' ').next().unwrap();
    assert!(
        otp.len() == 6 && parts.iter().any(|p| p.text.contains(otp)),
        "the OTP is not split: {whole}"
    );
    // MODE text cannot carry it: a send failure, nothing garbled goes out.
    let (st, _) = save_modem(
        &s,
        &modem.device,
        &[("option.SIM_PIN", "__CENSORED__"), ("option.MODE", "text")],
    )
    .await;
    assert_eq!(st, 200);
    let before = modem.log().bodies.len();
    assert_eq!(
        msg(&login(&s).await),
        "The PIN was correct, but the SMS could not be sent!"
    );
    assert_eq!(modem.log().bodies.len(), before);
}

#[tokio::test]
async fn gsm_modem_failures_are_send_failures() {
    let s = Server::start().await;
    s.setup("http://127.0.0.1:9/unused").await;
    s.enroll("alice", "SMS1", "1234", PHONE).await;
    let refusing = FakeModem::start(ModemOptions {
        refuse: true,
        ..Default::default()
    });
    let offline = FakeModem::start(ModemOptions {
        unregistered: true,
        ..Default::default()
    });
    let locked = FakeModem::start(ModemOptions {
        sim_pin: Some("4711".into()),
        ..Default::default()
    });
    let silent = FakeModem::start(ModemOptions {
        silent: true,
        ..Default::default()
    });
    for (device, what) in [
        (refusing.device.as_str(), "+CMS ERROR"),
        (offline.device.as_str(), "not registered"),
        (locked.device.as_str(), "SIM PIN not configured"),
        (silent.device.as_str(), "no answer"),
        ("/dev/ttyOTPGATE-none", "no device"),
    ] {
        // MODE pdu: every case goes through the same dialogue; a short TIMEOUT for the
        // modem that never answers.
        let opts = [("option.MODE", "pdu"), ("option.TIMEOUT", "0.3")];
        assert_eq!(save_modem(&s, device, &opts).await.0, 200, "{what}");
        let b = login(&s).await;
        assert_eq!(
            msg(&b),
            "The PIN was correct, but the SMS could not be sent!",
            "{what}"
        );
    }
    assert!(offline.log().bodies.is_empty() && locked.log().bodies.is_empty());
    // A wrong SIM PIN is offered once, never again until the definition changes: three wrong
    // PINs would lock the SIM.
    let wrong = [("option.MODE", "pdu"), ("option.SIM_PIN", "0000")];
    assert_eq!(save_modem(&s, &locked.device, &wrong).await.0, 200);
    for _ in 0..3 {
        assert_eq!(
            msg(&login(&s).await),
            "The PIN was correct, but the SMS could not be sent!"
        );
    }
    let offered = |m: &FakeModem| {
        m.log()
            .commands
            .iter()
            .filter(|c| c.starts_with("AT+CPIN="))
            .count()
    };
    assert_eq!(offered(&locked), 1);
    let right = [("option.MODE", "pdu"), ("option.SIM_PIN", "4711")];
    assert_eq!(save_modem(&s, &locked.device, &right).await.0, 200);
    assert!(challenged(&login(&s).await));
    assert_eq!(offered(&locked), 2);
    assert_eq!(
        silent.log().commands,
        ["AT"],
        "gave up after the first unanswered command"
    );
    assert_eq!(refusing.log().bodies.len(), 1);
    // Definitions are checked when they are saved.
    for bad in [
        vec![("option.DEVICE", "/etc/passwd")],
        vec![("option.DEVICE", "/dev/watchdog")],
        vec![("option.MODE", "fax")],
        vec![("option.SIM_PIN", "12ab")],
        vec![("option.SMSC", "+49\";AT+CFUN=0")],
    ] {
        let mut form = vec![
            ("name", "gw2"),
            ("module", "modem"),
            ("option.DEVICE", "/dev/ttyUSB0"),
        ];
        form.extend(bad.iter().copied());
        let (st, b) = s.apost("/smsgateway", &form).await;
        assert_eq!((st, code(&b)), (400, 905), "{bad:?}");
    }
}

/// Saves an HTTP gateway `name` that posts `text` and `phone` to `url`, with extra options.
async fn http_gateway(
    s: &Server,
    name: &str,
    url: &str,
    extra: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let mut form = vec![
        ("name", name),
        ("module", HTTP),
        ("option.URL", url),
        ("option.HTTP_METHOD", "POST"),
        ("option.RETURN_SUCCESS", "ID"),
        ("option.text", "{otp}"),
        ("option.phone", "{phone}"),
        ("option.TIMEOUT", "0.5"),
    ];
    form.extend_from_slice(extra);
    s.apost("/smsgateway", &form).await
}

#[tokio::test]
async fn failover_tries_backups_in_order_and_breakers_skip_failing_gateways() {
    let slow = Gateway::start().await;
    slow.set_mode(Mode::Hang);
    let failing = Gateway::start().await;
    failing.set_mode(Mode::Ok("FAILED: no credit"));
    let good = Gateway::start().await;
    let s = Server::start().await;
    s.setup("http://127.0.0.1:9/unused").await;
    let (st, b) = http_gateway(
        &s,
        "gw",
        "http://127.0.0.1:9/",
        &[("option.FAILOVER", "nope")],
    )
    .await;
    assert_eq!((st, code(&b)), (400, 905));
    assert!(error(&b).contains("nope"), "{b}");
    let fail = [("option.RETURN_FAIL", "FAILED")];
    assert_eq!(http_gateway(&s, "slow", &slow.url("/s"), &[]).await.0, 200);
    assert_eq!(
        http_gateway(&s, "failing", &failing.url("/s"), &fail)
            .await
            .0,
        200
    );
    assert_eq!(http_gateway(&s, "good", &good.url("/s"), &[]).await.0, 200);
    let chain = [("option.FAILOVER", "slow, failing ,good")];
    // The primary is down (connection refused).
    let (st, b) = http_gateway(&s, "gw", "http://127.0.0.1:9/", &chain).await;
    assert_eq!(st, 200, "{b}");
    s.ok(
        "/system/setConfig",
        &[
            ("sms.breaker_threshold", "1"),
            ("sms.breaker_open_secs", "60"),
        ],
    )
    .await;
    s.enroll("alice", "SMS1", "1234", PHONE).await;
    let b = login(&s).await;
    assert!(challenged(&b), "{b}");
    assert_eq!((slow.count(), failing.count(), good.count()), (1, 1, 1));
    let tid = b["detail"]["transaction_id"].as_str().unwrap();
    let otp = good.last_otp(PHONE);
    let (_, ok) = s
        .check(&[("user", "alice"), ("transaction_id", tid), ("pass", &otp)])
        .await;
    assert_eq!(value(&ok), true);
    // The audit names the gateway that delivered; the user's answer does not.
    assert!(!b.to_string().contains("good"), "{b}");
    let (_, a) = s.aget("/audit/", &[("action", "*validate/check*")]).await;
    assert!(a.to_string().contains("SMS1 via good"), "{a}");
    // The three failed gateways' breakers are open: the next login goes straight to `good`.
    let metrics = s.metrics().await;
    for g in ["gw", "slow", "failing"] {
        assert!(
            metrics.contains(&format!(
                "otpgate_gateway_breaker_open{{gateway=\"{g}\"}} 1"
            )),
            "{metrics}"
        );
    }
    assert!(challenged(&login(&s).await));
    assert_eq!((slow.count(), failing.count(), good.count()), (1, 1, 2));
    // After the open window the next send probes them again; `failing` recovers and, tried
    // before `good`, delivers and closes its breaker.
    failing.set_mode(Mode::Ok("ID 1"));
    s.advance(61);
    assert!(challenged(&login(&s).await));
    assert_eq!((slow.count(), failing.count(), good.count()), (2, 2, 2));
    let metrics = s.metrics().await;
    assert!(
        !metrics.contains("otpgate_gateway_breaker_open{gateway=\"failing\"}"),
        "closed and forgotten: {metrics}"
    );
    // `slow` failed its probe: open for twice as long now.
    s.advance(61);
    assert!(challenged(&login(&s).await));
    assert_eq!(slow.count(), 2, "still skipped after 61 s");
    let metrics = s.metrics().await;
    for line in [
        "otpgate_sms_attempts_total{gateway=\"gw\",result=\"failed\"} 2",
        "otpgate_sms_attempts_total{gateway=\"gw\",result=\"skipped_breaker_open\"} 2",
        "otpgate_sms_attempts_total{gateway=\"good\",result=\"delivered\"} 2",
        "otpgate_sms_attempts_total{gateway=\"failing\",result=\"delivered\"} 2",
        "otpgate_sms_attempts_total{gateway=\"slow\",result=\"failed\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

#[tokio::test]
async fn the_send_budget_bounds_the_whole_failover() {
    let slow = Gateway::start().await;
    slow.set_mode(Mode::Hang);
    let good = Gateway::start().await;
    let s = Server::start().await;
    s.setup("http://127.0.0.1:9/unused").await;
    assert_eq!(http_gateway(&s, "good", &good.url("/s"), &[]).await.0, 200);
    let chain = [("option.FAILOVER", "good"), ("option.TIMEOUT", "5")];
    assert_eq!(http_gateway(&s, "gw", &slow.url("/s"), &chain).await.0, 200);
    s.ok("/system/setConfig", &[("sms.send_budget_ms", "300")])
        .await;
    s.enroll("alice", "SMS1", "1234", PHONE).await;
    // The primary hangs past the budget: the login gets the send failure, and the backup is
    // not tried after the budget is spent.
    let b = login(&s).await;
    assert_eq!(
        msg(&b),
        "The PIN was correct, but the SMS could not be sent!"
    );
    assert_eq!((slow.count(), good.count()), (1, 0));
    // With the primary's breaker open (the default threshold is 3), every breaker closed
    // gateway comes first: two more failures open it, then `good` delivers at once.
    for _ in 0..2 {
        login(&s).await;
    }
    assert!(challenged(&login(&s).await));
    assert_eq!((slow.count(), good.count()), (3, 1));
    // When every gateway of the chain is open, they are tried anyway rather than failing the
    // login untried.
    good.set_mode(Mode::Status(500));
    s.ok("/system/setConfig", &[("sms.breaker_threshold", "1")])
        .await;
    login(&s).await;
    assert_eq!(
        good.count(),
        2,
        "good failed once: now both breakers are open"
    );
    good.set_mode(Mode::Ok("ID 7"));
    slow.set_mode(Mode::Status(500));
    let b = login(&s).await;
    assert!(challenged(&b), "{b}");
    assert_eq!((slow.count(), good.count()), (4, 3), "both tried, in order");
}

/// A gateway that misbehaves at the TCP level: each connection gets `reply` and then either
/// the connection closes or (`endless`) the body never ends.
async fn broken_gateway(reply: &'static [u8], endless: bool) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let _ = sock.write_all(reply).await;
                if endless {
                    let block = vec![b'x'; 64 * 1024];
                    while sock.write_all(&block).await.is_ok() {}
                }
            });
        }
    });
    format!("http://{addr}/send")
}

#[tokio::test]
async fn garbage_half_answers_and_endless_replies_are_send_failures() {
    let cases: [(&str, &'static [u8], bool); 4] = [
        ("not HTTP", b"\x00\xffGARBAGE\r\n\r\n", false),
        (
            "half a response",
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nID 1",
            false,
        ),
        ("headers cut off", b"HTTP/1.1 200 OK\r\nContent-Le", false),
        (
            "a body without end",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
            true,
        ),
    ];
    for (what, reply, endless) in cases {
        let url = broken_gateway(reply, endless).await;
        let s = with_gateway(&[
            ("option.URL", url.as_str()),
            ("option.HTTP_METHOD", "POST"),
            ("option.RETURN_SUCCESS", "ID"),
            ("option.text", "{otp}"),
            ("option.phone", "{phone}"),
            ("option.TIMEOUT", "3"),
        ])
        .await;
        let b = login(&s).await;
        assert_eq!(
            msg(&b),
            "The PIN was correct, but the SMS could not be sent!",
            "{what}: {b}"
        );
        assert!(!challenged(&b), "{what}: {b}");
        // The server keeps answering, and the failure is counted.
        let m = s.metrics().await;
        assert!(
            m.contains("otpgate_sms_attempts_total{gateway=\"gw\",result=\"failed\"} 1"),
            "{what}: {m}"
        );
    }
}
