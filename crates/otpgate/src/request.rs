//! What the HTTP API and the web interface read off a request alike: the route in
//! privacyIDEA's notation, the peer's address and the end user's as trusted proxies name it,
//! and the request's call slot.

use crate::params::Params;
use crate::state::App;
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::HeaderMap;
use otpgate_service::call::{Call, Caller};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

/// What the edge knows of a request's call: whether a handler handed it to the service
/// (which then writes its audit row), and who was signed in, for the audit row of a request
/// refused before it became a call (see [`otpgate_service::Services::refuse`]).
#[derive(Clone, Default, Debug)]
pub struct CallSlot(Arc<Mutex<SlotState>>);

/// Why a request was refused, in words, attached to its response (an API error's message, a
/// form's errors): the audit row of a request that never became a call says it, not only the
/// status.
#[derive(Debug, Clone)]
pub struct Refusal(pub String);

#[derive(Default, Debug)]
struct SlotState {
    handed_over: bool,
    admin: Option<String>,
    user: Option<(String, String)>,
}

impl CallSlot {
    /// A service call took the request over.
    pub fn hand_over(&self) {
        if let Ok(mut s) = self.0.lock() {
            s.handed_over = true;
        }
    }

    /// Whether a service call took the request over.
    pub fn handed_over(&self) -> bool {
        self.0.lock().is_ok_and(|s| s.handed_over)
    }

    /// The request comes from this signed-in admin.
    pub fn admin(&self, name: &str) {
        if let Ok(mut s) = self.0.lock() {
            s.admin = Some(name.to_owned());
        }
    }

    /// The request comes from this signed-in user.
    pub fn user(&self, login: &str, realm: &str) {
        if let Ok(mut s) = self.0.lock() {
            s.user = Some((login.to_owned(), realm.to_owned()));
        }
    }

    /// The call of a request no handler handed over.
    pub fn refused_call(&self, call: Call) -> Call {
        let Ok(s) = self.0.lock() else {
            return call;
        };
        let mut call = call;
        if let Some(a) = &s.admin {
            call.caller = Caller::Admin(a.clone());
        }
        if let Some((u, r)) = &s.user {
            call = call.subject(u, r, "");
        }
        call
    }
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
pub fn end_user(
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

/// The address limits and audit count a web request against: the end user a trusted proxy
/// names, else the peer.
pub fn extract_client(app: &App, req: &Request) -> Option<std::net::IpAddr> {
    rate_key(&app.config.server.trusted_proxies, req).or_else(|| client_ip(req))
}
