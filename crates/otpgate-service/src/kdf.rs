//! Bounded Argon2 work. `/validate/check` is anonymous and every PIN check costs an Argon2
//! verification, so the work is bounded three ways: a fixed number of computations at once
//! (off the async runtime), a bounded number waiting for their turn, and a bounded wait. A
//! request beyond either bound is refused at once with [`ServiceError::Busy`] (HTTP 503,
//! `Retry-After`) instead of queueing until every client times out.

use crate::{Result, ServiceError};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};

/// The limits of [`KdfGate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfLimits {
    /// Computations at once.
    pub concurrency: usize,
    /// Computations that may wait for a turn.
    pub queue: usize,
    /// The longest wait for a turn.
    pub wait: Duration,
}

impl Default for KdfLimits {
    fn default() -> Self {
        Self {
            concurrency: 2,
            queue: 64,
            wait: Duration::from_secs(5),
        }
    }
}

/// The gate every Argon2 computation passes.
#[derive(Debug)]
pub struct KdfGate {
    limits: KdfLimits,
    sem: Semaphore,
    waiting: AtomicUsize,
    shed: AtomicU64,
    /// Argon2 working memory, one buffer per computation that may run at once, reused.
    memory: std::sync::Mutex<Vec<otpgate_core::pin::KdfMemory>>,
}

/// Counts one waiter while it exists.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl KdfGate {
    /// A gate with these limits (at least one computation at once).
    pub fn new(limits: KdfLimits) -> Self {
        let limits = KdfLimits {
            concurrency: limits.concurrency.max(1),
            ..limits
        };
        Self {
            sem: Semaphore::new(limits.concurrency),
            limits,
            waiting: AtomicUsize::new(0),
            shed: AtomicU64::new(0),
            memory: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Runs one Argon2 computation off the async runtime once it has its turn, with the
    /// slot's reused working memory (see [`otpgate_core::pin::KdfMemory`]).
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut otpgate_core::pin::KdfMemory) -> T + Send + 'static,
    ) -> Result<T> {
        let _permit = self.enter().await?;
        let mut memory = self
            .memory
            .lock()
            .ok()
            .and_then(|mut m| m.pop())
            .unwrap_or_default();
        let (out, memory) = tokio::task::spawn_blocking(move || (work(&mut memory), memory))
            .await
            .map_err(|_| ServiceError::Internal("Argon2 task failed".into()))?;
        if let Ok(mut m) = self.memory.lock()
            && m.len() < self.limits.concurrency
        {
            m.push(memory);
        }
        Ok(out)
    }

    /// A turn, or `Busy` when too many wait or the wait is too long.
    pub async fn enter(&self) -> Result<SemaphorePermit<'_>> {
        if let Ok(p) = self.sem.try_acquire() {
            return Ok(p);
        }
        let before = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        if before >= self.limits.queue {
            return Err(self.refuse());
        }
        match tokio::time::timeout(self.limits.wait, self.sem.acquire()).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(ServiceError::Internal("kdf pool closed".into())),
            Err(_) => Err(self.refuse()),
        }
    }

    fn refuse(&self) -> ServiceError {
        self.shed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("Argon2 work is at its bounds; a request was refused with 503");
        ServiceError::Busy
    }

    /// Computations running now.
    pub fn running(&self) -> usize {
        self.limits
            .concurrency
            .saturating_sub(self.sem.available_permits())
    }

    /// Computations waiting for a turn now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Requests refused so far.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// The limits.
    pub fn limits(&self) -> KdfLimits {
        self.limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn beyond_the_queue_is_refused_at_once_and_waiters_are_counted() {
        let gate = KdfGate::new(KdfLimits {
            concurrency: 1,
            queue: 1,
            wait: Duration::from_secs(60),
        });
        let held = gate.enter().await.unwrap();
        assert_eq!((gate.running(), gate.waiting()), (1, 0));
        // One may wait; it gets the turn when the holder is done.
        let waiter = async {
            let p = gate.enter().await;
            p.map(|_| ())
        };
        let refused = async {
            tokio::task::yield_now().await;
            assert_eq!(gate.waiting(), 1);
            let r = gate.enter().await;
            assert!(matches!(r, Err(ServiceError::Busy)));
            drop(held);
        };
        let (w, ()) = tokio::join!(waiter, refused);
        assert!(w.is_ok());
        assert_eq!((gate.shed(), gate.waiting(), gate.running()), (1, 0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_longer_than_allowed_is_refused() {
        let gate = KdfGate::new(KdfLimits {
            concurrency: 1,
            queue: 8,
            wait: Duration::from_millis(100),
        });
        let _held = gate.enter().await.unwrap();
        assert!(matches!(gate.enter().await, Err(ServiceError::Busy)));
        assert_eq!((gate.shed(), gate.waiting()), (1, 0));
    }
}
