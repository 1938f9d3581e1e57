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

impl SinkProvider {
    pub(crate) fn new(def: &GatewayDef, data_dir: &Path) -> Self {
        let path = match def.options.get("FILE").filter(|f| !f.trim().is_empty()) {
            Some(f) => PathBuf::from(f.trim()),
            None => data_dir.join(DEFAULT_SINK_FILE),
        };
        Self {
            path,
            lock: tokio::sync::Mutex::new(()),
        }
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
