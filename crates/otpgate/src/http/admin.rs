//! `/auth`, `/smsgateway`, `/system`, `/resolver`, `/realm`, `/defaultrealm`, `/user`,
//! `/policy`, `/audit`.

use super::{ApiError, Pi, envelope};
use crate::state::App;
use axum::extract::{Path, State};
use axum::response::Response;
use otpgate_service::auth::{ADMIN_RIGHTS, LoginRequest, SignedIn};
use otpgate_service::call::Authentication;
use serde_json::{Map, Value, json};

/// `POST /auth`.
pub async fn auth(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let p = &pi.params;
    let req = LoginRequest {
        username: p.get_nonblank("username").map(str::to_owned),
        password: p.get("password").map(str::to_owned),
        realm: p.get_nonblank("realm").map(str::to_owned),
    };
    let signed = pi
        .run(&app, None, Some("auth"), move |s, cx| {
            Box::pin(s.login(req, cx))
        })
        .await?;
    Ok(envelope::auth(
        login_value(&signed),
        Authentication::Accept,
        Map::new(),
        pi.nonce(),
    ))
}

/// privacyIDEA's `/auth` value: the JWT, whom it is for, and the web UI settings its clients
/// read.
fn login_value(s: &SignedIn) -> Value {
    json!({
        "token": s.token, "role": s.role.as_str(), "username": s.username, "realm": s.realm,
        "log_level": 30, "auth": true, "rights": ADMIN_RIGHTS, "menus": ["tokens", "users", "config", "audit"],
        "default_tokentype": "sms", "token_page_size": 15, "user_page_size": 15, "audit_page_size": 10,
        "logout_time": 120, "token_wizard": false, "token_wizard_2nd": false, "hide_welcome": true,
    })
}

/// `GET /smsgateway/`.
pub async fn gateways(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "smsgateway_read").await?;
    Ok(pi.reply(app.services.list_gateways(None).await?))
}

/// `GET /smsgateway/<id>`.
pub async fn gateway(
    State(app): State<App>,
    Path(id): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "smsgateway_read").await?;
    Ok(pi.reply(app.services.list_gateways(Some(&id)).await?))
}

/// `GET /smsgateway/providers`.
pub async fn providers(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "smsgateway_read").await?;
    Ok(pi.reply(otpgate_gateways::providers_description()))
}

/// `POST /smsgateway`.
pub async fn save_gateway(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "smsgateway_write").await?;
    let name = pi.params.get("name").unwrap_or_default().to_owned();
    pi.audit(|e| e.action_detail = format!("gateway {name}"));
    let value = app.services.save_gateway(&pi.params).await?;
    let warnings = otpgate_service::Services::gateway_warnings(&pi.params);
    Ok(pi.reply_warned(value, warnings))
}

/// `DELETE /smsgateway/<name>`.
pub async fn delete_gateway(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "smsgateway_write").await?;
    pi.audit(|e| e.action_detail = format!("gateway {name}"));
    Ok(pi.reply(app.services.delete_gateway(&name).await?))
}

/// `DELETE /smsgateway/option/<gwid>/<key>`.
pub async fn delete_gateway_option(
    State(app): State<App>,
    Path((gwid, key)): Path<(String, String)>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "smsgateway_write").await?;
    Ok(pi.reply(app.services.delete_gateway_option(&gwid, &key).await?))
}

/// `POST /system/setConfig`.
pub async fn set_config(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "configwrite").await?;
    let pairs: Vec<(String, String)> = pi
        .params
        .iter()
        .filter(|(k, _)| k.as_str() != "nonce")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    pi.audit(|e| {
        e.action_detail = pairs
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(",")
    });
    Ok(pi.reply(app.services.set_config(&pairs).await?))
}

/// `GET /system/`: every stored key.
pub async fn get_config(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "configread").await?;
    let map: Map<String, Value> = app
        .services
        .config_map()
        .await?
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    Ok(pi.reply(Value::Object(map)))
}

/// `GET /system/<key>`: the value or null.
pub async fn get_config_key(
    State(app): State<App>,
    Path(key): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "configread").await?;
    let v = app
        .services
        .config_map()
        .await?
        .remove(&key)
        .map_or(Value::Null, Value::String);
    Ok(pi.reply(v))
}

