//! LDAP / Active Directory resolvers (`type=ldapresolver`): saving them with privacyIDEA's
//! parameters (the service password sealed, censored on read), one [`Directory`] client per
//! resolver and node, users mapped from directory entries, and `POST /resolver/test`.

use crate::gateways::CENSORED;
use crate::users::User;
use crate::{Result, ServiceError, Services};
use otpgate_ldap::{Directory, Entry, LdapConfig, LdapError};
use otpgate_store::ResolverRow;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// `POST /resolver/test`'s fields: the type, the resolver whose stored password a censored
/// one stands for, and the parameters to try.
#[derive(Debug, Clone, Default)]
pub struct ResolverTest {
    /// `type`.
    pub rtype: Option<String>,
    /// `resolver`: the saved resolver (for a censored password).
    pub resolver: Option<String>,
    /// The parameters (privacyIDEA's free-form map).
    pub options: BTreeMap<String, String>,
}

/// The parameters of privacyIDEA's LDAP resolver that otpgate keeps (`BINDPW` is sealed
/// apart). Parameters otpgate accepts for compatibility but does not act on are documented in
/// the README.
pub const LDAP_KEYS: &[&str] = &[
    "LDAPURI",
    "LDAPBASE",
    "BINDDN",
    "LOGINNAMEATTRIBUTE",
    "LDAPSEARCHFILTER",
    "USERINFO",
    "UIDTYPE",
    "START_TLS",
    "TLS_VERIFY",
    "TLS_CA_FILE",
    "TLS_VERSION",
    "TIMEOUT",
    "SIZELIMIT",
    "CACHE_TIMEOUT",
    "NOREFERRALS",
    "NOSCHEMAS",
    "SCOPE",
    "AUTHTYPE",
    "EDITABLE",
    "MULTIVALUEATTRIBUTES",
    "SERVERPOOL_ROUNDS",
    "SERVERPOOL_SKIP",
    "SERVERPOOL_STRATEGY",
    "SERVERPOOL_PERSISTENT",
    "CACERTIFICATE",
    "OBJECT_CLASSES",
    "DN_TEMPLATE",
];

/// The secret parameter.
const BINDPW: &str = "BINDPW";

/// The parameters that decide where the service password goes and how it is protected: a
/// kept (censored) password is only used again while they stay the same, so an admin cannot
/// steer the stored password to a server of their own or strip its TLS.
const DESTINATION_KEYS: &[&str] = &["LDAPURI", "START_TLS", "TLS_VERIFY", "TLS_CA_FILE"];

fn same_destination(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    DESTINATION_KEYS.iter().all(|k| {
        let norm = |m: &Map<String, Value>| {
            m.get(*k)
                .and_then(Value::as_str)
                .map(str::trim)
                .unwrap_or_default()
                .to_owned()
        };
        norm(a) == norm(b)
    })
}

fn kept_password_moved() -> ServiceError {
    ServiceError::Parameter(format!(
        "BINDPW must be given again when {} change.",
        DESTINATION_KEYS.join(", ")
    ))
}

/// Associated data of a resolver's sealed password.
pub(crate) fn aad(resolver: &str) -> String {
    format!("resolver:{resolver}:{BINDPW}")
}

/// One directory client per LDAP resolver on this node, rebuilt when the resolver changes.
#[derive(Debug, Default)]
pub struct Directories {
    by_name: Mutex<HashMap<String, (String, Arc<Directory>)>>,
}

impl From<LdapError> for ServiceError {
    fn from(e: LdapError) -> Self {
        match e {
            LdapError::Tls(m) => ServiceError::ConfigAdmin(m),
            other => ServiceError::Resolver(other.to_string()),
        }
    }
}

/// The stored parameters of an LDAP resolver.
fn stored_params(r: &ResolverRow) -> Map<String, Value> {
    serde_json::from_str::<Value>(&r.config)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

fn config_of(
    data: &Map<String, Value>,
    bind_pw: Zeroizing<String>,
) -> std::result::Result<LdapConfig, String> {
    let get = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_owned);
    LdapConfig::from_params(&get, bind_pw)
}

