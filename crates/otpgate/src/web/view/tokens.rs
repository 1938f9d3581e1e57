//! Tokens: the list with its filters, a token's page, and the enrollment form.

use super::super::html::{E, Field, Out, U, post_button, w};
use super::super::page::csrf_field;
use super::super::session::Session;
use super::pager;
use crate::params::Params;
use otpgate_core::token::Unfit;
use otpgate_service::Page;
use otpgate_service::tokens::TokenView;
use otpgate_store::SmsMessageRow;

/// The state of a token as a badge.
pub fn state(t: &TokenView) -> &'static str {
    match t.state().unfit() {
        Some(Unfit::NotEnrolled) => "<span class=\"badge warn\">waiting for verification</span>",
        Some(Unfit::Revoked | Unfit::Disabled) => "<span class=\"badge bad\">disabled</span>",
        Some(Unfit::Locked) => "<span class=\"badge warn\">locked</span>",
        None => "<span class=\"badge ok\">active</span>",
    }
}

fn phone_of(t: &TokenView) -> &str {
    t.info
        .get("phone")
        .map_or("(user's mobile)", String::as_str)
}

fn owner_of(t: &TokenView) -> String {
    match &t.owner {
        Some(o) if !o.username.is_empty() => format!("{}@{}", o.username, o.realm),
        _ => "—".to_owned(),
    }
}

/// The search form of the list.
pub fn filters(b: &mut Out, serial: &str, user: &str) {
    b.raw(
        "<p><a class=\"button primary\" href=\"/ui/admin/tokens/new\">Enroll an SMS token</a></p>",
    );
    b.raw("<form class=\"filters\" method=\"get\" action=\"/ui/admin/tokens\" role=\"search\">");
    Field::new("serial", "Serial contains")
        .kind("search")
        .value(serial)
        .input(b);
    Field::new("user", "User")
        .kind("search")
        .value(user)
        .input(b);
    b.raw("<div class=\"actions\"><button type=\"submit\">Search</button></div></form>");
}

/// A page of tokens with their buttons, and the page links.
pub fn list(b: &mut Out, s: &Session, listed: &Page<TokenView>, q: &Params) {
    let count = listed.count;
    if listed.items.is_empty() {
        b.raw("<p class=\"empty\">No tokens match.</p>");
        return;
    }
    w!(
        b,
        "<div class=\"table-wrap\"><table class=\"data\"><caption>Tokens ({count})</caption><thead><tr><th scope=\"col\">Serial</th><th scope=\"col\">User</th><th scope=\"col\">Phone</th><th scope=\"col\">State</th><th scope=\"col\">Fails</th><th scope=\"col\">Actions</th></tr></thead><tbody>"
    );
    for t in &listed.items {
        w!(
            b,
            "<tr><td data-label=\"Serial\"><a href=\"/ui/admin/tokens/{}\"><code>{}</code></a></td><td data-label=\"User\">{}</td><td data-label=\"Phone\">{}</td><td data-label=\"State\">{}</td><td data-label=\"Fails\">{} / {}</td><td data-label=\"Actions\">",
            U(&t.serial),
            E(&t.serial),
            E(&owner_of(t)),
            E(phone_of(t)),
            state(t),
            t.failcount,
            t.maxfail
        );
        buttons(b, s, t);
        b.raw("</td></tr>");
    }
    b.raw("</tbody></table></div>");
    pager(
        b,
        "/ui/admin/tokens",
        q,
        listed.page,
        count,
        listed.page_size,
    );
}

fn buttons(b: &mut Out, s: &Session, t: &TokenView) {
    let serial = t.serial.as_str();
    let base = format!("/ui/admin/tokens/{}", U(serial));
    if t.active {
        post_button(
            b,
            &format!("{base}/disable"),
            &s.csrf,
            "Disable",
            "small",
            None,
        );
    } else {
        post_button(
            b,
            &format!("{base}/enable"),
            &s.csrf,
            "Enable",
            "small",
            None,
        );
    }
    if t.failcount > 0 {
        post_button(
            b,
            &format!("{base}/reset"),
            &s.csrf,
            "Reset fails",
            "small",
            None,
        );
    }
    post_button(
        b,
        &format!("{base}/delete"),
        &s.csrf,
        "Delete",
        "small danger",
        Some(&format!("Delete token {serial}? This cannot be undone.")),
    );
}

