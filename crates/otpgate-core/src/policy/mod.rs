//! privacyIDEA policies as values: parsing of the action string, matching by scope, realm,
//! resolver, user and client, and the evaluation rules (lowest priority number wins; different
//! values at the same priority are a conflict). Pure: the service loads the policies, this
//! decides.

use crate::CoreError;
use chrono::{DateTime, NaiveDateTime, Utc};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

pub mod condition;
pub mod time;
pub mod values;

pub use condition::{Condition, Fact, FactValue, Facts, Section};

/// A policy as privacyIDEA defines it (list fields are comma-separated; empty means all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Row id (0 before it is stored).
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// `authentication`, `admin`, `user`, `enrollment`, `authorization`, …
    pub scope: String,
    /// Comma-separated actions (`name` or `name=value`).
    pub action: String,
    /// Comma-separated realms; empty = all.
    pub realm: String,
    /// Comma-separated resolvers; empty = all.
    pub resolver: String,
    /// Comma-separated users; empty = all.
    pub user: String,
    /// Comma-separated client networks; empty = all.
    pub client: String,
    /// Admin realms (admin scope).
    pub adminrealm: String,
    /// Admin users (admin scope).
    pub adminuser: String,
    /// Lower numbers win.
    pub priority: i64,
    /// Active.
    pub active: bool,
    /// Free text.
    pub description: String,
    /// Days and hours the policy applies (`Mon-Fri: 9-18`); empty = always.
    pub time: String,
    /// Extended conditions; all active ones must hold.
    pub conditions: Vec<Condition>,
    /// Match `resolver` against every resolver of the user's realm, not only the user's.
    pub check_all_resolvers: bool,
    /// Comma-separated client application names (`privacyidea-cp`, `FreeRADIUS`); empty = all.
    pub user_agents: String,
    /// `user` matches in any case.
    pub user_case_insensitive: bool,
}

/// The scopes privacyIDEA knows.
pub const SCOPES: &[&str] = &[
    "admin",
    "user",
    "authentication",
    "authorization",
    "enrollment",
    "webui",
    "register",
    "container",
];

/// A parsed action value: a flag (`name`) or a value (`name=value`, kept raw).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionValue {
    /// The action is set.
    Flag,
    /// The action's raw value (quotes and `\,` escapes still in place).
    Value(String),
}

/// Splits an action string at commas not escaped as `\,`.
pub fn parse_actions(s: &str) -> BTreeMap<String, ActionValue> {
    let mut out = BTreeMap::new();
    let mut cur = String::new();
    let mut parts = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&',') {
            cur.push('\\');
            cur.push(',');
            chars.next();
        } else if c == ',' {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        match p.split_once('=') {
            Some((k, v)) => {
                out.insert(k.trim().to_owned(), ActionValue::Value(v.trim().to_owned()))
            }
            None => out.insert(p.trim_start_matches('!').to_owned(), ActionValue::Flag),
        };
    }
    out
}

/// The entries of a comma-separated list field.
pub fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// True if `ip` passes a policy's client list (`!net` or `-net` excludes; empty allows
/// everyone).
pub fn client_matches(entries: &[String], ip: Option<IpAddr>) -> bool {
    if entries.is_empty() {
        return true;
    }
    let Some(ip) = ip else { return false };
    let mut positive = false;
    let mut any_positive_rule = false;
    for e in entries {
        let (neg, net) = match e.strip_prefix(['!', '-']) {
            Some(n) => (true, n),
            None => (false, e.as_str()),
        };
        if !neg {
            any_positive_rule = true;
        }
        if net_contains(net, ip) {
            if neg {
                return false;
            }
            positive = true;
        }
    }
    positive || !any_positive_rule
}

