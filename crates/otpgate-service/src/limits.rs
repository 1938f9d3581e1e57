//! Send limits (SMS pumping and cost control): before an OTP SMS goes out it is counted
//! against the user, the phone number, the destination prefix, the end user's address and
//! a global budget, all or nothing, in counters shared by every node. A send that fails is
//! given back. A limit refuses the SMS, never the login's fail counter.

use crate::call::Scope;
use crate::settings::{Limit, SystemConfig};
use crate::{Result, Services};
use otpgate_core::number::{self, Number};
use otpgate_store::{BlockedPrefix, WindowKey};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// The answer when a limit refuses an SMS (with `detail.retry_after`).
pub const LIMITED: &str = "Too many SMS were requested. Please try again later.";

/// Limit hits on this node by limit name.
#[derive(Debug, Default)]
pub struct LimitStats(Mutex<BTreeMap<&'static str, u64>>);

impl LimitStats {
    pub(crate) fn hit(&self, name: &'static str) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(name).or_default() += 1;
        }
    }

    /// Hits so far by limit (`user`, `phone`, `prefix`, `client`, `global`,
    /// `resend_cooldown` for requests answered with the live challenge, and the toll-fraud
    /// rules `number_type`, `country_not_allowed` and `prefix_blocked`).
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        self.0
            .lock()
            .map(|m| m.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default()
    }
}

/// The answer when the toll-fraud guard refuses a token's number.
pub const NUMBER_REFUSED: &str = "The phone number of this token is not allowed.";

/// Why the toll-fraud guard refuses a number: the rule and what
/// the admin reads in the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberRefusal {
    /// `number_type`, `country_not_allowed` or `prefix_blocked`.
    pub rule: &'static str,
    /// The reason, for admins.
    pub reason: String,
}

/// The toll-fraud rules for a parsed number of `realm`.
fn guard(cfg: &SystemConfig, realm: &str, n: &Number) -> Option<NumberRefusal> {
    if cfg.blocked_kinds.contains(&n.kind) {
        return Some(NumberRefusal {
            rule: "number_type",
            reason: format!("{} numbers are not accepted", n.kind.name()),
        });
    }
    if let Some(allowed) = cfg.countries_for(realm)
        && !n.region.as_ref().is_some_and(|r| allowed.contains(r))
    {
        return Some(NumberRefusal {
            rule: "country_not_allowed",
            reason: format!(
                "numbers of {} are not accepted in this realm (allowed: {})",
                n.region.as_deref().unwrap_or("no country"),
                allowed.join(", ")
            ),
        });
    }
    None
}

/// A number given at enrollment: E.164 if it is valid and allowed, else a clear 400.
/// With `sms.number_check=lenient` a number that is not valid is stored as given.
pub fn enrollment_number(cfg: &SystemConfig, realm: &str, raw: &str) -> Result<String> {
    let n = match number::parse(raw, cfg.region_for(realm)) {
        Ok(n) => n,
        Err(number::NumberError::Region(r)) => {
            return Err(crate::ServiceError::Internal(format!(
                "the configured default region {r:?} is unknown"
            )));
        }
        Err(_) if !cfg.strict_numbers => return Ok(raw.trim().to_owned()),
        Err(e) => {
            return Err(crate::ServiceError::invalid(
                "phone",
                format!("Invalid phone number: {e}."),
            ));
        }
    };
    match guard(cfg, realm, &n) {
        Some(r) => Err(crate::ServiceError::invalid(
            "phone",
            format!("The phone number is not allowed: {}.", r.reason),
        )),
        None => Ok(n.e164),
    }
}

/// Whether `raw` is a phone number (with the default region), where numbers are checked
/// (`sms.number_check` strict, the default): the reason when it is not.
pub fn check_number_format(cfg: &SystemConfig, raw: &str) -> std::result::Result<(), String> {
    match number::parse(raw, cfg.region_for("")) {
        Ok(_) => Ok(()),
        Err(number::NumberError::Region(r)) => {
            Err(format!("the configured default region {r:?} is unknown"))
        }
        Err(_) if !cfg.strict_numbers => Ok(()),
        Err(e) => Err(format!("Invalid phone number: {e}.")),
    }
}

