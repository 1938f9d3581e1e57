//! Challenges: one row per token and transaction. Consumption is a single conditional DELETE,
//! so a transaction id and OTP are accepted at most once, cluster-wide.

use crate::db::{Arg, Cols};
use crate::{Backend, Result, Store, flag};
use std::sync::LazyLock;

/// A stored challenge.
#[derive(Debug, Clone)]
pub struct ChallengeRow {
    /// Row id.
    pub id: i64,
    /// The 20-digit transaction id shared by all tokens of one request.
    pub transaction_id: String,
    /// Token row id.
    pub token_id: i64,
    /// Token serial.
    pub serial: String,
    /// The HOTP counter whose OTP was sent.
    pub otp_counter: i64,
    /// The client's `challenge` parameter.
    pub challenge: String,
    /// privacyIDEA's session marker (`''`, `enrollment`).
    pub session: String,
    /// Creation time (ms).
    pub created_at: i64,
    /// Expiry (ms); valid while `now < expires_at`.
    pub expires_at: i64,
    /// Wrong answers so far.
    pub received_count: i64,
    /// privacyIDEA's `otp_valid` (never set for SMS).
    pub otp_valid: bool,
    /// When its SMS last went out (ms): at creation, or when the same code was re-sent (0 for
    /// rows a node older than migration 0009 wrote; see [`ChallengeRow::last_sent`]).
    pub sent_at: i64,
}

impl ChallengeRow {
    /// When its SMS last went out.
    pub fn last_sent(&self) -> i64 {
        self.sent_at.max(self.created_at)
    }
}

const COLS: &str = "id, transaction_id, token_id, serial, otp_counter, challenge, session, created_at, expires_at, \
    received_count, otp_valid, sent_at";

fn row(r: &dyn Cols) -> Result<ChallengeRow> {
    Ok(ChallengeRow {
        id: r.int(0)?,
        transaction_id: r.text(1)?,
        token_id: r.int(2)?,
        serial: r.text(3)?,
        otp_counter: r.int(4)?,
        challenge: r.text(5)?,
        session: r.text(6)?,
        created_at: r.int(7)?,
        expires_at: r.int(8)?,
        received_count: r.int(9)?,
        otp_valid: flag(r.int(10)?),
        sent_at: r.int(11)?,
    })
}

/// [`Store::challenge_accept`] on PostgreSQL: the consuming DELETE of
/// [`Store::challenge_consume`]; the token's update and the `count_auth` upsert of
/// [`Store::token_auth_success`] and [`Store::token_count_auth`] run only when it deleted the
/// row (PostgreSQL runs every part of the WITH once, to its end, on one snapshot, and
/// commits them together). The token's row is locked while the DELETE's condition is
/// checked, before the challenge's row: the order of the paths that lock a token and then
/// delete its challenges (a token deleted, re-initialised or replaced), so the two cannot
/// deadlock. The number of challenges consumed.
const ACCEPT_POSTGRES: &str = "WITH c AS (DELETE FROM challenge WHERE id = $1 AND expires_at > $2 \
     AND ($5 < 0 OR received_count <= $5) \
     AND EXISTS (SELECT 1 FROM token WHERE id = $3 AND active = 1 AND ($4 < 0 OR count = $4) \
     FOR NO KEY UPDATE) RETURNING 1), \
     t AS (UPDATE token SET failcount = 0, count = CASE WHEN count < $6 THEN $6 ELSE count END \
     WHERE id = $3 AND EXISTS (SELECT 1 FROM c)), \
     i AS (INSERT INTO tokeninfo (token_id, key, value) \
     SELECT $3, k, v FROM (VALUES ('count_auth', '1'), ('count_auth_success', '1'), ('last_auth', $7)) AS x (k, v) \
     WHERE EXISTS (SELECT 1 FROM c) ON CONFLICT (token_id, key) \
     DO UPDATE SET value = CASE WHEN excluded.key = 'last_auth' THEN excluded.value \
     ELSE CAST(CAST(tokeninfo.value AS BIGINT) + 1 AS TEXT) END) \
     SELECT count(*) FROM c";

