//! privacyIDEA policies: parsing of the action string, matching by scope, realm, resolver,
//! user and client, and the evaluation rules (lowest priority number wins; different values
//! at the same priority are a conflict).

use crate::{Result, ServiceError, Services};
pub use otpgate_core::policy::{
    ActionValue, Policies, PolicyContext, SCOPES, client_matches, list, net_contains, parse_actions,
};
use otpgate_store::PolicyRow;
use serde_json::{Map, Value, json};

fn policy_not_found() -> ServiceError {
    ServiceError::NotFound("The requested policy could not be found.".into())
}

/// A policy in privacyIDEA's JSON shape.
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
        "check_all_resolvers": false, "conditions": [], "description": if p.description.is_empty() { Value::Null } else { json!(p.description) },
        "pinode": [], "time": "", "user_agents": [], "user_case_insensitive": false,
    })
}

impl Services {
    /// All policies (loaded per request; they are few).
    pub async fn policies(&self) -> Result<Policies> {
        Ok(self.settings().await?.policies.clone())
    }

    /// Refuses an admin action that admin policies do not allow.
    pub async fn require_admin_right(&self, admin: &str, action: &str) -> Result<()> {
        if self.policies().await?.admin_allows(admin, action) {
            Ok(())
        } else {
            Err(ServiceError::Policy(format!(
                "Admin actions are defined, but the action {action} is not allowed!"
            )))
        }
    }

    /// `GET /policy/[<name>]`: policies in privacyIDEA's shape, optionally by name or scope.
    pub async fn list_policies(&self, name: Option<&str>, scope: Option<&str>) -> Result<Value> {
        let rows = self.store().policy_list().await?;
        Ok(Value::Array(
            rows.iter()
                .filter(|p| name.is_none_or(|n| n == p.name) && scope.is_none_or(|s| s == p.scope))
                .map(policy_json)
                .collect(),
        ))
    }

    /// `DELETE /policy/<name>`: the deleted id.
    pub async fn delete_policy(&self, name: &str) -> Result<Value> {
        self.store()
            .policy_delete(name)
            .await?
            .map(|id| json!(id))
            .ok_or_else(policy_not_found)
    }

    /// `POST /policy/enable|disable/<name>`: the policy id.
    pub async fn set_policy_active(&self, name: &str, active: bool) -> Result<Value> {
        self.store()
            .policy_set_active(name, active)
            .await?
            .map(|id| json!(id))
            .ok_or_else(policy_not_found)
    }

    /// Warnings about a policy about to be saved: an `smstext` that cannot be rendered or
    /// needs several SMS (see [`otpgate_core::sms_text::warnings`]).
    pub fn policy_warnings(params: &crate::Params) -> Vec<String> {
        if params.get("scope").map(str::trim) != Some("authentication") {
            return Vec::new();
        }
        match parse_actions(params.get("action").unwrap_or_default()).remove("smstext") {
            Some(ActionValue::Value(v)) => {
                otpgate_core::sms_text::warnings(&otpgate_core::template::unescape_policy_text(&v))
            }
            _ => Vec::new(),
        }
    }

    /// `POST /policy/<name>`.
    pub async fn set_policy(&self, name: &str, params: &crate::Params) -> Result<Value> {
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' '));
        if !valid_name {
            return Err(ServiceError::Parameter(format!(
                "The name of the policy may only contain the characters a-zA-Z0-9_. and -: {name:?}"
            )));
        }
        let scope = params.required("scope")?.trim().to_owned();
        if !SCOPES.contains(&scope.as_str()) {
            return Err(ServiceError::Parameter(format!(
                "Invalid scope '{scope}' in policy '{name}'!"
            )));
        }
        let priority = params.int("priority")?.unwrap_or(1);
        if priority < 0 {
            return Err(ServiceError::Parameter(
                "priority must not be negative.".into(),
            ));
        }
        let get = |k: &str| params.get(k).unwrap_or_default().to_owned();
        let row = PolicyRow {
            id: 0,
            name: name.to_owned(),
            scope,
            action: get("action"),
            realm: get("realm"),
            resolver: get("resolver"),
            user: get("user"),
            client: get("client"),
            adminrealm: get("adminrealm"),
            adminuser: get("adminuser"),
            priority,
            active: params
                .get("active")
                .map(crate::params::is_true)
                .unwrap_or(true),
            description: get("description"),
        };
        let id = self.store().policy_upsert(&row).await?;
        Ok(json!({ format!("setPolicy {name}"): id }))
    }
}
