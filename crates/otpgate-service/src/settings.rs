//! privacyIDEA's system config (`/system/setConfig`): the `sms.*` keys and token defaults,
//! read into a typed [`SystemConfig`] with privacyIDEA's defaults.

use crate::call::Scope;
use crate::{Result, ServiceError, Services};
use otpgate_core::number::{self, NumberKind};
use otpgate_core::params::is_true;
use std::collections::BTreeMap;

/// The hard maximum of the challenge validity (SPEC §5).
pub const MAX_CHALLENGE_VALIDITY_SECS: i64 = 600;

/// otpgate's default `failcounter_clear_timeout` (privacyIDEA's is 0: a lockout lasts until an
/// admin lifts it, which lets anyone who knows a user name lock that user out for good).
pub const DEFAULT_CLEAR_MINUTES: i64 = 10;

/// The longest `failcounter_clear_timeout`: one year in minutes.
pub const MAX_CLEAR_MINUTES: i64 = 525_600;

/// The default latency budget of a send: below the 5 s many RADIUS clients wait.
pub const DEFAULT_SEND_BUDGET_MS: i64 = 4000;

/// The effective system configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemConfig {
    /// Default gateway name of SMS tokens.
    pub sms_identifier: Option<String>,
    /// Challenge validity in seconds (`sms.providerTimeout`, default 300, capped at 600).
    pub challenge_validity_secs: i64,
    /// Keep one OTP per challenge (`sms.concurrent_challenges`).
    pub concurrent_challenges: bool,
    /// PIN before OTP (`PrependPin`).
    pub prepend_pin: bool,
    /// Split `user@realm` (`splitAtSign`).
    pub split_at_sign: bool,
    /// Count a failure when no PIN matched (`IncFailCountOnFalsePin`).
    pub inc_fail_on_false_pin: bool,
    /// `/validate/samlcheck` answers an accepted user's attributes (`ReturnSamlAttributes`,
    /// off by default as in privacyIDEA).
    pub return_saml_attributes: bool,
    /// Default lockout threshold.
    pub default_max_fail: i64,
    /// Default OTP length.
    pub default_otp_len: i64,
    /// Default look-ahead window.
    pub default_count_window: i64,
    /// Default resync window.
    pub default_sync_window: i64,
    /// Minutes after which a lockout is lifted (`failcounter_clear_timeout`, 0 = never;
    /// otpgate's default 10, privacyIDEA's 0).
    pub failcounter_clear_minutes: i64,
    /// Each further lockout without a login in between waits twice as long before it is
    /// lifted (`failcounter_clear_backoff`, otpgate, default true).
    pub failcounter_clear_backoff: bool,
    /// The whole send, failover included, must finish within this (`sms.send_budget_ms`).
    pub send_budget_ms: i64,
    /// Consecutive failures that open a gateway's circuit breaker (`sms.breaker_threshold`,
    /// 0 = no breaker).
    pub breaker_threshold: i64,
    /// How long an opened breaker skips its gateway; doubled on every re-opening up to 16
    /// times (`sms.breaker_open_secs`).
    pub breaker_open_secs: i64,
    /// Wait before the first retry of a notification; doubled per attempt up to an hour
    /// (`event.outbox_retry_secs`).
    pub outbox_retry_secs: i64,
    /// A notification not delivered within this is dead-lettered (`event.outbox_max_age_secs`).
    pub outbox_max_age_secs: i64,
    /// Notifications sent at once per node (`event.outbox_concurrency`).
    pub outbox_concurrency: i64,
    /// Days sent and dead notifications stay visible in `/event/outbox`
    /// (`event.outbox_keep_days`).
    pub outbox_keep_days: i64,
    /// Days SMS records are kept (`sms.message_keep_days`, default 90).
    pub message_keep_days: i64,
    /// A route whose delivery rate falls below this percent is flagged
    /// (`sms.delivery_alert_percent`, default 80).
    pub delivery_alert_percent: i64,
    /// Wrong answers after which a challenge dies (`sms.challenge_max_attempts`, 0 = none).
    pub challenge_max_attempts: i64,
    /// RFC 4226 §7.3 back-off: after `n` failures a token takes the next attempt only this
    /// many seconds × 2^(n-1) after the last one (`sms.verify_backoff_secs`, 0 = off).
    pub verify_backoff_secs: i64,
    /// A PIN request within this many seconds of the last SMS re-uses its live challenge
    /// instead of sending again (`sms.resend_cooldown_secs`, 0 = off).
    pub resend_cooldown_secs: i64,
    /// SMS per user (`sms.limit.user`).
    pub limit_user: Option<Limit>,
    /// SMS per phone number (`sms.limit.phone`).
    pub limit_phone: Option<Limit>,
    /// SMS per end-user address (`sms.limit.client`).
    pub limit_client: Option<Limit>,
    /// SMS per destination prefix (`sms.limit.prefix`).
    pub limit_prefix: Option<Limit>,
    /// SMS per destination country (`sms.limit.country`, off by default).
    pub limit_country: Option<Limit>,
    /// SMS in all (`sms.limit.global`).
    pub limit_global: Option<Limit>,
    /// Leading digits (after the `+`) that make a destination prefix (`sms.limit.prefix_digits`).
    pub prefix_digits: usize,
    /// Default regions for numbers in national notation by realm (`sms.default_region`,
    /// `sms.default_region.<realm>`; the key `""` is the global one).
    pub default_regions: BTreeMap<String, String>,
    /// Regions numbers may belong to, by realm (`sms.allowed_countries[.<realm>]`; none = all).
    pub allowed_countries: BTreeMap<String, Vec<String>>,
    /// Number types never sent to (`sms.blocked_number_types`, default `premium_rate`).
    pub blocked_kinds: Vec<NumberKind>,
    /// Refuse numbers that are not valid at enrollment (`sms.number_check` = `strict`, the
    /// default); `lenient` stores them as given (test set-ups with made-up numbers).
    pub strict_numbers: bool,
    /// Prefix-velocity detection: the window sends and logins per prefix are compared in
    /// (`sms.fraud.window_secs`).
    pub fraud_window_secs: i64,
    /// Sends to a prefix in the window before it can be judged (`sms.fraud.min_sends`).
    pub fraud_min_sends: i64,
    /// A prefix with fewer successful logins than this percentage of its sends is blocked
    /// (`sms.fraud.min_success_percent`; 0 = detection off).
    pub fraud_min_success_percent: i64,
}

