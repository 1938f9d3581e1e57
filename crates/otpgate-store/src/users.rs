//! Resolvers, realms and the editable internal user store.

use crate::{Result, Store, StoreError, flag};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A user store definition; `config` is the resolver's parameters as a JSON object.
#[derive(Debug, Clone)]
pub struct ResolverRow {
    /// Row id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// `passwdresolver`, `internalresolver` or `ldapresolver`.
    pub rtype: String,
    /// Parameters (JSON object text), without secrets.
    pub config: String,
    /// The sealed secret parameter (an LDAP resolver's `BINDPW`), or "".
    pub secret: String,
}

/// A realm and its resolvers (name, priority).
#[derive(Debug, Clone)]
pub struct RealmRow {
    /// Row id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// The default realm.
    pub is_default: bool,
    /// Resolver names with their priority.
    pub resolvers: Vec<(String, Option<i64>)>,
}

/// A user of the internal resolver.
#[derive(Debug, Clone, Default)]
pub struct InternalUserRow {
    /// Row id, the stable user id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Argon2id hash, empty when no password is set.
    pub password_hash: String,
    /// Given name.
    pub givenname: String,
    /// Surname.
    pub surname: String,
    /// Email.
    pub email: String,
    /// Mobile number (the SMS target of `dynamic_phone`).
    pub mobile: String,
    /// Phone number.
    pub phone: String,
    /// Free text.
    pub description: String,
}

fn resolver_row(r: &AnyRow) -> Result<ResolverRow> {
    Ok(ResolverRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        rtype: r.try_get(2)?,
        config: r.try_get(3)?,
        secret: r.try_get(4)?,
    })
}

/// An internal user from the columns `IUSER_COLS`, from either engine's row.
fn iuser_cols(r: &dyn crate::db::Cols) -> Result<InternalUserRow> {
    Ok(InternalUserRow {
        id: r.int(0)?,
        username: r.text(1)?,
        password_hash: r.text(2)?,
        givenname: r.text(3)?,
        surname: r.text(4)?,
        email: r.text(5)?,
        mobile: r.text(6)?,
        phone: r.text(7)?,
        description: r.text(8)?,
    })
}

/// [`Store::resolver_upsert`] on a connection (or in a transaction).
pub(crate) async fn resolver_upsert_in(
    c: &mut sqlx::AnyConnection,
    name: &str,
    rtype: &str,
    config: &str,
    secret: &str,
) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO resolver (name, rtype, config, secret) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET rtype = excluded.rtype, config = excluded.config, \
         secret = excluded.secret RETURNING id",
    )
    .bind(name)
    .bind(rtype)
    .bind(config)
    .bind(secret)
    .fetch_one(&mut *c)
    .await?;
    Ok(row.try_get(0)?)
}

