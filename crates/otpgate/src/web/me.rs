//! Self-service: the user's phones (SMS tokens), enrolling or changing a phone confirmed by
//! the OTP of a first SMS, and the PIN.

use super::html::{E, Field, Out, U, w};
use super::{
    Nav, Session, Web, WebResult, csrf_field, see_other, service_message, signed_in_page, str_of,
};
use axum::response::Response;
use otpgate_service::audit::AuditEntry;
use serde_json::Value;

fn page(web: &Web, s: &Session, title: &str, errors: &[(String, String)], body: Out) -> Response {
    signed_in_page(web, s, Nav::User, title, errors, None, body)
}

fn info<'a>(t: &'a Value, k: &str) -> &'a str {
    t.get("info")
        .and_then(|i| i.get(k))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `GET /ui/me`: the user's phones.
pub async fn overview(web: Web) -> WebResult {
    let (s, user) = web.user().await?;
    let tokens = web.app.services.own_tokens(&user).await?;
    let mut b = Out::new();
    // An enrollment still waiting for its code: the way back to it.
    for t in tokens
        .iter()
        .filter(|t| str_of(t, "rollout_state") == "verify")
    {
        w!(
            b,
            "<p class=\"note\">The number {} is waiting for its code. <a href=\"/ui/me/phone/verify?serial={}\">Enter the code</a></p>",
            E(info(t, "phone")),
            U(str_of(t, "serial"))
        );
    }
    let ready: Vec<&Value> = tokens
        .iter()
        .filter(|t| str_of(t, "rollout_state") != "verify")
        .collect();
    if ready.is_empty() {
        b.raw("<p class=\"empty\">You have no phone for signing in yet.</p>");
        b.raw("<p><a class=\"button primary\" href=\"/ui/me/phone\">Add your phone</a></p>");
        return Ok(page(&web, &s, "My phones", &[], b));
    }
    w!(
        b,
        "<div class=\"table-wrap\"><table class=\"data\"><caption>Phones that receive your sign-in codes ({})</caption><thead><tr><th scope=\"col\">Phone</th><th scope=\"col\">Token</th><th scope=\"col\">State</th><th scope=\"col\">Actions</th></tr></thead><tbody>",
        ready.len()
    );
    for t in ready {
        let serial = str_of(t, "serial");
        let phone = info(t, "phone");
        let state = if !t.get("active").and_then(Value::as_bool).unwrap_or(true) {
            "<span class=\"badge bad\">disabled</span>"
        } else if t.get("failcount").and_then(Value::as_i64)
            >= t.get("maxfail").and_then(Value::as_i64)
        {
            "<span class=\"badge warn\">locked</span>"
        } else {
            "<span class=\"badge ok\">ready</span>"
        };
        w!(
            b,
            "<tr><td data-label=\"Phone\">{}</td><td data-label=\"Token\"><code>{}</code></td><td data-label=\"State\">{state}</td><td data-label=\"Actions\"><a class=\"button small\" href=\"/ui/me/phone?replaces={}\">Change number</a> <a class=\"button small\" href=\"/ui/me/pin?serial={}\">Set PIN</a></td></tr>",
            E(if phone.is_empty() {
                "(number from your user record)"
            } else {
                phone
            }),
            E(serial),
            U(serial),
            U(serial)
        );
    }
    b.raw("</tbody></table></div>");
    b.raw("<p><a class=\"button\" href=\"/ui/me/phone\">Add another phone</a></p>");
    Ok(page(&web, &s, "My phones", &[], b))
}

/// A new PIN and its repetition (`pin`, `pin2`).
fn new_pin_fields(b: &mut Out, hint: &str, errors: &[(String, String)]) {
    Field::new("pin", "New PIN")
        .kind("password")
        .hint(hint)
        .attrs("required autocomplete=\"new-password\" minlength=\"4\"")
        .errors(errors)
        .input(b);
    Field::new("pin2", "Repeat the PIN")
        .kind("password")
        .attrs("required autocomplete=\"new-password\"")
        .errors(errors)
        .input(b);
}

