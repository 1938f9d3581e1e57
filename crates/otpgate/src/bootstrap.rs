//! First start and every start: the data directory (0700), the encryption key ring and JWT
//! secret (0600), the database with its schema, the key check value that proves the keys
//! open this database's secrets, and the initial admin.

use crate::config::Config;
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use otpgate_core::secret::{KEY_CHECK_AAD, KEY_CHECK_PLAINTEXT, KeyRing};
use otpgate_core::{Clock, OsRandom, RandomSource, SystemClock};
use otpgate_service::{Deps, Services};
use otpgate_store::Store;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

/// The key ring file in the data directory.
pub const KEY_FILE: &str = "encryption.keys";
/// The JWT signing secret file in the data directory.
pub const JWT_FILE: &str = "jwt.secret";
/// Where the generated first admin password is written.
pub const INITIAL_ADMIN_FILE: &str = "initial-admin-password";

/// Writes `contents` to a new file with mode 0600 (fails if it exists).
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))?;
    f.sync_all().ok();
    Ok(())
}

/// Appends a new random key to the key file, which makes it the active one; the old keys stay
/// so values sealed with them still open. The file is replaced atomically (0600). Returns the
/// new file's text and the new key's id.
pub fn add_key(dir: &Path, rng: &dyn RandomSource) -> anyhow::Result<(String, String)> {
    let path = dir.join(KEY_FILE);
    let old = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let ids: Vec<&str> = old
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split(':').next())
        .collect();
    let next = ids
        .iter()
        .filter_map(|id| id.strip_prefix('k').and_then(|n| n.parse::<u64>().ok()))
        .max()
        .unwrap_or(0)
        + 1;
    let mut id = format!("k{next}");
    while ids.contains(&id.as_str()) {
        id.push('x');
    }
    let key = zeroize::Zeroizing::new(rng.bytes(32)?);
    let text = format!(
        "{}\n{id}:{}\n",
        old.trim_end(),
        STANDARD.encode(key.as_slice())
    );
    KeyRing::parse(&text).context("the new key file does not parse")?;
    let tmp = dir.join(format!("{KEY_FILE}.new"));
    let _ = fs::remove_file(&tmp);
    write_private(&tmp, text.as_bytes())?;
    fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
    Ok((text, id))
}

fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        fs::create_dir_all(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("setting mode 0700 on {}", dir.display()))?;
    }
    if !dir.is_dir() {
        bail!("data directory {} is not a directory", dir.display());
    }
    Ok(())
}

