//! Reading a privacyIDEA database (SQLite, MySQL/MariaDB or PostgreSQL), for
//! `otpgate import privacyidea`. Read only: nothing is ever written to it.
//!
//! Every column is read as text (NULL: absent), so one reader serves the three engines and
//! the privacyIDEA versions whose tables lack a newer column (the columns are discovered
//! first). The meaning of the rows is the service's business (`otpgate_service::import`).

use crate::{Result, StoreError};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};
use std::collections::BTreeMap;
use std::time::Duration;

/// One row: column name → text (NULL columns are absent).
pub type PiRow = BTreeMap<String, String>;

/// The tables read, with the columns wanted (those the source lacks are left out).
pub const PI_TABLES: &[(&str, &[&str])] = &[
    (
        "token",
        &[
            "id",
            "description",
            "serial",
            "tokentype",
            "pin_seed",
            "otplen",
            "pin_hash",
            "key_enc",
            "key_iv",
            "maxfail",
            "active",
            "revoked",
            "locked",
            "failcount",
            "count",
            "count_window",
            "sync_window",
            "rollout_state",
        ],
    ),
    ("tokeninfo", &["token_id", "Key", "Value", "Type"]),
    (
        "tokenowner",
        &["token_id", "resolver", "user_id", "realm_id"],
    ),
    ("tokenrealm", &["token_id", "realm_id"]),
    ("realm", &["id", "name", "default"]),
    ("resolver", &["id", "name", "rtype"]),
    ("resolverconfig", &["resolver_id", "Key", "Value", "Type"]),
    (
        "resolverrealm",
        &["resolver_id", "realm_id", "priority", "node_uuid"],
    ),
    (
        "smsgateway",
        &["id", "identifier", "description", "providermodule"],
    ),
    (
        "smsgatewayoption",
        &["gateway_id", "Key", "Value", "Type", "Encrypted"],
    ),
    (
        "smtpserver",
        &[
            "identifier",
            "server",
            "port",
            "username",
            "password",
            "sender",
            "tls",
            "description",
            "timeout",
            "enqueue_job",
            "smime",
        ],
    ),
    (
        "radiusserver",
        &[
            "identifier",
            "server",
            "port",
            "secret",
            "dictionary",
            "description",
            "timeout",
            "retries",
        ],
    ),
    (
        "policy",
        &[
            "id",
            "active",
            "check_all_resolvers",
            "name",
            "user_case_insensitive",
            "scope",
            "action",
            "realm",
            "adminrealm",
            "adminuser",
            "resolver",
            "pinode",
            "user",
            "client",
            "time",
            "user_agents",
            "priority",
        ],
    ),
    (
        "policycondition",
        &[
            "policy_id",
            "section",
            "Key",
            "comparator",
            "Value",
            "active",
            "handle_missing_data",
        ],
    ),
    ("description", &["object_id", "object_type", "description"]),
    (
        "eventhandler",
        &[
            "id",
            "name",
            "active",
            "ordering",
            "position",
            "event",
            "handlermodule",
            "action",
        ],
    ),
    (
        "eventhandleroption",
        &["eventhandler_id", "Key", "Value", "Type"],
    ),
    (
        "eventhandlercondition",
        &["eventhandler_id", "Key", "Value"],
    ),
    ("config", &["Key", "Value", "Type", "Description"]),
    ("admin", &["username", "password", "email"]),
];

/// The tables every privacyIDEA 3 database has; the others may be missing in old ones.
const REQUIRED: &[&str] = &[
    "token",
    "tokeninfo",
    "tokenowner",
    "realm",
    "resolver",
    "config",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Sqlite,
    Postgres,
    MySql,
}

/// An open privacyIDEA database.
pub struct PiSource {
    pool: AnyPool,
    engine: Engine,
}

/// privacyIDEA's `SQLALCHEMY_DATABASE_URI` as a URL the reader opens: the driver suffix
/// (`mysql+pymysql`, `postgresql+psycopg2`) dropped, SQLite opened read only, the MySQL
/// parameters sqlx does not know (`charset`) left out.
pub fn source_url(sqlalchemy: &str) -> Result<String> {
    let uri = sqlalchemy.trim();
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| {
        StoreError::Conflict(format!("not a database URL: {}", crate::redact_url(uri)))
    })?;
    let base = scheme
        .split('+')
        .next()
        .unwrap_or(scheme)
        .to_ascii_lowercase();
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let keep = |allowed: &[&str]| -> String {
        let kept: Vec<&str> = query
            .unwrap_or_default()
            .split('&')
            .filter(|p| {
                let k = p.split('=').next().unwrap_or_default();
                let k = if k == "unix_socket" { "socket" } else { k };
                !p.is_empty() && allowed.contains(&k)
            })
            .collect();
        if kept.is_empty() {
            String::new()
        } else {
            format!("?{}", kept.join("&"))
        }
    };
    match base.as_str() {
        // sqlite:////abs/path and sqlite:///relative: the path after the third slash.
        "sqlite" => {
            let path = rest.strip_prefix('/').unwrap_or(rest);
            if path.is_empty() {
                return Err(StoreError::Conflict(
                    "an in-memory SQLite database cannot be imported".into(),
                ));
            }
            Ok(format!("sqlite://{path}?mode=ro"))
        }
        "postgres" | "postgresql" => Ok(format!(
            "postgres://{rest}{}",
            keep(&["sslmode", "sslrootcert", "host", "port", "options"])
        )),
        // pymysql's unix_socket is sqlx's socket.
        "mysql" | "mariadb" => Ok(format!(
            "mysql://{rest}{}",
            keep(&["ssl-mode", "ssl-ca", "socket"]).replace("unix_socket=", "socket=")
        )),
        other => Err(StoreError::Conflict(format!(
            "unsupported privacyIDEA database {other}: SQLite, MySQL/MariaDB and PostgreSQL are read"
        ))),
    }
}

