//! Per-node circuit breakers of the SMS gateways, by gateway name. A gateway that failed
//! `threshold` times in a row is skipped for `open` (doubled on every re-opening, up to 16
//! times as long); once that has passed the next send probes it: a success closes the breaker,
//! a failure opens it again for twice as long. Time comes from the injected clock, so tests
//! open and close breakers without waiting.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Debug, Default, Clone, Copy)]
struct State {
    /// Consecutive failures.
    failures: i64,
    /// How often the breaker opened since the last success.
    openings: u32,
    /// Skipped until this time (Unix ms).
    open_until_ms: i64,
    /// When the probe after the open window started (0: none running). Only one send probes.
    probe_since_ms: i64,
}

/// A probe that never reported back (its task was lost) stops blocking the next one after this.
const PROBE_LEASE_MS: i64 = 60_000;

/// The state of one gateway's breaker, for metrics and the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerView {
    /// The gateway.
    pub gateway: String,
    /// Consecutive failures.
    pub failures: i64,
    /// Skipped now.
    pub open: bool,
}

/// The breakers of all gateways of this node, and how each send attempt ended.
#[derive(Debug, Default)]
pub struct Breakers {
    states: Mutex<HashMap<String, State>>,
    attempts: Mutex<BTreeMap<(String, Outcome), u64>>,
}

/// How one attempt at one gateway ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// The gateway accepted the message.
    Delivered,
    /// The gateway failed or timed out.
    Failed,
    /// Not tried: its breaker was open.
    Skipped,
    /// Delivered by this gateway as a failover of another (counted besides `Delivered`).
    Failover,
}

impl Outcome {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Skipped => "skipped_breaker_open",
            Self::Failover => "failover",
        }
    }
}

impl Breakers {
    /// Whether `gateway` may be tried at `now_ms`: closed, or open with its window passed and
    /// no other send probing it (this send becomes the probe).
    pub fn allows(&self, gateway: &str, now_ms: i64) -> bool {
        let Ok(mut s) = self.states.lock() else {
            return true;
        };
        let Some(st) = s.get_mut(gateway) else {
            return true;
        };
        if st.open_until_ms == 0 {
            return true; // failures below the threshold: closed
        }
        if st.open_until_ms > now_ms {
            return false;
        }
        if st.probe_since_ms > 0 && now_ms - st.probe_since_ms < PROBE_LEASE_MS {
            return false;
        }
        st.probe_since_ms = now_ms;
        true
    }

    /// Records a delivery: the breaker closes.
    pub fn success(&self, gateway: &str) {
        if let Ok(mut s) = self.states.lock() {
            s.remove(gateway);
        }
    }

    /// Records a failure; returns true if the breaker opened (again).
    pub fn failure(&self, gateway: &str, now_ms: i64, threshold: i64, open_ms: i64) -> bool {
        let Ok(mut s) = self.states.lock() else {
            return false;
        };
        let st = s.entry(gateway.to_owned()).or_default();
        st.failures += 1;
        if threshold <= 0 || st.failures < threshold || st.open_until_ms > now_ms {
            // Below the threshold, or a forced attempt while open: the window stays as it is.
            return false;
        }
        st.probe_since_ms = 0;
        let factor = 1i64 << st.openings.min(4);
        st.open_until_ms = now_ms.saturating_add(open_ms.saturating_mul(factor));
        st.openings = st.openings.saturating_add(1);
        true
    }

    /// Counts one attempt.
    pub fn record(&self, gateway: &str, outcome: Outcome) {
        if let Ok(mut a) = self.attempts.lock() {
            *a.entry((gateway.to_owned(), outcome)).or_default() += 1;
        }
    }

    /// Attempts so far by gateway and outcome.
    pub fn attempts(&self) -> Vec<(String, Outcome, u64)> {
        self.attempts
            .lock()
            .map(|a| a.iter().map(|((g, o), n)| (g.clone(), *o, *n)).collect())
            .unwrap_or_default()
    }

    /// Every gateway with a failure on record.
    pub fn views(&self, now_ms: i64) -> Vec<BreakerView> {
        let Ok(s) = self.states.lock() else {
            return Vec::new();
        };
        let mut v: Vec<BreakerView> = s
            .iter()
            .map(|(g, st)| BreakerView {
                gateway: g.clone(),
                failures: st.failures,
                open: st.open_until_ms > now_ms,
            })
            .collect();
        v.sort_by(|a, b| a.gateway.cmp(&b.gateway));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_probes_and_backs_off() {
        let b = Breakers::default();
        let (t, open) = (3, 30_000);
        assert!(!b.failure("gw", 0, t, open));
        assert!(!b.failure("gw", 0, t, open));
        assert!(b.allows("gw", 0), "closed below the threshold");
        assert!(b.failure("gw", 1_000, t, open), "the third failure opens");
        assert!(!b.allows("gw", 30_999));
        assert!(b.allows("gw", 31_000), "due for a probe");
        // The probe fails: open again for twice as long.
        assert!(b.failure("gw", 31_000, t, open));
        assert!(!b.allows("gw", 90_999));
        assert!(b.views(50_000)[0].open);
        // While open, a forced attempt (every gateway of a chain open) does not extend it.
        assert!(!b.failure("gw", 50_000, t, open));
        assert!(b.allows("gw", 91_000));
        // Only one send probes at a time.
        assert!(!b.allows("gw", 91_001), "a probe is already running");
        assert!(
            b.allows("gw", 91_000 + PROBE_LEASE_MS),
            "a lost probe expires"
        );
        // A success closes it and forgets the back-off.
        b.success("gw");
        assert!(b.allows("gw", 91_000) && b.views(91_000).is_empty());
        for _ in 0..2 {
            b.failure("gw", 100_000, t, open);
        }
        assert!(b.failure("gw", 100_000, t, open));
        assert!(b.allows("gw", 130_000), "back to the first window");
    }

    #[test]
    fn the_back_off_is_bounded_and_a_zero_threshold_never_opens() {
        let b = Breakers::default();
        let mut t = 0;
        assert!(b.failure("gw", t, 1, 1_000));
        let mut window = 1_000;
        for _ in 0..40 {
            t += window;
            assert!(
                !b.allows("gw", t - 1) && b.allows("gw", t),
                "probe due at {t}"
            );
            assert!(b.failure("gw", t, 1, 1_000), "the failed probe reopens");
            window = (window * 2).min(16_000);
        }
        assert!(
            !b.allows("gw", t + 15_999) && b.allows("gw", t + 16_000),
            "at most 16×"
        );
        let off = Breakers::default();
        for i in 0..10 {
            assert!(!off.failure("gw", i, 0, 1_000));
        }
        assert!(off.allows("gw", 10));
    }
}
