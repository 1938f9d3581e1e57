//! User stores: a passwd file's or an LDAP directory's form (the bind password never shown
//! back, "Test connection"), or an internal one's note.

use super::super::html::{E, Field, Out, U, w};
use super::super::session::Session;
use crate::params::Params;
use otpgate_service::gateways::CENSORED;
use otpgate_service::realms::ResolverView;

/// (key, label, hint, secret, choices) of the LDAP directory form.
const LDAP_FIELDS: &[(&str, &str, &str, bool, &[&str])] = &[
    (
        "LDAPURI",
        "Server URI",
        "ldap://host, ldaps://host:636; several comma-separated form a pool.",
        false,
        &[],
    ),
    (
        "LDAPBASE",
        "Base DN",
        "Where users are searched, e.g. ou=people,dc=example,dc=org.",
        false,
        &[],
    ),
    (
        "BINDDN",
        "Bind DN",
        "The service account otpgate binds as (empty: anonymous).",
        false,
        &[],
    ),
    ("BINDPW", "Bind password", "Stored encrypted.", true, &[]),
    (
        "LOGINNAMEATTRIBUTE",
        "Login name attribute",
        "e.g. uid, or sAMAccountName for Active Directory.",
        false,
        &[],
    ),
    (
        "LDAPSEARCHFILTER",
        "Search filter",
        "e.g. (objectClass=person).",
        false,
        &[],
    ),
    (
        "USERINFO",
        "Attribute mapping",
        "JSON, e.g. {\"username\": \"uid\", \"mobile\": \"mobile\", \"email\": \"mail\", \"givenname\": \"givenName\", \"surname\": \"sn\"}.",
        false,
        &[],
    ),
    (
        "UIDTYPE",
        "Unique id attribute",
        "DN, entryUUID, objectGUID or another attribute.",
        false,
        &[],
    ),
    (
        "START_TLS",
        "STARTTLS",
        "Upgrade ldap:// connections to TLS.",
        false,
        &["", "True", "False"],
    ),
    (
        "TLS_VERIFY",
        "Verify the certificate",
        "",
        false,
        &["", "True", "False"],
    ),
    (
        "TLS_CA_FILE",
        "CA file",
        "PEM file of the CA that signed the server's certificate.",
        false,
        &[],
    ),
    (
        "SCOPE",
        "Search scope",
        "",
        false,
        &["", "SUBTREE", "LEVEL", "BASE"],
    ),
    ("TIMEOUT", "Timeout (seconds)", "", false, &[]),
    (
        "SIZELIMIT",
        "Size limit",
        "The most entries one search returns.",
        false,
        &[],
    ),
    (
        "CACHE_TIMEOUT",
        "Cache (seconds)",
        "How long found users are remembered.",
        false,
        &[],
    ),
    (
        "MULTIVALUEATTRIBUTES",
        "Multi-value attributes",
        "e.g. ['mobile'].",
        false,
        &[],
    ),
];

/// The kinds of user store, and how admins call them.
pub const RESOLVER_TYPES: &[(&str, &str)] = &[
    ("internalresolver", "Internal (users kept by otpgate)"),
    ("passwdresolver", "passwd file"),
    ("ldapresolver", "LDAP directory"),
];

/// The fields of an LDAP directory's form (the keys of privacyIDEA's `ldapresolver`).
pub fn ldap_fields() -> impl Iterator<Item = (&'static str, bool)> {
    LDAP_FIELDS
        .iter()
        .map(|(key, _, _, secret, _)| (*key, *secret))
}

/// How admins call a kind of user store.
pub fn kind_label(rtype: &str) -> &str {
    RESOLVER_TYPES
        .iter()
        .find(|(k, _)| *k == rtype)
        .map_or(rtype, |(_, l)| l)
}

