//! Signing in and out: admins with their password, users with the SMS login itself (PIN,
//! then the OTP, through the same check as `/validate/check`).

use super::html::{E, Field, Out, w};
use super::page::{Nav, Page, flash, see_other, typed_otp};
use super::request::{Web, WebResult};
use axum::response::Response;
use otpgate_service::ServiceError;
use otpgate_service::call::Caller;
use otpgate_service::limits::LIMITED;
use otpgate_service::sessions::{SignInOutcome, UserSignIn, WEB_LOGIN};
use otpgate_service::validate::{CheckOutcome, SEND_FAILED};

const WRONG: &str = "The user name or PIN is wrong.";

/// A sign-in of a token locked by failed attempts (it lifts itself, see
/// `failcounter_clear_timeout`).
const LOCKED: &str = "Too many failed attempts: signing in is blocked for now. Try again later, or ask your administrator to unlock it.";

fn auth_page(title: &str, errors: &[(String, String)], flash: Option<&str>, body: Out) -> Response {
    let status = super::page::form_status(errors);
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

/// The refusal shown when the session cookie would not survive this connection.
fn cookie_lost(web: &Web) -> Vec<(String, String)> {
    web.cookie_would_be_lost()
        .map(|why| vec![(String::new(), why)])
        .unwrap_or_default()
}

/// `GET /ui/login`.
pub async fn user_form(web: Web) -> WebResult {
    Ok(user_page(
        &web,
        "",
        "",
        &cookie_lost(&web),
        flash(web.query.get("ok")),
    ))
}

fn refuse(web: &Web, user: &str, realm: &str, message: &str) -> Response {
    user_page(web, user, realm, &[("pass".into(), message.into())], None)
}

/// `POST /ui/login`: the PIN step (a `validate_check` call, as `/validate/check`).
pub async fn user_login(web: Web) -> WebResult {
    web.same_origin()?;
    let login = web.form.get("user").unwrap_or_default().trim().to_owned();
    let realm_in = web.form.get("realm").unwrap_or_default().trim().to_owned();
    let pass = web.form.get("pass").unwrap_or_default().to_owned();
    // No SMS for a sign-in whose next step cannot find its cookie.
    let lost = cookie_lost(&web);
    if !lost.is_empty() {
        return Ok(user_page(&web, &login, &realm_in, &lost, None));
    }
    if login.is_empty() {
        return Ok(user_page(
            &web,
            "",
            &realm_in,
            &[("user".into(), "Enter your user name.".into())],
            None,
        ));
    }
    let req = UserSignIn {
        login: login.clone(),
        realm: realm_in.clone(),
        pass,
        password_enrollment: web.app.config.web.password_enrollment,
    };
    // The events of /validate/check fire for the web sign-in too (without the pass).
    let call = web
        .call(Caller::Anonymous)
        .event("validate_check")
        .subject(&login, &realm_in, "");
    let outcome = web
        .run(call, None, move |s, cx| Box::pin(s.sign_in_user(req, cx)))
        .await?;
    match outcome {
        SignInOutcome::Refused => Ok(refuse(&web, &login, &realm_in, WRONG)),
        SignInOutcome::Password { login, realm } => {
            web.sign_in(&login, &realm, "user", "/ui/me/phone")
        }
        SignInOutcome::Checked {
            login: user,
            realm,
            outcome,
        } => match *outcome {
            CheckOutcome::Challenge(c) => {
                // A number shows its last digits only; an e-mail address as it is (redacted).
                let to: Vec<String> = c
                    .sent
                    .iter()
                    .map(|s| s.to.as_str())
                    .filter(|t| !t.is_empty())
                    .map(|t| {
                        if t.contains('@') {
                            t.to_owned()
                        } else {
                            let last: String = t.chars().filter(char::is_ascii_digit).collect();
                            format!("the phone number ending in {last}")
                        }
                    })
                    .collect();
                let state = LoginClaims {
                    user,
                    realm,
                    to: to.join(" and "),
                    until: c.sent.iter().map(|s| s.valid_until_ms).max().unwrap_or(0),
                    tid: c.transaction_id,
                };
                let services = &web.app.services;
                let ttl = services
                    .settings()
                    .await?
                    .config
                    .challenge_validity_secs
                    .max(60);
                let token = services.web_sign(WEB_LOGIN, &state, ttl)?;
                let mut resp = see_other("/ui/login/otp");
                web.set_cookie(&mut resp, "otpgate-login", &token, ttl);
                Ok(resp)
            }
            o if o.accepted_by_token() => web.sign_in(&user, &realm, "user", "/ui/me"),
            o => {
                let m = o.message();
                let message = if m == LIMITED || m == SEND_FAILED {
                    m
                } else if m.contains("Failcounter exceeded") {
                    // Not "wrong PIN": the user would only try again, and again.
                    LOCKED.to_owned()
                } else {
                    WRONG.to_owned()
                };
                Ok(refuse(&web, &login, &realm_in, &message))
            }
        },
    }
}

/// The code's page: where the code went and how long it is valid (`left_ms`), when known.
fn otp_page(errors: &[(String, String)], to: &str, left_ms: Option<i64>) -> Response {
    let mut b = Out::new();
    let whither = if to.is_empty() {
        "your phone".to_owned()
    } else {
        to.to_owned()
    };
    match left_ms.filter(|ms| *ms > 0) {
        Some(ms) => {
            let minutes = (ms + 59_999) / 60_000;
            let unit = if minutes == 1 { "minute" } else { "minutes" };
            w!(
                b,
                "<p>We have sent a code to <strong>{}</strong>. Enter it here within {minutes} {unit}.</p>",
                E(&whither)
            );
        }
        None => {
            w!(
                b,
                "<p>We have sent a code to <strong>{}</strong>. Enter it here.</p>",
                E(&whither)
            );
        }
    }
    b.raw("<form class=\"stack\" method=\"post\" action=\"/ui/login/otp\">");
    Field::new("otp", "Code from the SMS")
        .attrs("required autocomplete=\"one-time-code\" inputmode=\"numeric\" pattern=\"[0-9 ]*\" autofocus")
        .errors(errors)
        .input(&mut b);
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Sign in</button> <a class=\"button\" href=\"/ui/login\">Start again</a></div></form>");
    auth_page("Enter the code", errors, None, b)
}

