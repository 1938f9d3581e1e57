//! privacyIDEA's own client software against otpgate: the C PAM module (privacyidea-pam
//! v1.1.0, built from source), the PHP client (php-client v1.1.0, Debian's php-cli), the Java
//! client (java-client v1.5.1, javac against Debian's okhttp 3) and the admin CLI
//! `privacyideaadm` 3.0 from PyPI. `tests/clients/setup` builds them (scripts/test runs it)
//! and writes the file `OTPGATE_CLIENTS_ENV` names; the drivers in `tests/clients/` are ours,
//! none of the clients' code is in this repository. A client that is not built is skipped with
//! a line saying so. The expected answers are what the same clients print against
//! privacyIDEA 3.14.

use crate::support::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const ALICE: &str = "+4915100000001";
const PROMPT: &str = "Enter the OTP from the SMS:";

/// The command of a built client (`PHP_DRIVER`, `JAVA_DRIVER`, `PAM_DRIVER`, `PI_ADMIN`, …),
/// or None after saying why the test is skipped.
pub(crate) fn client(key: &str) -> Option<Vec<String>> {
    let env = match std::env::var("OTPGATE_CLIENTS_ENV") {
        Ok(p) => p,
        Err(_) => {
            eprintln!("SKIPPED: OTPGATE_CLIENTS_ENV is not set (scripts/test sets it)");
            return None;
        }
    };
    let text = std::fs::read_to_string(&env).unwrap_or_default();
    let vars: HashMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
        .collect();
    match vars.get(key) {
        Some(v) => Some(v.split_whitespace().map(str::to_owned).collect()),
        None => {
            eprintln!(
                "SKIPPED: {key} is not in {env}: the client was not built (its snapshot is \
                 missing; see tests/clients/README.md)"
            );
            None
        }
    }
}

/// Runs `cmd` with `args`; (exit code, stdout, stderr).
async fn run(cmd: &[String], args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One driver operation: the JSON the driver printed.
async fn drive(cmd: &[String], args: &[&str]) -> Value {
    let (code, out, err) = run(cmd, args).await;
    let v: Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("{args:?}: exit {code}, {e}: {out}\n{err}"));
    assert_eq!(v["client_errors"], json!([]), "{args:?}: {v}\n{err}");
    v
}

/// A driver's arguments with the admin as its service account, which names the users' realm
/// in its `/auth` (as the Java client's service account does).
fn service_account<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![
        "--sa-user",
        "admin",
        "--sa-pass",
        ADMIN_PW,
        "--sa-realm",
        "realm1",
    ];
    all.extend_from_slice(args);
    all
}

/// alice (PIN 1234, SMS1) in realm1, bob without a token; the cooldown off as privacyIDEA.
async fn ready() -> (Server, Gateway) {
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "SMS1", "1234", ALICE).await;
    (s, gw)
}

