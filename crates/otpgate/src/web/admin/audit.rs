//! The audit log, filtered and paged.

use super::super::html::Out;
use super::super::request::{Web, WebResult};
use super::super::view::{audit as view, pager};
use super::page;
use otpgate_service::audit::AuditQuery;

/// Page size of the audit log.
const PAGE: i64 = 25;

/// `GET /ui/admin/audit?user=&serial=&action=&authentication=&success=&page=`.
pub async fn list(web: Web) -> WebResult {
    let s = web.admin("auditlog").await?;
    let q = &web.query;
    let g = |k: &str| q.get(k).unwrap_or_default().trim().to_owned();
    let page_no = q
        .get("page")
        .and_then(|p| p.parse::<i64>().ok())
        .unwrap_or(1)
        .max(1);
    let mut b = Out::new();
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
