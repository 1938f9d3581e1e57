//! Challenges and their SMS: the number a token's SMS goes to (with the toll-fraud guard),
//! the send limits, the SMS text and its tags, one challenge per token (counted, opened and
//! sent), the resend cooldown that re-uses a live challenge, and `smsautosend`.

use super::attempts::Crowd;
use super::{
    Challenges, CheckOutcome, Ctx, DEFAULT_PROMPT, Live, Rejected, SEND_FAILED, SentChallenge,
    unique_join,
};
use crate::audit::AuditEntry;
use crate::gateways::SmsFailure;
use crate::limits::{LIMITED, NUMBER_REFUSED, SendKeys, send_number};
use crate::users::User;
use crate::{Result, ServiceError, Services};
use otpgate_core::sms_text::SMS_TAG_SAMPLES;
use otpgate_core::template::{self, Tags};
use otpgate_store::{ChallengeRow, Opened, Resent};

/// The gateway a token's SMS goes through: its own `sms.identifier`, else the default.
fn gateway_of(t: &Live, ctx: &Ctx<'_>) -> std::result::Result<String, SmsFailure> {
    t.row
        .info
        .get("sms.identifier")
        .cloned()
        .or_else(|| ctx.cfg.sms_identifier.clone())
        .ok_or_else(|| {
            SmsFailure::Send(otpgate_gateways::SendError::Config(
                "No SMS gateway is configured (sms.identifier).".into(),
            ))
        })
}

