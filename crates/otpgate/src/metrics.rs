//! Prometheus metrics in text format, without labels that could carry personal data: only
//! route templates, status classes and outcome names.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Counters keyed by metric name and label set, and request-duration histograms by route.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
    durations: Mutex<BTreeMap<String, Histogram>>,
}

/// Upper bounds (seconds) of the request-duration buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// One histogram: counts per bucket (not cumulative), the sum and the count.
#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

const HELP: &[(&str, &str)] = &[
    (
        "otpgate_http_requests_total",
        "HTTP requests by route template and status code.",
    ),
    (
        "otpgate_auth_total",
        "Authentication answers by endpoint and result (ACCEPT, REJECT, CHALLENGE, error).",
    ),
    (
        "otpgate_rate_limited_total",
        "Requests to anonymous endpoints refused with 429 by the per-address rate limit, by route.",
    ),
    (
        "otpgate_sms_total",
        "SMS sends for challenges by result (sent, failed).",
    ),
];

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn add(&self, name: &'static str, labels: &[(&str, &str)], n: u64) {
        let l = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect::<Vec<_>>()
            .join(",");
        if let Ok(mut c) = self.counters.lock() {
            *c.entry((name, l)).or_default() += n;
        }
    }

    /// Records how long a request to `route` took.
    pub fn observe(&self, route: &str, seconds: f64) {
        if let Ok(mut d) = self.durations.lock() {
            let h = d.entry(route.to_owned()).or_default();
            if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b)
                && let Some(slot) = h.buckets.get_mut(i)
            {
                *slot += 1;
            }
            h.sum += seconds;
            h.count += 1;
        }
    }

    /// The request-duration histograms in text exposition.
    fn render_durations(&self, out: &mut String) {
        let Ok(d) = self.durations.lock() else {
            return;
        };
        out.push_str("# HELP otpgate_http_request_duration_seconds Time from receiving a request to answering it, by route template.\n# TYPE otpgate_http_request_duration_seconds histogram\n");
        for (route, h) in d.iter() {
            let r = escape(route);
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.buckets.iter()) {
                cumulative += n;
                out.push_str(&format!(
                    "otpgate_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{bound}\"}} {cumulative}\n"
                ));
            }
            out.push_str(&format!(
                "otpgate_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}\n\
                 otpgate_http_request_duration_seconds_sum{{route=\"{r}\"}} {}\n\
                 otpgate_http_request_duration_seconds_count{{route=\"{r}\"}} {}\n",
                h.count, h.sum, h.count
            ));
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_durations(&mut out);
        let Ok(c) = self.counters.lock() else {
            return out;
        };
        for (name, help) in HELP {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
            for ((n, labels), v) in c.iter().filter(|((n, _), _)| n == name) {
                out.push_str(&format!("{n}{{{labels}}} {v}\n"));
            }
        }
        out
    }
}

/// The RADIUS server's counters in text exposition.
pub fn render_radius(stats: &otpgate_radius::server::Stats) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::from(
        "# HELP otpgate_radius_packets_total RADIUS packets by outcome (answers sent and packets dropped).\n# TYPE otpgate_radius_packets_total counter\n",
    );
    for (label, c) in [
        ("accept", &stats.accepts),
        ("reject", &stats.rejects),
        ("challenge", &stats.challenges),
        ("dropped_unknown_client", &stats.unknown_client),
        ("dropped_malformed", &stats.malformed),
        ("dropped_bad_authenticator", &stats.bad_authenticator),
        ("duplicate", &stats.duplicates),
        ("dropped_overloaded", &stats.overloaded),
        ("timeout", &stats.timeouts),
    ] {
        out.push_str(&format!(
            "otpgate_radius_packets_total{{outcome=\"{label}\"}} {}\n",
            c.load(Relaxed)
        ));
    }
    out
}

