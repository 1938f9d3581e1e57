//! Bounded, fairly shared Argon2 work. `/validate/check` and `/auth` are anonymous and every
//! PIN or password check costs an Argon2 verification, so the work is bounded three ways: a
//! fixed number of computations at once (off the async runtime), a bounded number waiting for
//! their turn, and a bounded wait. A request beyond a bound is refused at once with
//! [`ServiceError::Busy`] (HTTP 503, `Retry-After`) instead of queueing until every client
//! times out.
//!
//! The turns are shared fairly, so that a flood from a few addresses cannot starve everyone
//! else: waiters queue per client address (IPv6 per /64), and a freed slot goes to the
//! addresses in turn (round robin), not first come first served. When the queue is full, a
//! newcomer whose address has asked for fewer turns lately than the heaviest address with
//! waiters pushes out that address's newest waiter (answered 503) instead of being refused
//! itself: a flood churns within itself, a user's occasional request gets in. And one account
//! (the user or admin name a request gives) may hold at most a quarter of the queue, so a
//! flood against one name from many addresses leaves room for the others.

use crate::{Result, ServiceError};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;

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

/// On whose behalf a computation runs: the share it waits in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Share {
    /// The end user's address (None: not known, e.g. housekeeping).
    pub client: Option<IpAddr>,
    /// The account the request names ("" for none).
    pub account: String,
}

/// The queue key of an address (IPv6 per /64).
fn key_of(client: Option<IpAddr>) -> Option<IpAddr> {
    client.map(otpgate_core::net::client_key)
}

/// One request waiting for a turn.
#[derive(Debug)]
struct Waiter {
    id: u64,
    account: String,
    /// true: the turn is yours; false: pushed out of a full queue.
    tell: oneshot::Sender<bool>,
}

/// The running count and the waiters, per address in round-robin order.
#[derive(Debug, Default)]
struct Turns {
    running: usize,
    waiting: usize,
    next_id: u64,
    queues: HashMap<Option<IpAddr>, VecDeque<Waiter>>,
    /// Addresses with waiters, in the order their next waiter gets a turn.
    ring: VecDeque<Option<IpAddr>>,
    accounts: HashMap<String, usize>,
    /// Turns each address asked for lately (halved every [`USE_HALF_LIFE`] requests).
    used: HashMap<Option<IpAddr>, u32>,
    since_halving: usize,
}

/// After how many requests the counts of turns asked for are halved.
const USE_HALF_LIFE: usize = 256;

impl Turns {
    /// Counts a request for a turn from `key`.
    fn note_use(&mut self, key: Option<IpAddr>) {
        *self.used.entry(key).or_default() += 1;
        self.since_halving += 1;
        if self.since_halving >= USE_HALF_LIFE {
            self.since_halving = 0;
            self.used.retain(|_, n| {
                *n /= 2;
                *n > 0
            });
        }
    }

    fn forget(&mut self, w: &Waiter) {
        self.waiting -= 1;
        if !w.account.is_empty()
            && let Some(n) = self.accounts.get_mut(&w.account)
        {
            *n -= 1;
            if *n == 0 {
                self.accounts.remove(&w.account);
            }
        }
    }

    /// The next waiter in turn (its address goes to the back of the ring).
    fn next(&mut self) -> Option<Waiter> {
        let key = self.ring.pop_front()?;
        let queue = self.queues.get_mut(&key)?;
        let w = queue.pop_front()?;
        if queue.is_empty() {
            self.queues.remove(&key);
        } else {
            self.ring.push_back(key);
        }
        self.forget(&w);
        Some(w)
    }

    /// Takes the newest waiter of `key` out.
    fn pop_newest(&mut self, key: Option<IpAddr>) -> Option<Waiter> {
        let queue = self.queues.get_mut(&key)?;
        let w = queue.pop_back()?;
        if queue.is_empty() {
            self.queues.remove(&key);
            self.ring.retain(|k| *k != key);
        }
        self.forget(&w);
        Some(w)
    }

    /// Takes waiter `id` of `key` out (its wait ran out); false when it is not there any more.
    fn remove(&mut self, key: Option<IpAddr>, id: u64) -> bool {
        let Some(queue) = self.queues.get_mut(&key) else {
            return false;
        };
        let Some(at) = queue.iter().position(|w| w.id == id) else {
            return false;
        };
        let Some(w) = queue.remove(at) else {
            return false;
        };
        if queue.is_empty() {
            self.queues.remove(&key);
            self.ring.retain(|k| *k != key);
        }
        self.forget(&w);
        true
    }
}

/// The gate every Argon2 computation passes.
#[derive(Debug)]
pub struct KdfGate {
    limits: KdfLimits,
    turns: Mutex<Turns>,
    shed: AtomicU64,
    /// Computations run so far.
    done: AtomicU64,
    /// Argon2 working memory, one buffer per computation that may run at once, reused.
    memory: Mutex<Vec<otpgate_core::pin::KdfMemory>>,
}

