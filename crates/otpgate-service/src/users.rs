//! Users and the user stores they come from (realm choice, lookups, passwords, the
//! internal resolver's users). The stores and realms themselves are administered in
//! [`crate::realms`].
//!
//! Three resolver types: `passwdresolver` reads privacyIDEA's passwd-style file (the GECOS
//! field is `Given Surname,field2,mobile,phone,email`), `internalresolver` is otpgate's
//! editable user store in the database (`/user/` create, update, delete), and `ldapresolver`
//! reads an LDAP directory or Active Directory (see [`crate::directory`]).

use crate::call::Scope;
use crate::nonblank;
use crate::snapshot::Settings;
use crate::{Result, ServiceError, Services};
use otpgate_store::{InternalUserRow, RealmRow, ResolverRow};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The resolver types otpgate supports.
pub const RESOLVER_TYPES: &[&str] = &["passwdresolver", "internalresolver", "ldapresolver"];

/// A resolved user.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub login: String,
    /// Realm the user was found in.
    pub realm: String,
    /// Resolver name.
    pub resolver: String,
    /// Resolver type.
    pub resolver_type: String,
    /// Stable id within the resolver.
    pub uid: String,
    /// Given name.
    pub givenname: String,
    /// Surname.
    pub surname: String,
    /// Email.
    pub email: String,
    /// Mobile numbers (the first one receives SMS).
    pub mobile: Vec<String>,
    /// Phone.
    pub phone: String,
    /// Description (passwd: the whole GECOS field).
    pub description: String,
    /// Password hash of internal users.
    pub password_hash: Option<String>,
    /// Distinguished name of LDAP users ("" otherwise).
    pub dn: String,
    /// `GET /user/` shows `mobile` as a list (LDAP's `MULTIVALUEATTRIBUTES`).
    pub mobile_list: bool,
}

impl User {
    /// This user as an admin's target (whom admin policies reach).
    pub fn target(&self) -> otpgate_core::reach::Target<'_> {
        otpgate_core::reach::Target {
            realm: Some(&self.realm),
            resolver: Some(&self.resolver),
            user: Some(&self.login),
            token_realms: &[],
        }
    }
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("login", &self.login)
            .field("realm", &self.realm)
            .field("resolver", &self.resolver)
            .finish()
    }
}

/// `GET /user/`'s filters.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// `realm` (the default realm when None).
    pub realm: Option<String>,
    /// `username` (`*` wildcards).
    pub username: Option<String>,
    /// `resolver`.
    pub resolver: Option<String>,
}

/// `POST|PUT /user/`'s fields for an internal resolver (None: unchanged on update, empty
/// on create).
#[derive(Debug, Clone, Default)]
pub struct UserInput {
    /// `user` (or `username`).
    pub login: Option<String>,
    /// `resolver`.
    pub resolver: Option<String>,
    /// `password` (empty: unchanged).
    pub password: Option<String>,
    /// `givenname`.
    pub givenname: Option<String>,
    /// `surname`.
    pub surname: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `mobile`.
    pub mobile: Option<String>,
    /// `phone`.
    pub phone: Option<String>,
    /// `description`.
    pub description: Option<String>,
}

/// One parsed passwd line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    /// Login.
    pub login: String,
    /// Numeric uid (the stable user id).
    pub uid: String,
    /// GECOS field.
    pub gecos: String,
    /// The password field: a crypt(3) hash, or a shadow marker (`x`, `*`) that never matches.
    pub password: String,
}

/// Parses privacyIDEA's passwd file format; malformed lines are skipped.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let login = f.first()?.trim();
            if login.is_empty() {
                return None;
            }
            Some(PasswdEntry {
                login: login.to_owned(),
                uid: f.get(2).map(|s| s.trim().to_owned()).unwrap_or_default(),
                gecos: f.get(4).map(|s| (*s).to_owned()).unwrap_or_default(),
                password: f.get(1).map(|s| s.trim().to_owned()).unwrap_or_default(),
            })
        })
        .collect()
}

