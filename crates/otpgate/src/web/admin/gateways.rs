//! SMS gateways: the list with the blocked prefixes, a gateway's form (saved through the
//! same call as `POST /smsgateway`; secrets left empty keep their stored value), its test
//! SMS, making it the default, deleting it; blocking and unblocking prefixes.

use super::super::html::{Out, U};
use super::super::page::{see_other, service_message};
use super::super::request::{Web, WebError, WebResult};
use super::super::session::Session;
use super::super::view::gateways as view;
use super::{Errors, Resource, Saved, no_such_action, page};
use crate::params::Params;
use axum::extract::Path;
use otpgate_gateways::ProviderKind;
use otpgate_service::gateways::{CENSORED, GatewayInput, GatewayView};

/// `GET /ui/admin/gateways`.
pub async fn list(web: Web) -> WebResult {
    let s = web.admin("smsgateway_read").await?;
    let services = &web.app.services;
    let gateways = services.list_gateways(None).await?;
    let default = services
        .config_map()
        .await?
        .remove("sms.identifier")
        .unwrap_or_default();
    let health = services.breakers().views(services.clock().now_ms());
    let blocks = services.list_prefix_blocks().await?;
    let mut b = Out::new();
    view::list(&mut b, &gateways, &default, &health);
    view::blocks(&mut b, &s, &blocks, &[], &Params::new());
    Ok(page(&web, &s, "SMS gateways", &[], b))
}

/// SMS gateways as a [`Resource`] of the console.
pub struct Gateways;

impl Resource for Gateways {
    const BASE: &'static str = "/ui/admin/gateways";
    const NOUN: &'static str = "SMS gateway";
    const NEW_TITLE: &'static str = "New SMS gateway";
    const A_NOUN: &'static str = "a gateway";
    const KEY_FIELD: &'static str = "name";
    const READ: &'static str = "smsgateway_read";
    const WRITE: &'static str = "smsgateway_write";
    type Item = GatewayView;

    async fn load(web: &Web, key: &str) -> Result<Option<GatewayView>, WebError> {
        Ok(web
            .app
            .services
            .list_gateways(None)
            .await?
            .into_iter()
            .find(|g| g.name == key))
    }

    fn not_found(key: &str) -> String {
        format!("There is no gateway {key}.")
    }

    async fn body(
        web: &Web,
        s: &Session,
        _key: Option<&str>,
        item: Option<&GatewayView>,
        form: &Params,
        errors: &Errors,
    ) -> Result<Out, WebError> {
        let mut b = Out::new();
        match item {
            Some(g) => view::page(&mut b, s, g, is_default(web, g).await?, form, errors),
            // A new gateway starts with the question what sends the SMS.
            None if form.get_nonblank("module").is_none()
                && web.query.get_nonblank("provider").is_none()
                && web.query.get_nonblank("preset").is_none() =>
            {
                view::chooser(&mut b);
            }
            None => {
                let preset = web
                    .query
                    .get_nonblank("preset")
                    .and_then(otpgate_gateways::presets::preset);
                let module = form
                    .get_nonblank("module")
                    .or(web.query.get_nonblank("provider"))
                    .or(preset.map(|p| p.kind.module_name()))
                    .unwrap_or(ProviderKind::Http.module_name())
                    .to_owned();
                // A preset of another provider than the chosen one is not applied.
                let preset = preset.filter(|p| ProviderKind::parse(&module) == Some(p.kind));
                view::form(&mut b, s, &module, None, preset, form, errors);
            }
        }
        Ok(b)
    }

