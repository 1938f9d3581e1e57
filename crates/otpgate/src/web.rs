//! The web interface under `/ui/`: an admin console and user self-service, rendered on the
//! server ([`html`]), with embedded assets ([`assets`]), signed session cookies, CSRF
//! tokens and a strict CSP. Handlers call the same services as the API, so a change made
//! here fires the same events and writes the same audit rows.

mod admin;
pub mod assets;
mod config;
mod html;
mod login;
mod me;

use crate::request::AuditSlot;
use crate::state::App;
use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use html::{E, Out, w};
use otpgate_service::audit::AuditEntry;
use otpgate_service::call::{Call, Caller, Outcome, Scope, Work};
use otpgate_service::sessions::WEB_SESSION;
use otpgate_service::users::User;
use otpgate_service::{Params, ServiceError, Services};
use serde_json::Value;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The CSP of every web page: our own script and style only, no inline code, Trusted Types.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; \
require-trusted-types-for 'script'";

/// The web routes (all under `/ui/`, plus `GET /` → `/ui/`).
pub fn routes() -> Router<App> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(login::home))
        .route("/ui/assets/{name}", get(assets::serve))
        .route("/ui/login", get(login::user_form).post(login::user_login))
        .route("/ui/login/otp", get(login::otp_form).post(login::otp_login))
        .route(
            "/ui/admin/login",
            get(login::admin_form).post(login::admin_login),
        )
        .route("/ui/logout", post(login::logout))
        .route("/ui/me", get(me::overview))
        .route("/ui/me/phone", get(me::phone_form).post(me::phone_enroll))
        .route("/ui/me/phone/verify", get(me::verify_form).post(me::verify))
        .route("/ui/me/phone/resend", post(me::resend))
        .route("/ui/me/pin", get(me::pin_form).post(me::set_pin))
        .route("/ui/admin/", get(admin::dashboard))
        .route("/ui/admin", get(|| async { Redirect::to("/ui/admin/") }))
        .route("/ui/admin/tokens", get(admin::tokens))
        .route(
            "/ui/admin/tokens/new",
            get(admin::token_form).post(admin::token_enroll),
        )
        .route("/ui/admin/tokens/{serial}", get(admin::token))
        .route(
            "/ui/admin/tokens/{serial}/{action}",
            post(admin::token_action),
        )
        .route(
            "/ui/admin/users",
            get(admin::users).post(admin::user_create),
        )
        .route(
            "/ui/admin/realms",
            get(admin::realms).post(admin::realm_save),
        )
        .route(
            "/ui/admin/users/{resolver}/{name}/{action}",
            post(admin::user_delete),
        )
        .route(
            "/ui/admin/realms/{name}/{action}",
            post(admin::realm_action),
        )
        .route("/ui/admin/gateways", get(admin::gateways))
        .route(
            "/ui/admin/gateways/new",
            get(admin::gateway_new).post(admin::gateway_create),
        )
        .route(
            "/ui/admin/gateways/{name}",
            get(admin::gateway_edit).post(admin::gateway_update),
        )
        .route(
            "/ui/admin/gateways/{name}/{action}",
            post(admin::gateway_action),
        )
        .route("/ui/admin/blocks", post(admin::block))
        .route("/ui/admin/blocks/{prefix}/delete", post(admin::unblock))
        .route("/ui/admin/texts", get(admin::texts).post(admin::text_save))
        .route("/ui/admin/texts/count", post(admin::text_count))
        .route("/ui/admin/audit", get(admin::audit))
        .route(
            "/ui/admin/resolvers/new",
            get(config::resolver_new).post(config::resolver_create),
        )
        .route(
            "/ui/admin/resolvers/{name}",
            get(config::resolver_edit).post(config::resolver_update),
        )
        .route(
            "/ui/admin/resolvers/{name}/{action}",
            post(config::resolver_action),
        )
        .route("/ui/admin/smtp", get(config::smtp_list))
        .route(
            "/ui/admin/smtp/new",
            get(config::smtp_new).post(config::smtp_create),
        )
        .route(
            "/ui/admin/smtp/{id}",
            get(config::smtp_edit).post(config::smtp_update),
        )
        .route("/ui/admin/smtp/{id}/{action}", post(config::smtp_action))
        .route("/ui/admin/policies", get(config::policies))
        .route(
            "/ui/admin/policies/new",
            get(config::policy_new).post(config::policy_create),
        )
        .route(
            "/ui/admin/policies/{name}",
            get(config::policy_edit).post(config::policy_update),
        )
        .route(
            "/ui/admin/policies/{name}/{action}",
            post(config::policy_action),
        )
        .route("/ui/admin/events", get(config::events))
        .route(
            "/ui/admin/events/new",
            get(config::event_new).post(config::event_create),
        )
        .route(
            "/ui/admin/events/{id}",
            get(config::event_edit).post(config::event_update),
        )
        .route("/ui/admin/events/{id}/{action}", post(config::event_action))
        .route(
            "/ui/admin/events/outbox/{id}/retry",
            post(config::outbox_retry),
        )
        .layer(axum::middleware::from_fn(renew_cookie))
}

