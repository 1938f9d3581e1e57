//! `/auth`, `/smsgateway`, `/system`, `/resolver`, `/realm`, `/defaultrealm`, `/user`,
//! `/policy`, `/audit`.

use super::{ApiError, Pi, envelope};
use crate::app::App;
use axum::extract::{Path, State};
use axum::response::Response;
use otpgate_service::validate::{AuthResponse, Authentication};
use serde_json::{Map, Value, json};

/// `POST /auth`.
pub async fn auth(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let user = pi.params.get("username").unwrap_or_default().to_owned();
    let r = app.services.login(&pi.params).await;
    pi.audit(|e| {
        e.user = user;
        e.success = r.is_ok();
        e.authentication = if r.is_ok() { "ACCEPT" } else { "REJECT" }.into();
    });
    let value = r?;
    let resp = AuthResponse {
        value,
        authentication: Authentication::Accept,
        detail: Map::new(),
    };
    Ok(envelope::auth(resp, pi.nonce()))
}

/// `GET /smsgateway/`.
pub async fn gateways(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "smsgateway_read").await?;
    Ok(envelope::ok(
        app.services.list_gateways(None).await?,
        None,
        pi.nonce(),
    ))
}

/// `GET /smsgateway/<id>`.
pub async fn gateway(
    State(app): State<App>,
    Path(id): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "smsgateway_read").await?;
    Ok(envelope::ok(
        app.services.list_gateways(Some(&id)).await?,
        None,
        pi.nonce(),
    ))
}

/// `GET /smsgateway/providers`.
pub async fn providers(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "smsgateway_read").await?;
    Ok(envelope::ok(
        otpgate_gateways::providers_description(),
        None,
        pi.nonce(),
    ))
}

/// `POST /smsgateway`.
pub async fn save_gateway(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "smsgateway_write").await?;
    let name = pi.params.get("name").unwrap_or_default().to_owned();
    pi.audit(|e| e.action_detail = format!("gateway {name}"));
    Ok(envelope::ok(
        app.services.save_gateway(&pi.params).await?,
        None,
        pi.nonce(),
    ))
}

/// `DELETE /smsgateway/<name>`.
pub async fn delete_gateway(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "smsgateway_write").await?;
    pi.audit(|e| e.action_detail = format!("gateway {name}"));
    Ok(envelope::ok(
        app.services.delete_gateway(&name).await?,
        None,
        pi.nonce(),
    ))
}

/// `DELETE /smsgateway/option/<gwid>/<key>`.
pub async fn delete_gateway_option(
    State(app): State<App>,
    Path((gwid, key)): Path<(String, String)>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "smsgateway_write").await?;
    Ok(envelope::ok(
        app.services.delete_gateway_option(&gwid, &key).await?,
        None,
        pi.nonce(),
    ))
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
    Ok(envelope::ok(
        app.services.set_config(&pairs).await?,
        None,
        pi.nonce(),
    ))
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
    Ok(envelope::ok(Value::Object(map), None, pi.nonce()))
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
    Ok(envelope::ok(v, None, pi.nonce()))
}

/// `DELETE /system/<key>`.
pub async fn delete_config(
    State(app): State<App>,
    Path(key): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "configwrite").await?;
    Ok(envelope::ok(
        json!(app.services.delete_config(&key).await?),
        None,
        pi.nonce(),
    ))
}

/// `GET /resolver/`.
pub async fn resolvers(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "resolverread").await?;
    Ok(envelope::ok(
        app.services
            .list_resolvers(None, pi.params.get_nonblank("type"))
            .await?,
        None,
        pi.nonce(),
    ))
}

/// `GET /resolver/<name>`.
pub async fn resolver(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "resolverread").await?;
    Ok(envelope::ok(
        app.services.list_resolvers(Some(&name), None).await?,
        None,
        pi.nonce(),
    ))
}

/// `POST /resolver/<name>`.
pub async fn save_resolver(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "resolverwrite").await?;
    pi.audit(|e| e.resolver = name.clone());
    Ok(envelope::ok(
        app.services.save_resolver(&name, &pi.params).await?,
        None,
        pi.nonce(),
    ))
}

