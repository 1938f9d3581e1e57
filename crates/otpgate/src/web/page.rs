//! The layout of every page (head, menus, flash message, error summary, footer), the
//! security headers of pages, and the small answers every handler uses (a redirect after a
//! POST, a page that says what went wrong).

use super::assets;
use super::html::{self, E, Out, w};
use super::session::Session;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use otpgate_service::ServiceError;

/// The CSP of every web page: our own script and style only, no inline code, Trusted Types.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; \
require-trusted-types-for 'script'";

/// Security headers of web answers (the API's `secure_headers` keeps what is set here).
pub fn page_headers(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    // Browsers then name our origin in `Origin` on our own form posts (with `no-referrer`
    // they send `Origin: null`, which `same_origin` refuses), and nothing leaves the site.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// Which navigation a page shows.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// Sign-in pages: none.
    None,
    /// The admin console.
    Admin,
    /// Self-service.
    User,
}

/// The admin menu: page, label, and the admin right its page needs (the menu shows only the
/// pages an admin may open).
pub const ADMIN_MENU: &[(&str, &str, &str)] = &[
    ("/ui/admin/", "Dashboard", "auditlog"),
    ("/ui/admin/tokens", "Tokens", "tokenlist"),
    ("/ui/admin/users", "Users", "userlist"),
    ("/ui/admin/realms", "Realms", "realmread"),
    ("/ui/admin/gateways", "SMS gateways", "smsgateway_read"),
    ("/ui/admin/texts", "SMS texts", "policyread"),
    ("/ui/admin/policies", "Policies", "policyread"),
    ("/ui/admin/events", "Events", "eventhandling_read"),
    ("/ui/admin/smtp", "SMTP", "smtpserver_read"),
    ("/ui/admin/settings", "Settings", "configread"),
    ("/ui/admin/audit", "Audit log", "auditlog"),
];

const USER_MENU: &[(&str, &str)] = &[
    ("/ui/me", "My phones"),
    ("/ui/me/phone", "Add a phone"),
    ("/ui/me/pin", "PIN"),
];

/// A whole page.
pub struct Page<'a> {
    /// `<title>` and `<h1>`.
    pub title: &'a str,
    /// Navigation.
    pub nav: Nav,
    /// The signed-in session (for the menu, the sign-out form and the CSRF meta tag).
    pub session: Option<&'a Session>,
    /// The current path (menu `aria-current`).
    pub path: &'a str,
    /// A success message.
    pub flash: Option<&'a str>,
    /// Refused fields: (field id or "", message).
    pub errors: &'a [(String, String)],
    /// The main content after the heading.
    pub body: Out,
}

impl Page<'_> {
    /// Renders the page with `status`.
    pub fn render(self, status: StatusCode) -> Response {
        let mut o = Out::new();
        o.raw("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        w!(o, "<title>{} · otpgate</title>", E(self.title));
        w!(
            o,
            "<link rel=\"stylesheet\" href=\"{}\"><link rel=\"icon\" href=\"{}\"><script src=\"{}\" defer></script>",
            E(&assets::url("app.css")),
            E(&assets::url("icon.svg")),
            E(&assets::url("app.js"))
        );
        if let Some(s) = self.session {
            w!(o, "<meta name=\"csrf-token\" content=\"{}\">", E(&s.csrf));
        }
        let body_class = if self.nav == Nav::None { "auth" } else { "app" };
        w!(
            o,
            "</head><body class=\"{body_class}\"><a class=\"skip\" href=\"#main\">Skip to main content</a>"
        );
        let menu: Option<(Vec<(&str, &str)>, &str)> = match self.nav {
            Nav::None => None,
            Nav::Admin => Some((
                ADMIN_MENU
                    .iter()
                    .filter(|(href, _, _)| self.session.is_none_or(|s| s.allowed.contains(href)))
                    .map(|(href, label, _)| (*href, *label))
                    .collect(),
                "/ui/admin/",
            )),
            Nav::User => Some((USER_MENU.to_vec(), "/ui/me")),
        };
        if let Some((items, home)) = menu {
            w!(
                o,
                "<header class=\"top\"><a class=\"brand\" href=\"{}\">otpgate</a><nav class=\"menu\" aria-label=\"Main\"><ul>",
                E(home)
            );
            for (href, label) in items {
                let current = if self.path == href
                    || (href != "/ui/admin/" && href != "/ui/me" && self.path.starts_with(href))
                {
                    " aria-current=\"page\""
                } else {
                    ""
                };
                w!(
                    o,
                    "<li><a href=\"{}\"{current}>{}</a></li>",
                    E(href),
                    E(label)
                );
            }
            o.raw("</ul></nav>");
            if let Some(s) = self.session {
                let who = if s.realm.is_empty() {
                    s.username.clone()
                } else {
                    format!("{}@{}", s.username, s.realm)
                };
                // An admin changes their own password from the name.
                let who_html = if self.nav == Nav::Admin {
                    format!(
                        "<a class=\"who\" href=\"/ui/admin/password\" title=\"Change your password\">{}</a>",
                        E(&who)
                    )
                } else {
                    format!("<span class=\"who\">{}</span>", E(&who))
                };
                w!(
                    o,
                    "<form class=\"logout\" method=\"post\" action=\"/ui/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">{who_html} <button class=\"link\">Sign out</button></form>",
                    E(&s.csrf)
                );
            }
            o.raw("</header>");
        }
        let main_class = if self.nav == Nav::None {
            "auth-box"
        } else {
            "page"
        };
        w!(
            o,
            "<main id=\"main\" class=\"{main_class}\" tabindex=\"-1\"><h1>{}</h1>",
            E(self.title)
        );
        if let Some(f) = self.flash {
            w!(o, "<p class=\"flash\" role=\"status\">{}</p>", E(f));
        }
        html::error_summary(self.errors, &mut o);
        o.push(self.body);
        w!(
            o,
            "</main><footer class=\"foot\">otpgate {}</footer></body></html>",
            E(env!("CARGO_PKG_VERSION"))
        );
        let mut r = (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            o.into_string(),
        )
            .into_response();
        page_headers(&mut r);
        if !self.errors.is_empty() {
            let why: Vec<&str> = self.errors.iter().map(|(_, m)| m.as_str()).collect();
            r.extensions_mut()
                .insert(crate::request::Refusal(why.join("; ")));
        }
        r
    }
}