/// A turn: while it lives, one computation may run; dropping it hands the slot on.
#[derive(Debug)]
pub struct Turn<'a>(&'a KdfGate);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let Ok(mut t) = self.0.turns.lock() else {
            return;
        };
        // The slot goes to the next waiter in turn who still waits (a request that went
        // away leaves a closed channel behind).
        while let Some(w) = t.next() {
            if w.tell.send(true).is_ok() {
                return;
            }
        }
        t.running -= 1;
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
            limits,
            turns: Mutex::new(Turns::default()),
            shed: AtomicU64::new(0),
            done: AtomicU64::new(0),
            memory: Mutex::new(Vec::new()),
        }
    }

    /// Runs one Argon2 computation off the async runtime once `share` has its turn, with the
    /// slot's reused working memory (see [`otpgate_core::pin::KdfMemory`]).
    pub async fn run<T: Send + 'static>(
        &self,
        share: &Share,
        work: impl FnOnce(&mut otpgate_core::pin::KdfMemory) -> T + Send + 'static,
    ) -> Result<T> {
        let _turn = self.enter_for(share).await?;
        let mut memory = self
            .memory
            .lock()
            .ok()
            .and_then(|mut m| m.pop())
            .unwrap_or_default();
        let (out, memory) = tokio::task::spawn_blocking(move || (work(&mut memory), memory))
            .await
            .map_err(|_| ServiceError::Internal("Argon2 task failed".into()))?;
        self.done.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.memory.lock()
            && m.len() < self.limits.concurrency
        {
            m.push(memory);
        }
        Ok(out)
    }

    /// A turn for nobody in particular (see [`KdfGate::enter_for`]).
    pub async fn enter(&self) -> Result<Turn<'_>> {
        self.enter_for(&Share::default()).await
    }

    /// A turn for `share`, or `Busy` when its place in the queue is refused, pushed out, or
    /// the wait is too long.
    pub async fn enter_for(&self, share: &Share) -> Result<Turn<'_>> {
        let key = key_of(share.client);
        let (id, mut told) = {
            let mut t = self
                .turns
                .lock()
                .map_err(|_| ServiceError::Internal("kdf gate poisoned".into()))?;
            if t.running < self.limits.concurrency && t.waiting == 0 {
                t.running += 1;
                t.note_use(key);
                return Ok(Turn(self));
            }
            let account_cap = (self.limits.queue / 4).max(2);
            if !share.account.is_empty()
                && t.accounts.get(&share.account).copied().unwrap_or(0) >= account_cap
            {
                drop(t);
                return Err(self.refuse());
            }
            t.note_use(key);
            if t.waiting >= self.limits.queue {
                // Full: push out the newest waiter of the address that has used the most
                // turns lately, if that is more than this one's (a flood churns within
                // itself; a rare user's request gets in).
                let own = t.used.get(&key).copied().unwrap_or(0);
                let heaviest = t
                    .queues
                    .keys()
                    .map(|k| (t.used.get(k).copied().unwrap_or(0), *k))
                    .max_by_key(|(used, _)| *used);
                match heaviest {
                    Some((used, victim)) if used > own && victim != key => {
                        if let Some(w) = t.pop_newest(victim) {
                            self.shed.fetch_add(1, Ordering::Relaxed);
                            let _ = w.tell.send(false);
                        }
                    }
                    _ => {
                        drop(t);
                        return Err(self.refuse());
                    }
                }
            }
            let (tell, told) = oneshot::channel();
            let id = t.next_id;
            t.next_id += 1;
            t.waiting += 1;
            if !share.account.is_empty() {
                *t.accounts.entry(share.account.clone()).or_default() += 1;
            }
            let queue = t.queues.entry(key).or_default();
            queue.push_back(Waiter {
                id,
                account: share.account.clone(),
                tell,
            });
            if queue.len() == 1 {
                t.ring.push_back(key);
            }
            (id, told)
        };
        match tokio::time::timeout(self.limits.wait, &mut told).await {
            Ok(Ok(true)) => Ok(Turn(self)),
            Ok(Ok(false)) => Err(ServiceError::Busy),
            Ok(Err(_)) => Err(ServiceError::Internal("kdf gate closed".into())),
            Err(_) => {
                let removed = self
                    .turns
                    .lock()
                    .map(|mut t| t.remove(key, id))
                    .unwrap_or(false);
                // Not in the queue any more: the turn (or the push-out) came just now.
                if !removed && told.try_recv() == Ok(true) {
                    return Ok(Turn(self));
                }
                Err(self.refuse())
            }
        }
    }

    fn refuse(&self) -> ServiceError {
        self.shed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("Argon2 work is at its bounds; a request was refused with 503");
        ServiceError::Busy
    }

    /// Computations running now.
    pub fn running(&self) -> usize {
        self.turns.lock().map(|t| t.running).unwrap_or(0)
    }

    /// Computations waiting for a turn now.
    pub fn waiting(&self) -> usize {
        self.turns.lock().map(|t| t.waiting).unwrap_or(0)
    }

    /// Computations run so far.
    pub fn computed(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
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

    fn from(addr: &str, account: &str) -> Share {
        Share {
            client: Some(addr.parse().unwrap()),
            account: account.into(),
        }
    }

    /// Who gets the next turns: addresses take turns, whatever order they queued in.
    #[tokio::test]
    async fn addresses_take_turns_and_a_flood_waits_behind_a_single_request() {
        let gate = std::sync::Arc::new(KdfGate::new(KdfLimits {
            concurrency: 1,
            queue: 64,
            wait: Duration::from_secs(60),
        }));
        let held = gate.enter().await.unwrap();
        let order = std::sync::Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        let mut queue = |who: &'static str, addr: &'static str| {
            let (gate, order) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let turn = gate.enter_for(&from(addr, who)).await.unwrap();
                order.lock().unwrap().push(who);
                drop(turn);
            }));
        };
        for _ in 0..5 {
            queue("flood", "192.0.2.1");
        }
        queue("alice", "198.51.100.7");
        while gate.waiting() < 6 {
            tokio::task::yield_now().await;
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        assert_eq!(
            order.iter().position(|w| *w == "alice"),
            Some(1),
            "{order:?}"
        );
    }

    /// A full queue makes room for a newcomer by pushing out the newest waiter of the
    /// heaviest address; that address itself is refused.
    #[tokio::test]
    async fn a_full_queue_pushes_out_the_heaviest_address_not_the_newcomer() {
        let gate = KdfGate::new(KdfLimits {
            concurrency: 1,
            queue: 4,
            wait: Duration::from_secs(60),
        });
        let held = gate.enter().await.unwrap();
        let flood = from("192.0.2.1", "");
        let waits = async {
            // Each waiter gives its turn back at once.
            let entries: Vec<_> = (0..4)
                .map(|_| async { gate.enter_for(&flood).await.map(drop).is_ok() })
                .collect();
            futures_util::future::join_all(entries).await
        };
        let newcomer = async {
            while gate.waiting() < 4 {
                tokio::task::yield_now().await;
            }
            // The flood's own fifth is refused; someone else gets in.
            assert!(matches!(
                gate.enter_for(&flood).await,
                Err(ServiceError::Busy)
            ));
            let alice_share = from("198.51.100.7", "alice");
            let alice = gate.enter_for(&alice_share);
            let release = async {
                while gate.waiting() < 4 {
                    tokio::task::yield_now().await;
                }
                drop(held);
            };
            let (a, ()) = tokio::join!(alice, release);
            a.map(drop).is_ok()
        };
        let (flood_results, alice_in) = tokio::join!(waits, newcomer);
        assert!(alice_in);
        assert_eq!(
            flood_results.iter().filter(|ok| !**ok).count(),
            1,
            "one flood waiter pushed out: {flood_results:?}"
        );
        assert_eq!((gate.waiting(), gate.running()), (0, 0));
    }

    /// One account holds at most a quarter of the queue, whatever addresses its requests
    /// come from.
    #[tokio::test]
    async fn one_account_holds_at_most_a_quarter_of_the_queue() {
        let gate = KdfGate::new(KdfLimits {
            concurrency: 1,
            queue: 8,
            wait: Duration::from_secs(60),
        });
        let held = gate.enter().await.unwrap();
        let gate = &gate;
        let waits = async {
            let entries: Vec<_> = (0..2)
                .map(|i| async move {
                    let addr = format!("192.0.2.{i}");
                    gate.enter_for(&Share {
                        client: Some(addr.parse().unwrap()),
                        account: "admin".into(),
                    })
                    .await
                    .map(drop)
                    .is_ok()
                })
                .collect();
            futures_util::future::join_all(entries).await
        };
        let third = async {
            while gate.waiting() < 2 {
                tokio::task::yield_now().await;
            }
            let r = gate.enter_for(&from("192.0.2.9", "admin")).await;
            assert!(matches!(r, Err(ServiceError::Busy)));
            // Another account still gets in line.
            let bob_share = from("192.0.2.9", "bob");
            let other = gate.enter_for(&bob_share);
            let release = async {
                while gate.waiting() < 3 {
                    tokio::task::yield_now().await;
                }
                drop(held);
            };
            let (o, ()) = tokio::join!(other, release);
            o.map(drop).is_ok()
        };
        let (admins, bob) = tokio::join!(waits, third);
        assert_eq!(admins, vec![true, true]);
        assert!(bob);
    }
}