fn phone_body(
    s: &Session,
    phone: &str,
    replaces: Option<&str>,
    errors: &[(String, String)],
) -> Out {
    let mut b = Out::new();
    match replaces {
        Some(r) => w!(
            b,
            "<p>Enter the new number for token <code>{}</code>. We send a code to it; once you enter the code, the new number replaces the old one and keeps your PIN.</p>",
            E(r)
        ),
        None => b.raw("<p>Enter the mobile number that should receive your sign-in codes. We send a code to it to check that it is yours.</p>"),
    };
    b.raw("<form class=\"stack\" method=\"post\" action=\"/ui/me/phone\">");
    csrf_field(&mut b, s);
    if let Some(r) = replaces {
        w!(
            b,
            "<input type=\"hidden\" name=\"replaces\" value=\"{}\">",
            E(r)
        );
    }
    Field::new("phone", "Mobile number")
        .kind("tel")
        .value(phone)
        .hint("International format, for example +49 151 23456789.")
        .attrs("required autocomplete=\"tel\"")
        .errors(errors)
        .input(&mut b);
    if replaces.is_none() {
        new_pin_fields(
            &mut b,
            "At least 4 characters. You enter it before the code when you sign in.",
            errors,
        );
    }
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Send the code</button> <a class=\"button\" href=\"/ui/me\">Cancel</a></div></form>");
    b
}

/// `GET /ui/me/phone[?replaces=serial]`.
pub async fn phone_form(web: Web) -> WebResult {
    let (s, _) = web.user().await?;
    let replaces = web.query.get_nonblank("replaces");
    let title = if replaces.is_some() {
        "Change your number"
    } else {
        "Add a phone"
    };
    let b = phone_body(&s, "", replaces, &[]);
    Ok(page(&web, &s, title, &[], b))
}

/// `POST /ui/me/phone`: a new token in `verify` and an SMS with its first OTP.
pub async fn phone_enroll(web: Web) -> WebResult {
    let (s, user) = web.user().await?;
    let phone = web.form.get("phone").unwrap_or_default().trim().to_owned();
    let replaces = web.form.get_nonblank("replaces").map(str::to_owned);
    let pin = web.form.get("pin").unwrap_or_default().to_owned();
    let title = if replaces.is_some() {
        "Change your number"
    } else {
        "Add a phone"
    };
    let mut errors = Vec::new();
    if phone.is_empty() {
        errors.push(("phone".to_owned(), "Enter your mobile number.".to_owned()));
    }
    if replaces.is_none() && pin != web.form.get("pin2").unwrap_or_default() {
        errors.push(("pin2".to_owned(), "The two PINs differ.".to_owned()));
    }
    if errors.is_empty() {
        // In a task of its own: a browser that goes away mid-send leaves no half-done
        // enrollment (the SMS and its pending token are both kept or both removed).
        // The same events as an enrollment through the API (privacyIDEA fires token_init for
        // a user's own enrollment too).
        let mut ev = otpgate_service::Params::new();
        ev.insert("type", "sms");
        ev.insert("user", user.login.clone());
        ev.insert("realm", user.realm.clone());
        let pre = AuditEntry {
            user: user.login.clone(),
            realm: user.realm.clone(),
            ..Default::default()
        };
        web.fire("pre", "token_init", None, &ev, &pre, None).await;
        let services = web.app.services.clone();
        let (u, ph, pn, rp, client) = (
            user.clone(),
            phone.clone(),
            pin.clone(),
            replaces.clone(),
            web.client,
        );
        let (action, agent) = web.event_source();
        let (r, audit) = tokio::spawn(async move {
            let mut audit = AuditEntry::default();
            let r = services
                .enroll_own_phone(
                    &u,
                    &ph,
                    rp.is_none().then_some(pn.as_str()),
                    rp.as_deref(),
                    client,
                    &mut audit,
                )
                .await;
            audit.user = u.login.clone();
            audit.realm = u.realm.clone();
            // The post event fires here too, so it is not lost with a request cut off.
            if r.is_ok() {
                let result =
                    otpgate_service::events::CallResult::plain(serde_json::Value::Bool(true));
                let input = otpgate_service::events::EventInput {
                    event: "token_init",
                    params: &ev,
                    subject: &audit,
                    admin: None,
                    client_ip: client,
                    user_agent: agent.as_deref(),
                    action: &action,
                    result: Some(&result),
                };
                services.fire_event("post", &input).await;
            }
            (r, audit)
        })
        .await
        .map_err(|e| otpgate_service::ServiceError::Internal(format!("enrollment task: {e}")))?;
        let mut audit = audit;
        match r {
            Ok(e) => {
                audit.success = true;
                web.record(audit);
                return Ok(see_other(&format!(
                    "/ui/me/phone/verify?serial={}",
                    U(&e.serial)
                )));
            }
            Err(e) => {
                audit.info = service_message(&e);
                web.record(audit);
                let field = if service_message(&e).contains("PIN") {
                    "pin"
                } else {
                    "phone"
                };
                errors.push((field.to_owned(), service_message(&e)));
            }
        }
    }
    let b = phone_body(&s, &phone, replaces.as_deref(), &errors);
    Ok(page(&web, &s, title, &errors, b))
}

