//! What policy conditions look at in one request: the user's attributes, the token the
//! request names, and the HTTP request's headers and parameters.

use crate::call::RequestData;
use crate::users::User;
use otpgate_core::policy::{Fact, FactValue, Facts, Section};
use otpgate_store::TokenRow;

/// The objects of one request (each may be missing: no user, no token named, RADIUS).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RequestFacts<'a> {
    pub user: Option<&'a User>,
    pub token: Option<&'a TokenRow>,
    pub request: Option<&'a RequestData>,
}

fn text(s: &str) -> Fact {
    Fact::Value(FactValue::Text(s.to_owned()))
}

/// privacyIDEA's user info keys (`username`, `userid`, `givenname`, …; `mobile` a list
/// when the user has several numbers).
fn userinfo(u: &User, key: &str) -> Fact {
    match key {
        "username" => text(&u.login),
        "userid" => text(&u.uid),
        "givenname" => text(&u.givenname),
        "surname" => text(&u.surname),
        "email" => text(&u.email),
        "phone" => text(&u.phone),
        "description" => text(&u.description),
        "mobile" => match u.mobile.as_slice() {
            [] => text(""),
            [one] if !u.mobile_list => text(one),
            many => Fact::Value(FactValue::List(many.to_vec())),
        },
        "dn" if !u.dn.is_empty() => text(&u.dn),
        _ => Fact::NoKey,
    }
}

/// A token's own fields, named as privacyIDEA's `get_as_dict`.
fn token(t: &TokenRow, key: &str) -> Fact {
    let int = |n: i64| Fact::Value(FactValue::Int(n));
    let flag = |b: bool| Fact::Value(FactValue::Bool(b));
    match key {
        "serial" => text(&t.serial),
        "tokentype" => text(&t.tokentype),
        "description" => text(&t.description),
        "rollout_state" => text(&t.rollout_state),
        "active" => flag(t.active),
        "revoked" => flag(t.revoked),
        "locked" => flag(t.locked),
        "failcount" => int(t.failcount),
        "maxfail" => int(t.maxfail),
        "count" => int(t.count),
        "otplen" => int(t.otplen),
        "count_window" => int(t.count_window),
        "sync_window" => int(t.sync_window),
        "id" => int(t.id),
        _ => Fact::NoKey,
    }
}

impl Facts for RequestFacts<'_> {
    fn fact(&self, section: Section, key: &str) -> Fact {
        let found = |v: Option<&str>| v.map_or(Fact::NoKey, text);
        match section {
            Section::UserInfo => self.user.map_or(Fact::NoObject, |u| userinfo(u, key)),
            Section::Token => self.token.map_or(Fact::NoObject, |t| token(t, key)),
            Section::TokenInfo => self.token.map_or(Fact::NoObject, |t| {
                found(t.info.get(key).map(String::as_str))
            }),
            Section::RequestHeader => self
                .request
                .map_or(Fact::NoObject, |r| found(r.header(key))),
            Section::RequestData => self.request.map_or(Fact::NoObject, |r| found(r.param(key))),
        }
    }
}
