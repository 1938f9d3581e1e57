//! Moving in from privacyIDEA (`otpgate import privacyidea`): privacyIDEA's rows, read by
//! `otpgate_store::pisource`, become otpgate's, checked as the API checks them, with the
//! secrets opened with privacyIDEA's key file and sealed with otpgate's key ring; the store
//! writes them in one transaction (`otpgate_store::import`). What otpgate cannot take is
//! named in the report with the reason, never dropped silently.

use crate::auth::{pepper_aad, pepper_meta_key, peppered_hash};
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
mod senders;
mod settings;
mod tokens;
mod users;

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

/// An import being planned: what will be written, what the report says, and the names the
/// later kinds refer to.
struct Plan<'a> {
    pi: &'a PiInstallation,
    b: ImportBatch,
    report: ImportReport,
    /// Realm ids → names (all of privacyIDEA's realms).
    realm_names: BTreeMap<String, String>,
    /// Imported resolvers, realms, SMTP, RADIUS servers and gateways.
    resolvers: BTreeSet<String>,
    realms: BTreeSet<String>,
    smtp_names: Vec<String>,
    radius_names: Vec<String>,
    gateway_names: Vec<String>,
}

impl<'a> Plan<'a> {
    fn new(pi: &'a PiInstallation, options: &ImportOptions, now_ms: i64) -> Self {
        let realm_names = pi
            .tables
            .get("realm")
            .into_iter()
            .flatten()
            .map(|r| (get(r, "id").to_owned(), get(r, "name").to_owned()))
            .collect();
        Plan {
            pi,
            b: ImportBatch {
                source: pi.source.clone(),
                now_ms,
                replaceable_admins: options.replaceable_admins.clone(),
                ..ImportBatch::default()
            },
            report: ImportReport {
                dry_run: options.dry_run,
                ..ImportReport::default()
            },
            realm_names,
            resolvers: BTreeSet::new(),
            realms: BTreeSet::new(),
            smtp_names: Vec::new(),
            radius_names: Vec::new(),
            gateway_names: Vec::new(),
        }
    }

    /// The rows of privacyIDEA's `table`.
    fn table(&self, t: &str) -> &'a [PiRow] {
        self.pi.tables.get(t).map(Vec::as_slice).unwrap_or_default()
    }
}

impl Services {
    /// Imports `pi` (see the module documentation).
    pub async fn import_privacyidea(
        &self,
        pi: &PiInstallation,
        options: &ImportOptions,
    ) -> Result<ImportReport> {
        self.check_key(pi)?;
        let mut p = Plan::new(pi, options, self.clock().now_ms());
        self.plan_resolvers(&mut p).await?;
        self.plan_realms(&mut p).await?;
        self.plan_servers(&mut p).await?;
        self.plan_gateways(&mut p).await?;
        self.plan_policies(&mut p).await?;
        self.plan_events(&mut p).await?;
        self.plan_settings(&mut p).await?;
        self.plan_admins(&mut p).await?;
        self.plan_tokens(&mut p).await?;
        let outcome = self
            .store()
            .import(&p.b, options.dry_run)
            .await
            .map_err(|e| match e {
                otpgate_store::StoreError::Conflict(m) => ServiceError::Parameter(m),
                other => other.into(),
            })?;
        for (kind, name, fate) in &outcome.items {
            if *kind == "meta" {
                continue;
            }
            let c = p.report.counts.entry(kind).or_default();
            match fate {
                Fate::New => c[0] += 1,
                Fate::Replaced => {
                    c[0] += 1;
                    p.report.replaced_admins.push(name.clone());
                }
                Fate::Again => c[1] += 1,
                Fate::Advanced => c[2] += 1,
            }
        }
        if let (Some(wanted), Some(kept)) = (&p.b.default_realm, &outcome.kept_default_realm) {
            p.report.notes.push(format!(
                "privacyIDEA's default realm is {wanted}; otpgate's stays {kept} (change it with /defaultrealm)"
            ));
        }
        p.report.default_realm = outcome.default_realm;
        if !options.dry_run {
            self.handler_cache().clear();
        }
        Ok(p.report)
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
}