fn load_or_create(
    path: &Path,
    make: impl FnOnce() -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<Vec<u8>> {
    if !path.exists() {
        write_private(path, &make()?)?;
    }
    let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        // Whoever can read it can decrypt every secret or sign admin tokens.
        anyhow::bail!(
            "{} is readable by group or others (mode {mode:o}): run `chmod 600 {}` and start again",
            path.display(),
            path.display()
        );
    }
    fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Everything loaded from the data directory and the database.
pub struct Loaded {
    /// The services.
    pub services: Services,
    /// The configuration in effect.
    pub config: Config,
}

/// Prepares the data directory, keys and database and builds the services.
pub async fn load(config: Config) -> anyhow::Result<Loaded> {
    load_with_clock(config, Arc::new(SystemClock)).await
}

/// As [`load`], with the clock given (tests pass a manual clock).
pub async fn load_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Loaded> {
    let dir = config.server.data_dir.clone();
    ensure_data_dir(&dir)?;
    let rng: Arc<dyn RandomSource> = Arc::new(OsRandom);
    let key_text = load_or_create(&dir.join(KEY_FILE), || {
        Ok(KeyRing::generate_file(rng.as_ref())?.into_bytes())
    })?;
    let keys = KeyRing::parse(&String::from_utf8_lossy(&key_text))
        .with_context(|| format!("parsing the key file {}", dir.join(KEY_FILE).display()))?;
    let jwt_text = load_or_create(&dir.join(JWT_FILE), || {
        Ok(STANDARD.encode(rng.bytes(32)?).into_bytes())
    })?;
    let jwt_secret = STANDARD
        .decode(String::from_utf8_lossy(&jwt_text).trim())
        .with_context(|| format!("{} must hold a base64 secret", dir.join(JWT_FILE).display()))?;
    if jwt_secret.len() < 32 {
        bail!(
            "{} must hold at least 32 random bytes",
            dir.join(JWT_FILE).display()
        );
    }
    let url = config.database_url();
    let db_timeout = std::time::Duration::from_millis(config.server.database_timeout_ms);
    let opts = otpgate_store::ConnectOptions {
        max_connections: config.server.database_max_connections,
        wait: std::time::Duration::from_secs(config.server.database_wait_secs),
        sqlite_full_sync: config.server.sqlite_synchronous == "full",
        timeout: Some(db_timeout),
    };
    let store = Store::connect_with(&url, &opts)
        .await
        .with_context(|| format!("opening the database {}", otpgate_store::redact_url(&url)))?;
    check_keys(&store, &keys, rng.as_ref()).await?;
    if store.backend() == otpgate_store::Backend::Sqlite {
        restrict_database_files(&dir);
    }
    let kdf = match config.security.kdf_concurrency {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
        n => n,
    };
    let services = Services::new(Deps {
        store,
        keys,
        key_file: Some(dir.join(KEY_FILE)),
        jwt_secret,
        clock,
        rng,
        pin_params: config.security.pin_hash,
        kdf: otpgate_service::kdf::KdfLimits {
            concurrency: kdf,
            queue: config.security.kdf_queue,
            wait: std::time::Duration::from_millis(config.security.kdf_wait_ms),
        },
        scripts_dir: config.scripts_dir(),
        data_dir: dir,
        db_timeout,
        public_url: config.server.public_url.clone(),
    });
    Ok(Loaded { services, config })
}

/// The SQLite files hold sealed secrets and the audit log: owner-only, like the key files.
fn restrict_database_files(dir: &Path) {
    for f in ["otpgate.sqlite", "otpgate.sqlite-wal", "otpgate.sqlite-shm"] {
        let p = dir.join(f);
        if p.exists()
            && let Err(e) = fs::set_permissions(&p, fs::Permissions::from_mode(0o600))
        {
            tracing::warn!(file = %p.display(), error = %e, "could not restrict database file permissions");
        }
    }
}

/// Stores a key check value at first start; refuses keys that cannot open it later.
async fn check_keys(store: &Store, keys: &KeyRing, rng: &dyn RandomSource) -> anyhow::Result<()> {
    let sealed = keys.seal(rng, KEY_CHECK_PLAINTEXT, KEY_CHECK_AAD)?;
    let stored = store.meta_init("keycheck", &sealed).await?;
    match keys.open(&stored, KEY_CHECK_AAD) {
        Ok(p) if p.as_slice() == KEY_CHECK_PLAINTEXT => Ok(()),
        _ => bail!(
            "the encryption keys in {KEY_FILE} cannot decrypt this database's secrets: the data directory's key file \
             does not belong to this database (restore the original key file, or give every node the same key file)"
        ),
    }
}

/// Creates the first admin if none exists, prints the password once and writes it to
/// `<data-dir>/initial-admin-password` (0600). A file left from an earlier start whose
/// password no longer opens the admin (it was changed) is removed: it would only mislead.
pub async fn initial_admin(services: &Services, dir: &Path) -> anyhow::Result<()> {
    let file = dir.join(INITIAL_ADMIN_FILE);
    if let Some(pw) = services.create_initial_admin().await? {
        let _ = fs::remove_file(&file);
        write_private(&file, format!("{pw}\n").as_bytes())?;
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "otpgate".into());
        println!("Created admin user 'admin' with password: {pw}");
        println!(
            "(also written to {}; change it in the web interface (your name at the top right) or with `{exe} --data-dir {} admin add admin --password-stdin`, which sets a new password for an existing admin)",
            file.display(),
            dir.display()
        );
    } else if let Ok(old) = fs::read_to_string(&file)
        && !services
            .admin_password_matches("admin", old.trim_end_matches(['\n', '\r']))
            .await?
    {
        forget_initial_password(dir);
    }
    Ok(())
}

/// Removes `<data-dir>/initial-admin-password` (the admin's password has changed).
pub fn forget_initial_password(dir: &Path) {
    let file = dir.join(INITIAL_ADMIN_FILE);
    if file.exists() {
        match fs::remove_file(&file) {
            Ok(()) => {
                tracing::info!(file = %file.display(), "removed the initial admin password: it is no longer the admin's")
            }
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "could not remove the outdated initial admin password")
            }
        }
    }
}
