//! otpgate's LDAP / Active Directory client: finds users by login name or stable id, lists
//! them, and checks their directory password with a bind as the user.
//!
//! One [`Directory`] per configured resolver keeps one multiplexed connection, bound as the
//! service account, and reopens it when the server closes it. Several servers (`LDAPURI`) are
//! tried in order; one that fails is skipped for `SERVERPOOL_SKIP` seconds. Every value put
//! into a filter is escaped (RFC 4515), so a login name cannot change a search. Found users
//! are cached for `CACHE_TIMEOUT` seconds on the injected clock. Nothing here logs a password.

mod config;
mod filter;

pub use config::{LdapConfig, SearchScope, USERINFO_FIELDS, UidType, is_true};
pub use filter::{escape_value, guid_to_bytes, guid_to_string, wildcard_value};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use otpgate_core::Clock;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Why the directory could not answer. Messages never contain passwords.
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    /// No server could be reached (or each one timed out).
    #[error("Error performing bind operation: no LDAP server could be reached ({0})")]
    Unreachable(String),
    /// A bind was refused (privacyIDEA's wording).
    #[error("Unable to perform bind operation: {}!", rc_text(*.rc, ""))]
    BindRefused {
        /// The LDAP result code.
        rc: u32,
    },
    /// A search failed for another reason.
    #[error("Error performing search: {0}")]
    Failed(String),
    /// A login name or id matches more than one directory entry.
    #[error("Found more than one object for {0}")]
    Ambiguous(String),
    /// The TLS settings cannot be used.
    #[error("{0}")]
    Tls(String),
}

/// A user entry as read from the directory.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// Distinguished name.
    pub dn: String,
    /// Stable id per `UIDTYPE`.
    pub uid: String,
    /// Login name (the `username` attribute of `USERINFO`).
    pub login: String,
    /// User field (`USERINFO` key) → values, in the directory's order.
    pub fields: BTreeMap<String, Vec<String>>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("dn", &self.dn)
            .field("uid", &self.uid)
            .finish_non_exhaustive()
    }
}

impl Entry {
    /// The first value of a user field, or "".
    pub fn first(&self, field: &str) -> String {
        self.fields
            .get(field)
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_default()
    }

    /// All values of a user field.
    pub fn all(&self, field: &str) -> Vec<String> {
        self.fields.get(field).cloned().unwrap_or_default()
    }
}

/// What `POST /resolver/test` reports.
#[derive(Debug, Clone)]
pub struct TestReport {
    /// The server that answered.
    pub uri: String,
    /// How many user entries the search filter found (up to `SIZELIMIT`).
    pub users: usize,
    /// Whether the size limit cut the search short.
    pub truncated: bool,
}

/// Key → (valid until, the entry or None for "no such user"), Unix ms.
type Cache = HashMap<String, (i64, Option<Entry>)>;

/// A configured directory with its connection, server health and user cache.
pub struct Directory {
    config: LdapConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    clock: Arc<dyn Clock>,
    conn: tokio::sync::Mutex<Option<Ldap>>,
    down_until: Mutex<HashMap<String, i64>>,
    /// A request is probing a skipped server while every server is skipped.
    probing: AtomicBool,
    by_login: Mutex<Cache>,
    by_uid: Mutex<Cache>,
}

/// Ends a probe when the request that made it is done, however it ends.
struct Probe<'a>(&'a AtomicBool);

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// LDAP result codes otpgate tells apart (RFC 4511 appendix A).
const RC_SIZE_LIMIT: u32 = 4;
const RC_REFERRAL: u32 = 10;
const RC_NO_SUCH_OBJECT: u32 = 32;
const RC_INVALID_DN: u32 = 34;
const RC_INVALID_CREDENTIALS: u32 = 49;

/// The longest login name or id looked up (longer ones cannot be users).
const MAX_LOOKUP: usize = 512;

/// The most answers one cache keeps (it is emptied rather than grown beyond).
const MAX_CACHED: usize = 100_000;

