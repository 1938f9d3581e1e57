//! Whom a token belongs to (`/token/assign`, `/token/unassign`, `/token/copyuser`) and the
//! realms it is in (`/token/realm/<serial>`), with privacyIDEA's parameters and answers.

use super::{TokenTarget, UserRef, not_found, owner_of};
use crate::call::{Outcome, RequestData, Scope};
use crate::users::User;
use crate::{Result, ServiceError, Services};
use chrono::SecondsFormat;
use otpgate_store::TokenRow;

/// `POST /token/assign`'s parameters.
#[derive(Debug, Clone, Default)]
pub struct Assignment {
    /// `serial` (required).
    pub serial: Option<String>,
    /// `user` and `realm` (required).
    pub user: Option<UserRef>,
    /// `pin`: set with the assignment when given.
    pub pin: Option<String>,
}

/// What `/token/unassign` did: privacyIDEA answers a count for one serial, else this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unassigned {
    /// One token named and found: how many were unassigned (privacyIDEA's old answer).
    One(i64),
    /// Several tokens: how many were unassigned and the serials not found.
    Many {
        /// Tokens unassigned.
        count_success: i64,
        /// Serials that named no token.
        failed: Vec<String>,
        /// Serials of tokens the admin's policies do not reach (left alone).
        unauthorized: Vec<String>,
    },
}

impl Outcome for Unassigned {
    fn value_is_true(&self) -> bool {
        match self {
            Unassigned::One(n) => *n > 0,
            Unassigned::Many { count_success, .. } => *count_success > 0,
        }
    }
}

impl Services {
    /// `POST /token/assign`: gives an unassigned token to a user (and sets its PIN when
    /// given); privacyIDEA's error 1103 when it belongs to someone already.
    pub async fn assign_token(&self, a: Assignment, cx: &mut Scope) -> Result<bool> {
        let serial = crate::nonblank(&a.serial).ok_or_else(|| ServiceError::missing("serial"))?;
        let named = a
            .user
            .as_ref()
            .ok_or_else(|| ServiceError::missing("user"))?;
        cx.audit.serial = serial.clone();
        cx.audit.user = named.login.clone();
        cx.audit.realm = named.realm.clone().unwrap_or_default();
        let token = self.token_row(&serial).await?;
        cx.audit.token_type = token.tokentype.clone();
        not_revoked(&token)?;
        // As privacyIDEA: a token that has an owner is refused before the user is looked up.
        if let Some(o) = &token.owner {
            let login = self
                .user_by_id(&o.resolver, &o.user_id, &o.realm)
                .await?
                .map(|u| u.login)
                .unwrap_or_else(|| o.user_id.clone());
            return Err(already_assigned(&login, &o.realm, &o.resolver));
        }
        // The admin must reach the token (one without owner by its realms) and the user.
        self.reach_token(cx, &token, true).await?;
        let Some(user) = self.named_user(Some(named)).await? else {
            return Err(ServiceError::missing("user"));
        };
        cx.reach(&user.target())?;
        let request = cx.request();
        self.check_token_limits(&user, Some(&serial), request.as_deref())
            .await?;
        cx.audit.user = user.login.clone();
        cx.audit.realm = user.realm.clone();
        cx.audit.resolver = user.resolver.clone();
        let pin_hash = match &a.pin {
            Some(pin) => {
                self.check_pin_policy(cx, pin, Some(&user.target())).await?;
                Some(self.hash_secret(pin).await?)
            }
            None => None,
        };
        let now = self
            .clock()
            .now()
            .to_rfc3339_opts(SecondsFormat::Secs, false);
        let owner = owner_of(&user);
        if !self
            .store()
            .token_assign(token.id, &owner, pin_hash.as_deref(), &now)
            .await?
        {
            // Another admin assigned it between the read and the insert.
            return Err(already_assigned(&user.login, &user.realm, &user.resolver));
        }
        if a.pin.is_some() {
            cx.audit.action_detail.push_str("otppin set, ");
        }
        Ok(true)
    }

