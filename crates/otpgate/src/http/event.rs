//! `/event/*`: event handler administration (privacyIDEA's `UserNotification`) and the
//! outbox of their notifications.

use super::{ApiError, Pi, envelope};
use crate::params::{Params, is_true};
use crate::state::App;
use axum::extract::{Path, State};
use axum::response::Response;
use otpgate_service::ServiceError;
use otpgate_service::events::{
    CONDITIONS, EVENTS, HANDLER_MODULE, HandlerChoices, HandlerInput, HandlerView, action_options,
};
use otpgate_service::outbox::{OutboxPage, OutboxQuery};
use serde_json::{Map, Value, json};

fn event_id(id: &str) -> Result<i64, ServiceError> {
    id.trim()
        .parse()
        .map_err(|_| ServiceError::Parameter(format!("The event id {id:?} is not a number.")))
}

/// `POST /event`'s parameters.
pub fn handler_input(p: &Params) -> Result<HandlerInput, ServiceError> {
    let s = |k: &str| p.get(k).map(str::to_owned);
    Ok(HandlerInput {
        id: p.int("id")?,
        name: s("name"),
        events: s("event"),
        handlermodule: s("handlermodule"),
        action: s("action"),
        position: s("position"),
        ordering: p.int("ordering")?,
        active: p.get("active").map(is_true),
        options: p
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("option.").map(|k| (k.to_owned(), v.clone())))
            .collect(),
        conditions: crate::params::conditions(p.get("conditions"))?,
    })
}

/// A handler in privacyIDEA's shape.
fn handler_json(h: &HandlerView) -> Value {
    json!({
        "id": h.id, "name": h.name, "active": h.active,
        "ordering": h.ordering, "position": h.position, "abort_on_error": false,
        "handlermodule": h.handlermodule, "action": h.action, "condition": "",
        "event": h.events, "options": h.options, "conditions": h.conditions,
    })
}

/// `GET /event/actions/UserNotification`: the actions with their options, offering the
/// configured gateways and SMTP servers.
fn actions_json(c: &HandlerChoices) -> Value {
    let mut out = Map::new();
    for action in ["sendmail", "sendsms"] {
        let mut options = Map::new();
        for o in action_options(action, c) {
            let mut spec = Map::new();
            spec.insert("type".into(), json!(if o.text { "text" } else { "str" }));
            if let Some(r) = o.required {
                spec.insert("required".into(), json!(r));
            }
            spec.insert("description".into(), json!(o.description));
            if let Some(choices) = &o.choices {
                spec.insert("value".into(), json!(choices));
            }
            if let Some(kind) = o.shown_for {
                spec.insert("visibleIf".into(), json!("To"));
                spec.insert("visibleValue".into(), json!(kind));
            }
            options.insert(o.key.into(), Value::Object(spec));
        }
        out.insert(action.into(), Value::Object(options));
    }
    Value::Object(out)
}

/// `GET /event/conditions/UserNotification`.
fn conditions_json(c: &HandlerChoices) -> Value {
    let named =
        |names: &[String]| -> Vec<Value> { names.iter().map(|n| json!({"name": n})).collect() };
    let mut out = Map::new();
    for (name, ty, desc, values) in CONDITIONS {
        let mut cond = Map::new();
        cond.insert("type".into(), json!(ty));
        cond.insert("desc".into(), json!(desc));
        let values: Vec<Value> = match *name {
            "realm" | "tokenrealm" => named(&c.realms),
            "resolver" => named(&c.resolvers),
            "tokentype" => values.iter().map(|v| json!({"name": v})).collect(),
            _ => values.iter().map(|v| json!(v)).collect(),
        };
        if !values.is_empty() {
            cond.insert("value".into(), Value::Array(values));
        }
        out.insert((*name).to_owned(), Value::Object(cond));
    }
    Value::Object(out)
}

fn outbox_json(o: &OutboxPage) -> Value {
    let iso = envelope::iso;
    let items: Vec<Value> = o
        .items
        .items
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "status": r.status, "channel": r.item.channel, "config": r.item.config,
                "recipient": r.item.recipient, "subject": r.item.subject, "body_length": r.item.body.chars().count(),
                "handler_id": r.item.handler_id, "handler": r.item.handler_name, "event": r.item.event,
                "attempts": r.attempts, "created": iso(r.created_at), "next_attempt": if r.status == "pending" { json!(iso(r.next_at)) } else { Value::Null },
                "updated": iso(r.updated_at), "last_error": r.last_error, "delivered_by": r.delivered_by,
            })
        })
        .collect();
    let totals: Map<String, Value> = o
        .totals
        .iter()
        .map(|(s, n)| (s.clone(), json!(n)))
        .collect();
    json!({
        "items": items, "count": o.items.count, "current": o.items.page, "totals": totals,
        "prev": o.items.prev(), "next": o.items.next(),
    })
}