/// One `@` between a local part and a domain with a dot, nothing blank or unprintable (the
/// SMTP library checks the rest).
fn plausible_email(address: &str) -> bool {
    matches!(address.split_once('@'), Some((local, domain))
        if !local.is_empty() && domain.contains('.') && !domain.contains('@'))
        && !address.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// An e-mail address as a prompt shows it: the first character of the local part, the
/// domain (`a***@example.org`).
pub(super) fn redact_email(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// The prompt when a PIN request is answered with a live challenge whose SMS went out less
/// than the resend cooldown ago (`sms_challenge_reused_text`; `{sent_ago}`: seconds).
pub const REUSED_PROMPT: &str =
    "The code sent {sent_ago} seconds ago is still valid. Enter the OTP from the SMS:";

/// What re-sending a live challenge's code came to.
enum Resend {
    /// Sent again.
    Sent { gateway: String, phone: String },
    /// Its SMS went out within the cooldown (or another request just re-sent it).
    NotDue,
    /// A send limit refused it.
    Refused(crate::limits::Refusal),
    /// The number or the gateway failed (noted in the audit).
    Failed(String),
}

/// Where one token's SMS went: the gateway that took it and the number; or, when every
/// gateway failed and `sms_email_fallback` allows it, the user's e-mail address (redacted).
pub(super) struct Sent {
    pub(super) gateway: String,
    pub(super) phone: String,
    pub(super) email: Option<String>,
}

/// The prompt when the code went by e-mail (`{email}`: the address, redacted).
pub const EMAILED_PROMPT: &str =
    "The SMS could not be sent. Enter the code sent by e-mail to {email}:";

impl Services {
    /// Opens a challenge of `t` in transaction `tid` and sends its SMS: the number (refused
    /// by the toll-fraud guard or a blocked prefix), the send limits, the counter step and
    /// the challenge row in one transaction, then the SMS. A failed send removes the
    /// challenge and gives the count back.
    pub(super) async fn send_challenge(
        &self,
        t: &Live,
        tid: &str,
        ctx: &Ctx<'_>,
        challenge: Option<&str>,
    ) -> std::result::Result<Sent, SmsFailure> {
        let phone = self.phone_of(t, ctx).await?;
        let keys = self.send_keys(t, ctx, &phone);
        self.challenge_one(t, tid, ctx, challenge, phone, &keys, None)
            .await
    }

    /// Sends one token's SMS and stores its challenge.
    #[allow(clippy::too_many_arguments)]
    async fn challenge_one(
        &self,
        t: &Live,
        tid: &str,
        ctx: &Ctx<'_>,
        challenge: Option<&str>,
        phone: String,
        keys: &SendKeys,
        recent_since: Option<i64>,
    ) -> std::result::Result<Sent, SmsFailure> {
        let svc = |e: ServiceError| SmsFailure::Service(e);
        let gateway = gateway_of(t, ctx)?;
        // Counted, the counter advanced and the challenge stored in one transaction before
        // the SMS goes out: an answer that arrives while the gateway is still confirming finds
        // the challenge, and a request cut off mid-send leaves no SMS without its challenge.
        let now = self.clock().now_ms();
        let expires = now + ctx.cfg.challenge_validity_secs * 1000;
        let mut crowd = Crowd::default();
        let opened = loop {
            let opened = self
                .store()
                .challenge_open(
                    &keys.windows(),
                    t.row.id,
                    tid,
                    &t.row.serial,
                    challenge.unwrap_or_default(),
                    now,
                    expires,
                    recent_since,
                )
                .await
                .map_err(|e| svc(e.into()))?;
            // Full of parallel attempts in flight, not locked out: wait for them.
            if opened == Opened::Unfit
                && t.row.active
                && !t.row.revoked
                && crowd.wait_for(self, &t.row).await.map_err(svc)?
            {
                continue;
            }
            break opened;
        };
        let (counter, challenge_id) = match opened {
            Opened::Open { counter, id } => (counter, id),
            Opened::Unfit => return Err(SmsFailure::Unfit("Failcounter exceeded")),
            Opened::Recent => return Err(SmsFailure::Recent),
            Opened::Refused(i) => {
                return Err(SmsFailure::Limited(self.refusal(keys, i).map_err(svc)?));
            }
        };
        let sent = match self
            .send_code(t, ctx, &gateway, &phone, counter, challenge, tid)
            .await
        {
            Ok(delivery) => Ok(Sent {
                gateway: delivery.gateway,
                phone,
                email: None,
            }),
            Err(SmsFailure::Send(why)) => {
                match self
                    .email_fallback(t, ctx, &phone, counter, challenge)
                    .await
                {
                    Ok(Some((smtp, to))) => Ok(Sent {
                        gateway: smtp,
                        phone,
                        email: Some(to),
                    }),
                    Ok(None) => Err(SmsFailure::Send(why)),
                    Err(e) => {
                        tracing::warn!(serial = %t.row.serial, error = %e, "the code could not go by e-mail either");
                        Err(SmsFailure::Send(why))
                    }
                }
            }
            Err(e) => Err(e),
        };
        match sent {
            Ok(sent) => Ok(sent),
            Err(e) => {
                self.store()
                    .challenge_delete(challenge_id)
                    .await
                    .map_err(|e| svc(e.into()))?;
                self.give_back_send(keys).await.map_err(svc)?;
                Err(e)
            }
        }
    }

    /// The SMS text (`smstext`) with the OTP of HOTP `counter`, and that OTP.
    fn code_text(
        &self,
        t: &Live,
        ctx: &Ctx<'_>,
        phone: &str,
        counter: i64,
        challenge: Option<&str>,
    ) -> std::result::Result<(String, String), SmsFailure> {
        let svc = |e: ServiceError| SmsFailure::Service(e);
        let template = ctx
            .text("smstext")
            .map_err(svc)?
            .unwrap_or_else(|| "<otp>".to_owned());
        let otp = t.otp(counter).map_err(svc)?;
        let mut tags = self.tags(t, ctx, phone);
        tags.insert("otp", otp.to_string());
        tags.insert("challenge", challenge.unwrap_or_default().to_owned());
        debug_assert_eq!(tags.len(), SMS_TAG_SAMPLES.len());
        let text = template::render_sms_text(&template, &tags).map_err(|e| {
            SmsFailure::Send(otpgate_gateways::SendError::Config(format!(
                "The SMS text cannot be rendered: {e}"
            )))
        })?;
        Ok((text, otp))
    }

    /// `sms_email_fallback=<SMTP server>`: when no gateway took the SMS, the same text (the
    /// same code) goes by e-mail through that central SMTP server to the address the token's
    /// owner has in the user store. The server and the redacted address; None when the
    /// policy is not set or the user has no address.
    async fn email_fallback(
        &self,
        t: &Live,
        ctx: &Ctx<'_>,
        phone: &str,
        counter: i64,
        challenge: Option<&str>,
    ) -> Result<Option<(String, String)>> {
        // A caller who has gone gets no mail (as no SMS: `ABANDONED`).
        if crate::call::abandoned() {
            return Ok(None);
        }
        let Some(smtp) = ctx
            .text("sms_email_fallback")?
            .filter(|s| !s.trim().is_empty())
        else {
            return Ok(None);
        };
        let owner = match &t.row.owner {
            Some(o) => self.user_by_id(&o.resolver, &o.user_id, &o.realm).await?,
            None => ctx.user.cloned(),
        };
        let Some(to) = owner
            .map(|u| u.email.trim().to_owned())
            .filter(|e| plausible_email(e))
        else {
            return Ok(None);
        };
        let server = self.smtp_server_def(smtp.trim()).await?.ok_or_else(|| {
            ServiceError::Parameter(format!("sms_email_fallback: no SMTP server {smtp}"))
        })?;
        let (text, _otp) = self
            .code_text(t, ctx, phone, counter, challenge)
            .map_err(|e| ServiceError::Parameter(e.to_string()))?;
        // The mail gets the SMS's budget again, not the SMTP server's own (longer) timeout.
        let budget =
            std::time::Duration::from_millis(u64::try_from(ctx.cfg.send_budget_ms).unwrap_or(4000));
        tokio::time::timeout(
            budget,
            otpgate_gateways::send_mail(&server, &to, "Your login code", &text),
        )
        .await
        .map_err(|_| ServiceError::Parameter("e-mail: the SMTP server took too long".into()))?
        .map_err(|e| ServiceError::Parameter(format!("e-mail: {e}")))?;
        Ok(Some((
            format!("e-mail ({})", smtp.trim()),
            redact_email(&to),
        )))
    }

    /// Renders the SMS text with the OTP of HOTP `counter` and sends it through `gateway`
    /// (recorded as the SMS of the transaction `tid`).
    #[allow(clippy::too_many_arguments)]
    async fn send_code(
        &self,
        t: &Live,
        ctx: &Ctx<'_>,
        gateway: &str,
        phone: &str,
        counter: i64,
        challenge: Option<&str>,
        tid: &str,
    ) -> std::result::Result<otpgate_gateways::Delivery, SmsFailure> {
        let (text, otp) = self.code_text(t, ctx, phone, counter, challenge)?;
        let (text, otp) = (zeroize::Zeroizing::new(text), zeroize::Zeroizing::new(otp));
        let about = crate::gateways::SendAbout {
            message_id: None,
            transaction_id: tid.to_owned(),
            serial: t.row.serial.clone(),
            user: ctx.user.map(|u| u.login.clone()).unwrap_or_default(),
            realm: ctx.user.map(|u| u.realm.clone()).unwrap_or_default(),
        };
        let delivery = self
            .send_sms(ctx.cfg, gateway, phone, &text, Some(&otp), &about)
            .await?;
        if let Some(reference) = &delivery.reference
            && let Some(chain) = self.failover_chain(gateway).await
        {
            self.follow_delivery(
                crate::delivery::Follow {
                    primary: gateway.to_owned(),
                    gateway: delivery.gateway.clone(),
                    reference: reference.clone(),
                    external_id: delivery.external_id.clone(),
                    phone: phone.to_owned(),
                    text,
                    otp,
                    keys: self.send_keys(t, ctx, phone),
                    cfg: ctx.cfg.clone(),
                    about,
                },
                chain,
            );
        }
        Ok(delivery)
    }

    /// The number a token's SMS goes to as stored: its own `phone`, else its owner's first
    /// mobile; with the realm whose number rules apply.
    pub(super) async fn raw_phone(
        &self,
        t: &Live,
        ctx: &Ctx<'_>,
    ) -> std::result::Result<(String, String), SmsFailure> {
        let realm = t
            .row
            .owner
            .as_ref()
            .map(|o| o.realm.clone())
            .or_else(|| ctx.user.map(|u| u.realm.clone()))
            .unwrap_or_default();
        if let Some(p) = t.row.info.get("phone").filter(|p| !p.is_empty()) {
            return Ok((realm, p.clone()));
        }
        let owner = match &t.row.owner {
            Some(o) => self
                .user_by_id(&o.resolver, &o.user_id, &o.realm)
                .await
                .map_err(SmsFailure::Service)?,
            None => None,
        };
        let raw = owner
            .and_then(|u| u.mobile.first().cloned())
            .ok_or_else(|| {
                SmsFailure::Send(otpgate_gateways::SendError::Config(
                    "The token has no phone number.".into(),
                ))
            })?;
        Ok((realm, raw))
    }

    /// The number a token's SMS goes to, in E.164 when it parses, and refused by the
    /// toll-fraud guard (number type, country, blocked prefix).
    async fn phone_of(&self, t: &Live, ctx: &Ctx<'_>) -> std::result::Result<String, SmsFailure> {
        let (realm, raw) = self.raw_phone(t, ctx).await?;
        let phone = send_number(ctx.cfg, &realm, &raw).map_err(|r| {
            self.limit_stats().hit(r.rule);
            SmsFailure::Blocked(r)
        })?;
        match self
            .check_prefix(ctx.cfg, &phone)
            .await
            .map_err(SmsFailure::Service)?
        {
            Some(r) => Err(SmsFailure::Blocked(r)),
            None => Ok(phone),
        }
    }

    /// The send-limit counters of one SMS of `t` to `phone`.
    fn send_keys(&self, t: &Live, ctx: &Ctx<'_>, phone: &str) -> SendKeys {
        let user = match ctx.user {
            Some(u) => format!("{}/{}/{}", u.realm, u.resolver, u.uid),
            None => format!("token/{}", t.row.serial),
        };
        SendKeys::new(ctx.cfg, &user, phone, ctx.end_user, self.clock().now_ms())
    }

    /// The tags of an SMS text and of a challenge prompt.
    fn tags(&self, t: &Live, ctx: &Ctx<'_>, phone: &str) -> Tags {
        let now = self.clock().now().with_timezone(&chrono::Local);
        let u = ctx.user;
        let field = |f: fn(&User) -> String| u.map(f).unwrap_or_default();
        // Every tag exists (empty unless set below), so the set is exactly SMS_TAG_SAMPLES'.
        let mut tags: Tags = SMS_TAG_SAMPLES
            .iter()
            .map(|(k, _)| (*k, String::new()))
            .collect();
        let mut set = |k: &'static str, v: String| {
            debug_assert!(tags.contains_key(k), "{k} is missing from SMS_TAG_SAMPLES");
            tags.insert(k, v);
        };
        set("serial", t.row.serial.clone());
        set("tokentype", "sms".into());
        set("user", field(|u| u.givenname.clone()));
        set("givenname", field(|u| u.givenname.clone()));
        set("surname", field(|u| u.surname.clone()));
        set("username", field(|u| u.login.clone()));
        set("userrealm", field(|u| u.realm.clone()));
        set("recipient_givenname", field(|u| u.givenname.clone()));
        set("recipient_surname", field(|u| u.surname.clone()));
        set("time", now.format("%H:%M:%S").to_string());
        set("date", now.format("%Y-%m-%d").to_string());
        set("phone", phone.to_owned());
        set("phone_redacted", otpgate_core::phone::redact(phone));
        set("tokendescription", t.row.description.clone());
        if let Some(ip) = ctx.client {
            set("client_ip", ip.to_string());
        }
        tags
    }

    /// A challenge per token, sharing one transaction: a challenge answer when at least one
    /// SMS went out, otherwise a refusal saying why per token.
    pub(super) async fn create_challenges(
        &self,
        tokens: &[&Live],
        ctx: &Ctx<'_>,
        challenge: Option<&str>,
        exception: bool,
        audit: &mut AuditEntry,
    ) -> Result<CheckOutcome> {
        let tid = self.rng().digits(20)?;
        self.create_challenges_in(&tid, tokens, ctx, challenge, exception, audit)
            .await
    }

    /// [`Services::create_challenges`] in transaction `tid` (one that is already going on).
    pub(super) async fn create_challenges_in(
        &self,
        tid: &str,
        tokens: &[&Live],
        ctx: &Ctx<'_>,
        challenge: Option<&str>,
        exception: bool,
        audit: &mut AuditEntry,
    ) -> Result<CheckOutcome> {
        let tid = tid.to_owned();
        let increase = ctx.flag("increase_failcounter_on_challenge")?;
        let prompt_template = self.prompt_template(ctx)?;
        let mut out = Challenges {
            transaction_id: tid.clone(),
            ..Default::default()
        };
        let mut delivered = Vec::new();
        let mut limited = Vec::new();
        // The resend cooldown also between parallel PIN requests: a challenge another request
        // opened meanwhile (seen under the token's row lock) is answered instead.
        let cooldown_ms = ctx.cfg.resend_cooldown_secs * 1000;
        let recent_since = (cooldown_ms > 0).then(|| self.clock().now_ms() - cooldown_ms);
        let mut raced = false;
        for t in tokens {
            let sent = match self.phone_of(t, ctx).await {
                Ok(phone) => {
                    let keys = self.send_keys(t, ctx, &phone);
                    if increase {
                        self.count_failure(&t.row, ctx.cfg).await?;
                    }
                    self.challenge_one(t, &tid, ctx, challenge, phone, &keys, recent_since)
                        .await
                }
                Err(e) => Err(e),
            };
            match sent {
                Err(SmsFailure::Recent) => {
                    raced = true;
                    out.messages.push(LIMITED.to_owned());
                }
                Ok(Sent {
                    gateway,
                    phone,
                    email,
                }) => {
                    let expires = self.clock().now_ms() + ctx.cfg.challenge_validity_secs * 1000;
                    let prompt = match &email {
                        None => {
                            template::render_prompt(&prompt_template, &self.tags(t, ctx, &phone))
                        }
                        Some(to) => EMAILED_PROMPT.replace("{email}", to),
                    };
                    out.messages.push(prompt.clone());
                    delivered.push(match &email {
                        None => format!("{} via {gateway}", t.row.serial),
                        Some(_) => {
                            format!("{} by {gateway}, no gateway took the SMS", t.row.serial)
                        }
                    });
                    out.sent.push(SentChallenge {
                        serial: t.row.serial.clone(),
                        prompt,
                        valid_until_ms: expires,
                        gateway: Some(gateway),
                        to: email.unwrap_or_else(|| otpgate_core::phone::redact(&phone)),
                    });
                }
                Err(SmsFailure::Service(ServiceError::Unavailable)) => {
                    return Err(ServiceError::Unavailable);
                }
                Err(SmsFailure::Unfit(why)) => out.messages.push(why.to_owned()),
                Err(SmsFailure::Blocked(refusal)) => {
                    limited.push(format!("{}: {}", t.row.serial, refusal.reason));
                    out.messages.push(NUMBER_REFUSED.to_owned());
                }
                Err(SmsFailure::Limited(refusal)) => {
                    out.retry_after = Some(
                        out.retry_after
                            .map_or(refusal.retry_after, |r| r.max(refusal.retry_after)),
                    );
                    limited.push(format!("{}: {} limit", t.row.serial, refusal.limit));
                    out.messages.push(LIMITED.to_owned());
                }
                Err(e) => {
                    tracing::warn!(serial = %t.row.serial, reason = %e, "SMS could not be sent");
                    if exception {
                        return Err(ServiceError::SendFailed);
                    }
                    out.messages.push(SEND_FAILED.to_owned());
                    out.errors.push(format!("{}: {e}", t.row.serial));
                }
            }
        }
        if raced && out.sent.is_empty() {
            let mut fresh = Vec::with_capacity(tokens.len());
            for t in tokens {
                if let Some(row) = self.store().token_by_serial(&t.row.serial).await? {
                    fresh.push(self.live(row)?);
                }
            }
            let fresh: Vec<&Live> = fresh.iter().collect();
            if let Some(answer) = self.recent_challenge(&fresh, ctx, audit).await? {
                return Ok(answer);
            }
        }
        if !limited.is_empty() {
            delivered.push(format!("refused by send limits: {}", limited.join(", ")));
        }
        if !out.errors.is_empty() {
            delivered.push(format!("not sent: {}", out.errors.join(", ")));
        }
        audit.action_detail = delivered.join(", ");
        audit.info = out.message();
        if out.sent.is_empty() {
            return Ok(CheckOutcome::Reject(Rejected {
                message: out.message(),
                attempt: Some(out),
                ..Default::default()
            }));
        }
        out.preferred_client_mode = self.preferred_client_mode(ctx)?;
        self.frame_message(&mut out, ctx)?;
        audit.authentication = "CHALLENGE".into();
        Ok(CheckOutcome::Challenge(out))
    }

    /// A PIN request while a challenge is live, with the resend cooldown on
    /// (`sms.resend_cooldown_secs`): when every token whose PIN matched has its newest
    /// challenge live, current and in one transaction, that transaction is answered again
    /// instead of a new one with a new code. Within the cooldown no SMS goes out and the
    /// prompt says the code sent N seconds ago is still valid (`sms_challenge_reused_text`),
    /// with a `retry_after`. After it, the same code goes out again (the HOTP counter of the
    /// challenge is kept), counted against the send limits, so the user never holds two SMS
    /// with different codes; a challenge with less than a cooldown left gets a new one.
    pub(super) async fn recent_challenge(
        &self,
        tokens: &[&Live],
        ctx: &Ctx<'_>,
        audit: &mut AuditEntry,
    ) -> Result<Option<CheckOutcome>> {
        let cooldown_ms = ctx.cfg.resend_cooldown_secs * 1000;
        if cooldown_ms == 0 || tokens.is_empty() {
            return Ok(None);
        }
        let now = self.clock().now_ms();
        let mut found = Vec::with_capacity(tokens.len());
        for t in tokens {
            let newest = self
                .store()
                .challenges_live_by_token(t.row.id, now)
                .await?
                .into_iter()
                .next();
            match newest {
                Some(c)
                    if c.session.is_empty()
                        && (now - c.last_sent() < cooldown_ms
                            || c.expires_at - now >= cooldown_ms)
                        && (ctx.cfg.concurrent_challenges || c.otp_counter == t.row.count) =>
                {
                    found.push((*t, c));
                }
                _ => return Ok(None),
            }
        }
        let Some(tid) = found.first().map(|(_, c)| c.transaction_id.clone()) else {
            return Ok(None);
        };
        if found.iter().any(|(_, c)| c.transaction_id != tid) {
            return Ok(None);
        }
        let prompt_template = self.prompt_template(ctx)?;
        let reused_template = ctx
            .text("sms_challenge_reused_text")?
            .unwrap_or_else(|| REUSED_PROMPT.to_owned());
        let mut out = Challenges {
            transaction_id: tid,
            preferred_client_mode: self.preferred_client_mode(ctx)?,
            ..Default::default()
        };
        let mut retry_after = 0;
        let mut notes = Vec::new();
        for (t, c) in &found {
            let resent = if now - c.last_sent() >= cooldown_ms {
                self.resend(t, c, ctx, now - cooldown_ms).await?
            } else {
                Resend::NotDue
            };
            let (phone, sent) = match resent {
                Resend::Sent { gateway, phone } => {
                    notes.push(format!("{}: same code re-sent via {gateway}", t.row.serial));
                    (phone, Some(gateway))
                }
                other => {
                    let left = match other {
                        Resend::Refused(refusal) => {
                            notes.push(format!(
                                "{}: {} limit, same code not re-sent",
                                t.row.serial, refusal.limit
                            ));
                            refusal.retry_after
                        }
                        Resend::Failed(why) => {
                            notes.push(format!("{}: re-send failed: {why}", t.row.serial));
                            0
                        }
                        _ => {
                            notes.push(format!("{}: live challenge re-used", t.row.serial));
                            (c.last_sent() + cooldown_ms - now + 999) / 1000
                        }
                    };
                    retry_after = retry_after.max(left);
                    // Only for the prompt's tags: no SMS goes out, so no toll-fraud check.
                    let Ok((realm, raw)) = self.raw_phone(t, ctx).await else {
                        return Ok(None);
                    };
                    (send_number(ctx.cfg, &realm, &raw).unwrap_or(raw), None)
                }
            };
            let mut tags = self.tags(t, ctx, &phone);
            let prompt = match sent {
                Some(_) => template::render_prompt(&prompt_template, &tags),
                None => {
                    let ago = (now - c.last_sent()).max(0) / 1000;
                    tags.insert("sent_ago", ago.to_string());
                    template::render_prompt(&reused_template, &tags)
                }
            };
            out.messages.push(prompt.clone());
            out.sent.push(SentChallenge {
                serial: t.row.serial.clone(),
                prompt,
                valid_until_ms: c.expires_at,
                gateway: sent,
                to: otpgate_core::phone::redact(&phone),
            });
        }
        if out.sent.iter().all(|s| s.gateway.is_none()) {
            out.retry_after = Some(retry_after);
            self.limit_stats().hit("resend_cooldown");
        }
        self.frame_message(&mut out, ctx)?;
        audit.action_detail = notes.join(", ");
        audit.info = unique_join(&out.messages);
        audit.authentication = "CHALLENGE".into();
        Ok(Some(CheckOutcome::Challenge(out)))
    }

    /// Sends the code of live challenge `c` again (its SMS last went out at or before
    /// `not_after`): the toll-fraud guard and the send limits apply as to any SMS.
    async fn resend(
        &self,
        t: &Live,
        c: &ChallengeRow,
        ctx: &Ctx<'_>,
        not_after: i64,
    ) -> Result<Resend> {
        let phone = match self.phone_of(t, ctx).await {
            Ok(p) => p,
            Err(SmsFailure::Service(e)) => return Err(e),
            Err(e) => return Ok(Resend::Failed(e.to_string())),
        };
        let gateway = match gateway_of(t, ctx) {
            Ok(g) => g,
            Err(e) => return Ok(Resend::Failed(e.to_string())),
        };
        let keys = self.send_keys(t, ctx, &phone);
        let now = self.clock().now_ms();
        match self
            .store()
            .challenge_resend(&keys.windows(), c.id, now, not_after)
            .await?
        {
            Resent::NotDue => return Ok(Resend::NotDue),
            Resent::Refused(i) => return Ok(Resend::Refused(self.refusal(&keys, i)?)),
            Resent::Due => {}
        }
        // A re-sent SMS costs a fail count as a new challenge would under this policy, so the
        // token's maximum bounds its SMS either way.
        if ctx.flag("increase_failcounter_on_challenge")? {
            self.count_failure(&t.row, ctx.cfg).await?;
        }
        let challenge = Some(c.challenge.as_str()).filter(|c| !c.is_empty());
        match self
            .send_code(
                t,
                ctx,
                &gateway,
                &phone,
                c.otp_counter,
                challenge,
                &c.transaction_id,
            )
            .await
        {
            Ok(d) => Ok(Resend::Sent {
                gateway: d.gateway,
                phone,
            }),
            Err(SmsFailure::Service(e)) => Err(e),
            Err(e) => {
                tracing::warn!(serial = %t.row.serial, reason = %e, "SMS could not be sent again");
                self.give_back_send(&keys).await?;
                // The next request may try again at once.
                self.store()
                    .challenge_unsend(c.id, now, c.last_sent())
                    .await?;
                Ok(Resend::Failed(e.to_string()))
            }
        }
    }

    /// `smsautosend`: after a success the next OTP goes out at once, with its own challenge
    /// (so it also expires). A failure is noted in the audit, never fails the login.
    pub(super) async fn auto_send(
        &self,
        t: &Live,
        ctx: &Ctx<'_>,
        audit: &mut AuditEntry,
    ) -> Result<()> {
        let Some(row) = self.store().token_by_serial(&t.row.serial).await? else {
            return Ok(());
        };
        let fresh = self.live(row)?;
        let tid = self.rng().digits(20)?;
        if let Err(e) = self.send_challenge(&fresh, &tid, ctx, None).await {
            tracing::warn!(serial = %t.row.serial, error = %e, "smsautosend failed");
            audit.action_detail = format!("smsautosend failed: {e}");
        }
        Ok(())
    }

    /// `challenge_text_header` / `challenge_text_footer`: the message of a challenge answer
    /// framed as privacyIDEA frames it.
    fn frame_message(&self, out: &mut Challenges, ctx: &Ctx<'_>) -> Result<()> {
        if let Some(header) = ctx.text("challenge_text_header")? {
            let footer = ctx.text("challenge_text_footer")?.unwrap_or_default();
            out.frame(&header, &footer);
        }
        Ok(())
    }

    fn prompt_template(&self, ctx: &Ctx<'_>) -> Result<String> {
        Ok(ctx
            .text("sms_challenge_text")?
            .unwrap_or_else(|| DEFAULT_PROMPT.to_owned()))
    }

    fn preferred_client_mode(&self, ctx: &Ctx<'_>) -> Result<String> {
        Ok(ctx
            .text("preferred_client_mode")?
            .unwrap_or_else(|| "interactive".to_owned()))
    }
}
