//! SMS texts: the policies that set one, and the text of every realm with its live segment
//! counter.

use super::super::html::{E, Field, Out, w};
use super::super::page::csrf_field;
use super::super::session::Session;
use otpgate_core::sms_text::{self, Encoding};

/// What the segment counter says about a template: the summary, the number of SMS, and
/// what an admin should know.
pub fn count_summary(template: &str) -> (String, usize, Vec<String>) {
    match sms_text::preview(template) {
        Err(e) => (e, 0, Vec::new()),
        Ok(text) => {
            let (enc, n) = sms_text::segments(&text);
            let (name, one) = match enc {
                Encoding::Gsm7 => ("GSM-7", 160),
                Encoding::Ucs2 => ("UCS-2", 70),
            };
            let len = sms_text::length(&text, enc);
            let sms = if n == 1 { "1 SMS" } else { "SMS" };
            let summary = if n == 1 {
                format!("{name} · {sms} · {len} of {one} characters")
            } else {
                format!("{name} · {n} {sms} · {len} characters (one SMS holds {one})")
            };
            (summary, n, sms_text::warnings(template))
        }
    }
}

/// One policy that sets an SMS text: name, realms it applies to, the text.
pub struct TextPolicy {
    /// The policy's name.
    pub name: String,
    /// Its realms (empty: all).
    pub realms: Vec<String>,
    /// The text, unescaped.
    pub text: String,
}

/// The page: the policies with a text, and the editor of `policy`'s text (`value`).
pub fn body(
    b: &mut Out,
    s: &Session,
    with_text: &[TextPolicy],
    policy: &str,
    value: &str,
    errors: &[(String, String)],
) {
    b.raw("<p>The text of every SMS with a code. <code>{otp}</code> is the code and must be in it; other tags: <code>{serial}</code>, <code>{user}</code>, <code>{givenname}</code>, <code>{surname}</code>, <code>{time}</code>, <code>{date}</code>, <code>{challenge}</code>. The counter below assumes an 8-digit code and ordinary values.</p><p class=\"hint\">Stored as privacyIDEA stores it: the action <code>smstext</code> of an authentication policy.</p>");
    if with_text.is_empty() {
        b.raw("<p class=\"note\">No SMS text is set yet: every SMS carries the code alone (privacyIDEA's default, <code>&lt;otp&gt;</code>). The text below is a suggestion; it applies once saved.</p>");
    } else {
        b.raw("<div class=\"table-wrap\"><table class=\"data\"><caption>Policies that set an SMS text</caption><thead><tr><th scope=\"col\">Policy</th><th scope=\"col\">Applies to</th><th scope=\"col\">Text</th><th scope=\"col\">Size</th></tr></thead><tbody>");
        for p in with_text {
            let realms = if p.realms.is_empty() {
                "all realms".to_owned()
            } else {
                p.realms.join(", ")
            };
            w!(
                b,
                "<tr><td data-label=\"Policy\">{}</td><td data-label=\"Applies to\">{}</td><td data-label=\"Text\"><code>{}</code></td><td data-label=\"Size\">{}</td></tr>",
                E(&p.name),
                E(&realms),
                E(&p.text),
                E(&count_summary(&p.text).0)
            );
        }
        b.raw("</tbody></table></div>");
    }
    let (summary, n, warnings) = count_summary(value);
    w!(
        b,
        "<section class=\"card\" aria-labelledby=\"ed-h\"><h2 id=\"ed-h\">The SMS text of every realm</h2><p>Saved as policy <code>{}</code>.</p><form class=\"stack\" method=\"post\" action=\"/ui/admin/texts\">",
        E(policy)
    );
    csrf_field(b, s);
    Field::new("smstext", "SMS text")
        .value(value)
        .attrs(
            "required data-count-url=\"/ui/admin/texts/count\" data-count-output=\"smstext-count\"",
        )
        .errors(errors)
        .textarea(b);
    let many = if n > 1 { " many" } else { "" };
    w!(
        b,
        "<p><output id=\"smstext-count\" class=\"segments{many}\" for=\"smstext\" aria-live=\"polite\">{}{}</output></p>",
        E(&summary),
        E(&if warnings.is_empty() {
            String::new()
        } else {
            format!(" — {}", warnings.join(" "))
        })
    );
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\" name=\"do\" value=\"save\">Save</button> <button type=\"submit\" name=\"do\" value=\"count\">Count without saving</button></div></form></section>");
}
