//! The `/token/*` endpoints that change owners, realms, info, PINs and challenges:
//! `assign`, `unassign`, `revoke`, `description`, `realm/<serial>`, `info/<serial>/<key>`,
//! `copypin`, `copyuser`, `setrandompin` and `DELETE challenges/…`, with privacyIDEA's
//! parameters and answers.

use super::token::user_ref;
use super::{ApiError, Pi, envelope};
use crate::state::App;
use axum::extract::{Path, State};
use axum::response::Response;
use otpgate_service::tokens::{Assignment, ChallengesDeleted, TokenTarget, Unassigned};
use serde_json::{Map, Value, json};

/// The serial of the path, else of the `serial` parameter.
fn target(pi: &Pi) -> TokenTarget {
    TokenTarget {
        serial: pi
            .path_serial()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| pi.params.get_nonblank("serial"))
            .map(str::to_owned),
        user: user_ref(&pi.params),
    }
}

fn owned(pi: &Pi, k: &str) -> Option<String> {
    pi.params.get(k).map(str::to_owned)
}

/// `POST /token/assign` (`serial`, `user`, `realm`, `pin`).
pub async fn assign(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let a = Assignment {
        serial: owned(&pi, "serial"),
        user: user_ref(&pi.params),
        pin: owned(&pi, "pin"),
    };
    let done = pi
        .run(&app, Some("assign"), Some("token_assign"), move |s, cx| {
            Box::pin(async move { s.assign_token(a, cx).await })
        })
        .await?;
    Ok(pi.reply(json!(done)))
}

/// `POST /token/unassign` (`serial`, a comma-separated list or `serials`; else `user`).
pub async fn unassign(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let mut serials = pi.params.list("serial").unwrap_or_default();
    for s in pi.params.list("serials").unwrap_or_default() {
        if !serials.contains(&s) {
            serials.push(s);
        }
    }
    let user = user_ref(&pi.params);
    let done = pi
        .run(
            &app,
            Some("unassign"),
            Some("token_unassign"),
            move |s, cx| Box::pin(async move { s.unassign_tokens(serials, user, cx).await }),
        )
        .await?;
    Ok(pi.reply(match done {
        Unassigned::One(n) => json!(n),
        Unassigned::Many {
            count_success,
            failed,
            unauthorized,
        } => {
            json!({"count_success": count_success, "failed": failed, "unauthorized": unauthorized})
        }
    }))
}

async fn revoke_of(app: &App, pi: Pi) -> Result<Response, ApiError> {
    let t = target(&pi);
    let n = pi
        .run(app, Some("revoke"), Some("token_revoke"), move |s, cx| {
            Box::pin(async move { s.revoke_tokens(t, cx).await })
        })
        .await?;
    Ok(pi.reply(json!(n)))
}

/// `POST /token/revoke`.
pub async fn revoke(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    revoke_of(&app, pi).await
}

/// `POST /token/revoke/<serial>`.
pub async fn revoke_one(
    State(app): State<App>,
    Path(serial): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    revoke_of(&app, pi.with_serial(&serial)).await
}

async fn description_of(app: &App, pi: Pi) -> Result<Response, ApiError> {
    let serial = target(&pi).serial.unwrap_or_default();
    let description = owned(&pi, "description");
    let done = pi
        .run(
            app,
            Some("setdescription"),
            Some("token_set"),
            move |s, cx| {
                Box::pin(async move { s.set_token_description(&serial, description, cx).await })
            },
        )
        .await?;
    Ok(pi.reply(json!(done)))
}

/// `POST /token/description` (`serial`, `description`).
pub async fn description(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    description_of(&app, pi).await
}

/// `POST /token/description/<serial>`.
pub async fn description_one(
    State(app): State<App>,
    Path(serial): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    description_of(&app, pi.with_serial(&serial)).await
}

/// `POST /token/realm/<serial>` (`realms`: comma-separated; empty removes all but the
/// owner's).
pub async fn realms(
    State(app): State<App>,
    Path(serial): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    let pi = pi.with_serial(&serial);
    // privacyIDEA: `realms` is required; a blank string is missing, `[]` removes all.
    let realms = pi
        .params
        .get_nonblank("realms")
        .and_then(|_| pi.params.list("realms"));
    let done = pi
        .run(
            &app,
            Some("tokenrealms"),
            Some("token_realm"),
            move |s, cx| {
                Box::pin(async move {
                    let realms =
                        realms.ok_or_else(|| otpgate_service::ServiceError::missing("realms"))?;
                    s.set_token_realms(&serial, &realms, cx).await
                })
            },
        )
        .await?;
    Ok(pi.reply(json!(done)))
}

