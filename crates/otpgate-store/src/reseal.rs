//! Every value sealed with the key ring, read and rewritten in one transaction (key rotation).

use crate::{Result, Store, StoreError};
use sqlx::Row;

/// Where a sealed value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedKind {
    /// `token.key_enc` (owner = serial).
    TokenKey,
    /// An encrypted `smsgateway_option` (owner = gateway name, with `otype` and `key`).
    GatewayOption,
    /// `smtpserver.password` (owner = identifier).
    SmtpPassword,
    /// `resolver.secret` (owner = resolver name).
    ResolverSecret,
    /// `radiusserver.secret` (owner = identifier).
    RadiusSecret,
    /// The key check value in `meta`.
    KeyCheck,
    /// privacyIDEA's pepper of imported admin passwords, in `meta` (owner = its key,
    /// `pi_pepper:<installation>`).
    PiPepper,
}

/// One sealed value and what identifies it (the parts of its associated data).
#[derive(Debug, Clone)]
pub struct Sealed {
    /// Where it lives.
    pub kind: SealedKind,
    /// Row id (0 for the key check).
    pub id: i64,
    /// Serial, gateway name or SMTP identifier.
    pub owner: String,
    /// `option` or `header` for gateway options.
    pub otype: String,
    /// The option key for gateway options.
    pub key: String,
    /// The sealed text.
    pub value: String,
}

impl Store {
    /// Every sealed value in the database.
    pub async fn sealed_values(&self) -> Result<Vec<Sealed>> {
        let mut out = Vec::new();
        let s = |kind, id, owner: String, otype: &str, key: &str, value: String| Sealed {
            kind,
            id,
            owner,
            otype: otype.to_owned(),
            key: key.to_owned(),
            value,
        };
        for r in sqlx::query("SELECT id, serial, key_enc FROM token")
            .fetch_all(&self.pool)
            .await?
        {
            out.push(s(
                SealedKind::TokenKey,
                r.try_get(0)?,
                r.try_get(1)?,
                "",
                "",
                r.try_get(2)?,
            ));
        }
        for r in sqlx::query(
            "SELECT o.id, g.name, o.otype, o.key, o.value FROM smsgateway_option o \
             JOIN smsgateway g ON g.id = o.gateway_id WHERE o.encrypted = 1",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let (otype, key): (String, String) = (r.try_get(2)?, r.try_get(3)?);
            out.push(s(
                SealedKind::GatewayOption,
                r.try_get(0)?,
                r.try_get(1)?,
                &otype,
                &key,
                r.try_get(4)?,
            ));
        }
        for r in sqlx::query("SELECT id, identifier, password FROM smtpserver WHERE password <> ''")
            .fetch_all(&self.pool)
            .await?
        {
            out.push(s(
                SealedKind::SmtpPassword,
                r.try_get(0)?,
                r.try_get(1)?,
                "",
                "",
                r.try_get(2)?,
            ));
        }
        for r in sqlx::query("SELECT id, name, secret FROM resolver WHERE secret <> ''")
            .fetch_all(&self.pool)
            .await?
        {
            out.push(s(
                SealedKind::ResolverSecret,
                r.try_get(0)?,
                r.try_get(1)?,
                "",
                "",
                r.try_get(2)?,
            ));
        }
        for r in sqlx::query("SELECT id, identifier, secret FROM radiusserver WHERE secret <> ''")
            .fetch_all(&self.pool)
            .await?
        {
            out.push(s(
                SealedKind::RadiusSecret,
                r.try_get(0)?,
                r.try_get(1)?,
                "",
                "",
                r.try_get(2)?,
            ));
        }
        if let Some(v) = self.meta_get("keycheck").await? {
            out.push(s(SealedKind::KeyCheck, 0, String::new(), "", "", v));
        }
        for r in sqlx::query("SELECT key, value FROM meta WHERE key LIKE 'pi_pepper:%'")
            .fetch_all(&self.pool)
            .await?
        {
            out.push(s(
                SealedKind::PiPepper,
                0,
                r.try_get(0)?,
                "",
                "",
                r.try_get(1)?,
            ));
        }
        Ok(out)
    }

    /// Replaces sealed values, all in one transaction: `(old, new)` pairs, each update
    /// conditional on the old value still being there, so a value changed meanwhile aborts the
    /// whole rewrite instead of being overwritten.
    pub async fn reseal(&self, changes: &[(Sealed, String)]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for (old, new) in changes {
            let sql = match old.kind {
                SealedKind::TokenKey => {
                    "UPDATE token SET key_enc = $1 WHERE id = $2 AND key_enc = $3"
                }
                SealedKind::GatewayOption => {
                    "UPDATE smsgateway_option SET value = $1 WHERE id = $2 AND value = $3"
                }
                SealedKind::SmtpPassword => {
                    "UPDATE smtpserver SET password = $1 WHERE id = $2 AND password = $3"
                }
                SealedKind::ResolverSecret => {
                    "UPDATE resolver SET secret = $1 WHERE id = $2 AND secret = $3"
                }
                SealedKind::RadiusSecret => {
                    "UPDATE radiusserver SET secret = $1 WHERE id = $2 AND secret = $3"
                }
                SealedKind::KeyCheck => {
                    "UPDATE meta SET value = $1 WHERE key = 'keycheck' AND $2 = 0 AND value = $3"
                }
                SealedKind::PiPepper => {
                    "UPDATE meta SET value = $1 WHERE key LIKE 'pi_pepper:%' AND $2 = 0 AND value = $3"
                }
            };
            let n = sqlx::query(sql)
                .bind(new)
                .bind(old.id)
                .bind(&old.value)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n != 1 {
                return Err(StoreError::Conflict(
                    "a secret changed while the keys were rotated; nothing was changed, run it again"
                        .into(),
                ));
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