/// A directory entry as otpgate's user.
fn ldap_user(e: Entry, cfg: &LdapConfig, realm: &str, resolver: &str) -> User {
    let description = [e.first("givenname"), e.first("surname")]
        .iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    User {
        login: e.login.clone(),
        realm: realm.to_owned(),
        resolver: resolver.to_owned(),
        resolver_type: "ldapresolver".into(),
        uid: e.uid.clone(),
        givenname: e.first("givenname"),
        surname: e.first("surname"),
        email: e.first("email"),
        mobile: e
            .all("mobile")
            .into_iter()
            .filter(|m| !m.trim().is_empty())
            .collect(),
        phone: e.first("phone"),
        description,
        password_hash: None,
        dn: e.dn,
        mobile_list: cfg.multivalue.iter().any(|m| m == "mobile"),
    }
}

impl Services {
    /// The directory client of an LDAP resolver (built on first use and after a change).
    async fn directory(&self, r: &ResolverRow) -> Result<Arc<Directory>> {
        let fingerprint = format!("{}\u{0}{}", r.config, r.secret);
        if let Ok(map) = self.directories().by_name.lock()
            && let Some((fp, d)) = map.get(&r.name)
            && *fp == fingerprint
        {
            return Ok(d.clone());
        }
        let bind_pw = if r.secret.is_empty() {
            Zeroizing::new(String::new())
        } else {
            self.keys()
                .open_str(&r.secret, &aad(&r.name))
                .map_err(|_| {
                    ServiceError::Internal(format!(
                        "the password of resolver {} cannot be decrypted",
                        r.name
                    ))
                })?
        };
        let cfg = config_of(&stored_params(r), bind_pw).map_err(|m| {
            ServiceError::ConfigAdmin(format!("The resolver {} is misconfigured: {m}", r.name))
        })?;
        let dir = Arc::new(Directory::new(cfg, self.clock_arc())?);
        if let Ok(mut map) = self.directories().by_name.lock() {
            map.insert(r.name.clone(), (fingerprint, dir.clone()));
        }
        Ok(dir)
    }

    /// Users of an LDAP resolver whose login matches `pattern` (`*` wildcards), at most
    /// `SIZELIMIT`.
    pub(crate) async fn ldap_users(
        &self,
        r: &ResolverRow,
        realm: &str,
        pattern: Option<&str>,
    ) -> Result<Vec<User>> {
        let dir = self.directory(r).await?;
        let (entries, truncated) = dir.list(pattern).await?;
        if truncated {
            tracing::info!(resolver = %r.name, limit = dir.config().size_limit, "user list cut at SIZELIMIT");
        }
        Ok(entries
            .into_iter()
            .map(|e| ldap_user(e, dir.config(), realm, &r.name))
            .collect())
    }

    /// The LDAP user with this login name.
    pub(crate) async fn ldap_find(
        &self,
        r: &ResolverRow,
        realm: &str,
        login: &str,
    ) -> Result<Option<User>> {
        let dir = self.directory(r).await?;
        Ok(dir
            .find_login(login)
            .await?
            .map(|e| ldap_user(e, dir.config(), realm, &r.name)))
    }

    /// The LDAP user with this stable id.
    pub(crate) async fn ldap_by_id(
        &self,
        r: &ResolverRow,
        realm: &str,
        uid: &str,
    ) -> Result<Option<User>> {
        let dir = self.directory(r).await?;
        Ok(dir
            .find_uid(uid)
            .await?
            .map(|e| ldap_user(e, dir.config(), realm, &r.name)))
    }

    /// Checks an LDAP user's directory password with a bind as the user. As privacyIDEA, a
    /// directory that cannot answer makes the check fail (logged), not the request.
    pub(crate) async fn ldap_check_password(&self, user: &User, password: &str) -> Result<bool> {
        let Some(r) = self.store().resolver_get(&user.resolver).await? else {
            return Ok(false);
        };
        let dir = self.directory(&r).await?;
        match dir.check_password(&user.dn, password).await {
            Ok(ok) => Ok(ok),
            Err(e) => {
                tracing::warn!(resolver = %r.name, error = %e, "the directory could not check a password");
                Ok(false)
            }
        }
    }