/// `POST /token/info/<serial>/<key>` (`value`).
pub async fn set_info(
    State(app): State<App>,
    Path((serial, key)): Path<(String, String)>,
    pi: Pi,
) -> Result<Response, ApiError> {
    let pi = pi.with_serial(&serial);
    let value = owned(&pi, "value");
    let done = pi
        .run(
            &app,
            Some("settokeninfo"),
            Some("token_info"),
            move |s, cx| Box::pin(async move { s.set_token_info(&serial, &key, value, cx).await }),
        )
        .await?;
    Ok(pi.reply(json!(done)))
}

/// `DELETE /token/info/<serial>/<key>`.
pub async fn delete_info(
    State(app): State<App>,
    Path((serial, key)): Path<(String, String)>,
    pi: Pi,
) -> Result<Response, ApiError> {
    let pi = pi.with_serial(&serial);
    let done = pi
        .run(
            &app,
            Some("settokeninfo"),
            Some("token_info"),
            move |s, cx| Box::pin(async move { s.delete_token_info(&serial, &key, cx).await }),
        )
        .await?;
    Ok(pi.reply(json!(done)))
}

/// `from` and `to` of the copy endpoints.
fn copy_pair(pi: &Pi) -> Result<(String, String), otpgate_service::ServiceError> {
    let get = |k: &str| {
        pi.params
            .get(k)
            .map(str::to_owned)
            .ok_or_else(|| otpgate_service::ServiceError::missing(k))
    };
    Ok((get("from")?, get("to")?))
}

/// `POST /token/copypin` (`from`, `to`).
pub async fn copypin(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let pair = copy_pair(&pi);
    let done = pi
        .run(
            &app,
            Some("copytokenpin"),
            Some("token_copypin"),
            move |s, cx| {
                Box::pin(async move {
                    let (from, to) = pair?;
                    s.copy_token_pin(&from, &to, cx).await
                })
            },
        )
        .await?;
    Ok(pi.reply(json!(done)))
}

/// `POST /token/copyuser` (`from`, `to`).
pub async fn copyuser(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let pair = copy_pair(&pi);
    let done = pi
        .run(
            &app,
            Some("copytokenuser"),
            Some("token_copyuser"),
            move |s, cx| {
                Box::pin(async move {
                    let (from, to) = pair?;
                    s.copy_token_user(&from, &to, cx).await
                })
            },
        )
        .await?;
    Ok(pi.reply(json!(done)))
}

async fn setrandompin_of(app: &App, pi: Pi) -> Result<Response, ApiError> {
    let t = target(&pi);
    let done = pi
        .run(
            app,
            Some("setrandompin"),
            Some("token_setrandompin"),
            move |s, cx| Box::pin(async move { s.set_random_pin(t, cx).await }),
        )
        .await?;
    let mut detail = Map::new();
    detail.insert("pin".into(), json!(done.pin));
    Ok(envelope::ok(json!(done.count), Some(detail), pi.nonce()))
}

/// `POST /token/setrandompin` (`serial`): the new PIN in `detail.pin`.
pub async fn setrandompin(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    setrandompin_of(&app, pi).await
}

/// `POST /token/setrandompin/<serial>`.
pub async fn setrandompin_one(
    State(app): State<App>,
    Path(serial): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    setrandompin_of(&app, pi.with_serial(&serial)).await
}

fn deleted(d: ChallengesDeleted) -> Value {
    json!({"status": true, "deleted": d.deleted})
}

/// `DELETE /token/challenges/transaction/<transaction_id>`.
pub async fn cancel_challenge(
    State(app): State<App>,
    Path(tid): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    let done = pi
        .run(
            &app,
            Some("cancelchallenge"),
            Some("token_cancelchallenge"),
            move |s, cx| Box::pin(async move { s.cancel_challenge(&tid, cx).await }),
        )
        .await?;
    Ok(pi.reply(deleted(done)))
}

/// `DELETE /token/challenges/expired`.
pub async fn delete_expired_challenges(
    State(app): State<App>,
    pi: Pi,
) -> Result<Response, ApiError> {
    let done = pi
        .run(&app, Some("cancelchallenge"), None, move |s, cx| {
            Box::pin(async move { s.delete_expired_challenges(cx).await })
        })
        .await?;
    Ok(pi.reply(deleted(done)))
}
