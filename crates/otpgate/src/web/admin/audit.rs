//! The audit log, filtered and paged, and the SMS records beside it.

use super::super::html::{Out, w};
use super::super::request::{Web, WebResult};
use super::super::view::{audit as view, messages, pager};
use super::page;
use otpgate_service::audit::AuditQuery;

/// Page size of the audit log.
const PAGE: i64 = 25;

/// `GET /ui/admin/audit?user=&serial=&action=&authentication=&success=&page=`.
pub async fn list(web: Web) -> WebResult {
    let s = web.admin("auditlog").await?;
    let q = &web.query;
    let g = |k: &str| q.get(k).unwrap_or_default().trim().to_owned();
    let page_no = page_of(q);
    let mut b = Out::new();
    tabs(&mut b, false);
    view::filters(&mut b, g);
    let mut query = AuditQuery {
        page: Some(page_no),
        page_size: Some(PAGE),
        ..Default::default()
    };
    for col in ["user", "serial", "action", "authentication"] {
        let v = g(col);
        if !v.is_empty() {
            // An action is found inside its route unless a pattern is given.
            let v = if col == "action" && !v.contains('*') {
                format!("*{v}*")
            } else {
                v
            };
            query.columns.push((col, v));
        }
    }
    let success = g("success");
    if !success.is_empty() {
        query.success = Some(crate::params::is_true(&success));
    }
    let reach = web
        .app
        .services
        .policies()
        .await?
        .admin_reach(&s.username, "auditlog");
    let listed = web.app.services.list_audit(&query, &reach).await?;
    view::table(
        &mut b,
        &listed.items,
        &format!("Audit entries, newest first ({})", listed.count),
    );
    pager(&mut b, "/ui/admin/audit", q, page_no, listed.count, PAGE);
    Ok(page(&web, &s, "Audit log", &[], b))
}

/// The page a query asks for (1 unless it names a later one).
fn page_of(q: &crate::params::Params) -> i64 {
    q.get("page")
        .and_then(|p| p.parse::<i64>().ok())
        .unwrap_or(1)
        .max(1)
}

/// The two views of the log: entries and SMS.
fn tabs(b: &mut Out, sms: bool) {
    let (entries, messages) = if sms {
        ("", " aria-current=\"page\"")
    } else {
        (" aria-current=\"page\"", "")
    };
    w!(
        b,
        "<nav class=\"tabs\" aria-label=\"Audit views\"><a href=\"/ui/admin/audit\"{entries}>Entries</a> <a href=\"/ui/admin/audit/sms\"{messages}>SMS and their delivery</a></nav>"
    );
}

/// `GET /ui/admin/audit/sms?user=&serial=&transaction_id=&gateway=&state=&page=`: one record
/// per SMS, newest first, with its delivery.
pub async fn sms(web: Web) -> WebResult {
    let s = web.admin("auditlog").await?;
    let q = &web.query;
    let g = |k: &str| q.get(k).unwrap_or_default().trim().to_owned();
    let page_no = page_of(q);
    let mut b = Out::new();
    tabs(&mut b, true);
    messages::filters(&mut b, g);
    let some = |k: &str| Some(g(k)).filter(|v| !v.is_empty());
    let filter = otpgate_store::MessageFilter {
        transaction_id: some("transaction_id"),
        serial: some("serial"),
        user: some("user"),
        gateway: some("gateway"),
        state: some("state"),
        ..Default::default()
    };
    let reach = web
        .app
        .services
        .policies()
        .await?
        .admin_reach(&s.username, "auditlog");
    let listed = web
        .app
        .services
        .list_messages(&filter, page_no, PAGE, &reach)
        .await?;
    messages::table(
        &mut b,
        &listed.items,
        &format!("SMS, newest first ({})", listed.count),
    );
    pager(
        &mut b,
        "/ui/admin/audit/sms",
        q,
        page_no,
        listed.count,
        PAGE,
    );
    Ok(page(&web, &s, "Audit log: SMS", &[], b))
}
