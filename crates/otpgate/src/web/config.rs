//! The admin console's configuration pages: user stores (passwd files and LDAP directories,
//! with "test connection"), SMTP servers (with a test mail), policies and event rules (with
//! the notification outbox). Same services and admin rights as the API.

use super::html::{E, Field, Out, U, post_button, w};
use super::{
    Nav, Session, Web, WebError, WebResult, csrf_field, exists_already, flash, see_other,
    service_message, signed_in_page, str_of,
};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use otpgate_service::Params;
use otpgate_service::gateways::CENSORED;
use serde_json::Value;

type Errors = Vec<(String, String)>;

fn page(web: &Web, s: &Session, title: &str, errors: &[(String, String)], body: Out) -> Response {
    signed_in_page(web, s, Nav::Admin, title, errors, None, body)
}

fn page_with(
    web: &Web,
    s: &Session,
    title: &str,
    errors: &[(String, String)],
    note: Option<&str>,
    body: Out,
) -> Response {
    signed_in_page(web, s, Nav::Admin, title, errors, note, body)
}

fn list_text(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

fn opts(items: &[&str]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|i| ((*i).to_owned(), (*i).to_owned()))
        .collect()
}

fn actions_bar(b: &mut Out, s: &Session, base: &str, active: Option<bool>, what: &str) {
    b.raw("<div class=\"actions\">");
    match active {
        Some(true) => post_button(
            b,
            &format!("{base}/disable"),
            &s.csrf,
            "Disable",
            "small",
            None,
        ),
        Some(false) => post_button(
            b,
            &format!("{base}/enable"),
            &s.csrf,
            "Enable",
            "small",
            None,
        ),
        None => {}
    }
    post_button(
        b,
        &format!("{base}/delete"),
        &s.csrf,
        "Delete",
        "small danger",
        Some(&format!("Delete {what}? This cannot be undone.")),
    );
    b.raw("</div>");
}

// ---------------------------------------------------------------- user stores

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

const RESOLVER_TYPES: &[(&str, &str)] = &[
    ("internalresolver", "Internal (users kept by otpgate)"),
    ("passwdresolver", "passwd file"),
    ("ldapresolver", "LDAP directory"),
];

