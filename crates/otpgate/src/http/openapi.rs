//! `GET /openapi.json`: an OpenAPI 3.0 description of every endpoint, built from one table.
//! A unit test checks that every route of the router is in the table; CI runs schemathesis
//! against the running server with it (`scripts/api-check`).

use serde_json::{Map, Value, json};

/// A parameter's JSON type.
#[derive(Clone, Copy)]
enum T {
    S,
    I,
}

use T::{I, S};

/// One operation: methods, paths (aliases with and without a trailing slash), summary, whether
/// it needs the admin JWT, and its parameters (name, type, required).
struct Op {
    methods: &'static [&'static str],
    paths: &'static [&'static str],
    summary: &'static str,
    admin: bool,
    params: &'static [(&'static str, T, bool)],
}

const USER: (&str, T, bool) = ("user", S, false);
const REALM: (&str, T, bool) = ("realm", S, false);
const SERIAL: (&str, T, bool) = ("serial", S, false);

/// The fields of a user in an internal resolver (`POST` and `PUT /user/`).
const USER_FIELDS: &[(&str, T, bool)] = &[
    ("user", S, true),
    ("resolver", S, true),
    ("password", S, false),
    ("givenname", S, false),
    ("surname", S, false),
    ("email", S, false),
    ("mobile", S, false),
    ("phone", S, false),
    ("description", S, false),
];

