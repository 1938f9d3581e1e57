//! Mail through a central SMTP server: the SMTP SMS provider (email-to-SMS gateways) and
//! `/smtpserver/send_test_email`. `smtps://host` selects implicit TLS, `tls` STARTTLS;
//! certificates are verified unless the server definition says `tls_verify` off.

use crate::{GatewayDef, SendError};
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// A central SMTP server definition with its password in plain text (in memory only).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SmtpServerDef {
    /// The definition's name.
    pub identifier: String,
    /// Host, or `smtps://host` for implicit TLS.
    pub server: String,
    /// Port.
    pub port: u16,
    /// Login; empty = no AUTH.
    pub username: String,
    /// Password.
    pub password: String,
    /// From address.
    pub sender: String,
    /// STARTTLS.
    pub tls: bool,
    /// Verify certificates.
    pub tls_verify: bool,
    /// Seconds for connecting and each command.
    pub timeout_secs: u64,
}

impl std::fmt::Debug for SmtpServerDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpServerDef")
            .field("identifier", &self.identifier)
            .field("server", &self.server)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// Sends one plain-text UTF-8 mail.
pub async fn send_mail(
    server: &SmtpServerDef,
    to: &str,
    subject: &str,
    body: &str,
) -> Result<(), SendError> {
    crate::install_crypto_provider();
    let (implicit, host) = match server.server.trim().strip_prefix("smtps://") {
        Some(h) => (true, h.trim_end_matches('/')),
        None => (
            false,
            server
                .server
                .trim()
                .trim_start_matches("smtp://")
                .trim_end_matches('/'),
        ),
    };
    let from = server.sender.parse().map_err(|_| {
        SendError::Config("The sender address of the SMTP server is invalid.".into())
    })?;
    let to_addr = to
        .parse()
        .map_err(|_| SendError::Config("The recipient address is invalid.".into()))?;
    let message = Message::builder()
        .from(Clone::clone(&from))
        .reply_to(from)
        .to(to_addr)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_owned())
        .map_err(|_| SendError::Config("The mail could not be built.".into()))?;
    let tls_params = || {
        TlsParameters::builder(host.to_owned())
            .dangerous_accept_invalid_certs(!server.tls_verify)
            .dangerous_accept_invalid_hostnames(!server.tls_verify)
            .build_rustls()
            .map_err(|_| {
                SendError::Config("The TLS settings of the SMTP server are invalid.".into())
            })
    };
    let tls = if implicit {
        Tls::Wrapper(tls_params()?)
    } else if server.tls {
        Tls::Required(tls_params()?)
    } else {
        Tls::None
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(server.port)
        .timeout(Some(Duration::from_secs(server.timeout_secs.max(1))))
        .tls(tls);
    if !server.username.is_empty() {
        builder = builder.credentials(Credentials::new(
            server.username.clone(),
            server.password.clone(),
        ));
    }
    let transport = builder.build();
    let limit = Duration::from_secs(server.timeout_secs.max(1) * 3);
    match tokio::time::timeout(limit, transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(SendError::Smtp(smtp_reason(&e))),
        Err(_) => Err(SendError::Timeout(format!("{}", server.timeout_secs))),
    }
}

/// A reason without addresses or message content.
fn smtp_reason(e: &lettre::transport::smtp::Error) -> String {
    if let Some(code) = e.status() {
        return format!("the SMTP server answered {code}");
    }
    if e.is_timeout() {
        return "the SMTP server did not answer in time".into();
    }
    let mut tls = e.is_tls();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let text = format!("{s:?}");
        tls |= text.contains("Certificate") || text.contains("certificate") || text.contains("Tls");
        src = s.source();
    }
    if tls {
        return "TLS with the SMTP server failed (certificate not trusted?)".into();
    }
    "the SMTP server could not be reached".into()
}

/// The SMTP SMS provider: MAILTO, SUBJECT (default `{phone}`), BODY (default `{otp}`), with
/// `{phone}` and `{otp}` replaced in all three.
pub(crate) struct SmtpProvider {
    server: SmtpServerDef,
    mailto: String,
    subject: String,
    body: String,
}

fn identifier(def: &GatewayDef) -> Option<&str> {
    def.options
        .get("SMTPIDENTIFIER")
        .or_else(|| def.options.get("SMTPIDENTIFIED"))
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
}

/// Checks an SMTP gateway definition (when it is saved).
pub(crate) fn validate(def: &GatewayDef) -> Result<(), String> {
    identifier(def).ok_or("The parameter SMTPIDENTIFIER is required.")?;
    if def
        .options
        .get("MAILTO")
        .is_none_or(|m| m.trim().is_empty())
    {
        return Err("The parameter MAILTO is required.".into());
    }
    Ok(())
}

/// The SMTP server a gateway names (resolved by the service layer).
pub fn smtp_identifier(def: &GatewayDef) -> Option<&str> {
    identifier(def)
}

fn fill(s: &str, phone: &str, text: &str) -> String {
    s.replace("{phone}", phone).replace("{otp}", text)
}

impl SmtpProvider {
    pub(crate) fn new(def: &GatewayDef) -> Result<Self, SendError> {
        validate(def).map_err(SendError::Config)?;
        let server = def.smtp.clone().ok_or_else(|| {
            SendError::Config(format!(
                "The SMTP server {} does not exist.",
                identifier(def).unwrap_or_default()
            ))
        })?;
        let opt = |k: &str, d: &str| {
            def.options
                .get(k)
                .filter(|v| !v.is_empty())
                .cloned()
                .unwrap_or_else(|| d.to_owned())
        };
        Ok(Self {
            server,
            mailto: opt("MAILTO", ""),
            subject: opt("SUBJECT", "{phone}"),
            body: opt("BODY", "{otp}"),
        })
    }

    pub(crate) async fn send(&self, phone: &str, text: &str) -> Result<(), SendError> {
        send_mail(
            &self.server,
            &fill(&self.mailto, phone, text),
            &fill(&self.subject, phone, text),
            &fill(&self.body, phone, text),
        )
        .await
    }
}
