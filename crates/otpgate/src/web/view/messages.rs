//! The SMS records (one per SMS a gateway took or refused, with its delivery): their filters
//! and their table, on the audit log's SMS page and on a token's page.

use super::super::html::{E, Field, Out, U, w};
use otpgate_store::SmsMessageRow;

/// The filter form (`transaction_id`, `serial`, `user`, `gateway`, `state`).
pub fn filters(b: &mut Out, g: impl Fn(&str) -> String) {
    b.raw("<form class=\"filters\" method=\"get\" action=\"/ui/admin/audit/sms\" role=\"search\">");
    for (name, label) in [
        ("user", "User"),
        ("serial", "Serial"),
        ("transaction_id", "Transaction"),
        ("gateway", "Gateway"),
    ] {
        Field::new(name, label)
            .kind("search")
            .value(&g(name))
            .input(b);
    }
    let states: Vec<(String, String)> = [
        ("", "Any"),
        ("sending", "Sending"),
        ("accepted", "Accepted, no receipt yet"),
        ("delivered", "Delivered"),
        ("failed", "Not delivered"),
        ("not_sent", "Refused by the gateway"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    Field::new("state", "State")
        .value(&g("state"))
        .select(&states, b);
    b.raw("<div class=\"actions\"><button type=\"submit\">Filter</button> <a class=\"button\" href=\"/ui/admin/audit/sms\">Clear</a></div></form>");
}

/// The badge class and label of a record's state.
fn state(m: &SmsMessageRow) -> (&'static str, &'static str) {
    match m.state.as_str() {
        "delivered" => ("ok", "delivered"),
        "failed" => ("bad", "not delivered"),
        "not_sent" => ("bad", "refused"),
        "accepted" => ("warn", "accepted"),
        _ => ("warn", "sending"),
    }
}

/// SMS records as a table.
pub fn table(b: &mut Out, rows: &[SmsMessageRow], caption: &str) {
    if rows.is_empty() {
        b.raw("<p class=\"empty\">No SMS.</p>");
        return;
    }
    w!(
        b,
        "<div class=\"table-wrap\"><table class=\"data\"><caption>{}</caption><thead><tr><th scope=\"col\">Sent (UTC)</th><th scope=\"col\">User</th><th scope=\"col\">Serial</th><th scope=\"col\">Gateway</th><th scope=\"col\">To</th><th scope=\"col\">State</th><th scope=\"col\">Delivered after</th><th scope=\"col\">Login</th><th scope=\"col\">Transaction</th></tr></thead><tbody>",
        E(caption)
    );
    for m in rows {
        let time = chrono::DateTime::from_timestamp_millis(m.sent_at)
            .map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let (class, label) = state(m);
        let status = if m.status.is_empty() {
            String::new()
        } else {
            format!(" <small>{}</small>", E(&m.status))
        };
        let after = if m.state == "delivered" && m.done_at >= m.sent_at {
            format!("{:.1} s", (m.done_at - m.sent_at) as f64 / 1000.0)
        } else {
            String::new()
        };
        let user = match (m.user.as_str(), m.realm.as_str()) {
            ("", _) => String::new(),
            (u, "") => u.to_owned(),
            (u, r) => format!("{u}@{r}"),
        };
        let to = match (m.country.as_str(), m.prefix.as_str()) {
            ("", p) => format!("{p}…"),
            (c, p) => format!("{c} {p}…"),
        };
        let login = if m.verified_at > 0 { "answered" } else { "" };
        w!(
            b,
            "<tr><td data-label=\"Sent\">{}</td><td data-label=\"User\">{}</td><td data-label=\"Serial\">",
            E(&time),
            E(&user)
        );
        if !m.serial.is_empty() {
            w!(
                b,
                "<a href=\"/ui/admin/tokens/{}\">{}</a>",
                U(&m.serial),
                E(&m.serial)
            );
        }
        w!(
            b,
            "</td><td data-label=\"Gateway\">{}</td><td data-label=\"To\">{}</td><td data-label=\"State\"><span class=\"badge {class}\">{}</span>{status}</td><td data-label=\"Delivered after\">{}</td><td data-label=\"Login\">{}</td><td data-label=\"Transaction\">",
            E(&m.gateway),
            E(&to),
            E(label),
            E(&after),
            E(login)
        );
        if !m.transaction_id.is_empty() {
            w!(
                b,
                "<a href=\"/ui/admin/audit/sms?transaction_id={}\"><code>{}</code></a>",
                U(&m.transaction_id),
                E(&m.transaction_id)
            );
        }
        b.raw("</td></tr>");
    }
    b.raw("</tbody></table></div>");
}