/// [`Store::challenge_open`]'s insert: $1 transaction id, $2 token, $3 serial, $4 challenge,
/// $5 now, $6 expiry, $7 the new counter.
macro_rules! open_insert {
    () => {
        "INSERT INTO challenge (transaction_id, token_id, serial, otp_counter, challenge, session, \
         created_at, expires_at, sent_at) SELECT $1, $2, $3, $7, $4, '', $5, $6, $5"
    };
}
const OPEN_INSERT: &str = concat!(open_insert!(), " RETURNING id");

/// [`OPEN_INSERT`] unless the token has a live challenge sent after $8 (the resend cooldown).
const OPEN_INSERT_UNLESS_RECENT: &str = concat!(
    open_insert!(),
    " WHERE NOT EXISTS (SELECT 1 FROM challenge WHERE token_id = $2 AND session = '' \
     AND sent_at > $8 AND expires_at > $5) RETURNING id"
);

/// [`Store::challenge_open`] on PostgreSQL without send limits or cooldown: the counter step
/// of [`crate::tokens::NEXT_COUNTER`] and the insert in one statement (no row when the token
/// may not send). The new counter and the challenge's id.
const OPEN_POSTGRES: &str = "WITH n AS (UPDATE token SET count = count + 1 WHERE id = $2 AND active = 1 \
     AND revoked = 0 AND failcount < maxfail RETURNING count) \
     INSERT INTO challenge (transaction_id, token_id, serial, otp_counter, challenge, session, created_at, \
     expires_at, sent_at) SELECT $1, $2, $3, n.count, $4, '', $5, $6, $5 FROM n RETURNING otp_counter, id";

/// [`Store::challenge_consume`]'s conditional DELETE (arguments from [`consume_args`]).
const CONSUME: &str = "DELETE FROM challenge WHERE id = $1 AND expires_at > $2 \
     AND ($5 < 0 OR received_count <= $5) \
     AND EXISTS (SELECT 1 FROM token WHERE id = $3 AND active = 1 AND ($4 < 0 OR count = $4))";

fn consume_args(
    id: i64,
    now_ms: i64,
    token_id: i64,
    required_count: Option<i64>,
    max_wrong: Option<i64>,
) -> [Arg<'static>; 5] {
    [
        id.into(),
        now_ms.into(),
        token_id.into(),
        required_count.unwrap_or(-1).into(),
        max_wrong.unwrap_or(-1).into(),
    ]
}

const INSERT_CHALLENGE: &str = "INSERT INTO challenge (transaction_id, token_id, serial, otp_counter, challenge, session, \
     created_at, expires_at, sent_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7) RETURNING id";

/// The outcome of [`Store::challenge_open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// The send-limit key at this index is at its limit: nothing changed.
    Refused(usize),
    /// The token may not send (disabled, revoked, locked out): nothing changed.
    Unfit,
    /// Another request opened a challenge of the token within the resend cooldown (decided
    /// under the token's row lock, so parallel PIN requests send one SMS): nothing changed.
    Recent,
    /// Counted, the counter advanced, the challenge stored.
    Open {
        /// The new HOTP counter (the challenge's).
        counter: i64,
        /// The challenge row id.
        id: i64,
    },
}

/// The outcome of [`Store::challenge_resend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resent {
    /// Counted against the send limits and marked sent now: send its code again.
    Due,
    /// The challenge is gone, expired, or was sent again since `not_after` (another request
    /// re-sent it): nothing changed.
    NotDue,
    /// The send-limit key at this index is at its limit: nothing changed.
    Refused(usize),
}

