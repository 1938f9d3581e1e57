//! `/validate/*`: privacyIDEA's parameters parsed into typed requests, the service's typed
//! outcomes rendered as privacyIDEA's answers (`detail`, `multi_challenge`, …), and the auth
//! and SMS counters read from those outcomes.

use super::{ApiError, Pi, envelope};
use crate::params::Params;
use crate::state::App;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use otpgate_service::ServiceError;
use otpgate_service::users::User;
use otpgate_service::validate::{
    Challenges, CheckOutcome, CheckRequest, Checked, SEND_FAILED, SamlChecked, TriggerRequest,
    Triggered,
};
use serde_json::{Map, Value, json};

/// `/validate/check`'s parameters.
fn check_request(p: &Params) -> CheckRequest {
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
        tokentype: s("type"),
    }
}

/// `/validate/triggerchallenge`'s parameters.
fn trigger_request(p: &Params) -> TriggerRequest {
    let s = |k: &str| p.get(k).map(str::to_owned);
    TriggerRequest {
        user: s("user"),
        realm: s("realm"),
        serial: s("serial"),
        challenge: s("challenge"),
        exception: p.flag("exception"),
        tokentype: s("type"),
    }
}

/// A challenge's expiry as privacyIDEA shows it: local time with microseconds.
fn local_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .naive_local()
                .format("%Y-%m-%d %H:%M:%S%.6f")
                .to_string()
        })
        .unwrap_or_default()
}

/// The keys every answer about challenges has: `message`, `messages`, `multi_challenge`,
/// `transaction_ids`, and `sms_error` and `retry_after` when there are any.
fn challenge_keys(d: &mut Map<String, Value>, c: &Challenges) {
    let message = c.message();
    if !message.is_empty() {
        d.insert("message".into(), json!(message));
    }
    d.insert("messages".into(), json!(c.messages));
    let tid = &c.transaction_id;
    let multi: Vec<Value> = c
        .sent
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({
                "attributes": attributes(i, tid, s.valid_until_ms), "client_mode": "interactive",
                "message": s.prompt, "serial": s.serial, "transaction_id": tid, "type": "sms",
            })
        })
        .collect();
    d.insert("multi_challenge".into(), json!(multi));
    d.insert("transaction_ids".into(), json!(vec![tid; c.sent.len()]));
    if !c.errors.is_empty() {
        d.insert("sms_error".into(), json!(c.errors.join("; ")));
    }
    if let Some(r) = c.retry_after {
        d.insert("retry_after".into(), json!(r));
    }
}

/// A challenge's `attributes`: the first names no `state`, later ones the transaction.
fn attributes(index: usize, tid: &str, valid_until_ms: i64) -> Value {
    let state = if index == 0 { Value::Null } else { json!(tid) };
    json!({"state": state, "valid_until": local_time(valid_until_ms)})
}

/// privacyIDEA's `detail` of a validate answer.
pub fn detail(o: &CheckOutcome) -> Map<String, Value> {
    let mut d = Map::new();
    match o {
        CheckOutcome::Accept { message, token } => {
            d.insert("message".into(), json!(message));
            if let Some(t) = token {
                d.insert("serial".into(), json!(t.serial));
                if let (Some(len), Some(ty)) = (t.otplen, t.tokentype()) {
                    d.insert("type".into(), json!(ty));
                    d.insert("otplen".into(), json!(len));
                }
            }
        }
        CheckOutcome::Challenge(c) => {
            challenge_keys(&mut d, c);
            if let Some((i, last)) = c.sent.iter().enumerate().next_back() {
                d.insert(
                    "attributes".into(),
                    attributes(i, &c.transaction_id, last.valid_until_ms),
                );
                d.insert("serial".into(), json!(last.serial));
            }
            d.insert("client_mode".into(), json!("interactive"));
            d.insert(
                "preferred_client_mode".into(),
                json!(c.preferred_client_mode),
            );
            d.insert("transaction_id".into(), json!(c.transaction_id));
            d.insert("type".into(), json!("sms"));
            if c.enrollment {
                // privacyIDEA's enroll_via_multichallenge marks (never optional here).
                d.insert("enroll_via_multichallenge".into(), json!(true));
                d.insert("enroll_via_multichallenge_optional".into(), json!(false));
            }
        }
        CheckOutcome::Reject(r) => {
            match &r.attempt {
                Some(c) => challenge_keys(&mut d, c),
                None => {
                    d.insert("message".into(), json!(r.message));
                }
            }
            if let Some(t) = &r.token {
                d.insert("serial".into(), json!(t.serial));
                d.insert("type".into(), json!("sms"));
                if let Some(len) = t.otplen {
                    d.insert("otplen".into(), json!(len));
                }
            }
            if let Some(s) = r.retry_after {
                d.insert("retry_after".into(), json!(s));
            }
        }
    }
    d
}

