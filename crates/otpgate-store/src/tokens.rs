//! Tokens, their info and owners. Counter and fail-counter changes are single conditional
//! statements.

use crate::db::Cols;
use crate::{Result, Store, StoreError, flag};
use sqlx::Row;
use std::collections::BTreeMap;

/// A token with its info and owner.
#[derive(Debug, Clone)]
pub struct TokenRow {
    /// Row id.
    pub id: i64,
    /// Unique serial.
    pub serial: String,
    /// `sms`.
    pub tokentype: String,
    /// Free text.
    pub description: String,
    /// The sealed HOTP key.
    pub key_enc: String,
    /// Argon2id hash of the OTP PIN.
    pub pin_hash: String,
    /// OTP digits.
    pub otplen: i64,
    /// Enabled.
    pub active: bool,
    /// Revoked.
    pub revoked: bool,
    /// Locked.
    pub locked: bool,
    /// Failed attempts.
    pub failcount: i64,
    /// Lockout threshold.
    pub maxfail: i64,
    /// HOTP counter.
    pub count: i64,
    /// Look-ahead window.
    pub count_window: i64,
    /// Resync window.
    pub sync_window: i64,
    /// privacyIDEA's rollout state.
    pub rollout_state: String,
    /// Token info key/values.
    pub info: BTreeMap<String, String>,
    /// The owner, if assigned.
    pub owner: Option<TokenOwner>,
}

impl TokenRow {
    /// What decides whether the token can be used (the one rule lives in core).
    pub fn state(&self) -> otpgate_core::token::TokenState<'_> {
        otpgate_core::token::TokenState {
            active: self.active,
            revoked: self.revoked,
            failcount: self.failcount,
            maxfail: self.maxfail,
            rollout_state: &self.rollout_state,
        }
    }
}

/// Who a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    /// Resolver name.
    pub resolver: String,
    /// Stable user id within the resolver.
    pub user_id: String,
    /// Realm name.
    pub realm: String,
}

/// A token to insert.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Unique serial.
    pub serial: String,
    /// Token type.
    pub tokentype: String,
    /// Free text.
    pub description: String,
    /// Sealed key.
    pub key_enc: String,
    /// PIN hash.
    pub pin_hash: String,
    /// Digits.
    pub otplen: i64,
    /// Lockout threshold.
    pub maxfail: i64,
    /// Look-ahead window.
    pub count_window: i64,
    /// Resync window.
    pub sync_window: i64,
    /// Rollout state.
    pub rollout_state: String,
    /// Token info.
    pub info: BTreeMap<String, String>,
    /// Owner.
    pub owner: Option<TokenOwner>,
}

/// Filters of the token list (all optional, combined with AND).
#[derive(Debug, Clone, Default)]
pub struct TokenFilter {
    /// Exact serial, or a pattern with `*`.
    pub serial: Option<String>,
    /// Token type.
    pub tokentype: Option<String>,
    /// Owner.
    pub owner: Option<TokenOwner>,
    /// Realm: the owner's, or one of the token's own realms.
    pub realm: Option<String>,
    /// Enabled state.
    pub active: Option<bool>,
    /// Assigned to a user or not.
    pub assigned: Option<bool>,
    /// Token info key and value (value may contain `*`).
    pub info: Option<(String, String)>,
    /// Description pattern.
    pub description: Option<String>,
    /// Only tokens an admin reaches: one of these (None: all; an empty list: none).
    pub reach: Option<Vec<ReachFilter>>,
}

/// What one admin policy reaches, for a token listing: the owner's realm (or one of the
/// token's own realms) among `realms`, its resolver among `resolvers`, the owner among
/// `owners` (empty lists: any; `owners` None: any).
#[derive(Debug, Clone, Default)]
pub struct ReachFilter {
    /// Realms.
    pub realms: Vec<String>,
    /// Resolvers.
    pub resolvers: Vec<String>,
    /// Owners (the policy's users, resolved).
    pub owners: Option<Vec<TokenOwner>>,
    /// Owners the policy excludes (`-bob`, `!bob`, resolved): their tokens are not listed.
    pub excluded: Vec<TokenOwner>,
}

const TOKEN_COLS: &str = "t.id, t.serial, t.tokentype, t.description, t.key_enc, t.pin_hash, t.otplen, t.active, \
    t.revoked, t.locked, t.failcount, t.maxfail, t.count, t.count_window, t.sync_window, t.rollout_state, \
    o.resolver, o.user_id, o.realm";

