//! RADIUS server definitions (`/radiusserver`, privacyIDEA's) and the RADIUS pass-through
//! they serve: the authentication policy `passthru=<identifier>` lets a user without a token
//! log in with what an existing RADIUS server accepts (a migration from an older OTP system).
//! Secrets are sealed at rest and shown as `__CENSORED__`.

use crate::call::Scope;
use crate::gateways::CENSORED;
use crate::{Result, ServiceError, Services};
use otpgate_radius::client::{Answer, Server, access_request};
use otpgate_store::RadiusServerRow;
use std::time::Duration;

/// `POST /radiusserver/<identifier>`'s fields (None: the default; a secret of `__CENSORED__`
/// keeps the stored one).
#[derive(Debug, Clone, Default)]
pub struct RadiusInput {
    /// `server`.
    pub server: Option<String>,
    /// `port` (default 1812).
    pub port: Option<i64>,
    /// `secret`.
    pub secret: Option<String>,
    /// `retries` (default 3).
    pub retries: Option<i64>,
    /// `timeout` in seconds (default 5).
    pub timeout: Option<i64>,
    /// `description`.
    pub description: Option<String>,
    /// `dictionary` (stored, not used).
    pub dictionary: Option<String>,
}

/// A RADIUS server as admins see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadiusView {
    /// Row id.
    pub id: i64,
    /// The identifier.
    pub identifier: String,
    /// Host.
    pub server: String,
    /// Port.
    pub port: i64,
    /// Tries after the first.
    pub retries: i64,
    /// Seconds per try.
    pub timeout: i64,
    /// Dictionary.
    pub dictionary: String,
    /// Description.
    pub description: String,
}

impl From<&RadiusServerRow> for RadiusView {
    fn from(r: &RadiusServerRow) -> Self {
        Self {
            id: r.id,
            identifier: r.identifier.clone(),
            server: r.server.clone(),
            port: r.port,
            retries: r.retries,
            timeout: r.timeout,
            dictionary: r.dictionary.clone(),
            description: r.description.clone(),
        }
    }
}

pub(crate) fn aad(identifier: &str) -> String {
    format!("radiusserver:{identifier}:secret")
}

fn not_found() -> ServiceError {
    ServiceError::NotFound("The requested RADIUS server could not be found.".into())
}

