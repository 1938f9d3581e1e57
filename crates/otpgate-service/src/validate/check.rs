//! The decision of a login attempt: who it is for, which tokens take part, and whether the
//! pass is a PIN (a challenge goes out), an answer to a challenge, or PIN and OTP in one.

use super::{
    CheckOutcome, CheckRequest, Checked, Ctx, HIDDEN, Live, Rejected, Shown, TokenRef, max_wrong,
    may_take_part, named, note_policies, others, unfit_messages, unique_join,
};
use super::{authz, multichallenge, pinchange};
use crate::audit::AuditEntry;
use crate::call::Scope;
use crate::facts::RequestFacts;
use crate::limits::send_number;
use crate::policy::{ActionValue, PolicyContext};
use crate::settings::SystemConfig;
use crate::tokens::owner_of;
use crate::{Result, ServiceError, Services};
use otpgate_core::hotp;
use otpgate_store::{ChallengeRow, TokenRow};
use std::sync::Mutex;
use std::sync::atomic::Ordering;

/// How an accepted challenge leaves the rest of its transaction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rest {
    /// The transaction has other challenges: they go too.
    Delete,
    /// The consumed challenge was the transaction's only one.
    Nothing,
}

impl Services {
    /// `/validate/check`: a login attempt (also RADIUS and the web sign-in).
    pub async fn check(&self, req: CheckRequest, cx: &mut Scope) -> Result<CheckOutcome> {
        Ok(self.check_shown(req, cx).await?.outcome)
    }

    /// [`Services::check`], with what the answer shows (authorization policies).
    pub async fn check_shown(&self, req: CheckRequest, cx: &mut Scope) -> Result<Checked> {
        let used = Mutex::new(Vec::new());
        let r = self.on_one_snapshot(self.check_with(req, cx, &used)).await;
        note_policies(&mut cx.audit, &used);
        r
    }