/// [`Store::realm_set`] in a transaction.
pub(crate) async fn realm_set_in(
    c: &mut sqlx::AnyConnection,
    name: &str,
    resolvers: &[(i64, Option<i64>)],
) -> Result<i64> {
    let id: i64 = sqlx::query(
        "INSERT INTO realm (name, is_default) VALUES ($1, 0) ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
    )
    .bind(name)
    .fetch_one(&mut *c)
    .await?
    .try_get(0)?;
    sqlx::query("DELETE FROM realm_resolver WHERE realm_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    for (rid, prio) in resolvers {
        sqlx::query(
            "INSERT INTO realm_resolver (realm_id, resolver_id, priority) VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(*rid)
        .bind(*prio)
        .execute(&mut *c)
        .await?;
    }
    sqlx::query("UPDATE realm SET is_default = 1 WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM realm WHERE is_default = 1)")
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(id)
}

const IUSER_COLS: &str =
    "id, username, password_hash, givenname, surname, email, mobile, phone, description";

impl Store {
    /// Creates or updates a resolver with its sealed secret ("" for none); returns its id.
    pub async fn resolver_upsert(
        &self,
        name: &str,
        rtype: &str,
        config: &str,
        secret: &str,
    ) -> Result<i64> {
        resolver_upsert_in(
            &mut *self.pool.acquire().await?,
            name,
            rtype,
            config,
            secret,
        )
        .await
    }

    /// All resolvers by name.
    pub async fn resolver_list(&self) -> Result<Vec<ResolverRow>> {
        let rows =
            sqlx::query("SELECT id, name, rtype, config, secret FROM resolver ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(resolver_row).collect()
    }

    /// One resolver by name.
    pub async fn resolver_get(&self, name: &str) -> Result<Option<ResolverRow>> {
        let row =
            sqlx::query("SELECT id, name, rtype, config, secret FROM resolver WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(resolver_row).transpose()
    }

    /// Deletes a resolver that no realm uses; returns its id.
    pub async fn resolver_delete(&self, name: &str) -> Result<Option<i64>> {
        let used = sqlx::query(
            "SELECT r.name FROM realm r JOIN realm_resolver rr ON rr.realm_id = r.id \
             JOIN resolver s ON s.id = rr.resolver_id WHERE s.name = $1",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        if let Some(r) = used.first() {
            let realm: String = r.try_get(0)?;
            return Err(StoreError::InUse(format!(
                "The resolver '{name}' is still contained in realm '{realm}'."
            )));
        }
        let row = sqlx::query("DELETE FROM resolver WHERE name = $1 RETURNING id")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?)
    }

    /// Creates or replaces a realm with exactly `resolvers` (name, priority); returns its id.
    /// The first realm ever created becomes the default realm, as in privacyIDEA.
    pub async fn realm_set(&self, name: &str, resolvers: &[(i64, Option<i64>)]) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let id = realm_set_in(&mut tx, name, resolvers).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// All realms with their resolvers.
    pub async fn realm_list(&self) -> Result<Vec<RealmRow>> {
        let rows = sqlx::query(
            "SELECT r.id, r.name, r.is_default, s.name, rr.priority FROM realm r \
             LEFT JOIN realm_resolver rr ON rr.realm_id = r.id LEFT JOIN resolver s ON s.id = rr.resolver_id \
             ORDER BY r.name, rr.priority, s.name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<RealmRow> = Vec::new();
        for r in &rows {
            let id: i64 = r.try_get(0)?;
            if out.last().map(|x| x.id) != Some(id) {
                out.push(RealmRow {
                    id,
                    name: r.try_get(1)?,
                    is_default: flag(r.try_get(2)?),
                    resolvers: vec![],
                });
            }
            let resolver: Option<String> = r.try_get(3)?;
            if let (Some(last), Some(res)) = (out.last_mut(), resolver) {
                last.resolvers.push((res, r.try_get(4)?));
            }
        }
        Ok(out)
    }

    /// Deletes a realm; returns its id.
    pub async fn realm_delete(&self, name: &str) -> Result<Option<i64>> {
        let row = sqlx::query("DELETE FROM realm WHERE name = $1 RETURNING id")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?)
    }

    /// Makes `name` the default realm; returns its id, or None if it does not exist.
    pub async fn realm_set_default(&self, name: &str) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE realm SET is_default = CASE WHEN name = $1 THEN 1 ELSE 0 END")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query("SELECT id FROM realm WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        match row {
            Some(r) => {
                tx.commit().await?;
                Ok(Some(r.try_get(0)?))
            }
            None => Ok(None),
        }
    }

    /// Clears the default realm.
    pub async fn realm_clear_default(&self) -> Result<()> {
        sqlx::query("UPDATE realm SET is_default = 0")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Creates an internal user; returns the id, or a conflict if the name is taken.
    pub async fn iuser_create(&self, resolver_id: i64, u: &InternalUserRow) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO internal_user (resolver_id, username, password_hash, givenname, surname, email, mobile, phone, description) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (resolver_id, username) DO NOTHING RETURNING id",
        )
        .bind(resolver_id)
        .bind(&u.username)
        .bind(&u.password_hash)
        .bind(&u.givenname)
        .bind(&u.surname)
        .bind(&u.email)
        .bind(&u.mobile)
        .bind(&u.phone)
        .bind(&u.description)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(r.try_get(0)?),
            None => Err(StoreError::Conflict(format!(
                "The username {} already exists.",
                u.username
            ))),
        }
    }

    /// Updates the given internal user (all fields); false when it does not exist.
    pub async fn iuser_update(&self, resolver_id: i64, u: &InternalUserRow) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE internal_user SET password_hash = $3, givenname = $4, surname = $5, email = $6, mobile = $7, \
             phone = $8, description = $9 WHERE resolver_id = $1 AND username = $2",
        )
        .bind(resolver_id)
        .bind(&u.username)
        .bind(&u.password_hash)
        .bind(&u.givenname)
        .bind(&u.surname)
        .bind(&u.email)
        .bind(&u.mobile)
        .bind(&u.phone)
        .bind(&u.description)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Deletes an internal user; true when it existed.
    pub async fn iuser_delete(&self, resolver_id: i64, username: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM internal_user WHERE resolver_id = $1 AND username = $2")
            .bind(resolver_id)
            .bind(username)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// All users of an internal resolver.
    pub async fn iuser_list(&self, resolver_id: i64) -> Result<Vec<InternalUserRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {IUSER_COLS} FROM internal_user WHERE resolver_id = $1 ORDER BY username"
        ));
        let rows = sqlx::query(sql)
            .bind(resolver_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| iuser_cols(r)).collect()
    }

    /// One internal user by login name (on the login path: the store's hot path).
    pub async fn iuser_by_name(
        &self,
        resolver_id: i64,
        username: &str,
    ) -> Result<Option<InternalUserRow>> {
        let sql = format!(
            "SELECT {IUSER_COLS} FROM internal_user WHERE resolver_id = $1 AND username = $2"
        );
        self.row(&sql, &[resolver_id.into(), username.into()], iuser_cols)
            .await
    }

    /// One internal user by id.
    pub async fn iuser_by_id(&self, resolver_id: i64, id: i64) -> Result<Option<InternalUserRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {IUSER_COLS} FROM internal_user WHERE resolver_id = $1 AND id = $2"
        ));
        let row = sqlx::query(sql)
            .bind(resolver_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(|r| iuser_cols(r)).transpose()
    }
}
