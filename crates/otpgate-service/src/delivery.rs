//! Knowing that the SMS arrived: one record per SMS handed to a gateway, the receipt URL the
//! HTTP provider's `{dlr_url}` tag carries (`<server.public_url>/smsgateway/dlr/<reference>`,
//! one unguessable reference per SMS), the receipts that come back to it, and the list of
//! records admins read (`GET /smsgateway/messages`).
//!
//! A receipt's status is the parameter the gateway's `DLR_STATUS` option names (default
//! `status`); `DLR_DELIVERED` and `DLR_FAILED` list the values that mean delivered and not
//! delivered (Kannel's `%d`: 1 delivered, 2 and 16 failed, 4 and 8 on the way); any other
//! value is intermediate. An unknown reference has no effect.
//!
//! Receipts drive failover: after a login's SMS was accepted, the node that sent it follows
//! its record. A failed receipt, or no delivered receipt within the gateway's `DLR_TIMEOUT`
//! seconds, counts against that gateway's breaker and re-sends the same code through the next
//! gateway of the primary's `FAILOVER` chain that did not carry it yet — while the challenge is
//! live and unanswered, counted against the send limits (one claim of the challenge and the
//! windows in one transaction, as a re-send on request is).

use crate::call::{Outcome, Scope};
use crate::gateways::{Outgoing, SendAbout};
use crate::limits::SendKeys;
use crate::settings::SystemConfig;
use crate::{Page, Result, ServiceError, Services};
use otpgate_store::{MessageFact, MessageFilter, NewMessage, Receipt, Resent, SmsMessageRow};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use zeroize::Zeroizing;

/// How long a receipt named by the gateway's own id is looked for (its SMS's record may not
/// have the id yet).
const RECEIPT_MATCH_WAIT: Duration = Duration::from_secs(5);

/// Receipts taken at the same time at most.
const RECEIPT_WORKERS: usize = 16;

/// How far back a receipt named by the gateway's own id looks for its SMS (ids are reused:
/// a modem's message reference after 256 SMS).
const RECEIPT_HORIZON_MS: i64 = 3 * 86_400_000;

/// How often a followed SMS's record is read (a receipt that reaches this node wakes its
/// follower at once; one that reaches another node is seen at the next read).
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// The SMS this node follows, by reference, and how to wake each when its receipt comes.
#[derive(Debug, Default)]
pub struct Followers {
    waiting: Mutex<BTreeMap<String, std::sync::Arc<tokio::sync::Notify>>>,
}

impl Followers {
    fn enter(&self, reference: &str) -> std::sync::Arc<tokio::sync::Notify> {
        let n = std::sync::Arc::new(tokio::sync::Notify::new());
        if let Ok(mut m) = self.waiting.lock() {
            m.insert(reference.to_owned(), n.clone());
        }
        n
    }

    fn leave(&self, reference: &str) {
        if let Ok(mut m) = self.waiting.lock() {
            m.remove(reference);
        }
    }

    fn wake(&self, reference: &str) {
        if let Ok(m) = self.waiting.lock()
            && let Some(n) = m.get(reference)
        {
            n.notify_one();
        }
    }
}

/// A login's SMS, followed until it is delivered, fails over, or its challenge ends.
pub(crate) struct Follow {
    /// The gateway the token's SMS goes to first (its `FAILOVER` chain is the route).
    pub primary: String,
    /// The gateway that took it, the SMS's receipt reference, and the gateway's own id of it.
    pub gateway: String,
    pub reference: String,
    pub external_id: Option<String>,
    /// The number, the text and the code in it (kept in memory only, for a re-send).
    pub phone: String,
    pub text: Zeroizing<String>,
    pub otp: Zeroizing<String>,
    /// The send limits the re-send is counted against.
    pub keys: SendKeys,
    pub cfg: SystemConfig,
    pub about: SendAbout,
}

