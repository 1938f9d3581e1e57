//! The audit log: one row per API call, never containing secrets.

use crate::db::Arg;
use crate::{Result, Store, flag};
use sqlx::Row;

/// One audit entry (serializable: a node that cannot reach the database keeps its entries in
/// a local spool until it can).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AuditEntry {
    /// Row id (0 when inserting).
    pub id: i64,
    /// Time (Unix ms).
    pub ts: i64,
    /// `POST /validate/check` etc.
    pub action: String,
    /// The call succeeded (for validate: the user was authenticated).
    pub success: bool,
    /// ACCEPT / REJECT / CHALLENGE for authentication calls.
    pub authentication: String,
    /// Token serial(s).
    pub serial: String,
    /// Token type.
    pub token_type: String,
    /// User login.
    pub user: String,
    /// Realm.
    pub realm: String,
    /// Resolver.
    pub resolver: String,
    /// Administrator who made the call.
    pub administrator: String,
    /// Extra detail of the action (e.g. the gateway that delivered).
    pub action_detail: String,
    /// Outcome message.
    pub info: String,
    /// Client IP.
    pub client: String,
    /// Policies that applied.
    pub policies: String,
    /// Duration in ms.
    pub duration_ms: i64,
}

/// Filters of the audit list. String filters accept `*` wildcards.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Column name → pattern.
    pub columns: Vec<(&'static str, String)>,
    /// Only entries with this success value.
    pub success: Option<bool>,
    /// Only entries at or after this time (ms).
    pub since_ms: Option<i64>,
    /// Only entries of these realms (an admin's `auditlog` policies name them); None: all.
    pub realms: Option<Vec<String>>,
}

/// The most audit rows written by one statement (15 values each: well within SQLite's and
/// PostgreSQL's bind limits).
pub const AUDIT_BATCH: usize = 256;

const COLS: &str = "id, ts, action, success, authentication, serial, token_type, user_name, realm, resolver, \
    administrator, action_detail, info, client, policies, duration_ms";

/// The columns a filter may name (privacyIDEA's names → ours).
pub const FILTER_COLUMNS: &[(&str, &str)] = &[
    ("action", "action"),
    ("serial", "serial"),
    ("token_type", "token_type"),
    ("user", "user_name"),
    ("realm", "realm"),
    ("resolver", "resolver"),
    ("administrator", "administrator"),
    ("action_detail", "action_detail"),
    ("info", "info"),
    ("client", "client"),
    ("policies", "policies"),
    ("authentication", "authentication"),
];

/// An entry's values in the column order of the INSERTs.
fn audit_args(e: &AuditEntry) -> [Arg<'_>; 15] {
    [
        e.ts.into(),
        (&e.action).into(),
        e.success.into(),
        (&e.authentication).into(),
        (&e.serial).into(),
        (&e.token_type).into(),
        (&e.user).into(),
        (&e.realm).into(),
        (&e.resolver).into(),
        (&e.administrator).into(),
        (&e.action_detail).into(),
        (&e.info).into(),
        (&e.client).into(),
        (&e.policies).into(),
        e.duration_ms.into(),
    ]
}

impl Store {
    /// Appends an entry.
    pub async fn audit_insert(&self, e: &AuditEntry) -> Result<()> {
        self.audit_insert_many(std::slice::from_ref(e)).await
    }

