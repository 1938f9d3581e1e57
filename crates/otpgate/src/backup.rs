//! `otpgate backup FILE`: a consistent snapshot of a running installation in one tar file —
//! the SQLite database (`VACUUM INTO`, taken while the server runs), the key ring and the JWT
//! secret (without them the database's secrets cannot be opened), and a `BACKUP` note saying
//! what it holds. Restored by unpacking it into an empty data directory (`tar -xf FILE -C DIR`).
//! On PostgreSQL the database is `pg_dump`'s: the file then holds the keys and the note.

use crate::bootstrap::{JWT_FILE, KEY_FILE, Loaded};
use anyhow::Context;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The database file inside the backup (and in a data directory).
pub const DATABASE_FILE: &str = "otpgate.sqlite";

/// What a backup holds: (file name in the archive, bytes).
pub struct Written {
    /// The files, in the archive's order.
    pub files: Vec<(String, u64)>,
    /// Whether the database is in it (SQLite) or must be dumped apart (PostgreSQL).
    pub database_included: bool,
}

/// Writes the backup of `loaded`'s installation to `file`, which must not exist yet; the file
/// is readable by its owner only (it holds the keys) and appears only when complete.
pub async fn write(loaded: &Loaded, file: &Path) -> anyhow::Result<Written> {
    if file.exists() {
        anyhow::bail!(
            "{} exists: a backup never overwrites a file",
            file.display()
        );
    }
    let dir = &loaded.config.server.data_dir;
    let sqlite = loaded.services.store().backend() == otpgate_store::Backend::Sqlite;
    // Working files in a directory next to the backup that only this user may enter (the
    // snapshot is the whole database), removed however this ends.
    let stem = file.as_os_str().to_string_lossy().into_owned();
    let work_dir: std::path::PathBuf = format!("{stem}.work-{}", std::process::id()).into();
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&work_dir)
            .with_context(|| format!("making {}", work_dir.display()))?;
    }
    let _work = Leftovers(work_dir.clone());
    let snapshot = work_dir.join(DATABASE_FILE);
    let partial = work_dir.join("backup.tar");
    let now = loaded.services.clock().now();
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    if sqlite {
        loaded
            .services
            .store()
            .sqlite_snapshot(&snapshot)
            .await
            .context("taking a snapshot of the SQLite database")?;
        entries.push((
            DATABASE_FILE.to_owned(),
            fs::read(&snapshot).context("reading the snapshot")?,
        ));
    }
    for name in [KEY_FILE, JWT_FILE] {
        let bytes = fs::read(dir.join(name))
            .with_context(|| format!("reading {}", dir.join(name).display()))?;
        entries.push((name.to_owned(), bytes));
    }
    let note = format!(
        "otpgate {} backup, made {}\ndatabase: {}\nrestore: mkdir -m 700 DATA && tar -xf FILE -C DATA && otpgate --data-dir DATA serve\n",
        env!("CARGO_PKG_VERSION"),
        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        if sqlite {
            format!("{DATABASE_FILE} (SQLite, a consistent snapshot)")
        } else {
            "not included (PostgreSQL: back it up with pg_dump; these keys open its secrets)"
                .to_owned()
        }
    );
    entries.push(("BACKUP".to_owned(), note.into_bytes()));

    {
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .context("creating the backup file")?;
        let mtime = u64::try_from(now.timestamp()).unwrap_or(0);
        for (name, bytes) in &entries {
            out.write_all(&tar_header(name, bytes.len() as u64, mtime)?)?;
            out.write_all(bytes)?;
            let pad = (512 - bytes.len() % 512) % 512;
            out.write_all(&vec![0u8; pad])?;
        }
        out.write_all(&[0u8; 1024])?;
        out.sync_all().context("writing the backup file")?;
    }
    // Appears whole or not at all (a hard link fails if the file was made meanwhile).
    fs::hard_link(&partial, file).with_context(|| format!("writing {}", file.display()))?;
    Ok(Written {
        files: entries
            .iter()
            .map(|(n, b)| (n.clone(), b.len() as u64))
            .collect(),
        database_included: sqlite,
    })
}

/// A working directory removed when dropped.
struct Leftovers(std::path::PathBuf);

impl Drop for Leftovers {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A POSIX ustar header for a regular file, mode 0600, owned by uid/gid 0 (a restore by
/// another user gets the files as its own).
fn tar_header(name: &str, size: u64, mtime: u64) -> anyhow::Result<[u8; 512]> {
    fn put(h: &mut [u8; 512], at: usize, bytes: &[u8]) {
        if let Some(dst) = h.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }
    anyhow::ensure!(name.len() < 100, "file name too long for the archive");
    let mut h = [0u8; 512];
    put(&mut h, 0, name.as_bytes());
    put(&mut h, 100, b"0000600\0");
    put(&mut h, 108, b"0000000\0");
    put(&mut h, 116, b"0000000\0");
    put(&mut h, 124, format!("{size:011o}\0").as_bytes());
    put(&mut h, 136, format!("{mtime:011o}\0").as_bytes());
    put(&mut h, 148, b"        ");
    put(&mut h, 156, b"0");
    put(&mut h, 257, b"ustar\0");
    put(&mut h, 263, b"00");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
    Ok(h)
}
