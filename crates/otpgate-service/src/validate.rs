//! The two-step SMS login (`/validate/check`, `/validate/triggerchallenge`,
//! `/validate/polltransaction`).
//!
//! * PIN only → a challenge per PIN-matching token: the HOTP counter moves on by one, the OTP
//!   for the new counter goes out by SMS, and a challenge row remembers the counter.
//! * transaction id + OTP → the OTP must match a live challenge of that transaction; the
//!   challenge is consumed by one conditional DELETE, so it is accepted exactly once.
//! * PIN + OTP → the PIN is checked and the OTP must match a live challenge of the token (an
//!   SMS OTP dies with its challenge, also in this path: a deliberate deviation).
//!
//! Wrong answers are outcomes (`value: false`), not errors.

use crate::audit::AuditEntry;
use crate::gateways::SmsFailure;
use crate::limits::{LIMITED, NUMBER_REFUSED, SendKeys, send_number};
use crate::policy::{ActionValue, Policies, PolicyContext};
use crate::settings::SystemConfig;
use crate::tokens::{key_aad, owner_of};
use crate::users::User;
use crate::{Result, ServiceError, Services};
use otpgate_core::hotp::{self, HashLib};
use otpgate_core::template::{self, Tags};
use otpgate_store::{ChallengeRow, Opened, Reserve, TokenRow};
use serde_json::{Map, Value, json};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// The prompt of an SMS challenge.
pub const DEFAULT_PROMPT: &str = "Enter the OTP from the SMS:";
/// The answer while the verify back-off holds every token (with `detail.retry_after`).
pub const BACKED_OFF: &str = "Too many failed attempts. Please wait before trying again.";

/// The answer when the PIN was right but no SMS went out.
pub const SEND_FAILED: &str = "The PIN was correct, but the SMS could not be sent!";

/// Every tag an SMS text may use, with a long but ordinary value: a text that needs more than
/// one SMS with these needs it in real life too.
pub const SMS_TAG_SAMPLES: &[(&str, &str)] = &[
    ("otp", "12345678"),
    ("challenge", ""),
    ("serial", "PISM0000ABCD"),
    ("tokentype", "sms"),
    ("user", "Alexander"),
    ("givenname", "Alexander"),
    ("surname", "Schneider"),
    ("username", "alexander.schneider"),
    ("userrealm", "example"),
    ("recipient_givenname", "Alexander"),
    ("recipient_surname", "Schneider"),
    ("time", "12:34:56"),
    ("date", "2026-11-28"),
    ("phone", "+4915112345678"),
    ("phone_redacted", "****-******78"),
    ("tokendescription", ""),
    ("admin", ""),
    ("realm", ""),
    ("action", ""),
    ("url", ""),
    ("client_ip", "192.0.2.10"),
    ("ua_browser", ""),
    ("ua_string", ""),
    ("pin", ""),
    ("registrationcode", ""),
];

/// An SMS text template rendered with an 8-digit OTP and ordinary sample values (what the
/// admin console previews and counts), or why it cannot be rendered.
pub fn sms_text_preview(template: &str) -> std::result::Result<String, String> {
    let tags: Tags = SMS_TAG_SAMPLES
        .iter()
        .map(|(k, v)| (*k, (*v).to_owned()))
        .collect();
    template::render_sms_text(template, &tags)
        .map_err(|e| format!("The SMS text cannot be rendered: {e}"))
}

/// What an admin should know about an SMS text template before it bites: it cannot be
/// rendered, or, rendered with an 8-digit OTP and ordinary values, it needs several SMS.
pub fn sms_text_warnings(template: &str) -> Vec<String> {
    let tags: Tags = SMS_TAG_SAMPLES
        .iter()
        .map(|(k, v)| (*k, (*v).to_owned()))
        .collect();
    match template::render_sms_text(template, &tags) {
        Err(e) => vec![format!("The SMS text cannot be rendered: {e}")],
        Ok(text) => {
            let (enc, n) = otpgate_core::sms_text::segments(&text);
            if n <= 1 {
                return Vec::new();
            }
            let (name, single) = match enc {
                otpgate_core::sms_text::Encoding::Gsm7 => ("GSM-7", 160),
                otpgate_core::sms_text::Encoding::Ucs2 => ("UCS-2", 70),
            };
            vec![format!(
                "The SMS text needs {n} SMS per message ({name}: {} characters where one SMS holds {single}); every part is billed.",
                otpgate_core::sms_text::length(&text, enc)
            )]
        }
    }
}

/// privacyIDEA's `result.authentication`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authentication {
    /// Authenticated.
    Accept,
    /// Not authenticated.
    Reject,
    /// A challenge was sent; answer it.
    Challenge,
}

impl Authentication {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Authentication::Accept => "ACCEPT",
            Authentication::Reject => "REJECT",
            Authentication::Challenge => "CHALLENGE",
        }
    }
}

/// The answer of an authentication call: `result.value`, `result.authentication`, `detail`.
#[derive(Debug, Clone)]
pub struct AuthResponse {
    /// `result.value` (a bool, or a count for triggerchallenge).
    pub value: Value,
    /// `result.authentication`.
    pub authentication: Authentication,
    /// `detail`.
    pub detail: Map<String, Value>,
}

impl AuthResponse {
    fn reject(message: impl Into<String>) -> Self {
        let mut detail = Map::new();
        detail.insert("message".into(), json!(message.into()));
        Self {
            value: json!(false),
            authentication: Authentication::Reject,
            detail,
        }
    }

    fn accept(detail: Map<String, Value>) -> Self {
        Self {
            value: json!(true),
            authentication: Authentication::Accept,
            detail,
        }
    }

    /// The transaction id of a challenge answer.
    pub fn transaction_id(&self) -> Option<&str> {
        self.detail.get("transaction_id").and_then(Value::as_str)
    }

    /// `detail.message`.
    pub fn message(&self) -> Option<&str> {
        self.detail.get("message").and_then(Value::as_str)
    }
}

/// The parameters of `/validate/check`.
#[derive(Debug, Clone, Default)]
pub struct CheckRequest {
    /// `user` (may be `user@realm`).
    pub user: Option<String>,
    /// `realm`.
    pub realm: Option<String>,
    /// `serial`.
    pub serial: Option<String>,
    /// `pass`.
    pub pass: Option<String>,
    /// `transaction_id` (or its alias `state`).
    pub transaction_id: Option<String>,
    /// `exception=1`: a send failure becomes an error.
    pub exception: bool,
    /// `otponly=1` (with `serial`): the pass is the OTP alone.
    pub otponly: bool,
    /// `challenge`: free text for the `{challenge}` tag.
    pub challenge: Option<String>,
    /// The end user's address (the peer's, or the one a trusted proxy gave).
    pub client: Option<IpAddr>,
    /// The end user's address only when a trusted proxy gave it (`client` parameter or
    /// `X-Forwarded-For`): the key of the per-client send limit. The peer itself is usually
    /// an application server that sends all its users' logins.
    pub end_user: Option<IpAddr>,
}

/// One token with its decoded key, ready for checks.
struct Live {
    row: TokenRow,
    key: zeroize::Zeroizing<Vec<u8>>,
    hash: HashLib,
    /// The fail counter and its maximum after this attempt was reserved (see `reserve`).
    fails: (i64, i64),
    /// The reserved attempt was kept or given back.
    settled: AtomicBool,
}

