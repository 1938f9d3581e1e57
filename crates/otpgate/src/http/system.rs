//! `/system`: privacyIDEA's system configuration (`sms.*` and the other keys otpgate
//! honours).

use super::{ApiError, Pi};
use crate::state::App;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Map, Value, json};

/// `POST /system/setConfig`: `{key: "insert"|"update"}`.
pub async fn set_config(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let pairs: Vec<(String, String)> = pi
        .params
        .iter()
        .filter(|(k, _)| k.as_str() != "nonce")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let set = pi
        .run(&app, Some("configwrite"), None, move |s, cx| {
            Box::pin(async move { s.set_config(&pairs, cx).await })
        })
        .await?;
    let out: Map<String, Value> = set
        .into_iter()
        .map(|(k, inserted)| (k, json!(if inserted { "insert" } else { "update" })))
        .collect();
    Ok(pi.reply(Value::Object(out)))
}

async fn config(
    app: &App,
    pi: &Pi,
) -> Result<std::collections::BTreeMap<String, String>, ApiError> {
    Ok(pi
        .run(app, Some("configread"), None, |s, _| {
            Box::pin(s.config_map())
        })
        .await?)
}

/// `GET /system/`: every stored key.
pub async fn get_config(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let map: Map<String, Value> = config(&app, &pi)
        .await?
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    Ok(pi.reply(Value::Object(map)))
}

/// `GET /system/<key>`: the value or null.
pub async fn get_config_key(
    State(app): State<App>,
    Path(key): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    let v = config(&app, &pi)
        .await?
        .remove(&key)
        .map_or(Value::Null, Value::String);
    Ok(pi.reply(v))
}

/// `DELETE /system/<key>` (privacyIDEA's right `configdelete`).
pub async fn delete_config(
    State(app): State<App>,
    Path(key): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.answer(&app, Some("configdelete"), move |s, _| {
        Box::pin(async move { s.delete_config(&key).await })
    })
    .await
}
