//! The `sink` provider: appends each message as a JSON line to a file. For trying otpgate
//! without an SMS account and for demos; it never writes the message to the log.

use crate::{GatewayDef, SendError};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

pub(crate) struct SinkProvider {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

/// The default sink file name inside the data directory.
pub const DEFAULT_SINK_FILE: &str = "sink-sms.jsonl";

/// Files of the data directory a sink must never write to.
const RESERVED: &[&str] = &["encryption.keys", "jwt.secret", "initial-admin-password"];

/// Checks the `FILE` option: a plain file name (kept in the data directory), never one of
/// otpgate's own files.
pub(crate) fn check_file_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !plain {
        return Err(
            "FILE must be a plain file name (letters, digits, . _ -); it is kept in the data directory.".into(),
        );
    }
    if RESERVED.contains(&name) || name.starts_with("otpgate.sqlite") {
        return Err(format!("FILE may not be otpgate's own file {name}."));
    }
    Ok(())
}

impl SinkProvider {
    pub(crate) fn new(def: &GatewayDef, data_dir: &Path) -> Result<Self, SendError> {
        let name = def
            .options
            .get("FILE")
            .map(|f| f.trim())
            .filter(|f| !f.is_empty())
            .unwrap_or(DEFAULT_SINK_FILE);
        check_file_name(name).map_err(SendError::Config)?;
        Ok(Self {
            path: data_dir.join(name),
            lock: tokio::sync::Mutex::new(()),
        })
    }

    pub(crate) async fn send(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        gateway: &str,
        phone: &str,
        text: &str,
    ) -> Result<(), SendError> {
        let line = serde_json::json!({
            "time": now.to_rfc3339(),
            "gateway": gateway,
            "phone": phone,
            "text": text,
        });
        let mut bytes = serde_json::to_vec(&line).map_err(|e| SendError::Io(e.to_string()))?;
        bytes.push(b'\n');
        let _guard = self.lock.lock().await;
        if tokio::fs::symlink_metadata(&self.path)
            .await
            .is_ok_and(|m| !m.file_type().is_file())
        {
            return Err(SendError::Io("the sink path is not a regular file".into()));
        }
        let mut f = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .await
            .map_err(|e| SendError::Io(e.kind().to_string()))?;
        f.write_all(&bytes)
            .await
            .map_err(|e| SendError::Io(e.kind().to_string()))?;
        f.flush()
            .await
            .map_err(|e| SendError::Io(e.kind().to_string()))
    }
}