/// The Argon2 gate: computations running and waiting now, and requests refused (503).
pub fn render_kdf(kdf: &otpgate_service::kdf::KdfGate) -> String {
    let l = kdf.limits();
    format!(
        "# HELP otpgate_kdf_running Argon2 computations running now (at most otpgate_kdf_concurrency).\n# TYPE otpgate_kdf_running gauge\notpgate_kdf_running {}\n\
         # HELP otpgate_kdf_waiting Argon2 computations waiting for a turn (the KDF queue depth; at most otpgate_kdf_queue_limit).\n# TYPE otpgate_kdf_waiting gauge\notpgate_kdf_waiting {}\n\
         # HELP otpgate_kdf_concurrency Argon2 computations allowed at once.\n# TYPE otpgate_kdf_concurrency gauge\notpgate_kdf_concurrency {}\n\
         # HELP otpgate_kdf_queue_limit Argon2 computations allowed to wait.\n# TYPE otpgate_kdf_queue_limit gauge\notpgate_kdf_queue_limit {}\n\
         # HELP otpgate_kdf_shed_total Requests answered 503 because the Argon2 queue was full (or their address was pushed out of it) or the wait too long.\n# TYPE otpgate_kdf_shed_total counter\notpgate_kdf_shed_total {}\n\
         # HELP otpgate_kdf_total Argon2 (and crypt) computations run.\n# TYPE otpgate_kdf_total counter\notpgate_kdf_total {}\n",
        kdf.running(),
        kdf.waiting(),
        l.concurrency,
        l.queue,
        kdf.shed(),
        kdf.computed()
    )
}

/// The database breaker and the audit spool in text exposition.
pub fn render_database(
    db: otpgate_service::dbhealth::DbFigures,
    audit: otpgate_service::audit::AuditCounts,
) -> String {
    format!(
        "# HELP otpgate_database_up 1 while this node reaches its database, 0 while it answers every call 503 at once until the database is back.\n# TYPE otpgate_database_up gauge\notpgate_database_up {}\n\
         # HELP otpgate_database_outages_total How often the database failed to answer in time and calls were refused until it did.\n# TYPE otpgate_database_outages_total counter\notpgate_database_outages_total {}\n\
         # HELP otpgate_database_refused_total Calls answered 503 at once while the database was down.\n# TYPE otpgate_database_refused_total counter\notpgate_database_refused_total {}\n\
         # HELP otpgate_audit_spooled_total Audit entries kept in the local spool because the database could not take them in time.\n# TYPE otpgate_audit_spooled_total counter\notpgate_audit_spooled_total {}\n\
         # HELP otpgate_audit_unspooled_total Spooled audit entries moved into the database.\n# TYPE otpgate_audit_unspooled_total counter\notpgate_audit_unspooled_total {}\n\
         # HELP otpgate_audit_lost_total Audit entries neither the database nor the spool could take (each logged).\n# TYPE otpgate_audit_lost_total counter\notpgate_audit_lost_total {}\n",
        u8::from(!db.down),
        db.outages,
        db.refused,
        audit.spooled,
        audit.unspooled,
        audit.lost
    )
}

/// Send attempts by gateway and outcome (failovers included) in text exposition.
pub fn render_attempts(attempts: &[(String, otpgate_service::breaker::Outcome, u64)]) -> String {
    let mut out = String::from(
        "# HELP otpgate_sms_attempts_total Send attempts per gateway: delivered, failed, or skipped while its breaker was open.\n# TYPE otpgate_sms_attempts_total counter\n",
    );
    for (gateway, outcome, n) in attempts {
        out.push_str(&format!(
            "otpgate_sms_attempts_total{{gateway=\"{}\",result=\"{}\"}} {n}\n",
            escape(gateway),
            outcome.as_str()
        ));
    }
    out
}

