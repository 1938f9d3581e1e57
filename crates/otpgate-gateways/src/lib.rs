//! otpgate's SMS gateway providers: the only crate that talks to SMS networks.
//!
//! A gateway is a stored definition (name, provider module, options, headers). [`Registry`]
//! turns a definition into a provider, keeps one HTTP client per gateway (rebuilt when the
//! definition changes) and sends messages. Providers are a closed set chosen at run time, so
//! they are an enum, not trait objects.

mod catalogue;
mod http;
mod modem;
pub mod presets;
mod script;
mod sink;
mod sipgate;
pub mod smpp;
mod smtp;
mod transport;

pub use smtp::{SmtpServerDef, send_mail, smtp_identifier};

pub use catalogue::{
    Parameter, ProviderKind, failover_list, failover_names, providers_description,
};
pub use modem::pdu as modem_pdu;
pub use sink::DEFAULT_SINK_FILE;

use otpgate_core::Clock;
use otpgate_core::phone::PhoneRewrite;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Checks a definition before it is saved; the message names the offending key.
pub fn validate_definition(def: &GatewayDef) -> Result<ProviderKind, String> {
    let kind = ProviderKind::parse(&def.module).ok_or_else(|| {
        format!(
            "Unknown SMS provider module {:?}. Known: {}.",
            def.module,
            ProviderKind::ALL
                .iter()
                .map(|k| k.module_name())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    if !kind.headers_allowed() && !def.headers.is_empty() {
        return Err(format!(
            "The provider {} does not take headers.",
            kind.module_name()
        ));
    }
    if !kind.options_allowed()
        && let Some(k) = def.options.keys().find(|k| !kind.is_parameter(k))
    {
        return Err(format!(
            "The provider {} does not take the option {k}.",
            kind.module_name()
        ));
    }
    if failover_names(def).len() > catalogue::MAX_FAILOVER {
        return Err(format!(
            "FAILOVER names at most {} backup gateways.",
            catalogue::MAX_FAILOVER
        ));
    }
    if let Some(spec) = def.options.get("REGEXP").filter(|s| !s.is_empty()) {
        otpgate_core::phone::PhoneRewrite::parse(spec).map_err(|e| format!("REGEXP: {e}"))?;
    }
    if let Some(f) = def.options.get("NUMBER_FORMAT").filter(|s| !s.is_empty())
        && otpgate_core::number::Notation::from_name(f).is_none()
    {
        return Err("NUMBER_FORMAT must be e164, digits, 00 or national.".into());
    }
    match kind {
        ProviderKind::Http => http::validate(def),
        ProviderKind::Script => script::validate(def),
        ProviderKind::Sipgate => sipgate::validate(def),
        ProviderKind::Smtp => smtp::validate(def),
        ProviderKind::Smpp => smpp::validate(def),
        ProviderKind::Modem => modem::validate(def),
        ProviderKind::Sink => match def
            .options
            .get("FILE")
            .map(|f| f.trim())
            .filter(|f| !f.is_empty())
        {
            Some(name) => sink::check_file_name(name),
            None => Ok(()),
        },
    }?;
    Ok(kind)
}

/// A gateway definition with decrypted option values, as the providers need it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct GatewayDef {
    /// Row id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// The provider module as stored (dotted privacyIDEA name or short name).
    pub module: String,
    /// Options (parameters and free options), plaintext.
    pub options: BTreeMap<String, String>,
    /// HTTP headers, plaintext.
    pub headers: BTreeMap<String, String>,
    /// The SMTP server an SMTP gateway sends through (resolved from `SMTPIDENTIFIER`).
    pub smtp: Option<SmtpServerDef>,
}

impl std::fmt::Debug for GatewayDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Option values may be passwords or API keys: only the keys are shown.
        f.debug_struct("GatewayDef")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("module", &self.module)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why a message could not be delivered. `Display` is safe to show to clients and to log:
/// it never contains the message, the phone number, credentials or the gateway's reply body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The definition is incomplete or invalid.
    #[error("{0}")]
    Config(String),
    /// The gateway answered with a status other than 200, 201 or 202.
    #[error("SMS could not be sent: {0}")]
    Status(u16),
    /// `RETURN_SUCCESS` was not found in the reply.
    #[error("We received a none success reply from the SMS Gateway.")]
    NotSuccess,
    /// `RETURN_FAIL` was found in the reply.
    #[error("We received the predefined error from the SMS Gateway.")]
    PredefinedFail,
    /// No answer within `TIMEOUT`.
    #[error("the SMS gateway did not answer within {0} s")]
    Timeout(String),
    /// Connection, TLS or proxy failure.
    #[error("the SMS gateway could not be reached: {0}")]
    Connect(String),
    /// Writing to the sink failed.
    #[error("the sink file could not be written: {0}")]
    Io(String),
    /// The SMS service answered with an XML-RPC fault (its code).
    #[error("the SMS service answered with fault {0}")]
    Fault(String),
    /// The SMSC refused or failed.
    #[error("{0}")]
    Smpp(String),
    /// The SMTP server refused or failed (reason without addresses or content).
    #[error("{0}")]
    Smtp(String),
    /// The script could not run or failed.
    #[error("{0}")]
    Script(String),
    /// The GSM modem could not be used or refused the message.
    #[error("{0}")]
    Modem(String),
}

/// A successful delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The gateway that delivered.
    pub gateway: String,
    /// The SMS's receipt reference (set by the service that recorded it).
    pub reference: Option<String>,
    /// The gateway's own id of the message, where its receipts name it by that (SMPP: the
    /// message id of the part that carries the OTP).
    pub external_id: Option<String>,
}