/// The hidden CSRF field of a form.
pub fn csrf_field(b: &mut Out, s: &Session) {
    w!(
        b,
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        E(&s.csrf)
    );
}

/// Why a "new" form does not save: `what` (e.g. "an SMTP server mail") exists already, and a
/// "new" form never replaces (nor drops the secrets of) what exists.
pub fn exists_already(what: &str) -> ServiceError {
    ServiceError::Parameter(format!(
        "There is {what} already; change it on its own page."
    ))
}

/// A page that says what went wrong, with a way back.
pub fn error_page(status: StatusCode, message: &str, back: Option<&str>) -> Response {
    let mut r = error_page_inner(status, message, back);
    r.extensions_mut()
        .insert(crate::request::Refusal(message.to_owned()));
    r
}

fn error_page_inner(status: StatusCode, message: &str, back: Option<&str>) -> Response {
    let mut body = Out::new();
    w!(body, "<p>{}</p>", E(message));
    w!(
        body,
        "<p><a class=\"button\" href=\"{}\">Back</a></p>",
        E(back.unwrap_or("/ui/"))
    );
    let title = if status == StatusCode::FORBIDDEN {
        "Not allowed"
    } else if status == StatusCode::NOT_FOUND {
        "Not found"
    } else {
        "Something is wrong"
    };
    Page {
        title,
        nav: Nav::None,
        session: None,
        path: "",
        flash: None,
        errors: &[],
        body,
    }
    .render(status)
}

/// 303 to `to` (after a POST).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// The success messages a redirect may name (`?ok=key`): fixed texts, nothing reflected.
pub fn flash(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "enrolled" => "The token was enrolled.",
        "enabled" => "The token was enabled.",
        "disabled" => "The token was disabled.",
        "reset" => "The fail counter was reset.",
        "pin" => "The PIN was set.",
        "deleted" => "Deleted.",
        "saved" => "Saved.",
        "password-changed" => "Your password was changed. Sign in with the new one.",
        "default" => "This gateway now sends every token's SMS that names no other.",
        "test-sent" => "The test SMS was accepted by the gateway.",
        "user" => "The user was created.",
        "realm" => "The realm was saved.",
        "realm-default" => {
            "The realm was saved. As the first realm it is the default: logins that name no realm use it."
        }
        "saved-default" => {
            "Saved. As the first gateway it is the default: it sends every token's SMS that names no other."
        }
        "verified" => "Your phone is verified and ready for signing in.",
        "resent" => "A new code is on its way.",
        "signed-out" => "You have signed out.",
        "mail-sent" => "The test mail was accepted by the mail server.",
        "requeued" => "The notification is queued again.",
        "blocked" => "No SMS goes to that prefix any more.",
        "unblocked" => "SMS go to that prefix again.",
        _ => return None,
    })
}

/// What a user reads for a service error (no internal details).
pub fn service_message(e: &ServiceError) -> String {
    match e {
        ServiceError::Internal(cause) => {
            tracing::error!(cause = %cause, "web request failed");
            "Something went wrong. The server log has the details.".into()
        }
        ServiceError::Parameter(m)
        | ServiceError::User(m)
        | ServiceError::TokenAdmin(m)
        | ServiceError::TokenAdminId(_, m)
        | ServiceError::Resolver(m)
        | ServiceError::ConfigAdmin(m)
        | ServiceError::NotFound(m)
        | ServiceError::Validate(m)
        | ServiceError::Policy(m) => m.clone(),
        ServiceError::Auth { message, .. } => message.clone(),
        // Shown at its field: without the field's name where the API's message leads with it.
        ServiceError::Invalid { field, message } => message
            .strip_prefix(field.as_str())
            .and_then(|m| m.strip_prefix(": "))
            .unwrap_or(message)
            .to_owned(),
        other => other.to_string(),
    }
}

/// An OTP as typed, without the blanks people put in.
pub fn typed_otp(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The status of a page with a form: 422 when fields were refused.
pub fn form_status(errors: &[(String, String)]) -> StatusCode {
    if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}
