//! `/smsgateway`: gateway definitions (options and headers as privacyIDEA's free-form
//! maps, secrets censored), the provider catalogue, and `/fraud/blocks` (blocked
//! destination prefixes, an otpgate addition).

use super::{ApiError, Pi, envelope};
use crate::params::{Params, is_true};
use crate::state::App;
use axum::extract::{Path, State};
use axum::response::Response;
use otpgate_service::ServiceError;
use otpgate_service::gateways::{GatewayInput, GatewayView};
use otpgate_store::{BlockedPrefix, MessageFilter, SmsMessageRow};
use serde_json::{Value, json};

/// `POST /smsgateway`'s parameters: `option.K`, `header.K`, `secret.option.K`,
/// `secret.header.K`.
pub fn gateway_input(p: &Params) -> GatewayInput {
    let mut g = GatewayInput {
        name: p.get("name").map(str::to_owned),
        module: p.get("module").map(str::to_owned),
        description: p.get("description").map(str::to_owned),
        ..Default::default()
    };
    for (k, v) in p.iter() {
        if let Some(key) = k.strip_prefix("option.") {
            g.options.insert(key.to_owned(), v.clone());
        } else if let Some(key) = k.strip_prefix("header.") {
            g.headers.insert(key.to_owned(), v.clone());
        } else if let Some(key) = k.strip_prefix("secret.option.") {
            g.secret_options.insert(key.to_owned(), is_true(v));
        } else if let Some(key) = k.strip_prefix("secret.header.") {
            g.secret_headers.insert(key.to_owned(), is_true(v));
        }
    }
    g
}

/// A gateway in privacyIDEA's shape.
fn gateway_json(g: &GatewayView) -> Value {
    json!({
        "id": g.id, "name": g.name, "providermodule": g.module,
        "description": if g.description.is_empty() { Value::Null } else { json!(g.description) },
        "options": g.options, "headers": g.headers,
        "secret_options": g.secret_options, "secret_headers": g.secret_headers,
    })
}

async fn list(app: &App, pi: &Pi, id: Option<String>) -> Result<Response, ApiError> {
    let list = pi
        .run(app, Some("smsgateway_read"), None, move |s, _| {
            Box::pin(async move { s.list_gateways(id.as_deref()).await })
        })
        .await?;
    Ok(pi.reply(list.iter().map(gateway_json).collect()))
}

/// `GET /smsgateway/`.
pub async fn gateways(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    list(&app, &pi, None).await
}

/// `GET /smsgateway/<id>`.
pub async fn gateway(
    State(app): State<App>,
    Path(id): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    list(&app, &pi, Some(id)).await
}

/// `GET /smsgateway/providers`.
pub async fn providers(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.run(&app, Some("smsgateway_read"), None, |_, _| {
        Box::pin(async { Ok(()) })
    })
    .await?;
    Ok(pi.reply(otpgate_gateways::providers_description()))
}

/// `POST /smsgateway`: the id; `detail.warnings` says what an SMS of it will cost.
pub async fn save(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let input = gateway_input(&pi.params);
    let warnings = input.warnings();
    let id = pi
        .run(&app, Some("smsgateway_write"), None, move |s, cx| {
            Box::pin(async move { s.save_gateway(&input, cx).await })
        })
        .await?;
    Ok(pi.reply_warned(json!(id), warnings))
}

/// `DELETE /smsgateway/<name>`.
pub async fn delete(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.answer(&app, Some("smsgateway_write"), move |s, cx| {
        Box::pin(async move { s.delete_gateway(&name, cx).await })
    })
    .await
}

/// `DELETE /smsgateway/option/<gwid>/<key>`.
pub async fn delete_option(
    State(app): State<App>,
    Path((gwid, key)): Path<(String, String)>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.answer(&app, Some("smsgateway_write"), move |s, _| {
        Box::pin(async move { s.delete_gateway_option(&gwid, &key).await })
    })
    .await
}

fn block_json(b: &BlockedPrefix) -> Value {
    json!({
        "prefix": b.prefix, "source": b.source, "reason": b.reason,
        "blocked_at": envelope::iso(b.blocked_at),
    })
}

/// `GET /fraud/blocks`: the blocked destination prefixes.
pub async fn prefix_blocks(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let blocks = pi
        .run(&app, Some("smsgateway_read"), None, |s, _| {
            Box::pin(s.list_prefix_blocks())
        })
        .await?;
    Ok(pi.reply(blocks.iter().map(block_json).collect()))
}

/// `POST /fraud/blocks/<prefix>` (`reason`): blocks a destination prefix.
pub async fn block_prefix(
    State(app): State<App>,
    Path(prefix): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    let reason = pi
        .params
        .get("reason")
        .unwrap_or("blocked by an admin")
        .to_owned();
    pi.answer(&app, Some("smsgateway_write"), move |s, cx| {
        Box::pin(async move { s.block_prefix(&prefix, &reason, cx).await })
    })
    .await
}

/// `DELETE /fraud/blocks/<prefix>`: lifts a block.
pub async fn unblock_prefix(
    State(app): State<App>,
    Path(prefix): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.answer(&app, Some("smsgateway_write"), move |s, cx| {
        Box::pin(async move { s.unblock_prefix(&prefix, cx).await })
    })
    .await
}