/// A delivery receipt a gateway reported on its own connection (SMPP `deliver_sm`, a GSM
/// modem's `+CDS` status report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayReceipt {
    /// The gateway's name.
    pub gateway: String,
    /// The gateway's id of the message ([`Delivery::external_id`]): the ways it may be
    /// spelled, the one the receipt gave first.
    pub ids: Vec<String>,
    /// The status (`DELIVRD`, `UNDELIV`, `ENROUTE`, …).
    pub status: String,
    /// The destination's digits, where the receipt names them (a modem's status report).
    pub to: Option<String>,
}

/// Receipts waiting for the service at most; an SMPP receipt beyond is refused for the
/// moment (the SMSC delivers it again).
const RECEIPT_QUEUE: usize = 4096;

enum Provider {
    Http(Box<http::HttpProvider>),
    Sink(sink::SinkProvider),
    Script(script::ScriptProvider),
    Sipgate(Box<sipgate::SipgateProvider>),
    Smtp(Box<smtp::SmtpProvider>),
    Smpp(Box<smpp::SmppProvider>),
    Modem(modem::ModemProvider),
}

struct Cached {
    fingerprint: u64,
    provider: Arc<Provider>,
}

/// Builds providers from definitions and sends messages through them.
pub struct Registry {
    cache: Mutex<HashMap<i64, Cached>>,
    data_dir: PathBuf,
    scripts_dir: PathBuf,
    clock: Arc<dyn Clock>,
    modems: Arc<modem::Modems>,
    receipts: tokio::sync::mpsc::Sender<GatewayReceipt>,
    receipts_out: Mutex<Option<tokio::sync::mpsc::Receiver<GatewayReceipt>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

fn fingerprint(def: &GatewayDef) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    def.hash(&mut h);
    h.finish()
}

/// A definition of `module` with `opts`, for unit tests.
#[cfg(test)]
pub(crate) fn test_def(module: &str, opts: &[(&str, &str)]) -> GatewayDef {
    GatewayDef {
        id: 1,
        name: "gw".into(),
        module: module.into(),
        options: opts
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        headers: BTreeMap::new(),
        smtp: None,
    }
}