/// True if `ip` is `net` (an address) or inside `net` (CIDR).
pub fn net_contains(net: &str, ip: IpAddr) -> bool {
    let (addr, bits) = match net.split_once('/') {
        Some((a, b)) => (a, b.parse::<u32>().ok()),
        None => (net, None),
    };
    let Ok(base) = addr.trim().parse::<IpAddr>() else {
        return false;
    };
    match (base, ip) {
        (IpAddr::V4(b), IpAddr::V4(i)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(b) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(b), IpAddr::V6(i)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(b) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// Who and where a policy is evaluated for.
#[derive(Debug, Clone, Default)]
pub struct PolicyContext<'a> {
    /// The user's realm.
    pub realm: Option<&'a str>,
    /// The user's resolver.
    pub resolver: Option<&'a str>,
    /// The user's login.
    pub user: Option<&'a str>,
    /// The client address.
    pub client: Option<IpAddr>,
    /// The resolvers of the user's realm in priority order (for `check_all_resolvers`).
    pub realm_resolvers: &'a [String],
    /// What conditions look at; None: no user, token or request data.
    pub facts: Option<&'a dyn Facts>,
    /// The client application's name (privacyIDEA's user agent: `privacyidea-cp` of
    /// `privacyidea-cp/2.0 Windows/…`; "" when there is none); None: not matched.
    pub user_agent: Option<&'a str>,
    /// privacyIDEA's `Match.action_only`: realm, resolver and user are not matched at all
    /// (policies naming them apply too), as for the authorization actions `serial`,
    /// `tokeninfo` and `no_detail_on_*`.
    pub action_only: bool,
}

impl std::fmt::Debug for dyn Facts + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Facts")
    }
}

pub(crate) fn field_matches(field: &str, value: Option<&str>) -> bool {
    let entries = list(field);
    if entries.is_empty() {
        return true;
    }
    match value {
        Some(v) => search_value(&entries, &[v]),
        None => false,
    }
}

/// The user field, in any case with `user_case_insensitive`.
fn user_matches(p: &Policy, user: Option<&str>) -> bool {
    if !p.user_case_insensitive {
        return field_matches(&p.user, user);
    }
    field_matches(
        &p.user.to_lowercase(),
        user.map(str::to_lowercase).as_deref(),
    )
}

/// privacyIDEA's user-agent match: a policy naming client applications applies only to a
/// request from one of them (any case); a request without one matches only policies naming
/// none.
fn user_agent_matches(agents: &str, agent: Option<&str>) -> bool {
    let names = list(agents);
    match agent {
        None => true,
        _ if names.is_empty() => true,
        Some(a) => !a.is_empty() && names.iter().any(|n| n.eq_ignore_ascii_case(a)),
    }
}

/// The client application's name in a User-Agent header, as privacyIDEA reads it
/// (`^[A-Za-z0-9_-]+` before an optional `/version`); "" when it is not of that form.
pub fn user_agent_name(header: &str) -> &str {
    let end = header
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(header.len());
    let rest = header.get(end..).unwrap_or_default();
    if rest.is_empty() || rest.starts_with('/') || rest.starts_with(char::is_whitespace) {
        header.get(..end).unwrap_or_default()
    } else {
        ""
    }
}

/// privacyIDEA's resolver match: the user's resolver, or with `check_all_resolvers` any
/// resolver of the user's realm (a policy with it needs a realm and a user).
fn resolver_matches(p: &Policy, ctx: &PolicyContext<'_>) -> bool {
    if !p.check_all_resolvers {
        return field_matches(&p.resolver, ctx.resolver);
    }
    if ctx.realm.is_none() || ctx.user.is_none() {
        return false;
    }
    let entries = list(&p.resolver);
    ctx.realm_resolvers
        .iter()
        .any(|r| search_value(&entries, &[r.as_str()]))
}

/// Whether admin policy `p` applies to local admin `admin`: its `adminuser` names them and it
/// names no `adminrealm` (local admins have none; privacyIDEA matches them with the empty
/// realm, so a policy for the admins of a realm never applies to them).
/// An admin policy restricted to `client` addresses matches no one: otpgate does not match
/// an admin's address, and granting such a policy from everywhere would fail open.
pub(crate) fn for_local_admin(p: &Policy, admin: &str) -> bool {
    field_matches(&p.adminuser, Some(admin))
        && field_matches(&p.adminrealm, Some(""))
        && list(&p.client).is_empty()
}

