//! Key rotation: every sealed value re-encrypted with a new key ring in one transaction.

use crate::{Result, ServiceError, Services};
use otpgate_core::secret::{KEY_CHECK_AAD, KeyRing};
use otpgate_store::SealedKind;

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
