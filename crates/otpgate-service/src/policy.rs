//! privacyIDEA policies: parsing of the action string, matching by scope, realm, resolver,
//! user and client, and the evaluation rules (lowest priority number wins; different values
//! at the same priority are a conflict).

use crate::call::Scope;
use crate::{Result, ServiceError, Services};
use otpgate_core::policy::condition::parse_conditions;
use otpgate_core::policy::values;
pub use otpgate_core::policy::{
    ActionValue, Policies, PolicyContext, SCOPES, client_matches, list, net_contains, parse_actions,
};
use otpgate_store::{Guarded, PolicyChange, PolicyRow};

/// The scopes otpgate evaluates (policies of other scopes are refused at save).
pub const EVALUATED_SCOPES: &[&str] = &[
    "admin",
    "authentication",
    "authorization",
    "enrollment",
    "user",
];

/// How an action's value is checked.
#[derive(Clone, Copy)]
enum Kind {
    /// On or off (`name`, or `name=true|false`).
    Flag,
    /// Any text (an SMS text, a prompt).
    Text,
    /// One of these values.
    OneOf(&'static [&'static str]),
    /// A whole number in this range.
    Int(i64, i64),
    /// A flag, or any text (`passthru`: `userstore` or a RADIUS server, checked apart).
    FlagOrText,
    /// `count/<span><s|m|h>` (`auth_max_fail`).
    TimeLimit,
    /// A span, `30s`, `15m`, `6h`, `7d`, `1y` (`last_auth`).
    Span,
    /// A number of days, `90d` (`change_pin_every`).
    Days,
    /// `pin:N`, `N:pin`, optionally `:window` (`passthru_assign`).
    PassthruAssign,
    /// A regular expression.
    Regex,
    /// `key/<regexp>/` (`tokeninfo`).
    TokenInfo,
    /// `user|realm|pass/<search>/<replace>/` (`mangle`).
    Mangle,
}

/// The authentication-scope actions otpgate evaluates.
const AUTHENTICATION: &[(&str, Kind)] = &[
    ("otppin", Kind::OneOf(&["tokenpin", "userstore", "none"])),
    ("smstext", Kind::Text),
    ("sms_challenge_text", Kind::Text),
    ("sms_challenge_reused_text", Kind::Text),
    ("challenge_text_header", Kind::Text),
    ("challenge_text_footer", Kind::Text),
    ("smsautosend", Kind::Flag),
    // otpgate: the central SMTP server the code goes through by e-mail when no gateway took
    // the SMS (to the address in the user store).
    ("sms_email_fallback", Kind::Text),
    ("reset_all_user_tokens", Kind::Flag),
    ("increase_failcounter_on_challenge", Kind::Flag),
    ("passOnNoToken", Kind::Flag),
    ("passOnNoUser", Kind::Flag),
    // To the user store, or to a RADIUS server of /radiusserver (checked at save).
    ("passthru", Kind::FlagOrText),
    ("passthru_assign", Kind::PassthruAssign),
    ("hide_specific_error_message", Kind::Flag),
    ("set_realm", Kind::Text),
    ("mangle", Kind::Mangle),
    ("enroll_via_multichallenge", Kind::OneOf(&["sms", "SMS"])),
    ("enroll_via_multichallenge_text", Kind::Text),
    ("change_pin_via_validate", Kind::Flag),
    ("force_challenge_response", Kind::Flag),
    ("disabled_token_types", Kind::Text),
    (
        "preferred_client_mode",
        Kind::OneOf(&["interactive", "poll", "u2f", "webauthn", "push", "passkey"]),
    ),
];

/// The authorization-scope actions otpgate evaluates (at `/validate/check`, RADIUS and the
/// web sign-in; `authorized` and `application_tokentype` also at `/validate/triggerchallenge`).
const AUTHORIZATION: &[(&str, Kind)] = &[
    ("authorized", Kind::OneOf(&["grant_access", "deny_access"])),
    ("application_tokentype", Kind::Flag),
    ("auth_max_success", Kind::TimeLimit),
    ("auth_max_fail", Kind::TimeLimit),
    ("last_auth", Kind::Span),
    ("tokentype", Kind::Text),
    ("serial", Kind::Regex),
    ("tokeninfo", Kind::TokenInfo),
    ("setrealm", Kind::Text),
    ("no_detail_on_success", Kind::Flag),
    ("no_detail_on_fail", Kind::Flag),
    ("add_user_in_response", Kind::Flag),
    ("add_resolver_in_response", Kind::Flag),
];

