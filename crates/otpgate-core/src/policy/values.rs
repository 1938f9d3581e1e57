//! The values policy actions take, read as privacyIDEA reads them: spans (`7d`), login limits
//! (`3/5m`), `tokeninfo` rules (`key/<regexp>/`) and `mangle` rules (`user/<regexp>/<repl>/`).

use chrono::Duration;

/// privacyIDEA's `parse_timedelta`: `30s`, `15m`, `6h`, `7d`, `1y` (365 days), optionally
/// signed (`+5d`, `-30m`).
pub fn span(s: &str) -> Option<Duration> {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let (sign, rest) = match t.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, t.strip_prefix('+').unwrap_or(&t)),
    };
    let unit = rest.chars().last()?;
    let n: i64 = rest.get(..rest.len() - unit.len_utf8())?.parse().ok()?;
    let n = sign * n;
    Some(match unit {
        's' => Duration::seconds(n),
        'm' => Duration::minutes(n),
        'h' => Duration::hours(n),
        'd' => Duration::days(n),
        'y' => Duration::days(365 * n),
        _ => return None,
    })
}

/// `auth_max_success` / `auth_max_fail`: `N/<count><s|m|h>` (privacyIDEA's
/// `parse_timelimit`).
pub fn time_limit(s: &str) -> Option<(i64, Duration)> {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let unit = t.chars().last()?.to_ascii_lowercase();
    let (count, span) = t.get(..t.len() - 1)?.split_once('/')?;
    let (count, span): (i64, i64) = (count.parse().ok()?, span.parse().ok()?);
    let span = match unit {
        's' => Duration::seconds(span),
        'm' => Duration::minutes(span),
        'h' => Duration::hours(span),
        _ => return None,
    };
    Some((count, span))
}

/// A span as Python prints a `timedelta` (`0:05:00`, `2 days, 1:00:00`), for privacyIDEA's
/// messages.
pub fn python_timedelta(d: Duration) -> String {
    let secs = d.num_seconds();
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let clock = format!("{}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60);
    match days {
        0 => clock,
        1 | -1 => format!("{days} day, {clock}"),
        _ => format!("{days} days, {clock}"),
    }
}

/// A `tokeninfo` rule, `key/<regexp>/`: the key and the expression.
pub fn tokeninfo_rule(rule: &str) -> Option<(&str, &str)> {
    let mut parts = rule.split('/');
    let (key, re, rest) = (parts.next()?, parts.next()?, parts.next()?);
    (parts.next().is_none() && rest.is_empty() && !key.is_empty()).then_some((key, re))
}

/// Whether a `tokeninfo` rule can be applied (its expression is valid).
pub fn tokeninfo_rule_ok(rule: &str) -> bool {
    tokeninfo_rule(rule).is_some_and(|(_, re)| regex::Regex::new(re).is_ok())
}

/// Python's `re.sub` replacement (`\1`, `\g<1>`) in the regex crate's syntax.
fn python_replacement(repl: &str) -> String {
    let mut out = String::new();
    let mut chars = repl.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut n = String::new();
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        n.push(d);
                        chars.next();
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
                Some('g') => {
                    chars.next();
                    let name: String = chars
                        .by_ref()
                        .skip_while(|c| *c == '<')
                        .take_while(|c| *c != '>')
                        .collect();
                    out.push_str(&format!("${{{name}}}"));
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

/// A `mangle` rule, `key/search/replace/` with `key` one of `user`, `realm`, `pass`: the key,
/// the expression and the replacement (regex-crate syntax).
pub fn mangle_rule(rule: &str) -> Option<(&str, regex::Regex, String)> {
    let mut parts = rule.splitn(4, '/');
    let (key, search, replace) = (parts.next()?, parts.next()?, parts.next()?);
    parts.next()?;
    if !matches!(key, "user" | "realm" | "pass") {
        return None;
    }
    let re = regex::Regex::new(search).ok()?;
    Some((key, re, python_replacement(replace)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_limits_read_as_privacyidea_reads_them() {
        assert_eq!(time_limit("3/5m"), Some((3, Duration::minutes(5))));
        assert_eq!(time_limit(" 10 / 1h"), Some((10, Duration::hours(1))));
        assert_eq!(time_limit("3/5d"), None);
        assert_eq!(time_limit("x/5m"), None);
        assert_eq!(span("7d"), Some(Duration::days(7)));
        assert_eq!(span("-30m"), Some(Duration::minutes(-30)));
        assert_eq!(span("1y"), Some(Duration::days(365)));
        assert_eq!(span("7w"), None);
        assert_eq!(python_timedelta(Duration::minutes(5)), "0:05:00");
        assert_eq!(python_timedelta(Duration::hours(25)), "1 day, 1:00:00");
        assert_eq!(python_timedelta(Duration::hours(48)), "2 days, 0:00:00");
    }

    #[test]
    fn mangle_rules_use_pythons_replacement_syntax() {
        let (key, re, repl) = mangle_rule(r"user/(.*)@example\.com$/\1/").expect("a rule");
        assert_eq!(key, "user");
        assert_eq!(re.replace_all("bob@example.com", repl.as_str()), "bob");
        let (_, re, repl) = mangle_rule(r"pass/^.{4}(.*)/\g<1>$/").expect("a rule");
        assert_eq!(re.replace_all("abcd123456", repl.as_str()), "123456$");
        assert!(mangle_rule("phone/a/b/").is_none());
        assert!(mangle_rule("user/(/b/").is_none());
        assert!(
            mangle_rule("user/a/b").is_none(),
            "the closing slash is required"
        );
        assert_eq!(tokeninfo_rule("phone/^\\+49/"), Some(("phone", "^\\+49")));
        assert_eq!(tokeninfo_rule("phone/^\\+49"), None);
        assert!(!tokeninfo_rule_ok("phone/^(/"));
    }
}