/// `DELETE /system/<key>`.
pub async fn delete_config(
    State(app): State<App>,
    Path(key): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "configwrite").await?;
    Ok(pi.reply(json!(app.services.delete_config(&key).await?)))
}

/// `GET /resolver/`.
pub async fn resolvers(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "resolverread").await?;
    Ok(pi.reply(
        app.services
            .list_resolvers(None, pi.params.get_nonblank("type"))
            .await?,
    ))
}

/// `GET /resolver/<name>`.
pub async fn resolver(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "resolverread").await?;
    Ok(pi.reply(app.services.list_resolvers(Some(&name), None).await?))
}

/// `POST /resolver/<name>`.
pub async fn save_resolver(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "resolverwrite").await?;
    pi.audit(|e| e.resolver = name.clone());
    Ok(pi.reply(app.services.save_resolver(&name, &pi.params).await?))
}

/// `POST /resolver/test`: privacyIDEA's "test resolver" (always 200; `value` says whether the
/// bind and search worked, `detail.description` what was found or went wrong).
pub async fn test_resolver(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "resolverwrite").await?;
    let (ok, description) = app.services.test_resolver(&pi.params).await?;
    let mut detail = Map::new();
    detail.insert("description".into(), Value::from(description));
    Ok(envelope::ok(Value::from(ok), Some(detail), pi.nonce()))
}

/// `DELETE /resolver/<name>`.
pub async fn delete_resolver(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "resolverdelete").await?;
    pi.audit(|e| e.resolver = name.clone());
    Ok(pi.reply(app.services.delete_resolver(&name).await?))
}

/// `GET /realm/`.
pub async fn realms(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "realmread").await?;
    Ok(pi.reply(app.services.list_realms(false).await?))
}

/// `GET /realm/superuser`: otpgate has no superuser realms (admins are local).
pub async fn superuser_realms(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "realmread").await?;
    Ok(pi.reply(json!([])))
}

/// `POST /realm/<name>`.
pub async fn save_realm(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "realmwrite").await?;
    pi.audit(|e| e.realm = name.clone());
    Ok(pi.reply(app.services.save_realm(&name, &pi.params).await?))
}

/// `DELETE /realm/<name>`.
pub async fn delete_realm(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "realmdelete").await?;
    pi.audit(|e| e.realm = name.clone());
    Ok(pi.reply(app.services.delete_realm(&name).await?))
}

/// `GET /defaultrealm`.
pub async fn default_realm(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "realmread").await?;
    Ok(pi.reply(app.services.list_realms(true).await?))
}

/// `POST /defaultrealm/<name>`.
pub async fn set_default_realm(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "realmwrite").await?;
    pi.audit(|e| e.realm = name.clone());
    Ok(pi.reply(app.services.set_default_realm(&name).await?))
}

/// `DELETE /defaultrealm`.
pub async fn clear_default_realm(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "realmwrite").await?;
    Ok(pi.reply(app.services.clear_default_realm().await?))
}

/// `GET /user/`.
pub async fn users(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "userlist").await?;
    Ok(pi.reply(app.services.list_users(&pi.params).await?))
}

/// `POST /user/`.
pub async fn create_user(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "adduser").await?;
    let u = pi.params.get("user").unwrap_or_default().to_owned();
    pi.audit(|e| e.user = u);
    Ok(pi.reply(app.services.save_user(&pi.params, true).await?))
}

/// `PUT /user/`.
pub async fn update_user(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "updateuser").await?;
    let u = pi.params.get("user").unwrap_or_default().to_owned();
    pi.audit(|e| e.user = u);
    Ok(pi.reply(app.services.save_user(&pi.params, false).await?))
}

/// `DELETE /user/<resolver>/<name>`.
pub async fn delete_user(
    State(app): State<App>,
    Path((resolver, name)): Path<(String, String)>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "deleteuser").await?;
    pi.audit(|e| {
        e.user = name.clone();
        e.resolver = resolver.clone();
    });
    Ok(pi.reply(app.services.delete_user(&resolver, &name).await?))
}