impl Live {
    fn otp(&self, counter: i64) -> Result<String> {
        let c = u64::try_from(counter)
            .map_err(|_| ServiceError::Internal("negative counter".into()))?;
        let digits = u32::try_from(self.row.otplen)
            .map_err(|_| ServiceError::Internal("bad otplen".into()))?;
        Ok(hotp::hotp(&self.key, c, digits, self.hash)?)
    }
}

/// Completes a CHALLENGE answer: the last token's `attributes` and `serial`, the transaction
/// id, the client modes.
fn challenge_answer(
    mut d: Map<String, Value>,
    attributes: Value,
    serial: &str,
    tid: &str,
    ctx: &Ctx<'_>,
    audit: &mut AuditEntry,
) -> Result<AuthResponse> {
    let preferred = ctx
        .text("preferred_client_mode")?
        .unwrap_or_else(|| "interactive".to_owned());
    d.insert("attributes".into(), attributes);
    d.insert("client_mode".into(), json!("interactive"));
    d.insert("preferred_client_mode".into(), json!(preferred));
    d.insert("serial".into(), json!(serial));
    d.insert("transaction_id".into(), json!(tid));
    d.insert("type".into(), json!("sms"));
    audit.authentication = "CHALLENGE".into();
    Ok(AuthResponse {
        value: json!(false),
        authentication: Authentication::Challenge,
        detail: d,
    })
}

/// The wrong answers after which a challenge dies (None: unlimited).
fn max_wrong(cfg: &SystemConfig) -> Option<i64> {
    (cfg.challenge_max_attempts > 0).then_some(cfg.challenge_max_attempts)
}

/// Why a token cannot take part in an authentication.
fn unfit_reason(t: &TokenRow) -> Option<&'static str> {
    if !t.active {
        Some("Token is disabled")
    } else if t.failcount >= t.maxfail {
        Some("Failcounter exceeded")
    } else if matches!(t.rollout_state.as_str(), "clientwait" | "verify") {
        Some("Token is not yet enrolled")
    } else {
        None
    }
}

/// The tokens of `all` that are not in `these`.
fn others<'a>(all: &[&'a Live], these: &[&Live]) -> Vec<&'a Live> {
    all.iter()
        .copied()
        .filter(|t| !these.iter().any(|x| x.row.id == t.row.id))
        .collect()
}

fn unique_join(messages: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for m in messages {
        if !seen.contains(&m.as_str()) {
            seen.push(m);
        }
    }
    seen.join(", ")
}

/// Adds the names of the policies that decided something to the audit entry.
fn note_policies(audit: &mut AuditEntry, used: &Mutex<Vec<String>>) {
    let Ok(used) = used.lock() else { return };
    let mut all: Vec<&str> = audit
        .policies
        .split(',')
        .filter(|p| !p.is_empty())
        .collect();
    for n in used.iter() {
        if !all.contains(&n.as_str()) {
            all.push(n);
        }
    }
    audit.policies = all.join(",");
}

fn local_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .naive_local()
                .format("%Y-%m-%d %H:%M:%S%.6f")
                .to_string()
        })
        .unwrap_or_default()
}

/// Everything one request evaluates policies and texts against.
struct Ctx<'a> {
    user: Option<&'a User>,
    policies: &'a Policies,
    cfg: &'a SystemConfig,
    client: Option<IpAddr>,
    end_user: Option<IpAddr>,
    /// Names of the policies that decided something, for the audit log.
    used: &'a Mutex<Vec<String>>,
}

impl Ctx<'_> {
    fn note(&self, names: &[String]) {
        if let Ok(mut u) = self.used.lock() {
            for n in names {
                if !u.contains(n) {
                    u.push(n.clone());
                }
            }
        }
    }

    /// An authentication-scope action, noting the deciding policies.
    fn action(&self, action: &str) -> Result<Option<(ActionValue, Vec<String>)>> {
        let r = self
            .policies
            .action("authentication", action, &self.pctx())?;
        if let Some((_, names)) = &r {
            self.note(names);
        }
        Ok(r)
    }

    /// The unescaped text value of an authentication-scope action.
    fn text(&self, action: &str) -> Result<Option<String>> {
        Ok(match self.action(action)? {
            Some((ActionValue::Value(v), _)) => Some(template::unescape_policy_text(&v)),
            _ => None,
        })
    }

    /// Whether a boolean authentication-scope action is set.
    fn flag(&self, action: &str) -> Result<bool> {
        Ok(match self.action(action)? {
            Some((ActionValue::Flag, _)) => true,
            Some((ActionValue::Value(v), _)) => crate::params::is_true(&v),
            None => false,
        })
    }

    fn pctx(&self) -> PolicyContext<'_> {
        PolicyContext {
            realm: self.user.map(|u| u.realm.as_str()),
            resolver: self.user.map(|u| u.resolver.as_str()),
            user: self.user.map(|u| u.login.as_str()),
            client: self.client,
        }
    }
}

impl Services {
    fn live(&self, row: TokenRow) -> Result<Live> {
        let key = self
            .keys()
            .open(&row.key_enc, &key_aad(&row.serial))
            .map_err(|_| {
                ServiceError::Internal(format!(
                    "The key of token {} cannot be decrypted.",
                    row.serial
                ))
            })?;
        let hash = HashLib::parse(
            row.info
                .get("hashlib")
                .map(String::as_str)
                .unwrap_or("sha1"),
        )
        .unwrap_or_default();
        Ok(Live {
            row,
            key,
            hash,
            fails: (0, 0),
            settled: AtomicBool::new(true),
        })
    }

    /// privacyIDEA's `failcounter_clear_timeout`: a lockout older than the configured minutes
    /// is lifted (lazily, when the token is next used). One conditional statement, so two
    /// nodes cannot both lift it and lose a failure counted in between.
    async fn clear_expired_lockout(&self, t: &mut TokenRow, cfg: &SystemConfig) -> Result<()> {
        if cfg.failcounter_clear_minutes <= 0 || t.failcount < t.maxfail {
            return Ok(());
        }
        let Some(since) = t
            .info
            .get("failcounter_exceeded")
            .and_then(|v| chrono::DateTime::parse_from_str(v, "%Y-%m-%dT%H:%M%z").ok())
        else {
            return Ok(());
        };
        let lifted_at =
            since.checked_add_signed(chrono::Duration::minutes(cfg.failcounter_clear_minutes));
        if lifted_at.is_some_and(|at| self.clock().now() >= at)
            && self.store().token_clear_lockout(t.id, t.failcount).await?
        {
            t.failcount = 0;
            t.info.remove("failcounter_exceeded");
        }
        Ok(())
    }

    /// privacyIDEA's `count_auth`, `count_auth_success` and `last_auth` token info.
    async fn record_auth(&self, t: &TokenRow, success: bool) -> Result<()> {
        let now = self
            .clock()
            .now()
            .format("%Y-%m-%d %H:%M:%S%.6f%z")
            .to_string();
        Ok(self.store().token_count_auth(t.id, success, &now).await?)
    }

