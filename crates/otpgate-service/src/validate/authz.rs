//! privacyIDEA's authorization scope and request rewriting at `/validate/check`: which realm
//! a login is for (`set_realm`, `setrealm`, `mangle`), who may log in and how often
//! (`authorized`, `auth_max_success`, `auth_max_fail`), with which token (`tokentype`,
//! `serial`, `tokeninfo`, `last_auth`, `application_tokentype`), and what the answer shows
//! (`no_detail_on_success`, `no_detail_on_fail`, `add_user_in_response`,
//! `add_resolver_in_response`). Every step costs nothing while no policy sets its action.

use super::{CheckOutcome, CheckRequest, Ctx, Rejected};
use crate::facts::RequestFacts;
use crate::policy::{ActionValue, Policies, PolicyContext};
use crate::snapshot::Settings;
use crate::users::User;
use crate::{Result, ServiceError, Services};
use chrono::{DateTime, Utc};
use otpgate_core::policy::values::{
    mangle_rule, python_timedelta, span, time_limit, tokeninfo_rule,
};
use otpgate_store::TokenRow;
use std::net::IpAddr;

/// A user looked up for a realm parameter: the parameter, and the lookup (login, realm, user).
type LookedUp = (Option<String>, (String, String, Option<User>));

/// The authorization scope.
pub(super) const AUTHZ: &str = "authorization";
/// privacyIDEA's answer to `authorized=deny_access`.
pub const NOT_AUTHORIZED: &str = "User is not authorized to authenticate under these conditions.";

/// What the answer to a login shows besides its outcome.
#[derive(Debug, Clone, Default)]
pub struct Shown {
    /// `no_detail_on_success` / `no_detail_on_fail`: the answer has no `detail`.
    pub no_detail: bool,
    /// `add_user_in_response`: the user's attributes go into `detail.user`.
    pub user: Option<User>,
    /// `add_resolver_in_response`: `detail.user-resolver` and `detail.user-realm`.
    pub resolver: Option<(String, String)>,
}

/// A login's outcome with what its answer shows.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The outcome.
    pub outcome: CheckOutcome,
    /// What the answer shows.
    pub shown: Shown,
}

impl crate::call::Outcome for Checked {
    fn success(&self) -> bool {
        self.outcome.success()
    }

    fn authentication(&self) -> Option<crate::call::Authentication> {
        Some(self.outcome.authentication())
    }

    fn message(&self) -> Option<String> {
        crate::call::Outcome::message(&self.outcome)
    }

    fn value_is_true(&self) -> bool {
        self.outcome.value_is_true()
    }
}