/// The routes (POSTs) the per-address rate limit covers: sign-ins and the enrollment code.
pub const RATE_LIMITED: &[&str] = &[
    "/ui/login",
    "/ui/login/otp",
    "/ui/admin/login",
    "/ui/me/phone/verify",
];

/// The most fields a web form may have (the largest form has about 60).
const MAX_FIELDS: usize = 500;

/// Security headers of web answers (the API's `secure_headers` keeps what is set here).
pub fn page_headers(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    // Browsers then name our origin in `Origin` on our own form posts (with `no-referrer`
    // they send `Origin: null`, which `same_origin` refuses), and nothing leaves the site.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// A renewed session cookie a request wants sent back (idle timeout: activity extends the
/// session); the web routes' middleware adds it unless the answer sets the cookie itself.
#[derive(Clone, Default)]
struct CookieSlot(Arc<Mutex<Option<String>>>);

/// Middleware of the web routes: gives each request a [`CookieSlot`] and sends what it holds.
async fn renew_cookie(mut req: Request, next: axum::middleware::Next) -> Response {
    let slot = CookieSlot::default();
    req.extensions_mut().insert(slot.clone());
    let mut r = next.run(req).await;
    let renewed = slot.0.lock().ok().and_then(|mut s| s.take());
    if let Some(cookie) = renewed {
        let name = cookie.split('=').next().unwrap_or_default().to_owned();
        let already = r
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.starts_with(&format!("{name}="))));
        if !already && let Ok(v) = HeaderValue::from_str(&cookie) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// Login name.
    pub username: String,
    /// Realm (empty for admins).
    pub realm: String,
    /// `admin` or `user`.
    pub role: String,
    /// Session id (signing out records it).
    pub sid: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Sign-in time, Unix seconds (the session ends `web.session_max_secs` after it).
    pub since: i64,
    /// The admin menu's pages this admin may open (filled by [`Web::admin`]).
    pub allowed: Vec<&'static str>,
}

/// What a session cookie carries (signed; `aud`, `iat` and `exp` are added when signing).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct SessionClaims {
    #[serde(default)]
    username: String,
    #[serde(default)]
    realm: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    sid: String,
    #[serde(default)]
    csrf: String,
    /// The sign-in time (Unix seconds); cookies from before it was kept have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<i64>,
}

/// A web request: query and form parameters kept apart (the CSRF token counts only from the
/// body), headers, the client and the audit slot.
pub struct Web {
    /// The application.
    pub app: App,
    /// Query parameters.
    pub query: Params,
    /// Form fields of a POST body.
    pub form: Params,
    headers: HeaderMap,
    method: Method,
    path: String,
    /// Method and route in privacyIDEA's notation (`POST /ui/admin/tokens/<serial>/<action>`).
    route: String,
    /// The peer's (or a trusted proxy's end user's) address.
    pub client: Option<IpAddr>,
    audit: AuditSlot,
    renewed: CookieSlot,
}

impl FromRequest<App> for Web {
    type Rejection = Response;

