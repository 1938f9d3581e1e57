//! otpgate's use cases: validation (the two-step SMS login), token, gateway, user and policy
//! administration, admin authentication and audit. No HTTP: the binary maps requests onto
//! these functions and their results onto privacyIDEA's envelopes.

pub mod audit;
pub mod auth;
pub mod breaker;
pub mod cache;
pub mod call;
pub mod dbhealth;
pub mod delivery;
pub mod directory;
pub mod enrollment;
pub mod error;
pub mod events;
mod facts;
pub mod gateways;
pub mod import;
pub mod kdf;
pub mod keys;
pub mod limits;
pub mod notify;
pub mod outbox;
pub mod policy;
pub mod radiusserver;
pub mod realms;
pub mod sessions;
pub mod settings;
pub mod setup;
pub mod smtpserver;
pub mod snapshot;
pub mod stats;
pub mod tokens;
pub mod users;
pub mod validate;

pub use error::ServiceError;

use otpgate_core::pin::PinParams;
use otpgate_core::secret::KeyRing;
use otpgate_core::{Clock, RandomSource};
use otpgate_gateways::Registry;
use otpgate_store::Store;
use std::sync::Arc;

/// The AAD of sealed RADIUS `State` values.
const STATE_AAD: &str = "radius.state";

/// The highest page number a listing accepts (larger ones are clamped).
pub const MAX_PAGE: i64 = 1_000_000;

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// How many there are in all.
    pub count: i64,
    /// This page's number (from 1).
    pub page: i64,
    /// Items per page.
    pub page_size: i64,
}

impl<T> Page<T> {
    /// The previous page's number, if any.
    pub fn prev(&self) -> Option<i64> {
        (self.page > 1).then(|| self.page - 1)
    }

    /// The next page's number, if any.
    pub fn next(&self) -> Option<i64> {
        (self.page.saturating_mul(self.page_size) < self.count).then(|| self.page + 1)
    }
}

impl<T> call::Outcome for Page<T> {}

/// An input's value, trimmed, unless blank.
pub(crate) fn nonblank(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Whether `name` may name something admins define (a user store, a realm, an SMTP server):
/// 1 to 255 letters, digits, `_`, `-` and `.`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Result alias of the service layer.
pub type Result<T> = std::result::Result<T, ServiceError>;

/// Everything a use case needs, built once at start-up. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Services {
    inner: Arc<Inner>,
}

/// What the services are built from.
pub struct Deps {
    /// The database.
    pub store: Store,
    /// The encryption keys for secrets at rest.
    pub keys: KeyRing,
    /// The file they were read from: the node follows it (a rotation while it runs). None:
    /// the keys never change.
    pub key_file: Option<std::path::PathBuf>,
    /// The JWT signing secret.
    pub jwt_secret: Vec<u8>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The random source.
    pub rng: Arc<dyn RandomSource>,
    /// Argon2id parameters for new PIN and password hashes.
    pub pin_params: PinParams,
    /// Bounds of the Argon2 work.
    pub kdf: kdf::KdfLimits,
    /// The data directory (default sink file location).
    pub data_dir: std::path::PathBuf,
    /// The directory the Script provider runs scripts from.
    pub scripts_dir: std::path::PathBuf,
    /// The longest wait for the database (the store's connection and lock bounds): also how
    /// long an audit entry may wait for its row before it goes to the spool.
    pub db_timeout: std::time::Duration,
    /// The base URL other systems reach this server at (`server.public_url`): receipt URLs
    /// are built on it. None: SMS go without one.
    pub public_url: Option<String>,
}

struct Inner {
    store: Store,
    keys: keys::LiveKeys,
    jwt_secret: Vec<u8>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn RandomSource>,
    pin_params: PinParams,
    kdf: kdf::KdfGate,
    registry: Registry,
    passwd: users::PasswdCache,
    directories: directory::Directories,
    dummy_hash: std::sync::OnceLock<String>,
    data_dir: std::path::PathBuf,
    breakers: breaker::Breakers,
    outbox: outbox::Outbox,
    handlers: notify::HandlerCache,
    limits: limits::LimitStats,
    blocks: limits::BlockCache,
    settings: snapshot::SettingsCache,
    audit: std::sync::OnceLock<audit::AuditQueue>,
    audit_figures: Arc<audit::AuditFigures>,
    db: Arc<dbhealth::DbHealth>,
    stat_flush: stats::StatFlush,
    /// This node's name in the cluster (random, new at every start).
    node_id: String,
    delivery: delivery::DeliveryCounts,
    followers: delivery::Followers,
    public_url: Option<String>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("keys", &self.keys)
            .field("pin_params", &self.pin_params)
            .finish()
    }
}

impl Services {
    /// Builds the services.
    pub fn new(d: Deps) -> Self {
        let registry = Registry::new(d.data_dir.clone(), d.scripts_dir, d.clock.clone());
        let db = dbhealth::DbHealth::new(d.store.clone(), d.db_timeout);
        let node_id = d.rng.hex(8).unwrap_or_default();
        Self {
            inner: Arc::new(Inner {
                store: d.store,
                keys: keys::LiveKeys::new(d.keys, d.key_file),
                jwt_secret: d.jwt_secret,
                clock: d.clock,
                rng: d.rng,
                pin_params: d.pin_params,
                kdf: kdf::KdfGate::new(d.kdf),
                registry,
                passwd: users::PasswdCache::default(),
                directories: directory::Directories::default(),
                dummy_hash: std::sync::OnceLock::new(),
                data_dir: d.data_dir,
                breakers: breaker::Breakers::default(),
                outbox: outbox::Outbox::default(),
                handlers: notify::HandlerCache::default(),
                limits: limits::LimitStats::default(),
                blocks: limits::BlockCache::default(),
                settings: snapshot::SettingsCache::default(),
                audit: std::sync::OnceLock::new(),
                audit_figures: Arc::default(),
                db,
                stat_flush: stats::StatFlush::default(),
                node_id,
                delivery: delivery::DeliveryCounts::default(),
                followers: delivery::Followers::default(),
                public_url: d.public_url,
            }),
        }
    }

