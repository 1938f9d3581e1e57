//! One record per SMS (`sms_message`) and its delivery receipts. Every state change is one
//! conditional statement: a receipt that arrives before the gateway's answer is kept (the
//! answer does not overwrite it), and a final state (delivered, failed) is not changed by a
//! later intermediate receipt.

use crate::{Result, Store};
use sqlx::Row;
use sqlx::any::AnyRow;

/// An SMS about to be handed to a gateway.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    /// The receipt reference (unguessable).
    pub reference: String,
    /// The message id (the same for every attempt of one message).
    pub message_id: String,
    /// The login's transaction, if the SMS carries a challenge.
    pub transaction_id: String,
    /// The token.
    pub serial: String,
    /// The user and realm.
    pub user: String,
    /// The realm.
    pub realm: String,
    /// The gateway.
    pub gateway: String,
    /// The destination's region (ISO 3166 code) and number prefix.
    pub country: String,
    /// The number's first digits (E.164, with `+`).
    pub prefix: String,
    /// SMS parts the text needs.
    pub parts: i64,
}

/// A stored SMS record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmsMessageRow {
    /// Row id.
    pub id: i64,
    /// The receipt reference.
    pub reference: String,
    /// The message id.
    pub message_id: String,
    /// Transaction id.
    pub transaction_id: String,
    /// Token serial.
    pub serial: String,
    /// User.
    pub user: String,
    /// Realm.
    pub realm: String,
    /// Gateway.
    pub gateway: String,
    /// Destination region.
    pub country: String,
    /// Destination prefix.
    pub prefix: String,
    /// Parts.
    pub parts: i64,
    /// `sending`, `accepted`, `not_sent`, `delivered`, `failed`.
    pub state: String,
    /// The last receipt's status value, or why the gateway refused it.
    pub status: String,
    /// Handed to the gateway (ms).
    pub sent_at: i64,
    /// Accepted by the gateway (ms; 0: not).
    pub accepted_at: i64,
    /// The final receipt (ms; 0: none yet).
    pub done_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
    /// When its login was answered (ms; 0: not).
    pub verified_at: i64,
}

/// One SMS as delivery statistics see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFact {
    /// The gateway.
    pub gateway: String,
    /// The destination country.
    pub country: String,
    /// The state.
    pub state: String,
    /// Time from sending to the final receipt (ms; 0: none).
    pub delivery_ms: i64,
    /// Its login was answered.
    pub answered: bool,
    /// It carried a login's code (it has a transaction; a test SMS has none).
    pub login: bool,
}

/// What a receipt says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// Delivered to the phone.
    Delivered,
    /// Not delivered (final).
    Failed,
    /// On its way (e.g. accepted by the SMSC).
    Intermediate,
}

/// Filters of the message list (all optional, combined with AND).
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    /// Transaction id.
    pub transaction_id: Option<String>,
    /// Token serial.
    pub serial: Option<String>,
    /// User.
    pub user: Option<String>,
    /// Gateway.
    pub gateway: Option<String>,
    /// State.
    pub state: Option<String>,
    /// Sent at or after (ms).
    pub since_ms: Option<i64>,
    /// Sent before (ms).
    pub until_ms: Option<i64>,
}

const COLS: &str = "id, reference, message_id, transaction_id, serial, user_name, realm, gateway, \
                    country, prefix, parts, state, status, sent_at, accepted_at, done_at, updated_at, \
                    verified_at";

fn row(r: &AnyRow) -> Result<SmsMessageRow> {
    Ok(SmsMessageRow {
        id: r.try_get(0)?,
        reference: r.try_get(1)?,
        message_id: r.try_get(2)?,
        transaction_id: r.try_get(3)?,
        serial: r.try_get(4)?,
        user: r.try_get(5)?,
        realm: r.try_get(6)?,
        gateway: r.try_get(7)?,
        country: r.try_get(8)?,
        prefix: r.try_get(9)?,
        parts: r.try_get(10)?,
        state: r.try_get(11)?,
        status: r.try_get(12)?,
        sent_at: r.try_get(13)?,
        accepted_at: r.try_get(14)?,
        done_at: r.try_get(15)?,
        updated_at: r.try_get(16)?,
        verified_at: r.try_get(17)?,
    })
}

impl Store {
    /// Records an SMS about to be handed to its gateway (state `sending`).
    pub async fn message_insert(&self, m: &NewMessage, now_ms: i64) -> Result<()> {
        let args = [
            (&m.reference).into(),
            (&m.message_id).into(),
            (&m.transaction_id).into(),
            (&m.serial).into(),
            (&m.user).into(),
            (&m.realm).into(),
            (&m.gateway).into(),
            (&m.country).into(),
            (&m.prefix).into(),
            m.parts.into(),
            now_ms.into(),
        ];
        self.exec(
            "INSERT INTO sms_message (reference, message_id, transaction_id, serial, user_name, realm, \
             gateway, country, prefix, parts, state, sent_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'sending', $11, $11)",
            &args,
        )
        .await?;
        Ok(())
    }

    /// The gateway's answer: accepted (`refused` None; with the gateway's own id of the SMS
    /// when it has one) or not (its reason). A receipt that came first keeps its state.
    pub async fn message_answered(
        &self,
        reference: &str,
        refused: Option<&str>,
        external_id: &str,
        now_ms: i64,
    ) -> Result<()> {
        let sql = match refused {
            None => {
                "UPDATE sms_message SET updated_at = $2, external_id = $3, \
                 accepted_at = CASE WHEN accepted_at = 0 THEN $2 ELSE accepted_at END, \
                 state = CASE WHEN state = 'sending' THEN 'accepted' ELSE state END \
                 WHERE reference = $1"
            }
            Some(_) => {
                "UPDATE sms_message SET state = 'not_sent', status = $3, updated_at = $2 \
                 WHERE reference = $1 AND state = 'sending'"
            }
        };
        let third = refused.unwrap_or(external_id);
        self.exec(sql, &[reference.into(), now_ms.into(), third.into()])
            .await?;
        Ok(())
    }

