//! Whom an admin may act on: privacyIDEA scopes admin policies by the **target** user's realm,
//! resolver and login (`scope=admin, adminuser=helpdesk, realm=branch-a, action=enable` lets
//! helpdesk enable the tokens of branch A's users only). A token's own realms count as its
//! realm too (an unassigned token in branch A is branch A's).

use crate::policy::{Policies, for_local_admin, grants, list, search_value};

/// Whom an admin may act on with one right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminReach {
    /// Anyone: no admin policy is active, or a matching one names no realm, resolver or user.
    Everyone,
    /// Only whom one of these reaches covers; none: no one.
    Within(Vec<Reach>),
}

/// What one matching admin policy names (an empty list: any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    /// Realms.
    pub realms: Vec<String>,
    /// Resolvers.
    pub resolvers: Vec<String>,
    /// Login names.
    pub users: Vec<String>,
}

/// A user or token an admin acts on. `None` means unknown and matches any condition (only
/// for assigning a token that has no owner yet, as privacyIDEA does); a token without owner
/// has `Some("")`, which only unconditioned fields match.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    /// The user's realm (the token owner's).
    pub realm: Option<&'a str>,
    /// The user's resolver.
    pub resolver: Option<&'a str>,
    /// The user's login.
    pub user: Option<&'a str>,
    /// The token's own realms (`/token/realm/<serial>`).
    pub token_realms: &'a [String],
}

impl Target<'_> {
    /// No user and no token realms: what a call with no target acts on.
    pub const NOBODY: Target<'static> = Target {
        realm: Some(""),
        resolver: Some(""),
        user: Some(""),
        token_realms: &[],
    };
}

fn listed(entries: &[String], value: Option<&str>) -> bool {
    match value {
        _ if entries.is_empty() => true,
        None => true,
        Some(v) => search_value(entries, &[v]),
    }
}

impl Reach {
    /// Whether this reach covers `t`: its realm (or one of the token's realms), resolver and
    /// login are among the listed ones.
    pub fn covers(&self, t: &Target<'_>) -> bool {
        let token_realms: Vec<&str> = t.token_realms.iter().map(String::as_str).collect();
        let realm = listed(&self.realms, t.realm)
            || (!token_realms.is_empty() && search_value(&self.realms, &token_realms));
        realm && listed(&self.resolvers, t.resolver) && listed(&self.users, t.user)
    }
}

impl AdminReach {
    /// Whether the admin may act on `t`.
    pub fn covers(&self, t: &Target<'_>) -> bool {
        match self {
            AdminReach::Everyone => true,
            AdminReach::Within(r) => r.iter().any(|r| r.covers(t)),
        }
    }

    /// Whether the admin may act on anyone at all (privacyIDEA's check of a right without a
    /// target: a realm-scoped policy still grants it).
    pub fn anyone(&self) -> bool {
        match self {
            AdminReach::Everyone => true,
            AdminReach::Within(r) => !r.is_empty(),
        }
    }
}

impl Policies {
    /// The values admin-scope `action` has for `admin` acting on `target`, best priority
    /// first, with the names of their policies: privacyIDEA's
    /// `Match.admin_or_user(…, user_obj).action_values` for admins. A policy counts when its
    /// realm, resolver and user reach the target; `None` (no target known) counts every
    /// policy of the admin.
    pub fn admin_values_for(
        &self,
        admin: &str,
        action: &str,
        target: Option<&Target<'_>>,
    ) -> Vec<(i64, String, String)> {
        let mut out: Vec<(i64, String, String)> = self
            .rows
            .iter()
            .filter(|p| self.live(p) && p.scope == "admin" && for_local_admin(p, admin))
            .filter(|p| {
                target.is_none_or(|t| {
                    Reach {
                        realms: list(&p.realm),
                        resolvers: list(&p.resolver),
                        users: list(&p.user),
                    }
                    .covers(t)
                })
            })
            .filter_map(
                |p| match crate::policy::parse_actions(&p.action).remove(action) {
                    Some(crate::policy::ActionValue::Value(v)) => Some((
                        p.priority,
                        crate::template::unescape_policy_text(&v),
                        p.name.clone(),
                    )),
                    _ => None,
                },
            )
            .collect();
        out.sort_by_key(|(priority, _, _)| *priority);
        out
    }

