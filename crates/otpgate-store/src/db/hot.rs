//! PostgreSQL's hot path: the connections the store holds itself ([`Hot`]), and one in use
//! ([`HotConn`]). See `db` for how a statement chooses its engine.

use super::{Arg, Cols, scan_pooled, sqlx_query, within};
use crate::{Result, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// PostgreSQL's hot path: connections the store holds itself. A sqlx pool tests every
/// connection it takes back with one more round trip (sqlx 0.9, not configurable), on a task
/// of its own: per statement one more round trip to the database and one more task.
///
/// These go back to the idle list as soon as their statement has answered (rows, or an error
/// of the server that leaves the session alive). A statement left unanswered (the caller gave
/// up, or the client deadline passed) leaves its connection to a task that drains it with a
/// test and takes it back if it answers, as sqlx does; one whose session ended (a `FATAL`
/// error, a broken socket) is closed, and every connection idle since then is tested before
/// its next use: what broke one (a restarted server, a cut network) broke them all. A
/// connection idle for more than [`IDLE_BEFORE_TEST`] is tested before use; one idle for more
/// than [`IDLE_LIMIT`] or older than [`LIFETIME`] is closed instead (a firewall may have
/// dropped it silently). A transaction dropped before its commit is rolled back at once on a
/// task (its row locks must not wait for the connection's next use). The task keeps the
/// connection's slot until it is done.
#[derive(Clone)]
pub(crate) struct Hot(Arc<HotPool>);

struct HotPool {
    /// The database URL (with its password: never printed).
    url: String,
    /// Statements run on every new connection (the server-side bounds), in one round trip.
    bounds: String,
    idle: std::sync::Mutex<Vec<Idle>>,
    /// When a session last ended under a statement: connections idle since before then are
    /// tested before use.
    suspect_since: std::sync::Mutex<Instant>,
    /// One permit per connection in use (or being drained): at most the store's connection
    /// count.
    slots: Arc<tokio::sync::Semaphore>,
    /// The longest wait for a connection: a slot, tests, a new connection.
    wait: Duration,
    /// The longest a test of one idle connection may take before the next is tried.
    test_wait: Duration,
    /// The client-side deadline of each statement.
    deadline: Duration,
}

/// How long a hot connection may have been idle before it is tested.
const IDLE_BEFORE_TEST: Duration = Duration::from_secs(1);
/// An idle connection unused for this long is closed rather than tested (sqlx's default).
const IDLE_LIMIT: Duration = Duration::from_secs(600);
/// A connection is closed when it goes idle after this long (sqlx's default).
const LIFETIME: Duration = Duration::from_secs(1800);

struct Idle {
    conn: sqlx::AnyConnection,
    since: Instant,
    born: Instant,
}

impl std::fmt::Debug for Hot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hot")
            .field("deadline", &self.0.deadline)
            .field("free_slots", &self.0.slots.available_permits())
            .finish_non_exhaustive()
    }
}

impl Hot {
    /// Connections to `url` as statements need them, at most `max`; `bounds` run on each new
    /// one; taking a connection within `wait`, every statement within `deadline` (longer than
    /// the server's `statement_timeout`, so the server gives a slow statement up first and
    /// the connection stays usable).
    pub(crate) fn new(
        url: &str,
        bounds: &[String],
        max: u32,
        wait: Duration,
        deadline: Duration,
    ) -> Self {
        Self(Arc::new(HotPool {
            url: url.to_owned(),
            bounds: bounds.join("; "),
            idle: std::sync::Mutex::new(Vec::new()),
            suspect_since: std::sync::Mutex::new(Instant::now()),
            slots: Arc::new(tokio::sync::Semaphore::new(max.max(1) as usize)),
            wait,
            test_wait: (wait / 2).min(Duration::from_secs(1)),
            deadline,
        }))
    }

