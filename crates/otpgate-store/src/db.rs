//! How the store runs a statement: one SQL text and one row mapping for both engines.
//!
//! sqlx runs every SQLite connection on a thread of its own, and every statement is a
//! message to that thread and back (two thread switches, more for rows). With a login step's
//! dozen short statements those hand-offs cost more than SQLite's own work (the profile in
//! `docs/bench/2026-12-05-direct-sqlite.md`). So on a SQLite file (WAL, `synchronous =
//! NORMAL`) the statements written against this module run on the caller's own thread, on one
//! connection of the store's ([`Direct`]): a few microseconds each, with no thread switch.
//! PostgreSQL (and an in-memory SQLite database, which exists once per connection, or a file
//! whose commits wait for the disk) runs the same SQL through the sqlx pool. Never call a
//! `Store` method while holding a [`Tx`]: both want the one connection.
//!
//! The direct connection never waits for SQLite's write lock (its busy timeout is zero):
//! when another connection holds it (an admin command, a migration, another process), the
//! statement runs through the pool instead, whose connections wait on their own threads. A
//! statement refused as busy has changed nothing, so taking it again elsewhere is safe.

use crate::{Result, Store, StoreError};
use rusqlite::ffi::ErrorCode;
use sqlx::any::AnyRow;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// A bound value. Nulls carry their type: PostgreSQL types a parameter by the value bound.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    /// An integer (booleans are 0/1).
    Int(i64),
    /// Text.
    Text(&'a str),
    /// Text or NULL.
    OptText(Option<&'a str>),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Int(i64::from(v))
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::OptText(v)
    }
}

/// The columns of one result row, by position, whichever engine produced it.
pub(crate) trait Cols {
    /// An integer column.
    fn int(&self, i: usize) -> Result<i64>;
    /// A text column.
    fn text(&self, i: usize) -> Result<String>;
    /// A text column that may be NULL.
    fn opt_text(&self, i: usize) -> Result<Option<String>>;
}

impl Cols for AnyRow {
    fn int(&self, i: usize) -> Result<i64> {
        Ok(sqlx::Row::try_get(self, i)?)
    }
    fn text(&self, i: usize) -> Result<String> {
        Ok(sqlx::Row::try_get(self, i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        Ok(sqlx::Row::try_get(self, i)?)
    }
}

impl Cols for rusqlite::Row<'_> {
    fn int(&self, i: usize) -> Result<i64> {
        Ok(self.get(i)?)
    }
    fn text(&self, i: usize) -> Result<String> {
        Ok(self.get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        Ok(self.get(i)?)
    }
}

/// The store's own SQLite connection, used on the caller's thread; `None` once the store
/// was closed.
#[derive(Debug, Clone)]
pub(crate) struct Direct(Arc<Mutex<Option<rusqlite::Connection>>>, Arc<Checkpoints>);

/// Keeps the checkpoint thread running: when the last clone of the store goes (or the store
/// is closed), its sender goes and the thread ends.
#[derive(Debug)]
struct Checkpoints(std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>);

/// What a direct statement came to: done, or refused because another connection holds the
/// write lock (nothing changed; take the pool).
enum Ran<T> {
    Done(T),
    Busy,
}

impl Direct {
    /// Opens `path`, the main file of the database the pool opened (the schema is in place,
    /// the journal is WAL and commits are `synchronous = NORMAL`: with a rollback journal a
    /// commit would need every reader gone, and with `FULL` it would wait for the disk on a
    /// runtime thread — both stay on the pool). Foreign keys enforced as in the pool, no
    /// waiting for locks. Its commits leave checkpoints to a thread of their own
    /// ([`checkpoints`]): the commit that would cross SQLite's threshold would otherwise copy
    /// the whole log into the database while every other request waits for the connection.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let conn = open_file(path)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::ZERO)?;
        // Every login's pages pass through this one connection: room for the hot part of a
        // large installation (SQLite allocates the cache as pages come, so a small database
        // never fills it).
        conn.pragma_update(None, "cache_size", DIRECT_CACHE_KIB)?;
        conn.set_prepared_statement_cache_capacity(128);
        // Without a connection for the checkpoint thread, SQLite's own checkpoints stay on.
        let mut stop = None;
        if let Ok(cp) = open_file(path) {
            let (tx, rx) = std::sync::mpsc::channel();
            let started = std::thread::Builder::new()
                .name("otpgate-checkpoint".into())
                .spawn(move || checkpoints(&cp, &rx));
            if started.is_ok() {
                conn.pragma_update(None, "wal_autocheckpoint", 0)?;
                stop = Some(tx);
            }
        }
        Ok(Self(
            Arc::new(Mutex::new(Some(conn))),
            Arc::new(Checkpoints(std::sync::Mutex::new(stop))),
        ))
    }

    /// Closes the connection and ends the checkpoint thread; statements take the (closed)
    /// pool from now on.
    pub(crate) async fn close(&self) {
        self.0.lock().await.take();
        if let Ok(mut stop) = self.1.0.lock() {
            stop.take();
        }
    }
}

/// The direct connection's page cache: at most 64 MiB (a negative `cache_size` is KiB).
const DIRECT_CACHE_KIB: i64 = -65536;

/// How often the checkpoint thread copies the write-ahead log into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

fn open_file(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// The checkpoint thread: every [`CHECKPOINT_EVERY`] a passive checkpoint (it copies what
/// no reader still needs and never waits for anyone) on a connection of its own, for as
/// long as the store exists (`stop`'s sender lives in it).
fn checkpoints(conn: &rusqlite::Connection, stop: &std::sync::mpsc::Receiver<()>) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut failing = false;
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "SQLite checkpoint failed; retrying");
            }
            Err(_) => {}
        }
    }
}