impl Directory {
    /// A directory client for `config`. Reads `TLS_CA_FILE` now, so a bad file is reported
    /// when the resolver is saved.
    pub fn new(config: LdapConfig, clock: Arc<dyn Clock>) -> Result<Self, LdapError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = if config.tls_verify {
            Some(Arc::new(tls_config(&config)?))
        } else {
            None
        };
        Ok(Directory {
            config,
            tls,
            clock,
            conn: tokio::sync::Mutex::new(None),
            down_until: Mutex::new(HashMap::new()),
            probing: AtomicBool::new(false),
            by_login: Mutex::new(HashMap::new()),
            by_uid: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LdapConfig {
        &self.config
    }

    /// The DN the service connection binds as ("" = anonymous).
    fn service_dn(&self) -> &str {
        if self.config.anonymous {
            ""
        } else {
            &self.config.bind_dn
        }
    }

    fn settings(&self, uri: &str) -> LdapConnSettings {
        let plain = uri
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("ldap://"));
        let mut s = LdapConnSettings::new()
            .set_conn_timeout(self.config.timeout)
            .set_starttls(self.config.start_tls && plain);
        match &self.tls {
            Some(tls) => s = s.set_config(tls.clone()),
            None => s = s.set_no_tls_verify(true),
        }
        s
    }

    /// The servers to try, in configured order, without those that failed less than
    /// `SERVERPOOL_SKIP` seconds ago. While every server is skipped, one request at a time
    /// probes the server that failed longest ago (so a directory that is back after a blip
    /// is used at once) and the others fail at once instead of each waiting `TIMEOUT` for a
    /// server known to be unreachable. The probe ends with the returned guard.
    fn servers(&self) -> (Vec<String>, Option<Probe<'_>>) {
        let now = self.clock.now_ms();
        let down = self
            .down_until
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default();
        let up: Vec<String> = self
            .config
            .uris
            .iter()
            .filter(|u| down.get(*u).is_none_or(|until| *until <= now))
            .cloned()
            .collect();
        if !up.is_empty() {
            return (up, None);
        }
        let oldest = self
            .config
            .uris
            .iter()
            .min_by_key(|u| down.get(*u).copied().unwrap_or(i64::MIN));
        match oldest {
            Some(uri)
                if self
                    .probing
                    .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok() =>
            {
                (vec![uri.clone()], Some(Probe(&self.probing)))
            }
            _ => (Vec::new(), None),
        }
    }

    fn mark(&self, uri: &str, down: bool) {
        if let Ok(mut d) = self.down_until.lock() {
            if down {
                let skip = i64::try_from(self.config.server_skip.as_millis()).unwrap_or(i64::MAX);
                d.insert(uri.to_owned(), self.clock.now_ms().saturating_add(skip));
            } else {
                d.remove(uri);
            }
        }
    }

    /// Opens a connection to the first server that answers and binds it as `dn` (anonymous
    /// when `dn` is empty). Returns the handle and the server's URI.
    async fn open(&self, dn: &str, password: &str) -> Result<(Ldap, String), LdapError> {
        let (servers, _probe) = self.servers();
        let mut last = if servers.is_empty() {
            format!(
                "every server failed less than {} s ago and another request is trying one",
                self.config.server_skip.as_secs()
            )
        } else {
            String::new()
        };
        for uri in servers {
            let opened = tokio::time::timeout(
                self.config.timeout.saturating_mul(2),
                LdapConnAsync::with_settings(self.settings(&uri), &uri),
            )
            .await;
            let (conn, mut ldap) = match opened {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    tracing::warn!(server = %uri, error = %e, "LDAP server cannot be reached");
                    self.mark(&uri, true);
                    last = format!("{uri}: {e}");
                    continue;
                }
                Err(_) => {
                    tracing::warn!(server = %uri, "LDAP server did not answer in time");
                    self.mark(&uri, true);
                    last = format!("{uri}: timeout");
                    continue;
                }
            };
            tokio::spawn(async move {
                if let Err(e) = conn.drive().await {
                    tracing::debug!(error = %e, "LDAP connection ended");
                }
            });
            if !dn.is_empty() {
                let bound = ldap
                    .with_timeout(self.config.timeout)
                    .simple_bind(dn, password)
                    .await;
                match bound {
                    Ok(r) if r.rc == 0 => {}
                    Ok(r) => {
                        let _ = ldap.unbind().await;
                        self.mark(&uri, false);
                        return Err(LdapError::BindRefused { rc: r.rc });
                    }
                    Err(e) => {
                        self.mark(&uri, true);
                        last = format!("{uri}: {e}");
                        continue;
                    }
                }
            }
            self.mark(&uri, false);
            return Ok((ldap, uri));
        }
        Err(LdapError::Unreachable(last))
    }

