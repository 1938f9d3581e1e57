//! What the web interface needs beyond privacyIDEA's API: signed browser sessions, the
//! dashboard's SMS counts shared by all nodes, and the user's own phone enrollment, confirmed
//! by the OTP of a first SMS (privacyIDEA's `verify_enrollment`).

use crate::audit::AuditEntry;
use crate::tokens::owner_of;
use crate::users::User;
use crate::{Params, Result, ServiceError, Services};
use otpgate_core::jwt;
use otpgate_store::SmsStat;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The audience of a web session cookie (API JWTs carry none and are refused as sessions;
/// web cookies are refused by the API).
pub const WEB_SESSION: &str = "otpgate-web";
/// The audience of the cookie between the two steps of the web login.
pub const WEB_LOGIN: &str = "otpgate-web-login";

/// privacyIDEA's answer when the OTP of an enrollment does not verify.
pub const VERIFY_FAILED: &str = "Verification of the new token failed.";

/// The shortest PIN the web interface accepts from a user.
pub const MIN_OWN_PIN: usize = 4;

/// What this node has already added to `sms_stat`, per (gateway, outcome); one flush at a
/// time (the ticker and a dashboard view must not add the same counts twice).
#[derive(Debug, Default)]
pub struct StatFlush {
    flushed: Mutex<BTreeMap<(String, String), u64>>,
    running: tokio::sync::Mutex<()>,
}

/// A started self-service enrollment: the new token waits in `verify` for the OTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    /// The new token.
    pub serial: String,
    /// The number the SMS went to (E.164 when it parses).
    pub phone: String,
}

