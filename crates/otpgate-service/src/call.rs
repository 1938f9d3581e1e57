//! One call of a use case, owned by the service from its start to its audit row.
//!
//! A front end (the HTTP API, the web interface, RADIUS) describes what it was asked ([`Call`])
//! and hands the work to [`Services::run`], which, in this order: checks the caller's admin
//! right, fires the `pre` event handlers, runs the work, fills the audit entry from its
//! outcome, fires the `post` handlers and writes the entry. No front end fires an event or
//! writes an audit row itself, so none can forget to.
//!
//! The call runs in its own task: when the caller goes away (a timeout, a closed connection)
//! it still ends as a whole, and its audit row tells how. Stopping half-way would leave
//! counted attempts unjudged or a change half made. But an abandoned call sends no SMS:
//! nobody would enter its code, and a database that comes back after an outage must not
//! release a wave of SMS for requests long given up ([`abandoned`]).
//!
//! While the database is down ([`crate::dbhealth`]) every call is refused at once with 503
//! (and audited through the spool); a call the database failed opens that breaker.

use crate::audit::AuditEntry;
use crate::{Result, ServiceError, Services};
use otpgate_core::reach::{AdminReach, Target};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Instant;

/// What the task running a call knows about it beyond its scope: whether its caller has
/// gone, on whose behalf its Argon2 work runs (the fair share of [`crate::kdf`]), and how
/// much Argon2 work it has done (so a refusal can cost as much as a checked PIN).
#[derive(Debug, Default)]
pub(crate) struct Current {
    gone: AtomicBool,
    kdf_runs: AtomicU32,
    share: crate::kdf::Share,
}

tokio::task_local! {
    static CURRENT: Arc<Current>;
}

/// Whether the caller of the call running in this task has gone (its request timed out, its
/// connection closed, RADIUS gave up): then no SMS goes out for it. False outside calls.
pub fn abandoned() -> bool {
    CURRENT
        .try_with(|c| c.gone.load(Ordering::SeqCst))
        .unwrap_or(false)
}

/// The share the running call's Argon2 work waits in (nobody's outside calls), counting the
/// computation.
pub(crate) fn kdf_share() -> crate::kdf::Share {
    CURRENT
        .try_with(|c| {
            c.kdf_runs.fetch_add(1, Ordering::Relaxed);
            c.share.clone()
        })
        .unwrap_or_default()
}

/// How many Argon2 computations the running call has made.
pub(crate) fn kdf_runs() -> u32 {
    CURRENT
        .try_with(|c| c.kdf_runs.load(Ordering::Relaxed))
        .unwrap_or(0)
}

/// Marks the call abandoned when the caller's future is dropped before the call ended.
struct Abandon(Arc<Current>, bool);

impl Drop for Abandon {
    fn drop(&mut self) {
        if !self.1 {
            self.0.gone.store(true, Ordering::SeqCst);
        }
    }
}

/// A boxed future borrowing the services and the call's scope (what [`Services::run`]'s work
/// returns).
pub type Work<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Who makes a call.
#[derive(Debug, Clone, Default)]
pub enum Caller {
    /// Nobody signed in: validation, `/auth`, the sign-in pages, RADIUS.
    #[default]
    Anonymous,
    /// An API request with the JWT of its `PI-Authorization` or `Authorization` header (or
    /// none), checked when the call needs an admin right.
    Bearer(Option<String>),
    /// An admin the front end has already signed in (a web session).
    Admin(String),
}

/// What the request names, before the work resolves anything: the `pre` event's subject.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    /// The `user` as given.
    pub user: String,
    /// The `realm` as given.
    pub realm: String,
    /// The token serial as given (path or parameter).
    pub serial: String,
}

/// An HTTP request's headers and parameters, as policy conditions see them (`HTTP Request
/// header`, `Request Data`). Secrets are left out: the `pass` and `password` parameters and
/// the authorization headers.
#[derive(Debug, Default)]
pub struct RequestData {
    headers: Vec<(String, String)>,
    params: Vec<(String, String)>,
}

