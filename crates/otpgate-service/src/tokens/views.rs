//! What admins (and token owners) see of tokens: `GET /token/`'s query and pages of
//! [`TokenView`]s with their owners' logins and realms, and open challenges.

use super::{UserRef, owner_of};
use crate::{MAX_PAGE, Page, Result, ServiceError, Services};
use otpgate_core::reach::AdminReach;
use otpgate_core::token::TokenState;
use otpgate_store::{ChallengeRow, TokenFilter, TokenRow};
use std::collections::BTreeMap;

/// `GET /token/`'s filters, page and order.
#[derive(Debug, Clone, Default)]
pub struct TokenQuery {
    /// `serial` (`*` wildcards).
    pub serial: Option<String>,
    /// `type`.
    pub tokentype: Option<String>,
    /// `tokenrealm` (or `realm` without a `user`).
    pub realm: Option<String>,
    /// `description` (`*` wildcards).
    pub description: Option<String>,
    /// `active`.
    pub active: Option<bool>,
    /// `assigned`.
    pub assigned: Option<bool>,
    /// `infokey` and `infovalue`.
    pub info: Option<(String, String)>,
    /// The owner.
    pub user: Option<UserRef>,
    /// `page` (from 1).
    pub page: Option<i64>,
    /// `pagesize`.
    pub page_size: Option<i64>,
    /// `sortby`.
    pub sort_by: Option<String>,
    /// `sortdir=desc`.
    pub descending: bool,
}

/// Whom a token belongs to, with the login as the user store names it now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerView {
    /// The login name (empty when the user store no longer knows the user).
    pub username: String,
    /// The stable id in the resolver.
    pub user_id: String,
    /// The resolver.
    pub resolver: String,
    /// The realm.
    pub realm: String,
}

/// A token as admins (and its owner) see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenView {
    /// Row id.
    pub id: i64,
    /// Serial.
    pub serial: String,
    /// `sms`.
    pub tokentype: String,
    /// Description.
    pub description: String,
    /// Enabled.
    pub active: bool,
    /// Revoked.
    pub revoked: bool,
    /// Locked (privacyIDEA's flag).
    pub locked: bool,
    /// Failed attempts.
    pub failcount: i64,
    /// Lockout threshold.
    pub maxfail: i64,
    /// HOTP counter.
    pub count: i64,
    /// Look-ahead window.
    pub count_window: i64,
    /// Resync window.
    pub sync_window: i64,
    /// OTP digits.
    pub otplen: i64,
    /// Rollout state.
    pub rollout_state: String,
    /// Token info (privacyIDEA's free-form key/values: `phone`, `sms.identifier`, …).
    pub info: BTreeMap<String, String>,
    /// The owner.
    pub owner: Option<OwnerView>,
    /// The realms the token is in: its owner's and its own (`/token/realm/<serial>`), sorted.
    pub realms: Vec<String>,
}

impl TokenView {
    /// What decides whether the token can be used.
    pub fn state(&self) -> TokenState<'_> {
        TokenState {
            active: self.active,
            revoked: self.revoked,
            failcount: self.failcount,
            maxfail: self.maxfail,
            rollout_state: &self.rollout_state,
        }
    }

    /// A token info value ("" when unset).
    pub fn info(&self, key: &str) -> &str {
        self.info.get(key).map(String::as_str).unwrap_or_default()
    }
}

/// A challenge as `GET /token/challenges/` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeView {
    /// The transaction.
    pub transaction_id: String,
    /// The token.
    pub serial: String,
    /// The `challenge` text given.
    pub challenge: String,
    /// Created (ms).
    pub created_ms: i64,
    /// Expires (ms).
    pub expires_ms: i64,
    /// Wrong answers received.
    pub received_count: i64,
    /// privacyIDEA's `otp_valid`.
    pub otp_valid: bool,
}

impl From<ChallengeRow> for ChallengeView {
    fn from(c: ChallengeRow) -> Self {
        Self {
            transaction_id: c.transaction_id,
            serial: c.serial,
            challenge: c.challenge,
            created_ms: c.created_at,
            expires_ms: c.expires_at,
            received_count: c.received_count,
            otp_valid: c.otp_valid,
        }
    }
}

const SORTABLE: &[&str] = &[
    "serial",
    "id",
    "tokentype",
    "description",
    "failcount",
    "count",
    "active",
    "maxfail",
    "otplen",
];

