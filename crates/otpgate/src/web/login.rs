//! Signing in and out: admins with their password, users with the SMS login itself (PIN,
//! then the OTP, through the same check as `/validate/check`).

use super::html::{Field, Out};
use super::{Nav, Page, Web, WebResult, flash, see_other};
use axum::http::StatusCode;
use axum::response::Response;
use otpgate_service::audit::AuditEntry;
use otpgate_service::validate::{Authentication, CheckRequest};
use otpgate_service::web::WEB_LOGIN;
use otpgate_service::{Params, ServiceError};
use serde_json::{Map, Value, json};

const WRONG: &str = "The user name or PIN is wrong.";

fn auth_page(title: &str, errors: &[(String, String)], flash: Option<&str>, body: Out) -> Response {
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Page {
        title,
        nav: Nav::None,
        session: None,
        path: "",
        flash,
        errors,
        body,
    }
    .render(status)
}

/// `GET /ui/`: where a signed-in browser belongs, else the user sign-in.
pub async fn home(web: Web) -> WebResult {
    Ok(match web.session().await? {
        Some(s) if s.role == "admin" => see_other("/ui/admin/"),
        Some(_) => see_other("/ui/me"),
        None => see_other("/ui/login"),
    })
}

fn user_page(
    web: &Web,
    user: &str,
    realm: &str,
    errors: &[(String, String)],
    ok: Option<&str>,
) -> Response {
    let hint = if web.app.config.web.password_enrollment {
        "Without a phone yet? Use your password to enroll one."
    } else {
        ""
    };
    let mut b = Out::new();
    b.raw("<p>Sign in with your user name and PIN. We then send a code to your phone.</p>");
    b.raw("<form class=\"stack\" method=\"post\" action=\"/ui/login\">");
    Field::new("user", "User name")
        .value(user)
        .attrs("required autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\"")
        .errors(errors)
        .input(&mut b);
    Field::new("realm", "Realm (optional)")
        .value(realm)
        .hint("Leave empty unless your organisation told you one.")
        .attrs("autocapitalize=\"none\" spellcheck=\"false\"")
        .errors(errors)
        .input(&mut b);
    Field::new("pass", "PIN")
        .kind("password")
        .hint(hint)
        .attrs("required autocomplete=\"current-password\"")
        .errors(errors)
        .input(&mut b);
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Continue</button></div></form>");
    b.raw("<p class=\"aside\"><a href=\"/ui/admin/login\">Administrators sign in here</a></p>");
    auth_page("Sign in", errors, ok, b)
}

/// `GET /ui/login`.
pub async fn user_form(web: Web) -> WebResult {
    Ok(user_page(&web, "", "", &[], flash(web.query.get("ok"))))
}

fn refuse(web: &Web, user: &str, realm: &str, message: &str) -> Response {
    web.audit(|e| {
        e.success = false;
        e.authentication = "REJECT".into();
        if e.info.is_empty() {
            e.info = message.into();
        }
    });
    user_page(web, user, realm, &[("pass".into(), message.into())], None)
}