fn passwd_user(e: &PasswdEntry, realm: &str, resolver: &str) -> User {
    let g: Vec<&str> = e.gecos.split(',').collect();
    let name = g.first().copied().unwrap_or_default().trim();
    let (given, sur) = name.split_once(' ').unwrap_or((name, ""));
    let field = |i: usize| g.get(i).map(|s| s.trim().to_owned()).unwrap_or_default();
    let mobile = field(2);
    User {
        login: e.login.clone(),
        realm: realm.to_owned(),
        resolver: resolver.to_owned(),
        resolver_type: "passwdresolver".into(),
        uid: e.uid.clone(),
        givenname: given.trim().to_owned(),
        surname: sur.trim().to_owned(),
        email: field(4),
        mobile: if mobile.is_empty() {
            vec![]
        } else {
            vec![mobile]
        },
        phone: field(3),
        description: e.gecos.clone(),
        // Only crypt(3) hashes: a shadow marker or anything else never matches.
        password_hash: Some(e.password.clone()).filter(|p| otpgate_core::crypt::is_crypt(p)),
        dn: String::new(),
        mobile_list: false,
    }
}

fn internal_user(u: &InternalUserRow, realm: &str, resolver: &str) -> User {
    User {
        login: u.username.clone(),
        realm: realm.to_owned(),
        resolver: resolver.to_owned(),
        resolver_type: "internalresolver".into(),
        uid: u.id.to_string(),
        givenname: u.givenname.clone(),
        surname: u.surname.clone(),
        email: u.email.clone(),
        mobile: if u.mobile.is_empty() {
            vec![]
        } else {
            vec![u.mobile.clone()]
        },
        phone: u.phone.clone(),
        description: u.description.clone(),
        password_hash: Some(u.password_hash.clone()).filter(|h| !h.is_empty()),
        dn: String::new(),
        mobile_list: false,
    }
}

/// The largest passwd file otpgate reads.
const MAX_PASSWD_BYTES: u64 = 16 * 1024 * 1024;

/// Checks a passwd file: a regular file of sensible size, outside otpgate's data directory
/// (which holds the key files: a resolver must never turn them into user names). Returns the
/// canonical path. A few `stat` calls on the caller's thread: every login makes them, and
/// on a local file they cost less than a hand-off to the blocking pool each.
pub fn checked_passwd_path(file: &Path, data_dir: &Path) -> std::result::Result<PathBuf, String> {
    let p = std::fs::canonicalize(file)
        .map_err(|e| format!("The file {} cannot be read: {}.", file.display(), e.kind()))?;
    let meta = std::fs::metadata(&p)
        .map_err(|e| format!("The file {} cannot be read: {}.", file.display(), e.kind()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file.", file.display()));
    }
    if meta.len() > MAX_PASSWD_BYTES {
        return Err(format!(
            "{} is larger than {MAX_PASSWD_BYTES} bytes.",
            file.display()
        ));
    }
    if let Ok(data) = std::fs::canonicalize(data_dir)
        && p.starts_with(&data)
    {
        return Err("A passwd file may not be inside otpgate's data directory.".into());
    }
    Ok(p)
}

/// A parsed passwd file with indexes by login and by uid, so a login looks up one user
/// instead of scanning (and copying) the whole file.
#[derive(Debug, Default)]
pub struct PasswdFile {
    entries: Vec<PasswdEntry>,
    by_login: HashMap<String, usize>,
    by_uid: HashMap<String, usize>,
}

impl PasswdFile {
    /// Indexes parsed entries; where a login or uid repeats, the first line wins (as a scan
    /// in file order would find it).
    pub fn new(entries: Vec<PasswdEntry>) -> Self {
        let mut by_login = HashMap::with_capacity(entries.len());
        let mut by_uid = HashMap::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            by_login.entry(e.login.clone()).or_insert(i);
            by_uid.entry(e.uid.clone()).or_insert(i);
        }
        Self {
            entries,
            by_login,
            by_uid,
        }
    }

    /// Every entry in file order.
    pub fn entries(&self) -> &[PasswdEntry] {
        &self.entries
    }

    /// The entry of a login.
    pub fn by_login(&self, login: &str) -> Option<&PasswdEntry> {
        self.by_login.get(login).and_then(|&i| self.entries.get(i))
    }

    /// The entry of a uid.
    pub fn by_uid(&self, uid: &str) -> Option<&PasswdEntry> {
        self.by_uid.get(uid).and_then(|&i| self.entries.get(i))
    }
}

