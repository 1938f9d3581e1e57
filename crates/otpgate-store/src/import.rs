//! Writing what `otpgate import privacyidea` brings in: everything in one transaction, or
//! nothing.
//!
//! Each item is recorded in `imported` with the installation it came from (a fingerprint of
//! its key file). An item of the same kind and name that otpgate already holds is a clash
//! (nothing is written) unless this installation's earlier import brought it: then it is
//! left as otpgate has it, except a token's counter, which moves forward to the source's when
//! that is higher (an OTP privacyIDEA accepted since is not accepted again), and its state
//! only in the restrictive direction (disabled, revoked, locked, more failures).

use crate::events::event_save_in;
use crate::gateways::gateway_upsert_in;
use crate::policies::upsert as policy_upsert_in;
use crate::radius::radius_upsert_in;
use crate::smtp::smtp_upsert_in;
use crate::tokens::token_insert_in;
use crate::users::{realm_set_in, resolver_upsert_in};
use crate::{
    EventHandlerRow, NewToken, PolicyRow, RadiusServerRow, Result, SmtpServerRow, Store, StoreError,
};
use sqlx::Row;

/// A user store to create.
#[derive(Debug, Clone)]
pub struct ImportResolver {
    /// Name.
    pub name: String,
    /// `passwdresolver`, `ldapresolver`.
    pub rtype: String,
    /// Parameters as a JSON object.
    pub config: String,
    /// The sealed bind password ("" for none).
    pub secret: String,
}

/// A realm to create.
#[derive(Debug, Clone)]
pub struct ImportRealm {
    /// Name.
    pub name: String,
    /// Resolver names with their priorities.
    pub resolvers: Vec<(String, Option<i64>)>,
}

/// An SMS gateway to create.
#[derive(Debug, Clone)]
pub struct ImportGateway {
    /// Name.
    pub name: String,
    /// privacyIDEA's provider module.
    pub module: String,
    /// Free text.
    pub description: String,
    /// (key, value or sealed value, `option`/`header`, sealed).
    pub options: Vec<(String, String, String, bool)>,
}

/// An admin to create.
#[derive(Debug, Clone)]
pub struct ImportAdmin {
    /// Login name.
    pub name: String,
    /// Password hash (a format `otpgate_core::pin` verifies, or the peppered form).
    pub hash: String,
    /// Mail address.
    pub email: String,
}

/// A token to create, with the state privacyIDEA had.
#[derive(Debug, Clone)]
pub struct ImportToken {
    /// The token as created.
    pub token: NewToken,
    /// Enabled.
    pub active: bool,
    /// Revoked.
    pub revoked: bool,
    /// Locked.
    pub locked: bool,
    /// Failed attempts.
    pub failcount: i64,
    /// The next HOTP counter.
    pub count: i64,
    /// The token's own realms.
    pub realms: Vec<String>,
}

/// Everything one import writes.
#[derive(Debug, Clone, Default)]
pub struct ImportBatch {
    /// Which installation it comes from.
    pub source: String,
    /// Now (ms since the epoch).
    pub now_ms: i64,
    /// User stores.
    pub resolvers: Vec<ImportResolver>,
    /// Realms.
    pub realms: Vec<ImportRealm>,
    /// The source's default realm (taken when otpgate has none).
    pub default_realm: Option<String>,
    /// SMTP servers.
    pub smtp: Vec<SmtpServerRow>,
    /// RADIUS servers.
    pub radius: Vec<RadiusServerRow>,
    /// SMS gateways.
    pub gateways: Vec<ImportGateway>,
    /// Policies.
    pub policies: Vec<PolicyRow>,
    /// Event handlers; `id` is the source's id (privacyIDEA's handler names are free text,
    /// neither unique nor required), which identifies them on a second run.
    pub events: Vec<EventHandlerRow>,
    /// System configuration: key, value, type, description.
    pub config: Vec<(String, String, String, String)>,
    /// Admins.
    pub admins: Vec<ImportAdmin>,
    /// otpgate admins an imported admin of the same name may replace (the generated
    /// initial admin, whose password nobody chose).
    pub replaceable_admins: Vec<String>,
    /// Tokens.
    pub tokens: Vec<ImportToken>,
    /// `meta` values (key, value).
    pub meta: Vec<(String, String)>,
}