/// The number an SMS goes to: E.164 when it parses (national numbers with the realm's default
/// region), the stored text unchanged when it does not (numbers enrolled before validation,
/// or user-store values); refused by the toll-fraud rules.
pub fn send_number(
    cfg: &SystemConfig,
    realm: &str,
    raw: &str,
) -> std::result::Result<String, NumberRefusal> {
    match number::parse(raw, cfg.region_for(realm)) {
        Ok(n) => match guard(cfg, realm, &n) {
            Some(r) => Err(r),
            None => Ok(n.e164),
        },
        Err(_) => Ok(raw.to_owned()),
    }
}

/// The blocked prefixes as last read on this node.
pub type BlockCache = crate::cache::Cached<Vec<BlockedPrefix>>;

/// The start of the fixed window of `window_secs` that `now_ms` falls in.
fn window_start(now_ms: i64, window_secs: i64) -> i64 {
    now_ms - now_ms.rem_euclid(window_secs * 1000)
}

/// The counter keys of prefix-velocity detection for `prefix` in the current window: sends
/// and successful logins.
fn fraud_keys(cfg: &SystemConfig, prefix: &str, now_ms: i64) -> [WindowKey; 2] {
    let start = window_start(now_ms, cfg.fraud_window_secs);
    ["fraud_sent", "fraud_ok"].map(|name| WindowKey {
        key: format!("{name}:{prefix}"),
        window_start: start,
        limit: i64::MAX,
    })
}

/// The number as counted: `+` and digits only (`00` read as `+`).
pub fn phone_key(phone: &str) -> String {
    let t = phone.trim();
    let (plus, rest) = match t.strip_prefix('+') {
        Some(r) => (true, r),
        None => match t.strip_prefix("00") {
            Some(r) => (true, r),
            None => (false, t),
        },
    };
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    if plus { format!("+{digits}") } else { digits }
}

/// The destination prefix of a number: its first `digits` digits (with the `+`).
pub fn prefix_key(phone: &str, digits: usize) -> String {
    let p = phone_key(phone);
    let plus = usize::from(p.starts_with('+'));
    p.chars().take(digits + plus).collect()
}

/// The counters one SMS is checked against, with their limits.
#[derive(Debug, Clone)]
pub struct SendKeys {
    keys: Vec<(&'static str, WindowKey, i64)>,
}

impl SendKeys {
    /// The keys for an SMS to `phone` for `user` (a stable user key, or the serial) from
    /// `client` (the end user's address, when known), at `now_ms`.
    pub fn new(
        cfg: &SystemConfig,
        user: &str,
        phone: &str,
        client: Option<IpAddr>,
        now_ms: i64,
    ) -> Self {
        let mut keys = Vec::new();
        let mut add = |name: &'static str, limit: Option<Limit>, key: String| {
            if let Some(l) = limit {
                let start = window_start(now_ms, l.window_secs);
                keys.push((
                    name,
                    WindowKey {
                        key: format!("{name}:{key}"),
                        window_start: start,
                        limit: l.count,
                    },
                    start + l.window_secs * 1000,
                ));
            }
        };
        add("user", cfg.limit_user, user.to_owned());
        add("phone", cfg.limit_phone, phone_key(phone));
        add(
            "prefix",
            cfg.limit_prefix,
            prefix_key(phone, cfg.prefix_digits),
        );
        if cfg.limit_country.is_some()
            && let Some(region) = number::parse(phone, None).ok().and_then(|n| n.region)
        {
            add("country", cfg.limit_country, region);
        }
        if let Some(ip) = client {
            add("client", cfg.limit_client, ip.to_string());
        }
        add("global", cfg.limit_global, String::new());
        if cfg.fraud_min_success_percent > 0 {
            // Counted, never refusing: the send side of prefix-velocity detection.
            let [sent, _] = fraud_keys(cfg, &prefix_key(phone, cfg.prefix_digits), now_ms);
            let ends = sent.window_start + cfg.fraud_window_secs * 1000;
            keys.push(("fraud_sent", sent, ends));
        }
        Self { keys }
    }

