//! The central SMS gateway registry (`/smsgateway`): definitions with replace-all updates,
//! secrets encrypted at rest and censored on read, and sending through a named gateway.

use crate::breaker::Outcome;
use crate::call::Scope;
use crate::nonblank;
use crate::settings::SystemConfig;
use crate::{Result, ServiceError, Services};
use otpgate_gateways::{Delivery, GatewayDef, SendError, validate_definition};
use otpgate_store::GatewayRow;
use std::collections::BTreeMap;
use std::time::Duration;

/// Options that say where secrets are sent.
const DESTINATION_KEYS: &[&str] = &[
    "URL",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "PROXY",
    "CHECK_SSL",
    "USERNAME",
    "SMSC_HOST",
    "SMSC_PORT",
    "SYSTEM_ID",
    "SMTPIDENTIFIER",
    "SMTPIDENTIFIED",
    "DEVICE",
];

/// What privacyIDEA shows instead of a secret value, and accepts to keep it unchanged.
pub const CENSORED: &str = "__CENSORED__";

/// `POST /smsgateway`'s fields: the options and headers are privacyIDEA's free-form maps (a
/// value of `__CENSORED__` keeps the stored secret).
#[derive(Debug, Clone, Default)]
pub struct GatewayInput {
    /// `name`.
    pub name: Option<String>,
    /// `module`: the provider.
    pub module: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `option.K`.
    pub options: BTreeMap<String, String>,
    /// `header.K`.
    pub headers: BTreeMap<String, String>,
    /// `secret.option.K`: whether an option is stored encrypted (by default: passwords,
    /// secrets, credentials in a URL).
    pub secret_options: BTreeMap<String, bool>,
    /// `secret.header.K`: as `secret_options` (by default: `Authorization`).
    pub secret_headers: BTreeMap<String, bool>,
}

impl GatewayInput {
    /// What an admin should know about a gateway's text before it bites: an option that
    /// wraps the message (`{otp}` stands for the SMS text) and, with an 8-digit OTP as the
    /// whole message, needs more than one SMS or forces UCS-2.
    pub fn warnings(&self) -> Vec<String> {
        if self
            .module
            .as_deref()
            .is_some_and(|m| m.to_ascii_lowercase().contains("smtp"))
        {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (option, v) in &self.options {
            if !v.contains("{otp}") {
                continue;
            }
            let text = v
                .replace("{otp}", "12345678")
                .replace("{phone}", "+4915112345678");
            let (enc, n) = otpgate_core::sms_text::segments(&text);
            let (name, single) = match enc {
                otpgate_core::sms_text::Encoding::Gsm7 => ("GSM-7", 160),
                otpgate_core::sms_text::Encoding::Ucs2 => ("UCS-2", 70),
            };
            if n > 1 {
                out.push(format!(
                    "The option {option} makes an SMS with an 8-digit OTP need {n} parts ({name}: {} characters where one SMS holds {single}); every part is billed.",
                    otpgate_core::sms_text::length(&text, enc)
                ));
            } else if enc == otpgate_core::sms_text::Encoding::Ucs2 {
                out.push(format!(
                    "The option {option} has characters outside GSM-7: every SMS is sent as UCS-2, which holds 70 characters instead of 160."
                ));
            }
        }
        out
    }
}

/// A gateway as admins see it: secret values as `__CENSORED__`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayView {
    /// Row id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// The provider module as stored.
    pub module: String,
    /// Description.
    pub description: String,
    /// Options (secrets censored).
    pub options: BTreeMap<String, String>,
    /// Headers (secrets censored).
    pub headers: BTreeMap<String, String>,
    /// The options stored encrypted.
    pub secret_options: Vec<String>,
    /// The headers stored encrypted.
    pub secret_headers: Vec<String>,
}

impl From<&GatewayRow> for GatewayView {
    fn from(g: &GatewayRow) -> Self {
        let mut v = GatewayView {
            id: g.id,
            name: g.name.clone(),
            module: g.providermodule.clone(),
            description: g.description.clone(),
            options: BTreeMap::new(),
            headers: BTreeMap::new(),
            secret_options: Vec::new(),
            secret_headers: Vec::new(),
        };
        for o in &g.options {
            let value = if o.encrypted {
                CENSORED.to_owned()
            } else {
                o.value.clone()
            };
            let (map, secrets) = match o.otype.as_str() {
                "header" => (&mut v.headers, &mut v.secret_headers),
                _ => (&mut v.options, &mut v.secret_options),
            };
            map.insert(o.key.clone(), value);
            if o.encrypted {
                secrets.push(o.key.clone());
            }
        }
        v
    }
}

