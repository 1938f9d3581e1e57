//! Event handlers (privacyIDEA's `/event`, handler module `UserNotification`): their
//! definitions (events, conditions, recipients, texts), saving them with what an admin should
//! know, and what the forms offer. Firing them is [`crate::notify`]; delivering their
//! notifications is [`crate::outbox`].

use crate::call::Scope;
use crate::{Result, ServiceError, Services};
use otpgate_core::template;
use otpgate_store::EventHandlerRow;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The only handler module.
pub const HANDLER_MODULE: &str = "UserNotification";

/// The events otpgate fires (privacyIDEA's names).
pub const EVENTS: &[&str] = &[
    "auth",
    "token_assign",
    "token_cancelchallenge",
    "token_copypin",
    "token_copyuser",
    "token_delete",
    "token_disable",
    "token_enable",
    "token_info",
    "token_init",
    "token_realm",
    "token_reset",
    "token_revoke",
    "token_set",
    "token_setpin",
    "token_setrandompin",
    "token_unassign",
    "validate_check",
    "validate_triggerchallenge",
];

/// privacyIDEA's default notification text.
pub const DEFAULT_BODY: &str = "\nHello {user},\n\nthe administrator {admin}@{realm} performed the action\n{action} on your token {serial}.\n\nTo check your tokens you may login to the Web UI:\n{url}\n";

/// privacyIDEA's default mail subject.
pub const DEFAULT_SUBJECT: &str = "An action was performed on your token.";

/// The tags a notification text may use.
pub const TAGS: &[&str] = &[
    "admin",
    "realm",
    "action",
    "serial",
    "url",
    "user",
    "givenname",
    "surname",
    "username",
    "userrealm",
    "tokentype",
    "tokendescription",
    "recipient_givenname",
    "recipient_surname",
    "time",
    "date",
    "client_ip",
    "ua_browser",
    "ua_string",
    "registrationcode",
    "pin",
];

/// A supported condition: name, type, description, values offered.
type ConditionSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

const TRUE_FALSE: &[&str] = &["True", "False"];

/// The conditions otpgate evaluates. A condition not in this list never holds (a handler
/// that uses one never fires, and saving it warns), so a notification is never sent on a
/// condition that was silently ignored.
pub const CONDITIONS: &[ConditionSpec] = &[
    (
        "realm",
        "multi",
        "The realm of the user, for which this event should apply.",
        &[],
    ),
    (
        "resolver",
        "multi",
        "The resolver of the user, for which this event should apply.",
        &[],
    ),
    (
        "tokenrealm",
        "multi",
        "The realm of the token, for which this event should apply.",
        &[],
    ),
    ("tokentype", "multi", "The type of the token.", &["sms"]),
    (
        "serial",
        "regexp",
        "Action is triggered, if the serial matches this regular expression.",
        &[],
    ),
    (
        "result_value",
        "str",
        "The result.value within the response is True or False.",
        TRUE_FALSE,
    ),
    (
        "result_status",
        "str",
        "The result.status within the response is True or False.",
        TRUE_FALSE,
    ),
    (
        "result_authentication",
        "str",
        "The result.authentication within the response is the given value.",
        &["ACCEPT", "REJECT", "CHALLENGE", "DECLINED"],
    ),
    (
        "token_locked",
        "str",
        "Check if the max failcounter of the token is reached.",
        TRUE_FALSE,
    ),
    (
        "token_has_owner",
        "str",
        "The token has a user assigned.",
        TRUE_FALSE,
    ),
    (
        "failcounter",
        "str",
        "This can be '>9', '<9', or '=10', to trigger the action, if the failcounter of a token matches this value.",
        &[],
    ),
    (
        "client_ip",
        "str",
        "The client IP matches one of these comma-separated addresses or networks ('!' excludes).",
        &[],
    ),
    (
        "logged_in_user",
        "str",
        "The logged in user is of the following type.",
        &["admin", "user"],
    ),
    (
        "detail_message",
        "regexp",
        "The detail.message of the response matches this regular expression.",
        &[],
    ),
    (
        "rollout_state",
        "str",
        "The rollout_state of the token has a certain value like 'clientwait' or 'enrolled'.",
        &[],
    ),
];

