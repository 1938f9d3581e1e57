//! Admins, the meta table (key check value) and the privacyIDEA-style system config.

use crate::{Result, Store};
use sqlx::Row;

/// What a new installation has besides its configuration (see [`Store::setup_progress`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetupProgress {
    /// Some internal user store has a user.
    pub internal_users: bool,
    /// Some SMS token exists.
    pub sms_tokens: bool,
    /// Some SMS token has been used in a successful login.
    pub sms_logins: bool,
}

impl Store {
    /// The password hash of admin `name`.
    pub async fn admin_hash(&self, name: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT password_hash FROM admin WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>(0)).transpose()?)
    }

    /// The local admins' names, sorted.
    pub async fn admin_names(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM admin ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()?)
    }

    /// Replaces admin `name`'s password hash `old` by `new` (the same password in another
    /// form: the time it was set stays); true when it was replaced.
    pub async fn admin_replace_hash(&self, name: &str, old: &str, new: &str) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE admin SET password_hash = $3 WHERE name = $1 AND password_hash = $2",
        )
        .bind(name)
        .bind(old)
        .bind(new)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Creates or replaces admin `name`; the password counts as set now.
    pub async fn admin_upsert(&self, name: &str, hash: &str, now_ms: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO admin (name, password_hash, created_at, password_changed_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET \
             password_hash = excluded.password_hash, password_changed_at = excluded.password_changed_at",
        )
        .bind(name)
        .bind(hash)
        .bind(now_ms)
        .bind(now_ms.div_euclid(1000))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// When admin `name`'s password was last set (Unix seconds; 0 before migration 13), or
    /// None when there is no such admin.
    pub async fn admin_password_changed_at(&self, name: &str) -> Result<Option<i64>> {
        let r = sqlx::query("SELECT password_changed_at FROM admin WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.map(|r| r.try_get::<i64, _>(0)).transpose()?)
    }

    /// Creates admin `name` only if no admin exists at all; true when it was created.
    pub async fn admin_create_first(&self, name: &str, hash: &str, now_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO admin (name, password_hash, created_at) SELECT $1, $2, $3 \
             WHERE NOT EXISTS (SELECT 1 FROM admin) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(hash)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A value of the meta table.
    pub async fn meta_get(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>(0)).transpose()?)
    }

    /// Sets a meta value unless it exists; returns the stored value.
    pub async fn meta_init(&self, key: &str, value: &str) -> Result<String> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        self.meta_get(key)
            .await?
            .ok_or(crate::StoreError::NotFound("meta value"))
    }

    /// How far a new installation has come after its configuration: whether any internal
    /// user and any SMS token exist (each the first row found), and, with `logins`, whether
    /// any SMS token was used in a successful login (`count_auth_success`: a scan of the
    /// token info until the first one — asked only once everything else is there). On the
    /// main pool: the console's, not the login path's.
    pub async fn setup_progress(&self, logins: bool) -> Result<SetupProgress> {
        let sms_logins = if logins {
            "CASE WHEN EXISTS (SELECT 1 FROM tokeninfo i JOIN token t ON t.id = i.token_id \
             WHERE t.tokentype = 'sms' AND i.key = 'count_auth_success') THEN 1 ELSE 0 END"
        } else {
            "0"
        };
        // Built from the literals above only.
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT \
             CASE WHEN EXISTS (SELECT 1 FROM internal_user) THEN 1 ELSE 0 END, \
             CASE WHEN EXISTS (SELECT 1 FROM token WHERE tokentype = 'sms') THEN 1 ELSE 0 END, \
             {sms_logins}"
        ));
        let r = sqlx::query(sql).fetch_one(&self.pool).await?;
        Ok(SetupProgress {
            internal_users: r.try_get::<i64, _>(0)? == 1,
            sms_tokens: r.try_get::<i64, _>(1)? == 1,
            sms_logins: r.try_get::<i64, _>(2)? == 1,
        })
    }

    /// The number that changes with every change to the system configuration, policies,
    /// realms, resolvers or SMS gateways (kept by triggers, migration 0007).
    pub async fn settings_version(&self) -> Result<i64> {
        self.row(
            "SELECT version FROM settings_version WHERE id = 1",
            &[],
            |r| r.int(0),
        )
        .await?
        .ok_or(crate::StoreError::NotFound("settings version"))
    }

    /// All system config entries as (key, value, type, description).
    pub async fn config_all(&self) -> Result<Vec<(String, String, String, String)>> {
        let rows = sqlx::query("SELECT key, value, ctype, description FROM config ORDER BY key")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect()
    }

    /// One config value.
    pub async fn config_get(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM config WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>(0)).transpose()?)
    }

    /// Sets a config value; true when it was inserted, false when updated.
    pub async fn config_set(
        &self,
        key: &str,
        value: &str,
        ctype: &str,
        description: &str,
    ) -> Result<bool> {
        let existed = sqlx::query(
            "UPDATE config SET value = $2, ctype = $3, description = $4 WHERE key = $1",
        )
        .bind(key)
        .bind(value)
        .bind(ctype)
        .bind(description)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0;
        if !existed {
            sqlx::query(
                "INSERT INTO config (key, value, ctype, description) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(value)
            .bind(ctype)
            .bind(description)
            .execute(&self.pool)
            .await?;
        }
        Ok(!existed)
    }

    /// Deletes a config value; true when it existed.
    pub async fn config_delete(&self, key: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM config WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }
}