    pub(crate) fn windows(&self) -> Vec<WindowKey> {
        self.keys.iter().map(|(_, k, _)| k.clone()).collect()
    }
}

/// A refusal: which limit, and the seconds until its window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The limit's name.
    pub limit: &'static str,
    /// Seconds until another SMS may pass this limit.
    pub retry_after: i64,
}

impl Services {
    /// The refusal by key `i` of `keys` (counted in the metrics).
    pub(crate) fn refusal(&self, keys: &SendKeys, i: usize) -> Result<Refusal> {
        let (limit, _, ends) = keys
            .keys
            .get(i)
            .cloned()
            .ok_or_else(|| crate::ServiceError::Internal("limit index".into()))?;
        self.limit_stats().hit(limit);
        let left_ms = (ends - self.clock().now_ms()).max(0);
        Ok(Refusal {
            limit,
            retry_after: (left_ms + 999) / 1000,
        })
    }

    /// Gives a counted SMS back (it could not be sent).
    pub async fn give_back_send(&self, keys: &SendKeys) -> Result<()> {
        Ok(self.store().send_window_give_back(&keys.windows()).await?)
    }

    /// Deletes counters whose windows are over (windows are at most 31 days long).
    pub async fn purge_send_windows(&self) -> Result<u64> {
        let before = self.clock().now_ms() - 32 * 86_400_000;
        Ok(self.store().send_window_purge(before).await?)
    }
}

impl Services {
    /// The blocked prefixes, from the per-node cache.
    async fn blocked_prefixes(&self) -> Result<std::sync::Arc<Vec<BlockedPrefix>>> {
        self.block_cache()
            .get_or_load(async { Ok(self.store().prefix_blocks().await?) })
            .await
    }

    /// The prefix part of the toll-fraud guard, before an SMS to `phone`: a blocked prefix
    /// refuses it; with prefix-velocity detection on, a prefix whose sends in the window
    /// reached `sms.fraud.min_sends` with fewer successful logins than
    /// `sms.fraud.min_success_percent` of them is blocked now.
    pub(crate) async fn check_prefix(
        &self,
        cfg: &SystemConfig,
        phone: &str,
    ) -> Result<Option<NumberRefusal>> {
        let number = phone_key(phone);
        if let Some(b) = self
            .blocked_prefixes()
            .await?
            .iter()
            .find(|b| number.starts_with(&b.prefix))
        {
            self.limit_stats().hit("prefix_blocked");
            return Ok(Some(NumberRefusal {
                rule: "prefix_blocked",
                reason: format!(
                    "the destination prefix {} is blocked ({})",
                    b.prefix, b.reason
                ),
            }));
        }
        if cfg.fraud_min_success_percent == 0 {
            return Ok(None);
        }
        let prefix = prefix_key(phone, cfg.prefix_digits);
        let now = self.clock().now_ms();
        let [sent_key, ok_key] = fraud_keys(cfg, &prefix, now);
        let sent = self
            .store()
            .send_window_count(&sent_key.key, sent_key.window_start)
            .await?;
        if sent < cfg.fraud_min_sends {
            return Ok(None);
        }
        let ok = self
            .store()
            .send_window_count(&ok_key.key, ok_key.window_start)
            .await?;
        if ok.saturating_mul(100) >= sent.saturating_mul(cfg.fraud_min_success_percent) {
            return Ok(None);
        }
        let reason = format!(
            "{sent} SMS but {ok} successful logins within {} s",
            cfg.fraud_window_secs
        );
        self.store()
            .prefix_block(&BlockedPrefix {
                prefix: prefix.clone(),
                blocked_at: now,
                source: "auto".into(),
                reason: reason.clone(),
            })
            .await?;
        self.block_cache().clear();
        tracing::warn!(prefix = %prefix, %reason, "destination prefix blocked: sends spike without logins");
        self.write_audit(&crate::audit::AuditEntry {
            ts: now,
            action: "FRAUD prefix blocked".into(),
            success: true,
            action_detail: format!("prefix {prefix}"),
            info: reason.clone(),
            ..Default::default()
        })
        .await;
        self.limit_stats().hit("prefix_blocked");
        Ok(Some(NumberRefusal {
            rule: "prefix_blocked",
            reason: format!("the destination prefix {prefix} was blocked now ({reason})"),
        }))
    }

