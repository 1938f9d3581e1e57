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

/// Tells a request whether its entry was written (the error's text if not).
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

/// The audit writer: takes every job waiting (up to [`otpgate_store::audit::AUDIT_BATCH`]),
/// writes the entries with one statement and tells each request. When that statement fails,
/// each entry is written on its own, so one bad entry (say, text PostgreSQL refuses) costs
/// only its own row. Ends when the services are gone.
async fn write_batches(
    store: otpgate_store::Store,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<AuditJob>,
) {
    let mut jobs = Vec::new();
    while rx
        .recv_many(&mut jobs, otpgate_store::audit::AUDIT_BATCH)
        .await
        > 0
    {
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
        let results: Vec<std::result::Result<(), String>> =
            match store.audit_insert_many(&entries).await {
                Ok(()) => vec![Ok(()); entries.len()],
                Err(_) => {
                    let mut each = Vec::with_capacity(entries.len());
                    for e in &entries {
                        each.push(store.audit_insert(e).await.map_err(|e| e.to_string()));
                    }
                    each
                }
            };
        for ((ack, r), e) in waiting.into_iter().zip(results).zip(&entries) {
            if let Err(Err(why)) = ack.send(r) {
                // The request is gone (timed out): nobody else will report the loss.
                tracing::error!(error = %why, action = %e.action, "audit entry could not be written");
            }
        }
        for done in flushed {
            let _ = done.send(());
        }
    }
}

impl Services {
    /// Writes an entry; a failure is logged, never fails the request it describes.
    ///
    /// Concurrent requests' entries are written together (group commit): each request hands
    /// its entry to this node's audit writer and waits until the statement that holds it has
    /// committed, so an answered request is audited, as before, with one commit for many.
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

    /// Waits until every audit entry queued so far is written (before the database closes).
    pub async fn flush_audit(&self) {
        let (done, flushed) = tokio::sync::oneshot::channel();
        if self.audit_writer().send(AuditJob::Flush(done)).is_ok() {
            let _ = flushed.await;
        }
    }

    /// This node's audit writer, started with the first entry.
    fn audit_writer(&self) -> &AuditQueue {
        self.inner.audit.get_or_init(|| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(write_batches(self.store().clone(), rx));
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
