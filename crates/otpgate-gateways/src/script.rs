//! privacyIDEA's ScriptSMSProvider: runs `<scripts dir>/<script> <phone>` with the message on
//! standard input. Only plain file names inside the configured scripts directory are allowed
//! (no paths, no `..`), every run has a timeout, and `background` really returns at once.

use crate::{GatewayDef, SendError};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const DEFAULT_TIMEOUT: f64 = 10.0;
const MAX_TIMEOUT: f64 = 120.0;
/// `PATH` of the scripts' otherwise empty environment.
const SCRIPT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

pub(crate) struct ScriptProvider {
    dir: PathBuf,
    script: String,
    background: bool,
    timeout: Duration,
}

/// Checks the `script` option: a plain file name.
fn check_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if plain {
        Ok(())
    } else {
        Err("script must be a plain file name inside the scripts directory.".into())
    }
}

fn background(def: &GatewayDef) -> Result<bool, String> {
    match def
        .options
        .get("background")
        .map(|b| b.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("wait") => Ok(false),
        Some("background") => Ok(true),
        Some(_) => Err("background must be wait or background.".into()),
    }
}

fn timeout(def: &GatewayDef) -> Result<Duration, String> {
    crate::timeout_secs(def, DEFAULT_TIMEOUT, MAX_TIMEOUT).map(Duration::from_secs_f64)
}

/// Checks a Script gateway definition (when it is saved).
pub(crate) fn validate(def: &GatewayDef) -> Result<(), String> {
    let script = def
        .options
        .get("script")
        .map(|s| s.trim())
        .ok_or("The parameter script is required.")?;
    check_name(script)?;
    background(def)?;
    timeout(def)?;
    Ok(())
}

impl ScriptProvider {
    pub(crate) fn new(def: &GatewayDef, dir: PathBuf) -> Result<Self, SendError> {
        validate(def).map_err(SendError::Config)?;
        Ok(Self {
            dir,
            script: def
                .options
                .get("script")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            background: background(def).map_err(SendError::Config)?,
            timeout: timeout(def).map_err(SendError::Config)?,
        })
    }

    pub(crate) async fn send(&self, phone: &str, text: &str) -> Result<(), SendError> {
        if phone.starts_with('-') {
            // It would reach the script as an option, not as a number.
            return Err(SendError::Config(
                "The phone number must not start with '-'.".into(),
            ));
        }
        // An absolute path: a relative program path together with `current_dir` is resolved
        // differently across platforms.
        let path = tokio::fs::canonicalize(self.dir.join(&self.script))
            .await
            .map_err(|_| SendError::Script("Failed to start script for sending SMS.".into()))?;
        let mut command = Command::new(&path);
        // The script gets a clean environment: the server's (database URL, credentials) stays
        // with the server.
        command.env_clear().env("PATH", SCRIPT_PATH);
        for keep in ["LANG", "LC_ALL", "TZ"] {
            if let Some(v) = std::env::var_os(keep) {
                command.env(keep, v);
            }
        }
        let mut child = command
            .arg(phone)
            // Its own process group, so a timeout also ends what the script started.
            .process_group(0)
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|_| SendError::Script("Failed to start script for sending SMS.".into()))?;
        let group = child.id();
        let mut stdin = child.stdin.take();
        let text = text.as_bytes().to_vec();
        let limit = self.timeout;
        let run = async move {
            let work = async {
                if let Some(mut s) = stdin.take() {
                    // A script that does not read its input must not fail the send.
                    let _ = s.write_all(&text).await;
                    drop(s);
                }
                child.wait().await
            };
            // The timeout covers feeding the input too. At the timeout the whole process group
            // is killed: a `curl` the script started must not deliver late, after a backup
            // gateway already did.
            let result = tokio::time::timeout(limit, work).await;
            if result.is_err()
                && let Some(pid) = group.and_then(|g| i32::try_from(g).ok())
            {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            result
        };
        if self.background {
            // Returns at once; the script is reaped (or killed at its timeout) in the background.
            tokio::spawn(async move {
                if let Ok(Ok(status)) = run.await
                    && !status.success()
                {
                    tracing::warn!(status = %status, "background SMS script failed");
                }
            });
            return Ok(());
        }
        match run.await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(_)) | Ok(Err(_)) => Err(SendError::Script(
                "Error during execution of the script.".into(),
            )),
            Err(_) => Err(SendError::Timeout(format!(
                "{}",
                self.timeout.as_secs_f64()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(opts: &[(&str, &str)]) -> GatewayDef {
        crate::test_def("script", opts)
    }

    #[test]
    fn names_and_modes() {
        assert!(validate(&def(&[("script", "send.sh")])).is_ok());
        for bad in ["../send.sh", "/bin/sh", "sub/send.sh", ".hidden", ""] {
            assert!(validate(&def(&[("script", bad)])).is_err(), "{bad}");
        }
        assert!(validate(&def(&[])).is_err());
        assert!(validate(&def(&[("script", "a"), ("background", "later")])).is_err());
        assert!(validate(&def(&[("script", "a"), ("TIMEOUT", "500")])).is_err());
    }

    #[tokio::test]
    async fn a_phone_number_never_becomes_an_option() {
        let dir = std::env::temp_dir();
        let p = ScriptProvider::new(&def(&[("script", "any.sh")]), dir).unwrap();
        match p.send("-rf", "123456").await {
            Err(SendError::Config(m)) => assert!(m.contains("'-'"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
