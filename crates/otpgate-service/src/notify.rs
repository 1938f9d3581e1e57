//! Firing event handlers: after (or before) a call, every active handler bound to its event
//! whose conditions hold turns into notifications — SMS through a central gateway or mail
//! through a central SMTP server — written to the outbox before the call answers. The outbox
//! worker ([`crate::outbox`]) delivers them; the call never waits for a gateway.

use crate::audit::AuditEntry;
use crate::call::{Authentication, EventInput};
use crate::events::{
    DEFAULT_BODY, DEFAULT_SUBJECT, HANDLER_MODULE, Handler, TO_ADMIN, TO_EMAIL, TO_LOGGED_IN,
    TO_NUMBER, TO_TOKENOWNER, TO_USERSTORE, compare_int,
};
use crate::users::User;
use crate::{Result, ServiceError, Services};
use base64::Engine;
use otpgate_core::params::is_true;
use otpgate_core::template::{self, Tags};
use otpgate_store::{NewOutboxItem, TokenRow};
use std::sync::Arc;

/// The active handlers as last read on this node.
pub type HandlerCache = crate::cache::Cached<Vec<Handler>>;

/// Python's `re.match`: the pattern must match at the start.
fn anchored(pattern: &str) -> Option<regex::Regex> {
    regex::Regex::new(&format!("^(?:{pattern})")).ok()
}

fn in_list(list: &str, value: &str) -> bool {
    list.split(',').any(|x| x.trim() == value)
}

/// The facts the conditions and tags are evaluated on, looked up once per call.
struct Facts {
    token: Option<TokenRow>,
    owner: Option<User>,
    user_has_locked_token: Option<bool>,
}

impl Services {
    /// The token the call was about (one serial) and its owner (the request's user, else the
    /// owner of that token).
    async fn facts(&self, ev: &EventInput<'_>) -> Result<Facts> {
        let serials: Vec<&str> = ev
            .subject
            .serial
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let token = match serials.as_slice() {
            [one] => self.store().token_by_serial(one).await?,
            _ => None,
        };
        let s = ev.subject;
        let owner = if !s.user.is_empty() {
            // A pre event's subject is the request's `user`/`realm` as given.
            let (login, realm) = if s.realm.is_empty() {
                self.user_realm(&s.user, None).await?
            } else {
                (s.user.clone(), s.realm.clone())
            };
            self.find_user(&login, &realm).await?
        } else if let Some(o) = token.as_ref().and_then(|t| t.owner.as_ref()) {
            self.user_by_id(&o.resolver, &o.user_id, &o.realm).await?
        } else {
            None
        };
        Ok(Facts {
            token,
            owner,
            user_has_locked_token: None,
        })
    }