/// What became of the SMS handed to each gateway: `accepted` and `not_sent` (its answer),
/// `delivered` and `failed` (its receipts), in text exposition.
pub fn render_delivery(counts: &[(String, &'static str, u64)]) -> String {
    let mut out = String::from(
        "# HELP otpgate_sms_delivery_total SMS per gateway by what became of them: accepted or not_sent by the gateway, delivered or failed by its receipts.\n# TYPE otpgate_sms_delivery_total counter\n",
    );
    for (gateway, state, n) in counts {
        out.push_str(&format!(
            "otpgate_sms_delivery_total{{gateway=\"{}\",state=\"{state}\"}} {n}\n",
            escape(gateway)
        ));
    }
    out
}

/// Each gateway's send-to-delivery times (from the delivered receipts this node took) as a
/// histogram in text exposition.
pub fn render_latency(latency: &[(String, otpgate_service::delivery::Latency)]) -> String {
    let mut out = String::from(
        "# HELP otpgate_sms_delivery_seconds Time from handing an SMS to the gateway to its delivered receipt.\n# TYPE otpgate_sms_delivery_seconds histogram\n",
    );
    for (gateway, l) in latency {
        let g = escape(gateway);
        for (n, bound) in l
            .buckets
            .iter()
            .zip(otpgate_service::delivery::LATENCY_BUCKETS)
        {
            out.push_str(&format!(
                "otpgate_sms_delivery_seconds_bucket{{gateway=\"{g}\",le=\"{bound}\"}} {n}\n"
            ));
        }
        out.push_str(&format!(
            "otpgate_sms_delivery_seconds_bucket{{gateway=\"{g}\",le=\"+Inf\"}} {}\notpgate_sms_delivery_seconds_sum{{gateway=\"{g}\"}} {}\notpgate_sms_delivery_seconds_count{{gateway=\"{g}\"}} {}\n",
            l.count, l.sum, l.count
        ));
    }
    out
}

/// SMS refused by send limits, and PIN requests answered with the live challenge during the
/// resend cooldown, on this node.
pub fn render_limits(hits: &[(&'static str, u64)]) -> String {
    let mut out = String::from(
        "# HELP otpgate_sms_limited_total SMS not sent on this node: refused by a send limit (user, phone, prefix, client, global) or not needed during the resend cooldown (resend_cooldown).\n# TYPE otpgate_sms_limited_total counter\n",
    );
    for (limit, n) in hits {
        out.push_str(&format!(
            "otpgate_sms_limited_total{{limit=\"{limit}\"}} {n}\n"
        ));
    }
    out
}

/// Notification deliveries on this node by channel and result, and the outbox by status
/// (shared by all nodes).
pub fn render_outbox(attempts: &[(String, &'static str, u64)], queued: &[(String, i64)]) -> String {
    let mut out = String::from(
        "# HELP otpgate_notifications_total Notification attempts on this node: sent, retry (failed, will be retried) or dead (dead-lettered).\n# TYPE otpgate_notifications_total counter\n",
    );
    for (channel, result, n) in attempts {
        out.push_str(&format!(
            "otpgate_notifications_total{{channel=\"{}\",result=\"{result}\"}} {n}\n",
            escape(channel)
        ));
    }
    out.push_str("# HELP otpgate_outbox_items Notifications in the outbox by status.\n# TYPE otpgate_outbox_items gauge\n");
    for status in ["pending", "sending", "sent", "dead"] {
        let n = queued
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        out.push_str(&format!(
            "otpgate_outbox_items{{status=\"{status}\"}} {n}\n"
        ));
    }
    out
}

/// The gateways' circuit breakers in text exposition (gateways with a failure on record).
pub fn render_breakers(views: &[otpgate_service::breaker::BreakerView]) -> String {
    let mut open = String::from(
        "# HELP otpgate_gateway_breaker_open 1 while the gateway's circuit breaker skips it.\n# TYPE otpgate_gateway_breaker_open gauge\n",
    );
    let mut failures = String::from(
        "# HELP otpgate_gateway_consecutive_failures Failed sends in a row per gateway.\n# TYPE otpgate_gateway_consecutive_failures gauge\n",
    );
    for v in views {
        let gateway = escape(&v.gateway);
        open.push_str(&format!(
            "otpgate_gateway_breaker_open{{gateway=\"{gateway}\"}} {}\n",
            u8::from(v.open)
        ));
        failures.push_str(&format!(
            "otpgate_gateway_consecutive_failures{{gateway=\"{gateway}\"}} {}\n",
            v.failures
        ));
    }
    open + &failures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let m = Metrics::default();
        m.add("otpgate_sms_total", &[("result", "sent")], 2);
        m.add("otpgate_sms_total", &[("result", "sent")], 1);
        let text = m.render();
        assert!(
            text.contains("otpgate_sms_total{result=\"sent\"} 3"),
            "{text}"
        );
        assert!(text.contains("# TYPE otpgate_auth_total counter"));
    }
}