impl Services {
    /// A token as admins see it (owners' logins looked up once per list in `names`).
    async fn token_view(
        &self,
        t: TokenRow,
        mut realms: Vec<String>,
        names: &mut BTreeMap<(String, String, String), String>,
    ) -> Result<TokenView> {
        if let Some(o) = &t.owner {
            realms.push(o.realm.clone());
        }
        realms.sort();
        realms.dedup();
        let owner = match &t.owner {
            Some(o) => {
                let k = (o.resolver.clone(), o.user_id.clone(), o.realm.clone());
                if !names.contains_key(&k) {
                    let login = self
                        .user_by_id(&o.resolver, &o.user_id, &o.realm)
                        .await?
                        .map(|u| u.login)
                        .unwrap_or_default();
                    names.insert(k.clone(), login);
                }
                Some(OwnerView {
                    username: names.get(&k).cloned().unwrap_or_default(),
                    user_id: o.user_id.clone(),
                    resolver: o.resolver.clone(),
                    realm: o.realm.clone(),
                })
            }
            None => None,
        };
        Ok(TokenView {
            id: t.id,
            serial: t.serial,
            tokentype: t.tokentype,
            description: t.description,
            active: t.active,
            revoked: t.revoked,
            locked: t.locked,
            failcount: t.failcount,
            maxfail: t.maxfail,
            count: t.count,
            count_window: t.count_window,
            sync_window: t.sync_window,
            otplen: t.otplen,
            rollout_state: t.rollout_state,
            info: t.info,
            owner,
            realms,
        })
    }

    /// `GET /token/`: the tokens matching `q` that `reach` (the admin's `tokenlist` reach)
    /// covers.
    pub async fn list_tokens(&self, q: &TokenQuery, reach: &AdminReach) -> Result<Page<TokenView>> {
        let mut f = TokenFilter {
            serial: q.serial.clone(),
            tokentype: q.tokentype.clone(),
            realm: q.realm.clone(),
            description: q.description.clone(),
            active: q.active,
            assigned: q.assigned,
            info: q.info.clone(),
            reach: self.reach_filter(reach).await?,
            ..Default::default()
        };
        if let Some(u) = &q.user {
            match self.named_user(Some(u)).await {
                Ok(Some(user)) => f.owner = Some(owner_of(&user)),
                Ok(None) => {}
                Err(ServiceError::User(_)) => {
                    return Err(ServiceError::User(format!(
                        "User <{}> does not exist.",
                        u.login
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        let page = q.page.unwrap_or(1).clamp(1, MAX_PAGE);
        let page_size = q.page_size.unwrap_or(15).clamp(1, 1000);
        let sortby = q.sort_by.as_deref().unwrap_or("serial");
        let col = SORTABLE
            .iter()
            .find(|c| **c == sortby)
            .ok_or_else(|| ServiceError::Parameter(format!("Invalid sortby {sortby}.")))?;
        let dir = if q.descending { "DESC" } else { "ASC" };
        let (rows, count) = self
            .store()
            .token_list(&f, page, page_size, &format!("t.{col} {dir}, t.id {dir}"))
            .await?;
        let ids: Vec<i64> = rows.iter().map(|t| t.id).collect();
        let mut realms = self.store().token_realms(&ids).await?;
        let mut names = BTreeMap::new();
        let mut items = Vec::with_capacity(rows.len());
        for t in rows {
            let own = realms.remove(&t.id).unwrap_or_default();
            items.push(self.token_view(t, own, &mut names).await?);
        }
        Ok(Page {
            items,
            count,
            page,
            page_size,
        })
    }

    /// One token as admins see it, or None; refused when `reach` (the admin's `tokenlist`
    /// reach) does not cover it.
    pub async fn token(&self, serial: &str, reach: &AdminReach) -> Result<Option<TokenView>> {
        match self.store().token_by_serial(serial).await? {
            Some(t) => {
                self.token_in_reach(reach, "tokenlist", &t, false).await?;
                let own = self
                    .store()
                    .token_realms(&[t.id])
                    .await?
                    .remove(&t.id)
                    .unwrap_or_default();
                Ok(Some(self.token_view(t, own, &mut BTreeMap::new()).await?))
            }
            None => Ok(None),
        }
    }

    /// `GET /token/challenges/[<serial>]`.
    /// Only challenges of tokens `reach` (the admin's `getchallenges` reach) covers.
    pub async fn list_challenges(
        &self,
        serial: Option<&str>,
        reach: &AdminReach,
    ) -> Result<Vec<ChallengeView>> {
        let serial = serial.map(str::trim).filter(|s| !s.is_empty());
        let rows = self.store().challenges_list(serial).await?;
        if matches!(reach, AdminReach::Everyone) {
            return Ok(rows.into_iter().map(ChallengeView::from).collect());
        }
        let mut out = Vec::with_capacity(rows.len());
        let mut seen: BTreeMap<String, bool> = BTreeMap::new();
        for c in rows {
            let reached = match seen.get(&c.serial) {
                Some(r) => *r,
                None => {
                    let r = match self.store().token_by_serial(&c.serial).await? {
                        Some(t) => self
                            .token_in_reach(reach, "getchallenges", &t, false)
                            .await
                            .is_ok(),
                        None => false,
                    };
                    seen.insert(c.serial.clone(), r);
                    r
                }
            };
            if reached {
                out.push(ChallengeView::from(c));
            }
        }
        Ok(out)
    }
}
