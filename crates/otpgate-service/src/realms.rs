//! User stores (resolvers) and realms as admins define them: saving a store with its
//! parameters (an LDAP bind password sealed, a passwd file checked), listing them censored,
//! and the realms that group stores in order of priority.

use crate::call::Scope;
use crate::users::{RESOLVER_TYPES, checked_passwd_path};
use crate::{Result, ServiceError, Services};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// `POST /resolver/<name>`'s fields: the type and privacyIDEA's free-form resolver
/// parameters (`fileName`, `LDAPURI`, `BINDPW`, …).
#[derive(Debug, Clone, Default)]
pub struct ResolverInput {
    /// `type`.
    pub rtype: Option<String>,
    /// The parameters.
    pub options: BTreeMap<String, String>,
}

/// A resolver as admins see it: its parameters, the password censored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverView {
    /// Name.
    pub name: String,
    /// Type.
    pub rtype: String,
    /// Parameters (privacyIDEA's free-form map).
    pub data: BTreeMap<String, String>,
    /// The keys shown censored when set.
    pub censor_keys: Vec<&'static str>,
}

/// A realm with its resolvers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealmView {
    /// Row id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// The default realm.
    pub default: bool,
    /// Its resolvers: name, priority, type.
    pub resolvers: Vec<(String, Option<i64>, String)>,
}

/// What `POST /realm/<name>` did with the resolvers it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealmSaved {
    /// Resolvers now in the realm.
    pub added: Vec<String>,
    /// Resolvers that do not exist.
    pub failed: Vec<String>,
}

impl crate::call::Outcome for RealmSaved {}

/// A stored resolver configuration as string key/values.
fn config_map(config: &str) -> BTreeMap<String, String> {
    match serde_json::from_str::<Value>(config) {
        Ok(Value::Object(m)) => otpgate_core::params::json_texts(m),
        _ => BTreeMap::new(),
    }
}