/// What the cookie between the two steps of a user's sign-in carries (signed).
#[derive(serde::Serialize, serde::Deserialize)]
struct LoginClaims {
    user: String,
    realm: String,
    tid: String,
    /// Where the code went (redacted) and until when it is valid (ms).
    #[serde(default)]
    to: String,
    #[serde(default)]
    until: i64,
}

fn login_state(web: &Web) -> Option<LoginClaims> {
    let token = web.cookie("otpgate-login")?;
    Some(web.app.services.web_verify(WEB_LOGIN, &token)?.claims)
}

/// `GET /ui/login/otp`.
pub async fn otp_form(web: Web) -> WebResult {
    let Some(state) = login_state(&web) else {
        return Ok(see_other("/ui/login"));
    };
    let left = (state.until > 0).then(|| state.until - web.app.services.clock().now_ms());
    Ok(otp_page(&[], &state.to, left))
}

/// `POST /ui/login/otp`: the OTP step.
pub async fn otp_login(web: Web) -> WebResult {
    web.same_origin()?;
    let Some(LoginClaims {
        user,
        realm,
        tid,
        to,
        until,
    }) = login_state(&web)
    else {
        return Ok(see_other("/ui/login"));
    };
    let left = (until > 0).then(|| until - web.app.services.clock().now_ms());
    let otp = typed_otp(web.form.get("otp").unwrap_or_default());
    let call = web
        .call(Caller::Anonymous)
        .event("validate_check")
        .subject(&user, &realm, "");
    let (u, r) = (user.clone(), realm.clone());
    let outcome = web
        .run(call, None, move |s, cx| {
            Box::pin(async move { s.sign_in_otp(&u, &r, &tid, &otp, cx).await })
        })
        .await?;
    if outcome.accepted_by_token() {
        return web.sign_in(&user, &realm, "user", "/ui/me");
    }
    Ok(otp_page(
        &[(
            "otp".into(),
            "The code is wrong or has expired. Try again, or start again for a new code.".into(),
        )],
        &to,
        left,
    ))
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
    Ok(admin_page(
        "",
        &cookie_lost(&web),
        flash(web.query.get("ok")),
    ))
}

/// `POST /ui/admin/login`: an `auth` call, as `POST /auth`.
pub async fn admin_login(web: Web) -> WebResult {
    web.same_origin()?;
    let username = web
        .form
        .get("username")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let password = web.form.get("password").unwrap_or_default().to_owned();
    let lost = cookie_lost(&web);
    if !lost.is_empty() {
        return Ok(admin_page(&username, &lost, None));
    }
    let call = web
        .call(Caller::Anonymous)
        .event("auth")
        .subject(&username, "", "");
    let name = username.clone();
    let signed = web
        .run(call, None, move |s, cx| {
            Box::pin(async move { s.sign_in_admin(&name, &password, cx).await })
        })
        .await;
    match signed {
        Ok(_) => web.sign_in(&username, "", "admin", "/ui/admin/"),
        Err(e @ (ServiceError::Unavailable | ServiceError::Busy | ServiceError::Internal(_))) => {
            Err(e.into())
        }
        Err(_) => Ok(admin_page(
            &username,
            &[(
                "password".into(),
                "The admin name or password is wrong.".into(),
            )],
            None,
        )),
    }
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
            let (caller, who) = if s.role == "admin" {
                (Caller::Admin(s.username.clone()), None)
            } else {
                (
                    Caller::Anonymous,
                    Some((s.username.clone(), s.realm.clone())),
                )
            };
            let sid = s.sid.clone();
            web.run(web.call(caller), None, move |svc, cx| {
                Box::pin(async move {
                    let who = who.as_ref().map(|(u, r)| (u.as_str(), r.as_str()));
                    svc.web_logout(&sid, until, who, cx).await
                })
            })
            .await?;
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
