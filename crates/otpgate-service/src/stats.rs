//! The dashboard's SMS counts, shared by all nodes: each node adds what it counted since its
//! last flush (SMS attempts by gateway and outcome, refusals by limit) to `sms_stat`.

use crate::{Result, Services};
use otpgate_store::SmsStat;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// What this node has already added to `sms_stat`, per (gateway, outcome); one flush at a
/// time (the ticker and a dashboard view must not add the same counts twice).
#[derive(Debug, Default)]
pub struct StatFlush {
    flushed: Mutex<BTreeMap<(String, String), u64>>,
    running: tokio::sync::Mutex<()>,
}

impl Services {
    /// Adds what this node counted since its last flush (SMS attempts by gateway and outcome,
    /// refusals by limit) to the shared `sms_stat` of today (UTC), so every node's dashboard
    /// shows the cluster's counts. Nothing is lost when a flush fails: the next one adds it.
    pub async fn flush_sms_stats(&self) -> Result<usize> {
        let _one_at_a_time = self.stat_flush().running.lock().await;
        let mut current: Vec<((String, String), u64)> = self
            .breakers()
            .attempts()
            .into_iter()
            .map(|(g, o, n)| ((g, o.as_str().to_owned()), n))
            .collect();
        current.extend(
            self.limit_stats()
                .counts()
                .into_iter()
                .map(|(name, n)| ((String::new(), format!("limit:{name}")), n)),
        );
        let day = self.clock().now().format("%Y-%m-%d").to_string();
        let flushed = self
            .stat_flush()
            .flushed
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default();
        let delta: Vec<SmsStat> = current
            .iter()
            .filter_map(|(k, n)| {
                let d = n.saturating_sub(flushed.get(k).copied().unwrap_or(0));
                (d > 0).then(|| SmsStat {
                    day: day.clone(),
                    gateway: k.0.clone(),
                    outcome: k.1.clone(),
                    count: i64::try_from(d).unwrap_or(i64::MAX),
                })
            })
            .collect();
        if delta.is_empty() {
            return Ok(0);
        }
        self.store().sms_stat_add(&delta).await?;
        if let Ok(mut m) = self.stat_flush().flushed.lock() {
            for (k, n) in current {
                m.insert(k, n);
            }
        }
        Ok(delta.len())
    }

    /// The cluster's SMS counts of today (UTC), after adding this node's latest.
    pub async fn sms_stats_today(&self) -> Result<Vec<SmsStat>> {
        if let Err(e) = self.flush_sms_stats().await {
            tracing::warn!(error = %e, "SMS counts could not be flushed");
        }
        let day = self.clock().now().format("%Y-%m-%d").to_string();
        Ok(self.store().sms_stat_day(&day).await?)
    }
}

/// How often a node says it is alive (`Services::heartbeat`).
pub const HEARTBEAT_EVERY_MS: i64 = 5_000;

impl Services {
    /// Says this node is alive and counts the live nodes of the cluster (seen within three
    /// heartbeats; at least this one): the per-address rate limits are shared among them.
    pub async fn heartbeat(&self) -> Result<u32> {
        let now = self.clock().now_ms();
        let n = self
            .store()
            .node_heartbeat(
                &self.inner.node_id,
                now,
                now - 3 * HEARTBEAT_EVERY_MS,
                now - 60 * HEARTBEAT_EVERY_MS,
            )
            .await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX).max(1))
    }
}
