//! PostgreSQL's hot path: the connections the store holds itself ([`Hot`]), and one in use
//! ([`HotConn`]). See `db` for how a statement chooses its engine.

use super::{Arg, Cols, scan_pooled, sqlx_query, within};
use crate::{Result, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// PostgreSQL's hot path: connections the store holds itself. A sqlx pool tests every
/// connection it takes back with one more round trip (sqlx 0.9, not configurable), on a task
/// of its own: per statement one more round trip to the database and one more task. These
/// go back to the idle list as soon as their statement has answered (a database error
/// included: the server answered, the connection is in step); one given up at its deadline,
/// or whose reading failed, is closed, and the connections idle since then are tested before
/// their next use (what broke one, a restarted server or a cut network, broke them all). A
/// connection idle for more than [`IDLE_BEFORE_TEST`] is tested before use too. A
/// transaction dropped before its commit is rolled back at once, on a task of its own (its
/// locks must not wait for the connection's next use), as sqlx does.
#[derive(Clone)]
pub(crate) struct Hot(Arc<HotPool>);

struct HotPool {
    /// The database URL (with its password: never printed).
    url: String,
    /// Statements run on every new connection (the server-side bounds), in one round trip.
    bounds: String,
    idle: std::sync::Mutex<Vec<Idle>>,
    /// When a statement last failed without the server's answer: connections idle since
    /// before then are tested before use.
    suspect_since: std::sync::Mutex<tokio::time::Instant>,
    /// One permit per connection in use: at most the store's connection count.
    slots: Arc<tokio::sync::Semaphore>,
    /// The deadline of each statement, and of taking a connection.
    deadline: Duration,
}

/// How long a hot connection may have been idle before it is tested.
const IDLE_BEFORE_TEST: Duration = Duration::from_secs(1);

struct Idle {
    conn: sqlx::AnyConnection,
    since: tokio::time::Instant,
}

impl std::fmt::Debug for Hot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hot")
            .field("deadline", &self.0.deadline)
            .field("in_use_max", &self.0.slots.available_permits())
            .finish_non_exhaustive()
    }
}

impl Hot {
    /// Connections to `url` as statements need them, at most `max`; `bounds` run on each new
    /// one; every statement, and taking a connection, within `deadline`.
    pub(crate) fn new(url: &str, bounds: &[String], max: u32, deadline: Duration) -> Self {
        Self(Arc::new(HotPool {
            url: url.to_owned(),
            bounds: bounds.join("; "),
            idle: std::sync::Mutex::new(Vec::new()),
            suspect_since: std::sync::Mutex::new(tokio::time::Instant::now()),
            slots: Arc::new(tokio::sync::Semaphore::new(max.max(1) as usize)),
            deadline,
        }))
    }

    /// A connection: an idle one (tested or rolled back when needed) or a new one, within
    /// the deadline.
    pub(crate) async fn acquire(&self) -> Result<HotConn> {
        let pool = &self.0;
        within(Some(pool.deadline), async {
            let slot = pool
                .slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| sqlx::Error::PoolClosed)?;
            loop {
                let next = pool.idle.lock().ok().and_then(|mut idle| idle.pop());
                let Some(mut c) = next else { break };
                let suspect = pool.suspect_since.lock().map_or(true, |t| c.since <= *t);
                let test = if suspect || c.since.elapsed() > IDLE_BEFORE_TEST {
                    sqlx::Connection::ping(&mut c.conn).await
                } else {
                    Ok(())
                };
                match test {
                    Ok(()) => return Ok(HotConn::new(c.conn, self.0.clone(), slot)),
                    // Dead (or out of step): dropped; the next one, or a new one.
                    Err(e) => tracing::debug!(error = %e, "a hot connection failed its test"),
                }
            }
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&pool.url).await?;
            if !pool.bounds.is_empty() {
                // Built from integers only.
                sqlx::raw_sql(sqlx::AssertSqlSafe(pool.bounds.clone()))
                    .execute(&mut conn)
                    .await?;
            }
            Ok(HotConn::new(conn, self.0.clone(), slot))
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

    /// Closes the idle connections; taking one fails from now on.
    pub(crate) async fn close(&self) {
        self.0.slots.close();
        let idle = self
            .0
            .idle
            .lock()
            .map(|mut idle| std::mem::take(&mut *idle))
            .unwrap_or_default();
        for c in idle {
            let _ = sqlx::Connection::close(c.conn).await;
        }
    }
}

/// Where a [`HotConn`]'s connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Between statements, outside a transaction.
    Ready,
    /// Between statements, inside a transaction.
    InTx,
    /// A statement was given up (or its reading failed): closed when dropped.
    Unknown,
}

