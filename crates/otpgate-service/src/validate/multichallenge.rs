//! privacyIDEA's `enroll_via_multichallenge=sms`: a user whom a policy lets in without a
//! token (`passOnNoToken`, `passthru`) enrolls their first phone during that very login. The
//! ACCEPT becomes a challenge asking for the number (`enroll_via_multichallenge_text`,
//! default `Please enter your new phone number!`); the answer, in the same transaction, is
//! the number, which gets an SMS; the answer to that is the OTP, which finishes the token and
//! the login. The new token waits in `clientwait` (for its number), then `verify` (for its
//! OTP), unusable for logins until then; one left half-way is dropped at the user's next
//! login, which starts over.

use super::{Challenges, CheckOutcome, Ctx, Rejected, SentChallenge, TokenRef, max_wrong};
use crate::audit::AuditEntry;
use crate::call::RequestData;
use crate::policy::ActionValue;
use crate::tokens::{TokenInit, UserRef};
use crate::{Result, Services};
use otpgate_store::{Opened, TokenRow};

/// The default prompt for the number.
pub const ENROLL_PROMPT: &str = "Please enter your new phone number!";
/// The token info that marks a token enrolled during a login.
const MARK: &str = "enroll_via_multichallenge";

/// The user's enrollment during a login that is under way (or was left), if any.
pub(super) fn pending(tokens: &[TokenRow]) -> Option<&TokenRow> {
    tokens.iter().find(|t| {
        t.info.contains_key(MARK) && matches!(t.rollout_state.as_str(), "clientwait" | "verify")
    })
}

impl Services {
    /// After a pass-through ACCEPT of user `ctx.user` (no token of theirs answered): with
    /// `enroll_via_multichallenge=sms`, a new SMS token waiting for its number and the
    /// challenge that asks for it, replacing the ACCEPT; None when no enrollment starts (no
    /// policy, or the token limits refuse one — the login stays accepted).
    pub(super) async fn start_enrollment(
        &self,
        ctx: &Ctx<'_>,
        request: Option<&RequestData>,
        audit: &mut AuditEntry,
    ) -> Result<Option<CheckOutcome>> {
        let Some(user) = ctx.user else {
            return Ok(None);
        };
        if !ctx.policies.uses("authentication", MARK) {
            return Ok(None);
        }
        match ctx.action(MARK)? {
            Some((ActionValue::Value(v), _)) if v.trim().eq_ignore_ascii_case("sms") => {}
            _ => return Ok(None),
        }
        if let Err(e) = self.check_token_limits(user, None, request).await {
            audit.action_detail = format!("no enrollment via multichallenge: {e}");
            return Ok(None);
        }
        let req = TokenInit {
            tokentype: Some("sms".into()),
            user: Some(UserRef {
                login: user.login.clone(),
                realm: Some(user.realm.clone()),
            }),
            dynamic_phone: true,
            description: Some("enrolled via multichallenge".into()),
            ..Default::default()
        };
        let row = self.init_token_in(&req, None, audit, "clientwait").await?;
        self.store().token_set_info(row.id, MARK, "True").await?;
        let tid = self.rng().digits(20)?;
        let now = self.clock().now_ms();
        let expires = now + ctx.cfg.challenge_validity_secs * 1000;
        let opened = self
            .store()
            .challenge_open(&[], row.id, &tid, &row.serial, "", now, expires, None)
            .await?;
        if !matches!(opened, Opened::Open { .. }) {
            self.store().token_delete(row.id).await?;
            return Ok(None);
        }
        let prompt = ctx
            .text("enroll_via_multichallenge_text")?
            .unwrap_or_else(|| ENROLL_PROMPT.to_owned());
        audit.serial = row.serial.clone();
        audit.token_type = "sms".into();
        audit.action_detail = format!("enrollment of {} via multichallenge", row.serial);
        Ok(Some(CheckOutcome::Challenge(Challenges {
            transaction_id: tid,
            sent: vec![SentChallenge {
                serial: row.serial,
                prompt: prompt.clone(),
                valid_until_ms: expires,
                gateway: None,
                to: String::new(),
            }],
            messages: vec![prompt],
            preferred_client_mode: "interactive".into(),
            enrollment: true,
            ..Default::default()
        })))
    }

    /// The answer to a step of an enrollment during a login: the number (the token waits in
    /// `clientwait`; the answer is an SMS to it, in the same transaction) or that SMS's OTP
    /// (the token waits in `verify`; the answer finishes it and accepts the login).
    pub(super) async fn continue_enrollment(
        &self,
        pending: TokenRow,
        tid: &str,
        pass: &str,
        ctx: &Ctx<'_>,
        audit: &mut AuditEntry,
    ) -> Result<CheckOutcome> {
        audit.serial = pending.serial.clone();
        audit.token_type = "sms".into();
        let token = TokenRef {
            serial: pending.serial.clone(),
            otplen: None,
        };
        let refused = |message: &str| {
            CheckOutcome::Reject(Rejected {
                token: Some(token.clone()),
                ..Rejected::because(message)
            })
        };
        if pending.rollout_state == "clientwait" {
            let realm = ctx.user.map(|u| u.realm.as_str()).unwrap_or_default();
            let Ok(number) = crate::limits::enrollment_number(ctx.cfg, realm, pass.trim()) else {
                // The number may be typed again while the challenge lives.
                for c in self.store().challenges_by_tid(tid).await? {
                    self.store()
                        .challenge_inc_received(c.id, max_wrong(ctx.cfg))
                        .await?;
                }
                return Ok(refused("The phone number is not valid."));
            };
            if !self.store().token_enroll_phone(pending.id, &number).await? {
                return Ok(refused("Response did not match the challenge."));
            }
            let Some(row) = self.store().token_by_serial(&pending.serial).await? else {
                return Ok(refused("Response did not match the challenge."));
            };
            let live = self.live(row)?;
            let mut out = self
                .create_challenges_in(tid, &[&live], ctx, None, false, audit)
                .await?;
            if let CheckOutcome::Challenge(c) = &mut out {
                c.enrollment = true;
            }
            return Ok(out);
        }
        let id = pending.id;
        if self
            .answer_enrollment_challenge(pending, pass.trim())
            .await?
            && self.store().token_finish_verify(id, None).await?
        {
            self.store().token_write_info(id, &[], &[MARK]).await?;
            audit.success = true;
            audit.info = "Found matching challenge".into();
            return Ok(CheckOutcome::Accept {
                message: "Found matching challenge".into(),
                token: Some(token),
            });
        }
        Ok(refused("Response did not match the challenge."))
    }
}
