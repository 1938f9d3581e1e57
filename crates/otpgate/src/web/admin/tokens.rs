//! Tokens: list, a token's page, enable/disable/reset/PIN/delete, and enrolling an SMS
//! token: the same calls (rights, events, audit) as the API's `/token/…`.

use super::super::html::{Out, U, error_summary};
use super::super::page::{see_other, service_message};
use super::super::request::{Web, WebError, WebResult};
use super::super::session::Session;
use super::super::view::tokens as view;
use super::{Errors, no_such_action, page};
use crate::params::Params;
use axum::extract::Path;
use axum::http::StatusCode;
use otpgate_service::ServiceError;
use otpgate_service::tokens::{TokenInit, TokenQuery, TokenTarget, UserRef};

/// `GET /ui/admin/tokens?serial=&user=&page=`.
pub async fn list(web: Web) -> WebResult {
    let s = web.admin("tokenlist").await?;
    let q = &web.query;
    let serial = q.get("serial").unwrap_or_default().trim().to_owned();
    let user = q.get("user").unwrap_or_default().trim().to_owned();
    let page_no = q
        .get("page")
        .and_then(|p| p.parse::<i64>().ok())
        .unwrap_or(1)
        .max(1);
    let query = TokenQuery {
        serial: (!serial.is_empty()).then(|| format!("*{serial}*")),
        user: (!user.is_empty()).then(|| UserRef {
            login: user.clone(),
            realm: q.get_nonblank("realm").map(str::to_owned),
        }),
        page: Some(page_no),
        page_size: Some(25),
        ..Default::default()
    };
    let mut b = Out::new();
    view::filters(&mut b, &serial, &user);
    // Only the tokens the admin's `tokenlist` policies reach, as on the API.
    let reach = web
        .app
        .services
        .policies()
        .await?
        .admin_reach(&s.username, "tokenlist");
    match web.app.services.list_tokens(&query, &reach).await {
        Ok(listed) => view::list(&mut b, &s, &listed, q),
        Err(e) => {
            let errors = vec![("user".to_owned(), service_message(&e))];
            let mut eb = Out::new();
            error_summary(&errors, &mut eb);
            eb.push(b);
            return Ok(page(&web, &s, "Tokens", &[], eb));
        }
    }
    Ok(page(&web, &s, "Tokens", &[], b))
}

/// The SMS a token's page lists.
const RECENT_SMS: i64 = 10;

/// `GET /ui/admin/tokens/{serial}`.
pub async fn detail(Path(serial): Path<String>, web: Web) -> WebResult {
    let s = web.admin("tokenlist").await?;
    let reach = web
        .app
        .services
        .policies()
        .await?
        .admin_reach(&s.username, "tokenlist");
    let t = web
        .app
        .services
        .token(&serial, &reach)
        .await?
        .ok_or_else(|| {
            WebError::Page(
                StatusCode::NOT_FOUND,
                format!("There is no token {serial}."),
            )
        })?;
    let filter = otpgate_store::MessageFilter {
        serial: Some(t.serial.clone()),
        ..Default::default()
    };
    let sms = web
        .app
        .services
        .list_messages(&filter, 1, RECENT_SMS, &reach)
        .await?;
    let mut b = Out::new();
    view::detail(&mut b, &s, &t, &sms);
    Ok(page(&web, &s, &format!("Token {serial}"), &[], b))
}

/// `POST /ui/admin/tokens/{serial}/{enable|disable|reset|pin|delete}`.
pub async fn action(Path((serial, action)): Path<(String, String)>, web: Web) -> WebResult {
    let (right, event, ok) = match action.as_str() {
        "enable" => ("enable", "token_enable", "enabled"),
        "disable" => ("disable", "token_disable", "disabled"),
        "reset" => ("reset", "token_reset", "reset"),
        "pin" => ("setpin", "token_setpin", "pin"),
        "delete" => ("delete", "token_delete", "deleted"),
        _ => return Err(no_such_action()),
    };
    let s = web.admin(right).await?;
    let pin = web.form.get("pin").unwrap_or_default().to_owned();
    let target = TokenTarget::serial(&serial);
    let call = web.admin_call(&s).event(event).subject("", "", &serial);
    web.run(call, Some(right), move |svc, cx| {
        Box::pin(async move {
            Ok(match right {
                "enable" => svc.set_tokens_active(target, true, cx).await?,
                "disable" => svc.set_tokens_active(target, false, cx).await?,
                "reset" => svc.reset_tokens(target, cx).await?,
                "setpin" => svc.set_token_pin(target, Some(pin), cx).await?,
                _ => svc.delete_tokens(target, cx).await?,
            })
        })
    })
    .await?;
    Ok(see_other(&if action == "delete" {
        "/ui/admin/tokens?ok=deleted".to_owned()
    } else {
        format!("/ui/admin/tokens/{}?ok={ok}", U(&serial))
    }))
}

/// The mobile number the user store has for `login` in `realm` (the first one), if the admin
/// `s` may enroll for that user (the enrollment's own reach).
async fn known_mobile(
    web: &Web,
    s: &Session,
    login: &str,
    realm: &str,
) -> Result<Option<String>, WebError> {
    let services = &web.app.services;
    let reach = services
        .policies()
        .await?
        .admin_reach(&s.username, "enrollSMS");
    // "Default realm" in the form: the realm that is the default now.
    let realm = match realm {
        "" => services.default_realm().await?.unwrap_or_default(),
        r => r.to_owned(),
    };
    Ok(match services.find_user(login, &realm).await {
        Ok(Some(u))
            if reach.covers(&otpgate_core::reach::Target {
                realm: Some(&u.realm),
                resolver: Some(&u.resolver),
                user: Some(&u.login),
                token_realms: &[],
            }) =>
        {
            u.mobile.first().cloned()
        }
        Ok(_) => None,
        // A user store that cannot answer is not "no number".
        Err(e) => return Err(e.into()),
    })
}

