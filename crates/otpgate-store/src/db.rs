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

mod hot;
pub(crate) use hot::{Hot, HotConn};

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

/// Runs a statement within `deadline` (PostgreSQL's hot path, [`Hot`]: a statement on a
/// connection that died under it would otherwise wait for TCP to give up, minutes). A
/// statement given up at the deadline leaves its connection to be drained or closed (see
/// [`Hot`]); without a deadline (the pool) it is simply waited for.
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
        Ok(sqlx_query(sql, args)
            .execute(&self.pool)
            .await?
            .rows_affected())
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
        scan_pooled(&self.pool, None, sql, args, first_only, f).await
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
        Ok(Tx::Pooled(self.pool.begin().await?))
    }
}

/// A transaction of [`Store::begin`].
pub(crate) enum Tx {
    /// On the direct connection (held until the end).
    Direct(Held),
    /// On a hot PostgreSQL connection (rolled back before its next use when dropped before
    /// the commit).
    Hot(HotConn),
    /// In the pool (SQLite, or PostgreSQL without a timeout: the commands).
    Pooled(sqlx::Transaction<'static, sqlx::Any>),
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
            Tx::Pooled(tx) => Ok(sqlx_query(sql, args)
                .execute(&mut **tx)
                .await?
                .rows_affected()),
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
            Tx::Pooled(tx) => scan_pooled(&mut **tx, None, sql, args, first_only, f).await,
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
            Tx::Pooled(tx) => Ok(tx.commit().await?),
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
