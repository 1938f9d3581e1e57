//! `/event/*`: event handler administration and the outbox.

use super::{ApiError, Pi};
use crate::state::App;
use axum::extract::{Path, State};
use axum::response::Response;
use otpgate_service::events::{EVENTS, HANDLER_MODULE};
use serde_json::json;

fn event_id(id: &str) -> Result<i64, ApiError> {
    id.trim()
        .parse()
        .map_err(|_| ApiError::parameter(format!("The event id {id:?} is not a number.")))
}

/// `GET /event/`.
pub async fn list(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "eventhandling_read").await?;
    Ok(pi.reply(app.services.list_events(None).await?))
}

/// `GET /event/<id>`, `/event/available`, `/event/handlermodules`.
pub async fn get_one(
    State(app): State<App>,
    Path(id): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "eventhandling_read").await?;
    Ok(pi.reply(match id.as_str() {
        "available" => json!(EVENTS),
        "handlermodules" => json!([HANDLER_MODULE]),
        _ => app.services.list_events(Some(event_id(&id)?)).await?,
    }))
}

/// `POST /event`: value is the handler id; `detail.warnings` says what will not work.
pub async fn save(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "eventhandling_write").await?;
    let name = pi.params.get("name").unwrap_or_default().to_owned();
    pi.audit(|e| e.action_detail = format!("event handler {name}"));
    let (id, warnings) = app.services.save_event(&pi.params).await?;
    pi.audit(|e| e.info = id.to_string());
    Ok(pi.reply_warned(json!(id), warnings))
}

/// `DELETE /event/<id>`.
pub async fn delete(
    State(app): State<App>,
    Path(id): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "eventhandling_write").await?;
    pi.audit(|e| e.info = id.clone());
    Ok(pi.reply(app.services.delete_event(event_id(&id)?).await?))
}

/// `POST /event/enable/<id>`.
pub async fn enable(
    State(app): State<App>,
    Path(id): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "eventhandling_write").await?;
    Ok(pi.reply(app.services.set_event_active(event_id(&id)?, true).await?))
}

/// `POST /event/disable/<id>`.
pub async fn disable(
    State(app): State<App>,
    Path(id): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "eventhandling_write").await?;
    Ok(pi.reply(app.services.set_event_active(event_id(&id)?, false).await?))
}

/// `GET /event/actions/<module>`.
pub async fn actions(
    State(app): State<App>,
    Path(module): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "eventhandling_read").await?;
    Ok(pi.reply(app.services.event_actions(&module).await?))
}

/// `GET /event/conditions/<module>`.
pub async fn conditions(
    State(app): State<App>,
    Path(module): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "eventhandling_read").await?;
    Ok(pi.reply(app.services.event_conditions(&module).await?))
}

/// `GET /event/positions/<module>`.
pub async fn positions(
    State(app): State<App>,
    Path(module): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "eventhandling_read").await?;
    Ok(pi.reply(if module == HANDLER_MODULE {
        json!(["post", "pre"])
    } else {
        json!([])
    }))
}

/// `GET /event/defaults/<module>`: handlers never abort the request.
pub async fn defaults(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "eventhandling_read").await?;
    Ok(pi.reply(json!({"abort_on_error": false})))
}

/// `GET /event/outbox`.
pub async fn outbox(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "eventhandling_read").await?;
    Ok(pi.reply(app.services.list_outbox(&pi.params).await?))
}

/// `POST /event/outbox/<id>/retry`.
pub async fn outbox_retry(
    State(app): State<App>,
    Path(id): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "eventhandling_write").await?;
    pi.audit(|e| e.action_detail = format!("outbox item {id}"));
    Ok(pi.reply(app.services.requeue_outbox(event_id(&id)?).await?))
}
