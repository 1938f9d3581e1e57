//! Browser sessions of the web interface: signed cookies (the JWT secret under their own
//! audiences, so API tokens and cookies are never confused), sign-outs that hold on every
//! node, and the sign-ins themselves as calls (a user's two-step SMS login, an admin's
//! password).

use crate::auth::{LoginRequest, Role, SignedIn};
use crate::call::{Authentication, Outcome, Scope};
use crate::users::User;
use crate::validate::{CheckOutcome, CheckRequest};
use crate::{Result, ServiceError, Services};
use otpgate_core::jwt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The audience of a web session cookie (API JWTs carry none and are refused as sessions;
/// web cookies are refused by the API).
pub const WEB_SESSION: &str = "otpgate-web";
/// The audience of the cookie between the two steps of the web login.
pub const WEB_LOGIN: &str = "otpgate-web-login";

/// Claims a web token carries, with its issue and expiry times (Unix seconds).
#[derive(Debug, Clone)]
pub struct Signed<T> {
    /// The claims.
    pub claims: T,
    /// When it was issued.
    pub issued_at: i64,
    /// When it expires.
    pub expires_at: i64,
}

/// A user's sign-in to the web interface with the PIN (or the user-store password).
#[derive(Debug, Clone, Default)]
pub struct UserSignIn {
    /// The login name as typed.
    pub login: String,
    /// The realm as chosen (blank: the default, or `user@realm`).
    pub realm: String,
    /// The PIN (or, for a user without a token, the user-store password).
    pub pass: String,
    /// Whether a user without a token may sign in with the user-store password.
    pub password_enrollment: bool,
}

/// What a web sign-in came to.
#[derive(Debug, Clone)]
pub enum SignInOutcome {
    /// Unknown user, wrong PIN or password: the same answer and work for each (the audit
    /// keeps the reason).
    Refused,
    /// A user without a token signed in with the user-store password (to enroll a phone).
    Password {
        /// The login name.
        login: String,
        /// The realm.
        realm: String,
    },
    /// The login's check: a challenge to answer, an accept, or a refusal.
    Checked {
        /// The login name.
        login: String,
        /// The realm.
        realm: String,
        /// The check's outcome.
        outcome: Box<CheckOutcome>,
    },
}

impl Outcome for SignInOutcome {
    fn success(&self) -> bool {
        match self {
            SignInOutcome::Refused => false,
            SignInOutcome::Password { .. } => true,
            SignInOutcome::Checked { outcome, .. } => outcome.accepted_by_token(),
        }
    }

    fn authentication(&self) -> Option<Authentication> {
        Some(match self {
            SignInOutcome::Refused => Authentication::Reject,
            SignInOutcome::Password { .. } => Authentication::Accept,
            SignInOutcome::Checked { outcome, .. } => outcome.authentication(),
        })
    }

    fn message(&self) -> Option<String> {
        match self {
            SignInOutcome::Checked { outcome, .. } => Outcome::message(outcome.as_ref()),
            _ => None,
        }
    }

    fn value_is_true(&self) -> bool {
        self.success()
    }
}

impl Services {
    /// Signs web claims for `ttl_secs` with the JWT secret (adds `aud`, `iat`, `exp`).
    pub fn web_sign<T: Serialize>(&self, aud: &str, claims: &T, ttl_secs: i64) -> Result<String> {
        let now = self.clock().now().timestamp();
        let mut value = serde_json::to_value(claims)
            .map_err(|e| ServiceError::Internal(format!("web claims: {e}")))?;
        if let Value::Object(m) = &mut value {
            m.insert("aud".into(), json!(aud));
            m.insert("iat".into(), json!(now));
            m.insert("exp".into(), json!(now + ttl_secs));
        }
        Ok(jwt::sign(&value, self.jwt_secret())?)
    }

    /// The claims of a web token of audience `aud` that verifies and has not expired.
    pub fn web_verify<T: DeserializeOwned>(&self, aud: &str, token: &str) -> Option<Signed<T>> {
        let claims = jwt::verify(token, self.jwt_secret(), self.clock().now().timestamp()).ok()?;
        if claims.get("aud").and_then(Value::as_str) != Some(aud) {
            return None;
        }
        let now = self.clock().now().timestamp();
        let issued_at = claims.get("iat").and_then(Value::as_i64).unwrap_or(now);
        let expires_at = claims.get("exp").and_then(Value::as_i64)?;
        Some(Signed {
            claims: serde_json::from_value(claims).ok()?,
            issued_at,
            expires_at,
        })
    }

    /// 32 random hex digits (session ids, CSRF tokens).
    pub fn web_random(&self) -> Result<String> {
        Ok(self.rng().hex(16)?)
    }

    /// Signs a session out on every node until it would have expired (`expires_at` in s);
    /// the audit names who signed out (`user` of `realm`, or an admin when `realm` is None).
    pub async fn web_logout(
        &self,
        sid: &str,
        expires_at: i64,
        who: Option<(&str, &str)>,
        cx: &mut Scope,
    ) -> Result<()> {
        if let Some((user, realm)) = who {
            cx.audit.user = user.to_owned();
            cx.audit.realm = realm.to_owned();
        }
        self.store()
            .web_logout_insert(sid, expires_at.saturating_mul(1000))
            .await?;
        Ok(())
    }

    /// True when the session was signed out.
    pub async fn web_logged_out(&self, sid: &str) -> Result<bool> {
        Ok(self.store().web_logged_out(sid).await?)
    }

    /// Whether an admin still exists (a deleted admin's sessions end with the admin).
    pub async fn admin_exists(&self, name: &str) -> Result<bool> {
        Ok(self.store().admin_hash(name).await?.is_some())
    }

    /// Whether an admin's web session signed in at `since` (Unix seconds) is still theirs: the
    /// admin exists and has not set a new password since (a changed password ends every
    /// earlier session, as it ends the API tokens).
    pub async fn admin_session_current(&self, name: &str, since: i64) -> Result<bool> {
        Ok(self
            .store()
            .admin_password_changed_at(name)
            .await?
            .is_some_and(|changed_ms| since >= changed_ms / 1000))
    }

    /// Housekeeping: forgets signed-out sessions that have expired anyway.
    pub async fn purge_web_logouts(&self) -> Result<u64> {
        Ok(self.store().web_logout_purge(self.clock().now_ms()).await?)
    }

    /// The PIN step of a user's web sign-in: the same check as `/validate/check` (limits,
    /// lockout, policies), with a user-store password for users without a token when
    /// `password_enrollment` allows it. Unknown users cost as much work as a wrong PIN, and
    /// every refusal but an outage reads alike.
    pub async fn sign_in_user(&self, req: UserSignIn, cx: &mut Scope) -> Result<SignInOutcome> {
        let settings = self.settings().await?;
        let realm = Some(req.realm.as_str()).filter(|r| !r.is_empty());
        let (name, realm, user) = self.lookup_user(&settings, &req.login, realm).await?;
        cx.audit.user = name;
        cx.audit.realm = realm;
        let Some(user) = user else {
            self.equal_cost_pin_check(&req.pass).await?;
            cx.audit.info = "The user name or PIN is wrong.".into();
            return Ok(SignInOutcome::Refused);
        };
        if !self.user_has_tokens(&user).await? {
            if req.password_enrollment {
                // The password step counts its attempts like a PIN: at most
                // `DefaultMaxFailCount` failures an hour (one conditional upsert, so parallel
                // guesses get no more); a right password gives its attempt back.
                let attempt = self.password_attempt_key(&user, &settings.config);
                if self
                    .store()
                    .send_window_take(std::slice::from_ref(&attempt))
                    .await?
                    .is_some()
                {
                    cx.audit.info = "too many failed password sign-ins".into();
                    return Ok(SignInOutcome::Refused);
                }
                if self.check_user_password(&user, &req.pass).await? {
                    self.store()
                        .send_window_give_back(std::slice::from_ref(&attempt))
                        .await?;
                    cx.audit.info = "no token yet: signed in with the user store password".into();
                    return Ok(SignInOutcome::Password {
                        login: user.login,
                        realm: user.realm,
                    });
                }
            }
            if !req.password_enrollment {
                // As much work as a password check: the time tells nothing.
                self.equal_cost_pin_check(&req.pass).await?;
            }
            cx.audit.info = "The user name or PIN is wrong.".into();
            return Ok(SignInOutcome::Refused);
        }
        self.checked(
            &user,
            CheckRequest {
                pass: Some(req.pass),
                ..CheckRequest::default()
            },
            cx,
        )
        .await
    }

    /// The counter of a user's failed password sign-ins in this hour.
    fn password_attempt_key(
        &self,
        user: &User,
        cfg: &crate::settings::SystemConfig,
    ) -> otpgate_store::WindowKey {
        let now = self.clock().now_ms();
        otpgate_store::WindowKey {
            key: format!("password-signin:{}/{}", user.resolver, user.uid),
            window_start: now - now.rem_euclid(3_600_000),
            limit: cfg.default_max_fail.max(1),
        }
    }

    /// The OTP step of a user's web sign-in: the answer to transaction `tid`.
    pub async fn sign_in_otp(
        &self,
        login: &str,
        realm: &str,
        tid: &str,
        otp: &str,
        cx: &mut Scope,
    ) -> Result<CheckOutcome> {
        self.check(
            CheckRequest {
                user: Some(login.to_owned()),
                realm: Some(realm.to_owned()),
                pass: Some(otp.to_owned()),
                transaction_id: Some(tid.to_owned()),
                ..CheckRequest::default()
            },
            cx,
        )
        .await
    }

    async fn checked(
        &self,
        user: &User,
        req: CheckRequest,
        cx: &mut Scope,
    ) -> Result<SignInOutcome> {
        let req = CheckRequest {
            user: Some(user.login.clone()),
            realm: Some(user.realm.clone()),
            ..req
        };
        match self.check(req, cx).await {
            Ok(outcome) => Ok(SignInOutcome::Checked {
                login: user.login.clone(),
                realm: user.realm.clone(),
                outcome: Box::new(outcome),
            }),
            // Only an outage is told apart; every other refusal reads like a wrong PIN.
            Err(
                e @ (ServiceError::Unavailable | ServiceError::Busy | ServiceError::Internal(_)),
            ) => Err(e),
            Err(e) => {
                cx.audit.info = e.to_string();
                Ok(SignInOutcome::Refused)
            }
        }
    }

    /// An admin's web sign-in: `/auth` for local admins only.
    pub async fn sign_in_admin(
        &self,
        username: &str,
        password: &str,
        cx: &mut Scope,
    ) -> Result<SignedIn> {
        let signed = self
            .login(
                LoginRequest {
                    username: Some(username.to_owned()).filter(|u| !u.is_empty()),
                    password: Some(password.to_owned()),
                    realm: None,
                },
                cx,
            )
            .await?;
        if signed.role != Role::Admin {
            return Err(ServiceError::Auth {
                code: 4031,
                message: "Authentication failed.".into(),
            });
        }
        Ok(signed)
    }
}