    /// Counts a successful login for the prefix of `phone` (prefix-velocity detection).
    pub(crate) async fn count_verified(&self, cfg: &SystemConfig, phone: &str) -> Result<()> {
        if cfg.fraud_min_success_percent == 0 {
            return Ok(());
        }
        let now = self.clock().now_ms();
        let [_, ok] = fraud_keys(cfg, &prefix_key(phone, cfg.prefix_digits), now);
        self.store().send_window_take(&[ok]).await?;
        Ok(())
    }

    /// `GET /fraud/blocks`: the blocked destination prefixes.
    pub async fn list_prefix_blocks(&self) -> Result<Vec<BlockedPrefix>> {
        Ok(self.store().prefix_blocks().await?)
    }

    /// `POST /fraud/blocks/<prefix>`: an admin blocks a prefix (`+` and 1–15 digits).
    /// True when it was not blocked before.
    pub async fn block_prefix(&self, prefix: &str, reason: &str, cx: &mut Scope) -> Result<bool> {
        cx.audit.action_detail = format!("prefix {prefix}");
        let p = phone_key(prefix);
        if !p.starts_with('+') || !(2..=16).contains(&p.len()) || p != prefix.trim() {
            return Err(crate::ServiceError::Parameter(
                "A prefix is + and 1 to 15 digits, e.g. +88213.".into(),
            ));
        }
        let added = self
            .store()
            .prefix_block(&BlockedPrefix {
                prefix: p,
                blocked_at: self.clock().now_ms(),
                source: "admin".into(),
                reason: reason.trim().chars().take(200).collect(),
            })
            .await?;
        self.block_cache().clear();
        Ok(added)
    }

    /// `DELETE /fraud/blocks/<prefix>`: lifts a block and restarts its detection counters.
    pub async fn unblock_prefix(&self, prefix: &str, cx: &mut Scope) -> Result<bool> {
        cx.audit.action_detail = format!("prefix {prefix}");
        let cfg = self.system_config().await?;
        let keys: Vec<String> = fraud_keys(&cfg, prefix.trim(), self.clock().now_ms())
            .into_iter()
            .map(|k| k.key)
            .collect();
        let lifted = self.store().prefix_unblock(prefix.trim(), &keys).await?;
        self.block_cache().clear();
        if lifted {
            Ok(true)
        } else {
            Err(crate::ServiceError::NotFound(format!(
                "The prefix {} is not blocked.",
                prefix.trim()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_prefixes_are_counted_in_one_notation() {
        assert_eq!(phone_key("+49 151 1234-5678"), "+4915112345678");
        assert_eq!(phone_key("0049 151 12345678"), "+4915112345678");
        assert_eq!(phone_key("0151 12345678"), "015112345678");
        assert_eq!(prefix_key("+49 151 1234-5678", 5), "+49151");
        assert_eq!(prefix_key("0049151", 5), "+49151");
        assert_eq!(prefix_key("+1", 5), "+1");
    }

    #[test]
    fn keys_follow_the_configured_limits_and_windows() {
        let mut cfg = SystemConfig::from_map(&BTreeMap::new());
        let k = SendKeys::new(&cfg, "realm1/alice", "+4915100000001", None, 1_000_500);
        let names: Vec<&str> = k.keys.iter().map(|(n, _, _)| *n).collect();
        assert_eq!(
            names,
            ["user", "phone", "prefix", "global"],
            "no client key without an end-user address"
        );
        let (_, phone, ends) = &k.keys[1];
        assert_eq!(phone.key, "phone:+4915100000001");
        assert_eq!(
            (phone.window_start, phone.limit, *ends),
            (600_000, 5, 1_200_000)
        );
        cfg.limit_user = None;
        let k = SendKeys::new(&cfg, "u", "+1", Some("192.0.2.1".parse().unwrap()), 0);
        let names: Vec<&str> = k.keys.iter().map(|(n, _, _)| *n).collect();
        assert_eq!(names, ["phone", "prefix", "client", "global"]);
    }
}