    /// Counts this attempt against every token's fail counter *before* any PIN or OTP is
    /// checked, one conditional UPDATE per token. Parallel guesses therefore get no more
    /// answers than the lockout allows, and a token at its maximum takes no part. Attempts that
    /// turn out not to be failures are given back ([`Services::release`]).
    /// Reserves one attempt per token (counted as a failure until it is given back); tokens
    /// at their maximum are left out, and so are tokens the verify back-off still holds (the
    /// latest such time is returned).
    async fn reserve(
        &self,
        tokens: Vec<TokenRow>,
        cfg: &SystemConfig,
    ) -> Result<(Vec<Live>, Option<i64>)> {
        let mut out = Vec::with_capacity(tokens.len());
        let mut held: Option<i64> = None;
        let (backoff_ms, now) = (cfg.verify_backoff_secs * 1000, self.clock().now_ms());
        for row in tokens {
            match self
                .store()
                .token_reserve_attempt(row.id, backoff_ms, now)
                .await?
            {
                Reserve::Reserved(fails, max) => {
                    let mut live = self.live(row)?;
                    live.fails = (fails, max);
                    live.settled = AtomicBool::new(false);
                    out.push(live);
                }
                Reserve::BackOff { until_ms } => {
                    held = Some(held.map_or(until_ms, |h| h.max(until_ms)));
                }
                Reserve::Saturated => {}
            }
        }
        Ok((out, held))
    }

    /// Gives reserved attempts back (they were no failures).
    async fn release(&self, tokens: &[&Live]) -> Result<()> {
        for t in tokens {
            if !t.settled.swap(true, Ordering::Relaxed) {
                self.store().token_release_failcount(t.row.id).await?;
            }
        }
        Ok(())
    }

    /// Keeps reserved attempts as failures: notes a reached lockout and, for OTP attempts,
    /// privacyIDEA's `count_auth`.
    /// The failure time is noted only while the verify back-off is on (it is the only
    /// reader), so failures cost no extra write otherwise.
    async fn keep(&self, tokens: &[&Live], otp_attempt: bool, cfg: &SystemConfig) -> Result<()> {
        let now = self.clock().now_ms();
        for t in tokens {
            t.settled.store(true, Ordering::Relaxed);
            if cfg.verify_backoff_secs > 0 {
                self.store().token_note_failure(t.row.id, now).await?;
            }
            if t.fails.0 >= t.fails.1 {
                let stamp = self.clock().now().format("%Y-%m-%dT%H:%M%z").to_string();
                self.store()
                    .token_set_info(t.row.id, "failcounter_exceeded", &stamp)
                    .await?;
            }
            if otp_attempt {
                self.record_auth(&t.row, false).await?;
            }
        }
        Ok(())
    }

    async fn count_failure(&self, t: &TokenRow, cfg: &SystemConfig) -> Result<()> {
        if cfg.verify_backoff_secs > 0 {
            self.store()
                .token_note_failure(t.id, self.clock().now_ms())
                .await?;
        }
        if let Some((n, max)) = self.store().token_inc_failcount(t.id).await?
            && n >= max
        {
            let stamp = self.clock().now().format("%Y-%m-%dT%H:%M%z").to_string();
            self.store()
                .token_set_info(t.id, "failcounter_exceeded", &stamp)
                .await?;
        }
        Ok(())
    }

    /// One Argon2 verification against a hash no PIN matches, made with the current PIN-hash
    /// parameters: what a wrong PIN costs, for answers that must not be faster than one.
    /// As much hashing work as checking a real PIN, for callers that must not tell an unknown
    /// user from a wrong PIN by the time they take.
    pub async fn equal_cost_pin_check(&self, pass: &str) -> Result<()> {
        let hash = self.dummy_pin_hash().await?;
        let _ = self.verify_secret(pass, &hash).await?;
        Ok(())
    }

    async fn pin_matches(&self, t: &TokenRow, pin: &str, ctx: &Ctx<'_>) -> Result<bool> {
        match ctx.text("otppin")?.as_deref() {
            Some("userstore") => match ctx.user {
                Some(u) => self.check_user_password(u, pin).await,
                None => Ok(false),
            },
            Some("none") => Ok(pin.is_empty()),
            _ => self.verify_secret(pin, &t.pin_hash).await,
        }
    }

    /// `/validate/check`.
    pub async fn check(&self, req: CheckRequest, audit: &mut AuditEntry) -> Result<AuthResponse> {
        // The check runs to completion even when the caller goes away (an HTTP timeout, a
        // closed connection): stopping half-way would leave counted attempts unjudged.
        let svc = self.clone();
        let mut owned = std::mem::take(audit);
        let task = tokio::spawn(async move {
            let used = Mutex::new(Vec::new());
            let r = svc.check_with(req, &mut owned, &used).await;
            note_policies(&mut owned, &used);
            (r, owned)
        });
        let (r, owned) = task
            .await
            .map_err(|_| ServiceError::Internal("the check task failed".into()))?;
        *audit = owned;
        r
    }

