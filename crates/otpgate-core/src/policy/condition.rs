//! privacyIDEA's extended policy conditions: `[section, key, comparator, value, active,
//! handle_missing_data]`. A policy applies only when all its active conditions hold for the
//! request: the user's attributes (`userinfo`), the token (`token`, `tokeninfo`), the HTTP
//! request's headers (`HTTP Request header`) or its parameters (`Request Data`).
//!
//! Missing data (no user, an attribute the user lacks) follows the condition's
//! `handle_missing_data`: `raise_error` (the default) refuses the request with a policy error,
//! `condition_is_true` / `condition_is_false` decide the condition.

use crate::CoreError;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

/// The sections otpgate evaluates.
pub const SECTIONS: &[&str] = &[
    "userinfo",
    "tokeninfo",
    "token",
    "HTTP Request header",
    "Request Data",
];

/// privacyIDEA's sections otpgate refuses at save (containers and the WSGI environment do
/// not exist here).
pub const UNSUPPORTED_SECTIONS: &[&str] = &["HTTP Environment", "container", "container_info"];

/// privacyIDEA's comparators for conditions.
pub const COMPARATORS: &[&str] = &[
    "equals",
    "!equals",
    "contains",
    "!contains",
    "matches",
    "!matches",
    "in",
    "!in",
    "<",
    ">",
    "date_before",
    "date_after",
    "date_within_last",
    "!date_within_last",
    "string_contains",
    "!string_contains",
];

/// Where a condition looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The user's attributes.
    UserInfo,
    /// The token's info entries.
    TokenInfo,
    /// The token's own fields (`tokentype`, `active`, `failcount`, …).
    Token,
    /// A header of the HTTP request.
    RequestHeader,
    /// A parameter of the request.
    RequestData,
}

impl Section {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "userinfo" => Self::UserInfo,
            "tokeninfo" => Self::TokenInfo,
            "token" => Self::Token,
            "HTTP Request header" => Self::RequestHeader,
            "Request Data" => Self::RequestData,
            _ => return None,
        })
    }

    /// The object a section needs, named as privacyIDEA's messages name it.
    fn object(self) -> &'static str {
        match self {
            Self::UserInfo => "user",
            Self::TokenInfo | Self::Token => "token",
            Self::RequestHeader => "HTTP Request header",
            Self::RequestData => "Request Data",
        }
    }
}

/// A value a condition compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactValue {
    /// Text.
    Text(String),
    /// A multi-valued attribute (LDAP `memberOf`).
    List(Vec<String>),
    /// A number (a token's `failcount`).
    Int(i64),
    /// A truth value (a token's `active`).
    Bool(bool),
}

impl FactValue {
    fn text(&self) -> Option<String> {
        match self {
            Self::Text(s) => Some(s.clone()),
            Self::Int(n) => Some(n.to_string()),
            Self::Bool(b) => Some(if *b { "True" } else { "False" }.to_owned()),
            Self::List(_) => None,
        }
    }
}

/// What a request holds for one condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// The request has no such object (no user, no token).
    NoObject,
    /// The object has no such key.
    NoKey,
    /// The value.
    Value(FactValue),
}

/// The data of one request that conditions look at. The service implements it over what the
/// request already loaded; `None` in the context means none of it is available.
pub trait Facts: Send + Sync {
    /// The value of `key` in `section`.
    fn fact(&self, section: Section, key: &str) -> Fact;
}

/// One condition of a policy, as stored (checked when the policy is saved, and again when it
/// is evaluated: a stored condition that is not valid is a policy error, as privacyIDEA's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Condition {
    /// `userinfo`, `tokeninfo`, `token`, `HTTP Request header`, `Request Data`.
    pub section: String,
    /// The attribute, info key, field, header or parameter.
    pub key: String,
    /// One of [`COMPARATORS`].
    pub comparator: String,
    /// The right-hand value.
    pub value: String,
    /// Inactive conditions are kept but not evaluated.
    pub active: bool,
    /// `raise_error` (default), `condition_is_true`, `condition_is_false`.
    pub missing: String,
}

const MISSING: &[&str] = &["raise_error", "condition_is_true", "condition_is_false"];

/// Why a list of conditions cannot be saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadCondition(pub String);