/// `DELETE /resolver/<name>`.
pub async fn delete_resolver(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "resolverdelete").await?;
    pi.audit(|e| e.resolver = name.clone());
    Ok(envelope::ok(
        app.services.delete_resolver(&name).await?,
        None,
        pi.nonce(),
    ))
}

/// `GET /realm/`.
pub async fn realms(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "realmread").await?;
    Ok(envelope::ok(
        app.services.list_realms(false).await?,
        None,
        pi.nonce(),
    ))
}

/// `POST /realm/<name>`.
pub async fn save_realm(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "realmwrite").await?;
    pi.audit(|e| e.realm = name.clone());
    Ok(envelope::ok(
        app.services.save_realm(&name, &pi.params).await?,
        None,
        pi.nonce(),
    ))
}

/// `DELETE /realm/<name>`.
pub async fn delete_realm(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "realmdelete").await?;
    pi.audit(|e| e.realm = name.clone());
    Ok(envelope::ok(
        app.services.delete_realm(&name).await?,
        None,
        pi.nonce(),
    ))
}

/// `GET /defaultrealm`.
pub async fn default_realm(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "realmread").await?;
    Ok(envelope::ok(
        app.services.list_realms(true).await?,
        None,
        pi.nonce(),
    ))
}

/// `POST /defaultrealm/<name>`.
pub async fn set_default_realm(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "realmwrite").await?;
    pi.audit(|e| e.realm = name.clone());
    Ok(envelope::ok(
        app.services.set_default_realm(&name).await?,
        None,
        pi.nonce(),
    ))
}

/// `DELETE /defaultrealm`.
pub async fn clear_default_realm(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "realmwrite").await?;
    Ok(envelope::ok(
        app.services.clear_default_realm().await?,
        None,
        pi.nonce(),
    ))
}

/// `GET /user/`.
pub async fn users(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "userlist").await?;
    Ok(envelope::ok(
        app.services.list_users(&pi.params).await?,
        None,
        pi.nonce(),
    ))
}

/// `POST /user/`.
pub async fn create_user(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "adduser").await?;
    let u = pi.params.get("user").unwrap_or_default().to_owned();
    pi.audit(|e| e.user = u);
    Ok(envelope::ok(
        app.services.save_user(&pi.params, true).await?,
        None,
        pi.nonce(),
    ))
}

/// `PUT /user/`.
pub async fn update_user(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    pi.admin(&app, "updateuser").await?;
    let u = pi.params.get("user").unwrap_or_default().to_owned();
    pi.audit(|e| e.user = u);
    Ok(envelope::ok(
        app.services.save_user(&pi.params, false).await?,
        None,
        pi.nonce(),
    ))
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
    Ok(envelope::ok(
        app.services.delete_user(&resolver, &name).await?,
        None,
        pi.nonce(),
    ))
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
    Ok(envelope::ok(v, None, pi.nonce()))
}

/// `GET /policy/<name>`.
pub async fn policy(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "policyread").await?;
    Ok(envelope::ok(
        app.services.list_policies(Some(&name), None).await?,
        None,
        pi.nonce(),
    ))
}

/// `POST /policy/<name>`.
pub async fn save_policy(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "policywrite").await?;
    pi.audit(|e| e.action_detail = format!("policy {name}"));
    Ok(envelope::ok(
        app.services.set_policy(&name, &pi.params).await?,
        None,
        pi.nonce(),
    ))
}

/// `DELETE /policy/<name>`.
pub async fn delete_policy(
    State(app): State<App>,
    Path(name): Path<String>,
    pi: Pi,
) -> Result<Response, ApiError> {
    pi.admin(&app, "policydelete").await?;
    pi.audit(|e| e.action_detail = format!("policy {name}"));
    Ok(envelope::ok(
        app.services.delete_policy(&name).await?,
        None,
        pi.nonce(),
    ))
}

async fn set_policy_active(
    app: &App,
    name: &str,
    pi: &Pi,
    active: bool,
) -> Result<Response, ApiError> {
    pi.admin(app, "policywrite").await?;
    Ok(envelope::ok(
        app.services.set_policy_active(name, active).await?,
        None,
        pi.nonce(),
    ))
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
    Ok(envelope::ok(
        app.services.list_audit(&pi.params).await?,
        None,
        pi.nonce(),
    ))
}
