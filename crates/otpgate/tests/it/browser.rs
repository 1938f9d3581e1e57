//! The web interface in a real browser: starts otpgate on port 0 and runs
//! `tests/browser/e2e.test.mjs` (headless Debian Chromium driven by playwright-core) against
//! it. `scripts/browser-setup` installs Chromium and the Node packages; `.ci/run` and
//! `scripts/test` call it. Set `SCREENSHOT_DIR` to keep the pages as PNGs (the README's
//! screenshots come from `scripts/screenshots`).

use crate::support::{ADMIN_PW, Server};
use std::path::PathBuf;
use std::time::Duration;

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_interface_works_end_to_end_in_chromium() {
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").is_dir()
            && PathBuf::from("/usr/bin/chromium").exists(),
        "the browser tests need Chromium and playwright-core: run scripts/browser-setup"
    );
    let s = Server::start().await;
    // The story sends several SMS to one user within seconds; the send limits and the resend
    // cooldown have their own tests.
    s.ok(
        "/system/setConfig",
        &[
            ("sms.resend_cooldown_secs", "0"),
            ("sms.limit.user", "0"),
            ("sms.limit.phone", "0"),
        ],
    )
    .await;
    let sink = s
        .dir
        .path()
        .join("data")
        .join(otpgate_gateways::DEFAULT_SINK_FILE);
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg("--test")
        .arg("--test-reporter=spec")
        .arg("e2e.test.mjs")
        .current_dir(&dir)
        .env("BASE_URL", &s.base)
        .env("ADMIN_PASSWORD", ADMIN_PW)
        .env("SINK_FILE", &sink)
        .kill_on_drop(true);
    if std::env::var_os("SCREENSHOT_DIR").is_none() {
        cmd.env_remove("SCREENSHOT_DIR");
    }
    let out = tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .expect("the browser tests took longer than 3 minutes")
        .expect("node runs (Debian's nodejs)");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "browser tests failed:\n{report}");
    assert!(
        report.contains("pass 11") && report.contains("fail 0"),
        "{report}"
    );
}
