//! `/token/*`: privacyIDEA's parameters parsed into typed token requests, and tokens and
//! challenges rendered in privacyIDEA's shape.

use super::{ApiError, Pi, envelope};
use crate::params::Params;
use crate::state::App;
use axum::extract::{Path, State};
use axum::response::Response;
use otpgate_core::params::is_true;
use otpgate_service::tokens::{
    ChallengeView, TokenAttributes, TokenInit, TokenQuery, TokenTarget, TokenView, UserRef,
};
use otpgate_service::{Page, ServiceError};
use serde_json::{Map, Value, json};

/// Token info keys set by the server (privacyIDEA's `readonly_info_keys`).
const READONLY_INFO: &[&str] = &[
    "assignment_date",
    "phone",
    "tokenkind",
    "hashlib",
    "creation_date",
    "count_auth_success",
    "count_auth",
    "last_auth",
];

/// The `user` and `realm` parameters.
pub fn user_ref(p: &Params) -> Option<UserRef> {
    p.get_nonblank("user").map(|login| UserRef {
        login: login.to_owned(),
        realm: p.get_nonblank("realm").map(str::to_owned),
    })
}

/// `/token/init`'s parameters.
fn token_init(p: &Params) -> Result<TokenInit, ServiceError> {
    Ok(TokenInit {
        tokentype: p.get("type").map(str::to_owned),
        user: user_ref(p),
        serial: p.get("serial").map(str::to_owned),
        phone: p.get("phone").map(str::to_owned),
        dynamic_phone: p.flag("dynamic_phone"),
        hashlib: p.get("hashlib").map(str::to_owned),
        otplen: p.int("otplen")?,
        otpkey: p.get("otpkey").map(str::to_owned),
        genkey: p.flag("genkey"),
        pin: p.get("pin").map(str::to_owned),
        description: p.get("description").map(str::to_owned),
        sms_info: p
            .iter()
            .filter(|(k, _)| k.starts_with("sms."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        verify: p.get("verify").map(str::to_owned),
    })
}

/// `GET /token/`'s parameters.
fn token_query(p: &Params) -> Result<TokenQuery, ServiceError> {
    let s = |k: &str| p.get_nonblank(k).map(str::to_owned);
    let user = user_ref(p);
    Ok(TokenQuery {
        serial: s("serial"),
        tokentype: s("type"),
        // `realm` names the user's realm when a user is given, else the tokens' realm.
        realm: if user.is_none() {
            s("realm").or_else(|| s("tokenrealm"))
        } else {
            s("tokenrealm")
        },
        description: s("description"),
        active: p.get_nonblank("active").map(crate::params::is_true),
        assigned: p.get_nonblank("assigned").map(crate::params::is_true),
        info: s("infokey").zip(s("infovalue")),
        user,
        page: p.int("page")?,
        page_size: p.int("pagesize")?,
        sort_by: s("sortby"),
        descending: p
            .get_nonblank("sortdir")
            .is_some_and(|d| d.eq_ignore_ascii_case("desc")),
    })
}

/// A token in privacyIDEA's shape.
pub fn token_json(t: &TokenView) -> Value {
    let owner = t.owner.clone().unwrap_or_default();
    let info: Map<String, Value> = t.info.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let readonly: Vec<&str> = READONLY_INFO
        .iter()
        .copied()
        .filter(|k| t.info.contains_key(*k))
        .collect();
    json!({
        "id": t.id, "serial": t.serial, "tokentype": t.tokentype, "description": t.description,
        "active": t.active, "revoked": t.revoked, "locked": t.locked, "failcount": t.failcount, "maxfail": t.maxfail,
        "count": t.count, "count_window": t.count_window, "sync_window": t.sync_window, "otplen": t.otplen,
        "rollout_state": t.rollout_state, "info": info,
        "username": owner.username, "user_id": owner.user_id, "resolver": owner.resolver, "user_realm": owner.realm,
        "realms": t.realms,
        "tokengroup": [], "container_serial": "", "user_editable": false,
        "readonly_info_keys": readonly.clone(), "undeletable_info_keys": readonly, "settable_info_keys": ["phone", "hashlib"],
    })
}

/// A page of a listing: its items under `key`, `count`, `prev` and `next`.
pub fn page_json<T>(page: &Page<T>, key: &str, item: impl Fn(&T) -> Value) -> Value {
    let mut m = Map::new();
    m.insert(key.into(), page.items.iter().map(item).collect());
    m.insert("count".into(), json!(page.count));
    m.insert("prev".into(), json!(page.prev()));
    m.insert("next".into(), json!(page.next()));
    Value::Object(m)
}

fn challenge_json(c: &ChallengeView) -> Value {
    let fmt = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
            .unwrap_or_default()
    };
    json!({
        "transaction_id": c.transaction_id, "serial": c.serial, "challenge": c.challenge, "data": {},
        "timestamp": fmt(c.created_ms), "expiration": fmt(c.expires_ms), "received_count": c.received_count,
        "otp_received": c.received_count > 0, "otp_valid": c.otp_valid,
    })
}

/// `POST /token/init`.
pub async fn init(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let p = pi.params.clone();
    let done = pi
        .run(&app, Some("enrollSMS"), Some("token_init"), move |s, cx| {
            Box::pin(async move { s.init_token(token_init(&p)?, cx).await })
        })
        .await?;
    let mut detail = Map::new();
    detail.insert("serial".into(), json!(done.serial));
    detail.insert("rollout_state".into(), json!(done.rollout_state));
    if let Some(prompt) = done.verify_prompt {
        detail.insert("verify".into(), json!({"message": prompt}));
    }
    Ok(envelope::ok(Value::Bool(true), Some(detail), pi.nonce()))
}

/// `GET /token/`.
pub async fn list(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let p = pi.params.clone();
    let page = pi
        .run(&app, Some("tokenlist"), None, move |s, cx| {
            Box::pin(async move { s.list_tokens(&token_query(&p)?, cx.admin_reach()).await })
        })
        .await?;
    Ok(pi.reply(page_json(&page, "tokens", token_json)))
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

impl Action {
    /// The admin right and the event.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Action::Enable => ("enable", "token_enable"),
            Action::Disable => ("disable", "token_disable"),
            Action::Reset => ("reset", "token_reset"),
            Action::SetPin => ("setpin", "token_setpin"),
            Action::Set => ("set", "token_set"),
            Action::Delete => ("delete", "token_delete"),
        }
    }
}