    /// The database, for the process's own plumbing (the CLI's `migrate` and `copy-db`);
    /// the use cases are the methods of [`Services`].
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Closes the database (after the last call of a stopping server).
    pub async fn close(&self) {
        self.inner.store.close().await;
    }

    /// The clock.
    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    /// A fresh request id: 16 hex digits.
    pub fn request_id(&self) -> String {
        let mut b = [0u8; 8];
        if self.rng().fill(&mut b).is_err() {
            return "0000000000000000".into();
        }
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    pub(crate) fn rng(&self) -> &dyn RandomSource {
        self.inner.rng.as_ref()
    }

    pub(crate) fn keys(&self) -> &keys::LiveKeys {
        &self.inner.keys
    }

    /// Reads the key file again if it changed since (the server calls this every
    /// [`keys::WATCH_EVERY`]); true when the keys changed.
    pub fn reload_keys_if_changed(&self) -> bool {
        self.inner.keys.reload(true)
    }

    pub(crate) fn settings_cache(&self) -> &snapshot::SettingsCache {
        &self.inner.settings
    }

    pub(crate) fn passwd_cache(&self) -> &users::PasswdCache {
        &self.inner.passwd
    }

    pub(crate) fn directories(&self) -> &directory::Directories {
        &self.inner.directories
    }

    pub(crate) fn clock_arc(&self) -> Arc<dyn Clock> {
        self.inner.clock.clone()
    }

    pub(crate) fn data_dir(&self) -> &std::path::Path {
        &self.inner.data_dir
    }

    pub(crate) fn jwt_secret(&self) -> &[u8] {
        &self.inner.jwt_secret
    }

    pub(crate) fn stat_flush(&self) -> &stats::StatFlush {
        &self.inner.stat_flush
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Send-limit hits on this node.
    pub fn limit_stats(&self) -> &limits::LimitStats {
        &self.inner.limits
    }

    pub(crate) fn block_cache(&self) -> &limits::BlockCache {
        &self.inner.blocks
    }

    pub(crate) fn handler_cache(&self) -> &notify::HandlerCache {
        &self.inner.handlers
    }

    /// The Argon2 gate (for metrics).
    pub fn kdf(&self) -> &kdf::KdfGate {
        &self.inner.kdf
    }

    /// The gateways' circuit breakers on this node.
    pub fn breakers(&self) -> &breaker::Breakers {
        &self.inner.breakers
    }

    /// The parameters of new PIN and password hashes.
    pub fn pin_params(&self) -> otpgate_core::pin::PinParams {
        self.inner.pin_params
    }

    /// Hashes a PIN or password with Argon2id off the async runtime, bounded in concurrency.
    pub async fn hash_secret(&self, secret: &str) -> Result<String> {
        let params = self.inner.pin_params;
        let secret = zeroize::Zeroizing::new(secret.to_owned());
        self.inner
            .kdf
            .run(&call::kdf_share(), move |memory| {
                params.hash_in(&secret, memory)
            })
            .await?
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// A hash of a random secret with the current PIN-hash parameters, made once per node.
    pub(crate) async fn dummy_pin_hash(&self) -> Result<String> {
        if let Some(h) = self.inner.dummy_hash.get() {
            return Ok(h.clone());
        }
        let secret: String = self
            .rng()
            .bytes(24)?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let h = self.hash_secret(&secret).await?;
        Ok(self.inner.dummy_hash.get_or_init(|| h).clone())
    }

    /// Verifies a PIN or password against an Argon2id hash, off the async runtime.
    pub async fn verify_secret(&self, secret: &str, hash: &str) -> Result<bool> {
        let secret = zeroize::Zeroizing::new(secret.to_owned());
        let hash = hash.to_owned();
        // What the current parameters need stays allocated; a larger hash (imported from
        // privacyIDEA) does not leave its memory behind.
        let keep = self.inner.pin_params.block_count();
        self.inner
            .kdf
            .run(&call::kdf_share(), move |memory| {
                let ok = otpgate_core::pin::verify_in(&secret, &hash, memory);
                if memory.len() > keep {
                    memory.truncate(keep);
                    memory.shrink_to_fit();
                }
                ok
            })
            .await
    }

    /// Deletes expired challenges (housekeeping; answers never depend on it).
    pub async fn purge_expired_challenges(&self) -> Result<u64> {
        Ok(self
            .store()
            .challenge_purge_all_expired(self.clock().now_ms())
            .await?)
    }

    /// Seals a transaction id into an opaque, tamper-proof RADIUS `State` (AES-GCM with the
    /// key ring, so any node of a cluster can open it).
    pub fn seal_state(&self, transaction_id: &str) -> Result<Vec<u8>> {
        Ok(self
            .keys()
            .seal_str(self.rng(), transaction_id, STATE_AAD)?
            .into_bytes())
    }

    /// Opens a RADIUS `State` made by [`Services::seal_state`]; None if it is not one.
    pub fn open_state(&self, state: &[u8]) -> Option<String> {
        let text = std::str::from_utf8(state).ok()?;
        self.keys()
            .open_str(text, STATE_AAD)
            .ok()
            .map(|t| t.to_string())
    }
}
