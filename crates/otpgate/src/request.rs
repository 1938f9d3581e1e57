//! What the HTTP API and the web interface read off a request alike: the route in
//! privacyIDEA's notation, the peer's address and the end user's as trusted proxies name it,
//! and (while handlers are moved to the service's call) the request's audit slot.

use crate::params::Params;
use crate::state::App;
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::HeaderMap;
use otpgate_service::audit::AuditEntry;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

/// The audit entry of one request, filled by the handler and written by the middleware,
/// unless the handler handed the request to the service ([`AuditSlot::hand_over`]).
#[derive(Clone, Default, Debug)]
pub struct AuditSlot(
    pub Arc<Mutex<AuditEntry>>,
    Arc<std::sync::atomic::AtomicBool>,
);

impl AuditSlot {
    /// The service owns this request's audit row (it ran as a call).
    pub fn hand_over(&self) {
        self.1.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn handed_over(&self) -> bool {
        self.1.load(std::sync::atomic::Ordering::Relaxed)
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
