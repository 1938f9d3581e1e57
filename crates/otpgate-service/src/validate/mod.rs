//! The two-step SMS login (`/validate/check`, `/validate/triggerchallenge`,
//! `/validate/polltransaction`), as typed requests and outcomes.
//!
//! * PIN only → a challenge per PIN-matching token: the HOTP counter moves on by one, the OTP
//!   for the new counter goes out by SMS, and a challenge row remembers the counter.
//! * transaction id + OTP → the OTP must match a live challenge of that transaction; the
//!   challenge is consumed by one conditional DELETE, so it is accepted exactly once.
//! * PIN + OTP → the PIN is checked and the OTP must match a live challenge of the token (an
//!   SMS OTP dies with its challenge, also in this path: a deliberate deviation).
//!
//! Wrong answers are outcomes ([`CheckOutcome::Reject`]), not errors. The files: the decision
//! (`check.rs`), attempt accounting and lockout (`attempts.rs`), challenges and their SMS
//! (`challenge.rs`), `triggerchallenge` and `polltransaction` (`trigger.rs`), and the OTP of an
//! enrollment that waits for verification (`enroll.rs`). privacyIDEA's JSON for these outcomes
//! is rendered by the HTTP edge.

mod attempts;
mod authz;
mod challenge;
mod check;
mod enroll;
mod multichallenge;
mod pinchange;
mod saml;
mod trigger;

pub use authz::{Checked, NOT_AUTHORIZED, Shown};
pub use multichallenge::ENROLL_PROMPT;
pub use pinchange::{NEW_PIN, NEW_PIN_AGAIN};
pub use saml::SamlChecked;

use crate::audit::AuditEntry;
use crate::call::{Authentication, Outcome};
use crate::facts::RequestFacts;
use crate::policy::{ActionValue, Policies, PolicyContext};
use crate::settings::SystemConfig;
use crate::users::User;
use crate::{Result, ServiceError};
use otpgate_core::hotp::{self, HashLib};
use otpgate_core::template;
use otpgate_store::TokenRow;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

/// The prompt of an SMS challenge.
pub const DEFAULT_PROMPT: &str = "Enter the OTP from the SMS:";
/// The answer while the verify back-off holds every token (with a `retry_after`).
pub const BACKED_OFF: &str = "Too many failed attempts. Please wait before trying again.";
/// The answer when the PIN was right but no SMS went out.
pub const SEND_FAILED: &str = "The PIN was correct, but the SMS could not be sent!";
/// The only answer to a refused login under `hide_specific_error_message`.
pub const HIDDEN: &str = "Authentication failed.";

/// A login attempt (`/validate/check`, a RADIUS Access-Request, the web sign-in).
#[derive(Debug, Clone, Default)]
pub struct CheckRequest {
    /// `user` (may be `user@realm`).
    pub user: Option<String>,
    /// `realm`.
    pub realm: Option<String>,
    /// `serial`.
    pub serial: Option<String>,
    /// `pass`: a PIN, PIN+OTP, or the OTP answering a challenge.
    pub pass: Option<String>,
    /// `transaction_id` (or its alias `state`).
    pub transaction_id: Option<String>,
    /// `exception=1`: a send failure becomes an error.
    pub exception: bool,
    /// `otponly=1` (with `serial`): the pass is the OTP alone.
    pub otponly: bool,
    /// `challenge`: free text for the `{challenge}` tag.
    pub challenge: Option<String>,
    /// `type`: the token type the caller wants (only with the authorization policy
    /// `application_tokentype`).
    pub tokentype: Option<String>,
}

/// `/validate/triggerchallenge`: a challenge for every fit token of a user or serial, without
/// a PIN (an admin call).
#[derive(Debug, Clone, Default)]
pub struct TriggerRequest {
    /// `user` (may be `user@realm`).
    pub user: Option<String>,
    /// `realm`.
    pub realm: Option<String>,
    /// `serial`.
    pub serial: Option<String>,
    /// `challenge`: free text for the `{challenge}` tag.
    pub challenge: Option<String>,
    /// `exception=1`: a send failure becomes an error.
    pub exception: bool,
    /// `type` (only with the authorization policy `application_tokentype`).
    pub tokentype: Option<String>,
}

/// The token an answer names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRef {
    /// Its serial.
    pub serial: String,
    /// Its OTP length, when the answer reports the token's type and length too (privacyIDEA
    /// does for a PIN+OTP pass, not for a challenge answer).
    pub otplen: Option<i64>,
}

