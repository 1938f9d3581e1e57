//! Token administration (`/token/…`): enrol SMS tokens, list, enable/disable, reset, set PIN
//! and attributes, delete, and list challenges; typed requests in, typed views out. Owners
//! and realms are in [`owners`], single edits (revoke, description, info, PINs, ending
//! challenges) in [`edits`], what admins see (listing, views) in [`views`].

mod edits;
mod owners;
mod reach;
mod views;

pub use edits::{ChallengesDeleted, RandomPinSet};
pub use owners::{Assignment, Unassigned};
pub use views::{ChallengeView, OwnerView, TokenQuery, TokenView};

use crate::audit::AuditEntry;
use crate::call::{Outcome, RequestData, Scope};
use crate::facts::RequestFacts;
use crate::nonblank;
use crate::users::User;
use crate::{Result, ServiceError, Services};
use chrono::SecondsFormat;
use otpgate_core::hotp::HashLib;
use otpgate_core::reach::Target;
use otpgate_store::{NewToken, TokenOwner, TokenRow};
use std::collections::BTreeMap;

/// A user a request names: `user` (may be `user@realm`) and `realm`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRef {
    /// The login name as given.
    pub login: String,
    /// The realm as given (None: the default, or the one in `login`).
    pub realm: Option<String>,
}

/// `POST /token/init`'s parameters.
#[derive(Debug, Clone, Default)]
pub struct TokenInit {
    /// `type` (only `sms` is served; privacyIDEA's default is `hotp`).
    pub tokentype: Option<String>,
    /// The owner.
    pub user: Option<UserRef>,
    /// `serial` (generated when absent).
    pub serial: Option<String>,
    /// `phone`.
    pub phone: Option<String>,
    /// `dynamic_phone`: the number is read from the user store at every login.
    pub dynamic_phone: bool,
    /// `hashlib`.
    pub hashlib: Option<String>,
    /// `otplen` (6 or 8).
    pub otplen: Option<i64>,
    /// `otpkey` (hex), unless `genkey`.
    pub otpkey: Option<String>,
    /// `genkey`: a random key even when `otpkey` is given.
    pub genkey: bool,
    /// `pin`.
    pub pin: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// The `sms.*` parameters, kept as token info (`sms.identifier`: the gateway).
    pub sms_info: BTreeMap<String, String>,
    /// `verify`: the OTP that finishes an enrollment waiting for verification.
    pub verify: Option<String>,
}

/// What `/token/init` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInitialized {
    /// The token.
    pub serial: String,
    /// Its rollout state (`enrolled`, or `verify` while it waits for its first OTP).
    pub rollout_state: String,
    /// The prompt for that OTP, when the token waits for it.
    pub verify_prompt: Option<&'static str>,
}

impl Outcome for TokenInitialized {
    fn value_is_true(&self) -> bool {
        true
    }
}

/// The tokens a change addresses: one serial (path or parameter), else all of a user's.
#[derive(Debug, Clone, Default)]
pub struct TokenTarget {
    /// The serial.
    pub serial: Option<String>,
    /// The user, when no serial is given.
    pub user: Option<UserRef>,
}

impl TokenTarget {
    /// The token `serial`.
    pub fn serial(serial: &str) -> Self {
        Self {
            serial: Some(serial.to_owned()),
            user: None,
        }
    }
}

/// `POST /token/set`'s attributes (None: unchanged).
#[derive(Debug, Clone, Default)]
pub struct TokenAttributes {
    /// `max_failcount`.
    pub max_failcount: Option<i64>,
    /// `count_window`.
    pub count_window: Option<i64>,
    /// `description`.
    pub description: Option<String>,
    /// `phone`: the number the SMS token sends to from now on (validated and stored in E.164
    /// as at enrollment; the token stops reading the user store's number).
    pub phone: Option<String>,
    /// `dynamic_phone`: read the number from the user store at every login (on), or not
    /// (off: the token needs a `phone`).
    pub dynamic_phone: Option<bool>,
    /// `sms.identifier`: the gateway the token sends through.
    pub sms_identifier: Option<String>,
}

