//! `/validate/samlcheck`, which privacyIDEA removed in 3.14 but older SimpleSAMLphp modules
//! still call: `/validate/check`'s decision plus the user's attributes when it accepts.

use super::{CheckOutcome, CheckRequest};
use crate::call::{Authentication, Outcome, Scope};
use crate::users::User;
use crate::{Result, Services};

/// What `/validate/samlcheck` came to: the check, and the user when it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlChecked {
    /// The login attempt's outcome.
    pub outcome: CheckOutcome,
    /// The authenticated user (None unless accepted for a named user).
    pub user: Option<User>,
}

impl Outcome for SamlChecked {
    fn success(&self) -> bool {
        self.outcome.success()
    }

    fn authentication(&self) -> Option<Authentication> {
        Some(self.outcome.authentication())
    }

    fn message(&self) -> Option<String> {
        Outcome::message(&self.outcome)
    }

    fn value_is_true(&self) -> bool {
        // privacyIDEA's value is an object (`auth`, `attributes`).
        false
    }
}

impl Services {
    /// `/validate/samlcheck`: a login attempt as `/validate/check`. With the system setting
    /// `ReturnSamlAttributes` (off by default, as in privacyIDEA), the attributes of a named
    /// user whom a token accepted go with the answer; never for a policy's pass-through (that
    /// would make samlcheck a directory lookup for anyone), never on failure.
    pub async fn saml_check(&self, req: CheckRequest, cx: &mut Scope) -> Result<SamlChecked> {
        let (login, realm) = (req.user.clone(), req.realm.clone());
        let outcome = self.check(req, cx).await?;
        let settings = self.settings().await?;
        let user = match (&outcome, login.as_deref().map(str::trim)) {
            (CheckOutcome::Accept { token: Some(_), .. }, Some(login))
                if !login.is_empty() && settings.config.return_saml_attributes =>
            {
                // The login is over; a user store that cannot answer now costs the
                // attributes, not the login.
                match self.lookup_user(&settings, login, realm.as_deref()).await {
                    Ok((_, _, user)) => user,
                    Err(e) => {
                        tracing::warn!(error = %e, "samlcheck: the user's attributes could not be read");
                        None
                    }
                }
            }
            _ => None,
        };
        Ok(SamlChecked { outcome, user })
    }
}
