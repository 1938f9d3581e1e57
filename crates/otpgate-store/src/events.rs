//! Event handlers (privacyIDEA's `/event`) and the outbox of notifications.
//!
//! The outbox is a queue in a table: every state change of an item is one conditional
//! statement, so any number of workers on any number of nodes can share it and each item
//! is claimed by exactly one of them.

use crate::{Result, Store, flag};
use sqlx::Row;
use sqlx::any::AnyRow;

/// An event handler definition as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventHandlerRow {
    /// Row id (0 for a new one).
    pub id: i64,
    /// Name.
    pub name: String,
    /// Comma-separated event names.
    pub events: String,
    /// Handler module (`UserNotification`).
    pub handlermodule: String,
    /// Action (`sendsms`, `sendmail`).
    pub action: String,
    /// `post` or `pre`.
    pub position: String,
    /// Lower runs first.
    pub ordering: i64,
    /// Active.
    pub active: bool,
    /// Options as a JSON object of strings.
    pub options: String,
    /// Conditions as a JSON object of strings.
    pub conditions: String,
}

const HANDLER_COLS: &str =
    "id, name, events, handlermodule, action, position, ordering, active, options, conditions";

fn handler_row(r: &AnyRow) -> Result<EventHandlerRow> {
    Ok(EventHandlerRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        events: r.try_get(2)?,
        handlermodule: r.try_get(3)?,
        action: r.try_get(4)?,
        position: r.try_get(5)?,
        ordering: r.try_get(6)?,
        active: flag(r.try_get(7)?),
        options: r.try_get(8)?,
        conditions: r.try_get(9)?,
    })
}

/// A notification to queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewOutboxItem {
    /// Unique per notification: a second insert with the same key is ignored.
    pub dedupe_key: String,
    /// The handler that produced it.
    pub handler_id: i64,
    /// Its name at the time.
    pub handler_name: String,
    /// The event.
    pub event: String,
    /// `sms` or `mail`.
    pub channel: String,
    /// Gateway or SMTP server identifier.
    pub config: String,
    /// Phone number or mail address.
    pub recipient: String,
    /// Mail subject (empty for SMS).
    pub subject: String,
    /// The rendered text.
    pub body: String,
}

/// An outbox item as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxRow {
    /// Row id.
    pub id: i64,
    /// The item's content.
    pub item: NewOutboxItem,
    /// `pending`, `sending`, `sent` or `dead`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// When it was queued (ms).
    pub created_at: i64,
    /// When it is due next (ms).
    pub next_at: i64,
    /// When the last change happened (ms).
    pub updated_at: i64,
    /// Why the last attempt failed, or why it is dead.
    pub last_error: String,
    /// The gateway or server that delivered it.
    pub delivered_by: String,
}

const OUTBOX_COLS: &str = "id, dedupe_key, handler_id, handler_name, event, channel, config, recipient, subject, body, \
     status, attempts, created_at, next_at, updated_at, last_error, delivered_by";

fn outbox_row(r: &AnyRow) -> Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.try_get(0)?,
        item: NewOutboxItem {
            dedupe_key: r.try_get(1)?,
            handler_id: r.try_get(2)?,
            handler_name: r.try_get(3)?,
            event: r.try_get(4)?,
            channel: r.try_get(5)?,
            config: r.try_get(6)?,
            recipient: r.try_get(7)?,
            subject: r.try_get(8)?,
            body: r.try_get(9)?,
        },
        status: r.try_get(10)?,
        attempts: r.try_get(11)?,
        created_at: r.try_get(12)?,
        next_at: r.try_get(13)?,
        updated_at: r.try_get(14)?,
        last_error: r.try_get(15)?,
        delivered_by: r.try_get(16)?,
    })
}

/// The reason an item interrupted while sending is dead-lettered.
pub const INTERRUPTED: &str =
    "interrupted while sending (a node stopped); not resent, because it may have gone out already";

/// [`Store::event_save`] on a connection (or in a transaction).
pub(crate) async fn event_save_in(
    c: &mut sqlx::AnyConnection,
    h: &EventHandlerRow,
) -> Result<Option<i64>> {
    let sql = if h.id == 0 {
        "INSERT INTO eventhandler (name, events, handlermodule, action, position, ordering, active, options, conditions) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id"
    } else {
        "UPDATE eventhandler SET name = $1, events = $2, handlermodule = $3, action = $4, position = $5, \
         ordering = $6, active = $7, options = $8, conditions = $9 WHERE id = $10 RETURNING id"
    };
    let q = sqlx::query(sql)
        .bind(&h.name)
        .bind(&h.events)
        .bind(&h.handlermodule)
        .bind(&h.action)
        .bind(&h.position)
        .bind(h.ordering)
        .bind(i64::from(h.active))
        .bind(&h.options)
        .bind(&h.conditions);
    let q = if h.id == 0 { q } else { q.bind(h.id) };
    let r = q.fetch_optional(&mut *c).await?;
    Ok(r.map(|r| r.try_get::<i64, _>(0)).transpose()?)
}

impl Store {
    /// Creates (id 0) or replaces an event handler; returns its id, None if `id` is unknown.
    pub async fn event_save(&self, h: &EventHandlerRow) -> Result<Option<i64>> {
        event_save_in(&mut *self.pool.acquire().await?, h).await
    }

