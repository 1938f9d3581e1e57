//! `/realm` and `/defaultrealm`.

use super::{ApiError, Pi};
use crate::params::Params;
use crate::state::App;
use axum::extract::{Path, State};
use axum::response::Response;
use otpgate_service::ServiceError;
use otpgate_service::realms::RealmView;
use serde_json::{Map, Value, json};

/// `POST /realm/<name>`'s resolvers: `resolvers=a,b` (or `resolver`), each with its
/// `priority.<resolver>`.
pub fn realm_resolvers(p: &Params) -> Result<Vec<(String, Option<i64>)>, ServiceError> {
    let wanted = p.get("resolvers").or(p.get("resolver")).unwrap_or_default();
    let mut out: Vec<(String, Option<i64>)> = Vec::new();
    for r in wanted.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        if !out.iter().any(|(n, _)| n == r) {
            out.push((r.to_owned(), p.int(&format!("priority.{r}"))?));
        }
    }
    Ok(out)
}

fn realms_json(realms: &[RealmView]) -> Value {
    let map: Map<String, Value> = realms
        .iter()
        .map(|r| {
            let resolvers: Vec<Value> = r
                .resolvers
                .iter()
                .map(|(name, prio, ty)| json!({"name": name, "priority": prio, "type": ty, "node": ""}))
                .collect();
            (
                r.name.clone(),
                json!({"default": r.default, "id": r.id, "resolver": resolvers}),
            )
        })
        .collect();
    Value::Object(map)
}

async fn list(app: &App, pi: &Pi, only_default: bool) -> Result<Response, ApiError> {
    let realms = pi
        .run(app, Some("realmread"), None, move |s, _| {
            Box::pin(s.list_realms(only_default))
        })
        .await?;
    Ok(pi.reply(realms_json(&realms)))
}

/// `GET /realm/`.
pub async fn realms(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    list(&app, &pi, false).await
}

/// `GET /defaultrealm`.
pub async fn default_realm(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    list(&app, &pi, true).await
}

/// `GET /realm/superuser`: otpgate has no superuser realms (admins are local).
pub async fn superuser_realms(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.run(&app, Some("realmread"), None, |_, _| {
        Box::pin(async { Ok(()) })
    })
    .await?;
    Ok(pi.reply(json!([])))
}

/// `POST /realm/<name>`: the resolvers added and those that do not exist.
pub async fn save(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    let p = pi.params.clone();
    let saved = pi
        .run(&app, Some("realmwrite"), None, move |s, cx| {
            Box::pin(async move { s.save_realm(&name, &realm_resolvers(&p)?, cx).await })
        })
        .await?;
    Ok(pi.reply(json!({"added": saved.added, "failed": saved.failed})))
}

/// `DELETE /realm/<name>`.
pub async fn delete(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.answer(&app, Some("realmdelete"), move |s, cx| {
        Box::pin(async move { s.delete_realm(&name, cx).await })
    })
    .await
}

/// `POST /defaultrealm/<name>`.
pub async fn set_default(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.answer(&app, Some("realmwrite"), move |s, cx| {
        Box::pin(async move { s.set_default_realm(&name, cx).await })
    })
    .await
}

/// `DELETE /defaultrealm`.
pub async fn clear_default(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.answer(&app, Some("realmwrite"), |s, _| {
        Box::pin(s.clear_default_realm())
    })
    .await
}
