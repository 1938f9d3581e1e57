//! The real binary: the process contract of SPEC §4.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_otpgate"));
    c.env_remove("OTPGATE_CONFIG")
        .env_remove("OTPGATE_DATA_DIR")
        .env_remove("OTPGATE_DATABASE_URL")
        .env_remove("OTPGATE_LISTEN");
    c
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
    let port = free_port();
    let mut cmd = bin();
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("OTPGATE_DATA_DIR", data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
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
    // A second start keeps the admin and prints nothing.
    let run2 = serve(&data, &[]).await;
    assert_eq!(run2.first_line, "", "the password is printed only once");
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
    let out = bin()
        .args(["--config", "/no/such/file.toml", "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
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