/// Recipient kinds (`To`): the token's owner.
pub const TO_TOKENOWNER: &str = "tokenowner";
/// The logged-in admin or user.
pub const TO_LOGGED_IN: &str = "logged_in_user";
/// A named internal admin.
pub const TO_ADMIN: &str = "internal admin";
/// A named user of a user store.
pub const TO_USERSTORE: &str = "userstore";
/// Given mail addresses.
pub const TO_EMAIL: &str = "email";
/// Given phone numbers.
pub const TO_NUMBER: &str = "number";

/// `POST /event`'s fields; the options and conditions are privacyIDEA's free-form maps.
#[derive(Debug, Clone, Default)]
pub struct HandlerInput {
    /// `id`: the handler to replace (0 or None: a new one).
    pub id: Option<i64>,
    /// `name`.
    pub name: Option<String>,
    /// `event`: comma-separated event names.
    pub events: Option<String>,
    /// `handlermodule`.
    pub handlermodule: Option<String>,
    /// `action`: `sendsms` or `sendmail`.
    pub action: Option<String>,
    /// `position`: `post` (default) or `pre`.
    pub position: Option<String>,
    /// `ordering`.
    pub ordering: Option<i64>,
    /// `active` (default true).
    pub active: Option<bool>,
    /// `option.K`.
    pub options: BTreeMap<String, String>,
    /// `conditions`: condition → value.
    pub conditions: BTreeMap<String, String>,
}

/// An event handler as admins see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerView {
    /// Row id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Active.
    pub active: bool,
    /// Order among handlers.
    pub ordering: i64,
    /// `pre` or `post`.
    pub position: String,
    /// `UserNotification`.
    pub handlermodule: String,
    /// `sendsms` or `sendmail`.
    pub action: String,
    /// The events it handles.
    pub events: Vec<String>,
    /// Options.
    pub options: BTreeMap<String, String>,
    /// Conditions.
    pub conditions: BTreeMap<String, String>,
}

/// What the handler forms offer: the gateways, SMTP servers, realms and resolvers there are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandlerChoices {
    /// SMS gateway names.
    pub gateways: Vec<String>,
    /// SMTP server identifiers.
    pub smtp_servers: Vec<String>,
    /// Realm names.
    pub realms: Vec<String>,
    /// Resolver names.
    pub resolvers: Vec<String>,
}

impl crate::call::Outcome for HandlerChoices {}

/// One option of a notification action, as the handler forms offer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionSpec {
    /// The option (`To`, `body`, `smsconfig`, …).
    pub key: &'static str,
    /// A multi-line text (privacyIDEA's type `text`; else `str`).
    pub text: bool,
    /// Whether it must be set, where privacyIDEA says so.
    pub required: Option<bool>,
    /// What it does.
    pub description: String,
    /// The values to choose from, where there is a choice.
    pub choices: Option<Vec<String>>,
    /// Shown only when `To` is this recipient kind.
    pub shown_for: Option<&'static str>,
}

impl OptionSpec {
    fn new(key: &'static str, required: Option<bool>, description: impl Into<String>) -> Self {
        Self {
            key,
            text: false,
            required,
            description: description.into(),
            choices: None,
            shown_for: None,
        }
    }

    fn choices(mut self, choices: Vec<String>) -> Self {
        self.choices = Some(choices);
        self
    }

    fn recipient(kind: &'static str, key: &'static str, description: &str) -> Self {
        Self {
            shown_for: Some(kind),
            ..Self::new(key, None, description)
        }
    }
}

