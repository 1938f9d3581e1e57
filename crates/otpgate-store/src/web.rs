//! What the web interface keeps: signed-out sessions, the dashboard's SMS counts, and the
//! last step of a self-service enrollment.

use crate::{Result, Store};
use sqlx::Row;

/// One count of the dashboard: UTC day (`2026-11-29`), gateway (empty for refusals before
/// any gateway), outcome, number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsStat {
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Gateway name, or empty.
    pub gateway: String,
    /// `delivered`, `failed`, `skipped_breaker_open`, `failover` or `limit:<name>`.
    pub outcome: String,
    /// How many.
    pub count: i64,
}

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

    /// Adds counts in one statement (each node adds what it counted since its last flush).
    pub async fn sms_stat_add(&self, stats: &[SmsStat]) -> Result<()> {
        for chunk in stats.chunks(200) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = i * 4;
                    format!("(${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4)
                })
                .collect();
            let sql = format!(
                "INSERT INTO sms_stat (day, gateway, outcome, count) VALUES {} \
                 ON CONFLICT (day, gateway, outcome) DO UPDATE SET count = sms_stat.count + excluded.count",
                values.join(", ")
            );
            let sql = sqlx::AssertSqlSafe(sql);
            let mut q = sqlx::query(sql);
            for s in chunk {
                q = q
                    .bind(s.day.clone())
                    .bind(s.gateway.clone())
                    .bind(s.outcome.clone())
                    .bind(s.count);
            }
            q.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// The counts of one UTC day.
    pub async fn sms_stat_day(&self, day: &str) -> Result<Vec<SmsStat>> {
        let rows = sqlx::query(
            "SELECT day, gateway, outcome, count FROM sms_stat WHERE day = $1 ORDER BY gateway, outcome",
        )
        .bind(day)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SmsStat {
                    day: r.try_get(0)?,
                    gateway: r.try_get(1)?,
                    outcome: r.try_get(2)?,
                    count: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// Finishes a verified enrollment in one transaction: the token goes from `verify` to
    /// `enrolled` (only if it is still in `verify`: exactly once), and when it replaces an
    /// older token of the same owner, it takes that token's PIN and the old token is deleted.
    /// False (nothing changed) when the token was not (or no longer) waiting for verification,
    /// or the token it replaces is gone or no longer usable (disabled, revoked, locked).
    pub async fn token_finish_verify(&self, id: i64, replaces: Option<i64>) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE token SET rollout_state = 'enrolled' WHERE id = $1 AND rollout_state = 'verify'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(old) = replaces {
            sqlx::query(
                "UPDATE token SET pin_hash = (SELECT pin_hash FROM token WHERE id = $2) \
                 WHERE id = $1 AND EXISTS (SELECT 1 FROM token WHERE id = $2)",
            )
            .bind(id)
            .bind(old)
            .execute(&mut *tx)
            .await?;
            // Only a usable token is replaced (an admin may have disabled it meanwhile).
            let gone = sqlx::query(
                "DELETE FROM token WHERE id = $1 AND active = 1 AND revoked = 0 AND failcount < maxfail",
            )
                .bind(old)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if gone != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
        }
        tx.commit().await?;
        Ok(true)
    }
}
