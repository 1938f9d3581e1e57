//! otpgate's storage: the only crate that writes SQL.
//!
//! One [`Store`] over an sqlx `AnyPool`, chosen by URL. Queries are runtime queries with
//! `$N` placeholders, written once for SQLite and PostgreSQL. Every state change that matters
//! for security (HOTP counter, fail counter, challenge consumption) is one conditional
//! statement, so it stays correct under concurrency and across nodes.

mod admin;
pub mod audit;
mod challenges;
mod gateways;
mod policies;
mod tokens;
mod users;

pub use audit::{AuditEntry, AuditFilter};
pub use challenges::ChallengeRow;
pub use gateways::{GatewayOptionRow, GatewayRow};
pub use policies::PolicyRow;
pub use tokens::{NewToken, TokenFilter, TokenOwner, TokenRow};
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
}

impl StoreError {
    /// True when the database itself is unavailable (not a logic error).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::Io(_)
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
            )
        )
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, StoreError>;

/// The database handle shared by all services. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
}

fn sqlite_migrations() -> Vec<Migration> {
    vec![Migration::new(
        1,
        "init".into(),
        MigrationType::Simple,
        include_str!("../migrations/sqlite/0001_init.sql").into_sql_str(),
        false,
    )]
}

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `sqlite::memory:`) and applies the schema.
    pub async fn connect(url: &str) -> Result<Self> {
        install_default_drivers();
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let is_sqlite = url.starts_with("sqlite:");
        if !is_sqlite {
            return Err(StoreError::Conflict(format!(
                "unsupported database URL scheme in {:?}: this build supports sqlite: URLs",
                url.split(':').next().unwrap_or_default()
            )));
        }
        let pool = AnyPoolOptions::new()
            // An in-memory SQLite database exists once per connection.
            .max_connections(if memory { 1 } else { 8 })
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        if !memory {
            // WAL lets readers proceed while one writer commits; it persists in the file.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        Migrator::with_migrations(sqlite_migrations())
            .run(&pool)
            .await?;
        Ok(Self { pool })
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Closes all connections (used at shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Converts the 0/1 integers used for booleans.
fn flag(v: i64) -> bool {
    v != 0
}

#[cfg(test)]
mod tests;
