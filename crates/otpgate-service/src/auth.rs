//! Admin authentication: `/auth` issues an HS256 JWT valid for one hour; every admin call
//! presents it raw in `PI-Authorization` or `Authorization`.

use crate::call::{Authentication, Outcome, Scope};
use crate::{Result, ServiceError, Services};
use otpgate_core::error::JwtError;
use otpgate_core::{CoreError, jwt};
use serde_json::{Value, json};

/// JWT validity in seconds (privacyIDEA's default `jwt_validity`).
pub const JWT_VALIDITY_SECS: i64 = 3600;

/// The admin rights otpgate knows; all are granted when no admin policy restricts them.
pub const ADMIN_RIGHTS: &[&str] = &[
    "enrollSMS",
    "enrollpin",
    "enable",
    "disable",
    "delete",
    "reset",
    "setpin",
    "set",
    "assign",
    "unassign",
    "revoke",
    "setdescription",
    "settokeninfo",
    "tokenrealms",
    "copytokenpin",
    "copytokenuser",
    "setrandompin",
    "cancelchallenge",
    "tokenlist",
    "triggerchallenge",
    "radiusserver_read",
    "radiusserver_write",
    "smsgateway_read",
    "smtpserver_read",
    "smtpserver_write",
    "smsgateway_write",
    "configread",
    "configwrite",
    "configdelete",
    "policyread",
    "policywrite",
    "policydelete",
    "resolverread",
    "resolverwrite",
    "resolverdelete",
    "mresolverread",
    "realmread",
    "realmwrite",
    "realmdelete",
    "userlist",
    "adduser",
    "updateuser",
    "deleteuser",
    "auditlog",
    "getchallenges",
    "eventhandling_read",
    "eventhandling_write",
];

/// `POST /auth`'s parameters.
#[derive(Debug, Clone, Default)]
pub struct LoginRequest {
    /// `username` (blank: none).
    pub username: Option<String>,
    /// `password`.
    pub password: Option<String>,
    /// `realm` (blank: none): with a realm, only users of that realm are checked.
    pub realm: Option<String>,
}

/// Whom a JWT is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A local admin.
    Admin,
    /// A user of a realm.
    User,
}

impl Role {
    /// privacyIDEA's name of the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }
}

/// A successful `/auth`: the JWT and whom it names.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The JWT.
    pub token: String,
    /// The login name.
    pub username: String,
    /// The realm (empty for admins).
    pub realm: String,
    /// The role.
    pub role: Role,
}

impl Outcome for SignedIn {
    fn authentication(&self) -> Option<Authentication> {
        Some(Authentication::Accept)
    }
}

/// The caller of an authenticated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Login name.
    pub username: String,
    /// Realm (empty for local admins).
    pub realm: String,
    /// `admin` or `user`.
    pub role: String,
    /// When the token was issued (Unix seconds; 0 for tokens without `iat`).
    pub issued_at: i64,
}

fn auth_err(code: i64, message: impl Into<String>) -> ServiceError {
    ServiceError::Auth {
        code,
        message: message.into(),
    }
}

/// The prefix of an imported admin password hash made with privacyIDEA's `PI_PEPPER`:
/// `$pi-pepper$<source><privacyIDEA's hash>`; the pepper of that installation (sealed in
/// `meta` under [`pepper_meta_key`]) goes in front of the password.
pub const PEPPER_PREFIX: &str = "$pi-pepper$";

/// Where the pepper of the installation `source` is kept, sealed.
pub fn pepper_meta_key(source: &str) -> String {
    format!("pi_pepper:{source}")
}

/// Associated data of the pepper sealed under `meta_key`.
pub fn pepper_aad(meta_key: &str) -> String {
    format!("meta:{meta_key}")
}

/// An imported admin hash: privacyIDEA's `hash` (a PHC string) of the installation `source`.
pub fn peppered_hash(source: &str, hash: &str) -> String {
    format!("{PEPPER_PREFIX}{source}{hash}")
}

/// The installation and privacyIDEA's hash of an imported admin hash.
fn split_peppered(hash: &str) -> Option<(&str, &str)> {
    let rest = hash.strip_prefix(PEPPER_PREFIX)?;
    let at = rest.find('$')?;
    Some((rest.get(..at)?, rest.get(at..)?))
}

/// The shortest admin password (NIST SP 800-63B's minimum for chosen memorized secrets).
pub const MIN_ADMIN_PASSWORD: usize = 8;

impl Services {
    fn issue_jwt(&self, username: &str, realm: &str, role: &str) -> Result<String> {
        let nonce = self.rng().hex(20)?;
        let claims = json!({
            "username": username, "realm": realm, "nonce": nonce, "role": role, "authtype": "password",
            "exp": self.clock().now().timestamp() + JWT_VALIDITY_SECS, "rights": ADMIN_RIGHTS,
            "iat": self.clock().now().timestamp(),
        });
        Ok(jwt::sign(&claims, self.jwt_secret())?)
    }