    /// The parameters to store for `POST /resolver/<name>` with `type=ldapresolver`: the old
    /// ones updated with those given (an empty value removes one, as in privacyIDEA), checked
    /// by building the client. Returns (config JSON, sealed password).
    pub(crate) async fn ldap_resolver_config(
        &self,
        name: &str,
        params: &BTreeMap<String, String>,
        old: Option<&ResolverRow>,
    ) -> Result<(Value, String)> {
        let before = old.map(stored_params).unwrap_or_default();
        let mut data = before.clone();
        for k in LDAP_KEYS {
            match params.get(*k).map(|v| v.trim()) {
                Some("") => {
                    data.remove(*k);
                }
                Some(v) => {
                    data.insert((*k).to_owned(), json!(v));
                }
                None => {}
            }
        }
        let old_secret = old.map(|o| o.secret.clone()).unwrap_or_default();
        let (secret, bind_pw) = match params.get(BINDPW).map(String::as_str) {
            Some(CENSORED) | None => {
                let pw = if old_secret.is_empty() {
                    Zeroizing::new(String::new())
                } else {
                    if !same_destination(&before, &data) {
                        return Err(kept_password_moved());
                    }
                    self.keys().open_str(&old_secret, &aad(name))?
                };
                (old_secret, pw)
            }
            Some("") => (String::new(), Zeroizing::new(String::new())),
            Some(pw) => (
                self.keys().seal_str(self.rng(), pw, &aad(name))?,
                Zeroizing::new(pw.to_owned()),
            ),
        };
        let cfg = config_of(&data, bind_pw).map_err(ServiceError::Parameter)?;
        if !cfg.anonymous && !cfg.bind_dn.is_empty() && secret.is_empty() {
            tracing::info!(resolver = %name, "LDAP resolver binds with a DN but no password");
        }
        Directory::new(cfg, self.clock_arc())
            .map_err(|e| ServiceError::Parameter(e.to_string()))?;
        Ok((Value::Object(data), secret))
    }

    /// privacyIDEA's `data` of an LDAP resolver for `GET /resolver/`: the password censored.
    pub(crate) fn ldap_resolver_data(
        r: &ResolverRow,
    ) -> (BTreeMap<String, String>, Vec<&'static str>) {
        let mut data = otpgate_core::params::json_texts(stored_params(r));
        if !r.secret.is_empty() {
            data.insert(BINDPW.into(), CENSORED.into());
        }
        (data, vec![BINDPW])
    }

    /// `POST /resolver/test`: binds and searches with the given parameters (a censored
    /// password is taken from the saved resolver named by `resolver`). Nothing is saved.
    /// Returns (success, description); failures are descriptions, not errors, as in privacyIDEA.
    pub async fn test_resolver(&self, input: &ResolverTest) -> Result<(bool, String)> {
        let rtype = input
            .rtype
            .as_deref()
            .ok_or_else(|| ServiceError::missing("type"))?;
        let params = &input.options;
        if rtype != "ldapresolver" {
            return Err(ServiceError::Parameter(format!(
                "Testing is supported for ldapresolver, not {rtype}."
            )));
        }
        let saved = match input
            .resolver
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
        {
            Some(n) => self
                .store()
                .resolver_get(n)
                .await?
                .filter(|r| r.rtype == "ldapresolver"),
            None => None,
        };
        let mut data = Map::new();
        for k in LDAP_KEYS {
            if let Some(v) = params.get(*k).map(|v| v.trim()).filter(|v| !v.is_empty()) {
                data.insert((*k).to_owned(), json!(v));
            }
        }
        let bind_pw = match (params.get(BINDPW).map(String::as_str), &saved) {
            (Some(CENSORED), Some(r)) if !r.secret.is_empty() => {
                if !same_destination(&stored_params(r), &data) {
                    return Err(kept_password_moved());
                }
                self.keys().open_str(&r.secret, &aad(&r.name))?
            }
            (Some(pw), _) if pw != CENSORED => Zeroizing::new(pw.to_owned()),
            _ => Zeroizing::new(String::new()),
        };
        let cfg = match config_of(&data, bind_pw) {
            Ok(c) => c,
            Err(m) => return Ok((false, m)),
        };
        let dir = match Directory::new(cfg, self.clock_arc()) {
            Ok(d) => d,
            Err(e) => return Ok((false, e.to_string())),
        };
        let started = std::time::Instant::now();
        match dir.test().await {
            Ok(report) => {
                let secs = started.elapsed().as_secs_f64();
                let mut text = format!(
                    "Your LDAP config seems to be OK, {} user objects found in {secs:.4}s.",
                    report.users
                );
                if report.truncated {
                    text.push_str(" (SIZELIMIT reached.)");
                }
                Ok((true, text))
            }
            Err(e) => {
                tracing::warn!(error = %e, "LDAP resolver test failed");
                Ok((false, ServiceError::from(e).to_string()))
            }
        }
    }
}
