//! Self-service: the user's phones (SMS tokens), enrolling or changing a phone confirmed by
//! the OTP of a first SMS, and the PIN.

use super::html::{E, Field, Out, U, w};
use super::page::{Nav, csrf_field, see_other, service_message};
use super::request::{Web, WebResult};
use super::session::Session;
use axum::response::Response;
use otpgate_core::token::Unfit;
use otpgate_service::call::Caller;
use otpgate_service::tokens::TokenView;
use otpgate_service::users::User;

fn page(web: &Web, s: &Session, title: &str, errors: &[(String, String)], body: Out) -> Response {
    web.page(s, Nav::User, title, errors, None, body)
}

/// A self-service call of `user` (the audit and the events name the user).
fn own_call(web: &Web, user: &User, serial: &str) -> otpgate_service::call::Call {
    web.call(Caller::Anonymous)
        .subject(&user.login, &user.realm, serial)
}

/// `GET /ui/me`: the user's phones.
pub async fn overview(web: Web) -> WebResult {
    let (s, user) = web.user().await?;
    let tokens = web.app.services.own_tokens(&user).await?;
    let mut b = Out::new();
    // An enrollment still waiting for its code: the way back to it.
    for t in tokens.iter().filter(|t| t.rollout_state == "verify") {
        w!(
            b,
            "<p class=\"note\">The number {} is waiting for its code. <a href=\"/ui/me/phone/verify?serial={}\">Enter the code</a></p>",
            E(t.info("phone")),
            U(&t.serial)
        );
    }
    let ready: Vec<&TokenView> = tokens
        .iter()
        .filter(|t| t.rollout_state != "verify")
        .collect();
    if ready.is_empty() {
        b.raw("<p class=\"empty\">You have no phone for signing in yet.</p>");
        b.raw("<p><a class=\"button primary\" href=\"/ui/me/phone\">Add your phone</a></p>");
        return Ok(page(&web, &s, "My phones", &[], b));
    }
    w!(
        b,
        "<div class=\"table-wrap\"><table class=\"data\"><caption>Phones that receive your sign-in codes ({})</caption><thead><tr><th scope=\"col\">Phone</th><th scope=\"col\">State</th><th scope=\"col\">Actions</th></tr></thead><tbody>",
        ready.len()
    );
    for t in ready {
        let serial = t.serial.as_str();
        let phone = t.info("phone");
        let state = match t.state().unfit() {
            Some(Unfit::Revoked | Unfit::Disabled) => "<span class=\"badge bad\">disabled</span>",
            Some(Unfit::Locked) => "<span class=\"badge warn\">locked</span>",
            _ => "<span class=\"badge ok\">ready</span>",
        };
        let shown = if phone.is_empty() {
            "(the number in your user record)".to_owned()
        } else {
            readable(phone)
        };
        w!(
            b,
            "<tr><td data-label=\"Phone\">{}</td><td data-label=\"State\">{state}</td><td data-label=\"Actions\"><a class=\"button small\" href=\"/ui/me/phone?replaces={}\">Change number</a> <a class=\"button small\" href=\"/ui/me/pin?serial={}\">Set PIN</a></td></tr>",
            E(&shown),
            U(serial),
            U(serial)
        );
    }
    b.raw("</tbody></table></div>");
    b.raw("<p class=\"note\">Each phone has a PIN of its own: you sign in with the PIN of the phone that gets the code.</p>");
    b.raw("<p><a class=\"button\" href=\"/ui/me/phone\">Add another phone</a></p>");
    Ok(page(&web, &s, "My phones", &[], b))
}

/// A phone number as people write it (`+49 151 23456780`); as stored when it does not parse.
fn readable(phone: &str) -> String {
    otpgate_core::number::parse(phone, None).map_or_else(|_| phone.to_owned(), |n| n.international)
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

/// What the phone form knows of the user's phones: the number being replaced (readable), and
/// whether the user has a phone already.
struct PhonesNow {
    current: Option<String>,
    has_phones: bool,
}

impl PhonesNow {
    async fn of(
        web: &Web,
        user: &User,
        replaces: Option<&str>,
    ) -> Result<Self, super::request::WebError> {
        let tokens = web.app.services.own_tokens(user).await?;
        let current = replaces
            .and_then(|r| tokens.iter().find(|t| t.serial == r))
            .map(|t| {
                let p = t.info("phone");
                if p.is_empty() {
                    "the number in your user record".to_owned()
                } else {
                    readable(p)
                }
            });
        Ok(Self {
            current,
            has_phones: tokens.iter().any(|t| t.rollout_state != "verify"),
        })
    }
}

fn phone_body(
    s: &Session,
    phone: &str,
    replaces: Option<&str>,
    now: &PhonesNow,
    errors: &[(String, String)],
) -> Out {
    let mut b = Out::new();
    match replaces {
        Some(_) => w!(
            b,
            "<p>Enter the new number that replaces <strong>{}</strong>. We send a code to it; once you enter the code, the new number replaces the old one and keeps its PIN.</p>",
            E(now.current.as_deref().unwrap_or("your number"))
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
            if now.has_phones {
                "This phone gets a PIN of its own (your other phones keep theirs): at least 4 characters, entered before the code when you sign in with it."
            } else {
                "At least 4 characters. You enter it before the code when you sign in."
            },
            errors,
        );
    }
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Send the code</button> <a class=\"button\" href=\"/ui/me\">Cancel</a></div></form>");
    b
}