/// The login flows privacyIDEA's PHP and Java clients make, with the fields both read.
async fn sso_client_flows(cmd: &[String], s: &Server, gw: &Gateway, java: bool) {
    let base = s.base.as_str();
    let auth = if java {
        "authentication"
    } else {
        "authenticationStatus"
    };
    // Two steps: PIN → SMS → OTP with the transaction id.
    let v = drive(cmd, &["validatecheck", base, "alice", "1234"]).await;
    let r = &v["response"];
    assert_eq!(
        (&r["status"], &r["value"]),
        (&json!(true), &json!(false)),
        "{v}"
    );
    assert_eq!(r[auth], "CHALLENGE", "{v}");
    assert_eq!(r["message"], PROMPT, "{v}");
    assert_eq!(r["preferredClientMode"], "otp", "{v}");
    assert_eq!(r["triggeredTokenTypes"], json!(["sms"]), "{v}");
    let c = &r["multiChallenge"][0];
    assert_eq!(
        (&c["type"], &c["serial"], &c["message"], &c["clientMode"]),
        (
            &json!("sms"),
            &json!("SMS1"),
            &json!(PROMPT),
            &json!("interactive")
        ),
        "{v}"
    );
    let tid = r["transactionID"].as_str().unwrap().to_owned();
    assert_eq!(tid.len(), 20, "{v}");
    assert_eq!(c["transactionID"], tid.as_str());
    let otp = gw.last_otp(ALICE);
    // A wrong OTP, then the right one in the same transaction.
    let wrong = if otp == "000000" { "111111" } else { "000000" };
    let v = drive(cmd, &["validatecheck", base, "alice", wrong, &tid]).await;
    let r = &v["response"];
    assert_eq!(
        (&r["value"], &r[auth]),
        (&json!(false), &json!("REJECT")),
        "{v}"
    );
    assert_eq!(r["message"], "Response did not match the challenge.", "{v}");
    let v = drive(cmd, &["validatecheck", base, "alice", &otp, &tid]).await;
    let r = &v["response"];
    assert_eq!(
        (&r["value"], &r[auth]),
        (&json!(true), &json!("ACCEPT")),
        "{v}"
    );
    assert_eq!(r["message"], "Found matching challenge", "{v}");
    // A wrong PIN.
    let v = drive(cmd, &["validatecheck", base, "alice", "4321"]).await;
    assert_eq!(v["response"][auth], "REJECT", "{v}");
    assert_eq!(v["response"]["message"], "wrong otp pin", "{v}");
    // triggerchallenge with the service account, which names the users' realm in its /auth
    // (the Java client's service-account realm): an SMS, no PIN.
    let v = drive(cmd, &service_account(&["triggerchallenge", base, "alice"])).await;
    assert_eq!(v["service_account_available"], true, "{v}");
    let r = &v["response"];
    assert_eq!(r[auth], "CHALLENGE", "{v}");
    // privacyIDEA's value is the number of challenges; Java reads it as a boolean (false).
    assert_eq!(
        r["value"],
        if java { json!(false) } else { json!(1) },
        "{v}"
    );
    assert_eq!(r["multiChallenge"][0]["serial"], "SMS1", "{v}");
    // PIN and the OTP of that SMS in one go.
    let pin_otp = format!("1234{}", gw.last_otp(ALICE));
    let v = drive(cmd, &["validatecheck", base, "alice", &pin_otp]).await;
    let r = &v["response"];
    assert_eq!(
        (&r["value"], &r[auth]),
        (&json!(true), &json!("ACCEPT")),
        "{v}"
    );
    assert_eq!(r["message"], "matching 1 tokens", "{v}");
    // The service account's JWT: an admin's.
    let v = drive(cmd, &service_account(&["auth", base])).await;
    assert_eq!(v["jwt"]["obtained"], true, "{v}");
    assert_eq!(v["jwt"]["claims"]["role"], "admin", "{v}");
    // The audit has every one of these calls.
    let (_, b) = s
        .aget("/audit/", &[("user", "alice"), ("action", "*validate*")])
        .await;
    assert!(value(&b)["count"].as_i64().unwrap() >= 6, "{b}");
}

#[tokio::test]
async fn privacyideas_php_client_logs_in_with_multipart_requests() {
    let Some(cmd) = client("PHP_DRIVER") else {
        return;
    };
    let (s, gw) = ready().await;
    sso_client_flows(&cmd, &s, &gw, false).await;
}

#[tokio::test]
async fn privacyideas_java_client_logs_in_and_reads_tokens_with_its_service_account() {
    let Some(cmd) = client("JAVA_DRIVER") else {
        return;
    };
    let (s, gw) = ready().await;
    sso_client_flows(&cmd, &s, &gw, true).await;
    let v = drive(&cmd, &service_account(&["gettokeninfo", &s.base, "alice"])).await;
    let t = &v["tokens"][0];
    assert_eq!(
        (
            &t["serial"],
            &t["tokenType"],
            &t["username"],
            &t["userRealm"]
        ),
        (
            &json!("SMS1"),
            &json!("sms"),
            &json!("alice"),
            &json!("realm1")
        ),
        "{v}"
    );
    assert_eq!(t["realms"], json!(["realm1"]), "{v}");
    assert_eq!(t["info"]["phone"], ALICE, "{v}");
}