    /// All event handlers, in the order they run.
    pub async fn event_list(&self) -> Result<Vec<EventHandlerRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {HANDLER_COLS} FROM eventhandler ORDER BY ordering, id"
        ));
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(handler_row).collect()
    }

    /// Deletes a handler; true when it existed.
    pub async fn event_delete(&self, id: i64) -> Result<bool> {
        let r = sqlx::query("DELETE FROM eventhandler WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Enables or disables a handler; true when it exists.
    pub async fn event_set_active(&self, id: i64, active: bool) -> Result<bool> {
        let r = sqlx::query("UPDATE eventhandler SET active = $2 WHERE id = $1")
            .bind(id)
            .bind(i64::from(active))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Queues notifications, all or none (one transaction), each due at `now_ms`. An item
    /// whose `dedupe_key` is already queued is skipped. Returns how many were new.
    pub async fn outbox_insert(&self, items: &[NewOutboxItem], now_ms: i64) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let mut n = 0;
        for i in items {
            n += sqlx::query(
                "INSERT INTO outbox (dedupe_key, handler_id, handler_name, event, channel, config, recipient, subject, body, \
                 status, attempts, created_at, next_at, lease_until, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, $10, $10, 0, $10) \
                 ON CONFLICT (dedupe_key) DO NOTHING",
            )
            .bind(&i.dedupe_key)
            .bind(i.handler_id)
            .bind(&i.handler_name)
            .bind(&i.event)
            .bind(&i.channel)
            .bind(&i.config)
            .bind(&i.recipient)
            .bind(&i.subject)
            .bind(&i.body)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Up to `limit` items that are due, oldest first (not yet claimed: see
    /// [`Store::outbox_claim`]).
    pub async fn outbox_due(&self, now_ms: i64, limit: i64) -> Result<Vec<OutboxRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLS} FROM outbox WHERE status = 'pending' AND next_at <= $1 ORDER BY next_at, id LIMIT $2"
        ));
        let rows = sqlx::query(sql)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(outbox_row).collect()
    }

    /// Claims a due item for one attempt until `lease_until`; false when another worker
    /// (on this or another node) was first.
    pub async fn outbox_claim(&self, id: i64, now_ms: i64, lease_until: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE outbox SET status = 'sending', attempts = attempts + 1, lease_until = $3, updated_at = $2 \
             WHERE id = $1 AND status = 'pending' AND next_at <= $2",
        )
        .bind(id)
        .bind(now_ms)
        .bind(lease_until)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Marks a claimed item delivered.
    pub async fn outbox_sent(&self, id: i64, delivered_by: &str, now_ms: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE outbox SET status = 'sent', delivered_by = $2, last_error = '', updated_at = $3 \
             WHERE id = $1 AND status = 'sending'",
        )
        .bind(id)
        .bind(delivered_by)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Puts a claimed item back for another attempt at `next_at`.
    pub async fn outbox_retry(
        &self,
        id: i64,
        error: &str,
        next_at: i64,
        now_ms: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE outbox SET status = 'pending', last_error = $2, next_at = $3, updated_at = $4 \
             WHERE id = $1 AND status = 'sending'",
        )
        .bind(id)
        .bind(error)
        .bind(next_at)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Dead-letters a claimed item with the reason.
    pub async fn outbox_dead(&self, id: i64, reason: &str, now_ms: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE outbox SET status = 'dead', last_error = $2, updated_at = $3 WHERE id = $1 AND status = 'sending'",
        )
        .bind(id)
        .bind(reason)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Dead-letters items whose worker stopped while sending (their lease ran out):
    /// they may have gone out, so they are never sent again on their own. Returns how many.
    pub async fn outbox_reap_interrupted(&self, now_ms: i64) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE outbox SET status = 'dead', last_error = $2, updated_at = $1 \
             WHERE status = 'sending' AND lease_until <= $1",
        )
        .bind(now_ms)
        .bind(INTERRUPTED)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Puts a dead item back in the queue, due now, with a fresh attempt count. True when
    /// the item was dead.
    pub async fn outbox_requeue(&self, id: i64, now_ms: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_at = $2, created_at = $2, updated_at = $2 \
             WHERE id = $1 AND status = 'dead'",
        )
        .bind(id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// One page of items (newest first), optionally of one status, and the total count.
    pub async fn outbox_list(
        &self,
        status: Option<&str>,
        page: i64,
        size: i64,
    ) -> Result<(Vec<OutboxRow>, i64)> {
        let filter = if status.is_some() {
            "WHERE status = $1"
        } else {
            "WHERE $1 = $1"
        };
        let status = status.unwrap_or_default();
        let count: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM outbox {filter}"
        )))
        .bind(status)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLS} FROM outbox {filter} ORDER BY id DESC LIMIT $2 OFFSET $3"
        ));
        let rows = sqlx::query(sql)
            .bind(status)
            .bind(size)
            .bind((page - 1).saturating_mul(size))
            .fetch_all(&self.pool)
            .await?;
        Ok((rows.iter().map(outbox_row).collect::<Result<_>>()?, count))
    }

    /// How many items are in each status.
    pub async fn outbox_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) FROM outbox GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Deletes sent and dead items last changed before `before_ms`; returns how many.
    pub async fn outbox_purge(&self, before_ms: i64) -> Result<u64> {
        let r =
            sqlx::query("DELETE FROM outbox WHERE status IN ('sent', 'dead') AND updated_at < $1")
                .bind(before_ms)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected())
    }

    /// The contact data (email, mobile) of an internal admin.
    pub async fn admin_contact(&self, name: &str) -> Result<Option<(String, String)>> {
        let r = sqlx::query("SELECT email, mobile FROM admin WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        r.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    /// Sets the contact data of an internal admin; false when there is no such admin.
    pub async fn admin_set_contact(&self, name: &str, email: &str, mobile: &str) -> Result<bool> {
        let r = sqlx::query("UPDATE admin SET email = $2, mobile = $3 WHERE name = $1")
            .bind(name)
            .bind(email)
            .bind(mobile)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }
}
