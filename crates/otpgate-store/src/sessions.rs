//! Signed-out web sessions: kept until they would have expired anyway, so a sign-out holds
//! on every node.

use crate::{Result, Store};

impl Store {
    /// Records a signed-out session until `expires_at` (ms).
    pub async fn web_logout_insert(&self, sid: &str, expires_at: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO web_logout (sid, expires_at) VALUES ($1, $2) ON CONFLICT (sid) DO NOTHING",
        )
        .bind(sid)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// True when the session was signed out.
    pub async fn web_logged_out(&self, sid: &str) -> Result<bool> {
        Ok(sqlx::query("SELECT 1 FROM web_logout WHERE sid = $1")
            .bind(sid)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    /// Forgets signed-out sessions that have expired anyway (housekeeping).
    pub async fn web_logout_purge(&self, now_ms: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM web_logout WHERE expires_at <= $1")
            .bind(now_ms)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