/// One run of privacyIDEA's PAM module for `user` with module `args`: each prompt is answered
/// by `answer` (given the prompt and the gateway); the prompts and PAM's result code.
async fn pam_login(
    s: &Server,
    gw: &Gateway,
    user: &str,
    args: &str,
    answer: impl Fn(usize, &str, &Gateway) -> String,
) -> (Vec<String>, i32) {
    let driver = client("PAM_DRIVER").unwrap();
    let template = client("PAM_CONF_TEMPLATE").unwrap();
    let conf = std::fs::read_to_string(&template[0]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("otpgate-test"),
        conf.replace("@URL@", &s.base).replace("@ARGS@", args),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(&driver[0])
        .args([dir.path().to_str().unwrap(), "otpgate-test", user])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut prompts = Vec::new();
    let mut result = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(p) = line.strip_prefix("PROMPT ") {
            let (style, text) = p.split_once(' ').unwrap_or((p, ""));
            prompts.push(text.to_owned());
            if style.starts_with("ECHO") {
                let a = answer(prompts.len() - 1, text, gw);
                stdin.write_all(format!("{a}\n").as_bytes()).await.unwrap();
                stdin.flush().await.unwrap();
            }
        } else if let Some(r) = line.strip_prefix("RESULT ") {
            result = r.split_whitespace().next().and_then(|c| c.parse().ok());
        }
    }
    child.wait().await.unwrap();
    (prompts, result.expect("the PAM driver printed no RESULT"))
}

#[tokio::test]
async fn privacyideas_pam_module_logs_in_in_two_steps_and_with_pin_and_otp() {
    if client("PAM_DRIVER").is_none() || client("PAM_CONF_TEMPLATE").is_none() {
        return;
    }
    let (s, gw) = ready().await;
    let pin_then_otp = |i: usize, _: &str, gw: &Gateway| {
        if i == 0 {
            "1234".to_owned()
        } else {
            gw.last_otp(ALICE)
        }
    };
    // PIN → SMS → OTP.
    let (prompts, rc) = pam_login(&s, &gw, "alice", "nossl", pin_then_otp).await;
    assert_eq!(prompts, ["Please enter your OTP:", PROMPT]);
    assert_eq!(rc, 0, "PAM_SUCCESS");
    // With the realm and a prompt of the site's own.
    let (prompts, rc) = pam_login(
        &s,
        &gw,
        "alice",
        "nossl realm=realm1 [prompt=Your code please:]",
        pin_then_otp,
    )
    .await;
    assert_eq!((prompts[0].as_str(), rc), ("Your code please:", 0));
    // A wrong OTP: PAM_AUTH_ERR.
    let (_, rc) = pam_login(&s, &gw, "alice", "nossl", |i, _, _| {
        if i == 0 { "1234" } else { "000000x" }.to_owned()
    })
    .await;
    assert_eq!(rc, 7);
    // A wrong PIN.
    let (prompts, rc) = pam_login(&s, &gw, "alice", "nossl", |_, _, _| "4321".into()).await;
    assert_eq!((prompts.len(), rc), (1, 7));
    // PIN and OTP in one answer, the OTP from a challenge an admin triggered.
    s.ok("/validate/triggerchallenge", &[("user", "alice")])
        .await;
    let (prompts, rc) = pam_login(&s, &gw, "alice", "nossl", |_, _, gw| {
        format!("1234{}", gw.last_otp(ALICE))
    })
    .await;
    assert_eq!((prompts.len(), rc), (1, 0));
    // A disabled token.
    s.ok("/token/disable/SMS1", &[]).await;
    let (_, rc) = pam_login(&s, &gw, "alice", "nossl", pin_then_otp).await;
    assert_eq!(rc, 7);
}

#[tokio::test]
async fn the_pam_prompt_says_when_no_new_sms_is_coming() {
    if client("PAM_DRIVER").is_none() || client("PAM_CONF_TEMPLATE").is_none() {
        return;
    }
    let (s, gw) = ready().await;
    s.ok("/system/setConfig", &[("sms.resend_cooldown_secs", "30")])
        .await;
    // PIN → SMS → a mistyped OTP.
    let (_, rc) = pam_login(&s, &gw, "alice", "nossl", |i, _, _| {
        if i == 0 { "1234" } else { "999999x" }.to_owned()
    })
    .await;
    assert_eq!(rc, 7);
    assert_eq!(gw.count(), 1);
    // The user logs in again at once: no second SMS, and the prompt says the first code
    // still holds; it logs in.
    s.advance(8);
    let (prompts, rc) = pam_login(&s, &gw, "alice", "nossl", |i, _, gw| {
        if i == 0 {
            "1234".to_owned()
        } else {
            gw.last_otp(ALICE)
        }
    })
    .await;
    assert_eq!(
        prompts[1],
        "The code sent 8 seconds ago is still valid. Enter the OTP from the SMS:"
    );
    assert_eq!((rc, gw.count()), (0, 1));
}