const OPS: &[Op] = &[
    Op {
        methods: &["post"],
        paths: &["/auth"],
        summary: "Log in: an admin JWT (or a user JWT).",
        admin: false,
        params: &[("username", S, true), ("password", S, true), REALM],
    },
    Op {
        methods: &["get", "post"],
        paths: &["/validate/check"],
        summary: "Authenticate: PIN (SMS challenge), transaction_id + OTP, or PIN+OTP.",
        admin: false,
        params: &[
            USER,
            REALM,
            SERIAL,
            ("pass", S, true),
            ("transaction_id", S, false),
            ("state", S, false),
            ("otponly", S, false),
            ("exception", S, false),
            ("challenge", S, false),
            ("client", S, false),
        ],
    },
    Op {
        methods: &["get", "post"],
        paths: &["/validate/samlcheck"],
        summary: "As /validate/check (for older SAML clients); value is {auth, attributes}.",
        admin: false,
        params: &[
            USER,
            REALM,
            SERIAL,
            ("pass", S, true),
            ("transaction_id", S, false),
            ("state", S, false),
        ],
    },
    Op {
        methods: &["get", "post"],
        paths: &["/validate/radiuscheck"],
        summary: "As /validate/check; 204 on accept, an empty 400 otherwise.",
        admin: false,
        params: &[
            USER,
            REALM,
            SERIAL,
            ("pass", S, true),
            ("transaction_id", S, false),
        ],
    },
    Op {
        methods: &["get", "post"],
        paths: &["/validate/triggerchallenge"],
        summary: "Send SMS challenges without a PIN check (right triggerchallenge).",
        admin: true,
        params: &[USER, REALM, SERIAL],
    },
    Op {
        methods: &["get"],
        paths: &["/validate/polltransaction"],
        summary: "Poll a transaction (always pending for SMS).",
        admin: false,
        params: &[("transaction_id", S, true)],
    },
    Op {
        methods: &["get"],
        paths: &["/validate/polltransaction/{tid}"],
        summary: "Poll a transaction (always pending for SMS).",
        admin: false,
        params: &[],
    },
    Op {
        methods: &["post"],
        paths: &["/token/init"],
        summary: "Enroll or re-initialise an SMS token.",
        admin: true,
        params: &[
            ("type", S, true),
            USER,
            REALM,
            SERIAL,
            ("phone", S, false),
            ("dynamic_phone", S, false),
            ("pin", S, false),
            ("description", S, false),
            ("otplen", I, false),
            ("hashlib", S, false),
            ("otpkey", S, false),
            ("genkey", S, false),
            ("sms.identifier", S, false),
            ("verify", S, false),
        ],
    },
    Op {
        methods: &["get"],
        paths: &["/token/", "/token"],
        summary: "List tokens.",
        admin: true,
        params: &[
            SERIAL,
            ("type", S, false),
            USER,
            REALM,
            ("tokenrealm", S, false),
            ("description", S, false),
            ("active", S, false),
            ("assigned", S, false),
            ("infokey", S, false),
            ("infovalue", S, false),
            ("page", I, false),
            ("pagesize", I, false),
            ("sortby", S, false),
            ("sortdir", S, false),
        ],
    },
    Op {
        methods: &["delete"],
        paths: &["/token/{serial}"],
        summary: "Delete a token.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["post"],
        paths: &["/token/enable", "/token/disable", "/token/reset"],
        summary: "Enable, disable or reset the fail counter of a token or of a user's tokens.",
        admin: true,
        params: &[SERIAL, USER, REALM],
    },
    Op {
        methods: &["post"],
        paths: &[
            "/token/enable/{serial}",
            "/token/disable/{serial}",
            "/token/reset/{serial}",
        ],
        summary: "Enable, disable or reset the fail counter of one token.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["post"],
        paths: &["/token/setpin"],
        summary: "Set a token's OTP PIN.",
        admin: true,
        params: &[SERIAL, ("otppin", S, false)],
    },
    Op {
        methods: &["post"],
        paths: &["/token/setpin/{serial}"],
        summary: "Set a token's OTP PIN.",
        admin: true,
        params: &[("otppin", S, false)],
    },
    Op {
        methods: &["post"],
        paths: &["/token/set"],
        summary: "Set max_failcount, count_window, description, or an SMS token's phone, dynamic_phone and sms.identifier.",
        admin: true,
        params: &[
            SERIAL,
            ("max_failcount", I, false),
            ("count_window", I, false),
            ("description", S, false),
            ("phone", S, false),
            ("dynamic_phone", S, false),
            ("sms.identifier", S, false),
        ],
    },
    Op {
        methods: &["post"],
        paths: &["/token/set/{serial}"],
        summary: "Set max_failcount, count_window, description, or an SMS token's phone, dynamic_phone and sms.identifier.",
        admin: true,
        params: &[
            ("max_failcount", I, false),
            ("count_window", I, false),
            ("description", S, false),
            ("phone", S, false),
            ("dynamic_phone", S, false),
            ("sms.identifier", S, false),
        ],
    },
    Op {
        methods: &["get"],
        paths: &["/token/challenges/", "/token/challenges/{serial}"],
        summary: "Open challenges.",
        admin: true,
        params: &[("page", I, false), ("pagesize", I, false)],
    },
    Op {
        methods: &["delete"],
        paths: &["/token/challenges/transaction/{tid}"],
        summary: "End a login in progress: delete the challenges of a transaction.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["delete"],
        paths: &["/token/challenges/expired"],
        summary: "Delete expired challenges.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["post"],
        paths: &["/token/assign"],
        summary: "Assign an unassigned token to a user (optionally setting its PIN).",
        admin: true,
        params: &[
            ("serial", S, true),
            ("user", S, true),
            REALM,
            ("pin", S, false),
        ],
    },
    Op {
        methods: &["post"],
        paths: &["/token/unassign"],
        summary: "Unassign tokens (serial, a comma-separated list, serials, or all of a user's).",
        admin: true,
        params: &[SERIAL, ("serials", S, false), USER, REALM],
    },
    Op {
        methods: &["post"],
        paths: &["/token/revoke"],
        summary: "Revoke a token or all of a user's tokens for good.",
        admin: true,
        params: &[SERIAL, USER, REALM],
    },
    Op {
        methods: &["post"],
        paths: &["/token/revoke/{serial}"],
        summary: "Revoke a token for good.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["post"],
        paths: &["/token/description"],
        summary: "Set a token's description.",
        admin: true,
        params: &[SERIAL, ("description", S, true)],
    },
    Op {
        methods: &["post"],
        paths: &["/token/description/{serial}"],
        summary: "Set a token's description.",
        admin: true,
        params: &[("description", S, true)],
    },
    Op {
        methods: &["post"],
        paths: &["/token/realm/{serial}"],
        summary: "Replace the realms a token is in (the owner's realm stays).",
        admin: true,
        params: &[("realms", S, true)],
    },
    Op {
        methods: &["post"],
        paths: &["/token/info/{serial}/{key}"],
        summary: "Set one token info value.",
        admin: true,
        params: &[("value", S, true)],
    },
    Op {
        methods: &["delete"],
        paths: &["/token/info/{serial}/{key}"],
        summary: "Delete one token info value.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["post"],
        paths: &["/token/copypin", "/token/copyuser"],
        summary: "Copy the PIN, or the owner and realms, of token `from` to token `to`.",
        admin: true,
        params: &[("from", S, true), ("to", S, true)],
    },
    Op {
        methods: &["post"],
        paths: &["/token/setrandompin"],
        summary: "Set a random PIN (admin policy otp_pin_set_random); the PIN is in detail.pin.",
        admin: true,
        params: &[SERIAL],
    },
    Op {
        methods: &["post"],
        paths: &["/token/setrandompin/{serial}"],
        summary: "Set a random PIN (admin policy otp_pin_set_random); the PIN is in detail.pin.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["get"],
        paths: &["/smsgateway", "/smsgateway/"],
        summary: "SMS gateway definitions (secrets censored).",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["post"],
        paths: &["/smsgateway", "/smsgateway/"],
        summary: "Create or replace an SMS gateway (option.*, header.*).",
        admin: true,
        params: &[
            ("name", S, true),
            ("module", S, true),
            ("description", S, false),
        ],
    },
    Op {
        methods: &["get"],
        paths: &["/smsgateway/providers"],
        summary: "The SMS providers and their parameters.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["get"],
        paths: &["/smsgateway/messages"],
        summary: "One record per SMS handed to a gateway, newest first: state (sending, accepted, not_sent, delivered, failed) and times.",
        admin: true,
        params: &[
            ("transaction_id", S, false),
            SERIAL,
            USER,
            ("gateway", S, false),
            ("state", S, false),
            ("since", S, false),
            ("until", S, false),
            ("page", I, false),
            ("pagesize", I, false),
        ],
    },
    Op {
        methods: &["get"],
        paths: &["/smsgateway/stats"],
        summary: "Delivery per gateway and destination country over a window (default the last 24 hours): sent, delivered, failed, pending, median and p95 time to delivery, delivery rate, conversion, flagged routes.",
        admin: true,
        params: &[("since", S, false), ("until", S, false)],
    },
    Op {
        methods: &["get", "post"],
        paths: &["/smsgateway/dlr/{reference}"],
        summary: "A delivery receipt for one SMS (the URL of the HTTP provider's {dlr_url} tag); the status parameter is the gateway's DLR_STATUS (default status). Unknown references: 404.",
        admin: false,
        params: &[("status", S, false)],
    },
    Op {
        methods: &["get"],
        paths: &["/smsgateway/{id}"],
        summary: "One SMS gateway by id.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["delete"],
        paths: &["/smsgateway/{id}"],
        summary: "Delete an SMS gateway by name.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["delete"],
        paths: &["/smsgateway/option/{gwid}/{key}"],
        summary: "Delete one gateway option or header.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["get"],
        paths: &["/radiusserver", "/radiusserver/"],
        summary: "RADIUS server definitions for the RADIUS pass-through (secrets censored).",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["post"],
        paths: &["/radiusserver/{identifier}"],
        summary: "Create or replace a RADIUS server.",
        admin: true,
        params: &[
            ("server", S, true),
            ("secret", S, true),
            ("port", I, false),
            ("retries", I, false),
            ("timeout", I, false),
            ("description", S, false),
            ("dictionary", S, false),
        ],
    },
    Op {
        methods: &["delete"],
        paths: &["/radiusserver/{identifier}"],
        summary: "Delete a RADIUS server.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["post"],
        paths: &["/radiusserver/test_request"],
        summary: "An Access-Request through a RADIUS server (stored, or the given settings).",
        admin: true,
        params: &[
            ("identifier", S, true),
            ("username", S, true),
            ("password", S, true),
            ("server", S, false),
            ("secret", S, false),
            ("port", I, false),
        ],
    },
    Op {
        methods: &["get"],
        paths: &["/smtpserver", "/smtpserver/"],
        summary: "SMTP server definitions (passwords censored).",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["get"],
        paths: &["/smtpserver/{identifier}"],
        summary: "One SMTP server.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["post"],
        paths: &["/smtpserver/{identifier}"],
        summary: "Create or replace an SMTP server.",
        admin: true,
        params: &[
            ("server", S, true),
            ("port", I, false),
            ("username", S, false),
            ("password", S, false),
            ("sender", S, false),
            ("tls", S, false),
            ("timeout", I, false),
            ("description", S, false),
            ("tls_verify", S, false),
        ],
    },
    Op {
        methods: &["delete"],
        paths: &["/smtpserver/{identifier}"],
        summary: "Delete an SMTP server.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["post"],
        paths: &["/smtpserver/send_test_email"],
        summary: "Send a test mail.",
        admin: true,
        params: &[
            ("identifier", S, false),
            ("recipient", S, true),
            ("server", S, false),
        ],
    },
    Op {
        methods: &["post"],
        paths: &["/system/setConfig"],
        summary: "Set system configuration keys (sms.*, splitAtSign, …).",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["get"],
        paths: &["/system/", "/system", "/system/{key}"],
        summary: "System configuration.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["delete"],
        paths: &["/system/{key}"],
        summary: "Delete a system configuration key.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["get"],
        paths: &["/resolver/", "/resolver", "/resolver/{name}"],
        summary: "User stores (secrets censored).",
        admin: true,
        params: &[("type", S, false)],
    },
    Op {
        methods: &["post"],
        paths: &["/resolver/{name}"],
        summary: "Create or update a user store (passwdresolver, internalresolver, ldapresolver).",
        admin: true,
        params: &[
            ("type", S, true),
            ("fileName", S, false),
            ("LDAPURI", S, false),
            ("LDAPBASE", S, false),
            ("BINDDN", S, false),
            ("BINDPW", S, false),
            ("LOGINNAMEATTRIBUTE", S, false),
            ("LDAPSEARCHFILTER", S, false),
            ("USERINFO", S, false),
            ("UIDTYPE", S, false),
        ],
    },
    Op {
        methods: &["post"],
        paths: &["/resolver/test"],
        summary: "Test an LDAP resolver's settings (bind and search; nothing is saved).",
        admin: true,
        params: &[
            ("type", S, true),
            ("resolver", S, false),
            ("LDAPURI", S, false),
            ("LDAPBASE", S, false),
            ("BINDDN", S, false),
            ("BINDPW", S, false),
            ("LOGINNAMEATTRIBUTE", S, false),
        ],
    },
    Op {
        methods: &["delete"],
        paths: &["/resolver/{name}"],
        summary: "Delete a user store no realm uses.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["get"],
        paths: &[
            "/realm/",
            "/realm",
            "/realm/superuser",
            "/defaultrealm",
            "/defaultrealm/",
        ],
        summary: "Realms, superuser realms, the default realm.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["post"],
        paths: &["/realm/{name}"],
        summary: "Create or replace a realm.",
        admin: true,
        params: &[("resolvers", S, false)],
    },
    Op {
        methods: &["delete"],
        paths: &["/realm/{name}"],
        summary: "Delete a realm.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["post"],
        paths: &["/defaultrealm/{name}"],
        summary: "Set the default realm.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["delete"],
        paths: &["/defaultrealm"],
        summary: "Clear the default realm.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["get"],
        paths: &["/user/", "/user"],
        summary: "Users of a realm.",
        admin: true,
        params: &[REALM, ("username", S, false), ("resolver", S, false)],
    },
    Op {
        methods: &["post"],
        paths: &["/user/", "/user"],
        summary: "Create a user in an internal resolver.",
        admin: true,
        params: USER_FIELDS,
    },
    Op {
        methods: &["put"],
        paths: &["/user/", "/user"],
        summary: "Update a user of an internal resolver.",
        admin: true,
        params: USER_FIELDS,
    },
    Op {
        methods: &["delete"],
        paths: &["/user/{resolver}/{name}"],
        summary: "Delete a user of an internal resolver.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["get"],
        paths: &["/policy/", "/policy", "/policy/{name}"],
        summary: "Policies.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["post"],
        paths: &["/policy/{name}"],
        summary: "Create or replace a policy.",
        admin: true,
        params: &[
            ("scope", S, true),
            ("action", S, false),
            ("realm", S, false),
            ("resolver", S, false),
            ("user", S, false),
            ("client", S, false),
            ("priority", I, false),
            ("active", S, false),
        ],
    },
    Op {
        methods: &["delete"],
        paths: &["/policy/{name}"],
        summary: "Delete a policy.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["post"],
        paths: &["/policy/enable/{name}", "/policy/disable/{name}"],
        summary: "Enable or disable a policy.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["get"],
        paths: &["/event", "/event/", "/event/{id}"],
        summary: "Event handlers (also /event/available and /event/handlermodules).",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["post"],
        paths: &["/event", "/event/"],
        summary: "Create or replace an event handler (UserNotification).",
        admin: true,
        params: &[
            ("name", S, true),
            ("event", S, true),
            ("handlermodule", S, true),
            ("action", S, true),
            ("position", S, false),
            ("ordering", I, false),
            ("active", S, false),
            ("conditions", S, false),
            ("id", I, false),
        ],
    },
    Op {
        methods: &["delete"],
        paths: &["/event/{id}"],
        summary: "Delete an event handler.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["post"],
        paths: &["/event/enable/{id}", "/event/disable/{id}"],
        summary: "Enable or disable an event handler.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["get"],
        paths: &[
            "/event/actions/{module}",
            "/event/conditions/{module}",
            "/event/positions/{module}",
            "/event/defaults/{module}",
        ],
        summary: "What an event handler module supports.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["get"],
        paths: &["/event/outbox"],
        summary: "The notification outbox (no message bodies).",
        admin: true,
        params: &[
            ("status", S, false),
            ("page", I, false),
            ("pagesize", I, false),
        ],
    },
    Op {
        methods: &["post"],
        paths: &["/event/outbox/{id}/retry"],
        summary: "Queue a dead notification again.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["get"],
        paths: &["/fraud/blocks", "/fraud/blocks/"],
        summary: "Blocked destination prefixes.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["post"],
        paths: &["/fraud/blocks/{prefix}"],
        summary: "Block a destination prefix.",
        admin: true,
        params: &[("reason", S, false)],
    },
    Op {
        methods: &["delete"],
        paths: &["/fraud/blocks/{prefix}"],
        summary: "Unblock a destination prefix.",
        admin: true,
        params: &[],
    },
    Op {
        methods: &["get"],
        paths: &["/audit/", "/audit"],
        summary: "The audit log.",
        admin: true,
        params: &[
            ("action", S, false),
            SERIAL,
            USER,
            REALM,
            ("success", S, false),
            ("page", I, false),
            ("page_size", I, false),
        ],
    },
];

