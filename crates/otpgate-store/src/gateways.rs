//! Central SMS gateway definitions with their options and headers.

use crate::{Result, Store, flag};
use sqlx::Row;

/// One option or header of a gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayOptionRow {
    /// Row id.
    pub id: i64,
    /// Key as given by the admin.
    pub key: String,
    /// Value; sealed when `encrypted`.
    pub value: String,
    /// `option` or `header`.
    pub otype: String,
    /// The value is sealed with the key ring.
    pub encrypted: bool,
}

/// A gateway definition.
#[derive(Debug, Clone)]
pub struct GatewayRow {
    /// Row id.
    pub id: i64,
    /// Unique name (privacyIDEA's `identifier`).
    pub name: String,
    /// Provider module as stored.
    pub providermodule: String,
    /// Free text.
    pub description: String,
    /// Options and headers.
    pub options: Vec<GatewayOptionRow>,
}

/// [`Store::gateway_upsert`] in a transaction.
pub(crate) async fn gateway_upsert_in(
    c: &mut sqlx::AnyConnection,
    name: &str,
    module: &str,
    description: &str,
    options: &[(String, String, String, bool)],
) -> Result<i64> {
    let id: i64 = sqlx::query(
        "INSERT INTO smsgateway (name, providermodule, description) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET providermodule = excluded.providermodule, description = excluded.description \
         RETURNING id",
    )
    .bind(name)
    .bind(module)
    .bind(description)
    .fetch_one(&mut *c)
    .await?
    .try_get(0)?;
    sqlx::query("DELETE FROM smsgateway_option WHERE gateway_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    for (k, v, t, enc) in options {
        sqlx::query(
            "INSERT INTO smsgateway_option (gateway_id, key, value, otype, encrypted) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(k)
        .bind(v)
        .bind(t)
        .bind(i64::from(*enc))
        .execute(&mut *c)
        .await?;
    }
    Ok(id)
}

impl Store {
    /// Creates or replaces the gateway `name` with exactly these options (replace-all).
    /// Options are (key, value, type, encrypted). Returns the gateway id.
    pub async fn gateway_upsert(
        &self,
        name: &str,
        module: &str,
        description: &str,
        options: &[(String, String, String, bool)],
    ) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let id = gateway_upsert_in(&mut tx, name, module, description, options).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn gateways_where(
        &self,
        cond: &'static str,
        bind: Option<String>,
    ) -> Result<Vec<GatewayRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT g.id, g.name, g.providermodule, g.description, o.id, o.key, o.value, o.otype, o.encrypted \
             FROM smsgateway g LEFT JOIN smsgateway_option o ON o.gateway_id = g.id WHERE {cond} ORDER BY g.id, o.id"
        ));
        let mut q = sqlx::query(sql);
        if let Some(b) = bind {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut out: Vec<GatewayRow> = Vec::new();
        for r in &rows {
            let id: i64 = r.try_get(0)?;
            if out.last().map(|g| g.id) != Some(id) {
                out.push(GatewayRow {
                    id,
                    name: r.try_get(1)?,
                    providermodule: r.try_get(2)?,
                    description: r.try_get(3)?,
                    options: vec![],
                });
            }
            let oid: Option<i64> = r.try_get(4)?;
            if let (Some(oid), Some(g)) = (oid, out.last_mut()) {
                g.options.push(GatewayOptionRow {
                    id: oid,
                    key: r.try_get(5)?,
                    value: r.try_get(6)?,
                    otype: r.try_get(7)?,
                    encrypted: flag(r.try_get(8)?),
                });
            }
        }
        Ok(out)
    }

    /// All gateways by id.
    pub async fn gateway_list(&self) -> Result<Vec<GatewayRow>> {
        self.gateways_where("1 = 1", None).await
    }

    /// One gateway by name.
    pub async fn gateway_by_name(&self, name: &str) -> Result<Option<GatewayRow>> {
        Ok(self
            .gateways_where("g.name = $1", Some(name.to_owned()))
            .await?
            .pop())
    }

    /// Deletes a gateway by name; returns its id.
    pub async fn gateway_delete(&self, name: &str) -> Result<Option<i64>> {
        let row = sqlx::query("DELETE FROM smsgateway WHERE name = $1 RETURNING id")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?)
    }

    /// Deletes one option or header of a gateway; returns the option's row id.
    pub async fn gateway_delete_option(
        &self,
        gateway_id: i64,
        key: &str,
        otype: &str,
    ) -> Result<Option<i64>> {
        let row = sqlx::query(
            "DELETE FROM smsgateway_option WHERE gateway_id = $1 AND key = $2 AND otype = $3 RETURNING id",
        )
        .bind(gateway_id)
        .bind(key)
        .bind(otype)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?)
    }
}
