//! The audit log: its filters and its table (also the dashboard's recent rejected logins).

use super::super::html::{E, Field, Out, w};
use otpgate_service::audit::AuditEntry;

/// The filter form (`user`, `serial`, `action`, `authentication`, `success`).
pub fn filters(b: &mut Out, g: impl Fn(&str) -> String) {
    b.raw("<form class=\"filters\" method=\"get\" action=\"/ui/admin/audit\" role=\"search\">");
    Field::new("user", "User")
        .kind("search")
        .value(&g("user"))
        .input(b);
    Field::new("serial", "Serial")
        .kind("search")
        .value(&g("serial"))
        .input(b);
    Field::new("action", "Action")
        .kind("search")
        .value(&g("action"))
        .hint("* matches anything, e.g. */validate/*")
        .input(b);
    let choices = |c: &[(&str, &str)]| -> Vec<(String, String)> {
        c.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    };
    Field::new("authentication", "Authentication")
        .value(&g("authentication"))
        .select(
            &choices(&[
                ("", "Any"),
                ("ACCEPT", "ACCEPT"),
                ("REJECT", "REJECT"),
                ("CHALLENGE", "CHALLENGE"),
            ]),
            b,
        );
    Field::new("success", "Result").value(&g("success")).select(
        &choices(&[("", "Any"), ("1", "Succeeded"), ("0", "Failed")]),
        b,
    );
    b.raw("<div class=\"actions\"><button type=\"submit\">Filter</button> <a class=\"button\" href=\"/ui/admin/audit\">Clear</a></div></form>");
}

/// Audit entries as a table.
pub fn table(b: &mut Out, rows: &[AuditEntry], caption: &str) {
    if rows.is_empty() {
        b.raw("<p class=\"empty\">No entries.</p>");
        return;
    }
    w!(
        b,
        "<div class=\"table-wrap\"><table class=\"data\"><caption>{}</caption><thead><tr><th scope=\"col\">Time (UTC)</th><th scope=\"col\">Action</th><th scope=\"col\">Result</th><th scope=\"col\">User</th><th scope=\"col\">Serial</th><th scope=\"col\">Client</th><th scope=\"col\">Details</th></tr></thead><tbody>",
        E(caption)
    );
    for r in rows {
        let auth = r.authentication.as_str();
        let label = match (auth, r.success) {
            ("", true) => "success",
            ("", false) => "failed",
            (a, _) => a,
        };
        let class = if r.success {
            "ok"
        } else if auth == "CHALLENGE" {
            "warn"
        } else {
            "bad"
        };
        let user = match (r.user.as_str(), r.realm.as_str()) {
            ("", _) => r.administrator.clone(),
            (u, "") => u.to_owned(),
            (u, realm) => format!("{u}@{realm}"),
        };
        let details = [r.info.as_str(), r.action_detail.as_str()]
            .into_iter()
            .filter(|x| !x.is_empty())
            .collect::<Vec<_>>()
            .join(" · ");
        let time = chrono::DateTime::from_timestamp_millis(r.ts)
            .map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        w!(
            b,
            "<tr><td data-label=\"Time\">{}</td><td data-label=\"Action\"><code>{}</code></td><td data-label=\"Result\"><span class=\"badge {class}\">{}</span></td><td data-label=\"User\">{}</td><td data-label=\"Serial\">{}</td><td data-label=\"Client\">{}</td><td data-label=\"Details\">{}</td></tr>",
            E(&time),
            E(&r.action),
            E(label),
            E(&user),
            E(&r.serial),
            E(&r.client),
            E(&details)
        );
    }
    b.raw("</tbody></table></div>");
}
