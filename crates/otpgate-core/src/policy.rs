//! privacyIDEA policies as values: parsing of the action string, matching by scope, realm,
//! resolver, user and client, and the evaluation rules (lowest priority number wins; different
//! values at the same priority are a conflict). Pure: the service loads the policies, this
//! decides.

use crate::CoreError;
use std::collections::BTreeMap;
use std::net::IpAddr;

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

/// A set of policies loaded for one request.
#[derive(Debug, Clone)]
pub struct Policies {
    pub(crate) rows: Vec<Policy>,
}

impl Policies {
    /// Wraps loaded rows.
    pub fn new(rows: Vec<Policy>) -> Self {
        Self { rows }
    }

    fn matching<'s>(
        &'s self,
        scope: &'s str,
        ctx: &'s PolicyContext<'_>,
    ) -> impl Iterator<Item = &'s Policy> + 's {
        self.rows.iter().filter(move |p| {
            p.active
                && p.scope == scope
                && field_matches(&p.realm, ctx.realm)
                && field_matches(&p.resolver, ctx.resolver)
                && field_matches(&p.user, ctx.user)
                && client_matches(&list(&p.client), ctx.client)
        })
    }

    /// The value of `action` in `scope` for `ctx`, with the names of the deciding policies.
    pub fn action(
        &self,
        scope: &str,
        action: &str,
        ctx: &PolicyContext<'_>,
    ) -> Result<Option<(ActionValue, Vec<String>)>, CoreError> {
        let mut best: Option<(i64, ActionValue, Vec<String>)> = None;
        for p in self.matching(scope, ctx) {
            let Some(v) = parse_actions(&p.action).remove(action) else {
                continue;
            };
            match &mut best {
                Some((prio, val, names)) if *prio == p.priority => {
                    if *val != v {
                        return Err(CoreError::PolicyConflict(format!(
                            "There are conflicting {scope} actions for action {action}!"
                        )));
                    }
                    names.push(p.name.clone());
                }
                Some((prio, _, _)) if *prio < p.priority => {}
                _ => best = Some((p.priority, v, vec![p.name.clone()])),
            }
        }
        Ok(best.map(|(_, v, n)| (v, n)))
    }

    /// Every value `action` has in the `scope` policies matching `ctx`, whatever their
    /// priority (privacyIDEA's `action_values(unique=False)`, e.g. for limits where the
    /// largest wins).
    pub fn values(&self, scope: &str, action: &str, ctx: &PolicyContext<'_>) -> Vec<String> {
        self.matching(scope, ctx)
            .filter_map(|p| match parse_actions(&p.action).remove(action) {
                Some(ActionValue::Value(v)) => Some(v.trim().to_owned()),
                _ => None,
            })
            .collect()
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

    /// privacyIDEA's `check_base_action` for admins: with no active admin policy everything is
    /// allowed; otherwise a matching admin policy must contain the action.
    pub fn admin_allows(&self, admin: &str, action: &str) -> bool {
        let admin_policies: Vec<&Policy> = self
            .rows
            .iter()
            .filter(|p| p.active && p.scope == "admin")
            .collect();
        if admin_policies.is_empty() {
            return true;
        }
        admin_policies
            .iter()
            .filter(|p| for_local_admin(p, admin))
            .any(|p| grants(&p.action, action))
    }

    /// The values of `action` over all matching admin policies (e.g. `sms_gateways`).
    pub fn admin_values(&self, admin: &str, action: &str) -> Vec<String> {
        self.rows
            .iter()
            .filter(|p| p.active && p.scope == "admin" && for_local_admin(p, admin))
            .filter_map(|p| match parse_actions(&p.action).remove(action) {
                Some(ActionValue::Value(v)) => Some(crate::template::unescape_policy_text(&v)),
                _ => None,
            })
            .collect()
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
        assert_eq!(ps.admin_values("admin", "sms_gateways"), vec!["gw1 gw2"]);
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
}