fn verify_body(s: &Session, serial: &str, errors: &[(String, String)]) -> Out {
    let mut b = Out::new();
    b.raw("<p>We have sent a code to the new number. Enter it to finish.</p>");
    b.raw("<form class=\"stack\" method=\"post\" action=\"/ui/me/phone/verify\">");
    w!(
        b,
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"serial\" value=\"{}\">",
        E(&s.csrf),
        E(serial)
    );
    Field::new("otp", "Code from the SMS")
        .attrs("required autocomplete=\"one-time-code\" inputmode=\"numeric\" pattern=\"[0-9 ]*\" autofocus")
        .errors(errors)
        .input(&mut b);
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Confirm</button></div></form>");
    b.raw("<form class=\"inline\" method=\"post\" action=\"/ui/me/phone/resend\">");
    w!(
        b,
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"serial\" value=\"{}\"><button class=\"link\">No SMS? Send a new code</button></form>",
        E(&s.csrf),
        E(serial)
    );
    b
}

/// `GET /ui/me/phone/verify?serial=`.
pub async fn verify_form(web: Web) -> WebResult {
    let (s, _) = web.user().await?;
    let serial = web.query.get("serial").unwrap_or_default().to_owned();
    let b = verify_body(&s, &serial, &[]);
    Ok(page(&web, &s, "Confirm your number", &[], b))
}

/// `POST /ui/me/phone/verify`.
pub async fn verify(web: Web) -> WebResult {
    let (s, user) = web.user().await?;
    let serial = web.form.get("serial").unwrap_or_default().to_owned();
    let otp: String = web
        .form
        .get("otp")
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut audit = AuditEntry::default();
    let r = web
        .app
        .services
        .verify_own_enrollment(&user, &serial, &otp, &mut audit)
        .await;
    audit.user = user.login.clone();
    audit.realm = user.realm.clone();
    if r.is_ok() {
        // privacyIDEA fires token_init for the verification call too.
        let result = otpgate_service::events::CallResult::plain(serde_json::Value::Bool(true));
        let mut ev = otpgate_service::Params::new();
        ev.insert("serial", serial.clone());
        ev.insert("type", "sms");
        web.fire("post", "token_init", None, &ev, &audit, Some(&result))
            .await;
    }
    web.record(audit);
    match r {
        Ok(()) => Ok(see_other("/ui/me?ok=verified")),
        Err(e) => {
            let errors = vec![("otp".to_owned(), service_message(&e))];
            let b = verify_body(&s, &serial, &errors);
            Ok(page(&web, &s, "Confirm your number", &errors, b))
        }
    }
}