impl Store {
    /// Before the SMS of live challenge `id` goes out again with the same code, in one
    /// transaction: one conditional update claims the re-send (the challenge is live and its
    /// SMS last went out at or before `not_after`, so of two requests at once only one
    /// re-sends), and the SMS is counted against the send limits `windows`. All or nothing.
    pub async fn challenge_resend(
        &self,
        windows: &[crate::WindowKey],
        id: i64,
        now_ms: i64,
        not_after: i64,
    ) -> Result<Resent> {
        let mut tx = self.begin().await?;
        let n = tx
            .exec(
                "UPDATE challenge SET sent_at = $2 WHERE id = $1 AND expires_at > $2 AND sent_at <= $3 \
                 AND created_at <= $3",
                &[id.into(), now_ms.into(), not_after.into()],
            )
            .await?;
        if n != 1 {
            return Ok(Resent::NotDue);
        }
        if let Some(i) = crate::limits::take_in(&mut tx, windows).await? {
            return Ok(Resent::Refused(i));
        }
        tx.commit().await?;
        Ok(Resent::Due)
    }

    /// Undoes a re-send claimed by [`Store::challenge_resend`] at `claimed_at` whose SMS could
    /// not go out: the challenge's last SMS is again the one at `sent_at`.
    pub async fn challenge_unsend(&self, id: i64, claimed_at: i64, sent_at: i64) -> Result<()> {
        self.exec(
            "UPDATE challenge SET sent_at = $3 WHERE id = $1 AND sent_at = $2",
            &[id.into(), claimed_at.into(), sent_at.into()],
        )
        .await?;
        Ok(())
    }