pub(crate) fn aad(gateway: &str, otype: &str, key: &str) -> String {
    format!("smsgateway:{gateway}:{otype}:{key}")
}

/// privacyIDEA's default: option keys containing PASSWORD or SECRET are secret; otpgate also
/// treats an `Authorization` header and the parameters its catalogue marks secret (the SIM
/// PIN) as secret. The console asks it too, to hide what will be stored encrypted.
pub fn secret_by_default(module: &str, otype: &str, key: &str, value: &str) -> bool {
    let k = key.to_ascii_uppercase();
    if otype == "option"
        && otpgate_gateways::ProviderKind::parse(module).is_some_and(|kind| kind.is_secret(key))
    {
        return true;
    }
    match otype {
        "header" => k == "AUTHORIZATION",
        // A URL with credentials (`https://user:pw@host/`) is a secret too.
        _ if k == "URL" => value.split_once("://").is_some_and(|(_, rest)| {
            rest.split(['/', '?', '#'])
                .next()
                .is_some_and(|authority| authority.contains('@'))
        }),
        _ => k.contains("PASSWORD") || k.contains("SECRET"),
    }
}

impl Services {
    /// `GET /smsgateway/[<id>]`: an unknown id gives none, a non-numeric id all gateways
    /// (privacyIDEA's quirk).
    pub async fn list_gateways(&self, id: Option<&str>) -> Result<Vec<GatewayView>> {
        let wanted = id.and_then(|i| i.trim().parse::<i64>().ok());
        Ok(self
            .store()
            .gateway_list()
            .await?
            .iter()
            .filter(|g| wanted.is_none_or(|w| w == g.id))
            .map(GatewayView::from)
            .collect())
    }

    /// Decrypts a stored gateway into the providers' definition.
    fn gateway_def(&self, g: &GatewayRow) -> Result<GatewayDef> {
        let mut options = BTreeMap::new();
        let mut headers = BTreeMap::new();
        for o in &g.options {
            let value = if o.encrypted {
                self.keys()
                    .open_str(&o.value, &aad(&g.name, &o.otype, &o.key))
                    .map_err(|_| {
                        ServiceError::Internal(format!(
                            "The secret {} of gateway {} cannot be decrypted.",
                            o.key, g.name
                        ))
                    })?
                    .to_string()
            } else {
                o.value.clone()
            };
            match o.otype.as_str() {
                "header" => headers.insert(o.key.clone(), value),
                _ => options.insert(o.key.clone(), value),
            };
        }
        Ok(GatewayDef {
            id: g.id,
            name: g.name.clone(),
            module: g.providermodule.clone(),
            options,
            headers,
            smtp: None,
        })
    }

    /// `POST /smsgateway`: creates or replaces (keyed by name) a gateway; returns its id.
    pub async fn save_gateway(&self, input: &GatewayInput, cx: &mut Scope) -> Result<i64> {
        cx.audit.action_detail = format!("gateway {}", input.name.as_deref().unwrap_or_default());
        let g = self.gateway_rows(input, &[], &[]).await?;
        let id = self
            .store()
            .gateway_upsert(&g.name, &g.module, &g.description, &g.options)
            .await?;
        self.registry().forget(id);
        Ok(id)
    }