/// A cache of parsed passwd files, re-read when the file's size or mtime changes.
#[derive(Debug, Default)]
pub struct PasswdCache {
    files: Mutex<HashMap<PathBuf, CachedFile>>,
}

/// A parsed file with the modification time and size it was read at.
type CachedFile = (SystemTime, u64, Arc<PasswdFile>);

impl PasswdCache {
    async fn load(&self, path: &Path, data_dir: &Path) -> Result<Arc<PasswdFile>> {
        let path = &checked_passwd_path(path, data_dir).map_err(|e| {
            ServiceError::ConfigAdmin(format!("The passwd file of a resolver cannot be used: {e}"))
        })?;
        let meta = std::fs::metadata(path).map_err(|e| {
            ServiceError::ConfigAdmin(format!(
                "The passwd file of a resolver cannot be read: {}",
                e.kind()
            ))
        })?;
        let stamp = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        if let Ok(files) = self.files.lock()
            && let Some((m, l, entries)) = files.get(path)
            && (*m, *l) == stamp
        {
            return Ok(entries.clone());
        }
        let text = tokio::fs::read_to_string(path).await.map_err(|e| {
            ServiceError::ConfigAdmin(format!(
                "The passwd file of a resolver cannot be read: {}",
                e.kind()
            ))
        })?;
        let entries = Arc::new(PasswdFile::new(parse_passwd(&text)));
        if let Ok(mut files) = self.files.lock() {
            files.insert(path.to_owned(), (stamp.0, stamp.1, entries.clone()));
        }
        Ok(entries)
    }
}

/// privacyIDEA's realm choice (see [`Services::user_realm`]).
fn pick_realm(
    realms: &[RealmRow],
    split_at_sign: bool,
    login: &str,
    realm: Option<&str>,
) -> (String, String) {
    if let Some(r) = realm
        .map(|r| r.trim().to_lowercase())
        .filter(|r| !r.is_empty())
    {
        let login = match login.rsplit_once('@') {
            Some((l, at)) if split_at_sign && at.eq_ignore_ascii_case(&r) => l,
            _ => login,
        };
        return (login.to_owned(), r);
    }
    if split_at_sign
        && let Some((l, r)) = login.rsplit_once('@')
        && realms.iter().any(|x| x.name.eq_ignore_ascii_case(r))
    {
        return (l.to_owned(), r.to_lowercase());
    }
    let default = realms
        .iter()
        .find(|r| r.is_default)
        .map(|r| r.name.clone())
        .unwrap_or_default();
    (login.to_owned(), default)
}

fn resolver_file(r: &ResolverRow) -> Option<PathBuf> {
    serde_json::from_str::<Value>(&r.config)
        .ok()?
        .get("fileName")?
        .as_str()
        .map(PathBuf::from)
}

impl Services {
    /// The parsed, indexed passwd file of a `passwdresolver`.
    async fn passwd_file(&self, r: &ResolverRow) -> Result<Arc<PasswdFile>> {
        let path = resolver_file(r).ok_or_else(|| {
            ServiceError::ConfigAdmin(format!("Resolver {} has no fileName.", r.name))
        })?;
        self.passwd_cache().load(&path, self.data_dir()).await
    }