impl SystemConfig {
    /// The default region of a realm's numbers.
    pub fn region_for(&self, realm: &str) -> Option<&str> {
        self.default_regions
            .get(realm)
            .or_else(|| self.default_regions.get(""))
            .map(String::as_str)
    }

    /// The regions a realm's numbers may belong to (None: any).
    pub fn countries_for(&self, realm: &str) -> Option<&[String]> {
        self.allowed_countries
            .get(realm)
            .or_else(|| self.allowed_countries.get(""))
            .map(Vec::as_slice)
    }
}

/// Realm-keyed settings: `base` (key `""`) and `base.<realm>`.
fn by_realm<T>(
    m: &BTreeMap<String, String>,
    base: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> BTreeMap<String, T> {
    m.iter()
        .filter_map(|(k, v)| {
            let realm = if k == base {
                ""
            } else {
                k.strip_prefix(base)?.strip_prefix('.')?
            };
            Some((realm.to_lowercase(), parse(v)?))
        })
        .collect()
}

fn region_list(v: &str) -> Option<Vec<String>> {
    let list: Vec<String> = v
        .split(',')
        .map(|r| r.trim().to_ascii_uppercase())
        .filter(|r| !r.is_empty())
        .collect();
    (!list.is_empty() && list.iter().all(|r| number::is_region(r))).then_some(list)
}

fn kind_list(v: &str) -> Option<Vec<NumberKind>> {
    v.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(NumberKind::from_name)
        .collect()
}

/// A send limit: at most `count` SMS per `window_secs` (fixed windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// SMS allowed per window.
    pub count: i64,
    /// Window length in seconds.
    pub window_secs: i64,
}

/// The limits that are on unless configured otherwise.
pub const DEFAULT_LIMITS: &[(&str, &str)] = &[
    ("sms.limit.user", "5/600"),
    ("sms.limit.phone", "5/600"),
    ("sms.limit.client", "20/600"),
    ("sms.limit.prefix", "100/3600"),
    ("sms.limit.country", "0"),
    ("sms.limit.global", "10000/3600"),
];

/// Parses a limit value: `count/seconds`, or `0`/`off` for none. None when malformed.
pub fn parse_limit(v: &str) -> Option<Option<Limit>> {
    let v = v.trim();
    if v == "0" || v.eq_ignore_ascii_case("off") {
        return Some(None);
    }
    let (c, w) = v.split_once('/')?;
    let count: i64 = c.trim().parse().ok()?;
    let window_secs: i64 = w.trim().parse().ok()?;
    if !(1..=10_000_000).contains(&count) || !(1..=31 * 86_400).contains(&window_secs) {
        return None;
    }
    Some(Some(Limit { count, window_secs }))
}