/// Counts the outcome of a validate call and the SMS it sent.
fn count<T>(
    app: &App,
    endpoint: &str,
    r: &Result<T, ServiceError>,
    outcome: impl Fn(&T) -> &CheckOutcome,
) {
    let o = r.as_ref().ok().map(outcome);
    let result = o.map_or("error", |o| o.authentication().as_str());
    app.metrics.add(
        "otpgate_auth_total",
        &[("endpoint", endpoint), ("result", result)],
        1,
    );
    let Some(c) = o.and_then(CheckOutcome::challenges) else {
        return;
    };
    let sent = c.sent.iter().filter(|s| s.gateway.is_some()).count();
    let failed = c.messages.iter().filter(|m| *m == SEND_FAILED).count();
    for (n, result) in [(sent, "sent"), (failed, "failed")] {
        if n > 0 {
            app.metrics
                .add("otpgate_sms_total", &[("result", result)], n as u64);
        }
    }
}

async fn run_check(app: &App, pi: &Pi) -> Result<Checked, ServiceError> {
    let req = check_request(&pi.params);
    let r = pi
        .run(app, None, Some("validate_check"), move |s, cx| {
            Box::pin(s.check_shown(req, cx))
        })
        .await;
    count(app, "check", &r, |o: &Checked| &o.outcome);
    r
}

/// A user's attributes as privacyIDEA shows them (`detail.user`, SAML attributes).
fn user_info(u: &User) -> Value {
    json!({
        "username": u.login, "realm": u.realm, "resolver": u.resolver, "email": u.email,
        "surname": u.surname, "givenname": u.givenname,
        "mobile": u.mobile.first().cloned().unwrap_or_default(), "phone": u.phone,
        "userid": u.uid, "description": u.description,
    })
}

/// `/validate/check`'s answer: `value` true when accepted, and the `detail` as the
/// authorization policies shape it.
pub fn check_answer(c: &Checked, nonce: Option<&str>) -> Response {
    let o = &c.outcome;
    let value = json!(matches!(o, CheckOutcome::Accept { .. }));
    let mut d = detail(o);
    if let Some(u) = &c.shown.user {
        let mut info = user_info(u);
        if let Some(fields) = info.as_object_mut() {
            // privacyIDEA blanks a password the user store might hold.
            fields.insert("password".into(), json!(""));
        }
        d.insert("user".into(), info);
    }
    if let Some((resolver, realm)) = &c.shown.resolver {
        d.insert("user-resolver".into(), json!(resolver));
        d.insert("user-realm".into(), json!(realm));
    }
    if c.shown.no_detail {
        d.clear();
    }
    envelope::auth(value, o.authentication(), d, nonce)
}

/// `GET|POST /validate/check`.
pub async fn check(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let c = run_check(&app, &pi).await?;
    Ok(check_answer(&c, pi.nonce()))
}

/// `GET|POST /validate/samlcheck` (removed in privacyIDEA 3.14, still called by older
/// SimpleSAMLphp modules): `value` is `{"auth": …, "attributes": {…}}`, the attributes of
/// the user when accepted.
pub async fn samlcheck(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let req = check_request(&pi.params);
    let r = pi
        .run(&app, None, Some("validate_check"), move |s, cx| {
            Box::pin(s.saml_check(req, cx))
        })
        .await;
    count(&app, "samlcheck", &r, |o: &SamlChecked| &o.outcome);
    let o = r?;
    let accepted = matches!(o.outcome, CheckOutcome::Accept { .. });
    let attributes = o.user.as_ref().map_or_else(|| json!({}), user_info);
    Ok(envelope::auth(
        json!({"auth": accepted, "attributes": attributes}),
        o.outcome.authentication(),
        detail(&o.outcome),
        pi.nonce(),
    ))
}

/// `GET|POST /validate/radiuscheck`: 204 on accept, an empty 400 otherwise.
pub async fn radiuscheck(State(app): State<App>, pi: Pi) -> Response {
    match run_check(&app, &pi).await.map(|c| c.outcome) {
        Ok(CheckOutcome::Accept { .. }) => StatusCode::NO_CONTENT.into_response(),
        _ => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "",
        )
            .into_response(),
    }
}

/// `GET|POST /validate/triggerchallenge` (admin): `value` is the number of challenges sent.
pub async fn triggerchallenge(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let req = trigger_request(&pi.params);
    let r = pi
        .run(
            &app,
            Some("triggerchallenge"),
            Some("validate_triggerchallenge"),
            move |s, cx| Box::pin(s.trigger_challenge(req, cx)),
        )
        .await;
    count(&app, "triggerchallenge", &r, |t: &Triggered| &t.0);
    let t = r?;
    Ok(envelope::auth(
        json!(t.count()),
        t.0.authentication(),
        detail(&t.0),
        pi.nonce(),
    ))
}

async fn poll(app: &App, pi: &Pi, tid: Option<String>) -> Result<Response, ApiError> {
    let status = pi
        .run(app, None, None, move |s, _| {
            Box::pin(async move { s.poll_transaction(tid.as_deref()).await })
        })
        .await?;
    let mut d = Map::new();
    d.insert("challenge_status".into(), json!(status.as_str()));
    Ok(envelope::auth(
        json!(false),
        otpgate_service::call::Authentication::Reject,
        d,
        pi.nonce(),
    ))
}

/// `GET /validate/polltransaction?transaction_id=…`.
pub async fn polltransaction(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let tid = pi.params.get("transaction_id").map(str::to_owned);
    poll(&app, &pi, tid).await
}

/// `GET /validate/polltransaction/<tid>`.
pub async fn polltransaction_path(
    State(app): State<App>,
    Path(tid): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    poll(&app, &pi, Some(tid)).await
}
