//! What the HTTP-based providers (HTTP, Sipgate) share about their transport: how a failed
//! request is reported without leaking its URL or payload.

use crate::SendError;

/// A reason without the URL (its query may hold API keys) or any payload.
pub(crate) fn classify(e: &reqwest::Error, timeout_label: &str) -> SendError {
    if e.is_timeout() {
        return SendError::Timeout(timeout_label.to_owned());
    }
    let mut reason = if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let msg = s.to_string();
        if msg.contains("certificate")
            || msg.contains("Connection refused")
            || msg.contains("dns")
            || msg.contains("proxy")
        {
            reason = msg;
        }
        src = s.source();
    }
    SendError::Connect(reason)
}