/// `GET /ui/me/phone[?replaces=serial]`.
pub async fn phone_form(web: Web) -> WebResult {
    let (s, user) = web.user().await?;
    let replaces = web.query.get_nonblank("replaces");
    let title = if replaces.is_some() {
        "Change your number"
    } else {
        "Add a phone"
    };
    let now = PhonesNow::of(&web, &user, replaces).await?;
    let b = phone_body(&s, "", replaces, &now, &[]);
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
        // The same events as an enrollment through the API (privacyIDEA fires token_init for
        // a user's own enrollment too). The call runs to its end even when the browser goes
        // away, so no half-done enrollment is left (the SMS and its pending token are both
        // kept or both removed).
        let call = own_call(&web, &user, "").event("token_init");
        let (ph, rp, u) = (phone.clone(), replaces.clone(), user.clone());
        let r = web
            .run(call, None, move |svc, cx| {
                Box::pin(async move {
                    let pin = rp.is_none().then_some(pin.as_str());
                    svc.enroll_own_phone(&u, &ph, pin, rp.as_deref(), cx).await
                })
            })
            .await;
        match r {
            Ok(e) => {
                return Ok(see_other(&format!(
                    "/ui/me/phone/verify?serial={}",
                    U(&e.serial)
                )));
            }
            Err(e) => {
                let m = service_message(&e);
                let field = if m.contains("PIN") { "pin" } else { "phone" };
                errors.push((field.to_owned(), m));
            }
        }
    }
    let now = PhonesNow::of(&web, &user, replaces.as_deref()).await?;
    let b = phone_body(&s, &phone, replaces.as_deref(), &now, &errors);
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

/// `POST /ui/me/phone/verify`: privacyIDEA fires `token_init` for the verification too.
pub async fn verify(web: Web) -> WebResult {
    let (s, user) = web.user().await?;
    let serial = web.form.get("serial").unwrap_or_default().to_owned();
    let otp = super::page::typed_otp(web.form.get("otp").unwrap_or_default());
    let call = own_call(&web, &user, &serial).event("token_init");
    let sn = serial.clone();
    let r = web
        .run(call, None, move |svc, cx| {
            Box::pin(async move { svc.verify_own_enrollment(&user, &sn, &otp, cx).await })
        })
        .await;
    match r {
        Ok(_) => Ok(see_other("/ui/me?ok=verified")),
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
    let call = own_call(&web, &user, &serial);
    let sn = serial.clone();
    let r = web
        .run(call, None, move |svc, cx| {
            Box::pin(async move { svc.resend_enrollment_otp(&user, &sn, cx).await })
        })
        .await;
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

fn pin_body(s: &Session, tokens: &[TokenView], serial: &str, errors: &[(String, String)]) -> Out {
    let mut b = Out::new();
    b.raw("<p>The PIN is what you enter before the code when you sign in.</p>");
    b.raw("<form class=\"stack\" method=\"post\" action=\"/ui/me/pin\">");
    csrf_field(&mut b, s);
    let options: Vec<(String, String)> = tokens
        .iter()
        .filter(|t| t.rollout_state != "verify")
        .map(|t| {
            (
                t.serial.clone(),
                format!("{} ({})", t.info("phone"), t.serial),
            )
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

/// `POST /ui/me/pin`: a `token_setpin` call of the user's own token.
pub async fn set_pin(web: Web) -> WebResult {
    let (s, user) = web.user().await?;
    let serial = web.form.get("serial").unwrap_or_default().to_owned();
    let pin = web.form.get("pin").unwrap_or_default().to_owned();
    let mut errors = Vec::new();
    if pin != web.form.get("pin2").unwrap_or_default() {
        errors.push(("pin2".to_owned(), "The two PINs differ.".to_owned()));
    } else {
        let call = own_call(&web, &user, &serial).event("token_setpin");
        let (u, sn) = (user.clone(), serial.clone());
        let r = web
            .run(call, None, move |svc, cx| {
                Box::pin(async move { svc.set_own_pin(&u, &sn, &pin, cx).await })
            })
            .await;
        if let Err(e) = r {
            errors.push(("pin".to_owned(), service_message(&e)));
        }
    }
    if errors.is_empty() {
        return Ok(see_other("/ui/me?ok=pin"));
    }
    let tokens = web.app.services.own_tokens(&user).await?;
    let b = pin_body(&s, &tokens, &serial, &errors);
    Ok(page(&web, &s, "Set your PIN", &errors, b))
}
