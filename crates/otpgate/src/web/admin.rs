//! The admin console: dashboard, tokens, users and realms, SMS gateways, SMS texts and the
//! audit log. Every page checks the same admin rights as the API (admin policies apply).

use super::html::{E, Field, Out, U, error_summary, post_button, w};
use super::{
    Nav, Session, Web, WebError, WebResult, csrf_field, see_other, service_message, signed_in_page,
    str_of,
};
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use otpgate_core::sms_text::{self, Encoding};
use otpgate_core::token::Unfit;
use otpgate_service::Params;
use otpgate_service::call::Caller;
use otpgate_service::tokens::{TokenInit, TokenQuery, TokenTarget, TokenView, UserRef};
use serde_json::{Value, json};
use std::collections::BTreeMap;

type Errors = Vec<(String, String)>;

fn page(web: &Web, s: &Session, title: &str, errors: &[(String, String)], body: Out) -> Response {
    signed_in_page(web, s, Nav::Admin, title, errors, None, body)
}

fn opts(items: impl IntoIterator<Item = String>) -> Vec<(String, String)> {
    items.into_iter().map(|i| (i.clone(), i)).collect()
}

// ---------------------------------------------------------------- dashboard

/// `GET /ui/admin/`: today's SMS by gateway and result, refusals, breakers, recent failures.
pub async fn dashboard(web: Web) -> WebResult {
    let s = match web.admin("auditlog").await {
        // An admin who may not read the audit lands on the first page they may open.
        Err(WebError::Page(StatusCode::FORBIDDEN, why)) => {
            if let Some(s) = web.session().await?.filter(|s| s.role == "admin") {
                let policies = web.app.services.policies().await?;
                if let Some((href, _, _)) = super::ADMIN_MENU
                    .iter()
                    .find(|(_, _, r)| policies.admin_allows(&s.username, r))
                {
                    return Ok(see_other(href));
                }
            }
            return Err(WebError::Page(StatusCode::FORBIDDEN, why));
        }
        other => other?,
    };
    let services = &web.app.services;
    let stats = services.sms_stats_today().await?;
    let mut by_gw: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let mut limits: BTreeMap<String, i64> = BTreeMap::new();
    for st in &stats {
        match st.outcome.strip_prefix("limit:") {
            Some(l) => *limits.entry(l.to_owned()).or_default() += st.count,
            None => {
                *by_gw
                    .entry(st.gateway.clone())
                    .or_default()
                    .entry(st.outcome.clone())
                    .or_default() += st.count
            }
        }
    }
    let total = |o: &str| -> i64 { by_gw.values().filter_map(|m| m.get(o)).sum() };
    let refused: i64 = limits.values().sum();
    let mut b = Out::new();
    w!(
        b,
        "<dl class=\"stats\"><div class=\"stat ok\"><dt>SMS sent today</dt><dd>{}</dd></div><div class=\"stat bad\"><dt>Failed attempts</dt><dd>{}</dd></div><div class=\"stat warn\"><dt>Delivered by a failover</dt><dd>{}</dd></div><div class=\"stat\"><dt>Refused by limits or fraud rules</dt><dd>{}</dd></div></dl>",
        total("delivered"),
        total("failed"),
        total("failover"),
        refused
    );
    b.raw("<p class=\"muted\">Today means since 00:00 UTC; counts from every node, added at least every 10 seconds.</p>");
    b.raw("<section class=\"card\" aria-labelledby=\"gw-h\"><h2 id=\"gw-h\">By gateway</h2>");
    if by_gw.is_empty() {
        b.raw("<p class=\"empty\">No SMS today.</p>");
    } else {
        b.raw("<div class=\"table-wrap\"><table class=\"data\"><caption>SMS attempts today by gateway</caption><thead><tr><th scope=\"col\">Gateway</th><th scope=\"col\">Sent</th><th scope=\"col\">Failed</th><th scope=\"col\">Skipped</th><th scope=\"col\">Failover</th></tr></thead><tbody>");
        for (gw, m) in &by_gw {
            let n = |o: &str| m.get(o).copied().unwrap_or(0);
            w!(
                b,
                "<tr><td data-label=\"Gateway\">{}</td><td data-label=\"Sent\">{}</td><td data-label=\"Failed\">{}</td><td data-label=\"Skipped\">{}</td><td data-label=\"As failover\">{}</td></tr>",
                E(gw),
                n("delivered"),
                n("failed"),
                n("skipped_breaker_open"),
                n("failover")
            );
        }
        b.raw("</tbody></table></div>");
    }
    b.raw("</section><div class=\"grid\"><section class=\"card\" aria-labelledby=\"lim-h\"><h2 id=\"lim-h\">Refused SMS</h2>");
    if limits.is_empty() {
        b.raw("<p class=\"empty\">No SMS refused today.</p>");
    } else {
        b.raw("<div class=\"table-wrap\"><table class=\"data\"><caption>Refusals today by rule</caption><thead><tr><th scope=\"col\">Rule</th><th scope=\"col\">Refused</th></tr></thead><tbody>");
        for (l, n) in &limits {
            w!(
                b,
                "<tr><td data-label=\"Rule\">{}</td><td data-label=\"Refused\">{n}</td></tr>",
                E(l)
            );
        }
        b.raw("</tbody></table></div>");
    }
    b.raw("</section><section class=\"card\" aria-labelledby=\"br-h\"><h2 id=\"br-h\">Gateway health (this node)</h2>");
    let views = services.breakers().views(services.clock().now_ms());
    if views.is_empty() {
        b.raw("<p class=\"empty\">No gateway has failed recently.</p>");
    } else {
        b.raw("<ul>");
        for v in views {
            let badge = if v.open {
                "<span class=\"badge bad\">skipped</span>"
            } else {
                "<span class=\"badge warn\">failing</span>"
            };
            w!(
                b,
                "<li>{} {badge} {} failures in a row</li>",
                E(&v.gateway),
                v.failures
            );
        }
        b.raw("</ul>");
    }
    b.raw("</section></div>");
    let mut p = Params::new();
    p.insert("authentication", "REJECT");
    p.insert("page_size", "10");
    let failures = services.list_audit(&p).await?;
    b.raw("<section class=\"card\" aria-labelledby=\"fail-h\"><h2 id=\"fail-h\">Recent rejected logins</h2>");
    audit_table(
        &mut b,
        &failures,
        "The ten most recent rejected logins (API, RADIUS and web)",
    );
    b.raw("<p><a href=\"/ui/admin/audit?authentication=REJECT\">All rejected logins</a></p></section>");
    Ok(page(&web, &s, "Dashboard", &[], b))
}

// ---------------------------------------------------------------- tokens

fn token_state(t: &TokenView) -> &'static str {
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

/// `GET /ui/admin/tokens?serial=&user=&page=`.
pub async fn tokens(web: Web) -> WebResult {
    let s = web.admin("tokenlist").await?;
    let serial = web
        .query
        .get("serial")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let user = web.query.get("user").unwrap_or_default().trim().to_owned();
    let page_no = web
        .query
        .get("page")
        .and_then(|p| p.parse::<i64>().ok())
        .unwrap_or(1)
        .max(1);
    let q = TokenQuery {
        serial: (!serial.is_empty()).then(|| format!("*{serial}*")),
        user: (!user.is_empty()).then(|| UserRef {
            login: user.clone(),
            realm: web.query.get_nonblank("realm").map(str::to_owned),
        }),
        page: Some(page_no),
        page_size: Some(25),
        ..Default::default()
    };
    let mut b = Out::new();
    b.raw(
        "<p><a class=\"button primary\" href=\"/ui/admin/tokens/new\">Enroll an SMS token</a></p>",
    );
    b.raw("<form class=\"filters\" method=\"get\" action=\"/ui/admin/tokens\" role=\"search\">");
    Field::new("serial", "Serial contains")
        .kind("search")
        .value(&serial)
        .input(&mut b);
    Field::new("user", "User")
        .kind("search")
        .value(&user)
        .input(&mut b);
    b.raw("<div class=\"actions\"><button type=\"submit\">Search</button></div></form>");
    let listed = match web.app.services.list_tokens(&q).await {
        Ok(v) => v,
        Err(e) => {
            let errors = vec![("user".to_owned(), service_message(&e))];
            let mut eb = Out::new();
            error_summary(&errors, &mut eb);
            eb.push(b);
            return Ok(page(&web, &s, "Tokens", &[], eb));
        }
    };
    let count = listed.count;
    if listed.items.is_empty() {
        b.raw("<p class=\"empty\">No tokens match.</p>");
    } else {
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
                token_state(t),
                t.failcount,
                t.maxfail
            );
            token_buttons(&mut b, &s, t);
            b.raw("</td></tr>");
        }
        b.raw("</tbody></table></div>");
        pager(&mut b, "/ui/admin/tokens", &web.query, page_no, count, 25);
    }
    Ok(page(&web, &s, "Tokens", &[], b))
}