/// The user-scope actions otpgate evaluates: the self-service rights of the user console (a
/// user's own phone, own PIN) and the rules for PINs users set.
const USER: &[(&str, Kind)] = &[
    ("enrollSMS", Kind::Flag),
    ("setpin", Kind::Flag),
    ("otp_pin_minlength", Kind::Int(0, 31)),
    ("otp_pin_maxlength", Kind::Int(0, 31)),
    ("otp_pin_contents", Kind::Text),
    ("sms_otp_pin_minlength", Kind::Int(0, 31)),
    ("sms_otp_pin_maxlength", Kind::Int(0, 31)),
    ("sms_otp_pin_contents", Kind::Text),
];

/// The enrollment-scope actions otpgate evaluates.
const ENROLLMENT: &[(&str, Kind)] = &[
    ("verify_enrollment", Kind::Text),
    ("require_description", Kind::Text),
    ("otp_pin_random", Kind::Int(1, 64)),
    ("change_pin_on_first_use", Kind::Flag),
    ("change_pin_every", Kind::Days),
    ("max_token_per_user", Kind::Int(1, 1000)),
    ("sms_max_token_per_user", Kind::Int(1, 1000)),
    ("max_active_token_per_user", Kind::Int(1, 1000)),
    ("sms_max_active_token_per_user", Kind::Int(1, 1000)),
];

/// The admin-scope actions with values otpgate evaluates (the rights are flags).
const ADMIN_VALUES: &[(&str, Kind)] = &[
    ("sms_gateways", Kind::Text),
    ("otp_pin_set_random", Kind::Int(1, 64)),
    ("otp_pin_contents", Kind::Text),
    ("sms_otp_pin_contents", Kind::Text),
    ("otp_pin_minlength", Kind::Int(0, 31)),
    ("otp_pin_maxlength", Kind::Int(0, 31)),
    ("sms_otp_pin_minlength", Kind::Int(0, 31)),
    ("sms_otp_pin_maxlength", Kind::Int(0, 31)),
];

