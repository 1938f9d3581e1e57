//! Policies: the list and a policy's form.

use super::super::html::{E, Field, Out, U, w};
use super::super::session::Session;
use super::{opts, typed_or};
use crate::params::Params;
use otpgate_core::policy::condition::conditions_json;
use otpgate_service::policy::{ActionValue, EVALUATED_SCOPES, list as list_field, parse_actions};
use otpgate_store::PolicyRow;

/// The action string of a policy as admins read it (`key=value, flag`).
pub fn action_text(p: &PolicyRow) -> String {
    parse_actions(&p.action)
        .into_iter()
        .map(|(k, v)| match v {
            ActionValue::Flag => k,
            ActionValue::Value(s) => format!("{k}={s}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The list.
pub fn list(b: &mut Out, policies: &[PolicyRow]) {
    b.raw("<p>Policies decide who may do what and how logins behave (scopes admin, user, authentication, authorization, enrollment). <a class=\"button primary\" href=\"/ui/admin/policies/new\">New policy</a></p>");
    if policies.is_empty() {
        b.raw("<p class=\"empty\">No policies: every admin may do everything, logins use the defaults.</p>");
        return;
    }
    b.raw("<div class=\"table-wrap\"><table class=\"data\"><caption>Policies</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Scope</th><th scope=\"col\">Actions</th><th scope=\"col\">Applies to</th><th scope=\"col\">State</th></tr></thead><tbody>");
    for p in policies {
        let mut applies: Vec<String> = Vec::new();
        if !p.time.trim().is_empty() {
            applies.push(format!("at {}", p.time.trim()));
        }
        if p.conditions.iter().any(|c| c.active) {
            applies.push(format!(
                "{} condition(s)",
                p.conditions.iter().filter(|c| c.active).count()
            ));
        }
        for (value, label) in [
            (&p.realm, "realm"),
            (&p.resolver, "user store"),
            (&p.user, "user"),
            (&p.client, "client"),
            (&p.adminuser, "admin"),
        ] {
            let t = list_field(value).join(", ");
            if !t.is_empty() {
                applies.push(format!("{label} {t}"));
            }
        }
        let applies = if applies.is_empty() {
            "everyone".to_owned()
        } else {
            applies.join("; ")
        };
        let state = if p.active {
            "<span class=\"badge ok\">active</span>"
        } else {
            "<span class=\"badge\">inactive</span>"
        };
        w!(
            b,
            "<tr><td data-label=\"Name\"><a href=\"/ui/admin/policies/{}\">{}</a></td><td data-label=\"Scope\">{}</td><td data-label=\"Actions\"><code>{}</code></td><td data-label=\"Applies to\">{}</td><td data-label=\"State\">{state}</td></tr>",
            U(&p.name),
            E(&p.name),
            E(&p.scope),
            E(&action_text(p)),
            E(&applies)
        );
    }
    b.raw("</tbody></table></div>");
}

/// What an admin should know about a stored policy.
pub fn warnings(b: &mut Out, warnings: &[String]) {
    if warnings.is_empty() {
        return;
    }
    b.raw("<div class=\"card\" role=\"note\"><h2>Worth knowing</h2><ul>");
    for warning in warnings {
        w!(b, "<li>{}</li>", E(warning));
    }
    b.raw("</ul></div>");
}

/// A policy's form (a new one when `stored` is None).
pub fn form(
    b: &mut Out,
    s: &Session,
    stored: Option<&PolicyRow>,
    f: &Params,
    errors: &[(String, String)],
) {
    let action = match stored {
        Some(p) => format!("/ui/admin/policies/{}", U(&p.name)),
        None => "/ui/admin/policies/new".to_owned(),
    };
    super::form_open(b, s, &action);
    let value = |k: &str| -> String {
        let stored = match (k, stored) {
            (_, None) => String::new(),
            ("action", Some(p)) => action_text(p),
            ("priority", Some(p)) => p.priority.to_string(),
            ("scope", Some(p)) => p.scope.clone(),
            ("realm", Some(p)) => list_field(&p.realm).join(", "),
            ("resolver", Some(p)) => list_field(&p.resolver).join(", "),
            ("user", Some(p)) => list_field(&p.user).join(", "),
            ("client", Some(p)) => list_field(&p.client).join(", "),
            ("adminuser", Some(p)) => list_field(&p.adminuser).join(", "),
            ("time", Some(p)) => p.time.clone(),
            ("conditions", Some(p)) if !p.conditions.is_empty() => {
                conditions_json(&p.conditions).to_string()
            }
            _ => String::new(),
        };
        typed_or(f, k, &stored)
    };
    if stored.is_none() {
        Field::new("name", "Name")
            .value(&value("name"))
            .attrs("required")
            .errors(errors)
            .input(b);
    }
    let scope = value("scope");
    Field::new("scope", "Scope")
        .value(if scope.is_empty() {
            "authentication"
        } else {
            &scope
        })
        .errors(errors)
        .select(&opts(EVALUATED_SCOPES.iter().copied()), b);
    Field::new("action", "Actions")
        .value(&value("action"))
        .hint("Comma-separated: flag or key=value, e.g. smstext='Your code {otp}', otppin=userstore. A comma inside a value is written \\,.")
        .attrs("required")
        .errors(errors)
        .textarea(b);
    b.raw("<fieldset><legend>Applies to (empty: everyone)</legend>");
    for (k, label) in [
        ("realm", "Realms"),
        ("resolver", "User stores"),
        ("user", "Users"),
        ("client", "Client networks"),
        ("adminuser", "Admins"),
    ] {
        Field::new(k, label)
            .value(&value(k))
            .hint("Comma-separated.")
            .errors(errors)
            .input(b);
    }
    Field::new("time", "Days and hours")
        .value(&value("time"))
        .hint("Empty: always. E.g. Mon-Fri: 9-18, Sat: 10-12 (the server's local time).")
        .errors(errors)
        .input(b);
    Field::new("conditions", "Conditions")
        .value(&value("conditions"))
        .hint("privacyIDEA's extended conditions as JSON, e.g. [[\"userinfo\", \"email\", \"matches\", \".*@example.com\", true, \"condition_is_false\"]]. Empty: none.")
        .errors(errors)
        .textarea(b);
    let all_resolvers = match (f.get("csrf"), stored) {
        (Some(_), _) => f.flag("check_all_resolvers"),
        (None, Some(p)) => p.check_all_resolvers,
        (None, None) => false,
    };
    w!(
        b,
        "<div class=\"field check\"><input type=\"checkbox\" id=\"check_all_resolvers\" name=\"check_all_resolvers\" value=\"1\"{}><label for=\"check_all_resolvers\">User stores: any of the user's realm (check_all_resolvers)</label></div>",
        if all_resolvers { " checked" } else { "" }
    );
    b.raw("</fieldset>");
    Field::new("priority", "Priority")
        .kind("number")
        .value(&value("priority"))
        .hint("When policies disagree, the lowest number wins.")
        .errors(errors)
        .input(b);
    let active = match (f.get("csrf"), stored) {
        (Some(_), _) => f.flag("active"),
        (None, Some(p)) => p.active,
        (None, None) => true,
    };
    w!(
        b,
        "<div class=\"field check\"><input type=\"checkbox\" id=\"active\" name=\"active\" value=\"1\"{}><label for=\"active\">Active</label></div>",
        if active { " checked" } else { "" }
    );
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Save policy</button> <a class=\"button\" href=\"/ui/admin/policies\">Cancel</a></div></form>");
}
