//! A user's own phones (self-service): listing them, enrolling a new one or a new number,
//! confirmed by the OTP of a first SMS (privacyIDEA's `verify_enrollment`), and setting their
//! PIN.

use crate::call::{Outcome, Scope};
use crate::tokens::{TokenInit, TokenQuery, TokenView, UserRef, owner_of};
use crate::users::User;
use crate::{Result, ServiceError, Services};

/// The shortest PIN the web interface accepts from a user.
pub const MIN_OWN_PIN: usize = 4;

/// A started self-service enrollment: the new token waits in `verify` for the OTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    /// The new token.
    pub serial: String,
    /// The number the SMS went to (E.164 when it parses).
    pub phone: String,
}

impl Outcome for Enrollment {
    fn value_is_true(&self) -> bool {
        true
    }
}

impl Services {
    /// The user's own tokens, as `GET /token/` lists them.
    pub async fn own_tokens(&self, user: &User) -> Result<Vec<TokenView>> {
        let q = TokenQuery {
            user: Some(UserRef {
                login: user.login.clone(),
                realm: Some(user.realm.clone()),
            }),
            page_size: Some(100),
            ..Default::default()
        };
        // The user's own tokens: no admin reach applies.
        Ok(self
            .list_tokens(&q, &otpgate_core::reach::AdminReach::Everyone)
            .await?
            .items)
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
        cx: &mut Scope,
    ) -> Result<Enrollment> {
        cx.audit.user = user.login.clone();
        cx.audit.realm = user.realm.clone();
        self.user_may(user, "enrollSMS").await?;
        if let Some(p) = pin {
            self.check_user_pin(user, p).await?;
        }
        // Only a usable token can be replaced: a disabled, revoked or locked one stays as the
        // admin left it, and an unfinished enrollment has nothing to hand on.
        let replaced = match replaces {
            Some(s) => {
                let t = self.own_token(user, s).await?;
                if !t.state().usable() {
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
        if replaced.is_none() {
            // A further phone: the ENROLL-scope limits on a user's tokens apply.
            self.check_token_limits(user, None, None).await?;
        }
        let req = TokenInit {
            tokentype: Some("sms".into()),
            phone: Some(phone.to_owned()),
            user: Some(UserRef {
                login: user.login.clone(),
                realm: Some(user.realm.clone()),
            }),
            description: Some("enrolled by the user".into()),
            pin: pin.filter(|_| replaced.is_none()).map(str::to_owned),
            ..Default::default()
        };
        let row = self
            .init_token_in(&req, None, &mut cx.audit, "verify")
            .await?;
        let serial = row.serial.clone();
        if let Some(old) = &replaced {
            // The new token has the old one's PIN from the start.
            self.store().token_set_pin(row.id, &old.pin_hash).await?;
            self.store()
                .token_set_info(row.id, "replaces", &old.serial)
                .await?;
        }
        match self
            .send_enrollment_otp(Some(user), row, cx.client(), &mut cx.audit)
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
        cx: &mut Scope,
    ) -> Result<String> {
        cx.audit.user = user.login.clone();
        cx.audit.realm = user.realm.clone();
        self.user_may(user, "enrollSMS").await?;
        let row = self.own_token(user, serial).await?;
        if row.rollout_state != "verify" {
            return Err(ServiceError::Parameter(crate::tokens::VERIFY_FAILED.into()));
        }
        self.send_enrollment_otp(Some(user), row, cx.client(), &mut cx.audit)
            .await
    }

    /// Finishes the enrollment of `serial` when `otp` is the OTP of its live challenge
    /// (consumed exactly once); a wrong OTP counts against the challenge's attempts.
    pub async fn verify_own_enrollment(
        &self,
        user: &User,
        serial: &str,
        otp: &str,
        cx: &mut Scope,
    ) -> Result<bool> {
        let audit = &mut cx.audit;
        audit.user = user.login.clone();
        audit.realm = user.realm.clone();
        audit.serial = serial.to_owned();
        audit.token_type = "sms".into();
        let row = self.own_token(user, serial).await?;
        if row.rollout_state != "verify" {
            return Err(ServiceError::Parameter(crate::tokens::VERIFY_FAILED.into()));
        }
        // The token it replaces must still be there (an admin may have deleted it meanwhile).
        let replaces = match row.info.get("replaces") {
            Some(s) => match self.own_token(user, s).await {
                Ok(t) => Some(t.id),
                Err(_) => {
                    audit.info = format!("the replaced token {s} is gone");
                    return Err(ServiceError::Parameter(crate::tokens::VERIFY_FAILED.into()));
                }
            },
            None => None,
        };
        let id = row.id;
        if !self.answer_enrollment_challenge(row, otp.trim()).await? {
            audit.info = crate::tokens::VERIFY_FAILED.into();
            return Err(ServiceError::Parameter(crate::tokens::VERIFY_FAILED.into()));
        }
        if !self.store().token_finish_verify(id, replaces).await? {
            return Err(ServiceError::Parameter(crate::tokens::VERIFY_FAILED.into()));
        }
        audit.info = "enrollment verified".into();
        Ok(true)
    }

    /// Refuses a self-service `action` the user-scope policies do not grant `user`
    /// (privacyIDEA's `check_base_action` for users: everything while there is no user
    /// policy).
    pub(crate) async fn user_may(&self, user: &User, action: &str) -> Result<()> {
        let enroll = self.enrollment_policies(Some(user), None).await?;
        if enroll.policies.user_allows(action, &enroll.ctx())? {
            Ok(())
        } else {
            Err(ServiceError::Policy(format!(
                "User actions are defined, but the action {action} is not allowed!"
            )))
        }
    }

    /// Sets the PIN of the user's own token.
    pub async fn set_own_pin(
        &self,
        user: &User,
        serial: &str,
        pin: &str,
        cx: &mut Scope,
    ) -> Result<bool> {
        cx.audit.user = user.login.clone();
        cx.audit.realm = user.realm.clone();
        cx.audit.serial = serial.to_owned();
        if pin.chars().count() < MIN_OWN_PIN {
            return Err(ServiceError::Parameter(format!(
                "The PIN must have at least {MIN_OWN_PIN} characters."
            )));
        }
        self.user_may(user, "setpin").await?;
        self.check_user_pin(user, pin).await?;
        let row = self.own_token(user, serial).await?;
        let hash = self.hash_secret(pin).await?;
        self.store().token_set_pin(row.id, &hash).await?;
        self.schedule_pin_change(&row, Some(user), false).await?;
        Ok(true)
    }
}