    async fn check_with(
        &self,
        req: CheckRequest,
        audit: &mut AuditEntry,
        used: &Mutex<Vec<String>>,
    ) -> Result<AuthResponse> {
        let user_param = req.user.as_deref().map(str::trim).filter(|u| !u.is_empty());
        let serial_param = req
            .serial
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if user_param.is_none() && serial_param.is_none() {
            return Err(ServiceError::Parameter(
                "You need to specify a serial, user or credential_id.".into(),
            ));
        }
        if user_param.is_some_and(|u| u.contains('%')) {
            return Err(ServiceError::Parameter("Invalid user.".into()));
        }
        if serial_param.is_some_and(|s| s.contains('*')) {
            return Err(ServiceError::Parameter("Invalid serial number.".into()));
        }
        let pass = req
            .pass
            .clone()
            .ok_or_else(|| ServiceError::missing("pass"))?;
        // One read of the settings version for the whole check.
        let settings = self.settings().await?;
        let (cfg, policies) = (&settings.config, &settings.policies);

        let (user, tokens) = match user_param {
            Some(login) => {
                let (login, realm, found) = self
                    .lookup_user(&settings, login, req.realm.as_deref())
                    .await?;
                audit.user = login.clone();
                audit.realm = realm.clone();
                let Some(user) = found else {
                    let ctx = PolicyContext {
                        realm: Some(&realm),
                        user: Some(&login),
                        client: req.client,
                        ..Default::default()
                    };
                    if let Some((_, names)) =
                        policies.action("authentication", "passOnNoUser", &ctx)?
                    {
                        let msg = format!(
                            "user does not exist, accepted due to '{}'",
                            names.join(", ")
                        );
                        audit.policies = names.join(",");
                        audit.info = msg.clone();
                        let mut d = Map::new();
                        d.insert("message".into(), json!(msg));
                        return Ok(AuthResponse::accept(d));
                    }
                    let unknown = format!("User <{login}@{realm}> does not exist.");
                    // hide_specific_error_message: an unknown user is answered like a wrong
                    // PIN, after the same Argon2 work, so neither the answer nor its timing
                    // tells whether the name exists (the audit keeps the reason).
                    let hide = match policies.action(
                        "authentication",
                        "hide_specific_error_message",
                        &ctx,
                    )? {
                        Some((ActionValue::Flag, _)) => true,
                        Some((ActionValue::Value(v), _)) => crate::params::is_true(&v),
                        None => false,
                    };
                    if hide {
                        self.equal_cost_pin_check(&pass).await?;
                        audit.info = unknown;
                        let mut r = AuthResponse::reject("Authentication failed.");
                        r.detail = Map::new();
                        r.detail
                            .insert("message".into(), json!("Authentication failed."));
                        return Ok(r);
                    }
                    return Err(ServiceError::User(unknown));
                };
                audit.resolver = user.resolver.clone();
                let mut tokens = self.store().tokens_of_user(&owner_of(&user)).await?;
                if let Some(s) = serial_param {
                    tokens.retain(|t| t.serial == s);
                    if tokens.is_empty() {
                        return Err(ServiceError::Parameter(
                            "Given serial does not belong to given user!".into(),
                        ));
                    }
                }
                (Some(user), tokens)
            }
            None => {
                let s = serial_param.unwrap_or_default();
                let t = self.store().token_by_serial(s).await?.ok_or_else(|| {
                    ServiceError::NotFound("The requested token could not be found.".into())
                })?;
                let user = match &t.owner {
                    Some(o) => self.user_by_id(&o.resolver, &o.user_id, &o.realm).await?,
                    None => None,
                };
                if let Some(u) = &user {
                    audit.user = u.login.clone();
                    audit.realm = u.realm.clone();
                    audit.resolver = u.resolver.clone();
                }
                (user, vec![t])
            }
        };
        let ctx = Ctx {
            user: user.as_ref(),
            policies,
            cfg,
            client: req.client,
            end_user: req.end_user,
            used,
        };
        // privacyIDEA's hide_specific_error_message: a rejection says only "Authentication
        // failed." (the audit keeps the reason).
        let hide = ctx.flag("hide_specific_error_message")?;
        let answer = |r: Result<AuthResponse>, audit: &mut AuditEntry| match r {
            Ok(mut a) if hide && a.authentication == Authentication::Reject => {
                if audit.info.is_empty() {
                    audit.info = a.message().unwrap_or_default().to_owned();
                }
                a.detail = Map::new();
                a.detail
                    .insert("message".into(), json!("Authentication failed."));
                Ok(a)
            }
            other => other,
        };
        let tokens: Vec<TokenRow> = tokens
            .into_iter()
            .filter(|t| t.tokentype == "sms")
            .collect();
        if tokens.is_empty() {
            if let Some((_, names)) = ctx.action("passOnNoToken")? {
                let msg = format!("user has no token, accepted due to '{}'", names.join(", "));
                audit.policies = names.join(",");
                let mut d = Map::new();
                d.insert("message".into(), json!(msg));
                return Ok(AuthResponse::accept(d));
            }
            return answer(
                Ok(AuthResponse::reject("The user has no tokens assigned")),
                audit,
            );
        }
        if tokens.iter().all(|t| t.revoked) {
            return Err(ServiceError::TokenLocked);
        }
        let mut tokens: Vec<TokenRow> = tokens.into_iter().filter(|t| !t.revoked).collect();
        for t in &mut tokens {
            self.clear_expired_lockout(t, ctx.cfg).await?;
        }
        audit.token_type = "sms".into();
        audit.serial = tokens
            .iter()
            .map(|t| t.serial.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let (usable, unfit): (Vec<TokenRow>, Vec<TokenRow>) =
            tokens.into_iter().partition(|t| unfit_reason(t).is_none());
        if usable.is_empty() {
            let msgs: Vec<String> = unfit
                .iter()
                .filter_map(unfit_reason)
                .map(str::to_owned)
                .collect();
            return answer(Ok(AuthResponse::reject(unique_join(&msgs))), audit);
        }
        let (usable, held) = self.reserve(usable, ctx.cfg).await?;
        if usable.is_empty() {
            if let Some(until) = held {
                let mut r = AuthResponse::reject(BACKED_OFF);
                let left = (until - self.clock().now_ms()).max(0);
                r.detail
                    .insert("retry_after".into(), json!((left + 999) / 1000));
                audit.action_detail = "verify back-off (sms.verify_backoff_secs)".into();
                return answer(Ok(r), audit);
            }
            return answer(Ok(AuthResponse::reject("Failcounter exceeded")), audit);
        }
        let decided = self
            .decide(&usable, &req, serial_param.is_some(), &pass, &ctx, audit)
            .await;
        if decided.is_err() {
            // A failure half-way must not leave attempts counted that were never judged.
            let unsettled: Vec<&Live> = usable
                .iter()
                .filter(|t| !t.settled.load(Ordering::Relaxed))
                .collect();
            let _ = self.release(&unsettled).await;
        }
        answer(decided, audit)
    }

    /// Everything after the attempts were reserved.
    async fn decide(
        &self,
        usable: &[Live],
        req: &CheckRequest,
        by_serial: bool,
        pass: &str,
        ctx: &Ctx<'_>,
        audit: &mut AuditEntry,
    ) -> Result<AuthResponse> {
        let all: Vec<&Live> = usable.iter().collect();

        if req.otponly && by_serial {
            return self
                .answer_any_live_challenge(usable, pass, ctx, audit)
                .await;
        }
        if let Some(tid) = req
            .transaction_id
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let rows: Vec<ChallengeRow> = self
                .store()
                .challenges_by_tid(tid)
                .await?
                .into_iter()
                .filter(|c| usable.iter().any(|t| t.row.id == c.token_id))
                .collect();
            if !rows.is_empty() {
                return self
                    .answer_challenge(tid, usable, &rows, pass, ctx, audit)
                    .await;
            }
        }

        // Challenge request: the whole pass is a token's PIN.
        let mut pin_tokens = Vec::new();
        for t in usable {
            if self.pin_matches(&t.row, pass, ctx).await? {
                pin_tokens.push(t);
            }
        }
        if !pin_tokens.is_empty() {
            self.release(&all).await?;
            if let Some(r) = self.recent_challenge(&pin_tokens, ctx, audit).await? {
                return Ok(r);
            }
            return self
                .create_challenges(
                    &pin_tokens,
                    ctx,
                    req.challenge.as_deref(),
                    req.exception,
                    audit,
                )
                .await;
        }

        // PIN + OTP in one pass.
        let mut wrong_otp: Vec<&Live> = Vec::new();
        for t in usable {
            let otplen = usize::try_from(t.row.otplen).unwrap_or(6);
            let Some(split) = pass
                .len()
                .checked_sub(otplen)
                .filter(|s| pass.is_char_boundary(*s))
            else {
                continue;
            };
            let (pin, otp) = if ctx.cfg.prepend_pin {
                (
                    pass.get(..split).unwrap_or_default(),
                    pass.get(split..).unwrap_or_default(),
                )
            } else {
                (
                    pass.get(otplen..).unwrap_or_default(),
                    pass.get(..otplen).unwrap_or_default(),
                )
            };
            if !self.pin_matches(&t.row, pin, ctx).await? {
                continue;
            }
            if let Some(c) = self.matching_live_challenge(t, otp, ctx.cfg).await?
                && self.consume(t, &c, ctx.cfg).await?
            {
                self.release(&others(&all, &[t])).await?;
                self.store().challenge_delete_tid(&c.transaction_id).await?;
                self.after_success(t, ctx, audit).await?;
                audit.serial = t.row.serial.clone();
                audit.info = "matching 1 tokens".into();
                let mut d = Map::new();
                d.insert("message".into(), json!("matching 1 tokens"));
                d.insert("serial".into(), json!(t.row.serial));
                d.insert("type".into(), json!("sms"));
                d.insert("otplen".into(), json!(t.row.otplen));
                return Ok(AuthResponse::accept(d));
            }
            wrong_otp.push(t);
        }
        if let Some(t) = wrong_otp.first() {
            self.keep(&wrong_otp, true, ctx.cfg).await?;
            self.release(&others(&all, &wrong_otp)).await?;
            let otplen = usize::try_from(t.row.otplen).unwrap_or(6);
            let otp = if ctx.cfg.prepend_pin {
                pass.get(pass.len().saturating_sub(otplen)..)
            } else {
                pass.get(..otplen)
            };
            let previous = t.row.count >= 1
                && otp.is_some_and(|o| t.otp(t.row.count - 1).is_ok_and(|p| hotp::otp_eq(o, &p)));
            let msg = if previous {
                "wrong otp value. previous otp used again"
            } else {
                "wrong otp value"
            };
            audit.serial = t.row.serial.clone();
            let mut r = AuthResponse::reject(msg);
            r.detail.insert("serial".into(), json!(t.row.serial));
            r.detail.insert("type".into(), json!("sms"));
            r.detail.insert("otplen".into(), json!(t.row.otplen));
            return Ok(r);
        }
        if ctx.cfg.inc_fail_on_false_pin {
            self.keep(&all, false, ctx.cfg).await?;
        } else {
            self.release(&all).await?;
        }
        Ok(AuthResponse::reject("wrong otp pin"))
    }