    /// The record a receipt names; None for an unknown reference.
    pub async fn message_get(&self, reference: &str) -> Result<Option<SmsMessageRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM sms_message WHERE reference = $1"
        ));
        sqlx::query(sql)
            .bind(reference)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(row)
            .transpose()
    }

    /// The records of gateway `gateway` sent since `since_ms` whose own id is `external_id`,
    /// newest first (a few: gateways reuse ids); none when there is none (yet).
    pub async fn message_by_external(
        &self,
        gateway: &str,
        external_id: &str,
        since_ms: i64,
    ) -> Result<Vec<SmsMessageRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM sms_message WHERE gateway = $1 AND external_id = $2 \
             AND external_id <> '' AND sent_at >= $3 ORDER BY id DESC LIMIT 8"
        ));
        sqlx::query(sql)
            .bind(gateway)
            .bind(external_id)
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(row)
            .collect()
    }

    /// Applies a receipt with status value `status`; true when it changed the state (a final
    /// state stays: receipts come more than once and out of order).
    pub async fn message_receipt(
        &self,
        reference: &str,
        receipt: Receipt,
        status: &str,
        now_ms: i64,
    ) -> Result<bool> {
        let q = match receipt {
            Receipt::Delivered | Receipt::Failed => sqlx::query(
                "UPDATE sms_message SET state = $2, status = $3, done_at = $4, updated_at = $4 \
                 WHERE reference = $1 AND state NOT IN ('delivered', 'failed')",
            )
            .bind(reference)
            .bind(if receipt == Receipt::Delivered {
                "delivered"
            } else {
                "failed"
            })
            .bind(status)
            .bind(now_ms),
            Receipt::Intermediate => sqlx::query(
                "UPDATE sms_message SET status = $2, updated_at = $3, \
                 accepted_at = CASE WHEN accepted_at = 0 THEN $3 ELSE accepted_at END, \
                 state = CASE WHEN state IN ('sending', 'not_sent') THEN 'accepted' ELSE state END \
                 WHERE reference = $1 AND state NOT IN ('delivered', 'failed')",
            )
            .bind(reference)
            .bind(status)
            .bind(now_ms),
        };
        Ok(q.execute(&self.pool).await?.rows_affected() > 0)
    }

    /// Records matching `f`, newest first, one page; and how many match in all.
    pub async fn message_list(
        &self,
        f: &MessageFilter,
        page: i64,
        size: i64,
    ) -> Result<(Vec<SmsMessageRow>, i64)> {
        // Each filter is `$n = '' OR column = $n` (or the time bounds), so the statement is
        // one text whatever is given.
        let filter = "WHERE ($1 = '' OR transaction_id = $1) AND ($2 = '' OR serial = $2) \
             AND ($3 = '' OR user_name = $3) AND ($4 = '' OR gateway = $4) \
             AND ($5 = '' OR state = $5) AND sent_at >= $6 AND sent_at < $7";
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let binds = (
            text(&f.transaction_id),
            text(&f.serial),
            text(&f.user),
            text(&f.gateway),
            text(&f.state),
            f.since_ms.unwrap_or(0),
            f.until_ms.unwrap_or(i64::MAX),
        );
        let count: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM sms_message {filter}"
        )))
        .bind(&binds.0)
        .bind(&binds.1)
        .bind(&binds.2)
        .bind(&binds.3)
        .bind(&binds.4)
        .bind(binds.5)
        .bind(binds.6)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM sms_message {filter} ORDER BY id DESC LIMIT $8 OFFSET $9"
        )))
        .bind(&binds.0)
        .bind(&binds.1)
        .bind(&binds.2)
        .bind(&binds.3)
        .bind(&binds.4)
        .bind(binds.5)
        .bind(binds.6)
        .bind(size)
        .bind((page - 1).saturating_mul(size))
        .fetch_all(&self.pool)
        .await?;
        Ok((rows.iter().map(row).collect::<Result<_>>()?, count))
    }

    /// Notes that the login of transaction `tid` was answered with token `serial`'s code:
    /// its SMS converted (the first answer counts).
    pub async fn message_verified(&self, tid: &str, serial: &str, now_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE sms_message SET verified_at = $3 \
             WHERE transaction_id = $1 AND serial = $2 AND verified_at = 0",
            &[tid.into(), serial.into(), now_ms.into()],
        )
        .await?;
        Ok(())
    }

    /// The records sent in `[since_ms, until_ms)` as facts for delivery statistics.
    pub async fn message_facts(&self, since_ms: i64, until_ms: i64) -> Result<Vec<MessageFact>> {
        let rows = sqlx::query(
            "SELECT gateway, country, state, \
             CASE WHEN done_at >= sent_at THEN done_at - sent_at ELSE 0 END, verified_at, \
             CASE WHEN transaction_id <> '' THEN 1 ELSE 0 END \
             FROM sms_message WHERE sent_at >= $1 AND sent_at < $2",
        )
        .bind(since_ms)
        .bind(until_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MessageFact {
                    gateway: r.try_get(0)?,
                    country: r.try_get(1)?,
                    state: r.try_get(2)?,
                    delivery_ms: r.try_get(3)?,
                    answered: r.try_get::<i64, _>(4)? > 0,
                    login: r.try_get::<i64, _>(5)? == 1,
                })
            })
            .collect()
    }

    /// Deletes records sent before `before_ms`; how many.
    pub async fn message_purge(&self, before_ms: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM sms_message WHERE sent_at < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