fn token_buttons(b: &mut Out, s: &Session, t: &TokenView) {
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

fn pager(b: &mut Out, base: &str, q: &Params, page: i64, count: i64, size: i64) {
    let pages = ((count + size - 1) / size).max(1);
    if pages <= 1 {
        return;
    }
    let link = |p: i64| {
        let mut parts: Vec<String> = q
            .iter()
            .filter(|(k, v)| k.as_str() != "page" && k.as_str() != "ok" && !v.is_empty())
            .map(|(k, v)| format!("{}={}", U(k), U(v)))
            .collect();
        parts.push(format!("page={p}"));
        format!("{base}?{}", parts.join("&"))
    };
    b.raw("<nav class=\"pager\" aria-label=\"Pages\">");
    if page > 1 {
        w!(
            b,
            "<a rel=\"prev\" href=\"{}\">Previous</a> ",
            E(&link(page - 1))
        );
    }
    w!(b, "<span>Page {page} of {pages}</span>");
    if page < pages {
        w!(
            b,
            " <a rel=\"next\" href=\"{}\">Next</a>",
            E(&link(page + 1))
        );
    }
    b.raw("</nav>");
}

/// `GET /ui/admin/tokens/{serial}`.
pub async fn token(Path(serial): Path<String>, web: Web) -> WebResult {
    let s = web.admin("tokenlist").await?;
    let t = web.app.services.token(&serial).await?.ok_or_else(|| {
        WebError::Page(
            StatusCode::NOT_FOUND,
            format!("There is no token {serial}."),
        )
    })?;
    let mut b = Out::new();
    b.raw("<section class=\"card\"><h2>Details</h2><dl class=\"props\">");
    let gateway = t
        .info
        .get("sms.identifier")
        .map_or("the default gateway", String::as_str);
    for (k, v) in [
        ("Serial", serial.clone()),
        ("User", owner_of(&t)),
        ("Phone", phone_of(&t).to_owned()),
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
        token_state(&t)
    );
    token_buttons(&mut b, &s, &t);
    b.raw("</div></section>");
    b.raw("<section class=\"card\"><h2>Set the PIN</h2>");
    w!(
        b,
        "<form class=\"stack\" method=\"post\" action=\"/ui/admin/tokens/{}/pin\">",
        U(&serial)
    );
    csrf_field(&mut b, &s);
    Field::new("pin", "New PIN")
        .kind("password")
        .attrs("required autocomplete=\"new-password\"")
        .input(&mut b);
    b.raw("<div class=\"actions\"><button type=\"submit\">Set PIN</button></div></form></section>");
    w!(
        b,
        "<p><a href=\"/ui/admin/audit?serial={}\">Audit entries of this token</a></p>",
        U(&serial)
    );
    Ok(page(&web, &s, &format!("Token {serial}"), &[], b))
}

/// `POST /ui/admin/tokens/{serial}/{enable|disable|reset|pin|delete}`: the same calls
/// (rights, events, audit) as the API's.
pub async fn token_action(Path((serial, action)): Path<(String, String)>, web: Web) -> WebResult {
    let (right, event, ok) = match action.as_str() {
        "enable" => ("enable", "token_enable", "enabled"),
        "disable" => ("disable", "token_disable", "disabled"),
        "reset" => ("reset", "token_reset", "reset"),
        "pin" => ("setpin", "token_setpin", "pin"),
        "delete" => ("delete", "token_delete", "deleted"),
        _ => {
            return Err(WebError::Page(
                StatusCode::NOT_FOUND,
                "No such action.".into(),
            ));
        }
    };
    let s = web.admin(right).await?;
    let call = web
        .call(Caller::Admin(s.username.clone()))
        .event(event)
        .subject("", "", &serial);
    let pin = web.form.get("pin").unwrap_or_default().to_owned();
    let target = TokenTarget::serial(&serial);
    web.run(call, Some(right), move |svc, cx| {
        Box::pin(async move {
            Ok(match right {
                "enable" => svc.set_tokens_active(target, true, cx).await?,
                "disable" => svc.set_tokens_active(target, false, cx).await?,
                "reset" => to_i64(svc.reset_tokens(target, cx).await?),
                "setpin" => to_i64(svc.set_token_pin(target, Some(pin), cx).await?),
                _ => svc.delete_tokens(target, cx).await?,
            })
        })
    })
    .await?;
    Ok(see_other(&if action == "delete" {
        "/ui/admin/tokens?ok=deleted".to_owned()
    } else {
        format!("/ui/admin/tokens/{}?ok={ok}", U(&serial))
    }))
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

async fn realm_names(web: &Web) -> Result<Vec<String>, WebError> {
    let v = web.app.services.list_realms(false).await?;
    Ok(v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default())
}

async fn gateway_names(web: &Web) -> Result<Vec<String>, WebError> {
    let v = web.app.services.list_gateways(None).await?;
    Ok(v.as_array()
        .map(|a| a.iter().map(|g| str_of(g, "name").to_owned()).collect())
        .unwrap_or_default())
}

async fn token_form_page(web: &Web, s: &Session, f: &Params, errors: &Errors) -> WebResult {
    let realms = realm_names(web).await?;
    let gateways = gateway_names(web).await?;
    let mut b = Out::new();
    b.raw("<form class=\"stack\" method=\"post\" action=\"/ui/admin/tokens/new\">");
    csrf_field(&mut b, s);
    let g = |k: &str| f.get(k).unwrap_or_default().to_owned();
    let (user, realm, phone, gw, desc) = (
        g("user"),
        g("realm"),
        g("phone"),
        g("sms.identifier"),
        g("description"),
    );
    Field::new("user", "User")
        .value(&user)
        .hint("The user who receives the SMS (leave empty for an unassigned token).")
        .attrs("autocapitalize=\"none\" spellcheck=\"false\"")
        .errors(errors)
        .input(&mut b);
    let mut realm_opts = vec![(String::new(), "Default realm".to_owned())];
    realm_opts.extend(opts(realms));
    Field::new("realm", "Realm")
        .value(&realm)
        .errors(errors)
        .select(&realm_opts, &mut b);
    Field::new("phone", "Phone number")
        .kind("tel")
        .value(&phone)
        .hint("International format, e.g. +49 151 23456789.")
        .attrs("required")
        .errors(errors)
        .input(&mut b);
    Field::new("pin", "PIN")
        .kind("password")
        .hint("The user enters it before the OTP. Leave empty for none.")
        .attrs("autocomplete=\"new-password\"")
        .errors(errors)
        .input(&mut b);
    let mut gw_opts = vec![(String::new(), "The default gateway".to_owned())];
    gw_opts.extend(opts(gateways));
    Field::new("sms.identifier", "SMS gateway")
        .value(&gw)
        .errors(errors)
        .select(&gw_opts, &mut b);
    Field::new("description", "Description")
        .value(&desc)
        .attrs("maxlength=\"80\"")
        .errors(errors)
        .input(&mut b);
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Enroll</button> <a class=\"button\" href=\"/ui/admin/tokens\">Cancel</a></div></form>");
    Ok(page(web, s, "Enroll an SMS token", errors, b))
}

/// `GET /ui/admin/tokens/new`.
pub async fn token_form(web: Web) -> WebResult {
    let s = web.admin("enrollSMS").await?;
    let q = web.query.clone();
    token_form_page(&web, &s, &q, &Vec::new()).await
}

/// `POST /ui/admin/tokens/new`: a `token_init` call, as the API's.
pub async fn token_enroll(web: Web) -> WebResult {
    let s = web.admin("enrollSMS").await?;
    let f = &web.form;
    let trimmed = |k: &str| f.get_nonblank(k).map(|v| v.trim().to_owned());
    let user = trimmed("user").map(|login| UserRef {
        login,
        realm: trimmed("realm"),
    });
    let req = TokenInit {
        tokentype: Some("sms".into()),
        genkey: true,
        user,
        phone: trimmed("phone"),
        pin: f.get("pin").filter(|p| !p.is_empty()).map(str::to_owned),
        description: trimmed("description"),
        sms_info: trimmed("sms.identifier")
            .map(|g| ("sms.identifier".to_owned(), g))
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let call = web
        .call(Caller::Admin(s.username.clone()))
        .event("token_init")
        .subject(
            f.get_nonblank("user").unwrap_or_default().trim(),
            f.get_nonblank("realm").unwrap_or_default().trim(),
            "",
        );
    let r = web
        .run(call, Some("enrollSMS"), move |svc, cx| {
            Box::pin(svc.init_token(req, cx))
        })
        .await;
    match r {
        Ok(done) => Ok(see_other(&format!(
            "/ui/admin/tokens/{}?ok=enrolled",
            U(&done.serial)
        ))),
        Err(e) => {
            let m = service_message(&e);
            let field = if m.contains("ser") && !m.contains("phone") {
                "user"
            } else if m.contains("gateway") || m.contains("sms.identifier") {
                "sms.identifier"
            } else {
                "phone"
            };
            let form = web.form.clone();
            token_form_page(&web, &s, &form, &vec![(field.to_owned(), m)]).await
        }
    }
}

// ---------------------------------------------------------------- users and realms

/// `GET /ui/admin/users?realm=&username=`.
pub async fn users(web: Web) -> WebResult {
    let s = web.admin("userlist").await?;
    users_page(&web, &s, &Vec::new(), &Params::new()).await
}

async fn users_page(web: &Web, s: &Session, errors: &Errors, f: &Params) -> WebResult {
    let services = &web.app.services;
    let realms = realm_names(web).await?;
    let realm = web
        .query
        .get_nonblank("realm")
        .map(str::to_owned)
        .or_else(|| realms.first().cloned())
        .unwrap_or_default();
    let username = web.query.get("username").unwrap_or_default().to_owned();
    let mut b = Out::new();
    if realms.is_empty() {
        b.raw("<p class=\"empty\">There is no realm yet. <a href=\"/ui/admin/realms\">Create a user store and a realm</a> first.</p>");
        return Ok(page(web, s, "Users", errors, b));
    }
    b.raw("<form class=\"filters\" method=\"get\" action=\"/ui/admin/users\" role=\"search\">");
    Field::new("realm", "Realm")
        .value(&realm)
        .select(&opts(realms.clone()), &mut b);
    Field::new("username", "User name")
        .kind("search")
        .value(&username)
        .hint("* matches anything")
        .input(&mut b);
    b.raw("<div class=\"actions\"><button type=\"submit\">Show</button></div></form>");
    let mut p = Params::new();
    p.insert("realm", realm.clone());
    if !username.is_empty() {
        p.insert("username", username.clone());
    }
    match services.list_users(&p).await {
        Ok(v) => {
            let list = v.as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                b.raw("<p class=\"empty\">No users.</p>");
            } else {
                w!(
                    b,
                    "<div class=\"table-wrap\"><table class=\"data\"><caption>Users in {} ({})</caption><thead><tr><th scope=\"col\">User name</th><th scope=\"col\">Name</th><th scope=\"col\">Mobile</th><th scope=\"col\">Email</th><th scope=\"col\">User store</th><th scope=\"col\">Tokens</th></tr></thead><tbody>",
                    E(&realm),
                    list.len()
                );
                let editable: Vec<String> = services
                    .list_resolvers(None, Some("internalresolver"))
                    .await?
                    .as_object()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                for u in list.iter().take(200) {
                    let mobile = match u.get("mobile") {
                        Some(Value::Array(a)) => a
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(", "),
                        Some(Value::String(m)) => m.clone(),
                        _ => String::new(),
                    };
                    w!(
                        b,
                        "<tr><td data-label=\"User name\">{}</td><td data-label=\"Name\">{} {}</td><td data-label=\"Mobile\">{}</td><td data-label=\"Email\">{}</td><td data-label=\"User store\">{}</td><td data-label=\"Tokens\"><a href=\"/ui/admin/tokens?user={}&amp;realm={}\">Tokens</a> · <a href=\"/ui/admin/tokens/new?user={}&amp;realm={}\">Enroll</a> · <a href=\"/ui/admin/audit?user={}\">Audit</a> ",
                        E(str_of(u, "username")),
                        E(str_of(u, "givenname")),
                        E(str_of(u, "surname")),
                        E(&mobile),
                        E(str_of(u, "email")),
                        E(str_of(u, "resolver")),
                        U(str_of(u, "username")),
                        U(&realm),
                        U(str_of(u, "username")),
                        U(&realm),
                        U(str_of(u, "username"))
                    );
                    let (store, name) = (str_of(u, "resolver"), str_of(u, "username"));
                    if editable.iter().any(|r| r == store) {
                        post_button(
                            &mut b,
                            &format!(
                                "/ui/admin/users/{}/{}/delete?realm={}",
                                U(store),
                                U(name),
                                U(&realm)
                            ),
                            &s.csrf,
                            "Delete",
                            "small danger",
                            Some(&format!(
                                "Delete the user {name}? Their tokens stay, unassigned."
                            )),
                        );
                    }
                    b.raw("</td></tr>");
                }
                b.raw("</tbody></table></div>");
            }
        }
        Err(e) => {
            w!(b, "<p class=\"error\">{}</p>", E(&service_message(&e)));
        }
    }
    // New internal user.
    let resolvers = services
        .list_resolvers(None, Some("internalresolver"))
        .await?;
    let internal: Vec<String> = resolvers
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    b.raw("<section class=\"card\" aria-labelledby=\"nu-h\"><h2 id=\"nu-h\">New user</h2>");
    if internal.is_empty() {
        b.raw("<p>Users are created in an internal user store. <a href=\"/ui/admin/realms\">Create one</a> first; users of passwd files and LDAP directories are managed there.</p>");
    } else {
        b.raw("<form class=\"stack\" method=\"post\" action=\"/ui/admin/users\">");
        csrf_field(&mut b, s);
        // Back to this realm's list afterwards.
        w!(
            b,
            "<input type=\"hidden\" name=\"realm\" value=\"{}\">",
            E(&realm)
        );
        let g = |k: &str| f.get(k).unwrap_or_default().to_owned();
        Field::new("resolver", "User store")
            .value(&g("resolver"))
            .errors(errors)
            .select(&opts(internal), &mut b);
        Field::new("user", "User name")
            .value(&g("user"))
            .attrs("required autocapitalize=\"none\" spellcheck=\"false\"")
            .errors(errors)
            .input(&mut b);
        Field::new("givenname", "Given name")
            .value(&g("givenname"))
            .input(&mut b);
        Field::new("surname", "Surname")
            .value(&g("surname"))
            .input(&mut b);
        Field::new("mobile", "Mobile number")
            .kind("tel")
            .value(&g("mobile"))
            .errors(errors)
            .input(&mut b);
        Field::new("email", "Email")
            .kind("email")
            .value(&g("email"))
            .errors(errors)
            .input(&mut b);
        Field::new("password", "Password")
            .kind("password")
            .hint("Lets the user sign in to enroll a first phone. Leave empty for none.")
            .attrs("autocomplete=\"new-password\"")
            .errors(errors)
            .input(&mut b);
        b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Create user</button></div></form>");
    }
    b.raw("</section>");
    Ok(page(web, s, "Users", errors, b))
}

/// `POST /ui/admin/users`: a new internal user.
pub async fn user_create(web: Web) -> WebResult {
    let s = web.admin("adduser").await?;
    let mut p = Params::new();
    for k in [
        "resolver",
        "user",
        "givenname",
        "surname",
        "mobile",
        "email",
        "password",
    ] {
        if let Some(v) = web.form.get_nonblank(k) {
            p.insert(k, v);
        }
    }
    web.audit(|e| e.user = p.get("user").unwrap_or_default().to_owned());
    match web.app.services.save_user(&p, true).await {
        Ok(_) => {
            web.audit(|e| e.success = true);
            let realm = web.form.get("realm").unwrap_or_default();
            Ok(see_other(&format!(
                "/ui/admin/users?realm={}&ok=user",
                U(realm)
            )))
        }
        Err(e) => {
            let m = service_message(&e);
            let form = web.form.clone();
            users_page(&web, &s, &vec![("user".to_owned(), m)], &form).await
        }
    }
}

/// `GET /ui/admin/realms`.
pub async fn realms(web: Web) -> WebResult {
    let s = web.admin("realmread").await?;
    realms_page(&web, &s, &Vec::new()).await
}

async fn realms_page(web: &Web, s: &Session, errors: &Errors) -> WebResult {
    let services = &web.app.services;
    let realms = services.list_realms(false).await?;
    let resolvers = services.list_resolvers(None, None).await?;
    let mut b = Out::new();
    b.raw("<div class=\"grid\"><section class=\"card\" aria-labelledby=\"r-h\"><h2 id=\"r-h\">Realms</h2>");
    match realms.as_object().filter(|m| !m.is_empty()) {
        None => b.raw("<p class=\"empty\">No realms yet.</p>"),
        Some(m) => {
            b.raw("<div class=\"table-wrap\"><table class=\"data\"><caption>Realms and their user stores</caption><thead><tr><th scope=\"col\">Realm</th><th scope=\"col\">User stores</th><th scope=\"col\">Default</th><th scope=\"col\">Actions</th></tr></thead><tbody>");
            for (name, r) in m {
                let rs: Vec<&str> = r
                    .get("resolver")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(|x| str_of(x, "name")).collect())
                    .unwrap_or_default();
                let default = if r.get("default").and_then(Value::as_bool).unwrap_or(false) {
                    "<span class=\"badge ok\">default</span>"
                } else {
                    ""
                };
                w!(
                    b,
                    "<tr><td data-label=\"Realm\"><a href=\"/ui/admin/users?realm={}\">{}</a></td><td data-label=\"User stores\">{}</td><td data-label=\"Default\">{default}</td><td data-label=\"Actions\">",
                    U(name),
                    E(name),
                    E(&rs.join(", "))
                );
                let base = format!("/ui/admin/realms/{}", U(name));
                if default.is_empty() {
                    post_button(
                        &mut b,
                        &format!("{base}/default"),
                        &s.csrf,
                        "Make default",
                        "small",
                        None,
                    );
                }
                post_button(
                    &mut b,
                    &format!("{base}/delete"),
                    &s.csrf,
                    "Delete",
                    "small danger",
                    Some(&format!(
                        "Delete the realm {name}? Its users can no longer sign in."
                    )),
                );
                b.raw("</td></tr>");
            }
            b.raw("</tbody></table></div>")
        }
    };
    b.raw(
        "</section><section class=\"card\" aria-labelledby=\"s-h\"><h2 id=\"s-h\">User stores</h2>",
    );
    let names: Vec<String> = match resolvers.as_object().filter(|m| !m.is_empty()) {
        None => {
            b.raw("<p class=\"empty\">No user stores yet.</p>");
            Vec::new()
        }
        Some(m) => {
            b.raw("<ul>");
            for (name, r) in m {
                w!(
                    b,
                    "<li><a href=\"/ui/admin/resolvers/{}\">{}</a> <span class=\"badge\">{}</span></li>",
                    U(name),
                    E(name),
                    E(str_of(r, "type"))
                );
            }
            b.raw("</ul>");
            m.keys().cloned().collect()
        }
    };
    b.raw("<p><a href=\"/ui/admin/resolvers/new?type=ldapresolver\">New LDAP directory</a> · <a href=\"/ui/admin/resolvers/new?type=passwdresolver\">New passwd file</a></p>");
    b.raw("</section></div>");
    b.raw("<section class=\"card\" aria-labelledby=\"ni-h\"><h2 id=\"ni-h\">New internal user store</h2><p>Users kept in otpgate's database, created on the Users page.</p><form class=\"stack\" method=\"post\" action=\"/ui/admin/realms\">");
    csrf_field(&mut b, s);
    b.raw("<input type=\"hidden\" name=\"kind\" value=\"resolver\">");
    Field::new("resolver_name", "Name")
        .attrs("required pattern=\"[A-Za-z0-9_.\\-]+\"")
        .errors(errors)
        .input(&mut b);
    b.raw("<div class=\"actions\"><button type=\"submit\">Create user store</button></div></form></section>");
    b.raw("<section class=\"card\" aria-labelledby=\"nr-h\"><h2 id=\"nr-h\">New or changed realm</h2><form class=\"stack\" method=\"post\" action=\"/ui/admin/realms\">");
    csrf_field(&mut b, s);
    b.raw("<input type=\"hidden\" name=\"kind\" value=\"realm\">");
    Field::new("realm_name", "Realm name")
        .attrs("required pattern=\"[A-Za-z0-9_.\\-]+\"")
        .errors(errors)
        .input(&mut b);
    b.raw("<fieldset><legend>User stores of the realm</legend>");
    for n in &names {
        w!(
            b,
            "<div class=\"field check\"><input type=\"checkbox\" id=\"res-{n}\" name=\"resolvers\" value=\"{n}\"><label for=\"res-{n}\">{n}</label></div>",
            n = E(n)
        );
    }
    b.raw("</fieldset><div class=\"field check\"><input type=\"checkbox\" id=\"default\" name=\"default\" value=\"1\"><label for=\"default\">Make it the default realm</label></div>");
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Save realm</button></div></form></section>");
    Ok(page(web, s, "Realms and user stores", errors, b))
}

