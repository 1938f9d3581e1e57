//! One copy per node of the settings every login reads (system configuration, policies,
//! realms, resolvers, SMS gateways), kept as long as the database's settings version (migration 0007:
//! triggers move it on every change, whoever makes it) stays the same. A request reads that one
//! number instead of five tables, and never sees settings older than the version it read.

use crate::policy::Policies;
use crate::settings::SystemConfig;
use crate::{Result, Services};
use otpgate_store::{GatewayRow, RealmRow, ResolverRow};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// The settings at one version.
#[derive(Debug)]
pub struct Settings {
    /// The settings version they were read at (or after).
    pub version: i64,
    /// `config` as key → value.
    pub config_map: BTreeMap<String, String>,
    /// The parsed system configuration.
    pub config: SystemConfig,
    /// Every policy.
    pub policies: Policies,
    /// Every realm with its resolvers.
    pub realms: Vec<RealmRow>,
    /// Every resolver by name.
    pub resolvers: HashMap<String, ResolverRow>,
    /// Every SMS gateway by name, with its options (secrets still sealed).
    pub gateways: HashMap<String, GatewayRow>,
}

impl Settings {
    /// The resolvers of `realm` (the user's) in priority order (privacyIDEA's
    /// `get_ordered_resolvers`), for policies with `check_all_resolvers`; empty when no policy
    /// has it.
    pub(crate) fn realm_resolvers(&self, realm: Option<&str>) -> Vec<String> {
        let Some(realm) = realm else {
            return Vec::new();
        };
        if !self.policies.check_all_resolvers() {
            return Vec::new();
        }
        let mut resolvers: Vec<(String, Option<i64>)> = self
            .realms
            .iter()
            .find(|r| r.name == realm)
            .map(|r| r.resolvers.clone())
            .unwrap_or_default();
        resolvers.sort_by_key(|(_, prio)| prio.unwrap_or(i64::MAX));
        resolvers.into_iter().map(|(name, _)| name).collect()
    }
}

/// The newest copy this node read.
#[derive(Debug, Default)]
pub struct SettingsCache(Mutex<Option<Arc<Settings>>>);

tokio::task_local! {
    /// The settings one call runs on (see [`Services::on_one_snapshot`]), with the address of
    /// the node's cache they belong to (tests run several nodes in one process).
    static CALL_SETTINGS: (usize, Arc<std::sync::OnceLock<Arc<Settings>>>);
}

impl Services {
    /// The current settings: one read of the settings version, and the tables only when it
    /// moved since this node last read them. Inside [`Services::on_one_snapshot`], the call's
    /// settings without a read.
    pub async fn settings(&self) -> Result<Arc<Settings>> {
        let mine = std::ptr::from_ref(self.settings_cache()) as usize;
        let call = CALL_SETTINGS
            .try_with(|(node, cell)| (*node == mine).then(|| cell.clone()))
            .ok()
            .flatten();
        if let Some(s) = call.as_ref().and_then(|cell| cell.get()) {
            return Ok(s.clone());
        }
        let s = self.read_settings().await?;
        if let Some(cell) = call {
            let _ = cell.set(s.clone());
        }
        Ok(s)
    }

    /// [`Services::settings`] without the call's snapshot.
    async fn read_settings(&self) -> Result<Arc<Settings>> {
        let version = self.store().settings_version().await?;
        let cache = &self.settings_cache().0;
        if let Ok(c) = cache.lock()
            && let Some(s) = c.as_ref()
            && s.version == version
        {
            return Ok(s.clone());
        }
        // Read after the version: a change in between makes the copy newer than its
        // number, and the next request reads it again.
        let config_map: BTreeMap<String, String> = self
            .store()
            .config_all()
            .await?
            .into_iter()
            .map(|(k, v, _, _)| (k, v))
            .collect();
        let loaded = Arc::new(Settings {
            version,
            config: SystemConfig::from_map(&config_map),
            config_map,
            policies: Policies::new(self.store().policy_list().await?),
            realms: self.store().realm_list().await?,
            resolvers: self
                .store()
                .resolver_list()
                .await?
                .into_iter()
                .map(|r| (r.name.clone(), r))
                .collect(),
            gateways: self
                .store()
                .gateway_list()
                .await?
                .into_iter()
                .map(|g| (g.name.clone(), g))
                .collect(),
        });
        // Always the latest read: a number that went back (a restored database, a replica
        // promoted) replaces the copy too. A slower reader storing an older copy only costs
        // the next request a reload.
        if let Ok(mut c) = cache.lock() {
            *c = Some(loaded.clone());
        }
        Ok(loaded)
    }
}

impl Services {
    /// Runs `call` on one snapshot of the settings: the first [`Services::settings`] inside
    /// it (on this task) reads them, the others return that copy instead of reading the
    /// settings version again. A login reads it once instead of once per step of its way
    /// (user, SMS text, gateway), and sees one state of the policies throughout.
    pub(crate) async fn on_one_snapshot<T>(&self, call: impl std::future::Future<Output = T>) -> T {
        let mine = std::ptr::from_ref(self.settings_cache()) as usize;
        CALL_SETTINGS
            .scope((mine, Arc::new(std::sync::OnceLock::new())), call)
            .await
    }
}