/// One SMS challenge that is out (or re-used within the resend cooldown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentChallenge {
    /// The token's serial.
    pub serial: String,
    /// The prompt for the user (the `sms_challenge_text`).
    pub prompt: String,
    /// When the challenge expires (ms).
    pub valid_until_ms: i64,
    /// The gateway that took the SMS; None when a live challenge was re-used (no SMS).
    pub gateway: Option<String>,
    /// Where the code went, as the user may be shown it: the number with all but its last
    /// digits hidden, or the e-mail address likewise (empty when not known).
    pub to: String,
}

/// The challenges a PIN (or a trigger) asked for: those sent, and what happened per token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Challenges {
    /// The transaction they share.
    pub transaction_id: String,
    /// The challenges that are out, in token order.
    pub sent: Vec<SentChallenge>,
    /// One message per token tried: its prompt, or why no SMS went out.
    pub messages: Vec<String>,
    /// Gateway failures per token (`serial: reason`), safe to show.
    pub errors: Vec<String>,
    /// Seconds until a new SMS may be requested (a send limit or the resend cooldown).
    pub retry_after: Option<i64>,
    /// privacyIDEA's `preferred_client_mode` (a policy may change it).
    pub preferred_client_mode: String,
    /// The message as `challenge_text_header`/`_footer` policies shape it (None: the
    /// tokens' messages joined).
    pub headline: Option<String>,
    /// A step of an enrollment during the login (`enroll_via_multichallenge`).
    pub enrollment: bool,
}

impl Challenges {
    /// The tokens' messages as one text (each once, in order), or as the header and footer
    /// policies shape it.
    pub fn message(&self) -> String {
        self.headline
            .clone()
            .unwrap_or_else(|| unique_join(&self.messages))
    }

    /// privacyIDEA's `mangle_challenge_response`: `header`, then the messages (sorted, each
    /// once) as `<li>` items when the header ends in `<ol>` or `<ul>`, else on one line, then
    /// `footer`.
    pub(crate) fn frame(&mut self, header: &str, footer: &str) {
        let mut messages: Vec<&String> = self.messages.iter().collect();
        messages.sort();
        messages.dedup();
        let mut m = header.to_owned();
        let tail = header
            .get(header.len().saturating_sub(4)..)
            .unwrap_or_default()
            .to_ascii_lowercase();
        if tail == "<ol>" || tail == "<ul>" {
            for x in messages {
                m.push_str(&format!("<li>{x}</li>\n"));
            }
        } else {
            m.push('\n');
            m.push_str(
                &messages
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            m.push('\n');
        }
        m.push_str(footer);
        self.headline = Some(m);
    }
}

/// Why a login attempt was refused, with what privacyIDEA tells about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejected {
    /// privacyIDEA's `detail.message` (empty: none).
    pub message: String,
    /// The token the answer is about.
    pub token: Option<TokenRef>,
    /// Seconds to wait before trying again (the verify back-off).
    pub retry_after: Option<i64>,
    /// The challenges tried when none could be sent.
    pub attempt: Option<Challenges>,
}

impl Rejected {
    fn because(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Default::default()
        }
    }
}

/// What a login attempt (or a trigger) came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// Authenticated: `message`, and the token that answered (None when a policy let the
    /// user through without one).
    Accept {
        /// privacyIDEA's `detail.message`.
        message: String,
        /// The token.
        token: Option<TokenRef>,
    },
    /// SMS were sent: answer one of them.
    Challenge(Challenges),
    /// Not authenticated.
    Reject(Rejected),
}

impl CheckOutcome {
    /// privacyIDEA's `result.authentication`.
    pub fn authentication(&self) -> Authentication {
        match self {
            CheckOutcome::Accept { .. } => Authentication::Accept,
            CheckOutcome::Challenge(_) => Authentication::Challenge,
            CheckOutcome::Reject(_) => Authentication::Reject,
        }
    }

    /// privacyIDEA's `detail.message` (empty when the answer has none).
    pub fn message(&self) -> String {
        match self {
            CheckOutcome::Accept { message, .. } => message.clone(),
            CheckOutcome::Challenge(c) => c.message(),
            CheckOutcome::Reject(r) => r.message.clone(),
        }
    }

    /// The challenges this answer is about (sent, or tried and refused).
    pub fn challenges(&self) -> Option<&Challenges> {
        match self {
            CheckOutcome::Challenge(c) => Some(c),
            CheckOutcome::Reject(r) => r.attempt.as_ref(),
            CheckOutcome::Accept { .. } => None,
        }
    }

