//! The audit log: one entry per call ([`crate::call`] fills in action, client, times, admin
//! and outcome; the use cases add user, realm, serial and what happened). Never a secret.
//! Entries of concurrent calls are written together (group commit).

use crate::{MAX_PAGE, Page, Result, Services};
use otpgate_core::reach::AdminReach;
pub use otpgate_store::AuditEntry;
use otpgate_store::AuditFilter;
pub use otpgate_store::audit::FILTER_COLUMNS;

/// `GET /audit/`'s filters and page.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Column (one of [`FILTER_COLUMNS`]) → pattern (`*` wildcards).
    pub columns: Vec<(&'static str, String)>,
    /// Only successes (or failures).
    pub success: Option<bool>,
    /// Page (from 1).
    pub page: Option<i64>,
    /// Entries per page.
    pub page_size: Option<i64>,
}

mod spool;

use crate::dbhealth::DbHealth;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Tells a request that its entry is kept (in the database or the spool), or why not.
type Ack = tokio::sync::oneshot::Sender<std::result::Result<(), String>>;

/// What the audit writer is asked to do, in order.
pub(crate) enum AuditJob {
    /// Write an entry and tell the request waiting for it.
    Write(Box<AuditEntry>, Ack),
    /// Answer once everything queued before has been written (shutdown).
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The node's audit writer queue (bounded in practice by the requests in flight: each waits
/// for its entry).
pub(crate) type AuditQueue = tokio::sync::mpsc::UnboundedSender<AuditJob>;

/// How the audit writer's entries went, for metrics.
#[derive(Debug, Default)]
pub(crate) struct AuditFigures {
    /// Entries kept in the spool because the database could not take them in time.
    spooled: AtomicU64,
    /// Entries moved from the spool into the database.
    unspooled: AtomicU64,
    /// Entries neither the database nor the spool could take (logged one by one).
    lost: AtomicU64,
}

/// The audit writer's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditCounts {
    /// Entries kept in the spool.
    pub spooled: u64,
    /// Entries moved from the spool into the database.
    pub unspooled: u64,
    /// Entries lost.
    pub lost: u64,
}

/// How often the writer, when idle, moves spooled entries into a database that answers.
const DRAIN_EVERY: Duration = Duration::from_secs(1);

/// Every how many [`DRAIN_EVERY`] the writer looks for the spools of nodes that are gone.
const ORPHANS_EVERY: u64 = 30;

/// What the audit writer works with.
struct Writer {
    store: otpgate_store::Store,
    db: Arc<DbHealth>,
    spool: spool::Spool,
    figures: Arc<AuditFigures>,
}

/// The audit writer: takes every job waiting (up to [`otpgate_store::audit::AUDIT_BATCH`]),
/// writes the entries with one statement and tells each request. The statement may take
/// the database timeout; when it fails that way, or the database is known to be down, the
/// entries go to the spool (on disk before the requests are answered) and move into the
/// database once it answers again. When the statement fails otherwise, each entry is
/// written on its own, so one bad entry (say, text PostgreSQL refuses) costs only its own
/// row. Ends when the services are gone.
async fn write_batches(mut w: Writer, mut rx: tokio::sync::mpsc::UnboundedReceiver<AuditJob>) {
    let mut jobs = Vec::new();
    let mut tick = tokio::time::interval(DRAIN_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            n = rx.recv_many(&mut jobs, otpgate_store::audit::AUDIT_BATCH) => {
                if n == 0 {
                    break;
                }
            }
            _ = tick.tick() => {
                // Other nodes' files are looked for at start and then every half minute.
                if w.spool.pending() || ticks.is_multiple_of(ORPHANS_EVERY) {
                    w.drain(ticks.is_multiple_of(ORPHANS_EVERY)).await;
                }
                ticks += 1;
                continue;
            }
        }
        let mut entries = Vec::new();
        let mut waiting = Vec::new();
        let mut flushed = Vec::new();
        for job in jobs.drain(..) {
            match job {
                AuditJob::Write(e, ack) => {
                    entries.push(*e);
                    waiting.push(ack);
                }
                AuditJob::Flush(done) => flushed.push(done),
            }
        }
        let results = w.write(&entries).await;
        for ((ack, r), e) in waiting.into_iter().zip(results).zip(&entries) {
            if let Err(Err(why)) = ack.send(r) {
                // The request is gone (timed out): nobody else will report the loss.
                tracing::error!(error = %why, action = %e.action, "audit entry could not be written");
            }
        }
        if !flushed.is_empty() {
            w.drain(true).await;
        }
        for done in flushed {
            let _ = done.send(());
        }
    }
}

impl Writer {
    /// Writes `entries` to the database, or to the spool when the database cannot take them
    /// in time; one result per entry.
    async fn write(&mut self, entries: &[AuditEntry]) -> Vec<std::result::Result<(), String>> {
        if !self.db.down() {
            match self.insert(entries.to_vec()).await {
                Ok(()) => {
                    if self.spool.pending() {
                        self.drain(false).await;
                    }
                    return vec![Ok(()); entries.len()];
                }
                Err(Failure::Unavailable) => {}
                Err(Failure::Refused) => {
                    let mut each = Vec::with_capacity(entries.len());
                    for e in entries {
                        each.push(match self.insert(vec![e.clone()]).await {
                            Ok(()) => Ok(()),
                            Err(Failure::Unavailable) => self.keep(std::slice::from_ref(e)),
                            Err(Failure::Refused) => Err("the database refused it".to_owned()),
                        });
                    }
                    return each;
                }
            }
        }
        let kept = self.keep(entries);
        vec![kept; entries.len()]
    }

