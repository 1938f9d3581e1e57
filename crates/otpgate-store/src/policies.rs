//! Policies (privacyIDEA's `/policy`).

use crate::{Result, Store, flag};
use otpgate_core::policy::Condition;
use otpgate_core::policy::condition::{conditions_json, parse_conditions};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A policy as stored: core's [`otpgate_core::policy::Policy`].
pub type PolicyRow = otpgate_core::policy::Policy;

const COLS: &str = "id, name, scope, action, realm, resolver, user_name, client, adminrealm, adminuser, priority, active, description, time_range, conditions, check_all_resolvers";

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

impl Store {
    /// Creates or replaces a policy; returns its id.
    pub async fn policy_upsert(&self, p: &PolicyRow) -> Result<i64> {
        let r = sqlx::query(
            "INSERT INTO policy (name, scope, action, realm, resolver, user_name, client, adminrealm, adminuser, priority, active, description, time_range, conditions, check_all_resolvers) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
             ON CONFLICT (name) DO UPDATE SET scope = excluded.scope, action = excluded.action, realm = excluded.realm, \
             resolver = excluded.resolver, user_name = excluded.user_name, client = excluded.client, \
             adminrealm = excluded.adminrealm, adminuser = excluded.adminuser, priority = excluded.priority, \
             active = excluded.active, description = excluded.description, time_range = excluded.time_range, \
             conditions = excluded.conditions, check_all_resolvers = excluded.check_all_resolvers RETURNING id",
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
        .fetch_one(&self.pool)
        .await?;
        Ok(r.try_get(0)?)
    }

    /// All policies by name.
    pub async fn policy_list(&self) -> Result<Vec<PolicyRow>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM policy ORDER BY name"));
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(row).collect()
    }

    /// Deletes a policy; returns its id.
    pub async fn policy_delete(&self, name: &str) -> Result<Option<i64>> {
        let r = sqlx::query("DELETE FROM policy WHERE name = $1 RETURNING id")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.map(|r| r.try_get::<i64, _>(0)).transpose()?)
    }

    /// Enables or disables a policy; returns its id.
    pub async fn policy_set_active(&self, name: &str, active: bool) -> Result<Option<i64>> {
        let r = sqlx::query("UPDATE policy SET active = $2 WHERE name = $1 RETURNING id")
            .bind(name)
            .bind(i64::from(active))
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.map(|r| r.try_get::<i64, _>(0)).transpose()?)
    }
}
