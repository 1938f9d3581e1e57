//! Realms and user stores: the lists, a new internal user store, a new or changed realm.

use super::super::html::{E, Field, Out, U, post_button, w};
use super::super::page::csrf_field;
use super::super::session::Session;
use super::{NAME_ATTRS, NAME_HINT};
use crate::params::Params;
use otpgate_service::realms::{RealmView, ResolverView};

/// The whole page.
pub fn body(
    b: &mut Out,
    s: &Session,
    realms: &[RealmView],
    resolvers: &[ResolverView],
    f: &Params,
    errors: &[(String, String)],
) {
    b.raw("<div class=\"grid\"><section class=\"card\" aria-labelledby=\"r-h\"><h2 id=\"r-h\">Realms</h2>");
    if realms.is_empty() {
        b.raw("<p class=\"empty\">No realms yet.</p>");
    } else {
        b.raw("<div class=\"table-wrap\"><table class=\"data\"><caption>Realms and their user stores</caption><thead><tr><th scope=\"col\">Realm</th><th scope=\"col\">User stores</th><th scope=\"col\">Default</th><th scope=\"col\">Actions</th></tr></thead><tbody>");
        for r in realms {
            let rs: Vec<&str> = r.resolvers.iter().map(|(n, _, _)| n.as_str()).collect();
            let default = if r.default {
                "<span class=\"badge ok\">default</span>"
            } else {
                ""
            };
            w!(
                b,
                "<tr><td data-label=\"Realm\"><a href=\"/ui/admin/users?realm={}\">{}</a></td><td data-label=\"User stores\">{}</td><td data-label=\"Default\">{default}</td><td data-label=\"Actions\">",
                U(&r.name),
                E(&r.name),
                E(&rs.join(", "))
            );
            let base = format!("/ui/admin/realms/{}", U(&r.name));
            if !r.default {
                post_button(
                    b,
                    &format!("{base}/default"),
                    &s.csrf,
                    "Make default",
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
                Some(&format!(
                    "Delete the realm {}? Its users can no longer sign in.",
                    r.name
                )),
            );
            b.raw("</td></tr>");
        }
        b.raw("</tbody></table></div>");
    }
    b.raw(
        "</section><section class=\"card\" aria-labelledby=\"s-h\"><h2 id=\"s-h\">User stores</h2>",
    );
    if resolvers.is_empty() {
        b.raw("<p class=\"empty\">No user stores yet.</p>");
    } else {
        b.raw("<ul>");
        for r in resolvers {
            w!(
                b,
                "<li><a href=\"/ui/admin/resolvers/{}\">{}</a> <span class=\"badge\">{}</span></li>",
                U(&r.name),
                E(&r.name),
                E(super::resolvers::kind_label(&r.rtype))
            );
        }
        b.raw("</ul>");
    }
    b.raw("<p><a href=\"/ui/admin/resolvers/new?type=ldapresolver\">New LDAP directory</a> · <a href=\"/ui/admin/resolvers/new?type=passwdresolver\">New passwd file</a></p>");
    b.raw("</section></div>");
    b.raw("<section class=\"card\" aria-labelledby=\"ni-h\"><h2 id=\"ni-h\">New internal user store</h2><p>Users kept in otpgate's database, created on the Users page.</p><form class=\"stack\" method=\"post\" action=\"/ui/admin/realms\">");
    csrf_field(b, s);
    b.raw("<input type=\"hidden\" name=\"kind\" value=\"resolver\">");
    Field::new("resolver_name", "Name")
        .value(f.get("resolver_name").unwrap_or_default())
        .hint(NAME_HINT)
        .attrs(NAME_ATTRS)
        .errors(errors)
        .input(b);
    b.raw("<div class=\"actions\"><button type=\"submit\">Create user store</button></div></form></section>");
    b.raw("<section class=\"card\" aria-labelledby=\"nr-h\"><h2 id=\"nr-h\">New or changed realm</h2><form class=\"stack\" method=\"post\" action=\"/ui/admin/realms\">");
    csrf_field(b, s);
    b.raw("<input type=\"hidden\" name=\"kind\" value=\"realm\">");
    Field::new("realm_name", "Realm name")
        .value(f.get("realm_name").unwrap_or_default())
        .hint(NAME_HINT)
        .attrs(NAME_ATTRS)
        .errors(errors)
        .input(b);
    // Several checkboxes of one name: the form parser keeps them comma-joined.
    let chosen: Vec<&str> = f
        .get("resolvers")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .collect();
    let checked = |on: bool| if on { " checked" } else { "" };
    let refused = errors.iter().find(|(k, _)| k == "resolvers");
    w!(
        b,
        "<fieldset id=\"resolvers\"{}><legend>User stores of the realm</legend>",
        if refused.is_some() {
            " aria-describedby=\"resolvers-error\""
        } else {
            ""
        }
    );
    if let Some((_, m)) = refused {
        w!(b, "<p class=\"error\" id=\"resolvers-error\">{}</p>", E(m));
    }
    for r in resolvers {
        w!(
            b,
            "<div class=\"field check\"><input type=\"checkbox\" id=\"res-{n}\" name=\"resolvers\" value=\"{n}\"{c}><label for=\"res-{n}\">{n}</label></div>",
            n = E(&r.name),
            c = checked(chosen.contains(&r.name.as_str()))
        );
    }
    w!(
        b,
        "</fieldset><div class=\"field check\"><input type=\"checkbox\" id=\"default\" name=\"default\" value=\"1\"{}><label for=\"default\">Make it the default realm</label></div>",
        checked(f.flag("default"))
    );
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Save realm</button></div></form></section>");
}