    /// The shared service-account connection (opened when missing or closed).
    async fn handle(&self) -> Result<Ldap, LdapError> {
        let mut slot = self.conn.lock().await;
        if let Some(l) = slot.as_mut()
            && !l.is_closed()
        {
            return Ok(l.clone());
        }
        let (ldap, _) = self.open(self.service_dn(), &self.config.bind_pw).await?;
        *slot = Some(ldap.clone());
        Ok(ldap)
    }

    async fn drop_handle(&self) {
        *self.conn.lock().await = None;
    }

    /// One search on the service connection, retried once on a fresh connection when the
    /// old one broke. Size-limit results return what arrived; referrals are not chased.
    async fn search(
        &self,
        base: &str,
        scope: SearchScope,
        filter: &str,
        size_limit: i32,
    ) -> Result<(Vec<SearchEntry>, bool), LdapError> {
        let attrs = self.config.wanted_attributes();
        let scope = match scope {
            SearchScope::Subtree => Scope::Subtree,
            SearchScope::Level => Scope::OneLevel,
            SearchScope::Base => Scope::Base,
        };
        let mut retried = false;
        loop {
            let mut ldap = self.handle().await?;
            let opts = ldap3::SearchOptions::new()
                .sizelimit(size_limit)
                .timelimit(i32::try_from(self.config.timeout.as_secs().max(1)).unwrap_or(i32::MAX));
            let run = ldap
                .with_timeout(self.config.timeout)
                .with_search_options(opts)
                .search(base, scope, filter, &attrs);
            match tokio::time::timeout(self.config.timeout.saturating_mul(2), run).await {
                Ok(Ok(res)) => {
                    let rc = res.1.rc;
                    match rc {
                        0 | RC_SIZE_LIMIT | RC_REFERRAL => {
                            let entries = res
                                .0
                                .into_iter()
                                .filter(|e| !e.is_ref() && !e.is_intermediate())
                                .filter_map(entry_of)
                                .collect();
                            return Ok((entries, rc == RC_SIZE_LIMIT));
                        }
                        RC_NO_SUCH_OBJECT | RC_INVALID_DN => return Ok((vec![], false)),
                        _ => return Err(LdapError::Failed(rc_text(rc, &res.1.text))),
                    }
                }
                Ok(Err(e)) if !retried => {
                    tracing::debug!(error = %e, "LDAP search failed; reconnecting");
                    self.drop_handle().await;
                    retried = true;
                }
                Ok(Err(e)) => {
                    self.drop_handle().await;
                    return Err(LdapError::Unreachable(e.to_string()));
                }
                Err(_) => {
                    self.drop_handle().await;
                    return Err(LdapError::Unreachable("the search timed out".into()));
                }
            }
        }
    }

    fn entry(&self, e: SearchEntry) -> Option<Entry> {
        let attrs = lower_keys(e.attrs);
        let bin = lower_keys(e.bin_attrs);
        let uid = match &self.config.uid_type {
            UidType::Dn => e.dn.clone(),
            UidType::ObjectGuid => {
                let raw = bin
                    .get("objectguid")
                    .and_then(|v| v.first().cloned())
                    .or_else(|| {
                        attrs
                            .get("objectguid")
                            .and_then(|v| v.first())
                            .map(|s| s.as_bytes().to_vec())
                    })?;
                guid_to_string(&raw)?
            }
            UidType::Attribute(a) => {
                let a = a.to_ascii_lowercase();
                match attrs.get(&a).and_then(|v| v.first()) {
                    Some(v) => v.clone(),
                    None => hex(bin.get(&a)?.first()?),
                }
            }
        };
        let mut fields = BTreeMap::new();
        for (field, attr) in &self.config.userinfo {
            if let Some(v) = attrs.get(&attr.to_ascii_lowercase()) {
                fields.insert(field.clone(), v.clone());
            }
        }
        let login = fields
            .get("username")
            .and_then(|v| v.first())
            .cloned()
            .or_else(|| {
                self.config
                    .login_attrs
                    .first()
                    .and_then(|a| attrs.get(&a.to_ascii_lowercase()))
                    .and_then(|v| v.first())
                    .cloned()
            })?;
        Some(Entry {
            dn: e.dn,
            uid,
            login,
            fields,
        })
    }