    async fn from_request(req: Request, app: &App) -> Result<Self, Self::Rejection> {
        let client = crate::request::extract_client(app, &req);
        let route = crate::request::route_action(&req);
        let audit = req
            .extensions()
            .get::<AuditSlot>()
            .cloned()
            .unwrap_or_default();
        let renewed = req
            .extensions()
            .get::<CookieSlot>()
            .cloned()
            .unwrap_or_default();
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, app.config.server.max_body_bytes)
            .await
            .map_err(|_| {
                error_page(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The form is too large.",
                    None,
                )
            })?;
        // Repeated fields (checkboxes) are joined with commas; at most MAX_FIELDS fields, found
        // through an index (a body of many distinct names costs linear time).
        let parse = |raw: &[u8]| -> Result<Params, ()> {
            let mut joined: Vec<(String, String)> = Vec::new();
            let mut index: std::collections::HashMap<String, usize> =
                std::collections::HashMap::new();
            for (k, v) in form_urlencoded::parse(raw) {
                match index.get(k.as_ref()).and_then(|&i| joined.get_mut(i)) {
                    Some((_, jv)) => {
                        jv.push(',');
                        jv.push_str(&v);
                    }
                    None => {
                        if joined.len() >= MAX_FIELDS {
                            return Err(());
                        }
                        index.insert(k.to_string(), joined.len());
                        joined.push((k.into_owned(), v.into_owned()));
                    }
                }
            }
            let mut p = Params::new();
            for (k, v) in joined {
                p.insert(k, v);
            }
            Ok(p)
        };
        let too_many = |()| {
            error_page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form has too many fields.",
                None,
            )
        };
        let query = parse(parts.uri.query().unwrap_or_default().as_bytes()).map_err(too_many)?;
        let form = if parts.method == Method::POST {
            parse(&bytes).map_err(too_many)?
        } else {
            Params::new()
        };
        Ok(Self {
            app: app.clone(),
            query,
            form,
            headers: parts.headers,
            method: parts.method,
            path: parts.uri.path().to_owned(),
            route,
            client,
            audit,
            renewed,
        })
    }
}

