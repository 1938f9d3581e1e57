//! `/validate/*`.

use super::{ApiError, Pi, envelope, event};
use crate::app::App;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use otpgate_service::Params;
use otpgate_service::audit::AuditEntry;
use otpgate_service::validate::{AuthResponse, Authentication, CheckRequest};

/// Internal keys a client must never inject (privacyIDEA strips them too).
const INTERNAL_KEYS: &[&str] = &[
    "session",
    "data",
    "initTime",
    "radius_result",
    "radius_state",
    "push_triggered",
    "valid_token_num",
];

fn request(
    p: &Params,
    peer: Option<std::net::IpAddr>,
    end_user: Option<std::net::IpAddr>,
) -> CheckRequest {
    let s = |k: &str| p.get(k).map(str::to_owned);
    CheckRequest {
        user: s("user"),
        realm: s("realm"),
        serial: s("serial"),
        pass: s("pass"),
        transaction_id: s("transaction_id").or_else(|| s("state")),
        exception: p.flag("exception"),
        otponly: p.flag("otponly"),
        challenge: s("challenge"),
        client: end_user.or(peer),
        end_user,
    }
}

fn count(app: &App, endpoint: &str, r: &Result<AuthResponse, otpgate_service::ServiceError>) {
    let result = match r {
        Ok(a) => a.authentication.as_str(),
        Err(_) => "error",
    };
    app.metrics.add(
        "otpgate_auth_total",
        &[("endpoint", endpoint), ("result", result)],
        1,
    );
    if let Ok(a) = r {
        let sent = a
            .detail
            .get("multi_challenge")
            .and_then(|m| m.as_array())
            .map_or(0, Vec::len);
        let failed = a
            .detail
            .get("messages")
            .and_then(|m| m.as_array())
            .map_or(0, |m| {
                m.iter()
                    .filter(|x| x.as_str() == Some(otpgate_service::validate::SEND_FAILED))
                    .count()
            });
        if sent > 0 {
            app.metrics
                .add("otpgate_sms_total", &[("result", "sent")], sent as u64);
        }
        if failed > 0 {
            app.metrics
                .add("otpgate_sms_total", &[("result", "failed")], failed as u64);
        }
    }
}

async fn run_check(app: &App, pi: &mut Pi) -> Result<AuthResponse, otpgate_service::ServiceError> {
    for k in INTERNAL_KEYS {
        pi.params.remove(k);
    }
    let name = "validate_check";
    event::fire(
        app,
        pi,
        "pre",
        name,
        None,
        &event::pre_subject(pi, None),
        None,
    )
    .await;
    let mut audit = AuditEntry::default();
    let r = app
        .services
        .check(request(&pi.params, pi.client, pi.end_user), &mut audit)
        .await;
    if let Ok(a) = &r {
        audit.authentication = a.authentication.as_str().into();
        audit.success = a.authentication == Authentication::Accept;
        if audit.info.is_empty() {
            audit.info = a.message().unwrap_or_default().to_owned();
        }
        let result = otpgate_service::events::CallResult::of_auth(a);
        event::fire(app, pi, "post", name, None, &audit, Some(&result)).await;
    }
    pi.record(audit);
    count(app, "check", &r);
    r
}

/// `GET|POST /validate/check`.
pub async fn check(State(app): State<App>, mut pi: Pi) -> Result<Response, ApiError> {
    let r = run_check(&app, &mut pi).await?;
    Ok(envelope::auth(r, pi.nonce()))
}

/// `GET|POST /validate/radiuscheck`: 204 on accept, an empty 400 otherwise.
pub async fn radiuscheck(State(app): State<App>, mut pi: Pi) -> Response {
    match run_check(&app, &mut pi).await {
        Ok(r) if r.authentication == Authentication::Accept => {
            StatusCode::NO_CONTENT.into_response()
        }
        _ => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "",
        )
            .into_response(),
    }
}

/// `GET|POST /validate/triggerchallenge` (admin).
pub async fn triggerchallenge(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let admin = pi.admin(&app, "triggerchallenge").await?;
    let name = "validate_triggerchallenge";
    let subject = event::pre_subject(&pi, None);
    event::fire(&app, &pi, "pre", name, Some(&admin), &subject, None).await;
    let mut audit = AuditEntry::default();
    let r = app.services.trigger_challenge(&pi.params, &mut audit).await;
    if let Ok(a) = &r {
        audit.authentication = a.authentication.as_str().into();
        let result = otpgate_service::events::CallResult::of_auth(a);
        event::fire(&app, &pi, "post", name, Some(&admin), &audit, Some(&result)).await;
    }
    pi.record(audit);
    count(&app, "triggerchallenge", &r);
    Ok(envelope::auth(r?, pi.nonce()))
}

/// `GET /validate/polltransaction?transaction_id=…`.
pub async fn polltransaction(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let r = app
        .services
        .poll_transaction(pi.params.get("transaction_id"))
        .await?;
    Ok(envelope::auth(r, pi.nonce()))
}

/// `GET /validate/polltransaction/<tid>`.
pub async fn polltransaction_path(
    State(app): State<App>,
    Path(tid): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    let r = app.services.poll_transaction(Some(&tid)).await?;
    Ok(envelope::auth(r, pi.nonce()))
}