/// `POST /ui/admin/realms` (`kind=resolver|realm`).
pub async fn realm_save(web: Web) -> WebResult {
    let services = &web.app.services;
    if web.form.get("kind") == Some("resolver") {
        let s = web.admin("resolverwrite").await?;
        let name = web
            .form
            .get("resolver_name")
            .unwrap_or_default()
            .trim()
            .to_owned();
        let mut p = Params::new();
        p.insert("type", "internalresolver");
        web.audit(|e| e.resolver = name.clone());
        return match services.save_resolver(&name, &p).await {
            Ok(_) => {
                web.audit(|e| e.success = true);
                Ok(see_other("/ui/admin/realms?ok=saved"))
            }
            Err(e) => {
                realms_page(
                    &web,
                    &s,
                    &vec![("resolver_name".into(), service_message(&e))],
                )
                .await
            }
        };
    }
    let s = web.admin("realmwrite").await?;
    let name = web
        .form
        .get("realm_name")
        .unwrap_or_default()
        .trim()
        .to_owned();
    web.audit(|e| e.realm = name.clone());
    // Several checkboxes of one name: the form parser keeps them comma-joined.
    let mut p = Params::new();
    p.insert("resolvers", web.form.get("resolvers").unwrap_or_default());
    let r = services.save_realm(&name, &p).await;
    let r = match r {
        Ok(_) if web.form.flag("default") => services.set_default_realm(&name).await,
        other => other,
    };
    match r {
        Ok(_) => {
            web.audit(|e| e.success = true);
            Ok(see_other("/ui/admin/realms?ok=realm"))
        }
        Err(e) => realms_page(&web, &s, &vec![("realm_name".into(), service_message(&e))]).await,
    }
}

