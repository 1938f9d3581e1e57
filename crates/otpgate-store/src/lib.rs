//! otpgate's storage: the only crate that writes SQL.
//!
//! One [`Store`] over an sqlx `AnyPool`, chosen by URL. Queries are runtime queries with
//! `$N` placeholders, written once for SQLite and PostgreSQL. Every state change that matters
//! for security (HOTP counter, fail counter, challenge consumption) is one conditional
//! statement, so it stays correct under concurrency and across nodes.

mod admin;
pub mod audit;
mod challenges;
mod copy;
mod db;
mod events;
mod gateways;
pub mod import;
mod limits;
mod messages;
mod ownership;
pub mod pisource;
mod policies;
mod radius;
mod reseal;
mod sessions;
mod smtp;
mod stats;
mod tokens;
mod users;

#[cfg(any(test, feature = "test-support"))]
pub mod testdb;

pub use admin::SetupProgress;
pub use audit::{AuditEntry, AuditFilter};
pub use challenges::{ChallengeRow, Opened, Resent};
pub use copy::CopyReport;
pub use events::{EventHandlerRow, INTERRUPTED, NewOutboxItem, OutboxRow};
pub use gateways::{GatewayOptionRow, GatewayRow};
pub use limits::{BlockedPrefix, WindowKey};
pub use messages::{MessageFact, MessageFilter, NewMessage, Receipt, SmsMessageRow};
pub use policies::{Guarded, PolicyChange, PolicyRow};
pub use radius::RadiusServerRow;
pub use reseal::{Sealed, SealedKind};
pub use smtp::SmtpServerRow;
pub use stats::SmsStat;
pub use tokens::{NewToken, ReachFilter, Reserve, TokenFilter, TokenOwner, TokenRow};
pub use users::{InternalUserRow, RealmRow, ResolverRow};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, SqlSafeStr};
use std::time::Duration;

/// Storage errors. Messages name what failed, never the values involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The store's own SQLite connection failed (see `db`).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Applying the schema failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row that must exist does not.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The row is still referenced (e.g. a resolver by a realm).
    #[error("{0}")]
    InUse(String),
    /// A uniqueness or reference rule was violated.
    #[error("{0}")]
    Conflict(String),
    /// The database did not answer a statement within the deadline (PostgreSQL's hot path;
    /// the server's own statement timeout ends the statement there too).
    #[error("the database did not answer within {0:?}")]
    TimedOut(Duration),
}

impl StoreError {
    /// True when the database itself is unavailable (not a logic error).
    pub fn is_unavailable(&self) -> bool {
        match self {
            // A connection that breaks mid-conversation (a proxy or server closing it during the
            // start-up or TLS exchange) surfaces as a protocol error.
            StoreError::Database(
                sqlx::Error::PoolTimedOut
                | sqlx::Error::Io(_)
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::WorkerCrashed,
            ) => true,
            // PostgreSQL: connection exceptions (08…), the server shutting down (57P01–57P03),
            // the database gone (3D000), a statement over its timeout (57014), no connection
            // slot left (53300); SQLite: busy or locked beyond the busy timeout (5, 6).
            StoreError::Database(e) => {
                e.as_database_error()
                    .and_then(|d| d.code())
                    .is_some_and(|c| {
                        c.starts_with("08")
                            || matches!(
                                c.as_ref(),
                                "57P01"
                                    | "57P02"
                                    | "57P03"
                                    | "3D000"
                                    | "57014"
                                    | "53300"
                                    | "5"
                                    | "6"
                            )
                    })
            }
            // PostgreSQL's hot path gave a statement up at its deadline.
            StoreError::TimedOut(_) => true,
            // As for the pool's SQLite connections: busy or locked.
            StoreError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(
                    rusqlite::ffi::ErrorCode::DatabaseBusy
                        | rusqlite::ffi::ErrorCode::DatabaseLocked
                )
            ),
            _ => false,
        }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, StoreError>;

/// The database engines otpgate runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (the default, one node).
    Sqlite,
    /// PostgreSQL (any number of nodes).
    Postgres,
}