    /// A cached answer: Some(None) when the user is known not to exist.
    fn cached(&self, cache: &Mutex<Cache>, key: &str) -> Option<Option<Entry>> {
        let now = self.clock.now_ms();
        let c = cache.lock().ok()?;
        c.get(key)
            .filter(|(until, _)| *until > now)
            .map(|(_, e)| e.clone())
    }

    /// Caches an answer (as privacyIDEA, also "no such user", which keeps floods of unknown
    /// names off the directory) under the login key and, for a found user, under its id.
    fn remember(&self, login_key: Option<&str>, e: Option<&Entry>) {
        let ttl = i64::try_from(self.config.cache_timeout.as_millis()).unwrap_or(i64::MAX);
        if ttl == 0 {
            return;
        }
        let now = self.clock.now_ms();
        let until = now.saturating_add(ttl);
        let uid_key = e.map(|e| e.uid.as_str());
        for (cache, key) in [(&self.by_login, login_key), (&self.by_uid, uid_key)] {
            if let (Ok(mut c), Some(key)) = (cache.lock(), key) {
                if c.len() >= MAX_CACHED {
                    c.retain(|_, (u, _)| *u > now);
                    if c.len() >= MAX_CACHED {
                        c.clear();
                    }
                }
                c.insert(key.to_owned(), (until, e.cloned()));
            }
        }
    }

    /// Forgets every cached user (after the resolver changed).
    pub fn clear_cache(&self) {
        for c in [&self.by_login, &self.by_uid] {
            if let Ok(mut c) = c.lock() {
                c.clear();
            }
        }
    }

    /// The user whose login attribute (any of `LOGINNAMEATTRIBUTE`) equals `login`.
    pub async fn find_login(&self, login: &str) -> Result<Option<Entry>, LdapError> {
        if login.is_empty() || login.len() > MAX_LOOKUP || login.contains('\0') {
            return Ok(None);
        }
        let key = login.to_lowercase();
        if let Some(e) = self.cached(&self.by_login, &key) {
            return Ok(e);
        }
        let value = escape_value(login.as_bytes());
        let clauses: Vec<String> = self
            .config
            .login_attrs
            .iter()
            .map(|a| format!("({a}={value})"))
            .collect();
        let clause = if clauses.len() == 1 {
            clauses.concat()
        } else {
            format!("(|{})", clauses.concat())
        };
        let filter = format!("(&{}{clause})", self.config.search_filter);
        let (found, _) = self
            .search(&self.config.base, self.config.scope, &filter, 2)
            .await?;
        let mut entries: Vec<Entry> = found.into_iter().filter_map(|e| self.entry(e)).collect();
        if entries.len() > 1 {
            return Err(LdapError::Ambiguous(format!("login {login:?}")));
        }
        let found = entries.pop();
        self.remember(Some(&key), found.as_ref());
        Ok(found)
    }