/// privacyIDEA's `_search_value`: whether one of `values` (a user's realm, or a token's
/// realms) is among a policy's `entries` — `*` matches anything, an entry matches its equal or,
/// as a regular expression, the whole value (`user1.*`) — and none is excluded by a `!x` or
/// `-x` entry. Only exclusions match nothing (write `*, -x` for "all but x").
pub fn search_value(entries: &[String], values: &[&str]) -> bool {
    let mut found = false;
    for e in entries {
        if let Some(excluded) = e.strip_prefix(['!', '-']) {
            if values.contains(&excluded) {
                return false;
            }
        } else if !found {
            found = e == "*"
                || values.contains(&e.as_str())
                || match values {
                    [one] => is_pattern(e) && full_match(e, one),
                    _ => false,
                };
        }
    }
    found
}

/// Whether a policy entry is meant as a regular expression (has a metacharacter).
pub fn is_pattern(e: &str) -> bool {
    e.chars().any(|c| ".*+?[](){}|^$\\".contains(c))
}

/// `re` matches the whole of `value` (a policy entry that is no valid expression matches
/// nothing; the regex crate runs in linear time, so no entry can stall a login).
fn full_match(re: &str, value: &str) -> bool {
    regex::Regex::new(&format!("^(?:{re})$")).is_ok_and(|r| r.is_match(value))
}

/// Whether an admin policy's action string grants `action`: listed, or `*`, and not
/// excluded by `-action` / `!action`.
pub(crate) fn grants(actions: &str, action: &str) -> bool {
    let parsed = parse_actions(actions);
    if parsed.contains_key(&format!("-{action}")) || parsed.contains_key(&format!("!{action}")) {
        return false;
    }
    let on = |k: &str| match parsed.get(k) {
        Some(ActionValue::Flag) => true,
        // `enable=false` takes the right away rather than granting it.
        Some(ActionValue::Value(v)) => crate::params::is_true(v),
        None => false,
    };
    on(action) || on("*")
}

/// A set of policies, and the moment they are evaluated at.
#[derive(Debug, Clone)]
pub struct Policies {
    pub(crate) rows: Arc<[Policy]>,
    /// `(scope, action)` of every action an active policy sets, read once when the rows are
    /// loaded: the login path asks [`Policies::uses`] many times per request.
    used: Arc<std::collections::BTreeSet<(String, String)>>,
    /// The instant, and the server's local wall time for `time` ranges; None: policies with
    /// a `time` match nothing (the lockout guard counts only rights that always hold).
    at: Option<(DateTime<Utc>, NaiveDateTime)>,
}

impl Policies {
    /// Wraps loaded rows.
    pub fn new(rows: Vec<Policy>) -> Self {
        let used = rows
            .iter()
            .filter(|p| p.active)
            .flat_map(|p| {
                parse_actions(&p.action)
                    .into_keys()
                    .map(|action| (p.scope.clone(), action))
            })
            .collect();
        Self {
            rows: rows.into(),
            used: Arc::new(used),
            at: None,
        }
    }

    /// The same policies, evaluated at `now` (`local`: the server's wall time then, which
    /// privacyIDEA's `time` ranges use). Cheap: the rows are shared.
    pub fn at(&self, now: DateTime<Utc>, local: NaiveDateTime) -> Self {
        Self {
            rows: self.rows.clone(),
            used: self.used.clone(),
            at: Some((now, local)),
        }
    }

    /// Whether an active policy of `scope` sets `action` at all (before matching anyone): the
    /// service skips the lookups an action needs while no policy has it.
    pub fn uses(&self, scope: &str, action: &str) -> bool {
        self.used.contains(&(scope.to_owned(), action.to_owned()))
    }

    /// Whether any policy matches with `check_all_resolvers` (then the service looks up the
    /// resolvers of the user's realm).
    pub fn check_all_resolvers(&self) -> bool {
        self.rows.iter().any(|p| p.check_all_resolvers)
    }

    /// Whether `p` is active now (its `time` range, if any, holds).
    pub(crate) fn live(&self, p: &Policy) -> bool {
        p.active
            && (p.time.trim().is_empty()
                || self
                    .at
                    .is_some_and(|(_, local)| time::in_range(&p.time, local)))
    }