impl Backend {
    /// The engine of a database URL.
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// How to open the database.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Pool size (SQLite in memory always uses 1).
    pub max_connections: u32,
    /// How long to keep retrying while the database is not reachable yet (start-up order in
    /// clusters and containers).
    pub wait: Duration,
    /// SQLite files only: `PRAGMA synchronous = FULL` (every commit is on disk before it
    /// returns) instead of `NORMAL` (WAL commits reach the disk at the next checkpoint: a
    /// power loss or kernel crash may undo the last commits, a killed process does not).
    pub sqlite_full_sync: bool,
    /// The longest wait for the database (serving nodes): for a pooled connection, for a
    /// lock (SQLite's busy timeout, PostgreSQL's `lock_timeout`), and five times as long for
    /// one PostgreSQL statement (`statement_timeout`). None: sqlx's defaults (10 s for a
    /// connection, 5 s for SQLite locks, no PostgreSQL bounds), for the one-off commands.
    pub timeout: Option<Duration>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            wait: Duration::ZERO,
            sqlite_full_sync: false,
            timeout: None,
        }
    }
}

/// The database handle shared by all services. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite files: the connection the hot path's statements run on, on the caller's
    /// thread (see `db`).
    direct: Option<db::Direct>,
    /// SQLite: the connections' busy timeout.
    lock_wait: Duration,
    /// PostgreSQL with a timeout: the connections of the hot path's statements (`db`),
    /// each statement under a deadline; the pool serves them otherwise.
    hot: Option<db::Hot>,
}