fn limit_or(m: &BTreeMap<String, String>, key: &str) -> Option<Limit> {
    let default = DEFAULT_LIMITS
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| parse_limit(v))
        .flatten();
    match m.get(key) {
        Some(v) => parse_limit(v).unwrap_or(default),
        None => default,
    }
}

fn bool_or(m: &BTreeMap<String, String>, k: &str, default: bool) -> bool {
    m.get(k).map(|v| is_true(v)).unwrap_or(default)
}

fn int_or(m: &BTreeMap<String, String>, k: &str, default: i64) -> i64 {
    m.get(k)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

impl SystemConfig {
    /// Builds the typed view from raw key/values.
    pub fn from_map(m: &BTreeMap<String, String>) -> Self {
        Self {
            sms_identifier: m
                .get("sms.identifier")
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
            challenge_validity_secs: int_or(m, "sms.providerTimeout", 300)
                .clamp(1, MAX_CHALLENGE_VALIDITY_SECS),
            concurrent_challenges: bool_or(m, "sms.concurrent_challenges", false),
            prepend_pin: bool_or(m, "PrependPin", true),
            split_at_sign: bool_or(m, "splitAtSign", true),
            inc_fail_on_false_pin: bool_or(m, "IncFailCountOnFalsePin", true),
            return_saml_attributes: bool_or(m, "ReturnSamlAttributes", false),
            default_max_fail: int_or(m, "DefaultMaxFailCount", 10).max(1),
            default_otp_len: if int_or(m, "DefaultOtpLen", 6) == 8 {
                8
            } else {
                6
            },
            default_count_window: int_or(m, "DefaultCountWindow", 10).clamp(1, 1000),
            default_sync_window: int_or(m, "DefaultSyncWindow", 1000).max(1),
            failcounter_clear_minutes: int_or(
                m,
                "failcounter_clear_timeout",
                DEFAULT_CLEAR_MINUTES,
            )
            .clamp(0, MAX_CLEAR_MINUTES),
            failcounter_clear_backoff: bool_or(m, "failcounter_clear_backoff", true),
            send_budget_ms: int_or(m, "sms.send_budget_ms", DEFAULT_SEND_BUDGET_MS)
                .clamp(100, 120_000),
            breaker_threshold: int_or(m, "sms.breaker_threshold", 3).clamp(0, 1000),
            breaker_open_secs: int_or(m, "sms.breaker_open_secs", 30).clamp(1, 86_400),
            outbox_retry_secs: int_or(m, "event.outbox_retry_secs", 30).clamp(1, 3600),
            outbox_max_age_secs: int_or(m, "event.outbox_max_age_secs", 86_400)
                .clamp(60, 30 * 86_400),
            outbox_concurrency: int_or(m, "event.outbox_concurrency", 4).clamp(1, 64),
            outbox_keep_days: int_or(m, "event.outbox_keep_days", 7).clamp(1, 365),
            message_keep_days: int_or(m, "sms.message_keep_days", 90).clamp(1, 3650),
            delivery_alert_percent: int_or(m, "sms.delivery_alert_percent", 80).clamp(0, 100),
            challenge_max_attempts: int_or(m, "sms.challenge_max_attempts", 3).clamp(0, 1000),
            verify_backoff_secs: int_or(m, "sms.verify_backoff_secs", 0).clamp(0, 3600),
            resend_cooldown_secs: int_or(m, "sms.resend_cooldown_secs", 30).clamp(0, 3600),
            limit_user: limit_or(m, "sms.limit.user"),
            limit_phone: limit_or(m, "sms.limit.phone"),
            limit_client: limit_or(m, "sms.limit.client"),
            limit_prefix: limit_or(m, "sms.limit.prefix"),
            limit_country: limit_or(m, "sms.limit.country"),
            limit_global: limit_or(m, "sms.limit.global"),
            prefix_digits: usize::try_from(int_or(m, "sms.limit.prefix_digits", 7).clamp(1, 12))
                .unwrap_or(5),
            default_regions: by_realm(m, "sms.default_region", |v| {
                let r = v.trim().to_ascii_uppercase();
                number::is_region(&r).then_some(r)
            }),
            allowed_countries: by_realm(m, "sms.allowed_countries", region_list),
            blocked_kinds: m
                .get("sms.blocked_number_types")
                .and_then(|v| kind_list(v))
                .unwrap_or_else(|| vec![NumberKind::PremiumRate]),
            strict_numbers: !m
                .get("sms.number_check")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("lenient")),
            fraud_window_secs: int_or(m, "sms.fraud.window_secs", 3600).clamp(60, 7 * 86_400),
            fraud_min_sends: int_or(m, "sms.fraud.min_sends", 20).clamp(1, 1_000_000),
            fraud_min_success_percent: int_or(m, "sms.fraud.min_success_percent", 0).clamp(0, 100),
        }
    }
}

