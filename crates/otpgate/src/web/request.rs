//! A web request: query and form parameters kept apart (the CSRF token counts only from the
//! body), the session of its cookie (idle timeout renewed by activity under an absolute
//! maximum, sign-outs that hold on every node), CSRF and same-origin checks, and the call it
//! hands to the service.

use super::page::{self, ADMIN_MENU, Nav, Page, error_page, service_message};
use super::session::Session;
use crate::params::Params;
use crate::request::CallSlot;
use crate::state::App;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use otpgate_service::call::{Call, Caller, Outcome, Scope, Work};
use otpgate_service::sessions::WEB_SESSION;
use otpgate_service::users::User;
use otpgate_service::{ServiceError, Services};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The most fields a web form may have (the largest form has about 60).
const MAX_FIELDS: usize = 500;

/// A renewed session cookie a request wants sent back (idle timeout: activity extends the
/// session); the web routes' middleware adds it unless the answer sets the cookie itself.
#[derive(Clone, Default)]
struct CookieSlot(Arc<Mutex<Option<String>>>);

/// Middleware of the web routes: gives each request a [`CookieSlot`] and sends what it holds.
pub async fn renew_cookie(mut req: Request, next: axum::middleware::Next) -> Response {
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
/// body), headers, the client and the call slot.
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
    slot: CallSlot,
    renewed: CookieSlot,
}

impl FromRequest<App> for Web {
    type Rejection = Response;

    async fn from_request(req: Request, app: &App) -> Result<Self, Self::Rejection> {
        let client = crate::request::extract_client(app, &req);
        let route = crate::request::route_action(&req);
        let slot = req
            .extensions()
            .get::<CallSlot>()
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
            slot,
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
    /// Why a sign-in cannot work on this connection, if it cannot: the page came over plain
    /// HTTP to a host other than this machine, where browsers do not keep the `Secure`
    /// (`__Host-`) session cookie — the sign-in would silently start over.
    pub fn cookie_would_be_lost(&self) -> Option<String> {
        let cfg = &self.app.config;
        if !cfg.web.secure_cookies || cfg.server.tls_cert.is_some() {
            return None;
        }
        let forwarded_https = self
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
        if forwarded_https {
            return None;
        }
        let host = self
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => host.rsplit_once(':').map_or(host, |(h, _)| h),
        };
        let local = name.eq_ignore_ascii_case("localhost")
            || name.to_ascii_lowercase().ends_with(".localhost")
            || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if local || name.is_empty() {
            return None;
        }
        // Said once a minute at most: every view of a sign-in page comes here.
        static LAST_WARNED_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
        let now = self.app.services.clock().now_ms();
        let last = LAST_WARNED_MS.load(std::sync::atomic::Ordering::Relaxed);
        if (now - last).abs() >= 60_000
            && LAST_WARNED_MS
                .compare_exchange(
                    last,
                    now,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_ok()
        {
            tracing::warn!(host = %host, "a sign-in page was opened over plain HTTP at a host name: browsers drop the secure session cookie there, so signing in cannot work (use HTTPS, or localhost, or web.secure_cookies = false behind a TLS proxy)");
        }
        Some(format!(
            "Signing in cannot work here: this page was opened over plain HTTP at {host}, and browsers keep the secure sign-in cookie only over HTTPS or on localhost. Open it over HTTPS (server.tls_cert, or a TLS proxy in front of otpgate), or at http://localhost:{port}/ on the server itself. Behind a proxy that ends TLS and talks plain HTTP to otpgate over a trusted link, set web.secure_cookies = false.",
            port = cfg.server.listen.port()
        ))
    }

    pub fn cookie(&self, base: &str) -> Option<String> {
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
        self.admin_with(Some(right)).await
    }

    /// The admin session, whatever the admin's rights (a page every admin has: their own
    /// password).
    pub async fn admin_any(&self) -> Result<Session, WebError> {
        self.admin_with(None).await
    }

    async fn admin_with(&self, right: Option<&str>) -> Result<Session, WebError> {
        let mut s = self
            .session()
            .await?
            .filter(|s| s.role == "admin")
            .ok_or(WebError::SignIn("/ui/admin/login"))?;
        self.slot.admin(&s.username);
        // A deleted admin's session ends with the admin, and a changed password ends every
        // session signed in before it.
        if !self
            .app
            .services
            .admin_session_current(&s.username, s.since)
            .await?
        {
            return Err(WebError::SignIn("/ui/admin/login"));
        }
        if let Some(right) = right {
            self.app
                .services
                .require_admin_right(&s.username, right)
                .await?;
        }
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
        self.slot.user(&user.login, &user.realm);
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
        if s.csrf.is_empty() || !otpgate_core::secret::ct_eq(sent, &s.csrf) {
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

    /// The call of a change by the signed-in admin `s`.
    pub fn admin_call(&self, s: &Session) -> Call {
        self.call(Caller::Admin(s.username.clone()))
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
        self.slot.hand_over();
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

    pub fn set_cookie(&self, r: &mut Response, base: &str, value: &str, max_age: i64) {
        if let Ok(v) = HeaderValue::from_str(&set_cookie(&self.app, base, value, max_age)) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }

    /// The request path (for `aria-current`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// A signed-in page with its navigation and the flash message the URL names (`?ok=`), or
    /// `note`; 422 when fields were refused.
    pub fn page(
        &self,
        s: &Session,
        nav: Nav,
        title: &str,
        errors: &[(String, String)],
        note: Option<&str>,
        body: super::html::Out,
    ) -> Response {
        let status = page::form_status(errors);
        Page {
            title,
            nav,
            session: Some(s),
            path: self.path(),
            flash: note.or_else(|| page::flash(self.query.get("ok"))),
            errors,
            body,
        }
        .render(status)
    }
}
