//! The HTTP API: privacyIDEA's paths, parameters and envelopes, plus `/healthz` and
//! `/metrics`. Handlers are thin: extract parameters, call one service, wrap the result.

mod audit;
mod auth;
pub mod envelope;
mod event;
mod extract;
mod openapi;
mod policy;
mod radiusserver;
mod realm;
mod resolver;
mod smsgateway;
mod smtpserver;
mod system;
mod token;
mod tokenedit;
mod user;
pub mod validate;

pub use envelope::ApiError;
pub use extract::Pi;

use crate::state::App;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use otpgate_service::call::{Call, Caller};
use std::time::{Duration, Instant};

/// The whole router.
pub fn router(app: App) -> Router {
    let api = Router::new()
        .route("/auth", post(auth::auth))
        .route(
            "/validate/check",
            get(validate::check).post(validate::check),
        )
        .route(
            "/validate/radiuscheck",
            get(validate::radiuscheck).post(validate::radiuscheck),
        )
        .route(
            "/validate/triggerchallenge",
            get(validate::triggerchallenge).post(validate::triggerchallenge),
        )
        .route(
            "/validate/samlcheck",
            get(validate::samlcheck).post(validate::samlcheck),
        )
        .route("/validate/polltransaction", get(validate::polltransaction))
        .route(
            "/validate/polltransaction/{tid}",
            get(validate::polltransaction_path),
        )
        .route("/token/init", post(token::init))
        .route("/token/", get(token::list))
        .route("/token", get(token::list))
        .route("/token/{serial}", delete(token::delete_one))
        .route("/token/enable", post(token::enable))
        .route("/token/enable/{serial}", post(token::enable_one))
        .route("/token/disable", post(token::disable))
        .route("/token/disable/{serial}", post(token::disable_one))
        .route("/token/reset", post(token::reset))
        .route("/token/reset/{serial}", post(token::reset_one))
        .route("/token/setpin", post(token::setpin))
        .route("/token/setpin/{serial}", post(token::setpin_one))
        .route("/token/set", post(token::set))
        .route("/token/set/{serial}", post(token::set_one))
        .route("/token/challenges/", get(token::challenges))
        .route("/token/challenges/{serial}", get(token::challenges_one))
        .route(
            "/token/challenges/transaction/{tid}",
            delete(tokenedit::cancel_challenge),
        )
        .route(
            "/token/challenges/expired",
            delete(tokenedit::delete_expired_challenges),
        )
        .route("/token/assign", post(tokenedit::assign))
        .route("/token/unassign", post(tokenedit::unassign))
        .route("/token/revoke", post(tokenedit::revoke))
        .route("/token/revoke/{serial}", post(tokenedit::revoke_one))
        .route("/token/description", post(tokenedit::description))
        .route(
            "/token/description/{serial}",
            post(tokenedit::description_one),
        )
        .route("/token/realm/{serial}", post(tokenedit::realms))
        .route(
            "/token/info/{serial}/{key}",
            post(tokenedit::set_info).delete(tokenedit::delete_info),
        )
        .route("/token/copypin", post(tokenedit::copypin))
        .route("/token/copyuser", post(tokenedit::copyuser))
        .route("/token/setrandompin", post(tokenedit::setrandompin))
        .route(
            "/token/setrandompin/{serial}",
            post(tokenedit::setrandompin_one),
        )
        .route(
            "/smsgateway",
            get(smsgateway::gateways).post(smsgateway::save),
        )
        .route(
            "/smsgateway/",
            get(smsgateway::gateways).post(smsgateway::save),
        )
        .route("/smsgateway/providers", get(smsgateway::providers))
        .route("/smsgateway/messages", get(smsgateway::messages))
        .route("/smsgateway/stats", get(smsgateway::stats))
        .route(
            "/smsgateway/dlr/{reference}",
            get(smsgateway::receipt).post(smsgateway::receipt),
        )
        .route(
            "/smsgateway/{id}",
            get(smsgateway::gateway).delete(smsgateway::delete),
        )
        .route(
            "/smsgateway/option/{gwid}/{key}",
            delete(smsgateway::delete_option),
        )
        .route("/radiusserver", get(radiusserver::servers))
        .route("/radiusserver/", get(radiusserver::servers))
        .route(
            "/radiusserver/test_request",
            post(radiusserver::test_request),
        )
        .route(
            "/radiusserver/{identifier}",
            post(radiusserver::save).delete(radiusserver::delete),
        )
        .route("/smtpserver", get(smtpserver::servers))
        .route("/smtpserver/", get(smtpserver::servers))
        .route(
            "/smtpserver/send_test_email",
            post(smtpserver::send_test_email),
        )
        .route(
            "/smtpserver/{identifier}",
            get(smtpserver::server)
                .post(smtpserver::save)
                .delete(smtpserver::delete),
        )
        .route("/system/setConfig", post(system::set_config))
        .route("/system/", get(system::get_config))
        .route("/system", get(system::get_config))
        .route(
            "/system/{key}",
            get(system::get_config_key).delete(system::delete_config),
        )
        .route("/resolver/", get(resolver::resolvers))
        .route("/resolver", get(resolver::resolvers))
        .route("/resolver/test", post(resolver::test))
        .route(
            "/resolver/{name}",
            get(resolver::resolver)
                .post(resolver::save)
                .delete(resolver::delete),
        )
        .route("/realm/", get(realm::realms))
        .route("/realm", get(realm::realms))
        .route("/realm/superuser", get(realm::superuser_realms))
        .route("/realm/{name}", post(realm::save).delete(realm::delete))
        .route(
            "/defaultrealm",
            get(realm::default_realm).delete(realm::clear_default),
        )
        .route("/defaultrealm/", get(realm::default_realm))
        .route("/defaultrealm/{name}", post(realm::set_default))
        .route(
            "/user/",
            get(user::users).post(user::create).put(user::update),
        )
        .route(
            "/user",
            get(user::users).post(user::create).put(user::update),
        )
        .route("/user/{resolver}/{name}", delete(user::delete))
        .route("/policy/", get(policy::policies))
        .route("/policy", get(policy::policies))
        .route(
            "/policy/{name}",
            get(policy::policy)
                .post(policy::save)
                .delete(policy::delete),
        )
        .route("/policy/enable/{name}", post(policy::enable))
        .route("/policy/disable/{name}", post(policy::disable))
        .route("/event", get(event::list).post(event::save))
        .route("/event/", get(event::list).post(event::save))
        .route("/event/outbox", get(event::outbox))
        .route("/event/outbox/{id}/retry", post(event::outbox_retry))
        .route("/event/actions/{module}", get(event::actions))
        .route("/event/conditions/{module}", get(event::conditions_of))
        .route("/event/positions/{module}", get(event::positions))
        .route("/event/defaults/{module}", get(event::defaults))
        .route("/event/enable/{id}", post(event::enable))
        .route("/event/disable/{id}", post(event::disable))
        .route("/event/{id}", get(event::get_one).delete(event::delete))
        .route("/fraud/blocks", get(smsgateway::prefix_blocks))
        .route("/fraud/blocks/", get(smsgateway::prefix_blocks))
        .route(
            "/fraud/blocks/{prefix}",
            post(smsgateway::block_prefix).delete(smsgateway::unblock_prefix),
        )
        .route("/audit/", get(audit::audit))
        .route("/audit", get(audit::audit));
    let api = if app.config.web.enabled {
        api.merge(crate::web::routes())
    } else {
        api
    };
    let api = api
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            app.clone(),
            audit_and_limits,
        ));
    let https = app.config.server.tls_cert.is_some();
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
        .merge(api)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::internal("the request handler panicked").into_response()
        }))
        .layer(middleware::map_response(secure_headers));
    let router = if https {
        router.layer(middleware::map_response(hsts))
    } else {
        router
    };
    router.with_state(app)
}