    /// `POST /token/unassign`: takes tokens from their owners (`serial`, a comma-separated
    /// list or `serials`; else all tokens of `user`). The PIN is cleared, the fail counter
    /// reset and the owner's realm stays a token realm, as in privacyIDEA.
    pub async fn unassign_tokens(
        &self,
        serials: Vec<String>,
        user: Option<UserRef>,
        cx: &mut Scope,
    ) -> Result<Unassigned> {
        let mut unauthorized = Vec::new();
        let (tokens, failed) = if serials.is_empty() {
            let target = TokenTarget { serial: None, user };
            (self.addressed_tokens(&target, cx).await?, Vec::new())
        } else {
            let mut found = Vec::new();
            let mut failed = Vec::new();
            for s in &serials {
                match self.store().token_by_serial(s).await? {
                    Some(t) => found.push(t),
                    None => failed.push(s.clone()),
                }
            }
            if found.is_empty() {
                return Err(not_found(&serials.join(",")));
            }
            let (reached, refused) = self.reached_tokens(cx, found).await?;
            if reached.is_empty() {
                return Err(crate::call::not_allowed(cx.right()));
            }
            // Only the admin's own tokens tell whether they are revoked.
            for t in &reached {
                not_revoked(t)?;
            }
            unauthorized = refused;
            let found = reached;
            self.note_tokens(&mut cx.audit, &found).await?;
            (found, failed)
        };
        let empty_pin = self.hash_secret("").await?;
        let mut n = 0;
        for t in &tokens {
            self.store().token_unassign(t.id, &empty_pin).await?;
            n += 1;
        }
        Ok(
            if tokens.len() == 1 && failed.is_empty() && unauthorized.is_empty() {
                Unassigned::One(n)
            } else {
                Unassigned::Many {
                    count_success: n,
                    failed,
                    unauthorized,
                }
            },
        )
    }

    /// `POST /token/copyuser` (`from`, `to`): token `to` gets the owner and realms of token
    /// `from` (its own owner, PIN and challenges are dropped first).
    pub async fn copy_token_user(&self, from: &str, to: &str, cx: &mut Scope) -> Result<bool> {
        let (src, dst) = self.copy_pair(from, to).await?;
        self.note_tokens(&mut cx.audit, std::slice::from_ref(&src))
            .await?;
        not_revoked(&dst)?;
        self.reach_token(cx, &src, false).await?;
        self.reach_token(cx, &dst, false).await?;
        cx.audit.serial = format!("{from},{to}");
        let empty_pin = self.hash_secret("").await?;
        if !self
            .store()
            .token_copy_owner(src.id, dst.id, &empty_pin)
            .await?
        {
            return Err(ServiceError::TokenAdmin(format!(
                "The token {from} has no owner that could be copied."
            )));
        }
        Ok(true)
    }

    /// The two tokens of a copy; privacyIDEA's errors 1016 and 1017 when one is missing.
    pub(super) async fn copy_pair(&self, from: &str, to: &str) -> Result<(TokenRow, TokenRow)> {
        let src = match from.trim() {
            "" => None,
            s => self.store().token_by_serial(s).await?,
        }
        .ok_or_else(|| {
            ServiceError::TokenAdminId(1016, "No unique token to copy from found".into())
        })?;
        let dst = match to.trim() {
            "" => None,
            s => self.store().token_by_serial(s).await?,
        }
        .ok_or_else(|| {
            ServiceError::TokenAdminId(1017, "No unique token to copy to found".into())
        })?;
        if src.id == dst.id {
            return Err(ServiceError::Parameter(
                "The tokens to copy from and to are the same.".into(),
            ));
        }
        Ok((src, dst))
    }

