//! Moving in from privacyIDEA (`otpgate import privacyidea`): privacyIDEA's rows, read by
//! `otpgate_store::pisource`, become otpgate's, checked as the API checks them, with the
//! secrets opened with privacyIDEA's key file and sealed with otpgate's key ring; the store
//! writes them in one transaction (`otpgate_store::import`). What otpgate cannot take is
//! named in the report with the reason, never dropped silently.

use crate::auth::{PEPPER_AAD, PEPPER_META, PEPPER_PREFIX};
use crate::events::HandlerInput;
use crate::gateways::GatewayInput;
use crate::policy::{PolicyInput, check_actions};
use crate::radiusserver::RadiusInput;
use crate::smtpserver::SmtpInput;
use crate::{Result, ServiceError, Services};
use otpgate_core::params::is_true;
use otpgate_core::picrypt::{CONFIG_SLOT, PiKeys, TOKEN_SLOT};
use otpgate_store::import::{
    Fate, ImportAdmin, ImportBatch, ImportRealm, ImportResolver, ImportToken,
};
use otpgate_store::pisource::PiRow;
use otpgate_store::{NewToken, TokenOwner};
use std::collections::{BTreeMap, BTreeSet};
use zeroize::Zeroizing;

mod piconfig;
mod report;

pub use piconfig::PiConfig;
pub use report::ImportReport;

/// A privacyIDEA installation as read: its tables, its keys, its pepper.
pub struct PiInstallation {
    /// The tables of `otpgate_store::pisource::PI_TABLES`.
    pub tables: BTreeMap<&'static str, Vec<PiRow>>,
    /// The keys of `PI_ENCFILE`.
    pub keys: PiKeys,
    /// Which installation this is (a fingerprint of the key file).
    pub source: String,
    /// `PI_PEPPER` (admin passwords), when known.
    pub pepper: Option<Zeroizing<String>>,
}

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Report only; write nothing.
    pub dry_run: bool,
    /// otpgate admins an imported admin of the same name replaces (the generated initial
    /// admin).
    pub replaceable_admins: Vec<String>,
}

/// privacyIDEA's system settings otpgate honours (besides every `sms.*`).
const HONOURED_CONFIG: &[&str] = &[
    "PrependPin",
    "splitAtSign",
    "IncFailCountOnFalsePin",
    "ReturnSamlAttributes",
    "DefaultMaxFailCount",
    "DefaultOtpLen",
    "DefaultCountWindow",
    "DefaultSyncWindow",
    "failcounter_clear_timeout",
    "AutoResync",
    "ResetFailcounterOnPIN",
];

fn get<'a>(r: &'a PiRow, k: &str) -> &'a str {
    r.get(k).map(String::as_str).unwrap_or_default()
}

fn flag(r: &PiRow, k: &str) -> bool {
    is_true(get(r, k))
}

fn int(r: &PiRow, k: &str, default: i64) -> i64 {
    get(r, k).trim().parse().unwrap_or(default)
}

fn opt(v: &str) -> Option<String> {
    Some(v.to_owned())
}

/// Key/value rows of `table` grouped by their owner column.
fn grouped<'a>(rows: &'a [PiRow], owner: &str) -> BTreeMap<String, Vec<&'a PiRow>> {
    let mut m: BTreeMap<String, Vec<&PiRow>> = BTreeMap::new();
    for r in rows {
        m.entry(get(r, owner).to_owned()).or_default().push(r);
    }
    m
}