/// Refuses an action string with an action otpgate does not know or does not evaluate in
/// `scope` (a typo, or a privacyIDEA feature otpgate lacks, would otherwise be saved and
/// silently do nothing), or with a value the action cannot take. Scopes otpgate does not
/// evaluate at all are refused too.
pub(crate) fn check_actions(scope: &str, actions: &str) -> Result<()> {
    let known: Vec<(&str, Kind)> = match scope {
        "authentication" => AUTHENTICATION.to_vec(),
        "enrollment" => ENROLLMENT.to_vec(),
        "authorization" => AUTHORIZATION.to_vec(),
        "user" => USER.to_vec(),
        "admin" => crate::auth::ADMIN_RIGHTS
            .iter()
            .map(|r| (*r, Kind::Flag))
            .chain(ADMIN_VALUES.iter().copied())
            .collect(),
        other => {
            return Err(ServiceError::Parameter(format!(
                "otpgate does not evaluate {other} policies; it evaluates admin, \
                 authentication, authorization, enrollment and user policies."
            )));
        }
    };
    let parsed = parse_actions(actions);
    if parsed.is_empty() {
        return Err(ServiceError::missing("action"));
    }
    for (name, value) in &parsed {
        // Admin policies: `*` grants every right, `-right` takes one away.
        let bare = name.trim_start_matches(['-', '!']);
        if matches!(scope, "admin" | "user")
            && (name == "*" || (bare != name && known.iter().any(|(k, _)| *k == bare)))
        {
            continue;
        }
        if scope == "authorization" && name == "api_key_required" {
            return Err(ServiceError::Parameter(
                "otpgate does not issue privacyIDEA's validate API keys (api_key_required is \
                 deprecated in privacyIDEA 3.14); restrict who may call /validate/check by \
                 client network or at the proxy instead."
                    .into(),
            ));
        }
        let Some((_, kind)) = known.iter().find(|(k, _)| k == name) else {
            let names: Vec<&str> = known.iter().map(|(k, _)| *k).collect();
            return Err(ServiceError::Parameter(format!(
                "otpgate does not know or evaluate the {scope} action '{name}'. It evaluates: {}.",
                names.join(", ")
            )));
        };
        let text = match value {
            ActionValue::Flag => None,
            ActionValue::Value(v) => Some(otpgate_core::template::unescape_policy_text(v)),
        };
        let ok = match (kind, text.as_deref()) {
            (Kind::Flag, None) => true,
            (Kind::Flag, Some(v)) => {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "true" | "false" | "1" | "0"
                )
            }
            (Kind::Text, Some(v)) => !v.trim().is_empty(),
            (Kind::OneOf(values), Some(v)) => values.contains(&v.trim()),
            (Kind::Int(lo, hi), Some(v)) => {
                v.trim().parse::<i64>().is_ok_and(|n| n >= *lo && n <= *hi)
            }
            (Kind::FlagOrText, None) => true,
            (Kind::FlagOrText, Some(v)) => !v.trim().is_empty(),
            (Kind::TimeLimit, Some(v)) => values::time_limit(v).is_some(),
            (Kind::Span, Some(v)) => values::span(v).is_some(),
            (Kind::PassthruAssign, Some(v)) => {
                let parts: Vec<&str> = v.split(':').map(str::trim).collect();
                let number = |p: Option<&&str>| p.is_some_and(|n| n.parse::<u32>().is_ok());
                match parts.as_slice() {
                    ["pin", n] | [n, "pin"] => number(Some(n)),
                    ["pin", n, w] | [n, "pin", w] => number(Some(n)) && number(Some(w)),
                    _ => false,
                }
            }
            (Kind::Days, Some(v)) => v
                .trim()
                .strip_suffix(['d', 'D'])
                .and_then(|n| n.parse::<i64>().ok())
                .is_some_and(|n| (0..=3650).contains(&n)),
            (Kind::Regex, Some(v)) => v.split_whitespace().all(|re| regex::Regex::new(re).is_ok()),
            (Kind::TokenInfo, Some(v)) => values::tokeninfo_rule_ok(v),
            (Kind::Mangle, Some(v)) => values::mangle_rule(v).is_some(),
            (_, None) => false,
        };
        if !ok {
            let wanted = match kind {
                Kind::Flag => "no value, true or false".to_owned(),
                Kind::Text => "a text".to_owned(),
                Kind::OneOf(values) => values.join(", "),
                Kind::Int(lo, hi) => format!("a number from {lo} to {hi}"),
                Kind::FlagOrText => "no value or a text".to_owned(),
                Kind::TimeLimit => "a limit like 3/5m (count/span, span in s, m or h)".to_owned(),
                Kind::Span => "a span like 30s, 15m, 6h, 7d or 1y".to_owned(),
                Kind::Days => "a number of days like 90d".to_owned(),
                Kind::PassthruAssign => {
                    "the OTP length and where the PIN is, like pin:6 or 6:pin (and :window)"
                        .to_owned()
                }
                Kind::Regex => "regular expressions".to_owned(),
                Kind::TokenInfo => "key/<regular expression>/".to_owned(),
                Kind::Mangle => "user|realm|pass/<regular expression>/<replacement>/".to_owned(),
            };
            return Err(ServiceError::Parameter(format!(
                "The {scope} action '{name}' takes {wanted}."
            )));
        }
    }
    Ok(())
}

/// The admin rights that keep policies manageable.
const POLICY_RIGHTS: &[&str] = &["policyread", "policywrite", "policydelete"];

fn policy_not_found() -> ServiceError {
    ServiceError::NotFound("The requested policy could not be found.".into())
}