/// Default of `DLR_STATUS`.
pub const DEFAULT_STATUS_PARAM: &str = "status";
/// Default of `DLR_DELIVERED`.
pub const DEFAULT_DELIVERED: &str = "1,delivered,DELIVRD";
/// Default of `DLR_FAILED`.
pub const DEFAULT_FAILED: &str = "2,16,failed,undelivered,UNDELIV,REJECTD,EXPIRED";

/// Delivery states counted per gateway (`otpgate_sms_delivery_total{gateway,state}`):
/// `accepted`, `not_sent` (the gateway's answer), `delivered`, `failed` (receipts).
#[derive(Debug, Default)]
pub struct DeliveryCounts {
    counts: Mutex<BTreeMap<(String, &'static str), u64>>,
    latency: Mutex<BTreeMap<String, Latency>>,
}

/// The upper bounds (seconds) of the send-to-delivery histogram's buckets.
pub const LATENCY_BUCKETS: &[f64] = &[0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0];

/// One gateway's send-to-delivery times: counts per bucket of [`LATENCY_BUCKETS`] (each
/// counts the times up to its bound), their sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latency {
    /// Cumulative counts per bucket.
    pub buckets: Vec<u64>,
    /// Sum of the times (seconds).
    pub sum: f64,
    /// How many.
    pub count: u64,
}

impl DeliveryCounts {
    fn delivered_after(&self, gateway: &str, ms: i64) {
        let secs = (ms.max(0) as f64) / 1000.0;
        if let Ok(mut m) = self.latency.lock() {
            let l = m.entry(gateway.to_owned()).or_insert_with(|| Latency {
                buckets: vec![0; LATENCY_BUCKETS.len()],
                ..Latency::default()
            });
            for (b, bound) in l.buckets.iter_mut().zip(LATENCY_BUCKETS) {
                if secs <= *bound {
                    *b += 1;
                }
            }
            l.sum += secs;
            l.count += 1;
        }
    }

    /// Each gateway's send-to-delivery histogram.
    pub fn latency(&self) -> Vec<(String, Latency)> {
        self.latency
            .lock()
            .map(|m| m.iter().map(|(g, l)| (g.clone(), l.clone())).collect())
            .unwrap_or_default()
    }

    fn add(&self, gateway: &str, state: &'static str) {
        if let Ok(mut m) = self.counts.lock() {
            *m.entry((gateway.to_owned(), state)).or_default() += 1;
        }
    }

    /// (gateway, state, count), by gateway and state.
    pub fn snapshot(&self) -> Vec<(String, &'static str, u64)> {
        self.counts
            .lock()
            .map(|m| m.iter().map(|((g, s), n)| (g.clone(), *s, *n)).collect())
            .unwrap_or_default()
    }
}

/// What a receipt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptTaken {
    /// The state it means.
    pub receipt: Receipt,
    /// Whether it changed the record (a repeated or late receipt does not).
    pub changed: bool,
}

impl Outcome for ReceiptTaken {}

/// Delivery over a window for one route (a gateway, and a destination country or all).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteStats {
    /// The gateway.
    pub gateway: String,
    /// The destination country (ISO 3166), empty for the gateway's total.
    pub country: String,
    /// SMS handed to the gateway.
    pub sent: i64,
    /// Refused by the gateway.
    pub not_sent: i64,
    /// Delivered (receipt).
    pub delivered: i64,
    /// Not delivered (receipt).
    pub failed: i64,
    /// Accepted, no final receipt (yet).
    pub pending: i64,
    /// Median and 95th percentile of the time from sending to the delivered receipt (ms).
    pub median_ms: Option<i64>,
    /// See `median_ms`.
    pub p95_ms: Option<i64>,
    /// Delivered ÷ (delivered + failed), percent: None without final receipts.
    pub delivery_rate: Option<f64>,
    /// Answered logins ÷ SMS sent, percent.
    pub conversion: Option<f64>,
    /// The delivery rate is below `sms.delivery_alert_percent` over at least 10 final
    /// receipts.
    pub flagged: bool,
}

impl Outcome for RouteStats {}