impl Services {
    /// `POST /resolver/<name>`.
    pub async fn save_resolver(
        &self,
        name: &str,
        input: &ResolverInput,
        cx: &mut Scope,
    ) -> Result<i64> {
        cx.audit.resolver = name.to_owned();
        if !crate::valid_name(name) {
            return Err(ServiceError::Parameter(format!(
                "Invalid resolver name {name:?}."
            )));
        }
        let rtype = input
            .rtype
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ServiceError::missing("type"))?;
        let old = self.store().resolver_get(name).await?;
        if let Some(old) = &old
            && old.rtype != rtype
        {
            return Err(ServiceError::Parameter(format!(
                "The resolver {name} already exists with type {}.",
                old.rtype
            )));
        }
        let mut secret = String::new();
        let config = match rtype {
            "passwdresolver" => {
                let file = input
                    .options
                    .get("fileName")
                    .map(|f| f.trim())
                    .filter(|f| !f.is_empty())
                    .ok_or_else(|| ServiceError::missing("fileName"))?;
                checked_passwd_path(Path::new(file), self.data_dir())
                    .map_err(ServiceError::Parameter)?;
                json!({"fileName": file})
            }
            "internalresolver" => json!({}),
            "ldapresolver" => {
                let (config, sealed) = self
                    .ldap_resolver_config(name, &input.options, old.as_ref())
                    .await?;
                secret = sealed;
                config
            }
            other => {
                return Err(ServiceError::Parameter(format!(
                    "Unknown resolver type {other}. Supported: {}.",
                    RESOLVER_TYPES.join(", ")
                )));
            }
        };
        Ok(self
            .store()
            .resolver_upsert(name, rtype, &config.to_string(), &secret)
            .await?)
    }

    /// `GET /resolver/[<name>]`: resolvers, optionally by name or type.
    pub async fn list_resolvers(
        &self,
        name: Option<&str>,
        rtype: Option<&str>,
    ) -> Result<Vec<ResolverView>> {
        let mut out = Vec::new();
        for r in self.store().resolver_list().await? {
            if name.is_some_and(|n| n != r.name) || rtype.is_some_and(|t| t != r.rtype) {
                continue;
            }
            let (data, censor_keys) = if r.rtype == "ldapresolver" {
                Self::ldap_resolver_data(&r)
            } else {
                (config_map(&r.config), vec![])
            };
            out.push(ResolverView {
                name: r.name,
                rtype: r.rtype,
                data,
                censor_keys,
            });
        }
        Ok(out)
    }

    /// `DELETE /resolver/<name>`: the id, or -1 when unknown (as privacyIDEA).
    pub async fn delete_resolver(&self, name: &str, cx: &mut Scope) -> Result<i64> {
        cx.audit.resolver = name.to_owned();
        Ok(self.store().resolver_delete(name).await?.unwrap_or(-1))
    }

    /// `POST /realm/<name>`: the realm's resolvers (name and priority), replacing the old.
    pub async fn save_realm(
        &self,
        name: &str,
        resolvers: &[(String, Option<i64>)],
        cx: &mut Scope,
    ) -> Result<RealmSaved> {
        cx.audit.realm = name.to_owned();
        if !crate::valid_name(name) {
            return Err(ServiceError::Parameter(format!(
                "Invalid realm name {name:?}."
            )));
        }
        let mut saved = RealmSaved {
            added: Vec::new(),
            failed: Vec::new(),
        };
        let mut ids = Vec::new();
        for (r, prio) in resolvers {
            if saved.added.contains(r) || saved.failed.contains(r) {
                continue;
            }
            match self.store().resolver_get(r).await? {
                Some(res) => {
                    ids.push((res.id, *prio));
                    saved.added.push(r.clone());
                }
                None => saved.failed.push(r.clone()),
            }
        }
        self.store().realm_set(&name.to_lowercase(), &ids).await?;
        Ok(saved)
    }

    /// `GET /realm/` (or only the default realm).
    pub async fn list_realms(&self, only_default: bool) -> Result<Vec<RealmView>> {
        let types: HashMap<String, String> = self
            .store()
            .resolver_list()
            .await?
            .into_iter()
            .map(|r| (r.name, r.rtype))
            .collect();
        Ok(self
            .store()
            .realm_list()
            .await?
            .into_iter()
            .filter(|r| !only_default || r.is_default)
            .map(|r| RealmView {
                id: r.id,
                resolvers: r
                    .resolvers
                    .iter()
                    .map(|(n, p)| (n.clone(), *p, types.get(n).cloned().unwrap_or_default()))
                    .collect(),
                name: r.name,
                default: r.is_default,
            })
            .collect())
    }

    /// The realms' names.
    pub async fn realm_names(&self) -> Result<Vec<String>> {
        Ok(self
            .store()
            .realm_list()
            .await?
            .into_iter()
            .map(|r| r.name)
            .collect())
    }

    /// `DELETE /realm/<name>` (realm names are case-insensitive): its id.
    pub async fn delete_realm(&self, name: &str, cx: &mut Scope) -> Result<i64> {
        cx.audit.realm = name.to_owned();
        self.store()
            .realm_delete(&name.to_lowercase())
            .await?
            .ok_or_else(realm_not_found)
    }

    /// `POST /defaultrealm/<name>`: its id.
    pub async fn set_default_realm(&self, name: &str, cx: &mut Scope) -> Result<i64> {
        cx.audit.realm = name.to_owned();
        self.store()
            .realm_set_default(&name.to_lowercase())
            .await?
            .ok_or_else(realm_not_found)
    }

    /// `DELETE /defaultrealm`.
    pub async fn clear_default_realm(&self) -> Result<bool> {
        self.store().realm_clear_default().await?;
        Ok(true)
    }
}

fn realm_not_found() -> ServiceError {
    ServiceError::NotFound("The requested Realm could not be found.".into())
}