    /// Inserts entries within the database timeout.
    async fn insert(&self, entries: Vec<AuditEntry>) -> std::result::Result<(), Failure> {
        match tokio::time::timeout(self.db.timeout(), self.store.audit_insert_many(&entries)).await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if !e.is_unavailable() => {
                tracing::warn!(error = %e, "the database refused audit entries");
                Err(Failure::Refused)
            }
            _ => {
                self.db.failed();
                Err(Failure::Unavailable)
            }
        }
    }

    /// Keeps entries in the spool.
    fn keep(&mut self, entries: &[AuditEntry]) -> std::result::Result<(), String> {
        let n = entries.len() as u64;
        match self.spool.append(entries) {
            Ok(()) => {
                self.figures.spooled.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.figures.lost.fetch_add(n, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Moves spooled entries (this node's, and with `orphans` those of nodes that are gone)
    /// into the database, unless it is down.
    async fn drain(&mut self, orphans: bool) {
        if self.db.down() {
            return;
        }
        let (store, db) = (self.store.clone(), self.db.clone());
        let moved = self
            .spool
            .drain(orphans, |batch| {
                let (store, db) = (store.clone(), db.clone());
                async move {
                    match tokio::time::timeout(db.timeout(), store.audit_insert_many(&batch)).await
                    {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err("the database did not answer in time".to_owned()),
                    }
                }
            })
            .await;
        match moved {
            Ok(0) => {}
            Ok(n) => {
                self.figures
                    .unspooled
                    .fetch_add(n as u64, Ordering::Relaxed);
                tracing::info!(entries = n, "spooled audit entries moved into the database");
            }
            Err(e) => tracing::warn!(error = %e, "spooled audit entries stay spooled for now"),
        }
    }
}

/// Why the database did not take entries.
enum Failure {
    /// It did not answer in time, or not at all.
    Unavailable,
    /// It refused them (an entry it cannot store).
    Refused,
}

impl Services {
    /// Keeps an entry: in the database, or in this node's spool when the database cannot
    /// take it within the database timeout. A loss (neither could) is logged and counted,
    /// never fails the request it describes.
    ///
    /// Concurrent requests' entries are written together (group commit): each request hands
    /// its entry to this node's audit writer and waits until the statement that holds it has
    /// committed (or the spool has it on disk), so an answered request is audited, with one
    /// commit for many.
    pub async fn write_audit(&self, entry: &AuditEntry) {
        let writer = self.audit_writer();
        let (done, written) = tokio::sync::oneshot::channel();
        let r = match writer.send(AuditJob::Write(Box::new(entry.clone()), done)) {
            Ok(()) => written
                .await
                .unwrap_or_else(|_| Err("the audit writer stopped".into())),
            // No writer (cannot happen while the services live): write directly.
            Err(_) => self
                .store()
                .audit_insert(entry)
                .await
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = r {
            tracing::error!(error = %e, action = %entry.action, "audit entry could not be written");
        }
    }

    /// Waits until every audit entry queued so far is written (before the database closes),
    /// and moves what the spool holds into the database if it answers.
    pub async fn flush_audit(&self) {
        let (done, flushed) = tokio::sync::oneshot::channel();
        if self.audit_writer().send(AuditJob::Flush(done)).is_ok() {
            let _ = flushed.await;
        }
    }

    /// The audit writer's figures.
    pub fn audit_counts(&self) -> AuditCounts {
        let f = &self.inner.audit_figures;
        AuditCounts {
            spooled: f.spooled.load(Ordering::Relaxed),
            unspooled: f.unspooled.load(Ordering::Relaxed),
            lost: f.lost.load(Ordering::Relaxed),
        }
    }

    /// This node's audit writer, started with the first entry.
    fn audit_writer(&self) -> &AuditQueue {
        self.inner.audit.get_or_init(|| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let writer = Writer {
                store: self.store().clone(),
                db: self.inner.db.clone(),
                spool: spool::Spool::new(
                    &self.inner.data_dir,
                    self.rng().hex(4).unwrap_or_default(),
                ),
                figures: self.inner.audit_figures.clone(),
            };
            tokio::spawn(write_batches(writer, rx));
            tx
        })
    }

    /// `GET /audit/`: entries newest first, filtered by column (`*` wildcards) and success.
    /// `GET /audit/`: entries matching `q`; with `reach` (the admin's `auditlog` reach)
    /// naming realms in every matching policy, only those realms' entries (privacyIDEA's
    /// `allowed_audit_realm`).
    pub async fn list_audit(&self, q: &AuditQuery, reach: &AdminReach) -> Result<Page<AuditEntry>> {
        let realms = match reach {
            AdminReach::Within(reaches) if reaches.iter().all(|r| !r.realms.is_empty()) => {
                let settings = self.settings().await?;
                let mut realms: Vec<String> = settings
                    .realms
                    .iter()
                    .map(|x| x.name.clone())
                    .filter(|name| {
                        reaches.iter().any(|r| {
                            otpgate_core::policy::search_value(&r.realms, &[name.as_str()])
                        })
                    })
                    .collect();
                realms.sort();
                Some(realms)
            }
            _ => None,
        };
        let filter = AuditFilter {
            columns: q.columns.clone(),
            success: q.success,
            since_ms: None,
            realms,
        };
        let page = q.page.unwrap_or(1).clamp(1, MAX_PAGE);
        let page_size = q.page_size.unwrap_or(15).clamp(1, 1000);
        let (items, count) = self.store().audit_list(&filter, page, page_size).await?;
        Ok(Page {
            items,
            count,
            page,
            page_size,
        })
    }
}
