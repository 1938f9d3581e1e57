//! `/validate/triggerchallenge` (an admin sends a challenge without the user's PIN) and
//! `/validate/polltransaction`.

use super::{
    CheckOutcome, Ctx, Live, Rejected, TriggerRequest, Triggered, named, note_policies,
    unfit_messages, unfit_reason, unique_join,
};
use crate::call::{Outcome, Scope};
use crate::facts::RequestFacts;
use crate::tokens::owner_of;
use crate::{Result, ServiceError, Services};
use otpgate_store::TokenRow;
use std::sync::Mutex;

/// The state of a transaction as `/validate/polltransaction` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeStatus {
    /// Not answered out of band (an SMS challenge never is).
    Pending,
}

impl ChallengeStatus {
    /// privacyIDEA's `challenge_status`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeStatus::Pending => "pending",
        }
    }
}

impl Outcome for ChallengeStatus {
    fn success(&self) -> bool {
        false
    }
}

impl Services {
    /// `/validate/triggerchallenge` (admin): a challenge for every fit token, without a PIN.
    pub async fn trigger_challenge(
        &self,
        req: TriggerRequest,
        cx: &mut Scope,
    ) -> Result<Triggered> {
        let used = Mutex::new(Vec::new());
        let r = self.trigger_with(req, cx, &used).await;
        note_policies(&mut cx.audit, &used);
        r
    }

    async fn trigger_with(
        &self,
        req: TriggerRequest,
        cx: &mut Scope,
        used: &Mutex<Vec<String>>,
    ) -> Result<Triggered> {
        let (user_param, serial_param) = named(&req.user, &req.serial)?;
        let settings = self.settings().await?;
        let policies = &self.policies_now(&settings.policies);
        let cfg = &settings.config;
        let request = cx.request();
        let realm_param = req
            .realm
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        let (user, mut tokens) = match user_param {
            Some(login) => {
                let (login, realm, user) = self.lookup_user(&settings, login, realm_param).await?;
                let user = user.ok_or_else(|| {
                    ServiceError::User(format!("User <{login}@{realm}> does not exist."))
                })?;
                // The admin's `triggerchallenge` policies must reach the user.
                cx.reach(&user.target())?;
                cx.audit.user = user.login.clone();
                cx.audit.realm = user.realm.clone();
                let tokens = self.store().tokens_of_user(&owner_of(&user)).await?;
                (Some(user), tokens)
            }
            None => {
                let t = self
                    .store()
                    .token_by_serial(serial_param.unwrap_or_default())
                    .await?;
                let user = match t.as_ref().and_then(|t| t.owner.clone()) {
                    Some(o) => self.user_by_id(&o.resolver, &o.user_id, &o.realm).await?,
                    None => None,
                };
                if let Some(t) = &t {
                    self.reach_token(cx, t, false).await?;
                }
                (user, t.into_iter().collect())
            }
        };
        let audit = &mut cx.audit;
        if let Some(s) = serial_param {
            tokens.retain(|t| t.serial == s);
        }
        let mut tokens: Vec<TokenRow> = tokens
            .into_iter()
            .filter(|t| t.tokentype == "sms" && !t.revoked && t.active)
            .collect();
        audit.serial = tokens
            .iter()
            .map(|t| t.serial.as_str())
            .collect::<Vec<_>>()
            .join(",");
        for t in &mut tokens {
            self.clear_expired_lockout(t, cfg).await?;
        }
        let named = serial_param.and_then(|s| tokens.iter().find(|t| t.serial == s).cloned());
        let (fit, locked): (Vec<TokenRow>, Vec<TokenRow>) =
            tokens.into_iter().partition(|t| unfit_reason(t).is_none());
        let ctx = Ctx {
            user: user.as_ref(),
            policies,
            cfg,
            client: None,
            end_user: None,
            used,
            facts: RequestFacts {
                user: user.as_ref(),
                token: named.as_ref(),
                request: request.as_deref(),
            },
            realm_resolvers: settings.realm_resolvers(user.as_ref().map(|u| u.realm.as_str())),
            stale: Vec::new(),
        };
        ctx.check_authorized()?;
        let mut fit = fit;
        ctx.application_tokentype(&mut fit, req.tokentype.as_deref())?;
        let live: Vec<Live> = fit
            .into_iter()
            .map(|t| self.live(t))
            .collect::<Result<_>>()?;
        if live.is_empty() {
            let attempt = super::Challenges {
                messages: unfit_messages(&locked),
                ..Default::default()
            };
            return Ok(Triggered(CheckOutcome::Reject(Rejected {
                message: unique_join(&attempt.messages),
                attempt: Some(attempt),
                ..Default::default()
            })));
        }
        let refs: Vec<&Live> = live.iter().collect();
        let outcome = self
            .create_challenges(&refs, &ctx, req.challenge.as_deref(), req.exception, audit)
            .await?;
        let triggered = Triggered(outcome);
        audit.success = triggered.count() > 0;
        Ok(triggered)
    }

    /// `/validate/polltransaction`: SMS challenges are never "answered" out of band, so a
    /// transaction is always `pending` (as in privacyIDEA).
    pub async fn poll_transaction(&self, tid: Option<&str>) -> Result<ChallengeStatus> {
        tid.map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ServiceError::missing("transaction_id"))?;
        Ok(ChallengeStatus::Pending)
    }
}