/// `GET /event/`.
pub async fn list(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let list = pi
        .run(&app, Some("eventhandling_read"), None, |s, _| {
            Box::pin(s.list_events(None))
        })
        .await?;
    Ok(pi.reply(list.iter().map(handler_json).collect()))
}

/// `GET /event/<id>`, `/event/available`, `/event/handlermodules`.
pub async fn get_one(
    State(app): State<App>,
    Path(id): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    let listed = id.clone();
    let handlers = pi
        .run(&app, Some("eventhandling_read"), None, move |s, _| {
            Box::pin(async move {
                Ok(match listed.as_str() {
                    "available" | "handlermodules" => None,
                    _ => Some(s.list_events(Some(event_id(&listed)?)).await?),
                })
            })
        })
        .await?;
    Ok(pi.reply(match handlers {
        Some(h) => Value::Array(h.iter().map(handler_json).collect()),
        None if id == "available" => json!(EVENTS),
        None => json!([HANDLER_MODULE]),
    }))
}

/// `POST /event`: value is the handler id; `detail.warnings` says what will not work.
pub async fn save(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let p = pi.params.clone();
    let (id, warnings) = pi
        .run(&app, Some("eventhandling_write"), None, move |s, cx| {
            Box::pin(async move { s.save_event(&handler_input(&p)?, cx).await })
        })
        .await?;
    Ok(pi.reply_warned(json!(id), warnings))
}

/// `DELETE /event/<id>`.
pub async fn delete(
    State(app): State<App>,
    Path(id): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.answer(&app, Some("eventhandling_write"), move |s, cx| {
        Box::pin(async move { s.delete_event(event_id(&id)?, cx).await })
    })
    .await
}

async fn set_active(app: &App, id: String, pi: &Pi, active: bool) -> Result<Response, ApiError> {
    pi.answer(app, Some("eventhandling_write"), move |s, _| {
        Box::pin(async move { s.set_event_active(event_id(&id)?, active).await })
    })
    .await
}

/// `POST /event/enable/<id>`.
pub async fn enable(
    State(app): State<App>,
    Path(id): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    set_active(&app, id, &pi, true).await
}

/// `POST /event/disable/<id>`.
pub async fn disable(
    State(app): State<App>,
    Path(id): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    set_active(&app, id, &pi, false).await
}

async fn choices(app: &App, pi: &Pi, module: &str) -> Result<Option<HandlerChoices>, ApiError> {
    let ours = module == HANDLER_MODULE;
    Ok(pi
        .run(app, Some("eventhandling_read"), None, move |s, _| {
            Box::pin(async move {
                Ok(match ours {
                    true => Some(s.handler_choices().await?),
                    false => None,
                })
            })
        })
        .await?)
}

/// `GET /event/actions/<module>`.
pub async fn actions(
    State(app): State<App>,
    Path(module): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    let c = choices(&app, &pi, &module).await?;
    Ok(pi.reply(c.as_ref().map_or(json!([]), actions_json)))
}

/// `GET /event/conditions/<module>`.
pub async fn conditions_of(
    State(app): State<App>,
    Path(module): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    let c = choices(&app, &pi, &module).await?;
    Ok(pi.reply(c.as_ref().map_or(json!([]), conditions_json)))
}

/// `GET /event/positions/<module>`.
pub async fn positions(
    State(app): State<App>,
    Path(module): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.run(&app, Some("eventhandling_read"), None, |_, _| {
        Box::pin(async { Ok(()) })
    })
    .await?;
    Ok(pi.reply(if module == HANDLER_MODULE {
        json!(["post", "pre"])
    } else {
        json!([])
    }))
}

/// `GET /event/defaults/<module>`: handlers never abort the request.
pub async fn defaults(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.run(&app, Some("eventhandling_read"), None, |_, _| {
        Box::pin(async { Ok(()) })
    })
    .await?;
    Ok(pi.reply(json!({"abort_on_error": false})))
}

/// `GET /event/outbox`.
pub async fn outbox(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let p = pi.params.clone();
    let page = pi
        .run(&app, Some("eventhandling_read"), None, move |s, _| {
            Box::pin(async move {
                let q = OutboxQuery {
                    status: p.get("status").map(str::to_owned),
                    page: p.int("page")?,
                    page_size: p.int("page_size")?,
                };
                s.list_outbox(&q).await
            })
        })
        .await?;
    Ok(pi.reply(outbox_json(&page)))
}

/// `POST /event/outbox/<id>/retry`.
pub async fn outbox_retry(
    State(app): State<App>,
    Path(id): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.answer(&app, Some("eventhandling_write"), move |s, cx| {
        Box::pin(async move { s.requeue_outbox(event_id(&id)?, cx).await })
    })
    .await
}