/// Why a web request ends without its page.
#[derive(Debug)]
pub enum WebError {
    /// Not signed in (or not as the right role): to the sign-in page.
    SignIn(&'static str),
    /// A page with a message.
    Page(StatusCode, String),
}

impl From<ServiceError> for WebError {
    fn from(e: ServiceError) -> Self {
        WebError::Page(service_status(&e), service_message(&e))
    }
}

/// What a user reads for a service error (no internal details).
pub fn service_message(e: &ServiceError) -> String {
    match e {
        ServiceError::Internal(cause) => {
            tracing::error!(cause = %cause, "web request failed");
            "Something went wrong. The server log has the details.".into()
        }
        ServiceError::Parameter(m)
        | ServiceError::User(m)
        | ServiceError::TokenAdmin(m)
        | ServiceError::Resolver(m)
        | ServiceError::ConfigAdmin(m)
        | ServiceError::NotFound(m)
        | ServiceError::Policy(m) => m.clone(),
        ServiceError::Auth { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn service_status(e: &ServiceError) -> StatusCode {
    StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::SignIn(to) => Redirect::to(to).into_response(),
            WebError::Page(status, message) => error_page(status, &message, None),
        }
    }
}

/// Web result.
pub type WebResult = Result<Response, WebError>;

fn cookie_name(app: &App, base: &str) -> String {
    if app.config.web.secure_cookies {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure unless configured off.
fn set_cookie(app: &App, base: &str, value: &str, max_age: i64) -> String {
    let secure = if app.config.web.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        cookie_name(app, base)
    )
}

impl Web {
    fn cookie(&self, base: &str) -> Option<String> {
        let name = cookie_name(&self.app, base);
        self.headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    }

    /// The session of the request's cookie, unless expired or signed out.
    pub async fn session(&self) -> Result<Option<Session>, WebError> {
        let Some(token) = self.cookie("otpgate") else {
            return Ok(None);
        };
        let services = &self.app.services;
        let Some(signed) = services.web_verify::<SessionClaims>(WEB_SESSION, &token) else {
            return Ok(None);
        };
        let c = signed.claims;
        let session = Session {
            username: c.username.clone(),
            realm: c.realm.clone(),
            role: c.role.clone(),
            sid: c.sid.clone(),
            csrf: c.csrf.clone(),
            exp: signed.expires_at,
            since: c.since.unwrap_or_default(),
            allowed: Vec::new(),
        };
        if session.sid.is_empty() || services.web_logged_out(&session.sid).await? {
            return Ok(None);
        }
        // Activity extends the session (at most once a minute, never past the maximum).
        let now = services.clock().now().timestamp();
        // A cookie without its sign-in time is not renewed (it could be, forever).
        let Some(since) = c.since else {
            return Ok(Some(session));
        };
        let web = &self.app.config.web;
        let exp = (now + web.session_secs).min(since + web.session_max_secs);
        if now - signed.issued_at >= 60 && exp > session.exp {
            let token = services.web_sign(WEB_SESSION, &c, exp - now)?;
            if let Ok(mut slot) = self.renewed.0.lock() {
                *slot = Some(set_cookie(&self.app, "otpgate", &token, exp - now));
            }
        }
        Ok(Some(session))
    }

    /// The admin session, checked for `right` (admin policies apply as in the API); POSTs
    /// also need a valid CSRF token.
    pub async fn admin(&self, right: &str) -> Result<Session, WebError> {
        let mut s = self
            .session()
            .await?
            .filter(|s| s.role == "admin")
            .ok_or(WebError::SignIn("/ui/admin/login"))?;
        self.audit(|e| e.administrator = s.username.clone());
        // A deleted admin's session ends with the admin.
        if !self.app.services.admin_exists(&s.username).await? {
            return Err(WebError::SignIn("/ui/admin/login"));
        }
        self.app
            .services
            .require_admin_right(&s.username, right)
            .await?;
        let policies = self.app.services.policies().await?;
        s.allowed = ADMIN_MENU
            .iter()
            .filter(|(_, _, r)| policies.admin_allows(&s.username, r))
            .map(|(href, _, _)| *href)
            .collect();
        self.check_csrf(&s)?;
        Ok(s)
    }

    /// The user session and the user (CSRF checked for POSTs).
    pub async fn user(&self) -> Result<(Session, User), WebError> {
        let s = self
            .session()
            .await?
            .filter(|s| s.role == "user")
            .ok_or(WebError::SignIn("/ui/login"))?;
        self.check_csrf(&s)?;
        let settings = self.app.services.settings().await?;
        let (_, _, user) = self
            .app
            .services
            .lookup_user(&settings, &s.username, Some(&s.realm))
            .await?;
        let user = user.ok_or(WebError::SignIn("/ui/login"))?;
        self.audit(|e| {
            e.user = user.login.clone();
            e.realm = user.realm.clone();
        });
        Ok((s, user))
    }

    /// For a POST: the form's `csrf` equals the session's (constant time), and the browser
    /// does not report a cross-site request.
    pub fn check_csrf(&self, s: &Session) -> Result<(), WebError> {
        if self.method != Method::POST {
            return Ok(());
        }
        self.same_origin()?;
        let sent = self
            .form
            .get("csrf")
            .or_else(|| {
                self.headers
                    .get("x-csrf-token")
                    .and_then(|v| v.to_str().ok())
            })
            .unwrap_or_default();
        if s.csrf.is_empty() || !otpgate_core::hotp::otp_eq(sent, &s.csrf) {
            return Err(WebError::Page(
                StatusCode::FORBIDDEN,
                "The form has expired. Go back, reload the page and try again.".into(),
            ));
        }
        Ok(())
    }

    /// Refuses a POST a browser marks as cross-site, or whose `Origin` is another host.
    pub fn same_origin(&self) -> Result<(), WebError> {
        let cross = self
            .headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == "cross-site" || v == "same-site");
        let host = self
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let foreign_origin = self
            .headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|o| o.split_once("://").map(|(_, h)| h) != Some(host));
        if cross || foreign_origin {
            return Err(WebError::Page(
                StatusCode::FORBIDDEN,
                "This form was sent from another site and has been refused.".into(),
            ));
        }
        Ok(())
    }

    /// Updates the request's audit entry.
    pub fn audit(&self, f: impl FnOnce(&mut AuditEntry)) {
        if let Ok(mut e) = self.audit.0.lock() {
            f(&mut e);
        }
    }

    /// Records what a service filled in (keeping the administrator).
    pub fn record(&self, filled: AuditEntry) {
        self.audit(|e| {
            let administrator = std::mem::take(&mut e.administrator);
            *e = filled;
            if e.administrator.is_empty() {
                e.administrator = administrator;
            }
        });
    }

    /// The call this request is (a sign-in, a change), for the service: the route, the
    /// address (also the end user's, for the per-client send limit) and the User-Agent.
    pub fn call(&self, caller: Caller) -> Call {
        let ua = self
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        Call::new(&self.app.services, &self.route, caller)
            .from(self.client, self.client)
            .user_agent(ua)
    }

    /// Runs `call` through the service, which checks `right`, fires the call's event, runs
    /// `work` and writes the audit row.
    pub async fn run<T, F>(
        &self,
        call: Call,
        right: Option<&'static str>,
        work: F,
    ) -> Result<T, ServiceError>
    where
        T: Outcome + Send + 'static,
        F: for<'a> FnOnce(&'a Services, &'a mut Scope) -> Work<'a, T> + Send + 'static,
    {
        self.audit.hand_over();
        self.app.services.run(call, right, work).await
    }

    /// Signs a session in: a fresh session id and CSRF token in a new cookie.
    pub fn sign_in(&self, username: &str, realm: &str, role: &str, to: &str) -> WebResult {
        let services = &self.app.services;
        let c = SessionClaims {
            username: username.to_owned(),
            realm: realm.to_owned(),
            role: role.to_owned(),
            sid: services.web_random()?,
            csrf: services.web_random()?,
            since: Some(services.clock().now().timestamp()),
        };
        let ttl = self.app.config.web.session_secs;
        let token = services.web_sign(WEB_SESSION, &c, ttl)?;
        let mut r = Redirect::to(to).into_response();
        self.set_cookie(&mut r, "otpgate", &token, ttl);
        self.set_cookie(&mut r, "otpgate-login", "", 0);
        Ok(r)
    }

    fn set_cookie(&self, r: &mut Response, base: &str, value: &str, max_age: i64) {
        if let Ok(v) = HeaderValue::from_str(&set_cookie(&self.app, base, value, max_age)) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }

    /// The request path (for `aria-current`).
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// Which navigation a page shows.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// Sign-in pages: none.
    None,
    /// The admin console.
    Admin,
    /// Self-service.
    User,
}

/// The admin menu: page, label, and the admin right its page needs (the menu shows only the
/// pages an admin may open).
pub const ADMIN_MENU: &[(&str, &str, &str)] = &[
    ("/ui/admin/", "Dashboard", "auditlog"),
    ("/ui/admin/tokens", "Tokens", "tokenlist"),
    ("/ui/admin/users", "Users", "userlist"),
    ("/ui/admin/realms", "Realms", "realmread"),
    ("/ui/admin/gateways", "SMS gateways", "smsgateway_read"),
    ("/ui/admin/texts", "SMS texts", "policyread"),
    ("/ui/admin/policies", "Policies", "policyread"),
    ("/ui/admin/events", "Events", "eventhandling_read"),
    ("/ui/admin/smtp", "SMTP", "smtpserver_read"),
    ("/ui/admin/audit", "Audit log", "auditlog"),
];

const USER_MENU: &[(&str, &str)] = &[
    ("/ui/me", "My phones"),
    ("/ui/me/phone", "Add a phone"),
    ("/ui/me/pin", "PIN"),
];

/// A whole page.
pub struct Page<'a> {
    /// `<title>` and `<h1>`.
    pub title: &'a str,
    /// Navigation.
    pub nav: Nav,
    /// The signed-in session (for the menu, the sign-out form and the CSRF meta tag).
    pub session: Option<&'a Session>,
    /// The current path (menu `aria-current`).
    pub path: &'a str,
    /// A success message.
    pub flash: Option<&'a str>,
    /// Refused fields: (field id or "", message).
    pub errors: &'a [(String, String)],
    /// The main content after the heading.
    pub body: Out,
}