/// A hot connection in use; back to the idle list when dropped, unless a statement on it
/// was left unanswered.
pub(crate) struct HotConn {
    conn: Option<sqlx::AnyConnection>,
    step: Step,
    home: Arc<HotPool>,
    /// Its place among the connections in use (given back after it).
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl HotConn {
    fn new(
        conn: sqlx::AnyConnection,
        home: Arc<HotPool>,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> Self {
        Self {
            conn: Some(conn),
            step: Step::Ready,
            home,
            slot: Some(slot),
        }
    }

    /// Runs `run` on the connection; the connection stays usable when the statement was
    /// answered (rows, or the server's error), else it is closed when dropped.
    async fn run<T>(
        &mut self,
        run: impl AsyncFnOnce(&mut sqlx::AnyConnection, Duration) -> Result<T>,
    ) -> Result<T> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(StoreError::Database(sqlx::Error::PoolClosed));
        };
        let before = std::mem::replace(&mut self.step, Step::Unknown);
        let out = run(conn, self.home.deadline).await;
        if matches!(
            &out,
            Ok(_) | Err(StoreError::Database(sqlx::Error::Database(_)))
        ) {
            self.step = before;
        } else if let Ok(mut t) = self.home.suspect_since.lock() {
            *t = tokio::time::Instant::now();
        }
        out
    }

    /// [`Store::exec`] on this connection.
    pub(crate) async fn exec(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        self.run(async |c, d| {
            Ok(within(Some(d), sqlx_query(sql, args).execute(c))
                .await?
                .rows_affected())
        })
        .await
    }

    /// [`Store::scan`] on this connection. The statement is always read to its end, as on
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
        self.run(async |c, d| {
            within(Some(d), sqlx::raw_sql("BEGIN").execute(c)).await?;
            Ok(())
        })
        .await?;
        self.step = Step::InTx;
        Ok(())
    }

    /// Commits the transaction (a failed commit leaves it to the rollback before the next
    /// use).
    pub(super) async fn commit(mut self) -> Result<()> {
        self.run(async |c, d| {
            within(Some(d), sqlx::raw_sql("COMMIT").execute(c)).await?;
            Ok(())
        })
        .await?;
        self.step = Step::Ready;
        Ok(())
    }
}

impl HotPool {
    /// Takes `conn` back as idle (unless the store was closed).
    fn put_back(&self, conn: sqlx::AnyConnection) {
        if self.slots.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(Idle {
                conn,
                since: tokio::time::Instant::now(),
            });
        }
    }
}

impl Drop for HotConn {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        match self.step {
            Step::Unknown => {}
            Step::Ready => self.home.put_back(conn),
            // A transaction dropped before its commit: rolled back now (it may hold row
            // locks), its slot held until then.
            Step::InTx => {
                let Ok(rt) = tokio::runtime::Handle::try_current() else {
                    return;
                };
                let home = self.home.clone();
                let slot = self.slot.take();
                rt.spawn(async move {
                    let rolled_back = within(
                        Some(home.deadline),
                        sqlx::raw_sql("ROLLBACK").execute(&mut conn),
                    )
                    .await;
                    if rolled_back.is_ok() {
                        home.put_back(conn);
                    }
                    drop(slot);
                });
            }
        }
    }
}