    /// The user with stable id `uid` (per `UIDTYPE`).
    pub async fn find_uid(&self, uid: &str) -> Result<Option<Entry>, LdapError> {
        if uid.is_empty() || uid.len() > MAX_LOOKUP || uid.contains('\0') {
            return Ok(None);
        }
        if let Some(Some(e)) = self.cached(&self.by_uid, uid) {
            return Ok(Some(e));
        }
        let sf = &self.config.search_filter;
        let (base, scope, filter) = match &self.config.uid_type {
            UidType::Dn => {
                if !dn_within(uid, &self.config.base) {
                    return Ok(None);
                }
                (uid.to_owned(), SearchScope::Base, format!("(&{sf})"))
            }
            UidType::ObjectGuid => {
                let Some(raw) = guid_to_bytes(uid) else {
                    return Ok(None);
                };
                (
                    self.config.base.clone(),
                    self.config.scope,
                    format!("(&{sf}(objectGUID={}))", escape_value(&raw)),
                )
            }
            UidType::Attribute(a) => (
                self.config.base.clone(),
                self.config.scope,
                format!("(&{sf}({a}={}))", escape_value(uid.as_bytes())),
            ),
        };
        let (found, _) = self.search(&base, scope, &filter, 2).await?;
        let mut entries: Vec<Entry> = found
            .into_iter()
            .filter_map(|e| self.entry(e))
            .filter(|e| e.uid == uid)
            .collect();
        if entries.len() > 1 {
            return Err(LdapError::Ambiguous(format!("uid {uid:?}")));
        }
        let found = entries.pop();
        self.remember(None, found.as_ref());
        Ok(found)
    }

    /// Users whose first login attribute matches `pattern` (`*` is a wildcard; none: all),
    /// at most `SIZELIMIT`. Returns the users and whether the limit cut the list.
    pub async fn list(&self, pattern: Option<&str>) -> Result<(Vec<Entry>, bool), LdapError> {
        let attr = self
            .config
            .login_attrs
            .first()
            .map(String::as_str)
            .unwrap_or("uid");
        let value = match pattern.filter(|p| !p.is_empty()) {
            Some(p) if p.len() <= MAX_LOOKUP => wildcard_value(p),
            Some(_) => return Ok((vec![], false)),
            None => "*".to_owned(),
        };
        let filter = format!("(&{}({attr}={value}))", self.config.search_filter);
        let (found, truncated) = self
            .search(
                &self.config.base,
                self.config.scope,
                &filter,
                self.config.size_limit,
            )
            .await?;
        Ok((
            found.into_iter().filter_map(|e| self.entry(e)).collect(),
            truncated,
        ))
    }