fn busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Ends a transaction a failed ROLLBACK or COMMIT left open (it would hold the write lock
/// and swallow every later statement), before the connection is used outside a [`Tx`].
fn ready(conn: &rusqlite::Connection) -> &rusqlite::Connection {
    if !conn.is_autocommit() {
        tracing::warn!(
            "the direct SQLite connection was left inside a transaction; rolling it back"
        );
        roll_back(conn);
    }
    conn
}

/// Rolls the connection's open transaction back; a failure is logged (and [`ready`] tries
/// again before the next use).
fn roll_back(conn: &rusqlite::Connection) {
    if !conn.is_autocommit()
        && let Err(e) = conn.execute_batch("ROLLBACK")
    {
        tracing::warn!(error = %e, "rolling back on the direct SQLite connection failed");
    }
}

/// Binds `args` to the statement's `$N` parameters (SQLite numbers named parameters in the
/// order they first appear): one pass over the statement's parameters.
fn bind(st: &mut rusqlite::Statement<'_>, args: &[Arg<'_>]) -> rusqlite::Result<()> {
    let count = st.parameter_count();
    // PostgreSQL refuses a value count other than the statement's: so do the SQLite tests.
    debug_assert_eq!(
        count,
        args.len(),
        "values for {sql:?}",
        sql = st.expanded_sql()
    );
    for at in 1..=count {
        let n = st
            .parameter_name(at)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(at);
        let Some(a) = n.checked_sub(1).and_then(|i| args.get(i)) else {
            return Err(rusqlite::Error::InvalidParameterCount(n, args.len()));
        };
        match a {
            Arg::Int(v) => st.raw_bind_parameter(at, v)?,
            Arg::Text(v) => st.raw_bind_parameter(at, v)?,
            Arg::OptText(v) => st.raw_bind_parameter(at, v)?,
        }
    }
    Ok(())
}

