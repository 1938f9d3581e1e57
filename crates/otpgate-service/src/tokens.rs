//! Token administration (`/token/…`): enrol SMS tokens, list, enable/disable, reset, set PIN
//! and attributes, delete, and list challenges.

use crate::audit::AuditEntry;
use crate::params::MAX_PAGE;
use crate::users::User;
use crate::{Params, Result, ServiceError, Services};
use chrono::SecondsFormat;
use otpgate_core::hotp::HashLib;
use otpgate_store::{NewToken, TokenFilter, TokenOwner, TokenRow};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// privacyIDEA's prompt of an enrollment that waits for verification.
pub const VERIFY_PROMPT: &str = "Enter the OTP from the SMS:";

/// The AAD that binds a sealed HOTP key to its token.
pub fn key_aad(serial: &str) -> String {
    format!("token.key:{serial}")
}

/// Token info keys set by the server (privacyIDEA's `readonly_info_keys`).
const READONLY_INFO: &[&str] = &[
    "assignment_date",
    "phone",
    "tokenkind",
    "hashlib",
    "creation_date",
    "count_auth_success",
    "count_auth",
    "last_auth",
];

const SORTABLE: &[&str] = &[
    "serial",
    "id",
    "tokentype",
    "description",
    "failcount",
    "count",
    "active",
    "maxfail",
    "otplen",
];

