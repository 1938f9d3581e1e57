//! Phone numbers as privacyIDEA handles them: stored verbatim, rewritten per gateway by a
//! `REGEXP` of the form `/<pattern>/<replacement>/`, and redacted wherever they are shown.

use regex::Regex;

/// A parsed gateway `REGEXP` rule.
#[derive(Debug, Clone)]
pub struct PhoneRewrite {
    re: Regex,
    replacement: String,
}

/// Why a `REGEXP` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// Not of the form `/pattern/replacement/`.
    #[error("REGEXP must have the form /pattern/replacement/")]
    Shape,
    /// The pattern does not compile.
    #[error("REGEXP pattern is invalid: {0}")]
    Pattern(String),
}

impl PhoneRewrite {
    /// Parses `/pat/repl/` like privacyIDEA: the pattern is matched greedily by
    /// `^/(.*)/(.*)/$`, so a `/` can stand in the pattern but not in the replacement. The
    /// replacement's Python-style group references (`\1`, `\g<name>`) are translated.
    pub fn parse(spec: &str) -> Result<Self, RewriteError> {
        let inner = spec
            .strip_prefix('/')
            .and_then(|s| s.strip_suffix('/'))
            .ok_or(RewriteError::Shape)?;
        let (pat, repl) = inner.rsplit_once('/').ok_or(RewriteError::Shape)?;
        let re = Regex::new(pat).map_err(|e| RewriteError::Pattern(first_line(&e.to_string())))?;
        Ok(Self {
            re,
            replacement: translate_replacement(repl),
        })
    }

    /// Applies the rule to every match in `phone` (Python's `re.sub`).
    pub fn apply(&self, phone: &str) -> String {
        self.re
            .replace_all(phone, self.replacement.as_str())
            .into_owned()
    }
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or_default().trim().to_owned()
}

/// Python `re.sub` replacement syntax → `regex` crate syntax.
fn translate_replacement(repl: &str) -> String {
    let mut out = String::with_capacity(repl.len());
    let mut chars = repl.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut num = String::new();
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        num.push(d);
                        chars.next();
                        if num.len() == 2 {
                            break;
                        }
                    }
                    out.push_str(&format!("${{{num}}}"));
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|&c| c != '>').collect();
                        out.push_str(&format!("${{{name}}}"));
                    } else {
                        out.push_str("\\g");
                    }
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
            other => out.push(other),
        }
    }
    out
}

/// privacyIDEA's `{phone_redacted}`: `****-******` and the last two digits.
pub fn redact(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits.iter().skip(digits.len().saturating_sub(2)).collect();
    format!("****-******{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(spec: &str, phone: &str) -> String {
        PhoneRewrite::parse(spec).unwrap().apply(phone)
    }

    #[test]
    fn privacyidea_regexp_table() {
        assert_eq!(rw("/[+-/. ]//", "+49 123/456-78"), "4912345678");
        assert_eq!(rw(r"/\+/00/", "+4912345"), "004912345");
        assert_eq!(rw("/^0/0049/", "0171123"), "0049171123");
        assert_eq!(rw(r"/^([0-9]+).*/\1/", "12345 ext 9"), "12345");
        assert_eq!(rw(r"/(?P<cc>\d\d)(\d+)/\g<cc>-\2/", "49151"), "49-151");
    }

    #[test]
    fn pattern_may_contain_slash_replacement_may_not() {
        // Greedy: the last '/' before the final one separates the replacement.
        assert_eq!(rw("/a/b/c/", "a/b"), "c");
        assert_eq!(rw("/x//", "x$x"), "$");
    }

    #[test]
    fn bad_specs() {
        assert_eq!(PhoneRewrite::parse("abc").unwrap_err(), RewriteError::Shape);
        assert_eq!(
            PhoneRewrite::parse("/abc").unwrap_err(),
            RewriteError::Shape
        );
        assert!(matches!(
            PhoneRewrite::parse("/([/x/").unwrap_err(),
            RewriteError::Pattern(_)
        ));
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("+49 151 1234567"), "****-******67");
        assert_eq!(redact(""), "****-******");
    }

    mod fuzz_twin {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Twin of the `phone_rewrite` fuzz target: any REGEXP value parses or is refused,
            /// and a parsed rule applies to any number without panicking; redaction never
            /// shows more than the last digits.
            #[test]
            fn any_rule_on_any_number(spec in "/\\PC{0,24}/\\PC{0,12}/|\\PC{0,30}", phone in "\\PC{0,24}") {
                if let Ok(r) = PhoneRewrite::parse(&spec) {
                    let _ = r.apply(&phone);
                }
                let _ = redact(&phone);
            }
        }
    }
}
