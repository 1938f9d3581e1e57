//! privacyIDEA's parameter merging: query string, then the body (form or JSON — JSON also
//! when undeclared but it parses), later sources winning. Path parameters are passed to the
//! services separately by the handlers.

use crate::params::Params;
use crate::request::{CallSlot, client_ip, end_user, route_action};
use crate::state::App;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use otpgate_service::call::{Call, Caller, Outcome, RequestData, Scope, Work};
use otpgate_service::{ServiceError, Services};
use serde_json::Value;
use std::net::IpAddr;

/// The merged parameters, headers, client address and call slot of a request.
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
    slot: CallSlot,
    /// Why the body could not be read (the call is refused with it, and audited).
    fault: Option<ServiceError>,
    /// The token serial of the path, when the route has one.
    path_serial: Option<String>,
}

impl FromRequest<App> for Pi {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, app: &App) -> Result<Self, Self::Rejection> {
        let client = client_ip(&req);
        let route = route_action(&req);
        let slot = req
            .extensions()
            .get::<CallSlot>()
            .cloned()
            .unwrap_or_default();
        let (parts, body) = req.into_parts();
        let limit = app.config.server.max_body_bytes;
        let ctype = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let mut params = Params::new();
        let fault = match axum::body::to_bytes(body, limit).await {
            // The connection's bytes did not make a body (a bad chunk, a bare LF ending a
            // chunk line, a connection cut off): not the size.
            Err(e) if from_hyper(&e) => Some(ServiceError::Parameter(
                "The request body could not be read: it is not framed correctly.".into(),
            )),
            Err(_) => Some(ServiceError::TooLarge(format!(
                "The request body is larger than {limit} bytes."
            ))),
            Ok(bytes) => match otpgate_core::params::parse(parts.uri.query(), ctype, &bytes) {
                Ok(pairs) => {
                    for (k, v) in pairs {
                        params.insert(k, v);
                    }
                    None
                }
                Err(e) => Some(ServiceError::Parameter(e.to_string())),
            },
        };
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
            slot,
            fault,
            path_serial: None,
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

    /// The token serial the route's path names (the `pre` event's subject).
    pub fn with_serial(mut self, serial: &str) -> Self {
        self.path_serial = Some(serial.to_owned());
        self
    }

    /// The token serial the route's path names.
    pub fn path_serial(&self) -> Option<&str> {
        self.path_serial.as_deref()
    }

    /// The call this request is, for the service.
    pub fn call(&self, services: &Services, event: Option<&'static str>) -> Call {
        let p = |k: &str| self.params.get(k).unwrap_or_default();
        let serial = self.path_serial.as_deref().unwrap_or_else(|| p("serial"));
        let ua = self
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        let mut call = Call::new(
            services,
            &self.route,
            Caller::Bearer(self.token().map(str::to_owned)),
        )
        .from(self.client, self.end_user)
        .user_agent(ua)
        .subject(p("user"), p("realm"), serial)
        .request(RequestData::new(
            self.headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
            self.params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ));
        call.event = event;
        if p("user").is_empty() && !p("username").is_empty() {
            call.account = Some(p("username").to_owned());
        }
        if let Some(fault) = &self.fault {
            call = call.refuse(fault.clone());
        }
        call
    }

    /// Runs this request's call (see [`Pi::run`]) and answers its outcome as privacyIDEA's
    /// `result.value`.
    pub async fn answer<T, F>(
        &self,
        app: &App,
        right: Option<&'static str>,
        work: F,
    ) -> Result<axum::response::Response, super::ApiError>
    where
        T: Outcome + Into<Value> + Send + 'static,
        F: for<'a> FnOnce(&'a Services, &'a mut Scope) -> Work<'a, T> + Send + 'static,
    {
        let value = self.run(app, right, None, work).await?;
        Ok(self.reply(value.into()))
    }

    /// Runs this request's call through the service, which checks `right` (an admin right;
    /// None for anonymous endpoints), fires `event`, runs `work` and writes the audit row.
    pub async fn run<T, F>(
        &self,
        app: &App,
        right: Option<&'static str>,
        event: Option<&'static str>,
        work: F,
    ) -> Result<T, ServiceError>
    where
        T: Outcome + Send + 'static,
        F: for<'a> FnOnce(&'a Services, &'a mut Scope) -> Work<'a, T> + Send + 'static,
    {
        self.slot.hand_over();
        let call = self.call(&app.services, event);
        app.services.run(call, right, work).await
    }
}

/// Whether a body error came from hyper reading the connection (not from the size limit).
fn from_hyper(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<hyper::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}