    /// The users of a resolver; `pattern` (`*` wildcards) narrows an LDAP search in the
    /// directory (other types are filtered by the caller).
    async fn users_of_resolver(
        &self,
        r: &ResolverRow,
        realm: &str,
        pattern: Option<&str>,
    ) -> Result<Vec<User>> {
        match r.rtype.as_str() {
            "ldapresolver" => self.ldap_users(r, realm, pattern).await,
            "passwdresolver" => {
                let file = self.passwd_file(r).await?;
                Ok(file
                    .entries()
                    .iter()
                    .map(|e| passwd_user(e, realm, &r.name))
                    .collect())
            }
            "internalresolver" => Ok(self
                .store()
                .iuser_list(r.id)
                .await?
                .iter()
                .map(|u| internal_user(u, realm, &r.name))
                .collect()),
            _ => Ok(vec![]),
        }
    }

    async fn find_in_resolver(
        &self,
        r: &ResolverRow,
        realm: &str,
        login: &str,
    ) -> Result<Option<User>> {
        match r.rtype.as_str() {
            "internalresolver" => Ok(self
                .store()
                .iuser_by_name(r.id, login)
                .await?
                .map(|u| internal_user(&u, realm, &r.name))),
            "ldapresolver" => self.ldap_find(r, realm, login).await,
            "passwdresolver" => Ok(self
                .passwd_file(r)
                .await?
                .by_login(login)
                .map(|e| passwd_user(e, realm, &r.name))),
            _ => Ok(None),
        }
    }

    /// The name of the default realm.
    pub async fn default_realm(&self) -> Result<Option<String>> {
        Ok(self
            .store()
            .realm_list()
            .await?
            .into_iter()
            .find(|r| r.is_default)
            .map(|r| r.name))
    }

    /// Splits `login` and picks the realm like privacyIDEA: an explicit realm wins; otherwise
    /// `user@realm` is split when `splitAtSign` is on and the realm exists; otherwise the
    /// default realm. Returns (login, realm).
    pub async fn user_realm(&self, login: &str, realm: Option<&str>) -> Result<(String, String)> {
        let s = self.settings().await?;
        Ok(pick_realm(&s.realms, s.config.split_at_sign, login, realm))
    }

    /// Finds a user in a realm (resolvers in priority order).
    pub async fn find_user(&self, login: &str, realm: &str) -> Result<Option<User>> {
        let settings = self.settings().await?;
        self.find_user_in(&settings, login, realm).await
    }

    /// [`Self::user_realm`] and [`Self::find_user`] on settings the caller already holds
    /// (the login path). Returns (login, realm, the user if found).
    pub async fn lookup_user(
        &self,
        settings: &Settings,
        login: &str,
        realm: Option<&str>,
    ) -> Result<(String, String, Option<User>)> {
        let (login, realm) = pick_realm(
            &settings.realms,
            settings.config.split_at_sign,
            login,
            realm,
        );
        let user = self.find_user_in(settings, &login, &realm).await?;
        Ok((login, realm, user))
    }

    async fn find_user_in(
        &self,
        settings: &Settings,
        login: &str,
        realm: &str,
    ) -> Result<Option<User>> {
        let Some(r) = settings.realms.iter().find(|r| r.name == realm) else {
            return Ok(None);
        };
        let mut resolvers = r.resolvers.clone();
        resolvers.sort_by_key(|(_, p)| p.unwrap_or(i64::MAX));
        for (name, _) in resolvers {
            if let Some(res) = settings.resolvers.get(&name)
                && let Some(u) = self.find_in_resolver(res, realm, login).await?
            {
                return Ok(Some(u));
            }
        }
        Ok(None)
    }

