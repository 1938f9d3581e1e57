//! Throw-away databases for tests: every test gets its own, so tests run in parallel and on
//! both engines. PostgreSQL runs when `TEST_POSTGRES_URL` names a server (an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`); `scripts/test` sets it.

use crate::{Result, Store};
use sqlx::AnyConnection;
use sqlx::Connection;
use sqlx::any::install_default_drivers;

/// The environment variable naming the PostgreSQL server for tests.
pub const ENV: &str = "TEST_POSTGRES_URL";

/// The prefix of throw-away database names (`scripts/test` drops leftovers).
pub const PREFIX: &str = "otpgate_t_";

/// A new empty PostgreSQL database on the server of `admin_url`; returns its URL.
pub async fn fresh_postgres(admin_url: &str) -> Result<String> {
    install_default_drivers();
    let mut buf = [0u8; 8];
    getrandom_fill(&mut buf);
    let name = format!(
        "{PREFIX}{}",
        buf.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let mut conn = AnyConnection::connect(admin_url).await?;
    // The name is generated here from hex digits: no injection possible.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url, String::new()),
    };
    let server = base.rsplit_once('/').map_or(base, |(s, _)| s);
    Ok(format!("{server}/{name}{query}"))
}

fn getrandom_fill(buf: &mut [u8]) {
    // Uniqueness, not secrecy: the time and a counter are enough and need no extra crate.
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    #[allow(clippy::disallowed_methods)]
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mix = (t as u64)
        ^ N.fetch_add(1, Ordering::Relaxed).rotate_left(40)
        ^ u64::from(std::process::id()).rotate_left(20);
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (mix >> (8 * (i % 8))) as u8;
    }
}

/// The databases a test runs against: a SQLite file in `dir`, and a fresh PostgreSQL
/// database when [`ENV`] is set.
pub async fn stores(dir: &std::path::Path) -> Result<Vec<Store>> {
    let mut out = vec![
        Store::connect(&format!(
            "sqlite://{}?mode=rwc",
            dir.join("t.sqlite").display()
        ))
        .await?,
    ];
    if let Ok(admin) = std::env::var(ENV) {
        out.push(Store::connect(&fresh_postgres(&admin).await?).await?);
    }
    Ok(out)
}