/// `POST /ui/login`: the PIN step.
pub async fn user_login(web: Web) -> WebResult {
    web.same_origin()?;
    let login = web.form.get("user").unwrap_or_default().trim().to_owned();
    let realm_in = web.form.get("realm").unwrap_or_default().trim().to_owned();
    let pass = web.form.get("pass").unwrap_or_default().to_owned();
    if login.is_empty() {
        return Ok(user_page(
            &web,
            "",
            &realm_in,
            &[("user".into(), "Enter your user name.".into())],
            None,
        ));
    }
    let services = &web.app.services;
    let settings = services.settings().await?;
    let realm_opt = (!realm_in.is_empty()).then_some(realm_in.as_str());
    let (name, realm, user) = services.lookup_user(&settings, &login, realm_opt).await?;
    web.audit(|e| {
        e.user = name.clone();
        e.realm = realm.clone();
    });
    let Some(user) = user else {
        // Same work and answer as a wrong PIN: no user enumeration.
        services.equal_cost_pin_check(&pass).await?;
        return Ok(refuse(&web, &login, &realm_in, WRONG));
    };
    if !services.user_has_tokens(&user).await? {
        if web.app.config.web.password_enrollment
            && services.check_user_password(&user, &pass).await?
        {
            web.audit(|e| {
                e.success = true;
                e.authentication = "ACCEPT".into();
                e.info = "no token yet: signed in with the user store password".into();
            });
            return web.sign_in(&user.login, &user.realm, "user", "/ui/me/phone");
        }
        if !web.app.config.web.password_enrollment {
            // As much work as a password check: the time tells nothing.
            services.equal_cost_pin_check(&pass).await?;
        }
        return Ok(refuse(&web, &login, &realm_in, WRONG));
    }
    // The events of /validate/check fire for the web sign-in too (without the pass).
    let mut ev = Params::new();
    ev.insert("user", user.login.clone());
    ev.insert("realm", user.realm.clone());
    let pre = AuditEntry {
        user: user.login.clone(),
        realm: user.realm.clone(),
        ..Default::default()
    };
    web.fire("pre", "validate_check", None, &ev, &pre, None)
        .await;
    let mut audit = AuditEntry::default();
    let r = services
        .check(
            CheckRequest {
                user: Some(user.login.clone()),
                realm: Some(user.realm.clone()),
                pass: Some(pass),
                client: web.client,
                end_user: web.client,
                ..CheckRequest::default()
            },
            &mut audit,
        )
        .await;
    // Only an outage is told apart; every other refusal reads like a wrong PIN.
    let r = match r {
        Ok(r) => r,
        Err(e @ (ServiceError::Unavailable | ServiceError::Busy | ServiceError::Internal(_))) => {
            return Err(e.into());
        }
        Err(e) => {
            audit.info = e.to_string();
            web.record(audit);
            return Ok(refuse(&web, &login, &realm_in, WRONG));
        }
    };
    audit.authentication = r.authentication.as_str().into();
    let result = otpgate_service::events::CallResult::of_auth(&r);
    web.fire("post", "validate_check", None, &ev, &audit, Some(&result))
        .await;
    web.record(audit);
    match r.authentication {
        Authentication::Challenge => {
            let tid = r.transaction_id().unwrap_or_default().to_owned();
            let mut c = Map::new();
            c.insert("user".into(), json!(user.login));
            c.insert("realm".into(), json!(user.realm));
            c.insert("tid".into(), json!(tid));
            let ttl = settings.config.challenge_validity_secs.max(60);
            let token = services.web_sign(WEB_LOGIN, c, ttl)?;
            let mut resp = see_other("/ui/login/otp");
            web.set_cookie(&mut resp, "otpgate-login", &token, ttl);
            Ok(resp)
        }
        Authentication::Accept if r.detail.get("serial").is_some() => {
            web.audit(|e| e.success = true);
            web.sign_in(&user.login, &user.realm, "user", "/ui/me")
        }
        _ => {
            let message = match r.message() {
                Some(m) if m == otpgate_service::limits::LIMITED => m.to_owned(),
                Some(m) if m == otpgate_service::validate::SEND_FAILED => m.to_owned(),
                _ => WRONG.to_owned(),
            };
            Ok(refuse(&web, &login, &realm_in, &message))
        }
    }
}

fn otp_page(errors: &[(String, String)]) -> Response {
    let mut b = Out::new();
    b.raw("<p>We have sent a code to your phone. Enter it here.</p>");
    b.raw("<form class=\"stack\" method=\"post\" action=\"/ui/login/otp\">");
    Field::new("otp", "Code from the SMS")
        .attrs("required autocomplete=\"one-time-code\" inputmode=\"numeric\" pattern=\"[0-9 ]*\" autofocus")
        .errors(errors)
        .input(&mut b);
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Sign in</button> <a class=\"button\" href=\"/ui/login\">Start again</a></div></form>");
    auth_page("Enter the code", errors, None, b)
}

fn login_state(web: &Web) -> Option<(String, String, String)> {
    let token = web.cookie("otpgate-login")?;
    let c = web.app.services.web_verify(WEB_LOGIN, &token)?;
    let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_owned);
    Some((s("user")?, s("realm")?, s("tid")?))
}

/// `GET /ui/login/otp`.
pub async fn otp_form(web: Web) -> WebResult {
    if login_state(&web).is_none() {
        return Ok(see_other("/ui/login"));
    }
    Ok(otp_page(&[]))
}

