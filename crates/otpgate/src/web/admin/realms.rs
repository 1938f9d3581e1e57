//! Realms and user stores: the overview, a new internal user store, a new or changed realm,
//! making a realm the default and deleting it.

use super::super::html::Out;
use super::super::page::{see_other, service_message};
use super::super::request::{Web, WebResult};
use super::super::session::Session;
use super::super::view::realms as view;
use super::{Errors, no_such_action, page};
use axum::extract::Path;
use otpgate_service::realms::ResolverInput;

/// `GET /ui/admin/realms`.
pub async fn list(web: Web) -> WebResult {
    let s = web.admin("realmread").await?;
    realms_page(&web, &s, &Vec::new()).await
}

/// The page; after a refusal with what was typed (`web.form`).
async fn realms_page(web: &Web, s: &Session, errors: &Errors) -> WebResult {
    let services = &web.app.services;
    let realms = services.list_realms(false).await?;
    let resolvers = services.list_resolvers(None, None).await?;
    let mut b = Out::new();
    view::body(&mut b, s, &realms, &resolvers, &web.form, errors);
    Ok(page(web, s, "Realms and user stores", errors, b))
}

/// `POST /ui/admin/realms` (`kind=resolver|realm`).
pub async fn save(web: Web) -> WebResult {
    if web.form.get("kind") == Some("resolver") {
        let s = web.admin("resolverwrite").await?;
        let name = web
            .form
            .get("resolver_name")
            .unwrap_or_default()
            .trim()
            .to_owned();
        let input = ResolverInput {
            rtype: Some("internalresolver".into()),
            ..Default::default()
        };
        let r = web
            .run(web.admin_call(&s), Some("resolverwrite"), move |svc, cx| {
                Box::pin(async move { svc.save_resolver(&name, &input, cx).await })
            })
            .await;
        return match r {
            Ok(_) => Ok(see_other("/ui/admin/realms?ok=saved")),
            Err(e) => {
                realms_page(
                    &web,
                    &s,
                    &vec![("resolver_name".into(), service_message(&e))],
                )
                .await
            }
        };
    }
    let s = web.admin("realmwrite").await?;
    let name = web
        .form
        .get("realm_name")
        .unwrap_or_default()
        .trim()
        .to_owned();
    // Several checkboxes of one name: the form parser keeps them comma-joined.
    let resolvers: Vec<(String, Option<i64>)> = web
        .form
        .get("resolvers")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| (r.to_owned(), None))
        .collect();
    let make_default = web.form.flag("default");
    if resolvers.is_empty() {
        return realms_page(
            &web,
            &s,
            &vec![(
                "resolvers".into(),
                "Choose at least one user store: a realm without one has no users.".into(),
            )],
        )
        .await;
    }
    let first = web.app.services.realm_names().await?.is_empty();
    let r = web
        .run(web.admin_call(&s), Some("realmwrite"), move |svc, cx| {
            Box::pin(async move {
                svc.save_realm(&name, &resolvers, cx).await?;
                if make_default {
                    svc.set_default_realm(&name, cx).await?;
                }
                Ok(())
            })
        })
        .await;
    match r {
        // The first realm is the default without asking (privacyIDEA's rule): say so.
        Ok(()) if first && !make_default => Ok(see_other("/ui/admin/realms?ok=realm-default")),
        Ok(()) => Ok(see_other("/ui/admin/realms?ok=realm")),
        Err(e) => realms_page(&web, &s, &vec![("realm_name".into(), service_message(&e))]).await,
    }
}

/// `POST /ui/admin/realms/{name}/{default|delete}`.
pub async fn action(Path((name, action)): Path<(String, String)>, web: Web) -> WebResult {
    let right = match action.as_str() {
        "default" => "realmwrite",
        "delete" => "realmdelete",
        _ => return Err(no_such_action()),
    };
    let s = web.admin(right).await?;
    let delete = action == "delete";
    web.run(web.admin_call(&s), Some(right), move |svc, cx| {
        Box::pin(async move {
            if delete {
                svc.delete_realm(&name, cx).await
            } else {
                svc.set_default_realm(&name, cx).await
            }
        })
    })
    .await?;
    let done = if delete { "deleted" } else { "realm" };
    Ok(see_other(&format!("/ui/admin/realms?ok={done}")))
}