/// privacyIDEA's prompt of an enrollment that waits for verification.
pub const VERIFY_PROMPT: &str = "Enter the OTP from the SMS:";

/// The answer when an enrollment's verification OTP does not finish it.
pub const VERIFY_FAILED: &str = "Verification of the new token failed.";

/// The AAD that binds a sealed HOTP key to its token.
pub fn key_aad(serial: &str) -> String {
    format!("token.key:{serial}")
}

fn valid_serial(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

fn not_found(serial: &str) -> ServiceError {
    ServiceError::NotFound(format!("No token found for serials: {serial}"))
}

impl Services {
    /// The user a request names; errors as privacyIDEA's token API does.
    async fn named_user(&self, user: Option<&UserRef>) -> Result<Option<User>> {
        let Some(u) = user else {
            return Ok(None);
        };
        let settings = self.settings().await?;
        match self
            .lookup_user(&settings, &u.login, u.realm.as_deref())
            .await?
            .2
        {
            Some(u) => Ok(Some(u)),
            None => Err(ServiceError::User(
                "The user can not be found in any resolver in this realm!".into(),
            )),
        }
    }

    /// The tokens a change addresses: one serial or all tokens of a user.
    /// The calling admin must reach the token, or the user (refused as privacyIDEA refuses).
    async fn addressed_tokens(
        &self,
        target: &TokenTarget,
        cx: &mut Scope,
    ) -> Result<Vec<TokenRow>> {
        let audit = &mut cx.audit;
        let serial = target
            .serial
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if let Some(s) = serial {
            // Named in the audit even when no such token exists, as privacyIDEA does.
            audit.serial = s.to_owned();
        }
        let tokens = match serial {
            Some(s) => match self.store().token_by_serial(s).await? {
                Some(t) => vec![t],
                None => return Err(not_found(s)),
            },
            None => match self.named_user(target.user.as_ref()).await? {
                Some(u) => {
                    cx.reach(&u.target())?;
                    self.store().tokens_of_user(&owner_of(&u)).await?
                }
                None => {
                    return Err(ServiceError::Parameter(
                        "Missing parameter: 'serial' or 'serials'".into(),
                    ));
                }
            },
        };
        self.note_tokens(&mut cx.audit, &tokens).await?;
        if serial.is_some() {
            for t in &tokens {
                self.reach_token(cx, t, false).await?;
            }
        }
        Ok(tokens)
    }

    /// Records serials, type and (like privacyIDEA) the owner of the first token in the audit.
    async fn note_tokens(&self, audit: &mut AuditEntry, tokens: &[TokenRow]) -> Result<()> {
        audit.serial = tokens
            .iter()
            .map(|t| t.serial.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let Some(t) = tokens.first() else {
            return Ok(());
        };
        audit.token_type = t.tokentype.clone();
        if let Some(o) = &t.owner {
            audit.realm = o.realm.clone();
            audit.resolver = o.resolver.clone();
            if let Some(u) = self.user_by_id(&o.resolver, &o.user_id, &o.realm).await? {
                audit.user = u.login;
            }
        }
        Ok(())
    }

    /// `POST /token/init` for SMS tokens; with `verify`, the OTP that finishes an enrollment
    /// waiting for verification.
    pub async fn init_token(&self, req: TokenInit, cx: &mut Scope) -> Result<TokenInitialized> {
        if let Some(otp) = req
            .verify
            .as_deref()
            .map(str::trim)
            .filter(|o| !o.is_empty())
        {
            return self
                .finish_api_enrollment(req.serial.as_deref(), otp, &mut cx.audit)
                .await;
        }
        // The admin's `enrollSMS` policies must reach the new owner (privacyIDEA lets a
        // realm-scoped admin enroll tokens without owner).
        let owner = self.named_user(req.user.as_ref()).await?;
        if let Some(pin) = &req.pin {
            let whom = owner.as_ref().map(User::target);
            // privacyIDEA's `enrollpin` right: without it, an enrollment that sets a PIN is
            // refused (for the new owner; a token without owner needs it for anyone).
            if let Some(admin) = cx.admin() {
                let reach = self.policies().await?.admin_reach(admin, "enrollpin");
                let allowed = match &whom {
                    Some(t) => reach.covers(t),
                    None => reach.anyone(),
                };
                if !allowed {
                    return Err(ServiceError::Policy(
                        "Setting a PIN is not allowed due to missing 'enrollpin' right.".into(),
                    ));
                }
            }
            self.check_pin_policy(cx, pin, whom.as_ref()).await?;
        }
        let request = cx.request();
        if let Some(u) = &owner {
            cx.reach(&u.target())?;
            self.check_token_limits(u, req.serial.as_deref(), request.as_deref())
                .await?;
        }
        // Re-initialising an existing token changes its key, number and PIN: the admin must
        // reach the token as it is (its owner, or its realms when it has none).
        if let Some(serial) = nonblank(&req.serial)
            && let Some(existing) = self.store().token_by_serial(&serial).await?
        {
            self.reach_token(cx, &existing, owner.is_some()).await?;
        }
        self.check_description_required(&req, owner.as_ref(), request.as_deref())
            .await?;
        // ENROLL `otp_pin_random=<length>`: the token gets a random PIN (with the characters
        // the admin's `otp_pin_contents` allows) instead of one given; nobody is told it, as in
        // privacyIDEA without a PIN handler: the owner logs in with the user store's password
        // (`otppin=userstore`) or gets a PIN set later.
        let mut req = req;
        if let Some(size) = self
            .random_pin_length(owner.as_ref(), request.as_deref())
            .await?
        {
            let policies = self.policies().await?;
            let whom = owner.as_ref().map(User::target);
            let contents =
                match edits::admin_value(&policies, cx, "sms_otp_pin_contents", whom.as_ref())? {
                    Some(c) => Some(c),
                    None => edits::admin_value(&policies, cx, "otp_pin_contents", whom.as_ref())?,
                };
            req.pin = Some(otpgate_core::random_pin::random_pin(
                self.rng(),
                size,
                contents.as_deref(),
            )?);
            cx.audit
                .action_detail
                .push_str("random PIN (otp_pin_random), ");
        }
        // No PIN at all: the admin's PIN policies judge the empty PIN, as privacyIDEA's do, so
        // `otp_pin_minlength` refuses a token without a PIN.
        if req.pin.is_none() {
            let whom = owner.as_ref().map(User::target);
            self.check_pin_policy(cx, "", whom.as_ref()).await?;
        }
        if !self
            .enrollment_is_verified(owner.as_ref(), request.as_deref())
            .await?
        {
            let admin = cx.admin().map(str::to_owned);
            let row = self
                .init_token_in(
                    &req,
                    admin.as_deref().map(|a| (a, owner.as_ref())),
                    &mut cx.audit,
                    "enrolled",
                )
                .await?;
            self.schedule_pin_change(&row, owner.as_ref(), true).await?;
            return Ok(initialized(&row));
        }
        // ENROLL `verify_enrollment=sms`: the token waits in `verify` for the OTP of an SMS
        // sent now; a second call with `serial` and `verify=<otp>` finishes it.
        let admin = cx.admin().map(str::to_owned);
        let row = self
            .init_token_in(
                &req,
                admin.as_deref().map(|a| (a, owner.as_ref())),
                &mut cx.audit,
                "verify",
            )
            .await?;
        self.schedule_pin_change(&row, owner.as_ref(), true).await?;
        if row.rollout_state != "verify" {
            // An existing enrolled token re-initialised: nothing to verify.
            return Ok(initialized(&row));
        }
        let user = match &row.owner {
            Some(o) => self.user_by_id(&o.resolver, &o.user_id, &o.realm).await?,
            None => None,
        };
        let (id, serial) = (row.id, row.serial.clone());
        if let Err(e) = self
            .send_enrollment_otp(user.as_ref(), row, None, &mut cx.audit)
            .await
        {
            self.store().token_delete(id).await?;
            return Err(e);
        }
        Ok(TokenInitialized {
            serial,
            rollout_state: "verify".into(),
            verify_prompt: Some(VERIFY_PROMPT),
        })
    }

    /// ENROLL-scope `require_description` (a list of token types): a new SMS token needs a
    /// description, privacyIDEA's `Description required for sms token.` (403).
    async fn check_description_required(
        &self,
        req: &TokenInit,
        owner: Option<&User>,
        request: Option<&RequestData>,
    ) -> Result<()> {
        if nonblank(&req.description).is_some() {
            return Ok(());
        }
        let enroll = self.enrollment_policies(owner, request).await?;
        let names_sms = enroll
            .policies
            .values("enrollment", "require_description", &enroll.ctx())?
            .iter()
            .any(|v| {
                v.split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|t| t.eq_ignore_ascii_case("sms"))
            });
        if !names_sms {
            return Ok(());
        }
        // Re-initialising an existing token needs none.
        if let Some(serial) = nonblank(&req.serial)
            && self.store().token_by_serial(&serial).await?.is_some()
        {
            return Ok(());
        }
        Err(ServiceError::Policy(
            "Description required for sms token.".into(),
        ))
    }

    /// The ENROLL-scope `otp_pin_random` length for this owner, if a policy sets one.
    async fn random_pin_length(
        &self,
        owner: Option<&User>,
        request: Option<&RequestData>,
    ) -> Result<Option<usize>> {
        let enroll = self.enrollment_policies(owner, request).await?;
        if !enroll.policies.uses("enrollment", "otp_pin_random") {
            return Ok(None);
        }
        Ok(enroll
            .policies
            .text("enrollment", "otp_pin_random", &enroll.ctx())?
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| (1..=64).contains(n)))
    }

    /// Whether an ENROLL-scope `verify_enrollment` policy names SMS tokens for this user.
    async fn enrollment_is_verified(
        &self,
        user: Option<&User>,
        request: Option<&RequestData>,
    ) -> Result<bool> {
        let enroll = self.enrollment_policies(user, request).await?;
        Ok(
            match enroll
                .policies
                .action("enrollment", "verify_enrollment", &enroll.ctx())?
            {
                Some((crate::policy::ActionValue::Flag, _)) => true,
                Some((crate::policy::ActionValue::Value(v), _)) => v
                    .split([' ', ','])
                    .any(|t| t.trim().eq_ignore_ascii_case("sms")),
                None => false,
            },
        )
    }

    /// `POST /token/init` with `serial` and `verify=<otp>`: the token in `verify` is enrolled
    /// when the OTP is that of its live challenge (consumed exactly once).
    async fn finish_api_enrollment(
        &self,
        serial: Option<&str>,
        otp: &str,
        audit: &mut AuditEntry,
    ) -> Result<TokenInitialized> {
        let serial = serial.ok_or_else(|| ServiceError::missing("serial"))?;
        audit.serial = serial.to_owned();
        audit.token_type = "sms".into();
        let row = self
            .store()
            .token_by_serial(serial)
            .await?
            .filter(|t| t.tokentype == "sms" && t.rollout_state == "verify")
            .ok_or_else(|| ServiceError::Parameter(VERIFY_FAILED.into()))?;
        let id = row.id;
        if !self.answer_enrollment_challenge(row, otp).await?
            || !self.store().token_finish_verify(id, None).await?
        {
            return Err(ServiceError::Parameter(VERIFY_FAILED.into()));
        }
        Ok(TokenInitialized {
            serial: serial.to_owned(),
            rollout_state: "enrolled".into(),
            verify_prompt: None,
        })
    }

    /// privacyIDEA's `sms_gateways` admin policy: an admin may name only the gateways it
    /// lists as a token's `sms.identifier`. At enrollment (`strict`) a gateway needs the
    /// policy; on `/token/set` and `/token/info` it applies where such a policy exists.
    /// `target`: the token's owner or the user it is enrolled for (None: unknown).
    async fn check_gateway_allowed(
        &self,
        admin: &str,
        id: &str,
        strict: bool,
        target: Option<&Target<'_>>,
    ) -> Result<()> {
        let allowed = self
            .policies()
            .await?
            .admin_values_for(admin, "sms_gateways", target);
        if (!strict && allowed.is_empty())
            || allowed
                .iter()
                .flat_map(|(_, v, _)| v.split_whitespace())
                .any(|g| g == id)
        {
            Ok(())
        } else {
            Err(ServiceError::Policy(
                "The requested sms.identifier is not allowed to be enrolled.".into(),
            ))
        }
    }

    /// Creates (or re-initialises) an SMS token with `rollout_state` (`verify` for an
    /// enrollment that is finished only when the user has entered the OTP of a first SMS);
    /// returns it as stored (a re-initialised existing token keeps its state). `admin` is
    /// the admin's name for the `sms_gateways` admin policy (None: self-service).
    /// `admin` (with the token's owner, whom its `sms_gateways` policies must reach), or None
    /// for a user's own enrollment.
    pub(crate) async fn init_token_in(
        &self,
        req: &TokenInit,
        admin: Option<(&str, Option<&User>)>,
        audit: &mut AuditEntry,
        rollout_state: &str,
    ) -> Result<TokenRow> {
        let ttype = nonblank(&req.tokentype)
            .unwrap_or_else(|| "hotp".to_owned())
            .to_ascii_lowercase();
        if ttype != "sms" {
            return Err(ServiceError::Parameter(format!(
                "Unsupported token type {ttype}: otpgate serves SMS tokens (type=sms)."
            )));
        }
        audit.token_type = "sms".into();
        let dynamic = req.dynamic_phone;
        let phone = nonblank(&req.phone);
        if dynamic && phone.is_some() {
            return Err(ServiceError::Parameter(
                "The parameters phone and dynamic_phone exclude each other.".into(),
            ));
        }
        if !dynamic && phone.is_none() {
            return Err(ServiceError::missing("phone"));
        }
        if phone
            .as_deref()
            .is_some_and(|p| p.len() > 64 || p.chars().any(char::is_control))
        {
            return Err(ServiceError::invalid(
                "phone",
                "The phone number is not valid.",
            ));
        }
        let cfg = self.system_config().await?;
        let hashlib = match nonblank(&req.hashlib) {
            Some(h) => HashLib::parse(&h)
                .map_err(|_| ServiceError::Parameter(format!("Unsupported hashlib {h}.")))?,
            None => HashLib::Sha1,
        };
        let otplen = match req.otplen {
            None => cfg.default_otp_len,
            Some(n @ (6 | 8)) => n,
            Some(_) => return Err(ServiceError::Parameter("otplen must be 6 or 8.".into())),
        };
        if let Some(id) = req
            .sms_info
            .get("sms.identifier")
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
        {
            if let Some((admin, owner)) = admin {
                let whom = owner.map(User::target);
                self.check_gateway_allowed(admin, id, true, whom.as_ref())
                    .await?;
            }
            if self.store().gateway_by_name(id).await?.is_none() {
                return Err(ServiceError::invalid(
                    "sms.identifier",
                    format!("The SMS gateway {id} does not exist."),
                ));
            }
        }
        let user = self.named_user(req.user.as_ref()).await?;
        let key = match nonblank(&req.otpkey) {
            Some(hex) if !req.genkey => {
                let k = decode_hex(&hex)
                    .ok_or_else(|| ServiceError::Parameter("otpkey must be hexadecimal.".into()))?;
                if k.len() < 16 || k.len() > 128 {
                    return Err(ServiceError::Parameter(
                        "otpkey must be 16 to 128 bytes long.".into(),
                    ));
                }
                zeroize::Zeroizing::new(k)
            }
            _ => zeroize::Zeroizing::new(self.rng().bytes(hashlib.key_len())?),
        };
        let serial = match nonblank(&req.serial) {
            Some(s) if valid_serial(&s) => s,
            Some(_) => return Err(ServiceError::Parameter("Invalid serial number.".into())),
            None => format!("PISM{}", self.rng().pick(b"0123456789ABCDEF", 8)?),
        };
        audit.serial = serial.clone();
        let now = self
            .clock()
            .now()
            .to_rfc3339_opts(SecondsFormat::Secs, false);
        let mut info = BTreeMap::from([
            ("hashlib".to_owned(), hashlib.as_str().to_owned()),
            ("tokenkind".to_owned(), "software".to_owned()),
        ]);
        match &phone {
            Some(p) => {
                let realm = user.as_ref().map(|u| u.realm.as_str()).unwrap_or_default();
                info.insert(
                    "phone".into(),
                    crate::limits::enrollment_number(&cfg, realm, p)?,
                )
            }
            None => info.insert("dynamic_phone".into(), "True".into()),
        };
        for (k, v) in &req.sms_info {
            info.insert(k.clone(), v.clone());
        }
        if user.is_some() {
            info.insert("assignment_date".into(), now.clone());
        }
        let key_enc = self.keys().seal(self.rng(), &key, &key_aad(&serial))?;
        let pin_hash = match &req.pin {
            Some(pin) => Some(self.hash_secret(pin).await?),
            None => None,
        };
        let owner = user.as_ref().map(owner_of);
        if let Some(u) = &user {
            audit.user = u.login.clone();
            audit.realm = u.realm.clone();
            audit.resolver = u.resolver.clone();
        }
        let description = req.description.as_deref().unwrap_or_default();
        if description.len() > 80 {
            return Err(ServiceError::invalid(
                "description",
                "The description is longer than 80 characters.",
            ));
        }
        if let Some(existing) = self.store().token_by_serial(&serial).await? {
            if existing.tokentype != "sms" {
                return Err(ServiceError::TokenAdmin(format!(
                    "init token failed: Token {serial} already exists with type {}. Can not initialize token with new type sms",
                    existing.tokentype
                )));
            }
            if let (Some(old), Some(new)) = (&existing.owner, &owner)
                && old != new
            {
                return Err(ServiceError::TokenAdmin(
                    "This token is already assigned to another user.".into(),
                ));
            }
            self.store()
                .token_reinit(
                    existing.id,
                    &key_enc,
                    pin_hash.as_deref(),
                    otplen,
                    description,
                    &info,
                    &["phone", "dynamic_phone"],
                    owner.as_ref(),
                )
                .await?;
        } else {
            let pin_hash = match pin_hash {
                Some(h) => h,
                None => self.hash_secret("").await?,
            };
            info.insert("creation_date".into(), now);
            let t = NewToken {
                serial: serial.clone(),
                tokentype: "sms".into(),
                description: description.to_owned(),
                key_enc,
                pin_hash,
                otplen,
                maxfail: cfg.default_max_fail,
                count_window: cfg.default_count_window,
                sync_window: cfg.default_sync_window,
                rollout_state: rollout_state.into(),
                info,
                owner,
            };
            self.store().token_insert(&t, self.clock().now_ms()).await?;
        }
        self.store()
            .token_by_serial(&serial)
            .await?
            .ok_or_else(|| ServiceError::Internal("the new token vanished".into()))
    }

    /// `POST /token/enable|disable[/<serial>]`: how many tokens changed state.
    pub async fn set_tokens_active(
        &self,
        target: TokenTarget,
        active: bool,
        cx: &mut Scope,
    ) -> Result<i64> {
        let tokens = self.addressed_tokens(&target, cx).await?;
        let mut n = 0;
        for t in &tokens {
            n += i64::from(self.store().token_set_active(t.id, active).await?);
        }
        Ok(n)
    }

    /// `POST /token/reset[/<serial>]`: fail counters to 0.
    pub async fn reset_tokens(&self, target: TokenTarget, cx: &mut Scope) -> Result<i64> {
        let tokens = self.addressed_tokens(&target, cx).await?;
        for t in &tokens {
            self.store().token_reset_failcount(t.id).await?;
        }
        Ok(count(tokens.len()))
    }

    /// `POST /token/setpin[/<serial>]` with `otppin`: how many PINs were set (none without a
    /// PIN, as privacyIDEA).
    pub async fn set_token_pin(
        &self,
        target: TokenTarget,
        pin: Option<String>,
        cx: &mut Scope,
    ) -> Result<i64> {
        let tokens = self.addressed_tokens(&target, cx).await?;
        let Some(pin) = pin else {
            return Ok(0);
        };
        // The PIN policies of each token's owner (privacyIDEA's, for the user or token named).
        for t in &tokens {
            let whom = self.whom(t, true).await?;
            self.check_pin_policy(cx, &pin, Some(&whom.target(false)))
                .await?;
        }
        let hash = self.hash_secret(&pin).await?;
        for t in &tokens {
            self.store().token_set_pin(t.id, &hash).await?;
            let owner = match &t.owner {
                Some(o) => self.user_by_id(&o.resolver, &o.user_id, &o.realm).await?,
                None => None,
            };
            self.schedule_pin_change(t, owner.as_ref(), true).await?;
        }
        Ok(count(tokens.len()))
    }

    /// `POST /token/set[/<serial>]`: how many attributes were set.
    pub async fn set_token_attributes(
        &self,
        target: TokenTarget,
        a: TokenAttributes,
        cx: &mut Scope,
    ) -> Result<i64> {
        let tokens = self.addressed_tokens(&target, cx).await?;
        let (maxfail, window) = (a.max_failcount, a.count_window);
        if maxfail.is_some_and(|m| !(1..=1_000_000).contains(&m))
            || window.is_some_and(|w| !(1..=1000).contains(&w))
        {
            return Err(ServiceError::Parameter(
                "max_failcount must be 1..1000000 and count_window 1..1000.".into(),
            ));
        }
        let description = a.description.as_deref();
        if let Some(d) = description {
            // privacyIDEA's audit notes the description as Python's repr does.
            cx.audit
                .action_detail
                .push_str(&format!("description='{}', ", d.replace('\'', "\\'")));
        }
        if description.is_some_and(|d| d.len() > 80) {
            return Err(ServiceError::invalid(
                "description",
                "The description is longer than 80 characters.",
            ));
        }
        let phone = nonblank(&a.phone);
        if phone.is_some() && a.dynamic_phone == Some(true) {
            return Err(ServiceError::Parameter(
                "The parameters phone and dynamic_phone exclude each other.".into(),
            ));
        }
        let identifier = nonblank(&a.sms_identifier);
        if let (Some(id), Some(admin)) = (&identifier, cx.admin()) {
            let admin = admin.to_owned();
            for t in &tokens {
                let whom = self.whom(t, true).await?;
                self.check_gateway_allowed(&admin, id, false, Some(&whom.target(false)))
                    .await?;
            }
        }
        if let Some(id) = &identifier
            && self.store().gateway_by_name(id).await?.is_none()
        {
            return Err(ServiceError::Parameter(format!(
                "There is no SMS gateway {id}."
            )));
        }
        let cfg = if phone.is_some() {
            Some(self.system_config().await?)
        } else {
            None
        };
        let mut n = 0;
        for t in &tokens {
            self.store()
                .token_set_attributes(t.id, maxfail, window, description)
                .await?;
            n += [maxfail.is_some(), window.is_some(), description.is_some()]
                .iter()
                .filter(|x| **x)
                .count();
            // privacyIDEA writes the SMS settings to SMS tokens only; each counts as one.
            if t.tokentype != "sms" {
                continue;
            }
            let mut set: Vec<(&str, String)> = Vec::new();
            let mut remove: Vec<&str> = Vec::new();
            if let (Some(p), Some(cfg)) = (&phone, &cfg) {
                let realm = t
                    .owner
                    .as_ref()
                    .map(|o| o.realm.as_str())
                    .unwrap_or_default();
                set.push(("phone", crate::limits::enrollment_number(cfg, realm, p)?));
                remove.push("dynamic_phone");
            }
            match a.dynamic_phone {
                Some(true) => set.push(("dynamic_phone", "True".into())),
                Some(false) => {
                    if phone.is_none() && !t.info.contains_key("phone") {
                        return Err(ServiceError::Parameter(format!(
                            "Token {} has no phone number to send to without dynamic_phone.",
                            t.serial
                        )));
                    }
                    remove.push("dynamic_phone");
                }
                None => {}
            }
            if let Some(id) = &identifier {
                set.push(("sms.identifier", id.clone()));
            }
            if set.is_empty() && remove.is_empty() {
                continue;
            }
            let pairs: Vec<(&str, &str)> = set.iter().map(|(k, v)| (*k, v.as_str())).collect();
            self.store().token_write_info(t.id, &pairs, &remove).await?;
            if phone.is_some() || a.dynamic_phone.is_some() {
                // A code sent to the old number must not log in any more.
                self.store().token_end_challenges(t.id).await?;
            }
            n += usize::from(phone.is_some())
                + usize::from(a.dynamic_phone.is_some())
                + usize::from(identifier.is_some());
        }
        for key in [
            (phone.is_some(), "phone"),
            (a.dynamic_phone.is_some(), "dynamic_phone"),
            (identifier.is_some(), "sms.identifier"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, k)| k)
        {
            cx.audit.action_detail.push_str(&format!("{key} set, "));
        }
        Ok(count(n))
    }

    /// `DELETE /token/<serial>`: how many tokens were deleted.
    pub async fn delete_tokens(&self, target: TokenTarget, cx: &mut Scope) -> Result<i64> {
        let tokens = self.addressed_tokens(&target, cx).await?;
        let mut n = 0;
        for t in &tokens {
            n += i64::from(self.store().token_delete(t.id).await?);
        }
        Ok(n)
    }
}

