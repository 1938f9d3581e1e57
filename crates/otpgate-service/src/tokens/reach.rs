//! The calling admin's reach applied to tokens and users: privacyIDEA scopes admin policies by
//! the target's realm, resolver and login, and counts a token's own realms as its realm.

use crate::call::Scope;
use crate::{Result, Services};
use otpgate_core::policy::{is_pattern, search_value};
use otpgate_core::reach::{AdminReach, Target};
use otpgate_store::{ReachFilter, TokenRow};

/// A token as an admin's target, owned: its owner's realm, resolver and login, and its own
/// realms.
pub(crate) struct Whom {
    owner: Option<(String, String, String)>,
    realms: Vec<String>,
}

impl Whom {
    /// The target. `assigning`: a token without owner matches any user condition.
    pub(crate) fn target(&self, assigning: bool) -> Target<'_> {
        match &self.owner {
            Some((realm, resolver, login)) => Target {
                realm: Some(realm),
                resolver: Some(resolver),
                user: Some(login),
                token_realms: &self.realms,
            },
            None if assigning => Target {
                realm: None,
                resolver: None,
                user: None,
                token_realms: &self.realms,
            },
            None => Target {
                token_realms: &self.realms,
                ..Target::NOBODY
            },
        }
    }
}

impl Services {
    /// Token `t` as an admin's target (`with_login`: look the owner's login up; "" without).
    pub(crate) async fn whom(&self, t: &TokenRow, with_login: bool) -> Result<Whom> {
        let realms = self
            .store()
            .token_realms(&[t.id])
            .await?
            .remove(&t.id)
            .unwrap_or_default();
        let owner = match &t.owner {
            Some(o) => {
                let login = if with_login {
                    self.user_by_id(&o.resolver, &o.user_id, &o.realm)
                        .await?
                        .map(|u| u.login)
                } else {
                    None
                };
                Some((
                    o.realm.clone(),
                    o.resolver.clone(),
                    login.unwrap_or_default(),
                ))
            }
            None => None,
        };
        Ok(Whom { owner, realms })
    }

    /// Refuses a token the calling admin's policies for this call's right do not reach.
    /// `assigning`: a token without owner matches any user condition (privacyIDEA lets a
    /// helpdesk admin give such tokens to its users); its realms still count.
    pub(crate) async fn reach_token(
        &self,
        cx: &Scope,
        t: &TokenRow,
        assigning: bool,
    ) -> Result<()> {
        self.token_in_reach(cx.admin_reach(), cx.right(), t, assigning)
            .await
    }

    /// [`Services::reach_token`] for a given reach and right.
    pub(crate) async fn token_in_reach(
        &self,
        reach: &AdminReach,
        right: &str,
        t: &TokenRow,
        assigning: bool,
    ) -> Result<()> {
        let AdminReach::Within(reaches) = reach else {
            return Ok(());
        };
        // The owner's login only when a policy names users.
        let whom = self
            .whom(t, reaches.iter().any(|r| !r.users.is_empty()))
            .await?;
        let target = whom.target(assigning);
        if reach.covers(&target) {
            Ok(())
        } else {
            Err(crate::call::not_allowed(right))
        }
    }

    /// The tokens of `tokens` the calling admin reaches, and the serials of the others.
    pub(crate) async fn reached_tokens(
        &self,
        cx: &Scope,
        tokens: Vec<TokenRow>,
    ) -> Result<(Vec<TokenRow>, Vec<String>)> {
        let mut reached = Vec::with_capacity(tokens.len());
        let mut refused = Vec::new();
        for t in tokens {
            match self.reach_token(cx, &t, false).await {
                Ok(()) => reached.push(t),
                Err(crate::ServiceError::Policy(_)) => refused.push(t.serial),
                Err(e) => return Err(e),
            }
        }
        Ok((reached, refused))
    }

    /// The owner records of the users `logins` names in `realms`.
    async fn owners_named<'n>(
        &self,
        settings: &crate::snapshot::Settings,
        logins: impl Iterator<Item = &'n str>,
        realms: &[String],
    ) -> Result<Vec<otpgate_store::TokenOwner>> {
        let mut owners = Vec::new();
        for login in logins {
            for realm in realms {
                if let (_, _, Some(u)) = self.lookup_user(settings, login, Some(realm)).await? {
                    owners.push(super::owner_of(&u));
                }
            }
        }
        Ok(owners)
    }

    /// For `GET /token/`: what the calling admin reaches as a filter the store applies (None:
    /// everyone). Policies that name users are resolved to the users' ids in every realm.
    pub(crate) async fn reach_filter(
        &self,
        reach: &AdminReach,
    ) -> Result<Option<Vec<ReachFilter>>> {
        let AdminReach::Within(reaches) = reach else {
            return Ok(None);
        };
        let settings = self.settings().await?;
        // Wildcards, expressions and exclusions are resolved against the realms and resolvers
        // that exist, so the store compares plain names.
        let plain = |entries: &[String], known: Vec<String>| -> Vec<String> {
            let literal = entries
                .iter()
                .all(|e| e != "*" && !e.starts_with(['!', '-']) && !is_pattern(e));
            if entries.is_empty() || literal {
                entries.to_vec()
            } else {
                let matched: Vec<String> = known
                    .into_iter()
                    .filter(|k| search_value(entries, &[k.as_str()]))
                    .collect();
                // Nothing matched: a name no realm has, so the reach stays empty.
                if matched.is_empty() {
                    vec![String::new()]
                } else {
                    matched
                }
            }
        };
        let mut out = Vec::with_capacity(reaches.len());
        for r in reaches {
            let realms = plain(
                &r.realms,
                settings.realms.iter().map(|x| x.name.clone()).collect(),
            );
            // Users: exact names are resolved to their ids in the realms reached (all when the
            // policy names none); `*` means anyone; expressions of user names cannot be resolved
            // without reading every user store, so they reach no one here. Excluded names
            // (`-bob`, `!bob`) are resolved too, and their tokens left out.
            let in_realms: Vec<String> = if realms.is_empty() {
                settings.realms.iter().map(|x| x.name.clone()).collect()
            } else {
                realms.iter().filter(|r| !r.is_empty()).cloned().collect()
            };
            let owners = if r.users.is_empty() || r.users.iter().any(|u| u == "*") {
                None
            } else {
                let named = r
                    .users
                    .iter()
                    .filter(|u| !u.starts_with(['!', '-']) && !is_pattern(u))
                    .map(String::as_str);
                Some(self.owners_named(&settings, named, &in_realms).await?)
            };
            let excluded_names = r.users.iter().filter_map(|u| u.strip_prefix(['!', '-']));
            let excluded = self
                .owners_named(&settings, excluded_names, &in_realms)
                .await?;
            out.push(ReachFilter {
                resolvers: plain(&r.resolvers, settings.resolvers.keys().cloned().collect()),
                realms,
                owners,
                excluded,
            });
        }
        Ok(Some(out))
    }
}
