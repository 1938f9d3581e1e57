//! The audit log: one entry per API call (the HTTP layer fills in action, client, duration
//! and admin; the services add user, realm, serial and outcome). Never a secret.

use crate::params::MAX_PAGE;
use crate::{Params, Result, Services};
pub use otpgate_store::AuditEntry;
use otpgate_store::AuditFilter;
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

/// A time (ms) as privacyIDEA's audit shows it: UTC, ISO 8601 with microseconds.
pub(crate) fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
        .unwrap_or_default()
}

impl Services {
    /// Writes an entry; a failure is logged, never fails the request it describes.
    pub async fn write_audit(&self, entry: &AuditEntry) {
        if let Err(e) = self.store().audit_insert(entry).await {
            tracing::error!(error = %e, action = %entry.action, "audit entry could not be written");
        }
    }

    /// `GET /audit/`: filters by column (with `*`), `page` and `page_size`.
    pub async fn list_audit(&self, params: &Params) -> Result<Value> {
        let mut filter = AuditFilter::default();
        for (col, _) in otpgate_store::audit::FILTER_COLUMNS {
            if let Some(v) = params.get_nonblank(col) {
                filter.columns.push((col, v.to_owned()));
            }
        }
        if let Some(s) = params.get_nonblank("success") {
            filter.success = Some(crate::params::is_true(s));
        }
        let page = params.int("page")?.unwrap_or(1).clamp(1, MAX_PAGE);
        let size = params.int("page_size")?.unwrap_or(15).clamp(1, 1000);
        let (rows, count) = self.store().audit_list(&filter, page, size).await?;
        let data: Vec<Value> = rows
            .iter()
            .map(|e| {
                json!({
                    "number": e.id, "action": e.action, "success": i64::from(e.success), "authentication": e.authentication,
                    "serial": e.serial, "date": iso(e.ts + e.duration_ms), "startdate": iso(e.ts),
                    "duration": e.duration_ms as f64 / 1000.0, "token_type": e.token_type, "user": e.user, "realm": e.realm,
                    "administrator": e.administrator, "action_detail": e.action_detail, "info": e.info,
                    "privacyidea_server": "otpgate", "client": e.client, "policies": e.policies, "resolver": e.resolver,
                })
            })
            .collect();
        Ok(json!({
            "auditcolumns": COLUMNS, "auditdata": data, "count": count, "current": page,
            "prev": if page > 1 { json!(page - 1) } else { Value::Null },
            "next": if page.saturating_mul(size) < count { json!(page + 1) } else { Value::Null },
        }))
    }
}