const BOOL_KEYS: &[&str] = &[
    "sms.concurrent_challenges",
    "failcounter_clear_backoff",
    "PrependPin",
    "splitAtSign",
    "IncFailCountOnFalsePin",
    "ReturnSamlAttributes",
    "ResetFailcounterOnPIN",
    "AutoResync",
];
const INT_KEYS: &[&str] = &[
    "sms.providerTimeout",
    "DefaultMaxFailCount",
    "DefaultOtpLen",
    "DefaultCountWindow",
    "DefaultSyncWindow",
    "failcounter_clear_timeout",
    "sms.send_budget_ms",
    "sms.breaker_threshold",
    "sms.breaker_open_secs",
    "event.outbox_retry_secs",
    "event.outbox_max_age_secs",
    "event.outbox_concurrency",
    "event.outbox_keep_days",
    "sms.message_keep_days",
    "sms.delivery_alert_percent",
    "sms.challenge_max_attempts",
    "sms.verify_backoff_secs",
    "sms.resend_cooldown_secs",
    "sms.limit.prefix_digits",
    "sms.fraud.window_secs",
    "sms.fraud.min_sends",
    "sms.fraud.min_success_percent",
];

fn check_value(key: &str, value: &str) -> Result<()> {
    if key.is_empty() || key.len() > 255 {
        return Err(ServiceError::Parameter(
            "A config key must be 1 to 255 characters long.".into(),
        ));
    }
    if value.len() > 2000 {
        return Err(ServiceError::Parameter(format!(
            "The value of {key} is longer than 2000 characters."
        )));
    }
    if BOOL_KEYS.contains(&key)
        && !matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "true" | "false" | "1" | "0" | "yes" | "no" | "on" | "off"
        )
    {
        return Err(ServiceError::Parameter(format!(
            "{key} must be True or False."
        )));
    }
    if INT_KEYS.contains(&key) && value.trim().parse::<i64>().map(|v| v < 0).unwrap_or(true) {
        return Err(ServiceError::Parameter(format!(
            "{key} must be a non-negative integer."
        )));
    }
    if key == "failcounter_clear_timeout"
        && value
            .trim()
            .parse::<i64>()
            .is_ok_and(|v| v > MAX_CLEAR_MINUTES)
    {
        return Err(ServiceError::Parameter(format!(
            "failcounter_clear_timeout must be at most {MAX_CLEAR_MINUTES} minutes."
        )));
    }
    if DEFAULT_LIMITS.iter().any(|(k, _)| *k == key) && parse_limit(value).is_none() {
        return Err(ServiceError::Parameter(format!(
            "{key} must be count/seconds (e.g. 5/600) or 0 for no limit."
        )));
    }
    let realm_key = |base: &str| key == base || key.starts_with(&format!("{base}."));
    if realm_key("sms.default_region") && !number::is_region(value) {
        return Err(ServiceError::Parameter(format!(
            "{key} must be a region code such as DE or GB."
        )));
    }
    if realm_key("sms.allowed_countries") && region_list(value).is_none() {
        return Err(ServiceError::Parameter(format!(
            "{key} must be region codes such as DE,AT,CH."
        )));
    }
    if key == "sms.number_check"
        && !matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "strict" | "lenient"
        )
    {
        return Err(ServiceError::Parameter(
            "sms.number_check must be strict or lenient.".into(),
        ));
    }
    if key == "sms.blocked_number_types" && kind_list(value).is_none() {
        return Err(ServiceError::Parameter(format!(
            "{key} must name number types: {}.",
            number::KINDS
                .iter()
                .map(|(_, n)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if key == "DefaultOtpLen" && !matches!(value.trim(), "6" | "8") {
        return Err(ServiceError::Parameter(
            "DefaultOtpLen must be 6 or 8.".into(),
        ));
    }
    Ok(())
}

impl Services {
    /// All stored config key/values.
    pub async fn config_map(&self) -> Result<BTreeMap<String, String>> {
        Ok(self.settings().await?.config_map.clone())
    }

    /// The longest `failcounter_clear_timeout`: one year in minutes.
    pub const MAX_CLEAR_MINUTES: i64 = 525_600;

    /// The default latency budget of a send: below the 5 s many RADIUS clients wait.
    pub const DEFAULT_SEND_BUDGET_MS: i64 = 4000;

    /// The effective system configuration.
    pub async fn system_config(&self) -> Result<SystemConfig> {
        Ok(self.settings().await?.config.clone())
    }

    /// `POST /system/setConfig`: sets every given key (all checked first); per key, whether
    /// it was new (`insert`) or changed (`update`).
    pub async fn set_config(
        &self,
        pairs: &[(String, String)],
        cx: &mut Scope,
    ) -> Result<Vec<(String, bool)>> {
        cx.audit.action_detail = pairs
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(",");
        for (k, v) in pairs {
            check_value(k, v)?;
        }
        let mut out = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            out.push((k.clone(), self.store().config_set(k, v, "", "").await?));
        }
        Ok(out)
    }

    /// `DELETE /system/<key>`: true when the key existed.
    pub async fn delete_config(&self, key: &str) -> Result<bool> {
        Ok(self.store().config_delete(key).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_caps() {
        let c = SystemConfig::from_map(&BTreeMap::new());
        assert_eq!(c.challenge_validity_secs, 300);
        assert!(
            c.prepend_pin && c.split_at_sign && c.inc_fail_on_false_pin && !c.concurrent_challenges
        );
        assert_eq!((c.default_max_fail, c.default_otp_len), (10, 6));
        let m = BTreeMap::from([("sms.providerTimeout".to_owned(), "9000".to_owned())]);
        assert_eq!(SystemConfig::from_map(&m).challenge_validity_secs, 600);
    }

    #[test]
    fn limits_parse_and_default_on() {
        let c = SystemConfig::from_map(&BTreeMap::new());
        assert_eq!(
            c.limit_phone,
            Some(Limit {
                count: 5,
                window_secs: 600
            })
        );
        assert!(c.limit_user.is_some() && c.limit_global.is_some());
        assert_eq!((c.resend_cooldown_secs, c.challenge_max_attempts), (30, 3));
        let m = BTreeMap::from([
            ("sms.limit.user".to_owned(), "off".to_owned()),
            ("sms.limit.phone".to_owned(), " 2 / 60 ".to_owned()),
        ]);
        let c = SystemConfig::from_map(&m);
        assert_eq!(c.limit_user, None);
        assert_eq!(
            c.limit_phone,
            Some(Limit {
                count: 2,
                window_secs: 60
            })
        );
        for bad in ["5", "5/0", "x/60", "-1/60", "5/60/1", ""] {
            assert!(parse_limit(bad).is_none(), "{bad}");
            assert!(check_value("sms.limit.phone", bad).is_err(), "{bad}");
        }
        assert!(check_value("sms.limit.phone", "0").is_ok());
    }

    #[test]
    fn number_settings_by_realm() {
        let m = BTreeMap::from([
            ("sms.default_region".to_owned(), "de".to_owned()),
            ("sms.default_region.Swiss".to_owned(), "CH".to_owned()),
            (
                "sms.allowed_countries.swiss".to_owned(),
                "ch, li".to_owned(),
            ),
            (
                "sms.blocked_number_types".to_owned(),
                "premium_rate,voip".to_owned(),
            ),
        ]);
        let c = SystemConfig::from_map(&m);
        assert_eq!(c.region_for("swiss"), Some("CH"));
        assert_eq!(c.region_for("other"), Some("DE"));
        assert_eq!(
            c.countries_for("swiss"),
            Some(&["CH".to_owned(), "LI".to_owned()][..])
        );
        assert_eq!(c.countries_for("other"), None);
        assert_eq!(c.blocked_kinds, [NumberKind::PremiumRate, NumberKind::Voip]);
        let d = SystemConfig::from_map(&BTreeMap::new());
        assert_eq!(
            d.blocked_kinds,
            [NumberKind::PremiumRate],
            "premium rate by default"
        );
        assert!(check_value("sms.default_region.x", "XX").is_err());
        assert!(check_value("sms.allowed_countries", "DE,??").is_err());
        assert!(check_value("sms.blocked_number_types", "premium").is_err());
        assert!(
            check_value("sms.blocked_number_types", "").is_ok(),
            "none blocked"
        );
    }

    #[test]
    fn typed_keys_are_checked() {
        assert!(check_value("DefaultMaxFailCount", "x").is_err());
        assert!(check_value("DefaultOtpLen", "7").is_err());
        assert!(check_value("PrependPin", "maybe").is_err());
        assert!(check_value("PrependPin", "False").is_ok());
        assert!(check_value("custom.key", "anything").is_ok());
    }
}