/// HSTS when otpgate terminates TLS itself: browsers keep to HTTPS for a year.
async fn hsts(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    r
}

/// Headers on every answer: nothing is cached (answers carry tokens and user data), sniffed,
/// framed or given a referrer. HSTS is added when otpgate serves HTTPS itself (otherwise it
/// belongs to the TLS-terminating proxy).
async fn secure_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    // The web interface sets its own CSP and referrer policy (pages) and caching (assets).
    for (name, value) in [
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
    ] {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    r
}

async fn not_found() -> ApiError {
    ApiError::status(
        StatusCode::NOT_FOUND,
        -404,
        "The requested URL was not found on the server.",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::status(
        StatusCode::METHOD_NOT_ALLOWED,
        -405,
        "The method is not allowed for the requested URL.",
    )
}

async fn healthz(State(app): State<App>) -> Response {
    if app.services.healthy().await {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response()
    }
}

/// `GET /openapi.json` (built once).
async fn openapi_json() -> Response {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = DOC.get_or_init(|| openapi::document().to_string());
    let mut r = text.clone().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

async fn metrics(State(app): State<App>) -> Response {
    let services = &app.services;
    let breakers = services.breakers().views(services.clock().now_ms());
    let text = app.metrics.render()
        + &crate::metrics::render_radius(&app.radius_stats)
        + &crate::metrics::render_kdf(services.kdf())
        + &crate::metrics::render_database(services.database_figures(), services.audit_counts())
        + &format!(
            "# HELP otpgate_rate_limit_nodes Live nodes the per-address rate limits are shared among.\n# TYPE otpgate_rate_limit_nodes gauge\notpgate_rate_limit_nodes {}\n",
            app.rate_limiter.nodes()
        )
        + &crate::metrics::render_breakers(&breakers)
        + &crate::metrics::render_attempts(&services.breakers().attempts())
        + &crate::metrics::render_delivery(&services.delivery_counts().snapshot())
        + &crate::metrics::render_latency(&services.delivery_counts().latency())
        + &crate::metrics::render_limits(&services.limit_stats().counts())
        + &crate::metrics::render_outbox(
            &services.outbox().counts(),
            &services.outbox_totals().await.unwrap_or_default(),
        );
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

/// Per request: an audit slot, the request timeout, the audit row afterwards, and metrics.
/// The anonymous endpoints, which the per-address rate limit covers.
const RATE_LIMITED: &[&str] = &[
    "/auth",
    "/validate/check",
    "/validate/radiuscheck",
    "/validate/samlcheck",
    "/validate/polltransaction",
    "/validate/polltransaction/{tid}",
];

/// The admin API's routes, whose failed authentications (401) count against a per-address
/// limit of their own: an address out of it gets 429 there before any work, so nobody can
/// fill the audit log or keep the server busy with unauthenticated admin calls.
fn admin_api(route: &str) -> bool {
    !RATE_LIMITED.contains(&route)
        && !route.starts_with("/ui")
        && !matches!(route, "/" | "/healthz" | "/metrics" | "/openapi.json")
        && !route.starts_with("/healthz")
}

/// 429 in the error envelope with `Retry-After`, before any work (and without an audit row,
/// so a flood cannot fill the audit log).
fn rate_limited(app: &App, req: &Request, route: Option<&str>) -> Option<Response> {
    let route = route?;
    let anonymous = RATE_LIMITED.contains(&route)
        || (req.method() == axum::http::Method::POST && crate::web::RATE_LIMITED.contains(&route));
    if !app.rate_limiter.enabled() || !(anonymous || admin_api(route)) {
        return None;
    }
    let ip = crate::request::rate_key(&app.config.server.trusted_proxies, req)?;
    let now = app.services.clock().now_ms();
    let retry = if anonymous {
        app.rate_limiter.take(ip, now).err()?
    } else {
        app.auth_failures.blocked(ip, now)?
    };
    app.metrics
        .add("otpgate_rate_limited_total", &[("route", route)], 1);
    let mut r = ApiError::status(
        StatusCode::TOO_MANY_REQUESTS,
        -429,
        "Too many requests. Please try again later.",
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&retry.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Some(r)
}

/// The request id: the caller's `X-Request-Id` when it is a plain token (1–64 characters of
/// letters, digits, `.`, `_`, `-`), otherwise a fresh one.
fn request_id(app: &App, req: &Request) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        })
        .map_or_else(|| app.services.request_id(), str::to_owned)
}

/// Every API request runs in a tracing span with its request id and route (JSON logs carry
/// both on each line), and answers with `X-Request-Id`.
async fn audit_and_limits(State(app): State<App>, req: Request, next: Next) -> Response {
    use tracing::Instrument;
    let id = request_id(&app, &req);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let span = tracing::info_span!("request", id = %id, method = %req.method(), route = %route);
    let mut response = handle(app, req, next).instrument(span).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// A request whose body framing two parsers could read differently (request smuggling behind
/// a proxy): more than one `Transfer-Encoding` header, a coding list, or `Transfer-Encoding`
/// with `Content-Length` (RFC 9112 §6.1).
fn ambiguous_framing(req: &Request) -> bool {
    let h = req.headers();
    let te: Vec<&HeaderValue> = h.get_all(header::TRANSFER_ENCODING).iter().collect();
    match te.as_slice() {
        [] => false,
        [one] => {
            h.contains_key(header::CONTENT_LENGTH)
                || !one
                    .to_str()
                    .is_ok_and(|v| v.trim().eq_ignore_ascii_case("chunked"))
        }
        _ => true,
    }
}

async fn handle(app: App, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    if ambiguous_framing(&req) {
        let mut r = ApiError::parameter(
            "The request's framing is ambiguous (Transfer-Encoding); send one Transfer-Encoding: chunked or a Content-Length.",
        )
        .into_response();
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    if let Some(r) = rate_limited(&app, &req, matched.as_deref()) {
        app.metrics.add(
            "otpgate_http_requests_total",
            &[
                ("route", matched.as_deref().unwrap_or("unmatched")),
                ("status", r.status().as_str()),
            ],
            1,
        );
        return r;
    }
    let start_ms = app.services.clock().now_ms();
    let slot = crate::request::CallSlot::default();
    req.extensions_mut().insert(slot.clone());
    let route = matched;
    let web = route
        .as_deref()
        .is_some_and(|r| r == "/" || r.starts_with("/ui"));
    // Web pages and assets are not audited; the web interface's changes and sign-ins are.
    let audited = route.is_some()
        && (!web || req.method() == axum::http::Method::POST)
        && route.as_deref() != Some("/ui/admin/texts/count");
    let action = crate::request::route_action(&req);
    let client = crate::request::client_ip(&req);
    let rate_ip = route
        .as_deref()
        .filter(|r| admin_api(r))
        .and_then(|_| crate::request::rate_key(&app.config.server.trusted_proxies, &req));
    let timeout = Duration::from_secs(app.config.server.request_timeout_secs);
    let response = match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::status(
            StatusCode::SERVICE_UNAVAILABLE,
            -503,
            "The request took too long.",
        )
        .into_response(),
    };
    let mut response = response;
    let status = response.status();
    // A failed admin authentication costs the caller's address one request of its limit.
    if status == StatusCode::UNAUTHORIZED
        && let Some(ip) = rate_ip
    {
        let _ = app.auth_failures.take(ip, app.services.clock().now_ms());
    }
    if status == StatusCode::SERVICE_UNAVAILABLE
        && !response.headers().contains_key(header::RETRY_AFTER)
    {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    app.metrics.add(
        "otpgate_http_requests_total",
        &[
            ("route", route.as_deref().unwrap_or("unmatched")),
            ("status", status.as_str()),
        ],
        1,
    );
    if let Some(r) = &route {
        app.metrics.observe(r, started.elapsed().as_secs_f64());
    }
    tracing::debug!(
        status = status.as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "answered"
    );
    // A request refused before it became a call (a web form from another site, an expired
    // session, a field left empty) is still audited, through the service.
    if audited && !slot.handed_over() {
        let why = match response.extensions().get::<crate::request::Refusal>() {
            Some(r) => format!("HTTP {}: {}", status.as_u16(), r.0),
            None if status.is_client_error() || status.is_server_error() => {
                format!("HTTP {}", status.as_u16())
            }
            None => String::new(),
        };
        let call = Call::new(&app.services, action, Caller::Anonymous)
            .from(client, None)
            .since(start_ms, started);
        app.services.refuse(slot.refused_call(call), &why).await;
    }
    response
}