impl Ctx<'_> {
    fn authz_ctx(&self, action_only: bool) -> PolicyContext<'_> {
        PolicyContext {
            action_only,
            ..self.pctx()
        }
    }

    /// The deciding value of an authorization action (privacyIDEA's `unique=True`), noted
    /// for the audit.
    pub(super) fn authz(&self, action: &str) -> Result<Option<ActionValue>> {
        self.authz_in(action, false)
    }

    fn authz_in(&self, action: &str, action_only: bool) -> Result<Option<ActionValue>> {
        let r = self
            .policies
            .action(AUTHZ, action, &self.authz_ctx(action_only))?;
        Ok(r.map(|(v, names)| {
            self.note(&names);
            v
        }))
    }

    /// Whether an authorization flag is set (`action_only`: whoever the user is).
    fn authz_flag(&self, action: &str, action_only: bool) -> Result<bool> {
        Ok(match self.authz_in(action, action_only)? {
            Some(ActionValue::Flag) => true,
            Some(ActionValue::Value(v)) => otpgate_core::params::is_true(&v),
            None => false,
        })
    }

    /// Every value an authorization action has among the matching policies, whatever their
    /// priority (privacyIDEA's `unique=False`), split at blanks unless `whole`.
    fn authz_values(&self, action: &str, action_only: bool, whole: bool) -> Result<Vec<String>> {
        let named = self
            .policies
            .named_values(AUTHZ, action, &self.authz_ctx(action_only))?;
        let mut out = Vec::new();
        for (value, name) in named {
            self.note(std::slice::from_ref(&name));
            let value = otpgate_core::template::unescape_policy_text(&value);
            if whole {
                out.push(value);
            } else {
                out.extend(value.split_whitespace().map(str::to_owned));
            }
        }
        Ok(out)
    }

    /// `authorized=deny_access`: the user may not log in here (privacyIDEA answers after the
    /// attempt; otpgate refuses before any SMS goes out, with the same answer).
    pub(super) fn check_authorized(&self) -> Result<()> {
        match self.authz("authorized")? {
            Some(ActionValue::Value(v)) if v.trim() == "deny_access" => {
                Err(ServiceError::Validate(NOT_AUTHORIZED.into()))
            }
            _ => Ok(()),
        }
    }

    /// `application_tokentype`: the caller's `type` narrows the tokens; without the policy
    /// a `type` is ignored.
    pub(super) fn application_tokentype(
        &self,
        tokens: &mut Vec<TokenRow>,
        tokentype: Option<&str>,
    ) -> Result<()> {
        let Some(wanted) = tokentype.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(());
        };
        if self.policies.uses(AUTHZ, "application_tokentype")
            && self.authz_flag("application_tokentype", false)?
        {
            tokens.retain(|t| t.tokentype.eq_ignore_ascii_case(wanted));
        }
        Ok(())
    }

    /// `last_auth`: how long ago a token's last successful login may be.
    pub(super) fn last_auth_limit(&self) -> Result<Option<chrono::Duration>> {
        if !self.policies.uses(AUTHZ, "last_auth") {
            return Ok(None);
        }
        Ok(match self.authz("last_auth")? {
            Some(ActionValue::Value(v)) => {
                Some(span(&v).ok_or_else(|| {
                    ServiceError::Policy(format!("Invalid last_auth value {v:?}."))
                })?)
            }
            _ => None,
        })
    }

    /// `serial`, `tokentype`, `tokeninfo`: the token an answer names must be allowed, else a
    /// policy error (privacyIDEA checks the answer's `detail.serial` and `detail.type`,
    /// whatever the outcome).
    pub(super) fn check_token_allowed(
        &self,
        outcome: &CheckOutcome,
        rows: &[TokenRow],
    ) -> Result<()> {
        let Some(serial) = named_serial(outcome) else {
            return Ok(());
        };
        if self.policies.uses(AUTHZ, "serial") {
            let allowed = self.authz_values("serial", true, false)?;
            let matches = |re: &String| regex::Regex::new(re).is_ok_and(|r| r.is_match(serial));
            if !allowed.is_empty() && !allowed.iter().any(matches) {
                return Err(ServiceError::Policy(
                    "Serial is not allowed for authentication!".into(),
                ));
            }
        }
        if self.policies.uses(AUTHZ, "tokentype") {
            let allowed = self.authz_values("tokentype", false, false)?;
            if !allowed.is_empty() && !allowed.iter().any(|t| t == "sms") {
                return Err(ServiceError::Policy(
                    "Tokentype not allowed for authentication!".into(),
                ));
            }
        }
        if self.policies.uses(AUTHZ, "tokeninfo")
            && let Some(row) = rows.iter().find(|t| t.serial == serial)
        {
            for rule in self.authz_values("tokeninfo", true, true)? {
                let Some((key, re)) = tokeninfo_rule(&rule) else {
                    tracing::warn!(rule = %rule, "invalid tokeninfo policy ignored");
                    continue;
                };
                let value = row.info.get(key).map_or("", String::as_str);
                if !regex::Regex::new(re).is_ok_and(|r| r.is_match(value)) {
                    return Err(ServiceError::Policy(format!(
                        "Tokeninfo field {key} with contents does not match regular expression."
                    )));
                }
            }
        }
        Ok(())
    }

    /// What the answer shows.
    pub(super) fn shown(&self, outcome: &CheckOutcome) -> Result<Shown> {
        let mut shown = Shown::default();
        let accepted = matches!(outcome, CheckOutcome::Accept { .. });
        let no_detail = if accepted {
            "no_detail_on_success"
        } else {
            "no_detail_on_fail"
        };
        if self.policies.uses(AUTHZ, no_detail) {
            shown.no_detail = self.authz_flag(no_detail, true)?;
        }
        if let Some(user) = self.user.filter(|_| accepted) {
            if self.policies.uses(AUTHZ, "add_user_in_response")
                && self.authz_flag("add_user_in_response", false)?
            {
                shown.user = Some(user.clone());
            }
            if self.policies.uses(AUTHZ, "add_resolver_in_response")
                && self.authz_flag("add_resolver_in_response", false)?
            {
                shown.resolver = Some((user.resolver.clone(), user.realm.clone()));
            }
        }
        Ok(shown)
    }
}

