//! `POST /auth`: an admin's (or a realm user's) JWT.

use super::{ApiError, Pi, envelope};
use crate::state::App;
use axum::extract::State;
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
