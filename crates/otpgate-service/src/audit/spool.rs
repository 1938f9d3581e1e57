//! The audit spool: where a node keeps audit entries the database cannot take in time (an
//! outage, a lock held beyond the database timeout), so that an answered request is audited
//! without waiting for the database.
//!
//! One file per running node in the data directory, `audit-spool-<pid>-<random>-<n>.jsonl`, one
//! entry per line, locked by its node for as long as it runs; entries are on disk (fsync)
//! before the requests they describe are answered. Once the database answers again the
//! node's audit writer moves them into the audit table, oldest first, and empties the file;
//! the file of a node that is gone (its lock free) is taken over the same way and removed.
//! A node killed while moving entries may leave the last moved batch in both places: it then
//! appears twice in the audit log, never not at all. Beyond [`MAX_SPOOL_BYTES`] entries are
//! dropped, logged and counted (`otpgate_audit_lost_total`).

use otpgate_store::AuditEntry;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The most a node's spool file holds (about 100,000 entries).
pub(crate) const MAX_SPOOL_BYTES: u64 = 64 * 1024 * 1024;

const PREFIX: &str = "audit-spool-";
const SUFFIX: &str = ".jsonl";

/// One spool file, locked by whoever holds this.
pub(crate) struct SpoolFile {
    path: PathBuf,
    file: File,
}

/// This node's spool: its own file, opened (and locked) with the first entry.
pub(crate) struct Spool {
    dir: PathBuf,
    /// What makes this node's file name its own (random, hex).
    id: String,
    own: Option<SpoolFile>,
}

impl Spool {
    /// The spool of a node whose data directory is `dir`; `id` (random) makes its file name
    /// its own even where every node runs as process 1.
    pub(crate) fn new(dir: &Path, id: String) -> Self {
        Self {
            dir: dir.to_owned(),
            id,
            own: None,
        }
    }

    /// Appends `entries` and syncs them to disk. Err: how many were lost, and why.
    pub(crate) fn append(&mut self, entries: &[AuditEntry]) -> Result<(), String> {
        let own = match &mut self.own {
            Some(f) => f,
            None => {
                static OPENED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let name = format!(
                    "{PREFIX}{}-{}-{}{SUFFIX}",
                    std::process::id(),
                    self.id,
                    OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                );
                let path = self.dir.join(name);
                let file = open_locked(&path, true)?
                    .ok_or_else(|| format!("{} is locked by another process", path.display()))?;
                self.own.insert(SpoolFile { path, file })
            }
        };
        let mut text = String::new();
        for e in entries {
            let line = serde_json::to_string(e).map_err(|e| e.to_string())?;
            text.push_str(&line);
            text.push('\n');
        }
        let len = own.file.metadata().map_err(|e| e.to_string())?.len();
        if len + text.len() as u64 > MAX_SPOOL_BYTES {
            return Err(format!(
                "the audit spool {} is full ({MAX_SPOOL_BYTES} bytes)",
                own.path.display()
            ));
        }
        own.file
            .write_all(text.as_bytes())
            .and_then(|()| own.file.sync_data())
            .map_err(|e| format!("{}: {e}", own.path.display()))
    }

    /// Whether this node's own file holds entries.
    pub(crate) fn pending(&self) -> bool {
        self.own
            .as_ref()
            .and_then(|f| f.file.metadata().ok())
            .is_some_and(|m| m.len() > 0)
    }

    /// Moves every spooled entry (this node's, then, with `orphans`, those of nodes that are
    /// gone) through `insert`, a batch at a time, oldest first. A file is emptied (this node's) or removed
    /// (another's) once all of its entries are in; when `insert` fails, the entries not yet
    /// in are written back and the error is returned.
    pub(crate) async fn drain<F, Fut>(
        &mut self,
        orphans: bool,
        mut insert: F,
    ) -> Result<usize, String>
    where
        F: FnMut(Vec<AuditEntry>) -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let mut moved = 0;
        if let Some(own) = &mut self.own {
            moved += drain_file(own, &mut insert).await?;
        }
        let found = if orphans { self.orphans() } else { Vec::new() };
        for path in found {
            let Ok(Some(file)) = open_locked(&path, false) else {
                continue; // its node still runs (or it went meanwhile)
            };
            let mut orphan = SpoolFile { path, file };
            moved += drain_file(&mut orphan, &mut insert).await?;
            let _ = std::fs::remove_file(&orphan.path);
        }
        Ok(moved)
    }

    /// Spool files of other nodes (or of this node's earlier runs) in the data directory.
    fn orphans(&self) -> Vec<PathBuf> {
        let own = self.own.as_ref().map(|f| f.path.clone());
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found: Vec<PathBuf> = dir
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(SUFFIX))
                    && Some(p) != own.as_ref()
            })
            .collect();
        found.sort();
        found
    }
}

/// Opens `path` (creating it when `create`) and takes its exclusive lock without waiting.
/// Ok(None): another process holds it.
fn open_locked(path: &Path, create: bool) -> Result<Option<File>, String> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(create)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
    }
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("{}: {e}", path.display())),
    }
}