    async fn save(web: &Web, s: &Session, key: Option<&str>) -> Result<Saved, WebError> {
        let old = match key {
            Some(k) => Self::load(web, k).await?,
            None => None,
        };
        let input = gateway_input(&web.form, key, old.as_ref());
        let r = web
            .run(web.admin_call(s), Some(Self::WRITE), move |svc, cx| {
                Box::pin(async move { svc.save_gateway(&input, cx).await })
            })
            .await;
        let name = key.map_or_else(|| Self::new_key(web), str::to_owned);
        // A new gateway becomes the default while there is none that works (none set, or a
        // deleted one named; as the first realm does): until then, tokens without a gateway
        // of their own cannot send.
        let settings = web.app.services.settings().await?;
        let no_default = settings
            .config
            .sms_identifier
            .as_deref()
            .is_none_or(|d| d.is_empty() || !settings.gateways.contains_key(d) || d == name);
        if key.is_none() && r.is_ok() && no_default {
            let gw = name.clone();
            let made = web
                .run(web.admin_call(s), Some(Self::WRITE), move |svc, cx| {
                    Box::pin(async move { svc.make_default_gateway(&gw, cx).await })
                })
                .await;
            // Saved either way: a default that could not be set is the checklist's to say.
            return Ok(match made {
                Ok(_) => Saved::KeyWith(name, "saved-default"),
                Err(_) => Saved::Key(name),
            });
        }
        Ok(match r {
            Ok(_) => Saved::Key(name),
            // The message goes with the field it names; else with the name (on the edit page,
            // where the name is fixed, with the description).
            Err(e) => {
                let fallback = if key.is_some() { "description" } else { "name" };
                let msg = super::super::page::service_message(&e);
                let field = e
                    .field()
                    .map(str::to_owned)
                    .or_else(|| {
                        field_of_error(
                            ProviderKind::parse(web.form.get("module").unwrap_or_default()),
                            &msg,
                        )
                    })
                    .unwrap_or_else(|| fallback.to_owned());
                Saved::refused(&field, &e)
            }
        })
    }
}

/// Whether `g` is the default gateway.
async fn is_default(web: &Web, g: &GatewayView) -> Result<bool, WebError> {
    let settings = web.app.services.settings().await?;
    Ok(settings.config.sms_identifier.as_deref() == Some(g.name.as_str()))
}

/// The form field a refusal of a gateway names: a provider parameter named in the message
/// (as a whole word, the longest that fits), or the first request field when the text or the
/// number is missing from them.
fn field_of_error(kind: Option<ProviderKind>, message: &str) -> Option<String> {
    if message.contains("{otp}") || message.contains("{phone}") {
        return Some("option_key_0".into());
    }
    let whole_word = |name: &str| {
        message.match_indices(name).any(|(i, _)| {
            let before = message[..i].chars().next_back();
            let after = message[i + name.len()..].chars().next();
            let part = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            !part(before) && !part(after)
        })
    };
    let mut names: Vec<&str> = kind?.parameters().map(|p| p.name).collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    names
        .into_iter()
        .find(|n| whole_word(n))
        .map(|n| format!("option.{n}"))
}

/// The posted gateway form as the service's input: parameters typed empty keep a stored
/// secret (or are dropped), free request fields and headers from their rows.
fn gateway_input(f: &Params, key: Option<&str>, old: Option<&GatewayView>) -> GatewayInput {
    let module = f.get("module").unwrap_or_default().to_owned();
    let kind = ProviderKind::parse(&module);
    let mut input = GatewayInput {
        name: Some(key.map_or_else(
            || f.get("name").unwrap_or_default().trim().to_owned(),
            str::to_owned,
        )),
        module: Some(module),
        description: Some(f.get("description").unwrap_or_default().to_owned()),
        ..Default::default()
    };
    for (k, v) in f.iter() {
        let Some(option) = k.strip_prefix("option.") else {
            continue;
        };
        if !v.is_empty() {
            input.options.insert(option.to_owned(), v.clone());
        } else if key.is_some()
            // Blank secret: keep what is stored (when something is); blank plain option: drop it.
            && kind.is_some_and(|kind| kind.is_secret(option))
            && old.is_some_and(|o| o.options.contains_key(option))
        {
            input.options.insert(option.to_owned(), CENSORED.to_owned());
        }
    }
    for extra in [view::Extra::Options, view::Extra::Headers] {
        let prefix = extra.prefix();
        let mut i = 0;
        while let Some(k) = f.get(&format!("{prefix}_key_{i}")) {
            let k = k.trim();
            let v = f.get(&format!("{prefix}_value_{i}")).unwrap_or_default();
            i += 1;
            if k.is_empty() {
                continue;
            }
            let (map, stored, secrets) = match (extra, old) {
                (view::Extra::Options, o) => (
                    &mut input.options,
                    o.map(|o| &o.options),
                    o.map(|o| &o.secret_options),
                ),
                (view::Extra::Headers, o) => (
                    &mut input.headers,
                    o.map(|o| &o.headers),
                    o.map(|o| &o.secret_headers),
                ),
            };
            let was_secret = secrets.is_some_and(|s| s.iter().any(|x| x == k))
                && stored.is_some_and(|m| m.contains_key(k));
            let value = if v.is_empty() && was_secret {
                CENSORED
            } else {
                v
            };
            map.insert(k.to_owned(), value.to_owned());
        }
    }
    input
}