    async fn check_with(
        &self,
        mut req: CheckRequest,
        cx: &mut Scope,
        used: &Mutex<Vec<String>>,
    ) -> Result<Checked> {
        {
            let (user_param, serial_param) = named(&req.user, &req.serial)?;
            if user_param.is_some_and(|u| u.contains('%')) {
                return Err(ServiceError::Parameter("Invalid user.".into()));
            }
            if serial_param.is_some_and(|s| s.contains('*')) {
                return Err(ServiceError::Parameter("Invalid serial number.".into()));
            }
        }
        if req.pass.is_none() {
            return Err(ServiceError::missing("pass"));
        }
        let (client, end_user, request) = (cx.client(), cx.end_user(), cx.request());
        // One read of the settings version for the whole check.
        let settings = self.settings().await?;
        let policies = &self.policies_now(&settings.policies);
        let cfg = &settings.config;
        // set_realm, setrealm and mangle may rewrite user, realm and pass first.
        self.rewrite_request(
            &settings,
            policies,
            &mut req,
            client,
            request.as_deref(),
            used,
        )
        .await?;
        let (user_param, serial_param) = named(&req.user, &req.serial)?;
        let pass = req.pass.clone().unwrap_or_default();
        let audit = &mut cx.audit;

        let (user, tokens) = match user_param {
            Some(login) => {
                let (login, realm, found) = self
                    .lookup_user(&settings, login, req.realm.as_deref())
                    .await?;
                audit.user = login.clone();
                audit.realm = realm.clone();
                let Some(user) = found else {
                    let facts = RequestFacts {
                        request: request.as_deref(),
                        ..Default::default()
                    };
                    let ctx = PolicyContext {
                        realm: Some(&realm),
                        user: Some(&login),
                        client,
                        facts: Some(&facts),
                        ..Default::default()
                    };
                    let outcome = self
                        .unknown_user(&login, &realm, &pass, &ctx, policies, audit)
                        .await?;
                    return Ok(Checked {
                        outcome,
                        shown: Shown::default(),
                    });
                };
                audit.resolver = user.resolver.clone();
                let mut tokens = self.store().tokens_of_user(&owner_of(&user)).await?;
                if let Some(s) = serial_param {
                    tokens.retain(|t| t.serial == s);
                    if tokens.is_empty() {
                        return Err(ServiceError::Parameter(
                            "Given serial does not belong to given user!".into(),
                        ));
                    }
                }
                (Some(user), tokens)
            }
            None => {
                let s = serial_param.unwrap_or_default();
                let t = self.store().token_by_serial(s).await?.ok_or_else(|| {
                    ServiceError::NotFound("The requested token could not be found.".into())
                })?;
                let user = match &t.owner {
                    Some(o) => self.user_by_id(&o.resolver, &o.user_id, &o.realm).await?,
                    None => None,
                };
                if let Some(u) = &user {
                    audit.user = u.login.clone();
                    audit.realm = u.realm.clone();
                    audit.resolver = u.resolver.clone();
                }
                (user, vec![t])
            }
        };
        let named = serial_param.and_then(|s| tokens.iter().find(|t| t.serial == s).cloned());
        let mut ctx = Ctx {
            user: user.as_ref(),
            policies,
            cfg,
            client,
            end_user,
            used,
            facts: RequestFacts {
                user: user.as_ref(),
                token: named.as_ref(),
                request: request.as_deref(),
            },
            realm_resolvers: settings.realm_resolvers(user.as_ref().map(|u| u.realm.as_str())),
            stale: Vec::new(),
        };
        // The authorization scope before any work: `authorized`, `application_tokentype`,
        // `last_auth`, then the login limits.
        ctx.check_authorized()?;
        let mut tokens = tokens;
        // An enrollment during an earlier step of this login (enroll_via_multichallenge):
        // this is its next step; one left half-way is dropped and the login starts over.
        let mut enrolling = None;
        if let Some(p) = multichallenge::pending(&tokens).cloned() {
            let now = self.clock().now_ms();
            let tid = req
                .transaction_id
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty());
            let answered = match tid {
                Some(tid) => self
                    .store()
                    .challenges_by_tid(tid)
                    .await?
                    .iter()
                    .any(|c| c.token_id == p.id && now < c.expires_at),
                None => false,
            };
            match tid {
                Some(tid) if answered => {
                    enrolling = Some(self.continue_enrollment(p, tid, &pass, &ctx, audit).await);
                }
                _ => {
                    self.store().token_delete(p.id).await?;
                    tokens.retain(|t| t.id != p.id);
                }
            }
        }
        // A PIN change this login asked for (change_pin_via_validate): its next step.
        let pin_changes = policies.uses("authentication", "change_pin_via_validate");
        if enrolling.is_none()
            && pin_changes
            && let Some(tid) = req
                .transaction_id
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
        {
            let rows = self.store().challenges_by_tid(tid).await?;
            if let Some((c, t)) = rows.iter().find_map(|c| {
                (c.session == pinchange::SESSION)
                    .then(|| tokens.iter().find(|t| t.id == c.token_id).map(|t| (c, t)))
                    .flatten()
            }) {
                enrolling = Some(self.pin_change_step(c, t, &pass, &ctx, audit).await);
            }
        }
        let pin_rows = if pin_changes {
            tokens.clone()
        } else {
            Vec::new()
        };
        ctx.application_tokentype(&mut tokens, req.tokentype.as_deref())?;
        let stale: Vec<TokenRow> = match ctx.last_auth_limit()? {
            Some(limit) => {
                let now = self.clock().now();
                tokens
                    .iter()
                    .filter(|t| authz::last_auth_too_old(t, limit, now))
                    .cloned()
                    .collect()
            }
            None => Vec::new(),
        };
        ctx.stale = stale.iter().map(|t| t.serial.clone()).collect();
        let rows = if policies.uses(authz::AUTHZ, "tokeninfo") {
            tokens.clone()
        } else {
            Vec::new()
        };
        // privacyIDEA's hide_specific_error_message: a rejection says only "Authentication
        // failed." (the audit keeps the reason).
        let hide = ctx.flag("hide_specific_error_message")?;
        // An answer to a step of an enrollment or a PIN change finishes that; nothing more
        // starts after it.
        let stepped = enrolling.is_some();
        let decided = match (self.within_login_limits(&ctx).await?, enrolling) {
            (Some(refused), _) => Ok(CheckOutcome::Reject(refused)),
            (None, Some(step)) => step,
            (None, None) => {
                self.decide_for(tokens, &req, serial_param.is_some(), &pass, &ctx, audit)
                    .await
            }
        };
        // A token whose PIN must change (change_pin_via_validate) asks for a new one first.
        let decided = match decided {
            Ok(CheckOutcome::Accept {
                token: Some(t),
                message,
            }) if !stepped => {
                let row = pin_rows.iter().find(|r| r.serial == t.serial);
                match row {
                    Some(row) => match self.start_pin_change(row, &ctx, audit).await? {
                        Some(challenge) => Ok(challenge),
                        None => Ok(CheckOutcome::Accept {
                            token: Some(t),
                            message,
                        }),
                    },
                    None => Ok(CheckOutcome::Accept {
                        token: Some(t),
                        message,
                    }),
                }
            }
            other => other,
        };
        // A user let in without a token may enroll their first phone now.
        let decided = match decided {
            Ok(accepted @ CheckOutcome::Accept { token: None, .. }) => {
                match self
                    .start_enrollment(&ctx, request.as_deref(), audit)
                    .await?
                {
                    Some(challenge) => Ok(challenge),
                    None => Ok(accepted),
                }
            }
            other => other,
        };
        // `last_auth`: the right answer of a token unused for too long is refused.
        let decided = match decided {
            Ok(CheckOutcome::Accept { token: Some(t), .. })
                if let Some(row) = stale.iter().find(|r| r.serial == t.serial) =>
            {
                audit.success = false;
                Ok(CheckOutcome::Reject(authz::last_auth_refusal(row)))
            }
            other => other,
        };
        let outcome = match decided? {
            CheckOutcome::Reject(r) if hide => {
                // Every refusal costs an Argon2 verification, as a wrong PIN does: no token,
                // a locked or disabled one, an unknown user all take the same time.
                if crate::call::kdf_runs() == 0 {
                    self.equal_cost_pin_check(&pass).await?;
                }
                if audit.info.is_empty() {
                    audit.info = r.message;
                }
                CheckOutcome::Reject(Rejected::because(HIDDEN))
            }
            other => other,
        };
        ctx.check_token_allowed(&outcome, &rows)?;
        let shown = ctx.shown(&outcome)?;
        Ok(Checked { outcome, shown })
    }

    /// A login for a user no resolver knows: `passOnNoUser` lets it through; otherwise an
    /// error, or, under `hide_specific_error_message`, the answer to a wrong PIN after the
    /// same Argon2 work (neither answer nor timing tells whether the name exists; the audit
    /// keeps the reason).
    async fn unknown_user(
        &self,
        login: &str,
        realm: &str,
        pass: &str,
        ctx: &PolicyContext<'_>,
        policies: &crate::policy::Policies,
        audit: &mut AuditEntry,
    ) -> Result<CheckOutcome> {
        if let Some((_, names)) = policies.action("authentication", "passOnNoUser", ctx)? {
            let message = format!(
                "user does not exist, accepted due to '{}'",
                names.join(", ")
            );
            audit.policies = names.join(",");
            audit.info = message.clone();
            return Ok(CheckOutcome::Accept {
                message,
                token: None,
            });
        }
        let unknown = format!("User <{login}@{realm}> does not exist.");
        let hide = match policies.action("authentication", "hide_specific_error_message", ctx)? {
            Some((ActionValue::Flag, _)) => true,
            Some((ActionValue::Value(v), _)) => otpgate_core::params::is_true(&v),
            None => false,
        };
        if hide {
            self.equal_cost_pin_check(pass).await?;
            audit.info = unknown;
            return Ok(CheckOutcome::Reject(Rejected::because(HIDDEN)));
        }
        Err(ServiceError::User(unknown))
    }

    /// privacyIDEA's `passthru_assign=<pin:>N<:window>` after a RADIUS pass-through: the pass
    /// is a PIN and an N-digit OTP (the PIN first with `pin:N`, last with `N:pin`); the first
    /// unassigned SMS token of the user's realm whose HOTP, within `window` (100) steps of its
    /// counter, is that OTP goes to the user with that PIN. Its serial.
    async fn assign_by_otp(
        &self,
        user: &crate::users::User,
        pass: &str,
        ctx: &Ctx<'_>,
    ) -> Result<Option<String>> {
        let Some(rule) = ctx.text("passthru_assign")? else {
            return Ok(None);
        };
        let parts: Vec<&str> = rule.split(':').map(str::trim).collect();
        let pin_first = parts.first() == Some(&"pin");
        let (Some(len), window) = (
            parts
                .get(usize::from(pin_first))
                .and_then(|n| n.parse::<usize>().ok()),
            parts
                .get(2)
                .and_then(|w| w.parse::<i64>().ok())
                .unwrap_or(100),
        ) else {
            tracing::warn!(rule = %rule, "invalid passthru_assign value");
            return Ok(None);
        };
        let chars: Vec<char> = pass.chars().collect();
        if parts.len() < 2 || chars.len() < len {
            return Ok(None);
        }
        let (pin, otp): (String, String) = if pin_first {
            let (p, o) = chars.split_at(chars.len() - len);
            (p.iter().collect(), o.iter().collect())
        } else {
            let (o, p) = chars.split_at(len);
            (p.iter().collect(), o.iter().collect())
        };
        let filter = otpgate_store::TokenFilter {
            tokentype: Some("sms".into()),
            realm: Some(user.realm.clone()),
            assigned: Some(false),
            ..Default::default()
        };
        let (candidates, _) = self.store().token_list(&filter, 1, 1000, "serial").await?;
        for row in candidates {
            if !row.state().usable() {
                continue;
            }
            let t = self.live(row)?;
            for counter in t.row.count..t.row.count + window {
                if !hotp::otp_eq(&otp, &t.otp(counter)?) {
                    continue;
                }
                let hash = self.hash_secret(&pin).await?;
                let now = self
                    .clock()
                    .now()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
                if self
                    .store()
                    .token_assign(t.row.id, &owner_of(user), Some(&hash), &now)
                    .await?
                {
                    self.store()
                        .token_auth_success(t.row.id, counter + 1)
                        .await?;
                    return Ok(Some(t.row.serial.clone()));
                }
                break;
            }
        }
        Ok(None)
    }

    /// The tokens of the attempt: SMS tokens only, not revoked, with expired lockouts lifted;
    /// then the attempts reserved and the pass judged.
    async fn decide_for(
        &self,
        tokens: Vec<TokenRow>,
        req: &CheckRequest,
        by_serial: bool,
        pass: &str,
        ctx: &Ctx<'_>,
        audit: &mut AuditEntry,
    ) -> Result<CheckOutcome> {
        let tokens: Vec<TokenRow> = tokens
            .into_iter()
            .filter(|t| t.tokentype == "sms")
            .collect();
        // `disabled_token_types=sms`: the user's SMS tokens take no part (they still count as
        // tokens: no pass-through).
        if !tokens.is_empty()
            && ctx.policies.uses("authentication", "disabled_token_types")
            && ctx
                .values("disabled_token_types")?
                .iter()
                .flat_map(|v| v.split_whitespace())
                .any(|t| t.eq_ignore_ascii_case("sms"))
        {
            return Ok(CheckOutcome::Reject(Rejected::because(
                "No suitable token found for authentication.",
            )));
        }
        // A user with tokens under another realm (their resolver sits in several) has a second
        // factor: no pass-through may skip it by naming the other realm.
        let has_tokens_elsewhere = match (tokens.is_empty(), ctx.user) {
            (true, Some(u)) => {
                self.store()
                    .user_has_tokens_anywhere(&u.resolver, &u.uid)
                    .await?
            }
            _ => false,
        };
        if tokens.is_empty() && has_tokens_elsewhere {
            return Ok(CheckOutcome::Reject(Rejected::because(
                "The user has no tokens assigned",
            )));
        }
        if tokens.is_empty() {
            if let Some((_, names)) = ctx.action("passOnNoToken")? {
                audit.policies = names.join(",");
                return Ok(CheckOutcome::Accept {
                    message: format!("user has no token, accepted due to '{}'", names.join(", ")),
                    token: None,
                });
            }
            // `passthru` (privacyIDEA checks it after passOnNoToken): a user without a token
            // logs in with the user store's password — a staged rollout.
            if let (Some(user), Some((value, names))) = (ctx.user, ctx.action("passthru")?) {
                audit.policies = names.join(",");
                let names = names.join(", ");
                match value {
                    ActionValue::Value(v)
                        if !v.trim().eq_ignore_ascii_case("userstore")
                            && !otpgate_core::params::is_true(&v) =>
                    {
                        // To a RADIUS server (privacyIDEA's /radiusserver): what it accepts
                        // gets in, and `passthru_assign` may give the user a token.
                        let server = v.trim();
                        if self.radius_passthru(server, &user.login, pass).await? {
                            let mut messages = Vec::new();
                            if let Some(serial) = self.assign_by_otp(user, pass, ctx).await? {
                                messages.push(format!("auto-assigned {serial}"));
                            }
                            messages
                                .push(format!("against RADIUS server {server} due to '{names}'"));
                            return Ok(CheckOutcome::Accept {
                                message: messages.join(","),
                                token: None,
                            });
                        }
                    }
                    _ => {
                        if self.check_user_password(user, pass).await? {
                            return Ok(CheckOutcome::Accept {
                                message: format!("against userstore due to '{names}'"),
                                token: None,
                            });
                        }
                    }
                }
            }
            return Ok(CheckOutcome::Reject(Rejected::because(
                "The user has no tokens assigned",
            )));
        }
        if tokens.iter().all(|t| t.revoked) {
            return Err(ServiceError::TokenLocked);
        }
        let mut tokens: Vec<TokenRow> = tokens.into_iter().filter(|t| !t.revoked).collect();
        for t in &mut tokens {
            self.clear_expired_lockout(t, ctx.cfg).await?;
        }
        audit.token_type = "sms".into();
        audit.serial = tokens
            .iter()
            .map(|t| t.serial.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let (usable, unfit): (Vec<TokenRow>, Vec<TokenRow>) =
            tokens.into_iter().partition(may_take_part);
        if usable.is_empty() {
            return Ok(CheckOutcome::Reject(Rejected::because(unique_join(
                &unfit_messages(&unfit),
            ))));
        }
        let (usable, held) = self.reserve(usable, ctx.cfg).await?;
        if usable.is_empty() {
            if let Some(until) = held {
                let left = (until - self.clock().now_ms()).max(0);
                audit.action_detail = "verify back-off (sms.verify_backoff_secs)".into();
                return Ok(CheckOutcome::Reject(Rejected {
                    retry_after: Some((left + 999) / 1000),
                    ..Rejected::because(super::BACKED_OFF)
                }));
            }
            return Ok(CheckOutcome::Reject(Rejected::because(
                "Failcounter exceeded",
            )));
        }
        let decided = self.decide(&usable, req, by_serial, pass, ctx, audit).await;
        if decided.is_err() {
            // A failure half-way must not leave attempts counted that were never judged.
            let unsettled: Vec<&Live> = usable
                .iter()
                .filter(|t| !t.settled.load(Ordering::Relaxed))
                .collect();
            let _ = self.release(&unsettled).await;
        }
        decided
    }

    /// Everything after the attempts were reserved.
    async fn decide(
        &self,
        usable: &[Live],
        req: &CheckRequest,
        by_serial: bool,
        pass: &str,
        ctx: &Ctx<'_>,
        audit: &mut AuditEntry,
    ) -> Result<CheckOutcome> {
        let all: Vec<&Live> = usable.iter().collect();
        let mut replay = false;

        if req.otponly && by_serial {
            return self
                .answer_any_live_challenge(usable, pass, ctx, audit)
                .await;
        }
        if let Some(tid) = req
            .transaction_id
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let rows: Vec<ChallengeRow> = self
                .store()
                .challenges_by_tid(tid)
                .await?
                .into_iter()
                .filter(|c| usable.iter().any(|t| t.row.id == c.token_id))
                .collect();
            if !rows.is_empty() {
                return self.answer_challenge(usable, &rows, pass, ctx, audit).await;
            }
            // The transaction is gone (answered, expired): a pass that is the OTP a token just
            // used is a replay, not a guess. It is refused as before but not counted, so a
            // burst of replays cannot lock the token that has just logged in with it.
            for t in usable {
                if t.used_otp(pass) || self.just_used(t, pass).await? {
                    replay = true;
                    break;
                }
            }
        }

        // Challenge request: the whole pass is a token's PIN.
        let mut pin_tokens = Vec::new();
        for t in usable {
            if self.pin_matches(&t.row, pass, ctx).await? {
                pin_tokens.push(t);
            }
        }
        if !pin_tokens.is_empty() {
            self.release(&all).await?;
            if let Some(r) = self.recent_challenge(&pin_tokens, ctx, audit).await? {
                return Ok(r);
            }
            return self
                .create_challenges(
                    &pin_tokens,
                    ctx,
                    req.challenge.as_deref(),
                    req.exception,
                    audit,
                )
                .await;
        }

        // PIN + OTP in one pass (not with `force_challenge_response`: a user's pass is then a
        // PIN or an answer, never both).
        let forced = ctx.user.is_some()
            && ctx
                .policies
                .uses("authentication", "force_challenge_response")
            && ctx.flag("force_challenge_response")?;
        let mut wrong_otp: Vec<&Live> = Vec::new();
        let mut replayed: Vec<&Live> = Vec::new();
        for t in usable.iter().filter(|_| !forced) {
            let Some((pin, otp)) = split_pass(pass, t, ctx.cfg) else {
                continue;
            };
            if !self.pin_matches(&t.row, pin, ctx).await? {
                continue;
            }
            if let Some(c) = self.matching_live_challenge(t, otp, ctx.cfg).await? {
                if self.accept(t, &c, &all, Rest::Delete, ctx, audit).await? {
                    audit.info = "matching 1 tokens".into();
                    return Ok(CheckOutcome::Accept {
                        message: "matching 1 tokens".into(),
                        token: Some(t.token_ref(true)),
                    });
                }
                // The right OTP, answered first by a parallel request: no guess.
                replayed.push(t);
            } else if replay || t.used_otp(otp) {
                replayed.push(t);
            }
            wrong_otp.push(t);
        }
        if let Some(t) = wrong_otp.first() {
            let guesses = others(&wrong_otp, &replayed);
            self.keep(&guesses, true, ctx.cfg).await?;
            self.release(&others(&all, &guesses)).await?;
            let otp = split_pass(pass, t, ctx.cfg).map(|(_, otp)| otp);
            let previous = otp.is_some_and(|o| t.used_otp(o));
            audit.serial = t.row.serial.clone();
            return Ok(CheckOutcome::Reject(Rejected {
                token: Some(t.token_ref(true)),
                ..Rejected::because(if previous {
                    "wrong otp value. previous otp used again"
                } else {
                    "wrong otp value"
                })
            }));
        }
        if ctx.cfg.inc_fail_on_false_pin && !replay {
            self.keep(&all, false, ctx.cfg).await?;
        } else {
            self.release(&all).await?;
        }
        Ok(CheckOutcome::Reject(Rejected::because("wrong otp pin")))
    }

    /// Whether `pass` is the OTP of `t`'s counter as this request read it, and a parallel
    /// request has used that counter since (the request read the token just before the
    /// challenge was answered).
    async fn just_used(&self, t: &Live, pass: &str) -> Result<bool> {
        if !t.otp(t.row.count).is_ok_and(|o| hotp::otp_eq(pass, &o)) {
            return Ok(false);
        }
        let now = self.store().token_by_serial(&t.row.serial).await?;
        Ok(now.is_some_and(|n| n.id == t.row.id && n.count > t.row.count))
    }

    /// A live challenge of `t` whose OTP is `otp`. Without `sms.concurrent_challenges` only the
    /// newest challenge counts (a newer SMS invalidates older ones, as in privacyIDEA).
    pub(super) async fn matching_live_challenge(
        &self,
        t: &Live,
        otp: &str,
        cfg: &SystemConfig,
    ) -> Result<Option<ChallengeRow>> {
        let now = self.clock().now_ms();
        for c in self.store().challenges_live_by_token(t.row.id, now).await? {
            if !cfg.concurrent_challenges && c.otp_counter != t.row.count {
                continue;
            }
            if hotp::otp_eq(otp, &t.otp(c.otp_counter)?) {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// Consumes challenge `c` of `t` (one conditional DELETE: exactly once), then moves the
    /// token's counter past it, clears its fail counter and counts the login
    /// ([`otpgate_store::Store::challenge_accept`]). False when another request consumed it
    /// first.
    pub(super) async fn consume(
        &self,
        t: &Live,
        c: &ChallengeRow,
        cfg: &SystemConfig,
        stale: bool,
    ) -> Result<bool> {
        let now = self.clock().now_ms();
        let required_count = if cfg.concurrent_challenges {
            None
        } else {
            Some(c.otp_counter)
        };
        let last_auth = self.last_auth(&t.row, stale);
        if !self
            .store()
            .challenge_accept(c, now, required_count, max_wrong(cfg), &last_auth)
            .await?
        {
            return Ok(false);
        }
        self.forget_lockouts(&t.row).await?;
        Ok(true)
    }

    /// The accept path every way in shares: challenge `c` of `t` is consumed, the other
    /// tokens' reserved attempts are given back, the transaction's other challenges go (when
    /// it has any), and what follows a success runs (`smsautosend`, counting verified numbers).
    /// False when another request consumed the challenge first.
    async fn accept(
        &self,
        t: &Live,
        c: &ChallengeRow,
        all: &[&Live],
        rest: Rest,
        ctx: &Ctx<'_>,
        audit: &mut AuditEntry,
    ) -> Result<bool> {
        let stale = ctx.stale.contains(&t.row.serial);
        if !self.consume(t, c, ctx.cfg, stale).await? {
            return Ok(false);
        }
        self.release(&others(all, &[t])).await?;
        if rest == Rest::Delete {
            self.store().challenge_delete_tid(&c.transaction_id).await?;
        }
        audit.success = true;
        audit.serial = t.row.serial.clone();
        self.note_conversion(&c.transaction_id, &t.row.serial);
        if ctx.cfg.fraud_min_success_percent > 0
            && let Ok((realm, raw)) = self.raw_phone(t, ctx).await
            && let Ok(phone) = send_number(ctx.cfg, &realm, &raw)
        {
            self.count_verified(ctx.cfg, &phone).await?;
        }
        // `reset_all_user_tokens`: a success with one token resets the fail counters of all
        // the user's tokens (privacyIDEA's reset_all_user_tokens).
        if let Some(user) = ctx.user
            && ctx.flag("reset_all_user_tokens")?
        {
            for other in self.store().tokens_of_user(&owner_of(user)).await? {
                if other.id != t.row.id && other.failcount > 0 {
                    self.store().token_reset_failcount(other.id).await?;
                }
            }
        }
        if ctx.flag("smsautosend")? {
            self.auto_send(t, ctx, audit).await?;
        }
        Ok(true)
    }

    /// `otponly`: the pass is the OTP of any live challenge of the tokens.
    async fn answer_any_live_challenge(
        &self,
        usable: &[Live],
        otp: &str,
        ctx: &Ctx<'_>,
        audit: &mut AuditEntry,
    ) -> Result<CheckOutcome> {
        let all: Vec<&Live> = usable.iter().collect();
        for t in usable {
            if let Some(c) = self.matching_live_challenge(t, otp, ctx.cfg).await?
                && self.accept(t, &c, &all, Rest::Delete, ctx, audit).await?
            {
                return Ok(CheckOutcome::Accept {
                    message: "matching 1 tokens".into(),
                    token: Some(t.token_ref(true)),
                });
            }
        }
        self.keep(&all, true, ctx.cfg).await?;
        Ok(CheckOutcome::Reject(Rejected::because("wrong otp value")))
    }

    /// The answer to the challenges of one transaction (`rows`).
    async fn answer_challenge(
        &self,
        usable: &[Live],
        rows: &[ChallengeRow],
        otp: &str,
        ctx: &Ctx<'_>,
        audit: &mut AuditEntry,
    ) -> Result<CheckOutcome> {
        let now = self.clock().now_ms();
        let all: Vec<&Live> = usable.iter().collect();
        let mut involved: Vec<&Live> = Vec::new();
        // The answered challenge is gone (consumed); the transaction's others go too.
        let rest = if rows.len() > 1 {
            Rest::Delete
        } else {
            Rest::Nothing
        };
        let max = max_wrong(ctx.cfg);
        let mut died = 0;
        let mut raced: Vec<&Live> = Vec::new();
        for c in rows {
            let Some(t) = usable.iter().find(|t| t.row.id == c.token_id) else {
                continue;
            };
            if !involved.iter().any(|x| x.row.id == t.row.id) {
                involved.push(t);
            }
            let live = c.created_at <= now && now < c.expires_at;
            let current = ctx.cfg.concurrent_challenges || c.otp_counter == t.row.count;
            if !(live && current) {
                continue;
            }
            // The answer is counted before it is checked: parallel answers get no more checks
            // than the challenge allows.
            let Some(claimed) = self.store().challenge_claim_answer(c.id, max).await? else {
                continue;
            };
            if hotp::otp_eq(otp, &t.otp(c.otp_counter)?) {
                if self.accept(t, c, &all, rest, ctx, audit).await? {
                    audit.info = "Found matching challenge".into();
                    return Ok(CheckOutcome::Accept {
                        message: "Found matching challenge".into(),
                        token: Some(t.token_ref(false)),
                    });
                }
                // The right answer, given first by a parallel request (a replay): refused,
                // but no guess, so not counted against the token.
                raced.push(t);
            }
            if let Some(max) = max
                && claimed >= max
            {
                died += usize::from(self.store().challenge_drop_used_up(c.id, max).await?);
            }
        }
        let wrong: Vec<&Live> = others(&involved, &raced);
        self.keep(&wrong, true, ctx.cfg).await?;
        self.release(&others(&all, &wrong)).await?;
        for t in &involved {
            self.store().challenge_purge_expired(t.row.id, now).await?;
        }
        if died > 0 {
            audit.action_detail = format!(
                "challenge discarded after {} wrong answers",
                ctx.cfg.challenge_max_attempts
            );
        }
        Ok(CheckOutcome::Reject(match involved.as_slice() {
            [t] => Rejected {
                token: Some(t.token_ref(false)),
                ..Rejected::because("Response did not match the challenge.")
            },
            _ => Rejected::because(format!(
                "Response did not match for {} tokens.",
                involved.len()
            )),
        }))
    }
}

/// A PIN+OTP pass split for token `t` (`prepend_pin`: the PIN first), or None when it is
/// too short or not split at a character boundary.
fn split_pass<'p>(pass: &'p str, t: &Live, cfg: &SystemConfig) -> Option<(&'p str, &'p str)> {
    let otplen = usize::try_from(t.row.otplen).unwrap_or(6);
    let split = pass
        .len()
        .checked_sub(otplen)
        .filter(|s| pass.is_char_boundary(*s))?;
    Some(if cfg.prepend_pin {
        (pass.get(..split)?, pass.get(split..)?)
    } else {
        (pass.get(otplen..)?, pass.get(..otplen)?)
    })
}

impl TokenRef {
    /// The token's type as privacyIDEA names it, reported when the length is.
    pub fn tokentype(&self) -> Option<&'static str> {
        self.otplen.map(|_| "sms")
    }
}
