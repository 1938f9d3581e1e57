//! SMTP servers: the list, a server's form (the password never shown back) and its test
//! mail.

use super::super::html::{E, Field, Out, U, w};
use super::super::page::csrf_field;
use super::super::session::Session;
use super::typed_or;
use crate::params::Params;
use otpgate_service::smtpserver::SmtpView;

/// The list.
pub fn list(b: &mut Out, servers: &[SmtpView]) {
    b.raw("<p>Mail servers for notifications and the SMTP (mail to SMS) gateway. <a class=\"button primary\" href=\"/ui/admin/smtp/new\">New SMTP server</a></p>");
    if servers.is_empty() {
        b.raw("<p class=\"empty\">No SMTP servers yet.</p>");
        return;
    }
    b.raw("<div class=\"table-wrap\"><table class=\"data\"><caption>SMTP servers</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Server</th><th scope=\"col\">Sender</th><th scope=\"col\">Description</th></tr></thead><tbody>");
    for d in servers {
        w!(
            b,
            "<tr><td data-label=\"Name\"><a href=\"/ui/admin/smtp/{}\">{}</a></td><td data-label=\"Server\">{}:{}</td><td data-label=\"Sender\">{}</td><td data-label=\"Description\">{}</td></tr>",
            U(&d.identifier),
            E(&d.identifier),
            E(&d.server),
            d.port,
            E(&d.sender),
            E(&d.description)
        );
    }
    b.raw("</tbody></table></div>");
}

/// A stored server's page: the test mail, then its settings.
pub fn page(b: &mut Out, s: &Session, d: &SmtpView, f: &Params, errors: &[(String, String)]) {
    b.raw("<section class=\"card\" aria-labelledby=\"tm-h\"><h2 id=\"tm-h\">Send a test mail</h2>");
    w!(
        b,
        "<form class=\"stack\" method=\"post\" action=\"/ui/admin/smtp/{}/test\">",
        U(&d.identifier)
    );
    csrf_field(b, s);
    Field::new("recipient", "To")
        .kind("email")
        .value(f.get("recipient").unwrap_or_default())
        .attrs("required")
        .errors(errors)
        .input(b);
    b.raw("<div class=\"actions\"><button type=\"submit\">Send test mail</button></div></form></section>");
    b.raw("<section class=\"card\" aria-labelledby=\"st-h\"><h2 id=\"st-h\">Settings</h2>");
    form(b, s, Some(d), f, errors);
    b.raw("</section>");
}

/// A server's settings (a new one when `stored` is None).
pub fn form(
    b: &mut Out,
    s: &Session,
    stored: Option<&SmtpView>,
    f: &Params,
    errors: &[(String, String)],
) {
    let action = match stored {
        Some(d) => format!("/ui/admin/smtp/{}", U(&d.identifier)),
        None => "/ui/admin/smtp/new".to_owned(),
    };
    super::form_open(b, s, &action);
    let value = |k: &str| -> String {
        let stored = match (k, stored) {
            (_, None) => String::new(),
            ("identifier", Some(d)) => d.identifier.clone(),
            ("server", Some(d)) => d.server.clone(),
            ("port", Some(d)) => d.port.to_string(),
            ("username", Some(d)) => d.username.clone(),
            ("sender", Some(d)) => d.sender.clone(),
            ("timeout", Some(d)) => d.timeout.to_string(),
            ("description", Some(d)) => d.description.clone(),
            _ => String::new(),
        };
        typed_or(f, k, &stored)
    };
    let checked = |k: &str, default: bool| -> &'static str {
        let stored = stored.map(|d| if k == "tls" { d.tls } else { d.tls_verify });
        // The settings form was sent back (not the test-mail form, which has no `server`).
        let on = match (f.get("server"), stored) {
            (Some(_), _) => f.flag(k),
            (None, Some(v)) => v,
            (None, None) => default,
        };
        if on { " checked" } else { "" }
    };
    if stored.is_none() {
        Field::new("identifier", "Name")
            .value(&value("identifier"))
            .hint(super::NAME_HINT)
            .attrs(super::NAME_ATTRS)
            .errors(errors)
            .input(b);
    }
    Field::new("server", "Server")
        .value(&value("server"))
        .attrs("required")
        .errors(errors)
        .input(b);
    let port = value("port");
    Field::new("port", "Port")
        .kind("number")
        .value(if port.is_empty() { "587" } else { &port })
        .errors(errors)
        .input(b);
    w!(
        b,
        "<div class=\"field check\"><input type=\"checkbox\" id=\"tls\" name=\"tls\" value=\"1\"{}><label for=\"tls\">Use TLS (STARTTLS, or TLS from the start on port 465)</label></div>",
        checked("tls", true)
    );
    w!(
        b,
        "<div class=\"field check\"><input type=\"checkbox\" id=\"tls_verify\" name=\"tls_verify\" value=\"1\"{}><label for=\"tls_verify\">Verify the server's certificate</label></div>",
        checked("tls_verify", true)
    );
    Field::new("username", "User name")
        .value(&value("username"))
        .attrs("autocomplete=\"off\"")
        .errors(errors)
        .input(b);
    let hint = if stored.is_some_and(|d| d.has_password) {
        "Stored encrypted; leave empty to keep it."
    } else {
        ""
    };
    Field::new("password", "Password")
        .kind("password")
        .hint(hint)
        .attrs("autocomplete=\"off\"")
        .errors(errors)
        .input(b);
    Field::new("sender", "Sender address")
        .kind("email")
        .value(&value("sender"))
        .errors(errors)
        .input(b);
    Field::new("timeout", "Timeout (seconds)")
        .kind("number")
        .value(&value("timeout"))
        .errors(errors)
        .input(b);
    Field::new("description", "Description")
        .value(&value("description"))
        .input(b);
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Save</button> <a class=\"button\" href=\"/ui/admin/smtp\">Cancel</a></div></form>");
}