/// `GET /policy/`.
pub async fn policies(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "policyread").await?;
    let v = app
        .services
        .list_policies(
            pi.params.get_nonblank("name"),
            pi.params.get_nonblank("scope"),
        )
        .await?;
    Ok(pi.reply(v))
}

/// `GET /policy/<name>`.
pub async fn policy(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "policyread").await?;
    Ok(pi.reply(app.services.list_policies(Some(&name), None).await?))
}

/// `POST /policy/<name>`.
pub async fn save_policy(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "policywrite").await?;
    pi.audit(|e| e.action_detail = format!("policy {name}"));
    let value = app.services.set_policy(&name, &pi.params).await?;
    let warnings = otpgate_service::Services::policy_warnings(&pi.params);
    Ok(pi.reply_warned(value, warnings))
}

/// `DELETE /policy/<name>`.
pub async fn delete_policy(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "policydelete").await?;
    pi.audit(|e| e.action_detail = format!("policy {name}"));
    Ok(pi.reply(app.services.delete_policy(&name).await?))
}

async fn set_policy_active(
    app: &App,
    name: &str,
    pi: &Pi,
    active: bool,
) -> Result<Response, ApiError> {
    pi.admin(app, "policywrite").await?;
    Ok(pi.reply(app.services.set_policy_active(name, active).await?))
}

/// `POST /policy/enable/<name>`.
pub async fn enable_policy(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    set_policy_active(&app, &name, &pi, true).await
}

/// `POST /policy/disable/<name>`.
pub async fn disable_policy(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    set_policy_active(&app, &name, &pi, false).await
}

/// `GET /audit/`.
pub async fn audit(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "auditlog").await?;
    Ok(pi.reply(app.services.list_audit(&pi.params).await?))
}

/// `GET /smtpserver/`.
pub async fn smtp_servers(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "smtpserver_read").await?;
    Ok(pi.reply(app.services.list_smtp_servers(None).await?))
}

/// `GET /smtpserver/<identifier>`.
pub async fn smtp_server(
    State(app): State<App>,
    Path(id): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "smtpserver_read").await?;
    Ok(pi.reply(app.services.list_smtp_servers(Some(&id)).await?))
}

/// `POST /smtpserver/<identifier>`.
pub async fn save_smtp_server(
    State(app): State<App>,
    Path(id): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "smtpserver_write").await?;
    pi.audit(|e| e.action_detail = format!("smtpserver {id}"));
    Ok(pi.reply(app.services.save_smtp_server(&id, &pi.params).await?))
}

/// `DELETE /smtpserver/<identifier>`.
pub async fn delete_smtp_server(
    State(app): State<App>,
    Path(id): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "smtpserver_write").await?;
    pi.audit(|e| e.action_detail = format!("smtpserver {id}"));
    Ok(pi.reply(app.services.delete_smtp_server(&id).await?))
}

/// `POST /smtpserver/send_test_email`: `value` says whether the mail was accepted,
/// `detail.message` why not.
pub async fn send_test_email(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "smtpserver_write").await?;
    let (ok, why) = app.services.send_test_email(&pi.params).await?;
    let detail = why.map(|m| {
        let mut d = Map::new();
        d.insert("message".into(), json!(m));
        d
    });
    Ok(envelope::ok(json!(ok), detail, pi.nonce()))
}

/// `GET /fraud/blocks`: the blocked destination prefixes (otpgate addition).
pub async fn prefix_blocks(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "smsgateway_read").await?;
    Ok(pi.reply(app.services.list_prefix_blocks().await?))
}

/// `POST /fraud/blocks/<prefix>` (`reason`): blocks a destination prefix.
pub async fn block_prefix(
    State(app): State<App>,
    Path(prefix): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "smsgateway_write").await?;
    pi.audit(|e| e.action_detail = format!("prefix {prefix}"));
    let reason = pi.params.get("reason").unwrap_or("blocked by an admin");
    Ok(pi.reply(app.services.block_prefix(&prefix, reason).await?))
}

/// `DELETE /fraud/blocks/<prefix>`: lifts a block.
pub async fn unblock_prefix(
    State(app): State<App>,
    Path(prefix): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "smsgateway_write").await?;
    pi.audit(|e| e.action_detail = format!("prefix {prefix}"));
    Ok(pi.reply(app.services.unblock_prefix(&prefix).await?))
}
