//! Single changes to tokens that helpdesk scripts and privacyIDEA's admin client make:
//! revoke, description, one token info key, copy a PIN, a random PIN, and ending challenges.

use super::owners::not_revoked;
use super::{TokenAttributes, TokenTarget, count};
use crate::call::{Outcome, Scope};
use crate::users::User;
use crate::{Result, ServiceError, Services};
use otpgate_core::hotp::HashLib;
use otpgate_core::reach::Target;

/// What `/token/setrandompin` did: how many PINs were set, and the PIN, which privacyIDEA
/// hands back once in `detail.pin` (it is never audited or logged).
#[derive(Clone, PartialEq, Eq)]
pub struct RandomPinSet {
    /// PINs set.
    pub count: i64,
    /// The new PIN.
    pub pin: String,
}

impl std::fmt::Debug for RandomPinSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RandomPinSet")
            .field("count", &self.count)
            .field("pin", &"__CENSORED__")
            .finish()
    }
}

impl Outcome for RandomPinSet {
    fn value_is_true(&self) -> bool {
        self.count > 0
    }
}

/// What ending challenges did: privacyIDEA's `{"status": true, "deleted": n}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChallengesDeleted {
    /// Challenges removed.
    pub deleted: u64,
}

impl Outcome for ChallengesDeleted {}

/// The longest token info key and value otpgate stores.
const MAX_INFO_KEY: usize = 255;
const MAX_INFO_VALUE: usize = 2000;

impl Services {
    /// `POST /token/revoke[/<serial>]`: revokes tokens for good (revoked, locked, disabled;
    /// open challenges end): how many tokens were addressed.
    pub async fn revoke_tokens(&self, target: TokenTarget, cx: &mut Scope) -> Result<i64> {
        let tokens = self.addressed_tokens(&target, cx).await?;
        for t in &tokens {
            self.store().token_revoke(t.id).await?;
        }
        Ok(count(tokens.len()))
    }

    /// `POST /token/description[/<serial>]` with `description` (may be empty).
    pub async fn set_token_description(
        &self,
        serial: &str,
        description: Option<String>,
        cx: &mut Scope,
    ) -> Result<bool> {
        let description = description.ok_or_else(|| ServiceError::missing("description"))?;
        let token = self.token_row(serial).await?;
        self.note_tokens(&mut cx.audit, std::slice::from_ref(&token))
            .await?;
        not_revoked(&token)?;
        self.reach_token(cx, &token, false).await?;
        if description.chars().count() > 80 {
            return Err(ServiceError::Parameter(
                "The description is longer than 80 characters.".into(),
            ));
        }
        self.store()
            .token_set_attributes(token.id, None, None, Some(&description))
            .await?;
        cx.audit.action_detail = format!("description='{}'", description.replace('\'', "\\'"));
        Ok(true)
    }