    /// The transaction to answer, for a challenge.
    pub fn transaction_id(&self) -> Option<&str> {
        match self {
            CheckOutcome::Challenge(c) => Some(&c.transaction_id),
            _ => None,
        }
    }

    /// Accepted by a token (not by a policy that lets users without one through).
    pub fn accepted_by_token(&self) -> bool {
        matches!(self, CheckOutcome::Accept { token: Some(_), .. })
    }
}

impl Outcome for CheckOutcome {
    fn success(&self) -> bool {
        matches!(self, CheckOutcome::Accept { .. })
    }

    fn authentication(&self) -> Option<Authentication> {
        Some(CheckOutcome::authentication(self))
    }

    fn message(&self) -> Option<String> {
        Some(CheckOutcome::message(self)).filter(|m| !m.is_empty())
    }

    fn value_is_true(&self) -> bool {
        matches!(self, CheckOutcome::Accept { .. })
    }
}

/// What `/validate/triggerchallenge` came to: its `result.value` is the number of challenges
/// sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Triggered(pub CheckOutcome);

impl Triggered {
    /// How many challenges went out.
    pub fn count(&self) -> usize {
        self.0.challenges().map_or(0, |c| c.sent.len())
    }
}

impl Outcome for Triggered {
    fn success(&self) -> bool {
        self.count() > 0
    }

    fn authentication(&self) -> Option<Authentication> {
        Some(self.0.authentication())
    }

    fn message(&self) -> Option<String> {
        Outcome::message(&self.0)
    }

    fn value_is_true(&self) -> bool {
        self.count() > 0
    }
}

/// One token with its decoded key, ready for checks.
struct Live {
    row: TokenRow,
    key: zeroize::Zeroizing<Vec<u8>>,
    hash: HashLib,
    /// The fail counter and its maximum after this attempt was reserved.
    fails: (i64, i64),
    /// The reserved attempt was kept or given back.
    settled: AtomicBool,
}

impl Live {
    /// Whether `pass` is the OTP this token used last (counter `count - 1`): a replay, not a
    /// guess.
    fn used_otp(&self, pass: &str) -> bool {
        self.row.count >= 1
            && self
                .otp(self.row.count - 1)
                .is_ok_and(|o| hotp::otp_eq(pass, &o))
    }

    fn otp(&self, counter: i64) -> Result<String> {
        let c = u64::try_from(counter)
            .map_err(|_| ServiceError::Internal("negative counter".into()))?;
        let digits = u32::try_from(self.row.otplen)
            .map_err(|_| ServiceError::Internal("bad otplen".into()))?;
        Ok(hotp::hotp(&self.key, c, digits, self.hash)?)
    }

    fn token_ref(&self, with_length: bool) -> TokenRef {
        TokenRef {
            serial: self.row.serial.clone(),
            otplen: with_length.then_some(self.row.otplen),
        }
    }
}

/// The wrong answers after which a challenge dies (None: unlimited).
fn max_wrong(cfg: &SystemConfig) -> Option<i64> {
    (cfg.challenge_max_attempts > 0).then_some(cfg.challenge_max_attempts)
}

/// Why a token cannot take part in an authentication (revoked ones are left out before).
fn unfit_reason(t: &TokenRow) -> Option<&'static str> {
    t.state().unfit().map(otpgate_core::token::Unfit::message)
}

/// Whether `t` may take part in a login: it is fit, or its fail counter is full without a
/// lockout noted (`failcounter_exceeded`) — full of parallel attempts in flight, which the
/// reservation waits for ([`attempts::Crowd`]) instead of answering "Failcounter exceeded".
fn may_take_part(t: &TokenRow) -> bool {
    match t.state().unfit() {
        None => true,
        Some(otpgate_core::token::Unfit::Locked) => {
            let mut unlocked = t.state();
            unlocked.failcount = 0;
            !t.info.contains_key("failcounter_exceeded") && unlocked.unfit().is_none()
        }
        Some(_) => false,
    }
}

/// Why each of `tokens` cannot take part (those that can are left out).
fn unfit_messages(tokens: &[TokenRow]) -> Vec<String> {
    tokens
        .iter()
        .filter_map(unfit_reason)
        .map(str::to_owned)
        .collect()
}