impl Condition {
    /// Checks an active condition as privacyIDEA does at save, and that otpgate evaluates its
    /// section.
    pub fn validate(&self) -> Result<(), BadCondition> {
        if !self.active {
            return Ok(());
        }
        if UNSUPPORTED_SECTIONS.contains(&self.section.as_str()) {
            return Err(BadCondition(format!(
                "otpgate does not evaluate conditions on the section '{}'; it evaluates: {}.",
                self.section,
                SECTIONS.join(", ")
            )));
        }
        if Section::parse(&self.section).is_none() {
            return Err(BadCondition(format!(
                "Unknown section '{}' set in condition.",
                self.section
            )));
        }
        if self.key.is_empty() {
            return Err(BadCondition("Key must be a non-empty string.".into()));
        }
        if !COMPARATORS.contains(&self.comparator.as_str()) {
            return Err(BadCondition(format!(
                "Unknown comparator '{}'.",
                self.comparator
            )));
        }
        if self.value.is_empty() {
            return Err(BadCondition("Value must be a non-empty string.".into()));
        }
        if !MISSING.contains(&self.missing.as_str()) {
            return Err(BadCondition(format!(
                "Unknown handle missing data value '{}'!",
                self.missing
            )));
        }
        if self.comparator == "matches" || self.comparator == "!matches" {
            regex::Regex::new(&self.value)
                .map_err(|_| BadCondition(format!("'{}' is no regular expression.", self.value)))?;
        }
        Ok(())
    }

    /// Whether the condition holds for `facts` at `now`; a policy error for missing data
    /// under `raise_error`, and for a comparison that cannot be made.
    fn holds(
        &self,
        policy: &str,
        facts: Option<&dyn Facts>,
        now: DateTime<Utc>,
    ) -> Result<bool, CoreError> {
        if !self.active {
            return Ok(true);
        }
        let Some(section) = Section::parse(&self.section) else {
            return Err(CoreError::PolicyConflict(format!(
                "Policy '{policy}' has condition with unknown section"
            )));
        };
        let fact = facts.map_or(Fact::NoObject, |f| f.fact(section, &self.key));
        let missing = |message: String| match self.missing.as_str() {
            "condition_is_true" => Ok(true),
            "condition_is_false" => Ok(false),
            _ => Err(CoreError::PolicyConflict(message)),
        };
        let left = match fact {
            Fact::Value(v) => v,
            Fact::NoObject => {
                return missing(format!(
                    "Policy '{policy}' has a condition on the section '{}' with key '{}', but a \
                     {} is unavailable!",
                    self.section,
                    self.key,
                    section.object()
                ));
            }
            Fact::NoKey => {
                return missing(format!(
                    "Unknown {} key '{}' referenced in condition of policy '{policy}'!",
                    self.section, self.key
                ));
            }
        };
        compare(&left, &self.comparator, &self.value, now).ok_or_else(|| {
            CoreError::PolicyConflict(format!(
                "Invalid comparison in the {} conditions of policy '{policy}'",
                self.section
            ))
        })
    }
}

