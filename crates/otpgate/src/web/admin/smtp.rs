//! SMTP servers: the list, a server's form (a password left empty keeps the stored one), its
//! test mail, deleting it.

use super::super::html::{Out, U};
use super::super::page::{see_other, service_message};
use super::super::request::{Web, WebError, WebResult};
use super::super::session::Session;
use super::super::view::smtp as view;
use super::{Errors, Resource, Saved, actions_bar, no_such_action, page};
use crate::params::Params;
use axum::extract::Path;
use otpgate_service::ServiceError;
use otpgate_service::gateways::CENSORED;
use otpgate_service::smtpserver::{SmtpInput, SmtpView};

/// `GET /ui/admin/smtp`.
pub async fn list(web: Web) -> WebResult {
    let s = web.admin("smtpserver_read").await?;
    let servers = web.app.services.list_smtp_servers(None).await?;
    let mut b = Out::new();
    view::list(&mut b, &servers);
    Ok(page(&web, &s, "SMTP servers", &[], b))
}

/// SMTP servers as a [`Resource`] of the console.
pub struct Smtp;

impl Resource for Smtp {
    const BASE: &'static str = "/ui/admin/smtp";
    const NOUN: &'static str = "SMTP server";
    const NEW_TITLE: &'static str = "New SMTP server";
    const A_NOUN: &'static str = "an SMTP server";
    const KEY_FIELD: &'static str = "identifier";
    const READ: &'static str = "smtpserver_read";
    const WRITE: &'static str = "smtpserver_write";
    type Item = SmtpView;

    async fn load(web: &Web, key: &str) -> Result<Option<SmtpView>, WebError> {
        Ok(web
            .app
            .services
            .list_smtp_servers(Some(key))
            .await?
            .into_iter()
            .next())
    }

    async fn body(
        _web: &Web,
        s: &Session,
        key: Option<&str>,
        item: Option<&SmtpView>,
        form: &Params,
        errors: &Errors,
    ) -> Result<Out, WebError> {
        let mut b = Out::new();
        match (key, item) {
            (Some(k), Some(d)) => {
                view::page(&mut b, s, d, form, errors);
                actions_bar(
                    &mut b,
                    s,
                    &format!("{}/{}", Self::BASE, U(k)),
                    None,
                    &format!("the SMTP server {k}"),
                );
            }
            _ => view::form(&mut b, s, None, form, errors),
        }
        Ok(b)
    }

    async fn save(web: &Web, s: &Session, key: Option<&str>) -> Result<Saved, WebError> {
        let id = key.map_or_else(|| Self::new_key(web), str::to_owned);
        let f = &web.form;
        let v = |k: &str| f.get_nonblank(k).map(|v| v.trim().to_owned());
        let port = v("port").map(|p| p.parse::<i64>());
        let timeout = v("timeout").map(|t| t.parse::<i64>());
        let password = match f.get("password").unwrap_or_default() {
            "" if key.is_some() => Some(CENSORED.to_owned()),
            "" => None,
            pw => Some(pw.to_owned()),
        };
        let input = SmtpInput {
            server: v("server"),
            port: port.clone().and_then(Result::ok),
            timeout: timeout.clone().and_then(Result::ok),
            sender: v("sender"),
            username: v("username"),
            password,
            tls: Some(f.flag("tls")),
            tls_verify: Some(f.flag("tls_verify")),
            description: v("description"),
            enqueue_job: None,
        };
        let bad_number = [("port", &port), ("timeout", &timeout)]
            .into_iter()
            .find(|(_, n)| matches!(n, Some(Err(_))))
            .map(|(k, _)| k);
        let key_given = !id.is_empty();
        let r = web
            .run(web.admin_call(s), Some(Self::WRITE), move |svc, cx| {
                Box::pin(async move {
                    if let Some(k) = bad_number {
                        return Err(ServiceError::Parameter(format!("{k} must be an integer.")));
                    }
                    if !key_given {
                        return Err(ServiceError::missing("identifier"));
                    }
                    svc.save_smtp_server(&id, &input, cx).await
                })
            })
            .await;
        let id = key.map_or_else(|| Self::new_key(web), str::to_owned);
        Ok(match r {
            Ok(_) => Saved::Key(id),
            Err(e) => {
                let field = if key.is_none() && id.is_empty() {
                    "identifier"
                } else {
                    "server"
                };
                Saved::refused(field, &e)
            }
        })
    }
}

/// `POST /ui/admin/smtp/{id}/{test|delete}`.
pub async fn action(Path((id, action)): Path<(String, String)>, web: Web) -> WebResult {
    let s = web.admin("smtpserver_write").await?;
    match action.as_str() {
        "test" => {
            let recipient = web
                .form
                .get("recipient")
                .unwrap_or_default()
                .trim()
                .to_owned();
            let what = format!("smtpserver {id}: test");
            let ident = id.clone();
            let r = web
                .run(
                    web.admin_call(&s),
                    Some("smtpserver_write"),
                    move |svc, cx| {
                        Box::pin(async move {
                            cx.audit.action_detail = what;
                            svc.send_test_email(Some(&ident), Some(&recipient), None)
                                .await
                        })
                    },
                )
                .await;
            let why = match r {
                Ok(t) if t.accepted => {
                    return Ok(see_other(&format!(
                        "/ui/admin/smtp/{}?ok=mail-sent",
                        U(&id)
                    )));
                }
                Ok(t) => t.reason.unwrap_or_default(),
                Err(e) => service_message(&e),
            };
            let d = Smtp::load(&web, &id).await?.ok_or_else(|| {
                WebError::Page(axum::http::StatusCode::NOT_FOUND, Smtp::not_found(&id))
            })?;
            let errors = vec![(
                "recipient".to_owned(),
                format!("The mail was not accepted: {why}"),
            )];
            let b = Smtp::body(&web, &s, Some(&id), Some(&d), &web.form, &errors).await?;
            Ok(page(&web, &s, &Smtp::title(&id, &d), &errors, b))
        }
        "delete" => {
            web.run(
                web.admin_call(&s),
                Some("smtpserver_write"),
                move |svc, cx| Box::pin(async move { svc.delete_smtp_server(&id, cx).await }),
            )
            .await?;
            Ok(see_other("/ui/admin/smtp?ok=deleted"))
        }
        _ => Err(no_such_action()),
    }
}
