//! `/token/*`.

use super::{ApiError, Pi, envelope, event};
use crate::app::App;
use axum::extract::{Path, State};
use axum::response::Response;
use otpgate_service::audit::AuditEntry;
use otpgate_service::events::CallResult;
use serde_json::{Map, Value};

/// `POST /token/init`.
pub async fn init(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let admin = pi.admin(&app, "enrollSMS").await?;
    let event = "token_init";
    event::fire(
        &app,
        &pi,
        "pre",
        event,
        Some(&admin),
        &event::pre_subject(&pi, None),
        None,
    )
    .await;
    let mut audit = AuditEntry::default();
    let r = app
        .services
        .init_token(&pi.params, &admin, &mut audit)
        .await;
    if r.is_ok() {
        let result = CallResult::plain(Value::Bool(true));
        event::fire(
            &app,
            &pi,
            "post",
            event,
            Some(&admin),
            &audit,
            Some(&result),
        )
        .await;
    }
    pi.record(audit);
    let detail = r?;
    let detail: Map<String, Value> = detail.as_object().cloned().unwrap_or_default();
    Ok(envelope::ok(Value::Bool(true), Some(detail), pi.nonce()))
}

/// `GET /token/`.
pub async fn list(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "tokenlist").await?;
    Ok(pi.reply(app.services.list_tokens(&pi.params).await?))
}

#[derive(Clone, Copy)]
enum Action {
    Enable,
    Disable,
    Reset,
    SetPin,
    Set,
    Delete,
}

async fn run(
    app: &App,
    pi: Pi,
    serial: Option<String>,
    action: Action,
) -> Result<Response, ApiError> {
    let right = match action {
        Action::Enable => "enable",
        Action::Disable => "disable",
        Action::Reset => "reset",
        Action::SetPin => "setpin",
        Action::Set => "set",
        Action::Delete => "delete",
    };
    let admin = pi.admin(app, right).await?;
    let event = match action {
        Action::Enable => "token_enable",
        Action::Disable => "token_disable",
        Action::Reset => "token_reset",
        Action::SetPin => "token_setpin",
        Action::Set => "token_set",
        Action::Delete => "token_delete",
    };
    let subject = event::pre_subject(&pi, serial.as_deref());
    event::fire(app, &pi, "pre", event, Some(&admin), &subject, None).await;
    let mut audit = AuditEntry::default();
    let (s, p, serial) = (&app.services, &pi.params, serial.as_deref());
    let r = match action {
        Action::Enable => s.set_tokens_active(serial, p, true, &mut audit).await,
        Action::Disable => s.set_tokens_active(serial, p, false, &mut audit).await,
        Action::Reset => s.reset_tokens(serial, p, &mut audit).await,
        Action::SetPin => s.set_token_pin(serial, p, &mut audit).await,
        Action::Set => s.set_token_attributes(serial, p, &mut audit).await,
        Action::Delete => s.delete_tokens(serial, p, &mut audit).await,
    };
    if let Ok(value) = &r {
        let result = CallResult::plain(value.clone());
        event::fire(app, &pi, "post", event, Some(&admin), &audit, Some(&result)).await;
    }
    pi.record(audit);
    Ok(pi.reply(r?))
}

/// `POST /token/enable` (tokens of `user`, or `serial`).
pub async fn enable(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    run(&app, pi, None, Action::Enable).await
}
/// `POST /token/enable/<serial>`.
pub async fn enable_one(
    State(app): State<App>,
    Path(serial): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    run(&app, pi, Some(serial), Action::Enable).await
}
/// `POST /token/disable`.
pub async fn disable(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    run(&app, pi, None, Action::Disable).await
}
/// `POST /token/disable/<serial>`.
pub async fn disable_one(
    State(app): State<App>,
    Path(serial): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    run(&app, pi, Some(serial), Action::Disable).await
}
/// `POST /token/reset`.
pub async fn reset(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    run(&app, pi, None, Action::Reset).await
}
/// `POST /token/reset/<serial>`.
pub async fn reset_one(
    State(app): State<App>,
    Path(serial): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    run(&app, pi, Some(serial), Action::Reset).await
}
/// `POST /token/setpin`.
pub async fn setpin(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    run(&app, pi, None, Action::SetPin).await
}
/// `POST /token/setpin/<serial>`.
pub async fn setpin_one(
    State(app): State<App>,
    Path(serial): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    run(&app, pi, Some(serial), Action::SetPin).await
}
/// `POST /token/set`.
pub async fn set(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    run(&app, pi, None, Action::Set).await
}
/// `POST /token/set/<serial>`.
pub async fn set_one(
    State(app): State<App>,
    Path(serial): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    run(&app, pi, Some(serial), Action::Set).await
}
/// `DELETE /token/<serial>`.
pub async fn delete_one(
    State(app): State<App>,
    Path(serial): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    run(&app, pi, Some(serial), Action::Delete).await
}

/// `GET /token/challenges/`.
pub async fn challenges(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "getchallenges").await?;
    Ok(pi.reply(app.services.list_challenges(None, &pi.params).await?))
}

/// `GET /token/challenges/<serial>`.
pub async fn challenges_one(
    State(app): State<App>,
    Path(serial): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "getchallenges").await?;
    Ok(pi.reply(
        app.services
            .list_challenges(Some(&serial), &pi.params)
            .await?,
    ))
}