    /// The gateway `input` defines, checked as `POST /smsgateway` checks it, its secrets
    /// sealed; `gateways` and `smtp_servers` are about to be created alongside (an import)
    /// and may be named by `FAILOVER` and `SMTPIDENTIFIER`.
    pub(crate) async fn gateway_rows(
        &self,
        input: &GatewayInput,
        gateways: &[String],
        smtp_servers: &[String],
    ) -> Result<otpgate_store::import::ImportGateway> {
        let name = nonblank(&input.name).ok_or_else(|| ServiceError::missing("name"))?;
        let module = nonblank(&input.module).ok_or_else(|| ServiceError::missing("module"))?;
        if name.len() > 255 {
            return Err(ServiceError::Parameter(
                "The gateway name is longer than 255 characters.".into(),
            ));
        }
        let existing = self.store().gateway_by_name(&name).await?;
        let old = match &existing {
            Some(g) => Some(self.gateway_def(g)?),
            None => None,
        };
        let mut def = GatewayDef {
            id: 0,
            name: name.clone(),
            module: module.clone(),
            options: BTreeMap::new(),
            headers: BTreeMap::new(),
            smtp: None,
        };
        let mut secret = BTreeMap::new();
        let given = input
            .headers
            .iter()
            .map(|(k, v)| ("header", k, v, &input.secret_headers))
            .chain(
                input
                    .options
                    .iter()
                    .map(|(k, v)| ("option", k, v, &input.secret_options)),
            );
        let mut kept_any = false;
        for (otype, key, v, secret_flags) in given {
            let key = key.as_str();
            if key.is_empty() || key.len() > 255 {
                return Err(ServiceError::Parameter(format!(
                    "Invalid {otype} name {key:?}."
                )));
            }
            let kept_secret = v == CENSORED;
            kept_any |= kept_secret;
            let value = if kept_secret {
                let kept = old.as_ref().and_then(|o| {
                    if otype == "header" {
                        o.headers.get(key)
                    } else {
                        o.options.get(key)
                    }
                });
                kept.cloned().ok_or_else(|| {
                    ServiceError::Parameter(format!("{otype} {key} has no stored value to keep."))
                })?
            } else {
                v.clone()
            };
            // A value kept through __CENSORED__ stays secret: declassifying it would need the
            // caller to know it.
            let is_secret = kept_secret
                || match secret_flags.get(key) {
                    Some(flag) => *flag,
                    None => {
                        secret_by_default(&module, otype, key, &value)
                            || existing.as_ref().is_some_and(|g| {
                                g.options
                                    .iter()
                                    .any(|o| o.otype == otype && o.key == key && o.encrypted)
                            })
                    }
                };
            secret.insert((otype, key.to_owned()), is_secret);
            if otype == "header" {
                def.headers.insert(key.to_owned(), value);
            } else {
                def.options.insert(key.to_owned(), value);
            }
        }
        validate_definition(&def).map_err(ServiceError::Parameter)?;
        // Kept secrets may only go where they went before: a changed destination needs them
        // typed again (otherwise an admin could send them to a server of their choice).
        if kept_any
            && let Some(o) = &old
            && (o.module != def.module
                || DESTINATION_KEYS
                    .iter()
                    .any(|k| o.options.get(*k) != def.options.get(*k)))
        {
            return Err(ServiceError::Parameter(format!(
                "Give the secret values again when the destination ({}) changes.",
                DESTINATION_KEYS.join(", ")
            )));
        }
        for backup in otpgate_gateways::failover_names(&def) {
            if !gateways.contains(&backup) && self.store().gateway_by_name(&backup).await?.is_none()
            {
                return Err(ServiceError::Parameter(format!(
                    "FAILOVER names the gateway {backup}, which does not exist."
                )));
            }
        }
        if let Some(id) = otpgate_gateways::smtp_identifier(&def)
            && !smtp_servers.iter().any(|s| s == id)
            && self.store().smtp_get(id).await?.is_none()
        {
            return Err(ServiceError::Parameter(format!(
                "The SMTP server {id} does not exist (define it with /smtpserver)."
            )));
        }
        let mut rows = Vec::new();
        for (otype, map) in [("option", &def.options), ("header", &def.headers)] {
            for (k, v) in map {
                let enc = secret.get(&(otype, k.clone())).copied().unwrap_or(false);
                let stored = if enc {
                    self.keys().seal_str(self.rng(), v, &aad(&name, otype, k))?
                } else {
                    v.clone()
                };
                rows.push((k.clone(), stored, otype.to_owned(), enc));
            }
        }
        Ok(otpgate_store::import::ImportGateway {
            name,
            module,
            description: input.description.clone().unwrap_or_default(),
            options: rows,
        })
    }

    /// `DELETE /smsgateway/<name>`: the deleted id.
    pub async fn delete_gateway(&self, name: &str, cx: &mut Scope) -> Result<i64> {
        cx.audit.action_detail = format!("gateway {name}");
        match self.store().gateway_delete(name).await? {
            Some(id) => {
                self.registry().forget(id);
                Ok(id)
            }
            None => Err(ServiceError::NotFound(
                "The requested SMSGateway could not be found.".into(),
            )),
        }
    }