/// The statistics of `facts`: per gateway first (country empty), then per gateway and
/// country.
pub fn route_stats(facts: &[MessageFact], alert_percent: i64) -> Vec<RouteStats> {
    let mut groups: BTreeMap<(String, String), Vec<&MessageFact>> = BTreeMap::new();
    for f in facts {
        groups
            .entry((f.gateway.clone(), String::new()))
            .or_default()
            .push(f);
        groups
            .entry((f.gateway.clone(), f.country.clone()))
            .or_default()
            .push(f);
    }
    let mut out = Vec::new();
    for ((gateway, country), rows) in groups {
        let count = |state: &str| -> i64 {
            rows.iter()
                .filter(|r| r.state == state)
                .count()
                .try_into()
                .unwrap_or(i64::MAX)
        };
        let mut times: Vec<i64> = rows
            .iter()
            .filter(|r| r.state == "delivered")
            .map(|r| r.delivery_ms)
            .collect();
        times.sort_unstable();
        let pct = |p: usize| -> Option<i64> {
            let last = times.len().checked_sub(1)?;
            times.get((last * p).div_ceil(100)).copied()
        };
        let sent = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let (delivered, failed) = (count("delivered"), count("failed"));
        let answered = i64::try_from(rows.iter().filter(|r| r.answered).count()).unwrap_or(0);
        // Conversion is of the SMS that carried a login's code (test SMS have no login).
        let logins = i64::try_from(rows.iter().filter(|r| r.login).count()).unwrap_or(0);
        let percent = |a: i64, b: i64| (b > 0).then(|| (a as f64) * 100.0 / (b as f64));
        let delivery_rate = percent(delivered, delivered + failed);
        out.push(RouteStats {
            gateway,
            country,
            sent,
            not_sent: count("not_sent"),
            delivered,
            failed,
            pending: count("accepted") + count("sending"),
            median_ms: pct(50),
            p95_ms: pct(95),
            delivery_rate,
            conversion: percent(answered, logins),
            flagged: delivered + failed >= 10
                && delivery_rate.is_some_and(|r| r < alert_percent as f64),
        });
    }
    out
}

/// Whether the SMS `d` that gateway `def` took will be reported on, so that it is followed:
/// by an SMPP session bound as a transceiver or a modem that gives status reports, when the
/// gateway gave the SMS an id its receipts name; by another gateway with `{dlr_url}` or
/// `DLR_TIMEOUT` when this server has a `public_url` for the receipts to come to.
fn reports_deliveries(
    def: &otpgate_gateways::GatewayDef,
    d: &otpgate_gateways::Delivery,
    registry: &otpgate_gateways::Registry,
    public_url: bool,
) -> bool {
    if matches!(
        otpgate_gateways::ProviderKind::parse(&def.module),
        Some(otpgate_gateways::ProviderKind::Smpp | otpgate_gateways::ProviderKind::Modem)
    ) {
        return d.external_id.is_some() && registry.receives_receipts(def);
    }
    public_url
        && (def.options.contains_key("DLR_TIMEOUT")
            || def
                .options
                .values()
                .chain(def.headers.values())
                .any(|v| v.contains("{dlr_url}")))
}

/// `DLR_DELIVERED`/`DLR_FAILED` of a gateway: the values, compared as given.
fn listed(options: &BTreeMap<String, String>, key: &str, default: &str, status: &str) -> bool {
    options
        .get(key)
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
        .unwrap_or(default)
        .split(',')
        .any(|v| v.trim() == status)
}

/// What `status` means for a gateway with `options`.
pub fn classify(options: &BTreeMap<String, String>, status: &str) -> Receipt {
    let status = status.trim();
    if listed(options, "DLR_DELIVERED", DEFAULT_DELIVERED, status) {
        Receipt::Delivered
    } else if listed(options, "DLR_FAILED", DEFAULT_FAILED, status) {
        Receipt::Failed
    } else {
        Receipt::Intermediate
    }
}