/// Whether all of a policy's conditions hold.
pub(crate) fn all_hold(
    policy: &str,
    conditions: &[Condition],
    facts: Option<&dyn Facts>,
    now: DateTime<Utc>,
) -> Result<bool, CoreError> {
    for c in conditions {
        if !c.holds(policy, facts, now)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `left <comparator> right`; None when the comparison cannot be made (privacyIDEA's
/// CompareError).
pub fn compare(
    left: &FactValue,
    comparator: &str,
    right: &str,
    now: DateTime<Utc>,
) -> Option<bool> {
    let (negated, name) = match comparator.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, comparator),
    };
    let r = match name {
        "equals" => left.text().is_some_and(|l| l == right),
        // A single value counts as a list of one (LDAP returns one-valued attributes so).
        "contains" => match left {
            FactValue::List(items) => items.iter().any(|i| i == right),
            other => other.text()? == right,
        },
        "matches" => {
            let re = regex::Regex::new(&format!("^(?:{right})$")).ok()?;
            re.is_match(&left.text()?)
        }
        "in" => csv(right)?.contains(&left.text()?),
        "<" | ">" if !negated => {
            let l = match left {
                FactValue::Int(n) => *n,
                other => {
                    let t = other.text()?;
                    if t.trim().is_empty() {
                        0
                    } else {
                        t.trim().parse().ok()?
                    }
                }
            };
            let r: i64 = right.trim().parse().ok()?;
            if name == "<" { l < r } else { l > r }
        }
        "date_before" | "date_after" => {
            let (l, r) = (date(&left.text()?)?, date(right)?);
            let ordering = match (l, r) {
                (When::Aware(l), When::Aware(r)) => l.cmp(&r),
                (When::Naive(l), When::Naive(r)) => l.cmp(&r),
                _ => return None,
            };
            if name == "date_before" {
                ordering.is_lt()
            } else {
                ordering.is_gt()
            }
        }
        "date_within_last" => {
            let at = match date(&left.text()?)? {
                When::Aware(t) => t.with_timezone(&Utc),
                When::Naive(t) => t.and_utc(),
            };
            now.signed_duration_since(at) < super::values::span(right)?
        }
        "string_contains" => left.text()?.to_lowercase().contains(&right.to_lowercase()),
        _ => return None,
    };
    Some(r != negated)
}

/// privacyIDEA's comma-separated values (`"a, b", c` with `\"` escapes).
fn csv(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '\\' => cur.push(chars.next()?),
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            '"' if quoted => {
                quoted = false;
                if chars.peek().is_some_and(|n| *n != ',') {
                    return None;
                }
            }
            ',' if !quoted => {
                out.push(std::mem::take(&mut cur));
                at_start = true;
                while chars.peek() == Some(&' ') {
                    chars.next();
                }
                continue;
            }
            c => {
                cur.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return None;
    }
    out.push(cur);
    Some(out)
}

enum When {
    Aware(DateTime<FixedOffset>),
    Naive(NaiveDateTime),
}

/// An ISO 8601 date or date and time, at least `YYYY-MM-DD`.
fn date(s: &str) -> Option<When> {
    let s = s.trim();
    if s.len() < 10 {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(When::Aware(t));
    }
    for f in [
        "%Y-%m-%dT%H:%M%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(When::Aware(t));
        }
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(When::Naive(t));
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(When::Naive)
}

/// A policy's `conditions` as privacyIDEA's API takes them (a JSON list of 5- or 6-element
/// lists). Shape errors are refused; the values are checked by [`Condition::validate`].
pub fn parse_conditions(json: &str) -> Result<Vec<Condition>, BadCondition> {
    let json = json.trim();
    if json.is_empty() {
        return Ok(Vec::new());
    }
    let v: Value = serde_json::from_str(json)
        .map_err(|_| BadCondition("conditions must be a JSON list of lists.".into()))?;
    let Value::Array(items) = v else {
        return Err(BadCondition(
            "conditions must be a JSON list of lists.".into(),
        ));
    };
    items
        .into_iter()
        .map(|item| {
            let Value::Array(parts) = item else {
                return Err(BadCondition("Each condition must be a list.".into()));
            };
            let ([section, key, comparator, value, active]
            | [section, key, comparator, value, active, _]) = parts.as_slice()
            else {
                return Err(BadCondition(format!(
                    "A condition has {} values, but should have 5 or 6.",
                    parts.len()
                )));
            };
            let text = |v: &Value| match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            let active = match active {
                Value::Bool(b) => *b,
                Value::String(s) => crate::params::is_true(s),
                _ => {
                    return Err(BadCondition("Active must be a boolean.".into()));
                }
            };
            Ok(Condition {
                section: text(section),
                key: text(key),
                comparator: text(comparator),
                value: text(value),
                active,
                missing: parts
                    .get(5)
                    .map(text)
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| "raise_error".into()),
            })
        })
        .collect()
}