impl RequestData {
    /// The data of a request with these headers and parameters.
    pub fn new<'a>(
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        const SECRET_HEADERS: &[&str] = &["authorization", "pi-authorization", "cookie"];
        const SECRET_PARAMS: &[&str] = &["pass", "password", "otpkey", "pin", "otp"];
        Self {
            headers: headers
                .into_iter()
                .filter(|(k, _)| !SECRET_HEADERS.iter().any(|s| k.eq_ignore_ascii_case(s)))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            params: params
                .into_iter()
                .filter(|(k, _)| !SECRET_PARAMS.contains(k))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    /// A header's value (names in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The client application's name in the User-Agent header (privacyIDEA's user agent for
    /// policies; "" without one).
    pub fn user_agent(&self) -> &str {
        self.header("user-agent")
            .map(otpgate_core::policy::user_agent_name)
            .unwrap_or_default()
    }

    /// A parameter's value (the last one given wins).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request to a use case, as a front end describes it.
#[derive(Debug)]
pub struct Call {
    /// What the audit calls the action: method and route in privacyIDEA's notation
    /// (`POST /token/init`), or `RADIUS Access-Request`.
    pub action: String,
    /// The privacyIDEA event the call is (`token_init`); None for calls without events.
    pub event: Option<&'static str>,
    /// Who is calling.
    pub caller: Caller,
    /// The peer's address.
    pub client: Option<IpAddr>,
    /// The end user's address when a trusted proxy named it (`client` parameter or
    /// `X-Forwarded-For`): the key of the per-client send limit.
    pub end_user: Option<IpAddr>,
    /// The caller's User-Agent (event tags).
    pub user_agent: Option<String>,
    /// What the request names.
    pub subject: Subject,
    /// A fault the front end found before any work (a body it cannot read): the call is
    /// refused with it, and audited, before the caller's right is checked.
    pub refused: Option<ServiceError>,
    /// The HTTP request's headers and parameters, for policy conditions (None for RADIUS
    /// and the web console).
    pub request: Option<Arc<RequestData>>,
    /// The account the request is about when that is not `subject.user` (`/auth`'s
    /// `username`): its share of the Argon2 work.
    pub account: Option<String>,
    started_ms: i64,
    started: Instant,
}

/// What a running call sees and fills: who called, from where, and the audit entry.
#[derive(Debug)]
pub struct Scope {
    admin: Option<String>,
    /// The admin right the call was admitted with, and whom the admin may act on with it.
    right: Option<(&'static str, AdminReach)>,
    client: Option<IpAddr>,
    end_user: Option<IpAddr>,
    request: Option<Arc<RequestData>>,
    serial: String,
    /// The audit entry the work fills in (user, realm, resolver, serial, token type, info,
    /// action detail, policies); action, client, administrator, times, success and
    /// authentication are the call's.
    pub audit: AuditEntry,
}

impl Scope {
    /// The admin making the call (authenticated), if any.
    pub fn admin(&self) -> Option<&str> {
        self.admin.as_deref()
    }

    /// The end user's address: the one a trusted proxy named, else the peer's.
    pub fn client(&self) -> Option<IpAddr> {
        self.end_user.or(self.client)
    }

    /// The end user's address only when a trusted proxy named it.
    pub fn end_user(&self) -> Option<IpAddr> {
        self.end_user
    }

    /// The HTTP request's headers and parameters (None for RADIUS and the web console).
    pub fn request(&self) -> Option<Arc<RequestData>> {
        self.request.clone()
    }

    /// The token serial the request names (path or parameter; "" for none): the token
    /// policy conditions look at, as privacyIDEA's `g.serial`.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// Refuses (403, privacyIDEA's code and message) a target the calling admin's policies
    /// for this call's right do not reach. Calls without an admin right reach everyone.
    pub fn reach(&self, target: &Target<'_>) -> Result<()> {
        match &self.right {
            Some((right, reach)) if !reach.covers(target) => Err(not_allowed(right)),
            _ => Ok(()),
        }
    }

    /// Whom the calling admin may act on with this call's right (everyone for calls without
    /// one).
    pub fn admin_reach(&self) -> &AdminReach {
        match &self.right {
            Some((_, reach)) => reach,
            None => &AdminReach::Everyone,
        }
    }

    /// The call's admin right, for messages.
    pub fn right(&self) -> &'static str {
        self.right.as_ref().map_or("", |(r, _)| r)
    }

    /// Records who the call turned out to be made by (a successful admin sign-in).
    pub fn signed_in_admin(&mut self, name: &str) {
        self.admin = Some(name.to_owned());
        self.audit.administrator = name.to_owned();
    }
}

/// privacyIDEA's refusal of an admin action (403, code 303).
pub fn not_allowed(right: &str) -> ServiceError {
    ServiceError::Policy(format!(
        "Admin actions are defined, but the action {right} is not allowed!"
    ))
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

/// The outcome of a call, as the `post` handlers' conditions read it.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallResult {
    /// privacyIDEA's `result.status`.
    pub status: bool,
    /// Whether `result.value` is true.
    pub value: bool,
    /// `result.authentication` (validate calls and sign-ins).
    pub authentication: Option<Authentication>,
    /// `detail.message`.
    pub message: Option<String>,
}

/// One call as the event handlers see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventInput<'a> {
    /// The event name.
    pub event: &'static str,
    /// What the call was about, as its service recorded it for the audit: user, realm,
    /// resolver, serial(s), token type.
    pub subject: &'a AuditEntry,
    /// The admin who made the call.
    pub admin: Option<&'a str>,
    /// The end user's address.
    pub client_ip: Option<IpAddr>,
    /// The caller's User-Agent.
    pub user_agent: Option<&'a str>,
    /// Method and route, e.g. `POST /token/init`.
    pub action: &'a str,
    /// The outcome (None for pre handlers).
    pub result: Option<&'a CallResult>,
}

/// What a call's result tells its audit row and the `post` event handlers.
pub trait Outcome {
    /// The audit's success column (default: the call did what it was asked).
    fn success(&self) -> bool {
        true
    }

