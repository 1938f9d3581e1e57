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
    /// `/validate/samlcheck`: a login attempt as `/validate/check`; when it accepts a named
    /// user, the user's attributes go with the answer.
    pub async fn saml_check(&self, req: CheckRequest, cx: &mut Scope) -> Result<SamlChecked> {
        let (login, realm) = (req.user.clone(), req.realm.clone());
        let outcome = self.check(req, cx).await?;
        let user = match (&outcome, login.as_deref().map(str::trim)) {
            (CheckOutcome::Accept { .. }, Some(login)) if !login.is_empty() => {
                let settings = self.settings().await?;
                self.lookup_user(&settings, login, realm.as_deref())
                    .await?
                    .2
            }
            _ => None,
        };
        Ok(SamlChecked { outcome, user })
    }
}