impl Services {
    /// The delivery counters of this node.
    pub fn delivery_counts(&self) -> &DeliveryCounts {
        &self.inner.delivery
    }

    /// Records an SMS about to go to `gateway` (its destination prefix `prefix_digits` long,
    /// as the send limits count it) and returns its receipt reference with the
    /// receipt URL (None without `server.public_url`). A record that cannot be written is
    /// logged: the SMS still goes (a login matters more than its statistics).
    pub(crate) async fn message_begin(
        &self,
        gateway: &str,
        phone: &str,
        text: &str,
        message_id: &str,
        about: &SendAbout,
        prefix_digits: usize,
    ) -> (Option<String>, Option<String>) {
        let reference = match self.rng().hex(16) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "no receipt reference: the SMS goes without a record");
                return (None, None);
            }
        };
        let number = otpgate_core::number::parse(phone, None).ok();
        let record = NewMessage {
            reference: reference.clone(),
            message_id: message_id.to_owned(),
            transaction_id: about.transaction_id.clone(),
            serial: about.serial.clone(),
            user: about.user.clone(),
            realm: about.realm.clone(),
            gateway: gateway.to_owned(),
            country: number.and_then(|n| n.region).unwrap_or_default(),
            // Never the whole number: at most all but its last four digits.
            prefix: crate::limits::prefix_key(
                phone,
                prefix_digits.min(
                    phone
                        .chars()
                        .filter(char::is_ascii_digit)
                        .count()
                        .saturating_sub(4),
                ),
            ),
            parts: i64::try_from(otpgate_core::sms_text::segments(text).1).unwrap_or(1),
        };
        if let Err(e) = self
            .store()
            .message_insert(&record, self.clock().now_ms())
            .await
        {
            tracing::warn!(gateway, error = %e, "the SMS record could not be written: its receipts will be unknown");
            return (None, None);
        }
        let url = self
            .inner
            .public_url
            .as_deref()
            .map(|base| format!("{}/smsgateway/dlr/{reference}", base.trim_end_matches('/')));
        (Some(reference), url)
    }

    /// The gateway's answer to the SMS `reference` (before the login's answer: the record
    /// says what the answer says).
    pub(crate) async fn message_answered(
        &self,
        gateway: &str,
        reference: Option<&str>,
        refused: Option<&str>,
        external_id: &str,
    ) {
        self.inner.delivery.add(
            gateway,
            if refused.is_some() {
                "not_sent"
            } else {
                "accepted"
            },
        );
        let Some(reference) = reference else {
            return;
        };
        if let Err(e) = self
            .store()
            .message_answered(reference, refused, external_id, self.clock().now_ms())
            .await
        {
            tracing::warn!(gateway, error = %e, "the SMS record could not be updated");
        }
    }

    /// A delivery receipt for `reference` with its parameters (query, form or JSON, merged).
    /// An unknown reference is `NotFound` and changes nothing.
    pub async fn delivery_receipt(
        &self,
        reference: &str,
        params: &BTreeMap<String, String>,
        cx: &mut Scope,
    ) -> Result<ReceiptTaken> {
        let unknown = || ServiceError::NotFound("There is no such SMS.".into());
        // References are 32 hex digits: anything else is not looked up.
        if reference.len() != 32 || !reference.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(unknown());
        }
        let record = self
            .store()
            .message_get(reference)
            .await?
            .ok_or_else(unknown)?;
        cx.audit.action_detail = format!("SMS receipt from {}", record.gateway);
        cx.audit.serial = record.serial.clone();
        let options = self.receipt_options(&record.gateway).await?;
        let param = options
            .get("DLR_STATUS")
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_STATUS_PARAM);
        let status = params.get(param).map(|s| s.trim()).unwrap_or_default();
        if status.is_empty() {
            return Err(ServiceError::Parameter(format!(
                "The receipt has no {param} parameter."
            )));
        }
        cx.audit.info = format!("status {}", status.chars().take(64).collect::<String>());
        self.take_receipt(&record, &options, status).await
    }

    /// The `DLR_*` options of gateway `name` (none when it is gone).
    async fn receipt_options(&self, name: &str) -> Result<BTreeMap<String, String>> {
        Ok(self
            .store()
            .gateway_by_name(name)
            .await?
            .map(|g| {
                g.options
                    .into_iter()
                    .filter(|o| !o.encrypted && o.otype == "option" && o.key.starts_with("DLR_"))
                    .map(|o| (o.key, o.value))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Applies the receipt `status` (the gateway's text) to `record`.
    async fn take_receipt(
        &self,
        record: &SmsMessageRow,
        options: &BTreeMap<String, String>,
        status: &str,
    ) -> Result<ReceiptTaken> {
        // Kept short: a receipt is the gateway's text, not ours.
        let status: String = status.trim().chars().take(64).collect();
        let receipt = classify(options, &status);
        let changed = self
            .store()
            .message_receipt(&record.reference, receipt, &status, self.clock().now_ms())
            .await?;
        if changed {
            self.inner.followers.wake(&record.reference);
            match receipt {
                Receipt::Delivered => {
                    self.inner.delivery.add(&record.gateway, "delivered");
                    self.inner
                        .delivery
                        .delivered_after(&record.gateway, self.clock().now_ms() - record.sent_at);
                }
                Receipt::Failed => self.inner.delivery.add(&record.gateway, "failed"),
                Receipt::Intermediate => {}
            }
        }
        Ok(ReceiptTaken { receipt, changed })
    }

    /// Takes the receipts gateways report on their own connections (SMPP `deliver_sm`) until
    /// the registry ends; run once per process.
    pub async fn take_gateway_receipts(&self) {
        let Some(mut receipts) = self.registry().take_receipts() else {
            return;
        };
        // A bounded number at a time: beyond it the queue fills and the SMSC is told to
        // send its receipts again later (a flood of foreign receipts costs no more).
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(RECEIPT_WORKERS));
        while let Some(r) = receipts.recv().await {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let s = self.clone();
            tokio::spawn(async move {
                if let Err(e) = s.gateway_receipt(&r).await {
                    tracing::warn!(gateway = %r.gateway, error = %e, "a delivery receipt could not be taken");
                }
                drop(slot);
            });
        }
    }

    /// One receipt named by the gateway's own id. A receipt can overtake the record of the
    /// gateway's answer (the SMSC sends it right after its answer): the id as the receipt
    /// gives it is looked for again for a few seconds. Only then are its other spellings
    /// tried (SMSCs that give the id in hexadecimal in one place and in decimal in the other),
    /// and only against SMS still waiting for their outcome. A receipt that names the
    /// destination (a modem's status report) matches only an SMS to that number's prefix.
    pub(crate) async fn gateway_receipt(
        &self,
        r: &otpgate_gateways::GatewayReceipt,
    ) -> Result<Option<ReceiptTaken>> {
        let Some((exact, others)) = r.ids.split_first() else {
            return Ok(None);
        };
        let since = self.clock().now_ms() - RECEIPT_HORIZON_MS;
        let fits = |m: &SmsMessageRow| {
            r.to.as_deref().is_none_or(|to| {
                let prefix: String = m.prefix.chars().filter(char::is_ascii_digit).collect();
                to.chars()
                    .filter(char::is_ascii_digit)
                    .collect::<String>()
                    .starts_with(&prefix)
            })
        };
        let mut wait = Duration::from_millis(50);
        let deadline = tokio::time::Instant::now() + RECEIPT_MATCH_WAIT;
        let record = loop {
            let found = self
                .store()
                .message_by_external(&r.gateway, exact, since)
                .await?
                .into_iter()
                .find(|m| fits(m));
            if let Some(m) = found {
                break m;
            }
            if tokio::time::Instant::now() + wait > deadline {
                let mut found = None;
                for id in others {
                    found = self
                        .store()
                        .message_by_external(&r.gateway, id, since)
                        .await?
                        .into_iter()
                        .find(|m| fits(m) && matches!(m.state.as_str(), "sending" | "accepted"));
                    if found.is_some() {
                        break;
                    }
                }
                match found {
                    Some(m) => break m,
                    None => {
                        tracing::debug!(gateway = %r.gateway, "a delivery receipt names no SMS of ours");
                        return Ok(None);
                    }
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(800));
        };
        let options = self.receipt_options(&record.gateway).await?;
        self.take_receipt(&record, &options, &r.status)
            .await
            .map(Some)
    }

    /// The gateways an SMS sent through `primary` may fail over to (its `FAILOVER` chain);
    /// None when there are none. Read on the caller's settings (inside a login, the login's
    /// snapshot) from the stored row: nothing is decrypted unless the chain itself is sealed.
    pub(crate) async fn failover_chain(&self, primary: &str) -> Option<Vec<String>> {
        let settings = self.settings().await.ok()?;
        let row = settings.gateways.get(primary)?;
        let chain = match row
            .options
            .iter()
            .find(|o| o.otype != "header" && o.key == "FAILOVER")?
        {
            o if !o.encrypted => otpgate_gateways::failover_list(&row.name, Some(&o.value)),
            _ => otpgate_gateways::failover_names(&self.load_gateway(primary).await.ok()?),
        };
        (!chain.is_empty()).then_some(chain)
    }

    /// Follows a login's SMS (see the module documentation) along `chain` (its
    /// [`Services::failover_chain`]) in a task of its own.
    pub(crate) fn follow_delivery(&self, f: Follow, chain: Vec<String>) {
        let s = self.clone();
        tokio::spawn(async move {
            if let Err(e) = s.follow(f, &chain).await {
                tracing::warn!(error = %e, "following an SMS's delivery stopped");
            }
        });
    }

    async fn follow(&self, f: Follow, chain: &[String]) -> Result<()> {
        let mut current = f.reference.clone();
        let result = self.follow_chain(f, chain, &mut current).await;
        self.inner.followers.leave(&current);
        result
    }

    async fn follow_chain(
        &self,
        mut f: Follow,
        chain: &[String],
        current: &mut String,
    ) -> Result<()> {
        let mut tried = vec![f.primary.clone(), f.gateway.clone()];
        loop {
            if !chain.iter().any(|g| !tried.contains(g)) {
                return Ok(());
            }
            let Ok(carrier) = self.load_gateway(&f.gateway).await else {
                return Ok(());
            };
            let taken = otpgate_gateways::Delivery {
                gateway: f.gateway.clone(),
                reference: Some(f.reference.clone()),
                external_id: f.external_id.clone(),
            };
            if !reports_deliveries(
                &carrier,
                &taken,
                self.registry(),
                self.inner.public_url.is_some(),
            ) {
                return Ok(());
            }
            self.inner.followers.leave(current);
            *current = f.reference.clone();
            let wake = self.inner.followers.enter(&f.reference);
            let timeout_secs: Option<i64> = carrier
                .options
                .get("DLR_TIMEOUT")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|s| *s > 0)
                .map(|s| s.min(86_400));
            let Some(challenge) = self
                .store()
                .challenges_by_tid(&f.about.transaction_id)
                .await?
                .into_iter()
                .find(|c| c.serial == f.about.serial)
            else {
                return Ok(());
            };
            let mut every = FOLLOW_EVERY;
            let failed = loop {
                let Some(m) = self.store().message_get(&f.reference).await? else {
                    return Ok(());
                };
                // Answered (the challenge is consumed) or gone: nothing to follow.
                if m.verified_at > 0 {
                    return Ok(());
                }
                match m.state.as_str() {
                    "delivered" => return Ok(()),
                    "failed" => break true,
                    _ => {}
                }
                // Counted from when the SMS went out; without DLR_TIMEOUT only a failed
                // receipt fails over; never after the challenge.
                let deadline = match timeout_secs {
                    Some(s) => m.sent_at.saturating_add(s * 1000).min(challenge.expires_at),
                    None => challenge.expires_at,
                };
                if self.clock().now_ms() >= deadline {
                    break false;
                }
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(every) => {}
                }
                // Reads get rarer the longer an SMS pends (a local receipt still wakes at once).
                every = (every * 2).min(FOLLOW_EVERY * 8);
            };
            let now = self.clock().now_ms();
            if now >= challenge.expires_at {
                return Ok(());
            }
            let id = self.new_message_id()?;
            // The challenge must still be live and unanswered, not re-sent meanwhile (by a PIN
            // request or another node: its last SMS is still the one read above), and the
            // send limits must allow one more SMS: claimed together, as a re-send on request.
            match self
                .store()
                .challenge_resend(&f.keys.windows(), challenge.id, now, challenge.sent_at)
                .await?
            {
                Resent::Due => {}
                Resent::NotDue | Resent::Refused(_) => return Ok(()),
            }
            tracing::info!(gateway = %f.gateway, failed, "no delivery: the code goes again through the next gateway");
            self.breakers().failure(
                &f.gateway,
                now,
                f.cfg.breaker_threshold,
                f.cfg.breaker_open_secs.saturating_mul(1000),
            );
            let budget = Duration::from_millis(u64::try_from(f.cfg.send_budget_ms).unwrap_or(4000));
            let started = tokio::time::Instant::now();
            let mut sent = None;
            for next in chain
                .iter()
                .filter(|g| !tried.contains(g))
                .cloned()
                .collect::<Vec<_>>()
            {
                tried.push(next.clone());
                if !self.breakers().allows(&next, now) {
                    continue;
                }
                let Ok(def) = self.load_gateway(&next).await else {
                    continue;
                };
                let out = Outgoing {
                    phone: &f.phone,
                    text: &f.text,
                    otp: Some(&f.otp),
                    id: &id,
                    about: &f.about,
                };
                if let Ok(d) = self.attempt(&f.cfg, &def, budget, started, &out).await {
                    sent = Some(d);
                    break;
                }
            }
            let Some(d) = sent else {
                // Nothing went out: the claim is undone (both, even if one fails).
                let unsent = self
                    .store()
                    .challenge_unsend(challenge.id, now, challenge.sent_at)
                    .await;
                let given = self.give_back_send(&f.keys).await;
                unsent?;
                return given;
            };
            let Some(reference) = d.reference else {
                return Ok(());
            };
            f.gateway = d.gateway;
            f.reference = reference;
            f.external_id = d.external_id;
        }
    }

    /// Notes (after the answer, off the login's path) that the SMS of transaction `tid` for
    /// token `serial` converted: its login was answered.
    pub(crate) fn note_conversion(&self, tid: &str, serial: &str) {
        let (s, tid, serial) = (self.clone(), tid.to_owned(), serial.to_owned());
        tokio::spawn(async move {
            let now = s.clock().now_ms();
            if let Err(e) = s.store().message_verified(&tid, &serial, now).await {
                tracing::debug!(error = %e, "an SMS's conversion could not be noted");
            }
        });
    }

    /// `GET /smsgateway/stats`: delivery per gateway and destination country over
    /// `[since_ms, until_ms)`.
    pub async fn delivery_stats(&self, since_ms: i64, until_ms: i64) -> Result<Vec<RouteStats>> {
        let cfg = self.system_config().await?;
        let facts = self.store().message_facts(since_ms, until_ms).await?;
        Ok(route_stats(&facts, cfg.delivery_alert_percent))
    }

    /// Deletes SMS records older than `sms.message_keep_days`.
    pub async fn purge_messages(&self) -> Result<u64> {
        let cfg = self.system_config().await?;
        let before = self.clock().now_ms() - cfg.message_keep_days * 86_400_000;
        Ok(self.store().message_purge(before).await?)
    }

    /// `GET /smsgateway/messages`: SMS records, newest first.
    /// An admin whose policies reach only some realms or users sees only their SMS (records
    /// without a user, such as test SMS and notifications, only with an unrestricted reach).
    pub async fn list_messages(
        &self,
        filter: &MessageFilter,
        page: i64,
        size: i64,
        reach: &otpgate_core::reach::AdminReach,
    ) -> Result<Page<SmsMessageRow>> {
        let page = page.max(1);
        let page_size = size.clamp(1, 1000);
        let (mut items, mut count) = self.store().message_list(filter, page, page_size).await?;
        if !matches!(reach, otpgate_core::reach::AdminReach::Everyone) {
            // Filtered after the query: a limited admin's page may hold fewer records.
            items.retain(|m| {
                !m.user.is_empty()
                    && reach.covers(&otpgate_core::reach::Target {
                        realm: Some(&m.realm),
                        resolver: None,
                        user: Some(&m.user),
                        token_realms: &[],
                    })
            });
            count = i64::try_from(items.len()).unwrap_or(0);
        }
        Ok(Page {
            items,
            count,
            page,
            page_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_statistics() {
        let f = |gw: &str, c: &str, state: &str, ms: i64, ok: bool| MessageFact {
            gateway: gw.to_owned(),
            country: c.to_owned(),
            state: state.to_owned(),
            delivery_ms: ms,
            answered: ok,
            login: true,
        };
        let mut facts = vec![
            f("a", "DE", "delivered", 100, true),
            f("a", "DE", "delivered", 300, true),
            f("a", "GB", "delivered", 200, false),
            f("a", "GB", "not_sent", 0, false),
            f("a", "GB", "accepted", 0, false),
        ];
        for _ in 0..10 {
            facts.push(f("b", "FR", "failed", 50, false));
        }
        facts.push(f("b", "FR", "delivered", 900, true));
        // A test SMS counts as sent, not in the conversion.
        facts.push(MessageFact {
            login: false,
            ..f("c", "DE", "delivered", 100, false)
        });
        let s = route_stats(&facts, 80);
        let get = |gw: &str, c: &str| {
            s.iter()
                .find(|r| r.gateway == gw && r.country == c)
                .unwrap()
        };
        let a = get("a", "");
        assert_eq!(
            (a.sent, a.delivered, a.not_sent, a.pending, a.failed),
            (5, 3, 1, 1, 0)
        );
        assert_eq!((a.median_ms, a.p95_ms), (Some(200), Some(300)));
        assert_eq!(a.delivery_rate, Some(100.0));
        assert_eq!(a.conversion, Some(40.0));
        assert!(!a.flagged);
        let c = get("c", "");
        assert_eq!((c.sent, c.conversion), (1, None));
        let de = get("a", "DE");
        assert_eq!((de.sent, de.conversion), (2, Some(100.0)));
        let b = get("b", "FR");
        assert!(b.flagged, "1 of 11 delivered: {b:?}");
        assert!(!get("b", "").delivery_rate.is_some_and(|r| r > 10.0));
        assert_eq!(
            s.first().map(|r| (r.gateway.as_str(), r.country.as_str())),
            Some(("a", ""))
        );
    }

    #[test]
    fn kannels_status_values_are_classified() {
        let none = BTreeMap::new();
        assert_eq!(classify(&none, "1"), Receipt::Delivered);
        assert_eq!(classify(&none, "DELIVRD"), Receipt::Delivered);
        assert_eq!(classify(&none, "16"), Receipt::Failed);
        assert_eq!(classify(&none, " 2 "), Receipt::Failed);
        assert_eq!(classify(&none, "8"), Receipt::Intermediate);
        assert_eq!(classify(&none, "4"), Receipt::Intermediate);
        let own = BTreeMap::from([
            ("DLR_DELIVERED".to_owned(), "ok".to_owned()),
            ("DLR_FAILED".to_owned(), "bad, lost".to_owned()),
        ]);
        assert_eq!(classify(&own, "ok"), Receipt::Delivered);
        assert_eq!(classify(&own, "lost"), Receipt::Failed);
        assert_eq!(classify(&own, "1"), Receipt::Intermediate);
    }
}
