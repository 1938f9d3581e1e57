//! privacyIDEA's parameter merging: query string, then the body (form or JSON — JSON also
//! when undeclared but it parses), later sources winning. Path parameters are passed to the
//! services separately by the handlers.

use super::{ApiError, AuditSlot};
use crate::app::App;
use axum::extract::{ConnectInfo, FromRequest, MatchedPath, Request};
use axum::http::{HeaderMap, StatusCode, header};
use otpgate_service::Params;
use otpgate_service::audit::AuditEntry;
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};

/// The merged parameters, headers, client address and audit slot of a request.
#[derive(Debug)]
pub struct Pi {
    /// Merged parameters.
    pub params: Params,
    /// Request headers.
    pub headers: HeaderMap,
    /// The peer address.
    pub client: Option<IpAddr>,
    /// The end user's address, when a trusted proxy named it (`client` parameter or
    /// `X-Forwarded-For`).
    pub end_user: Option<IpAddr>,
    route: String,
    audit: AuditSlot,
}

/// Method and route in privacyIDEA's notation (`POST /token/reset/<serial>`), or the path
/// when no route matched.
pub fn route_action(req: &Request) -> String {
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().replace('{', "<").replace('}', ">"));
    format!(
        "{} {}",
        req.method(),
        template.as_deref().unwrap_or_else(|| req.uri().path())
    )
}

/// The peer address of a request (from the connection).
pub fn client_ip(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

fn trusted(proxies: &[String], ip: IpAddr) -> bool {
    proxies
        .iter()
        .any(|p| otpgate_service::policy::net_contains(p, ip))
}

/// The address whose rate limit a request counts against: the peer's, or for a trusted proxy
/// the end user it names in `X-Forwarded-For`. None for a trusted peer that names no end user
/// (an application server speaking for many users; its users are limited by the send limits).
pub fn rate_key(proxies: &[String], req: &Request) -> Option<IpAddr> {
    let peer = client_ip(req)?;
    if trusted(proxies, peer) {
        forwarded_for(proxies, req.headers())
    } else {
        Some(peer)
    }
}

/// The end user's address as a trusted peer names it: privacyIDEA's `client` parameter, else
/// the nearest `X-Forwarded-For` entry that is not itself a trusted proxy. None for other
/// peers (whatever they send) and when nothing valid is named.
fn end_user(
    proxies: &[String],
    peer: Option<IpAddr>,
    params: &Params,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted(proxies, peer) {
        return None;
    }
    if let Some(ip) = params.get("client").and_then(|c| c.trim().parse().ok()) {
        return Some(ip);
    }
    forwarded_for(proxies, headers)
}

/// The nearest `X-Forwarded-For` entry that is not a trusted proxy (for a trusted peer).
fn forwarded_for(proxies: &[String], headers: &HeaderMap) -> Option<IpAddr> {
    let chain: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|a| a.trim().parse::<IpAddr>())
        .collect::<Result<_, _>>()
        .ok()?;
    chain.into_iter().rev().find(|ip| !trusted(proxies, *ip))
}

impl FromRequest<App> for Pi {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &App) -> Result<Self, Self::Rejection> {
        let client = client_ip(&req);
        let route = route_action(&req);
        let audit = req
            .extensions()
            .get::<AuditSlot>()
            .cloned()
            .unwrap_or_default();
        let (parts, body) = req.into_parts();
        let limit = app.config.server.max_body_bytes;
        let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
            ApiError::status(
                StatusCode::PAYLOAD_TOO_LARGE,
                -413,
                format!("The request body is larger than {limit} bytes."),
            )
        })?;
        let ctype = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let mut params = Params::new();
        for (k, v) in otpgate_core::params::parse(parts.uri.query(), ctype, &bytes)
            .map_err(|e| ApiError::parameter(e.to_string()))?
        {
            params.insert(k, v);
        }
        let end_user = end_user(
            &app.config.server.trusted_proxies,
            client,
            &params,
            &parts.headers,
        );
        Ok(Pi {
            params,
            headers: parts.headers,
            client,
            end_user,
            route,
            audit,
        })
    }
}

impl Pi {
    /// The raw JWT: `PI-Authorization`, else `Authorization`.
    pub fn token(&self) -> Option<&str> {
        self.headers
            .get("PI-Authorization")
            .or_else(|| self.headers.get(header::AUTHORIZATION))
            .and_then(|v| v.to_str().ok())
    }

    /// A success envelope with `value` (and the echoed nonce).
    pub fn reply(&self, value: Value) -> axum::response::Response {
        super::envelope::ok(value, None, self.nonce())
    }

    /// Method and route of the request (`POST /token/init`).
    pub fn route(&self) -> &str {
        &self.route
    }

    /// A success envelope with `value` and, when there are any, `detail.warnings` (what an
    /// admin should know about what was saved; an otpgate addition).
    pub fn reply_warned(&self, value: Value, warnings: Vec<String>) -> axum::response::Response {
        if warnings.is_empty() {
            return self.reply(value);
        }
        let mut detail = serde_json::Map::new();
        detail.insert("warnings".into(), Value::from(warnings));
        super::envelope::ok(value, Some(detail), self.nonce())
    }

    /// The `nonce` parameter, echoed in answers.
    pub fn nonce(&self) -> Option<&str> {
        self.params.get("nonce")
    }

    /// Updates the request's audit entry.
    pub fn audit(&self, f: impl FnOnce(&mut AuditEntry)) {
        if let Ok(mut e) = self.audit.0.lock() {
            f(&mut e);
        }
    }

    /// Records the fields a service filled in.
    pub fn record(&self, filled: AuditEntry) {
        self.audit(|e| {
            let administrator = std::mem::take(&mut e.administrator);
            *e = filled;
            if e.administrator.is_empty() {
                e.administrator = administrator;
            }
        });
    }

    /// Authenticates an admin and checks an admin right.
    pub async fn admin(&self, app: &App, right: &str) -> Result<String, ApiError> {
        let id = app.services.authenticate_admin(self.token())?;
        self.audit(|e| e.administrator = id.username.clone());
        app.services
            .require_admin_right(&id.username, right)
            .await?;
        Ok(id.username)
    }
}