/// The options of the notification `action` (`sendsms` or `sendmail`; none for others),
/// offering the gateways and SMTP servers there are.
pub fn action_options(action: &str, c: &HandlerChoices) -> Vec<OptionSpec> {
    let tags = TAGS
        .iter()
        .map(|t| format!("{{{t}}}"))
        .collect::<Vec<_>>()
        .join(", ");
    let body = OptionSpec {
        text: true,
        ..OptionSpec::new(
            "body",
            Some(false),
            format!("The template of the text. Tags: {tags}. Unknown tags render empty."),
        )
    };
    let to = |kinds: [&str; 5]| {
        OptionSpec::new("To", Some(true), "Send notification to this user.")
            .choices(kinds.iter().map(|k| (*k).to_owned()).collect())
    };
    match action {
        "sendmail" => vec![
            OptionSpec::new(
                "emailconfig",
                Some(true),
                "Send notification email via this email server.",
            )
            .choices(c.smtp_servers.clone()),
            OptionSpec::new(
                "subject",
                Some(false),
                "The subject of the mail that is sent.",
            ),
            body,
            OptionSpec::new("mimetype", None, "Mails are sent as plain text.")
                .choices(vec!["plain".into()]),
            to([
                TO_TOKENOWNER,
                TO_LOGGED_IN,
                TO_ADMIN,
                TO_USERSTORE,
                TO_EMAIL,
            ]),
            OptionSpec::recipient(
                TO_ADMIN,
                "To internal admin",
                "The internal admin (its email is set with `otpgate admin add --email`).",
            ),
            OptionSpec::recipient(
                TO_USERSTORE,
                "To userstore",
                "A user as login or login@realm.",
            ),
            OptionSpec::recipient(
                TO_EMAIL,
                "To email",
                "Any email addresses, comma-separated.",
            ),
        ],
        "sendsms" => vec![
            OptionSpec::new(
                "smsconfig",
                Some(true),
                "Send the user notification via a predefined SMS gateway.",
            )
            .choices(c.gateways.clone()),
            body,
            to([
                TO_TOKENOWNER,
                TO_LOGGED_IN,
                TO_ADMIN,
                TO_USERSTORE,
                TO_NUMBER,
            ]),
            OptionSpec::recipient(
                TO_ADMIN,
                "To internal admin",
                "The internal admin (its mobile is set with `otpgate admin add --mobile`).",
            ),
            OptionSpec::recipient(
                TO_USERSTORE,
                "To userstore",
                "A user as login or login@realm.",
            ),
            OptionSpec::recipient(TO_NUMBER, "To number", "Phone numbers, comma-separated."),
        ],
        _ => Vec::new(),
    }
}

/// A parsed handler.
#[derive(Debug, Clone)]
pub struct Handler {
    pub(crate) row: EventHandlerRow,
    pub(crate) options: BTreeMap<String, String>,
    pub(crate) conditions: BTreeMap<String, String>,
}

fn string_map(json: &str) -> BTreeMap<String, String> {
    serde_json::from_str::<Map<String, Value>>(json)
        .map(otpgate_core::params::json_texts)
        .unwrap_or_default()
}

impl Handler {
    pub(crate) fn new(row: EventHandlerRow) -> Self {
        Self {
            options: string_map(&row.options),
            conditions: string_map(&row.conditions),
            row,
        }
    }

    pub(crate) fn handles(&self, event: &str) -> bool {
        self.row.events.split(',').any(|e| e.trim() == event)
    }

    fn view(self) -> HandlerView {
        HandlerView {
            id: self.row.id,
            events: self
                .row
                .events
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
            name: self.row.name,
            active: self.row.active,
            ordering: self.row.ordering,
            position: self.row.position,
            handlermodule: self.row.handlermodule,
            action: self.row.action,
            options: self.options,
            conditions: self.conditions,
        }
    }
}

/// privacyIDEA's `compare_ints`: `>9`, `<9`, `=10`, `==10`, `>=`, `<=`, `!=` or a plain number.
pub fn compare_int(condition: &str, value: i64) -> Option<bool> {
    let c = condition.trim();
    let (op, rest) = ["==", ">=", "<=", "!=", ">", "<", "="]
        .iter()
        .find_map(|op| c.strip_prefix(op).map(|r| (*op, r)))
        .unwrap_or(("=", c));
    let n: i64 = rest.trim().parse().ok()?;
    Some(match op {
        ">" => value > n,
        "<" => value < n,
        ">=" => value >= n,
        "<=" => value <= n,
        "!=" => value != n,
        _ => value == n,
    })
}