/// `POST /policy/<name>`'s fields (None: empty, or the default).
#[derive(Debug, Clone, Default)]
pub struct PolicyInput {
    /// `scope`.
    pub scope: Option<String>,
    /// `action`: comma-separated actions (`name` or `name=value`).
    pub action: Option<String>,
    /// `realm`.
    pub realm: Option<String>,
    /// `resolver`.
    pub resolver: Option<String>,
    /// `user`.
    pub user: Option<String>,
    /// `client`.
    pub client: Option<String>,
    /// `adminrealm`.
    pub adminrealm: Option<String>,
    /// `adminuser`.
    pub adminuser: Option<String>,
    /// `priority` (default 1).
    pub priority: Option<i64>,
    /// `active` (default true).
    pub active: Option<bool>,
    /// `description`.
    pub description: Option<String>,
    /// `conditions`: privacyIDEA's extended conditions, a JSON list of
    /// `[section, key, comparator, value, active(, handle_missing_data)]`.
    pub conditions: Option<String>,
    /// `time`: the days and hours the policy applies (`Mon-Fri: 9-18`).
    pub time: Option<String>,
    /// `check_all_resolvers`.
    pub check_all_resolvers: Option<bool>,
    /// `user_agents`: client application names, comma-separated.
    pub user_agents: Option<String>,
    /// `user_case_insensitive`.
    pub user_case_insensitive: Option<bool>,
    /// `pinode`: otpgate's nodes are alike, so only empty is taken.
    pub pinode: Option<String>,
}

impl PolicyInput {
    /// What an admin should know about a policy about to be saved: an `smstext` that cannot
    /// be rendered or needs several SMS (see [`otpgate_core::sms_text::warnings`]).
    pub fn warnings(&self) -> Vec<String> {
        if self.scope.as_deref().map(str::trim) != Some("authentication") {
            return Vec::new();
        }
        match parse_actions(self.action.as_deref().unwrap_or_default()).remove("smstext") {
            Some(ActionValue::Value(v)) => {
                otpgate_core::sms_text::warnings(&otpgate_core::template::unescape_policy_text(&v))
            }
            _ => Vec::new(),
        }
    }
}

impl Services {
    /// All policies, evaluated now (loaded per request; they are few).
    pub async fn policies(&self) -> Result<Policies> {
        Ok(self.policies_now(&self.settings().await?.policies))
    }

    /// `policies` evaluated at the clock's now; `time` ranges use the server's local wall
    /// time, as privacyIDEA's.
    pub fn policies_now(&self, policies: &Policies) -> Policies {
        let now = self.clock().now();
        policies.at(now, now.with_timezone(&chrono::Local).naive_local())
    }

    /// Refuses an admin action that admin policies do not allow (for anyone).
    pub async fn require_admin_right(&self, admin: &str, action: &str) -> Result<()> {
        if self.policies().await?.admin_allows(admin, action) {
            Ok(())
        } else {
            Err(crate::call::not_allowed(action))
        }
    }

    /// `GET /policy/[<name>]`: policies, optionally by name or scope.
    pub async fn list_policies(
        &self,
        name: Option<&str>,
        scope: Option<&str>,
    ) -> Result<Vec<PolicyRow>> {
        Ok(self
            .store()
            .policy_list()
            .await?
            .into_iter()
            .filter(|p| name.is_none_or(|n| n == p.name) && scope.is_none_or(|s| s == p.scope))
            .collect())
    }

    /// `DELETE /policy/<name>`: the deleted id.
    pub async fn delete_policy(&self, name: &str, cx: &mut Scope) -> Result<i64> {
        cx.audit.action_detail = format!("policy {name}");
        self.change_policies(PolicyChange::Delete(name))
            .await?
            .ok_or_else(policy_not_found)
    }

    /// `POST /policy/enable|disable/<name>`: the policy id.
    pub async fn set_policy_active(&self, name: &str, active: bool) -> Result<i64> {
        self.change_policies(PolicyChange::SetActive(name, active))
            .await?
            .ok_or_else(policy_not_found)
    }

    /// `POST /policy/<name>`: creates the policy, or changes the fields given of an existing
    /// one (privacyIDEA keeps the others); its id.
    pub async fn set_policy(&self, name: &str, input: &PolicyInput, cx: &mut Scope) -> Result<i64> {
        cx.audit.action_detail = format!("policy {name}");
        let row = self.policy_row(name, input, &[]).await?;
        self.change_policies(PolicyChange::Save(&row))
            .await?
            .ok_or_else(policy_not_found)
    }

