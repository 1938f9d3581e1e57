//! HTML by hand, safely: every value from outside goes through [`E`] (text and attribute
//! values, always written between double quotes) or [`U`] (a URL path segment or query
//! value). Markup itself is only ever `&'static str` or built from these.

use std::fmt::{self, Display, Write};

/// Escapes text for HTML element content and double-quoted attribute values.
pub struct E<'a>(pub &'a str);

impl Display for E<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut last = 0;
        for (i, c) in self.0.char_indices() {
            let rep = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                _ => continue,
            };
            f.write_str(self.0.get(last..i).unwrap_or_default())?;
            f.write_str(rep)?;
            last = i + c.len_utf8();
        }
        f.write_str(self.0.get(last..).unwrap_or_default())
    }
}

/// Percent-encodes a URL path segment or query value (everything but RFC 3986's unreserved
/// characters), so a value can neither leave its segment nor its attribute.
pub struct U<'a>(pub &'a str);

impl Display for U<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                f.write_char(char::from(b))?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

/// A page body under construction.
#[derive(Default)]
pub struct Out(String);

impl Out {
    /// An empty body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends trusted markup.
    pub fn raw(&mut self, s: &'static str) -> &mut Self {
        self.0.push_str(s);
        self
    }

    /// Appends formatted markup (whose arguments are [`E`], [`U`], numbers or other `Out`s).
    pub fn fmt(&mut self, args: fmt::Arguments<'_>) -> &mut Self {
        let _ = self.0.write_fmt(args);
        self
    }

    /// Appends another body.
    pub fn push(&mut self, other: Out) -> &mut Self {
        self.0.push_str(&other.0);
        self
    }

    /// The markup.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// `write!` into an [`Out`].
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {
        $out.fmt(format_args!($($arg)*))
    };
}
pub(crate) use w;

/// A labelled input with optional hint and error (`aria-describedby`, `aria-invalid`).
pub struct Field<'a> {
    /// Input id and name.
    pub name: &'a str,
    /// Label text.
    pub label: &'a str,
    /// `type` attribute.
    pub kind: &'a str,
    /// Current value (never for secrets).
    pub value: &'a str,
    /// Help below the label.
    pub hint: &'a str,
    /// The name the API knows the value by (a gateway's option key), shown in small print
    /// before the hint.
    pub key: &'a str,
    /// Error message, if the value was refused.
    pub error: Option<&'a str>,
    /// Extra trusted attributes (`required autocomplete="username"`).
    pub attrs: &'static str,
}

impl<'a> Field<'a> {
    /// A text field.
    pub fn new(name: &'a str, label: &'a str) -> Self {
        Self {
            name,
            label,
            kind: "text",
            value: "",
            hint: "",
            key: "",
            error: None,
            attrs: "",
        }
    }

    /// With a value.
    pub fn value(mut self, v: &'a str) -> Self {
        self.value = v;
        self
    }

    /// With an input type.
    pub fn kind(mut self, k: &'a str) -> Self {
        self.kind = k;
        self
    }

    /// With a hint.
    pub fn hint(mut self, h: &'a str) -> Self {
        self.hint = h;
        self
    }

    /// With the API's name of the value.
    pub fn key(mut self, k: &'a str) -> Self {
        self.key = k;
        self
    }

    /// With extra attributes.
    pub fn attrs(mut self, a: &'static str) -> Self {
        self.attrs = a;
        self
    }

    /// With the error of `errors` for this field, if any.
    pub fn errors(mut self, errors: &'a [(String, String)]) -> Self {
        self.error = errors
            .iter()
            .find(|(f, _)| f == self.name)
            .map(|(_, m)| m.as_str());
        self
    }

    fn describedby(&self) -> String {
        let mut ids = Vec::new();
        if !self.hint.is_empty() || !self.key.is_empty() {
            ids.push(format!("{}-hint", self.name));
        }
        if self.error.is_some() {
            ids.push(format!("{}-error", self.name));
        }
        ids.join(" ")
    }