impl Services {
    /// Signs web claims for `ttl_secs` with the JWT secret (adds `aud`, `iat`, `exp`).
    pub fn web_sign(
        &self,
        aud: &str,
        mut claims: Map<String, Value>,
        ttl_secs: i64,
    ) -> Result<String> {
        let now = self.clock().now().timestamp();
        claims.insert("aud".into(), json!(aud));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + ttl_secs));
        Ok(jwt::sign(&Value::Object(claims), self.jwt_secret())?)
    }

    /// The claims of a web token of audience `aud` that verifies and has not expired.
    pub fn web_verify(&self, aud: &str, token: &str) -> Option<Map<String, Value>> {
        let claims = jwt::verify(token, self.jwt_secret(), self.clock().now().timestamp()).ok()?;
        match claims {
            Value::Object(m) if m.get("aud").and_then(Value::as_str) == Some(aud) => Some(m),
            _ => None,
        }
    }

    /// 32 random hex digits (session ids, CSRF tokens).
    pub fn web_random(&self) -> Result<String> {
        Ok(self
            .rng()
            .bytes(16)?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    }

    /// Signs a session out on every node until it would have expired (`expires_at` in s).
    pub async fn web_logout(&self, sid: &str, expires_at: i64) -> Result<()> {
        self.store()
            .web_logout_insert(sid, expires_at.saturating_mul(1000))
            .await?;
        Ok(())
    }

    /// True when the session was signed out.
    pub async fn web_logged_out(&self, sid: &str) -> Result<bool> {
        Ok(self.store().web_logged_out(sid).await?)
    }

    /// Housekeeping: forgets signed-out sessions that have expired anyway.
    pub async fn purge_web_logouts(&self) -> Result<u64> {
        Ok(self.store().web_logout_purge(self.clock().now_ms()).await?)
    }

    /// Adds what this node counted since its last flush (SMS attempts by gateway and outcome,
    /// refusals by limit) to the shared `sms_stat` of today (UTC), so every node's dashboard
    /// shows the cluster's counts. Nothing is lost when a flush fails: the next one adds it.
    pub async fn flush_sms_stats(&self) -> Result<usize> {
        let _one_at_a_time = self.stat_flush().running.lock().await;
        let mut current: Vec<((String, String), u64)> = self
            .breakers()
            .attempts()
            .into_iter()
            .map(|(g, o, n)| ((g, o.as_str().to_owned()), n))
            .collect();
        current.extend(
            self.limit_stats()
                .counts()
                .into_iter()
                .map(|(name, n)| ((String::new(), format!("limit:{name}")), n)),
        );
        let day = self.clock().now().format("%Y-%m-%d").to_string();
        let flushed = self
            .stat_flush()
            .flushed
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default();
        let delta: Vec<SmsStat> = current
            .iter()
            .filter_map(|(k, n)| {
                let d = n.saturating_sub(flushed.get(k).copied().unwrap_or(0));
                (d > 0).then(|| SmsStat {
                    day: day.clone(),
                    gateway: k.0.clone(),
                    outcome: k.1.clone(),
                    count: i64::try_from(d).unwrap_or(i64::MAX),
                })
            })
            .collect();
        if delta.is_empty() {
            return Ok(0);
        }
        self.store().sms_stat_add(&delta).await?;
        if let Ok(mut m) = self.stat_flush().flushed.lock() {
            for (k, n) in current {
                m.insert(k, n);
            }
        }
        Ok(delta.len())
    }

    /// The cluster's SMS counts of today (UTC), after adding this node's latest.
    pub async fn sms_stats_today(&self) -> Result<Vec<SmsStat>> {
        if let Err(e) = self.flush_sms_stats().await {
            tracing::warn!(error = %e, "SMS counts could not be flushed");
        }
        let day = self.clock().now().format("%Y-%m-%d").to_string();
        Ok(self.store().sms_stat_day(&day).await?)
    }

    /// The user's own tokens, as `GET /token/` lists them.
    pub async fn own_tokens(&self, user: &User) -> Result<Vec<Value>> {
        let mut p = Params::new();
        p.insert("user", user.login.clone());
        p.insert("realm", user.realm.clone());
        p.insert("pagesize", "100");
        let v = self.list_tokens(&p).await?;
        Ok(v.get("tokens")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// Whether the user has a token beyond unfinished enrollments (a user without one may
    /// sign in to the web interface with the user store password, to enroll a first phone).
    pub async fn user_has_tokens(&self, user: &User) -> Result<bool> {
        Ok(self
            .store()
            .tokens_of_user(&owner_of(user))
            .await?
            .iter()
            .any(|t| t.rollout_state != "verify"))
    }

    /// The user's token `serial`, or a not-found error (also for other users' tokens).
    async fn own_token(&self, user: &User, serial: &str) -> Result<otpgate_store::TokenRow> {
        self.store()
            .token_by_serial(serial)
            .await?
            .filter(|t| t.owner.as_ref() == Some(&owner_of(user)))
            .ok_or_else(|| ServiceError::NotFound(format!("You have no token {serial}.")))
    }

    /// Starts the enrollment of the user's own phone: a new SMS token in `verify` (unusable
    /// for logins until verified) and an SMS with its first OTP, under the same send limits,
    /// toll-fraud rules and SMS text as a login. With `replaces`, the new token takes that
    /// token's PIN and replaces it once verified; otherwise `pin` (at least
    /// [`MIN_OWN_PIN`] characters) becomes its PIN. Earlier unfinished enrollments of the
    /// user are removed.
    pub async fn enroll_own_phone(
        &self,
        user: &User,
        phone: &str,
        pin: Option<&str>,
        replaces: Option<&str>,
        client: Option<std::net::IpAddr>,
        audit: &mut AuditEntry,
    ) -> Result<Enrollment> {
        // Only a usable token can be replaced: a disabled, revoked or locked one stays as the
        // admin left it, and an unfinished enrollment has nothing to hand on.
        let replaced = match replaces {
            Some(s) => {
                let t = self.own_token(user, s).await?;
                if t.rollout_state == "verify" || !t.active || t.revoked || t.failcount >= t.maxfail
                {
                    return Err(ServiceError::Parameter(format!(
                        "The token {s} cannot be replaced: it is disabled, locked or not yet verified."
                    )));
                }
                Some(t)
            }
            None => None,
        };
        if replaced.is_none() {
            match pin {
                Some(p) if p.chars().count() >= MIN_OWN_PIN => {}
                _ => {
                    return Err(ServiceError::Parameter(format!(
                        "The PIN must have at least {MIN_OWN_PIN} characters."
                    )));
                }
            }
        }
        for t in self.store().tokens_of_user(&owner_of(user)).await? {
            if t.rollout_state == "verify" {
                self.store().token_delete(t.id).await?;
            }
        }
        let mut p = Params::new();
        p.insert("type", "sms");
        p.insert("phone", phone);
        p.insert("user", user.login.clone());
        p.insert("realm", user.realm.clone());
        p.insert("description", "enrolled by the user");
        if let (Some(pin), None) = (pin, &replaced) {
            p.insert("pin", pin);
        }
        let (_, row) = self.init_token_to_verify(&p, "", audit).await?;
        let serial = row.serial.clone();
        if let Some(old) = &replaced {
            // The new token has the old one's PIN from the start.
            self.store().token_set_pin(row.id, &old.pin_hash).await?;
            self.store()
                .token_set_info(row.id, "replaces", &old.serial)
                .await?;
        }
        match self
            .send_enrollment_otp(Some(user), row, client, audit)
            .await
        {
            Ok(phone) => Ok(Enrollment { serial, phone }),
            Err(e) => {
                // No SMS, no pending token.
                if let Some(t) = self.store().token_by_serial(&serial).await? {
                    self.store().token_delete(t.id).await?;
                }
                Err(e)
            }
        }
    }

    /// Sends a new OTP for the user's pending enrollment `serial` (the first SMS was lost).
    pub async fn resend_enrollment_otp(
        &self,
        user: &User,
        serial: &str,
        client: Option<std::net::IpAddr>,
        audit: &mut AuditEntry,
    ) -> Result<String> {
        let row = self.own_token(user, serial).await?;
        if row.rollout_state != "verify" {
            return Err(ServiceError::Parameter(VERIFY_FAILED.into()));
        }
        self.send_enrollment_otp(Some(user), row, client, audit)
            .await
    }

    /// Finishes the enrollment of `serial` when `otp` is the OTP of its live challenge
    /// (consumed exactly once); a wrong OTP counts against the challenge's attempts.
    pub async fn verify_own_enrollment(
        &self,
        user: &User,
        serial: &str,
        otp: &str,
        audit: &mut AuditEntry,
    ) -> Result<()> {
        audit.serial = serial.to_owned();
        audit.token_type = "sms".into();
        let row = self.own_token(user, serial).await?;
        if row.rollout_state != "verify" {
            return Err(ServiceError::Parameter(VERIFY_FAILED.into()));
        }
        // The token it replaces must still be there (an admin may have deleted it meanwhile).
        let replaces = match row.info.get("replaces") {
            Some(s) => match self.own_token(user, s).await {
                Ok(t) => Some(t.id),
                Err(_) => {
                    audit.info = format!("the replaced token {s} is gone");
                    return Err(ServiceError::Parameter(VERIFY_FAILED.into()));
                }
            },
            None => None,
        };
        let id = row.id;
        if !self.answer_enrollment_challenge(row, otp.trim()).await? {
            audit.info = VERIFY_FAILED.into();
            return Err(ServiceError::Parameter(VERIFY_FAILED.into()));
        }
        if !self.store().token_finish_verify(id, replaces).await? {
            return Err(ServiceError::Parameter(VERIFY_FAILED.into()));
        }
        audit.success = true;
        audit.info = "enrollment verified".into();
        Ok(())
    }

    /// Sets the PIN of the user's own token.
    pub async fn set_own_pin(&self, user: &User, serial: &str, pin: &str) -> Result<()> {
        if pin.chars().count() < MIN_OWN_PIN {
            return Err(ServiceError::Parameter(format!(
                "The PIN must have at least {MIN_OWN_PIN} characters."
            )));
        }
        let row = self.own_token(user, serial).await?;
        let hash = self.hash_secret(pin).await?;
        self.store().token_set_pin(row.id, &hash).await?;
        Ok(())
    }
}
