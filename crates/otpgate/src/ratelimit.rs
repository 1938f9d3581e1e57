//! Per-address rate limits of the anonymous endpoints: a token bucket per client address on
//! the injected clock. IPv6 addresses count per /64 (one subscriber's whole range). The
//! configured rate is the cluster's: each node takes its share (rate and burst divided by the
//! live nodes, [`RateLimiter::share_among`]), so spreading requests over the nodes gains an
//! address nothing. The buckets stay in each node's memory: no database round trip per
//! request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The most addresses tracked; beyond, full buckets are forgotten (they hold no state).
const MAX_TRACKED: usize = 100_000;

/// Token buckets by client address.
#[derive(Debug)]
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, i64)>>,
    limited: AtomicU64,
    /// The live nodes the rate is shared among (at least 1).
    nodes: AtomicU32,
}

/// The key of an address: IPv4 as is, IPv6 by its /64.
fn key(ip: IpAddr) -> IpAddr {
    otpgate_core::net::client_key(ip)
}

impl RateLimiter {
    /// `per_sec` requests per second after a burst of `burst`; 0 per second = no limit.
    pub fn new(per_sec: f64, burst: u32) -> Self {
        Self {
            per_sec,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
            limited: AtomicU64::new(0),
            nodes: AtomicU32::new(1),
        }
    }

    /// Shares the rate among `nodes` live nodes: each allows rate/nodes after a burst of
    /// burst/nodes (at least one request).
    pub fn share_among(&self, nodes: u32) {
        self.nodes.store(nodes.max(1), Ordering::Relaxed);
    }

    /// The live nodes the rate is shared among.
    pub fn nodes(&self) -> u32 {
        self.nodes.load(Ordering::Relaxed).max(1)
    }

    /// This node's rate and burst.
    fn share(&self) -> (f64, f64) {
        let n = f64::from(self.nodes.load(Ordering::Relaxed).max(1));
        (self.per_sec / n, (self.burst / n).max(1.0))
    }

    /// Whether any limit applies.
    pub fn enabled(&self) -> bool {
        self.per_sec > 0.0
    }

    /// Takes one request of `ip` at `now_ms`: Ok, or Err with the seconds until the next one
    /// is allowed.
    pub fn take(&self, ip: IpAddr, now_ms: i64) -> Result<(), u64> {
        if !self.enabled() {
            return Ok(());
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let (per_sec, burst) = self.share();
        if buckets.len() >= MAX_TRACKED {
            buckets.retain(|_, (tokens, at)| {
                *tokens + (now_ms - *at).max(0) as f64 / 1000.0 * per_sec < burst
            });
            if buckets.len() >= MAX_TRACKED {
                buckets.clear();
            }
        }
        let (tokens, at) = buckets.entry(key(ip)).or_insert((burst, now_ms));
        let elapsed = (now_ms - *at).max(0) as f64 / 1000.0;
        *tokens = (*tokens + elapsed * per_sec).min(burst);
        *at = now_ms;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            self.limited.fetch_add(1, Ordering::Relaxed);
            Err(((1.0 - *tokens) / per_sec).ceil().max(1.0) as u64)
        }
    }

    /// Whether `ip`'s bucket is empty at `now_ms` (the seconds until it holds one again),
    /// without taking from it: for requests that cost only when they fail.
    pub fn blocked(&self, ip: IpAddr, now_ms: i64) -> Option<u64> {
        if !self.enabled() {
            return None;
        }
        let (per_sec, burst) = self.share();
        let buckets = self.buckets.lock().ok()?;
        let (tokens, at) = buckets.get(&key(ip))?;
        let tokens = (tokens + (now_ms - at).max(0) as f64 / 1000.0 * per_sec).min(burst);
        (tokens < 1.0).then(|| {
            self.limited.fetch_add(1, Ordering::Relaxed);
            ((1.0 - tokens) / per_sec).ceil().max(1.0) as u64
        })
    }

    /// Requests refused so far.
    pub fn limited(&self) -> u64 {
        self.limited.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_per_address() {
        let r = RateLimiter::new(2.0, 3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(r.take(a, 0).is_ok());
        }
        assert_eq!(r.take(a, 0), Err(1));
        assert!(r.take(b, 0).is_ok(), "another address has its own bucket");
        assert_eq!(r.take(a, 499), Err(1));
        assert!(
            r.take(a, 500).is_ok(),
            "2 per second: one more after half a second"
        );
        assert!(r.take(a, 500).is_err());
        assert!(r.take(a, 60_000).is_ok());
        assert_eq!(r.limited(), 3);
        assert!(RateLimiter::new(0.0, 1).take(a, 0).is_ok());
        // `blocked` looks without taking.
        let r = RateLimiter::new(1.0, 2);
        assert_eq!(r.blocked(a, 0), None, "an address never seen");
        assert!(r.take(a, 0).is_ok() && r.take(a, 0).is_ok());
        assert_eq!(r.blocked(a, 0), Some(1));
        assert_eq!(r.blocked(a, 1000), None, "refilled");
        assert_eq!(r.blocked(a, 1000), None, "looking took nothing");
    }

    #[test]
    fn ipv6_counts_per_64() {
        let r = RateLimiter::new(1.0, 1);
        let x: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let y: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let z: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(r.take(x, 0).is_ok());
        assert!(r.take(y, 0).is_err(), "same /64");
        assert!(r.take(z, 0).is_ok());
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert!(r.take(mapped, 0).is_ok());
        assert!(r.take("192.0.2.7".parse().unwrap(), 0).is_err());
    }
}
