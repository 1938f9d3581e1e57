//! The node's key ring, and key rotation: every sealed value re-encrypted with a new key
//! ring in one transaction.
//!
//! A running node follows its key file: when it meets a value sealed with a key its ring does
//! not hold (another process rotated the keys), it reads the file again (at most once a
//! second) and retries; and it looks at the file every ten seconds, so new secrets are sealed
//! with the new active key soon after a rotation. Keys are only ever added to a running
//! node's ring, never dropped, so a file edited by hand cannot make it lose a key it uses.
//! So `otpgate keys rotate` runs while logins go on.

use crate::{Result, ServiceError, Services};
use otpgate_core::CoreError;
use otpgate_core::secret::{KEY_CHECK_AAD, KeyRing};
use otpgate_store::SealedKind;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};
use zeroize::Zeroizing;

/// The shortest time between two reads of the key file.
const RELOAD_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// How often a running node looks whether its key file changed.
pub const WATCH_EVERY: Duration = Duration::from_secs(10);

/// The node's key ring, following its key file.
#[derive(Debug)]
pub struct LiveKeys {
    ring: RwLock<Arc<KeyRing>>,
    file: Option<PathBuf>,
    /// When the file was last read, and its modification time then.
    last: Mutex<(Option<Instant>, Option<SystemTime>)>,
}

impl LiveKeys {
    /// `ring`, read from `file` (None: a ring that never changes, for tests and tools).
    pub fn new(ring: KeyRing, file: Option<PathBuf>) -> Self {
        let modified = file
            .as_ref()
            .and_then(|f| std::fs::metadata(f).ok())
            .and_then(|m| m.modified().ok());
        Self {
            ring: RwLock::new(Arc::new(ring)),
            file,
            last: Mutex::new((None, modified)),
        }
    }

    /// The ring now.
    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring
            .read()
            .map(|r| r.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Decrypts `sealed`; a value of a key the ring does not hold makes the node read its key
    /// file again first.
    pub fn open(
        &self,
        sealed: &str,
        aad: &str,
    ) -> std::result::Result<Zeroizing<Vec<u8>>, CoreError> {
        let ring = self.ring();
        match KeyRing::key_id_of(sealed) {
            Some(id) if !ring.holds(id) && self.reload(false) => self.ring().open(sealed, aad),
            _ => ring.open(sealed, aad),
        }
    }

    /// [`LiveKeys::open`] to a UTF-8 string.
    pub fn open_str(
        &self,
        sealed: &str,
        aad: &str,
    ) -> std::result::Result<Zeroizing<String>, CoreError> {
        let bytes = self.open(sealed, aad)?;
        String::from_utf8(bytes.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| CoreError::Decrypt("not UTF-8"))
    }

    /// Encrypts with the active key.
    pub fn seal(
        &self,
        rng: &dyn otpgate_core::RandomSource,
        plaintext: &[u8],
        aad: &str,
    ) -> std::result::Result<String, CoreError> {
        self.ring().seal(rng, plaintext, aad)
    }

    /// [`LiveKeys::seal`] of a UTF-8 string.
    pub fn seal_str(
        &self,
        rng: &dyn otpgate_core::RandomSource,
        plaintext: &str,
        aad: &str,
    ) -> std::result::Result<String, CoreError> {
        self.ring().seal_str(rng, plaintext, aad)
    }

    /// Reads the key file again (with `only_if_modified`, only when its modification time
    /// changed; at most once a second either way); true when the ring gained a key or a new
    /// active one. A file that does not parse is logged and ignored.
    pub fn reload(&self, only_if_modified: bool) -> bool {
        let Some(file) = &self.file else {
            return false;
        };
        let Ok(mut last) = self.last.lock() else {
            return false;
        };
        if last.0.is_some_and(|t| t.elapsed() < RELOAD_AT_MOST_EVERY) {
            return false;
        }
        let modified = std::fs::metadata(file).ok().and_then(|m| m.modified().ok());
        if only_if_modified && modified == last.1 {
            return false;
        }
        *last = (Some(Instant::now()), modified);
        let text = match std::fs::read_to_string(file) {
            Ok(t) => Zeroizing::new(t),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "the key file could not be read again");
                return false;
            }
        };
        let fresh = match KeyRing::parse(&text) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "the key file does not parse; the keys stay as they were");
                return false;
            }
        };
        let old = self.ring();
        let merged = old.merged_with(&fresh);
        let changed =
            merged.active_id() != old.active_id() || merged.ids().count() != old.ids().count();
        if changed {
            tracing::info!(
                active = merged.active_id(),
                "the key file changed: keys reloaded"
            );
            if let Ok(mut r) = self.ring.write() {
                *r = Arc::new(merged);
            }
        }
        changed
    }
}

/// How many values a rotation re-encrypted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RotateReport {
    /// OTP seeds.
    pub token_keys: usize,
    /// Gateway options and headers.
    pub gateway_secrets: usize,
    /// SMTP server passwords.
    pub smtp_passwords: usize,
    /// LDAP resolvers' service passwords.
    pub resolver_passwords: usize,
    /// RADIUS servers' shared secrets.
    pub radius_secrets: usize,
}

impl Services {
    /// Re-encrypts every sealed value (OTP seeds, gateway secrets, SMTP passwords, LDAP
    /// service passwords, the key check) with `new`'s active key, all or nothing. Every value must open with the current
    /// key ring first; `new` must still hold the old keys for nodes not yet restarted.
    pub async fn rotate_keys(&self, new: &KeyRing) -> Result<RotateReport> {
        let mut report = RotateReport::default();
        let mut changes = Vec::new();
        for sealed in self.store().sealed_values().await? {
            let aad = match sealed.kind {
                SealedKind::TokenKey => {
                    report.token_keys += 1;
                    crate::tokens::key_aad(&sealed.owner)
                }
                SealedKind::GatewayOption => {
                    report.gateway_secrets += 1;
                    crate::gateways::aad(&sealed.owner, &sealed.otype, &sealed.key)
                }
                SealedKind::SmtpPassword => {
                    report.smtp_passwords += 1;
                    crate::smtpserver::aad(&sealed.owner)
                }
                SealedKind::ResolverSecret => {
                    report.resolver_passwords += 1;
                    crate::directory::aad(&sealed.owner)
                }
                SealedKind::RadiusSecret => {
                    report.radius_secrets += 1;
                    crate::radiusserver::aad(&sealed.owner)
                }
                SealedKind::KeyCheck => KEY_CHECK_AAD.to_owned(),
                SealedKind::PiPepper => crate::auth::pepper_aad(&sealed.owner),
            };
            let plain = self.keys().open(&sealed.value, &aad).map_err(|_| {
                ServiceError::Internal(format!(
                    "a secret ({:?} {}) cannot be decrypted with the current keys; nothing was changed",
                    sealed.kind, sealed.owner
                ))
            })?;
            let resealed = new.seal(self.rng(), &plain, &aad)?;
            changes.push((sealed, resealed));
        }
        self.store().reseal(&changes).await?;
        Ok(report)
    }
}