    /// The user a token belongs to (looked up by resolver and id).
    pub async fn user_by_id(&self, resolver: &str, uid: &str, realm: &str) -> Result<Option<User>> {
        let Some(r) = self.store().resolver_get(resolver).await? else {
            return Ok(None);
        };
        match r.rtype.as_str() {
            "internalresolver" => {
                let Ok(id) = uid.parse::<i64>() else {
                    return Ok(None);
                };
                Ok(self
                    .store()
                    .iuser_by_id(r.id, id)
                    .await?
                    .map(|u| internal_user(&u, realm, &r.name)))
            }
            "ldapresolver" => self.ldap_by_id(&r, realm, uid).await,
            "passwdresolver" => Ok(self
                .passwd_file(&r)
                .await?
                .by_uid(uid)
                .map(|e| passwd_user(e, realm, &r.name))),
            _ => Ok(None),
        }
    }

    /// Checks a user's own password (for `otppin=userstore` and user logins).
    pub async fn check_user_password(&self, user: &User, password: &str) -> Result<bool> {
        if user.resolver_type == "ldapresolver" {
            return self.ldap_check_password(user, password).await;
        }
        match &user.password_hash {
            Some(h) if user.resolver_type == "passwdresolver" => {
                // crypt(3) from the passwd file, costly by design: off the async runtime, in
                // the same bounded pool as PIN hashes.
                let (password, hash) = (zeroize::Zeroizing::new(password.to_owned()), h.clone());
                self.kdf()
                    .run(&crate::call::kdf_share(), move |_| {
                        otpgate_core::crypt::verify(&password, &hash)
                    })
                    .await
            }
            Some(h) => self.verify_secret(password, h).await,
            None => Ok(false),
        }
    }

