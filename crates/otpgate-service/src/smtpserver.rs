//! Central SMTP server definitions (`/smtpserver`, privacyIDEA A.7): used by the SMTP SMS
//! provider. Passwords are encrypted at rest and shown as `__CENSORED__`.

use crate::gateways::CENSORED;
use crate::{Params, Result, ServiceError, Services};
use otpgate_gateways::{SmtpServerDef, send_mail};
use otpgate_store::SmtpServerRow;
use serde_json::{Map, Value, json};

pub(crate) fn aad(identifier: &str) -> String {
    format!("smtpserver:{identifier}:password")
}

fn valid_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn row_json(r: &SmtpServerRow) -> Value {
    json!({
        "identifier": r.identifier, "server": r.server, "port": r.port, "username": r.username,
        "password": if r.password.is_empty() { "" } else { CENSORED }, "sender": r.sender, "tls": r.tls,
        "tls_verify": r.tls_verify, "timeout": r.timeout, "description": r.description, "enqueue_job": r.enqueue_job,
    })
}

impl Services {
    /// Builds a definition from request parameters (falling back to a stored one).
    async fn smtp_row_from_params(
        &self,
        identifier: &str,
        params: &Params,
    ) -> Result<SmtpServerRow> {
        let old = self.store().smtp_get(identifier).await?;
        let server = params
            .get_nonblank("server")
            .ok_or_else(|| ServiceError::missing("server"))?
            .to_owned();
        let port = params.int("port")?.unwrap_or(25);
        if !(1..=65535).contains(&port) {
            return Err(ServiceError::Parameter("port must be 1 to 65535.".into()));
        }
        let timeout = params.int("timeout")?.unwrap_or(10);
        if !(1..=120).contains(&timeout) {
            return Err(ServiceError::Parameter(
                "timeout must be 1 to 120 seconds.".into(),
            ));
        }
        let sender = params.get("sender").unwrap_or_default().trim().to_owned();
        if !sender.is_empty() && !sender.contains('@') {
            return Err(ServiceError::Parameter(
                "sender must be an email address.".into(),
            ));
        }
        let password = match params.get("password") {
            Some(CENSORED) => old.as_ref().map(|o| o.password.clone()).unwrap_or_default(),
            Some("") | None => String::new(),
            Some(p) => self.keys().seal_str(self.rng(), p, &aad(identifier))?,
        };
        let flag = |k: &str, default: bool| params.get(k).map_or(default, crate::params::is_true);
        let username = params.get("username").unwrap_or_default().trim().to_owned();
        let (tls, tls_verify) = (flag("tls", false), flag("tls_verify", true));
        // A kept password may only go where it went before: a changed destination needs it
        // typed again (otherwise an admin could send it to a server of their choice).
        if params.get("password") == Some(CENSORED)
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
            description: params.get("description").unwrap_or_default().to_owned(),
            enqueue_job: flag("enqueue_job", false),
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

    /// `POST /smtpserver/<identifier>`.
    pub async fn save_smtp_server(&self, identifier: &str, params: &Params) -> Result<Value> {
        if !valid_identifier(identifier) {
            return Err(ServiceError::Parameter(format!(
                "Invalid SMTP server identifier {identifier:?}."
            )));
        }
        let row = self.smtp_row_from_params(identifier, params).await?;
        self.store().smtp_upsert(&row).await?;
        Ok(json!(true))
    }

    /// `GET /smtpserver/[<identifier>]`.
    pub async fn list_smtp_servers(&self, identifier: Option<&str>) -> Result<Value> {
        let map: Map<String, Value> = self
            .store()
            .smtp_list()
            .await?
            .iter()
            .filter(|r| identifier.is_none_or(|i| i == r.identifier))
            .map(|r| (r.identifier.clone(), row_json(r)))
            .collect();
        Ok(Value::Object(map))
    }

    /// `DELETE /smtpserver/<identifier>`.
    pub async fn delete_smtp_server(&self, identifier: &str) -> Result<Value> {
        if self.store().smtp_delete(identifier).await? {
            Ok(json!(true))
        } else {
            Err(ServiceError::NotFound(
                "The requested SMTP server could not be found.".into(),
            ))
        }
    }

    /// `POST /smtpserver/send_test_email`: with `server` the given (unsaved) settings, else the
    /// stored definition `identifier`. Returns whether the mail was accepted and why not.
    pub async fn send_test_email(&self, params: &Params) -> Result<(bool, Option<String>)> {
        let identifier = params
            .get_nonblank("identifier")
            .ok_or_else(|| ServiceError::missing("identifier"))?;
        let recipient = params
            .get_nonblank("recipient")
            .ok_or_else(|| ServiceError::missing("recipient"))?;
        let row = if params.get_nonblank("server").is_some() {
            self.smtp_row_from_params(identifier, params).await?
        } else {
            self.store().smtp_get(identifier).await?.ok_or_else(|| {
                ServiceError::NotFound("The requested SMTP server could not be found.".into())
            })?
        };
        let def = self.smtp_def(&row)?;
        let body = format!(
            "This is a test email from otpgate, sent through the SMTP server {identifier}."
        );
        match send_mail(&def, recipient, "otpgate test email", &body).await {
            Ok(()) => Ok((true, None)),
            Err(e) => Ok((false, Some(e.to_string()))),
        }
    }
}