    /// A connection: an idle one (tested when needed) or a new one, within the wait.
    pub(crate) async fn acquire(&self) -> Result<HotConn> {
        let pool = &self.0;
        within(Some(pool.wait), async {
            let slot = pool
                .slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| sqlx::Error::PoolClosed)?;
            loop {
                let next = pool.idle.lock().ok().and_then(|mut idle| idle.pop());
                let Some(mut c) = next else { break };
                if c.since.elapsed() > IDLE_LIMIT || c.born.elapsed() > LIFETIME {
                    continue;
                }
                let suspect = pool.suspect_since.lock().map_or(true, |t| c.since <= *t);
                if (suspect || c.since.elapsed() > IDLE_BEFORE_TEST)
                    && let Err(e) = test(&mut c.conn, pool.test_wait).await
                {
                    // Dead (or out of step): dropped; the next one, or a new one.
                    tracing::debug!(error = %e, "a hot connection failed its test");
                    continue;
                }
                return Ok(HotConn::new(c.conn, c.born, self.0.clone(), slot));
            }
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&pool.url).await?;
            if !pool.bounds.is_empty() {
                // Built from integers only.
                sqlx::raw_sql(sqlx::AssertSqlSafe(pool.bounds.clone()))
                    .execute(&mut conn)
                    .await?;
            }
            Ok(HotConn::new(conn, Instant::now(), self.0.clone(), slot))
        })
        .await
    }

    /// How many connections are idle (tests).
    #[cfg(test)]
    pub(crate) fn idle_count(&self) -> usize {
        self.0
            .idle
            .lock()
            .map(|idle| idle.len())
            .unwrap_or_default()
    }

    /// Closes the idle connections; taking one fails from now on, and connections in use are
    /// closed when their statement ends.
    pub(crate) async fn close(&self) {
        let idle = self
            .0
            .idle
            .lock()
            .map(|mut idle| {
                self.0.slots.close();
                std::mem::take(&mut *idle)
            })
            .unwrap_or_default();
        for c in idle {
            let _ = tokio::time::timeout(self.0.test_wait, sqlx::Connection::close(c.conn)).await;
        }
    }
}

/// Tests a connection within `wait` (a `Sync` round trip; it also reads what a statement left
/// unread).
async fn test(conn: &mut sqlx::AnyConnection, wait: Duration) -> std::result::Result<(), String> {
    match tokio::time::timeout(wait, sqlx::Connection::ping(conn)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer in {wait:?}")),
    }
}

/// Whether a statement's error ended the session (the server says `FATAL` or `PANIC` and
/// closes the connection: shut down, terminated, idle too long in a transaction), or the
/// connection broke under it.
fn session_ended(e: &sqlx::Error) -> bool {
    use sqlx::postgres::{PgDatabaseError, PgSeverity};
    match e {
        sqlx::Error::Database(d) => d
            .try_downcast_ref::<PgDatabaseError>()
            .is_none_or(|p| matches!(p.severity(), PgSeverity::Fatal | PgSeverity::Panic)),
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        _ => false,
    }
}

/// Where a [`HotConn`]'s connection stands between statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Every statement answered.
    Ready,
    /// A statement was left unanswered (given up, or the caller went away): drained by a
    /// test before the connection is used again.
    Unanswered,
    /// The session ended: closed.
    Ended,
}

