//! `/audit`: the audit log in privacyIDEA's shape.

use super::{ApiError, Pi, envelope};
use crate::params::{Params, is_true};
use crate::state::App;
use axum::extract::State;
use axum::response::Response;
use otpgate_service::audit::{AuditEntry, AuditQuery, FILTER_COLUMNS};
use otpgate_service::{Page, ServiceError};
use serde_json::{Value, json};

/// The columns privacyIDEA reports in `auditcolumns`.
const COLUMNS: &[&str] = &[
    "number",
    "action",
    "success",
    "authentication",
    "serial",
    "date",
    "startdate",
    "duration",
    "token_type",
    "user",
    "realm",
    "administrator",
    "action_detail",
    "info",
    "privacyidea_server",
    "client",
    "policies",
    "resolver",
];

/// `GET /audit/`'s filters (a column each, `*` wildcards), `success`, `page`, `page_size`.
pub fn audit_query(p: &Params) -> Result<AuditQuery, ServiceError> {
    Ok(AuditQuery {
        columns: FILTER_COLUMNS
            .iter()
            .filter_map(|(col, _)| p.get_nonblank(col).map(|v| (*col, v.to_owned())))
            .collect(),
        success: p.get_nonblank("success").map(is_true),
        page: p.int("page")?,
        page_size: p.int("page_size")?,
    })
}

fn entry_json(e: &AuditEntry) -> Value {
    json!({
        "number": e.id, "action": e.action, "success": i64::from(e.success), "authentication": e.authentication,
        "serial": e.serial, "date": envelope::iso(e.ts + e.duration_ms), "startdate": envelope::iso(e.ts),
        "duration": e.duration_ms as f64 / 1000.0, "token_type": e.token_type, "user": e.user, "realm": e.realm,
        "administrator": e.administrator, "action_detail": e.action_detail, "info": e.info,
        "privacyidea_server": "otpgate", "client": e.client, "policies": e.policies, "resolver": e.resolver,
    })
}

/// A page of the audit log in privacyIDEA's shape.
pub fn audit_json(page: &Page<AuditEntry>) -> Value {
    json!({
        "auditcolumns": COLUMNS, "auditdata": page.items.iter().map(entry_json).collect::<Vec<_>>(),
        "count": page.count, "current": page.page, "prev": page.prev(), "next": page.next(),
    })
}

/// `GET /audit/`.
pub async fn audit(State(app): State<App>, pi: Pi) -> Result<Response, ApiError> {
    let p = pi.params.clone();
    let page = pi
        .run(&app, Some("auditlog"), None, move |s, cx| {
            Box::pin(async move { s.list_audit(&audit_query(&p)?, cx.admin_reach()).await })
        })
        .await?;
    Ok(pi.reply(audit_json(&page)))
}
