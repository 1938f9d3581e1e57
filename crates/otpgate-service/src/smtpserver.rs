//! Central SMTP server definitions (`/smtpserver`, privacyIDEA A.7): used by the SMTP SMS
//! provider. Passwords are encrypted at rest and shown as `__CENSORED__`.

use crate::call::Scope;
use crate::gateways::CENSORED;
use crate::{Result, ServiceError, Services};
use otpgate_gateways::{SmtpServerDef, send_mail};
use otpgate_store::SmtpServerRow;

/// `POST /smtpserver/<identifier>`'s fields (None: the default; a password of
/// `__CENSORED__` keeps the stored one).
#[derive(Debug, Clone, Default)]
pub struct SmtpInput {
    /// `server`.
    pub server: Option<String>,
    /// `port` (default 25).
    pub port: Option<i64>,
    /// `timeout` in seconds (default 10).
    pub timeout: Option<i64>,
    /// `sender`.
    pub sender: Option<String>,
    /// `username`.
    pub username: Option<String>,
    /// `password`.
    pub password: Option<String>,
    /// `tls` (default false).
    pub tls: Option<bool>,
    /// `tls_verify` (default true).
    pub tls_verify: Option<bool>,
    /// `description`.
    pub description: Option<String>,
    /// `enqueue_job` (default false).
    pub enqueue_job: Option<bool>,
}

/// An SMTP server as admins see it: the password only as whether there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpView {
    /// The identifier.
    pub identifier: String,
    /// Host.
    pub server: String,
    /// Port.
    pub port: i64,
    /// User name.
    pub username: String,
    /// A password is stored.
    pub has_password: bool,
    /// Sender address.
    pub sender: String,
    /// STARTTLS / TLS.
    pub tls: bool,
    /// Certificates are checked.
    pub tls_verify: bool,
    /// Timeout in seconds.
    pub timeout: i64,
    /// Description.
    pub description: String,
    /// privacyIDEA's `enqueue_job`.
    pub enqueue_job: bool,
}

impl From<&SmtpServerRow> for SmtpView {
    fn from(r: &SmtpServerRow) -> Self {
        Self {
            identifier: r.identifier.clone(),
            server: r.server.clone(),
            port: r.port,
            username: r.username.clone(),
            has_password: !r.password.is_empty(),
            sender: r.sender.clone(),
            tls: r.tls,
            tls_verify: r.tls_verify,
            timeout: r.timeout,
            description: r.description.clone(),
            enqueue_job: r.enqueue_job,
        }
    }
}

/// What a test mail came to: accepted, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailTest {
    /// The server accepted the mail.
    pub accepted: bool,
    /// Why it did not.
    pub reason: Option<String>,
}

impl crate::call::Outcome for MailTest {
    fn success(&self) -> bool {
        self.accepted
    }

    fn value_is_true(&self) -> bool {
        self.accepted
    }
}

pub(crate) fn aad(identifier: &str) -> String {
    format!("smtpserver:{identifier}:password")
}