/// The serial an answer names (privacyIDEA's `detail.serial`).
fn named_serial(o: &CheckOutcome) -> Option<&str> {
    match o {
        CheckOutcome::Accept { token, .. } => token.as_ref().map(|t| t.serial.as_str()),
        CheckOutcome::Challenge(c) => c.sent.last().map(|s| s.serial.as_str()),
        CheckOutcome::Reject(r) => r.token.as_ref().map(|t| t.serial.as_str()),
    }
}

/// Whether a token's last successful login (`last_auth` token info) is older than `limit`
/// at `now`; one that cannot be read is too old, one never used is not (privacyIDEA's
/// `check_last_auth_newer`).
pub(super) fn last_auth_too_old(
    row: &TokenRow,
    limit: chrono::Duration,
    now: DateTime<Utc>,
) -> bool {
    let Some(s) = row.info.get("last_auth").filter(|s| !s.is_empty()) else {
        return false;
    };
    let parsed = ["%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%.f%z"]
        .iter()
        .find_map(|f| DateTime::parse_from_str(s, f).ok())
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| {
            ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
                .iter()
                .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
                .map(|t| t.and_utc())
        });
    parsed.is_none_or(|t| t + limit < now)
}

/// The answer of a login whose token was last used too long ago.
pub(super) fn last_auth_refusal(row: &TokenRow) -> Rejected {
    Rejected::because(format!(
        "The last successful authentication was {}. It is too long ago.",
        row.info.get("last_auth").map_or("", String::as_str)
    ))
}