/// What became of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Created.
    New,
    /// Imported from this installation before; left as it is.
    Again,
    /// Imported before; brought up to date (counter forward, disabled, revoked, locked or
    /// more failures as the source has it now).
    Advanced,
    /// Replaced otpgate's generated initial admin.
    Replaced,
}

/// The items of one import and their fates, in the order they were written.
#[derive(Debug, Clone, Default)]
pub struct ImportOutcome {
    /// (kind, name, fate).
    pub items: Vec<(&'static str, String, Fate)>,
    /// The default realm the import set, if it set one.
    pub default_realm: Option<String>,
    /// otpgate's default realm, when it had one other than the source's (and kept it).
    pub kept_default_realm: Option<String>,
    /// The source's default realm, when it was not imported (otpgate then has none).
    pub missing_default_realm: Option<String>,
}

/// Where each kind lives: the table and its name column.
fn table_of(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "resolver" => ("resolver", "name"),
        "realm" => ("realm", "name"),
        "smtpserver" => ("smtpserver", "identifier"),
        "radiusserver" => ("radiusserver", "identifier"),
        "smsgateway" => ("smsgateway", "name"),
        "policy" => ("policy", "name"),
        "event" => ("eventhandler", "name"),
        "admin" => ("admin", "name"),
        "token" => ("token", "serial"),
        "config" => ("config", "key"),
        _ => ("meta", "key"),
    }
}

struct Writer<'a> {
    c: &'a mut sqlx::AnyConnection,
    batch: &'a ImportBatch,
    clashes: Vec<String>,
    out: ImportOutcome,
}

