//! privacyIDEA's PIN change during a login: a token whose `next_pin_change` is due (ENROLL
//! `change_pin_on_first_use` sets it when an admin sets the PIN, `change_pin_every=<N>d` when
//! the user does) gets, with the AUTH policy `change_pin_via_validate`, a challenge instead of
//! the ACCEPT: `Please enter a new PIN`, then `Please enter the new PIN again`; the second
//! answer sets it (`PIN successfully set.`) and accepts the login.

use super::{Challenges, CheckOutcome, Ctx, Rejected, SentChallenge, TokenRef};
use crate::audit::AuditEntry;
use crate::enrollment::MIN_OWN_PIN;
use crate::users::User;
use crate::{Result, Services};
use chrono::{DateTime, Utc};
use otpgate_store::{ChallengeRow, TokenRow};

/// The challenge session of a PIN change.
pub(super) const SESSION: &str = "pin_reset";
/// The first prompt.
pub const NEW_PIN: &str = "Please enter a new PIN";
/// The second prompt.
pub const NEW_PIN_AGAIN: &str = "Please enter the new PIN again";
/// privacyIDEA's `next_pin_change` format.
const DATE_FORMAT: &str = "%Y-%m-%dT%H:%M%z";

/// Whether `t`'s PIN must be changed at `now` (an unreadable date counts as due).
pub(super) fn due(t: &TokenRow, now: DateTime<Utc>) -> bool {
    t.info.get("next_pin_change").is_some_and(|d| {
        DateTime::parse_from_str(d, DATE_FORMAT).map_or(true, |d| d.with_timezone(&Utc) <= now)
    })
}

impl Services {
    /// After `t` accepted a login: with `change_pin_via_validate` and a due PIN change, the
    /// challenge that asks for the new PIN, replacing the ACCEPT.
    pub(super) async fn start_pin_change(
        &self,
        t: &TokenRow,
        ctx: &Ctx<'_>,
        audit: &mut AuditEntry,
    ) -> Result<Option<CheckOutcome>> {
        if !ctx
            .policies
            .uses("authentication", "change_pin_via_validate")
            || !due(t, self.clock().now())
            || !ctx.flag("change_pin_via_validate")?
        {
            return Ok(None);
        }
        let tid = self.rng().digits(20)?;
        audit.action_detail = format!("PIN change of {} via validate", t.serial);
        Ok(Some(self.pin_challenge(t, &tid, "", NEW_PIN, ctx).await?))
    }

    async fn pin_challenge(
        &self,
        t: &TokenRow,
        tid: &str,
        data: &str,
        prompt: &str,
        ctx: &Ctx<'_>,
    ) -> Result<CheckOutcome> {
        let now = self.clock().now_ms();
        let expires = now + ctx.cfg.challenge_validity_secs * 1000;
        self.store()
            .challenge_insert(tid, t.id, &t.serial, t.count, data, SESSION, now, expires)
            .await?;
        Ok(CheckOutcome::Challenge(Challenges {
            transaction_id: tid.to_owned(),
            sent: vec![SentChallenge {
                serial: t.serial.clone(),
                prompt: prompt.to_owned(),
                valid_until_ms: expires,
                gateway: None,
                to: String::new(),
            }],
            messages: vec![prompt.to_owned()],
            preferred_client_mode: "interactive".into(),
            ..Default::default()
        }))
    }

    /// The answer to a PIN change challenge `c` of token `t`: the new PIN (asked again), or
    /// the same PIN again (set; the login is accepted).
    pub(super) async fn pin_change_step(
        &self,
        c: &ChallengeRow,
        t: &TokenRow,
        pass: &str,
        ctx: &Ctx<'_>,
        audit: &mut AuditEntry,
    ) -> Result<CheckOutcome> {
        audit.serial = t.serial.clone();
        audit.token_type = "sms".into();
        let token = TokenRef {
            serial: t.serial.clone(),
            otplen: None,
        };
        let refused = |message: &str| {
            CheckOutcome::Reject(Rejected {
                token: Some(token.clone()),
                ..Rejected::because(message)
            })
        };
        // Exactly once: a second answer to the same challenge finds nothing to take.
        if !self
            .store()
            .challenge_take(c.id, self.clock().now_ms())
            .await?
        {
            return Ok(refused("Response did not match the challenge."));
        }
        if c.challenge.is_empty() {
            if pass.chars().count() < MIN_OWN_PIN {
                // Asked again, as the first time.
                let out = self
                    .pin_challenge(t, &c.transaction_id, "", NEW_PIN, ctx)
                    .await?;
                audit.info = format!("The PIN must have at least {MIN_OWN_PIN} characters.");
                return Ok(out);
            }
            // The user-scope PIN rules, as privacyIDEA's check_pin: their 403, and the same
            // question stays open for another try.
            if let Some(user) = ctx.user
                && let Err(e) = self.check_user_pin(user, pass).await
            {
                self.pin_challenge(t, &c.transaction_id, "", NEW_PIN, ctx)
                    .await?;
                return Err(e);
            }
            let hash = self.hash_secret(pass).await?;
            return self
                .pin_challenge(t, &c.transaction_id, &hash, NEW_PIN_AGAIN, ctx)
                .await;
        }
        if !self.verify_secret(pass, &c.challenge).await? {
            return Ok(refused("PINs do not match"));
        }
        let hash = self.hash_secret(pass).await?;
        self.store().token_set_pin(t.id, &hash).await?;
        self.schedule_pin_change(t, ctx.user, false).await?;
        audit.success = true;
        audit.info = "PIN successfully set.".into();
        Ok(CheckOutcome::Accept {
            message: "PIN successfully set.".into(),
            token: Some(token),
        })
    }

    /// Sets (or clears) `t`'s `next_pin_change` after a PIN was set: by an admin, now when
    /// ENROLL `change_pin_on_first_use` applies; by the user, in `change_pin_every` days, or
    /// not at all without that policy (privacyIDEA's `save_pin_change`).
    pub(crate) async fn schedule_pin_change(
        &self,
        t: &TokenRow,
        owner: Option<&User>,
        by_admin: bool,
    ) -> Result<()> {
        let enroll = self.enrollment_policies(owner, None).await?;
        let now = self.clock().now();
        let at = if by_admin {
            if !enroll
                .policies
                .uses("enrollment", "change_pin_on_first_use")
                || !enroll
                    .policies
                    .flag("enrollment", "change_pin_on_first_use", &enroll.ctx())?
            {
                return Ok(());
            }
            Some(now)
        } else {
            enroll
                .policies
                .text("enrollment", "change_pin_every", &enroll.ctx())?
                .and_then(|v| v.trim().trim_end_matches(['d', 'D']).parse::<i64>().ok())
                .map(|days| now + chrono::Duration::days(days))
        };
        match at {
            Some(at) => {
                let when = at
                    .with_timezone(&chrono::Local)
                    .format(DATE_FORMAT)
                    .to_string();
                self.store()
                    .token_set_info(t.id, "next_pin_change", &when)
                    .await?;
            }
            None => {
                self.store()
                    .token_write_info(t.id, &[], &["next_pin_change"])
                    .await?;
            }
        }
        Ok(())
    }
}
