//! Users: the users of a realm, and internal users (create, delete).

use super::super::html::{E, Out, U, w};
use super::super::page::{see_other, service_message};
use super::super::request::{Web, WebResult};
use super::super::session::Session;
use super::super::view::users as view;
use super::{Errors, no_such_action, page};
use crate::params::Params;
use axum::extract::Path;
use otpgate_service::users::{UserInput, UserQuery};

/// `GET /ui/admin/users?realm=&username=`.
pub async fn list(web: Web) -> WebResult {
    let s = web.admin("userlist").await?;
    users_page(&web, &s, &Vec::new(), &Params::new()).await
}

async fn users_page(web: &Web, s: &Session, errors: &Errors, f: &Params) -> WebResult {
    let services = &web.app.services;
    let realms = services.realm_names().await?;
    let realm = web
        .query
        .get_nonblank("realm")
        .map(str::to_owned)
        .or_else(|| realms.first().cloned())
        .unwrap_or_default();
    let username = web.query.get("username").unwrap_or_default().to_owned();
    let mut b = Out::new();
    if realms.is_empty() {
        b.raw("<p class=\"empty\">There is no realm yet. <a href=\"/ui/admin/realms\">Create a user store and a realm</a> first.</p>");
        return Ok(page(web, s, "Users", errors, b));
    }
    view::filters(&mut b, &realms, &realm, &username);
    let internal: Vec<String> = services
        .list_resolvers(None, Some("internalresolver"))
        .await?
        .into_iter()
        .map(|r| r.name)
        .collect();
    let query = UserQuery {
        realm: Some(realm.clone()),
        username: Some(username.clone()).filter(|u| !u.is_empty()),
        resolver: None,
    };
    let reach = services
        .policies()
        .await?
        .admin_reach(&s.username, "userlist");
    match services.list_users(&query, &reach).await {
        Ok(users) => view::list(&mut b, s, &realm, &users, &internal),
        Err(e) => {
            w!(b, "<p class=\"error\">{}</p>", E(&service_message(&e)));
        }
    }
    view::new_user(&mut b, s, &realm, &internal, f, errors);
    Ok(page(web, s, "Users", errors, b))
}

/// `POST /ui/admin/users`: a new internal user.
pub async fn create(web: Web) -> WebResult {
    let s = web.admin("adduser").await?;
    let f = &web.form;
    let v = |k: &str| f.get_nonblank(k).map(str::to_owned);
    let input = UserInput {
        login: v("user"),
        resolver: v("resolver"),
        password: v("password"),
        givenname: v("givenname"),
        surname: v("surname"),
        email: v("email"),
        mobile: v("mobile"),
        phone: None,
        description: None,
    };
    let r = web
        .run(web.admin_call(&s), Some("adduser"), move |svc, cx| {
            Box::pin(async move { svc.create_user(&input, cx).await })
        })
        .await;
    match r {
        Ok(_) => {
            let realm = web.form.get("realm").unwrap_or_default();
            Ok(see_other(&format!(
                "/ui/admin/users?realm={}&ok=user",
                U(realm)
            )))
        }
        // At the field the refusal names (else with the user name).
        Err(e) => {
            let form = web.form.clone();
            let at = e.field().unwrap_or("user");
            users_page(&web, &s, &vec![(at.to_owned(), service_message(&e))], &form).await
        }
    }
}

/// `POST /ui/admin/users/{resolver}/{name}/delete?realm=`: deletes an internal user.
pub async fn delete(
    Path((resolver, name, action)): Path<(String, String, String)>,
    web: Web,
) -> WebResult {
    if action != "delete" {
        return Err(no_such_action());
    }
    let s = web.admin("deleteuser").await?;
    web.run(web.admin_call(&s), Some("deleteuser"), move |svc, cx| {
        Box::pin(async move { svc.delete_user(&resolver, &name, cx).await })
    })
    .await?;
    let realm = web.query.get("realm").unwrap_or_default();
    Ok(see_other(&format!(
        "/ui/admin/users?realm={}&ok=deleted",
        U(realm)
    )))
}

/// The internal user `name` of `resolver`, found in `realm`, when the admin `s` may change
/// users there (`updateuser` reaches them); "no such user" otherwise.
async fn internal_user(
    web: &Web,
    s: &Session,
    resolver: &str,
    name: &str,
    realm: &str,
) -> Result<otpgate_service::users::User, super::super::request::WebError> {
    let reach = web
        .app
        .services
        .policies()
        .await?
        .admin_reach(&s.username, "updateuser");
    web.app
        .services
        .find_user(name, realm)
        .await?
        .filter(|u| u.resolver == resolver && u.resolver_type == "internalresolver")
        .filter(|u| {
            reach.covers(&otpgate_core::reach::Target {
                realm: Some(&u.realm),
                resolver: Some(&u.resolver),
                user: Some(&u.login),
                token_realms: &[],
            })
        })
        .ok_or_else(|| {
            super::super::request::WebError::Page(
                axum::http::StatusCode::NOT_FOUND,
                format!("There is no user {name} in the user store {resolver}."),
            )
        })
}

/// `GET /ui/admin/users/{resolver}/{name}?realm=`: an internal user's page.
pub async fn edit_form(Path((resolver, name)): Path<(String, String)>, web: Web) -> WebResult {
    let s = web.admin("updateuser").await?;
    let realm = web.query.get("realm").unwrap_or_default().to_owned();
    let u = internal_user(&web, &s, &resolver, &name, &realm).await?;
    let mut b = Out::new();
    view::edit_user(&mut b, &s, &u, &realm, &Params::new(), &Vec::new());
    Ok(page(&web, &s, &format!("User {name}"), &[], b))
}

/// `POST /ui/admin/users/{resolver}/{name}?realm=`: saves the user (`PUT /user`'s call).
pub async fn edit(Path((resolver, name)): Path<(String, String)>, web: Web) -> WebResult {
    let s = web.admin("updateuser").await?;
    let realm = web.query.get("realm").unwrap_or_default().to_owned();
    let u = internal_user(&web, &s, &resolver, &name, &realm).await?;
    let f = &web.form;
    let field = |k: &str| Some(f.get(k).unwrap_or_default().trim().to_owned());
    let input = UserInput {
        login: Some(name.clone()),
        resolver: Some(resolver.clone()),
        password: f.get_nonblank("password").map(str::to_owned),
        givenname: field("givenname"),
        surname: field("surname"),
        email: field("email"),
        mobile: field("mobile"),
        phone: None,
        description: None,
    };
    let r = web
        .run(web.admin_call(&s), Some("updateuser"), move |svc, cx| {
            Box::pin(async move { svc.update_user(&input, cx).await })
        })
        .await;
    match r {
        Ok(_) => Ok(see_other(&format!(
            "/ui/admin/users?realm={}&ok=saved",
            U(&realm)
        ))),
        // At the field the refusal names (the name is fixed here: else with the first field).
        Err(e) => {
            let at = e.field().filter(|f| *f != "user").unwrap_or("givenname");
            let errors = vec![(at.to_owned(), service_message(&e))];
            let mut b = Out::new();
            view::edit_user(&mut b, &s, &u, &realm, &web.form, &errors);
            Ok(page(&web, &s, &format!("User {name}"), &errors, b))
        }
    }
}