// ---------------------------------------------------------------- gateways

fn short_module(m: &str) -> &str {
    let last = m.rsplit('.').next().unwrap_or(m);
    match last {
        "HttpSMSProvider" => "HTTP",
        "SipgateSMSProvider" => "Sipgate",
        "SmtpSMSProvider" => "SMTP (mail to SMS)",
        "SmppSMSProvider" => "SMPP",
        "ScriptSMSProvider" => "Script",
        "modem" => "GSM modem",
        "sink" => "Sink (file, for tests)",
        other => other,
    }
}

/// `GET /ui/admin/gateways`.
pub async fn gateways(web: Web) -> WebResult {
    let s = web.admin("smsgateway_read").await?;
    let services = &web.app.services;
    let list = services.list_gateways(None).await?;
    let default = services
        .config_map()
        .await?
        .remove("sms.identifier")
        .unwrap_or_default();
    let views = services.breakers().views(services.clock().now_ms());
    let mut b = Out::new();
    b.raw("<p><a class=\"button primary\" href=\"/ui/admin/gateways/new\">New SMS gateway</a></p>");
    let list = list.as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        b.raw("<p class=\"empty\">No SMS gateway yet: tokens cannot send SMS until you define one.</p>");
    } else {
        b.raw("<div class=\"table-wrap\"><table class=\"data\"><caption>SMS gateways</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Provider</th><th scope=\"col\">Description</th><th scope=\"col\">State</th></tr></thead><tbody>");
        for g in &list {
            let name = str_of(g, "name");
            let mut state = String::new();
            if name == default {
                state.push_str("<span class=\"badge ok\">default</span> ");
            }
            if let Some(v) = views.iter().find(|v| v.gateway == name) {
                state.push_str(if v.open {
                    "<span class=\"badge bad\">skipped after failures</span>"
                } else {
                    "<span class=\"badge warn\">failing</span>"
                });
            }
            w!(
                b,
                "<tr><td data-label=\"Name\"><a href=\"/ui/admin/gateways/{}\">{}</a></td><td data-label=\"Provider\">{}</td><td data-label=\"Description\">{}</td><td data-label=\"State\">",
                U(name),
                E(name),
                E(short_module(str_of(g, "providermodule"))),
                E(str_of(g, "description"))
            );
            b.fmt(format_args!("{state}"));
            b.raw("</td></tr>");
        }
        b.raw("</tbody></table></div>");
    }
    blocks_section(
        &mut b,
        &s,
        &services.list_prefix_blocks().await?,
        &Vec::new(),
        &Params::new(),
    );
    Ok(page(&web, &s, "SMS gateways", &[], b))
}