async fn run(app: &App, pi: Pi, action: Action) -> Result<Response, ApiError> {
    let (right, event) = action.names();
    let p = pi.params.clone();
    let path_serial = pi.path_serial().map(str::to_owned);
    let n = pi
        .run(app, Some(right), Some(event), move |s, cx| {
            Box::pin(async move {
                let target = TokenTarget {
                    serial: path_serial
                        .filter(|s| !s.trim().is_empty())
                        .or_else(|| p.get_nonblank("serial").map(str::to_owned)),
                    user: user_ref(&p),
                };
                Ok(match action {
                    Action::Enable => s.set_tokens_active(target, true, cx).await?,
                    Action::Disable => s.set_tokens_active(target, false, cx).await?,
                    Action::Reset => s.reset_tokens(target, cx).await?,
                    Action::SetPin => {
                        let pin = p.get("otppin").map(str::to_owned);
                        s.set_token_pin(target, pin, cx).await?
                    }
                    Action::Set => {
                        let a = TokenAttributes {
                            max_failcount: p.int("max_failcount")?,
                            count_window: p.int("count_window")?,
                            description: p.get("description").map(str::to_owned),
                            phone: p.get("phone").map(str::to_owned),
                            dynamic_phone: p.get_nonblank("dynamic_phone").map(is_true),
                            sms_identifier: p.get("sms.identifier").map(str::to_owned),
                        };
                        s.set_token_attributes(target, a, cx).await?
                    }
                    Action::Delete => s.delete_tokens(target, cx).await?,
                })
            })
        })
        .await?;
    Ok(pi.reply(json!(n)))
}

/// `POST /token/enable` (tokens of `user`, or `serial`).
pub async fn enable(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    run(&app, pi, Action::Enable).await
}
/// `POST /token/enable/<serial>`.
pub async fn enable_one(
    State(app): State<App>,
    Path(serial): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    run(&app, pi.with_serial(&serial), Action::Enable).await
}
/// `POST /token/disable`.
pub async fn disable(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    run(&app, pi, Action::Disable).await
}
/// `POST /token/disable/<serial>`.
pub async fn disable_one(
    State(app): State<App>,
    Path(serial): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    run(&app, pi.with_serial(&serial), Action::Disable).await
}
/// `POST /token/reset`.
pub async fn reset(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    run(&app, pi, Action::Reset).await
}
/// `POST /token/reset/<serial>`.
pub async fn reset_one(
    State(app): State<App>,
    Path(serial): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    run(&app, pi.with_serial(&serial), Action::Reset).await
}
/// `POST /token/setpin`.
pub async fn setpin(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    run(&app, pi, Action::SetPin).await
}
/// `POST /token/setpin/<serial>`.
pub async fn setpin_one(
    State(app): State<App>,
    Path(serial): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    run(&app, pi.with_serial(&serial), Action::SetPin).await
}
/// `POST /token/set`.
pub async fn set(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    run(&app, pi, Action::Set).await
}
/// `POST /token/set/<serial>`.
pub async fn set_one(
    State(app): State<App>,
    Path(serial): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    run(&app, pi.with_serial(&serial), Action::Set).await
}
/// `DELETE /token/<serial>`.
pub async fn delete_one(
    State(app): State<App>,
    Path(serial): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    run(&app, pi.with_serial(&serial), Action::Delete).await
}

async fn challenges_of(app: &App, pi: Pi) -> Result<Response, ApiError> {
    let serial = pi
        .path_serial()
        .filter(|s| !s.is_empty())
        .or(pi.params.get_nonblank("serial"))
        .map(str::to_owned);
    let list = pi
        .run(app, Some("getchallenges"), None, move |s, cx| {
            Box::pin(async move { s.list_challenges(serial.as_deref(), cx.admin_reach()).await })
        })
        .await?;
    let items: Vec<Value> = list.iter().map(challenge_json).collect();
    Ok(pi.reply(
        json!({"challenges": items, "count": list.len(), "current": 1, "prev": null, "next": null}),
    ))
}

/// `GET /token/challenges/`.
pub async fn challenges(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    challenges_of(&app, pi).await
}

/// `GET /token/challenges/<serial>`.
pub async fn challenges_one(
    State(app): State<App>,
    Path(serial): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    challenges_of(&app, pi.with_serial(&serial)).await
}