    /// The policy `name` as `input` sets it (merged with the stored one), checked as
    /// `POST /policy/<name>` checks it; `radius_known` are RADIUS servers about to be created
    /// alongside (an import) that `passthru` may name.
    pub(crate) async fn policy_row(
        &self,
        name: &str,
        input: &PolicyInput,
        radius_known: &[String],
    ) -> Result<PolicyRow> {
        if name.contains(char::is_whitespace) {
            return Err(ServiceError::Parameter(
                "Policy name must not contain white spaces!".into(),
            ));
        }
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid_name {
            return Err(ServiceError::Parameter(format!(
                "The name of the policy may only contain the characters a-zA-Z0-9_. and -: {name:?}"
            )));
        }
        // privacyIDEA updates only the fields a request gives: a partial update (or the
        // console, which does not send `adminrealm`) keeps the rest of an existing policy.
        let old = self
            .store()
            .policy_list()
            .await?
            .into_iter()
            .find(|p| p.name == name);
        let pick = |given: &Option<String>, kept: Option<&String>| {
            given.clone().or_else(|| kept.cloned()).unwrap_or_default()
        };
        let scope = input
            .scope
            .as_deref()
            .map(str::to_owned)
            .or_else(|| old.as_ref().map(|p| p.scope.clone()))
            .ok_or_else(|| ServiceError::missing("scope"))?
            .trim()
            .to_owned();
        if !SCOPES.contains(&scope.as_str()) {
            return Err(ServiceError::Parameter(format!(
                "Invalid scope '{scope}' in policy '{name}'!"
            )));
        }
        let conditions = match input.conditions.as_deref() {
            Some(json) => {
                let parsed = parse_conditions(json)
                    .map_err(|e| ServiceError::Parameter(format!("{} ({name})", e.0)))?;
                for c in &parsed {
                    c.validate().map_err(|e| {
                        // privacyIDEA nests its ParameterError's text, code and all.
                        ServiceError::Parameter(format!(
                            "Invalid condition of policy '{name}': ERR905: {}",
                            e.0
                        ))
                    })?;
                }
                parsed
            }
            None => old
                .as_ref()
                .map(|p| p.conditions.clone())
                .unwrap_or_default(),
        };
        let time = pick(&input.time, old.as_ref().map(|p| &p.time));
        if !time.trim().is_empty() && otpgate_core::policy::time::validate(&time).is_err() {
            return Err(ServiceError::Parameter(format!(
                "Invalid time format '{time}'!"
            )));
        }
        let row = PolicyRow {
            id: 0,
            name: name.to_owned(),
            scope,
            action: pick(&input.action, old.as_ref().map(|p| &p.action)),
            realm: pick(&input.realm, old.as_ref().map(|p| &p.realm)),
            resolver: pick(&input.resolver, old.as_ref().map(|p| &p.resolver)),
            user: pick(&input.user, old.as_ref().map(|p| &p.user)),
            client: pick(&input.client, old.as_ref().map(|p| &p.client)),
            adminrealm: pick(&input.adminrealm, old.as_ref().map(|p| &p.adminrealm)),
            adminuser: pick(&input.adminuser, old.as_ref().map(|p| &p.adminuser)),
            priority: input
                .priority
                .or_else(|| old.as_ref().map(|p| p.priority))
                .unwrap_or(1),
            active: input
                .active
                .or_else(|| old.as_ref().map(|p| p.active))
                .unwrap_or(true),
            description: pick(&input.description, old.as_ref().map(|p| &p.description)),
            time,
            conditions,
            check_all_resolvers: input
                .check_all_resolvers
                .or_else(|| old.as_ref().map(|p| p.check_all_resolvers))
                .unwrap_or(false),
            user_agents: pick(&input.user_agents, old.as_ref().map(|p| &p.user_agents)),
            user_case_insensitive: input
                .user_case_insensitive
                .or_else(|| old.as_ref().map(|p| p.user_case_insensitive))
                .unwrap_or(false),
        };
        if input.pinode.as_deref().is_some_and(|n| !list(n).is_empty()) {
            return Err(ServiceError::Parameter(
                "otpgate's nodes share one configuration and are alike: a policy cannot be \
                 restricted to a pinode."
                    .into(),
            ));
        }
        check_actions(&row.scope, &row.action)?;
        // `passthru=<name>` goes to a RADIUS server, which must be defined.
        if row.scope == "authentication"
            && let Some(ActionValue::Value(v)) = parse_actions(&row.action).remove("passthru")
        {
            let v = otpgate_core::template::unescape_policy_text(&v);
            let v = v.trim();
            if !v.eq_ignore_ascii_case("userstore")
                && !otpgate_core::params::is_true(v)
                && !v.eq_ignore_ascii_case("false")
                && !radius_known.iter().any(|r| r == v)
                && self.store().radius_get(v).await?.is_none()
            {
                return Err(ServiceError::Parameter(format!(
                    "The authentication action 'passthru' takes no value, userstore or a RADIUS \
                     server of /radiusserver; there is no RADIUS server {v}."
                )));
            }
        }
        // `sms_email_fallback=<name>` mails through a central SMTP server, which must exist.
        if row.scope == "authentication"
            && let Some(v) = parse_actions(&row.action).remove("sms_email_fallback")
        {
            let name = match v {
                ActionValue::Value(v) => otpgate_core::template::unescape_policy_text(&v),
                ActionValue::Flag => String::new(),
            };
            let name = name.trim();
            if name.is_empty() || self.store().smtp_get(name).await?.is_none() {
                return Err(ServiceError::Parameter(format!(
                    "The authentication action 'sms_email_fallback' names a central SMTP server \
                     of /smtpserver; there is no SMTP server {name:?}."
                )));
            }
        }
        if row.scope == "admin" && !list(&row.user_agents).is_empty() {
            return Err(ServiceError::Parameter(
                "otpgate does not match the user agent of admin policies; an admin policy \
                 with user_agents would grant its rights from everywhere. Leave it empty."
                    .into(),
            ));
        }
        if row.scope == "admin" && !row.client.trim().is_empty() {
            return Err(ServiceError::Parameter(
                "otpgate does not match the client address of admin policies; an admin policy \
                 with a client would grant its rights from everywhere. Leave client empty."
                    .into(),
            ));
        }
        if row.priority < 1 {
            return Err(ServiceError::Parameter(
                "Priority must be at least 1".into(),
            ));
        }
        if row.scope == "admin" && row.conditions.iter().any(|c| c.active) {
            return Err(ServiceError::Parameter(
                "otpgate does not evaluate conditions of admin policies (an admin's reach \
                 would depend on each user's attributes). Narrow the policy by realm, \
                 resolver or user instead."
                    .into(),
            ));
        }
        Ok(row)
    }