    /// privacyIDEA's `result.authentication`, for validate calls and sign-ins.
    fn authentication(&self) -> Option<Authentication> {
        None
    }

    /// privacyIDEA's `detail.message`.
    fn message(&self) -> Option<String> {
        None
    }

    /// Whether privacyIDEA's `result.value` is true as Python reads it (the `result_value`
    /// event condition). privacyIDEA's lists and objects read as false here, as before.
    fn value_is_true(&self) -> bool {
        false
    }
}

impl Outcome for () {}

impl Outcome for bool {
    fn value_is_true(&self) -> bool {
        *self
    }
}

impl Outcome for i64 {
    fn value_is_true(&self) -> bool {
        *self != 0
    }
}

impl Outcome for usize {
    fn value_is_true(&self) -> bool {
        *self != 0
    }
}

impl Outcome for String {}

impl<T> Outcome for Vec<T> {}

impl<T> Outcome for Option<T> {}

impl<K, V> Outcome for std::collections::BTreeMap<K, V> {}

impl<A, B> Outcome for (A, B) {}

impl Call {
    /// A call of `action` by `caller` starting now on `services`' clock.
    pub fn new(services: &Services, action: impl Into<String>, caller: Caller) -> Self {
        Self {
            action: action.into(),
            event: None,
            caller,
            client: None,
            end_user: None,
            user_agent: None,
            subject: Subject::default(),
            refused: None,
            request: None,
            account: None,
            started_ms: services.clock().now_ms(),
            started: Instant::now(),
        }
    }