impl Services {
    /// `POST /event`: creates a handler (or replaces the one named by `id`). Returns its id
    /// and what the admin should know (unknown events, tags or conditions).
    pub async fn save_event(
        &self,
        input: &HandlerInput,
        cx: &mut Scope,
    ) -> Result<(i64, Vec<String>)> {
        cx.audit.action_detail = format!(
            "event handler {}",
            input.name.as_deref().unwrap_or_default()
        );
        let (row, warnings) = self.event_row(input).await?;
        let saved = self.store().event_save(&row).await?;
        self.handler_cache().clear();
        match saved {
            Some(id) => {
                cx.audit.info = id.to_string();
                Ok((id, warnings))
            }
            None => Err(ServiceError::NotFound(
                "The requested event handler could not be found.".into(),
            )),
        }
    }

    /// `POST /event`'s handler as a row, checked, with what an admin should know about it.
    pub(crate) async fn event_row(
        &self,
        input: &HandlerInput,
    ) -> Result<(EventHandlerRow, Vec<String>)> {
        let required =
            |v: &Option<String>, name: &str| v.clone().ok_or_else(|| ServiceError::missing(name));
        let name = required(&input.name, "name")?.trim().to_owned();
        let events = required(&input.events, "event")?;
        let module = required(&input.handlermodule, "handlermodule")?;
        let module = module.trim();
        if module != HANDLER_MODULE {
            return Err(ServiceError::Parameter(format!(
                "Unknown handler module: {module}"
            )));
        }
        let action = required(&input.action, "action")?;
        let action = action.trim();
        if !matches!(action, "sendsms" | "sendmail") {
            return Err(ServiceError::Parameter(format!(
                "Unknown action {action}: UserNotification supports sendsms and sendmail."
            )));
        }
        let position = input
            .position
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .unwrap_or("post");
        if !matches!(position, "post" | "pre") {
            return Err(ServiceError::Parameter(
                "position must be post or pre.".into(),
            ));
        }
        let ordering = input.ordering.unwrap_or(0);
        if ordering < 0 {
            return Err(ServiceError::Parameter(
                "ordering must be a number >= 0.".into(),
            ));
        }
        let id = input.id.unwrap_or(0);
        let options = &input.options;
        let mut warnings = Vec::new();
        let event_list: Vec<&str> = events
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        for e in &event_list {
            if !EVENTS.contains(e) {
                warnings.push(format!("otpgate never fires the event {e}."));
            }
        }
        let config_key = if action == "sendsms" {
            "smsconfig"
        } else {
            "emailconfig"
        };
        let config = options
            .get(config_key)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ServiceError::missing(&format!("option.{config_key}")))?;
        let exists = if action == "sendsms" {
            self.store().gateway_by_name(config).await?.is_some()
        } else {
            self.store().smtp_get(config).await?.is_some()
        };
        if !exists {
            warnings.push(format!(
                "The {} {config} does not exist (yet): notifications will be dead-lettered until it does.",
                if action == "sendsms" { "SMS gateway" } else { "SMTP server" }
            ));
        }
        let to = options.get("To").map_or(TO_TOKENOWNER, |s| s.trim());
        let allowed: &[&str] = if action == "sendsms" {
            &[
                TO_TOKENOWNER,
                TO_LOGGED_IN,
                TO_ADMIN,
                TO_USERSTORE,
                TO_NUMBER,
            ]
        } else {
            &[
                TO_TOKENOWNER,
                TO_LOGGED_IN,
                TO_ADMIN,
                TO_USERSTORE,
                TO_EMAIL,
            ]
        };
        if !allowed.contains(&to) {
            return Err(ServiceError::Parameter(format!(
                "option.To must be one of: {}.",
                allowed.join(", ")
            )));
        }
        if matches!(to, TO_ADMIN | TO_USERSTORE | TO_EMAIL | TO_NUMBER)
            && options
                .get(&format!("To {to}"))
                .is_none_or(|v| v.trim().is_empty())
        {
            return Err(ServiceError::missing(&format!("option.To {to}")));
        }
        for key in ["body", "subject"] {
            if let Some(text) = options.get(key) {
                if text.starts_with("file:") {
                    warnings.push(format!(
                        "otpgate does not read templates from files: the {key} is sent as written."
                    ));
                }
                for tag in template::tag_names(text) {
                    if !TAGS.contains(&tag.as_str()) {
                        warnings.push(format!(
                            "The {key} uses the unknown tag {{{tag}}}; it renders empty."
                        ));
                    }
                }
            }
        }
        let mut cond_strings = Map::new();
        for (k, v) in &input.conditions {
            let (k, v) = (k.clone(), v.clone());
            match CONDITIONS.iter().find(|c| c.0 == k) {
                None => warnings.push(format!(
                    "otpgate does not support the condition {k}: this handler never fires while it is set."
                )),
                Some((_, "regexp", ..)) if regex::Regex::new(&v).is_err() => {
                    return Err(ServiceError::Parameter(format!(
                        "The condition {k} is not a valid regular expression."
                    )));
                }
                Some(_) if k == "failcounter" && compare_int(&v, 0).is_none() => {
                    return Err(ServiceError::Parameter(
                        "The condition failcounter must look like '>9', '<9' or '=10'.".into(),
                    ));
                }
                Some(_) => {}
            }
            cond_strings.insert(k, Value::String(v));
        }
        let row = EventHandlerRow {
            id,
            name,
            events: event_list.join(","),
            handlermodule: module.to_owned(),
            action: action.to_owned(),
            position: position.to_owned(),
            ordering,
            active: input.active.unwrap_or(true),
            options: serde_json::to_string(options)
                .map_err(|e| ServiceError::Internal(e.to_string()))?,
            conditions: Value::Object(cond_strings).to_string(),
        };
        Ok((row, warnings))
    }

    /// `GET /event/[<id>]`: the handlers.
    pub async fn list_events(&self, id: Option<i64>) -> Result<Vec<HandlerView>> {
        Ok(self
            .store()
            .event_list()
            .await?
            .into_iter()
            .filter(|r| id.is_none_or(|i| i == r.id))
            .map(|r| Handler::new(r).view())
            .collect())
    }

    /// `DELETE /event/<id>`: its id.
    pub async fn delete_event(&self, id: i64, cx: &mut Scope) -> Result<i64> {
        cx.audit.info = id.to_string();
        let deleted = self.store().event_delete(id).await?;
        self.handler_cache().clear();
        if deleted { Ok(id) } else { Err(not_found()) }
    }

    /// `POST /event/enable|disable/<id>`: its id.
    pub async fn set_event_active(&self, id: i64, active: bool) -> Result<i64> {
        let changed = self.store().event_set_active(id, active).await?;
        self.handler_cache().clear();
        if changed { Ok(id) } else { Err(not_found()) }
    }

    /// What the handler forms offer (`/event/actions`, `/event/conditions`).
    pub async fn handler_choices(&self) -> Result<HandlerChoices> {
        let store = self.store();
        Ok(HandlerChoices {
            gateways: store
                .gateway_list()
                .await?
                .into_iter()
                .map(|g| g.name)
                .collect(),
            smtp_servers: store
                .smtp_list()
                .await?
                .into_iter()
                .map(|s| s.identifier)
                .collect(),
            realms: store
                .realm_list()
                .await?
                .into_iter()
                .map(|r| r.name)
                .collect(),
            resolvers: store
                .resolver_list()
                .await?
                .into_iter()
                .map(|r| r.name)
                .collect(),
        })
    }
}

fn not_found() -> ServiceError {
    ServiceError::NotFound("The requested event handler could not be found.".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_int_like_privacyidea() {
        assert_eq!(compare_int(">9", 10), Some(true));
        assert_eq!(compare_int(">9", 9), Some(false));
        assert_eq!(compare_int("<9", 8), Some(true));
        assert_eq!(compare_int("=10", 10), Some(true));
        assert_eq!(compare_int("==10", 11), Some(false));
        assert_eq!(compare_int(">=10", 10), Some(true));
        assert_eq!(compare_int("<=3", 4), Some(false));
        assert_eq!(compare_int("!=3", 4), Some(true));
        assert_eq!(compare_int(" 5 ", 5), Some(true));
        assert_eq!(compare_int(">x", 5), None);
        assert_eq!(compare_int("", 5), None);
    }

    #[test]
    fn stored_maps_read_strings_and_scalars() {
        let m = string_map(r#"{"a":"x","b":true,"c":3}"#);
        assert_eq!(m["a"], "x");
        assert_eq!(m["b"], "True");
        assert_eq!(m["c"], "3");
        assert!(string_map("not json").is_empty());
    }
}