    /// Whom admin `admin` may act on with `action`: everyone while no admin policy is active;
    /// else what the matching admin policies (`adminuser`, active, listing the action) name.
    pub fn admin_reach(&self, admin: &str, action: &str) -> AdminReach {
        let admin_policies: Vec<_> = self
            .rows
            .iter()
            .filter(|p| self.live(p) && p.scope == "admin")
            .collect();
        if admin_policies.is_empty() {
            return AdminReach::Everyone;
        }
        let mut reaches = Vec::new();
        for p in admin_policies
            .into_iter()
            .filter(|p| for_local_admin(p, admin))
            .filter(|p| grants(&p.action, action))
        {
            let r = Reach {
                realms: list(&p.realm),
                resolvers: list(&p.resolver),
                users: list(&p.user),
            };
            if r == Reach::default() {
                return AdminReach::Everyone;
            }
            reaches.push(r);
        }
        AdminReach::Within(reaches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use proptest::prelude::*;

    fn admin(name: &str, action: &str, adminuser: &str, realm: &str, user: &str) -> Policy {
        Policy {
            name: name.into(),
            scope: "admin".into(),
            action: action.into(),
            adminuser: adminuser.into(),
            realm: realm.into(),
            user: user.into(),
            active: true,
            priority: 1,
            ..Default::default()
        }
    }

    fn owner<'a>(realm: &'a str, user: &'a str) -> Target<'a> {
        Target {
            realm: Some(realm),
            resolver: Some("r"),
            user: Some(user),
            token_realms: &[],
        }
    }

    #[test]
    fn a_realm_scoped_helpdesk_reaches_its_realm_only() {
        let p = Policies::new(vec![
            admin("root", "enable, policyread", "admin", "", ""),
            admin("hd", "enable, tokenlist", "helpdesk", "branch-a", ""),
            admin("vip", "reset", "helpdesk", "", "boss"),
        ]);
        let hd = p.admin_reach("helpdesk", "enable");
        assert!(hd.covers(&owner("branch-a", "x")));
        assert!(!hd.covers(&owner("branch-b", "x")));
        assert!(
            !hd.covers(&Target::NOBODY),
            "an unowned token outside its realms"
        );
        let realms = ["branch-a".to_owned()];
        let spare = Target {
            token_realms: &realms,
            ..Target::NOBODY
        };
        assert!(hd.covers(&spare), "an unowned token in branch A");
        assert!(hd.anyone());
        // A right the helpdesk has for one user only.
        let reset = p.admin_reach("helpdesk", "reset");
        assert!(reset.covers(&owner("branch-b", "boss")));
        assert!(!reset.covers(&owner("branch-b", "worker")));
        // A right no policy gives: no one; an admin with an unscoped policy: everyone.
        assert_eq!(
            p.admin_reach("helpdesk", "delete"),
            AdminReach::Within(vec![])
        );
        assert!(!p.admin_reach("helpdesk", "delete").anyone());
        assert_eq!(p.admin_reach("admin", "enable"), AdminReach::Everyone);
        // Unknown user attributes (assigning a token without owner) match any condition.
        let unknown = Target {
            realm: None,
            resolver: None,
            user: None,
            token_realms: &[],
        };
        assert!(reset.covers(&unknown));
        // A policy for the admins of a realm never applies to local admins.
        let realm_admins = Policies::new(vec![Policy {
            adminrealm: "admins".into(),
            ..admin("ra", "enable", "", "", "")
        }]);
        assert!(!realm_admins.admin_reach("admin", "enable").anyone());
        assert!(!realm_admins.admin_allows("admin", "enable"));
        // No admin policy at all: everyone.
        assert_eq!(
            Policies::new(vec![]).admin_reach("x", "enable"),
            AdminReach::Everyone
        );
    }

    proptest! {
        /// The reach never grants more than admin_allows says, and a policy with no
        /// realm, resolver or user reaches every target.
        #[test]
        fn reach_agrees_with_admin_allows(
            realm in "(|a|b)", user in "(|u|v)", target_realm in "(a|b|c)",
            target_user in "(u|v|w)", action in "(enable|reset)"
        ) {
            let p = Policies::new(vec![admin("p", "enable", "hd", &realm, &user)]);
            let reach = p.admin_reach("hd", &action);
            prop_assert_eq!(reach.anyone(), p.admin_allows("hd", &action));
            let t = owner(&target_realm, &target_user);
            let expected = action == "enable"
                && (realm.is_empty() || realm == target_realm)
                && (user.is_empty() || user == target_user);
            prop_assert_eq!(reach.covers(&t), expected);
        }
    }
}