impl Writer<'_> {
    /// What to do with `name` of `kind`: None for a clash (noted) .
    async fn decide(&mut self, kind: &'static str, name: &str) -> Result<Option<Fate>> {
        let before: Option<String> =
            sqlx::query("SELECT source FROM imported WHERE kind = $1 AND name = $2")
                .bind(kind)
                .bind(name)
                .fetch_optional(&mut *self.c)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
        if before.as_deref() == Some(self.batch.source.as_str()) {
            return Ok(Some(Fate::Again));
        }
        // Settings are not named objects: the source's value is taken. Event handlers are
        // known by the source's id only.
        if kind == "config" || kind == "meta" || kind == "event" {
            return Ok(Some(Fate::New));
        }
        let (table, column) = table_of(kind);
        let exists = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT 1 FROM {table} WHERE {column} = $1"
        )))
        .bind(name)
        .fetch_optional(&mut *self.c)
        .await?
        .is_some();
        if !exists {
            return Ok(Some(Fate::New));
        }
        if kind == "admin" && self.batch.replaceable_admins.iter().any(|a| a == name) {
            return Ok(Some(Fate::Replaced));
        }
        self.clashes.push(format!("{kind} {name}"));
        Ok(None)
    }

    /// Records `name` as imported (fate `New`/`Replaced`) and in the outcome.
    async fn done(&mut self, kind: &'static str, name: &str, fate: Fate) -> Result<()> {
        if matches!(fate, Fate::New | Fate::Replaced) {
            sqlx::query(
                "INSERT INTO imported (kind, name, source, imported_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (kind, name) DO UPDATE SET source = excluded.source, \
                 imported_at = excluded.imported_at",
            )
            .bind(kind)
            .bind(name)
            .bind(&self.batch.source)
            .bind(self.batch.now_ms)
            .execute(&mut *self.c)
            .await?;
        }
        self.out.items.push((kind, name.to_owned(), fate));
        Ok(())
    }

    /// Decides `name`; Some(fate) when it is to be written now.
    async fn fresh(&mut self, kind: &'static str, name: &str) -> Result<Option<Fate>> {
        match self.decide(kind, name).await? {
            Some(Fate::Again) => {
                self.done(kind, name, Fate::Again).await?;
                Ok(None)
            }
            other => Ok(other),
        }
    }

    async fn write(&mut self) -> Result<()> {
        let b = self.batch;
        // The first statement writes: SQLite takes its write lock now (a deferred transaction
        // that read first would fail when a running node commits in between), PostgreSQL
        // serialises this with every settings change (they all bump the version); running
        // nodes reload their settings after the import either way.
        sqlx::query("UPDATE settings_version SET version = version + 1 WHERE id = 1")
            .execute(&mut *self.c)
            .await?;
        let had_default: Option<String> =
            sqlx::query("SELECT name FROM realm WHERE is_default = 1")
                .fetch_optional(&mut *self.c)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
        for r in &b.resolvers {
            if let Some(f) = self.fresh("resolver", &r.name).await? {
                resolver_upsert_in(self.c, &r.name, &r.rtype, &r.config, &r.secret).await?;
                self.done("resolver", &r.name, f).await?;
            }
        }
        for r in &b.realms {
            if let Some(f) = self.fresh("realm", &r.name).await? {
                let mut ids = Vec::new();
                for (resolver, priority) in &r.resolvers {
                    let id: Option<i64> = sqlx::query("SELECT id FROM resolver WHERE name = $1")
                        .bind(resolver)
                        .fetch_optional(&mut *self.c)
                        .await?
                        .map(|r| r.try_get(0))
                        .transpose()?;
                    match id {
                        Some(id) => ids.push((id, *priority)),
                        None => {
                            self.clashes
                                .push(format!("realm {} needs resolver {resolver}", r.name));
                        }
                    }
                }
                realm_set_in(self.c, &r.name, &ids).await?;
                self.done("realm", &r.name, f).await?;
            }
        }
        if let (Some(d), Some(had)) = (&b.default_realm, &had_default)
            && d != had
        {
            self.out.kept_default_realm = Some(had.clone());
        }
        if had_default.is_none() {
            // Exactly the source's default or none: the first realm written became the
            // default on its own, which must not pick another user store for logins without
            // a realm.
            let wanted = b.default_realm.clone().unwrap_or_default();
            sqlx::query("UPDATE realm SET is_default = CASE WHEN name = $1 THEN 1 ELSE 0 END")
                .bind(&wanted)
                .execute(&mut *self.c)
                .await?;
            let set = sqlx::query("SELECT 1 FROM realm WHERE name = $1 AND is_default = 1")
                .bind(&wanted)
                .fetch_optional(&mut *self.c)
                .await?
                .is_some();
            if set {
                self.out.default_realm = b.default_realm.clone();
            } else {
                self.out.missing_default_realm = b.default_realm.clone();
            }
        }
        for s in &b.smtp {
            if let Some(f) = self.fresh("smtpserver", &s.identifier).await? {
                smtp_upsert_in(self.c, s).await?;
                self.done("smtpserver", &s.identifier, f).await?;
            }
        }
        for s in &b.radius {
            if let Some(f) = self.fresh("radiusserver", &s.identifier).await? {
                radius_upsert_in(self.c, s).await?;
                self.done("radiusserver", &s.identifier, f).await?;
            }
        }
        for g in &b.gateways {
            if let Some(f) = self.fresh("smsgateway", &g.name).await? {
                gateway_upsert_in(self.c, &g.name, &g.module, &g.description, &g.options).await?;
                self.done("smsgateway", &g.name, f).await?;
            }
        }
        for p in &b.policies {
            if let Some(f) = self.fresh("policy", &p.name).await? {
                policy_upsert_in(self.c, p).await?;
                self.done("policy", &p.name, f).await?;
            }
        }
        for e in &b.events {
            let source_id = e.id.to_string();
            if let Some(f) = self.fresh("event", &source_id).await? {
                let mut row = e.clone();
                row.id = 0;
                event_save_in(self.c, &row).await?;
                self.done("event", &source_id, f).await?;
            }
        }
        for (k, v, t, d) in &b.config {
            if let Some(f) = self.fresh("config", k).await? {
                sqlx::query(
                    "INSERT INTO config (key, value, ctype, description) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
                     ctype = excluded.ctype, description = excluded.description",
                )
                .bind(k)
                .bind(v)
                .bind(t)
                .bind(d)
                .execute(&mut *self.c)
                .await?;
                self.done("config", k, f).await?;
            }
        }
        for (k, v) in &b.meta {
            if let Some(f) = self.fresh("meta", k).await? {
                sqlx::query(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(k)
                .bind(v)
                .execute(&mut *self.c)
                .await?;
                self.done("meta", k, f).await?;
            }
        }
        for a in &b.admins {
            if let Some(f) = self.fresh("admin", &a.name).await? {
                sqlx::query(
                    "INSERT INTO admin (name, password_hash, created_at, email, password_changed_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET \
                     password_hash = excluded.password_hash, email = excluded.email, \
                     password_changed_at = excluded.password_changed_at",
                )
                .bind(&a.name)
                .bind(&a.hash)
                .bind(b.now_ms)
                .bind(&a.email)
                .bind(b.now_ms.div_euclid(1000))
                .execute(&mut *self.c)
                .await?;
                self.done("admin", &a.name, f).await?;
            }
        }
        for t in &b.tokens {
            let serial = t.token.serial.as_str();
            match self.decide("token", serial).await? {
                None => {}
                Some(Fate::Again) => {
                    // Only in the restrictive direction, in one statement: a counter otpgate
                    // moved past the source's stays, a token disabled, revoked or locked there
                    // since is so here too, failures only add up.
                    let moved = sqlx::query(
                        "UPDATE token SET \
                           count = CASE WHEN count < $1 THEN $1 ELSE count END, \
                           active = CASE WHEN $2 = 0 THEN 0 ELSE active END, \
                           revoked = CASE WHEN $3 = 1 THEN 1 ELSE revoked END, \
                           locked = CASE WHEN $4 = 1 THEN 1 ELSE locked END, \
                           failcount = CASE WHEN failcount < $5 THEN $5 ELSE failcount END \
                         WHERE serial = $6 AND (count < $1 OR ($2 = 0 AND active = 1) \
                           OR ($3 = 1 AND revoked = 0) OR ($4 = 1 AND locked = 0) OR failcount < $5)",
                    )
                    .bind(t.count)
                    .bind(i64::from(t.active))
                    .bind(i64::from(t.revoked))
                    .bind(i64::from(t.locked))
                    .bind(t.failcount)
                    .bind(serial)
                    .execute(&mut *self.c)
                    .await?
                    .rows_affected();
                    let fate = if moved > 0 {
                        Fate::Advanced
                    } else {
                        Fate::Again
                    };
                    self.done("token", serial, fate).await?;
                }
                Some(f) => {
                    let id = token_insert_in(self.c, &t.token, b.now_ms).await?;
                    sqlx::query(
                        "UPDATE token SET active = $2, revoked = $3, locked = $4, failcount = $5, \
                         count = $6 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(i64::from(t.active))
                    .bind(i64::from(t.revoked))
                    .bind(i64::from(t.locked))
                    .bind(t.failcount)
                    .bind(t.count)
                    .execute(&mut *self.c)
                    .await?;
                    for realm in &t.realms {
                        sqlx::query(
                            "INSERT INTO tokenrealm (token_id, realm) VALUES ($1, $2) \
                             ON CONFLICT (token_id, realm) DO NOTHING",
                        )
                        .bind(id)
                        .bind(realm)
                        .execute(&mut *self.c)
                        .await?;
                    }
                    self.done("token", serial, f).await?;
                }
            }
        }
        Ok(())
    }
}

impl Store {
    /// Writes `batch` in one transaction: all of it, or nothing when any item clashes with
    /// one otpgate holds (the error names every clash). `dry_run` decides and reports the
    /// same, then rolls back.
    pub async fn import(&self, batch: &ImportBatch, dry_run: bool) -> Result<ImportOutcome> {
        let mut tx = self.pool.begin().await?;
        let mut w = Writer {
            c: &mut tx,
            batch,
            clashes: Vec::new(),
            out: ImportOutcome::default(),
        };
        w.write().await?;
        let (clashes, out) = (w.clashes, w.out);
        if !clashes.is_empty() {
            tx.rollback().await?;
            return Err(StoreError::Conflict(format!(
                "otpgate already holds what this import would create, and did not import it \
                 from this installation: {}",
                clashes.join(", ")
            )));
        }
        if dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(out)
    }
}