/// Moves one file's entries through `insert`; see [`Spool::drain`].
async fn drain_file<F, Fut>(f: &mut SpoolFile, insert: &mut F) -> Result<usize, String>
where
    F: FnMut(Vec<AuditEntry>) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let entries = read_entries(f)?;
    let total = entries.len();
    let mut done = 0;
    for batch in entries.chunks(otpgate_store::audit::AUDIT_BATCH) {
        if let Err(e) = insert(batch.to_vec()).await {
            rewrite(f, entries.get(done..).unwrap_or_default())?;
            return Err(e);
        }
        done += batch.len();
    }
    f.file
        .set_len(0)
        .and_then(|()| f.file.sync_data())
        .map_err(|e| format!("{}: {e}", f.path.display()))?;
    Ok(total)
}

/// The entries of a spool file; lines that do not parse (a write cut off by a crash) are
/// logged and skipped.
fn read_entries(f: &mut SpoolFile) -> Result<Vec<AuditEntry>, String> {
    f.file
        .seek(SeekFrom::Start(0))
        .map_err(|e| format!("{}: {e}", f.path.display()))?;
    let mut entries = Vec::new();
    for line in BufReader::new(&f.file).lines() {
        let line = line.map_err(|e| format!("{}: {e}", f.path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line) {
            Ok(e) => entries.push(e),
            Err(e) => {
                tracing::error!(file = %f.path.display(), error = %e, "an audit spool line does not parse; skipped");
            }
        }
    }
    Ok(entries)
}

/// Replaces a spool file's content with `entries` (the same file, so its lock stays).
fn rewrite(f: &mut SpoolFile, entries: &[AuditEntry]) -> Result<(), String> {
    let mut text = String::new();
    for e in entries {
        text.push_str(&serde_json::to_string(e).map_err(|e| e.to_string())?);
        text.push('\n');
    }
    f.file
        .set_len(0)
        .and_then(|()| f.file.write_all(text.as_bytes()))
        .and_then(|()| f.file.sync_data())
        .map_err(|e| format!("{}: {e}", f.path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: i64) -> AuditEntry {
        AuditEntry {
            ts: i,
            action: format!("POST /validate/check {i}"),
            info: "line\nbreak \"quoted\"".into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn spooled_entries_come_back_in_order_once_and_survive_a_failed_move() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::new(dir.path(), "t".into());
        assert!(!spool.pending());
        let first: Vec<_> = (0..300).map(entry).collect();
        spool.append(&first).unwrap();
        spool.append(&[entry(300)]).unwrap();
        assert!(spool.pending());

        // The database fails after the first batch: the rest stays spooled.
        let mut taken = Vec::new();
        let r = spool
            .drain(true, |batch| {
                let fail = !taken.is_empty();
                if !fail {
                    taken.extend(batch);
                }
                async move { if fail { Err("down".into()) } else { Ok(()) } }
            })
            .await;
        assert_eq!(r, Err("down".into()));
        assert_eq!(taken.len(), otpgate_store::audit::AUDIT_BATCH);
        assert!(spool.pending());

        let mut rest = Vec::new();
        let moved = spool
            .drain(true, |batch| {
                rest.extend(batch);
                async { Ok(()) }
            })
            .await
            .unwrap();
        assert_eq!(moved, 301 - otpgate_store::audit::AUDIT_BATCH);
        taken.extend(rest);
        let expected: Vec<_> = (0..=300).map(entry).collect();
        assert_eq!(taken, expected, "every entry once, in order, intact");
        assert!(!spool.pending());
    }

    #[tokio::test]
    async fn the_spool_of_a_node_that_is_gone_is_taken_over_and_a_live_ones_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut gone = Spool::new(dir.path(), "t".into());
        gone.append(&[entry(1), entry(2)]).unwrap();
        let mut live = Spool::new(dir.path(), "t".into());
        live.append(&[entry(3)]).unwrap();

        // While `gone` still holds its lock, `live` moves only its own entries.
        let mut moved = Vec::new();
        live.drain(true, |b| {
            moved.extend(b);
            async { Ok(()) }
        })
        .await
        .unwrap();
        assert_eq!(moved, vec![entry(3)]);

        drop(gone); // its node ended: the lock is free
        let mut moved = Vec::new();
        live.drain(true, |b| {
            moved.extend(b);
            async { Ok(()) }
        })
        .await
        .unwrap();
        assert_eq!(moved, vec![entry(1), entry(2)]);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(
            left.len(),
            1,
            "the orphan's file is removed, the live one's kept"
        );
    }

    #[test]
    fn a_full_spool_refuses_more() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::new(dir.path(), "t".into());
        spool.append(&[entry(0)]).unwrap();
        let own = spool.own.as_ref().unwrap();
        own.file.set_len(MAX_SPOOL_BYTES - 10).unwrap();
        let err = spool.append(&[entry(1)]).unwrap_err();
        assert!(err.contains("full"), "{err}");
    }
}
