//! `otpgate import privacyidea` against a real privacyIDEA 3.14 (from PyPI, as the peer test
//! runs it): privacyIDEA is set up and used through its API, then the real binary imports
//! its database and key file, and otpgate serves the same users with the same PINs, counters
//! carried over. Skipped, saying so, when privacyIDEA is not installed.

use crate::peer::{PrivacyIdea, Side};
use crate::support::{ADMIN_PW, Gateway, Server, otp_in};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const ALICE: &str = "+4915100000001";
const BOB: &str = "+4915100000002";
const CAROL: &str = "+4915100000003";

/// Runs `otpgate --data-dir DATA import privacyidea ARGS`: (success, stdout, stderr).
fn import(data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = crate::cli::bin()
        .env_remove("OTPGATE_PI_PEPPER")
        .arg("--data-dir")
        .arg(data)
        .args(["import", "privacyidea"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The last OTP the gateway got for `phone`.
fn last_otp(gw: &Gateway, phone: &str) -> String {
    let text = gw
        .received()
        .iter()
        .rev()
        .find(|r| r.field("phone").as_deref() == Some(phone))
        .and_then(|r| r.field("text"))
        .unwrap_or_else(|| panic!("no SMS to {phone}"));
    otp_in(&text)
}

fn names(list: &Value, key: &str) -> Vec<String> {
    match list {
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v[key].as_str().map(str::to_owned))
            .collect(),
        Value::Object(o) => o.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// A passwd file with alice, bob and carol.
fn passwd_file(dir: &Path) -> String {
    let passwd = dir.join("passwd");
    std::fs::write(
        &passwd,
        "alice:x:1000:1000:Alice Test,,+4915100000001,,:/h:/bin/sh\n\
         bob:x:1001:1001:Bob Test,,+4915100000002,,:/h:/bin/sh\n\
         carol:x:1002:1002:Carol Test,,+4915100000003,,:/h:/bin/sh\n",
    )
    .unwrap();
    passwd.display().to_string()
}

/// Alice's two-step login on otpgate: the OTP privacyIDEA accepted is refused, the next one
/// (sent with the imported `smstext`) accepted.
async fn alice_logs_in_with_the_next_otp(s: &Server, gw: &Gateway, used_by_privacyidea: &str) {
    let (st, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    assert_eq!(st, 200, "{b}");
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let sms = gw.last();
    assert_eq!(sms.field("phone").as_deref(), Some(ALICE));
    assert!(
        sms.field("text").unwrap().starts_with("Your code "),
        "the imported smstext policy: {sms:?}"
    );
    let fresh = last_otp(gw, ALICE);
    let (_, b) = s
        .check(&[
            ("user", "alice"),
            ("transaction_id", &tid),
            ("pass", used_by_privacyidea),
        ])
        .await;
    assert_eq!(b["result"]["value"], false, "{b}");
    let (_, b) = s
        .check(&[
            ("user", "alice"),
            ("transaction_id", &tid),
            ("pass", &fresh),
        ])
        .await;
    assert_eq!(b["result"]["value"], true, "{b}");
}

/// privacyIDEA set up and used through its own API: a passwd resolver, a default realm, an
/// HTTP gateway with a secret, an SMTP server, two policies (one otpgate cannot take), an
/// event handler, SMS tokens for alice, bob (then disabled) and carol (then failed three
/// times), a HOTP token, and a login of alice. Returns the OTP privacyIDEA accepted.
async fn populate(p: &Side, gw: &Gateway, passwd: &str) -> String {
    // privacyIDEA, set up and used through its own API.
    p.must(
        "/resolver/local",
        &[("type", "passwdresolver"), ("fileName", passwd)],
    )
    .await;
    p.must("/realm/realm1", &[("resolvers", "local")]).await;
    p.must("/defaultrealm/realm1", &[]).await;
    let gateway_url = gw.url("/sms");
    p.must(
        "/smsgateway",
        &[
            ("name", "gw"),
            (
                "module",
                "privacyidea.lib.smsprovider.HttpSMSProvider.HttpSMSProvider",
            ),
            ("option.URL", &gateway_url),
            ("option.HTTP_METHOD", "POST"),
            ("option.RETURN_SUCCESS", "ID"),
            ("option.text", "{otp}"),
            ("option.phone", "{phone}"),
            ("option.PASSWORD", "gateway-secret"),
        ],
    )
    .await;
    p.must("/system/setConfig", &[("sms.identifier", "gw")])
        .await;
    p.must(
        "/smtpserver/mail",
        &[
            ("server", "127.0.0.1"),
            ("port", "2525"),
            ("sender", "pi@example.com"),
            ("username", "mailer"),
            ("password", "smtp-secret"),
        ],
    )
    .await;
    p.must(
        "/policy/smstext",
        &[
            ("scope", "authentication"),
            ("action", "smstext=Your code {otp}, challenge_response=hotp"),
            ("realm", "realm1"),
        ],
    )
    .await;
    p.must(
        "/policy/ui",
        &[("scope", "webui"), ("action", "login_mode=privacyIDEA")],
    )
    .await;
    p.must(
        "/event",
        &[
            ("name", "notify"),
            ("event", "token_init"),
            ("handlermodule", "UserNotification"),
            ("action", "sendmail"),
            ("position", "post"),
            ("option.emailconfig", "mail"),
            ("option.To", "tokenowner"),
            ("option.body", "A token was enrolled for you"),
        ],
    )
    .await;
    let seeds = [
        ("alice", "PISMS1", "1234", ALICE),
        ("bob", "PISMS2", "5678", BOB),
        ("carol", "PISMS3", "9999", CAROL),
    ];
    for (user, serial, pin, phone) in seeds {
        p.must(
            "/token/init",
            &[
                ("type", "sms"),
                ("otpkey", "3132333435363738393031323334353637383930"),
                ("user", user),
                ("serial", serial),
                ("pin", pin),
                ("phone", phone),
            ],
        )
        .await;
    }
    p.must(
        "/token/init",
        &[
            ("type", "hotp"),
            ("otpkey", "3132333435363738393031323334353637383930"),
            ("serial", "PIHOTP"),
        ],
    )
    .await;
    // Alice logs in through privacyIDEA: her counter moves.
    let (st, b) = p.login(gw, "alice", "1234", ALICE).await;
    assert!(st == 200 && b["result"]["value"] == true, "{b}");
    let used_by_privacyidea = last_otp(gw, ALICE);
    p.must("/token/disable", &[("serial", "PISMS2")]).await;
    for _ in 0..3 {
        let (_, b) = p
            .call(
                reqwest::Method::POST,
                "/validate/check",
                &[("user", "carol"), ("pass", "0000")],
                &[],
                false,
            )
            .await;
        assert_eq!(b["result"]["value"], false, "{b}");
    }
    used_by_privacyidea
}

/// Revokes `serial` in privacyIDEA through its API.
async fn p_revoke(pi: &PrivacyIdea, serial: &str) {
    let p = Side::sign_in("privacyIDEA", pi.url.clone(), "admin", ADMIN_PW).await;
    p.must("/token/revoke", &[("serial", serial)]).await;
}

/// A running privacyIDEA, populated (see [`populate`]), whose admin has the password
/// otpgate's test server signs in with.
struct Populated {
    pi: PrivacyIdea,
    gw: Gateway,
    files: tempfile::TempDir,
    used_by_privacyidea: String,
}

impl Populated {
    /// privacyIDEA on `uri` (SQLAlchemy's form; None: SQLite); None when not installed.
    async fn start(uri: Option<String>) -> Option<Populated> {
        let gw = Gateway::start().await;
        let pi = PrivacyIdea::start_on(uri).await?;
        let files = tempfile::tempdir().unwrap();
        let passwd = passwd_file(files.path());
        let p = Side::sign_in("privacyIDEA", pi.url.clone(), "admin", "admin-pw").await;
        let used_by_privacyidea = populate(&p, &gw, &passwd).await;
        pi.add_admin("admin", ADMIN_PW);
        Some(Populated {
            pi,
            gw,
            files,
            used_by_privacyidea,
        })
    }
}

#[tokio::test]
async fn a_privacyidea_installation_moves_in_tokens_and_all() {
    otpgate_gateways::install_crypto_provider();
    let Some(Populated {
        pi,
        gw,
        files,
        used_by_privacyidea,
    }) = Populated::start(None).await
    else {
        return;
    };
    let cfg = pi.config.display().to_string();

    // Refusals write nothing: a wrong key file, an unreadable source.
    let data_dir = tempfile::tempdir().unwrap();
    let data = data_dir.path().join("data");
    let wrong_key = files.path().join("wrong.key");
    std::fs::write(&wrong_key, [7u8; 96]).unwrap();
    let pi_text = std::fs::read_to_string(&pi.config).unwrap();
    let uri = pi_text
        .lines()
        .find_map(|l| l.strip_prefix("SQLALCHEMY_DATABASE_URI = '"))
        .and_then(|l| l.strip_suffix('\''))
        .unwrap()
        .to_owned();
    let (ok, out, err) = import(
        &data,
        &[
            "--pi-database-url",
            &uri,
            "--pi-enckey",
            &wrong_key.display().to_string(),
        ],
    );
    assert!(!ok, "{out}");
    assert!(err.contains("does not open"), "{err}");
    let (ok, _, err) = import(
        &data,
        &[
            "--pi-database-url",
            "sqlite:////nonexistent/pi.sqlite",
            "--pi-enckey",
            &wrong_key.display().to_string(),
        ],
    );
    assert!(
        !ok && err.contains("opening privacyIDEA's database"),
        "{err}"
    );

    // A dry run reports and writes nothing.
    let (ok, out, err) = import(&data, &["--pi-config", &cfg, "--dry-run"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("dry run") && out.contains("token: would import 3"),
        "{out}"
    );

    // The import.
    let (ok, out, err) = import(&data, &["--pi-config", &cfg]);
    assert!(ok, "{out}{err}");
    for expected in [
        "token: imported 3",
        "realm: imported 1",
        "resolver: imported 1",
        "smsgateway: imported 1",
        "smtpserver: imported 1",
        "policy: imported 1",
        "event: imported 1",
        "admin: imported 1",
        "default realm: realm1",
        "token PIHOTP (hotp): otpgate serves SMS tokens only",
        "policy ui (webui)",
        "policy smstext: without the actions otpgate does not have: challenge_response",
    ] {
        assert!(out.contains(expected), "{expected:?} missing in:\n{out}");
    }
    for secret in ["gateway-secret", "smtp-secret", "1234", ADMIN_PW] {
        assert!(!out.contains(secret) && !err.contains(secret), "{out}{err}");
    }
    // Twice: nothing duplicated.
    let (ok, out, err) = import(&data, &["--pi-config", &cfg]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("token: imported 0, 3 already imported before"),
        "{out}"
    );
    // Carol's token revoked in privacyIDEA meanwhile: a third run carries that over.
    p_revoke(&pi, "PISMS3").await;
    let (ok, out, err) = import(&data, &["--pi-config", &cfg]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(
            "token: imported 0, 2 already imported before (left as they are), 1 brought up to date"
        ),
        "{out}"
    );

    // otpgate serves them: the admin signs in with privacyIDEA's password (the server
    // helper signs in as admin with it and asserts success).
    let s = Server::start_with(|c| c.server.data_dir = data.clone()).await;
    alice_logs_in_with_the_next_otp(&s, &gw, &used_by_privacyidea).await;
    // Bob's token stays disabled, Carol's fail counter stays 3 of 10.
    let (_, b) = s.check(&[("user", "bob"), ("pass", "5678")]).await;
    assert_eq!(b["result"]["value"], false, "{b}");
    assert!(b["detail"]["transaction_id"].is_null(), "{b}");
    let (_, b) = s.aget("/token/", &[("serial", "PISMS3")]).await;
    let carol = &b["result"]["value"]["tokens"][0];
    assert_eq!(carol["failcount"], 3, "{b}");
    assert_eq!(carol["revoked"], true, "{b}");
    assert_eq!(carol["info"]["phone"], CAROL, "{b}");
    let (_, b) = s.aget("/token/", &[("serial", "PISMS2")]).await;
    assert_eq!(b["result"]["value"]["tokens"][0]["active"], false, "{b}");
    // The definitions.
    let (_, b) = s.aget("/smsgateway/", &[]).await;
    assert_eq!(names(&b["result"]["value"], "name"), vec!["gw"], "{b}");
    let (_, b) = s.aget("/policy/", &[]).await;
    assert_eq!(names(&b["result"]["value"], "name"), vec!["smstext"], "{b}");
    let (_, b) = s.aget("/event/", &[]).await;
    assert_eq!(names(&b["result"]["value"], "name"), vec!["notify"], "{b}");
    let (_, b) = s.aget("/smtpserver/", &[]).await;
    assert!(b["result"]["value"].get("mail").is_some(), "{b}");
    s.shutdown().await;

    // A target holding a clashing name: refused, nothing written.
    let mut other = Server::start().await;
    other
        .ok(
            "/policy/smstext",
            &[("scope", "authentication"), ("action", "passOnNoToken")],
        )
        .await;
    let other_data = other.app.config.server.data_dir.clone();
    other.stop().await;
    let (ok, out, err) = import(&other_data, &["--pi-config", &cfg]);
    assert!(!ok, "{out}");
    assert!(err.contains("policy smstext"), "{err}");
    let again = Server::start_with(|c| c.server.data_dir = other_data.clone()).await;
    let (_, b) = again.aget("/token/", &[]).await;
    assert_eq!(b["result"]["value"]["count"], 0, "nothing written: {b}");
    let (_, b) = again.aget("/realm/", &[]).await;
    assert_eq!(b["result"]["value"], serde_json::json!({}), "{b}");
}

/// A throw-away MariaDB server of the test's own (temporary directory, own port, no
/// grant tables), stopped by its PID when dropped. None (said) when MariaDB is not installed.
struct MariaDb {
    port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl MariaDb {
    // Starting a server and waiting for it; no test depends on the time it takes.
    #[allow(clippy::disallowed_methods)]
    fn start(database: &str) -> Option<MariaDb> {
        let (install, server) = ("/usr/bin/mariadb-install-db", "/usr/sbin/mariadbd");
        if !Path::new(install).exists() || !Path::new(server).exists() {
            eprintln!("skipped: MariaDB (mariadb-server) is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let st = Command::new(install)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--user=root",
            ])
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let sock = dir.path().join("sock");
        let child = Command::new(server)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", sock.display()))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--user=root",
                "--skip-grant-tables",
                "--skip-log-bin",
                "--innodb-flush-log-at-trx-commit=0",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let db = MariaDb {
            port,
            child,
            _dir: dir,
        };
        for _ in 0..100 {
            let made = Command::new("mariadb")
                .arg(format!("--socket={}", sock.display()))
                .args(["-e", &format!("CREATE DATABASE {database}")])
                .output()
                .is_ok_and(|o| o.status.success());
            if made {
                return Some(db);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("MariaDB did not come up");
    }
}

impl Drop for MariaDb {
    // Waiting for a process to exit in clean-up; no test depends on the time it takes.
    #[allow(clippy::disallowed_methods)]
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
    }
}

#[tokio::test]
async fn a_privacyidea_on_mariadb_moves_in() {
    otpgate_gateways::install_crypto_provider();
    let Some(maria) = MariaDb::start("pi") else {
        return;
    };
    let uri = format!(
        "mysql+pymysql://root@127.0.0.1:{}/pi?charset=utf8mb4",
        maria.port
    );
    moves_in_from(uri).await;
}

#[tokio::test]
async fn a_privacyidea_on_postgresql_moves_in() {
    otpgate_gateways::install_crypto_provider();
    let Ok(admin_url) = std::env::var(otpgate_store::testdb::ENV) else {
        eprintln!("skipped: {} is not set", otpgate_store::testdb::ENV);
        return;
    };
    let db = otpgate_store::testdb::fresh_postgres(&admin_url)
        .await
        .unwrap();
    let uri = db.replacen("postgres://", "postgresql+psycopg2://", 1);
    moves_in_from(uri).await;
}

/// privacyIDEA on the database `uri` (SQLAlchemy's form), populated and imported through
/// `--pi-config`; otpgate serves alice with the next OTP, carol's failures, bob disabled.
async fn moves_in_from(uri: String) {
    let Some(Populated {
        pi,
        gw,
        files: _files,
        used_by_privacyidea,
    }) = Populated::start(Some(uri)).await
    else {
        return;
    };
    let data_dir = tempfile::tempdir().unwrap();
    let data = data_dir.path().join("data");
    let (ok, out, err) = import(&data, &["--pi-config", &pi.config.display().to_string()]);
    assert!(ok, "{out}{err}");
    for expected in [
        "token: imported 3",
        "policy: imported 1",
        "admin: imported 1",
        "event: imported 1",
        "smtpserver: imported 1",
    ] {
        assert!(out.contains(expected), "{expected:?} missing in:\n{out}");
    }
    let s = Server::start_with(|c| c.server.data_dir = data.clone()).await;
    alice_logs_in_with_the_next_otp(&s, &gw, &used_by_privacyidea).await;
    let (_, b) = s.aget("/token/", &[("serial", "PISMS3")]).await;
    assert_eq!(b["result"]["value"]["tokens"][0]["failcount"], 3, "{b}");
    let (_, b) = s.aget("/token/", &[("serial", "PISMS2")]).await;
    assert_eq!(b["result"]["value"]["tokens"][0]["active"], false, "{b}");
}

/// The committed fixture (`tests/fixtures/privacyidea`, made by its `make` with privacyIDEA
/// 3.14), as a privacyIDEA SQLite database in `dir` whose passwd resolver and gateway point
/// at this test's file and gateway.
async fn fixture_database(dir: &Path, gateway_url: &str, ldap_uri: &str) -> String {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/privacyidea");
    let sql = std::fs::read_to_string(fixtures.join("pi.sql")).unwrap();
    let path = dir.join("pi.sqlite");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    // One script: SQLite runs its statements in order.
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&pool)
        .await
        .unwrap();
    let passwd = passwd_file(dir);
    sqlx::query("UPDATE resolverconfig SET \"Value\" = $1 WHERE \"Key\" = 'fileName'")
        .bind(&passwd)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE resolverconfig SET \"Value\" = $1 WHERE \"Key\" = 'LDAPURI'")
        .bind(ldap_uri)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE smsgatewayoption SET \"Value\" = $1 WHERE \"Key\" = 'URL'")
        .bind(gateway_url)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    format!("sqlite:///{}", path.display())
}

#[tokio::test]
async fn the_committed_privacyidea_fixture_moves_in() {
    otpgate_gateways::install_crypto_provider();
    let gw = Gateway::start().await;
    let files = tempfile::tempdir().unwrap();
    let ldap = crate::ldap::Slapd::start(false).await;
    let uri = fixture_database(files.path(), &gw.url("/sms"), &ldap.uri()).await;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/privacyidea");
    let enckey = fixtures.join("enckey").display().to_string();
    let data_dir = tempfile::tempdir().unwrap();
    let data = data_dir.path().join("data");
    let args = ["--pi-database-url", &uri, "--pi-enckey", &enckey];
    // Without the pepper the admin is not imported, and the report says why.
    let (ok, out, err) = import(&data, &[&args[..], &["--dry-run"]].concat());
    assert!(ok, "{out}{err}");
    assert!(out.contains("admin piadmin: PI_PEPPER is needed"), "{out}");
    let (ok, out, err) = import(
        &data,
        &[&args[..], &["--pi-pepper", "fixture-pepper"]].concat(),
    );
    assert!(ok, "{out}{err}");
    for expected in [
        "token: imported 3",
        "admin: imported 1",
        "smsgateway: imported 1",
        "token FIXHOTP (hotp): otpgate serves SMS tokens only",
        "resolver: imported 2",
        "policy: imported 3",
        "event: imported 2",
        "policy helpdesk (admin): imported as a restriction that grants nothing (otpgate has none of its actions: enrollHOTP, enrollTOTP)",
        "resolver sql1 (sqlresolver): otpgate has no sqlresolver",
        "realm sqlrealm: none of its resolvers was imported",
        "realm: imported 2",
    ] {
        assert!(out.contains(expected), "{expected:?} missing in:\n{out}");
    }
    let s = Server::start_with(|c| c.server.data_dir = data.clone()).await;
    // privacyIDEA's admin signs in with privacyIDEA's password (peppered hash).
    let (st, b) = s
        .post(
            "/auth",
            &[("username", "piadmin"), ("password", "fixture-admin-pw")],
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, _) = s
        .post(
            "/auth",
            &[("username", "piadmin"), ("password", "fixture-pepper")],
        )
        .await;
    assert_eq!(st, 401);
    // The first sign-in replaced the peppered hash by otpgate's own; the password stays.
    let store = s.app.services.store();
    let hash = store.admin_hash("piadmin").await.unwrap().unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{hash}");
    let (st, b) = s
        .post(
            "/auth",
            &[("username", "piadmin"), ("password", "fixture-admin-pw")],
        )
        .await;
    assert_eq!(st, 200, "{b}");
    // Alice's counter was 5 in privacyIDEA: as privacyIDEA does, the challenge steps it
    // first, so her SMS carries HOTP(seed, 6) (RFC 4226's test vector 287922).
    let (_, b) = s.check(&[("user", "alice"), ("pass", "1234")]).await;
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let expected = otpgate_core::hotp::hotp(
        b"12345678901234567890",
        6,
        6,
        otpgate_core::hotp::HashLib::Sha1,
    )
    .unwrap();
    assert_eq!(last_otp(&gw, ALICE), expected);
    // The escaped comma of the imported smstext stays in the text.
    assert!(
        gw.last().field("text").unwrap().ends_with(", valid 5 min"),
        "{:?}",
        gw.last()
    );
    let (_, b) = s
        .check(&[
            ("user", "alice"),
            ("transaction_id", &tid),
            ("pass", &expected),
        ])
        .await;
    assert_eq!(b["result"]["value"], true, "{b}");
    // Carol's PIN was stored encrypted (@@): it still works; her failures stay. The import
    // hashed it with the command's (default) costs; her right PIN replaced that hash by one
    // with this server's.
    let before = store
        .token_by_serial("FIX3")
        .await
        .unwrap()
        .unwrap()
        .pin_hash;
    assert!(
        before.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{before}"
    );
    let (_, b) = s.check(&[("user", "carol"), ("pass", "9999")]).await;
    assert!(b["detail"]["transaction_id"].is_string(), "{b}");
    let after = store
        .token_by_serial("FIX3")
        .await
        .unwrap()
        .unwrap()
        .pin_hash;
    assert!(after.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{after}");
    let (_, b) = s.check(&[("user", "carol"), ("pass", "9999")]).await;
    assert!(b["detail"]["transaction_id"].is_string(), "{b}");
    let (_, b) = s.aget("/token/", &[("serial", "FIX3")]).await;
    assert_eq!(b["result"]["value"]["tokens"][0]["failcount"], 3, "{b}");
    // Bob's token stays disabled.
    let (_, b) = s.check(&[("user", "bob"), ("pass", "5678")]).await;
    assert_eq!(b["result"]["value"], false, "{b}");
    // The LDAP resolver binds with privacyIDEA's bind password (decrypted, sealed anew):
    // the directory's users are listed; the password itself is shown censored.
    let (st, b) = s.aget("/user/", &[("realm", "ldaprealm")]).await;
    assert_eq!(st, 200, "{b}");
    let users = names(&b["result"]["value"], "username");
    assert!(users.contains(&"alice".to_owned()), "{b}");
    // Both handlers named "notify" came over (privacyIDEA's names are free text).
    let (_, b) = s.aget("/event/", &[]).await;
    assert_eq!(
        names(&b["result"]["value"], "name"),
        vec!["notify", "notify"],
        "{b}"
    );
    let (_, b) = s.aget("/resolver/ldap1", &[]).await;
    assert_eq!(
        b["result"]["value"]["ldap1"]["data"]["BINDPW"], "__CENSORED__",
        "{b}"
    );

    // Into an otpgate that has a default realm of its own: it stays, and the report says so.
    let mut home = Server::start().await;
    let file = home.passwd_file(&["dora:x:1:1:Dora,,+4915100000009,,:/h:/bin/sh"]);
    home.ok(
        "/resolver/homeres",
        &[("type", "passwdresolver"), ("fileName", &file)],
    )
    .await;
    home.ok("/realm/home", &[("resolvers", "homeres")]).await;
    let home_data = home.app.config.server.data_dir.clone();
    home.stop().await;
    let (ok, out, err) = import(&home_data, &[&args[..], &["--dry-run"]].concat());
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("privacyIDEA's default realm is realm1; otpgate's stays home"),
        "{out}"
    );
}