    /// `GET /user/`: users of a realm (default realm when none given).
    ///
    /// `reach` is the admin's `userlist` reach: a realm (or resolver) it does not cover is
    /// refused, as privacyIDEA refuses it.
    pub async fn list_users(
        &self,
        q: &UserQuery,
        reach: &otpgate_core::reach::AdminReach,
    ) -> Result<Vec<User>> {
        let realm = match q.realm.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
            Some(r) => r.to_lowercase(),
            None => self.default_realm().await?.unwrap_or_default(),
        };
        let resolver = nonblank(&q.resolver);
        let target = otpgate_core::reach::Target {
            realm: Some(&realm),
            resolver: resolver.as_deref(),
            user: None,
            token_realms: &[],
        };
        if !reach.covers(&target) {
            return Err(crate::call::not_allowed("userlist"));
        }
        let Some(r) = self
            .store()
            .realm_list()
            .await?
            .into_iter()
            .find(|x| x.name == realm)
        else {
            return Ok(Vec::new());
        };
        let raw_pattern = nonblank(&q.username);
        let pattern = raw_pattern.as_deref().map(wildcard).transpose()?;
        let only_resolver = nonblank(&q.resolver);
        let mut out = Vec::new();
        for (name, _) in &r.resolvers {
            if only_resolver.as_deref().is_some_and(|o| o != name) {
                continue;
            }
            if let Some(res) = self.store().resolver_get(name).await? {
                // As privacyIDEA: a user store that cannot answer is left out of the list.
                let users = match self
                    .users_of_resolver(&res, &realm, raw_pattern.as_deref())
                    .await
                {
                    Ok(u) => u,
                    Err(e @ ServiceError::Resolver(_)) => {
                        tracing::warn!(resolver = %name, error = %e, "unable to get the user list of a resolver");
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                out.extend(
                    users
                        .into_iter()
                        .filter(|u| pattern.as_ref().is_none_or(|p| p.is_match(&u.login))),
                );
            }
        }
        // Resolver- or user-scoped `userlist` policies: only the users they reach.
        out.retain(|u| reach.covers(&u.target()));
        Ok(out)
    }

    /// `POST /user/`: a new user in an internal resolver; its id.
    pub async fn create_user(&self, input: &UserInput, cx: &mut Scope) -> Result<i64> {
        cx.audit.user = input.login.clone().unwrap_or_default();
        self.reach_user_store(cx, input).await?;
        let (res, row) = self.user_row(input, true).await?;
        Ok(self.store().iuser_create(res, &row).await?)
    }

    /// The admin's reach over a user of a user store (create, change): some realm holding
    /// the resolver must be reached (privacyIDEA's `resolver_realm_access`).
    async fn reach_user_store(&self, cx: &Scope, input: &UserInput) -> Result<()> {
        let resolver = nonblank(&input.resolver).unwrap_or_default();
        let login = nonblank(&input.login).unwrap_or_default();
        self.reach_resolver_user(cx, &resolver, &login).await
    }

    async fn reach_resolver_user(&self, cx: &Scope, resolver: &str, login: &str) -> Result<()> {
        let reach = cx.admin_reach();
        if matches!(reach, otpgate_core::reach::AdminReach::Everyone) {
            return Ok(());
        }
        let realms = self.store().realm_list().await?;
        let reached = realms
            .iter()
            .filter(|r| r.resolvers.iter().any(|(n, _)| n == resolver))
            .any(|r| {
                reach.covers(&otpgate_core::reach::Target {
                    realm: Some(&r.name),
                    resolver: Some(resolver),
                    user: Some(login),
                    token_realms: &[],
                })
            });
        if reached {
            Ok(())
        } else {
            Err(crate::call::not_allowed(cx.right()))
        }
    }

    /// `PUT /user/`: changes a user of an internal resolver.
    pub async fn update_user(&self, input: &UserInput, cx: &mut Scope) -> Result<bool> {
        cx.audit.user = input.login.clone().unwrap_or_default();
        self.reach_user_store(cx, input).await?;
        let (res, row) = self.user_row(input, false).await?;
        self.store().iuser_update(res, &row).await?;
        Ok(true)
    }

    /// The row to store for `input` in its internal resolver (whose id comes first).
    async fn user_row(&self, input: &UserInput, create: bool) -> Result<(i64, InternalUserRow)> {
        let login = nonblank(&input.login).ok_or_else(|| ServiceError::missing("user"))?;
        let login = login.as_str();
        let resolver_name =
            nonblank(&input.resolver).ok_or_else(|| ServiceError::missing("resolver"))?;
        let res = self
            .store()
            .resolver_get(&resolver_name)
            .await?
            .ok_or_else(|| {
                ServiceError::Parameter(format!("The resolver {resolver_name} does not exist."))
            })?;
        if res.rtype != "internalresolver" {
            return Err(ServiceError::Parameter(format!(
                "The resolver {resolver_name} is not editable."
            )));
        }
        if login.len() > 255 || login.contains(['@', '%', '*', ':']) {
            return Err(ServiceError::invalid(
                "user",
                "The user name may not contain @ % * or :.",
            ));
        }
        let existing = self.store().iuser_by_name(res.id, login).await?;
        let base = match (&existing, create) {
            (Some(_), true) => {
                return Err(ServiceError::invalid(
                    "user",
                    format!("The username {login} already exists."),
                ));
            }
            (None, false) => {
                return Err(ServiceError::User(format!(
                    "User <{login}> does not exist."
                )));
            }
            (Some(u), false) => u.clone(),
            (None, true) => InternalUserRow {
                username: login.to_owned(),
                ..Default::default()
            },
        };
        let pick = |v: &Option<String>, old: &str| {
            v.as_deref()
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|| old.to_owned())
        };
        // A mobile number that is no phone number (where enrollment checks numbers) is
        // refused here already, with the reason; it is stored as given, as privacyIDEA stores
        // it. Which numbers may receive SMS (number types, countries, blocked prefixes) is
        // decided at each send: those rules change, the user stays.
        if let Some(m) = input
            .mobile
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
        {
            let settings = self.settings().await?;
            crate::limits::check_number_format(&settings.config, m)
                .map_err(|why| ServiceError::invalid("mobile", format!("mobile: {why}")))?;
        }
        let password_hash = match input.password.as_deref() {
            Some(p) if !p.is_empty() => self.hash_secret(p).await?,
            _ => base.password_hash.clone(),
        };
        Ok((
            res.id,
            InternalUserRow {
                id: base.id,
                username: login.to_owned(),
                password_hash,
                givenname: pick(&input.givenname, &base.givenname),
                surname: pick(&input.surname, &base.surname),
                email: pick(&input.email, &base.email),
                mobile: pick(&input.mobile, &base.mobile),
                phone: pick(&input.phone, &base.phone),
                description: pick(&input.description, &base.description),
            },
        ))
    }