fn migrations(backend: Backend) -> Vec<Migration> {
    let all: [(i64, &'static str, &'static str, &'static str); 17] = [
        (
            1,
            "init",
            include_str!("../migrations/sqlite/0001_init.sql"),
            include_str!("../migrations/postgres/0001_init.sql"),
        ),
        (
            2,
            "smtpserver",
            include_str!("../migrations/sqlite/0002_smtpserver.sql"),
            include_str!("../migrations/postgres/0002_smtpserver.sql"),
        ),
        (
            3,
            "events",
            include_str!("../migrations/sqlite/0003_events.sql"),
            include_str!("../migrations/postgres/0003_events.sql"),
        ),
        (
            4,
            "limits",
            include_str!("../migrations/sqlite/0004_limits.sql"),
            include_str!("../migrations/postgres/0004_limits.sql"),
        ),
        (
            5,
            "fraud",
            include_str!("../migrations/sqlite/0005_fraud.sql"),
            include_str!("../migrations/postgres/0005_fraud.sql"),
        ),
        (
            6,
            "ldap",
            include_str!("../migrations/sqlite/0006_ldap.sql"),
            include_str!("../migrations/postgres/0006_ldap.sql"),
        ),
        (
            7,
            "settings_version",
            include_str!("../migrations/sqlite/0007_settings_version.sql"),
            include_str!("../migrations/postgres/0007_settings_version.sql"),
        ),
        (
            8,
            "web",
            include_str!("../migrations/sqlite/0008_web.sql"),
            include_str!("../migrations/postgres/0008_web.sql"),
        ),
        (
            9,
            "drop_in",
            include_str!("../migrations/sqlite/0009_drop_in.sql"),
            include_str!("../migrations/postgres/0009_drop_in.sql"),
        ),
        (
            10,
            "policy_engine",
            include_str!("../migrations/sqlite/0010_policy_engine.sql"),
            include_str!("../migrations/postgres/0010_policy_engine.sql"),
        ),
        (
            11,
            "radiusserver",
            include_str!("../migrations/sqlite/0011_radiusserver.sql"),
            include_str!("../migrations/postgres/0011_radiusserver.sql"),
        ),
        (
            12,
            "policy_match",
            include_str!("../migrations/sqlite/0012_policy_match.sql"),
            include_str!("../migrations/postgres/0012_policy_match.sql"),
        ),
        (
            13,
            "admin_password_changed",
            include_str!("../migrations/sqlite/0013_admin_password_changed.sql"),
            include_str!("../migrations/postgres/0013_admin_password_changed.sql"),
        ),
        (
            14,
            "node_seen",
            include_str!("../migrations/sqlite/0014_node_seen.sql"),
            include_str!("../migrations/postgres/0014_node_seen.sql"),
        ),
        (
            15,
            "imported",
            include_str!("../migrations/sqlite/0015_imported.sql"),
            include_str!("../migrations/postgres/0015_imported.sql"),
        ),
        (
            16,
            "sms_message",
            include_str!("../migrations/sqlite/0016_sms_message.sql"),
            include_str!("../migrations/postgres/0016_sms_message.sql"),
        ),
        (
            17,
            "sms_external_id",
            include_str!("../migrations/sqlite/0017_sms_external_id.sql"),
            include_str!("../migrations/postgres/0017_sms_external_id.sql"),
        ),
    ];
    all.into_iter()
        .map(|(version, name, sqlite, postgres)| {
            let sql = if backend == Backend::Sqlite {
                sqlite
            } else {
                postgres
            };
            Migration::new(
                version,
                name.into(),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect()
}

/// SQL LIKE pattern from privacyIDEA's `*` wildcard, escaping LIKE's own metacharacters.
pub(crate) fn like_pattern(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '%' | '_' => {
                out.push('\\');
                out.push(c);
            }
            '*' => out.push('%'),
            c => out.push(c),
        }
    }
    out
}

/// A case-insensitive LIKE on `column` with a `?` placeholder for a [`like_pattern`], the same
/// on both engines (PostgreSQL's LIKE is case-sensitive, SQLite's is not).
pub(crate) fn ilike(column: &str) -> String {
    format!("LOWER({column}) LIKE LOWER(?) ESCAPE '\\'")
}

/// The URL with any password replaced, for messages: the userinfo's and query parameters
/// such as `password=` or `sslpassword=`.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match (base.split_once("://"), base.rfind('@')) {
        (Some((scheme, rest)), Some(at)) if at > scheme.len() + 3 => {
            let userinfo = &rest[..at - scheme.len() - 3];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{}", &base[at + 1..])
        }
        _ => base.to_owned(),
    };
    if let Some(q) = query {
        let params: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.to_ascii_lowercase().contains("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

#[cfg(test)]
#[test]
fn redacted_urls_keep_no_password() {
    assert_eq!(
        redact_url("postgres://otp:s3cret@db:5432/otp?sslmode=require&password=p2&sslpassword=p3"),
        "postgres://otp:***@db:5432/otp?sslmode=require&password=***&sslpassword=***"
    );
    assert_eq!(
        redact_url("sqlite:///var/lib/otpgate/db.sqlite?mode=rwc"),
        "sqlite:///var/lib/otpgate/db.sqlite?mode=rwc"
    );
    assert_eq!(
        redact_url("postgres://db/otp?user=a@b"),
        "postgres://db/otp?user=a@b"
    );
}

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc`, `sqlite::memory:`, `postgres://…`) with the
    /// default options and applies the schema.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, &ConnectOptions::default()).await
    }

    /// Connects, retrying for `opts.wait` while the database is unreachable, and applies the
    /// schema.
    pub async fn connect_with(url: &str, opts: &ConnectOptions) -> Result<Self> {
        install_default_drivers();
        let backend = Backend::of_url(url).ok_or_else(|| {
            StoreError::Conflict(format!(
                "unsupported database URL {:?}: use sqlite:// or postgres://",
                redact_url(url)
            ))
        })?;
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let deadline = tokio::time::Instant::now() + opts.wait;
        let mut backoff = Duration::from_millis(100);
        let sync = if opts.sqlite_full_sync {
            "PRAGMA synchronous = FULL"
        } else {
            "PRAGMA synchronous = NORMAL"
        };
        let timeout = opts.timeout;
        let bounds: Vec<String> = match (backend, timeout) {
            (Backend::Sqlite, Some(t)) => vec![format!("PRAGMA busy_timeout = {}", t.as_millis())],
            (Backend::Postgres, Some(t)) => vec![
                format!("SET lock_timeout = {}", t.as_millis()),
                format!("SET statement_timeout = {}", t.as_millis() * 5),
            ],
            _ => Vec::new(),
        };
        let bounds = std::sync::Arc::new(bounds);
        // The hot path's PostgreSQL connections: the server gives a statement up when the
        // node does (`db::within`, twice the timeout), so nothing the node has answered 503
        // for goes on to change rows afterwards.
        let hot_bounds: Vec<String> = match timeout {
            Some(t) => vec![
                format!("SET lock_timeout = {}", t.as_millis()),
                format!("SET statement_timeout = {}", t.as_millis() * 2),
            ],
            None => Vec::new(),
        };
        let options = || {
            let bounds = bounds.clone();
            AnyPoolOptions::new()
                .after_connect(move |conn, _| {
                    let bounds = bounds.clone();
                    Box::pin(async move {
                        for bound in bounds.iter() {
                            // Built from integers only.
                            sqlx::query(sqlx::AssertSqlSafe(bound.clone()))
                                .execute(&mut *conn)
                                .await?;
                        }
                        if backend == Backend::Sqlite && !memory {
                            // WAL lets readers proceed while one writer commits; it persists
                            // in the file. NORMAL is safe only in WAL: where WAL cannot be
                            // had, every commit is synced.
                            let mode: String = sqlx::Row::try_get(
                                &sqlx::query("PRAGMA journal_mode = WAL")
                                    .fetch_one(&mut *conn)
                                    .await?,
                                0,
                            )?;
                            let sync = if mode.eq_ignore_ascii_case("wal") {
                                sync
                            } else {
                                "PRAGMA synchronous = FULL"
                            };
                            sqlx::query(sync).execute(conn).await?;
                        }
                        Ok(())
                    })
                })
                // A PostgreSQL connection may have died while idle (a restarted server, a cut
                // network): tested before use, bounded by the acquire timeout, which is also
                // what answers a partitioned database at once for a statement without a
                // deadline of its own (the hot path's connections, `db::Hot`, are tested only
                // after a second idle: their statements have a deadline). A SQLite
                // connection is a local file handle and never tested.
                .test_before_acquire(backend != Backend::Sqlite)
                // An in-memory SQLite database exists once per connection. With PostgreSQL's
                // hot path on connections of its own, the main pool has half the connections.
                .max_connections(if memory {
                    1
                } else if backend == Backend::Postgres && timeout.is_some() {
                    (opts.max_connections / 2).max(2)
                } else {
                    opts.max_connections.max(1)
                })
                .acquire_timeout(timeout.unwrap_or(Duration::from_secs(10)))
        };
        let pool = loop {
            let attempt = options().connect(url).await;
            match attempt {
                Ok(pool) => break pool,
                Err(e) if tokio::time::Instant::now() + backoff < deadline && transient(&e) => {
                    tracing::warn!(url = %redact_url(url), error = %e, "database not reachable yet; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e.into()),
            }
        };
        // Migrations may rewrite big tables: their connection has no statement timeout (and
        // is closed afterwards, so no other work runs without one).
        let mut conn = pool.acquire().await?;
        if backend == Backend::Postgres && timeout.is_some() {
            sqlx::query("SET statement_timeout = 0")
                .execute(&mut *conn)
                .await?;
        }
        Migrator::with_migrations(migrations(backend))
            .run(&mut *conn)
            .await?;
        if backend == Backend::Postgres && timeout.is_some() {
            conn.close().await?;
        } else {
            drop(conn);
        }
        let direct = match backend {
            Backend::Sqlite if !memory && !opts.sqlite_full_sync && plain_sqlite_url(url) => {
                direct_path(&pool)
                    .await?
                    .map(|path| db::Direct::open(&path))
                    .transpose()?
            }
            _ => None,
        };
        // PostgreSQL: the hot path's statements (`db`) have connections of their own,
        // connected as statements need them (the main pool has just reached the server),
        // taken within the timeout; each statement is given up by the node a little after the
        // server's `statement_timeout` (twice the timeout), so the server answers first and
        // the connection stays usable.
        let hot = match (backend, timeout) {
            (Backend::Postgres, Some(t)) => Some(db::Hot::new(
                url,
                &hot_bounds,
                opts.max_connections,
                t,
                hot_deadline(t),
            )),
            _ => None,
        };
        Ok(Self {
            pool,
            hot,
            backend,
            direct,
            lock_wait: timeout.unwrap_or(Duration::from_secs(5)),
        })
    }

    /// Writes a consistent copy of the SQLite database to `path` (`VACUUM INTO`: taken while
    /// other connections read and write; the file must not exist). SQLite only.
    pub async fn sqlite_snapshot(&self, path: &std::path::Path) -> Result<()> {
        if self.backend() != Backend::Sqlite {
            return Err(StoreError::Conflict(
                "a snapshot is taken of SQLite databases only".into(),
            ));
        }
        sqlx::query("VACUUM INTO $1")
            .bind(path.to_string_lossy().into_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// True when the database would take a write now: PostgreSQL answers a query; a SQLite
    /// file's write lock is free (another process's writer holding it makes every write
    /// wait, while reads still work). Waits for a lock at most `patience`.
    pub async fn writable(&self, patience: Duration) -> bool {
        let probe = async {
            match self.backend {
                Backend::Postgres => sqlx::query("SELECT 1").execute(&self.pool).await.is_ok(),
                Backend::Sqlite => {
                    let Ok(mut conn) = self.pool.acquire().await else {
                        return false;
                    };
                    let short = format!("PRAGMA busy_timeout = {}", patience.as_millis());
                    // Both built from integers only.
                    let ok = sqlx::query(sqlx::AssertSqlSafe(short))
                        .execute(&mut *conn)
                        .await
                        .is_ok()
                        && sqlx::query("BEGIN IMMEDIATE")
                            .execute(&mut *conn)
                            .await
                            .is_ok();
                    if ok {
                        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                    }
                    let back = format!("PRAGMA busy_timeout = {}", self.lock_wait.as_millis());
                    if sqlx::query(sqlx::AssertSqlSafe(back))
                        .execute(&mut *conn)
                        .await
                        .is_err()
                    {
                        // Not back to its own bound: not back into the pool either.
                        let _ = conn.close().await;
                    }
                    ok
                }
            }
        };
        tokio::time::timeout(patience * 2, probe)
            .await
            .unwrap_or(false)
    }

    /// Closes all connections (used at shutdown).
    pub async fn close(&self) {
        if let Some(d) = &self.direct {
            d.close().await;
        }
        self.pool.close().await;
        if let Some(hot) = &self.hot {
            hot.close().await;
        }
    }
}

/// The client-side deadline of a PostgreSQL statement on the hot path: the server's
/// `statement_timeout` there (twice `timeout`, after the lock timeout, so a statement
/// waiting for a lock ends with the server's error) and a margin for its answer to arrive.
fn hot_deadline(timeout: Duration) -> Duration {
    timeout * 2 + (timeout / 4).max(Duration::from_millis(250))
}

/// A SQLite URL without options that change how the file is opened (another VFS, read-only,
/// immutable): the store's own connection opens the file as the pool does only then.
fn plain_sqlite_url(url: &str) -> bool {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    !query.split('&').any(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        matches!(k, "vfs" | "immutable") || (k == "mode" && v != "rwc" && v != "rw")
    })
}

/// The file of the pool's main database when the login path may run beside the pool on a
/// connection of its own: the journal is WAL (persistent in the file; with a rollback
/// journal every commit would need all readers gone). None otherwise.
async fn direct_path(pool: &AnyPool) -> Result<Option<std::path::PathBuf>> {
    let wal = sqlx::query("PRAGMA journal_mode")
        .fetch_one(pool)
        .await
        .and_then(|r| sqlx::Row::try_get::<String, _>(&r, 0))
        .is_ok_and(|m| m.eq_ignore_ascii_case("wal"));
    if !wal {
        return Ok(None);
    }
    // The path as SQLite itself resolved it for the pool.
    let file: Option<String> =
        sqlx::query("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_optional(pool)
            .await?
            .map(|r| sqlx::Row::try_get(&r, 0))
            .transpose()?;
    Ok(file.filter(|f| !f.is_empty()).map(std::path::PathBuf::from))
}

/// Errors worth retrying at start-up (the server is not up yet).
fn transient(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut)
        || e.as_database_error()
            .is_some_and(|d| d.code().is_some_and(|c| c == "57P03"))
}

/// Converts the 0/1 integers used for booleans.
fn flag(v: i64) -> bool {
    v != 0
}

#[cfg(test)]
mod tests;
