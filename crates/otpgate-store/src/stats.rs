//! The dashboard's SMS counts: per UTC day, gateway and outcome, added to by every node.

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
}

impl Store {
    /// Notes that `node` is alive at `now_ms`, forgets nodes not seen since `gone_before_ms`,
    /// and counts the nodes seen since `live_since_ms` (this one included).
    pub async fn node_heartbeat(
        &self,
        node: &str,
        now_ms: i64,
        live_since_ms: i64,
        gone_before_ms: i64,
    ) -> Result<i64> {
        sqlx::query(
            "INSERT INTO node_seen (node, seen_ms) VALUES ($1, $2) \
             ON CONFLICT (node) DO UPDATE SET seen_ms = excluded.seen_ms",
        )
        .bind(node)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM node_seen WHERE seen_ms < $1")
            .bind(gone_before_ms)
            .execute(&self.pool)
            .await?;
        let row = sqlx::query("SELECT COUNT(*) FROM node_seen WHERE seen_ms >= $1")
            .bind(live_since_ms)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }
}