    /// `DELETE /smsgateway/option/<gwid>/<option.K|header.K|K>`: the option row id.
    pub async fn delete_gateway_option(&self, gw_id: &str, key: &str) -> Result<i64> {
        let id: i64 = gw_id.trim().parse().map_err(|_| {
            ServiceError::NotFound("The requested SMSGateway could not be found.".into())
        })?;
        let (otype, k) = match key.split_once('.') {
            Some(("option", k)) => ("option", k),
            Some(("header", k)) => ("header", k),
            _ => ("option", key),
        };
        match self.store().gateway_delete_option(id, k, otype).await? {
            Some(oid) => {
                self.registry().forget(id);
                Ok(oid)
            }
            None => Err(ServiceError::NotFound(
                "The requested SMSGatewayOption could not be found.".into(),
            )),
        }
    }

    /// Makes gateway `name` the default (`sms.identifier`): tokens that name no gateway send
    /// through it.
    pub async fn make_default_gateway(&self, name: &str, cx: &mut Scope) -> Result<()> {
        if self.store().gateway_by_name(name).await?.is_none() {
            return Err(ServiceError::NotFound(
                "The requested SMSGateway could not be found.".into(),
            ));
        }
        self.set_config(&[("sms.identifier".to_owned(), name.to_owned())], cx)
            .await?;
        cx.audit.action_detail = format!("gateway {name}: default");
        Ok(())
    }

    /// The names of gateways using the `sink` provider (the server warns about them).
    pub async fn sink_gateways(&self) -> Result<Vec<String>> {
        Ok(self
            .store()
            .gateway_list()
            .await?
            .into_iter()
            .filter(|g| {
                otpgate_gateways::ProviderKind::parse(&g.providermodule)
                    == Some(otpgate_gateways::ProviderKind::Sink)
            })
            .map(|g| g.name)
            .collect())
    }

    /// A stored gateway, decrypted, with its SMTP server resolved (from the node's copy of
    /// the settings: no table read while the settings stay the same).
    pub(crate) async fn load_gateway(
        &self,
        name: &str,
    ) -> std::result::Result<GatewayDef, SmsFailure> {
        let settings = self.settings().await.map_err(SmsFailure::Service)?;
        let Some(row) = settings.gateways.get(name) else {
            return Err(SmsFailure::Send(SendError::Config(format!(
                "The SMS gateway {name} does not exist."
            ))));
        };
        self.sending_def(row).await.map_err(SmsFailure::Service)
    }

    /// A stored gateway as its provider sends with it (secrets open, its SMTP server).
    async fn sending_def(&self, row: &GatewayRow) -> Result<GatewayDef> {
        let mut def = self.gateway_def(row)?;
        if let Some(id) = otpgate_gateways::smtp_identifier(&def).map(str::to_owned) {
            def.smtp = self.smtp_server_def(&id).await?;
        }
        Ok(def)
    }

    /// Ends the providers (SMPP sessions, modems) of gateways another node deleted or changed;
    /// run now and then.
    pub async fn prune_gateway_providers(&self) -> Result<()> {
        let mut live = Vec::new();
        for row in self.store().gateway_list().await? {
            live.push(self.sending_def(&row).await?);
        }
        self.registry().retain(&live);
        Ok(())
    }

    /// The admin console's test SMS: a fixed text to `phone` through gateway `name` (with
    /// its failover, under the toll-fraud rules, not counted against send limits); the
    /// gateway that delivered, or why none did.
    pub async fn send_test_sms(&self, name: &str, phone: &str) -> Result<String> {
        let cfg = &self.system_config().await?;
        if phone.trim().is_empty() {
            return Err(ServiceError::missing("phone"));
        }
        // As strict as an enrollment: the number must parse and pass the toll-fraud rules.
        let strict = SystemConfig {
            strict_numbers: true,
            ..cfg.clone()
        };
        let number = crate::limits::enrollment_number(&strict, "", phone.trim())?;
        if let Some(r) = self.check_prefix(cfg, &number).await? {
            return Err(ServiceError::Parameter(format!(
                "{}: {}",
                crate::limits::NUMBER_REFUSED,
                r.reason
            )));
        }
        match self
            .send_sms(
                cfg,
                name,
                &number,
                "otpgate test message: this SMS gateway works.",
                None,
                &SendAbout::default(),
            )
            .await
        {
            Ok(d) => Ok(d.gateway),
            Err(SmsFailure::Service(e)) => Err(e),
            Err(e) => Err(ServiceError::Parameter(format!(
                "The SMS could not be sent: {e}"
            ))),
        }
    }