    /// Warns (in the log, at start-up) when the stored policies already leave no admin who
    /// may read and change them, e.g. after an import, and says how to recover.
    pub async fn warn_if_policies_lock_out(&self) -> Result<()> {
        let admins = self.store().admin_names().await?;
        let policies = self.store().policy_list().await?;
        if !admins.is_empty() && policy_admins(&admins, &policies).is_empty() {
            tracing::warn!(
                "no administrator may read and change policies (admin policies grant none of \
                 them {}); `otpgate policy list` and `otpgate policy disable NAME` recover",
                POLICY_RIGHTS.join(", ")
            );
        }
        Ok(())
    }

    /// Carries out a policy change unless no local admin could read and change policies any
    /// more after it (privacyIDEA's admin policies allow only what they list: one policy for a
    /// colleague would otherwise lock out every other admin, with no way back but the
    /// database). Decided and written in one locked transaction, so two changes that are each
    /// fine alone cannot lock everyone out together. `otpgate policy list|disable|delete` on
    /// the command line is the way back from a set of policies made elsewhere (an import, an
    /// older version).
    async fn change_policies(&self, change: PolicyChange<'_>) -> Result<Option<i64>> {
        let admins = self.store().admin_names().await?;
        let keeps =
            |after: &[PolicyRow]| admins.is_empty() || !policy_admins(&admins, after).is_empty();
        match self.store().policy_change_if(change, keeps).await? {
            Guarded::Done(id) => Ok(id),
            Guarded::Refused => Err(ServiceError::Parameter(format!(
                "This change would leave no administrator who may read and change policies \
                 ({}). Give an administrator these rights in an admin policy first.",
                POLICY_RIGHTS.join(", ")
            ))),
        }
    }
}

/// The admins among `admins` who may read and change `policies` (the rights that keep them
/// manageable; time-limited rights do not count).
pub fn policy_admins<'a>(admins: &'a [String], policies: &[PolicyRow]) -> Vec<&'a str> {
    let policies = Policies::new(policies.to_vec());
    admins
        .iter()
        .filter(|a| {
            POLICY_RIGHTS
                .iter()
                .all(|right| policies.admin_allows(a, right))
        })
        .map(String::as_str)
        .collect()
}
