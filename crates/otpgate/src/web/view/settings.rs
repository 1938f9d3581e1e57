//! The system settings form, in groups, each key with its default and what it does.

use super::super::html::{E, Field, Out, w};
use super::super::session::Session;
use crate::params::Params;
use std::collections::BTreeMap;

/// One setting of the form.
pub struct Setting {
    /// The `/system/setConfig` key.
    pub key: &'static str,
    /// The group it is shown in.
    pub group: &'static str,
    /// Its label.
    pub label: &'static str,
    /// What it does and its default.
    pub hint: &'static str,
}

const fn setting(
    group: &'static str,
    key: &'static str,
    label: &'static str,
    hint: &'static str,
) -> Setting {
    Setting {
        key,
        group,
        label,
        hint,
    }
}

/// The settings of the form, in order. Empty: the default.
pub const KEYS: &[Setting] = &[
    setting(
        "Phone numbers",
        "sms.default_region",
        "Default region",
        "The country of numbers written without their country code (ISO 3166, e.g. DE). Without it such numbers are refused; sms.default_region.<realm> sets one per realm through the API.",
    ),
    setting(
        "Phone numbers",
        "sms.allowed_countries",
        "Countries SMS may go to",
        "Region codes, comma-separated (e.g. DE,AT,CH); empty: every country.",
    ),
    setting(
        "Phone numbers",
        "sms.blocked_number_types",
        "Number types refused",
        "Comma-separated, of mobile, fixed_line, toll_free, premium_rate, shared_cost, voip, … (default premium_rate).",
    ),
    setting(
        "Codes",
        "sms.providerTimeout",
        "Code valid for (seconds)",
        "How long a code sent by SMS can be used (default 300, at most 600).",
    ),
    setting(
        "Codes",
        "DefaultOtpLen",
        "Code length",
        "6 or 8 digits for new tokens (default 6).",
    ),
    setting(
        "Codes",
        "sms.resend_cooldown_secs",
        "Resend cooldown (seconds)",
        "A new PIN request within this time answers the code already sent instead of sending another (default 30; 0: off).",
    ),
    setting(
        "Codes",
        "sms.challenge_max_attempts",
        "Wrong codes per SMS",
        "After this many wrong answers the code is dead and a new one must be requested (default 3; 0: no limit).",
    ),
    setting(
        "Codes",
        "DefaultMaxFailCount",
        "Failures until a token locks",
        "Default 10.",
    ),
    setting(
        "Codes",
        "failcounter_clear_timeout",
        "Lockout lifted after (minutes)",
        "Default 10; 0: an admin must reset the token.",
    ),
    setting(
        "Send limits",
        "sms.limit.user",
        "Per user",
        "count/seconds (default 5/600); 0: no limit.",
    ),
    setting(
        "Send limits",
        "sms.limit.phone",
        "Per number",
        "count/seconds (default 5/600).",
    ),
    setting(
        "Send limits",
        "sms.limit.client",
        "Per client address",
        "count/seconds (default 20/600).",
    ),
    setting(
        "Send limits",
        "sms.limit.prefix",
        "Per number prefix",
        "count/seconds (default 100/3600): SMS pumping spreads over many numbers of one prefix.",
    ),
    setting(
        "Send limits",
        "sms.limit.global",
        "In all",
        "count/seconds (default 10000/3600): the budget of the whole installation.",
    ),
    setting(
        "Gateways",
        "sms.send_budget_ms",
        "Time for a send, failover included (ms)",
        "Default 4000: below the 5 s many RADIUS clients wait.",
    ),
    setting(
        "Gateways",
        "sms.breaker_threshold",
        "Failures before a gateway is skipped",
        "Consecutive failures that open its circuit breaker (default 3; 0: never).",
    ),
    setting(
        "Gateways",
        "sms.delivery_alert_percent",
        "Delivery rate alarm (%)",
        "A route whose receipts say less than this was delivered is flagged (default 80).",
    ),
    setting(
        "Gateways",
        "sms.message_keep_days",
        "SMS records kept (days)",
        "Default 90.",
    ),
];

/// The form: each group a fieldset; a field shows what was typed, else what is stored.
pub fn body(
    b: &mut Out,
    s: &Session,
    stored: &BTreeMap<String, String>,
    f: &Params,
    errors: &[(String, String)],
) {
    b.raw("<p>System settings, as <code>POST /system/setConfig</code> sets them. An empty field means the default.</p>");
    super::form_open(b, s, "/ui/admin/settings");
    let mut group = "";
    for k in KEYS {
        if k.group != group {
            if !group.is_empty() {
                b.raw("</fieldset>");
            }
            group = k.group;
            w!(b, "<fieldset><legend>{}</legend>", E(group));
        }
        let value = f
            .get(k.key)
            .map(str::to_owned)
            .or_else(|| stored.get(k.key).cloned())
            .unwrap_or_default();
        Field::new(k.key, k.label)
            .value(&value)
            .hint(k.hint)
            .errors(errors)
            .input(b);
    }
    if !group.is_empty() {
        b.raw("</fieldset>");
    }
    b.raw("<div class=\"actions\"><button class=\"primary\" type=\"submit\">Save settings</button></div></form>");
}