/// The `TIMEOUT` option in seconds: `default` when unset, else a number in (0, `max`].
pub(crate) fn timeout_secs(def: &GatewayDef, default: f64, max: f64) -> Result<f64, String> {
    match def
        .options
        .get("TIMEOUT")
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
    {
        None => Ok(default),
        Some(t) => match t.parse::<f64>() {
            Ok(v) if v > 0.0 && v <= max => Ok(v),
            _ => Err(format!(
                "TIMEOUT must be a number of seconds between 0 and {max}."
            )),
        },
    }
}

/// Makes sure rustls has its one crypto provider (ring) before any client is built.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The number in the gateway's `NUMBER_FORMAT` (unchanged without one, or when it does not
/// parse as an international number).
fn in_notation(def: &GatewayDef, phone: &str) -> String {
    let notation = def
        .options
        .get("NUMBER_FORMAT")
        .and_then(|f| otpgate_core::number::Notation::from_name(f));
    match notation.map(|n| (n, otpgate_core::number::parse(phone, None))) {
        Some((n, Ok(number))) => number.to_notation(n),
        _ => phone.to_owned(),
    }
}

impl Registry {
    /// A registry whose sink files default to `data_dir`.
    pub fn new(data_dir: PathBuf, scripts_dir: PathBuf, clock: Arc<dyn Clock>) -> Self {
        install_crypto_provider();
        let (receipts, out) = tokio::sync::mpsc::channel(RECEIPT_QUEUE);
        Self {
            cache: Mutex::new(HashMap::new()),
            data_dir,
            scripts_dir,
            clock,
            modems: Arc::default(),
            receipts,
            receipts_out: Mutex::new(Some(out)),
        }
    }

    /// The receipts gateways report on their own connections (the first caller gets them).
    pub fn take_receipts(&self) -> Option<tokio::sync::mpsc::Receiver<GatewayReceipt>> {
        self.receipts_out.lock().ok()?.take()
    }

