//! The outbox worker: delivers queued notifications through the central SMS gateways (with
//! their failover and breakers) and SMTP servers.
//!
//! Every item is claimed with one conditional UPDATE, so workers on all nodes share the
//! queue and each item goes out at most once. A failed attempt is retried with exponential
//! back-off until the item is older than the maximum age; a permanent failure (no such
//! gateway, an invalid address) and an item whose worker died while sending are
//! dead-lettered with the reason. The latter is never resent on its own — it may have gone
//! out — but an admin can requeue it.

use crate::audit::AuditEntry;
use crate::call::Scope;
use crate::gateways::SmsFailure;
use crate::settings::SystemConfig;
use crate::{MAX_PAGE, Page};
use crate::{Result, ServiceError, Services};
use otpgate_gateways::SendError;
use otpgate_store::OutboxRow;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// How long a claimed item is reserved for its worker: longer than any send can take (SMS
/// budget and SMTP timeout are at most 120 s).
pub const LEASE_MS: i64 = 300_000;

/// Items taken per round.
const BATCH: i64 = 200;

/// The longest wait between two attempts.
const MAX_BACKOFF_SECS: i64 = 3600;

/// The worker's wake-up call and counters on this node.
#[derive(Debug, Default)]
pub struct Outbox {
    wake: tokio::sync::Notify,
    counts: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl Outbox {
    /// Wakes the worker (new items are queued).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Resolves when [`Outbox::wake`] was called.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    fn count(&self, channel: &str, result: &'static str) {
        if let Ok(mut c) = self.counts.lock() {
            *c.entry((channel.to_owned(), result)).or_default() += 1;
        }
    }

    /// Attempts so far on this node by channel and result (`sent`, `retry`, `dead`).
    pub fn counts(&self) -> Vec<(String, &'static str, u64)> {
        self.counts
            .lock()
            .map(|c| c.iter().map(|((ch, r), n)| (ch.clone(), *r, *n)).collect())
            .unwrap_or_default()
    }
}

/// `GET /event/outbox`'s filter and page.
#[derive(Debug, Clone, Default)]
pub struct OutboxQuery {
    /// `pending`, `sending`, `sent` or `dead`.
    pub status: Option<String>,
    /// Page (from 1).
    pub page: Option<i64>,
    /// Items per page.
    pub page_size: Option<i64>,
}

/// A page of the outbox (bodies are the handlers'; the API shows only their length) and
/// how many items there are per status.
#[derive(Debug, Clone)]
pub struct OutboxPage {
    /// The items.
    pub items: Page<OutboxRow>,
    /// Items per status.
    pub totals: Vec<(String, i64)>,
}

impl crate::call::Outcome for OutboxPage {}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Delivered.
    pub sent: u64,
    /// Failed, to be retried.
    pub retried: u64,
    /// Dead-lettered.
    pub dead: u64,
}

enum Attempt {
    Sent(String),
    Permanent(String),
    Transient(String),
}

/// The wait before attempt `attempts + 1`: `base`, doubled per attempt, at most an hour.
pub fn backoff_secs(base: i64, attempts: i64) -> i64 {
    let exp = u32::try_from((attempts - 1).clamp(0, 20)).unwrap_or(20);
    base.saturating_mul(1_i64 << exp).min(MAX_BACKOFF_SECS)
}

fn status_filter(s: Option<&str>) -> Result<Option<&'static str>> {
    match s.map(str::trim) {
        None | Some("") => Ok(None),
        Some("pending") => Ok(Some("pending")),
        Some("sending") => Ok(Some("sending")),
        Some("sent") => Ok(Some("sent")),
        Some("dead") => Ok(Some("dead")),
        Some(_) => Err(ServiceError::Parameter(
            "status must be pending, sending, sent or dead.".into(),
        )),
    }
}

impl Services {
    /// The outbox worker's wake-up call and counters.
    pub fn outbox(&self) -> &Outbox {
        &self.inner.outbox
    }

    /// Dead-letters items whose worker died while sending them (their lease ran out); run by
    /// the housekeeping every minute (a lease is 5 minutes). Returns how many.
    pub async fn reap_interrupted_outbox(&self) -> Result<u64> {
        let n = self
            .store()
            .outbox_reap_interrupted(self.clock().now_ms())
            .await?;
        for _ in 0..n {
            self.outbox().count("any", "dead");
        }
        Ok(n)
    }

