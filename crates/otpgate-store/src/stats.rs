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