impl Page<'_> {
    /// Renders the page with `status`.
    pub fn render(self, status: StatusCode) -> Response {
        let mut o = Out::new();
        o.raw("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        w!(o, "<title>{} · otpgate</title>", E(self.title));
        w!(
            o,
            "<link rel=\"stylesheet\" href=\"{}\"><link rel=\"icon\" href=\"{}\"><script src=\"{}\" defer></script>",
            E(&assets::url("app.css")),
            E(&assets::url("icon.svg")),
            E(&assets::url("app.js"))
        );
        if let Some(s) = self.session {
            w!(o, "<meta name=\"csrf-token\" content=\"{}\">", E(&s.csrf));
        }
        let body_class = if self.nav == Nav::None { "auth" } else { "app" };
        w!(
            o,
            "</head><body class=\"{body_class}\"><a class=\"skip\" href=\"#main\">Skip to main content</a>"
        );
        let menu: Option<(Vec<(&str, &str)>, &str)> = match self.nav {
            Nav::None => None,
            Nav::Admin => Some((
                ADMIN_MENU
                    .iter()
                    .filter(|(href, _, _)| self.session.is_none_or(|s| s.allowed.contains(href)))
                    .map(|(href, label, _)| (*href, *label))
                    .collect(),
                "/ui/admin/",
            )),
            Nav::User => Some((USER_MENU.to_vec(), "/ui/me")),
        };
        if let Some((items, home)) = menu {
            w!(
                o,
                "<header class=\"top\"><a class=\"brand\" href=\"{}\">otpgate</a><nav class=\"menu\" aria-label=\"Main\"><ul>",
                E(home)
            );
            for (href, label) in items {
                let current = if self.path == href
                    || (href != "/ui/admin/" && href != "/ui/me" && self.path.starts_with(href))
                {
                    " aria-current=\"page\""
                } else {
                    ""
                };
                w!(
                    o,
                    "<li><a href=\"{}\"{current}>{}</a></li>",
                    E(href),
                    E(label)
                );
            }
            o.raw("</ul></nav>");
            if let Some(s) = self.session {
                let who = if s.realm.is_empty() {
                    s.username.clone()
                } else {
                    format!("{}@{}", s.username, s.realm)
                };
                w!(
                    o,
                    "<form class=\"logout\" method=\"post\" action=\"/ui/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><span class=\"who\">{}</span> <button class=\"link\">Sign out</button></form>",
                    E(&s.csrf),
                    E(&who)
                );
            }
            o.raw("</header>");
        }
        let main_class = if self.nav == Nav::None {
            "auth-box"
        } else {
            "page"
        };
        w!(
            o,
            "<main id=\"main\" class=\"{main_class}\" tabindex=\"-1\"><h1>{}</h1>",
            E(self.title)
        );
        if let Some(f) = self.flash {
            w!(o, "<p class=\"flash\" role=\"status\">{}</p>", E(f));
        }
        html::error_summary(self.errors, &mut o);
        o.push(self.body);
        w!(
            o,
            "</main><footer class=\"foot\">otpgate {}</footer></body></html>",
            E(env!("CARGO_PKG_VERSION"))
        );
        let mut r = (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            o.into_string(),
        )
            .into_response();
        page_headers(&mut r);
        r
    }
}

