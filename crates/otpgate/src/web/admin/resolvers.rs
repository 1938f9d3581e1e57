//! User stores (passwd files, LDAP directories): a store's form, "Test connection", deleting
//! it. Internal stores are created on the realms page.

use super::super::html::{E, Out, U, w};
use super::super::page::see_other;
use super::super::request::{Web, WebError, WebResult};
use super::super::session::Session;
use super::super::view::resolvers::{self as view, RESOLVER_TYPES};
use super::{Errors, Resource, Saved, actions_bar, no_such_action};
use crate::params::Params;
use axum::extract::Path;
use otpgate_service::directory::ResolverTest;
use otpgate_service::gateways::CENSORED;
use otpgate_service::realms::{ResolverInput, ResolverView};
use std::collections::BTreeMap;

/// User stores as a [`Resource`] of the console.
pub struct Resolvers;

impl Resource for Resolvers {
    const BASE: &'static str = "/ui/admin/resolvers";
    const NOUN: &'static str = "User store";
    const NEW_TITLE: &'static str = "New user store";
    const A_NOUN: &'static str = "a user store";
    const KEY_FIELD: &'static str = "name";
    const READ: &'static str = "resolverread";
    const WRITE: &'static str = "resolverwrite";
    type Item = ResolverView;

    async fn load(web: &Web, key: &str) -> Result<Option<ResolverView>, WebError> {
        Ok(web
            .app
            .services
            .list_resolvers(Some(key), None)
            .await?
            .into_iter()
            .next())
    }

    fn not_found(key: &str) -> String {
        format!("There is no user store {key}.")
    }

    fn saves(web: &Web) -> bool {
        web.form.get("do") != Some("test")
    }

    async fn body(
        web: &Web,
        s: &Session,
        key: Option<&str>,
        item: Option<&ResolverView>,
        form: &Params,
        errors: &Errors,
    ) -> Result<Out, WebError> {
        let mut b = Out::new();
        match (key, item) {
            (Some(k), Some(r)) => {
                w!(
                    b,
                    "<p>Kind: <strong>{}</strong>. Its users are listed on the Users page under the realms that contain it.</p>",
                    E(view::kind_label(&r.rtype))
                );
                view::form(&mut b, s, &r.rtype, Some(r), form, errors);
                actions_bar(
                    &mut b,
                    s,
                    &format!("{}/{}", Self::BASE, U(k)),
                    None,
                    &format!("the user store {k}"),
                );
            }
            _ => {
                let rtype = form
                    .get_nonblank("type")
                    .or(web.query.get_nonblank("type"))
                    .filter(|t| RESOLVER_TYPES.iter().any(|(k, _)| k == t))
                    .unwrap_or("internalresolver");
                view::form(&mut b, s, rtype, None, form, errors);
            }
        }
        Ok(b)
    }

    async fn save(web: &Web, s: &Session, key: Option<&str>) -> Result<Saved, WebError> {
        let name = key.map_or_else(|| Self::new_key(web), str::to_owned);
        let options = options(&web.form, key.is_some());
        let rtype = web.form.get("type").unwrap_or_default().to_owned();
        let passwd = rtype == "passwdresolver";
        if web.form.get("do") == Some("test") {
            let input = ResolverTest {
                rtype: Some(rtype),
                resolver: key.map(str::to_owned),
                options,
            };
            let what = name.clone();
            let r = web
                .run(web.admin_call(s), Some(Self::WRITE), move |svc, cx| {
                    Box::pin(async move {
                        cx.audit.resolver = what;
                        cx.audit.action_detail = "test connection".into();
                        Ok(ConnectionTest(svc.test_resolver(&input).await?))
                    })
                })
                .await;
            return Ok(match r {
                Ok(ConnectionTest((true, d))) => Saved::Again {
                    note: Some(format!("The connection works: {d}")),
                    errors: Vec::new(),
                },
                Ok(ConnectionTest((false, d))) => Saved::Again {
                    note: None,
                    errors: vec![("LDAPURI".into(), d)],
                },
                Err(e) => Saved::refused("LDAPURI", &e),
            });
        }
        let input = ResolverInput {
            rtype: Some(rtype),
            options,
        };
        let n = name.clone();
        let r = web
            .run(web.admin_call(s), Some(Self::WRITE), move |svc, cx| {
                Box::pin(async move { svc.save_resolver(&n, &input, cx).await })
            })
            .await;
        Ok(match r {
            Ok(_) => Saved::Key(name),
            Err(e) => {
                let field = if passwd {
                    "fileName"
                } else if key.is_none() {
                    "name"
                } else {
                    "LDAPURI"
                };
                Saved::refused(field, &e)
            }
        })
    }
}

/// The outcome of "Test connection": it worked, and what was found or went wrong.
struct ConnectionTest((bool, String));

impl otpgate_service::call::Outcome for ConnectionTest {
    fn success(&self) -> bool {
        self.0.0
    }
}

/// The store's parameters from the form: a passwd file's name, or the directory's fields
/// (editing: an emptied field is cleared, a password left empty is kept).
fn options(f: &Params, editing: bool) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    match f.get("type").unwrap_or_default() {
        "passwdresolver" => {
            p.insert(
                "fileName".to_owned(),
                f.get("fileName").unwrap_or_default().trim().to_owned(),
            );
        }
        "ldapresolver" => {
            for (key, secret) in view::ldap_fields() {
                let v = f.get(key).unwrap_or_default().trim();
                if secret && v.is_empty() {
                    if editing {
                        p.insert(key.to_owned(), CENSORED.to_owned());
                    }
                } else if !v.is_empty() || editing {
                    p.insert(key.to_owned(), v.to_owned());
                }
            }
        }
        _ => {}
    }
    p
}

/// `POST /ui/admin/resolvers/{name}/delete`.
pub async fn action(Path((name, action)): Path<(String, String)>, web: Web) -> WebResult {
    if action != "delete" {
        return Err(no_such_action());
    }
    let s = web.admin("resolverdelete").await?;
    web.run(
        web.admin_call(&s),
        Some("resolverdelete"),
        move |svc, cx| Box::pin(async move { svc.delete_resolver(&name, cx).await }),
    )
    .await?;
    Ok(see_other("/ui/admin/realms?ok=deleted"))
}
