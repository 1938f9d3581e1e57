//! The RADIUS handler: maps an Access-Request onto the same validation service as
//! `/validate/check` (so lockout, policies and audit apply) and its outcome onto
//! Accept / Challenge / Reject. `State` is the transaction id, sealed with the key ring.

use crate::app::App;
use otpgate_radius::server::{Handler, Reply, Request};
use otpgate_service::ServiceError;
use otpgate_service::audit::AuditEntry;
use otpgate_service::events::{CallResult, EventInput};
use otpgate_service::validate::{Authentication, CheckRequest};
use std::time::Instant;

/// Plugs [`App`]'s services into the RADIUS server.
#[derive(Debug, Clone)]
pub struct RadiusHandler {
    /// The application.
    pub app: App,
}

impl Handler for RadiusHandler {
    async fn handle(&self, req: Request) -> Reply {
        let started = Instant::now();
        let services = &self.app.services;
        let mut audit = AuditEntry {
            ts: services.clock().now_ms(),
            action: "RADIUS Access-Request".into(),
            client: req.client.to_string(),
            ..Default::default()
        };
        let transaction_id = match &req.state {
            Some(state) => match services.open_state(state) {
                Some(tid) => Some(tid),
                None => {
                    audit.info = "invalid State".into();
                    services.write_audit(&audit).await;
                    return Reply::Reject {
                        message: Some("The challenge is not valid.".into()),
                    };
                }
            },
            None => None,
        };
        let check = CheckRequest {
            user: Some(req.user_name.clone()),
            realm: req.realm.clone(),
            pass: req.password.clone(),
            transaction_id,
            client: Some(req.client),
            ..Default::default()
        };
        let result = services.check(check, &mut audit).await;
        if let Ok(r) = &result {
            // RADIUS logins are `validate_check`s for the event handlers too.
            let mut params = otpgate_service::Params::new();
            params.insert("user", req.user_name.clone());
            if let Some(realm) = &req.realm {
                params.insert("realm", realm.clone());
            }
            let call = CallResult::of_auth(r);
            let input = EventInput {
                event: "validate_check",
                params: &params,
                subject: &audit,
                admin: None,
                client_ip: Some(req.client),
                user_agent: None,
                action: "RADIUS Access-Request",
                result: Some(&call),
            };
            services.fire_event("post", &input).await;
        }
        let reply = match &result {
            Ok(r) => {
                audit.authentication = r.authentication.as_str().into();
                audit.success = r.authentication == Authentication::Accept;
                let message = r.message().map(str::to_owned);
                if audit.info.is_empty() {
                    audit.info = message.clone().unwrap_or_default();
                }
                match (r.authentication, r.transaction_id()) {
                    (Authentication::Accept, _) => Reply::Accept { message },
                    (Authentication::Challenge, Some(tid)) => match services.seal_state(tid) {
                        Ok(state) => Reply::Challenge {
                            state,
                            message: message.unwrap_or_default(),
                        },
                        Err(_) => Reply::Reject {
                            message: Some("Internal error.".into()),
                        },
                    },
                    _ => Reply::Reject { message },
                }
            }
            Err(e) => {
                audit.info = e.to_string();
                let message = match e {
                    // The NAS's user must not learn which names exist: an unknown user is
                    // answered like a wrong password (the audit keeps the reason).
                    ServiceError::User(_) => "wrong otp pin".to_owned(),
                    ServiceError::Internal(_)
                    | ServiceError::Resolver(_)
                    | ServiceError::Unavailable
                    | ServiceError::SendFailed => "The request could not be processed.".to_owned(),
                    other => other.to_string(),
                };
                Reply::Reject {
                    message: Some(message),
                }
            }
        };
        let outcome = match &reply {
            Reply::Accept { .. } => "ACCEPT",
            Reply::Reject { .. } => "REJECT",
            Reply::Challenge { .. } => "CHALLENGE",
        };
        self.app.metrics.add(
            "otpgate_auth_total",
            &[("endpoint", "radius"), ("result", outcome)],
            1,
        );
        audit.duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        services.write_audit(&audit).await;
        reply
    }
}