    /// The `scope` policies that apply to `ctx`: privacyIDEA's `match_policies` (realm,
    /// resolver, user, client, time, then the conditions, which may raise a policy error).
    fn matching<'s>(
        &'s self,
        scope: &str,
        ctx: &PolicyContext<'_>,
    ) -> Result<Vec<&'s Policy>, CoreError> {
        let mut out = Vec::new();
        for p in self.rows.iter() {
            let matches = self.live(p)
                && p.scope == scope
                && (ctx.action_only
                    || (field_matches(&p.realm, ctx.realm)
                        && resolver_matches(p, ctx)
                        && user_matches(p, ctx.user)))
                && client_matches(&list(&p.client), ctx.client)
                && user_agent_matches(&p.user_agents, ctx.user_agent);
            if matches && self.conditions_hold(p, ctx)? {
                out.push(p);
            }
        }
        Ok(out)
    }

    fn conditions_hold(&self, p: &Policy, ctx: &PolicyContext<'_>) -> Result<bool, CoreError> {
        if p.conditions.is_empty() {
            return Ok(true);
        }
        let now = self.at.map_or(DateTime::<Utc>::MIN_UTC, |(now, _)| now);
        condition::all_hold(&p.name, &p.conditions, ctx.facts, now)
    }

    /// The value of `action` in `scope` for `ctx`, with the names of the deciding policies.
    pub fn action(
        &self,
        scope: &str,
        action: &str,
        ctx: &PolicyContext<'_>,
    ) -> Result<Option<(ActionValue, Vec<String>)>, CoreError> {
        let set: Vec<(&Policy, ActionValue)> = self
            .matching(scope, ctx)?
            .into_iter()
            .filter_map(|p| parse_actions(&p.action).remove(action).map(|v| (p, v)))
            .collect();
        let Some(top) = set.iter().map(|(p, _)| p.priority).min() else {
            return Ok(None);
        };
        // Only the best priority decides; a conflict below it does not matter.
        let mut best: Option<(i64, ActionValue, Vec<String>)> = None;
        for (p, v) in set.into_iter().filter(|(p, _)| p.priority == top) {
            match &mut best {
                Some((_, val, names)) => {
                    if *val != v {
                        return Err(CoreError::PolicyConflict(format!(
                            "There are conflicting {scope} actions for action {action}!"
                        )));
                    }
                    names.push(p.name.clone());
                }
                None => best = Some((p.priority, v, vec![p.name.clone()])),
            }
        }
        Ok(best.map(|(_, v, n)| (v, n)))
    }

    /// Every value `action` has in the `scope` policies matching `ctx`, whatever their
    /// priority (privacyIDEA's `action_values(unique=False)`, e.g. for limits where the
    /// largest wins).
    pub fn values(
        &self,
        scope: &str,
        action: &str,
        ctx: &PolicyContext<'_>,
    ) -> Result<Vec<String>, CoreError> {
        Ok(self
            .named_values(scope, action, ctx)?
            .into_iter()
            .map(|(v, _)| v)
            .collect())
    }

    /// [`Policies::values`] with the name of the policy each value comes from.
    pub fn named_values(
        &self,
        scope: &str,
        action: &str,
        ctx: &PolicyContext<'_>,
    ) -> Result<Vec<(String, String)>, CoreError> {
        Ok(self
            .matching(scope, ctx)?
            .into_iter()
            .filter_map(|p| match parse_actions(&p.action).remove(action) {
                Some(ActionValue::Value(v)) => Some((v.trim().to_owned(), p.name.clone())),
                _ => None,
            })
            .collect())
    }

    /// The text value of an action, unescaped (`\,` → `,`, surrounding quotes removed).
    pub fn text(
        &self,
        scope: &str,
        action: &str,
        ctx: &PolicyContext<'_>,
    ) -> Result<Option<String>, CoreError> {
        Ok(match self.action(scope, action, ctx)? {
            Some((ActionValue::Value(v), _)) => Some(crate::template::unescape_policy_text(&v)),
            _ => None,
        })
    }

    /// True if a boolean action is set.
    pub fn flag(
        &self,
        scope: &str,
        action: &str,
        ctx: &PolicyContext<'_>,
    ) -> Result<bool, CoreError> {
        Ok(match self.action(scope, action, ctx)? {
            Some((ActionValue::Flag, _)) => true,
            Some((ActionValue::Value(v), _)) => crate::params::is_true(&v),
            None => false,
        })
    }

    /// privacyIDEA's `check_base_action` for users (their own tokens, the self-service):
    /// with no active user policy everything is allowed; otherwise a user policy matching
    /// `ctx` (the user's realm, resolver, login, client; conditions) must grant `action`
    /// (`*` too; `-action` takes it away).
    pub fn user_allows(&self, action: &str, ctx: &PolicyContext<'_>) -> Result<bool, CoreError> {
        if !self.rows.iter().any(|p| self.live(p) && p.scope == "user") {
            return Ok(true);
        }
        Ok(self
            .matching("user", ctx)?
            .iter()
            .any(|p| grants(&p.action, action)))
    }

    /// privacyIDEA's `check_base_action` for admins: with no active admin policy everything is
    /// allowed; otherwise a matching admin policy must contain the action.
    pub fn admin_allows(&self, admin: &str, action: &str) -> bool {
        let admin_policies: Vec<&Policy> = self
            .rows
            .iter()
            .filter(|p| self.live(p) && p.scope == "admin")
            .collect();
        if admin_policies.is_empty() {
            return true;
        }
        admin_policies
            .iter()
            .filter(|p| for_local_admin(p, admin))
            .any(|p| grants(&p.action, action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_as_privacyidea_searches_them() {
        let e = |x: &[&str]| x.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(search_value(&e(&["a", "b"]), &["b"]));
        assert!(!search_value(&e(&["a", "b"]), &["c"]));
        assert!(search_value(&e(&["*"]), &["c"]));
        assert!(search_value(&e(&["*", "-c"]), &["d"]));
        assert!(!search_value(&e(&["*", "-c"]), &["c"]));
        assert!(!search_value(&e(&["*", "!c"]), &["c"]));
        assert!(
            !search_value(&e(&["-c"]), &["d"]),
            "only exclusions match nothing"
        );
        assert!(search_value(&e(&["user.*"]), &["user12"]));
        assert!(
            !search_value(&e(&["user1"]), &["user12"]),
            "whole values only"
        );
        // A token's realms: one listed is enough, one excluded refuses.
        assert!(search_value(&e(&["a"]), &["x", "a"]));
        assert!(!search_value(&e(&["*", "-a"]), &["x", "a"]));
        assert!(grants("tokenlist, enable", "enable"));
        assert!(grants("*", "configwrite"));
        assert!(!grants("*, -delete", "delete"));
        assert!(!grants("enable", "delete"));
        assert!(
            !grants("enable=false, tokenlist", "enable"),
            "a right set to false"
        );
        assert!(grants("enable=True", "enable"));
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        let c = e(&["10.0.0.0/8", "-10.0.0.5"]);
        assert!(client_matches(&c, ip("10.1.2.3")));
        assert!(
            !client_matches(&c, ip("10.0.0.5")),
            "privacyIDEA's documented -exclusion"
        );
        assert!(!client_matches(&e(&["!10.0.0.5"]), ip("10.0.0.5")));
    }

    fn pol(name: &str, action: &str, prio: i64, realm: &str) -> Policy {
        Policy {
            name: name.into(),
            scope: "authentication".into(),
            action: action.into(),
            realm: realm.into(),
            priority: prio,
            active: true,
            ..Default::default()
        }
    }

    #[test]
    fn action_parsing_with_escapes_and_quotes() {
        let a = parse_actions(
            r"smstext='Hello {user}\, your OTP: {otp}', smsautosend, otppin=userstore",
        );
        assert_eq!(
            a["smstext"],
            ActionValue::Value(r"'Hello {user}\, your OTP: {otp}'".into())
        );
        assert_eq!(a["smsautosend"], ActionValue::Flag);
        assert_eq!(a["otppin"], ActionValue::Value("userstore".into()));
    }

    #[test]
    fn priority_realm_and_conflicts() {
        let ps = Policies::new(vec![
            pol("a", "smstext=one", 2, ""),
            pol("b", "smstext=two", 1, "realm1"),
        ]);
        let ctx = PolicyContext {
            realm: Some("realm1"),
            ..Default::default()
        };
        assert_eq!(
            ps.text("authentication", "smstext", &ctx)
                .unwrap()
                .as_deref(),
            Some("two")
        );
        let other = PolicyContext {
            realm: Some("realm2"),
            ..Default::default()
        };
        assert_eq!(
            ps.text("authentication", "smstext", &other)
                .unwrap()
                .as_deref(),
            Some("one")
        );
        let clash = Policies::new(vec![
            pol("a", "smstext=one", 1, ""),
            pol("b", "smstext=two", 1, ""),
        ]);
        assert!(matches!(
            clash.text("authentication", "smstext", &ctx),
            Err(CoreError::PolicyConflict(_))
        ));
        let same = Policies::new(vec![
            pol("a", "smstext=one", 1, ""),
            pol("b", "smstext=one", 1, ""),
        ]);
        assert_eq!(
            same.action("authentication", "smstext", &ctx)
                .unwrap()
                .unwrap()
                .1,
            vec!["a", "b"]
        );
    }

    #[test]
    fn admin_rights() {
        assert!(Policies::new(vec![]).admin_allows("admin", "enable"));
        let mut p = pol("adm", "smsgateway_read, sms_gateways=gw1 gw2", 1, "");
        p.scope = "admin".into();
        let ps = Policies::new(vec![p]);
        assert!(ps.admin_allows("admin", "smsgateway_read"));
        assert!(!ps.admin_allows("admin", "smsgateway_write"));
        assert_eq!(
            ps.admin_values_for("admin", "sms_gateways", None),
            vec![(1, "gw1 gw2".to_owned(), "adm".to_owned())]
        );
    }

    #[test]
    fn client_networks() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        assert!(net_contains("10.0.0.0/8", ip));
        assert!(!net_contains("192.168.0.0/16", ip));
        assert!(client_matches(
            &["10.0.0.0/8".into(), "!10.1.2.3".into()],
            Some("10.9.9.9".parse().unwrap())
        ));
        assert!(!client_matches(
            &["10.0.0.0/8".into(), "!10.1.2.3".into()],
            Some(ip)
        ));
        assert!(!client_matches(&["10.0.0.0/8".into()], None));
    }

    use proptest::prelude::*;

    fn row(i: usize, prio: i64, value: u8, realm: &str, time: &str) -> Policy {
        Policy {
            name: format!("p{i}"),
            scope: "authentication".into(),
            action: format!("smstext=v{value}"),
            realm: realm.into(),
            priority: prio,
            active: true,
            time: time.into(),
            ..Default::default()
        }
    }

    proptest! {
        /// The deciding value does not depend on the order policies were stored in, is a value
        /// of a matching policy of the best priority, and an excluded realm never decides.
        #[test]
        fn evaluation_is_order_free_and_the_best_priority_decides(
            specs in proptest::collection::vec(
                (1i64..4, 0u8..3, prop_oneof![Just(""), Just("r1"), Just("*, -r1"), Just("r2")],
                 prop_oneof![Just(""), Just("Mon-Sun: 0-23:59"), Just("Sat: 0-1")]),
                0..8),
            rotate in 0usize..8,
        ) {
            let rows: Vec<Policy> = specs
                .iter()
                .enumerate()
                .map(|(i, (prio, v, realm, time))| row(i, *prio, *v, realm, time))
                .collect();
            let mut rotated = rows.clone();
            if !rotated.is_empty() {
                let k = rotate % rotated.len();
                rotated.rotate_left(k);
            }
            // A Wednesday noon.
            let local = chrono::NaiveDate::from_ymd_opt(2026, 12, 2)
                .and_then(|d| d.and_hms_opt(12, 0, 0))
                .expect("a date");
            let now = local.and_utc();
            let ctx = PolicyContext { realm: Some("r1"), ..Default::default() };
            let a = Policies::new(rows.clone()).at(now, local);
            let b = Policies::new(rotated).at(now, local);
            let ra = a.text("authentication", "smstext", &ctx);
            let rb = b.text("authentication", "smstext", &ctx);
            prop_assert_eq!(ra.as_ref().ok(), rb.as_ref().ok());
            prop_assert_eq!(ra.is_err(), rb.is_err());
            let applies = |p: &Policy| {
                p.realm != "*, -r1" && p.realm != "r2" && p.time != "Sat: 0-1"
            };
            let best = rows.iter().filter(|p| applies(p)).map(|p| p.priority).min();
            match (ra, best) {
                (Ok(None), None) => {}
                (Ok(Some(v)), Some(best)) => {
                    let wanted = ["smstext=", v.as_str()].concat();
                    let found = rows
                        .iter()
                        .any(|p| applies(p) && p.priority == best && p.action == wanted);
                    prop_assert!(found);
                }
                (Err(_), Some(best)) => {
                    let values: std::collections::BTreeSet<&str> = rows
                        .iter()
                        .filter(|p| applies(p) && p.priority == best)
                        .map(|p| p.action.as_str())
                        .collect();
                    prop_assert!(values.len() > 1, "a conflict needs two values");
                }
                (other, best) => prop_assert!(false, "{other:?} with best {best:?}"),
            }
        }
    }

    #[test]
    fn user_agents_read_as_privacyidea_reads_them() {
        assert_eq!(
            user_agent_name("privacyidea-cp/2.0 Windows/Laptop"),
            "privacyidea-cp"
        );
        assert_eq!(user_agent_name("FreeRADIUS"), "FreeRADIUS");
        assert_eq!(user_agent_name("Mozilla/5.0 (X11)"), "Mozilla");
        assert_eq!(user_agent_name("(weird)"), "");
        assert_eq!(user_agent_name("a.b/1"), "");
        assert!(user_agent_matches(
            "privacyidea-cp, FreeRADIUS",
            Some("freeradius")
        ));
        assert!(!user_agent_matches("privacyidea-cp", Some("")));
        assert!(
            user_agent_matches("privacyidea-cp", None),
            "not matched at all"
        );
        assert!(user_agent_matches("", Some("curl")));
    }

    #[test]
    fn time_and_check_all_resolvers_narrow_matching() {
        let mut p = row(0, 1, 1, "", "Mon-Fri: 9-17");
        p.resolver = "staff".into();
        p.check_all_resolvers = true;
        let ps = Policies::new(vec![p]);
        let resolvers = vec!["local".to_owned(), "staff".to_owned()];
        let ctx = PolicyContext {
            realm: Some("realm1"),
            resolver: Some("local"),
            user: Some("bob"),
            realm_resolvers: &resolvers,
            ..Default::default()
        };
        let at = |d: u32, h: u32| {
            let local = chrono::NaiveDate::from_ymd_opt(2026, 11, 30 + d)
                .or_else(|| chrono::NaiveDate::from_ymd_opt(2026, 12, d))
                .and_then(|x| x.and_hms_opt(h, 0, 0))
                .expect("a date");
            ps.at(local.and_utc(), local)
        };
        let get = |p: &Policies, ctx: &PolicyContext<'_>| {
            p.text("authentication", "smstext", ctx).ok().flatten()
        };
        assert_eq!(get(&at(0, 10), &ctx).as_deref(), Some("v1"), "Monday 10:00");
        assert_eq!(get(&at(0, 18), &ctx), None, "Monday 18:00");
        assert_eq!(get(&at(5, 10), &ctx), None, "Saturday");
        assert_eq!(
            get(&ps, &ctx),
            None,
            "no time given: timed policies never match"
        );
        let no_realm = PolicyContext {
            realm_resolvers: &[],
            ..ctx.clone()
        };
        assert_eq!(
            get(&at(0, 10), &no_realm),
            None,
            "staff is not in the realm"
        );
    }
}