/// Conditions as privacyIDEA's API shows and stores them.
pub fn conditions_json(conditions: &[Condition]) -> Value {
    Value::Array(
        conditions
            .iter()
            .map(|c| {
                serde_json::json!([c.section, c.key, c.comparator, c.value, c.active, c.missing])
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-05T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .expect("a date")
    }

    fn t(s: &str) -> FactValue {
        FactValue::Text(s.into())
    }

    #[test]
    fn comparators() {
        let groups = FactValue::List(vec!["staff".into(), "admins".into()]);
        assert_eq!(compare(&groups, "contains", "admins", now()), Some(true));
        assert_eq!(compare(&groups, "!contains", "admins", now()), Some(false));
        assert_eq!(
            compare(&t("admins"), "contains", "admins", now()),
            Some(true)
        );
        assert_eq!(compare(&t("a"), "equals", "a", now()), Some(true));
        assert_eq!(compare(&t("a"), "!equals", "a", now()), Some(false));
        assert_eq!(compare(&groups, "equals", "staff", now()), Some(false));
        assert_eq!(
            compare(&t("+4912"), "matches", r"\+49.*", now()),
            Some(true)
        );
        assert_eq!(
            compare(&t("x+4912"), "matches", r"\+49.*", now()),
            Some(false)
        );
        assert_eq!(compare(&t("b"), "in", "a, b,c", now()), Some(true));
        assert_eq!(compare(&t("a,b"), "in", r#""a,b", c"#, now()), Some(true));
        assert_eq!(compare(&t("d"), "!in", "a,b,c", now()), Some(true));
        assert_eq!(compare(&FactValue::Int(3), "<", "5", now()), Some(true));
        assert_eq!(compare(&t(""), "<", "1", now()), Some(true), "empty is 0");
        assert_eq!(compare(&t("x"), ">", "1", now()), None);
        assert_eq!(
            compare(&t("Hello World"), "string_contains", "WORLD", now()),
            Some(true)
        );
        assert_eq!(
            compare(&FactValue::Bool(true), "equals", "True", now()),
            Some(true)
        );
        assert_eq!(
            compare(&t("2026-12-01"), "date_before", "2026-12-02", now()),
            Some(true)
        );
        assert_eq!(
            compare(
                &t("2026-12-01T10:00+0100"),
                "date_after",
                "2026-12-01T08:59:00Z",
                now()
            ),
            Some(true)
        );
        assert_eq!(
            compare(
                &t("2026-12-01T10:00+0100"),
                "date_after",
                "2026-12-01",
                now()
            ),
            None,
            "aware against naive"
        );
        assert_eq!(
            compare(&t("2026-12-05T06:00:00Z"), "date_within_last", "7h", now()),
            Some(true)
        );
        assert_eq!(
            compare(&t("2026-12-05T04:00:00Z"), "date_within_last", "7h", now()),
            Some(false)
        );
        assert_eq!(
            compare(&t("2026-12-05T04:00:00Z"), "!date_within_last", "7h", now()),
            Some(true)
        );
        assert_eq!(
            compare(&t("2026"), "date_before", "2027-01-01", now()),
            None
        );
    }

    struct User;
    impl Facts for User {
        fn fact(&self, section: Section, key: &str) -> Fact {
            match (section, key) {
                (Section::UserInfo, "department") => Fact::Value(t("sales")),
                (Section::UserInfo, _) => Fact::NoKey,
                _ => Fact::NoObject,
            }
        }
    }

    fn cond(section: &str, key: &str, missing: &str) -> Condition {
        Condition {
            section: section.into(),
            key: key.into(),
            comparator: "equals".into(),
            value: "sales".into(),
            active: true,
            missing: missing.into(),
        }
    }

    #[test]
    fn missing_data_follows_the_condition() {
        let user: &dyn Facts = &User;
        let c = [cond("userinfo", "department", "raise_error")];
        assert_eq!(all_hold("p", &c, Some(user), now()).ok(), Some(true));
        let err = all_hold(
            "p",
            &[cond("userinfo", "phone", "raise_error")],
            Some(user),
            now(),
        );
        assert!(
            matches!(&err, Err(CoreError::PolicyConflict(m)) if m == "Unknown userinfo key 'phone' referenced in condition of policy 'p'!"),
            "{err:?}"
        );
        let err = all_hold("p", &c, None, now());
        assert!(
            matches!(&err, Err(CoreError::PolicyConflict(m)) if m.contains("but a user is unavailable")),
            "{err:?}"
        );
        assert_eq!(
            all_hold(
                "p",
                &[cond("userinfo", "phone", "condition_is_true")],
                Some(user),
                now()
            )
            .ok(),
            Some(true)
        );
        assert_eq!(
            all_hold(
                "p",
                &[cond("token", "x", "condition_is_false")],
                Some(user),
                now()
            )
            .ok(),
            Some(false)
        );
        let mut off = cond("token", "x", "raise_error");
        off.active = false;
        assert_eq!(
            all_hold("p", &[off], None, now()).ok(),
            Some(true),
            "inactive"
        );
    }

    #[test]
    fn parsing_and_validation() {
        let c = parse_conditions(r#"[["userinfo","memberOf","contains","admins",true]]"#)
            .expect("parses");
        assert_eq!(c[0].missing, "raise_error");
        assert!(c[0].validate().is_ok());
        assert_eq!(
            conditions_json(&c).to_string(),
            r#"[["userinfo","memberOf","contains","admins",true,"raise_error"]]"#
        );
        assert!(parse_conditions("[]").expect("empty").is_empty());
        assert!(parse_conditions(r#"[["userinfo","a","equals"]]"#).is_err());
        assert!(parse_conditions("{}").is_err());
        for (s, k, cmp, v, m) in [
            ("userinf", "a", "equals", "b", "raise_error"),
            ("userinfo", "", "equals", "b", "raise_error"),
            ("userinfo", "a", "like", "b", "raise_error"),
            ("userinfo", "a", "equals", "", "raise_error"),
            ("userinfo", "a", "equals", "b", "maybe"),
            ("userinfo", "a", "matches", "(", "raise_error"),
            ("container", "a", "equals", "b", "raise_error"),
        ] {
            let c = Condition {
                section: s.into(),
                key: k.into(),
                comparator: cmp.into(),
                value: v.into(),
                active: true,
                missing: m.into(),
            };
            assert!(c.validate().is_err(), "{c:?}");
            let inactive = Condition { active: false, ..c };
            assert!(
                inactive.validate().is_ok(),
                "inactive ones are kept as they are"
            );
        }
    }
}