/// `POST /ui/admin/gateways/{name}/{test|default|delete}`.
pub async fn action(Path((name, action)): Path<(String, String)>, web: Web) -> WebResult {
    let s = web.admin("smsgateway_write").await?;
    match action.as_str() {
        "test" => {
            let what = format!("gateway {name}: test");
            let phone = web
                .form
                .get("test_phone")
                .unwrap_or_default()
                .trim()
                .to_owned();
            let gw = name.clone();
            let r = web
                .run(
                    web.admin_call(&s),
                    Some("smsgateway_write"),
                    move |svc, cx| {
                        Box::pin(async move {
                            cx.audit.action_detail = what;
                            let via = svc.send_test_sms(&gw, &phone).await?;
                            cx.audit.info = format!("test SMS delivered by {via}");
                            Ok(via)
                        })
                    },
                )
                .await;
            match r {
                Ok(_) => Ok(see_other(&format!(
                    "/ui/admin/gateways/{}?ok=test-sent",
                    U(&name)
                ))),
                Err(e) => {
                    let errors = vec![("test_phone".into(), service_message(&e))];
                    let g = Gateways::load(&web, &name).await?.ok_or_else(|| {
                        WebError::Page(
                            axum::http::StatusCode::NOT_FOUND,
                            Gateways::not_found(&name),
                        )
                    })?;
                    let mut b = Out::new();
                    let default = is_default(&web, &g).await?;
                    view::page(&mut b, &s, &g, default, &web.form, &errors);
                    Ok(page(&web, &s, &Gateways::title(&name, &g), &errors, b))
                }
            }
        }
        "default" => {
            let gw = name.clone();
            web.run(
                web.admin_call(&s),
                Some("smsgateway_write"),
                move |svc, cx| Box::pin(async move { svc.make_default_gateway(&gw, cx).await }),
            )
            .await?;
            Ok(see_other(&format!(
                "/ui/admin/gateways/{}?ok=default",
                U(&name)
            )))
        }
        "delete" => {
            web.run(
                web.admin_call(&s),
                Some("smsgateway_write"),
                move |svc, cx| Box::pin(async move { svc.delete_gateway(&name, cx).await }),
            )
            .await?;
            Ok(see_other("/ui/admin/gateways?ok=deleted"))
        }
        _ => Err(no_such_action()),
    }
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
    let r = web
        .run(
            web.admin_call(&s),
            Some("smsgateway_write"),
            move |svc, cx| Box::pin(async move { svc.block_prefix(&prefix, &reason, cx).await }),
        )
        .await;
    match r {
        Ok(_) => Ok(see_other("/ui/admin/gateways?ok=blocked")),
        Err(e) => {
            let errors = vec![("prefix".to_owned(), service_message(&e))];
            let mut b = Out::new();
            let blocks = web.app.services.list_prefix_blocks().await?;
            view::blocks(&mut b, &s, &blocks, &errors, &web.form);
            Ok(page(&web, &s, "SMS gateways", &errors, b))
        }
    }
}

/// `POST /ui/admin/blocks/{prefix}/delete`: lifts a block.
pub async fn unblock(Path(prefix): Path<String>, web: Web) -> WebResult {
    let s = web.admin("smsgateway_write").await?;
    web.run(
        web.admin_call(&s),
        Some("smsgateway_write"),
        move |svc, cx| Box::pin(async move { svc.unblock_prefix(&prefix, cx).await }),
    )
    .await?;
    Ok(see_other("/ui/admin/gateways?ok=unblocked"))
}