    /// `POST /token/info/<serial>/<key>` with `value`. The SMS keys (`phone`,
    /// `dynamic_phone`, `sms.identifier`) are checked as `POST /token/set` checks them, and
    /// `hashlib` must name a hash otpgate computes, so no info write can leave a token that
    /// sends to an unchecked number or computes wrong OTPs.
    pub async fn set_token_info(
        &self,
        serial: &str,
        key: &str,
        value: Option<String>,
        cx: &mut Scope,
    ) -> Result<bool> {
        // privacyIDEA's `get_required`: an empty value is a missing one.
        let value = value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ServiceError::missing("value"))?;
        let token = self.token_row(serial).await?;
        self.note_tokens(&mut cx.audit, std::slice::from_ref(&token))
            .await?;
        not_revoked(&token)?;
        self.reach_token(cx, &token, false).await?;
        let key = key.trim();
        if key.is_empty() || key.len() > MAX_INFO_KEY || value.len() > MAX_INFO_VALUE {
            return Err(ServiceError::Parameter(format!(
                "A token info key has 1 to {MAX_INFO_KEY} characters and a value at most {MAX_INFO_VALUE}."
            )));
        }
        let sms = match key {
            "phone" => Some(TokenAttributes {
                phone: Some(value.clone()),
                ..Default::default()
            }),
            "dynamic_phone" => Some(TokenAttributes {
                dynamic_phone: Some(otpgate_core::params::is_true(&value)),
                ..Default::default()
            }),
            "sms.identifier" => Some(TokenAttributes {
                sms_identifier: Some(value.clone()),
                ..Default::default()
            }),
            _ => None,
        };
        if let Some(a) = sms {
            self.set_token_attributes(TokenTarget::serial(serial), a, cx)
                .await?;
        } else if key == "hashlib" {
            let h = HashLib::parse(&value)
                .map_err(|_| ServiceError::Parameter(format!("Unsupported hashlib {value}.")))?;
            self.store()
                .token_set_info(token.id, key, h.as_str())
                .await?;
        } else {
            self.store().token_set_info(token.id, key, &value).await?;
        }
        cx.audit.action_detail = format!("tokeninfo {key} set, ");
        Ok(true)
    }

    /// `DELETE /token/info/<serial>/<key>`: true when the token exists (whether or not it had
    /// the key). Keys a token cannot work without (`hashlib`; `phone` of a token that does
    /// not read the user store's number) are refused.
    pub async fn delete_token_info(&self, serial: &str, key: &str, cx: &mut Scope) -> Result<bool> {
        let token = self.token_row(serial).await?;
        self.note_tokens(&mut cx.audit, std::slice::from_ref(&token))
            .await?;
        not_revoked(&token)?;
        self.reach_token(cx, &token, false).await?;
        let sms = token.tokentype == "sms";
        let needed = match key {
            "hashlib" => true,
            // The token sends to its own number or reads the user store's: one must stay.
            "phone" => sms && !token.info.contains_key("dynamic_phone"),
            "dynamic_phone" => sms && !token.info.contains_key("phone"),
            _ => false,
        };
        if needed {
            return Err(ServiceError::Parameter(format!(
                "The token {} needs its info {key}.",
                token.serial
            )));
        }
        self.store().token_write_info(token.id, &[], &[key]).await?;
        cx.audit.action_detail = format!("tokeninfo {key} deleted, ");
        Ok(true)
    }

    /// `POST /token/copypin` (`from`, `to`): token `to` gets the PIN of token `from`.
    pub async fn copy_token_pin(&self, from: &str, to: &str, cx: &mut Scope) -> Result<bool> {
        let (src, dst) = self.copy_pair(from, to).await?;
        self.note_tokens(&mut cx.audit, std::slice::from_ref(&dst))
            .await?;
        not_revoked(&dst)?;
        self.reach_token(cx, &src, false).await?;
        self.reach_token(cx, &dst, false).await?;
        cx.audit.serial = format!("{from},{to}");
        self.store().token_set_pin(dst.id, &src.pin_hash).await?;
        Ok(true)
    }

    /// `POST /token/setrandompin[/<serial>]`: a random PIN of the length the admin policy
    /// `otp_pin_set_random` gives, with the characters `otp_pin_contents` (or
    /// `sms_otp_pin_contents`) allows; without that policy the call fails, so no admin sets a
    /// "random" PIN of their choosing.
    pub async fn set_random_pin(
        &self,
        target: TokenTarget,
        cx: &mut Scope,
    ) -> Result<RandomPinSet> {
        let serial =
            crate::nonblank(&target.serial).ok_or_else(|| ServiceError::missing("serial"))?;
        let token = self.token_row(&serial).await?;
        self.note_tokens(&mut cx.audit, std::slice::from_ref(&token))
            .await?;
        not_revoked(&token)?;
        self.reach_token(cx, &token, false).await?;
        let policies = self.policies().await?;
        let whom = self.whom(&token, true).await?;
        let target = whom.target(false);
        let unique = |action: &str| admin_value(&policies, cx, action, Some(&target));
        let size = unique("otp_pin_set_random")?
            .ok_or_else(|| {
                ServiceError::TokenAdmin(
                    "You need to specify a policy 'otp_pin_set_random' in scope admin.".into(),
                )
            })?
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=64).contains(n))
            .ok_or_else(|| {
                ServiceError::Policy("otp_pin_set_random must be a length of 1 to 64.".into())
            })?;
        let contents = match unique(&format!("{}_otp_pin_contents", token.tokentype))? {
            Some(c) => Some(c),
            None => unique("otp_pin_contents")?,
        };
        let pin = otpgate_core::random_pin::random_pin(self.rng(), size, contents.as_deref())?;
        let hash = self.hash_secret(&pin).await?;
        self.store().token_set_pin(token.id, &hash).await?;
        cx.audit.action_detail = "otppin (random), ".into();
        Ok(RandomPinSet { count: 1, pin })
    }

    /// Refuses a PIN an admin sets (`/token/init`, `/token/setpin`, `/token/assign`) that the
    /// admin policies `otp_pin_minlength`, `otp_pin_maxlength` and `otp_pin_contents` (or
    /// their `sms_` forms) do not allow, with privacyIDEA's messages (403).
    /// `target`: whom the PIN is for (the token's owner, or the user it goes to; None when
    /// unknown: every PIN policy of the admin counts, as privacyIDEA's).
    pub(crate) async fn check_pin_policy(
        &self,
        cx: &Scope,
        pin: &str,
        target: Option<&Target<'_>>,
    ) -> Result<()> {
        if cx.admin().is_none() {
            return Ok(());
        }
        let policies = self.policies().await?;
        let value = |action: &str| -> Result<Option<String>> {
            match admin_value(&policies, cx, &format!("sms_{action}"), target)? {
                Some(v) => Ok(Some(v)),
                None => admin_value(&policies, cx, action, target),
            }
        };
        pin_rules(pin, value)
    }

    /// The user-scope PIN rules (`otp_pin_minlength`, `otp_pin_maxlength`,
    /// `otp_pin_contents`, their `sms_` forms winning) for a PIN `user` sets themselves.
    pub(crate) async fn check_user_pin(&self, user: &User, pin: &str) -> Result<()> {
        let enroll = self.enrollment_policies(Some(user), None).await?;
        let ctx = enroll.ctx();
        let value = |action: &str| -> Result<Option<String>> {
            match enroll
                .policies
                .text("user", &format!("sms_{action}"), &ctx)?
            {
                Some(v) => Ok(Some(v)),
                None => Ok(enroll.policies.text("user", action, &ctx)?),
            }
        };
        pin_rules(pin, value)
    }

    /// `DELETE /token/challenges/transaction/<transaction_id>`: ends a login in progress.
    pub async fn cancel_challenge(&self, tid: &str, cx: &mut Scope) -> Result<ChallengesDeleted> {
        let serials: Vec<String> = self
            .store()
            .challenges_by_tid(tid)
            .await?
            .into_iter()
            .map(|c| c.serial)
            .collect();
        // Every token of the transaction must be the admin's to end (privacyIDEA refuses the
        // whole call otherwise).
        for serial in &serials {
            if let Some(t) = self.store().token_by_serial(serial).await? {
                self.reach_token(cx, &t, false).await?;
            }
        }
        let deleted = self.store().challenge_delete_tid(tid).await?;
        cx.audit.serial = serials.join(",");
        cx.audit.info = format!("Cancelled {deleted} challenge(s) for transaction {tid}");
        Ok(ChallengesDeleted { deleted })
    }

    /// `DELETE /token/challenges/expired`: removes expired challenges.
    pub async fn delete_expired_challenges(&self, cx: &mut Scope) -> Result<ChallengesDeleted> {
        let now = self.clock().now_ms();
        let deleted = self.store().challenge_purge_all_expired(now).await?;
        cx.audit.info = format!("Deleted {deleted} entries from challenges");
        Ok(ChallengesDeleted { deleted })
    }
}