    /// A live challenge of `t` whose OTP is `otp`. Without `sms.concurrent_challenges` only the
    /// newest challenge counts (a newer SMS invalidates older ones, as in privacyIDEA).
    async fn matching_live_challenge(
        &self,
        t: &Live,
        otp: &str,
        cfg: &SystemConfig,
    ) -> Result<Option<ChallengeRow>> {
        let now = self.clock().now_ms();
        for c in self.store().challenges_live_by_token(t.row.id, now).await? {
            if !cfg.concurrent_challenges && c.otp_counter != t.row.count {
                continue;
            }
            if hotp::otp_eq(otp, &t.otp(c.otp_counter)?) {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    async fn consume(&self, t: &Live, c: &ChallengeRow, cfg: &SystemConfig) -> Result<bool> {
        let now = self.clock().now_ms();
        let required_count = if cfg.concurrent_challenges {
            None
        } else {
            Some(c.otp_counter)
        };
        if !self
            .store()
            .challenge_consume(c.id, now, t.row.id, required_count, max_wrong(cfg))
            .await?
        {
            return Ok(false);
        }
        self.store()
            .token_auth_success(t.row.id, c.otp_counter + 1)
            .await?;
        self.record_auth(&t.row, true).await?;
        Ok(true)
    }

    async fn after_success(&self, t: &Live, ctx: &Ctx<'_>, audit: &mut AuditEntry) -> Result<()> {
        audit.success = true;
        if ctx.cfg.fraud_min_success_percent > 0
            && let Ok((realm, raw)) = self.raw_phone(t, ctx).await
            && let Ok(phone) = send_number(ctx.cfg, &realm, &raw)
        {
            self.count_verified(ctx.cfg, &phone).await?;
        }
        if ctx.flag("smsautosend")? {
            // The next OTP goes out now, with its own challenge (so it also expires).
            let fresh = self
                .store()
                .token_by_serial(&t.row.serial)
                .await?
                .map(|r| self.live(r))
                .transpose()?;
            if let Some(fresh) = fresh {
                let tid = self.rng().digits(20)?;
                let sent = match self.phone_of(&fresh, ctx).await {
                    Ok(phone) => {
                        let keys = self.send_keys(&fresh, ctx, &phone);
                        self.challenge_one(&fresh, &tid, ctx, None, phone, &keys)
                            .await
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = sent {
                    tracing::warn!(serial = %t.row.serial, error = %e, "smsautosend failed");
                    audit.action_detail = format!("smsautosend failed: {e}");
                }
            }
        }
        Ok(())
    }

    async fn answer_any_live_challenge(
        &self,
        usable: &[Live],
        otp: &str,
        ctx: &Ctx<'_>,
        audit: &mut AuditEntry,
    ) -> Result<AuthResponse> {
        let all: Vec<&Live> = usable.iter().collect();
        for t in usable {
            if let Some(c) = self.matching_live_challenge(t, otp, ctx.cfg).await?
                && self.consume(t, &c, ctx.cfg).await?
            {
                self.release(&others(&all, &[t])).await?;
                self.store().challenge_delete_tid(&c.transaction_id).await?;
                self.after_success(t, ctx, audit).await?;
                let mut d = Map::new();
                d.insert("message".into(), json!("matching 1 tokens"));
                d.insert("serial".into(), json!(t.row.serial));
                d.insert("type".into(), json!("sms"));
                d.insert("otplen".into(), json!(t.row.otplen));
                return Ok(AuthResponse::accept(d));
            }
        }
        self.keep(&all, true, ctx.cfg).await?;
        Ok(AuthResponse::reject("wrong otp value"))
    }

    async fn answer_challenge(
        &self,
        tid: &str,
        usable: &[Live],
        rows: &[ChallengeRow],
        otp: &str,
        ctx: &Ctx<'_>,
        audit: &mut AuditEntry,
    ) -> Result<AuthResponse> {
        let now = self.clock().now_ms();
        let mut involved: Vec<&Live> = Vec::new();
        for c in rows {
            let Some(t) = usable.iter().find(|t| t.row.id == c.token_id) else {
                continue;
            };
            if !involved.iter().any(|x| x.row.id == t.row.id) {
                involved.push(t);
            }
            let live = c.created_at <= now && now < c.expires_at;
            let current = ctx.cfg.concurrent_challenges || c.otp_counter == t.row.count;
            if live
                && current
                && hotp::otp_eq(otp, &t.otp(c.otp_counter)?)
                && self.consume(t, c, ctx.cfg).await?
            {
                self.release(&others(&usable.iter().collect::<Vec<_>>(), &[t]))
                    .await?;
                // The answered challenge is gone (consumed); the transaction's others go too.
                if rows.len() > 1 {
                    self.store().challenge_delete_tid(tid).await?;
                }
                self.after_success(t, ctx, audit).await?;
                audit.serial = t.row.serial.clone();
                audit.info = "Found matching challenge".into();
                let mut d = Map::new();
                d.insert("message".into(), json!("Found matching challenge"));
                d.insert("serial".into(), json!(t.row.serial));
                return Ok(AuthResponse::accept(d));
            }
        }
        self.keep(&involved, true, ctx.cfg).await?;
        self.release(&others(&usable.iter().collect::<Vec<_>>(), &involved))
            .await?;
        for t in &involved {
            self.store().challenge_purge_expired(t.row.id, now).await?;
        }
        let mut died = 0;
        for c in rows {
            died += usize::from(
                self.store()
                    .challenge_inc_received(c.id, max_wrong(ctx.cfg))
                    .await?,
            );
        }
        if died > 0 {
            audit.action_detail = format!(
                "challenge discarded after {} wrong answers",
                ctx.cfg.challenge_max_attempts
            );
        }
        if let [t] = involved.as_slice() {
            let mut r = AuthResponse::reject("Response did not match the challenge.");
            r.detail.insert("serial".into(), json!(t.row.serial));
            r.detail.insert("type".into(), json!("sms"));
            Ok(r)
        } else {
            Ok(AuthResponse::reject(format!(
                "Response did not match for {} tokens.",
                involved.len()
            )))
        }
    }

    /// Sends one token's SMS and stores its challenge; returns the gateway that delivered and
    /// the number the SMS went to.
    async fn challenge_one(
        &self,
        t: &Live,
        tid: &str,
        ctx: &Ctx<'_>,
        challenge: Option<&str>,
        phone: String,
        keys: &SendKeys,
    ) -> std::result::Result<(String, String), SmsFailure> {
        let svc = |e: ServiceError| SmsFailure::Service(e);
        let gateway = t
            .row
            .info
            .get("sms.identifier")
            .cloned()
            .or_else(|| ctx.cfg.sms_identifier.clone())
            .ok_or_else(|| {
                SmsFailure::Send(otpgate_gateways::SendError::Config(
                    "No SMS gateway is configured (sms.identifier).".into(),
                ))
            })?;
        let template = ctx
            .text("smstext")
            .map_err(svc)?
            .unwrap_or_else(|| "<otp>".to_owned());
        // Counted, the counter advanced and the challenge stored in one transaction before
        // the SMS goes out: an answer that arrives while the gateway is still confirming finds
        // the challenge, and a request cut off mid-send leaves no SMS without its challenge.
        // A failed send removes the challenge and gives the count back.
        let now = self.clock().now_ms();
        let expires = now + ctx.cfg.challenge_validity_secs * 1000;
        let opened = self
            .store()
            .challenge_open(
                &keys.windows(),
                t.row.id,
                tid,
                &t.row.serial,
                challenge.unwrap_or_default(),
                now,
                expires,
            )
            .await
            .map_err(|e| svc(e.into()))?;
        let (counter, challenge_id) = match opened {
            Opened::Open { counter, id } => (counter, id),
            Opened::Unfit => return Err(SmsFailure::Unfit("Failcounter exceeded")),
            Opened::Refused(i) => {
                return Err(SmsFailure::Limited(self.refusal(keys, i).map_err(svc)?));
            }
        };
        let sent = async {
            let otp = t.otp(counter).map_err(svc)?;
            let mut tags = self.tags(t, ctx, &phone);
            tags.insert("otp", otp.to_string());
            tags.insert("challenge", challenge.unwrap_or_default().to_owned());
            debug_assert_eq!(tags.len(), SMS_TAG_SAMPLES.len());
            let text = template::render_sms_text(&template, &tags).map_err(|e| {
                SmsFailure::Send(otpgate_gateways::SendError::Config(format!(
                    "The SMS text cannot be rendered: {e}"
                )))
            })?;
            self.send_sms(ctx.cfg, &gateway, &phone, &text, Some(&otp))
                .await
        }
        .await;
        match sent {
            Ok(delivery) => Ok((delivery.gateway, phone)),
            Err(e) => {
                self.store()
                    .challenge_delete(challenge_id)
                    .await
                    .map_err(|e| svc(e.into()))?;
                self.give_back_send(keys).await.map_err(svc)?;
                Err(e)
            }
        }
    }

    /// The number a token's SMS goes to as stored: its own `phone`, else its owner's first
    /// mobile; with the realm whose number rules apply.
    async fn raw_phone(
        &self,
        t: &Live,
        ctx: &Ctx<'_>,
    ) -> std::result::Result<(String, String), SmsFailure> {
        let realm = t
            .row
            .owner
            .as_ref()
            .map(|o| o.realm.clone())
            .or_else(|| ctx.user.map(|u| u.realm.clone()))
            .unwrap_or_default();
        if let Some(p) = t.row.info.get("phone").filter(|p| !p.is_empty()) {
            return Ok((realm, p.clone()));
        }
        let owner = match &t.row.owner {
            Some(o) => self
                .user_by_id(&o.resolver, &o.user_id, &o.realm)
                .await
                .map_err(SmsFailure::Service)?,
            None => None,
        };
        let raw = owner
            .and_then(|u| u.mobile.first().cloned())
            .ok_or_else(|| {
                SmsFailure::Send(otpgate_gateways::SendError::Config(
                    "The token has no phone number.".into(),
                ))
            })?;
        Ok((realm, raw))
    }

    /// The number a token's SMS goes to, in E.164 when it parses, and refused by the
    /// toll-fraud guard (number type, country, blocked prefix).
    async fn phone_of(&self, t: &Live, ctx: &Ctx<'_>) -> std::result::Result<String, SmsFailure> {
        let (realm, raw) = self.raw_phone(t, ctx).await?;
        let phone = send_number(ctx.cfg, &realm, &raw).map_err(|r| {
            self.limit_stats().hit(r.rule);
            SmsFailure::Blocked(r)
        })?;
        match self
            .check_prefix(ctx.cfg, &phone)
            .await
            .map_err(SmsFailure::Service)?
        {
            Some(r) => Err(SmsFailure::Blocked(r)),
            None => Ok(phone),
        }
    }

    /// The send-limit counters of one SMS of `t` to `phone`.
    fn send_keys(&self, t: &Live, ctx: &Ctx<'_>, phone: &str) -> SendKeys {
        let user = match ctx.user {
            Some(u) => format!("{}/{}/{}", u.realm, u.resolver, u.uid),
            None => format!("token/{}", t.row.serial),
        };
        SendKeys::new(ctx.cfg, &user, phone, ctx.end_user, self.clock().now_ms())
    }

    fn tags(&self, t: &Live, ctx: &Ctx<'_>, phone: &str) -> Tags {
        let now = self.clock().now().with_timezone(&chrono::Local);
        let u = ctx.user;
        let field = |f: fn(&User) -> String| u.map(f).unwrap_or_default();
        // Every tag exists (empty unless set below), so the set is exactly SMS_TAG_SAMPLES'.
        let mut tags: Tags = SMS_TAG_SAMPLES
            .iter()
            .map(|(k, _)| (*k, String::new()))
            .collect();
        let mut set = |k: &'static str, v: String| {
            debug_assert!(tags.contains_key(k), "{k} is missing from SMS_TAG_SAMPLES");
            tags.insert(k, v);
        };
        set("serial", t.row.serial.clone());
        set("tokentype", "sms".into());
        set("user", field(|u| u.givenname.clone()));
        set("givenname", field(|u| u.givenname.clone()));
        set("surname", field(|u| u.surname.clone()));
        set("username", field(|u| u.login.clone()));
        set("userrealm", field(|u| u.realm.clone()));
        set("recipient_givenname", field(|u| u.givenname.clone()));
        set("recipient_surname", field(|u| u.surname.clone()));
        set("time", now.format("%H:%M:%S").to_string());
        set("date", now.format("%Y-%m-%d").to_string());
        set("phone", phone.to_owned());
        set("phone_redacted", otpgate_core::phone::redact(phone));
        set("tokendescription", t.row.description.clone());
        if let Some(ip) = ctx.client {
            set("client_ip", ip.to_string());
        }
        tags
    }

    async fn create_challenges(
        &self,
        tokens: &[&Live],
        ctx: &Ctx<'_>,
        challenge: Option<&str>,
        exception: bool,
        audit: &mut AuditEntry,
    ) -> Result<AuthResponse> {
        let tid = self.rng().digits(20)?;
        let increase = ctx.flag("increase_failcounter_on_challenge")?;
        let prompt_template = ctx
            .text("sms_challenge_text")?
            .unwrap_or_else(|| DEFAULT_PROMPT.to_owned());
        let mut multi = Vec::new();
        let mut messages = Vec::new();
        let mut tids = Vec::new();
        let mut errors = Vec::new();
        let mut delivered = Vec::new();
        let mut last: Option<(Value, String)> = None;
        let mut retry_after: Option<i64> = None;
        let mut limited = Vec::new();
        for t in tokens {
            let sent = match self.phone_of(t, ctx).await {
                Ok(phone) => {
                    let keys = self.send_keys(t, ctx, &phone);
                    if increase {
                        self.count_failure(&t.row, ctx.cfg).await?;
                    }
                    self.challenge_one(t, &tid, ctx, challenge, phone, &keys)
                        .await
                }
                Err(e) => Err(e),
            };
            match sent {
                Ok((gateway, phone)) => {
                    let expires = self.clock().now_ms() + ctx.cfg.challenge_validity_secs * 1000;
                    let (entry, message, attributes) = self.challenge_entry(
                        t,
                        ctx,
                        &prompt_template,
                        &tid,
                        &phone,
                        expires,
                        multi.is_empty(),
                    );
                    multi.push(entry);
                    messages.push(message);
                    tids.push(tid.clone());
                    delivered.push(format!("{} via {gateway}", t.row.serial));
                    last = Some((attributes, t.row.serial.clone()));
                }
                Err(SmsFailure::Service(ServiceError::Unavailable)) => {
                    return Err(ServiceError::Unavailable);
                }
                Err(SmsFailure::Unfit(why)) => messages.push(why.to_owned()),
                Err(SmsFailure::Blocked(refusal)) => {
                    limited.push(format!("{}: {}", t.row.serial, refusal.reason));
                    messages.push(NUMBER_REFUSED.to_owned());
                }
                Err(SmsFailure::Limited(refusal)) => {
                    retry_after = Some(
                        retry_after.map_or(refusal.retry_after, |r| r.max(refusal.retry_after)),
                    );
                    limited.push(format!("{}: {} limit", t.row.serial, refusal.limit));
                    messages.push(LIMITED.to_owned());
                }
                Err(e) => {
                    tracing::warn!(serial = %t.row.serial, reason = %e, "SMS could not be sent");
                    if exception {
                        return Err(ServiceError::SendFailed);
                    }
                    messages.push(SEND_FAILED.to_owned());
                    errors.push(format!("{}: {e}", t.row.serial));
                }
            }
        }
        if !limited.is_empty() {
            delivered.push(format!("refused by send limits: {}", limited.join(", ")));
        }
        audit.action_detail = delivered.join(", ");
        let mut d = Map::new();
        d.insert("message".into(), json!(unique_join(&messages)));
        d.insert("messages".into(), json!(messages));
        d.insert("multi_challenge".into(), json!(multi));
        d.insert("transaction_ids".into(), json!(tids));
        if !errors.is_empty() {
            d.insert("sms_error".into(), json!(errors.join("; ")));
        }
        if let Some(r) = retry_after {
            d.insert("retry_after".into(), json!(r));
        }
        audit.info = unique_join(&messages);
        let Some((attributes, serial)) = last else {
            return Ok(AuthResponse {
                value: json!(false),
                authentication: Authentication::Reject,
                detail: d,
            });
        };
        challenge_answer(d, attributes, &serial, &tid, ctx, audit)
    }

    /// A PIN request within `sms.resend_cooldown_secs` of the last SMS: when every token
    /// whose PIN matched has its newest challenge from within the cooldown, live, current and
    /// in one transaction, that challenge is answered again (same transaction id, no SMS),
    /// with `detail.retry_after`.
    async fn recent_challenge(
        &self,
        tokens: &[&Live],
        ctx: &Ctx<'_>,
        audit: &mut AuditEntry,
    ) -> Result<Option<AuthResponse>> {
        let cooldown_ms = ctx.cfg.resend_cooldown_secs * 1000;
        if cooldown_ms == 0 || tokens.is_empty() {
            return Ok(None);
        }
        let now = self.clock().now_ms();
        let mut found = Vec::with_capacity(tokens.len());
        for t in tokens {
            let newest = self
                .store()
                .challenges_live_by_token(t.row.id, now)
                .await?
                .into_iter()
                .next();
            match newest {
                Some(c)
                    if now - c.created_at < cooldown_ms
                        && c.session.is_empty()
                        && (ctx.cfg.concurrent_challenges || c.otp_counter == t.row.count) =>
                {
                    found.push((*t, c));
                }
                _ => return Ok(None),
            }
        }
        let Some(tid) = found.first().map(|(_, c)| c.transaction_id.clone()) else {
            return Ok(None);
        };
        if found.iter().any(|(_, c)| c.transaction_id != tid) {
            return Ok(None);
        }
        let prompt_template = ctx
            .text("sms_challenge_text")?
            .unwrap_or_else(|| DEFAULT_PROMPT.to_owned());
        let (mut multi, mut messages, mut tids) = (Vec::new(), Vec::new(), Vec::new());
        let mut last = None;
        let mut retry_after = 0;
        for (t, c) in &found {
            // Only for the prompt's tags: no SMS goes out, so no toll-fraud check.
            let Ok((realm, raw)) = self.raw_phone(t, ctx).await else {
                return Ok(None);
            };
            let phone = send_number(ctx.cfg, &realm, &raw).unwrap_or(raw);
            let (entry, message, attributes) = self.challenge_entry(
                t,
                ctx,
                &prompt_template,
                &tid,
                &phone,
                c.expires_at,
                multi.is_empty(),
            );
            multi.push(entry);
            messages.push(message);
            tids.push(tid.clone());
            retry_after = retry_after.max((c.created_at + cooldown_ms - now + 999) / 1000);
            last = Some((attributes, t.row.serial.clone()));
        }
        let Some((attributes, serial)) = last else {
            return Ok(None);
        };
        self.limit_stats().hit("resend_cooldown");
        audit.action_detail =
            format!("live challenge re-used (resend cooldown, {retry_after} s left): no SMS sent");
        audit.info = unique_join(&messages);
        let mut d = Map::new();
        d.insert("message".into(), json!(unique_join(&messages)));
        d.insert("messages".into(), json!(messages));
        d.insert("multi_challenge".into(), json!(multi));
        d.insert("transaction_ids".into(), json!(tids));
        d.insert("retry_after".into(), json!(retry_after));
        challenge_answer(d, attributes, &serial, &tid, ctx, audit).map(Some)
    }

    /// One token's entry of `multi_challenge`, its prompt and its `attributes`.
    #[allow(clippy::too_many_arguments)]
    fn challenge_entry(
        &self,
        t: &Live,
        ctx: &Ctx<'_>,
        prompt_template: &str,
        tid: &str,
        phone: &str,
        expires_ms: i64,
        first: bool,
    ) -> (Value, String, Value) {
        let message = template::render_prompt(prompt_template, &self.tags(t, ctx, phone));
        let attributes = json!({"state": if first { Value::Null } else { json!(tid) }, "valid_until": local_time(expires_ms)});
        let entry = json!({
            "attributes": attributes, "client_mode": "interactive", "message": message,
            "serial": t.row.serial, "transaction_id": tid, "type": "sms",
        });
        (entry, message, attributes)
    }

    /// Sends the first OTP of a self-service enrollment to the token in `verify` (challenge
    /// session `enrollment`, as privacyIDEA); returns the number it went to.
    pub(crate) async fn send_enrollment_otp(
        &self,
        user: Option<&User>,
        row: TokenRow,
        client: Option<IpAddr>,
        audit: &mut AuditEntry,
    ) -> Result<String> {
        let settings = self.settings().await?;
        let used = Mutex::new(Vec::new());
        let ctx = Ctx {
            user,
            policies: &settings.policies,
            cfg: &settings.config,
            client,
            end_user: client,
            used: &used,
        };
        let t = self.live(row)?;
        let tid = self.rng().digits(20)?;
        let sent = match self.phone_of(&t, &ctx).await {
            Ok(phone) => {
                let keys = self.send_keys(&t, &ctx, &phone);
                self.challenge_one(&t, &tid, &ctx, None, phone, &keys).await
            }
            Err(e) => Err(e),
        };
        note_policies(audit, &used);
        match sent {
            Ok((gateway, phone)) => {
                audit.action_detail = format!("{} via {gateway}", t.row.serial);
                Ok(phone)
            }
            Err(SmsFailure::Service(e)) => Err(e),
            Err(SmsFailure::Blocked(_)) => Err(ServiceError::Parameter(NUMBER_REFUSED.into())),
            Err(SmsFailure::Limited(_)) => Err(ServiceError::Parameter(LIMITED.into())),
            Err(SmsFailure::Unfit(why)) => Err(ServiceError::Parameter(why.into())),
            Err(e) => {
                tracing::warn!(serial = %t.row.serial, reason = %e, "enrollment SMS could not be sent");
                audit.info = format!("{SEND_FAILED}: {e}");
                Err(ServiceError::Parameter(SEND_FAILED.into()))
            }
        }
    }

    /// Answers the live challenge of a token in `verify` with `otp`: true when it matched and
    /// was consumed (exactly once); a wrong answer counts against the challenge's attempts.
    pub(crate) async fn answer_enrollment_challenge(
        &self,
        row: TokenRow,
        otp: &str,
    ) -> Result<bool> {
        let cfg = self.settings().await?.config.clone();
        let t = self.live(row)?;
        if let Some(c) = self.matching_live_challenge(&t, otp, &cfg).await? {
            return self.consume(&t, &c, &cfg).await;
        }
        let now = self.clock().now_ms();
        for c in self.store().challenges_live_by_token(t.row.id, now).await? {
            self.store()
                .challenge_inc_received(c.id, max_wrong(&cfg))
                .await?;
        }
        Ok(false)
    }

    /// `/validate/triggerchallenge` (admin): a challenge for every fit token, without a PIN.
    pub async fn trigger_challenge(
        &self,
        params: &crate::Params,
        audit: &mut AuditEntry,
    ) -> Result<AuthResponse> {
        let used = Mutex::new(Vec::new());
        let r = self.trigger_with(params, audit, &used).await;
        note_policies(audit, &used);
        r
    }

    async fn trigger_with(
        &self,
        params: &crate::Params,
        audit: &mut AuditEntry,
        used: &Mutex<Vec<String>>,
    ) -> Result<AuthResponse> {
        let user_param = params.get_nonblank("user");
        let serial_param = params.get_nonblank("serial");
        if user_param.is_none() && serial_param.is_none() {
            return Err(ServiceError::Parameter(
                "You need to specify a serial, user or credential_id.".into(),
            ));
        }
        let settings = self.settings().await?;
        let (cfg, policies) = (&settings.config, &settings.policies);
        let (user, mut tokens) = match user_param {
            Some(login) => {
                let (login, realm, user) = self
                    .lookup_user(&settings, login, params.get_nonblank("realm"))
                    .await?;
                let user = user.ok_or_else(|| {
                    ServiceError::User(format!("User <{login}@{realm}> does not exist."))
                })?;
                audit.user = user.login.clone();
                audit.realm = user.realm.clone();
                let tokens = self.store().tokens_of_user(&owner_of(&user)).await?;
                (Some(user), tokens)
            }
            None => {
                let t = self
                    .store()
                    .token_by_serial(serial_param.unwrap_or_default())
                    .await?;
                let user = match t.as_ref().and_then(|t| t.owner.clone()) {
                    Some(o) => self.user_by_id(&o.resolver, &o.user_id, &o.realm).await?,
                    None => None,
                };
                (user, t.into_iter().collect())
            }
        };
        if let Some(s) = serial_param {
            tokens.retain(|t| t.serial == s);
        }
        let mut tokens: Vec<TokenRow> = tokens
            .into_iter()
            .filter(|t| t.tokentype == "sms" && !t.revoked && t.active)
            .collect();
        audit.serial = tokens
            .iter()
            .map(|t| t.serial.as_str())
            .collect::<Vec<_>>()
            .join(",");
        for t in &mut tokens {
            self.clear_expired_lockout(t, cfg).await?;
        }
        let (fit, locked): (Vec<TokenRow>, Vec<TokenRow>) =
            tokens.into_iter().partition(|t| unfit_reason(t).is_none());
        let ctx = Ctx {
            user: user.as_ref(),
            policies,
            cfg,
            client: None,
            end_user: None,
            used,
        };
        let live: Vec<Live> = fit
            .into_iter()
            .map(|t| self.live(t))
            .collect::<Result<_>>()?;
        if live.is_empty() {
            let msgs: Vec<String> = locked
                .iter()
                .filter_map(unfit_reason)
                .map(str::to_owned)
                .collect();
            let mut d = Map::new();
            if !msgs.is_empty() {
                d.insert("message".into(), json!(unique_join(&msgs)));
            }
            d.insert("messages".into(), json!(msgs));
            d.insert("multi_challenge".into(), json!([]));
            d.insert("transaction_ids".into(), json!([]));
            return Ok(AuthResponse {
                value: json!(0),
                authentication: Authentication::Reject,
                detail: d,
            });
        }
        let refs: Vec<&Live> = live.iter().collect();
        let mut r = self
            .create_challenges(
                &refs,
                &ctx,
                params.get("challenge"),
                params.flag("exception"),
                audit,
            )
            .await?;
        let n = r
            .detail
            .get("multi_challenge")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        r.value = json!(n);
        audit.success = n > 0;
        Ok(r)
    }

    /// `/validate/polltransaction`: SMS challenges are never "answered" out of band, so a
    /// transaction is always `pending` (as in privacyIDEA).
    pub async fn poll_transaction(&self, tid: Option<&str>) -> Result<AuthResponse> {
        tid.map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ServiceError::missing("transaction_id"))?;
        let mut d = Map::new();
        d.insert("challenge_status".into(), json!("pending"));
        Ok(AuthResponse {
            value: json!(false),
            authentication: Authentication::Reject,
            detail: d,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sms_text_warnings_count_segments_with_an_8_digit_otp() {
        assert!(sms_text_warnings("<otp>").is_empty());
        assert!(sms_text_warnings("Your code for {username}: {otp}").is_empty());
        // 152 characters, a space and 8 digits: 161, one more than an SMS holds.
        let w = sms_text_warnings(&format!("{} {{otp}}", "x".repeat(152)));
        assert!(
            w[0].contains("needs 2 SMS") && w[0].contains("161"),
            "{w:?}"
        );
        assert!(sms_text_warnings(&format!("{} {{otp}}", "x".repeat(151))).is_empty());
        let w = sms_text_warnings("Код {otp} {bogus}");
        assert!(w[0].contains("cannot be rendered"), "{w:?}");
    }

    #[test]
    fn unique_messages_keep_order() {
        let m = vec!["a".to_owned(), "b".to_owned(), "a".to_owned()];
        assert_eq!(unique_join(&m), "a, b");
    }
}
