//! The database as this node sees it, and the calls' deadlines around it.
//!
//! Every wait for the database is bounded (`server.database_timeout_ms`: the store's pool,
//! lock and statement timeouts). The first call the database cannot serve in that time opens
//! this node's database breaker: from then on every call is answered 503 at once, without
//! waiting for the database again, and a background probe asks the database every 250 ms
//! whether it would take a write; the first yes closes the breaker. `/healthz` reads the
//! breaker and the same probe, bounded well under a second.
//!
//! A call whose caller has gone (the request timeout passed, the connection closed, RADIUS
//! gave up) is marked abandoned: it still ends as a whole and is audited, but sends no SMS
//! (see [`crate::call`]).

use crate::Services;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// How often the probe asks a database that failed.
const PROBE_EVERY: Duration = Duration::from_millis(250);

/// The longest `/healthz` waits for the database.
const HEALTH_PATIENCE: Duration = Duration::from_millis(400);

/// This node's view of the database (shared with its audit writer).
#[derive(Debug)]
pub(crate) struct DbHealth {
    store: otpgate_store::Store,
    /// The longest wait for the database.
    timeout: Duration,
    /// Calls are refused at once.
    down: AtomicBool,
    /// A probe task is running.
    probing: AtomicBool,
    /// How often the breaker opened.
    outages: AtomicU64,
    /// Calls refused while it was open.
    refused: AtomicU64,
}

/// The database breaker's figures, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbFigures {
    /// The breaker is open: calls are answered 503 at once.
    pub down: bool,
    /// How often it opened since the start.
    pub outages: u64,
    /// Calls answered 503 without trying while it was open.
    pub refused: u64,
}

impl DbHealth {
    /// The view of `store`, whose waits are bounded by `timeout`.
    pub(crate) fn new(store: otpgate_store::Store, timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            store,
            timeout,
            down: AtomicBool::new(false),
            probing: AtomicBool::new(false),
            outages: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// Whether calls are refused at once.
    pub(crate) fn down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// The longest wait for the database.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The database failed (unreachable, or not in time): open the breaker and start
    /// probing unless a probe runs already.
    pub(crate) fn failed(self: &Arc<Self>) {
        if !self.down.swap(true, Ordering::SeqCst) {
            self.outages.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "the database did not answer in time: refusing calls with 503 until it does"
            );
        }
        if self
            .probing
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            tokio::spawn(probe(self.clone()));
        }
    }
}

impl Services {
    /// Whether calls are being refused because the database failed and has not answered
    /// since.
    pub fn database_down(&self) -> bool {
        self.inner.db.down()
    }

    /// Counts a call refused at once while the database is down.
    pub(crate) fn database_refused(&self) {
        self.inner.db.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// A call found the database failing: see [`DbHealth::failed`].
    pub(crate) fn database_failed(&self) {
        self.inner.db.failed();
    }

    /// The breaker's figures.
    pub fn database_figures(&self) -> DbFigures {
        let db = &self.inner.db;
        DbFigures {
            down: db.down(),
            outages: db.outages.load(Ordering::Relaxed),
            refused: db.refused.load(Ordering::Relaxed),
        }
    }

    /// `/healthz`: the breaker is closed and the database would take a write now, asked for
    /// at most [`HEALTH_PATIENCE`] (or the database timeout, when shorter).
    pub async fn healthy(&self) -> bool {
        let db = &self.inner.db;
        !db.down() && db.store.writable(HEALTH_PATIENCE.min(db.timeout)).await
    }
}

/// Asks the database every [`PROBE_EVERY`] until it would take a write, then closes the
/// breaker. A failure reported between the probe's success and its end is taken over by
/// this probe (the reporter found it still running).
async fn probe(db: Arc<DbHealth>) {
    let patience = db.timeout.min(Duration::from_secs(1));
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        if !db.store.writable(patience).await {
            continue;
        }
        db.down.store(false, Ordering::SeqCst);
        db.probing.store(false, Ordering::SeqCst);
        tracing::info!("the database answers again");
        let failed_since = db.down.load(Ordering::SeqCst)
            && db
                .probing
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
        if !failed_since {
            return;
        }
    }
}