    /// `DELETE /user/<resolver>/<username>`.
    pub async fn delete_user(&self, resolver: &str, login: &str, cx: &mut Scope) -> Result<bool> {
        cx.audit.user = login.to_owned();
        cx.audit.resolver = resolver.to_owned();
        self.reach_resolver_user(cx, resolver, login).await?;
        let res = self.store().resolver_get(resolver).await?.ok_or_else(|| {
            ServiceError::Parameter(format!("The resolver {resolver} does not exist."))
        })?;
        if res.rtype != "internalresolver" {
            return Err(ServiceError::Parameter(format!(
                "The resolver {resolver} is not editable."
            )));
        }
        if self.store().iuser_delete(res.id, login).await? {
            Ok(true)
        } else {
            Err(ServiceError::User(format!(
                "User <{login}> does not exist."
            )))
        }
    }
}

/// A `*` wildcard pattern as a regex (an unusable pattern is a parameter error).
pub fn wildcard(p: &str) -> Result<regex::Regex> {
    let escaped = regex::escape(p).replace(r"\*", ".*");
    regex::Regex::new(&format!("^{escaped}$"))
        .map_err(|_| ServiceError::Parameter("The search pattern is too long.".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_file_looks_up_by_login_and_uid_first_line_wins() {
        let f = PasswdFile::new(parse_passwd(
            "alice:x:1000:1000:Alice A,,+491511,,a@x:/h:/s\n\
             bob:x:1001:1001:Bob B:/h:/s\n\
             alice:x:1002:1002:Second Alice:/h:/s\n\
             carol:x:1001:1001:Carol, uid taken:/h:/s\n",
        ));
        assert_eq!(f.entries().len(), 4);
        assert_eq!(f.by_login("alice").map(|e| e.uid.as_str()), Some("1000"));
        assert_eq!(f.by_login("carol").map(|e| e.uid.as_str()), Some("1001"));
        assert_eq!(f.by_uid("1001").map(|e| e.login.as_str()), Some("bob"));
        assert_eq!(f.by_uid("1002").map(|e| e.login.as_str()), Some("alice"));
        assert!(
            f.by_login("Alice").is_none(),
            "logins are case-sensitive as in the file"
        );
        assert!(f.by_login("nobody").is_none() && f.by_uid("7").is_none());
    }

    #[test]
    fn passwd_gecos_fields() {
        let e = parse_passwd(
            "# c\nalice:x:1000:1000:Alice Smith,,+4915100000001,+4930,alice@example.com:/home/alice:/bin/bash\nbad\n\n",
        );
        assert_eq!(e.len(), 2);
        let u = passwd_user(&e[0], "realm1", "res");
        assert_eq!(
            (u.givenname.as_str(), u.surname.as_str()),
            ("Alice", "Smith")
        );
        assert_eq!(u.mobile, vec!["+4915100000001".to_owned()]);
        assert_eq!(
            (u.phone.as_str(), u.email.as_str(), u.uid.as_str()),
            ("+4930", "alice@example.com", "1000")
        );
        let short = passwd_user(&e[1], "r", "res");
        assert!(short.mobile.is_empty() && short.uid.is_empty());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("al*").unwrap().is_match("alice"));
        assert!(!wildcard("al*").unwrap().is_match("bob"));
        assert!(
            wildcard("a.c").unwrap().is_match("a.c") && !wildcard("a.c").unwrap().is_match("abc")
        );
    }
}
