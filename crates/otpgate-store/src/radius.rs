//! RADIUS server definitions (`/radiusserver`), for the RADIUS pass-through.

use crate::{Result, Store};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A RADIUS server definition; `secret` is sealed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RadiusServerRow {
    /// Row id.
    pub id: i64,
    /// Unique name.
    pub identifier: String,
    /// Host name or address.
    pub server: String,
    /// UDP port.
    pub port: i64,
    /// Sealed shared secret.
    pub secret: String,
    /// Free text.
    pub description: String,
    /// privacyIDEA's dictionary file (stored, not used: otpgate sends standard attributes).
    pub dictionary: String,
    /// Tries after the first.
    pub retries: i64,
    /// Seconds per try.
    pub timeout: i64,
}

const COLS: &str =
    "id, identifier, server, port, secret, description, dictionary, retries, timeout";

fn row(r: &AnyRow) -> Result<RadiusServerRow> {
    Ok(RadiusServerRow {
        id: r.try_get(0)?,
        identifier: r.try_get(1)?,
        server: r.try_get(2)?,
        port: r.try_get(3)?,
        secret: r.try_get(4)?,
        description: r.try_get(5)?,
        dictionary: r.try_get(6)?,
        retries: r.try_get(7)?,
        timeout: r.try_get(8)?,
    })
}

/// [`Store::radius_upsert`] on a connection (or in a transaction).
pub(crate) async fn radius_upsert_in(
    c: &mut sqlx::AnyConnection,
    s: &RadiusServerRow,
) -> Result<i64> {
    let r = sqlx::query(
        "INSERT INTO radiusserver (identifier, server, port, secret, description, dictionary, retries, timeout) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (identifier) DO UPDATE SET \
         server = excluded.server, port = excluded.port, secret = excluded.secret, \
         description = excluded.description, dictionary = excluded.dictionary, \
         retries = excluded.retries, timeout = excluded.timeout RETURNING id",
    )
    .bind(&s.identifier)
    .bind(&s.server)
    .bind(s.port)
    .bind(&s.secret)
    .bind(&s.description)
    .bind(&s.dictionary)
    .bind(s.retries)
    .bind(s.timeout)
    .fetch_one(&mut *c)
    .await?;
    Ok(r.try_get(0)?)
}

impl Store {
    /// Creates or replaces a RADIUS server definition; returns its id.
    pub async fn radius_upsert(&self, s: &RadiusServerRow) -> Result<i64> {
        radius_upsert_in(&mut *self.pool.acquire().await?, s).await
    }

    /// All RADIUS servers by identifier.
    pub async fn radius_list(&self) -> Result<Vec<RadiusServerRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM radiusserver ORDER BY identifier"
        ));
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(row).collect()
    }

    /// One RADIUS server.
    pub async fn radius_get(&self, identifier: &str) -> Result<Option<RadiusServerRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM radiusserver WHERE identifier = $1"
        ));
        let r = sqlx::query(sql)
            .bind(identifier)
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(row).transpose()
    }

    /// Deletes a RADIUS server; true when it existed.
    pub async fn radius_delete(&self, identifier: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM radiusserver WHERE identifier = $1")
            .bind(identifier)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }
}
