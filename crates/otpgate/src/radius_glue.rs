//! The RADIUS handler: an Access-Request is a `validate_check` call of the same service as
//! `/validate/check` (so lockout, policies, events and audit apply), and its outcome becomes
//! Accept / Challenge / Reject. `State` is the transaction id, sealed with the key ring.

use crate::state::App;
use otpgate_radius::server::{Handler, Reply, Request};
use otpgate_service::ServiceError;
use otpgate_service::call::{Call, Caller};
use otpgate_service::validate::{CheckOutcome, CheckRequest};

/// Plugs [`App`]'s services into the RADIUS server.
#[derive(Debug, Clone)]
pub struct RadiusHandler {
    /// The application.
    pub app: App,
}

/// The audit's action of every RADIUS request.
const ACTION: &str = "RADIUS Access-Request";

impl Handler for RadiusHandler {
    async fn handle(&self, req: Request) -> Reply {
        let services = &self.app.services;
        let mut call = Call::new(services, ACTION, Caller::Anonymous)
            .event("validate_check")
            .from(Some(req.client), None)
            .subject(&req.user_name, req.realm.as_deref().unwrap_or_default(), "");
        let transaction_id = match &req.state {
            Some(state) => match services.open_state(state) {
                Some(tid) => Some(tid),
                None => {
                    // Refused before any work (and without events), audited.
                    call.event = None;
                    call = call.refuse(ServiceError::Parameter("invalid State".into()));
                    None
                }
            },
            None => None,
        };
        let invalid_state = call.refused.is_some();
        let check = CheckRequest {
            user: Some(req.user_name.clone()),
            realm: req.realm.clone(),
            pass: req.password.clone(),
            transaction_id,
            ..Default::default()
        };
        let result = services
            .run(call, None, move |s, cx| Box::pin(s.check(check, cx)))
            .await;
        let reply = match result {
            Ok(o) => {
                let message = Some(o.message()).filter(|m| !m.is_empty());
                match o {
                    CheckOutcome::Accept { .. } => Reply::Accept { message },
                    CheckOutcome::Challenge(c) => match services.seal_state(&c.transaction_id) {
                        Ok(state) => Reply::Challenge {
                            state,
                            message: message.unwrap_or_default(),
                        },
                        Err(_) => Reply::Reject {
                            message: Some("Internal error.".into()),
                        },
                    },
                    CheckOutcome::Reject(_) => Reply::Reject { message },
                }
            }
            Err(_) if invalid_state => Reply::Reject {
                message: Some("The challenge is not valid.".into()),
            },
            Err(e) => {
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
        reply
    }
}
