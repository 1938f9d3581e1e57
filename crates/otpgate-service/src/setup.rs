//! What a new installation still lacks before a first SMS login works, in the order to fix it
//! (user store → realm → gateway → default gateway → a user → an SMS token), and the step
//! after it (a first login tried): the console's dashboard and forms show it, so a new admin
//! is not left with "the SMS could not be sent" at the first login, nor wondering what next.

use crate::{Result, Services};

/// A step of the first set-up, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SetupStep {
    /// No user store at all.
    UserStore,
    /// No realm at all.
    Realm,
    /// A realm without a user store.
    RealmWithoutStore,
    /// No SMS gateway.
    Gateway,
    /// No default gateway, or one that does not exist.
    DefaultGateway,
    /// Every user store in a realm is internal, and none has a user.
    User,
    /// No SMS token.
    Token,
    /// Nobody has signed in with an SMS token yet (not a gap: the next thing to do).
    FirstLogin,
    /// No policy sets an SMS text: the SMS carries the bare code, privacyIDEA's default (not a
    /// gap: a recommendation).
    SmsText,
}

impl SetupStep {
    /// Until it is done a first SMS login cannot work.
    pub fn blocks_login(self) -> bool {
        !matches!(self, SetupStep::FirstLogin | SetupStep::SmsText)
    }
}

/// One thing the set-up lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupGap {
    /// Which step.
    pub step: SetupStep,
    /// What is missing, in words.
    pub message: String,
    /// The realm it concerns, if one.
    pub realm: Option<String>,
}

/// The default gateway's gap, if there is one: none set, or one that does not exist.
fn default_gateway_gap(settings: &crate::snapshot::Settings) -> Option<SetupGap> {
    let message = if settings.gateways.is_empty() {
        "No default SMS gateway: the first gateway saved in the console becomes the default."
            .to_owned()
    } else {
        match settings.config.sms_identifier.as_deref() {
            None | Some("") => "No default SMS gateway: tokens without a gateway of their own cannot send. Make one the default (a new gateway saved in the console becomes it).".to_owned(),
            Some(d) if !settings.gateways.contains_key(d) => format!(
                "The default SMS gateway {d} does not exist: tokens without a gateway of their own cannot send. Make another one the default (a new gateway saved in the console becomes it)."
            ),
            Some(_) => return None,
        }
    };
    Some(SetupGap {
        step: SetupStep::DefaultGateway,
        message,
        realm: None,
    })
}

impl Services {
    /// Why "the default gateway" would not send, if it would not (the enroll form's warning).
    pub async fn default_gateway_gap(&self) -> Result<Option<SetupGap>> {
        Ok(default_gateway_gap(&*self.settings().await?))
    }

    /// What the set-up lacks, first things first (empty: nothing); a first login is the next
    /// step once nothing else is missing.
    pub async fn setup_gaps(&self) -> Result<Vec<SetupGap>> {
        let settings = self.settings().await?;
        let mut gaps = Vec::new();
        fn gap(gaps: &mut Vec<SetupGap>, step: SetupStep, message: String, realm: Option<&str>) {
            gaps.push(SetupGap {
                step,
                message,
                realm: realm.map(str::to_owned),
            });
        }
        if settings.resolvers.is_empty() {
            gap(
                &mut gaps,
                SetupStep::UserStore,
                "No user store yet: users come from a user store (resolver). Add one first: an internal one keeps users in otpgate's own database."
                    .into(),
                None,
            );
        }
        if settings.realms.is_empty() {
            gap(
                &mut gaps,
                SetupStep::Realm,
                "No realm yet: a realm groups user stores; logins name it (or use the default realm)."
                    .into(),
                None,
            );
        }
        for r in settings.realms.iter().filter(|r| r.resolvers.is_empty()) {
            gap(
                &mut gaps,
                SetupStep::RealmWithoutStore,
                format!(
                    "The realm {} has no user store: nobody can sign in there.",
                    r.name
                ),
                Some(&r.name),
            );
        }
        if settings.gateways.is_empty() {
            gap(
                &mut gaps,
                SetupStep::Gateway,
                "No SMS gateway yet: without one no SMS goes out.".into(),
                None,
            );
        }
        gaps.extend(default_gateway_gap(&settings));
        let progress = self.store().setup_progress(false).await?;
        // Users of LDAP and passwd stores are there already; internal stores start empty.
        let all_internal = settings.realms.iter().all(|r| {
            r.resolvers.iter().all(|(name, _)| {
                settings
                    .resolvers
                    .get(name)
                    .is_some_and(|x| x.rtype == "internalresolver")
            })
        });
        let realm = settings
            .realms
            .iter()
            .find(|r| r.is_default)
            .or(settings.realms.first());
        if all_internal && !progress.internal_users {
            let message = match realm {
                Some(r) => format!(
                    "No user yet: the user stores are internal ones, and they are empty. Add a user with a mobile number to the realm {}.",
                    r.name
                ),
                None => "No user yet: add a user with a mobile number (in an internal user store, on the Users page).".to_owned(),
            };
            gap(
                &mut gaps,
                SetupStep::User,
                message,
                realm.map(|r| r.name.as_str()),
            );
        }
        if !progress.sms_tokens {
            gap(
                &mut gaps,
                SetupStep::Token,
                "No SMS token yet: a user signs in with SMS once they have one. Enroll one for a user."
                    .into(),
                None,
            );
        }
        // Whether anyone signed in with SMS yet: asked only when nothing else is missing.
        if gaps.is_empty() && !self.store().setup_progress(true).await?.sms_logins {
            gap(
                &mut gaps,
                SetupStep::FirstLogin,
                "Nobody has signed in with an SMS code yet. Try it: open the sign-in page (/ui/login) in a private window (a sign-in in this window ends your admin session), sign in as a user with a token with their PIN, then type the code from the SMS."
                    .into(),
                None,
            );
        }
        if !settings.policies.uses("authentication", "smstext") {
            gap(
                &mut gaps,
                SetupStep::SmsText,
                "The SMS carries the code alone (privacyIDEA's default): users see a number from an unknown sender. Write a text that says what the code is for."
                    .into(),
                None,
            );
        }
        Ok(gaps)
    }
}