/// One token with its owner, by serial.
static BY_SERIAL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {TOKEN_COLS} FROM token t LEFT JOIN tokenowner o ON o.token_id = t.id WHERE t.serial = $1"
    )
});

/// A user's tokens, one row per token and info key (LEFT JOIN: a token without info too).
static OF_USER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {TOKEN_COLS}, i.key, i.value FROM token t JOIN tokenowner o ON o.token_id = t.id \
         LEFT JOIN tokeninfo i ON i.token_id = t.id \
         WHERE o.realm = $1 AND o.resolver = $2 AND o.user_id = $3 ORDER BY t.tokentype, t.id, i.key"
    )
});

pub(crate) fn token_row(r: &dyn Cols) -> Result<TokenRow> {
    let resolver = r.opt_text(16)?;
    let owner = match resolver {
        Some(resolver) => Some(TokenOwner {
            resolver,
            user_id: r.text(17)?,
            realm: r.text(18)?,
        }),
        None => None,
    };
    Ok(TokenRow {
        id: r.int(0)?,
        serial: r.text(1)?,
        tokentype: r.text(2)?,
        description: r.text(3)?,
        key_enc: r.text(4)?,
        pin_hash: r.text(5)?,
        otplen: r.int(6)?,
        active: flag(r.int(7)?),
        revoked: flag(r.int(8)?),
        locked: flag(r.int(9)?),
        failcount: r.int(10)?,
        maxfail: r.int(11)?,
        count: r.int(12)?,
        count_window: r.int(13)?,
        sync_window: r.int(14)?,
        rollout_state: r.text(15)?,
        info: BTreeMap::new(),
        owner,
    })
}

/// The outcome of [`Store::token_reserve_attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    /// Reserved: the fail counter and its maximum.
    Reserved(i64, i64),
    /// The fail counter is at its maximum (locked out).
    Saturated,
    /// The verify back-off holds the token until then (ms).
    BackOff {
        /// When the next attempt may come.
        until_ms: i64,
    },
}

/// [`Store::token_auth_success`]: $1 token, $2 the least counter.
pub(crate) const AUTH_SUCCESS: &str = "UPDATE token SET failcount = 0, \
     count = CASE WHEN count < $2 THEN $2 ELSE count END WHERE id = $1";

/// [`Store::token_count_auth`] after a success: $1 token, $2 `last_auth`.
pub(crate) const COUNT_AUTH_SUCCESS: &str = "INSERT INTO tokeninfo (token_id, key, value) \
     VALUES ($1, 'count_auth', '1'), ($1, 'count_auth_success', '1'), ($1, 'last_auth', $2) \
     ON CONFLICT (token_id, key) DO UPDATE SET value = CASE WHEN excluded.key = 'last_auth' \
     THEN excluded.value ELSE CAST(CAST(tokeninfo.value AS BIGINT) + 1 AS TEXT) END";

/// Advances the HOTP counter of token `$1` if it may send a challenge; returns the new count.
pub(crate) const NEXT_COUNTER: &str = "UPDATE token SET count = count + 1 WHERE id = $1 AND active = 1 AND revoked = 0 \
     AND failcount < maxfail RETURNING count";

