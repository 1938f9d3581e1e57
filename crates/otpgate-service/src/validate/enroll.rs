//! The OTP of an enrollment that waits for verification (`rollout_state` `verify`): its SMS
//! goes out like a login's (send limits, toll-fraud rules, SMS text), and its answer is
//! consumed exactly once.

use super::{Ctx, SEND_FAILED, max_wrong, note_policies};
use crate::audit::AuditEntry;
use crate::facts::RequestFacts;
use crate::gateways::SmsFailure;
use crate::limits::{LIMITED, NUMBER_REFUSED};
use crate::users::User;
use crate::{Result, ServiceError, Services};
use otpgate_store::TokenRow;
use std::net::IpAddr;
use std::sync::Mutex;

impl Services {
    /// Sends the first OTP of an enrollment to the token in `verify`; returns the number it
    /// went to.
    pub(crate) async fn send_enrollment_otp(
        &self,
        user: Option<&User>,
        row: TokenRow,
        client: Option<IpAddr>,
        audit: &mut AuditEntry,
    ) -> Result<String> {
        let settings = self.settings().await?;
        let policies = self.policies_now(&settings.policies);
        let used = Mutex::new(Vec::new());
        let ctx = Ctx {
            user,
            policies: &policies,
            cfg: &settings.config,
            client,
            end_user: client,
            used: &used,
            facts: RequestFacts {
                user,
                token: Some(&row),
                request: None,
            },
            realm_resolvers: settings.realm_resolvers(user.map(|u| u.realm.as_str())),
            stale: Vec::new(),
        };
        let t = self.live(row.clone())?;
        let tid = self.rng().digits(20)?;
        let sent = self.send_challenge(&t, &tid, &ctx, None).await;
        note_policies(audit, &used);
        match sent {
            Ok(sent) => {
                audit.action_detail = format!("{} via {}", t.row.serial, sent.gateway);
                Ok(sent.phone)
            }
            Err(SmsFailure::Service(e)) => Err(e),
            Err(SmsFailure::Blocked(_)) => Err(ServiceError::Parameter(NUMBER_REFUSED.into())),
            Err(SmsFailure::Limited(_)) => Err(ServiceError::Parameter(LIMITED.into())),
            Err(SmsFailure::Unfit(why)) => Err(ServiceError::Parameter(why.into())),
            Err(e) => {
                tracing::warn!(serial = %t.row.serial, reason = %e, "enrollment SMS could not be sent");
                audit.info = format!("{SEND_FAILED}: {e}");
                Err(ServiceError::Parameter(SEND_FAILED.into()))
            }
        }
    }

    /// Answers the live challenge of a token in `verify` with `otp`: true when it matched and
    /// was consumed (exactly once); a wrong answer counts against the challenge's attempts.
    pub(crate) async fn answer_enrollment_challenge(
        &self,
        row: TokenRow,
        otp: &str,
    ) -> Result<bool> {
        let cfg = self.settings().await?.config.clone();
        let t = self.live(row)?;
        if let Some(c) = self.matching_live_challenge(&t, otp, &cfg).await? {
            return self.consume(&t, &c, &cfg, false).await;
        }
        let now = self.clock().now_ms();
        for c in self.store().challenges_live_by_token(t.row.id, now).await? {
            self.store()
                .challenge_inc_received(c.id, max_wrong(&cfg))
                .await?;
        }
        Ok(false)
    }
}