/// A hot connection in use; back to the idle list when dropped (see [`Hot`]).
pub(crate) struct HotConn {
    conn: Option<sqlx::AnyConnection>,
    step: Step,
    /// Inside a transaction (`BEGIN` answered, no `COMMIT` yet).
    in_tx: bool,
    born: Instant,
    home: Arc<HotPool>,
    /// Its place among the connections in use (given back after it).
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl HotConn {
    fn new(
        conn: sqlx::AnyConnection,
        born: Instant,
        home: Arc<HotPool>,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> Self {
        Self {
            conn: Some(conn),
            step: Step::Ready,
            in_tx: false,
            born,
            home,
            slot: Some(slot),
        }
    }

    /// Runs `run` on the connection, if every statement before has answered.
    async fn run<T>(
        &mut self,
        run: impl AsyncFnOnce(&mut sqlx::AnyConnection, Duration) -> Result<T>,
    ) -> Result<T> {
        let (Some(conn), Step::Ready) = (self.conn.as_mut(), self.step) else {
            return Err(StoreError::Conflict(
                "a statement on this connection was given up".into(),
            ));
        };
        // Until it answers (a caller that goes away leaves it so).
        self.step = Step::Unanswered;
        let out = run(conn, self.home.deadline).await;
        self.step = match &out {
            Err(StoreError::Database(e)) if session_ended(e) => Step::Ended,
            Err(StoreError::TimedOut(_)) => Step::Unanswered,
            _ => Step::Ready,
        };
        if self.step != Step::Ready
            && let Ok(mut t) = self.home.suspect_since.lock()
        {
            *t = Instant::now();
        }
        out
    }

    /// [`Store::exec`](crate::Store) on this connection.
    pub(crate) async fn exec(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        self.run(async |c, d| {
            Ok(within(Some(d), sqlx_query(sql, args).execute(c))
                .await?
                .rows_affected())
        })
        .await
    }

    /// `Store::scan` on this connection. The statement is always read to its end, as on
    /// SQLite's own connection: sqlx's `Any` driver returns PostgreSQL's first row before
    /// the statement's end and its commit, so an error after the row (a commit that failed)
    /// would pass for a change made, and the connection would go back with it unread.
    pub(super) async fn scan(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        first_only: bool,
        f: &mut (dyn FnMut(&dyn Cols) -> Result<()> + Send),
    ) -> Result<()> {
        let mut seen = false;
        let mut each = |r: &dyn Cols| {
            if first_only && seen {
                return Ok(());
            }
            seen = true;
            f(r)
        };
        self.run(async |c, d| scan_pooled(c, Some(d), sql, args, false, &mut each).await)
            .await
    }

    /// Starts a transaction.
    pub(super) async fn begin(&mut self) -> Result<()> {
        self.control("BEGIN").await?;
        self.in_tx = true;
        Ok(())
    }

    /// Commits the transaction (a failed commit leaves it to the rollback when dropped).
    pub(super) async fn commit(mut self) -> Result<()> {
        self.control("COMMIT").await?;
        self.in_tx = false;
        Ok(())
    }

    /// Runs a transaction-control statement (no arguments, no rows) under the deadline.
    async fn control(&mut self, sql: &'static str) -> Result<()> {
        self.run(async |c, d| {
            within(Some(d), sqlx::raw_sql(sql).execute(c)).await?;
            Ok(())
        })
        .await
    }
}

impl HotPool {
    /// Takes `conn` back as idle (unless the store was closed, or it lived long enough).
    fn put_back(&self, conn: sqlx::AnyConnection, born: Instant) {
        if born.elapsed() > LIFETIME {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && !self.slots.is_closed()
        {
            idle.push(Idle {
                conn,
                since: Instant::now(),
                born,
            });
        }
    }
}

impl Drop for HotConn {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let (step, in_tx, born) = (self.step, self.in_tx, self.born);
        match step {
            Step::Ended => {}
            Step::Ready if !in_tx => self.home.put_back(conn, born),
            // A statement left unanswered, or a transaction not committed: drained and rolled
            // back on a task that keeps the slot, then taken back.
            _ => {
                let Ok(rt) = tokio::runtime::Handle::try_current() else {
                    return;
                };
                let home = self.home.clone();
                let slot = self.slot.take();
                rt.spawn(async move {
                    let drained =
                        step == Step::Ready || test(&mut conn, home.test_wait).await.is_ok();
                    let ended = drained
                        && (!in_tx
                            || within(
                                Some(home.deadline),
                                sqlx::raw_sql("ROLLBACK").execute(&mut conn),
                            )
                            .await
                            .is_ok());
                    if ended {
                        home.put_back(conn, born);
                    }
                    drop(slot);
                });
            }
        }
    }
}
