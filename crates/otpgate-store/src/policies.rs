//! Policies (privacyIDEA's `/policy`).

use crate::{Result, Store, flag};
use otpgate_core::policy::Condition;
use otpgate_core::policy::condition::{conditions_json, parse_conditions};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A policy as stored: core's [`otpgate_core::policy::Policy`].
pub type PolicyRow = otpgate_core::policy::Policy;

const COLS: &str = "id, name, scope, action, realm, resolver, user_name, client, adminrealm, adminuser, priority, active, description, time_range, conditions, check_all_resolvers, user_agents, user_case_insensitive";

fn row(r: &AnyRow) -> Result<PolicyRow> {
    Ok(PolicyRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        scope: r.try_get(2)?,
        action: r.try_get(3)?,
        realm: r.try_get(4)?,
        resolver: r.try_get(5)?,
        user: r.try_get(6)?,
        client: r.try_get(7)?,
        adminrealm: r.try_get(8)?,
        adminuser: r.try_get(9)?,
        priority: r.try_get(10)?,
        active: flag(r.try_get(11)?),
        description: r.try_get(12)?,
        time: r.try_get(13)?,
        conditions: stored_conditions(&r.try_get::<String, _>(14)?),
        check_all_resolvers: flag(r.try_get(15)?),
        user_agents: r.try_get(16)?,
        user_case_insensitive: flag(r.try_get(17)?),
    })
}

/// Stored conditions. Saved ones were checked; a list that does not parse (written by hand
/// or by an older privacyIDEA) becomes one condition no section matches, so the policy
/// raises a policy error when evaluated instead of applying to everyone.
fn stored_conditions(json: &str) -> Vec<Condition> {
    parse_conditions(json).unwrap_or_else(|_| {
        vec![Condition {
            section: "(unreadable conditions)".into(),
            key: "-".into(),
            comparator: "equals".into(),
            value: "-".into(),
            active: true,
            missing: "raise_error".into(),
        }]
    })
}

/// A change to the policies.
#[derive(Debug, Clone, Copy)]
pub enum PolicyChange<'a> {
    /// Create or replace this policy.
    Save(&'a PolicyRow),
    /// Delete the policy of this name.
    Delete(&'a str),
    /// Enable or disable the policy of this name.
    SetActive(&'a str, bool),
}

impl PolicyChange<'_> {
    /// The policies as they would be after the change.
    fn apply(self, mut rows: Vec<PolicyRow>) -> Vec<PolicyRow> {
        match self {
            PolicyChange::Save(p) => {
                rows.retain(|r| r.name != p.name);
                rows.push(p.clone());
            }
            PolicyChange::Delete(name) => rows.retain(|r| r.name != name),
            PolicyChange::SetActive(name, active) => {
                for r in rows.iter_mut().filter(|r| r.name == name) {
                    r.active = active;
                }
            }
        }
        rows
    }

    /// Carries the change out; the policy's id (None: no policy of that name).
    async fn run(self, c: &mut sqlx::AnyConnection) -> Result<Option<i64>> {
        match self {
            PolicyChange::Save(p) => upsert(c, p).await.map(Some),
            PolicyChange::Delete(name) => {
                let r = sqlx::query("DELETE FROM policy WHERE name = $1 RETURNING id")
                    .bind(name)
                    .fetch_optional(&mut *c)
                    .await?;
                Ok(r.map(|r| r.try_get::<i64, _>(0)).transpose()?)
            }
            PolicyChange::SetActive(name, active) => {
                let r = sqlx::query("UPDATE policy SET active = $2 WHERE name = $1 RETURNING id")
                    .bind(name)
                    .bind(i64::from(active))
                    .fetch_optional(&mut *c)
                    .await?;
                Ok(r.map(|r| r.try_get::<i64, _>(0)).transpose()?)
            }
        }
    }
}

/// What a guarded policy change came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarded {
    /// Carried out; the policy's id (None: no policy of that name).
    Done(Option<i64>),
    /// The guard refused the policies it would leave; nothing changed.
    Refused,
}