    /// `POST /auth`: a local admin (whatever realm is given, none), else a user of a realm
    /// with the user-store password. The audit names the user; a refusal reads REJECT.
    pub async fn login(&self, req: LoginRequest, cx: &mut Scope) -> Result<SignedIn> {
        cx.audit.user = req.username.clone().unwrap_or_default();
        cx.audit.authentication = "REJECT".into();
        let username = req
            .username
            .as_deref()
            .ok_or_else(|| auth_err(4032, "Authentication failure. Missing Username"))?;
        let password = req
            .password
            .as_deref()
            .ok_or_else(|| auth_err(4031, "Authentication failed."))?;
        let realm_param = req.realm.as_deref();
        let settings = self.settings().await?;
        // privacyIDEA's order: an unknown realm parameter is refused first; a local admin is
        // checked whatever realm is given (service accounts of the Java client send theirs);
        // an admin's wrong password still lets a realm user of that name try.
        if let Some(r) = realm_param
            && !settings.realms.iter().any(|known| known.name == r)
        {
            return Err(auth_err(
                4031,
                format!("Authentication failure. Unknown realm: {r}."),
            ));
        }
        if let Some(hash) = self.store().admin_hash(username).await?
            && self.admin_hash_matches(username, password, &hash).await?
        {
            cx.signed_in_admin(username);
            // privacyIDEA's audit of an admin sign-in: the administrator column names them,
            // `user` stays empty (no realm user), `info` says which kind.
            cx.audit.user.clear();
            cx.audit.info = "internal admin".into();
            return self.signed_in(username, "", Role::Admin);
        }
        let (_, realm, found) = self.lookup_user(&settings, username, realm_param).await?;
        if !settings.realms.iter().any(|r| r.name == realm) && !realm.is_empty() {
            return Err(auth_err(
                4031,
                format!("Authentication failure. Unknown realm: {realm}."),
            ));
        }
        if let Some(user) = found
            && self.check_user_password(&user, password).await?
        {
            return self.signed_in(&user.login, &realm, Role::User);
        }
        // An unknown name costs an Argon2 verification like a wrong password: the time does
        // not tell which names exist.
        if crate::call::kdf_runs() == 0 {
            self.equal_cost_pin_check(password).await?;
        }
        Err(auth_err(4031, "Authentication failed."))
    }

    fn signed_in(&self, username: &str, realm: &str, role: Role) -> Result<SignedIn> {
        Ok(SignedIn {
            token: self.issue_jwt(username, realm, role.as_str())?,
            username: username.to_owned(),
            realm: realm.to_owned(),
            role,
        })
    }