    /// Everything that happens before an OTP SMS goes out, in one transaction: the SMS is
    /// counted against the send limits `windows`, the token's HOTP counter advances (if the
    /// token may send) and the challenge for the new counter is stored. All or nothing. With
    /// `recent_since` (the resend cooldown), a live challenge of the token sent after it —
    /// seen under the token's row lock the counter step took — refuses the new one.
    #[allow(clippy::too_many_arguments)]
    pub async fn challenge_open(
        &self,
        windows: &[crate::WindowKey],
        token_id: i64,
        transaction_id: &str,
        serial: &str,
        challenge: &str,
        created_at: i64,
        expires_at: i64,
        recent_since: Option<i64>,
    ) -> Result<Opened> {
        let mut args: Vec<Arg<'_>> = vec![
            transaction_id.into(),
            token_id.into(),
            serial.into(),
            challenge.into(),
            created_at.into(),
            expires_at.into(),
        ];
        if windows.is_empty() && recent_since.is_none() && self.backend() == Backend::Postgres {
            // Nothing to count and no other challenge to look for: the counter step and the
            // insert are one statement, one round trip instead of four with BEGIN and COMMIT.
            let opened = self
                .row(OPEN_POSTGRES, &args, |r| Ok((r.int(0)?, r.int(1)?)))
                .await?;
            return Ok(opened.map_or(Opened::Unfit, |(counter, id)| Opened::Open { counter, id }));
        }
        // Every early return drops `tx`: rolled back.
        let mut tx = self.begin().await?;
        if let Some(i) = crate::limits::take_in(&mut tx, windows).await? {
            return Ok(Opened::Refused(i));
        }
        let Some(counter) = tx
            .row(crate::tokens::NEXT_COUNTER, &[token_id.into()], |r| {
                r.int(0)
            })
            .await?
        else {
            return Ok(Opened::Unfit);
        };
        args.push(counter.into());
        // The cooldown's look for a live challenge sent since `recent_since` runs with the
        // insert, after the counter step took the token's row lock, so it sees every
        // challenge a parallel request committed before.
        let insert = match recent_since {
            Some(since) => {
                args.push(since.into());
                OPEN_INSERT_UNLESS_RECENT
            }
            None => OPEN_INSERT,
        };
        let Some(id) = tx.row(insert, &args, |r| r.int(0)).await? else {
            return Ok(Opened::Recent);
        };
        tx.commit().await?;
        Ok(Opened::Open { counter, id })
    }

    /// Stores a challenge; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub async fn challenge_insert(
        &self,
        transaction_id: &str,
        token_id: i64,
        serial: &str,
        otp_counter: i64,
        challenge: &str,
        session: &str,
        created_at: i64,
        expires_at: i64,
    ) -> Result<i64> {
        let args = [
            transaction_id.into(),
            token_id.into(),
            serial.into(),
            otp_counter.into(),
            challenge.into(),
            session.into(),
            created_at.into(),
            expires_at.into(),
        ];
        self.row(INSERT_CHALLENGE, &args, |r| r.int(0))
            .await?
            .ok_or(crate::StoreError::NotFound("new challenge"))
    }

    /// The live (unexpired) challenges of a transaction.
    pub async fn challenges_live_by_tid(
        &self,
        tid: &str,
        now_ms: i64,
    ) -> Result<Vec<ChallengeRow>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {COLS} FROM challenge WHERE transaction_id = $1 AND created_at <= $2 AND expires_at > $2 ORDER BY id"
            )
        });
        self.rows(&SQL, &[tid.into(), now_ms.into()], row).await
    }

    /// All challenges of a transaction, expired or not.
    pub async fn challenges_by_tid(&self, tid: &str) -> Result<Vec<ChallengeRow>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!("SELECT {COLS} FROM challenge WHERE transaction_id = $1 ORDER BY id")
        });
        self.rows(&SQL, &[tid.into()], row).await
    }

    /// The live challenges of a token, newest first.
    pub async fn challenges_live_by_token(
        &self,
        token_id: i64,
        now_ms: i64,
    ) -> Result<Vec<ChallengeRow>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {COLS} FROM challenge WHERE token_id = $1 AND created_at <= $2 AND expires_at > $2 ORDER BY id DESC"
            )
        });
        self.rows(&SQL, &[token_id.into(), now_ms.into()], row)
            .await
    }

    /// All challenges of one token, or of all tokens (admin listing), newest first.
    pub async fn challenges_list(&self, serial: Option<&str>) -> Result<Vec<ChallengeRow>> {
        let rows = match serial {
            Some(s) => {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {COLS} FROM challenge WHERE serial = $1 ORDER BY id DESC"
                ));
                sqlx::query(sql).bind(s).fetch_all(&self.pool).await?
            }
            None => {
                let sql =
                    sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM challenge ORDER BY id DESC"));
                sqlx::query(sql).fetch_all(&self.pool).await?
            }
        };
        rows.iter().map(|r| row(r)).collect()
    }

    /// Consumes a challenge if it is still live, its token is active, it has fewer than
    /// `max_wrong` wrong answers (when given) and, when `required_count` is given, the
    /// token's counter still equals it (no newer challenge replaced it). One conditional
    /// statement: true for exactly one caller.
    pub async fn challenge_consume(
        &self,
        id: i64,
        now_ms: i64,
        token_id: i64,
        required_count: Option<i64>,
        max_wrong: Option<i64>,
    ) -> Result<bool> {
        let args = consume_args(id, now_ms, token_id, required_count, max_wrong);
        Ok(self.exec(CONSUME, &args).await? == 1)
    }

    /// A right answer to challenge `c` of its token: the challenge is consumed as by
    /// [`Store::challenge_consume`] (exactly once), and only then the token's fail counter
    /// goes to 0, its HOTP counter moves past the challenge's (never backwards) and the
    /// login is counted in its info (`count_auth`, `count_auth_success`, `last_auth` set to
    /// `last_auth`). All or nothing: on PostgreSQL one statement (a data-modifying CTE: one
    /// round trip and one commit instead of three); SQLite has no data-modifying CTEs, so there
    /// the three statements run in one transaction (on its direct connection no round trip,
    /// and one commit for the writer instead of three). True when this call consumed it.
    pub async fn challenge_accept(
        &self,
        c: &ChallengeRow,
        now_ms: i64,
        required_count: Option<i64>,
        max_wrong: Option<i64>,
        last_auth: &str,
    ) -> Result<bool> {
        let consume = consume_args(c.id, now_ms, c.token_id, required_count, max_wrong);
        let next = c.otp_counter + 1;
        if self.backend() == Backend::Postgres {
            let [id, now, token, count, wrong] = consume;
            let args = [id, now, token, count, wrong, next.into(), last_auth.into()];
            let consumed = self
                .row(ACCEPT_POSTGRES, &args, |r| r.int(0))
                .await?
                .unwrap_or(0);
            return Ok(consumed == 1);
        }
        // Dropped before its commit (the challenge was not consumed): rolled back.
        let mut tx = self.begin().await?;
        if tx.exec(CONSUME, &consume).await? != 1 {
            return Ok(false);
        }
        tx.exec(
            crate::tokens::AUTH_SUCCESS,
            &[c.token_id.into(), next.into()],
        )
        .await?;
        tx.exec(
            crate::tokens::COUNT_AUTH_SUCCESS,
            &[c.token_id.into(), last_auth.into()],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes one challenge (its SMS could not be sent).
    pub async fn challenge_delete(&self, id: i64) -> Result<()> {
        self.exec("DELETE FROM challenge WHERE id = $1", &[id.into()])
            .await?;
        Ok(())
    }

    /// Takes challenge `id` while it lives (one conditional DELETE: exactly once); false when
    /// it expired or another request took it.
    pub async fn challenge_take(&self, id: i64, now_ms: i64) -> Result<bool> {
        let n = self
            .exec(
                "DELETE FROM challenge WHERE id = $1 AND expires_at > $2",
                &[id.into(), now_ms.into()],
            )
            .await?;
        Ok(n == 1)
    }

    /// Deletes every challenge of a transaction (after one of them was answered).
    pub async fn challenge_delete_tid(&self, tid: &str) -> Result<u64> {
        self.exec(
            "DELETE FROM challenge WHERE transaction_id = $1",
            &[tid.into()],
        )
        .await
    }

    /// Counts a wrong answer to a challenge; with `max_wrong`, a challenge that has that many
    /// is deleted (it can no longer be answered). True when it died.
    /// Claims one answer to challenge `id` before it is checked: its count goes up by one
    /// while it is below `max_wrong` (one conditional UPDATE, so parallel answers get no more
    /// checks than the limit). The new count, or None when the challenge is used up or gone.
    pub async fn challenge_claim_answer(
        &self,
        id: i64,
        max_wrong: Option<i64>,
    ) -> Result<Option<i64>> {
        self.row(
            "UPDATE challenge SET received_count = received_count + 1 \
             WHERE id = $1 AND ($2 < 0 OR received_count < $2) RETURNING received_count",
            &[id.into(), max_wrong.unwrap_or(-1).into()],
            |r| r.int(0),
        )
        .await
    }

    /// Deletes challenge `id` when its claimed answers reached `max_wrong` (the last one was
    /// wrong); true when it went.
    pub async fn challenge_drop_used_up(&self, id: i64, max_wrong: i64) -> Result<bool> {
        let n = self
            .exec(
                "DELETE FROM challenge WHERE id = $1 AND received_count >= $2",
                &[id.into(), max_wrong.into()],
            )
            .await?;
        Ok(n == 1)
    }

    pub async fn challenge_inc_received(&self, id: i64, max_wrong: Option<i64>) -> Result<bool> {
        sqlx::query("UPDATE challenge SET received_count = received_count + 1 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        let Some(max) = max_wrong else {
            return Ok(false);
        };
        let n = sqlx::query("DELETE FROM challenge WHERE id = $1 AND received_count >= $2")
            .bind(id)
            .bind(max)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Deletes the expired challenges of a token.
    pub async fn challenge_purge_expired(&self, token_id: i64, now_ms: i64) -> Result<u64> {
        self.exec(
            "DELETE FROM challenge WHERE token_id = $1 AND expires_at <= $2",
            &[token_id.into(), now_ms.into()],
        )
        .await
    }

    /// Deletes all expired challenges (housekeeping).
    pub async fn challenge_purge_all_expired(&self, now_ms: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM challenge WHERE expires_at <= $1")
            .bind(now_ms)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