impl Services {
    /// Imports `pi` (see the module documentation).
    pub async fn import_privacyidea(
        &self,
        pi: &PiInstallation,
        options: &ImportOptions,
    ) -> Result<ImportReport> {
        let mut report = ImportReport {
            dry_run: options.dry_run,
            ..ImportReport::default()
        };
        let table = |t: &str| pi.tables.get(t).map(Vec::as_slice).unwrap_or_default();
        let mut b = ImportBatch {
            source: pi.source.clone(),
            now_ms: self.clock().now_ms(),
            replaceable_admins: options.replaceable_admins.clone(),
            ..ImportBatch::default()
        };
        self.check_key(pi)?;

        // User stores.
        let realm_names: BTreeMap<String, String> = table("realm")
            .iter()
            .map(|r| (get(r, "id").to_owned(), get(r, "name").to_owned()))
            .collect();
        let resolver_config = grouped(table("resolverconfig"), "resolver_id");
        let mut resolvers = BTreeSet::new();
        for r in table("resolver") {
            let name = get(r, "name");
            let rtype = get(r, "rtype");
            let mut params = BTreeMap::new();
            for c in resolver_config.get(get(r, "id")).into_iter().flatten() {
                let mut v = get(c, "Value").to_owned();
                if get(c, "Type") == "password" && !v.is_empty() {
                    v = self.open_password(pi, &v, &format!("resolver {name}"))?;
                }
                params.insert(get(c, "Key").to_owned(), v);
            }
            match self.import_resolver(name, rtype, &params).await {
                Ok(res) => {
                    resolvers.insert(name.to_owned());
                    b.resolvers.push(res);
                }
                Err(why) => report
                    .skipped
                    .push(format!("resolver {name} ({rtype}): {why}")),
            }
        }

        // Realms.
        let resolver_names: BTreeMap<String, String> = table("resolver")
            .iter()
            .map(|r| (get(r, "id").to_owned(), get(r, "name").to_owned()))
            .collect();
        let members = grouped(table("resolverrealm"), "realm_id");
        for r in table("realm") {
            let name = get(r, "name").to_owned();
            let mut list: Vec<(String, Option<i64>)> = Vec::new();
            for m in members.get(get(r, "id")).into_iter().flatten() {
                let Some(res) = resolver_names.get(get(m, "resolver_id")) else {
                    continue;
                };
                if !get(m, "node_uuid").trim().is_empty() {
                    report.notes.push(format!(
                        "realm {name}: resolver {res} was set for one node only; otpgate's nodes are alike, so it serves the realm on every node"
                    ));
                }
                if !resolvers.contains(res) {
                    report.notes.push(format!(
                        "realm {name}: without resolver {res} (not imported)"
                    ));
                    continue;
                }
                if !list.iter().any(|(n, _)| n == res) {
                    list.push((res.clone(), get(m, "priority").trim().parse().ok()));
                }
            }
            if list.is_empty() {
                report
                    .skipped
                    .push(format!("realm {name}: none of its resolvers was imported"));
                continue;
            }
            if flag(r, "default") {
                b.default_realm = Some(name.clone());
            }
            b.realms.push(ImportRealm {
                name,
                resolvers: list,
            });
        }
        let realms: BTreeSet<String> = b.realms.iter().map(|r| r.name.clone()).collect();

        // SMTP and RADIUS servers.
        for r in table("smtpserver") {
            let id = get(r, "identifier");
            let mut password = get(r, "password").to_owned();
            if !password.is_empty() {
                // privacyIDEA falls back to the stored text when it does not decrypt.
                password = pi
                    .keys
                    .decrypt_value(CONFIG_SLOT, &password)
                    .map(|p| p.to_string())
                    .unwrap_or(password);
            }
            if flag(r, "smime") {
                report.notes.push(format!(
                    "SMTP server {id}: otpgate does not sign mail with S/MIME; it sends unsigned"
                ));
            }
            let input = SmtpInput {
                server: opt(get(r, "server")),
                port: Some(int(r, "port", 25)),
                timeout: Some(int(r, "timeout", 10).clamp(1, 120)),
                sender: opt(get(r, "sender")),
                username: opt(get(r, "username")),
                password: Some(password),
                tls: Some(flag(r, "tls")),
                tls_verify: Some(true),
                description: opt(get(r, "description")),
                enqueue_job: Some(flag(r, "enqueue_job")),
            };
            match self.smtp_row(id, &input).await {
                Ok(row) => b.smtp.push(row),
                Err(e) => report.skipped.push(format!("SMTP server {id}: {e}")),
            }
        }
        for r in table("radiusserver") {
            let id = get(r, "identifier");
            let stored = get(r, "secret");
            let secret = pi
                .keys
                .decrypt_value(CONFIG_SLOT, stored)
                .map(|p| p.to_string())
                .unwrap_or_else(|_| stored.to_owned());
            let input = RadiusInput {
                server: opt(get(r, "server")),
                port: Some(int(r, "port", 1812)),
                secret: Some(secret),
                retries: Some(int(r, "retries", 3)),
                timeout: Some(int(r, "timeout", 5)),
                description: opt(get(r, "description")),
                dictionary: opt(get(r, "dictionary")),
            };
            match self.radius_row(id, &input).await {
                Ok(row) => b.radius.push(row),
                Err(e) => report.skipped.push(format!("RADIUS server {id}: {e}")),
            }
        }
        let smtp_names: Vec<String> = b.smtp.iter().map(|s| s.identifier.clone()).collect();
        let radius_names: Vec<String> = b.radius.iter().map(|s| s.identifier.clone()).collect();

        // SMS gateways (a FAILOVER may name a gateway defined after it: two passes).
        let gw_options = grouped(table("smsgatewayoption"), "gateway_id");
        let mut inputs = Vec::new();
        for r in table("smsgateway") {
            let name = get(r, "identifier");
            let mut input = GatewayInput {
                name: opt(name),
                module: opt(get(r, "providermodule")),
                description: opt(get(r, "description")),
                ..GatewayInput::default()
            };
            for o in gw_options.get(get(r, "id")).into_iter().flatten() {
                let mut v = get(o, "Value").to_owned();
                let secret = flag(o, "Encrypted");
                if secret && !v.is_empty() {
                    v = self.open_password(pi, &v, &format!("SMS gateway {name}"))?;
                }
                let key = get(o, "Key").to_owned();
                if get(o, "Type") == "header" {
                    input.secret_headers.insert(key.clone(), secret);
                    input.headers.insert(key, v);
                } else {
                    input.secret_options.insert(key.clone(), secret);
                    input.options.insert(key, v);
                }
            }
            inputs.push(input);
        }
        let gateway_names: Vec<String> = inputs.iter().filter_map(|i| i.name.clone()).collect();
        for input in &inputs {
            let name = input.name.clone().unwrap_or_default();
            match self.gateway_rows(input, &gateway_names, &smtp_names).await {
                Ok(g) => b.gateways.push(g),
                Err(e) => report.skipped.push(format!("SMS gateway {name}: {e}")),
            }
        }

        // Policies.
        let conditions = grouped(table("policycondition"), "policy_id");
        let descriptions: BTreeMap<String, String> = table("description")
            .iter()
            .filter(|d| get(d, "object_type") == "policy")
            .map(|d| {
                (
                    get(d, "object_id").to_owned(),
                    get(d, "description").to_owned(),
                )
            })
            .collect();
        for r in table("policy") {
            let name = get(r, "name");
            let scope = get(r, "scope");
            let (kept, dropped) = split_actions(scope, get(r, "action"));
            if kept.is_empty() {
                report.skipped.push(format!(
                    "policy {name} ({scope}): {}",
                    if dropped.is_empty() {
                        "it has no action".to_owned()
                    } else {
                        format!("otpgate has none of its actions: {}", dropped.join(", "))
                    }
                ));
                continue;
            }
            let conds: Vec<serde_json::Value> = conditions
                .get(get(r, "id"))
                .into_iter()
                .flatten()
                .map(|c| {
                    serde_json::json!([
                        get(c, "section"),
                        get(c, "Key"),
                        get(c, "comparator"),
                        get(c, "Value"),
                        flag(c, "active"),
                        c.get("handle_missing_data")
                            .cloned()
                            .unwrap_or_else(|| "raise_error".into()),
                    ])
                })
                .collect();
            let input = PolicyInput {
                scope: opt(scope),
                action: Some(kept.join(", ")),
                realm: opt(get(r, "realm")),
                resolver: opt(get(r, "resolver")),
                user: opt(get(r, "user")),
                client: opt(get(r, "client")),
                adminrealm: opt(get(r, "adminrealm")),
                adminuser: opt(get(r, "adminuser")),
                priority: Some(int(r, "priority", 1)),
                active: Some(r.get("active").is_none_or(|v| is_true(v))),
                description: descriptions.get(get(r, "id")).cloned(),
                conditions: Some(serde_json::Value::Array(conds).to_string()),
                time: opt(get(r, "time")),
                check_all_resolvers: Some(flag(r, "check_all_resolvers")),
                user_agents: opt(get(r, "user_agents")),
                user_case_insensitive: Some(flag(r, "user_case_insensitive")),
                pinode: opt(get(r, "pinode")),
            };
            match self.policy_row(name, &input, &radius_names).await {
                Ok(row) => {
                    if !dropped.is_empty() {
                        report.notes.push(format!(
                            "policy {name}: without the actions otpgate does not have: {}",
                            dropped.join(", ")
                        ));
                    }
                    b.policies.push(row);
                }
                Err(e) => report.skipped.push(format!("policy {name}: {e}")),
            }
        }

        // Event handlers.
        let ev_options = grouped(table("eventhandleroption"), "eventhandler_id");
        let ev_conditions = grouped(table("eventhandlercondition"), "eventhandler_id");
        for r in table("eventhandler") {
            let name = get(r, "name");
            let kv = |rows: Option<&Vec<&PiRow>>| -> BTreeMap<String, String> {
                rows.into_iter()
                    .flatten()
                    .map(|o| (get(o, "Key").to_owned(), get(o, "Value").to_owned()))
                    .collect()
            };
            let input = HandlerInput {
                id: None,
                name: opt(name),
                events: opt(get(r, "event")),
                handlermodule: opt(get(r, "handlermodule")),
                action: opt(get(r, "action")),
                position: opt(get(r, "position")),
                ordering: Some(int(r, "ordering", 0).max(0)),
                active: Some(r.get("active").is_none_or(|v| is_true(v))),
                options: kv(ev_options.get(get(r, "id"))),
                conditions: kv(ev_conditions.get(get(r, "id"))),
            };
            match self.event_row(&input).await {
                Ok((row, warnings)) => {
                    for w in warnings {
                        // The gateway or SMTP server may come with this import.
                        let known = gateway_names
                            .iter()
                            .chain(&smtp_names)
                            .any(|n| w.contains(&format!(" {n} does not exist")));
                        if !known {
                            report.notes.push(format!("event handler {name}: {w}"));
                        }
                    }
                    b.events.push(row);
                }
                Err(e) => report.skipped.push(format!("event handler {name}: {e}")),
            }
        }

        // System settings.
        let mut ignored = Vec::new();
        for r in table("config") {
            let key = get(r, "Key");
            if key.starts_with("sms.") || HONOURED_CONFIG.contains(&key) {
                let mut value = get(r, "Value").to_owned();
                if get(r, "Type") == "password" && !value.is_empty() {
                    value = self.open_password(pi, &value, &format!("setting {key}"))?;
                }
                b.config.push((
                    key.to_owned(),
                    value,
                    String::new(),
                    get(r, "Description").to_owned(),
                ));
            } else if !key.starts_with("__") {
                ignored.push(key.to_owned());
            }
        }
        if !ignored.is_empty() {
            report.skipped.push(format!(
                "settings otpgate does not use: {}",
                ignored.join(", ")
            ));
        }

        // Admins.
        let mut pepper_needed = false;
        for r in table("admin") {
            let name = get(r, "username");
            let hash = get(r, "password");
            if !hash.starts_with('$') || !otpgate_core::pin::is_supported_hash(hash) {
                report.skipped.push(format!(
                    "admin {name}: the password hash format is not one otpgate verifies (set a new password with `otpgate admin add`)"
                ));
                continue;
            }
            if pi.pepper.is_none() {
                report.skipped.push(format!(
                    "admin {name}: PI_PEPPER is needed to keep the password working (give --pi-pepper or --pi-config)"
                ));
                continue;
            }
            pepper_needed = true;
            b.admins.push(ImportAdmin {
                name: name.to_owned(),
                hash: format!("{PEPPER_PREFIX}{hash}"),
                email: get(r, "email").to_owned(),
            });
        }
        if let (true, Some(p)) = (pepper_needed, &pi.pepper) {
            let sealed = self.keys().seal_str(self.rng(), p, PEPPER_AAD)?;
            b.meta.push((PEPPER_META.to_owned(), sealed));
        }

        // Tokens.
        let infos = grouped(table("tokeninfo"), "token_id");
        let owners = grouped(table("tokenowner"), "token_id");
        let token_realms = grouped(table("tokenrealm"), "token_id");
        let mut empty_pin: Option<String> = None;
        for r in table("token") {
            let serial = get(r, "serial").to_owned();
            let id = get(r, "id");
            let tokentype = get(r, "tokentype").to_ascii_lowercase();
            if tokentype != "sms" {
                report.skipped.push(format!(
                    "token {serial} ({tokentype}): otpgate serves SMS tokens only"
                ));
                continue;
            }
            let owner = owners.get(id).and_then(|o| o.first()).map(|o| TokenOwner {
                resolver: get(o, "resolver").to_owned(),
                user_id: get(o, "user_id").to_owned(),
                realm: realm_names
                    .get(get(o, "realm_id"))
                    .cloned()
                    .unwrap_or_default(),
            });
            if let Some(o) = &owner
                && (!resolvers.contains(&o.resolver) || !realms.contains(&o.realm))
            {
                report.skipped.push(format!(
                    "token {serial}: its owner's user store {} or realm {} was not imported",
                    o.resolver, o.realm
                ));
                continue;
            }
            let seed = pi
                .keys
                .token_seed(get(r, "key_enc"), get(r, "key_iv"))
                .map_err(|e| ServiceError::Parameter(format!("token {serial}: {e}")))?;
            let key_enc = self
                .keys()
                .seal(self.rng(), &seed, &crate::tokens::key_aad(&serial))?;
            let pin_hash = match self.import_pin(pi, r, &mut empty_pin).await? {
                Some(h) => h,
                None => {
                    report.skipped.push(format!(
                        "token {serial}: its PIN hash is in a format otpgate does not know"
                    ));
                    continue;
                }
            };
            let mut info = BTreeMap::new();
            for i in infos.get(id).into_iter().flatten() {
                let key = get(i, "Key");
                if get(i, "Type") == "password" {
                    report.notes.push(format!(
                        "token {serial}: encrypted token info {key} left out"
                    ));
                    continue;
                }
                info.insert(key.to_owned(), get(i, "Value").to_owned());
            }
            let mut own_realms: Vec<String> = token_realms
                .get(id)
                .into_iter()
                .flatten()
                .filter_map(|t| realm_names.get(get(t, "realm_id")).cloned())
                .filter(|n| realms.contains(n))
                .collect();
            own_realms.sort();
            own_realms.dedup();
            let mut description = get(r, "description").to_owned();
            if description.chars().count() > 80 {
                description = description.chars().take(80).collect();
            }
            b.tokens.push(ImportToken {
                token: NewToken {
                    serial,
                    tokentype: "sms".into(),
                    description,
                    key_enc,
                    pin_hash,
                    otplen: int(r, "otplen", 6),
                    maxfail: int(r, "maxfail", 10),
                    count_window: int(r, "count_window", 10),
                    sync_window: int(r, "sync_window", 1000),
                    rollout_state: get(r, "rollout_state").to_owned(),
                    info,
                    owner,
                },
                active: flag(r, "active"),
                revoked: flag(r, "revoked"),
                locked: flag(r, "locked"),
                failcount: int(r, "failcount", 0),
                count: int(r, "count", 0),
                realms: own_realms,
            });
        }

        let outcome = self
            .store()
            .import(&b, options.dry_run)
            .await
            .map_err(|e| match e {
                otpgate_store::StoreError::Conflict(m) => ServiceError::Parameter(m),
                other => other.into(),
            })?;
        for (kind, name, fate) in &outcome.items {
            if *kind == "meta" {
                continue;
            }
            let c = report.counts.entry(kind).or_default();
            match fate {
                Fate::New => c[0] += 1,
                Fate::Replaced => {
                    c[0] += 1;
                    report.replaced_admins.push(name.clone());
                }
                Fate::Again => c[1] += 1,
                Fate::Advanced => c[2] += 1,
            }
        }
        if let (Some(wanted), Some(kept)) = (&b.default_realm, &outcome.kept_default_realm) {
            report.notes.push(format!(
                "privacyIDEA's default realm is {wanted}; otpgate's stays {kept} (change it with /defaultrealm)"
            ));
        }
        report.default_realm = outcome.default_realm;
        if !options.dry_run {
            self.handler_cache().clear();
        }
        Ok(report)
    }