impl PiSource {
    /// Opens the database at `url` (a URL as [`source_url`] makes).
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else if url.starts_with("postgres") {
            Engine::Postgres
        } else if url.starts_with("mysql:") {
            Engine::MySql
        } else {
            return Err(StoreError::Conflict(format!(
                "unsupported database URL {}",
                crate::redact_url(url)
            )));
        };
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self { pool, engine })
    }

    fn quote(&self, ident: &str) -> String {
        match self.engine {
            Engine::MySql => format!("`{ident}`"),
            _ => format!("\"{ident}\""),
        }
    }

    /// The columns `table` has (lower case), empty when there is no such table.
    async fn columns(&self, table: &str) -> Result<Vec<String>> {
        let rows = match self.engine {
            Engine::Sqlite => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT name FROM pragma_table_info('{table}')"
                )))
                .fetch_all(&self.pool)
                .await?
            }
            Engine::Postgres => {
                sqlx::query(
                    "SELECT CAST(column_name AS TEXT) FROM information_schema.columns \
                     WHERE table_name = $1 AND table_schema = current_schema()",
                )
                .bind(table)
                .fetch_all(&self.pool)
                .await?
            }
            Engine::MySql => {
                sqlx::query(
                    "SELECT CAST(column_name AS CHAR) FROM information_schema.columns \
                     WHERE table_name = ? AND table_schema = DATABASE()",
                )
                .bind(table)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>(0)?.to_ascii_lowercase()))
            .collect()
    }

    /// Every table of [`PI_TABLES`], each column as text. A required table that is missing
    /// means this is not a privacyIDEA database.
    pub async fn read_all(&self) -> Result<BTreeMap<&'static str, Vec<PiRow>>> {
        let mut out = BTreeMap::new();
        for (table, wanted) in PI_TABLES {
            let have = self.columns(table).await?;
            if have.is_empty() {
                if REQUIRED.contains(table) {
                    return Err(StoreError::Conflict(format!(
                        "this is not a privacyIDEA database: it has no table {table}"
                    )));
                }
                out.insert(*table, Vec::new());
                continue;
            }
            let cols: Vec<&str> = wanted
                .iter()
                .copied()
                .filter(|c| have.contains(&c.to_ascii_lowercase()))
                .collect();
            let text = |c: &str| {
                let q = self.quote(c);
                match self.engine {
                    Engine::MySql => format!("CAST({q} AS CHAR)"),
                    // PostgreSQL booleans read as true/false, SQLite's and MySQL's as 1/0.
                    _ => format!("CAST({q} AS TEXT)"),
                }
            };
            let select: Vec<String> = cols.iter().map(|c| text(c)).collect();
            let sql = format!("SELECT {} FROM {}", select.join(", "), self.quote(table));
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(&self.pool)
                .await?;
            let mut list = Vec::with_capacity(rows.len());
            for r in &rows {
                let mut row = PiRow::new();
                for (i, c) in cols.iter().enumerate() {
                    if let Some(v) = r.try_get::<Option<String>, _>(i)? {
                        row.insert((*c).to_owned(), v);
                    }
                }
                list.push(row);
            }
            out.insert(*table, list);
        }
        Ok(out)
    }

    /// Closes the connection.
    pub async fn close(self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::source_url;

    #[test]
    fn sqlalchemy_urls_become_reader_urls() {
        assert_eq!(
            source_url("sqlite:////etc/privacyidea/data.sqlite").unwrap(),
            "sqlite:///etc/privacyidea/data.sqlite?mode=ro"
        );
        assert_eq!(
            source_url("mysql+pymysql://pi:secret@localhost/pi?charset=utf8").unwrap(),
            "mysql://pi:secret@localhost/pi"
        );
        assert_eq!(
            source_url("postgresql+psycopg2://pi:pw@db:5432/pi?sslmode=require").unwrap(),
            "postgres://pi:pw@db:5432/pi?sslmode=require"
        );
        assert_eq!(
            source_url(
                "mysql+pymysql://pi@localhost/pi?unix_socket=/run/mysqld/mysqld.sock&charset=utf8"
            )
            .unwrap(),
            "mysql://pi@localhost/pi?socket=/run/mysqld/mysqld.sock"
        );
        assert!(source_url("oracle://x/y").is_err());
        assert!(source_url("sqlite://").is_err());
        assert!(source_url("nonsense").is_err());
    }
}