/// `POST /ui/login/otp`: the OTP step.
pub async fn otp_login(web: Web) -> WebResult {
    web.same_origin()?;
    let Some((user, realm, tid)) = login_state(&web) else {
        return Ok(see_other("/ui/login"));
    };
    let otp: String = web
        .form
        .get("otp")
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut ev = Params::new();
    ev.insert("user", user.clone());
    ev.insert("realm", realm.clone());
    ev.insert("transaction_id", tid.clone());
    let pre = AuditEntry {
        user: user.clone(),
        realm: realm.clone(),
        ..Default::default()
    };
    web.fire("pre", "validate_check", None, &ev, &pre, None)
        .await;
    let mut audit = AuditEntry::default();
    let r = web
        .app
        .services
        .check(
            CheckRequest {
                user: Some(user.clone()),
                realm: Some(realm.clone()),
                pass: Some(otp),
                transaction_id: Some(tid),
                client: web.client,
                end_user: web.client,
                ..CheckRequest::default()
            },
            &mut audit,
        )
        .await?;
    audit.authentication = r.authentication.as_str().into();
    let accepted = r.authentication == Authentication::Accept && r.detail.get("serial").is_some();
    audit.success = accepted;
    if audit.info.is_empty() {
        audit.info = r.message().unwrap_or_default().to_owned();
    }
    let result = otpgate_service::events::CallResult::of_auth(&r);
    web.fire("post", "validate_check", None, &ev, &audit, Some(&result))
        .await;
    web.record(audit);
    if accepted {
        return web.sign_in(&user, &realm, "user", "/ui/me");
    }
    Ok(otp_page(&[(
        "otp".into(),
        "The code is wrong or has expired. Try again, or start again for a new code.".into(),
    )]))
}

fn admin_page(username: &str, errors: &[(String, String)], ok: Option<&str>) -> Response {
    let mut b = Out::new();
    b.raw("<form class=\"stack\" method=\"post\" action=\"/ui/admin/login\">");
    Field::new("username", "Admin name")
        .value(username)
        .attrs("required autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\"")
        .errors(errors)
        .input(&mut b);
    Field::new("password", "Password")
        .kind("password")
        .attrs("required autocomplete=\"current-password\"")
        .errors(errors)
        .input(&mut b);
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Sign in</button></div></form>");
    b.raw("<p class=\"aside\"><a href=\"/ui/login\">Not an administrator? Sign in here</a></p>");
    auth_page("Admin console", errors, ok, b)
}

/// `GET /ui/admin/login`.
pub async fn admin_form(web: Web) -> WebResult {
    Ok(admin_page("", &[], flash(web.query.get("ok"))))
}

/// `POST /ui/admin/login`.
pub async fn admin_login(web: Web) -> WebResult {
    web.same_origin()?;
    let username = web
        .form
        .get("username")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let mut p = Params::new();
    p.insert("username", username.clone());
    p.insert("password", web.form.get("password").unwrap_or_default());
    // The `auth` events of `POST /auth` fire for the admin sign-in too (without the password).
    let mut ev = Params::new();
    ev.insert("username", username.clone());
    let subject = AuditEntry {
        user: username.clone(),
        ..Default::default()
    };
    web.fire("pre", "auth", None, &ev, &subject, None).await;
    let r = web.app.services.login(&p).await;
    if let Ok(v) = &r {
        let result = otpgate_service::events::CallResult::auth_accept(v.clone());
        web.fire(
            "post",
            "auth",
            Some(&username),
            &ev,
            &AuditEntry::default(),
            Some(&result),
        )
        .await;
    }
    let admin = r
        .ok()
        .filter(|v| v.get("role").and_then(Value::as_str) == Some("admin"));
    web.audit(|e| {
        e.user = username.clone();
        e.success = admin.is_some();
        e.authentication = if admin.is_some() { "ACCEPT" } else { "REJECT" }.into();
    });
    if admin.is_none() {
        return Ok(admin_page(
            &username,
            &[(
                "password".into(),
                "The admin name or password is wrong.".into(),
            )],
            None,
        ));
    }
    web.audit(|e| e.administrator = username.clone());
    web.sign_in(&username, "", "admin", "/ui/admin/")
}

/// `POST /ui/logout`: the session is dead on every node, the cookie gone.
pub async fn logout(web: Web) -> WebResult {
    let session = web.session().await?;
    let to = match &session {
        Some(s) => {
            web.check_csrf(s)?;
            // Until the latest any copy of this session could live (renewed copies included).
            let until = s
                .since
                .saturating_add(web.app.config.web.session_max_secs)
                .max(s.exp);
            web.app.services.web_logout(&s.sid, until).await?;
            web.audit(|e| {
                e.success = true;
                if s.role == "admin" {
                    e.administrator = s.username.clone();
                } else {
                    e.user = s.username.clone();
                    e.realm = s.realm.clone();
                }
            });
            if s.role == "admin" {
                "/ui/admin/login?ok=signed-out"
            } else {
                "/ui/login?ok=signed-out"
            }
        }
        None => "/ui/login",
    };
    let mut r = see_other(to);
    web.set_cookie(&mut r, "otpgate", "", 0);
    Ok(r)
}