/// A number of tokens (or attributes) as privacyIDEA answers it.
fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn initialized(row: &TokenRow) -> TokenInitialized {
    TokenInitialized {
        serial: row.serial.clone(),
        // (An empty state, as older privacyIDEA tokens have, counts as enrolled.)
        rollout_state: if row.rollout_state.is_empty() {
            "enrolled".to_owned()
        } else {
            row.rollout_state.clone()
        },
        verify_prompt: None,
    }
}

/// ENROLL-scope policies as one enrollment sees them: evaluated now, for the token's owner
/// (if any) and the request.
pub(crate) struct EnrollmentPolicies<'a> {
    pub policies: crate::policy::Policies,
    user: Option<&'a User>,
    realm_resolvers: Vec<String>,
    facts: RequestFacts<'a>,
}

impl EnrollmentPolicies<'_> {
    /// Whom the policies are evaluated for.
    pub fn ctx(&self) -> crate::policy::PolicyContext<'_> {
        crate::policy::PolicyContext {
            realm: self.user.map(|u| u.realm.as_str()),
            resolver: self.user.map(|u| u.resolver.as_str()),
            user: self.user.map(|u| u.login.as_str()),
            client: None,
            realm_resolvers: &self.realm_resolvers,
            facts: Some(&self.facts),
            user_agent: Some(self.facts.request.map_or("", |r| r.user_agent())),
            action_only: false,
        }
    }
}

