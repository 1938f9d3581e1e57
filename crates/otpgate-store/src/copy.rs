//! Copies a whole database into another one (`otpgate copy-db`): SQLite → PostgreSQL when a
//! site grows to several nodes, or back. Ids are kept, so secrets sealed with row-bound AAD
//! and all references stay valid; PostgreSQL identity sequences are moved past the copied ids.

use crate::{Backend, Result, Store, StoreError};
use futures_util::TryStreamExt;
use sqlx::Row;
use sqlx::any::AnyRow;

#[derive(Clone, Copy)]
enum Kind {
    Int,
    OptInt,
    Text,
}

use Kind::{Int, OptInt, Text};

/// Every table in an order that satisfies the foreign keys, with its columns.
const TABLES: &[(&str, &[(&str, Kind)])] = &[
    ("meta", &[("key", Text), ("value", Text)]),
    (
        "admin",
        &[
            ("name", Text),
            ("password_hash", Text),
            ("created_at", Int),
            ("email", Text),
            ("mobile", Text),
            ("password_changed_at", Int),
        ],
    ),
    (
        "config",
        &[
            ("key", Text),
            ("value", Text),
            ("ctype", Text),
            ("description", Text),
        ],
    ),
    (
        "resolver",
        &[
            ("id", Int),
            ("name", Text),
            ("rtype", Text),
            ("config", Text),
            ("secret", Text),
        ],
    ),
    ("realm", &[("id", Int), ("name", Text), ("is_default", Int)]),
    (
        "realm_resolver",
        &[
            ("realm_id", Int),
            ("resolver_id", Int),
            ("priority", OptInt),
        ],
    ),
    (
        "internal_user",
        &[
            ("id", Int),
            ("resolver_id", Int),
            ("username", Text),
            ("password_hash", Text),
            ("givenname", Text),
            ("surname", Text),
            ("email", Text),
            ("mobile", Text),
            ("phone", Text),
            ("description", Text),
        ],
    ),
    (
        "token",
        &[
            ("id", Int),
            ("serial", Text),
            ("tokentype", Text),
            ("description", Text),
            ("key_enc", Text),
            ("pin_hash", Text),
            ("otplen", Int),
            ("active", Int),
            ("revoked", Int),
            ("locked", Int),
            ("failcount", Int),
            ("maxfail", Int),
            ("count", Int),
            ("count_window", Int),
            ("sync_window", Int),
            ("rollout_state", Text),
            ("created_at", Int),
            ("last_fail_ms", Int),
        ],
    ),
    (
        "tokeninfo",
        &[("token_id", Int), ("key", Text), ("value", Text)],
    ),
    (
        "tokenowner",
        &[
            ("token_id", Int),
            ("resolver", Text),
            ("user_id", Text),
            ("realm", Text),
        ],
    ),
    ("tokenrealm", &[("token_id", Int), ("realm", Text)]),
    (
        "challenge",
        &[
            ("id", Int),
            ("transaction_id", Text),
            ("token_id", Int),
            ("serial", Text),
            ("otp_counter", Int),
            ("challenge", Text),
            ("session", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("received_count", Int),
            ("otp_valid", Int),
            ("sent_at", Int),
        ],
    ),
    (
        "smsgateway",
        &[
            ("id", Int),
            ("name", Text),
            ("providermodule", Text),
            ("description", Text),
        ],
    ),
    (
        "smsgateway_option",
        &[
            ("id", Int),
            ("gateway_id", Int),
            ("key", Text),
            ("value", Text),
            ("otype", Text),
            ("encrypted", Int),
        ],
    ),
    (
        "policy",
        &[
            ("id", Int),
            ("name", Text),
            ("scope", Text),
            ("action", Text),
            ("realm", Text),
            ("resolver", Text),
            ("user_name", Text),
            ("client", Text),
            ("adminrealm", Text),
            ("adminuser", Text),
            ("priority", Int),
            ("active", Int),
            ("description", Text),
            ("time_range", Text),
            ("conditions", Text),
            ("check_all_resolvers", Int),
            ("user_agents", Text),
            ("user_case_insensitive", Int),
        ],
    ),
    (
        "smtpserver",
        &[
            ("id", Int),
            ("identifier", Text),
            ("server", Text),
            ("port", Int),
            ("username", Text),
            ("password", Text),
            ("sender", Text),
            ("tls", Int),
            ("tls_verify", Int),
            ("timeout", Int),
            ("description", Text),
            ("enqueue_job", Int),
        ],
    ),
    (
        "radiusserver",
        &[
            ("id", Int),
            ("identifier", Text),
            ("server", Text),
            ("port", Int),
            ("secret", Text),
            ("description", Text),
            ("dictionary", Text),
            ("retries", Int),
            ("timeout", Int),
        ],
    ),
    (
        "send_window",
        &[
            ("key", Text),
            ("window_start", Int),
            ("count", Int),
            ("max_count", Int),
        ],
    ),
    (
        "blocked_prefix",
        &[
            ("prefix", Text),
            ("blocked_at", Int),
            ("source", Text),
            ("reason", Text),
        ],
    ),
    (
        "eventhandler",
        &[
            ("id", Int),
            ("name", Text),
            ("events", Text),
            ("handlermodule", Text),
            ("action", Text),
            ("position", Text),
            ("ordering", Int),
            ("active", Int),
            ("options", Text),
            ("conditions", Text),
        ],
    ),
    (
        "outbox",
        &[
            ("id", Int),
            ("dedupe_key", Text),
            ("handler_id", Int),
            ("handler_name", Text),
            ("event", Text),
            ("channel", Text),
            ("config", Text),
            ("recipient", Text),
            ("subject", Text),
            ("body", Text),
            ("status", Text),
            ("attempts", Int),
            ("created_at", Int),
            ("next_at", Int),
            ("lease_until", Int),
            ("updated_at", Int),
            ("last_error", Text),
            ("delivered_by", Text),
        ],
    ),
    (
        "audit",
        &[
            ("id", Int),
            ("ts", Int),
            ("action", Text),
            ("success", Int),
            ("authentication", Text),
            ("serial", Text),
            ("token_type", Text),
            ("user_name", Text),
            ("realm", Text),
            ("resolver", Text),
            ("administrator", Text),
            ("action_detail", Text),
            ("info", Text),
            ("client", Text),
            ("policies", Text),
            ("duration_ms", Int),
        ],
    ),
    ("web_logout", &[("sid", Text), ("expires_at", Int)]),
    (
        "sms_message",
        &[
            ("id", Int),
            ("reference", Text),
            ("message_id", Text),
            ("transaction_id", Text),
            ("serial", Text),
            ("user_name", Text),
            ("realm", Text),
            ("gateway", Text),
            ("country", Text),
            ("prefix", Text),
            ("parts", Int),
            ("state", Text),
            ("status", Text),
            ("sent_at", Int),
            ("accepted_at", Int),
            ("done_at", Int),
            ("verified_at", Int),
            ("updated_at", Int),
        ],
    ),
    (
        "imported",
        &[
            ("kind", Text),
            ("name", Text),
            ("source", Text),
            ("imported_at", Int),
        ],
    ),
    (
        "sms_stat",
        &[
            ("day", Text),
            ("gateway", Text),
            ("outcome", Text),
            ("count", Int),
        ],
    ),
];

/// Tables with an identity id (their PostgreSQL sequences are moved after a copy).
const IDENTITY_TABLES: &[&str] = &[
    "resolver",
    "realm",
    "internal_user",
    "token",
    "challenge",
    "smsgateway",
    "smsgateway_option",
    "policy",
    "smtpserver",
    "radiusserver",
    "eventhandler",
    "outbox",
    "audit",
    "sms_message",
];

/// Rows copied per table.
pub type CopyReport = Vec<(&'static str, u64)>;

fn bind_row<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    row: &AnyRow,
    cols: &[(&str, Kind)],
) -> Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>> {
    for (i, (_, kind)) in cols.iter().enumerate() {
        q = match kind {
            Int => q.bind(row.try_get::<i64, _>(i)?),
            OptInt => q.bind(row.try_get::<Option<i64>, _>(i)?),
            Text => q.bind(row.try_get::<String, _>(i)?),
        };
    }
    Ok(q)
}

impl Store {
    /// True when no table holds a row, except the set-up rows of `meta` and `config`.
    pub async fn is_empty(&self) -> Result<bool> {
        let counts = TABLES
            .iter()
            .filter(|(t, _)| !matches!(*t, "meta" | "config"))
            .map(|(t, _)| format!("(SELECT COUNT(*) FROM {t})"))
            .collect::<Vec<_>>()
            .join(" + ");
        // Table names come from the constant list above.
        let n: i64 = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {counts}")))
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(n == 0)
    }

    /// Copies every row into `target`, which must be empty (its schema is already applied),
    /// in one transaction on the target, reading the source in one read-only snapshot so a
    /// copy taken while the source is in use is still consistent.
    pub async fn copy_into(&self, target: &Store) -> Result<CopyReport> {
        if !target.is_empty().await? {
            return Err(StoreError::Conflict(
                "the target database is not empty".into(),
            ));
        }
        let mut report = Vec::new();
        let mut source = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            // One snapshot for every SELECT (SQLite's read transaction is one already).
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *source)
                .await?;
        }
        let mut tx = target.pool.begin().await?;
        // The target's own key check and set-up defaults are replaced by the source's.
        sqlx::query("DELETE FROM meta").execute(&mut *tx).await?;
        sqlx::query("DELETE FROM config").execute(&mut *tx).await?;
        for (table, cols) in TABLES {
            let names = cols.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ");
            let placeholders = (1..=cols.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            // Table and column names come from the constant list above.
            let select = sqlx::AssertSqlSafe(format!("SELECT {names} FROM {table}"));
            let insert = format!("INSERT INTO {table} ({names}) VALUES ({placeholders})");
            // Streamed: a large audit table is never held in memory at once.
            let mut rows = sqlx::query(select).fetch(&mut *source);
            let mut copied = 0u64;
            while let Some(row) = rows.try_next().await? {
                bind_row(
                    sqlx::query(sqlx::AssertSqlSafe(insert.as_str())),
                    &row,
                    cols,
                )?
                .execute(&mut *tx)
                .await?;
                copied += 1;
            }
            report.push((*table, copied));
        }
        if target.backend == Backend::Postgres {
            for table in IDENTITY_TABLES {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
                ));
                sqlx::query(sql).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        source.rollback().await?;
        Ok(report)
    }
}