async fn enroll_page(web: &Web, s: &Session, f: &Params, errors: &Errors) -> WebResult {
    let services = &web.app.services;
    let realms = services.realm_names().await?;
    let realm = f
        .get_nonblank("realm")
        .map(str::to_owned)
        .or_else(|| realms.first().cloned())
        .unwrap_or_default();
    // The realm's users to pick from, where the admin may list them (at most 500).
    let reach = services
        .policies()
        .await?
        .admin_reach(&s.username, "userlist");
    let query = otpgate_service::users::UserQuery {
        realm: Some(realm.clone()),
        ..Default::default()
    };
    let users: Vec<String> = services
        .list_users(&query, &reach)
        .await
        .map(|u| u.into_iter().take(500).map(|u| u.login).collect())
        .unwrap_or_default();
    // A user named before any number was typed: their mobile from the user store.
    let mut f = f.clone();
    if f.get("phone").is_none()
        && let Some(login) = f.get_nonblank("user").map(str::to_owned)
        // The realm as the form will post it (blank: the default realm, as the service reads it).
        && let Ok(Some(m)) = known_mobile(web, s, &login, f.get("realm").unwrap_or_default()).await
    {
        f.insert("phone", &m);
    }
    let f = &f;
    let gateways: Vec<String> = services
        .list_gateways(None)
        .await?
        .into_iter()
        .map(|g| g.name)
        .collect();
    // A missing or unknown default gateway: tokens left on "the default" could not send.
    let default_gap = services.default_gateway_gap().await?.map(|g| g.message);
    let mut b = Out::new();
    view::enroll_form(
        &mut b,
        s,
        &realms,
        &users,
        &gateways,
        default_gap.as_deref(),
        f,
        errors,
    );
    Ok(page(web, s, "Enroll an SMS token", errors, b))
}

/// `GET /ui/admin/tokens/new`.
pub async fn enroll_form(web: Web) -> WebResult {
    let s = web.admin("enrollSMS").await?;
    let q = web.query.clone();
    enroll_page(&web, &s, &q, &Vec::new()).await
}

/// `POST /ui/admin/tokens/new`: a `token_init` call, as the API's.
pub async fn enroll(web: Web) -> WebResult {
    let s = web.admin("enrollSMS").await?;
    let f = &web.form;
    if f.get("pin").unwrap_or_default() != f.get("pin2").unwrap_or_default() {
        let form = web.form.clone();
        let errors = vec![("pin2".to_owned(), "The two PINs differ.".to_owned())];
        return enroll_page(&web, &s, &form, &errors).await;
    }
    let trimmed = |k: &str| f.get_nonblank(k).map(|v| v.trim().to_owned());
    let dynamic = f.get("dynamic_phone").is_some_and(crate::params::is_true);
    // No number typed: the user's mobile from the user store, as the form's hint says.
    let mut phone = trimmed("phone").filter(|_| !dynamic);
    if phone.is_none() && !dynamic {
        let realm = trimmed("realm").unwrap_or_default();
        let user = trimmed("user");
        phone = match &user {
            Some(login) => known_mobile(&web, &s, login, &realm).await?,
            None => None,
        };
        if phone.is_none() {
            let why = if user.is_some() {
                "Enter the phone number: the user store has no mobile number for this user."
            } else {
                "Enter the phone number."
            };
            let form = web.form.clone();
            let errors = vec![("phone".to_owned(), why.to_owned())];
            return enroll_page(&web, &s, &form, &errors).await;
        }
    }
    let req = TokenInit {
        dynamic_phone: dynamic,
        tokentype: Some("sms".into()),
        genkey: true,
        user: trimmed("user").map(|login| UserRef {
            login,
            realm: trimmed("realm"),
        }),
        phone,
        pin: f.get("pin").filter(|p| !p.is_empty()).map(str::to_owned),
        description: trimmed("description"),
        sms_info: trimmed("sms.identifier")
            .map(|g| ("sms.identifier".to_owned(), g))
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let call = web.admin_call(&s).event("token_init").subject(
        trimmed("user").as_deref().unwrap_or_default(),
        trimmed("realm").as_deref().unwrap_or_default(),
        "",
    );
    let r = web
        .run(call, Some("enrollSMS"), move |svc, cx| {
            Box::pin(svc.init_token(req, cx))
        })
        .await;
    match r {
        Ok(done) => Ok(see_other(&format!(
            "/ui/admin/tokens/{}?ok=enrolled",
            U(&done.serial)
        ))),
        // At the field the service names; other refusals concern the user (unknown, not
        // in reach, locked) or the number.
        Err(e) => {
            let field = match (e.field(), &e) {
                (Some(f), _) => f.to_owned(),
                (None, ServiceError::User(_)) => "user".to_owned(),
                // A policy's refusal (a gateway or a user the admin may not enroll): at the top.
                (None, ServiceError::Policy(_)) => String::new(),
                _ => "phone".to_owned(),
            };
            let form = web.form.clone();
            enroll_page(&web, &s, &form, &vec![(field, service_message(&e))]).await
        }
    }
}