    /// Writes entries in one commit: the audit rows of concurrent requests are written
    /// together. On the store's own SQLite connection as one transaction of one-row INSERTs
    /// (one prepared statement, however many rows); elsewhere as multi-row INSERTs of at most
    /// [`AUDIT_BATCH`] rows (one round trip each).
    pub async fn audit_insert_many(&self, entries: &[AuditEntry]) -> Result<()> {
        if self.is_direct() {
            let mut tx = self.begin().await?;
            for e in entries {
                tx.exec(
                    "INSERT INTO audit (ts, action, success, authentication, serial, token_type, user_name, realm, \
                     resolver, administrator, action_detail, info, client, policies, duration_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                    &audit_args(e),
                )
                .await?;
            }
            return tx.commit().await;
        }
        for chunk in entries.chunks(AUDIT_BATCH) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = i * 15;
                    let cols: Vec<String> = (1..=15).map(|c| format!("${}", b + c)).collect();
                    format!("({})", cols.join(", "))
                })
                .collect();
            // The statement is built from placeholders only; every value is bound.
            let sql = format!(
                "INSERT INTO audit (ts, action, success, authentication, serial, token_type, user_name, realm, resolver, \
                 administrator, action_detail, info, client, policies, duration_ms) VALUES {}",
                rows.join(", ")
            );
            let args: Vec<Arg<'_>> = chunk.iter().flat_map(audit_args).collect();
            self.exec(&sql, &args).await?;
        }
        Ok(())
    }

    /// How many logins of `user` in `realm` since `since_ms` succeeded (`success`) or were
    /// rejected: privacyIDEA's count for the authorization policies `auth_max_success` and
    /// `auth_max_fail`. A failure is an answer `REJECT`; challenges and requests refused with
    /// an error (a policy error, an unknown user) are none, as in privacyIDEA, whose SQL
    /// `authentication != 'CHALLENGE'` skips its entries without an answer. Logins are
    /// `/validate/check` (and its radius and saml forms), RADIUS Access-Requests and `/auth`.
    pub async fn audit_login_count(
        &self,
        user: &str,
        realm: &str,
        success: bool,
        since_ms: i64,
    ) -> Result<i64> {
        let outcome = if success {
            "success = 1"
        } else {
            "success = 0 AND authentication = 'REJECT'"
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM audit WHERE user_name = $1 AND realm = $2 AND ts >= $3 \
             AND {outcome} \
             AND (action LIKE '%/validate/check' OR action LIKE '%/validate/radiuscheck' \
             OR action LIKE '%/validate/samlcheck' OR action = 'RADIUS Access-Request' \
             OR action LIKE '%/auth')"
        ));
        let r = sqlx::query(sql)
            .bind(user)
            .bind(realm)
            .bind(since_ms)
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get(0)?)
    }

    /// A page of entries, newest first, and the total count.
    pub async fn audit_list(
        &self,
        f: &AuditFilter,
        page: i64,
        page_size: i64,
    ) -> Result<(Vec<AuditEntry>, i64)> {
        let mut wh = vec!["1 = 1".to_owned()];
        let mut binds: Vec<String> = Vec::new();
        for (col, pat) in &f.columns {
            // Column names come from FILTER_COLUMNS, never from the request.
            if let Some((_, real)) = FILTER_COLUMNS.iter().find(|(k, _)| k == col) {
                binds.push(crate::like_pattern(pat));
                wh.push(crate::ilike(real).replace('?', &format!("${}", binds.len())));
            }
        }
        if let Some(s) = f.success {
            wh.push(format!("success = {}", i64::from(s)));
        }
        if let Some(t) = f.since_ms {
            wh.push(format!("ts >= {t}"));
        }
        if let Some(realms) = &f.realms {
            let marks: Vec<String> = realms
                .iter()
                .map(|r| {
                    binds.push(r.clone());
                    format!("${}", binds.len())
                })
                .collect();
            wh.push(if marks.is_empty() {
                "1 = 0".to_owned()
            } else {
                format!("realm IN ({})", marks.join(", "))
            });
        }
        let where_sql = wh.join(" AND ");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM audit WHERE {where_sql}"
        )));
        for b in &binds {
            q = q.bind(b.clone());
        }
        let total: i64 = q.fetch_one(&self.pool).await?.try_get(0)?;
        let size = page_size.clamp(1, 1000);
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM audit WHERE {where_sql} ORDER BY id DESC LIMIT {size} OFFSET {}",
            (page.max(1) - 1).saturating_mul(size)
        )));
        for b in &binds {
            q = q.bind(b.clone());
        }
        let rows = q.fetch_all(&self.pool).await?;
        let entries = rows
            .iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get(0)?,
                    ts: r.try_get(1)?,
                    action: r.try_get(2)?,
                    success: flag(r.try_get(3)?),
                    authentication: r.try_get(4)?,
                    serial: r.try_get(5)?,
                    token_type: r.try_get(6)?,
                    user: r.try_get(7)?,
                    realm: r.try_get(8)?,
                    resolver: r.try_get(9)?,
                    administrator: r.try_get(10)?,
                    action_detail: r.try_get(11)?,
                    info: r.try_get(12)?,
                    client: r.try_get(13)?,
                    policies: r.try_get(14)?,
                    duration_ms: r.try_get(15)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((entries, total))
    }
}