/// privacyIDEA's `check_pin`: `pin` against the minimum and maximum length and the contents
/// the policies give (`value(action)`), with privacyIDEA's 403 messages.
fn pin_rules(pin: &str, value: impl Fn(&str) -> Result<Option<String>>) -> Result<()> {
    let len = pin.chars().count();
    let number = |v: &str| v.trim().parse::<usize>().unwrap_or(0);
    if let Some(min) = value("otp_pin_minlength")?
        && len < number(&min)
    {
        return Err(ServiceError::Policy(format!(
            "The minimum OTP PIN length is {}",
            min.trim()
        )));
    }
    if let Some(max) = value("otp_pin_maxlength")?
        && len > number(&max)
    {
        return Err(ServiceError::Policy(format!(
            "The maximum OTP PIN length is {}",
            max.trim()
        )));
    }
    if let Some(contents) = value("otp_pin_contents")? {
        otpgate_core::random_pin::check_contents(pin, &contents).map_err(ServiceError::Policy)?;
    }
    Ok(())
}

/// The one value of admin-scope `action` for the calling admin acting on `target` (None:
/// unset): the best priority decides, and different values there are a conflict, as in
/// privacyIDEA's `action_values(unique=True)`.
pub(crate) fn admin_value(
    policies: &otpgate_core::policy::Policies,
    cx: &Scope,
    action: &str,
    target: Option<&Target<'_>>,
) -> Result<Option<String>> {
    let all = policies.admin_values_for(cx.admin().unwrap_or_default(), action, target);
    let Some(best) = all.first().map(|(priority, _, _)| *priority) else {
        return Ok(None);
    };
    let top: Vec<&(i64, String, String)> = all.iter().filter(|(p, _, _)| *p == best).collect();
    let mut values: Vec<&str> = top.iter().map(|(_, v, _)| v.as_str()).collect();
    values.sort_unstable();
    values.dedup();
    match values.as_slice() {
        [one] => Ok(Some((*one).to_owned())),
        _ => {
            let names: Vec<String> = top.iter().map(|(_, _, n)| format!("'{n}'")).collect();
            Err(ServiceError::Policy(format!(
                "There are policies with conflicting actions: [{}]",
                names.join(", ")
            )))
        }
    }
}