impl Services {
    /// The ENROLL-scope policies for an enrollment of `user`'s token in `request`.
    pub(crate) async fn enrollment_policies<'a>(
        &self,
        user: Option<&'a User>,
        request: Option<&'a RequestData>,
    ) -> Result<EnrollmentPolicies<'a>> {
        let settings = self.settings().await?;
        Ok(EnrollmentPolicies {
            policies: self.policies_now(&settings.policies),
            user,
            realm_resolvers: settings.realm_resolvers(user.map(|u| u.realm.as_str())),
            facts: RequestFacts {
                user,
                token: None,
                request,
            },
        })
    }
}

/// The owner record of a user.
pub fn owner_of(u: &User) -> TokenOwner {
    TokenOwner {
        resolver: u.resolver.clone(),
        user_id: u.uid.clone(),
        realm: u.realm.clone(),
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    otpgate_core::secret::decode_hex(s.trim().as_bytes()).map(|k| k.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_serials() {
        assert_eq!(decode_hex("3132"), Some(vec![0x31, 0x32]));
        assert_eq!(decode_hex("313"), None);
        assert_eq!(decode_hex("zz"), None);
        assert!(valid_serial("PISM0001ABCD"));
        assert!(!valid_serial("PISM*") && !valid_serial("") && !valid_serial(&"A".repeat(41)));
    }
}