impl Services {
    /// privacyIDEA's rewriting of a login's parameters before anything is looked up:
    /// `set_realm` (authentication scope), else `setrealm` (authorization scope), then the
    /// `mangle` rules (authentication scope) on `user`, `realm` and `pass`.
    pub(super) async fn rewrite_request(
        &self,
        settings: &Settings,
        policies: &Policies,
        req: &mut CheckRequest,
        client: Option<IpAddr>,
        request: Option<&crate::call::RequestData>,
        used: &std::sync::Mutex<Vec<String>>,
    ) -> Result<()> {
        let uses_set_realm = policies.uses("authentication", "set_realm");
        let uses_setrealm = policies.uses(AUTHZ, "setrealm");
        let uses_mangle = policies.uses("authentication", "mangle");
        if !(uses_set_realm || uses_setrealm || uses_mangle) {
            return Ok(());
        }
        let Some(login) = req.user.clone().filter(|u| !u.trim().is_empty()) else {
            return Ok(());
        };
        let note = |names: &[String]| {
            if let Ok(mut u) = used.lock() {
                u.extend(names.iter().cloned());
            }
        };
        fn facts_for<'a>(
            user: Option<&'a User>,
            request: Option<&'a crate::call::RequestData>,
        ) -> RequestFacts<'a> {
            RequestFacts {
                user,
                token: None,
                request,
            }
        }
        // One lookup, again only when a rule changed the realm.
        let mut looked_up = (
            req.realm.clone(),
            self.lookup_user(settings, &login, req.realm.as_deref())
                .await?,
        );
        let mut realm_set = false;
        if uses_set_realm {
            let (name, realm, _) = &looked_up.1;
            let facts = facts_for(None, request);
            let given = req.realm.as_deref().filter(|r| !r.trim().is_empty());
            let ctx = PolicyContext {
                user: Some(name),
                realm: given.or(Some(realm.as_str())),
                client,
                facts: Some(&facts),
                ..Default::default()
            };
            if let Some((ActionValue::Value(v), names)) =
                policies.action("authentication", "set_realm", &ctx)?
            {
                let v = otpgate_core::template::unescape_policy_text(&v);
                if settings.realms.iter().any(|r| r.name == v) {
                    note(&names);
                    req.realm = Some(v);
                    realm_set = true;
                } else {
                    tracing::warn!(realm = %v, "set_realm names a realm that does not exist");
                }
            }
        }
        if uses_setrealm && !realm_set {
            self.refresh_lookup(settings, &login, &req.realm, &mut looked_up)
                .await?;
            if let Some(user) = &looked_up.1.2 {
                let facts = facts_for(Some(user), request);
                let ctx = user_context(user, client, &facts);
                let mut realms: Vec<String> = policies
                    .named_values(AUTHZ, "setrealm", &ctx)?
                    .into_iter()
                    .map(|(v, name)| {
                        note(std::slice::from_ref(&name));
                        otpgate_core::template::unescape_policy_text(&v)
                    })
                    .collect();
                realms.sort();
                realms.dedup();
                match realms.as_slice() {
                    [] => {}
                    [one] => req.realm = Some(one.clone()),
                    _ => {
                        return Err(ServiceError::Policy(
                            "I do not know, to which realm I should set the new realm. \
                             Conflicting policies exist."
                                .into(),
                        ));
                    }
                }
            }
        }
        if uses_mangle {
            self.refresh_lookup(settings, &login, &req.realm, &mut looked_up)
                .await?;
            let found = &looked_up.1.2;
            let facts = facts_for(found.as_ref(), request);
            let ctx = match &found {
                Some(user) => user_context(user, client, &facts),
                None => PolicyContext {
                    client,
                    facts: Some(&facts),
                    ..Default::default()
                },
            };
            for (rule, name) in policies.named_values("authentication", "mangle", &ctx)? {
                let Some((key, re, replace)) = mangle_rule(&rule) else {
                    tracing::warn!(policy = %name, "invalid mangle rule ignored");
                    continue;
                };
                if key == "realm" && realm_set {
                    continue;
                }
                let field = match key {
                    "user" => &mut req.user,
                    "realm" => &mut req.realm,
                    _ => &mut req.pass,
                };
                if let Some(value) = field.as_mut().filter(|v| !v.is_empty()) {
                    *value = re.replace_all(value, replace.as_str()).into_owned();
                    note(std::slice::from_ref(&name));
                }
            }
        }
        Ok(())
    }

    /// Looks `login` up again when `realm` is no longer the one `cached` was looked up for.
    async fn refresh_lookup(
        &self,
        settings: &Settings,
        login: &str,
        realm: &Option<String>,
        cached: &mut LookedUp,
    ) -> Result<()> {
        if cached.0 != *realm {
            *cached = (
                realm.clone(),
                self.lookup_user(settings, login, realm.as_deref()).await?,
            );
        }
        Ok(())
    }

    /// `auth_max_fail`, then `auth_max_success`: a user who failed (or succeeded) that often
    /// within the span is refused before the attempt (privacyIDEA counts the audit log).
    pub(super) async fn within_login_limits(&self, ctx: &Ctx<'_>) -> Result<Option<Rejected>> {
        let Some(user) = ctx.user else {
            return Ok(None);
        };
        for (action, success, what) in [
            ("auth_max_fail", false, "failed"),
            ("auth_max_success", true, "successful"),
        ] {
            if !ctx.policies.uses(AUTHZ, action) {
                continue;
            }
            let Some(ActionValue::Value(v)) = ctx.authz(action)? else {
                continue;
            };
            let (count, span) = time_limit(&v)
                .ok_or_else(|| ServiceError::Policy(format!("Invalid {action} value {v:?}.")))?;
            let since = self.clock().now() - span;
            let seen = self
                .store()
                .audit_login_count(&user.login, &user.realm, success, since.timestamp_millis())
                .await?;
            if seen >= count {
                return Ok(Some(Rejected::because(format!(
                    "Only {count} {what} authentications per {} allowed.",
                    python_timedelta(span)
                ))));
            }
        }
        Ok(None)
    }
}

fn user_context<'a>(
    user: &'a User,
    client: Option<IpAddr>,
    facts: &'a RequestFacts<'a>,
) -> PolicyContext<'a> {
    PolicyContext {
        realm: Some(&user.realm),
        resolver: Some(&user.resolver),
        user: Some(&user.login),
        client,
        facts: Some(facts),
        ..Default::default()
    }
}