    /// One round of the worker: delivers every due item (up to a batch),
    /// `event.outbox_concurrency` at a time. Idle, it is one indexed read.
    pub async fn deliver_outbox(&self) -> Result<Round> {
        let now = self.clock().now_ms();
        let mut round = Round::default();
        let due = self.store().outbox_due(now, BATCH).await?;
        if due.is_empty() {
            return Ok(round);
        }
        let cfg = std::sync::Arc::new(self.system_config().await?);
        let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(
            usize::try_from(cfg.outbox_concurrency).unwrap_or(4),
        ));
        let mut tasks = tokio::task::JoinSet::new();
        for row in due {
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| ServiceError::Internal("outbox pool closed".into()))?;
            let (me, cfg) = (self.clone(), cfg.clone());
            tasks.spawn(async move {
                let r = me.deliver_item(&cfg, row).await;
                drop(permit);
                r
            });
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(Some(Attempt::Sent(_)))) => round.sent += 1,
                Ok(Ok(Some(Attempt::Transient(_)))) => round.retried += 1,
                Ok(Ok(Some(Attempt::Permanent(_)))) => round.dead += 1,
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "outbox item could not be processed"),
                Err(e) => tracing::error!(error = %e, "outbox task failed"),
            }
        }
        Ok(round)
    }

    /// Claims, sends and settles one item; None when another worker had it.
    async fn deliver_item(&self, cfg: &SystemConfig, row: OutboxRow) -> Result<Option<Attempt>> {
        let now = self.clock().now_ms();
        if !self
            .store()
            .outbox_claim(row.id, now, now + LEASE_MS)
            .await?
        {
            return Ok(None);
        }
        let channel = row.item.channel.clone();
        let age_limit = row.created_at + cfg.outbox_max_age_secs * 1000;
        let attempt = if now >= age_limit {
            Attempt::Permanent(format!(
                "not delivered within {} s; last error: {}",
                cfg.outbox_max_age_secs, row.last_error
            ))
        } else {
            self.send_item(cfg, &row).await
        };
        let now = self.clock().now_ms();
        let attempts = row.attempts + 1;
        let (settled, success, info) = match &attempt {
            Attempt::Sent(by) => (
                self.store().outbox_sent(row.id, by, now).await?,
                true,
                format!("delivered by {by} to {}", row.item.recipient),
            ),
            Attempt::Permanent(why) => (
                self.store().outbox_dead(row.id, why, now).await?,
                false,
                format!("dead-lettered: {why}"),
            ),
            Attempt::Transient(why) => {
                let next = now + backoff_secs(cfg.outbox_retry_secs, attempts) * 1000;
                if next >= age_limit {
                    let why = format!(
                        "not delivered within {} s; last error: {why}",
                        cfg.outbox_max_age_secs
                    );
                    let dead = self.store().outbox_dead(row.id, &why, now).await?;
                    self.settle_audit(&row, false, format!("dead-lettered: {why}"))
                        .await;
                    self.outbox().count(&channel, "dead");
                    return Ok(dead.then_some(Attempt::Permanent(why)));
                }
                self.outbox().count(&channel, "retry");
                tracing::info!(item = row.id, attempts, error = %why, "notification will be retried");
                return Ok(self
                    .store()
                    .outbox_retry(row.id, why, next, now)
                    .await?
                    .then_some(attempt));
            }
        };
        if settled {
            self.outbox()
                .count(&channel, if success { "sent" } else { "dead" });
            self.settle_audit(&row, success, info).await;
        }
        Ok(settled.then_some(attempt))
    }

    async fn send_item(&self, cfg: &SystemConfig, row: &OutboxRow) -> Attempt {
        let i = &row.item;
        match i.channel.as_str() {
            "sms" => {
                // The toll-fraud guard and blocked prefixes hold for notifications too.
                let number = match crate::limits::send_number(cfg, "", &i.recipient) {
                    Ok(n) => n,
                    Err(r) => {
                        return Attempt::Permanent(format!(
                            "{} ({})",
                            crate::limits::NUMBER_REFUSED,
                            r.reason
                        ));
                    }
                };
                match self.check_prefix(cfg, &number).await {
                    Ok(Some(r)) => {
                        return Attempt::Permanent(format!(
                            "{} ({})",
                            crate::limits::NUMBER_REFUSED,
                            r.reason
                        ));
                    }
                    Ok(None) => {}
                    Err(e) => return Attempt::Transient(e.to_string()),
                }
                self.send_item_sms(cfg, &i.config, &number, &i.body, row.id)
                    .await
            }
            "mail" => match self.smtp_server_def(&i.config).await {
                Ok(Some(def)) => {
                    match otpgate_gateways::send_mail(&def, &i.recipient, &i.subject, &i.body).await
                    {
                        Ok(()) => Attempt::Sent(i.config.clone()),
                        Err(SendError::Config(m)) => Attempt::Permanent(m),
                        Err(e) => Attempt::Transient(e.to_string()),
                    }
                }
                Ok(None) => {
                    Attempt::Permanent(format!("The SMTP server {} does not exist.", i.config))
                }
                Err(e @ ServiceError::Unavailable) => Attempt::Transient(e.to_string()),
                Err(e) => Attempt::Permanent(e.to_string()),
            },
            other => Attempt::Permanent(format!("unknown channel {other}")),
        }
    }

    async fn send_item_sms(
        &self,
        cfg: &SystemConfig,
        gateway: &str,
        number: &str,
        body: &str,
        item: i64,
    ) -> Attempt {
        // Every attempt at one item has the same id: a gateway that de-duplicates sends one
        // SMS even when an attempt timed out after the gateway had taken it.
        let id = format!("otpgate-outbox-{item}");
        match self
            .send_sms(
                cfg,
                gateway,
                number,
                body,
                None,
                &crate::gateways::SendAbout {
                    message_id: Some(id),
                    ..Default::default()
                },
            )
            .await
        {
            Ok(d) => Attempt::Sent(d.gateway),
            Err(SmsFailure::Send(SendError::Config(m))) => Attempt::Permanent(m),
            Err(e) => Attempt::Transient(e.to_string()),
        }
    }

    async fn settle_audit(&self, row: &OutboxRow, success: bool, info: String) {
        self.write_audit(&AuditEntry {
            ts: self.clock().now_ms(),
            action: format!("OUTBOX {}", row.item.channel),
            success,
            action_detail: format!(
                "item {}, handler {}, event {}, attempt {}",
                row.id,
                row.item.handler_name,
                row.item.event,
                row.attempts + 1
            ),
            info,
            ..Default::default()
        })
        .await;
    }

    /// How many notifications there are per status, cluster-wide (`/metrics`).
    pub async fn outbox_totals(&self) -> Result<Vec<(String, i64)>> {
        Ok(self.store().outbox_counts().await?)
    }

    /// Deletes sent and dead items older than `event.outbox_keep_days`.
    pub async fn purge_outbox(&self) -> Result<u64> {
        let keep = self.system_config().await?.outbox_keep_days;
        let before = self.clock().now_ms() - keep * 86_400_000;
        Ok(self.store().outbox_purge(before).await?)
    }

    /// `GET /event/outbox`: items newest first, filtered by `status`, with the totals per
    /// status.
    pub async fn list_outbox(&self, q: &OutboxQuery) -> Result<OutboxPage> {
        let status = status_filter(q.status.as_deref())?;
        let page = q.page.unwrap_or(1).clamp(1, MAX_PAGE);
        let page_size = q.page_size.unwrap_or(15).clamp(1, 1000);
        let (items, count) = self.store().outbox_list(status, page, page_size).await?;
        Ok(OutboxPage {
            items: Page {
                items,
                count,
                page,
                page_size,
            },
            totals: self.store().outbox_counts().await?,
        })
    }

    /// `POST /event/outbox/<id>/retry`: a dead item is queued again, due now.
    pub async fn requeue_outbox(&self, id: i64, cx: &mut Scope) -> Result<i64> {
        cx.audit.action_detail = format!("outbox item {id}");
        if self
            .store()
            .outbox_requeue(id, self.clock().now_ms())
            .await?
        {
            self.outbox().wake();
            Ok(id)
        } else {
            Err(ServiceError::NotFound(
                "The requested dead outbox item could not be found.".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff_secs(30, 1), 30);
        assert_eq!(backoff_secs(30, 2), 60);
        assert_eq!(backoff_secs(30, 3), 120);
        assert_eq!(backoff_secs(30, 60), MAX_BACKOFF_SECS);
        assert_eq!(backoff_secs(1, 0), 1);
    }

    #[test]
    fn status_filter_is_checked() {
        assert_eq!(status_filter(None).unwrap(), None);
        assert_eq!(status_filter(Some("dead")).unwrap(), Some("dead"));
        assert!(status_filter(Some("x")).is_err());
    }
}