pub(crate) async fn upsert(c: &mut sqlx::AnyConnection, p: &PolicyRow) -> Result<i64> {
    let r = sqlx::query(
            "INSERT INTO policy (name, scope, action, realm, resolver, user_name, client, adminrealm, adminuser, priority, active, description, time_range, conditions, check_all_resolvers, user_agents, user_case_insensitive) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             ON CONFLICT (name) DO UPDATE SET scope = excluded.scope, action = excluded.action, realm = excluded.realm, \
             resolver = excluded.resolver, user_name = excluded.user_name, client = excluded.client, \
             adminrealm = excluded.adminrealm, adminuser = excluded.adminuser, priority = excluded.priority, \
             active = excluded.active, description = excluded.description, time_range = excluded.time_range, \
             conditions = excluded.conditions, check_all_resolvers = excluded.check_all_resolvers, \
             user_agents = excluded.user_agents, user_case_insensitive = excluded.user_case_insensitive RETURNING id",
        )
        .bind(&p.name)
        .bind(&p.scope)
        .bind(&p.action)
        .bind(&p.realm)
        .bind(&p.resolver)
        .bind(&p.user)
        .bind(&p.client)
        .bind(&p.adminrealm)
        .bind(&p.adminuser)
        .bind(p.priority)
        .bind(i64::from(p.active))
        .bind(&p.description)
        .bind(&p.time)
        .bind(conditions_json(&p.conditions).to_string())
        .bind(i64::from(p.check_all_resolvers))
        .bind(&p.user_agents)
        .bind(i64::from(p.user_case_insensitive))
        .fetch_one(&mut *c)
        .await?;
    Ok(r.try_get(0)?)
}

impl Store {
    /// Creates or replaces a policy; returns its id.
    pub async fn policy_upsert(&self, p: &PolicyRow) -> Result<i64> {
        upsert(&mut *self.pool.acquire().await?, p).await
    }

    /// Carries out `change` only if `allowed` holds for the policies as they would be after
    /// it. The policies are read and changed in one transaction that holds the policy
    /// table's write lock from its first statement (PostgreSQL: `LOCK TABLE … SHARE ROW
    /// EXCLUSIVE`; SQLite: a write first), so two changes on two nodes that are each allowed
    /// alone cannot together leave a set `allowed` refuses.
    pub async fn policy_change_if(
        &self,
        change: PolicyChange<'_>,
        allowed: impl FnOnce(&[PolicyRow]) -> bool,
    ) -> Result<Guarded> {
        let mut tx = self.pool.begin().await?;
        let lock = if self.backend == crate::Backend::Postgres {
            "LOCK TABLE policy IN SHARE ROW EXCLUSIVE MODE"
        } else {
            "UPDATE policy SET name = name WHERE 1 = 0"
        };
        sqlx::query(lock).execute(&mut *tx).await?;
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM policy ORDER BY name"));
        let rows = sqlx::query(sql)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(row)
            .collect::<Result<Vec<_>>>()?;
        if !allowed(&change.apply(rows)) {
            tx.rollback().await?;
            return Ok(Guarded::Refused);
        }
        let id = change.run(&mut tx).await?;
        tx.commit().await?;
        Ok(Guarded::Done(id))
    }

    /// All policies by name.
    pub async fn policy_list(&self) -> Result<Vec<PolicyRow>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM policy ORDER BY name"));
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(row).collect()
    }

    /// Deletes a policy; returns its id.
    pub async fn policy_delete(&self, name: &str) -> Result<Option<i64>> {
        PolicyChange::Delete(name)
            .run(&mut *self.pool.acquire().await?)
            .await
    }

    /// Enables or disables a policy; returns its id.
    pub async fn policy_set_active(&self, name: &str, active: bool) -> Result<Option<i64>> {
        PolicyChange::SetActive(name, active)
            .run(&mut *self.pool.acquire().await?)
            .await
    }
}
