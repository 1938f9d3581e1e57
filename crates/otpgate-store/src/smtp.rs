//! Central SMTP server definitions (`/smtpserver`).

use crate::{Result, Store, flag};
use sqlx::Row;
use sqlx::any::AnyRow;

/// An SMTP server definition; `password` is sealed (or empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmtpServerRow {
    /// Row id.
    pub id: i64,
    /// Unique name.
    pub identifier: String,
    /// Host name, or `smtps://host` for implicit TLS.
    pub server: String,
    /// Port.
    pub port: i64,
    /// Login; empty = no AUTH.
    pub username: String,
    /// Sealed password.
    pub password: String,
    /// From address.
    pub sender: String,
    /// STARTTLS.
    pub tls: bool,
    /// Verify the server's certificate.
    pub tls_verify: bool,
    /// Seconds.
    pub timeout: i64,
    /// Free text.
    pub description: String,
    /// privacyIDEA's queue flag (stored, not used).
    pub enqueue_job: bool,
}

const COLS: &str = "id, identifier, server, port, username, password, sender, tls, tls_verify, timeout, description, enqueue_job";

fn row(r: &AnyRow) -> Result<SmtpServerRow> {
    Ok(SmtpServerRow {
        id: r.try_get(0)?,
        identifier: r.try_get(1)?,
        server: r.try_get(2)?,
        port: r.try_get(3)?,
        username: r.try_get(4)?,
        password: r.try_get(5)?,
        sender: r.try_get(6)?,
        tls: flag(r.try_get(7)?),
        tls_verify: flag(r.try_get(8)?),
        timeout: r.try_get(9)?,
        description: r.try_get(10)?,
        enqueue_job: flag(r.try_get(11)?),
    })
}

/// [`Store::smtp_upsert`] on a connection (or in a transaction).
pub(crate) async fn smtp_upsert_in(c: &mut sqlx::AnyConnection, s: &SmtpServerRow) -> Result<i64> {
    let r = sqlx::query(
        "INSERT INTO smtpserver (identifier, server, port, username, password, sender, tls, tls_verify, timeout, description, enqueue_job) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (identifier) DO UPDATE SET \
         server = excluded.server, port = excluded.port, username = excluded.username, password = excluded.password, \
         sender = excluded.sender, tls = excluded.tls, tls_verify = excluded.tls_verify, timeout = excluded.timeout, \
         description = excluded.description, enqueue_job = excluded.enqueue_job RETURNING id",
    )
    .bind(&s.identifier)
    .bind(&s.server)
    .bind(s.port)
    .bind(&s.username)
    .bind(&s.password)
    .bind(&s.sender)
    .bind(i64::from(s.tls))
    .bind(i64::from(s.tls_verify))
    .bind(s.timeout)
    .bind(&s.description)
    .bind(i64::from(s.enqueue_job))
    .fetch_one(&mut *c)
    .await?;
    Ok(r.try_get(0)?)
}

impl Store {
    /// Creates or replaces an SMTP server definition; returns its id.
    pub async fn smtp_upsert(&self, s: &SmtpServerRow) -> Result<i64> {
        smtp_upsert_in(&mut *self.pool.acquire().await?, s).await
    }

    /// All SMTP servers by identifier.
    pub async fn smtp_list(&self) -> Result<Vec<SmtpServerRow>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM smtpserver ORDER BY identifier"));
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(row).collect()
    }

    /// One SMTP server.
    pub async fn smtp_get(&self, identifier: &str) -> Result<Option<SmtpServerRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM smtpserver WHERE identifier = $1"
        ));
        let r = sqlx::query(sql)
            .bind(identifier)
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(row).transpose()
    }

    /// Deletes an SMTP server; true when it existed.
    pub async fn smtp_delete(&self, identifier: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM smtpserver WHERE identifier = $1")
            .bind(identifier)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }
}
