//! `/resolver`: user stores (passwd files, internal users, LDAP) with privacyIDEA's
//! parameters, the LDAP password censored; and the connection test.

use super::{ApiError, Pi, envelope};
use crate::params::Params;
use crate::state::App;
use axum::extract::{Path, State};
use axum::response::Response;
use otpgate_service::directory::ResolverTest;
use otpgate_service::realms::{ResolverInput, ResolverView};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The parameters of a resolver: every parameter but the request's own.
fn options(p: &Params) -> BTreeMap<String, String> {
    p.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "type" | "resolver" | "nonce"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `POST /resolver/<name>`'s parameters.
pub fn resolver_input(p: &Params) -> ResolverInput {
    ResolverInput {
        rtype: p.get("type").map(str::to_owned),
        options: options(p),
    }
}

fn resolver_json(r: &ResolverView) -> Value {
    json!({"resolvername": r.name, "type": r.rtype, "data": r.data, "censor_keys": r.censor_keys})
}

async fn list(
    app: &App,
    pi: &Pi,
    name: Option<String>,
    rtype: Option<String>,
) -> Result<Response, ApiError> {
    let list = pi
        .run(app, Some("resolverread"), None, move |s, _| {
            Box::pin(async move { s.list_resolvers(name.as_deref(), rtype.as_deref()).await })
        })
        .await?;
    let map: Map<String, Value> = list
        .iter()
        .map(|r| (r.name.clone(), resolver_json(r)))
        .collect();
    Ok(pi.reply(Value::Object(map)))
}

/// `GET /resolver/`.
pub async fn resolvers(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let rtype = pi.params.get_nonblank("type").map(str::to_owned);
    list(&app, &pi, None, rtype).await
}

/// `GET /resolver/<name>`.
pub async fn resolver(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    list(&app, &pi, Some(name), None).await
}

/// `POST /resolver/<name>`.
pub async fn save(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    let input = resolver_input(&pi.params);
    pi.answer(&app, Some("resolverwrite"), move |s, cx| {
        Box::pin(async move { s.save_resolver(&name, &input, cx).await })
    })
    .await
}

/// `POST /resolver/test`: privacyIDEA's "test resolver" (always 200; `value` says whether the
/// bind and search worked, `detail.description` what was found or went wrong).
pub async fn test(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let p = &pi.params;
    let input = ResolverTest {
        rtype: p.get("type").map(str::to_owned),
        resolver: p.get("resolver").map(str::to_owned),
        options: options(p),
    };
    let (ok, description) = pi
        .run(&app, Some("resolverwrite"), None, move |s, _| {
            Box::pin(async move { s.test_resolver(&input).await })
        })
        .await?;
    let mut detail = Map::new();
    detail.insert("description".into(), Value::from(description));
    Ok(envelope::ok(Value::from(ok), Some(detail), pi.nonce()))
}

/// `DELETE /resolver/<name>`.
pub async fn delete(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.answer(&app, Some("resolverdelete"), move |s, cx| {
        Box::pin(async move { s.delete_resolver(&name, cx).await })
    })
    .await
}