/// `POST /ui/me/phone/resend`.
pub async fn resend(web: Web) -> WebResult {
    let (s, user) = web.user().await?;
    let serial = web.form.get("serial").unwrap_or_default().to_owned();
    let mut audit = AuditEntry::default();
    let r = web
        .app
        .services
        .resend_enrollment_otp(&user, &serial, web.client, &mut audit)
        .await;
    audit.user = user.login.clone();
    audit.realm = user.realm.clone();
    audit.success = r.is_ok();
    web.record(audit);
    match r {
        Ok(_) => Ok(see_other(&format!(
            "/ui/me/phone/verify?serial={}&ok=resent",
            U(&serial)
        ))),
        Err(e) => {
            let errors = vec![("otp".to_owned(), service_message(&e))];
            let b = verify_body(&s, &serial, &errors);
            Ok(page(&web, &s, "Confirm your number", &errors, b))
        }
    }
}

fn pin_body(s: &Session, tokens: &[Value], serial: &str, errors: &[(String, String)]) -> Out {
    let mut b = Out::new();
    b.raw("<p>The PIN is what you enter before the code when you sign in.</p>");
    b.raw("<form class=\"stack\" method=\"post\" action=\"/ui/me/pin\">");
    csrf_field(&mut b, s);
    let options: Vec<(String, String)> = tokens
        .iter()
        .filter(|t| str_of(t, "rollout_state") != "verify")
        .map(|t| {
            let serial = str_of(t, "serial");
            let phone = info(t, "phone");
            (serial.to_owned(), format!("{phone} ({serial})"))
        })
        .collect();
    Field::new("serial", "For the phone")
        .value(serial)
        .errors(errors)
        .select(&options, &mut b);
    new_pin_fields(&mut b, "At least 4 characters.", errors);
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Set the PIN</button></div></form>");
    b
}

/// `GET /ui/me/pin[?serial=]`.
pub async fn pin_form(web: Web) -> WebResult {
    let (s, user) = web.user().await?;
    let tokens = web.app.services.own_tokens(&user).await?;
    let serial = web.query.get("serial").unwrap_or_default().to_owned();
    if tokens.is_empty() {
        let mut b = Out::new();
        b.raw("<p class=\"empty\">Add a phone first; its PIN is set when you add it.</p>");
        return Ok(page(&web, &s, "Set your PIN", &[], b));
    }
    let b = pin_body(&s, &tokens, &serial, &[]);
    Ok(page(&web, &s, "Set your PIN", &[], b))
}

/// `POST /ui/me/pin`.
pub async fn set_pin(web: Web) -> WebResult {
    let (s, user) = web.user().await?;
    let serial = web.form.get("serial").unwrap_or_default().to_owned();
    let pin = web.form.get("pin").unwrap_or_default().to_owned();
    let mut errors = Vec::new();
    let mut ev = otpgate_service::Params::new();
    ev.insert("serial", serial.clone());
    let subject = AuditEntry {
        serial: serial.clone(),
        user: user.login.clone(),
        realm: user.realm.clone(),
        ..Default::default()
    };
    if pin != web.form.get("pin2").unwrap_or_default() {
        errors.push(("pin2".to_owned(), "The two PINs differ.".to_owned()));
    } else {
        web.fire("pre", "token_setpin", None, &ev, &subject, None)
            .await;
        match web.app.services.set_own_pin(&user, &serial, &pin).await {
            Ok(()) => {
                let result =
                    otpgate_service::events::CallResult::plain(serde_json::Value::Bool(true));
                web.fire("post", "token_setpin", None, &ev, &subject, Some(&result))
                    .await;
            }
            Err(e) => errors.push(("pin".to_owned(), service_message(&e))),
        }
    }
    web.audit(|e| {
        e.serial = serial.clone();
        e.success = errors.is_empty();
    });
    if errors.is_empty() {
        return Ok(see_other("/ui/me?ok=pin"));
    }
    let tokens = web.app.services.own_tokens(&user).await?;
    let b = pin_body(&s, &tokens, &serial, &errors);
    Ok(page(&web, &s, "Set your PIN", &errors, b))
}