    /// Refuses a key file that does not open the installation's secrets, before anything.
    fn check_key(&self, pi: &PiInstallation) -> Result<()> {
        let token = pi
            .tables
            .get("token")
            .into_iter()
            .flatten()
            .find(|t| !get(t, "key_enc").is_empty());
        if let Some(t) = token {
            pi.keys
                .token_seed(get(t, "key_enc"), get(t, "key_iv"))
                .map_err(|_| {
                    ServiceError::Parameter(format!(
                        "the key file does not open token {}'s seed: is PI_ENCFILE the key file of this privacyIDEA database?",
                        get(t, "serial")
                    ))
                })?;
        }
        Ok(())
    }

    /// A password privacyIDEA encrypted with its configuration key.
    fn open_password(&self, pi: &PiInstallation, stored: &str, what: &str) -> Result<String> {
        pi.keys
            .decrypt_value(CONFIG_SLOT, stored)
            .map(|p| p.to_string())
            .map_err(|_| {
                ServiceError::Parameter(format!(
                    "the key file does not open the password of {what}: is PI_ENCFILE the key file of this privacyIDEA database?"
                ))
            })
    }

    /// A token's PIN hash in a form otpgate verifies; None for an unknown format.
    async fn import_pin(
        &self,
        pi: &PiInstallation,
        r: &PiRow,
        empty_pin: &mut Option<String>,
    ) -> Result<Option<String>> {
        let stored = get(r, "pin_hash").trim();
        if stored.is_empty() {
            // privacyIDEA compares an empty hash with the PIN itself: only "" matches.
            if empty_pin.is_none() {
                *empty_pin = Some(self.hash_secret("").await?);
            }
            return Ok(empty_pin.clone());
        }
        if let Some(enc) = stored.strip_prefix("@@") {
            let pin = pi
                .keys
                .decrypt_value(TOKEN_SLOT, enc)
                .map_err(|e| ServiceError::Parameter(format!("encrypted PIN: {e}")))?;
            return Ok(Some(self.hash_secret(&pin).await?));
        }
        if otpgate_core::pin::is_supported_hash(stored) {
            return Ok(Some(stored.to_owned()));
        }
        let seed = get(r, "pin_seed").trim();
        if stored.len() == 64 && stored.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Ok(Some(format!(
                "{}{seed}${stored}",
                otpgate_core::pin::PI_LEGACY_SHA256
            )));
        }
        Ok(None)
    }

    /// A resolver as otpgate keeps it, or why it cannot.
    async fn import_resolver(
        &self,
        name: &str,
        rtype: &str,
        params: &BTreeMap<String, String>,
    ) -> std::result::Result<ImportResolver, String> {
        if !crate::valid_name(name) {
            return Err("otpgate's resolver names are letters, digits, _ . and -".into());
        }
        let (config, secret) = match rtype {
            "passwdresolver" => {
                let file = params
                    .get("fileName")
                    .or_else(|| params.get("filename"))
                    .map(|f| f.trim().to_owned())
                    .filter(|f| !f.is_empty())
                    .ok_or("it has no fileName")?;
                crate::users::checked_passwd_path(std::path::Path::new(&file), self.data_dir())
                    .await?;
                (serde_json::json!({ "fileName": file }), String::new())
            }
            "ldapresolver" => self
                .ldap_resolver_config(name, params, None)
                .await
                .map_err(|e| e.to_string())?,
            other => {
                return Err(format!(
                    "otpgate has no {other}; its user stores are passwdresolver and ldapresolver"
                ));
            }
        };
        Ok(ImportResolver {
            name: name.to_owned(),
            rtype: rtype.to_owned(),
            config: config.to_string(),
            secret,
        })
    }
}

/// The actions of `action` otpgate has for `scope`, and those it has not.
fn split_actions(scope: &str, action: &str) -> (Vec<String>, Vec<String>) {
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for part in action.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if check_actions(scope, part).is_ok() {
            kept.push(part.to_owned());
        } else {
            dropped.push(part.split('=').next().unwrap_or(part).trim().to_owned());
        }
    }
    (kept, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_actions_are_split_off() {
        let (kept, dropped) = split_actions(
            "authentication",
            "otppin=userstore, hotp_hashlib=sha256, smstext=Code {otp}",
        );
        assert_eq!(kept, vec!["otppin=userstore", "smstext=Code {otp}"]);
        assert_eq!(dropped, vec!["hotp_hashlib"]);
        let (kept, dropped) = split_actions("webui", "login_mode=privacyIDEA");
        assert!(kept.is_empty());
        assert_eq!(dropped, vec!["login_mode"]);
    }
}