    /// Checks the raw JWT of an `Authorization`/`PI-Authorization` header.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Identity> {
        let token = header
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                auth_err(
                    4033,
                    "Authentication failure. Missing Authorization header.",
                )
            })?;
        let claims = jwt::verify(token, self.jwt_secret(), self.clock().now().timestamp()).map_err(|e| match e {
            CoreError::Jwt(JwtError::Expired) => auth_err(4305, "Authentication failure. Your token has expired."),
            CoreError::Jwt(JwtError::BadSignature) => {
                auth_err(4304, "Authentication failure. Error decoding the Authorization token: Signature verification failed")
            }
            _ => auth_err(4304, "Authentication failure. Error decoding the Authorization token: Invalid token"),
        })?;
        if claims.get("aud").is_some() {
            // A web interface cookie is not an API token.
            return Err(auth_err(
                4304,
                "Authentication failure. Error decoding the Authorization token: Invalid token",
            ));
        }
        let s = |k: &str| {
            claims
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Ok(Identity {
            username: s("username"),
            realm: s("realm"),
            role: s("role"),
            issued_at: claims.get("iat").and_then(Value::as_i64).unwrap_or(0),
        })
    }

    /// Checks the JWT and that it belongs to an admin.
    pub fn authenticate_admin(&self, header: Option<&str>) -> Result<Identity> {
        let id = self.authenticate(header)?;
        if id.role != "admin" {
            return Err(auth_err(
                4306,
                "Authentication failure. You do not have the necessary role (['admin']) to access this resource!",
            ));
        }
        Ok(id)
    }

    /// An admin's API token is current: the admin still exists and the token was issued after
    /// their password was last set (a changed password or a deleted admin ends the tokens).
    pub(crate) async fn admin_token_current(&self, id: &Identity) -> Result<()> {
        match self.store().admin_password_changed_at(&id.username).await? {
            Some(changed) if id.issued_at >= changed => Ok(()),
            _ => Err(auth_err(
                4305,
                "Authentication failure. Your token has expired.",
            )),
        }
    }

    /// Sets an admin's mail address and/or mobile number (a None keeps the stored one).
    pub async fn set_admin_contact(
        &self,
        name: &str,
        email: Option<&str>,
        mobile: Option<&str>,
    ) -> Result<()> {
        if email.is_some_and(|e| !e.is_empty() && !e.contains('@')) {
            return Err(ServiceError::Parameter(
                "The admin's email must be a mail address.".into(),
            ));
        }
        let (old_email, old_mobile) = self
            .store()
            .admin_contact(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("There is no admin {name}.")))?;
        self.store()
            .admin_set_contact(
                name,
                email.map(str::trim).unwrap_or(&old_email),
                mobile.map(str::trim).unwrap_or(&old_mobile),
            )
            .await?;
        Ok(())
    }

    /// Creates or replaces an admin (CLI `admin add`).
    pub async fn add_admin(&self, name: &str, password: &str) -> Result<()> {
        if name.trim().is_empty() || name.contains(['@', ':']) {
            return Err(ServiceError::Parameter(
                "An admin name must be non-empty and contain no @ or :.".into(),
            ));
        }
        if password.chars().count() < MIN_ADMIN_PASSWORD {
            return Err(ServiceError::Parameter(format!(
                "The admin password must be at least {MIN_ADMIN_PASSWORD} characters long."
            )));
        }
        let hash = self.hash_secret(password).await?;
        self.store()
            .admin_upsert(name, &hash, self.clock().now_ms())
            .await?;
        Ok(())
    }

    /// An admin changes their own password: the current one must match (a wrong one counts
    /// as a failed sign-in in the audit), the new one follows the rules of `add_admin`.
    pub async fn change_own_admin_password(
        &self,
        name: &str,
        current: &str,
        new: &str,
        cx: &mut crate::call::Scope,
    ) -> Result<()> {
        cx.audit.action_detail = format!("password of admin {name}");
        if !self.admin_password_matches(name, current).await? {
            return Err(ServiceError::Parameter(
                "The current password is wrong.".into(),
            ));
        }
        if new == current {
            return Err(ServiceError::Parameter(
                "The new password must differ from the current one.".into(),
            ));
        }
        self.add_admin(name, new).await
    }

    /// Whether `password` is admin `name`'s password now (false for an unknown admin).
    pub async fn admin_password_matches(&self, name: &str, password: &str) -> Result<bool> {
        match self.store().admin_hash(name).await? {
            Some(hash) => self.admin_hash_matches(name, password, &hash).await,
            None => Ok(false),
        }
    }

    /// Whether `password` matches an admin's stored hash: otpgate's own, or one imported from
    /// privacyIDEA, which hashed the password behind its `PI_PEPPER`.
    /// A hash in another form or with other costs is replaced by one with the current
    /// parameters after it matched (so privacyIDEA's pepper is needed once per admin).
    async fn admin_hash_matches(&self, name: &str, password: &str, hash: &str) -> Result<bool> {
        let ok = self.admin_hash_verifies(password, hash).await?;
        if ok
            && (hash.starts_with(PEPPER_PREFIX)
                || otpgate_core::pin::needs_rehash(hash, &self.pin_params()))
        {
            let new = self.hash_secret(password).await?;
            if let Err(e) = self.store().admin_replace_hash(name, hash, &new).await {
                tracing::warn!(error = %e, "could not replace an admin password hash");
            }
        }
        Ok(ok)
    }

    async fn admin_hash_verifies(&self, password: &str, hash: &str) -> Result<bool> {
        if !hash.starts_with(PEPPER_PREFIX) {
            return self.verify_secret(password, hash).await;
        }
        let Some((source, peppered)) = split_peppered(hash) else {
            return Ok(false);
        };
        let key = pepper_meta_key(source);
        let Some(sealed) = self.store().meta_get(&key).await? else {
            tracing::warn!(
                "an imported admin password needs privacyIDEA's pepper, which is missing"
            );
            return Ok(false);
        };
        let pepper = self.keys().open_str(&sealed, &pepper_aad(&key))?;
        let joined = zeroize::Zeroizing::new(format!("{}{password}", pepper.as_str()));
        self.verify_secret(&joined, peppered).await
    }

    /// Creates `admin` with a random password if no admin exists; returns the password.
    pub async fn create_initial_admin(&self) -> Result<Option<String>> {
        let password = self.rng().pick(
            b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789",
            24,
        )?;
        let hash = self.hash_secret(&password).await?;
        Ok(self
            .store()
            .admin_create_first("admin", &hash, self.clock().now_ms())
            .await?
            .then_some(password))
    }
}