/// A user store's form (a new one of kind `rtype` when `stored` is None).
pub fn form(
    b: &mut Out,
    s: &Session,
    rtype: &str,
    stored: Option<&ResolverView>,
    f: &Params,
    errors: &[(String, String)],
) {
    if stored.is_none() {
        b.raw("<form class=\"filters\" method=\"get\" action=\"/ui/admin/resolvers/new\">");
        let types: Vec<(String, String)> = RESOLVER_TYPES
            .iter()
            .map(|(t, l)| ((*t).to_owned(), (*l).to_owned()))
            .collect();
        Field::new("type", "Kind of user store")
            .value(rtype)
            .attrs("data-autosubmit")
            .select(&types, b);
        b.raw(
            "<div class=\"actions js-hide\"><button type=\"submit\">Choose</button></div></form>",
        );
    }
    let action = match stored {
        Some(r) => format!("/ui/admin/resolvers/{}", U(&r.name)),
        None => "/ui/admin/resolvers/new".to_owned(),
    };
    super::form_open(b, s, &action);
    w!(
        b,
        "<input type=\"hidden\" name=\"type\" value=\"{}\">",
        E(rtype)
    );
    if stored.is_none() {
        Field::new("name", "Name")
            .value(f.get("name").unwrap_or_default())
            .hint(super::NAME_HINT)
            .attrs(super::NAME_ATTRS)
            .errors(errors)
            .input(b);
    }
    let value = |k: &str| -> String {
        f.get(k).map(str::to_owned).unwrap_or_else(|| {
            stored
                .and_then(|r| r.data.get(k))
                .map(|v| match v.to_ascii_lowercase().as_str() {
                    // The directory's flags as the dropdowns name them.
                    "true" | "1" => "True".to_owned(),
                    "false" | "0" => "False".to_owned(),
                    _ => v.clone(),
                })
                .unwrap_or_default()
        })
    };
    match rtype {
        "passwdresolver" => {
            Field::new("fileName", "passwd file")
                .value(&value("fileName"))
                .hint("A file in passwd format (login:x:uid:gid:gecos:home:shell); the GECOS field holds name, phone and mobile.")
                .attrs("required")
                .errors(errors)
                .input(b);
        }
        "ldapresolver" => {
            for (key, label, hint, secret, choices) in LDAP_FIELDS {
                if *secret {
                    let kept = stored
                        .and_then(|r| r.data.get(*key))
                        .is_some_and(|v| v == CENSORED);
                    let hint = if kept {
                        "Stored encrypted; leave empty to keep it."
                    } else {
                        hint
                    };
                    Field::new(key, label)
                        .kind("password")
                        .hint(hint)
                        .attrs("autocomplete=\"off\"")
                        .errors(errors)
                        .input(b);
                } else if choices.is_empty() {
                    Field::new(key, label)
                        .value(&value(key))
                        .hint(hint)
                        .errors(errors)
                        .input(b);
                } else {
                    Field::new(key, label)
                        .value(&value(key))
                        .hint(hint)
                        .errors(errors)
                        .select(
                            &choices
                                .iter()
                                .map(|c| {
                                    let label = if c.is_empty() { "(default)" } else { c };
                                    ((*c).to_owned(), label.to_owned())
                                })
                                .collect::<Vec<_>>(),
                            b,
                        );
                }
            }
        }
        _ if stored.is_some() => {
            // Nothing to change: what comes next instead of a Save button.
            b.raw("<p>An internal user store needs no settings. Next: put it into a realm, then create its users.</p><div class=\"actions\"><a class=\"button primary\" href=\"/ui/admin/realms\">Realms</a> <a class=\"button\" href=\"/ui/admin/users\">Users</a></div></form>");
            return;
        }
        _ => {
            b.raw("<p>An internal user store needs no settings; its users are created on the Users page.</p>");
        }
    }
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\" name=\"do\" value=\"save\">Save</button>");
    if rtype == "ldapresolver" {
        b.raw(" <button type=\"submit\" name=\"do\" value=\"test\">Test connection</button>");
    }
    b.raw(" <a class=\"button\" href=\"/ui/admin/realms\">Cancel</a></div></form>");
}
