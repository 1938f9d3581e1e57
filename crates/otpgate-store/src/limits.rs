//! Send limits: counters per key (user, phone number, prefix, client, global) and fixed
//! window, shared by every node.

use crate::db::Arg;
use crate::{Result, Store};
use sqlx::Row;

/// A blocked destination prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedPrefix {
    /// `+` and leading digits; every number starting with it is refused.
    pub prefix: String,
    /// When (ms).
    pub blocked_at: i64,
    /// `admin` or `auto`.
    pub source: String,
    /// Why.
    pub reason: String,
}

/// One counter a send must pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowKey {
    /// What is counted, e.g. `phone:+4915112345678`.
    pub key: String,
    /// The start of the current window (ms).
    pub window_start: i64,
    /// The most sends allowed in the window.
    pub limit: i64,
}

/// Counts one send against every key inside `tx` with one conditional upsert over all keys
/// (a counter below its limit is incremented): None when every key was counted, else the
/// index of the first key at its limit — the caller must then roll `tx` back.
pub(crate) async fn take_in(tx: &mut crate::db::Tx, keys: &[WindowKey]) -> Result<Option<usize>> {
    if keys.is_empty() {
        return Ok(None);
    }
    let values = (0..keys.len())
        .map(|i| format!("(${}, ${}, 1, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
        .collect::<Vec<_>>()
        .join(", ");
    // Only placeholders are formatted into the statement.
    let sql = format!(
        "INSERT INTO send_window (key, window_start, count, max_count) VALUES {values} \
         ON CONFLICT (key, window_start) DO UPDATE SET count = send_window.count + 1, max_count = excluded.max_count \
         WHERE send_window.count < excluded.max_count RETURNING key"
    );
    let args: Vec<Arg<'_>> = keys
        .iter()
        .flat_map(|k| [(&k.key).into(), k.window_start.into(), k.limit.into()])
        .collect();
    let counted = tx.rows(&sql, &args, |r| r.text(0)).await?;
    Ok(keys.iter().position(|k| !counted.contains(&k.key)))
}

impl Store {
    /// Counts one send against every key, all or nothing: None when every counter was below
    /// its limit (all incremented), or the index of the first key at its limit (nothing
    /// incremented).
    pub async fn send_window_take(&self, keys: &[WindowKey]) -> Result<Option<usize>> {
        let mut tx = self.begin().await?;
        let refused = take_in(&mut tx, keys).await?;
        if refused.is_none() {
            tx.commit().await?;
        }
        Ok(refused)
    }

    /// Gives sends back (the SMS could not be sent, so it does not count).
    pub async fn send_window_give_back(&self, keys: &[WindowKey]) -> Result<()> {
        let mut tx = self.begin().await?;
        for k in keys {
            tx.exec(
                "UPDATE send_window SET count = count - 1 WHERE key = $1 AND window_start = $2 AND count > 0",
                &[(&k.key).into(), k.window_start.into()],
            )
            .await?;
        }
        tx.commit().await
    }

    /// The count of a key in a window (0 when none).
    pub async fn send_window_count(&self, key: &str, window_start: i64) -> Result<i64> {
        let r = sqlx::query("SELECT count FROM send_window WHERE key = $1 AND window_start = $2")
            .bind(key)
            .bind(window_start)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.map(|r| r.try_get::<i64, _>(0)).transpose()?.unwrap_or(0))
    }

    /// Deletes windows that started before `before_ms` (housekeeping).
    pub async fn send_window_purge(&self, before_ms: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM send_window WHERE window_start < $1")
                .bind(before_ms)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// Blocks a prefix (or replaces its block); true when it was not blocked before.
    pub async fn prefix_block(&self, b: &BlockedPrefix) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO blocked_prefix (prefix, blocked_at, source, reason) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (prefix) DO NOTHING",
        )
        .bind(&b.prefix)
        .bind(b.blocked_at)
        .bind(&b.source)
        .bind(&b.reason)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Lifts a block and forgets the prefix's counters whose key starts with one of
    /// `counter_keys`; true when it was blocked.
    pub async fn prefix_unblock(&self, prefix: &str, counter_keys: &[String]) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query("DELETE FROM blocked_prefix WHERE prefix = $1")
            .bind(prefix)
            .execute(&mut *tx)
            .await?;
        for k in counter_keys {
            sqlx::query("DELETE FROM send_window WHERE key = $1")
                .bind(k)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Every blocked prefix, oldest first.
    pub async fn prefix_blocks(&self) -> Result<Vec<BlockedPrefix>> {
        let rows = sqlx::query(
            "SELECT prefix, blocked_at, source, reason FROM blocked_prefix ORDER BY blocked_at, prefix",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(BlockedPrefix {
                    prefix: r.try_get(0)?,
                    blocked_at: r.try_get(1)?,
                    source: r.try_get(2)?,
                    reason: r.try_get(3)?,
                })
            })
            .collect()
    }
}