/// [`Store::token_insert`] in a transaction.
pub(crate) async fn token_insert_in(
    c: &mut sqlx::AnyConnection,
    t: &NewToken,
    now_ms: i64,
) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO token (serial, tokentype, description, key_enc, pin_hash, otplen, maxfail, count_window, \
         sync_window, rollout_state, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (serial) DO NOTHING RETURNING id",
    )
    .bind(&t.serial)
    .bind(&t.tokentype)
    .bind(&t.description)
    .bind(&t.key_enc)
    .bind(&t.pin_hash)
    .bind(t.otplen)
    .bind(t.maxfail)
    .bind(t.count_window)
    .bind(t.sync_window)
    .bind(&t.rollout_state)
    .bind(now_ms)
    .fetch_optional(&mut *c)
    .await?;
    let Some(row) = row else {
        return Err(StoreError::Conflict(format!(
            "A token with the serial {} already exists.",
            t.serial
        )));
    };
    let id: i64 = row.try_get(0)?;
    for (k, v) in &t.info {
        sqlx::query("INSERT INTO tokeninfo (token_id, key, value) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(k)
            .bind(v)
            .execute(&mut *c)
            .await?;
    }
    if let Some(o) = &t.owner {
        sqlx::query(
            "INSERT INTO tokenowner (token_id, resolver, user_id, realm) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(&o.resolver)
        .bind(&o.user_id)
        .bind(&o.realm)
        .execute(&mut *c)
        .await?;
    }
    Ok(id)
}

impl Store {
    async fn attach_info(&self, mut tokens: Vec<TokenRow>) -> Result<Vec<TokenRow>> {
        if tokens.is_empty() {
            return Ok(tokens);
        }
        let ids: Vec<String> = tokens.iter().map(|t| t.id.to_string()).collect();
        // Ids are integers from the database, so inlining them is safe.
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT token_id, key, value FROM tokeninfo WHERE token_id IN ({}) ORDER BY token_id, key",
            ids.join(",")
        ));
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        for r in &rows {
            let id: i64 = r.try_get(0)?;
            if let Some(t) = tokens.iter_mut().find(|t| t.id == id) {
                t.info.insert(r.try_get(1)?, r.try_get(2)?);
            }
        }
        Ok(tokens)
    }

    /// Inserts a token with its info and owner; a conflict if the serial exists.
    pub async fn token_insert(&self, t: &NewToken, now_ms: i64) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let id = token_insert_in(&mut tx, t, now_ms).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Re-initialises an existing token (privacyIDEA's `/token/init` on a known serial): new
    /// key and settings, counters reset, challenges dropped, the given info replaced, and the
    /// owner set when it had none.
    #[allow(clippy::too_many_arguments)]
    pub async fn token_reinit(
        &self,
        id: i64,
        key_enc: &str,
        pin_hash: Option<&str>,
        otplen: i64,
        description: &str,
        info: &BTreeMap<String, String>,
        drop_info: &[&str],
        owner: Option<&TokenOwner>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE token SET key_enc = $2, otplen = $3, description = $4, count = 0, failcount = 0, \
             rollout_state = 'enrolled' WHERE id = $1",
        )
        .bind(id)
        .bind(key_enc)
        .bind(otplen)
        .bind(description)
        .execute(&mut *tx)
        .await?;
        if let Some(h) = pin_hash {
            sqlx::query("UPDATE token SET pin_hash = $2 WHERE id = $1")
                .bind(id)
                .bind(h)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM challenge WHERE token_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for k in drop_info
            .iter()
            .copied()
            .chain(info.keys().map(String::as_str))
        {
            sqlx::query("DELETE FROM tokeninfo WHERE token_id = $1 AND key = $2")
                .bind(id)
                .bind(k)
                .execute(&mut *tx)
                .await?;
        }
        for (k, v) in info {
            sqlx::query("INSERT INTO tokeninfo (token_id, key, value) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(k)
                .bind(v)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(o) = owner {
            sqlx::query(
                "INSERT INTO tokenowner (token_id, resolver, user_id, realm) VALUES ($1, $2, $3, $4) ON CONFLICT (token_id) DO NOTHING",
            )
            .bind(id)
            .bind(&o.resolver)
            .bind(&o.user_id)
            .bind(&o.realm)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// One token by serial, with info and owner.
    pub async fn token_by_serial(&self, serial: &str) -> Result<Option<TokenRow>> {
        let Some(mut t) = self.row(&BY_SERIAL, &[serial.into()], token_row).await? else {
            return Ok(None);
        };
        for (k, v) in self
            .rows(
                "SELECT key, value FROM tokeninfo WHERE token_id = $1 ORDER BY key",
                &[t.id.into()],
                |r| Ok((r.text(0)?, r.text(1)?)),
            )
            .await?
        {
            t.info.insert(k, v);
        }
        Ok(Some(t))
    }

    /// All tokens of a user, ordered by serial, with their info: one statement (the login
    /// path's first read).
    pub async fn tokens_of_user(&self, owner: &TokenOwner) -> Result<Vec<TokenRow>> {
        // One row per token and info key: the token's columns, then the key and value.
        let mut tokens: Vec<TokenRow> = Vec::new();
        let args = [
            (&owner.realm).into(),
            (&owner.resolver).into(),
            (&owner.user_id).into(),
        ];
        self.each(&OF_USER, &args, |r| {
            let id = r.int(0)?;
            if tokens.last().map(|t| t.id) != Some(id) {
                tokens.push(token_row(r)?);
            }
            if let (Some(key), Some(t)) = (r.opt_text(19)?, tokens.last_mut()) {
                t.info.insert(key, r.opt_text(20)?.unwrap_or_default());
            }
            Ok(())
        })
        .await?;
        Ok(tokens)
    }

    /// A page of tokens matching `f` (page counts from 1) and the total count.
    pub async fn token_list(
        &self,
        f: &TokenFilter,
        page: i64,
        pagesize: i64,
        order: &str,
    ) -> Result<(Vec<TokenRow>, i64)> {
        let mut wh: Vec<String> = vec!["1 = 1".into()];
        let mut binds: Vec<String> = Vec::new();
        let push = |cond: &str, val: String, binds: &mut Vec<String>| {
            binds.push(val);
            cond.replace('?', &format!("${}", binds.len()))
        };
        if let Some(s) = &f.serial {
            wh.push(push(
                &crate::ilike("t.serial"),
                crate::like_pattern(s),
                &mut binds,
            ));
        }
        if let Some(s) = &f.tokentype {
            wh.push(push("LOWER(t.tokentype) = LOWER(?)", s.clone(), &mut binds));
        }
        if let Some(s) = &f.description {
            wh.push(push(
                &crate::ilike("t.description"),
                crate::like_pattern(s),
                &mut binds,
            ));
        }
        if let Some(o) = &f.owner {
            wh.push(push("o.realm = ?", o.realm.clone(), &mut binds));
            wh.push(push("o.resolver = ?", o.resolver.clone(), &mut binds));
            wh.push(push("o.user_id = ?", o.user_id.clone(), &mut binds));
        }
        if let Some(r) = &f.realm {
            // The owner's realm or one of the token's own realms.
            let owner = push("o.realm = ?", r.clone(), &mut binds);
            let own = push("tr.realm = ?", r.clone(), &mut binds);
            wh.push(format!(
                "({owner} OR EXISTS (SELECT 1 FROM tokenrealm tr WHERE tr.token_id = t.id AND {own}))"
            ));
        }
        if let Some((k, v)) = &f.info {
            let kc = push("i.key = ?", k.clone(), &mut binds);
            let vc = push(&crate::ilike("i.value"), crate::like_pattern(v), &mut binds);
            wh.push(format!(
                "EXISTS (SELECT 1 FROM tokeninfo i WHERE i.token_id = t.id AND {kc} AND {vc})"
            ));
        }
        if let Some(reaches) = &f.reach {
            let mut any = Vec::with_capacity(reaches.len());
            for r in reaches {
                let mut all = Vec::new();
                let one_of = |col: &str, vals: &[String], binds: &mut Vec<String>| {
                    let marks: Vec<String> =
                        vals.iter().map(|v| push("?", v.clone(), binds)).collect();
                    format!("{col} IN ({})", marks.join(", "))
                };
                if !r.realms.is_empty() {
                    let owner = one_of("o.realm", &r.realms, &mut binds);
                    let own = one_of("rr.realm", &r.realms, &mut binds);
                    all.push(format!(
                        "({owner} OR EXISTS (SELECT 1 FROM tokenrealm rr WHERE rr.token_id = t.id AND {own}))"
                    ));
                }
                if !r.resolvers.is_empty() {
                    all.push(one_of("o.resolver", &r.resolvers, &mut binds));
                }
                if let Some(owners) = &r.owners {
                    let each: Vec<String> = owners
                        .iter()
                        .map(|o| {
                            format!(
                                "({} AND {} AND {})",
                                push("o.realm = ?", o.realm.clone(), &mut binds),
                                push("o.resolver = ?", o.resolver.clone(), &mut binds),
                                push("o.user_id = ?", o.user_id.clone(), &mut binds)
                            )
                        })
                        .collect();
                    all.push(if each.is_empty() {
                        "1 = 0".into()
                    } else {
                        format!("({})", each.join(" OR "))
                    });
                }
                for o in &r.excluded {
                    // A token without owner is nobody excluded.
                    all.push(format!(
                        "NOT ({} AND {} AND {})",
                        push("COALESCE(o.realm, '') = ?", o.realm.clone(), &mut binds),
                        push(
                            "COALESCE(o.resolver, '') = ?",
                            o.resolver.clone(),
                            &mut binds
                        ),
                        push("COALESCE(o.user_id, '') = ?", o.user_id.clone(), &mut binds)
                    ));
                }
                any.push(if all.is_empty() {
                    "1 = 1".to_owned()
                } else {
                    all.join(" AND ")
                });
            }
            wh.push(if any.is_empty() {
                "1 = 0".to_owned()
            } else {
                format!("({})", any.join(" OR "))
            });
        }
        if let Some(a) = f.active {
            wh.push(format!("t.active = {}", i64::from(a)));
        }
        if let Some(a) = f.assigned {
            wh.push(if a {
                "o.token_id IS NOT NULL".into()
            } else {
                "o.token_id IS NULL".into()
            });
        }
        let where_sql = wh.join(" AND ");
        let count_sql = sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM token t LEFT JOIN tokenowner o ON o.token_id = t.id WHERE {where_sql}"
        ));
        let mut q = sqlx::query(count_sql);
        for b in &binds {
            q = q.bind(b.clone());
        }
        let total: i64 = q.fetch_one(&self.pool).await?.try_get(0)?;
        let list_sql = sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLS} FROM token t LEFT JOIN tokenowner o ON o.token_id = t.id WHERE {where_sql} \
             ORDER BY {order} LIMIT {} OFFSET {}",
            pagesize.max(1),
            (page.max(1) - 1).saturating_mul(pagesize.max(1))
        ));
        let mut q = sqlx::query(list_sql);
        for b in &binds {
            q = q.bind(b.clone());
        }
        let rows = q.fetch_all(&self.pool).await?;
        let tokens = rows
            .iter()
            .map(|r| token_row(r))
            .collect::<Result<Vec<_>>>()?;
        Ok((self.attach_info(tokens).await?, total))
    }

    /// Deletes a token (and its info, owner and challenges); true when it existed.
    pub async fn token_delete(&self, id: i64) -> Result<bool> {
        let n = sqlx::query("DELETE FROM token WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// Enables or disables a token; true when the state changed.
    pub async fn token_set_active(&self, id: i64, active: bool) -> Result<bool> {
        let n = sqlx::query("UPDATE token SET active = $2 WHERE id = $1 AND active <> $2")
            .bind(id)
            .bind(i64::from(active))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// Resets the fail counter and removes the `failcounter_exceeded` info.
    pub async fn token_reset_failcount(&self, id: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.exec("UPDATE token SET failcount = 0 WHERE id = $1", &[id.into()])
            .await?;
        tx.exec(
            "DELETE FROM tokeninfo WHERE token_id = $1 AND key IN ('failcounter_exceeded', 'failcounter_clears')",
            &[id.into()],
        )
        .await?;
        tx.commit().await
    }

    /// Lifts a lockout if the fail counter is still `failcount` (nobody counted a failure
    /// since it was read), and records in token info `count_key` that it was the
    /// `count`-th lifted in a row; true when it was lifted.
    pub async fn token_clear_lockout(
        &self,
        id: i64,
        failcount: i64,
        count_key: &str,
        count: i64,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("UPDATE token SET failcount = 0 WHERE id = $1 AND failcount = $2")
            .bind(id)
            .bind(failcount)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 1 {
            sqlx::query(
                "DELETE FROM tokeninfo WHERE token_id = $1 AND key = 'failcounter_exceeded'",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO tokeninfo (token_id, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (token_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(id)
            .bind(count_key)
            .bind(count.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Replaces the PIN hash `old` by `new` (one conditional statement: a PIN set meanwhile
    /// stays); true when it was replaced.
    pub async fn token_replace_pin_hash(&self, id: i64, old: &str, new: &str) -> Result<bool> {
        let n = sqlx::query("UPDATE token SET pin_hash = $3 WHERE id = $1 AND pin_hash = $2")
            .bind(id)
            .bind(old)
            .bind(new)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Replaces the PIN hash.
    pub async fn token_set_pin(&self, id: i64, pin_hash: &str) -> Result<()> {
        sqlx::query("UPDATE token SET pin_hash = $2 WHERE id = $1")
            .bind(id)
            .bind(pin_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sets the given attributes (lockout threshold, look-ahead window, description) in one
    /// statement; absent ones keep their value.
    pub async fn token_set_attributes(
        &self,
        id: i64,
        maxfail: Option<i64>,
        count_window: Option<i64>,
        description: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE token SET maxfail = COALESCE($2, maxfail), count_window = COALESCE($3, count_window), \
             description = COALESCE($4, description) WHERE id = $1",
        )
        .bind(id)
        .bind(maxfail)
        .bind(count_window)
        .bind(description)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Counts an authentication attempt in the token info (`count_auth`, and on success
    /// `count_auth_success` and `last_auth`) with one atomic upsert.
    pub async fn token_count_auth(&self, id: i64, success: bool, last_auth: &str) -> Result<()> {
        // One statement: `count_auth` (+1), and after a success `count_auth_success` (+1) and
        // `last_auth` (set).
        let sql = if success {
            COUNT_AUTH_SUCCESS
        } else {
            "INSERT INTO tokeninfo (token_id, key, value) VALUES ($1, 'count_auth', '1') \
             ON CONFLICT (token_id, key) \
             DO UPDATE SET value = CAST(CAST(tokeninfo.value AS BIGINT) + 1 AS TEXT)"
        };
        // PostgreSQL wants exactly the parameters the statement has.
        if success {
            self.exec(sql, &[id.into(), last_auth.into()]).await?;
        } else {
            self.exec(sql, &[id.into()]).await?;
        }
        Ok(())
    }

    /// Removes one token info value.
    pub async fn token_delete_info(&self, id: i64, key: &str) -> Result<()> {
        self.exec(
            "DELETE FROM tokeninfo WHERE token_id = $1 AND key = $2",
            &[id.into(), key.into()],
        )
        .await?;
        Ok(())
    }

    /// Sets one token info value.
    pub async fn token_set_info(&self, id: i64, key: &str, value: &str) -> Result<()> {
        self.exec(
            "INSERT INTO tokeninfo (token_id, key, value) VALUES ($1, $2, $3) \
             ON CONFLICT (token_id, key) DO UPDATE SET value = excluded.value",
            &[id.into(), key.into(), value.into()],
        )
        .await?;
        Ok(())
    }

    /// The phone number step of an enrollment during a login (privacyIDEA's
    /// `enroll_via_multichallenge`): a token waiting for its number (`clientwait`) gets it,
    /// stops following the user store's number and goes to `verify`; its challenges end. One
    /// transaction, and exactly once: false when the token was not waiting (any more).
    pub async fn token_enroll_phone(&self, id: i64, phone: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE token SET rollout_state = 'verify' WHERE id = $1 AND rollout_state = 'clientwait'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("DELETE FROM tokeninfo WHERE token_id = $1 AND key = 'dynamic_phone'")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO tokeninfo (token_id, key, value) VALUES ($1, 'phone', $2) \
             ON CONFLICT (token_id, key) DO UPDATE SET value = excluded.value",
        )
        .bind(id)
        .bind(phone)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM challenge WHERE token_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Writes token info values and removes keys, all or nothing.
    pub async fn token_write_info(
        &self,
        id: i64,
        set: &[(&str, &str)],
        remove: &[&str],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for k in remove {
            sqlx::query("DELETE FROM tokeninfo WHERE token_id = $1 AND key = $2")
                .bind(id)
                .bind(k)
                .execute(&mut *tx)
                .await?;
        }
        for (k, v) in set {
            sqlx::query(
                "INSERT INTO tokeninfo (token_id, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (token_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(id)
            .bind(k)
            .bind(v)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Advances the HOTP counter by one for a token that may send a challenge (active, not
    /// revoked, not locked out) and returns the new counter; None when the token is unfit.
    pub async fn token_next_counter(&self, id: i64) -> Result<Option<i64>> {
        self.row(NEXT_COUNTER, &[id.into()], |r| r.int(0)).await
    }

    /// Reserves one attempt like [`Store::token_inc_failcount`], and with `backoff_ms` > 0
    /// only when the verify back-off allows it: after `n` kept failures the next attempt may
    /// come `backoff_ms × 2^(n-1)` (at most × 4096) after the last one. One conditional
    /// statement; a refusal is then told apart with one read.
    pub async fn token_reserve_attempt(
        &self,
        id: i64,
        backoff_ms: i64,
        now_ms: i64,
    ) -> Result<Reserve> {
        let reserved = self
            .row(
                "UPDATE token SET failcount = failcount + 1 WHERE id = $1 AND failcount < maxfail \
                 AND ($2 = 0 OR failcount = 0 OR last_fail_ms + $2 * (CASE WHEN failcount > 13 THEN 4096 \
                 ELSE (CAST(1 AS BIGINT) << CAST(failcount - 1 AS INTEGER)) END) <= $3) \
                 RETURNING failcount, maxfail",
                &[id.into(), backoff_ms.into(), now_ms.into()],
                |r| Ok(Reserve::Reserved(r.int(0)?, r.int(1)?)),
            )
            .await?;
        if let Some(reserved) = reserved {
            return Ok(reserved);
        }
        let Some((fails, max, last)) = self
            .row(
                "SELECT failcount, maxfail, last_fail_ms FROM token WHERE id = $1",
                &[id.into()],
                |r| Ok((r.int(0)?, r.int(1)?, r.int(2)?)),
            )
            .await?
        else {
            return Ok(Reserve::Saturated);
        };
        if fails >= max || backoff_ms == 0 {
            return Ok(Reserve::Saturated);
        }
        let factor = 1_i64 << (fails - 1).clamp(0, 12);
        Ok(Reserve::BackOff {
            until_ms: last.saturating_add(backoff_ms.saturating_mul(factor)),
        })
    }

    /// Whether a lockout was noted on the token (`failcounter_exceeded`): its fail counter
    /// reached the maximum with failures kept, not only with attempts still in flight.
    pub async fn token_locked_out(&self, id: i64) -> Result<bool> {
        Ok(self
            .row(
                "SELECT 1 FROM tokeninfo WHERE token_id = $1 AND key = 'failcounter_exceeded'",
                &[id.into()],
                |_| Ok(()),
            )
            .await?
            .is_some())
    }

    /// Notes when a failed attempt was kept (the verify back-off counts from it).
    pub async fn token_note_failure(&self, id: i64, now_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE token SET last_fail_ms = $2 WHERE id = $1",
            &[id.into(), now_ms.into()],
        )
        .await?;
        Ok(())
    }

    /// Counts one failed attempt unless the counter is already at its maximum; returns the new
    /// fail counter and the maximum, or None when it was already saturated.
    pub async fn token_inc_failcount(&self, id: i64) -> Result<Option<(i64, i64)>> {
        self.row(
            "UPDATE token SET failcount = failcount + 1 WHERE id = $1 AND failcount < maxfail RETURNING failcount, maxfail",
            &[id.into()],
            |r| Ok((r.int(0)?, r.int(1)?)),
        )
        .await
    }

    /// Gives back one counted attempt (it turned out to be no failure).
    pub async fn token_release_failcount(&self, id: i64) -> Result<()> {
        self.exec(
            "UPDATE token SET failcount = failcount - 1 WHERE id = $1 AND failcount > 0",
            &[id.into()],
        )
        .await?;
        Ok(())
    }

    /// Records a successful authentication: the fail counter goes to 0 and the HOTP counter
    /// moves to at least `min_count` (never backwards).
    pub async fn token_auth_success(&self, id: i64, min_count: i64) -> Result<()> {
        self.exec(AUTH_SUCCESS, &[id.into(), min_count.into()])
            .await?;
        Ok(())
    }

    /// Finishes a verified enrollment in one transaction: the token goes from `verify` to
    /// `enrolled` (only if it is still in `verify`: exactly once), and when it replaces an
    /// older token of the same owner, it takes that token's PIN and the old token is deleted.
    /// False (nothing changed) when the token was not (or no longer) waiting for verification,
    /// or the token it replaces is gone or no longer usable (disabled, revoked, locked).
    pub async fn token_finish_verify(&self, id: i64, replaces: Option<i64>) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE token SET rollout_state = 'enrolled' WHERE id = $1 AND rollout_state = 'verify'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(old) = replaces {
            sqlx::query(
                "UPDATE token SET pin_hash = (SELECT pin_hash FROM token WHERE id = $2) \
                 WHERE id = $1 AND EXISTS (SELECT 1 FROM token WHERE id = $2)",
            )
            .bind(id)
            .bind(old)
            .execute(&mut *tx)
            .await?;
            // Only a usable token is replaced (an admin may have disabled it meanwhile).
            let gone = sqlx::query(
                "DELETE FROM token WHERE id = $1 AND active = 1 AND revoked = 0 AND failcount < maxfail",
            )
                .bind(old)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if gone != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
        }
        tx.commit().await?;
        Ok(true)
    }
}
