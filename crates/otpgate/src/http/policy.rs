//! `/policy`: privacyIDEA's policies.

use super::{ApiError, Pi};
use crate::params::{Params, is_true};
use crate::state::App;
use axum::extract::{Path, State};
use axum::response::Response;
use otpgate_core::policy::condition::conditions_json;
use otpgate_service::ServiceError;
use otpgate_service::policy::{ActionValue, PolicyInput, list, parse_actions};
use otpgate_store::PolicyRow;
use serde_json::{Map, Value, json};

/// `POST /policy/<name>`'s parameters.
pub fn policy_input(p: &Params) -> Result<PolicyInput, ServiceError> {
    let s = |k: &str| p.get(k).map(str::to_owned);
    Ok(PolicyInput {
        scope: s("scope"),
        action: s("action"),
        realm: s("realm"),
        resolver: s("resolver"),
        user: s("user"),
        client: s("client"),
        adminrealm: s("adminrealm"),
        adminuser: s("adminuser"),
        priority: p.int("priority")?,
        active: p.get("active").map(is_true),
        description: s("description"),
        conditions: s("conditions"),
        time: s("time"),
        check_all_resolvers: p.get("check_all_resolvers").map(is_true),
        user_agents: p.list("user_agents").map(|l| l.join(", ")),
        user_case_insensitive: p.get("user_case_insensitive").map(is_true),
        pinode: p.list("pinode").map(|l| l.join(", ")),
    })
}

/// A policy in privacyIDEA's shape.
pub fn policy_json(p: &PolicyRow) -> Value {
    let actions: Map<String, Value> = parse_actions(&p.action)
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                ActionValue::Flag => Value::Bool(true),
                ActionValue::Value(s) => Value::String(s),
            };
            (k, v)
        })
        .collect();
    json!({
        "name": p.name, "scope": p.scope, "action": actions, "active": p.active, "priority": p.priority,
        "realm": list(&p.realm), "resolver": list(&p.resolver), "user": list(&p.user), "client": list(&p.client),
        "adminrealm": list(&p.adminrealm), "adminuser": list(&p.adminuser),
        "check_all_resolvers": p.check_all_resolvers, "conditions": conditions_json(&p.conditions),
        "description": if p.description.is_empty() { Value::Null } else { json!(p.description) },
        "pinode": [], "time": p.time, "user_agents": list(&p.user_agents),
        "user_case_insensitive": p.user_case_insensitive,
    })
}

async fn listed(
    app: &App,
    pi: &Pi,
    name: Option<String>,
    scope: Option<String>,
) -> Result<Response, ApiError> {
    let list = pi
        .run(app, Some("policyread"), None, move |s, _| {
            Box::pin(async move { s.list_policies(name.as_deref(), scope.as_deref()).await })
        })
        .await?;
    Ok(pi.reply(list.iter().map(policy_json).collect()))
}

/// `GET /policy/`.
pub async fn policies(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let name = pi.params.get_nonblank("name").map(str::to_owned);
    let scope = pi.params.get_nonblank("scope").map(str::to_owned);
    listed(&app, &pi, name, scope).await
}

/// `GET /policy/<name>`.
pub async fn policy(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    listed(&app, &pi, Some(name), None).await
}

/// `POST /policy/<name>`: `{"setPolicy <name>": id}`; `detail.warnings` says what an SMS
/// text it sets will cost.
pub async fn save(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    let p = pi.params.clone();
    let n = name.clone();
    let (id, warnings) = pi
        .run(&app, Some("policywrite"), None, move |s, cx| {
            Box::pin(async move {
                let input = policy_input(&p)?;
                let id = s.set_policy(&n, &input, cx).await?;
                Ok((id, input.warnings()))
            })
        })
        .await?;
    Ok(pi.reply_warned(json!({ format!("setPolicy {name}"): id }), warnings))
}

/// `DELETE /policy/<name>`.
pub async fn delete(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.answer(&app, Some("policydelete"), move |s, cx| {
        Box::pin(async move { s.delete_policy(&name, cx).await })
    })
    .await
}

async fn set_active(app: &App, name: String, pi: &Pi, active: bool) -> Result<Response, ApiError> {
    pi.answer(app, Some("policywrite"), move |s, _| {
        Box::pin(async move { s.set_policy_active(&name, active).await })
    })
    .await
}

/// `POST /policy/enable/<name>`.
pub async fn enable(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    set_active(&app, name, &pi, true).await
}

/// `POST /policy/disable/<name>`.
pub async fn disable(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    set_active(&app, name, &pi, false).await
}
