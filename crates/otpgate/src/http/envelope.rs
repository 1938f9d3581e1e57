//! privacyIDEA's JSON envelopes: `{"jsonrpc","result":{"status","value"[,"authentication"]},
//! "version","versionnumber","id","time"[,"detail"]}` and the error form, with
//! `Cache-Control: no-store`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use otpgate_service::ServiceError;
use otpgate_service::call::Authentication;
use serde_json::{Map, Value, json};

/// The `version` string: privacyIDEA's API level and otpgate's own version.
pub const VERSION: &str = concat!("privacyIDEA 3.14 API, otpgate ", env!("CARGO_PKG_VERSION"));
/// The `versionnumber` clients may compare against.
pub const VERSION_NUMBER: &str = "3.14";

#[allow(clippy::disallowed_methods)]
fn now_f64() -> f64 {
    // Only the informational `time` field of the envelope; logic never reads it.
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// A time (ms) as privacyIDEA's audit shows it: UTC, ISO 8601 with microseconds.
pub fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
        .unwrap_or_default()
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, serde_json::to_vec(body).unwrap_or_default()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn thread_id() -> u64 {
    u64::from(std::process::id())
}

fn with_detail(
    mut body: Map<String, Value>,
    detail: Option<Map<String, Value>>,
    nonce: Option<&str>,
) -> Value {
    if let Some(mut d) = detail.filter(|d| !d.is_empty()) {
        d.insert("threadid".into(), json!(thread_id()));
        body.insert("detail".into(), Value::Object(d));
    }
    if let Some(n) = nonce {
        body.insert("nonce".into(), json!(n));
    }
    Value::Object(body)
}

/// A success answer (`id: 1`, no `authentication`).
pub fn ok(value: Value, detail: Option<Map<String, Value>>, nonce: Option<&str>) -> Response {
    let mut body = Map::new();
    body.insert("jsonrpc".into(), json!("2.0"));
    body.insert("result".into(), json!({"status": true, "value": value}));
    body.insert("version".into(), json!(VERSION));
    body.insert("versionnumber".into(), json!(VERSION_NUMBER));
    body.insert("id".into(), json!(1));
    body.insert("time".into(), json!(now_f64()));
    json_response(StatusCode::OK, &with_detail(body, detail, nonce))
}

/// An authentication answer (`id: 2`, with `authentication`).
pub fn auth(
    value: Value,
    authentication: Authentication,
    detail: Map<String, Value>,
    nonce: Option<&str>,
) -> Response {
    let mut body = Map::new();
    body.insert("jsonrpc".into(), json!("2.0"));
    body.insert(
        "result".into(),
        json!({"status": true, "value": value, "authentication": authentication.as_str()}),
    );
    body.insert("version".into(), json!(VERSION));
    body.insert("versionnumber".into(), json!(VERSION_NUMBER));
    body.insert("id".into(), json!(2));
    body.insert("time".into(), json!(now_f64()));
    json_response(StatusCode::OK, &with_detail(body, Some(detail), nonce))
}

/// An error answer in privacyIDEA's envelope.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: i64,
    message: String,
    detail: Value,
}

impl ApiError {
    /// An error with an explicit status and code.
    pub fn status(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            detail: Value::Null,
        }
    }

    /// A parameter error (905).
    pub fn parameter(message: impl Into<String>) -> Self {
        Self::status(
            StatusCode::BAD_REQUEST,
            905,
            format!("ERR905: {}", message.into()),
        )
    }

    /// A server-side failure; the cause is logged, not shown.
    pub fn internal(cause: &str) -> Self {
        tracing::error!(cause, "internal error");
        Self::status(
            StatusCode::INTERNAL_SERVER_ERROR,
            -500,
            "500 Internal Server Error: The server encountered an internal error and was unable to complete your request.",
        )
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Internal(cause) => Self::internal(&cause),
            ServiceError::SendFailed => Self::status(
                StatusCode::INTERNAL_SERVER_ERROR,
                -500,
                "500 Internal Server Error: The SMS could not be sent.",
            ),
            other => {
                let status =
                    StatusCode::from_u16(other.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
                let detail = if matches!(other, ServiceError::Auth { .. }) {
                    json!({})
                } else {
                    Value::Null
                };
                Self {
                    status,
                    code: other.code(),
                    message: other.to_string(),
                    detail,
                }
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "jsonrpc": "2.0", "detail": self.detail,
            "result": {"status": false, "error": {"code": self.code, "message": self.message}},
            "version": VERSION, "id": 1, "time": now_f64(),
        });
        let mut r = json_response(self.status, &body);
        r.extensions_mut()
            .insert(crate::request::Refusal(self.message.to_string()));
        r
    }
}