    /// Sends `text` to `phone` through the gateway named `name`, or through its `FAILOVER`
    /// gateways in order when it fails or its circuit breaker is open, all within
    /// `cfg.send_budget_ms`. Providers that split long texts never split `otp`. `about` says
    /// what the SMS belongs to (its record) and may name the message for gateways that
    /// de-duplicate. The delivery names the gateway that delivered.
    pub async fn send_sms(
        &self,
        cfg: &SystemConfig,
        name: &str,
        phone: &str,
        text: &str,
        otp: Option<&str>,
        about: &SendAbout,
    ) -> std::result::Result<Delivery, SmsFailure> {
        let fresh;
        let message_id = match about.message_id.as_deref() {
            Some(id) => id,
            None => {
                fresh = self.new_message_id().map_err(SmsFailure::Service)?;
                fresh.as_str()
            }
        };
        let budget = Duration::from_millis(u64::try_from(cfg.send_budget_ms).unwrap_or(4000));
        let started = tokio::time::Instant::now();
        if crate::call::abandoned() {
            return Err(abandoned());
        }
        let primary = self.load_gateway(name).await?;
        let names: Vec<String> = std::iter::once(name.to_owned())
            .chain(otpgate_gateways::failover_names(&primary))
            .collect();
        let mut primary = Some(primary);
        let breakers = self.breakers();
        let mut skipped = Vec::new();
        let mut tried = false;
        let mut last = None;
        // First every gateway whose breaker lets it through, in order; if that was none, the
        // skipped ones anyway: trying beats refusing a login without an attempt.
        for forced in [false, true] {
            let candidates: Vec<String> = if forced {
                if tried {
                    break;
                }
                std::mem::take(&mut skipped)
            } else {
                names.clone()
            };
            for gateway in candidates {
                if budget
                    .checked_sub(started.elapsed())
                    .is_none_or(|d| d.is_zero())
                {
                    break;
                }
                if crate::call::abandoned() {
                    return Err(abandoned());
                }
                if !forced && !breakers.allows(&gateway, self.clock().now_ms()) {
                    breakers.record(&gateway, Outcome::Skipped);
                    skipped.push(gateway);
                    continue;
                }
                // Backups are loaded only when needed; one that cannot be loaded is skipped.
                let def = match primary.take_if(|p| p.name == gateway) {
                    Some(def) => def,
                    None => match self.load_gateway(&gateway).await {
                        Ok(def) => def,
                        Err(e) => {
                            tracing::warn!(gateway = %name, backup = %gateway, error = %e, "failover gateway skipped");
                            continue;
                        }
                    },
                };
                tried = true;
                match self
                    .attempt(
                        cfg,
                        &def,
                        budget,
                        started,
                        &Outgoing {
                            phone,
                            text,
                            otp,
                            id: message_id,
                            about,
                        },
                    )
                    .await
                {
                    Ok(delivery) => {
                        if def.name != name {
                            breakers.record(&def.name, Outcome::Failover);
                            tracing::info!(gateway = %name, delivered_by = %def.name, "SMS delivered by a failover gateway");
                        }
                        return Ok(delivery);
                    }
                    Err(e) => last = Some(e),
                }
            }
        }
        Err(SmsFailure::Send(last.unwrap_or_else(|| {
            SendError::Timeout(format!("{}", budget.as_secs_f64()))
        })))
    }

    /// One attempt at one gateway within what is left of the budget, recorded in its breaker
    /// and as an SMS record (the delivery carries its reference).
    pub(crate) async fn attempt(
        &self,
        cfg: &SystemConfig,
        def: &GatewayDef,
        budget: Duration,
        started: tokio::time::Instant,
        m: &Outgoing<'_>,
    ) -> std::result::Result<Delivery, SendError> {
        // The gateway's time is what was left before the record: a slow database does not
        // shorten it.
        let left = budget.saturating_sub(started.elapsed());
        let (reference, dlr_url) = self
            .message_begin(&def.name, m.phone, m.text, m.id, m.about, cfg.prefix_digits)
            .await;
        let result = match tokio::time::timeout(
            left,
            self.registry().send(
                def,
                m.phone,
                m.text,
                m.otp,
                m.id,
                dlr_url.as_deref(),
                Some(tokio::time::Instant::now() + left),
            ),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(SendError::Timeout(format!("{}", budget.as_secs_f64()))),
        };
        let refused = result.as_ref().err().map(|e| {
            let why = e.to_string();
            why.chars().take(200).collect::<String>()
        });
        let external_id = result.as_ref().ok().and_then(|d| d.external_id.as_deref());
        self.message_answered(
            &def.name,
            reference.as_deref(),
            refused.as_deref(),
            external_id.unwrap_or_default(),
        )
        .await;
        let result = result.map(|d| otpgate_gateways::Delivery { reference, ..d });
        let breakers = self.breakers();
        match &result {
            Ok(_) => {
                breakers.success(&def.name);
                breakers.record(&def.name, Outcome::Delivered);
            }
            Err(e) => {
                breakers.record(&def.name, Outcome::Failed);
                // A definition problem says nothing about the gateway's health.
                if !matches!(e, SendError::Config(_))
                    && breakers.failure(
                        &def.name,
                        self.clock().now_ms(),
                        cfg.breaker_threshold,
                        cfg.breaker_open_secs.saturating_mul(1000),
                    )
                {
                    tracing::warn!(gateway = %def.name, "circuit breaker opened");
                }
                tracing::debug!(gateway = %def.name, error = %e, "gateway failed");
            }
        }
        result
    }
}