/// Blocked destination prefixes (toll fraud): by hand or by the velocity detection.
fn blocks_section(b: &mut Out, s: &Session, blocks: &Value, errors: &Errors, f: &Params) {
    b.raw("<section class=\"card\" aria-labelledby=\"bl-h\"><h2 id=\"bl-h\">Blocked destinations</h2><p>No SMS goes to numbers starting with these prefixes (SMS pumping, toll fraud).</p>");
    let list = blocks.as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        b.raw("<p class=\"empty\">No prefix is blocked.</p>");
    } else {
        b.raw("<div class=\"table-wrap\"><table class=\"data\"><caption>Blocked prefixes</caption><thead><tr><th scope=\"col\">Prefix</th><th scope=\"col\">By</th><th scope=\"col\">Reason</th><th scope=\"col\">Since (UTC)</th><th scope=\"col\">Action</th></tr></thead><tbody>");
        for bl in &list {
            let prefix = str_of(bl, "prefix");
            let since = str_of(bl, "blocked_at").replace('T', " ");
            w!(
                b,
                "<tr><td data-label=\"Prefix\"><code>{}</code></td><td data-label=\"By\">{}</td><td data-label=\"Reason\">{}</td><td data-label=\"Since\">{}</td><td data-label=\"Action\">",
                E(prefix),
                E(str_of(bl, "source")),
                E(str_of(bl, "reason")),
                E(since.get(..19).unwrap_or(&since))
            );
            post_button(
                b,
                &format!("/ui/admin/blocks/{}/delete", U(prefix)),
                &s.csrf,
                "Unblock",
                "small",
                Some(&format!("Let SMS go to {prefix} again?")),
            );
            b.raw("</td></tr>");
        }
        b.raw("</tbody></table></div>");
    }
    b.raw("<form class=\"filters\" method=\"post\" action=\"/ui/admin/blocks\">");
    csrf_field(b, s);
    Field::new("prefix", "Prefix to block")
        .value(f.get("prefix").unwrap_or_default())
        .hint("+ and 1 to 15 digits, e.g. +88213.")
        .attrs("required")
        .errors(errors)
        .input(b);
    Field::new("reason", "Reason")
        .value(f.get("reason").unwrap_or_default())
        .errors(errors)
        .input(b);
    b.raw("<div class=\"actions\"><button type=\"submit\">Block</button></div></form></section>");
}

/// `POST /ui/admin/blocks`: blocks a destination prefix.
pub async fn block(web: Web) -> WebResult {
    let s = web.admin("smsgateway_write").await?;
    let prefix = web.form.get("prefix").unwrap_or_default().trim().to_owned();
    let reason = web
        .form
        .get_nonblank("reason")
        .unwrap_or("blocked by an admin")
        .to_owned();
    web.audit(|e| e.action_detail = format!("prefix {prefix}"));
    match web.app.services.block_prefix(&prefix, &reason).await {
        Ok(_) => {
            web.audit(|e| e.success = true);
            Ok(see_other("/ui/admin/gateways?ok=blocked"))
        }
        Err(e) => {
            let errors = vec![("prefix".to_owned(), service_message(&e))];
            let mut b = Out::new();
            let blocks = web.app.services.list_prefix_blocks().await?;
            blocks_section(&mut b, &s, &blocks, &errors, &web.form);
            Ok(page(&web, &s, "SMS gateways", &errors, b))
        }
    }
}

/// `POST /ui/admin/blocks/{prefix}/delete`: lifts a block.
pub async fn unblock(Path(prefix): Path<String>, web: Web) -> WebResult {
    web.admin("smsgateway_write").await?;
    web.audit(|e| e.action_detail = format!("prefix {prefix}"));
    web.app.services.unblock_prefix(&prefix).await?;
    web.audit(|e| e.success = true);
    Ok(see_other("/ui/admin/gateways?ok=unblocked"))
}

