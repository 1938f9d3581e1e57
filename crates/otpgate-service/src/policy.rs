//! privacyIDEA policies: parsing of the action string, matching by scope, realm, resolver,
//! user and client, and the evaluation rules (lowest priority number wins; different values
//! at the same priority are a conflict).

use crate::call::Scope;
use crate::{Result, ServiceError, Services};
pub use otpgate_core::policy::{
    ActionValue, Policies, PolicyContext, SCOPES, client_matches, list, net_contains, parse_actions,
};
use otpgate_store::PolicyRow;

/// The admin rights that keep policies manageable.
const POLICY_RIGHTS: &[&str] = &["policyread", "policywrite", "policydelete"];

fn policy_not_found() -> ServiceError {
    ServiceError::NotFound("The requested policy could not be found.".into())
}

/// `POST /policy/<name>`'s fields (None: empty, or the default).
#[derive(Debug, Clone, Default)]
pub struct PolicyInput {
    /// `scope`.
    pub scope: Option<String>,
    /// `action`: comma-separated actions (`name` or `name=value`).
    pub action: Option<String>,
    /// `realm`.
    pub realm: Option<String>,
    /// `resolver`.
    pub resolver: Option<String>,
    /// `user`.
    pub user: Option<String>,
    /// `client`.
    pub client: Option<String>,
    /// `adminrealm`.
    pub adminrealm: Option<String>,
    /// `adminuser`.
    pub adminuser: Option<String>,
    /// `priority` (default 1).
    pub priority: Option<i64>,
    /// `active` (default true).
    pub active: Option<bool>,
    /// `description`.
    pub description: Option<String>,
    /// `conditions` (privacyIDEA's extended conditions, a JSON list): not evaluated by
    /// otpgate, so a policy with any is refused rather than applied to everyone.
    pub conditions: Option<String>,
}

impl PolicyInput {
    /// What an admin should know about a policy about to be saved: an `smstext` that cannot
    /// be rendered or needs several SMS (see [`otpgate_core::sms_text::warnings`]).
    pub fn warnings(&self) -> Vec<String> {
        if self.scope.as_deref().map(str::trim) != Some("authentication") {
            return Vec::new();
        }
        match parse_actions(self.action.as_deref().unwrap_or_default()).remove("smstext") {
            Some(ActionValue::Value(v)) => {
                otpgate_core::sms_text::warnings(&otpgate_core::template::unescape_policy_text(&v))
            }
            _ => Vec::new(),
        }
    }
}

impl Services {
    /// All policies (loaded per request; they are few).
    pub async fn policies(&self) -> Result<Policies> {
        Ok(self.settings().await?.policies.clone())
    }

    /// Refuses an admin action that admin policies do not allow (for anyone).
    pub async fn require_admin_right(&self, admin: &str, action: &str) -> Result<()> {
        if self.policies().await?.admin_allows(admin, action) {
            Ok(())
        } else {
            Err(crate::call::not_allowed(action))
        }
    }

    /// `GET /policy/[<name>]`: policies, optionally by name or scope.
    pub async fn list_policies(
        &self,
        name: Option<&str>,
        scope: Option<&str>,
    ) -> Result<Vec<PolicyRow>> {
        Ok(self
            .store()
            .policy_list()
            .await?
            .into_iter()
            .filter(|p| name.is_none_or(|n| n == p.name) && scope.is_none_or(|s| s == p.scope))
            .collect())
    }

    /// `DELETE /policy/<name>`: the deleted id.
    pub async fn delete_policy(&self, name: &str, cx: &mut Scope) -> Result<i64> {
        cx.audit.action_detail = format!("policy {name}");
        let mut after = self.store().policy_list().await?;
        after.retain(|p| p.name != name);
        self.keep_a_policy_admin(after).await?;
        self.store()
            .policy_delete(name)
            .await?
            .ok_or_else(policy_not_found)
    }

    /// `POST /policy/enable|disable/<name>`: the policy id.
    pub async fn set_policy_active(&self, name: &str, active: bool) -> Result<i64> {
        let mut after = self.store().policy_list().await?;
        for p in after.iter_mut().filter(|p| p.name == name) {
            p.active = active;
        }
        self.keep_a_policy_admin(after).await?;
        self.store()
            .policy_set_active(name, active)
            .await?
            .ok_or_else(policy_not_found)
    }

    /// `POST /policy/<name>`: creates or replaces the policy; its id.
    pub async fn set_policy(&self, name: &str, input: &PolicyInput, cx: &mut Scope) -> Result<i64> {
        cx.audit.action_detail = format!("policy {name}");
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
        let scope = input
            .scope
            .as_deref()
            .ok_or_else(|| ServiceError::missing("scope"))?
            .trim()
            .to_owned();
        if !SCOPES.contains(&scope.as_str()) {
            return Err(ServiceError::Parameter(format!(
                "Invalid scope '{scope}' in policy '{name}'!"
            )));
        }
        let conditions = input
            .conditions
            .as_deref()
            .map(str::trim)
            .unwrap_or_default();
        if !matches!(conditions, "" | "[]") {
            return Err(ServiceError::Parameter(
                "Policy conditions are not evaluated by otpgate, so the policy would apply to \
                 everyone it matches. Leave them out and narrow the policy by realm, resolver, \
                 user or client instead."
                    .into(),
            ));
        }
        let priority = input.priority.unwrap_or(1);
        if priority < 0 {
            return Err(ServiceError::Parameter(
                "priority must not be negative.".into(),
            ));
        }
        let get = |v: &Option<String>| v.clone().unwrap_or_default();
        let row = PolicyRow {
            id: 0,
            name: name.to_owned(),
            scope,
            action: get(&input.action),
            realm: get(&input.realm),
            resolver: get(&input.resolver),
            user: get(&input.user),
            client: get(&input.client),
            adminrealm: get(&input.adminrealm),
            adminuser: get(&input.adminuser),
            priority,
            active: input.active.unwrap_or(true),
            description: get(&input.description),
        };
        let mut after = self.store().policy_list().await?;
        after.retain(|p| p.name != row.name);
        after.push(row.clone());
        self.keep_a_policy_admin(after).await?;
        Ok(self.store().policy_upsert(&row).await?)
    }

    /// Refuses a policy change after which no local admin could read and change policies any
    /// more (privacyIDEA's admin policies allow only what they list: one policy for a
    /// colleague would otherwise lock out every other admin, with no way back but the
    /// database). `otpgate policy list|disable|delete` on the command line is the way back
    /// from a set of policies made elsewhere (an import, an older version).
    async fn keep_a_policy_admin(&self, after: Vec<PolicyRow>) -> Result<()> {
        let admins = self.store().admin_names().await?;
        if admins.is_empty() {
            return Ok(());
        }
        let after = Policies::new(after);
        let keeps = |a: &String| {
            POLICY_RIGHTS
                .iter()
                .all(|right| after.admin_allows(a, right))
        };
        if admins.iter().any(keeps) {
            return Ok(());
        }
        Err(ServiceError::Parameter(format!(
            "This change would leave no administrator who may read and change policies ({}). \
             Give an administrator these rights in an admin policy first.",
            POLICY_RIGHTS.join(", ")
        )))
    }
}
