//! The real binary: the process contract of SPEC §4.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

pub(crate) fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_otpgate"));
    c.env_remove("OTPGATE_CONFIG")
        .env_remove("OTPGATE_DATA_DIR")
        .env_remove("OTPGATE_DATABASE_URL")
        .env_remove("OTPGATE_LISTEN");
    c
}

/// Runs the binary on `data` with `args`; asserts success and returns standard output.
fn run_ok(data: &std::path::Path, args: &[&str]) -> String {
    let out = bin()
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Logs in as `admin` against a running binary; returns the JWT.
async fn admin_jwt(c: &reqwest::Client, base: &str, password: &str) -> String {
    let auth: serde_json::Value = c
        .post(format!("{base}/auth"))
        .form(&[("username", "admin"), ("password", password)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    auth["result"]["value"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// POSTs each form with the admin JWT; every call must answer 200.
async fn admin_posts(
    c: &reqwest::Client,
    base: &str,
    jwt: &str,
    calls: Vec<(&str, Vec<(&str, String)>)>,
) {
    for (path, form) in calls {
        let r = c
            .post(format!("{base}{path}"))
            .header("Authorization", jwt)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
}

fn client() -> reqwest::Client {
    otpgate_gateways::install_crypto_provider();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Running {
    child: Child,
    port: u16,
    first_line: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `serve` and waits (bounded) until /healthz answers.
async fn serve(data_dir: &std::path::Path, extra_env: &[(&str, &str)]) -> Running {
    serve_logging_to(data_dir, extra_env, Stdio::null()).await
}

async fn serve_logging_to(
    data_dir: &std::path::Path,
    extra_env: &[(&str, &str)],
    stderr: Stdio,
) -> Running {
    let port = free_port();
    let mut cmd = bin();
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("OTPGATE_DATA_DIR", data_dir)
        .stdout(Stdio::piped())
        .stderr(stderr);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut first = lines.next().and_then(Result::ok).unwrap_or_default();
        // The first admin's password comes with a second line: how to change it.
        if first.starts_with("Created admin user")
            && let Some(Ok(hint)) = lines.next()
        {
            first = format!("{first}\n{hint}");
        }
        let _ = tx.send(first);
        for _ in lines {}
    });
    let client = client();
    for _ in 0..200 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && r.status() == 200
        {
            // The password line is printed before the listener binds, so it has arrived by now if it exists.
            let first_line = rx
                .recv_timeout(Duration::from_millis(500))
                .unwrap_or_default();
            return Running {
                child,
                port,
                first_line,
            };
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("otpgate exited early: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("otpgate did not become healthy");
}

/// Whether `base`'s /healthz answers 200 within 10 s.
async fn healthy_within(base: &str) -> bool {
    let c = client();
    for _ in 0..200 {
        if c.get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn serve_bootstraps_the_data_dir_prints_the_admin_once_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut run = serve(&data, &[]).await;
    let pw_line = run.first_line.clone();
    let pw = std::fs::read_to_string(data.join("initial-admin-password")).unwrap();
    assert!(pw_line.contains(pw.trim()), "{pw_line}");
    let mode = |p: &str| {
        std::fs::metadata(data.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for f in ["encryption.keys", "jwt.secret", "initial-admin-password"] {
        assert_eq!(mode(f), 0o600, "{f}");
    }
    let r = client()
        .post(format!("http://127.0.0.1:{}/auth", run.port))
        .form(&[("username", "admin"), ("password", pw.trim())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sigterm(&run.child);
    let status = run.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    // The hint names this binary and data directory.
    assert!(
        pw_line.contains(&format!(
            "{} --data-dir {} admin add admin --password-stdin",
            env!("CARGO_BIN_EXE_otpgate"),
            data.display()
        )),
        "{pw_line}"
    );
    // A second start keeps the admin and prints nothing.
    let run2 = serve(&data, &[]).await;
    assert_eq!(run2.first_line, "", "the password is printed only once");
    drop(run2);
    // A password shorter than 8 characters is refused.
    let admin_add = |name: &str, pw: &str| {
        let mut child = bin()
            .args([
                "--data-dir",
                data.to_str().unwrap(),
                "admin",
                "add",
                name,
                "--password-stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{pw}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = admin_add("admin", "short");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at least 8 characters"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(data.join("initial-admin-password").exists());
    // A new password for the admin ends the initial one's file…
    assert!(admin_add("admin", "a new admin password").status.success());
    assert!(!data.join("initial-admin-password").exists());
    // …and a stale copy is removed at the next start.
    std::fs::write(data.join("initial-admin-password"), &pw).unwrap();
    std::fs::set_permissions(
        data.join("initial-admin-password"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    drop(serve(&data, &[]).await);
    assert!(!data.join("initial-admin-password").exists());
    // A key file others can read is refused, saying how to fix it.
    let keys = data.join("encryption.keys");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = bin()
        .args(["--data-dir", data.to_str().unwrap(), "policy", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is readable by group or others (mode 644)") && err.contains("chmod 600"),
        "{err}"
    );
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    run_ok(&data, &["policy", "list"]);
}

#[tokio::test]
async fn admin_add_reads_the_password_from_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let mut child = bin()
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "admin",
            "add",
            "ops",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"pw from stdin\nignored second line\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("admin ops saved"));
    let out = bin()
        .args(["--data-dir", data.to_str().unwrap(), "admin", "add", "ops"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "without --password-stdin");
    let run = serve(&data, &[]).await;
    let r = client()
        .post(format!("http://127.0.0.1:{}/auth", run.port))
        .form(&[("username", "ops"), ("password", "pw from stdin")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn check_config_accepts_the_example_and_reports_errors() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config.example.toml");
    let out = bin()
        .args(["--config", example, "check-config"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration OK"));
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nlisten = \"127.0.0.1:1\"\nlistn = 2\n").unwrap();
    let out = bin()
        .env("OTPGATE_CONFIG", &bad)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("listn"));
    // Every key that does not fit is named, not only the first.
    std::fs::write(
        &bad,
        "[server]\nlistn = \"x\"\nrequest_timeout_secs = \"ten\"\n[web]\nsesion_secs = 5\n",
    )
    .unwrap();
    let out = bin()
        .args(["--config", bad.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "3 problems",
        "server.listn: unknown field `listn`",
        "server.request_timeout_secs: invalid type: string \"ten\"",
        "web.sesion_secs: unknown field `sesion_secs`",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    std::fs::write(&bad, "version = 2\n[log]\nformat = \"xml\"\n").unwrap();
    let out = bin()
        .args(["--config", bad.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("version") && err.contains("log.format"),
        "{err}"
    );
    // A log level that is no level would silence the server: refused.
    std::fs::write(&bad, "[log]\nlevel = \"verbose\"\n").unwrap();
    let out = bin()
        .args(["--config", bad.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("log.level"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bin()
        .args(["--config", "/no/such/file.toml", "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // The cause is said once.
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[tokio::test]
async fn a_foreign_key_file_is_refused_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut run = serve(&data, &[]).await;
    sigterm(&run.child);
    run.child.wait().unwrap();
    let other = tmp.path().join("other");
    let mut r2 = serve(&other, &[]).await;
    sigterm(&r2.child);
    r2.child.wait().unwrap();
    std::fs::copy(other.join("encryption.keys"), data.join("encryption.keys")).unwrap();
    let out = bin()
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot decrypt this database's secrets"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn trace_logs_of_a_whole_login_contain_no_secrets() {
    use crate::support::{Gateway, otp_in};
    let gw = Gateway::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let log_path = tmp.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut run = serve_logging_to(&data, &[("RUST_LOG", "trace")], Stdio::from(log)).await;
    let base = format!("http://127.0.0.1:{}", run.port);
    let c = client();
    let admin_pw = std::fs::read_to_string(data.join("initial-admin-password"))
        .unwrap()
        .trim()
        .to_owned();
    let jwt = admin_jwt(&c, &base, admin_pw.as_str()).await;
    let phone = "+4915187654321";
    let calls: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("/resolver/local", vec![("type", "internalresolver".into())]),
        ("/realm/home", vec![("resolvers", "local".into())]),
        (
            "/user/",
            vec![
                ("user", "alice".into()),
                ("resolver", "local".into()),
                ("mobile", phone.into()),
                ("password", "user-pw-4711".into()),
            ],
        ),
        (
            "/smsgateway",
            vec![
                ("name", "gw".into()),
                ("module", "http".into()),
                ("option.URL", gw.url("/sms")),
                ("option.text", "Code {otp}".into()),
                ("option.phone", "{phone}".into()),
                ("option.USERNAME", "u".into()),
                ("option.PASSWORD", "gateway-pw-0815".into()),
            ],
        ),
        ("/system/setConfig", vec![("sms.identifier", "gw".into())]),
        (
            "/token/init",
            vec![
                ("type", "sms".into()),
                ("user", "alice".into()),
                ("dynamic_phone", "1".into()),
                ("pin", "pin-5150".into()),
            ],
        ),
    ];
    admin_posts(&c, &base, &jwt, calls).await;
    let check = |form: Vec<(&'static str, String)>| {
        let c = c.clone();
        let url = format!("{base}/validate/check");
        async move {
            c.post(url)
                .form(&form)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let b = check(vec![("user", "alice".into()), ("pass", "pin-5150".into())]).await;
    let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
    let otp1 = otp_in(&gw.last().field("text").unwrap());
    assert_eq!(
        check(vec![
            ("user", "alice".into()),
            ("transaction_id", tid),
            ("pass", otp1.clone())
        ])
        .await["result"]["value"],
        true
    );
    check(vec![("user", "alice".into()), ("pass", "pin-5150".into())]).await;
    let otp2 = otp_in(&gw.last().field("text").unwrap());
    assert_eq!(
        check(vec![
            ("user", "alice".into()),
            ("pass", format!("pin-5150{otp2}"))
        ])
        .await["result"]["value"],
        true
    );
    check(vec![
        ("user", "alice".into()),
        ("pass", "wrong-pin-1".into()),
    ])
    .await;
    sigterm(&run.child);
    assert_eq!(run.child.wait().unwrap().code(), Some(0));
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(logs.contains("submitting SMS"), "debug logging was on");
    for secret in [
        admin_pw.as_str(),
        "user-pw-4711",
        "gateway-pw-0815",
        "pin-5150",
        "wrong-pin-1",
        &otp1,
        &otp2,
        phone,
        &phone[1..],
        jwt.as_str(),
    ] {
        assert!(!logs.contains(secret), "a secret reached the log: {secret}");
    }
}

#[tokio::test]
async fn json_logs_carry_the_request_id_the_answer_names() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = tmp.path().join("otpgate.toml");
    std::fs::write(&config, "[log]\nformat = \"json\"\nlevel = \"debug\"\n").unwrap();
    let log_path = tmp.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut run = serve_logging_to(
        &data,
        &[("OTPGATE_CONFIG", config.to_str().unwrap())],
        Stdio::from(log),
    )
    .await;
    let base = format!("http://127.0.0.1:{}", run.port);
    let c = client();
    // The caller's id is kept; a missing or unusable one is replaced by 16 hex digits.
    let r = c
        .post(format!("{base}/validate/check"))
        .header("X-Request-Id", "probe-42")
        .form(&[("user", "nobody"), ("pass", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "probe-42");
    let mut fresh = Vec::new();
    for given in [None, Some("two words\"}")] {
        let mut rb = c
            .post(format!("{base}/auth"))
            .form(&[("username", "admin"), ("password", "wrong")]);
        if let Some(g) = given {
            rb = rb.header("X-Request-Id", g);
        }
        let r = rb.send().await.unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(
            id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
        fresh.push(id);
    }
    assert_ne!(fresh[0], fresh[1]);
    sigterm(&run.child);
    assert_eq!(run.child.wait().unwrap().code(), Some(0));
    // Every line is JSON; the requests' lines carry their id and route.
    let logs = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let of = |id: &str| {
        lines
            .iter()
            .filter(|l| l["span"]["id"] == id)
            .cloned()
            .collect::<Vec<_>>()
    };
    let probe = of("probe-42");
    assert!(!probe.is_empty(), "{logs}");
    assert!(
        probe
            .iter()
            .all(|l| l["span"]["route"] == "/validate/check"),
        "{probe:?}"
    );
    assert!(
        probe
            .iter()
            .any(|l| l["fields"]["message"] == "answered" && l["fields"]["status"] == 400),
        "{probe:?}"
    );
    assert!(
        !of(&fresh[0]).is_empty() && !of(&fresh[1]).is_empty(),
        "{logs}"
    );
}

#[tokio::test]
async fn sigterm_drains_an_in_flight_login_and_env_overrides_apply() {
    use crate::support::{Gateway, Mode};
    let gw = Gateway::start().await;
    gw.set_mode(Mode::Hang);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let db = tmp.path().join("elsewhere.sqlite");
    let port = free_port();
    let child = bin()
        .arg("serve")
        .env("OTPGATE_DATA_DIR", &data)
        .env("OTPGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "OTPGATE_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", db.display()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed on drop, so a failing assertion leaves no server behind.
    let mut run = Running {
        child,
        port,
        first_line: String::new(),
    };
    let base = format!("http://127.0.0.1:{port}");
    let healthy = healthy_within(&base).await;
    assert!(healthy, "OTPGATE_LISTEN was honoured");
    let c = client();
    assert!(db.exists(), "OTPGATE_DATABASE_URL was honoured");
    assert!(!data.join("otpgate.sqlite").exists());
    let pw = std::fs::read_to_string(data.join("initial-admin-password")).unwrap();
    let jwt = admin_jwt(&c, &base, pw.trim()).await;
    let setup: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("/resolver/local", vec![("type", "internalresolver".into())]),
        ("/realm/home", vec![("resolvers", "local".into())]),
        (
            "/user/",
            vec![("user", "alice".into()), ("resolver", "local".into())],
        ),
        (
            "/smsgateway",
            vec![
                ("name", "gw".into()),
                ("module", "http".into()),
                ("option.URL", gw.url("/s")),
                ("option.TIMEOUT", "2".into()),
                ("option.text", "{otp}".into()),
                ("option.to", "{phone}".into()),
            ],
        ),
        ("/system/setConfig", vec![("sms.identifier", "gw".into())]),
        (
            "/token/init",
            vec![
                ("type", "sms".into()),
                ("user", "alice".into()),
                ("phone", "+4915100000091".into()),
                ("pin", "p".into()),
            ],
        ),
    ];
    admin_posts(&c, &base, &jwt, setup).await;
    let login = tokio::spawn({
        let c = c.clone();
        let url = format!("{base}/validate/check");
        async move {
            c.post(url)
                .form(&[("user", "alice"), ("pass", "p")])
                .send()
                .await
        }
    });
    // Wait until the login is in flight: the gateway has the request and does not answer.
    for _ in 0..200 {
        if gw.count() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(gw.count(), 1);
    sigterm(&run.child);
    let r = login
        .await
        .unwrap()
        .expect("the in-flight request is answered, not cut off");
    assert_eq!(r.status(), 200);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        b["detail"]["message"],
        "The PIN was correct, but the SMS could not be sent!"
    );
    assert_eq!(run.child.wait().unwrap().code(), Some(0));
}

/// Runs FreeRADIUS's `radclient` with the given attribute lines; returns its output. It runs
/// on a blocking thread so the in-process SMS gateway keeps answering meanwhile.
async fn radclient(port: u16, secret: &str, attributes: &str) -> String {
    let (secret, attributes) = (secret.to_owned(), attributes.to_owned());
    tokio::task::spawn_blocking(move || radclient_blocking(port, &secret, &attributes))
        .await
        .unwrap()
}

fn radclient_blocking(port: u16, secret: &str, attributes: &str) -> String {
    let mut child = Command::new("radclient")
        .args([
            "-x",
            "-r",
            "1",
            "-t",
            "1",
            &format!("127.0.0.1:{port}"),
            "auth",
            secret,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("radclient is installed (Debian's freeradius-utils; scripts/test installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(attributes.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[tokio::test]
async fn radclient_completes_the_sms_challenge_flow_against_otpgate_serve() {
    use crate::support::{Gateway, otp_in};
    let gw = Gateway::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let radius_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let secret_file = tmp.path().join("nas.secret");
    std::fs::write(&secret_file, "radclient-shared-secret\n").unwrap();
    let config = tmp.path().join("otpgate.toml");
    std::fs::write(
        &config,
        format!(
            "[radius]\nlisten = \"127.0.0.1:{radius_port}\"\n[[radius.clients]]\naddress = \"127.0.0.0/8\"\nsecret_file = \"{}\"\n",
            secret_file.display()
        ),
    )
    .unwrap();
    let log_path = tmp.path().join("stderr.log");
    let run = serve_logging_to(
        &data,
        &[
            ("OTPGATE_CONFIG", config.to_str().unwrap()),
            ("RUST_LOG", "debug"),
        ],
        Stdio::from(std::fs::File::create(&log_path).unwrap()),
    )
    .await;
    let base = format!("http://127.0.0.1:{}", run.port);
    let c = client();
    let pw = std::fs::read_to_string(data.join("initial-admin-password")).unwrap();
    let jwt = admin_jwt(&c, &base, pw.trim()).await;
    let setup: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("/resolver/local", vec![("type", "internalresolver".into())]),
        ("/realm/home", vec![("resolvers", "local".into())]),
        (
            "/user/",
            vec![("user", "alice".into()), ("resolver", "local".into())],
        ),
        (
            "/smsgateway",
            vec![
                ("name", "gw".into()),
                ("module", "http".into()),
                ("option.URL", gw.url("/s")),
                ("option.text", "{otp}".into()),
                ("option.to", "{phone}".into()),
            ],
        ),
        ("/system/setConfig", vec![("sms.identifier", "gw".into())]),
        (
            "/token/init",
            vec![
                ("type", "sms".into()),
                ("user", "alice".into()),
                ("phone", "+4915100000091".into()),
                ("pin", "1234".into()),
            ],
        ),
    ];
    admin_posts(&c, &base, &jwt, setup).await;
    let secret = "radclient-shared-secret";
    // Step 1: the PIN → Access-Challenge with State and the prompt.
    let out = radclient(
        radius_port,
        secret,
        "User-Name = \"alice\"\nUser-Password = \"1234\"\nMessage-Authenticator = 0x00\n",
    )
    .await;
    assert!(out.contains("Received Access-Challenge"), "{out}");
    assert!(
        out.contains("Reply-Message = \"Enter the OTP from the SMS:\""),
        "{out}"
    );
    let state = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("State = "))
        .expect("a State")
        .to_owned();
    // Step 2: State + the OTP from the SMS → Access-Accept.
    let otp = otp_in(&gw.last().field("text").unwrap());
    let out = radclient(
        radius_port,
        secret,
        &format!(
            "User-Name = \"alice\"\nUser-Password = \"{otp}\"\nState = {state}\nMessage-Authenticator = 0x00\n"
        ),
    ).await;
    assert!(out.contains("Received Access-Accept"), "{out}");
    // PIN+OTP in one request after a fresh SMS.
    radclient(
        radius_port,
        secret,
        "User-Name = \"alice\"\nUser-Password = \"1234\"\nMessage-Authenticator = 0x00\n",
    )
    .await;
    let otp = otp_in(&gw.last().field("text").unwrap());
    let out = radclient(
        radius_port,
        secret,
        &format!(
            "User-Name = \"alice\"\nUser-Password = \"1234{otp}\"\nMessage-Authenticator = 0x00\n"
        ),
    )
    .await;
    assert!(out.contains("Received Access-Accept"), "{out}");
    // A wrong PIN: Access-Reject with the reason.
    let out = radclient(
        radius_port,
        secret,
        "User-Name = \"alice\"\nUser-Password = \"nope\"\nMessage-Authenticator = 0x00\n",
    )
    .await;
    assert!(
        out.contains("Received Access-Reject") && out.contains("wrong otp pin"),
        "{out}"
    );
    // A wrong secret and a request without Message-Authenticator are dropped: no reply.
    let out = radclient(
        radius_port,
        "not-the-secret",
        "User-Name = \"alice\"\nUser-Password = \"1234\"\nMessage-Authenticator = 0x00\n",
    )
    .await;
    assert!(out.contains("No reply from server"), "{out}");
    let out = radclient(
        radius_port,
        secret,
        "User-Name = \"alice\"\nUser-Password = \"1234\"\n",
    )
    .await;
    assert!(out.contains("No reply from server"), "{out}");
}

#[tokio::test]
async fn copy_db_moves_a_sqlite_site_to_postgresql_and_logins_continue() {
    use crate::support::{ADMIN_PW, Gateway, Server};
    let Ok(admin_url) = std::env::var(otpgate_store::testdb::ENV) else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must set {}",
            otpgate_store::testdb::ENV
        );
        eprintln!("skipped: {} is not set", otpgate_store::testdb::ENV);
        return;
    };
    let gw = Gateway::start().await;
    let mut s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "SMS1", "1234", "+4915100000001").await;
    s.check(&[("user", "alice"), ("pass", "wrong")]).await;
    s.stop().await;
    let data = s.dir.path().join("data");
    let pg = otpgate_store::testdb::fresh_postgres(&admin_url)
        .await
        .unwrap();
    let stdout = run_ok(&data, &["copy-db", "--to", &pg]);
    assert!(
        stdout.contains("token: 1")
            && stdout.contains("smsgateway: 1")
            && stdout.contains("admin: 1"),
        "{stdout}"
    );
    let again = bin()
        .args(["--data-dir", data.to_str().unwrap(), "copy-db", "--to", &pg])
        .output()
        .unwrap();
    assert!(
        !again.status.success() && String::from_utf8_lossy(&again.stderr).contains("not empty")
    );
    let migrate = bin()
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "--database-url",
            &pg,
            "migrate",
        ])
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    assert!(String::from_utf8_lossy(&migrate.stdout).contains("Postgres"));
    // A node on PostgreSQL with the same key files carries on: admin, token, PIN and fail counter.
    let run = serve(&data, &[("OTPGATE_DATABASE_URL", pg.as_str())]).await;
    let base = format!("http://127.0.0.1:{}", run.port);
    let c = client();
    let jwt = admin_jwt(&c, &base, ADMIN_PW).await;
    let tokens = tokens_via(&c, &base, &jwt).await;
    assert_eq!(tokens["result"]["value"]["tokens"][0]["failcount"], 1);
    let b: serde_json::Value = c
        .post(format!("{base}/validate/check"))
        .form(&[("user", "alice"), ("pass", "1234")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tid = b["detail"]["transaction_id"]
        .as_str()
        .expect("a challenge")
        .to_owned();
    let otp = gw.last_otp("+4915100000001");
    let b: serde_json::Value = c
        .post(format!("{base}/validate/check"))
        .form(&[
            ("user", "alice"),
            ("transaction_id", tid.as_str()),
            ("pass", otp.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(b["result"]["value"], true, "{b}");
    // New rows get ids past the copied ones.
    let r = c
        .post(format!("{base}/smsgateway"))
        .header("Authorization", &jwt)
        .form(&[("name", "second"), ("module", "sink")])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["result"]["value"], 2, "{body}");
}

/// `GET /token/` of a running binary as the admin of `jwt`.
async fn tokens_via(c: &reqwest::Client, base: &str, jwt: &str) -> serde_json::Value {
    c.get(format!("{base}/token/"))
        .header("Authorization", jwt)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A two-step login against a running binary; true if the OTP from the gateway was accepted.
async fn login_via(base: &str, gw: &crate::support::Gateway) -> bool {
    let c = client();
    let check = |form: Vec<(&'static str, String)>| {
        let c = c.clone();
        async move {
            let r = c
                .post(format!("{base}/validate/check"))
                .form(&form)
                .send()
                .await
                .unwrap();
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let b = check(vec![("user", "alice".into()), ("pass", "1234".into())]).await;
    let Some(tid) = b["detail"]["transaction_id"].as_str().map(str::to_owned) else {
        return false;
    };
    let otp = gw.last_otp("+4915100000001");
    let b = check(vec![
        ("user", "alice".into()),
        ("transaction_id", tid),
        ("pass", otp),
    ])
    .await;
    b["result"]["value"] == true
}

#[tokio::test]
async fn keys_rotate_reencrypts_every_secret_and_the_old_key_can_go() {
    use crate::support::{Gateway, Server};
    // A gateway that requires basic auth: its PASSWORD is a sealed secret the send needs.
    let gw = Gateway::start_with_basic(Some(("u", "gw-pass-1"))).await;
    let mut s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.ok(
        "/smsgateway",
        &[
            ("name", "gw"),
            ("module", "http"),
            ("option.URL", &gw.url("/sms")),
            ("option.HTTP_METHOD", "POST"),
            ("option.RETURN_SUCCESS", "ID"),
            ("option.USERNAME", "u"),
            ("option.PASSWORD", "gw-pass-1"),
            ("option.text", "{otp}"),
            ("option.phone", "{phone}"),
        ],
    )
    .await;
    s.ok(
        "/smtpserver/mail",
        &[
            ("server", "127.0.0.1"),
            ("username", "m"),
            ("password", "smtp-pass-1"),
        ],
    )
    .await;
    // An LDAP resolver's service password is sealed too (nothing needs to listen for saving).
    s.ok(
        "/resolver/dir",
        &[
            ("type", "ldapresolver"),
            ("LDAPURI", "ldap://127.0.0.1:9"),
            ("LDAPBASE", "dc=example,dc=org"),
            ("BINDDN", "cn=admin,dc=example,dc=org"),
            ("BINDPW", "ldap-pass-1"),
            ("LOGINNAMEATTRIBUTE", "uid"),
        ],
    )
    .await;
    // And a RADIUS server's shared secret.
    s.ok(
        "/radiusserver/old",
        &[("server", "127.0.0.1"), ("secret", "radius-secret-1")],
    )
    .await;
    s.enroll("alice", "SMS1", "1234", "+4915100000001").await;
    s.stop().await;
    let data = s.dir.path().join("data");
    let stdout = run_ok(&data, &["keys", "rotate"]);
    assert!(
        stdout.contains("1 OTP seeds, 1 gateway secrets, 1 SMTP passwords, 1 LDAP passwords and 1 RADIUS secrets with the new key k2"),
        "{stdout}"
    );
    let keys = std::fs::read_to_string(data.join("encryption.keys")).unwrap();
    assert!(
        keys.lines().any(|l| l.starts_with("k1:"))
            && keys.trim_end().lines().last().unwrap().starts_with("k2:")
    );
    let mode = std::fs::metadata(data.join("encryption.keys"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // Logins go on with the rotated secrets.
    {
        let run = serve(&data, &[]).await;
        assert!(login_via(&format!("http://127.0.0.1:{}", run.port), &gw).await);
    }
    // Nothing needs k1 any more: without it the node starts and the login still works.
    let without_k1: String = keys
        .lines()
        .filter(|l| !l.starts_with("k1:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(data.join("encryption.keys"), without_k1).unwrap();
    let run = serve(&data, &[]).await;
    assert!(login_via(&format!("http://127.0.0.1:{}", run.port), &gw).await);
}

/// GETs `/event/outbox` from a running binary; returns `result.value`.
async fn outbox_of(c: &reqwest::Client, base: &str, jwt: &str, status: &str) -> serde_json::Value {
    let b: serde_json::Value = c
        .get(format!("{base}/event/outbox"))
        .header("Authorization", jwt)
        .query(&[("status", status)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    b["result"]["value"].clone()
}

#[tokio::test]
async fn notifications_pending_at_a_kill_9_are_delivered_once_after_the_restart() {
    use crate::support::{ADMIN_PW, Gateway, Mode, Server};
    let gw = Gateway::start().await;
    let notify = Gateway::start().await;
    notify.set_mode(Mode::Status(500));
    // Set up in-process on the data dir, then run the binary on it.
    let mut s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.http_gateway("notify", &notify.url("/notify"), &[]).await;
    s.ok(
        "/system/setConfig",
        &[
            ("event.outbox_retry_secs", "3"),
            ("sms.breaker_threshold", "0"),
        ],
    )
    .await;
    s.ok(
        "/event",
        &[
            ("name", "enrolled"),
            ("event", "token_init"),
            ("handlermodule", "UserNotification"),
            ("action", "sendsms"),
            ("option.smsconfig", "notify"),
            ("option.body", "enrolled {serial}"),
        ],
    )
    .await;
    s.stop().await;
    let data = s.dir.path().join("data");
    let c = client();
    let mut run = serve(&data, &[]).await;
    let base = format!("http://127.0.0.1:{}", run.port);
    let jwt = admin_jwt(&c, &base, ADMIN_PW).await;
    let serials = ["SMS1", "SMS2", "SMS3"];
    admin_posts(
        &c,
        &base,
        &jwt,
        serials
            .iter()
            .zip(["alice", "bob", "carol"])
            .map(|(serial, user)| {
                (
                    "/token/init",
                    vec![
                        ("type", "sms".to_owned()),
                        ("user", user.to_owned()),
                        ("serial", (*serial).to_owned()),
                        ("pin", "1234".to_owned()),
                        ("phone", "+4915100000009".to_owned()),
                    ],
                )
            })
            .collect(),
    )
    .await;
    // Every item failed once and waits for its retry: kill -9 now.
    let mut waited = 0;
    loop {
        let v = outbox_of(&c, &base, &jwt, "pending").await;
        let items = v["items"].as_array().unwrap();
        if items.len() == 3 && items.iter().all(|i| i["attempts"] == 1) {
            break;
        }
        waited += 1;
        assert!(waited < 400, "the first attempts did not happen: {v}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    run.child.kill().unwrap();
    run.child.wait().unwrap();
    assert_eq!(notify.count(), 3);
    notify.set_mode(Mode::Ok("ID 1"));

    let run = serve(&data, &[]).await;
    let base = format!("http://127.0.0.1:{}", run.port);
    let mut waited = 0;
    while outbox_of(&c, &base, &jwt, "sent").await["count"] != 3 {
        waited += 1;
        assert!(waited < 400, "not delivered after the restart");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Two more polls of the worker: nothing is sent twice.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let received = notify.received();
    assert_eq!(received.len(), 6, "3 failed attempts, 3 deliveries");
    let mut delivered: Vec<String> = received[3..]
        .iter()
        .map(|r| r.field("text").unwrap())
        .collect();
    delivered.sort();
    assert_eq!(
        delivered,
        ["enrolled SMS1", "enrolled SMS2", "enrolled SMS3"]
    );
}

/// Every SMS token's HOTP counter (`count`) by serial, through the API.
async fn counters(
    c: &reqwest::Client,
    base: &str,
    jwt: &str,
) -> std::collections::BTreeMap<String, i64> {
    let v: serde_json::Value = c
        .get(format!("{base}/token/?pagesize=100"))
        .header("Authorization", jwt)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["result"]["value"]["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["serial"].as_str().unwrap().to_owned(),
                t["count"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// What the burst tests start from: a stopped server's data directory holding `n` users
/// `{prefix}{i}` with PIN 1234 and an SMS token each (serial `{serial}{i:02}`, number
/// `{phone}{i:02}`), on `database_url` (None: SQLite), and a config file for the real binary
/// without the per-address limit (the bursts come from one address).
struct Burst {
    gw: crate::support::Gateway,
    users: Vec<(String, String)>,
    data: std::path::PathBuf,
    config: std::path::PathBuf,
    _server: crate::support::Server,
}

impl Burst {
    async fn new(n: usize, prefix: &str, serial: &str, phone: &str, url: Option<String>) -> Burst {
        let gw = crate::support::Gateway::start().await;
        let u = url.clone();
        let mut s = crate::support::Server::start_with(move |c| {
            if let Some(u) = u {
                c.server.database_url = u;
            }
        })
        .await;
        s.setup(&gw.url("/sms")).await;
        let users: Vec<(String, String)> = (0..n)
            .map(|i| (format!("{prefix}{i}"), format!("{phone}{i:02}")))
            .collect();
        for (i, (u, number)) in users.iter().enumerate() {
            s.ok(
                "/user/",
                &[("user", u), ("resolver", "local"), ("mobile", number)],
            )
            .await;
            s.enroll(u, &format!("{serial}{i:02}"), "1234", number)
                .await;
        }
        s.stop().await;
        let data = s.dir.path().join("data");
        let config = s.dir.path().join("otpgate.toml");
        let db = url
            .map(|u| format!("database_url = \"{u}\"\n"))
            .unwrap_or_default();
        std::fs::write(&config, format!("[server]\n{db}rate_limit_per_sec = 0.0\n")).unwrap();
        Burst {
            gw,
            users,
            data,
            config,
            _server: s,
        }
    }

    /// The environment that makes the binary read the config file.
    fn env(&self) -> [(&str, &str); 1] {
        [("OTPGATE_CONFIG", self.config.to_str().unwrap())]
    }
}

#[tokio::test]
async fn kill_9_during_a_burst_of_logins_corrupts_nothing_and_no_counter_goes_back() {
    use crate::support::{ADMIN_PW, otp_in};
    let burst = Burst::new(12, "u", "T", "+49151000001", None).await;
    let (gw, users, data) = (burst.gw.clone(), burst.users.clone(), burst.data.clone());
    let env = burst.env();
    let c = client();
    let mut run = serve(&data, &env).await;
    let base = format!("http://127.0.0.1:{}", run.port);
    let jwt = admin_jwt(&c, &base, ADMIN_PW).await;
    let before = counters(&c, &base, &jwt).await;
    assert_eq!(before.len(), 12);

    // Every user logs in again and again (PIN → SMS → OTP) until the server dies under them.
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = users
        .iter()
        .cloned()
        .map(|(user, phone)| {
            let (c, base, gw, done) = (c.clone(), base.clone(), gw.clone(), done.clone());
            tokio::spawn(async move {
                loop {
                    let step1 = c
                        .post(format!("{base}/validate/check"))
                        .form(&[("user", user.as_str()), ("pass", "1234")])
                        .send()
                        .await;
                    let Ok(Ok(b)) = (match step1 {
                        Ok(r) => Ok(r.json::<serde_json::Value>().await),
                        Err(e) => Err(e),
                    }) else {
                        return;
                    };
                    let Some(tid) = b["detail"]["transaction_id"].as_str() else {
                        panic!("{user}: {b}");
                    };
                    let otp = gw.last_otp(&phone);
                    let step2 = c
                        .post(format!("{base}/validate/check"))
                        .form(&[
                            ("user", user.as_str()),
                            ("transaction_id", tid),
                            ("pass", otp.as_str()),
                        ])
                        .send()
                        .await;
                    let Ok(Ok(b)) = (match step2 {
                        Ok(r) => Ok(r.json::<serde_json::Value>().await),
                        Err(e) => Err(e),
                    }) else {
                        return;
                    };
                    assert_eq!(b["result"]["value"], true, "{user}: {b}");
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            })
        })
        .collect();
    // Let the burst run, then kill -9 in the middle of it.
    while done.load(std::sync::atomic::Ordering::SeqCst) < 30 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    run.child.kill().unwrap();
    run.child.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let completed = done.load(std::sync::atomic::Ordering::SeqCst);

    // The database file is intact.
    {
        use sqlx::Connection;
        let mut db = sqlx::SqliteConnection::connect(&format!(
            "sqlite://{}",
            data.join("otpgate.sqlite").display()
        ))
        .await
        .unwrap();
        let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check")
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(check, "ok");
        db.close().await.unwrap();
    }
    let run = serve(&data, &env).await;
    let base = format!("http://127.0.0.1:{}", run.port);
    let after = counters(&c, &base, &jwt).await;
    assert_eq!(after.len(), 12, "every token is still there");
    let mut steps = 0;
    for (serial, n) in &before {
        let m = after[serial];
        assert!(m >= *n, "{serial}: counter went back from {n} to {m}");
        steps += m - n;
    }
    // Each completed login stepped a counter once; logins cut off may have stepped one more.
    assert!(
        steps >= i64::try_from(completed).unwrap(),
        "{steps} counter steps for {completed} completed logins"
    );
    // Every user can log in after the restart: tokens, counters and challenges are consistent.
    for (user, phone) in &users {
        let b: serde_json::Value = c
            .post(format!("{base}/validate/check"))
            .form(&[("user", user.as_str()), ("pass", "1234")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let tid = b["detail"]["transaction_id"].as_str().unwrap().to_owned();
        let otp = otp_in(&gw.last().field("text").unwrap());
        assert_eq!(gw.last().field("phone").as_deref(), Some(phone.as_str()));
        let b: serde_json::Value = c
            .post(format!("{base}/validate/check"))
            .form(&[
                ("user", user.as_str()),
                ("transaction_id", tid.as_str()),
                ("pass", otp.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(b["result"]["value"], true, "{user} after the restart: {b}");
    }
    eprintln!("kill -9 after {completed} completed logins: {steps} counter steps, database intact");
}

#[tokio::test]
async fn a_policy_set_that_locks_every_admin_out_is_refused_and_the_cli_undoes_one_made_elsewhere()
{
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let run = serve(&data, &[]).await;
    let base = format!("http://127.0.0.1:{}", run.port);
    let pw = std::fs::read_to_string(data.join("initial-admin-password")).unwrap();
    let c = client();
    let jwt = admin_jwt(&c, &base, pw.trim()).await;
    let post = |path: &str, form: Vec<(&'static str, &'static str)>| {
        c.post(format!("{base}{path}"))
            .header("Authorization", &jwt)
            .form(&form)
    };
    // A policy meant for a colleague would leave the only admin without the policy rights:
    // refused, with what to do instead.
    let r = post(
        "/policy/helpdesk",
        vec![
            ("scope", "admin"),
            ("action", "tokenlist, reset"),
            ("adminuser", "helpdesk"),
        ],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let b: serde_json::Value = r.json().await.unwrap();
    let msg = b["result"]["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("no administrator who may read and change policies"),
        "{msg}"
    );
    // With the policy rights kept for the admin, the colleague's policy is saved.
    for (name, action, adminuser) in [
        ("root", "policyread, policywrite, policydelete", "admin"),
        ("helpdesk", "tokenlist, reset", "helpdesk"),
    ] {
        let r = post(
            &format!("/policy/{name}"),
            vec![
                ("scope", "admin"),
                ("action", action),
                ("adminuser", adminuser),
            ],
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 200, "{name}");
    }
    // Taking them away again is refused too.
    let r = post("/policy/disable/root", vec![]).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // A set of policies made elsewhere (an import, an older version) that locks everyone out:
    // the command line is the way back, while the server runs.
    let store = otpgate_store::Store::connect(&format!(
        "sqlite://{}",
        data.join("otpgate.sqlite").display()
    ))
    .await
    .unwrap();
    store.policy_delete("root").await.unwrap();
    let r = c
        .get(format!("{base}/policy/"))
        .header("Authorization", &jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "locked out");
    // A restart says so in the log, and how to recover.
    drop(run);
    let log_path = tmp.path().join("stderr.log");
    let run = serve_logging_to(
        &data,
        &[],
        Stdio::from(std::fs::File::create(&log_path).unwrap()),
    )
    .await;
    let base = format!("http://127.0.0.1:{}", run.port);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("no administrator may read and change policies")
            && log.contains("otpgate policy disable NAME"),
        "{log}"
    );
    let list = run_ok(&data, &["policy", "list"]);
    assert!(
        list.contains("helpdesk\tscope=admin active=true priority=1 adminuser=helpdesk\taction=tokenlist, reset"),
        "{list}"
    );
    assert!(run_ok(&data, &["policy", "disable", "helpdesk"]).contains("policy helpdesk disabled"));
    assert!(run_ok(&data, &["policy", "list"]).contains("active=false"));
    let r = c
        .get(format!("{base}/policy/"))
        .header("Authorization", &jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "back in");
    assert!(run_ok(&data, &["policy", "delete", "helpdesk"]).contains("policy helpdesk deleted"));
    let out = bin()
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "policy",
            "delete",
            "helpdesk",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no policy helpdesk"));
    drop(run);
}

/// One step of a login against `base`: the answer, or None when the node is gone.
async fn check_on(
    c: &reqwest::Client,
    base: &str,
    form: &[(&str, &str)],
) -> Option<serde_json::Value> {
    let r = c
        .post(format!("{base}/validate/check"))
        .form(form)
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

/// Two real nodes on one PostgreSQL database, logins crossing between them (PIN on one, OTP on
/// the other), and one node `kill -9`ed in the middle: the other goes on serving everyone, a
/// challenge the dead node sent is answered on the survivor, and no counter went back.
#[tokio::test]
async fn kill_9_of_one_cluster_node_under_load_leaves_the_other_serving_everyone() {
    use crate::support::otp_in;
    let Ok(admin) = std::env::var(otpgate_store::testdb::ENV) else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must set the PostgreSQL URL"
        );
        return;
    };
    let url = otpgate_store::testdb::fresh_postgres(&admin).await.unwrap();
    let burst = Burst::new(9, "u", "K", "+49151000002", Some(url)).await;
    let (gw, mut users, data) = (burst.gw.clone(), burst.users.clone(), burst.data.clone());
    // The last one logs in only once, across the kill.
    let (zed, zed_phone) = users.pop().unwrap();
    let env = burst.env();
    let mut a = serve(&data, &env).await;
    let b = serve(&data, &env).await;
    let (base_a, base_b) = (
        format!("http://127.0.0.1:{}", a.port),
        format!("http://127.0.0.1:{}", b.port),
    );
    let c = client();
    let jwt = admin_jwt(&c, &base_b, crate::support::ADMIN_PW).await;
    let before = counters(&c, &base_b, &jwt).await;

    let a_dead = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let after_kill = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = users
        .iter()
        .cloned()
        .map(|(user, phone)| {
            let (c, gw) = (c.clone(), gw.clone());
            let (base_a, base_b) = (base_a.clone(), base_b.clone());
            let (a_dead, after_kill, done) = (a_dead.clone(), after_kill.clone(), done.clone());
            tokio::spawn(async move {
                let mut on_a = true;
                let mut mine_after_kill = 0;
                while mine_after_kill < 3 {
                    on_a = !on_a;
                    let dead = a_dead.load(std::sync::atomic::Ordering::SeqCst);
                    let (first, second) = if on_a && !dead {
                        (&base_a, &base_b)
                    } else if dead {
                        (&base_b, &base_b)
                    } else {
                        (&base_b, &base_a)
                    };
                    let Some(b) = check_on(&c, first, &[("user", &user), ("pass", "1234")]).await
                    else {
                        continue; // node A went away under this request
                    };
                    let Some(tid) = b["detail"]["transaction_id"].as_str() else {
                        panic!("{user}: {b}");
                    };
                    let otp = gw.last_otp(&phone);
                    let form = [
                        ("user", user.as_str()),
                        ("transaction_id", tid),
                        ("pass", &otp),
                    ];
                    // Node A died under the answer (it may have accepted it before it died):
                    // start over; the survivor's answer to A's challenges is tested below.
                    let Some(answer) = check_on(&c, second, &form).await else {
                        continue;
                    };
                    assert_eq!(answer["result"]["value"], true, "{user}: {answer}");
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if dead {
                        mine_after_kill += 1;
                        after_kill.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    while done.load(std::sync::atomic::Ordering::SeqCst) < 24 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A challenge node A sends just before it dies.
    let open = check_on(&c, &base_a, &[("user", &zed), ("pass", "1234")])
        .await
        .unwrap();
    let zed_tid = open["detail"]["transaction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let zed_otp = otp_in(
        &gw.received()
            .iter()
            .rev()
            .find(|m| m.field("phone").as_deref() == Some(zed_phone.as_str()))
            .unwrap()
            .field("text")
            .unwrap(),
    );
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    a_dead.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    assert!(after_kill.load(std::sync::atomic::Ordering::SeqCst) >= users.len() * 3);
    let after = counters(&c, &base_b, &jwt).await;
    for (serial, n) in &before {
        assert!(after[serial] >= *n, "{serial}: counter went back");
    }
    // Zed's challenge from the dead node is answered on the survivor.
    let answer = check_on(
        &c,
        &base_b,
        &[
            ("user", &zed),
            ("transaction_id", &zed_tid),
            ("pass", &zed_otp),
        ],
    )
    .await
    .unwrap();
    assert_eq!(answer["result"]["value"], true, "{answer}");
    let r = c.get(format!("{base_b}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    drop(b);
    eprintln!(
        "kill -9 of node A after {} logins; {} logins on node B afterwards",
        done.load(std::sync::atomic::Ordering::SeqCst),
        after_kill.load(std::sync::atomic::Ordering::SeqCst)
    );
}

/// `otpgate keys rotate` while a node serves a burst of logins: the node follows its key file
/// (a value sealed with a key it does not hold makes it read the file again), so no login
/// fails during or after the rotation, no restart is needed, and secrets the node seals
/// afterwards use the new key (before, every login after the rotation failed: the node could
/// not open the re-encrypted seeds).
#[tokio::test]
async fn keys_rotate_while_logins_run_breaks_no_login() {
    use crate::support::ADMIN_PW;
    let burst = Burst::new(6, "r", "R", "+49151000003", None).await;
    let (gw, users, data) = (burst.gw.clone(), burst.users.clone(), burst.data.clone());
    let config = burst.config.clone();
    let env = burst.env();
    let run = serve(&data, &env).await;
    let base = format!("http://127.0.0.1:{}", run.port);
    let c = client();

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = users
        .iter()
        .cloned()
        .map(|(user, phone)| {
            let (c, base, gw, stop, done) = (
                c.clone(),
                base.clone(),
                gw.clone(),
                stop.clone(),
                done.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let b = check_on(&c, &base, &[("user", &user), ("pass", "1234")])
                        .await
                        .unwrap();
                    let Some(tid) = b["detail"]["transaction_id"].as_str() else {
                        panic!("{user}: {b}");
                    };
                    let otp = gw.last_otp(&phone);
                    let form = [
                        ("user", user.as_str()),
                        ("transaction_id", tid),
                        ("pass", &otp),
                    ];
                    let b = check_on(&c, &base, &form).await.unwrap();
                    assert_eq!(b["result"]["value"], true, "{user}: {b}");
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            })
        })
        .collect();
    // Waits (bounded) until `n` logins are done; a failed login ends its task, so fewer
    // are done in time.
    let until = |n: usize| {
        let done = done.clone();
        async move {
            for _ in 0..3000 {
                if done.load(std::sync::atomic::Ordering::SeqCst) >= n {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            false
        }
    };
    assert!(until(12).await, "logins before the rotation");
    let data2 = data.clone();
    let rotated = tokio::task::spawn_blocking(move || {
        let out = bin()
            .args(["--config", config.to_str().unwrap(), "--data-dir"])
            .arg(&data2)
            .args(["keys", "rotate"])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    })
    .await
    .unwrap();
    assert!(rotated.0, "{}", rotated.1);
    assert!(rotated.1.contains("with the new key k2"), "{}", rotated.1);
    let at_rotation = done.load(std::sync::atomic::Ordering::SeqCst);
    let went_on = until(at_rotation + 24).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    assert!(went_on, "logins after the rotation");
    // A secret sealed now uses the new key.
    let jwt = admin_jwt(&c, &base, ADMIN_PW).await;
    admin_posts(
        &c,
        &base,
        &jwt,
        vec![(
            "/token/init",
            vec![
                ("type", "sms".to_owned()),
                ("user", "r0".to_owned()),
                ("serial", "NEWKEY".to_owned()),
                ("pin", "5678".to_owned()),
                ("phone", "+4915100000399".to_owned()),
            ],
        )],
    )
    .await;
    use sqlx::Connection;
    let mut db = sqlx::SqliteConnection::connect(&format!(
        "sqlite://{}",
        data.join("otpgate.sqlite").display()
    ))
    .await
    .unwrap();
    let (sealed,): (String,) = sqlx::query_as("SELECT key_enc FROM token WHERE serial = 'NEWKEY'")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert!(sealed.starts_with("v1:k2:"), "{sealed}");
    db.close().await.unwrap();
    eprintln!(
        "keys rotated after {at_rotation} logins; {} logins in all, none failed",
        done.load(std::sync::atomic::Ordering::SeqCst)
    );
}

/// `serve --listen localhost:PORT` (a host name was refused), the start-up line says which URL
/// to open, and a log that is no terminal gets no colour codes.
#[tokio::test]
async fn serve_listens_on_a_host_name_and_says_where_to_open_it_in_plain_text() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let log_path = tmp.path().join("stderr.log");
    let port = free_port();
    let mut child = bin()
        .args(["serve", "--listen", &format!("localhost:{port}")])
        .env("OTPGATE_DATA_DIR", &data)
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log_path).unwrap()))
        .spawn()
        .unwrap();
    let up = healthy_within(&format!("http://127.0.0.1:{port}")).await;
    sigterm(&child);
    let _ = child.wait();
    assert!(up, "serving on localhost:{port}");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains(&format!(
            "admins open http://localhost:{port}/ui/admin/login, users sign in at http://localhost:{port}/"
        )),
        "{log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "no colour codes in a log file: {log}"
    );
}

#[tokio::test]
async fn backup_while_serving_is_a_consistent_snapshot_that_restores_into_a_working_server() {
    use crate::support::{ADMIN_PW, Gateway, Server};
    use std::os::unix::fs::PermissionsExt;
    let gw = Gateway::start().await;
    let s = Server::start().await;
    s.setup(&gw.url("/sms")).await;
    s.enroll("alice", "SMS1", "1234", "+4915100000001").await;
    s.check(&[("user", "alice"), ("pass", "wrong")]).await;
    // Taken while the server runs and holds the database open.
    let data = s.dir.path().join("data");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("otpgate.backup.tar");
    let out = run_ok(&data, &["backup", file.to_str().unwrap()]);
    assert!(out.contains("backup written to"), "{out}");
    for name in ["otpgate.sqlite", "encryption.keys", "jwt.secret", "BACKUP"] {
        assert!(out.contains(&format!("{name}: ")), "{name}: {out}");
    }
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the backup holds the keys");
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "no working files left"
    );
    // A second failure after the backup is not in it.
    s.check(&[("user", "alice"), ("pass", "wrong")]).await;
    // Not of a directory that holds no installation (it would make one).
    let empty = tmp.path().join("empty");
    let none = bin()
        .args(["--data-dir", empty.to_str().unwrap(), "backup"])
        .arg(tmp.path().join("none.tar"))
        .output()
        .unwrap();
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("holds no otpgate installation"));
    assert!(!empty.exists(), "nothing made");
    // Never over an existing file.
    let again = bin()
        .args(["--data-dir", data.to_str().unwrap(), "backup"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));
    // Restored with the system's tar into an empty directory: a server that works.
    let restored = tmp.path().join("restored");
    std::fs::create_dir(&restored).unwrap();
    std::fs::set_permissions(&restored, std::fs::Permissions::from_mode(0o700)).unwrap();
    let st = Command::new("tar")
        .arg("-xf")
        .arg(&file)
        .arg("-C")
        .arg(&restored)
        .status()
        .unwrap();
    assert!(st.success());
    assert!(
        std::fs::read_to_string(restored.join("BACKUP"))
            .unwrap()
            .contains("consistent snapshot")
    );
    let run = serve(&restored, &[]).await;
    let base = format!("http://127.0.0.1:{}", run.port);
    let c = client();
    let jwt = admin_jwt(&c, &base, ADMIN_PW).await;
    let tokens = tokens_via(&c, &base, &jwt).await;
    assert_eq!(
        tokens["result"]["value"]["tokens"][0]["failcount"], 1,
        "the snapshot's state: {tokens}"
    );
    assert!(
        login_via(&base, &gw).await,
        "the restored keys open the seed"
    );
}

#[tokio::test]
async fn the_debian_package_installs_starts_and_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/package");
    let built = Command::new(&script)
        .arg(env!("CARGO_BIN_EXE_otpgate"))
        .env("OTPGATE_PACKAGE_DIR", &out)
        // The test's (debug) binary is big: a quick compression.
        .env("DPKG_DEB_COMPRESSOR_TYPE", "gzip")
        .env("DPKG_DEB_COMPRESSOR_LEVEL", "1")
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let deb = String::from_utf8_lossy(&built.stdout).trim().to_owned();
    assert!(
        deb.ends_with(".deb") && deb.contains("otpgate_0.1.0_"),
        "{deb}"
    );
    let info = Command::new("dpkg-deb")
        .args(["-f", &deb, "Depends"])
        .output()
        .unwrap();
    let depends = String::from_utf8_lossy(&info.stdout);
    assert!(
        depends.contains("libc6 (>= 2."),
        "the binary's glibc: {depends}"
    );
    // Installed with dpkg itself, into a root of its own (its maintainer scripts run; without
    // systemd they only say what they would do).
    let root = tmp.path().join("root");
    std::fs::create_dir_all(root.join("var/lib/dpkg/info")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg/updates")).unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    let dpkg = |args: &[&str]| {
        let o = Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .args([
                "--force-script-chrootless",
                "--force-depends",
                "--log=/dev/null",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "dpkg {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    dpkg(&["-i", &deb]);
    assert!(dpkg(&["-L", "otpgate"]).contains("/lib/systemd/system/otpgate.service"));
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/otpgate.service")).unwrap();
    for hardening in [
        "DynamicUser=yes",
        "StateDirectory=otpgate",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "ExecStart=/usr/bin/otpgate --config /etc/otpgate/otpgate.toml serve",
    ] {
        assert!(unit.contains(hardening), "{hardening}: {unit}");
    }
    // systemd reads the unit without a complaint (pointed at the installed binary).
    let checked = tmp.path().join("otpgate.service");
    let bin = root.join("usr/bin/otpgate");
    std::fs::write(
        &checked,
        unit.replace("/usr/bin/otpgate", bin.to_str().unwrap())
            .replace("/etc/otpgate", root.join("etc/otpgate").to_str().unwrap()),
    )
    .unwrap();
    if let Ok(v) = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&checked)
        .output()
    {
        assert!(
            v.status.success() && v.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&v.stderr)
        );
    }
    // The installed binary with the installed configuration (data and port of the test's own).
    let config = root.join("etc/otpgate/otpgate.toml");
    let check = Command::new(&bin)
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let port = free_port();
    let data = tmp.path().join("data");
    let mut child = Command::new(&bin)
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let healthy = healthy_within(&format!("http://127.0.0.1:{port}")).await;
    sigterm(&child);
    let _ = child.wait();
    assert!(healthy, "the installed otpgate serves");
    assert!(data.join("initial-admin-password").exists());
    // Removed again: the binary goes, the configuration (a conffile) stays until a purge.
    dpkg(&["-r", "otpgate"]);
    assert!(!bin.exists());
    assert!(config.exists());
    dpkg(&["-P", "otpgate"]);
    assert!(!config.exists());
}