/// The user and the serial a request names (trimmed; blank is none): it must name one.
fn named<'r>(
    user: &'r Option<String>,
    serial: &'r Option<String>,
) -> Result<(Option<&'r str>, Option<&'r str>)> {
    let nonblank = |v: &'r Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty());
    let (user, serial) = (nonblank(user), nonblank(serial));
    if user.is_none() && serial.is_none() {
        return Err(ServiceError::Parameter(
            "You need to specify a serial, user or credential_id.".into(),
        ));
    }
    Ok((user, serial))
}

/// The tokens of `all` that are not in `these`.
fn others<'a>(all: &[&'a Live], these: &[&Live]) -> Vec<&'a Live> {
    all.iter()
        .copied()
        .filter(|t| !these.iter().any(|x| x.row.id == t.row.id))
        .collect()
}

/// Messages joined with `, `, each once, in order.
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

/// Everything one request evaluates policies and texts against.
struct Ctx<'a> {
    user: Option<&'a User>,
    policies: &'a Policies,
    cfg: &'a SystemConfig,
    client: Option<IpAddr>,
    end_user: Option<IpAddr>,
    /// Names of the policies that decided something, for the audit log.
    used: &'a Mutex<Vec<String>>,
    /// What policy conditions look at.
    facts: RequestFacts<'a>,
    /// The resolvers of the user's realm (for `check_all_resolvers`).
    realm_resolvers: Vec<String>,
    /// Serials of tokens whose last successful login is older than the authorization
    /// policy `last_auth` allows: a right answer does not renew it.
    stale: Vec<String>,
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

    /// Every value of an authentication-scope action over the matching policies (whatever
    /// their priority), unescaped.
    fn values(&self, action: &str) -> Result<Vec<String>> {
        let named = self
            .policies
            .named_values("authentication", action, &self.pctx())?;
        let names: Vec<String> = named.iter().map(|(_, n)| n.clone()).collect();
        self.note(&names);
        Ok(named
            .into_iter()
            .map(|(v, _)| template::unescape_policy_text(&v))
            .collect())
    }

    /// Whether a boolean authentication-scope action is set.
    fn flag(&self, action: &str) -> Result<bool> {
        Ok(match self.action(action)? {
            Some((ActionValue::Flag, _)) => true,
            Some((ActionValue::Value(v), _)) => otpgate_core::params::is_true(&v),
            None => false,
        })
    }

    fn pctx(&self) -> PolicyContext<'_> {
        PolicyContext {
            realm: self.user.map(|u| u.realm.as_str()),
            resolver: self.user.map(|u| u.resolver.as_str()),
            user: self.user.map(|u| u.login.as_str()),
            client: self.client,
            realm_resolvers: &self.realm_resolvers,
            facts: Some(&self.facts),
            user_agent: Some(self.facts.request.map_or("", |r| r.user_agent())),
            action_only: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_messages_keep_order() {
        let m = vec!["a".to_owned(), "b".to_owned(), "a".to_owned()];
        assert_eq!(unique_join(&m), "a, b");
    }

    #[test]
    fn outcomes_report_to_the_audit_and_the_events() {
        let accept = CheckOutcome::Accept {
            message: "matching 1 tokens".into(),
            token: Some(TokenRef {
                serial: "S1".into(),
                otplen: Some(6),
            }),
        };
        assert!(Outcome::success(&accept) && accept.value_is_true());
        assert!(accept.accepted_by_token());
        let reject = CheckOutcome::Reject(Rejected::because("wrong otp pin"));
        assert!(!Outcome::success(&reject) && !reject.value_is_true());
        assert_eq!(Outcome::message(&reject).as_deref(), Some("wrong otp pin"));
        let sent = Challenges {
            transaction_id: "1".into(),
            sent: vec![SentChallenge {
                serial: "S1".into(),
                prompt: DEFAULT_PROMPT.into(),
                valid_until_ms: 0,
                gateway: Some("gw".into()),
                to: String::new(),
            }],
            messages: vec![
                DEFAULT_PROMPT.into(),
                SEND_FAILED.into(),
                DEFAULT_PROMPT.into(),
            ],
            ..Default::default()
        };
        let triggered = Triggered(CheckOutcome::Challenge(sent.clone()));
        assert_eq!(triggered.count(), 1);
        assert!(triggered.success() && triggered.value_is_true());
        assert_eq!(sent.message(), format!("{DEFAULT_PROMPT}, {SEND_FAILED}"));
        let none = Triggered(CheckOutcome::Reject(Rejected::default()));
        assert!(!none.success() && none.count() == 0);
    }
}