    /// Checks a user's directory password with a bind as the user, on a connection of its
    /// own. An empty password is refused without asking (it would be an anonymous bind).
    pub async fn check_password(&self, dn: &str, password: &str) -> Result<bool, LdapError> {
        if password.is_empty() || dn.is_empty() {
            return Ok(false);
        }
        match self.open(dn, password).await {
            Ok((mut ldap, _)) => {
                let _ = ldap.unbind().await;
                Ok(true)
            }
            Err(LdapError::BindRefused { rc }) if rc == RC_INVALID_CREDENTIALS => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Connects, binds and counts the users the filter finds (`POST /resolver/test`).
    pub async fn test(&self) -> Result<TestReport, LdapError> {
        let (mut ldap, uri) = self.open(self.service_dn(), &self.config.bind_pw).await?;
        let _ = ldap.unbind().await;
        let (users, truncated) = self.list(None).await?;
        Ok(TestReport {
            uri,
            users: users.len(),
            truncated,
        })
    }
}

/// Decodes a search result entry. ldap3's decoder panics on an entry that is not shaped as
/// RFC 4511 says; such an entry (from a broken or hostile server) is dropped instead.
fn entry_of(e: ldap3::ResultEntry) -> Option<SearchEntry> {
    std::panic::catch_unwind(move || SearchEntry::construct(e))
        .map_err(|_| tracing::warn!("the LDAP server sent a malformed entry; it is ignored"))
        .ok()
}

/// Whether `dn` lies at or under `base` (compared case-insensitively, spaces after commas
/// ignored).
fn dn_within(dn: &str, base: &str) -> bool {
    let norm = |s: &str| {
        s.split(',')
            .map(|p| p.trim().to_lowercase())
            .collect::<Vec<_>>()
            .join(",")
    };
    let (dn, base) = (norm(dn), norm(base));
    dn == base || dn.ends_with(&format!(",{base}"))
}

fn lower_keys<V>(m: HashMap<String, V>) -> HashMap<String, V> {
    m.into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The result code's name and number (`invalidCredentials (49)`), with the server's text.
fn rc_text(rc: u32, text: &str) -> String {
    let name = match rc {
        RC_INVALID_CREDENTIALS => "invalidCredentials",
        13 => "confidentialityRequired",
        48 => "inappropriateAuthentication",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        RC_NO_SUCH_OBJECT => "noSuchObject",
        RC_INVALID_DN => "invalidDNSyntax",
        3 => "timeLimitExceeded",
        87 => "filterError",
        _ => "error",
    };
    let text: String = text.chars().take(200).collect();
    if text.is_empty() {
        format!("{name} ({rc})")
    } else {
        format!("{name} ({rc}): {text}")
    }
}

/// The TLS client configuration: the ring provider, and the CAs of `TLS_CA_FILE` or the
/// system's.
fn tls_config(config: &LdapConfig) -> Result<rustls::ClientConfig, LdapError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match &config.tls_ca_file {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| {
                    LdapError::Tls(format!(
                        "TLS_CA_FILE {} cannot be read: {e}",
                        path.display()
                    ))
                })?
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    LdapError::Tls(format!("TLS_CA_FILE {} is not PEM: {e}", path.display()))
                })?;
            if certs.is_empty() {
                return Err(LdapError::Tls(format!(
                    "TLS_CA_FILE {} holds no certificate.",
                    path.display()
                )));
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| LdapError::Tls(format!("TLS_CA_FILE: {e}")))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for c in native.certs {
                let _ = roots.add(c);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LdapError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_within_base() {
        assert!(dn_within(
            "uid=a,ou=People,dc=example,dc=org",
            "dc=example, dc=org"
        ));
        assert!(dn_within("dc=example,dc=org", "DC=Example,DC=org"));
        assert!(!dn_within("uid=a,dc=evil,dc=org", "dc=example,dc=org"));
        assert!(!dn_within("uid=a,dc=xexample,dc=org", "dc=example,dc=org"));
    }

    #[test]
    fn while_every_server_is_skipped_one_request_at_a_time_probes_the_oldest_failure() {
        let get = |k: &str| {
            match k {
                "LDAPURI" => Some("ldap://a:389, ldap://b:389"),
                "LDAPBASE" => Some("dc=example,dc=org"),
                "LOGINNAMEATTRIBUTE" => Some("uid"),
                "USERINFO" => Some(r#"{"username":"uid","mobile":"mobile"}"#),
                _ => None,
            }
            .map(str::to_owned)
        };
        let config = LdapConfig::from_params(&get, zeroize::Zeroizing::new(String::new())).unwrap();
        let clock = otpgate_core::clock::ManualClock::new(chrono::DateTime::UNIX_EPOCH);
        let d = Directory::new(config, Arc::new(clock.clone())).unwrap();
        assert_eq!(d.servers().0, ["ldap://a:389", "ldap://b:389"]);
        d.mark("ldap://b:389", true);
        clock.advance(chrono::Duration::seconds(1));
        d.mark("ldap://a:389", true);
        // Both skipped: the one that failed longest ago (b) is probed, by one request only.
        let (first, probe) = d.servers();
        assert_eq!(first, ["ldap://b:389"]);
        assert!(probe.is_some());
        let (second, none) = d.servers();
        assert!(second.is_empty() && none.is_none(), "{second:?}");
        // The probe ends with its request; the next one may probe again.
        drop(probe);
        assert_eq!(d.servers().0, ["ldap://b:389"]);
        // Back up once the skip time has passed, in configured order.
        clock.advance(chrono::Duration::seconds(30));
        assert_eq!(d.servers().0, ["ldap://a:389", "ldap://b:389"]);
    }

    #[test]
    fn result_codes_are_named() {
        assert_eq!(rc_text(49, ""), "invalidCredentials (49)");
        assert_eq!(
            LdapError::BindRefused { rc: 49 }.to_string(),
            "Unable to perform bind operation: invalidCredentials (49)!"
        );
        assert!(rc_text(53, &"x".repeat(500)).len() < 240);
    }
}