/// privacyideaadm with the admin's credentials: (exit code, stdout, stderr).
async fn adm(cmd: &[String], s: &Server, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["-U", s.base.as_str(), "-a", "admin", "-p", ADMIN_PW];
    all.extend_from_slice(args);
    run(cmd, &all).await
}

#[tokio::test]
async fn privacyideas_admin_client_manages_tokens_and_reads_the_audit() {
    let Some(cmd) = client("PI_ADMIN") else {
        return;
    };
    let (s, _gw) = ready().await;
    let (st, b) = s
        .apost(
            "/token/init",
            &[
                ("type", "sms"),
                ("serial", "ADM1"),
                ("phone", "+4915100000099"),
                ("description", "adm test"),
            ],
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let ok = |r: &(i32, String, String), want: &str| {
        assert_eq!(r.0, 0, "{}\n{}", r.1, r.2);
        assert!(r.1.contains(want), "want {want}: {}", r.1);
    };
    // The admin client's own commands, as against privacyIDEA 3.14.
    let list = adm(&cmd, &s, &["token", "list", "--serial", "ADM1"]).await;
    ok(&list, "adm test");
    assert!(list.1.contains("| True |"), "{}", list.1);
    ok(
        &adm(&cmd, &s, &["token", "disable", "--serial", "ADM1"]).await,
        "{'status': True, 'value': 1}",
    );
    let list = adm(&cmd, &s, &["token", "list", "--serial", "ADM1"]).await;
    assert!(list.1.contains("| Fals |"), "{}", list.1);
    ok(
        &adm(&cmd, &s, &["token", "enabletoken", "--serial", "ADM1"]).await,
        "{'status': True, 'value': 1}",
    );
    ok(
        &adm(
            &cmd,
            &s,
            &[
                "token",
                "set",
                "--serial",
                "ADM1",
                "--phone",
                "+4915100000004",
                "--description",
                "changed by adm",
            ],
        )
        .await,
        "{'status': True, 'value': 2}",
    );
    let t = s.token_info("ADM1").await;
    assert_eq!(
        (&t["description"], &t["info"]["phone"]),
        (&json!("changed by adm"), &json!("+4915100000004"))
    );
    ok(
        &adm(
            &cmd,
            &s,
            &["token", "assigntoken", "--serial", "ADM1", "--user", "bob"],
        )
        .await,
        "{'status': True, 'value': True}",
    );
    let list = adm(&cmd, &s, &["token", "list", "--user", "bob"]).await;
    ok(&list, "ADM1");
    assert!(list.1.contains("bob"), "{}", list.1);
    // Already assigned: privacyIDEA's 1103 comes before the unknown user.
    let (code, _, err) = adm(
        &cmd,
        &s,
        &[
            "token",
            "assigntoken",
            "--serial",
            "ADM1",
            "--user",
            "nosuchuser",
        ],
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("\"code\":1103"), "{err}");
    ok(
        &adm(&cmd, &s, &["token", "unassigntoken", "--serial", "ADM1"]).await,
        "{'status': True, 'value': 1}",
    );
    let (code, _, err) = adm(&cmd, &s, &["token", "disable", "--serial", "NOSUCH"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("\"code\":601"), "{err}");
    let del = adm(&cmd, &s, &["token", "delete", "--serial", "ADM1"]).await;
    ok(&del, "Delete token ADM1");
    ok(&del, "{'status': True, 'value': 1}");
    let list = adm(&cmd, &s, &["token", "list", "--serial", "ADM1"]).await;
    assert!(!list.1.contains("ADM1"), "{}", list.1);
    // The audit, as the admin client lists it (newest first, privacyIDEA's 15 a page).
    let audit = adm(&cmd, &s, &["audit", "list"]).await;
    assert_eq!(audit.0, 0, "{}", audit.2);
    assert!(
        audit
            .1
            .lines()
            .any(|l| l.contains("'action': 'DELETE /token/<serial>'")
                && l.contains("'serial': 'ADM1'")
                && l.contains("'success': 1")),
        "{}",
        audit.1
    );
    assert!(
        audit
            .1
            .lines()
            .any(|l| l.contains("'action': 'POST /token/assign'")
                && l.contains("ERR1103: Token already assigned")),
        "{}",
        audit.1
    );
    // A wrong admin password.
    let (code, _, err) = run(
        &cmd,
        &["-U", &s.base, "-a", "admin", "-p", "wrong", "token", "list"],
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("401"), "{err}");
}
