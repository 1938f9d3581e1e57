//! `/smtpserver`: the central SMTP servers (passwords censored) and test mails.

use super::{ApiError, Pi, envelope};
use crate::params::{Params, is_true};
use crate::state::App;
use axum::extract::{Path, State};
use axum::response::Response;
use otpgate_service::ServiceError;
use otpgate_service::gateways::CENSORED;
use otpgate_service::smtpserver::{SmtpInput, SmtpView};
use serde_json::{Map, Value, json};

/// `POST /smtpserver/<identifier>`'s parameters.
pub fn smtp_input(p: &Params) -> Result<SmtpInput, ServiceError> {
    let s = |k: &str| p.get(k).map(str::to_owned);
    let flag = |k: &str| p.get(k).map(is_true);
    Ok(SmtpInput {
        server: s("server"),
        port: p.int("port")?,
        timeout: p.int("timeout")?,
        sender: s("sender"),
        username: s("username"),
        password: s("password"),
        tls: flag("tls"),
        tls_verify: flag("tls_verify"),
        description: s("description"),
        enqueue_job: flag("enqueue_job"),
    })
}

fn smtp_json(r: &SmtpView) -> Value {
    json!({
        "identifier": r.identifier, "server": r.server, "port": r.port, "username": r.username,
        "password": if r.has_password { CENSORED } else { "" }, "sender": r.sender, "tls": r.tls,
        "tls_verify": r.tls_verify, "timeout": r.timeout, "description": r.description, "enqueue_job": r.enqueue_job,
    })
}

async fn list(app: &App, pi: &Pi, id: Option<String>) -> Result<Response, ApiError> {
    let list = pi
        .run(app, Some("smtpserver_read"), None, move |s, _| {
            Box::pin(async move { s.list_smtp_servers(id.as_deref()).await })
        })
        .await?;
    let map: Map<String, Value> = list
        .iter()
        .map(|r| (r.identifier.clone(), smtp_json(r)))
        .collect();
    Ok(pi.reply(Value::Object(map)))
}

/// `GET /smtpserver/`.
pub async fn servers(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    list(&app, &pi, None).await
}

/// `GET /smtpserver/<identifier>`.
pub async fn server(
    State(app): State<App>,
    Path(id): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    list(&app, &pi, Some(id)).await
}

/// `POST /smtpserver/<identifier>`.
pub async fn save(
    State(app): State<App>,
    Path(id): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    let p = pi.params.clone();
    pi.answer(&app, Some("smtpserver_write"), move |s, cx| {
        Box::pin(async move { s.save_smtp_server(&id, &smtp_input(&p)?, cx).await })
    })
    .await
}

/// `DELETE /smtpserver/<identifier>`.
pub async fn delete(
    State(app): State<App>,
    Path(id): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.answer(&app, Some("smtpserver_write"), move |s, cx| {
        Box::pin(async move { s.delete_smtp_server(&id, cx).await })
    })
    .await
}

/// `POST /smtpserver/send_test_email`: `value` says whether the mail was accepted,
/// `detail.message` why not. With `server`, the given (unsaved) settings are tried.
pub async fn send_test_email(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let p = pi.params.clone();
    let test = pi
        .run(&app, Some("smtpserver_write"), None, move |s, _| {
            Box::pin(async move {
                let settings = match p.get_nonblank("server") {
                    Some(_) => Some(smtp_input(&p)?),
                    None => None,
                };
                s.send_test_email(p.get("identifier"), p.get("recipient"), settings.as_ref())
                    .await
            })
        })
        .await?;
    let detail = test.reason.map(|m| {
        let mut d = Map::new();
        d.insert("message".into(), json!(m));
        d
    });
    Ok(envelope::ok(json!(test.accepted), detail, pi.nonce()))
}