/// Runs `sql` on `conn`; `each` sees every row (only the first with `first_only`, but the
/// statement is always stepped to its end: a `RETURNING` statement commits only there, and
/// a failed commit must not pass for a change made).
fn run_rows(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[Arg<'_>],
    first_only: bool,
    each: &mut dyn FnMut(&rusqlite::Row<'_>) -> Result<()>,
) -> Result<Ran<()>> {
    let mut st = match conn.prepare_cached(sql) {
        Ok(st) => st,
        Err(e) if busy(&e) => return Ok(Ran::Busy),
        Err(e) => return Err(e.into()),
    };
    bind(&mut st, args)?;
    let mut rows = st.raw_query();
    let mut seen = false;
    loop {
        match rows.next() {
            Ok(Some(r)) => {
                if !(first_only && seen) {
                    each(r)?;
                }
                seen = true;
            }
            Ok(None) => break,
            // Busy before the first row: nothing was read or written (a statement refused
            // at its commit was rolled back whole).
            Err(e) if !seen && busy(&e) => return Ok(Ran::Busy),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Ran::Done(()))
}

/// Runs `sql` (no rows) on `conn`: the rows it changed.
fn run_exec(conn: &rusqlite::Connection, sql: &str, args: &[Arg<'_>]) -> Result<Ran<u64>> {
    let mut st = match conn.prepare_cached(sql) {
        Ok(st) => st,
        Err(e) if busy(&e) => return Ok(Ran::Busy),
        Err(e) => return Err(e.into()),
    };
    bind(&mut st, args)?;
    match st.raw_execute() {
        Ok(n) => Ok(Ran::Done(n as u64)),
        Err(e) if busy(&e) => Ok(Ran::Busy),
        Err(e) => Err(e.into()),
    }
}

type SqlxQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

fn sqlx_query<'q>(sql: &str, args: &'q [Arg<'q>]) -> SqlxQuery<'q> {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
    for a in args {
        q = match *a {
            Arg::Int(v) => q.bind(v),
            Arg::Text(v) => q.bind(v),
            Arg::OptText(v) => q.bind(v),
        };
    }
    q
}

/// Runs a pool statement within `deadline` (PostgreSQL with a timeout: a statement on a
/// connection that died under it would otherwise wait for TCP to give up, minutes; the
/// pooled connections are tested only after a second idle, see `Store::connect`). Dropped at
/// the deadline, the statement's connection goes back to the pool only once it answers
/// sqlx's release test.
async fn within<T>(
    deadline: Option<Duration>,
    f: impl std::future::Future<Output = std::result::Result<T, sqlx::Error>>,
) -> Result<T> {
    match deadline {
        None => Ok(f.await?),
        Some(d) => Ok(tokio::time::timeout(d, f)
            .await
            .map_err(|_| StoreError::TimedOut(d))??),
    }
}

/// A query through sqlx (a pool or a transaction's connection) within `deadline`; `f` sees
/// its rows, only the first with `first_only`.
async fn scan_pooled<'e>(
    on: impl sqlx::Executor<'e, Database = sqlx::Any>,
    deadline: Option<Duration>,
    sql: &str,
    args: &[Arg<'_>],
    first_only: bool,
    f: &mut (dyn FnMut(&dyn Cols) -> Result<()> + Send),
) -> Result<()> {
    let q = sqlx_query(sql, args);
    if first_only {
        within(deadline, q.fetch_optional(on))
            .await?
            .iter()
            .try_for_each(|r| f(r))
    } else {
        within(deadline, q.fetch_all(on))
            .await?
            .iter()
            .try_for_each(|r| f(r))
    }
}

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
    async fn scan(
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
    async fn begin(&mut self) -> Result<()> {
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
    async fn commit(mut self) -> Result<()> {
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

impl Store {
    /// True when statements run on the store's own SQLite connection.
    pub(crate) fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Runs a statement without rows; the number of rows it changed.
    pub(crate) async fn exec(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        if let Some(d) = &self.direct
            && let Some(conn) = d.0.lock().await.as_ref()
            && let Ran::Done(n) = run_exec(ready(conn), sql, args)?
        {
            return Ok(n);
        }
        if let Some(hot) = &self.hot {
            return hot.acquire().await?.exec(sql, args).await;
        }
        Ok(
            within(self.deadline, sqlx_query(sql, args).execute(&self.pool))
                .await?
                .rows_affected(),
        )
    }

    /// Runs a query (or a statement with `RETURNING`); `f` sees its rows in order, only the
    /// first with `first_only`. When the direct connection is refused as busy (before any
    /// row) the query runs again in the pool and `f` sees those rows.
    async fn scan(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        first_only: bool,
        f: &mut (dyn FnMut(&dyn Cols) -> Result<()> + Send),
    ) -> Result<()> {
        if let Some(d) = &self.direct
            && let Some(conn) = d.0.lock().await.as_ref()
            && let Ran::Done(()) = run_rows(ready(conn), sql, args, first_only, &mut |r| f(r))?
        {
            return Ok(());
        }
        if let Some(hot) = &self.hot {
            return hot.acquire().await?.scan(sql, args, first_only, f).await;
        }
        scan_pooled(&self.pool, self.deadline, sql, args, first_only, f).await
    }

    /// Runs a query; every row through `map`.
    pub(crate) async fn rows<T: Send>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        map: impl Fn(&dyn Cols) -> Result<T> + Sync,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.scan(sql, args, false, &mut |r| {
            out.push(map(r)?);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Runs a query; `f` sees every row in order.
    pub(crate) async fn each(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&dyn Cols) -> Result<()> + Send,
    ) -> Result<()> {
        self.scan(sql, args, false, &mut f).await
    }

    /// Runs a query (or a statement with `RETURNING`); its first row through `map`.
    pub(crate) async fn row<T: Send>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        map: impl Fn(&dyn Cols) -> Result<T> + Sync,
    ) -> Result<Option<T>> {
        let mut out = None;
        self.scan(sql, args, true, &mut |r| {
            out = Some(map(r)?);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Starts a write transaction: on the direct connection (`BEGIN IMMEDIATE`, so the write
    /// lock is held from the start and no statement inside is refused as busy), or in the
    /// pool when another connection holds the lock. Dropped without [`Tx::commit`], it
    /// rolls back.
    pub(crate) async fn begin(&self) -> Result<Tx> {
        if let Some(d) = &self.direct {
            let held = d.0.clone().lock_owned().await;
            if let Some(conn) = held.as_ref() {
                match ready(conn).execute_batch("BEGIN IMMEDIATE") {
                    Ok(()) => return Ok(Tx::Direct(Held(Some(held)))),
                    Err(e) if busy(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        if let Some(hot) = &self.hot {
            let mut conn = hot.acquire().await?;
            conn.begin().await?;
            return Ok(Tx::Hot(conn));
        }
        Ok(Tx::Pooled(
            within(self.deadline, self.pool.begin()).await?,
            self.deadline,
        ))
    }
}

/// A transaction of [`Store::begin`].
pub(crate) enum Tx {
    /// On the direct connection (held until the end).
    Direct(Held),
    /// On a hot PostgreSQL connection (rolled back before its next use when dropped before
    /// the commit).
    Hot(HotConn),
    /// In the pool, with the store's statement deadline.
    Pooled(sqlx::Transaction<'static, sqlx::Any>, Option<Duration>),
}

impl Tx {
    fn conn(&self) -> Result<&rusqlite::Connection> {
        match self {
            Tx::Direct(Held(Some(c))) => c
                .as_ref()
                .ok_or_else(|| StoreError::Conflict("the store was closed".into())),
            _ => Err(StoreError::Conflict("the transaction has ended".into())),
        }
    }

    /// [`Store::exec`] inside the transaction.
    pub(crate) async fn exec(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        match self {
            Tx::Pooled(tx, deadline) => {
                Ok(within(*deadline, sqlx_query(sql, args).execute(&mut **tx))
                    .await?
                    .rows_affected())
            }
            Tx::Hot(conn) => conn.exec(sql, args).await,
            Tx::Direct(_) => match run_exec(self.conn()?, sql, args)? {
                Ran::Done(n) => Ok(n),
                Ran::Busy => Err(locked()),
            },
        }
    }

    /// [`Store::scan`] inside the transaction.
    async fn scan(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        first_only: bool,
        f: &mut (dyn FnMut(&dyn Cols) -> Result<()> + Send),
    ) -> Result<()> {
        match self {
            Tx::Pooled(tx, deadline) => {
                scan_pooled(&mut **tx, *deadline, sql, args, first_only, f).await
            }
            Tx::Hot(conn) => conn.scan(sql, args, first_only, f).await,
            Tx::Direct(_) => match run_rows(self.conn()?, sql, args, first_only, &mut |r| f(r))? {
                Ran::Done(()) => Ok(()),
                Ran::Busy => Err(locked()),
            },
        }
    }

    /// [`Store::rows`] inside the transaction.
    pub(crate) async fn rows<T: Send>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        map: impl Fn(&dyn Cols) -> Result<T> + Sync,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.scan(sql, args, false, &mut |r| {
            out.push(map(r)?);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// [`Store::row`] inside the transaction.
    pub(crate) async fn row<T: Send>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        map: impl Fn(&dyn Cols) -> Result<T> + Sync,
    ) -> Result<Option<T>> {
        let mut out = None;
        self.scan(sql, args, true, &mut |r| {
            out = Some(map(r)?);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Commits.
    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Tx::Pooled(tx, deadline) => within(deadline, tx.commit()).await,
            Tx::Hot(conn) => conn.commit().await,
            Tx::Direct(mut held) => {
                let Some(guard) = held.0.take() else {
                    return Ok(());
                };
                let Some(conn) = guard.as_ref() else {
                    return Err(StoreError::Conflict("the store was closed".into()));
                };
                if let Err(e) = conn.execute_batch("COMMIT") {
                    // A failed COMMIT may leave the transaction open: end it (a failed
                    // ROLLBACK is ended before the connection's next use).
                    roll_back(conn);
                    return Err(e.into());
                }
                Ok(())
            }
        }
    }
}

/// The direct connection inside a transaction; rolls back when dropped before the commit.
pub(crate) struct Held(Option<OwnedMutexGuard<Option<rusqlite::Connection>>>);

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(conn) = self.0.as_ref().and_then(|g| g.as_ref()) {
            roll_back(conn);
        }
    }
}

/// SQLite refused a statement inside a transaction that holds the write lock (cannot
/// happen while `BEGIN IMMEDIATE` holds it; reported as the database being unavailable).
fn locked() -> StoreError {
    StoreError::Sqlite(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        None,
    ))
}

#[cfg(test)]
mod within_tests {
    use super::*;

    /// A statement that does not answer is given up at the deadline as the database being
    /// unavailable; one that answers in time, or without a deadline, is waited for.
    #[tokio::test(start_paused = true)]
    async fn a_statement_past_its_deadline_is_given_up_as_unavailable() {
        let d = Duration::from_secs(4);
        let never = std::future::pending::<std::result::Result<(), sqlx::Error>>();
        let e = within(Some(d), never).await.unwrap_err();
        assert!(matches!(e, StoreError::TimedOut(x) if x == d), "{e:?}");
        assert!(e.is_unavailable());
        let slow = async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok::<_, sqlx::Error>(7)
        };
        assert_eq!(within(Some(d), slow).await.unwrap(), 7);
        let slower = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, sqlx::Error>(8)
        };
        assert_eq!(within(None, slower).await.unwrap(), 8);
        // The statement's own error stays what it is.
        let failed = async { Err::<(), _>(sqlx::Error::RowNotFound) };
        assert!(matches!(
            within(Some(d), failed).await,
            Err(StoreError::Database(sqlx::Error::RowNotFound))
        ));
    }
}