/// A signed-in page with its navigation and the flash message the URL names (`?ok=`), or
/// `note`; 422 when fields were refused.
pub fn signed_in_page(
    web: &Web,
    s: &Session,
    nav: Nav,
    title: &str,
    errors: &[(String, String)],
    note: Option<&str>,
    body: Out,
) -> Response {
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Page {
        title,
        nav,
        session: Some(s),
        path: web.path(),
        flash: note.or_else(|| flash(web.query.get("ok"))),
        errors,
        body,
    }
    .render(status)
}

/// The hidden CSRF field of a form.
pub fn csrf_field(b: &mut Out, s: &Session) {
    w!(
        b,
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        E(&s.csrf)
    );
}

/// Why a "new" form does not save: `what` (e.g. "an SMTP server mail") exists already, and a
/// "new" form never replaces (nor drops the secrets of) what exists.
pub fn exists_already(what: &str) -> ServiceError {
    ServiceError::Parameter(format!(
        "There is {what} already; change it on its own page."
    ))
}

/// A string member of a JSON object ("" when absent).
pub fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

/// A page that says what went wrong, with a way back.
pub fn error_page(status: StatusCode, message: &str, back: Option<&str>) -> Response {
    let mut body = Out::new();
    w!(body, "<p>{}</p>", E(message));
    w!(
        body,
        "<p><a class=\"button\" href=\"{}\">Back</a></p>",
        E(back.unwrap_or("/ui/"))
    );
    let title = if status == StatusCode::FORBIDDEN {
        "Not allowed"
    } else if status == StatusCode::NOT_FOUND {
        "Not found"
    } else {
        "Something is wrong"
    };
    Page {
        title,
        nav: Nav::None,
        session: None,
        path: "",
        flash: None,
        errors: &[],
        body,
    }
    .render(status)
}

/// 303 to `to` (after a POST).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// The success messages a redirect may name (`?ok=key`): fixed texts, nothing reflected.
pub fn flash(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "enrolled" => "The token was enrolled.",
        "enabled" => "The token was enabled.",
        "disabled" => "The token was disabled.",
        "reset" => "The fail counter was reset.",
        "pin" => "The PIN was set.",
        "deleted" => "Deleted.",
        "saved" => "Saved.",
        "default" => "This gateway now sends every token's SMS that names no other.",
        "test-sent" => "The test SMS was accepted by the gateway.",
        "user" => "The user was created.",
        "realm" => "The realm was saved.",
        "verified" => "Your phone is verified and ready for signing in.",
        "resent" => "A new code is on its way.",
        "signed-out" => "You have signed out.",
        "mail-sent" => "The test mail was accepted by the mail server.",
        "requeued" => "The notification is queued again.",
        "blocked" => "No SMS goes to that prefix any more.",
        "unblocked" => "SMS go to that prefix again.",
        _ => return None,
    })
}
