//! Policies: the list, a policy's form, enabling, disabling and deleting it.

use super::super::html::{Out, U};
use super::super::page::see_other;
use super::super::request::{Web, WebError, WebResult};
use super::super::session::Session;
use super::super::view::policies as view;
use super::{Errors, Resource, Saved, actions_bar, no_such_action, page};
use crate::params::Params;
use axum::extract::Path;
use otpgate_service::ServiceError;
use otpgate_service::policy::PolicyInput;
use otpgate_store::PolicyRow;

/// `GET /ui/admin/policies`.
pub async fn list(web: Web) -> WebResult {
    let s = web.admin("policyread").await?;
    let policies = web.app.services.list_policies(None, None).await?;
    let mut b = Out::new();
    view::list(&mut b, &policies);
    Ok(page(&web, &s, "Policies", &[], b))
}

/// Policies as a [`Resource`] of the console.
pub struct Policies;

impl Resource for Policies {
    const BASE: &'static str = "/ui/admin/policies";
    const NOUN: &'static str = "Policy";
    const NEW_TITLE: &'static str = "New policy";
    const A_NOUN: &'static str = "a policy";
    const KEY_FIELD: &'static str = "name";
    const READ: &'static str = "policyread";
    const WRITE: &'static str = "policywrite";
    type Item = PolicyRow;

    async fn load(web: &Web, key: &str) -> Result<Option<PolicyRow>, WebError> {
        Ok(web
            .app
            .services
            .list_policies(Some(key), None)
            .await?
            .into_iter()
            .next())
    }

    fn not_found(key: &str) -> String {
        format!("There is no policy {key}.")
    }

    async fn body(
        _web: &Web,
        s: &Session,
        key: Option<&str>,
        item: Option<&PolicyRow>,
        form: &Params,
        errors: &Errors,
    ) -> Result<Out, WebError> {
        let mut b = Out::new();
        if let (Some(k), Some(p)) = (key, item) {
            let check = PolicyInput {
                scope: Some(p.scope.clone()),
                action: Some(view::action_text(p)),
                ..Default::default()
            };
            view::warnings(&mut b, &check.warnings());
            view::form(&mut b, s, Some(p), form, errors);
            actions_bar(
                &mut b,
                s,
                &format!("{}/{}", Self::BASE, U(k)),
                Some(p.active),
                &format!("the policy {k}"),
            );
        } else {
            view::form(&mut b, s, None, form, errors);
        }
        Ok(b)
    }

    async fn save(web: &Web, s: &Session, key: Option<&str>) -> Result<Saved, WebError> {
        let name = key.map_or_else(|| Self::new_key(web), str::to_owned);
        let f = &web.form;
        let v = |k: &str| Some(f.get(k).unwrap_or_default().trim().to_owned());
        let priority = match f.get("priority").unwrap_or_default().trim() {
            "" => Ok(1),
            p => p.parse::<i64>(),
        };
        let input = PolicyInput {
            scope: v("scope"),
            action: v("action"),
            realm: v("realm"),
            resolver: v("resolver"),
            user: v("user"),
            client: v("client"),
            adminuser: v("adminuser"),
            priority: priority.as_ref().ok().copied(),
            active: Some(f.flag("active")),
            time: v("time"),
            conditions: v("conditions"),
            check_all_resolvers: Some(f.flag("check_all_resolvers")),
            ..Default::default()
        };
        let n = name.clone();
        let bad_priority = priority.is_err();
        let r = web
            .run(web.admin_call(s), Some(Self::WRITE), move |svc, cx| {
                Box::pin(async move {
                    if n.is_empty() {
                        return Err(ServiceError::missing("name"));
                    }
                    if bad_priority {
                        return Err(ServiceError::Parameter(
                            "priority must be an integer.".into(),
                        ));
                    }
                    svc.set_policy(&n, &input, cx).await
                })
            })
            .await;
        Ok(match r {
            Ok(_) => Saved::Key(name),
            Err(e) => {
                let m = super::super::page::service_message(&e);
                let field = if name.is_empty() || m.contains("name") {
                    "name"
                } else if m.contains("scope") {
                    "scope"
                } else {
                    "action"
                };
                let field = if key.is_some() && field == "name" {
                    "action"
                } else {
                    field
                };
                Saved::refused(field, &e)
            }
        })
    }
}

/// `POST /ui/admin/policies/{name}/{enable|disable|delete}`.
pub async fn action(Path((name, action)): Path<(String, String)>, web: Web) -> WebResult {
    let right = match action.as_str() {
        "delete" => "policydelete",
        "enable" | "disable" => "policywrite",
        _ => return Err(no_such_action()),
    };
    let s = web.admin(right).await?;
    let (n, a) = (name.clone(), action.clone());
    web.run(web.admin_call(&s), Some(right), move |svc, cx| {
        Box::pin(async move {
            match a.as_str() {
                "delete" => svc.delete_policy(&n, cx).await,
                other => {
                    cx.audit.action_detail = format!("policy {n}: {other}");
                    svc.set_policy_active(&n, other == "enable").await
                }
            }
        })
    })
    .await?;
    if action == "delete" {
        return Ok(see_other("/ui/admin/policies?ok=deleted"));
    }
    Ok(see_other(&format!(
        "/ui/admin/policies/{}?ok=saved",
        U(&name)
    )))
}