    /// `POST /token/realm/<serial>` with `realms` (comma-separated): replaces the realms the
    /// token is in. Realms that do not exist are dropped, the owner's realm always stays.
    pub async fn set_token_realms(
        &self,
        serial: &str,
        realms: &[String],
        cx: &mut Scope,
    ) -> Result<bool> {
        let token = self.token_row(serial).await?;
        self.note_tokens(&mut cx.audit, std::slice::from_ref(&token))
            .await?;
        not_revoked(&token)?;
        self.reach_token(cx, &token, false).await?;
        let known = self.realm_names().await?;
        let mut keep: Vec<String> = realms
            .iter()
            .map(|r| r.trim())
            .filter(|r| known.iter().any(|k| k == r))
            .map(str::to_owned)
            .collect();
        if let Some(o) = &token.owner {
            keep.retain(|r| *r != o.realm);
        }
        keep.sort();
        keep.dedup();
        self.store().token_set_realms(token.id, &keep).await?;
        cx.audit.action_detail = format!("realms={}, ", keep.join(","));
        Ok(true)
    }

    /// The ENROLL-scope limits on a user's tokens (`max_token_per_user`,
    /// `max_active_token_per_user` and their `sms_` forms; the largest value of the matching
    /// policies counts), checked before token `serial` (new, or not yet the user's) becomes
    /// theirs; privacyIDEA's messages (403).
    pub(crate) async fn check_token_limits(
        &self,
        user: &User,
        serial: Option<&str>,
        request: Option<&RequestData>,
    ) -> Result<()> {
        let enroll = self.enrollment_policies(Some(user), request).await?;
        let ctx = enroll.ctx();
        let limit = |action: &str| -> Result<Option<usize>> {
            Ok(enroll
                .policies
                .values("enrollment", action, &ctx)?
                .iter()
                .filter_map(|v| v.parse::<usize>().ok())
                .max())
        };
        let limits = [
            (
                "sms_max_token_per_user",
                false,
                "The number of tokens of type sms for this user is limited!",
            ),
            (
                "max_token_per_user",
                false,
                "The number of tokens for this user is limited!",
            ),
            (
                "sms_max_active_token_per_user",
                true,
                "The number of active tokens of type sms for this user is limited!",
            ),
            (
                "max_active_token_per_user",
                true,
                "The number of active tokens for this user is limited!",
            ),
        ];
        let mut set = Vec::new();
        for (action, active_only, message) in limits {
            if let Some(max) = limit(action)? {
                set.push((max, active_only, message));
            }
        }
        if set.is_empty() {
            return Ok(());
        }
        let tokens = self.store().tokens_of_user(&owner_of(user)).await?;
        if serial.is_some_and(|s| tokens.iter().any(|t| t.serial == s)) {
            return Ok(());
        }
        for (max, active_only, message) in set {
            let have = tokens.iter().filter(|t| !active_only || t.active).count();
            if have >= max {
                return Err(ServiceError::Policy(message.into()));
            }
        }
        Ok(())
    }

    /// One token by serial; privacyIDEA's "No token found" when there is none.
    pub(super) async fn token_row(&self, serial: &str) -> Result<TokenRow> {
        let serial = serial.trim();
        if serial.is_empty() {
            return Err(ServiceError::missing("serial"));
        }
        self.store()
            .token_by_serial(serial)
            .await?
            .ok_or_else(|| not_found(serial))
    }
}

/// privacyIDEA's `check_token_locked`: a revoked token cannot be changed (1007).
pub(super) fn not_revoked(t: &TokenRow) -> Result<()> {
    if t.revoked {
        Err(ServiceError::TokenLocked)
    } else {
        Ok(())
    }
}

fn already_assigned(login: &str, realm: &str, resolver: &str) -> ServiceError {
    ServiceError::TokenAdminId(
        1103,
        format!(
            "Token already assigned to user User(login='{login}', realm='{realm}', resolver='{resolver}')"
        ),
    )
}