    /// The call fires `event` (pre and post).
    pub fn event(mut self, event: &'static str) -> Self {
        self.event = Some(event);
        self
    }

    /// The peer's address and the end user's a trusted proxy named.
    pub fn from(mut self, client: Option<IpAddr>, end_user: Option<IpAddr>) -> Self {
        self.client = client;
        self.end_user = end_user;
        self
    }

    /// The caller's User-Agent.
    pub fn user_agent(mut self, ua: Option<&str>) -> Self {
        self.user_agent = ua.map(str::to_owned);
        self
    }

    /// What the request names (the `pre` event's subject).
    pub fn subject(mut self, user: &str, realm: &str, serial: &str) -> Self {
        self.subject = Subject {
            user: user.to_owned(),
            realm: realm.to_owned(),
            serial: serial.to_owned(),
        };
        self
    }

    /// The HTTP request's headers and parameters (for policy conditions).
    pub fn request(mut self, data: RequestData) -> Self {
        self.request = Some(Arc::new(data));
        self
    }

    /// Refuses the call with `error` before any work (still audited).
    pub fn refuse(mut self, error: ServiceError) -> Self {
        self.refused = Some(error);
        self
    }

    /// The call started earlier than it was described: at `started_ms` on the services'
    /// clock, `started` on the monotonic one.
    pub fn since(mut self, started_ms: i64, started: Instant) -> Self {
        self.started_ms = started_ms;
        self.started = started;
        self
    }
}

impl Services {
    /// Runs one call: checks that the caller holds `right` (an admin right; None for calls
    /// anyone may make), fires the `pre` handlers, runs `work`, fills the audit entry from
    /// its outcome, fires the `post` handlers (after a success) and writes the entry; only
    /// then answers. See the module documentation.
    pub async fn run<T, F>(&self, call: Call, right: Option<&'static str>, work: F) -> Result<T>
    where
        T: Outcome + Send + 'static,
        F: for<'a> FnOnce(&'a Services, &'a mut Scope) -> Work<'a, T> + Send + 'static,
    {
        let services = self.clone();
        let current = Arc::new(Current {
            share: crate::kdf::Share {
                client: call.end_user.or(call.client),
                account: call
                    .account
                    .as_deref()
                    .unwrap_or(&call.subject.user)
                    .trim()
                    .to_lowercase(),
            },
            ..Current::default()
        });
        let mut caller = Abandon(current.clone(), false);
        let r = tokio::spawn(CURRENT.scope(current, async move {
            services.run_here(call, right, work).await
        }))
        .await
        .map_err(|_| ServiceError::Internal("a call's task failed".into()));
        caller.1 = true;
        r?
    }

    /// Records a request a front end refused before it became a call (a form from another
    /// site, an expired session, a field left empty): its audit row says who, from where, and
    /// `why`; no event fires.
    pub async fn refuse(&self, call: Call, why: &str) {
        let admin = match &call.caller {
            Caller::Admin(name) => name.clone(),
            _ => String::new(),
        };
        let audit = AuditEntry {
            ts: call.started_ms,
            action: call.action.clone(),
            client: call.client.map(|c| c.to_string()).unwrap_or_default(),
            administrator: admin,
            user: call.subject.user.clone(),
            realm: call.subject.realm.clone(),
            success: false,
            info: why.to_owned(),
            duration_ms: i64::try_from(call.started.elapsed().as_millis()).unwrap_or(i64::MAX),
            ..Default::default()
        };
        self.write_audit(&audit).await;
    }

    async fn run_here<T, F>(&self, call: Call, right: Option<&'static str>, work: F) -> Result<T>
    where
        T: Outcome + Send + 'static,
        F: for<'a> FnOnce(&'a Services, &'a mut Scope) -> Work<'a, T> + Send + 'static,
    {
        let mut scope = Scope {
            admin: None,
            right: None,
            client: call.client,
            end_user: call.end_user,
            request: call.request.clone(),
            serial: call.subject.serial.clone(),
            audit: AuditEntry {
                ts: call.started_ms,
                action: call.action.clone(),
                client: call.client.map(|c| c.to_string()).unwrap_or_default(),
                ..Default::default()
            },
        };
        let admitted = if self.database_down() {
            self.database_refused();
            Err(ServiceError::Unavailable)
        } else {
            self.admit(&call, right, &mut scope).await
        };
        let result = match admitted {
            Ok(()) => {
                if let Some(event) = call.event {
                    let subject = AuditEntry {
                        user: call.subject.user.clone(),
                        realm: call.subject.realm.clone(),
                        serial: call.subject.serial.clone(),
                        ..Default::default()
                    };
                    self.fire_event("pre", &event_input(&call, event, &scope, &subject, None))
                        .await;
                }
                work(self, &mut scope).await
            }
            Err(e) => Err(e),
        };
        if matches!(result, Err(ServiceError::Unavailable)) {
            self.database_failed();
        }
        let audit = &mut scope.audit;
        match &result {
            Ok(outcome) => {
                audit.success = outcome.success();
                if let Some(a) = outcome.authentication() {
                    audit.authentication = a.as_str().into();
                }
                if audit.info.is_empty() {
                    audit.info = outcome.message().unwrap_or_default();
                }
            }
            Err(e) => {
                audit.success = false;
                if audit.info.is_empty() {
                    audit.info = e.to_string();
                }
            }
        }
        audit.duration_ms = i64::try_from(call.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        if let (Ok(outcome), Some(event)) = (&result, call.event) {
            let r = CallResult {
                status: true,
                value: outcome.value_is_true(),
                authentication: outcome.authentication(),
                message: outcome.message(),
            };
            let subject = scope.audit.clone();
            self.fire_event(
                "post",
                &event_input(&call, event, &scope, &subject, Some(&r)),
            )
            .await;
        }
        self.write_audit(&scope.audit).await;
        result
    }

    /// The call's own fault, then the caller's right: the admin it authenticates as.
    async fn admit(
        &self,
        call: &Call,
        right: Option<&'static str>,
        scope: &mut Scope,
    ) -> Result<()> {
        if let Caller::Admin(name) = &call.caller {
            scope.signed_in_admin(name);
        }
        if let Some(e) = &call.refused {
            return Err(e.clone());
        }
        let admin = match (&call.caller, right) {
            (Caller::Admin(name), _) => Some(name.clone()),
            (Caller::Bearer(token), Some(_)) => {
                let id = self.authenticate_admin(token.as_deref())?;
                self.admin_token_current(&id).await?;
                Some(id.username)
            }
            (Caller::Anonymous, Some(_)) => Some(self.authenticate_admin(None)?.username),
            _ => None,
        };
        if let Some(name) = &admin {
            scope.signed_in_admin(name);
        }
        match (right, admin) {
            (Some(r), Some(name)) => {
                let reach = self.policies().await?.admin_reach(&name, r);
                // privacyIDEA answers a token list no admin policy allows with an empty list
                // (the reach filters every token out), every other action with 403.
                if !reach.anyone() && r != "tokenlist" {
                    return Err(not_allowed(r));
                }
                scope.right = Some((r, reach));
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn event_input<'a>(
    call: &'a Call,
    event: &'static str,
    scope: &'a Scope,
    subject: &'a AuditEntry,
    result: Option<&'a CallResult>,
) -> EventInput<'a> {
    EventInput {
        event,
        subject,
        admin: scope.admin(),
        client_ip: scope.client(),
        user_agent: call.user_agent.as_deref(),
        action: &call.action,
        result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_true_as_python_reads_them() {
        assert!(true.value_is_true() && !false.value_is_true());
        assert!(1i64.value_is_true() && !0i64.value_is_true());
        assert!(3usize.value_is_true() && !0usize.value_is_true());
        assert!(!().value_is_true() && !vec![1].value_is_true());
    }
}