fn gateway_form(
    b: &mut Out,
    s: &Session,
    module: &str,
    existing: Option<&Value>,
    f: &Params,
    errors: &Errors,
) {
    let providers = otpgate_gateways::providers_description();
    let modules: Vec<(String, String)> = providers
        .as_object()
        .map(|m| {
            m.keys()
                .map(|k| (k.clone(), short_module(k).to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let name = existing.map(|g| str_of(g, "name")).unwrap_or_default();
    if existing.is_none() {
        b.raw("<form class=\"filters\" method=\"get\" action=\"/ui/admin/gateways/new\">");
        Field::new("provider", "Provider")
            .value(module)
            .attrs("data-autosubmit")
            .select(&modules, b);
        b.raw(
            "<div class=\"actions js-hide\"><button type=\"submit\">Choose</button></div></form>",
        );
    }
    let action = if existing.is_some() {
        format!("/ui/admin/gateways/{}", U(name))
    } else {
        "/ui/admin/gateways/new".to_owned()
    };
    w!(
        b,
        "<form class=\"stack\" method=\"post\" action=\"{}\">",
        E(&action)
    );
    csrf_field(b, s);
    w!(
        b,
        "<input type=\"hidden\" name=\"module\" value=\"{}\">",
        E(module)
    );
    let fv = |k: &str, stored: &str| {
        f.get(k)
            .map(str::to_owned)
            .unwrap_or_else(|| stored.to_owned())
    };
    if existing.is_some() {
        w!(
            b,
            "<input type=\"hidden\" name=\"name\" value=\"{}\"><p>Provider: <strong>{}</strong></p>",
            E(name),
            E(short_module(module))
        );
    } else {
        Field::new("name", "Name")
            .value(&fv("name", ""))
            .hint("How tokens and policies refer to this gateway.")
            .attrs("required")
            .errors(errors)
            .input(b);
    }
    Field::new("description", "Description")
        .value(&fv(
            "description",
            existing
                .map(|g| str_of(g, "description"))
                .unwrap_or_default(),
        ))
        .errors(errors)
        .input(b);
    let params = providers
        .get(module)
        .and_then(|p| p.get("parameters"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    b.raw("<fieldset><legend>Provider settings</legend>");
    for (key, spec) in &params {
        let field = format!("option.{key}");
        let required = spec
            .get("required")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let secret = spec.get("secret").and_then(Value::as_bool).unwrap_or(false);
        let stored = existing
            .and_then(|g| g.get("options"))
            .and_then(|o| o.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let label = if required {
            format!("{key} (required)")
        } else {
            key.clone()
        };
        let hint = spec
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let values: Vec<String> = spec
            .get("values")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if secret {
            let hint = if existing.is_some() && !stored.is_empty() {
                format!("{hint} Stored encrypted; leave empty to keep it.")
            } else {
                hint.to_owned()
            };
            Field::new(&field, &label)
                .kind("password")
                .hint(&hint)
                .attrs("autocomplete=\"off\"")
                .errors(errors)
                .input(b);
        } else if !values.is_empty() {
            let mut o = vec![(String::new(), "(default)".to_owned())];
            o.extend(opts(values));
            Field::new(&field, &label)
                .value(&fv(&field, stored))
                .hint(hint)
                .errors(errors)
                .select(&o, b);
        } else {
            let attrs = if required { "required" } else { "" };
            Field::new(&field, &label)
                .value(&fv(&field, stored))
                .hint(hint)
                .attrs(attrs)
                .errors(errors)
                .input(b);
        }
    }
    b.raw("</fieldset>");
    let spec = providers.get(module);
    let allowed = |k: &str| {
        spec.and_then(|m| m.get(k))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    if allowed("options_allowed") {
        extra_rows(
            b,
            existing,
            f,
            "options",
            "option",
            "Request fields",
            "Sent with every message, e.g. text = {otp} and phone = {phone}.",
        );
    }
    if allowed("headers_allowed") {
        extra_rows(
            b,
            existing,
            f,
            "headers",
            "header",
            "HTTP headers",
            "e.g. Authorization. Values that look secret are stored encrypted and never shown again.",
        );
    }
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Save gateway</button> <a class=\"button\" href=\"/ui/admin/gateways\">Cancel</a></div></form>");
}

/// Rows of free name/value pairs (`{prefix}_key_N`, `{prefix}_value_N`): the stored ones
/// (secret values left empty: empty keeps them), then three empty rows.
#[allow(clippy::too_many_arguments)]
fn extra_rows(
    b: &mut Out,
    existing: Option<&Value>,
    f: &Params,
    stored_key: &str,
    prefix: &str,
    legend: &str,
    hint: &str,
) {
    let fixed = existing
        .and_then(|g| g.get("providermodule"))
        .and_then(Value::as_str)
        .and_then(otpgate_gateways::ProviderKind::parse);
    let secret_list = if prefix == "header" {
        "secret_headers"
    } else {
        "secret_options"
    };
    let mut rows: Vec<(String, String, bool)> = existing
        .and_then(|g| g.get(stored_key))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| prefix == "header" || !fixed.is_some_and(|p| p.is_parameter(k)))
                .map(|(k, v)| {
                    let secret = existing
                        .and_then(|g| g.get(secret_list))
                        .and_then(Value::as_array)
                        .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(k)));
                    let v = if secret {
                        String::new()
                    } else {
                        v.as_str().unwrap_or_default().to_owned()
                    };
                    (k.clone(), v, secret)
                })
                .collect()
        })
        .unwrap_or_default();
    // A refused form shows what was typed.
    let mut i = 0;
    while let Some(k) = f.get(&format!("{prefix}_key_{i}")) {
        let v = f.get(&format!("{prefix}_value_{i}")).unwrap_or_default();
        if i < rows.len() {
            if let Some(r) = rows.get_mut(i) {
                r.0 = k.to_owned();
                if !r.2 {
                    r.1 = v.to_owned();
                }
            }
        } else if !k.is_empty() {
            // A refused form does not show typed header values again (they may be secrets).
            let v = if prefix == "header" { "" } else { v };
            rows.push((k.to_owned(), v.to_owned(), false));
        }
        i += 1;
    }
    let n = rows.len();
    rows.extend((0..3).map(|_| (String::new(), String::new(), false)));
    w!(
        b,
        "<fieldset><legend>{}</legend><p class=\"hint\">{}</p>",
        E(legend),
        E(hint)
    );
    for (i, (k, v, secret)) in rows.iter().enumerate() {
        let kid = format!("{prefix}_key_{i}");
        let vid = format!("{prefix}_value_{i}");
        let what = if prefix == "header" {
            "Header"
        } else {
            "Field"
        };
        w!(b, "<div class=\"pair\">");
        Field::new(&kid, &format!("{what} {} name", i + 1))
            .value(k)
            .attrs("autocomplete=\"off\"")
            .input(b);
        let vlabel = format!("{what} {} value", i + 1);
        let vf = Field::new(&vid, &vlabel)
            .value(v)
            .attrs("autocomplete=\"off\"");
        if *secret && i < n {
            vf.kind("password")
                .hint("Stored encrypted; leave empty to keep it.")
                .input(b);
        } else {
            vf.input(b);
        }
        b.raw("</div>");
    }
    b.raw("</fieldset>");
}

/// `GET /ui/admin/gateways/new?provider=`.
pub async fn gateway_new(web: Web) -> WebResult {
    let s = web.admin("smsgateway_write").await?;
    let module = web
        .query
        .get_nonblank("provider")
        .unwrap_or(otpgate_gateways::ProviderKind::Http.module_name())
        .to_owned();
    let mut b = Out::new();
    gateway_form(&mut b, &s, &module, None, &Params::new(), &Vec::new());
    Ok(page(&web, &s, "New SMS gateway", &[], b))
}

async fn gateway_by_name(web: &Web, name: &str) -> Result<Value, WebError> {
    let list = web.app.services.list_gateways(None).await?;
    list.as_array()
        .and_then(|a| a.iter().find(|g| str_of(g, "name") == name).cloned())
        .ok_or_else(|| {
            WebError::Page(
                StatusCode::NOT_FOUND,
                format!("There is no gateway {name}."),
            )
        })
}

async fn gateway_page(
    web: &Web,
    s: &Session,
    name: &str,
    f: &Params,
    errors: &Errors,
) -> WebResult {
    let g = gateway_by_name(web, name).await?;
    let module = str_of(&g, "providermodule").to_owned();
    let mut b = Out::new();
    b.raw("<div class=\"grid\"><section class=\"card\" aria-labelledby=\"t-h\"><h2 id=\"t-h\">Send a test SMS</h2>");
    w!(
        b,
        "<form class=\"stack\" method=\"post\" action=\"/ui/admin/gateways/{}/test\">",
        U(name)
    );
    csrf_field(&mut b, s);
    Field::new("test_phone", "Phone number")
        .kind("tel")
        .value(f.get("test_phone").unwrap_or_default())
        .attrs("required")
        .errors(errors)
        .input(&mut b);
    b.raw("<div class=\"actions\"><button type=\"submit\">Send test SMS</button></div></form></section>");
    b.raw("<section class=\"card\" aria-labelledby=\"o-h\"><h2 id=\"o-h\">Use and remove</h2><div class=\"actions\">");
    post_button(
        &mut b,
        &format!("/ui/admin/gateways/{}/default", U(name)),
        &s.csrf,
        "Make it the default gateway",
        "",
        None,
    );
    post_button(
        &mut b,
        &format!("/ui/admin/gateways/{}/delete", U(name)),
        &s.csrf,
        "Delete gateway",
        "danger",
        Some(&format!("Delete the SMS gateway {name}?")),
    );
    b.raw("</div></section></div>");
    b.raw("<section class=\"card\" aria-labelledby=\"e-h\"><h2 id=\"e-h\">Settings</h2>");
    gateway_form(&mut b, s, &module, Some(&g), f, errors);
    b.raw("</section>");
    Ok(page(web, s, &format!("SMS gateway {name}"), errors, b))
}

/// `GET /ui/admin/gateways/{name}`.
pub async fn gateway_edit(Path(name): Path<String>, web: Web) -> WebResult {
    let s = web.admin("smsgateway_read").await?;
    gateway_page(&web, &s, &name, &Params::new(), &Vec::new()).await
}

/// `POST /ui/admin/gateways/new` and `/ui/admin/gateways/{name}`: saves through the same
/// service as `POST /smsgateway` (secrets left empty keep their stored value).
pub async fn gateway_create(web: Web) -> WebResult {
    gateway_save(web, None).await
}

/// `POST /ui/admin/gateways/{name}`.
pub async fn gateway_update(Path(name): Path<String>, web: Web) -> WebResult {
    gateway_save(web, Some(name)).await
}

async fn gateway_save(web: Web, existing: Option<String>) -> WebResult {
    let s = web.admin("smsgateway_write").await?;
    let mut p = Params::new();
    let gw_name = existing
        .clone()
        .unwrap_or_else(|| web.form.get("name").unwrap_or_default().trim().to_owned());
    p.insert("name", gw_name.clone());
    let module = web.form.get("module").unwrap_or_default().to_owned();
    p.insert("module", module.clone());
    p.insert(
        "description",
        web.form.get("description").unwrap_or_default(),
    );
    let old_options = match &existing {
        Some(n) => gateway_by_name(&web, n)
            .await?
            .get("options")
            .cloned()
            .filter(Value::is_object),
        None => None,
    };
    for (k, v) in web.form.iter() {
        if k.starts_with("option.") {
            if v.is_empty() {
                if existing.is_some() {
                    // Blank secret: keep what is stored; blank plain option: drop it.
                    let secret = otpgate_gateways::providers_description()
                        .get(&module)
                        .and_then(|m| m.get("parameters"))
                        .and_then(|ps| ps.get(k.trim_start_matches("option.")))
                        .and_then(|spec| spec.get("secret"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    // Kept only when something is stored to keep.
                    let stored = old_options
                        .as_ref()
                        .is_some_and(|o| o.get(k.trim_start_matches("option.")).is_some());
                    if secret && stored {
                        p.insert(k.clone(), otpgate_service::gateways::CENSORED);
                    }
                }
                continue;
            }
            p.insert(k.clone(), v.clone());
        }
    }
    let old = match &existing {
        Some(n) => Some(gateway_by_name(&web, n).await?),
        None => None,
    };
    for (prefix, stored, secrets) in [
        ("option", "options", "secret_options"),
        ("header", "headers", "secret_headers"),
    ] {
        let mut i = 0;
        while let Some(k) = web.form.get(&format!("{prefix}_key_{i}")) {
            let k = k.trim();
            let v = web
                .form
                .get(&format!("{prefix}_value_{i}"))
                .unwrap_or_default();
            i += 1;
            if k.is_empty() {
                continue;
            }
            let was_secret = old.as_ref().is_some_and(|g| {
                g.get(secrets)
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(k)))
                    && g.get(stored).and_then(|o| o.get(k)).is_some()
            });
            if v.is_empty() && was_secret {
                p.insert(format!("{prefix}.{k}"), otpgate_service::gateways::CENSORED);
            } else {
                p.insert(format!("{prefix}.{k}"), v);
            }
        }
    }
    if existing.is_none() && gateway_by_name(&web, &gw_name).await.is_ok() {
        // "New" never replaces (and so never drops the secrets of) an existing gateway.
        let errors = vec![(
            "name".to_owned(),
            service_message(&super::exists_already(&format!("a gateway {gw_name}"))),
        )];
        let mut b = Out::new();
        gateway_form(&mut b, &s, &module, None, &web.form, &errors);
        return Ok(page(&web, &s, "New SMS gateway", &errors, b));
    }
    web.audit(|e| e.action_detail = format!("gateway {gw_name}"));
    match web.app.services.save_gateway(&p).await {
        Ok(_) => {
            web.audit(|e| e.success = true);
            Ok(see_other(&format!(
                "/ui/admin/gateways/{}?ok=saved",
                U(&gw_name)
            )))
        }
        Err(e) => {
            // On the edit page the name is fixed: the message goes with the description.
            let field = if existing.is_some() {
                "description"
            } else {
                "name"
            };
            let errors = vec![(field.to_owned(), service_message(&e))];
            match existing {
                Some(n) => {
                    let form = web.form.clone();
                    gateway_page(&web, &s, &n, &form, &errors).await
                }
                None => {
                    let mut b = Out::new();
                    gateway_form(&mut b, &s, &module, None, &web.form, &errors);
                    Ok(page(&web, &s, "New SMS gateway", &errors, b))
                }
            }
        }
    }
}

/// `POST /ui/admin/gateways/{name}/{test|default|delete}`.
pub async fn gateway_action(Path((name, action)): Path<(String, String)>, web: Web) -> WebResult {
    let s = web.admin("smsgateway_write").await?;
    let services = &web.app.services;
    web.audit(|e| e.action_detail = format!("gateway {name}: {action}"));
    match action.as_str() {
        "test" => {
            let phone = web
                .form
                .get("test_phone")
                .unwrap_or_default()
                .trim()
                .to_owned();
            let cfg = services.system_config().await?;
            let r = services.send_test_sms(&cfg, &name, &phone).await;
            web.audit(|e| e.success = r.is_ok());
            match r {
                Ok(via) => {
                    web.audit(|e| e.info = format!("test SMS delivered by {via}"));
                    Ok(see_other(&format!(
                        "/ui/admin/gateways/{}?ok=test-sent",
                        U(&name)
                    )))
                }
                Err(e) => {
                    let m = service_message(&e);
                    web.audit(|a| a.info = m.clone());
                    let form = web.form.clone();
                    gateway_page(&web, &s, &name, &form, &vec![("test_phone".into(), m)]).await
                }
            }
        }
        "default" => {
            gateway_by_name(&web, &name).await?;
            services
                .set_config(&[("sms.identifier".to_owned(), name.clone())])
                .await?;
            web.audit(|e| e.success = true);
            Ok(see_other(&format!(
                "/ui/admin/gateways/{}?ok=default",
                U(&name)
            )))
        }
        "delete" => {
            services.delete_gateway(&name).await?;
            web.audit(|e| e.success = true);
            Ok(see_other("/ui/admin/gateways?ok=deleted"))
        }
        _ => Err(WebError::Page(
            StatusCode::NOT_FOUND,
            "No such action.".into(),
        )),
    }
}

// ---------------------------------------------------------------- SMS texts

/// What the segment counter says about a template.
fn count_summary(template: &str) -> (String, usize, Vec<String>) {
    match otpgate_core::sms_text::preview(template) {
        Err(e) => (e, 0, Vec::new()),
        Ok(text) => {
            let (enc, n) = sms_text::segments(&text);
            let (name, one) = match enc {
                Encoding::Gsm7 => ("GSM-7", 160),
                Encoding::Ucs2 => ("UCS-2", 70),
            };
            let len = sms_text::length(&text, enc);
            let sms = if n == 1 { "1 SMS" } else { "SMS" };
            let summary = if n == 1 {
                format!("{name} · {sms} · {len} of {one} characters")
            } else {
                format!("{name} · {n} {sms} · {len} characters (one SMS holds {one})")
            };
            (summary, n, otpgate_core::sms_text::warnings(template))
        }
    }
}

const TEXT_POLICY: &str = "sms-text";

/// `GET /ui/admin/texts`.
pub async fn texts(web: Web) -> WebResult {
    let s = web.admin("policyread").await?;
    texts_page(&web, &s, None, &Vec::new()).await
}

async fn texts_page(web: &Web, s: &Session, text: Option<&str>, errors: &Errors) -> WebResult {
    let services = &web.app.services;
    let policies = services.list_policies(None, Some("authentication")).await?;
    let mut current = String::new();
    let mut b = Out::new();
    b.raw("<p>The SMS text is a policy action (<code>smstext</code>, scope authentication). Tags: <code>{otp}</code>, <code>{serial}</code>, <code>{user}</code>, <code>{givenname}</code>, <code>{surname}</code>, <code>{time}</code>, <code>{date}</code>, <code>{challenge}</code>; the counter assumes an 8-digit OTP and ordinary values.</p>");
    let list = policies.as_array().cloned().unwrap_or_default();
    let with_text: Vec<&Value> = list
        .iter()
        .filter(|p| p.get("action").and_then(|a| a.get("smstext")).is_some())
        .collect();
    if !with_text.is_empty() {
        b.raw("<div class=\"table-wrap\"><table class=\"data\"><caption>Policies that set an SMS text</caption><thead><tr><th scope=\"col\">Policy</th><th scope=\"col\">Applies to</th><th scope=\"col\">Text</th><th scope=\"col\">Size</th></tr></thead><tbody>");
        for p in with_text {
            let raw = p
                .get("action")
                .and_then(|a| a.get("smstext"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let t = otpgate_core::template::unescape_policy_text(raw);
            if str_of(p, "name") == TEXT_POLICY {
                current = t.clone();
            }
            let realms = p
                .get("realm")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "all realms".into());
            w!(
                b,
                "<tr><td data-label=\"Policy\">{}</td><td data-label=\"Applies to\">{}</td><td data-label=\"Text\"><code>{}</code></td><td data-label=\"Size\">{}</td></tr>",
                E(str_of(p, "name")),
                E(&realms),
                E(&t),
                E(&count_summary(&t).0)
            );
        }
        b.raw("</tbody></table></div>");
    }
    let value = text.map(str::to_owned).unwrap_or_else(|| {
        if current.is_empty() {
            "Your login code is {otp}".to_owned()
        } else {
            current.clone()
        }
    });
    let (summary, n, warnings) = count_summary(&value);
    w!(
        b,
        "<section class=\"card\" aria-labelledby=\"ed-h\"><h2 id=\"ed-h\">The SMS text of every realm</h2><p>Saved as policy <code>{}</code>.</p><form class=\"stack\" method=\"post\" action=\"/ui/admin/texts\">",
        E(TEXT_POLICY)
    );
    csrf_field(&mut b, s);
    Field::new("smstext", "SMS text")
        .value(&value)
        .attrs(
            "required data-count-url=\"/ui/admin/texts/count\" data-count-output=\"smstext-count\"",
        )
        .errors(errors)
        .textarea(&mut b);
    let many = if n > 1 { " many" } else { "" };
    w!(
        b,
        "<p><output id=\"smstext-count\" class=\"segments{many}\" for=\"smstext\" aria-live=\"polite\">{}{}</output></p>",
        E(&summary),
        E(&if warnings.is_empty() {
            String::new()
        } else {
            format!(" — {}", warnings.join(" "))
        })
    );
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\" name=\"do\" value=\"save\">Save</button> <button type=\"submit\" name=\"do\" value=\"count\">Count without saving</button></div></form></section>");
    Ok(page(web, s, "SMS texts", errors, b))
}

/// `POST /ui/admin/texts`: saves the text policy (or only counts, without JavaScript).
pub async fn text_save(web: Web) -> WebResult {
    let text = web.form.get("smstext").unwrap_or_default().to_owned();
    if web.form.get("do") == Some("count") {
        let s = web.admin("policyread").await?;
        return texts_page(&web, &s, Some(&text), &Vec::new()).await;
    }
    let s = web.admin("policywrite").await?;
    if let Err(e) = otpgate_core::sms_text::preview(&text) {
        return texts_page(&web, &s, Some(&text), &vec![("smstext".into(), e)]).await;
    }
    let mut p = Params::new();
    p.insert("scope", "authentication");
    p.insert("action", format!("smstext='{}'", text.replace(',', "\\,")));
    p.insert("active", "true");
    web.audit(|e| e.action_detail = format!("policy {TEXT_POLICY}"));
    match web.app.services.set_policy(TEXT_POLICY, &p).await {
        Ok(_) => {
            web.audit(|e| e.success = true);
            Ok(see_other("/ui/admin/texts?ok=saved"))
        }
        Err(e) => {
            texts_page(
                &web,
                &s,
                Some(&text),
                &vec![("smstext".into(), service_message(&e))],
            )
            .await
        }
    }
}

/// `POST /ui/admin/texts/count`: the live counter (JSON for the script).
pub async fn text_count(web: Web) -> WebResult {
    web.admin("policyread").await?;
    let (summary, segments, warnings) = count_summary(web.form.get("text").unwrap_or_default());
    let mut r = Json(json!({"summary": summary, "segments": segments, "warnings": warnings}))
        .into_response();
    super::page_headers(&mut r);
    Ok(r)
}

// ---------------------------------------------------------------- audit

fn audit_table(b: &mut Out, v: &Value, caption: &str) {
    let rows = v
        .get("auditdata")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if rows.is_empty() {
        b.raw("<p class=\"empty\">No entries.</p>");
        return;
    }
    w!(
        b,
        "<div class=\"table-wrap\"><table class=\"data\"><caption>{}</caption><thead><tr><th scope=\"col\">Time (UTC)</th><th scope=\"col\">Action</th><th scope=\"col\">Result</th><th scope=\"col\">User</th><th scope=\"col\">Serial</th><th scope=\"col\">Client</th><th scope=\"col\">Details</th></tr></thead><tbody>",
        E(caption)
    );
    for r in &rows {
        let ok = r.get("success").and_then(Value::as_i64) == Some(1);
        let auth = str_of(r, "authentication");
        let label = if auth.is_empty() {
            if ok { "success" } else { "failed" }
        } else {
            auth
        };
        let class = if ok {
            "ok"
        } else if auth == "CHALLENGE" {
            "warn"
        } else {
            "bad"
        };
        let user = match (str_of(r, "user"), str_of(r, "realm")) {
            ("", _) => str_of(r, "administrator").to_owned(),
            (u, "") => u.to_owned(),
            (u, realm) => format!("{u}@{realm}"),
        };
        let details = [str_of(r, "info"), str_of(r, "action_detail")]
            .into_iter()
            .filter(|x| !x.is_empty())
            .collect::<Vec<_>>()
            .join(" · ");
        let time = str_of(r, "startdate").replace('T', " ");
        w!(
            b,
            "<tr><td data-label=\"Time\">{}</td><td data-label=\"Action\"><code>{}</code></td><td data-label=\"Result\"><span class=\"badge {class}\">{}</span></td><td data-label=\"User\">{}</td><td data-label=\"Serial\">{}</td><td data-label=\"Client\">{}</td><td data-label=\"Details\">{}</td></tr>",
            E(time.get(..19).unwrap_or(&time)),
            E(str_of(r, "action")),
            E(label),
            E(&user),
            E(str_of(r, "serial")),
            E(str_of(r, "client")),
            E(&details)
        );
    }
    b.raw("</tbody></table></div>");
}

/// `GET /ui/admin/audit?user=&serial=&action=&authentication=&success=&page=`.
pub async fn audit(web: Web) -> WebResult {
    let s = web.admin("auditlog").await?;
    let q = &web.query;
    let g = |k: &str| q.get(k).unwrap_or_default().trim().to_owned();
    let page_no = q
        .get("page")
        .and_then(|p| p.parse::<i64>().ok())
        .unwrap_or(1)
        .max(1);
    let mut b = Out::new();
    b.raw("<form class=\"filters\" method=\"get\" action=\"/ui/admin/audit\" role=\"search\">");
    Field::new("user", "User")
        .kind("search")
        .value(&g("user"))
        .input(&mut b);
    Field::new("serial", "Serial")
        .kind("search")
        .value(&g("serial"))
        .input(&mut b);
    Field::new("action", "Action")
        .kind("search")
        .value(&g("action"))
        .hint("* matches anything, e.g. */validate/*")
        .input(&mut b);
    let auth_opts: Vec<(String, String)> = [
        ("", "Any"),
        ("ACCEPT", "ACCEPT"),
        ("REJECT", "REJECT"),
        ("CHALLENGE", "CHALLENGE"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    Field::new("authentication", "Authentication")
        .value(&g("authentication"))
        .select(&auth_opts, &mut b);
    let ok_opts: Vec<(String, String)> = [("", "Any"), ("1", "Succeeded"), ("0", "Failed")]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    Field::new("success", "Result")
        .value(&g("success"))
        .select(&ok_opts, &mut b);
    b.raw("<div class=\"actions\"><button type=\"submit\">Filter</button> <a class=\"button\" href=\"/ui/admin/audit\">Clear</a></div></form>");
    let mut p = Params::new();
    for k in ["user", "serial", "action", "authentication", "success"] {
        let v = g(k);
        if !v.is_empty() {
            let v = if k == "user" || k == "serial" || v.contains('*') || k != "action" {
                v
            } else {
                format!("*{v}*")
            };
            p.insert(k, v);
        }
    }
    p.insert("page", page_no.to_string());
    p.insert("page_size", "25");
    let v = web.app.services.list_audit(&p).await?;
    let count = v.get("count").and_then(Value::as_i64).unwrap_or(0);
    audit_table(
        &mut b,
        &v,
        &format!("Audit entries, newest first ({count})"),
    );
    pager(&mut b, "/ui/admin/audit", q, page_no, count, 25);
    Ok(page(&web, &s, "Audit log", &[], b))
}

/// `POST /ui/admin/users/{resolver}/{name}/delete?realm=`: deletes an internal user.
pub async fn user_delete(
    Path((resolver, name, action)): Path<(String, String, String)>,
    web: Web,
) -> WebResult {
    if action != "delete" {
        return Err(WebError::Page(
            StatusCode::NOT_FOUND,
            "No such action.".into(),
        ));
    }
    web.admin("deleteuser").await?;
    web.audit(|e| {
        e.user = name.clone();
        e.resolver = resolver.clone();
    });
    web.app.services.delete_user(&resolver, &name).await?;
    web.audit(|e| e.success = true);
    let realm = web.query.get("realm").unwrap_or_default();
    Ok(see_other(&format!(
        "/ui/admin/users?realm={}&ok=deleted",
        U(realm)
    )))
}

/// `POST /ui/admin/realms/{name}/{default|delete}`.
pub async fn realm_action(Path((name, action)): Path<(String, String)>, web: Web) -> WebResult {
    let services = &web.app.services;
    web.audit(|e| e.realm = name.clone());
    match action.as_str() {
        "default" => {
            web.admin("realmwrite").await?;
            services.set_default_realm(&name).await?;
        }
        "delete" => {
            web.admin("realmdelete").await?;
            services.delete_realm(&name).await?;
        }
        _ => {
            return Err(WebError::Page(
                StatusCode::NOT_FOUND,
                "No such action.".into(),
            ));
        }
    }
    web.audit(|e| e.success = true);
    let done = if action == "delete" {
        "deleted"
    } else {
        "realm"
    };
    Ok(see_other(&format!("/ui/admin/realms?ok={done}")))
}
