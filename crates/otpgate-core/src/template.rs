//! privacyIDEA's text templates: the SMS text (`smstext`, Python `str.format` semantics,
//! unknown tags are errors) and the challenge prompt (`format_map`, unknown tags are empty).

use crate::CoreError;
use std::collections::BTreeMap;

/// The tags available to a template.
pub type Tags = BTreeMap<&'static str, String>;

/// Policy text values: `\,` stands for a comma and one pair of surrounding single quotes
/// (used for texts with spaces) is removed.
pub fn unescape_policy_text(s: &str) -> String {
    let t = s.trim();
    let t = t
        .strip_prefix('\'')
        .and_then(|x| x.strip_suffix('\''))
        .unwrap_or(t);
    t.replace("\\,", ",")
}

/// Renders the SMS text: first the legacy `<otp>` and `<serial>` are replaced, then `{tag}`s.
/// An unknown tag or a stray brace is an error (the SMS is then not sent, as in privacyIDEA).
pub fn render_sms_text(template: &str, tags: &Tags) -> Result<String, CoreError> {
    let legacy = template
        .replace(
            "<otp>",
            tags.get("otp").map(String::as_str).unwrap_or_default(),
        )
        .replace(
            "<serial>",
            tags.get("serial").map(String::as_str).unwrap_or_default(),
        );
    format(&legacy, tags, true)
}

/// Renders the challenge prompt: unknown tags become empty, stray braces stay as written.
pub fn render_prompt(template: &str, tags: &Tags) -> String {
    format(template, tags, false).unwrap_or_else(|_| template.to_owned())
}

/// The names of the `{tag}`s a template uses, in order, without repeats (`{{` and `}}` are
/// literal braces, not tags).
pub fn tag_names(template: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
            }
            '{' => {
                let mut field = String::new();
                for d in chars.by_ref() {
                    if d == '}' {
                        let name = field.split(['!', ':']).next().unwrap_or_default().trim();
                        if !names.iter().any(|n| n == name) {
                            names.push(name.to_owned());
                        }
                        break;
                    }
                    field.push(d);
                }
            }
            _ => {}
        }
    }
    names
}

fn format(template: &str, tags: &Tags, strict: bool) -> Result<String, CoreError> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut field = String::new();
                let mut closed = false;
                for d in chars.by_ref() {
                    if d == '}' {
                        closed = true;
                        break;
                    }
                    field.push(d);
                }
                if !closed {
                    if strict {
                        return Err(CoreError::Template(
                            "single '{' encountered in format string".into(),
                        ));
                    }
                    out.push('{');
                    out.push_str(&field);
                    continue;
                }
                // `{name!r:spec}`: only the name selects the value.
                let name = field.split(['!', ':']).next().unwrap_or_default().trim();
                match tags.get(name) {
                    Some(v) => out.push_str(v),
                    None if strict => {
                        return Err(CoreError::Template(format!("unknown tag {{{name}}}")));
                    }
                    None => {}
                }
            }
            '}' if strict => {
                return Err(CoreError::Template(
                    "single '}' encountered in format string".into(),
                ));
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags() -> Tags {
        let mut t = Tags::new();
        t.insert("otp", "123456".into());
        t.insert("serial", "PISM1".into());
        t.insert("user", "Cornelius".into());
        t.insert("phone", "123456".into());
        t
    }

    #[test]
    fn sms_text_like_privacyidea() {
        assert_eq!(render_sms_text("<otp>", &tags()).unwrap(), "123456");
        assert_eq!(
            render_sms_text(&unescape_policy_text("'Your <otp>'"), &tags()).unwrap(),
            "Your 123456"
        );
        assert_eq!(
            render_sms_text("{user} has the OTP: {otp}", &tags()).unwrap(),
            "Cornelius has the OTP: 123456"
        );
        assert_eq!(
            render_sms_text("{{literal}} {otp}", &tags()).unwrap(),
            "{literal} 123456"
        );
        assert!(render_sms_text("{nope}", &tags()).is_err());
        assert!(render_sms_text("a { b", &tags()).is_err());
        assert!(render_sms_text("a } b", &tags()).is_err());
    }

    #[test]
    fn tag_names_in_order_without_literals() {
        assert_eq!(
            tag_names("Hi {user}, {{not}} {serial!r} {user} {x:>3}"),
            ["user", "serial", "x"]
        );
        assert!(tag_names("no tags, an { open brace").is_empty());
    }

    #[test]
    fn prompt_unknown_tags_vanish() {
        assert_eq!(
            render_prompt("This {tag} should disappear", &tags()),
            "This  should disappear"
        );
        let t = unescape_policy_text(r"Hello {user}\, please enter the otp sent to {phone}");
        assert_eq!(
            render_prompt(&t, &tags()),
            "Hello Cornelius, please enter the otp sent to 123456"
        );
        assert_eq!(render_prompt("open { brace", &tags()), "open { brace");
    }

    mod fuzz_twin {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Twin of the `template_render` fuzz target: any template renders or is refused,
            /// never panics; text without braces or legacy tags comes back unchanged; every
            /// tag a template renders with is one `tag_names` reports.
            #[test]
            fn templates_never_panic_and_plain_text_is_kept(t in "\\PC{0,80}", plain in "[^{}<>]{0,80}") {
                let tags = tags();
                let _ = render_sms_text(&t, &tags);
                let _ = render_prompt(&t, &tags);
                let _ = tag_names(&t);
                let _ = unescape_policy_text(&t);
                prop_assert_eq!(render_sms_text(&plain, &tags).unwrap(), plain.clone());
                prop_assert_eq!(render_prompt(&plain, &tags), plain);
            }
        }
    }
}