impl Services {
    /// Builds a definition from the given fields (a kept password from the stored one).
    pub(crate) async fn smtp_row(
        &self,
        identifier: &str,
        input: &SmtpInput,
    ) -> Result<SmtpServerRow> {
        let old = self.store().smtp_get(identifier).await?;
        let server = input
            .server
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ServiceError::missing("server"))?
            .to_owned();
        let port = input.port.unwrap_or(25);
        if !(1..=65535).contains(&port) {
            return Err(ServiceError::Parameter("port must be 1 to 65535.".into()));
        }
        let timeout = input.timeout.unwrap_or(10);
        if !(1..=120).contains(&timeout) {
            return Err(ServiceError::Parameter(
                "timeout must be 1 to 120 seconds.".into(),
            ));
        }
        let sender = input
            .sender
            .as_deref()
            .unwrap_or_default()
            .trim()
            .to_owned();
        if !sender.is_empty() && !sender.contains('@') {
            return Err(ServiceError::Parameter(
                "sender must be an email address.".into(),
            ));
        }
        let kept = input.password.as_deref() == Some(CENSORED);
        let password = match input.password.as_deref() {
            Some(CENSORED) => old.as_ref().map(|o| o.password.clone()).unwrap_or_default(),
            Some("") | None => String::new(),
            Some(p) => self.keys().seal_str(self.rng(), p, &aad(identifier))?,
        };
        let username = input
            .username
            .as_deref()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let (tls, tls_verify) = (input.tls.unwrap_or(false), input.tls_verify.unwrap_or(true));
        // A kept password may only go where it went before: a changed destination needs it
        // typed again (otherwise an admin could send it to a server of their choice).
        if kept
            && let Some(o) = &old
            && (o.server != server
                || o.port != port
                || o.username != username
                || o.tls != tls
                || o.tls_verify != tls_verify)
        {
            return Err(ServiceError::Parameter(
                "Give the password again when the server, port, user or TLS settings change."
                    .into(),
            ));
        }
        Ok(SmtpServerRow {
            id: 0,
            identifier: identifier.to_owned(),
            server,
            port,
            username,
            password,
            sender,
            tls,
            tls_verify,
            timeout,
            description: input.description.clone().unwrap_or_default(),
            enqueue_job: input.enqueue_job.unwrap_or(false),
        })
    }

    fn smtp_def(&self, r: &SmtpServerRow) -> Result<SmtpServerDef> {
        let password = if r.password.is_empty() {
            String::new()
        } else {
            self.keys()
                .open_str(&r.password, &aad(&r.identifier))
                .map_err(|_| {
                    ServiceError::Internal(format!(
                        "The password of SMTP server {} cannot be decrypted.",
                        r.identifier
                    ))
                })?
                .to_string()
        };
        Ok(SmtpServerDef {
            identifier: r.identifier.clone(),
            server: r.server.clone(),
            port: u16::try_from(r.port).unwrap_or(25),
            username: r.username.clone(),
            password,
            sender: r.sender.clone(),
            tls: r.tls,
            tls_verify: r.tls_verify,
            timeout_secs: u64::try_from(r.timeout).unwrap_or(10),
        })
    }

    /// The decrypted definition of an SMTP server.
    pub async fn smtp_server_def(&self, identifier: &str) -> Result<Option<SmtpServerDef>> {
        match self.store().smtp_get(identifier).await? {
            Some(r) => Ok(Some(self.smtp_def(&r)?)),
            None => Ok(None),
        }
    }

    /// `POST /smtpserver/<identifier>`: creates or replaces the server.
    pub async fn save_smtp_server(
        &self,
        identifier: &str,
        input: &SmtpInput,
        cx: &mut Scope,
    ) -> Result<bool> {
        cx.audit.action_detail = format!("smtpserver {identifier}");
        if !crate::valid_name(identifier) {
            return Err(ServiceError::Parameter(format!(
                "Invalid SMTP server identifier {identifier:?}."
            )));
        }
        let row = self.smtp_row(identifier, input).await?;
        self.store().smtp_upsert(&row).await?;
        Ok(true)
    }

    /// `GET /smtpserver/[<identifier>]`.
    pub async fn list_smtp_servers(&self, identifier: Option<&str>) -> Result<Vec<SmtpView>> {
        Ok(self
            .store()
            .smtp_list()
            .await?
            .iter()
            .filter(|r| identifier.is_none_or(|i| i == r.identifier))
            .map(SmtpView::from)
            .collect())
    }

    /// `DELETE /smtpserver/<identifier>`.
    pub async fn delete_smtp_server(&self, identifier: &str, cx: &mut Scope) -> Result<bool> {
        cx.audit.action_detail = format!("smtpserver {identifier}");
        if self.store().smtp_delete(identifier).await? {
            Ok(true)
        } else {
            Err(ServiceError::NotFound(
                "The requested SMTP server could not be found.".into(),
            ))
        }
    }

    /// `POST /smtpserver/send_test_email`: a test mail to `recipient` through the given
    /// (unsaved) settings, else through the stored server `identifier`.
    pub async fn send_test_email(
        &self,
        identifier: Option<&str>,
        recipient: Option<&str>,
        settings: Option<&SmtpInput>,
    ) -> Result<MailTest> {
        let identifier = identifier
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ServiceError::missing("identifier"))?;
        let recipient = recipient
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ServiceError::missing("recipient"))?;
        let row = match settings {
            Some(input) => self.smtp_row(identifier, input).await?,
            None => self.store().smtp_get(identifier).await?.ok_or_else(|| {
                ServiceError::NotFound("The requested SMTP server could not be found.".into())
            })?,
        };
        let def = self.smtp_def(&row)?;
        let body = format!(
            "This is a test email from otpgate, sent through the SMTP server {identifier}."
        );
        Ok(
            match send_mail(&def, recipient, "otpgate test email", &body).await {
                Ok(()) => MailTest {
                    accepted: true,
                    reason: None,
                },
                Err(e) => MailTest {
                    accepted: false,
                    reason: Some(e.to_string()),
                },
            },
        )
    }
}
