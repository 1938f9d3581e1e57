//! The console's HTML, one file per resource: functions from the service's typed views (and
//! what a refused form held) to markup. No service calls and no decisions here; every value
//! from outside goes through the escaping of [`super::html`].

pub mod audit;
pub mod dashboard;
pub mod events;
pub mod gateways;
pub mod messages;
pub mod policies;
pub mod realms;
pub mod resolvers;
pub mod settings;
pub mod smtp;
pub mod texts;
pub mod tokens;
pub mod users;

use super::html::{E, Out, U, w};
use crate::params::Params;

/// The attributes of a field naming something admins define (the service's `valid_name`):
/// the browser checks it, and says what fits when it does not.
pub const NAME_ATTRS: &str = "required maxlength=\"255\" pattern=\"[A-Za-z0-9_.\\-]+\" title=\"Letters, digits, _ . and - only (no spaces).\"";

/// The hint of such a field.
pub const NAME_HINT: &str = "Letters, digits, _ . and - (no spaces).";

/// Page links under a listing (the filters of `q` kept).
pub fn pager(b: &mut Out, base: &str, q: &Params, page: i64, count: i64, size: i64) {
    let pages = ((count + size - 1) / size).max(1);
    if pages <= 1 {
        return;
    }
    let link = |p: i64| {
        let mut parts: Vec<String> = q
            .iter()
            .filter(|(k, v)| k.as_str() != "page" && k.as_str() != "ok" && !v.is_empty())
            .map(|(k, v)| format!("{}={}", U(k), U(v)))
            .collect();
        parts.push(format!("page={p}"));
        format!("{base}?{}", parts.join("&"))
    };
    b.raw("<nav class=\"pager\" aria-label=\"Pages\">");
    if page > 1 {
        w!(
            b,
            "<a rel=\"prev\" href=\"{}\">Previous</a> ",
            E(&link(page - 1))
        );
    }
    w!(b, "<span>Page {page} of {pages}</span>");
    if page < pages {
        w!(
            b,
            " <a rel=\"next\" href=\"{}\">Next</a>",
            E(&link(page + 1))
        );
    }
    b.raw("</nav>");
}

/// Opens a form that posts to `action`, with the session's CSRF token.
pub fn form_open(b: &mut Out, s: &super::session::Session, action: &str) {
    w!(
        b,
        "<form class=\"stack\" method=\"post\" action=\"{}\">",
        E(action)
    );
    super::page::csrf_field(b, s);
}

/// Choices of a select from names.
pub fn opts(items: impl IntoIterator<Item = impl Into<String>>) -> Vec<(String, String)> {
    items
        .into_iter()
        .map(|i| {
            let i = i.into();
            (i.clone(), i)
        })
        .collect()
}

/// The value of form field `k`: what was typed (a refused form), else what is stored.
pub fn typed_or(f: &Params, k: &str, stored: &str) -> String {
    f.get(k)
        .map(str::to_owned)
        .unwrap_or_else(|| stored.to_owned())
}