    fn head(&self, out: &mut Out) {
        w!(
            out,
            "<div class=\"field\"><label for=\"{n}\">{l}</label>",
            n = E(self.name),
            l = E(self.label)
        );
        if !self.hint.is_empty() || !self.key.is_empty() {
            w!(out, "<p class=\"hint\" id=\"{}-hint\">", E(self.name));
            if !self.key.is_empty() {
                w!(out, "<code class=\"key\">{}</code> ", E(self.key));
            }
            w!(out, "{}</p>", E(self.hint));
        }
    }

    fn tail(&self, out: &mut Out) {
        if let Some(e) = self.error {
            w!(
                out,
                "<p class=\"error\" id=\"{}-error\">{}</p>",
                E(self.name),
                E(e)
            );
        }
        out.raw("</div>");
    }

    fn common(&self) -> String {
        let mut a = format!("id=\"{n}\" name=\"{n}\"", n = E(self.name));
        let d = self.describedby();
        if !d.is_empty() {
            let _ = write!(a, " aria-describedby=\"{}\"", E(&d));
        }
        if self.error.is_some() {
            a.push_str(" aria-invalid=\"true\"");
        }
        if !self.attrs.is_empty() {
            a.push(' ');
            a.push_str(self.attrs);
        }
        a
    }

    /// Renders an `<input>`.
    pub fn input(self, out: &mut Out) {
        self.head(out);
        w!(
            out,
            "<input type=\"{}\" {} value=\"{}\">",
            E(self.kind),
            self.common(),
            E(self.value)
        );
        self.tail(out);
    }

    /// Renders a `<textarea>`.
    pub fn textarea(self, out: &mut Out) {
        self.head(out);
        w!(
            out,
            "<textarea {} rows=\"4\">{}</textarea>",
            self.common(),
            E(self.value)
        );
        self.tail(out);
    }

    /// Renders a `<select>` of (value, label) with `self.value` selected.
    pub fn select(self, options: &[(String, String)], out: &mut Out) {
        self.head(out);
        w!(out, "<select {}>", self.common());
        for (v, l) in options {
            let sel = if v == self.value { " selected" } else { "" };
            w!(out, "<option value=\"{}\"{sel}>{}</option>", E(v), E(l));
        }
        out.raw("</select>");
        self.tail(out);
    }
}

/// The error summary at the top of a refused form (focused by the script).
pub fn error_summary(errors: &[(String, String)], out: &mut Out) {
    if errors.is_empty() {
        return;
    }
    out.raw("<div class=\"errors\" role=\"alert\" tabindex=\"-1\"><h2>There is a problem</h2><ul>");
    for (field, msg) in errors {
        if field.is_empty() {
            w!(out, "<li>{}</li>", E(msg));
        } else {
            w!(out, "<li><a href=\"#{}\">{}</a></li>", E(field), E(msg));
        }
    }
    out.raw("</ul></div>");
}

/// A one-button POST form (CSRF included), optionally confirmed by the script.
pub fn post_button(
    out: &mut Out,
    action: &str,
    csrf: &str,
    label: &str,
    class: &str,
    confirm: Option<&str>,
) {
    w!(
        out,
        "<form class=\"inline\" method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button class=\"{}\"",
        E(action),
        E(csrf),
        E(class)
    );
    if let Some(c) = confirm {
        w!(out, " data-confirm=\"{}\"", E(c));
    }
    w!(out, ">{}</button></form>", E(label));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_the_five() {
        assert_eq!(
            E("<a href=\"x\" title='y'>&</a>").to_string(),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(U("a b/ü?&").to_string(), "a%20b%2F%C3%BC%3F%26");
    }

    #[test]
    fn fields_carry_their_error() {
        let errors = vec![("phone".to_owned(), "Bad <number>".to_owned())];
        let mut out = Out::new();
        Field::new("phone", "Phone")
            .value("\"><script>")
            .errors(&errors)
            .input(&mut out);
        let s = out.into_string();
        assert!(s.contains("aria-invalid=\"true\""));
        assert!(s.contains("aria-describedby=\"phone-error\""));
        assert!(s.contains("Bad &lt;number&gt;"));
        assert!(!s.contains("<script>"));
    }

    proptest! {
        #[test]
        fn escaped_text_never_opens_markup(s in ".*") {
            let e = E(&s).to_string();
            prop_assert!(!e.contains('<') && !e.contains('>') && !e.contains('"') && !e.contains('\''));
            let u = U(&s).to_string();
            prop_assert!(u.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        }
    }
}