/// A token's page: its details and buttons, and the PIN form.
pub fn detail(b: &mut Out, s: &Session, t: &TokenView, sms: &Page<SmsMessageRow>) {
    b.raw("<section class=\"card\"><h2>Details</h2><dl class=\"props\">");
    let gateway = t
        .info
        .get("sms.identifier")
        .map_or("the default gateway", String::as_str);
    for (k, v) in [
        ("Serial", t.serial.clone()),
        ("User", owner_of(t)),
        ("Phone", phone_of(t).to_owned()),
        ("Gateway", gateway.to_owned()),
        ("Description", t.description.clone()),
        ("Fail counter", format!("{} of {}", t.failcount, t.maxfail)),
        ("OTP counter", t.count.to_string()),
    ] {
        w!(b, "<dt>{}</dt><dd>{}</dd>", E(k), E(&v));
    }
    w!(
        b,
        "<dt>State</dt><dd>{}</dd></dl><div class=\"actions\">",
        state(t)
    );
    buttons(b, s, t);
    b.raw("</div></section>");
    b.raw("<section class=\"card\"><h2>Set the PIN</h2>");
    w!(
        b,
        "<form class=\"stack\" method=\"post\" action=\"/ui/admin/tokens/{}/pin\">",
        U(&t.serial)
    );
    csrf_field(b, s);
    Field::new("pin", "New PIN")
        .kind("password")
        .attrs("required autocomplete=\"new-password\"")
        .input(b);
    b.raw("<div class=\"actions\"><button type=\"submit\">Set PIN</button></div></form></section>");
    b.raw("<section class=\"card\"><h2>Its SMS</h2>");
    super::messages::table(
        b,
        &sms.items,
        &format!("The last SMS of this token ({} in all)", sms.count),
    );
    w!(
        b,
        "</section><p><a href=\"/ui/admin/audit?serial={0}\">Audit entries of this token</a> · <a href=\"/ui/admin/audit/sms?serial={0}\">All its SMS</a></p>",
        U(&t.serial)
    );
}

/// The enrollment form, with the realms and gateways to choose from; `no_default` says why
/// "the default gateway" would not send (none set, or gone).
#[allow(clippy::too_many_arguments)]
pub fn enroll_form(
    b: &mut Out,
    s: &Session,
    realms: &[String],
    users: &[String],
    gateways: &[String],
    no_default: Option<&str>,
    f: &Params,
    errors: &[(String, String)],
) {
    if let Some(why) = no_default {
        w!(
            b,
            "<p class=\"errors\" role=\"alert\">{} Choose a gateway below, or <a href=\"/ui/admin/gateways\">set a default</a>.</p>",
            E(why)
        );
    }
    b.raw("<form class=\"stack\" method=\"post\" action=\"/ui/admin/tokens/new\">");
    csrf_field(b, s);
    let g = |k: &str| f.get(k).unwrap_or_default().to_owned();
    Field::new("user", "User")
        .value(&g("user"))
        .hint("The user who receives the SMS (leave empty for an unassigned token). Type to pick one of the realm's users.")
        .attrs("autocapitalize=\"none\" spellcheck=\"false\" list=\"enroll-users\"")
        .errors(errors)
        .input(b);
    b.raw("<datalist id=\"enroll-users\">");
    for u in users {
        w!(b, "<option value=\"{}\">", E(u));
    }
    b.raw("</datalist>");
    let mut realm_opts = vec![(String::new(), "Default realm".to_owned())];
    realm_opts.extend(super::opts(realms.iter().cloned()));
    Field::new("realm", "Realm")
        .value(&g("realm"))
        .errors(errors)
        .select(&realm_opts, b);
    Field::new("phone", "Phone number")
        .kind("tel")
        .value(&g("phone"))
        .hint("International format, e.g. +49 151 23456789; the user's mobile from the user store when one is known. Leave empty when the number is read from the user store.")
        .errors(errors)
        .input(b);
    w!(
        b,
        "<div class=\"field check\"><input type=\"checkbox\" id=\"dynamic_phone\" name=\"dynamic_phone\" value=\"1\"{}><label for=\"dynamic_phone\">Read the number from the user store at every login (a number changed there is used at once)</label></div>",
        if f.get("dynamic_phone").is_some_and(crate::params::is_true) {
            " checked"
        } else {
            ""
        }
    );
    Field::new("pin", "PIN")
        .kind("password")
        .hint("The user enters it before the OTP. Leave empty for none.")
        .attrs("autocomplete=\"new-password\"")
        .errors(errors)
        .input(b);
    Field::new("pin2", "Repeat the PIN")
        .kind("password")
        .attrs("autocomplete=\"new-password\"")
        .errors(errors)
        .input(b);
    let default_label = if no_default.is_some() {
        "The default gateway (none that works: see above)"
    } else {
        "The default gateway"
    };
    let mut gw_opts = vec![(String::new(), default_label.to_owned())];
    gw_opts.extend(super::opts(gateways.iter().cloned()));
    Field::new("sms.identifier", "SMS gateway")
        .value(&g("sms.identifier"))
        .errors(errors)
        .select(&gw_opts, b);
    Field::new("description", "Description")
        .value(&g("description"))
        .attrs("maxlength=\"80\"")
        .errors(errors)
        .input(b);
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Enroll</button> <a class=\"button\" href=\"/ui/admin/tokens\">Cancel</a></div></form>");
}