fn schema(t: T) -> Value {
    match t {
        S => json!({"type": "string"}),
        I => json!({"type": "integer"}),
    }
}

/// The answers every operation may give: privacyIDEA's envelope, or its error envelope.
fn responses(path: &str) -> Value {
    let env = json!({"$ref": "#/components/schemas/Envelope"});
    let mut r = json!({
        "200": {"description": "privacyIDEA's envelope", "content": {"application/json": {"schema": env}}},
        "400": {"description": "Parameter, user or configuration error", "content": {"application/json": {"schema": env}}},
        "401": {"description": "Authentication failed or missing", "content": {"application/json": {"schema": env}}},
        "403": {"description": "A policy forbids it", "content": {"application/json": {"schema": env}}},
        "404": {"description": "Not found", "content": {"application/json": {"schema": env}}},
        "405": {"description": "Method not allowed", "content": {"application/json": {"schema": env}}},
        "413": {"description": "Body too large", "content": {"application/json": {"schema": env}}},
        "429": {"description": "Rate limited (Retry-After)", "content": {"application/json": {"schema": env}}},
        "503": {"description": "Busy or the database is unavailable (Retry-After)", "content": {"application/json": {"schema": env}}},
    });
    if path == "/validate/radiuscheck"
        && let Some(m) = r.as_object_mut()
    {
        m.insert(
            "204".into(),
            json!({"description": "Accepted (empty body)"}),
        );
        m.insert(
            "400".into(),
            json!({"description": "Anything but accept (empty body)"}),
        );
    }
    if path == "/validate/check"
        && let Some(m) = r.as_object_mut()
    {
        m.insert("500".into(), json!({"description": "exception=1 and the SMS could not be sent", "content": {"application/json": {"schema": env}}}));
    }
    r
}

