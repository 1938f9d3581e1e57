//! Event rules: the list with the notifications that could not be delivered, and a rule's
//! form (its options from the service's catalogue of the action).

use super::super::html::{E, Field, Out, post_button, w};
use super::super::session::Session;
use super::typed_or;
use crate::params::Params;
use otpgate_service::events::{EVENTS, HandlerView, OptionSpec};
use otpgate_store::OutboxRow;

/// The rules.
pub fn list(b: &mut Out, handlers: &[HandlerView]) {
    b.raw("<p>Event rules send a notification (SMS or mail) when something happens, e.g. a token was enrolled or a login failed. <a class=\"button primary\" href=\"/ui/admin/events/new\">New event rule</a></p>");
    if handlers.is_empty() {
        b.raw("<p class=\"empty\">No event rules.</p>");
        return;
    }
    b.raw("<div class=\"table-wrap\"><table class=\"data\"><caption>Event rules</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Events</th><th scope=\"col\">Sends</th><th scope=\"col\">To</th><th scope=\"col\">State</th></tr></thead><tbody>");
    for e in handlers {
        let sends = if e.action == "sendsms" { "SMS" } else { "mail" };
        let to = e.options.get("To").map(String::as_str).unwrap_or_default();
        let state = if e.active {
            "<span class=\"badge ok\">active</span>"
        } else {
            "<span class=\"badge\">inactive</span>"
        };
        w!(
            b,
            "<tr><td data-label=\"Name\"><a href=\"/ui/admin/events/{}\">{}</a></td><td data-label=\"Events\">{}</td><td data-label=\"Sends\">{sends} ({})</td><td data-label=\"To\">{}</td><td data-label=\"State\">{state}</td></tr>",
            e.id,
            E(&e.name),
            E(&e.events.join(", ")),
            E(&e.position),
            E(to)
        );
    }
    b.raw("</tbody></table></div>");
}

/// The dead notifications, each with a button to try again.
pub fn dead_letters(b: &mut Out, s: &Session, items: &[OutboxRow]) {
    b.raw("<section class=\"card\" aria-labelledby=\"ob-h\"><h2 id=\"ob-h\">Notifications that could not be delivered</h2>");
    if items.is_empty() {
        b.raw("<p class=\"empty\">None: every notification was delivered or is still being tried.</p>");
    } else {
        b.raw("<div class=\"table-wrap\"><table class=\"data\"><caption>Given up after their retries</caption><thead><tr><th scope=\"col\">Rule</th><th scope=\"col\">To</th><th scope=\"col\">Last error</th><th scope=\"col\">Action</th></tr></thead><tbody>");
        for it in items {
            w!(
                b,
                "<tr><td data-label=\"Rule\">{}</td><td data-label=\"To\">{}</td><td data-label=\"Last error\">{}</td><td data-label=\"Action\">",
                E(&it.item.handler_name),
                E(&it.item.recipient),
                E(&it.last_error)
            );
            post_button(
                b,
                &format!("/ui/admin/events/outbox/{}/retry", it.id),
                &s.csrf,
                "Try again",
                "small",
                None,
            );
            b.raw("</td></tr>");
        }
        b.raw("</tbody></table></div>");
    }
    b.raw("</section>");
}

/// A rule's form for notification `action` (a new rule when `stored` is None); `options`
/// are the action's options.
pub fn form(
    b: &mut Out,
    s: &Session,
    action: &str,
    stored: Option<&HandlerView>,
    options: &[OptionSpec],
    f: &Params,
    errors: &[(String, String)],
) {
    if stored.is_none() {
        b.raw("<form class=\"filters\" method=\"get\" action=\"/ui/admin/events/new\">");
        let kinds = vec![
            ("sendsms".to_owned(), "Send an SMS".to_owned()),
            ("sendmail".to_owned(), "Send a mail".to_owned()),
        ];
        Field::new("action", "Notification")
            .value(action)
            .attrs("data-autosubmit")
            .select(&kinds, b);
        b.raw(
            "<div class=\"actions js-hide\"><button type=\"submit\">Choose</button></div></form>",
        );
    }
    let target = match stored {
        Some(e) => format!("/ui/admin/events/{}", e.id),
        None => "/ui/admin/events/new".to_owned(),
    };
    super::form_open(b, s, &target);
    w!(
        b,
        "<input type=\"hidden\" name=\"action\" value=\"{}\">",
        E(action)
    );
    let value = |k: &str| -> String {
        let stored = match (k, stored) {
            (_, None) => String::new(),
            ("name", Some(e)) => e.name.clone(),
            ("event", Some(e)) => e.events.join(", "),
            ("position", Some(e)) => e.position.clone(),
            ("conditions", Some(e)) if !e.conditions.is_empty() => {
                serde_json::to_string(&e.conditions).unwrap_or_default()
            }
            _ => String::new(),
        };
        typed_or(f, k, &stored)
    };
    Field::new("name", "Name")
        .value(&value("name"))
        .attrs("required")
        .errors(errors)
        .input(b);
    Field::new("event", "Events")
        .value(&value("event"))
        .hint(&format!("Comma-separated: {}.", EVENTS.join(", ")))
        .attrs("required")
        .errors(errors)
        .input(b);
    let position = value("position");
    Field::new("position", "When")
        .value(if position.is_empty() {
            "post"
        } else {
            &position
        })
        .select(
            &[
                ("post".to_owned(), "After the request (post)".to_owned()),
                ("pre".to_owned(), "Before the request (pre)".to_owned()),
            ],
            b,
        );
    Field::new("conditions", "Conditions")
        .value(&value("conditions"))
        .hint("JSON, e.g. {\"result_value\": \"False\"} or {\"realm\": \"staff\"}; empty: always.")
        .errors(errors)
        .textarea(b);
    let mut options: Vec<&OptionSpec> = options.iter().collect();
    options.sort_by_key(|o| o.key);
    b.raw("<fieldset><legend>Notification</legend>");
    for spec in options {
        let field = format!("option.{}", spec.key);
        let stored_v = stored
            .and_then(|e| e.options.get(spec.key))
            .map(String::as_str)
            .unwrap_or_default();
        let label = if spec.required == Some(true) {
            format!("{} (required)", spec.key)
        } else {
            spec.key.to_owned()
        };
        let value = typed_or(f, &field, stored_v);
        let field = Field::new(&field, &label)
            .value(&value)
            .hint(&spec.description)
            .errors(errors);
        match &spec.choices {
            Some(choices) if !choices.is_empty() => {
                let mut c = vec![(String::new(), "(choose)".to_owned())];
                c.extend(super::opts(choices.iter().cloned()));
                field.select(&c, b);
            }
            _ if spec.text => field.textarea(b),
            _ => field.input(b),
        }
    }
    b.raw("</fieldset>");
    let active = match (f.get("csrf"), stored) {
        (Some(_), _) => f.flag("active"),
        (None, Some(e)) => e.active,
        (None, None) => true,
    };
    w!(
        b,
        "<div class=\"field check\"><input type=\"checkbox\" id=\"active\" name=\"active\" value=\"1\"{}><label for=\"active\">Active</label></div>",
        if active { " checked" } else { "" }
    );
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Save event rule</button> <a class=\"button\" href=\"/ui/admin/events\">Cancel</a></div></form>");
}