fn valid_serial(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

fn not_found(serial: &str) -> ServiceError {
    ServiceError::NotFound(format!("No token found for serials: {serial}"))
}

impl Services {
    /// Resolves `user`/`realm` parameters to a user; errors as privacyIDEA's token API does.
    async fn param_user(&self, params: &Params) -> Result<Option<User>> {
        let Some(login) = params.get_nonblank("user") else {
            return Ok(None);
        };
        let settings = self.settings().await?;
        match self
            .lookup_user(&settings, login, params.get_nonblank("realm"))
            .await?
            .2
        {
            Some(u) => Ok(Some(u)),
            None => Err(ServiceError::User(
                "The user can not be found in any resolver in this realm!".into(),
            )),
        }
    }

    /// The tokens a call addresses: one serial (path or parameter) or all tokens of a user.
    async fn addressed_tokens(
        &self,
        serial: Option<&str>,
        params: &Params,
        audit: &mut AuditEntry,
    ) -> Result<Vec<TokenRow>> {
        let serial = serial
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .or(params.get_nonblank("serial"));
        let tokens = match serial {
            Some(s) => match self.store().token_by_serial(s).await? {
                Some(t) => vec![t],
                None => return Err(not_found(s)),
            },
            None => match self.param_user(params).await? {
                Some(u) => self.store().tokens_of_user(&owner_of(&u)).await?,
                None => {
                    return Err(ServiceError::Parameter(
                        "Missing parameter: 'serial' or 'serials'".into(),
                    ));
                }
            },
        };
        self.note_tokens(audit, &tokens).await?;
        Ok(tokens)
    }

    /// Records serials, type and (like privacyIDEA) the owner of the first token in the audit.
    async fn note_tokens(&self, audit: &mut AuditEntry, tokens: &[TokenRow]) -> Result<()> {
        audit.serial = tokens
            .iter()
            .map(|t| t.serial.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let Some(t) = tokens.first() else {
            return Ok(());
        };
        audit.token_type = t.tokentype.clone();
        if let Some(o) = &t.owner {
            audit.realm = o.realm.clone();
            audit.resolver = o.resolver.clone();
            if let Some(u) = self.user_by_id(&o.resolver, &o.user_id, &o.realm).await? {
                audit.user = u.login;
            }
        }
        Ok(())
    }

    /// `POST /token/init` for SMS tokens.
    pub async fn init_token(
        &self,
        params: &Params,
        admin: &str,
        audit: &mut AuditEntry,
    ) -> Result<Value> {
        if let Some(otp) = params.get_nonblank("verify") {
            return self.finish_api_enrollment(params, otp, audit).await;
        }
        if !self.enrollment_is_verified(params).await? {
            return self.init_token_in(params, admin, audit, "enrolled").await;
        }
        // ENROLL `verify_enrollment=sms`: the token waits in `verify` for the OTP of an SMS
        // sent now; a second call with `serial` and `verify=<otp>` finishes it.
        let (v, row) = self.init_token_to_verify(params, admin, audit).await?;
        let serial = row.serial.clone();
        if row.rollout_state != "verify" {
            // An existing enrolled token re-initialised: nothing to verify.
            return Ok(v);
        }
        let user = match &row.owner {
            Some(o) => self.user_by_id(&o.resolver, &o.user_id, &o.realm).await?,
            None => None,
        };
        let (id, serial_sent) = (row.id, serial.clone());
        if let Err(e) = self
            .send_enrollment_otp(user.as_ref(), row, None, audit)
            .await
        {
            self.store().token_delete(id).await?;
            return Err(e);
        }
        Ok(json!({
            "serial": serial_sent, "rollout_state": "verify",
            "verify": {"message": VERIFY_PROMPT},
        }))
    }

    /// `init_token_in` for a token in `verify`, with the token as stored (a re-initialised
    /// existing token keeps its state: the caller checks `rollout_state`).
    pub(crate) async fn init_token_to_verify(
        &self,
        params: &Params,
        admin: &str,
        audit: &mut AuditEntry,
    ) -> Result<(Value, TokenRow)> {
        let v = self.init_token_in(params, admin, audit, "verify").await?;
        let serial = v.get("serial").and_then(Value::as_str).unwrap_or_default();
        let row = self
            .store()
            .token_by_serial(serial)
            .await?
            .ok_or_else(|| ServiceError::Internal("the new token vanished".into()))?;
        Ok((v, row))
    }

    /// Whether an ENROLL-scope `verify_enrollment` policy names SMS tokens for this user.
    async fn enrollment_is_verified(&self, params: &Params) -> Result<bool> {
        let policies = self.policies().await?;
        let user = self.param_user(params).await?;
        let ctx = crate::policy::PolicyContext {
            realm: user.as_ref().map(|u| u.realm.as_str()),
            resolver: user.as_ref().map(|u| u.resolver.as_str()),
            user: user.as_ref().map(|u| u.login.as_str()),
            client: None,
        };
        Ok(
            match policies.action("enrollment", "verify_enrollment", &ctx)? {
                Some((crate::policy::ActionValue::Flag, _)) => true,
                Some((crate::policy::ActionValue::Value(v), _)) => v
                    .split([' ', ','])
                    .any(|t| t.trim().eq_ignore_ascii_case("sms")),
                None => false,
            },
        )
    }

    /// `POST /token/init` with `serial` and `verify=<otp>`: the token in `verify` is enrolled
    /// when the OTP is that of its live challenge (consumed exactly once).
    async fn finish_api_enrollment(
        &self,
        params: &Params,
        otp: &str,
        audit: &mut AuditEntry,
    ) -> Result<Value> {
        let serial = params.required("serial")?;
        audit.serial = serial.to_owned();
        audit.token_type = "sms".into();
        let row = self
            .store()
            .token_by_serial(serial)
            .await?
            .filter(|t| t.tokentype == "sms" && t.rollout_state == "verify")
            .ok_or_else(|| ServiceError::Parameter(crate::web::VERIFY_FAILED.into()))?;
        let id = row.id;
        if !self.answer_enrollment_challenge(row, otp.trim()).await?
            || !self.store().token_finish_verify(id, None).await?
        {
            return Err(ServiceError::Parameter(crate::web::VERIFY_FAILED.into()));
        }
        Ok(json!({"serial": serial, "rollout_state": "enrolled"}))
    }

    /// `init_token` with the new token's `rollout_state` (`verify` for an enrollment that is
    /// finished only when the user has entered the OTP of a first SMS).
    pub(crate) async fn init_token_in(
        &self,
        params: &Params,
        admin: &str,
        audit: &mut AuditEntry,
        rollout_state: &str,
    ) -> Result<Value> {
        let ttype = params
            .get_nonblank("type")
            .unwrap_or("hotp")
            .to_ascii_lowercase();
        if ttype != "sms" {
            return Err(ServiceError::Parameter(format!(
                "Unsupported token type {ttype}: otpgate serves SMS tokens (type=sms)."
            )));
        }
        audit.token_type = "sms".into();
        let dynamic = params.flag("dynamic_phone");
        let phone = params.get_nonblank("phone");
        if dynamic && phone.is_some() {
            return Err(ServiceError::Parameter(
                "The parameters phone and dynamic_phone exclude each other.".into(),
            ));
        }
        if !dynamic && phone.is_none() {
            return Err(ServiceError::missing("phone"));
        }
        if phone.is_some_and(|p| p.len() > 64 || p.chars().any(char::is_control)) {
            return Err(ServiceError::Parameter(
                "The phone number is not valid.".into(),
            ));
        }
        let cfg = self.system_config().await?;
        let hashlib = match params.get_nonblank("hashlib") {
            Some(h) => HashLib::parse(h)
                .map_err(|_| ServiceError::Parameter(format!("Unsupported hashlib {h}.")))?,
            None => HashLib::Sha1,
        };
        let otplen = match params.int("otplen")? {
            None => cfg.default_otp_len,
            Some(n @ (6 | 8)) => n,
            Some(_) => return Err(ServiceError::Parameter("otplen must be 6 or 8.".into())),
        };
        let identifier = params.get_nonblank("sms.identifier");
        if let Some(id) = identifier {
            let allowed = self.policies().await?.admin_values(admin, "sms_gateways");
            if !allowed
                .iter()
                .flat_map(|v| v.split_whitespace())
                .any(|g| g == id)
            {
                return Err(ServiceError::Policy(
                    "The requested sms.identifier is not allowed to be enrolled.".into(),
                ));
            }
            if self.store().gateway_by_name(id).await?.is_none() {
                return Err(ServiceError::Parameter(format!(
                    "The SMS gateway {id} does not exist."
                )));
            }
        }
        let user = self.param_user(params).await?;
        let key = match params.get_nonblank("otpkey") {
            Some(hex) if !params.flag("genkey") => {
                let k = decode_hex(hex)
                    .ok_or_else(|| ServiceError::Parameter("otpkey must be hexadecimal.".into()))?;
                if k.len() < 16 || k.len() > 128 {
                    return Err(ServiceError::Parameter(
                        "otpkey must be 16 to 128 bytes long.".into(),
                    ));
                }
                zeroize::Zeroizing::new(k)
            }
            _ => zeroize::Zeroizing::new(self.rng().bytes(hashlib.key_len())?),
        };
        let serial = match params.get_nonblank("serial") {
            Some(s) if valid_serial(s) => s.to_owned(),
            Some(_) => return Err(ServiceError::Parameter("Invalid serial number.".into())),
            None => format!("PISM{}", self.rng().pick(b"0123456789ABCDEF", 8)?),
        };
        audit.serial = serial.clone();
        let now = self
            .clock()
            .now()
            .to_rfc3339_opts(SecondsFormat::Secs, false);
        let mut info = BTreeMap::from([
            ("hashlib".to_owned(), hashlib.as_str().to_owned()),
            ("tokenkind".to_owned(), "software".to_owned()),
        ]);
        match phone {
            Some(p) => {
                let cfg = self.system_config().await?;
                let realm = user.as_ref().map(|u| u.realm.as_str()).unwrap_or_default();
                info.insert(
                    "phone".into(),
                    crate::limits::enrollment_number(&cfg, realm, p)?,
                )
            }
            None => info.insert("dynamic_phone".into(), "True".into()),
        };
        for (k, v) in params.iter().filter(|(k, _)| k.starts_with("sms.")) {
            info.insert(k.clone(), v.clone());
        }
        if user.is_some() {
            info.insert("assignment_date".into(), now.clone());
        }
        let key_enc = self.keys().seal(self.rng(), &key, &key_aad(&serial))?;
        let pin_hash = match params.get("pin") {
            Some(pin) => Some(self.hash_secret(pin).await?),
            None => None,
        };
        let owner = user.as_ref().map(owner_of);
        if let Some(u) = &user {
            audit.user = u.login.clone();
            audit.realm = u.realm.clone();
            audit.resolver = u.resolver.clone();
        }
        let description = params.get("description").unwrap_or_default();
        if description.len() > 80 {
            return Err(ServiceError::Parameter(
                "The description is longer than 80 characters.".into(),
            ));
        }
        // A re-initialised token keeps its rollout state (the answer says which).
        let mut state = rollout_state.to_owned();
        if let Some(existing) = self.store().token_by_serial(&serial).await? {
            // (An empty state, as older privacyIDEA tokens have, counts as enrolled.)
            state = if existing.rollout_state.is_empty() {
                "enrolled".to_owned()
            } else {
                existing.rollout_state.clone()
            };
            if existing.tokentype != "sms" {
                return Err(ServiceError::TokenAdmin(format!(
                    "init token failed: Token {serial} already exists with type {}. Can not initialize token with new type sms",
                    existing.tokentype
                )));
            }
            if let (Some(old), Some(new)) = (&existing.owner, &owner)
                && old != new
            {
                return Err(ServiceError::TokenAdmin(
                    "This token is already assigned to another user.".into(),
                ));
            }
            self.store()
                .token_reinit(
                    existing.id,
                    &key_enc,
                    pin_hash.as_deref(),
                    otplen,
                    description,
                    &info,
                    &["phone", "dynamic_phone"],
                    owner.as_ref(),
                )
                .await?;
        } else {
            let pin_hash = match pin_hash {
                Some(h) => h,
                None => self.hash_secret("").await?,
            };
            info.insert("creation_date".into(), now);
            let t = NewToken {
                serial: serial.clone(),
                tokentype: "sms".into(),
                description: description.to_owned(),
                key_enc,
                pin_hash,
                otplen,
                maxfail: cfg.default_max_fail,
                count_window: cfg.default_count_window,
                sync_window: cfg.default_sync_window,
                rollout_state: rollout_state.into(),
                info,
                owner,
            };
            self.store().token_insert(&t, self.clock().now_ms()).await?;
        }
        Ok(json!({"serial": serial, "rollout_state": state}))
    }

    async fn token_json(
        &self,
        t: &TokenRow,
        names: &mut BTreeMap<(String, String, String), String>,
    ) -> Result<Value> {
        let (username, resolver, user_id, realm) = match &t.owner {
            Some(o) => {
                let k = (o.resolver.clone(), o.user_id.clone(), o.realm.clone());
                if !names.contains_key(&k) {
                    let login = self
                        .user_by_id(&o.resolver, &o.user_id, &o.realm)
                        .await?
                        .map(|u| u.login)
                        .unwrap_or_default();
                    names.insert(k.clone(), login);
                }
                (
                    names.get(&k).cloned().unwrap_or_default(),
                    o.resolver.clone(),
                    o.user_id.clone(),
                    o.realm.clone(),
                )
            }
            None => Default::default(),
        };
        let info: Map<String, Value> = t.info.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let readonly: Vec<&str> = READONLY_INFO
            .iter()
            .copied()
            .filter(|k| t.info.contains_key(*k))
            .collect();
        Ok(json!({
            "id": t.id, "serial": t.serial, "tokentype": t.tokentype, "description": t.description,
            "active": t.active, "revoked": t.revoked, "locked": t.locked, "failcount": t.failcount, "maxfail": t.maxfail,
            "count": t.count, "count_window": t.count_window, "sync_window": t.sync_window, "otplen": t.otplen,
            "rollout_state": t.rollout_state, "info": info,
            "username": username, "user_id": user_id, "resolver": resolver, "user_realm": realm,
            "realms": if realm.is_empty() { json!([]) } else { json!([realm]) },
            "tokengroup": [], "container_serial": "", "user_editable": false,
            "readonly_info_keys": readonly.clone(), "undeletable_info_keys": readonly, "settable_info_keys": ["phone", "hashlib"],
        }))
    }

    /// `GET /token/`.
    pub async fn list_tokens(&self, params: &Params) -> Result<Value> {
        let mut f = TokenFilter {
            serial: params.get_nonblank("serial").map(str::to_owned),
            tokentype: params.get_nonblank("type").map(str::to_owned),
            realm: params.get_nonblank("tokenrealm").map(str::to_owned),
            description: params.get_nonblank("description").map(str::to_owned),
            active: params.get_nonblank("active").map(crate::params::is_true),
            assigned: params.get_nonblank("assigned").map(crate::params::is_true),
            ..Default::default()
        };
        if let (Some(k), Some(v)) = (
            params.get_nonblank("infokey"),
            params.get_nonblank("infovalue"),
        ) {
            f.info = Some((k.to_owned(), v.to_owned()));
        }
        if params.get_nonblank("user").is_some() {
            match self.param_user(params).await {
                Ok(Some(u)) => f.owner = Some(owner_of(&u)),
                Ok(None) => {}
                Err(ServiceError::User(_)) => {
                    let login = params.get_nonblank("user").unwrap_or_default();
                    return Err(ServiceError::User(format!(
                        "User <{login}> does not exist."
                    )));
                }
                Err(e) => return Err(e),
            }
        } else if let Some(r) = params.get_nonblank("realm") {
            f.realm = Some(r.to_owned());
        }
        let page = params.int("page")?.unwrap_or(1).clamp(1, MAX_PAGE);
        let pagesize = params.int("pagesize")?.unwrap_or(15).clamp(1, 1000);
        let sortby = params.get_nonblank("sortby").unwrap_or("serial");
        let col = SORTABLE
            .iter()
            .find(|c| **c == sortby)
            .ok_or_else(|| ServiceError::Parameter(format!("Invalid sortby {sortby}.")))?;
        let dir = if params
            .get_nonblank("sortdir")
            .is_some_and(|d| d.eq_ignore_ascii_case("desc"))
        {
            "DESC"
        } else {
            "ASC"
        };
        let (rows, count) = self
            .store()
            .token_list(&f, page, pagesize, &format!("t.{col} {dir}, t.id {dir}"))
            .await?;
        let mut names = BTreeMap::new();
        let mut tokens = Vec::with_capacity(rows.len());
        for t in &rows {
            tokens.push(self.token_json(t, &mut names).await?);
        }
        Ok(json!({
            "tokens": tokens, "count": count,
            "prev": if page > 1 { json!(page - 1) } else { Value::Null },
            "next": if page.saturating_mul(pagesize) < count { json!(page + 1) } else { Value::Null },
        }))
    }

    /// `POST /token/enable|disable[/<serial>]`: how many tokens changed state.
    pub async fn set_tokens_active(
        &self,
        serial: Option<&str>,
        params: &Params,
        active: bool,
        audit: &mut AuditEntry,
    ) -> Result<Value> {
        let tokens = self.addressed_tokens(serial, params, audit).await?;
        let mut n = 0;
        for t in &tokens {
            n += i64::from(self.store().token_set_active(t.id, active).await?);
        }
        Ok(json!(n))
    }

    /// `POST /token/reset[/<serial>]`: fail counters to 0.
    pub async fn reset_tokens(
        &self,
        serial: Option<&str>,
        params: &Params,
        audit: &mut AuditEntry,
    ) -> Result<Value> {
        let tokens = self.addressed_tokens(serial, params, audit).await?;
        for t in &tokens {
            self.store().token_reset_failcount(t.id).await?;
        }
        Ok(json!(tokens.len()))
    }

    /// `POST /token/setpin[/<serial>]` with `otppin`: how many PINs were set.
    pub async fn set_token_pin(
        &self,
        serial: Option<&str>,
        params: &Params,
        audit: &mut AuditEntry,
    ) -> Result<Value> {
        let tokens = self.addressed_tokens(serial, params, audit).await?;
        let Some(pin) = params.get("otppin") else {
            return Ok(json!(0));
        };
        let hash = self.hash_secret(pin).await?;
        for t in &tokens {
            self.store().token_set_pin(t.id, &hash).await?;
        }
        Ok(json!(tokens.len()))
    }

    /// `POST /token/set[/<serial>]`: `max_failcount`, `count_window`, `description`.
    pub async fn set_token_attributes(
        &self,
        serial: Option<&str>,
        params: &Params,
        audit: &mut AuditEntry,
    ) -> Result<Value> {
        let tokens = self.addressed_tokens(serial, params, audit).await?;
        let maxfail = params.int("max_failcount")?;
        let window = params.int("count_window")?;
        if maxfail.is_some_and(|m| !(1..=1_000_000).contains(&m))
            || window.is_some_and(|w| !(1..=1000).contains(&w))
        {
            return Err(ServiceError::Parameter(
                "max_failcount must be 1..1000000 and count_window 1..1000.".into(),
            ));
        }
        let description = params.get("description");
        if description.is_some_and(|d| d.len() > 80) {
            return Err(ServiceError::Parameter(
                "The description is longer than 80 characters.".into(),
            ));
        }
        for t in &tokens {
            self.store()
                .token_set_attributes(t.id, maxfail, window, description)
                .await?;
        }
        let per_token = [maxfail.is_some(), window.is_some(), description.is_some()]
            .iter()
            .filter(|x| **x)
            .count();
        let n = per_token * tokens.len();
        Ok(json!(n))
    }

    /// `DELETE /token/<serial>`: how many tokens were deleted.
    pub async fn delete_tokens(
        &self,
        serial: Option<&str>,
        params: &Params,
        audit: &mut AuditEntry,
    ) -> Result<Value> {
        let tokens = self.addressed_tokens(serial, params, audit).await?;
        let mut n = 0;
        for t in &tokens {
            n += i64::from(self.store().token_delete(t.id).await?);
        }
        Ok(json!(n))
    }

    /// `GET /token/challenges/[<serial>]`.
    pub async fn list_challenges(&self, serial: Option<&str>, params: &Params) -> Result<Value> {
        let serial = serial
            .filter(|s| !s.is_empty())
            .or(params.get_nonblank("serial"));
        let fmt = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
                .unwrap_or_default()
        };
        let rows = self.store().challenges_list(serial).await?;
        let list: Vec<Value> = rows
            .iter()
            .map(|c| {
                json!({
                    "transaction_id": c.transaction_id, "serial": c.serial, "challenge": c.challenge, "data": {},
                    "timestamp": fmt(c.created_at), "expiration": fmt(c.expires_at), "received_count": c.received_count,
                    "otp_received": c.received_count > 0, "otp_valid": c.otp_valid,
                })
            })
            .collect();
        Ok(
            json!({"challenges": list, "count": rows.len(), "current": 1, "prev": null, "next": null}),
        )
    }
}

/// The owner record of a user.
pub fn owner_of(u: &User) -> TokenOwner {
    TokenOwner {
        resolver: u.resolver.clone(),
        user_id: u.uid.clone(),
        realm: u.realm.clone(),
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_serials() {
        assert_eq!(decode_hex("3132"), Some(vec![0x31, 0x32]));
        assert_eq!(decode_hex("313"), None);
        assert_eq!(decode_hex("zz"), None);
        assert!(valid_serial("PISM0001ABCD"));
        assert!(!valid_serial("PISM*") && !valid_serial("") && !valid_serial(&"A".repeat(41)));
    }
}