fn operation(op: &Op, method: &str, path: &str) -> Value {
    let mut parameters: Vec<Value> = path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "minLength": 1}}))
        .collect();
    let mut o = Map::new();
    o.insert("summary".into(), json!(op.summary));
    o.insert("responses".into(), responses(path));
    if op.admin {
        o.insert("security".into(), json!([{"jwt": []}]));
    }
    if method == "get" || method == "delete" {
        parameters.extend(op.params.iter().map(
            |(n, t, req)| json!({"name": n, "in": "query", "required": req, "schema": schema(*t)}),
        ));
    } else if !op.params.is_empty() {
        let props: Map<String, Value> = op
            .params
            .iter()
            .map(|(n, t, _)| ((*n).to_owned(), schema(*t)))
            .collect();
        let required: Vec<&str> = op.params.iter().filter(|p| p.2).map(|p| p.0).collect();
        let mut body = json!({"type": "object", "properties": props});
        if !required.is_empty()
            && let Some(b) = body.as_object_mut()
        {
            b.insert("required".into(), json!(required));
        }
        o.insert(
            "requestBody".into(),
            json!({"content": {
                "application/x-www-form-urlencoded": {"schema": body},
                "multipart/form-data": {"schema": body},
                "application/json": {"schema": body},
            }}),
        );
    }
    if !parameters.is_empty() {
        o.insert("parameters".into(), Value::Array(parameters));
    }
    Value::Object(o)
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPS {
        for p in op.paths {
            let entry = paths
                .entry((*p).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(m) = entry.as_object_mut() {
                for method in op.methods {
                    m.insert((*method).to_owned(), operation(op, method, p));
                }
            }
        }
    }
    for (p, summary) in [
        (
            "/healthz",
            "200 ok when the database answers, 503 otherwise (text).",
        ),
        ("/metrics", "Prometheus metrics (text)."),
        ("/openapi.json", "This document."),
    ] {
        let ctype = if p == "/openapi.json" {
            "application/json"
        } else {
            "text/plain"
        };
        paths.insert(
            p.to_owned(),
            json!({"get": {"summary": summary, "responses": {
                "200": {"description": "OK", "content": {ctype: {"schema": {}}}},
                "503": {"description": "Unavailable", "content": {"text/plain": {"schema": {}}}}
            }}}),
        );
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "otpgate",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "privacyIDEA-compatible SMS OTP authentication server. Every endpoint also accepts its parameters in the query string; the admin JWT goes raw into Authorization or PI-Authorization.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"jwt": {"type": "apiKey", "in": "header", "name": "Authorization"}},
            "schemas": {"Envelope": {
                "type": "object",
                "required": ["jsonrpc", "result", "version", "id", "time"],
                "properties": {
                    "jsonrpc": {"type": "string"},
                    "id": {"type": "integer"},
                    "time": {"type": "number"},
                    "version": {"type": "string"},
                    "versionnumber": {"type": "string"},
                    "detail": {"nullable": true},
                    "result": {
                        "type": "object",
                        "required": ["status"],
                        "properties": {
                            "status": {"type": "boolean"},
                            "authentication": {"type": "string"},
                            "value": {},
                            "error": {"type": "object", "required": ["code", "message"], "properties": {
                                "code": {"type": "integer"}, "message": {"type": "string"}
                            }}
                        }
                    }
                }
            }}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route the router defines (read from its source) is described, with each method.
    #[test]
    fn every_route_of_the_router_is_described() {
        let doc = document();
        let src = include_str!("../http.rs");
        let start = src.find("pub fn router").unwrap_or(0);
        let end = src.find(".fallback(not_found)").unwrap_or(src.len());
        let body = src.get(start..end).unwrap_or_default();
        let mut seen = 0;
        let parts: Vec<&str> = body.split(".route(").skip(1).collect();
        for part in parts {
            let Some(path) = part.split('"').nth(1) else {
                continue;
            };
            // The route's own text ends where the next statement starts.
            let own = part.split(".route(").next().unwrap_or_default();
            let methods: Vec<&str> = ["get", "post", "put", "delete"]
                .into_iter()
                .filter(|m| {
                    own.match_indices(&format!("{m}(")).any(|(i, _)| {
                        i == 0
                            || !own.as_bytes()[i - 1].is_ascii_alphanumeric()
                                && own.as_bytes()[i - 1] != b'_'
                    })
                })
                .collect();
            assert!(!methods.is_empty(), "{path}");
            for m in methods {
                seen += 1;
                assert!(
                    doc["paths"][path][m].is_object(),
                    "{m} {path} is not in /openapi.json"
                );
            }
        }
        assert!(seen > 90, "{seen} operations found in the router");
    }

    #[test]
    fn path_parameters_are_declared() {
        let doc = document();
        let op = &doc["paths"]["/user/{resolver}/{name}"]["delete"];
        let names: Vec<&str> = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["resolver", "name"]);
        assert_eq!(
            doc["paths"]["/auth"]["post"]["requestBody"]["content"]["application/json"]["schema"]["required"],
            json!(["username", "password"])
        );
    }
}
