//! `otpgate import privacyidea`: where privacyIDEA's database, key file and pepper are
//! (`pi.cfg` or flags), reading them, and which otpgate admins an import may replace. The
//! import itself is `otpgate_service::Services::import_privacyidea`.

use crate::bootstrap::INITIAL_ADMIN_FILE;
use anyhow::{Context, bail};
use otpgate_core::picrypt::PiKeys;
use otpgate_service::import::{PiConfig, PiInstallation};
use otpgate_store::pisource::{PiSource, source_url};
use sha2::Digest;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Where the privacyIDEA installation is: `pi.cfg`, with flags on top.
#[derive(Clone, Default)]
pub struct Source {
    /// privacyIDEA's `pi.cfg`.
    pub pi_config: Option<PathBuf>,
    /// Its database (`SQLALCHEMY_DATABASE_URI`).
    pub database_url: Option<String>,
    /// Its key file (`PI_ENCFILE`).
    pub enckey: Option<PathBuf>,
    /// Its `PI_PEPPER`.
    pub pepper: Option<String>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("pi_config", &self.pi_config)
            .field(
                "database_url",
                &self.database_url.as_deref().map(otpgate_store::redact_url),
            )
            .field("enckey", &self.enckey)
            .field("pepper", &self.pepper.as_ref().map(|_| "…"))
            .finish()
    }
}

/// Reads the installation: every table, the keys, the pepper. Nothing is written to it.
pub async fn read(source: &Source) -> anyhow::Result<PiInstallation> {
    let cfg = match &source.pi_config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            PiConfig::parse(&text).map_err(anyhow::Error::msg)?
        }
        None => PiConfig::default(),
    };
    let Some(uri) = source.database_url.clone().or(cfg.database_uri) else {
        bail!("privacyIDEA's database is unknown: give --pi-config or --pi-database-url");
    };
    let Some(enckey) = source
        .enckey
        .clone()
        .or_else(|| cfg.encfile.map(PathBuf::from))
    else {
        bail!("privacyIDEA's key file is unknown: give --pi-config or --pi-enckey");
    };
    let bytes = Zeroizing::new(
        std::fs::read(&enckey)
            .with_context(|| format!("reading the key file {}", enckey.display()))?,
    );
    let keys = PiKeys::from_file_bytes(&bytes)
        .with_context(|| format!("the key file {}", enckey.display()))?;
    let fingerprint: String = sha2::Sha256::digest(bytes.as_slice())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let url = source_url(&uri)?;
    let db = PiSource::connect(&url).await.with_context(|| {
        format!(
            "opening privacyIDEA's database {}",
            otpgate_store::redact_url(&url)
        )
    })?;
    let tables = db.read_all().await.with_context(|| {
        format!(
            "reading privacyIDEA's database {}",
            otpgate_store::redact_url(&url)
        )
    })?;
    db.close().await;
    Ok(PiInstallation {
        tables,
        keys,
        source: format!("privacyidea:{fingerprint}"),
        // privacyIDEA itself peppers with "missing" when its pi.cfg has no PI_PEPPER.
        pepper: source
            .pepper
            .clone()
            .or(cfg.pepper)
            .or_else(|| source.pi_config.as_ref().map(|_| "missing".to_owned()))
            .map(Zeroizing::new),
    })
}

/// The otpgate admins an imported admin of the same name may replace: the generated
/// initial admin while its password is still the generated one (nobody chose it).
pub async fn replaceable_admins(
    data_dir: &Path,
    services: &otpgate_service::Services,
) -> anyhow::Result<Vec<String>> {
    let Ok(generated) = std::fs::read_to_string(data_dir.join(INITIAL_ADMIN_FILE)) else {
        return Ok(Vec::new());
    };
    let generated = Zeroizing::new(generated);
    let still = services
        .admin_password_matches("admin", generated.trim_end_matches(['\n', '\r']))
        .await?;
    Ok(if still {
        vec!["admin".to_owned()]
    } else {
        Vec::new()
    })
}
