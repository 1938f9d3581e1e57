//! Whom a token belongs to: assigning and unassigning owners, copying an owner to another
//! token, revoking, and privacyIDEA's token realms (the realms a token belongs to besides
//! its owner's). Each change is one transaction; assigning is one conditional insert, so two
//! admins assigning the same token at once cannot both win.

use crate::{Result, Store, TokenOwner};
use sqlx::Row;
use std::collections::BTreeMap;

impl Store {
    /// Whether the user `resolver`/`user_id` owns any token, in any realm (a user whose
    /// resolver sits in several realms has their tokens under one of them).
    pub async fn user_has_tokens_anywhere(&self, resolver: &str, user_id: &str) -> Result<bool> {
        let row =
            sqlx::query("SELECT 1 FROM tokenowner WHERE resolver = $1 AND user_id = $2 LIMIT 1")
                .bind(resolver)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    /// The realms of tokens besides their owners', by token id (sorted).
    pub async fn token_realms(&self, ids: &[i64]) -> Result<BTreeMap<i64, Vec<String>>> {
        let mut out: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
        // Ids are integers, so inlining them is safe.
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT token_id, realm FROM tokenrealm WHERE token_id IN ({}) ORDER BY token_id, realm",
            ids.join(",")
        ));
        for r in sqlx::query(sql).fetch_all(&self.pool).await? {
            out.entry(r.try_get(0)?).or_default().push(r.try_get(1)?);
        }
        Ok(out)
    }

    /// Replaces the realms of token `id` besides its owner's.
    pub async fn token_set_realms(&self, id: i64, realms: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM tokenrealm WHERE token_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        add_realms(&mut tx, id, realms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Assigns token `id`, which must have no owner, to `owner`: false (nothing changed) when
    /// it has one. Resets the fail counter, sets the PIN hash when given, records
    /// `assignment_date` and ends challenges opened while the token had no owner.
    pub async fn token_assign(
        &self,
        id: i64,
        owner: &TokenOwner,
        pin_hash: Option<&str>,
        assigned_at: &str,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "INSERT INTO tokenowner (token_id, resolver, user_id, realm) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (token_id) DO NOTHING",
        )
        .bind(id)
        .bind(&owner.resolver)
        .bind(&owner.user_id)
        .bind(&owner.realm)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE token SET failcount = 0, pin_hash = COALESCE($2, pin_hash) WHERE id = $1",
        )
        .bind(id)
        .bind(pin_hash)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM challenge WHERE token_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO tokeninfo (token_id, key, value) VALUES ($1, 'assignment_date', $2) \
             ON CONFLICT (token_id, key) DO UPDATE SET value = excluded.value",
        )
        .bind(id)
        .bind(assigned_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Takes token `id` from its owner (false: it had none) as privacyIDEA does: the owner's
    /// realm stays a token realm, the PIN becomes `empty_pin_hash`, the fail counter 0; its
    /// open challenges end, so the former owner cannot finish a login with it. Unlike
    /// privacyIDEA, the token's own `phone` goes too (it reads its next owner's number from the
    /// user store until one is set): the former owner's phone must not receive the codes of
    /// whoever the token goes to next.
    pub async fn token_unassign(&self, id: i64, empty_pin_hash: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO tokenrealm (token_id, realm) SELECT token_id, realm FROM tokenowner \
             WHERE token_id = $1 ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let n = drop_owner(&mut tx, id, empty_pin_hash).await?;
        if n > 0 {
            sqlx::query("DELETE FROM tokeninfo WHERE token_id = $1 AND key = 'phone'")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO tokeninfo (token_id, key, value) VALUES ($1, 'dynamic_phone', 'True') \
                 ON CONFLICT (token_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Ends the open challenges of token `id` (its number changed: a code sent to the old
    /// one must not log in).
    pub async fn token_end_challenges(&self, id: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM challenge WHERE token_id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// privacyIDEA's `copyuser`: token `to` is taken from its owner (PIN `empty_pin_hash`,
    /// fail counter 0, challenges ended) and given the owner and the realms of token `from`.
    /// False when `from` has no owner (nothing changed).
    pub async fn token_copy_owner(&self, from: i64, to: i64, empty_pin_hash: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let owner =
            sqlx::query("SELECT resolver, user_id, realm FROM tokenowner WHERE token_id = $1")
                .bind(from)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(owner) = owner else {
            return Ok(false);
        };
        let realms: Vec<String> = sqlx::query("SELECT realm FROM tokenrealm WHERE token_id = $1")
            .bind(from)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()?;
        drop_owner(&mut tx, to, empty_pin_hash).await?;
        sqlx::query("DELETE FROM tokenrealm WHERE token_id = $1")
            .bind(to)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO tokenowner (token_id, resolver, user_id, realm) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (token_id) DO UPDATE SET resolver = excluded.resolver, \
             user_id = excluded.user_id, realm = excluded.realm",
        )
        .bind(to)
        .bind(owner.try_get::<String, _>(0)?)
        .bind(owner.try_get::<String, _>(1)?)
        .bind(owner.try_get::<String, _>(2)?)
        .execute(&mut *tx)
        .await?;
        add_realms(&mut tx, to, &realms).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Revokes token `id` for good (revoked, locked, disabled) and ends its open challenges;
    /// false when it was revoked already.
    pub async fn token_revoke(&self, id: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE token SET revoked = 1, locked = 1, active = 0 WHERE id = $1 AND revoked = 0",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM challenge WHERE token_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    }
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Token `id` loses its owner (how many owner rows went), its PIN becomes `empty_pin_hash`,
/// its fail counter 0 and its open challenges end.
async fn drop_owner(tx: &mut Tx, id: i64, empty_pin_hash: &str) -> Result<u64> {
    let n = sqlx::query("DELETE FROM tokenowner WHERE token_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    sqlx::query("UPDATE token SET failcount = 0, pin_hash = $2 WHERE id = $1")
        .bind(id)
        .bind(empty_pin_hash)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM challenge WHERE token_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(n)
}

/// Adds `realms` to the realms of token `id`.
async fn add_realms(tx: &mut Tx, id: i64, realms: &[String]) -> Result<()> {
    for realm in realms {
        sqlx::query(
            "INSERT INTO tokenrealm (token_id, realm) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(realm)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