impl Services {
    /// Builds a definition from the given fields (a kept secret from the stored one).
    pub(crate) async fn radius_row(
        &self,
        identifier: &str,
        input: &RadiusInput,
    ) -> Result<RadiusServerRow> {
        let old = self.store().radius_get(identifier).await?;
        let server = input
            .server
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ServiceError::missing("server"))?
            .to_owned();
        let port = input.port.unwrap_or(1812);
        if !(1..=65535).contains(&port) {
            return Err(ServiceError::Parameter("port must be 1 to 65535.".into()));
        }
        let retries = input.retries.unwrap_or(3);
        let timeout = input.timeout.unwrap_or(5);
        if !(0..=10).contains(&retries) || !(1..=60).contains(&timeout) {
            return Err(ServiceError::Parameter(
                "retries must be 0 to 10 and timeout 1 to 60 seconds.".into(),
            ));
        }
        let secret = match input.secret.as_deref() {
            Some(CENSORED) => {
                let old = old
                    .as_ref()
                    .ok_or_else(|| ServiceError::missing("secret"))?;
                // A kept secret may only go where it went before.
                if old.server != server || old.port != port {
                    return Err(ServiceError::Parameter(
                        "Give the secret again when the server or port changes.".into(),
                    ));
                }
                old.secret.clone()
            }
            Some(s) if !s.is_empty() => self.keys().seal_str(self.rng(), s, &aad(identifier))?,
            _ => return Err(ServiceError::missing("secret")),
        };
        Ok(RadiusServerRow {
            id: 0,
            identifier: identifier.to_owned(),
            server,
            port,
            secret,
            description: input.description.clone().unwrap_or_default(),
            dictionary: input.dictionary.clone().unwrap_or_default(),
            retries,
            timeout,
        })
    }

    /// `POST /radiusserver/<identifier>`: creates or replaces the definition (blanks in the
    /// identifier become `_`, as in privacyIDEA).
    pub async fn save_radius_server(
        &self,
        identifier: &str,
        input: &RadiusInput,
        cx: &mut Scope,
    ) -> Result<bool> {
        let identifier = identifier.replace(' ', "_");
        cx.audit.action_detail = format!("radiusserver {identifier}");
        if !crate::valid_name(&identifier) {
            return Err(ServiceError::Parameter(format!(
                "Invalid RADIUS server identifier {identifier:?}."
            )));
        }
        let row = self.radius_row(&identifier, input).await?;
        self.store().radius_upsert(&row).await?;
        Ok(true)
    }

    /// `GET /radiusserver/`.
    pub async fn list_radius_servers(&self) -> Result<Vec<RadiusView>> {
        Ok(self
            .store()
            .radius_list()
            .await?
            .iter()
            .map(RadiusView::from)
            .collect())
    }

    /// `DELETE /radiusserver/<identifier>`.
    pub async fn delete_radius_server(&self, identifier: &str, cx: &mut Scope) -> Result<bool> {
        cx.audit.action_detail = format!("radiusserver {identifier}");
        if self.store().radius_delete(identifier).await? {
            Ok(true)
        } else {
            Err(not_found())
        }
    }

    /// One Access-Request for `user` with `password` to server `r`: true when it accepts.
    async fn radius_accepts(
        &self,
        r: &RadiusServerRow,
        user: &str,
        password: &str,
    ) -> Result<bool> {
        let secret = self
            .keys()
            .open_str(&r.secret, &aad(&r.identifier))
            .map_err(|_| {
                ServiceError::Internal(format!(
                    "The secret of RADIUS server {} cannot be decrypted.",
                    r.identifier
                ))
            })?;
        let address = if r.server.contains(':') && !r.server.starts_with('[') {
            format!("[{}]:{}", r.server, r.port)
        } else {
            format!("{}:{}", r.server, r.port)
        };
        let server = Server {
            address: &address,
            secret: secret.as_bytes(),
            timeout: Duration::from_secs(u64::try_from(r.timeout).unwrap_or(5)),
            retries: u32::try_from(r.retries).unwrap_or(3),
            nas_identifier: "otpgate",
        };
        let mut authenticator = [0u8; 16];
        self.rng().fill(&mut authenticator)?;
        match access_request(&server, user, password, authenticator).await {
            Ok(Answer::Accept) => Ok(true),
            Ok(Answer::Reject | Answer::Challenge) => Ok(false),
            Err(e) => {
                tracing::warn!(server = %r.identifier, error = %e, "RADIUS pass-through got no answer");
                Ok(false)
            }
        }
    }

    /// The RADIUS pass-through: whether server `identifier` accepts `user` with `password`.
    pub(crate) async fn radius_passthru(
        &self,
        identifier: &str,
        user: &str,
        password: &str,
    ) -> Result<bool> {
        let r = self
            .store()
            .radius_get(identifier)
            .await?
            .ok_or_else(not_found)?;
        self.radius_accepts(&r, user, password).await
    }

    /// `POST /radiusserver/test_request`: an Access-Request through the given (unsaved)
    /// settings, or the stored server `identifier` when no `server` is given.
    pub async fn test_radius_server(
        &self,
        identifier: Option<&str>,
        settings: Option<&RadiusInput>,
        user: Option<&str>,
        password: Option<&str>,
    ) -> Result<bool> {
        let identifier = identifier
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ServiceError::missing("identifier"))?;
        let user = user.ok_or_else(|| ServiceError::missing("username"))?;
        let password = password.ok_or_else(|| ServiceError::missing("password"))?;
        let row = match settings {
            Some(input) => self.radius_row(identifier, input).await?,
            None => self
                .store()
                .radius_get(identifier)
                .await?
                .ok_or_else(not_found)?,
        };
        self.radius_accepts(&row, user, password).await
    }
}