    /// Whether every condition of `h` holds. privacyIDEA's semantics: token conditions are
    /// checked only when the call was about exactly one token.
    async fn conditions_hold(
        &self,
        h: &Handler,
        ev: &EventInput<'_>,
        facts: &mut Facts,
    ) -> Result<bool> {
        for (name, want) in &h.conditions {
            let ok = match name.as_str() {
                "realm" => in_list(want, &ev.subject.realm),
                "resolver" => in_list(want, &ev.subject.resolver),
                "client_ip" => {
                    let entries: Vec<String> = want
                        .split(',')
                        .map(|e| e.trim().to_owned())
                        .filter(|e| !e.is_empty())
                        .collect();
                    crate::policy::client_matches(&entries, ev.client_ip)
                }
                "logged_in_user" => {
                    want.trim() == if ev.admin.is_some() { "admin" } else { "user" }
                }
                "result_value" => ev.result.is_some_and(|r| is_true(want) == r.value),
                "result_status" => ev.result.is_some_and(|r| is_true(want) == r.status),
                "result_authentication" => ev.result.is_some_and(|r| {
                    r.authentication.map(Authentication::as_str) == Some(want.trim())
                }),
                "detail_message" => ev.result.is_some_and(|r| {
                    regex::Regex::new(want)
                        .is_ok_and(|re| re.is_match(r.message.as_deref().unwrap_or_default()))
                }),
                "serial" => match facts
                    .token
                    .as_ref()
                    .map(|t| t.serial.as_str())
                    .or_else(|| Some(ev.subject.serial.as_str()).filter(|s| !s.is_empty()))
                {
                    Some(serial) => anchored(want).is_some_and(|re| re.is_match(serial)),
                    None => true,
                },
                "token_locked" => match &facts.token {
                    Some(t) => is_true(want) == t.state().locked(),
                    None => {
                        // No single token: any of the user's tokens at its maximum.
                        let locked = match facts.user_has_locked_token {
                            Some(l) => l,
                            None => {
                                let l = match &facts.owner {
                                    Some(u) => self
                                        .store()
                                        .tokens_of_user(&crate::tokens::owner_of(u))
                                        .await?
                                        .iter()
                                        .any(|t| t.state().locked()),
                                    None => false,
                                };
                                facts.user_has_locked_token = Some(l);
                                l
                            }
                        };
                        is_true(want) == locked
                    }
                },
                "tokenrealm" => facts
                    .token
                    .as_ref()
                    .and_then(|t| t.owner.as_ref())
                    .is_none_or(|o| in_list(want, &o.realm)),
                "tokentype" => facts
                    .token
                    .as_ref()
                    .is_none_or(|t| in_list(want, &t.tokentype)),
                "token_has_owner" => facts
                    .token
                    .as_ref()
                    .is_none_or(|t| is_true(want) == t.owner.is_some()),
                "failcounter" => facts
                    .token
                    .as_ref()
                    .is_none_or(|t| compare_int(want, t.failcount).unwrap_or(false)),
                "rollout_state" => facts
                    .token
                    .as_ref()
                    .is_none_or(|t| t.rollout_state == want.trim()),
                _ => false,
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn event_tags(&self, ev: &EventInput<'_>, facts: &Facts, recipient: Option<&User>) -> Tags {
        let now = chrono::DateTime::from_timestamp_millis(self.clock().now_ms())
            .unwrap_or_default()
            .naive_utc();
        let owner = facts.owner.as_ref();
        let o = |f: fn(&User) -> &str| owner.map(f).unwrap_or_default().to_owned();
        let serial = facts
            .token
            .as_ref()
            .map(|t| t.serial.clone())
            .unwrap_or_else(|| ev.subject.serial.clone());
        let ua = ev.user_agent.unwrap_or_default();
        let browser = ua.split_whitespace().last().unwrap_or_default();
        let mut t = Tags::new();
        for (k, v) in [
            ("admin", ev.admin.unwrap_or_default().to_owned()),
            ("realm", ev.subject.realm.clone()),
            ("action", ev.action.to_owned()),
            ("serial", serial),
            ("url", String::new()),
            (
                "user",
                owner
                    .map(|u| {
                        if u.givenname.is_empty() {
                            u.login.clone()
                        } else {
                            u.givenname.clone()
                        }
                    })
                    .unwrap_or_default(),
            ),
            ("givenname", o(|u| &u.givenname)),
            ("surname", o(|u| &u.surname)),
            ("username", o(|u| &u.login)),
            ("userrealm", o(|u| &u.realm)),
            (
                "tokentype",
                facts
                    .token
                    .as_ref()
                    .map(|t| t.tokentype.clone())
                    .unwrap_or_else(|| ev.subject.token_type.clone()),
            ),
            (
                "tokendescription",
                facts
                    .token
                    .as_ref()
                    .map(|t| t.description.clone())
                    .unwrap_or_default(),
            ),
            (
                "recipient_givenname",
                recipient.map(|u| u.givenname.clone()).unwrap_or_default(),
            ),
            (
                "recipient_surname",
                recipient.map(|u| u.surname.clone()).unwrap_or_default(),
            ),
            ("time", now.format("%H:%M:%S").to_string()),
            ("date", now.format("%Y-%m-%d").to_string()),
            (
                "client_ip",
                ev.client_ip.map(|i| i.to_string()).unwrap_or_default(),
            ),
            ("ua_browser", browser.to_owned()),
            ("ua_string", ua.to_owned()),
            // otpgate never generates PINs or registration codes: these stay empty.
            ("registrationcode", String::new()),
            ("pin", String::new()),
        ] {
            t.insert(k, v);
        }
        t
    }

    /// The recipients of one handler: (address, user for the recipient tags).
    async fn recipients(
        &self,
        h: &Handler,
        ev: &EventInput<'_>,
        facts: &Facts,
        sms: bool,
    ) -> Result<Vec<(String, Option<User>)>> {
        let to = h.options.get("To").map_or(TO_TOKENOWNER, |s| s.trim());
        let of_user = |u: &User| -> Vec<(String, Option<User>)> {
            let addr = if sms {
                u.mobile.first().cloned().unwrap_or_default()
            } else {
                u.email.clone()
            };
            vec![(addr, Some(u.clone()))]
        };
        let admin_contact = |name: String| async move {
            Ok::<_, ServiceError>(match self.store().admin_contact(&name).await? {
                Some((email, mobile)) => vec![(if sms { mobile } else { email }, None)],
                None => Vec::new(),
            })
        };
        let list = |key: &str| -> Vec<(String, Option<User>)> {
            h.options
                .get(key)
                .map(|v| v.split(',').map(|a| (a.trim().to_owned(), None)).collect())
                .unwrap_or_default()
        };
        let found = match to {
            TO_TOKENOWNER => facts.owner.as_ref().map(of_user).unwrap_or_default(),
            TO_LOGGED_IN => match ev.admin {
                Some(a) => admin_contact(a.to_owned()).await?,
                None => facts.owner.as_ref().map(of_user).unwrap_or_default(),
            },
            TO_ADMIN => match h.options.get("To internal admin") {
                Some(a) => admin_contact(a.trim().to_owned()).await?,
                None => Vec::new(),
            },
            TO_USERSTORE => {
                let login = h
                    .options
                    .get("To userstore")
                    .map(|s| s.trim())
                    .unwrap_or_default();
                if login.is_empty() {
                    Vec::new()
                } else {
                    let settings = self.settings().await?;
                    match self.lookup_user(&settings, login, None).await?.2 {
                        Some(u) => of_user(&u),
                        None => Vec::new(),
                    }
                }
            }
            TO_EMAIL => list("To email"),
            TO_NUMBER => list("To number"),
            _ => Vec::new(),
        };
        Ok(found
            .into_iter()
            .filter(|(addr, _)| !addr.trim().is_empty())
            .collect())
    }

    /// Runs the handlers of `position` (`pre` or `post`) for one call: every matching
    /// handler's notifications are written to the outbox in one transaction before this
    /// returns; delivery happens later. Failures are logged and audited, never returned: a
    /// notification never changes the answer of the call.
    pub(crate) async fn fire_event(&self, position: &str, ev: &EventInput<'_>) {
        if let Err(e) = self.try_fire_event(position, ev).await {
            tracing::error!(event = ev.event, error = %e, "event handlers failed");
            self.write_audit(&AuditEntry {
                ts: self.clock().now_ms(),
                action: format!("{}-EVENT {}", position.to_uppercase(), ev.event),
                info: format!("event handlers failed: {e}"),
                ..Default::default()
            })
            .await;
        }
    }

    /// The active handlers in order, from the per-node cache (the per-call lookup is free).
    async fn active_handlers(&self) -> Result<Arc<Vec<Handler>>> {
        self.handler_cache()
            .get_or_load(async {
                Ok(self
                    .store()
                    .event_list()
                    .await?
                    .into_iter()
                    .filter(|r| r.active)
                    .map(Handler::new)
                    .collect())
            })
            .await
    }

    async fn try_fire_event(&self, position: &str, ev: &EventInput<'_>) -> Result<()> {
        let handlers: Vec<Handler> = self
            .active_handlers()
            .await?
            .iter()
            .filter(|h| {
                h.row.position == position
                    && h.handles(ev.event)
                    && h.row.handlermodule == HANDLER_MODULE
            })
            .cloned()
            .collect();
        if handlers.is_empty() {
            return Ok(());
        }
        let mut facts = self.facts(ev).await?;
        let call_id =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.rng().bytes(12)?);
        let mut items = Vec::new();
        let mut notes = Vec::new();
        for h in &handlers {
            if !self.conditions_hold(h, ev, &mut facts).await? {
                continue;
            }
            let sms = h.row.action == "sendsms";
            let config = h
                .options
                .get(if sms { "smsconfig" } else { "emailconfig" })
                .cloned()
                .unwrap_or_default();
            let recipients = self.recipients(h, ev, &facts, sms).await?;
            if recipients.is_empty() {
                notes.push((h, "no recipient found; nothing queued".to_owned()));
                continue;
            }
            let body = h
                .options
                .get("body")
                .filter(|b| !b.trim().is_empty())
                .map_or(DEFAULT_BODY, String::as_str);
            let subject = h
                .options
                .get("subject")
                .filter(|b| !b.trim().is_empty())
                .map_or(DEFAULT_SUBJECT, String::as_str);
            for (n, (addr, user)) in recipients.iter().enumerate() {
                let tags = self.event_tags(ev, &facts, user.as_ref());
                items.push(NewOutboxItem {
                    dedupe_key: format!("{call_id}:{}:{n}", h.row.id),
                    handler_id: h.row.id,
                    handler_name: h.row.name.clone(),
                    event: ev.event.to_owned(),
                    channel: if sms { "sms" } else { "mail" }.to_owned(),
                    config: config.clone(),
                    recipient: addr.trim().to_owned(),
                    subject: if sms {
                        String::new()
                    } else {
                        template::render_prompt(subject, &tags)
                    },
                    body: template::render_prompt(body, &tags),
                });
            }
            notes.push((h, format!("{} notification(s) queued", recipients.len())));
        }
        if !items.is_empty() {
            self.store()
                .outbox_insert(&items, self.clock().now_ms())
                .await?;
            self.outbox().wake();
        }
        for (h, info) in notes {
            self.write_audit(&AuditEntry {
                ts: self.clock().now_ms(),
                action: format!(
                    "{}-EVENT {}>>{}:{}",
                    position.to_uppercase(),
                    ev.event,
                    h.row.handlermodule,
                    h.row.action
                ),
                success: true,
                serial: ev.subject.serial.clone(),
                user: ev.subject.user.clone(),
                realm: ev.subject.realm.clone(),
                administrator: ev.admin.unwrap_or_default().to_owned(),
                action_detail: format!("handler {} (id {})", h.row.name, h.row.id),
                info,
                ..Default::default()
            })
            .await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_condition_matches_at_the_start_like_re_match() {
        let re = anchored("PISM").unwrap();
        assert!(re.is_match("PISM0001"));
        assert!(!re.is_match("XPISM0001"));
        assert!(anchored("a|b").unwrap().is_match("bcd"));
    }
}
