//! Event rules: the list and the dead notifications, a rule's form, enabling, disabling and
//! deleting it, and queueing a dead notification again.

use super::super::html::Out;
use super::super::page::{see_other, service_message};
use super::super::request::{Web, WebError, WebResult};
use super::super::session::Session;
use super::super::view::events as view;
use super::{Errors, Resource, Saved, actions_bar, no_such_action, page};
use crate::params::Params;
use axum::extract::Path;
use axum::http::StatusCode;
use otpgate_service::events::{HANDLER_MODULE, HandlerInput, HandlerView, action_options};
use otpgate_service::outbox::OutboxQuery;

/// `GET /ui/admin/events`: the rules and the notification outbox.
pub async fn list(web: Web) -> WebResult {
    let s = web.admin("eventhandling_read").await?;
    let services = &web.app.services;
    let handlers = services.list_events(None).await?;
    let dead = services
        .list_outbox(&OutboxQuery {
            status: Some("dead".into()),
            ..Default::default()
        })
        .await?;
    let mut b = Out::new();
    view::list(&mut b, &handlers);
    view::dead_letters(&mut b, &s, &dead.items.items);
    Ok(page(&web, &s, "Event rules", &[], b))
}

fn event_id(raw: &str) -> Result<i64, WebError> {
    raw.parse()
        .map_err(|_| WebError::Page(StatusCode::NOT_FOUND, "There is no such event rule.".into()))
}

/// Event rules as a [`Resource`] of the console (keyed by their id).
pub struct Events;

impl Resource for Events {
    const BASE: &'static str = "/ui/admin/events";
    const NOUN: &'static str = "Event rule";
    const NEW_TITLE: &'static str = "New event rule";
    const A_NOUN: &'static str = "an event rule";
    const KEY_FIELD: &'static str = "id";
    const READ: &'static str = "eventhandling_read";
    const WRITE: &'static str = "eventhandling_write";
    type Item = HandlerView;

    async fn load(web: &Web, key: &str) -> Result<Option<HandlerView>, WebError> {
        let id = event_id(key)?;
        Ok(web
            .app
            .services
            .list_events(Some(id))
            .await?
            .into_iter()
            .next())
    }

    fn not_found(_key: &str) -> String {
        "There is no such event rule.".into()
    }

    fn title(_key: &str, item: &HandlerView) -> String {
        format!("Event rule {}", item.name)
    }

    /// A new rule has no key yet (the service numbers it).
    fn new_key(_web: &Web) -> String {
        String::new()
    }

    async fn body(
        web: &Web,
        s: &Session,
        key: Option<&str>,
        item: Option<&HandlerView>,
        form: &Params,
        errors: &Errors,
    ) -> Result<Out, WebError> {
        let action = match item {
            Some(e) => e.action.clone(),
            None => {
                let asked = form.get("action").or(web.query.get("action"));
                if asked == Some("sendmail") {
                    "sendmail"
                } else {
                    "sendsms"
                }
                .to_owned()
            }
        };
        let choices = web.app.services.handler_choices().await?;
        let options = action_options(&action, &choices);
        let mut b = Out::new();
        view::form(&mut b, s, &action, item, &options, form, errors);
        if let (Some(k), Some(e)) = (key, item) {
            actions_bar(
                &mut b,
                s,
                &format!("{}/{k}", Self::BASE),
                Some(e.active),
                "this event rule",
            );
        }
        Ok(b)
    }

    async fn save(web: &Web, s: &Session, key: Option<&str>) -> Result<Saved, WebError> {
        let id = key.map(event_id).transpose()?;
        let f = &web.form;
        let v = |k: &str| Some(f.get(k).unwrap_or_default().trim().to_owned());
        let conditions =
            crate::params::conditions(Some(f.get("conditions").unwrap_or_default().trim()));
        let input = HandlerInput {
            id,
            name: v("name"),
            events: v("event"),
            handlermodule: Some(HANDLER_MODULE.into()),
            action: v("action"),
            position: v("position"),
            ordering: None,
            active: Some(f.flag("active")),
            options: f
                .iter()
                .filter(|(k, v)| k.starts_with("option.") && !v.is_empty())
                .filter_map(|(k, v)| k.strip_prefix("option.").map(|k| (k.to_owned(), v.clone())))
                .collect(),
            conditions: conditions.clone().unwrap_or_default(),
        };
        let r = web
            .run(web.admin_call(s), Some(Self::WRITE), move |svc, cx| {
                Box::pin(async move {
                    let _ = conditions?;
                    svc.save_event(&input, cx).await
                })
            })
            .await;
        Ok(match r {
            Ok((id, _)) => Saved::Key(id.to_string()),
            Err(e) => {
                let m = service_message(&e);
                let field = if m.contains("condition") {
                    "conditions"
                } else if m.contains("option.") || m.contains("config") {
                    "name"
                } else {
                    "event"
                };
                Saved::refused(field, &e)
            }
        })
    }
}

/// `POST /ui/admin/events/{id}/{enable|disable|delete}`.
pub async fn action(Path((id, action)): Path<(String, String)>, web: Web) -> WebResult {
    let s = web.admin("eventhandling_write").await?;
    let id = event_id(&id)?;
    let a = action.clone();
    let delete = match action.as_str() {
        "delete" => true,
        "enable" | "disable" => false,
        _ => return Err(no_such_action()),
    };
    web.run(
        web.admin_call(&s),
        Some("eventhandling_write"),
        move |svc, cx| {
            Box::pin(async move {
                cx.audit.action_detail = format!("event {id}: {a}");
                match a.as_str() {
                    "delete" => svc.delete_event(id, cx).await,
                    other => svc.set_event_active(id, other == "enable").await,
                }
            })
        },
    )
    .await?;
    if delete {
        return Ok(see_other("/ui/admin/events?ok=deleted"));
    }
    Ok(see_other(&format!("/ui/admin/events/{id}?ok=saved")))
}

/// `POST /ui/admin/events/outbox/{id}/retry`.
pub async fn retry(Path(id): Path<String>, web: Web) -> WebResult {
    let s = web.admin("eventhandling_write").await?;
    let id = event_id(&id)?;
    web.run(
        web.admin_call(&s),
        Some("eventhandling_write"),
        move |svc, cx| Box::pin(async move { svc.requeue_outbox(id, cx).await }),
    )
    .await?;
    Ok(see_other("/ui/admin/events?ok=requeued"))
}