fn resolver_form(
    b: &mut Out,
    s: &Session,
    rtype: &str,
    name: Option<&str>,
    stored: Option<&Value>,
    f: &Params,
    errors: &Errors,
) {
    if name.is_none() {
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
    let action = match name {
        Some(n) => format!("/ui/admin/resolvers/{}", U(n)),
        None => "/ui/admin/resolvers/new".to_owned(),
    };
    w!(
        b,
        "<form class=\"stack\" method=\"post\" action=\"{}\">",
        E(&action)
    );
    csrf_field(b, s);
    w!(
        b,
        "<input type=\"hidden\" name=\"type\" value=\"{}\">",
        E(rtype)
    );
    if name.is_none() {
        Field::new("name", "Name")
            .value(f.get("name").unwrap_or_default())
            .attrs("required pattern=\"[A-Za-z0-9_.\\-]+\"")
            .errors(errors)
            .input(b);
    }
    let value = |k: &str| -> String {
        f.get(k).map(str::to_owned).unwrap_or_else(|| {
            stored
                .and_then(|r| r.get("data"))
                .and_then(|d| d.get(k))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .map(|v| match v.to_ascii_lowercase().as_str() {
                    // The directory's flags as the dropdowns name them.
                    "true" | "1" => "True".to_owned(),
                    "false" | "0" => "False".to_owned(),
                    _ => v,
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
                        .and_then(|r| r.get("data"))
                        .and_then(|d| d.get(*key))
                        .is_some_and(|v| v.as_str() == Some(CENSORED));
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

/// `GET /ui/admin/resolvers/new?type=`.
pub async fn resolver_new(web: Web) -> WebResult {
    let s = web.admin("resolverwrite").await?;
    let rtype = web
        .query
        .get_nonblank("type")
        .filter(|t| RESOLVER_TYPES.iter().any(|(k, _)| k == t))
        .unwrap_or("ldapresolver")
        .to_owned();
    let mut b = Out::new();
    resolver_form(&mut b, &s, &rtype, None, None, &Params::new(), &Vec::new());
    Ok(page(&web, &s, "New user store", &[], b))
}

async fn stored_resolver(web: &Web, name: &str) -> Result<Value, WebError> {
    let v = web.app.services.list_resolvers(Some(name), None).await?;
    v.get(name).cloned().ok_or_else(|| {
        WebError::Page(
            StatusCode::NOT_FOUND,
            format!("There is no user store {name}."),
        )
    })
}

async fn resolver_page(
    web: &Web,
    s: &Session,
    name: &str,
    f: &Params,
    errors: &Errors,
    note: Option<&str>,
) -> WebResult {
    let r = stored_resolver(web, name).await?;
    let rtype = str_of(&r, "type").to_owned();
    let mut b = Out::new();
    w!(
        b,
        "<p>Kind: <strong>{}</strong>. Its users are listed on the Users page under the realms that contain it.</p>",
        E(RESOLVER_TYPES
            .iter()
            .find(|(k, _)| *k == rtype)
            .map_or(rtype.as_str(), |(_, l)| l))
    );
    resolver_form(&mut b, s, &rtype, Some(name), Some(&r), f, errors);
    actions_bar(
        &mut b,
        s,
        &format!("/ui/admin/resolvers/{}", U(name)),
        None,
        &format!("the user store {name}"),
    );
    let note = note.or(flash(web.query.get("ok")));
    Ok(page_with(
        web,
        s,
        &format!("User store {name}"),
        errors,
        note,
        b,
    ))
}

/// `GET /ui/admin/resolvers/{name}`.
pub async fn resolver_edit(Path(name): Path<String>, web: Web) -> WebResult {
    let s = web.admin("resolverread").await?;
    resolver_page(&web, &s, &name, &Params::new(), &Vec::new(), None).await
}

fn resolver_params(web: &Web, editing: bool) -> Params {
    let mut p = Params::new();
    let rtype = web.form.get("type").unwrap_or_default();
    p.insert("type", rtype);
    if rtype == "passwdresolver" {
        p.insert(
            "fileName",
            web.form.get("fileName").unwrap_or_default().trim(),
        );
    }
    if rtype == "ldapresolver" {
        for (key, _, _, secret, _) in LDAP_FIELDS {
            let v = web.form.get(key).unwrap_or_default().trim();
            if *secret && v.is_empty() {
                if editing {
                    p.insert(*key, CENSORED);
                }
            } else if !v.is_empty() || editing {
                // Editing: an emptied field is cleared, not kept.
                p.insert(*key, v);
            }
        }
    }
    p
}

/// `POST /ui/admin/resolvers/new`.
pub async fn resolver_create(web: Web) -> WebResult {
    resolver_save(web, None).await
}

/// `POST /ui/admin/resolvers/{name}` (`do=save|test`).
pub async fn resolver_update(Path(name): Path<String>, web: Web) -> WebResult {
    resolver_save(web, Some(name)).await
}

async fn resolver_save(web: Web, existing: Option<String>) -> WebResult {
    let s = web.admin("resolverwrite").await?;
    let name = existing
        .clone()
        .unwrap_or_else(|| web.form.get("name").unwrap_or_default().trim().to_owned());
    let mut p = resolver_params(&web, existing.is_some());
    let services = &web.app.services;
    let form = web.form.clone();
    let again = |errors: Errors, note: Option<String>| {
        let web = &web;
        let s = &s;
        let form = &form;
        let existing = existing.clone();
        async move {
            match existing {
                Some(n) => resolver_page(web, s, &n, form, &errors, note.as_deref()).await,
                None => {
                    let mut b = Out::new();
                    let rtype = form.get("type").unwrap_or_default();
                    resolver_form(&mut b, s, rtype, None, None, form, &errors);
                    Ok(page_with(
                        web,
                        s,
                        "New user store",
                        &errors,
                        note.as_deref(),
                        b,
                    ))
                }
            }
        }
    };
    if web.form.get("do") == Some("test") {
        if existing.is_some() {
            p.insert("resolver", name.clone());
        }
        let r = services.test_resolver(&p).await;
        web.audit(|e| {
            e.resolver = name.clone();
            e.action_detail = "test connection".into();
            e.success = matches!(r, Ok((true, _)));
        });
        return match r {
            Ok((true, d)) => again(Vec::new(), Some(format!("The connection works: {d}"))).await,
            Ok((false, d)) => again(vec![("LDAPURI".into(), d)], None).await,
            Err(e) => again(vec![("LDAPURI".into(), service_message(&e))], None).await,
        };
    }
    web.audit(|e| e.resolver = name.clone());
    let taken = existing.is_none()
        && !name.is_empty()
        && services
            .list_resolvers(Some(&name), None)
            .await?
            .get(&name)
            .is_some();
    let r = if taken {
        Err(exists_already(&format!("a user store {name}")))
    } else {
        services.save_resolver(&name, &p).await
    };
    match r {
        Ok(_) => {
            web.audit(|e| e.success = true);
            Ok(see_other(&format!(
                "/ui/admin/resolvers/{}?ok=saved",
                U(&name)
            )))
        }
        Err(e) => {
            let field = if existing.is_none() {
                "name"
            } else {
                "LDAPURI"
            };
            let field = if p.get("type") == Some("passwdresolver") {
                "fileName"
            } else {
                field
            };
            again(vec![(field.into(), service_message(&e))], None).await
        }
    }
}

/// `POST /ui/admin/resolvers/{name}/delete`.
pub async fn resolver_action(Path((name, action)): Path<(String, String)>, web: Web) -> WebResult {
    if action != "delete" {
        return Err(WebError::Page(
            StatusCode::NOT_FOUND,
            "No such action.".into(),
        ));
    }
    web.admin("resolverdelete").await?;
    web.audit(|e| e.resolver = name.clone());
    web.app.services.delete_resolver(&name).await?;
    web.audit(|e| e.success = true);
    Ok(see_other("/ui/admin/realms?ok=deleted"))
}

// ---------------------------------------------------------------- SMTP servers

/// `GET /ui/admin/smtp`.
pub async fn smtp_list(web: Web) -> WebResult {
    let s = web.admin("smtpserver_read").await?;
    let v = web.app.services.list_smtp_servers(None).await?;
    let mut b = Out::new();
    b.raw("<p>Mail servers for notifications and the SMTP (mail to SMS) gateway. <a class=\"button primary\" href=\"/ui/admin/smtp/new\">New SMTP server</a></p>");
    match v.as_object().filter(|m| !m.is_empty()) {
        None => b.raw("<p class=\"empty\">No SMTP servers yet.</p>"),
        Some(m) => {
            b.raw("<div class=\"table-wrap\"><table class=\"data\"><caption>SMTP servers</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Server</th><th scope=\"col\">Sender</th><th scope=\"col\">Description</th></tr></thead><tbody>");
            for (id, d) in m {
                w!(
                    b,
                    "<tr><td data-label=\"Name\"><a href=\"/ui/admin/smtp/{}\">{}</a></td><td data-label=\"Server\">{}:{}</td><td data-label=\"Sender\">{}</td><td data-label=\"Description\">{}</td></tr>",
                    U(id),
                    E(id),
                    E(str_of(d, "server")),
                    d.get("port").and_then(Value::as_i64).unwrap_or(25),
                    E(str_of(d, "sender")),
                    E(str_of(d, "description"))
                );
            }
            b.raw("</tbody></table></div>")
        }
    };
    Ok(page(&web, &s, "SMTP servers", &[], b))
}

fn smtp_form(
    b: &mut Out,
    s: &Session,
    id: Option<&str>,
    stored: Option<&Value>,
    f: &Params,
    errors: &Errors,
) {
    let action = match id {
        Some(i) => format!("/ui/admin/smtp/{}", U(i)),
        None => "/ui/admin/smtp/new".to_owned(),
    };
    w!(
        b,
        "<form class=\"stack\" method=\"post\" action=\"{}\">",
        E(&action)
    );
    csrf_field(b, s);
    let value = |k: &str| -> String {
        f.get(k).map(str::to_owned).unwrap_or_else(|| {
            stored
                .and_then(|d| d.get(k))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .unwrap_or_default()
        })
    };
    let checked = |k: &str, default: bool| -> &'static str {
        // The settings form was sent back (not the test-mail form, which has no `server`).
        let on = match (
            f.get("server"),
            stored.and_then(|d| d.get(k)).and_then(Value::as_bool),
        ) {
            (Some(_), _) => f.flag(k),
            (None, Some(v)) => v,
            (None, None) => default,
        };
        if on { " checked" } else { "" }
    };
    if id.is_none() {
        Field::new("identifier", "Name")
            .value(&value("identifier"))
            .attrs("required")
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
    let hint = if stored.is_some_and(|d| str_of(d, "password") == CENSORED) {
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

/// `GET /ui/admin/smtp/new`.
pub async fn smtp_new(web: Web) -> WebResult {
    let s = web.admin("smtpserver_write").await?;
    let mut b = Out::new();
    smtp_form(&mut b, &s, None, None, &Params::new(), &Vec::new());
    Ok(page(&web, &s, "New SMTP server", &[], b))
}

async fn smtp_page(web: &Web, s: &Session, id: &str, f: &Params, errors: &Errors) -> WebResult {
    let v = web.app.services.list_smtp_servers(Some(id)).await?;
    let d = v.get(id).cloned().ok_or_else(|| {
        WebError::Page(
            StatusCode::NOT_FOUND,
            format!("There is no SMTP server {id}."),
        )
    })?;
    let mut b = Out::new();
    b.raw("<section class=\"card\" aria-labelledby=\"tm-h\"><h2 id=\"tm-h\">Send a test mail</h2>");
    w!(
        b,
        "<form class=\"stack\" method=\"post\" action=\"/ui/admin/smtp/{}/test\">",
        U(id)
    );
    csrf_field(&mut b, s);
    Field::new("recipient", "To")
        .kind("email")
        .value(f.get("recipient").unwrap_or_default())
        .attrs("required")
        .errors(errors)
        .input(&mut b);
    b.raw("<div class=\"actions\"><button type=\"submit\">Send test mail</button></div></form></section>");
    b.raw("<section class=\"card\" aria-labelledby=\"st-h\"><h2 id=\"st-h\">Settings</h2>");
    smtp_form(&mut b, s, Some(id), Some(&d), f, errors);
    b.raw("</section>");
    actions_bar(
        &mut b,
        s,
        &format!("/ui/admin/smtp/{}", U(id)),
        None,
        &format!("the SMTP server {id}"),
    );
    Ok(page(web, s, &format!("SMTP server {id}"), errors, b))
}

/// `GET /ui/admin/smtp/{id}`.
pub async fn smtp_edit(Path(id): Path<String>, web: Web) -> WebResult {
    let s = web.admin("smtpserver_read").await?;
    smtp_page(&web, &s, &id, &Params::new(), &Vec::new()).await
}

/// `POST /ui/admin/smtp/new`.
pub async fn smtp_create(web: Web) -> WebResult {
    smtp_save(web, None).await
}

/// `POST /ui/admin/smtp/{id}`.
pub async fn smtp_update(Path(id): Path<String>, web: Web) -> WebResult {
    smtp_save(web, Some(id)).await
}

async fn smtp_save(web: Web, existing: Option<String>) -> WebResult {
    let s = web.admin("smtpserver_write").await?;
    let id = existing.clone().unwrap_or_else(|| {
        web.form
            .get("identifier")
            .unwrap_or_default()
            .trim()
            .to_owned()
    });
    let mut p = Params::new();
    for k in [
        "server",
        "port",
        "username",
        "sender",
        "timeout",
        "description",
    ] {
        if let Some(v) = web.form.get_nonblank(k) {
            p.insert(k, v.trim());
        }
    }
    p.insert("tls", if web.form.flag("tls") { "1" } else { "0" });
    p.insert(
        "tls_verify",
        if web.form.flag("tls_verify") {
            "1"
        } else {
            "0"
        },
    );
    match web.form.get("password").unwrap_or_default() {
        "" if existing.is_some() => p.insert("password", CENSORED),
        "" => {}
        pw => p.insert("password", pw),
    }
    web.audit(|e| e.action_detail = format!("smtpserver {id}"));
    let taken = existing.is_none()
        && !id.is_empty()
        && web
            .app
            .services
            .list_smtp_servers(Some(&id))
            .await?
            .get(&id)
            .is_some();
    let r = if taken {
        Err(exists_already(&format!("an SMTP server {id}")))
    } else if id.is_empty() {
        Err(otpgate_service::ServiceError::missing("identifier"))
    } else {
        web.app.services.save_smtp_server(&id, &p).await
    };
    match r {
        Ok(_) => {
            web.audit(|e| e.success = true);
            Ok(see_other(&format!("/ui/admin/smtp/{}?ok=saved", U(&id))))
        }
        Err(e) => {
            let field = if existing.is_none() && id.is_empty() {
                "identifier"
            } else {
                "server"
            };
            let errors = vec![(field.to_owned(), service_message(&e))];
            match existing {
                Some(i) => {
                    let form = web.form.clone();
                    smtp_page(&web, &s, &i, &form, &errors).await
                }
                None => {
                    let mut b = Out::new();
                    smtp_form(&mut b, &s, None, None, &web.form, &errors);
                    Ok(page(&web, &s, "New SMTP server", &errors, b))
                }
            }
        }
    }
}

/// `POST /ui/admin/smtp/{id}/{test|delete}`.
pub async fn smtp_action(Path((id, action)): Path<(String, String)>, web: Web) -> WebResult {
    let s = web.admin("smtpserver_write").await?;
    web.audit(|e| e.action_detail = format!("smtpserver {id}: {action}"));
    match action.as_str() {
        "test" => {
            let mut p = Params::new();
            p.insert("identifier", id.clone());
            p.insert(
                "recipient",
                web.form.get("recipient").unwrap_or_default().trim(),
            );
            let (ok, why) = match web.app.services.send_test_email(&p).await {
                Ok(r) => r,
                Err(e) => (false, Some(service_message(&e))),
            };
            web.audit(|e| e.success = ok);
            if ok {
                return Ok(see_other(&format!(
                    "/ui/admin/smtp/{}?ok=mail-sent",
                    U(&id)
                )));
            }
            let form = web.form.clone();
            let errors = vec![(
                "recipient".to_owned(),
                format!("The mail was not accepted: {}", why.unwrap_or_default()),
            )];
            smtp_page(&web, &s, &id, &form, &errors).await
        }
        "delete" => {
            web.app.services.delete_smtp_server(&id).await?;
            web.audit(|e| e.success = true);
            Ok(see_other("/ui/admin/smtp?ok=deleted"))
        }
        _ => Err(WebError::Page(
            StatusCode::NOT_FOUND,
            "No such action.".into(),
        )),
    }
}

// ---------------------------------------------------------------- policies

/// The action string of a listed policy (`key=value, flag`).
fn action_text(p: &Value) -> String {
    p.get("action")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| match v {
                    Value::Bool(true) => k.clone(),
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `GET /ui/admin/policies`.
pub async fn policies(web: Web) -> WebResult {
    let s = web.admin("policyread").await?;
    let v = web.app.services.list_policies(None, None).await?;
    let mut b = Out::new();
    b.raw("<p>Policies decide who may do what and how logins behave (scopes admin, user, authentication, enrollment, webui). <a class=\"button primary\" href=\"/ui/admin/policies/new\">New policy</a></p>");
    let list = v.as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        b.raw("<p class=\"empty\">No policies: every admin may do everything, logins use the defaults.</p>");
    } else {
        b.raw("<div class=\"table-wrap\"><table class=\"data\"><caption>Policies</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Scope</th><th scope=\"col\">Actions</th><th scope=\"col\">Applies to</th><th scope=\"col\">State</th></tr></thead><tbody>");
        for p in &list {
            let name = str_of(p, "name");
            let mut applies: Vec<String> = Vec::new();
            for (k, label) in [
                ("realm", "realm"),
                ("resolver", "user store"),
                ("user", "user"),
                ("client", "client"),
                ("adminuser", "admin"),
            ] {
                let t = list_text(p, k);
                if !t.is_empty() {
                    applies.push(format!("{label} {t}"));
                }
            }
            let applies = if applies.is_empty() {
                "everyone".to_owned()
            } else {
                applies.join("; ")
            };
            let state = if p.get("active").and_then(Value::as_bool).unwrap_or(false) {
                "<span class=\"badge ok\">active</span>"
            } else {
                "<span class=\"badge\">inactive</span>"
            };
            w!(
                b,
                "<tr><td data-label=\"Name\"><a href=\"/ui/admin/policies/{}\">{}</a></td><td data-label=\"Scope\">{}</td><td data-label=\"Actions\"><code>{}</code></td><td data-label=\"Applies to\">{}</td><td data-label=\"State\">{state}</td></tr>",
                U(name),
                E(name),
                E(str_of(p, "scope")),
                E(&action_text(p)),
                E(&applies)
            );
        }
        b.raw("</tbody></table></div>");
    }
    Ok(page(&web, &s, "Policies", &[], b))
}

fn policy_form(
    b: &mut Out,
    s: &Session,
    name: Option<&str>,
    stored: Option<&Value>,
    f: &Params,
    errors: &Errors,
) {
    let action = match name {
        Some(n) => format!("/ui/admin/policies/{}", U(n)),
        None => "/ui/admin/policies/new".to_owned(),
    };
    w!(
        b,
        "<form class=\"stack\" method=\"post\" action=\"{}\">",
        E(&action)
    );
    csrf_field(b, s);
    let value = |k: &str| -> String {
        f.get(k)
            .map(str::to_owned)
            .unwrap_or_else(|| match (k, stored) {
                ("action", Some(p)) => action_text(p),
                ("priority", Some(p)) => p
                    .get("priority")
                    .and_then(Value::as_i64)
                    .unwrap_or(1)
                    .to_string(),
                (k, Some(p)) => list_text(p, k),
                _ => String::new(),
            })
    };
    if name.is_none() {
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
        .select(&opts(otpgate_service::policy::SCOPES), b);
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
    b.raw("</fieldset>");
    Field::new("priority", "Priority")
        .kind("number")
        .value(&value("priority"))
        .hint("When policies disagree, the lowest number wins.")
        .errors(errors)
        .input(b);
    let active = match (f.get("csrf"), stored) {
        (Some(_), _) => f.flag("active"),
        (None, Some(p)) => p.get("active").and_then(Value::as_bool).unwrap_or(false),
        (None, None) => true,
    };
    w!(
        b,
        "<div class=\"field check\"><input type=\"checkbox\" id=\"active\" name=\"active\" value=\"1\"{}><label for=\"active\">Active</label></div>",
        if active { " checked" } else { "" }
    );
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Save policy</button> <a class=\"button\" href=\"/ui/admin/policies\">Cancel</a></div></form>");
}

/// `GET /ui/admin/policies/new`.
pub async fn policy_new(web: Web) -> WebResult {
    let s = web.admin("policywrite").await?;
    let mut b = Out::new();
    policy_form(&mut b, &s, None, None, &Params::new(), &Vec::new());
    Ok(page(&web, &s, "New policy", &[], b))
}

async fn policy_page(web: &Web, s: &Session, name: &str, f: &Params, errors: &Errors) -> WebResult {
    let v = web.app.services.list_policies(Some(name), None).await?;
    let p = v
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .ok_or_else(|| {
            WebError::Page(StatusCode::NOT_FOUND, format!("There is no policy {name}."))
        })?;
    let mut b = Out::new();
    let mut check = Params::new();
    check.insert("scope", str_of(&p, "scope"));
    check.insert("action", action_text(&p));
    let warnings = otpgate_service::Services::policy_warnings(&check);
    if !warnings.is_empty() {
        b.raw("<div class=\"card\" role=\"note\"><h2>Worth knowing</h2><ul>");
        for warning in &warnings {
            w!(b, "<li>{}</li>", E(warning));
        }
        b.raw("</ul></div>");
    }
    policy_form(&mut b, s, Some(name), Some(&p), f, errors);
    let active = p.get("active").and_then(Value::as_bool);
    actions_bar(
        &mut b,
        s,
        &format!("/ui/admin/policies/{}", U(name)),
        active,
        &format!("the policy {name}"),
    );
    Ok(page(web, s, &format!("Policy {name}"), errors, b))
}

/// `GET /ui/admin/policies/{name}`.
pub async fn policy_edit(Path(name): Path<String>, web: Web) -> WebResult {
    let s = web.admin("policyread").await?;
    policy_page(&web, &s, &name, &Params::new(), &Vec::new()).await
}

/// `POST /ui/admin/policies/new`.
pub async fn policy_create(web: Web) -> WebResult {
    policy_save(web, None).await
}

/// `POST /ui/admin/policies/{name}`.
pub async fn policy_update(Path(name): Path<String>, web: Web) -> WebResult {
    policy_save(web, Some(name)).await
}

async fn policy_save(web: Web, existing: Option<String>) -> WebResult {
    let s = web.admin("policywrite").await?;
    let name = existing
        .clone()
        .unwrap_or_else(|| web.form.get("name").unwrap_or_default().trim().to_owned());
    let mut p = Params::new();
    for k in [
        "scope",
        "action",
        "realm",
        "resolver",
        "user",
        "client",
        "adminuser",
        "priority",
    ] {
        p.insert(k, web.form.get(k).unwrap_or_default().trim());
    }
    if p.get("priority") == Some("") {
        p.insert("priority", "1");
    }
    p.insert(
        "active",
        if web.form.flag("active") {
            "true"
        } else {
            "false"
        },
    );
    web.audit(|e| e.action_detail = format!("policy {name}"));
    let taken = existing.is_none()
        && !name.is_empty()
        && web
            .app
            .services
            .list_policies(Some(&name), None)
            .await?
            .as_array()
            .is_some_and(|a| !a.is_empty());
    let r = if taken {
        Err(exists_already(&format!("a policy {name}")))
    } else if name.is_empty() {
        Err(otpgate_service::ServiceError::missing("name"))
    } else {
        web.app.services.set_policy(&name, &p).await
    };
    match r {
        Ok(_) => {
            web.audit(|e| e.success = true);
            Ok(see_other(&format!(
                "/ui/admin/policies/{}?ok=saved",
                U(&name)
            )))
        }
        Err(e) => {
            let m = service_message(&e);
            let field = if name.is_empty() || m.contains("name") {
                "name"
            } else if m.contains("scope") {
                "scope"
            } else {
                "action"
            };
            let field = if existing.is_some() && field == "name" {
                "action"
            } else {
                field
            };
            let errors = vec![(field.to_owned(), m)];
            match existing {
                Some(n) => {
                    let form = web.form.clone();
                    policy_page(&web, &s, &n, &form, &errors).await
                }
                None => {
                    let mut b = Out::new();
                    policy_form(&mut b, &s, None, None, &web.form, &errors);
                    Ok(page(&web, &s, "New policy", &errors, b))
                }
            }
        }
    }
}

/// `POST /ui/admin/policies/{name}/{enable|disable|delete}`.
pub async fn policy_action(Path((name, action)): Path<(String, String)>, web: Web) -> WebResult {
    let right = if action == "delete" {
        "policydelete"
    } else {
        "policywrite"
    };
    web.admin(right).await?;
    web.audit(|e| e.action_detail = format!("policy {name}: {action}"));
    let services = &web.app.services;
    match action.as_str() {
        "enable" => services.set_policy_active(&name, true).await?,
        "disable" => services.set_policy_active(&name, false).await?,
        "delete" => {
            services.delete_policy(&name).await?;
            web.audit(|e| e.success = true);
            return Ok(see_other("/ui/admin/policies?ok=deleted"));
        }
        _ => {
            return Err(WebError::Page(
                StatusCode::NOT_FOUND,
                "No such action.".into(),
            ));
        }
    };
    web.audit(|e| e.success = true);
    Ok(see_other(&format!(
        "/ui/admin/policies/{}?ok=saved",
        U(&name)
    )))
}

// ---------------------------------------------------------------- event rules

/// `GET /ui/admin/events`: the rules and the notification outbox.
pub async fn events(web: Web) -> WebResult {
    let s = web.admin("eventhandling_read").await?;
    let services = &web.app.services;
    let v = services.list_events(None).await?;
    let mut b = Out::new();
    b.raw("<p>Event rules send a notification (SMS or mail) when something happens, e.g. a token was enrolled or a login failed. <a class=\"button primary\" href=\"/ui/admin/events/new\">New event rule</a></p>");
    let list = v.as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        b.raw("<p class=\"empty\">No event rules.</p>");
    } else {
        b.raw("<div class=\"table-wrap\"><table class=\"data\"><caption>Event rules</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Events</th><th scope=\"col\">Sends</th><th scope=\"col\">To</th><th scope=\"col\">State</th></tr></thead><tbody>");
        for e in &list {
            let id = e.get("id").and_then(Value::as_i64).unwrap_or(0);
            let sends = if str_of(e, "action") == "sendsms" {
                "SMS"
            } else {
                "mail"
            };
            let to = e
                .get("options")
                .map(|o| str_of(o, "To"))
                .unwrap_or_default();
            let state = if e.get("active").and_then(Value::as_bool).unwrap_or(false) {
                "<span class=\"badge ok\">active</span>"
            } else {
                "<span class=\"badge\">inactive</span>"
            };
            w!(
                b,
                "<tr><td data-label=\"Name\"><a href=\"/ui/admin/events/{id}\">{}</a></td><td data-label=\"Events\">{}</td><td data-label=\"Sends\">{sends} ({})</td><td data-label=\"To\">{}</td><td data-label=\"State\">{state}</td></tr>",
                E(str_of(e, "name")),
                E(&list_text(e, "event")),
                E(str_of(e, "position")),
                E(to)
            );
        }
        b.raw("</tbody></table></div>");
    }
    let mut q = Params::new();
    q.insert("status", "dead");
    let dead = services.list_outbox(&q).await?;
    b.raw("<section class=\"card\" aria-labelledby=\"ob-h\"><h2 id=\"ob-h\">Notifications that could not be delivered</h2>");
    let items = dead
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if items.is_empty() {
        b.raw("<p class=\"empty\">None: every notification was delivered or is still being tried.</p>");
    } else {
        b.raw("<div class=\"table-wrap\"><table class=\"data\"><caption>Given up after their retries</caption><thead><tr><th scope=\"col\">Rule</th><th scope=\"col\">To</th><th scope=\"col\">Last error</th><th scope=\"col\">Action</th></tr></thead><tbody>");
        for it in &items {
            let id = it.get("id").and_then(Value::as_i64).unwrap_or(0);
            w!(
                b,
                "<tr><td data-label=\"Rule\">{}</td><td data-label=\"To\">{}</td><td data-label=\"Last error\">{}</td><td data-label=\"Action\">",
                E(str_of(it, "handler")),
                E(str_of(it, "recipient")),
                E(str_of(it, "last_error"))
            );
            post_button(
                &mut b,
                &format!("/ui/admin/events/outbox/{id}/retry"),
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
    Ok(page(&web, &s, "Event rules", &[], b))
}

async fn event_form(
    web: &Web,
    b: &mut Out,
    s: &Session,
    action: &str,
    stored: Option<&Value>,
    f: &Params,
    errors: &Errors,
) -> Result<(), WebError> {
    let id = stored.and_then(|e| e.get("id")).and_then(Value::as_i64);
    if id.is_none() {
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
    let target = match id {
        Some(i) => format!("/ui/admin/events/{i}"),
        None => "/ui/admin/events/new".to_owned(),
    };
    w!(
        b,
        "<form class=\"stack\" method=\"post\" action=\"{}\">",
        E(&target)
    );
    csrf_field(b, s);
    w!(
        b,
        "<input type=\"hidden\" name=\"action\" value=\"{}\">",
        E(action)
    );
    let value = |k: &str| -> String {
        f.get(k)
            .map(str::to_owned)
            .unwrap_or_else(|| match (k, stored) {
                ("event", Some(e)) => list_text(e, "event"),
                ("conditions", Some(e)) => e
                    .get("conditions")
                    .filter(|c| c.as_object().is_some_and(|m| !m.is_empty()))
                    .map(Value::to_string)
                    .unwrap_or_default(),
                ("ordering", Some(e)) => e
                    .get("ordering")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    .to_string(),
                (k, Some(e)) => str_of(e, k).to_owned(),
                _ => String::new(),
            })
    };
    Field::new("name", "Name")
        .value(&value("name"))
        .attrs("required")
        .errors(errors)
        .input(b);
    Field::new("event", "Events")
        .value(&value("event"))
        .hint(&format!(
            "Comma-separated: {}.",
            otpgate_service::events::EVENTS.join(", ")
        ))
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
    let catalogue = web
        .app
        .services
        .event_actions(otpgate_service::events::HANDLER_MODULE)
        .await?;
    let options = catalogue
        .get(action)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    b.raw("<fieldset><legend>Notification</legend>");
    for (key, spec) in &options {
        let field = format!("option.{key}");
        let stored_v = stored
            .and_then(|e| e.get("options"))
            .and_then(|o| o.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let v = f
            .get(&field)
            .map(str::to_owned)
            .unwrap_or_else(|| stored_v.to_owned());
        let required = spec
            .get("required")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let label = if required {
            format!("{key} (required)")
        } else {
            key.clone()
        };
        let hint = spec
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let choices: Vec<(String, String)> = spec
            .get("value")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|c| (c.to_owned(), c.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let f = Field::new(&field, &label)
            .value(&v)
            .hint(hint)
            .errors(errors);
        if !choices.is_empty() {
            let mut c = vec![(String::new(), "(choose)".to_owned())];
            c.extend(choices);
            f.select(&c, b);
        } else if spec.get("type").and_then(Value::as_str) == Some("text") {
            f.textarea(b);
        } else {
            f.input(b);
        }
    }
    b.raw("</fieldset>");
    let active = match (f.get("csrf"), stored) {
        (Some(_), _) => f.flag("active"),
        (None, Some(e)) => e.get("active").and_then(Value::as_bool).unwrap_or(false),
        (None, None) => true,
    };
    w!(
        b,
        "<div class=\"field check\"><input type=\"checkbox\" id=\"active\" name=\"active\" value=\"1\"{}><label for=\"active\">Active</label></div>",
        if active { " checked" } else { "" }
    );
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Save event rule</button> <a class=\"button\" href=\"/ui/admin/events\">Cancel</a></div></form>");
    Ok(())
}

/// `GET /ui/admin/events/new?action=sendsms|sendmail`.
pub async fn event_new(web: Web) -> WebResult {
    let s = web.admin("eventhandling_write").await?;
    let action = if web.query.get("action") == Some("sendmail") {
        "sendmail"
    } else {
        "sendsms"
    };
    let mut b = Out::new();
    event_form(&web, &mut b, &s, action, None, &Params::new(), &Vec::new()).await?;
    Ok(page(&web, &s, "New event rule", &[], b))
}

async fn stored_event(web: &Web, id: i64) -> Result<Value, WebError> {
    let v = web.app.services.list_events(Some(id)).await?;
    v.as_array()
        .and_then(|a| a.first())
        .cloned()
        .ok_or_else(|| WebError::Page(StatusCode::NOT_FOUND, "There is no such event rule.".into()))
}

async fn event_page(web: &Web, s: &Session, id: i64, f: &Params, errors: &Errors) -> WebResult {
    let e = stored_event(web, id).await?;
    let action = str_of(&e, "action").to_owned();
    let mut b = Out::new();
    event_form(web, &mut b, s, &action, Some(&e), f, errors).await?;
    let active = e.get("active").and_then(Value::as_bool);
    actions_bar(
        &mut b,
        s,
        &format!("/ui/admin/events/{id}"),
        active,
        "this event rule",
    );
    Ok(page(
        web,
        s,
        &format!("Event rule {}", str_of(&e, "name")),
        errors,
        b,
    ))
}

fn event_id(raw: &str) -> Result<i64, WebError> {
    raw.parse()
        .map_err(|_| WebError::Page(StatusCode::NOT_FOUND, "There is no such event rule.".into()))
}

/// `GET /ui/admin/events/{id}`.
pub async fn event_edit(Path(id): Path<String>, web: Web) -> WebResult {
    let s = web.admin("eventhandling_read").await?;
    let id = event_id(&id)?;
    event_page(&web, &s, id, &Params::new(), &Vec::new()).await
}

/// `POST /ui/admin/events/new`.
pub async fn event_create(web: Web) -> WebResult {
    event_save(web, None).await
}

/// `POST /ui/admin/events/{id}`.
pub async fn event_update(Path(id): Path<String>, web: Web) -> WebResult {
    let id = event_id(&id)?;
    event_save(web, Some(id)).await
}

async fn event_save(web: Web, existing: Option<i64>) -> WebResult {
    let s = web.admin("eventhandling_write").await?;
    let mut p = Params::new();
    for k in ["name", "event", "action", "position", "conditions"] {
        p.insert(k, web.form.get(k).unwrap_or_default().trim());
    }
    p.insert("handlermodule", otpgate_service::events::HANDLER_MODULE);
    p.insert(
        "active",
        if web.form.flag("active") {
            "true"
        } else {
            "false"
        },
    );
    if let Some(id) = existing {
        p.insert("id", id.to_string());
    }
    for (k, v) in web.form.iter() {
        if k.starts_with("option.") && !v.is_empty() {
            p.insert(k.clone(), v.clone());
        }
    }
    web.audit(|e| e.action_detail = format!("event {}", p.get("name").unwrap_or_default()));
    match web.app.services.save_event(&p).await {
        Ok((id, _)) => {
            web.audit(|e| e.success = true);
            Ok(see_other(&format!("/ui/admin/events/{id}?ok=saved")))
        }
        Err(e) => {
            let m = service_message(&e);
            let field = if m.contains("condition") {
                "conditions"
            } else if m.contains("option.") || m.contains("config") {
                "name"
            } else {
                "event"
            };
            let errors = vec![(field.to_owned(), m)];
            match existing {
                Some(id) => {
                    let form = web.form.clone();
                    event_page(&web, &s, id, &form, &errors).await
                }
                None => {
                    let mut b = Out::new();
                    let action = web.form.get("action").unwrap_or("sendsms").to_owned();
                    let form = web.form.clone();
                    event_form(&web, &mut b, &s, &action, None, &form, &errors).await?;
                    Ok(page(&web, &s, "New event rule", &errors, b))
                }
            }
        }
    }
}

/// `POST /ui/admin/events/{id}/{enable|disable|delete}`.
pub async fn event_action(Path((id, action)): Path<(String, String)>, web: Web) -> WebResult {
    web.admin("eventhandling_write").await?;
    let id = event_id(&id)?;
    web.audit(|e| e.action_detail = format!("event {id}: {action}"));
    let services = &web.app.services;
    match action.as_str() {
        "enable" => services.set_event_active(id, true).await?,
        "disable" => services.set_event_active(id, false).await?,
        "delete" => {
            services.delete_event(id).await?;
            web.audit(|e| e.success = true);
            return Ok(see_other("/ui/admin/events?ok=deleted"));
        }
        _ => {
            return Err(WebError::Page(
                StatusCode::NOT_FOUND,
                "No such action.".into(),
            ));
        }
    };
    web.audit(|e| e.success = true);
    Ok(see_other(&format!("/ui/admin/events/{id}?ok=saved")))
}

/// `POST /ui/admin/events/outbox/{id}/retry`.
pub async fn outbox_retry(Path(id): Path<String>, web: Web) -> WebResult {
    web.admin("eventhandling_write").await?;
    let id = event_id(&id)?;
    web.app.services.requeue_outbox(id).await?;
    web.audit(|e| {
        e.success = true;
        e.action_detail = format!("outbox {id}: retry");
    });
    Ok(see_other("/ui/admin/events?ok=requeued"))
}