/// `GET` or `POST /smsgateway/dlr/<reference>`: a delivery receipt (the URL the `{dlr_url}`
/// tag gave the gateway). `result.value` says whether it changed the SMS's state; an unknown
/// reference is 404 and changes nothing.
pub async fn receipt(
    State(app): State<App>,
    Path(reference): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    let params: std::collections::BTreeMap<String, String> = pi
        .params
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let taken = pi
        .run(&app, None, None, move |s, cx| {
            Box::pin(async move { s.delivery_receipt(&reference, &params, cx).await })
        })
        .await?;
    Ok(pi.reply(json!(taken.changed)))
}

/// A time filter: Unix seconds or RFC 3339, as milliseconds.
fn time_ms(p: &Params, key: &str) -> Result<Option<i64>, ServiceError> {
    let Some(v) = p.get(key).map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Ok(secs) = v.parse::<i64>() {
        return Ok(Some(secs.saturating_mul(1000)));
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| Some(t.timestamp_millis()))
        .map_err(|_| {
            ServiceError::Parameter(format!(
                "{key} must be Unix seconds or a time like 2026-12-05T10:00:00Z."
            ))
        })
}

fn message_json(m: &SmsMessageRow) -> Value {
    let at = |ms: i64| {
        (ms > 0)
            .then(|| chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339()))
            .flatten()
    };
    // Not the reference: it is the key to the receipt URL, which takes no sign-in.
    json!({
        "message_id": m.message_id,
        "transaction_id": m.transaction_id, "serial": m.serial, "user": m.user, "realm": m.realm,
        "gateway": m.gateway, "country": m.country, "prefix": m.prefix, "parts": m.parts,
        "state": m.state, "status": m.status,
        "sent": at(m.sent_at), "accepted": at(m.accepted_at), "done": at(m.done_at),
        "delivery_ms": (m.state == "delivered" && m.done_at >= m.sent_at).then(|| m.done_at - m.sent_at),
    })
}

/// `GET /smsgateway/messages`: one record per SMS, newest first; filters `transaction_id`,
/// `serial`, `user`, `gateway`, `state`, `since` and `until` (Unix seconds or RFC 3339),
/// `page`, `pagesize` (default 15).
pub async fn messages(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let p = pi.params.clone();
    let page = pi
        .run(&app, Some("smsgateway_read"), None, move |s, cx| {
            Box::pin(async move {
                let reach = cx.admin_reach().clone();
                let text = |k: &str| {
                    p.get(k)
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                };
                let filter = MessageFilter {
                    transaction_id: text("transaction_id"),
                    serial: text("serial"),
                    user: text("user"),
                    gateway: text("gateway"),
                    state: text("state"),
                    since_ms: time_ms(&p, "since")?,
                    until_ms: time_ms(&p, "until")?,
                };
                let page = p.int("page")?.unwrap_or(1);
                let size = p.int("pagesize")?.unwrap_or(15);
                s.list_messages(&filter, page, size, &reach).await
            })
        })
        .await?;
    let mut v = super::token::page_json(&page, "messages", message_json);
    if let Some(m) = v.as_object_mut() {
        m.insert("current".into(), json!(page.page));
    }
    Ok(pi.reply(v))
}

/// `GET /smsgateway/stats`: delivery per gateway (country empty) and per gateway and
/// destination country, for SMS sent in `[since, until)` (Unix seconds or RFC 3339; default
/// the last 24 hours).
pub async fn stats(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let p = pi.params.clone();
    let (routes, since, until) = pi
        .run(&app, Some("smsgateway_read"), None, move |s, _| {
            Box::pin(async move {
                let now = s.clock().now_ms();
                // Up to and including now.
                let until = time_ms(&p, "until")?.unwrap_or(now + 1);
                let since = time_ms(&p, "since")?.unwrap_or(until.saturating_sub(86_400_000));
                if until.saturating_sub(since) > 31 * 86_400_000 {
                    return Err(ServiceError::Parameter(
                        "The window is at most 31 days (since, until).".into(),
                    ));
                }
                let routes = s.delivery_stats(since, until).await?;
                Ok(Routes(routes, since, until))
            })
        })
        .await
        .map(|r| (r.0, r.1, r.2))?;
    let at = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339());
    let round = |v: Option<f64>| v.map(|x| (x * 10.0).round() / 10.0);
    let list: Vec<Value> = routes
        .iter()
        .map(|r| {
            json!({
                "gateway": r.gateway, "country": r.country, "sent": r.sent, "not_sent": r.not_sent,
                "delivered": r.delivered, "failed": r.failed, "pending": r.pending,
                "median_ms": r.median_ms, "p95_ms": r.p95_ms,
                "delivery_rate": round(r.delivery_rate), "conversion": round(r.conversion),
                "flagged": r.flagged,
            })
        })
        .collect();
    Ok(pi.reply(json!({"routes": list, "since": at(since), "until": at(until)})))
}

/// The statistics and their window, as one call's outcome.
struct Routes(Vec<otpgate_service::delivery::RouteStats>, i64, i64);

impl otpgate_service::call::Outcome for Routes {}