/// Why an SMS was not sent: the gateway refused, or the server could not even try.
#[derive(Debug)]
pub enum SmsFailure {
    /// The provider failed (reason safe to show).
    Send(SendError),
    /// A service error (database down, undecryptable secret).
    Service(ServiceError),
    /// The token became unfit (locked or disabled) while the request ran: no SMS.
    Unfit(&'static str),
    /// A send limit refused the SMS.
    Limited(crate::limits::Refusal),
    /// The toll-fraud guard refused the number.
    Blocked(crate::limits::NumberRefusal),
    /// A parallel request opened a challenge of the token within the resend cooldown.
    Recent,
}

impl Services {
    /// A new message id: `otpgate-` and 16 random hex digits.
    pub(crate) fn new_message_id(&self) -> Result<String> {
        Ok(format!("otpgate-{}", self.rng().hex(8)?))
    }
}

/// One SMS on its way: the number, the text, the OTP in it (never split), its message id.
/// What an SMS belongs to, for its record.
#[derive(Debug, Clone, Default)]
pub struct SendAbout {
    /// The message's id for gateways that de-duplicate, the same for every attempt to send
    /// it (None: a new one).
    pub message_id: Option<String>,
    /// The login's transaction (challenges).
    pub transaction_id: String,
    /// The token.
    pub serial: String,
    /// The user.
    pub user: String,
    /// The realm.
    pub realm: String,
}

pub(crate) struct Outgoing<'a> {
    pub(crate) phone: &'a str,
    pub(crate) text: &'a str,
    pub(crate) otp: Option<&'a str>,
    pub(crate) id: &'a str,
    pub(crate) about: &'a SendAbout,
}

/// No SMS for a call whose caller has gone ([`crate::call::abandoned`]).
fn abandoned() -> SmsFailure {
    SmsFailure::Send(SendError::Config(ABANDONED.into()))
}

/// The audit's reason of an SMS not sent because its caller had gone.
pub const ABANDONED: &str = "not sent: the request was given up before its SMS went out";

impl std::fmt::Display for SmsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SmsFailure::Send(e) => write!(f, "{e}"),
            SmsFailure::Service(ServiceError::Internal(m)) => write!(f, "{m}"),
            SmsFailure::Service(e) => write!(f, "{e}"),
            SmsFailure::Unfit(why) => f.write_str(why),
            SmsFailure::Limited(r) => write!(f, "refused by the {} limit", r.limit),
            SmsFailure::Blocked(r) => write!(f, "number refused: {}", r.reason),
            SmsFailure::Recent => f.write_str("a challenge was just opened"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_texts_that_cost_extra_parts_are_reported() {
        let mut p = GatewayInput {
            module: Some("http".into()),
            ..Default::default()
        };
        p.options.insert("text".into(), "{otp}".into());
        assert!(p.warnings().is_empty());
        p.options.insert(
            "text".into(),
            format!("{} {{otp}}", "Your ACME code: ".repeat(10)),
        );
        let w = p.warnings();
        assert!(w[0].contains("need 2 parts"), "{w:?}");
        p.options
            .insert("text".into(), "Ihr Code lautet: {otp} – 👍".into());
        assert!(p.warnings()[0].contains("UCS-2"));
        p.module = Some("smtp".into());
        assert!(p.warnings().is_empty(), "mails are not SMS");
    }
}