    fn provider(&self, def: &GatewayDef) -> Result<Arc<Provider>, SendError> {
        let fp = fingerprint(def);
        if let Ok(cache) = self.cache.lock()
            && let Some(c) = cache.get(&def.id)
            && c.fingerprint == fp
        {
            return Ok(c.provider.clone());
        }
        let kind = ProviderKind::parse(&def.module).ok_or_else(|| {
            SendError::Config(format!("Unknown SMS provider module {}.", def.module))
        })?;
        let provider = Arc::new(match kind {
            ProviderKind::Http => Provider::Http(Box::new(http::HttpProvider::new(def)?)),
            ProviderKind::Sink => Provider::Sink(sink::SinkProvider::new(def, &self.data_dir)?),
            ProviderKind::Script => {
                Provider::Script(script::ScriptProvider::new(def, self.scripts_dir.clone())?)
            }
            ProviderKind::Sipgate => {
                Provider::Sipgate(Box::new(sipgate::SipgateProvider::new(def)?))
            }
            ProviderKind::Smtp => Provider::Smtp(Box::new(smtp::SmtpProvider::new(def)?)),
            ProviderKind::Smpp => Provider::Smpp(Box::new(smpp::SmppProvider::new(
                def,
                self.receipts.clone(),
            )?)),
            ProviderKind::Modem => Provider::Modem(modem::ModemProvider::new(
                def,
                self.modems.clone(),
                self.receipts.clone(),
            )?),
        });
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(
                def.id,
                Cached {
                    fingerprint: fp,
                    provider: provider.clone(),
                },
            );
        }
        Ok(provider)
    }

    /// Sends `text` to `phone` through the gateway `def`;
    /// `keep` is a part of the text (the OTP) that providers which split long texts into
    /// several SMS never split; `message_id` names the message, the same for every attempt
    /// to send it (the HTTP provider's idempotency header and `{message_id}` tag); `dlr_url`
    /// is where the gateway reports the delivery (the HTTP provider's `{dlr_url}` tag);
    /// `deadline` is when the caller stops waiting (providers with a queue of their own do not
    /// start a message they could not finish by then).
    #[allow(clippy::too_many_arguments)]
    pub async fn send(
        &self,
        def: &GatewayDef,
        phone: &str,
        text: &str,
        keep: Option<&str>,
        message_id: &str,
        dlr_url: Option<&str>,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Delivery, SendError> {
        let provider = self.provider(def)?;
        let phone = in_notation(def, phone);
        let phone = match def.options.get("REGEXP").filter(|r| !r.is_empty()) {
            Some(spec) => match PhoneRewrite::parse(spec) {
                Ok(rw) => rw.apply(&phone),
                Err(e) => {
                    tracing::warn!(gateway = %def.name, error = %e, "REGEXP ignored");
                    phone.to_owned()
                }
            },
            None => phone,
        };
        tracing::debug!(
            gateway = %def.name,
            phone = %otpgate_core::phone::redact(&phone),
            text = %redact_digits(text),
            "submitting SMS"
        );
        let mut external_id = None;
        let result = match provider.as_ref() {
            Provider::Http(p) => {
                p.send(&phone, text, message_id, dlr_url.unwrap_or_default())
                    .await
            }
            Provider::Sink(p) => p.send(self.clock.now(), &def.name, &phone, text).await,
            Provider::Script(p) => p.send(&phone, text).await,
            Provider::Sipgate(p) => p.send(&phone, text).await,
            Provider::Smtp(p) => p.send(&phone, text).await,
            Provider::Smpp(p) => p.send(&phone, text, keep, deadline).await.map(|id| {
                external_id = Some(id).filter(|i| !i.is_empty());
            }),
            Provider::Modem(p) => p.send(&phone, text, keep).await.map(|id| {
                external_id = id;
            }),
        };
        match &result {
            Ok(()) => tracing::debug!(gateway = %def.name, "SMS accepted by the gateway"),
            Err(e) => {
                tracing::debug!(gateway = %def.name, error = %e, "SMS not accepted by the gateway")
            }
        }
        result.map(|()| Delivery {
            gateway: def.name.clone(),
            reference: None,
            external_id,
        })
    }

    /// Whether the gateway `def` reports deliveries on its own connection right now: an SMPP
    /// session bound as a transceiver, a modem that accepted status reports. False until
    /// its provider is in use, and for every other provider.
    pub fn receives_receipts(&self, def: &GatewayDef) -> bool {
        let fp = fingerprint(def);
        let Ok(cache) = self.cache.lock() else {
            return false;
        };
        match cache.get(&def.id) {
            Some(c) if c.fingerprint == fp => match c.provider.as_ref() {
                Provider::Smpp(p) => p.receiving(),
                Provider::Modem(p) => p.receiving(),
                _ => false,
            },
            _ => false,
        }
    }

    /// Drops the cached providers whose gateway is gone or changed (`live`: every current
    /// definition), so an SMPP session or a modem of a deleted or changed gateway does not
    /// stay bound on a node that did not make the change.
    pub fn retain(&self, live: &[GatewayDef]) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|id, c| {
                live.iter()
                    .any(|d| d.id == *id && fingerprint(d) == c.fingerprint)
            });
        }
    }

    /// Drops the cached provider of a gateway (after it was changed or deleted).
    pub fn forget(&self, id: i64) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(&id);
        }
    }
}

/// Replaces every run of 4 or more digits by asterisks, so OTPs do not reach the logs.
pub fn redact_digits(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= 4 {
            out.extend(run.chars().map(|_| '*'));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_redacted() {
        assert_eq!(redact_digits("Your OTP is 123456."), "Your OTP is ******.");
        assert_eq!(redact_digits("at 12:30"), "at 12:30");
    }

    #[test]
    fn debug_hides_option_values() {
        let def = GatewayDef {
            id: 1,
            name: "gw".into(),
            module: "http".into(),
            options: BTreeMap::from([("PASSWORD".to_owned(), "hunter2".to_owned())]),
            headers: BTreeMap::new(),
            smtp: None,
        };
        assert!(!format!("{def:?}").contains("hunter2"));
    }
}
