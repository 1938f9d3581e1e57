//! The provider catalogue: module names, parameters and their descriptions (served by
//! `GET /smsgateway/providers`), and validation of a definition when it is saved.

use serde_json::{Map, Value, json};

/// The providers this build can send through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// privacyIDEA's HttpSMSProvider.
    Http,
    /// Appends each message to a JSON-lines file, for trying otpgate without an SMS account.
    Sink,
    /// privacyIDEA's ScriptSMSProvider: a script from the scripts directory.
    Script,
    /// privacyIDEA's SipgateSMSProvider: XML-RPC `samurai.SessionInitiate`.
    Sipgate,
    /// privacyIDEA's SmtpSMSProvider: an email to an email-to-SMS gateway.
    Smtp,
    /// privacyIDEA's SmppSMSProvider: SMPP 3.4 to an SMSC.
    Smpp,
    /// A GSM modem on a serial line, driven with AT commands (privacyIDEA has none).
    Modem,
}

/// A parameter: (name, required, description, allowed values, secret).
type Parameter = (
    &'static str,
    bool,
    &'static str,
    &'static [&'static str],
    bool,
);

/// Parameters every provider takes (handled by the service, not by the provider).
const COMMON_PARAMETERS: &[Parameter] = &[
    (
        "FAILOVER",
        false,
        "Backup gateways, by name and comma-separated, tried in order when this one fails or its circuit breaker is open.",
        &[],
        false,
    ),
    (
        "NUMBER_FORMAT",
        false,
        "How this gateway gets the number: e164 (+4915112345678), digits (4915112345678), 00 (004915112345678) or national (015112345678). Applied before REGEXP; numbers that do not parse are passed unchanged.",
        &["e164", "digits", "00", "national"],
        false,
    ),
];

/// How many backup gateways `FAILOVER` may name.
pub const MAX_FAILOVER: usize = 5;

/// The `FAILOVER` gateway names of a definition, in order, without repeats or the gateway
/// itself.
pub fn failover_names(def: &crate::GatewayDef) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for n in def
        .options
        .get("FAILOVER")
        .map(String::as_str)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty() && *n != def.name)
    {
        if !names.iter().any(|m| m == n) {
            names.push(n.to_owned());
        }
    }
    names
}

const HTTP_MODULE: &str = "privacyidea.lib.smsprovider.HttpSMSProvider.HttpSMSProvider";
const SIPGATE_MODULE: &str = "privacyidea.lib.smsprovider.SipgateSMSProvider.SipgateSMSProvider";
const SMTP_MODULE: &str = "privacyidea.lib.smsprovider.SmtpSMSProvider.SmtpSMSProvider";
const SMPP_MODULE: &str = "privacyidea.lib.smsprovider.SmppSMSProvider.SmppSMSProvider";
const SCRIPT_MODULE: &str = "privacyidea.lib.smsprovider.ScriptSMSProvider.ScriptSMSProvider";

impl ProviderKind {
    /// Every provider, in catalogue order.
    pub const ALL: [ProviderKind; 7] = [
        ProviderKind::Http,
        ProviderKind::Sipgate,
        ProviderKind::Smtp,
        ProviderKind::Smpp,
        ProviderKind::Modem,
        ProviderKind::Script,
        ProviderKind::Sink,
    ];

    /// Accepts privacyIDEA's dotted module names and otpgate's short names.
    pub fn parse(module: &str) -> Option<Self> {
        match module.trim() {
            HTTP_MODULE | "http" | "HttpSMSProvider" => Some(Self::Http),
            "sink" | "otpgate.sink" => Some(Self::Sink),
            SCRIPT_MODULE | "script" | "ScriptSMSProvider" => Some(Self::Script),
            SIPGATE_MODULE | "sipgate" | "SipgateSMSProvider" => Some(Self::Sipgate),
            SMTP_MODULE | "smtp" | "SmtpSMSProvider" => Some(Self::Smtp),
            SMPP_MODULE | "smpp" | "SmppSMSProvider" => Some(Self::Smpp),
            "modem" | "otpgate.modem" => Some(Self::Modem),
            _ => None,
        }
    }

    /// The name under which the provider is listed.
    pub fn module_name(self) -> &'static str {
        match self {
            Self::Http => HTTP_MODULE,
            Self::Sink => "sink",
            Self::Script => SCRIPT_MODULE,
            Self::Sipgate => SIPGATE_MODULE,
            Self::Smtp => SMTP_MODULE,
            Self::Smpp => SMPP_MODULE,
            Self::Modem => "modem",
        }
    }

    /// Every parameter: the provider's own, then those every provider takes.
    fn parameters(self) -> impl Iterator<Item = &'static Parameter> {
        self.own_parameters().iter().chain(COMMON_PARAMETERS)
    }

    /// The provider's own fixed parameters: (name, required, description, allowed values,
    /// secret).
    fn own_parameters(
        self,
    ) -> &'static [(
        &'static str,
        bool,
        &'static str,
        &'static [&'static str],
        bool,
    )] {
        match self {
            Self::Http => &[
                ("URL", true, "The base URL of the HTTP Gateway", &[], false),
                (
                    "HTTP_METHOD",
                    true,
                    "Should the HTTP Gateway be connected via an HTTP GET or POST request.",
                    &["GET", "POST"],
                    false,
                ),
                (
                    "RETURN_SUCCESS",
                    false,
                    "Specify a substring, that indicates, that the SMS was delivered successfully.",
                    &[],
                    false,
                ),
                (
                    "RETURN_FAIL",
                    false,
                    "Specify a substring, that indicates, that the SMS failed to be delivered.",
                    &[],
                    false,
                ),
                (
                    "USERNAME",
                    false,
                    "Username in case of basic authentication.",
                    &[],
                    false,
                ),
                (
                    "PASSWORD",
                    false,
                    "Password in case of basic authentication.",
                    &[],
                    true,
                ),
                (
                    "CHECK_SSL",
                    true,
                    "Should the SSL certificate be verified.",
                    &["yes", "no"],
                    false,
                ),
                (
                    "SEND_DATA_AS_JSON",
                    true,
                    "Should the data in a POST Request be sent as JSON.",
                    &["yes", "no"],
                    false,
                ),
                ("REGEXP", false, REGEXP_DESCRIPTION, &[], false),
                (
                    "PROXY",
                    false,
                    "An optional proxy string. DEPRECATED. Do not use this anymore. Rather use HTTP_PROXY for http connections and HTTPS_PROXY for https connection. The PROXY option will be removed in future.",
                    &[],
                    false,
                ),
                (
                    "HTTP_PROXY",
                    false,
                    "Proxy setting for HTTP connections.",
                    &[],
                    false,
                ),
                (
                    "HTTPS_PROXY",
                    false,
                    "Proxy setting for HTTPS connections.",
                    &[],
                    false,
                ),
                ("TIMEOUT", false, "The timeout in seconds.", &[], false),
                (
                    "PARAMETER",
                    false,
                    "A JSON object of fixed fields sent unchanged with every request (no tag substitution). An option may not have the name of one of its keys.",
                    &[],
                    false,
                ),
                (
                    "SMS_PHONENUMBER_KEY",
                    false,
                    "Legacy: if set, the phone number is also sent in a field of this name.",
                    &[],
                    false,
                ),
                (
                    "SMS_TEXT_KEY",
                    false,
                    "Legacy: if set, the SMS text is also sent in a field of this name.",
                    &[],
                    false,
                ),
            ],
            Self::Smpp => &[
                ("SMSC_HOST", true, "The SMSC's host.", &[], false),
                ("SMSC_PORT", true, "The SMSC's port.", &[], false),
                (
                    "SYSTEM_ID",
                    false,
                    "The system_id of bind_transmitter.",
                    &[],
                    false,
                ),
                (
                    "PASSWORD",
                    false,
                    "The password of bind_transmitter.",
                    &[],
                    true,
                ),
                ("S_ADDR", false, "The source address (sender).", &[], false),
                (
                    "S_ADDR_TON",
                    false,
                    "Type of number of the source address (decimal or hex like 0x5; default 0).",
                    &[],
                    false,
                ),
                (
                    "S_ADDR_NPI",
                    false,
                    "Numbering plan of the source address (default 0).",
                    &[],
                    false,
                ),
                (
                    "D_ADDR_TON",
                    false,
                    "Type of number of the destination (default 0).",
                    &[],
                    false,
                ),
                (
                    "D_ADDR_NPI",
                    false,
                    "Numbering plan of the destination (default 0).",
                    &[],
                    false,
                ),
                (
                    "TIMEOUT",
                    false,
                    "Seconds for the whole session (default 10).",
                    &[],
                    false,
                ),
                ("REGEXP", false, REGEXP_DESCRIPTION, &[], false),
            ],
            Self::Smtp => &[
                (
                    "SMTPIDENTIFIER",
                    true,
                    "The central SMTP server (/smtpserver) that sends the mail. SMTPIDENTIFIED is accepted as well.",
                    &[],
                    false,
                ),
                (
                    "SMTPIDENTIFIED",
                    false,
                    "The seed's spelling of SMTPIDENTIFIER, accepted as well.",
                    &[],
                    false,
                ),
                (
                    "MAILTO",
                    true,
                    "The recipient: the email-to-SMS gateway's address, e.g. {phone}@sms.example.com. Tags {phone} and {otp}.",
                    &[],
                    false,
                ),
                (
                    "SUBJECT",
                    false,
                    "The subject (default {phone}).",
                    &[],
                    false,
                ),
                (
                    "BODY",
                    false,
                    "The body (default {otp}, the whole SMS text).",
                    &[],
                    false,
                ),
                ("REGEXP", false, REGEXP_DESCRIPTION, &[], false),
            ],
            Self::Sipgate => &[
                ("USERNAME", true, "The sipgate username.", &[], false),
                ("PASSWORD", true, "The sipgate password.", &[], true),
                (
                    "URL",
                    false,
                    "The XML-RPC endpoint (default https://samurai.sipgate.net/RPC2).",
                    &[],
                    false,
                ),
                ("PROXY", false, "An optional proxy URL.", &[], false),
                (
                    "TIMEOUT",
                    false,
                    "The timeout in seconds (default 10).",
                    &[],
                    false,
                ),
                ("REGEXP", false, REGEXP_DESCRIPTION, &[], false),
            ],
            Self::Script => &[
                (
                    "script",
                    true,
                    "The script in the scripts directory (a plain file name) that sends the SMS. It gets the phone number as its argument and the message on standard input.",
                    &[],
                    false,
                ),
                (
                    "background",
                    true,
                    "wait: the send waits for the script and fails on a non-zero exit; background: the send returns at once.",
                    &["wait", "background"],
                    false,
                ),
                (
                    "TIMEOUT",
                    false,
                    "Seconds the script may run (default 10); it is killed then.",
                    &[],
                    false,
                ),
                ("REGEXP", false, REGEXP_DESCRIPTION, &[], false),
            ],
            Self::Modem => &[
                (
                    "DEVICE",
                    true,
                    "The modem's serial device, e.g. /dev/ttyUSB0 (a path under /dev/).",
                    &[],
                    false,
                ),
                (
                    "BAUDRATE",
                    false,
                    "The line speed (default 115200).",
                    &[],
                    false,
                ),
                (
                    "SIM_PIN",
                    false,
                    "The SIM's PIN, entered when the SIM asks for it.",
                    &[],
                    true,
                ),
                (
                    "MODE",
                    false,
                    "auto (default: text mode for one SMS of plain ASCII, PDU mode otherwise), pdu (any text: GSM-7 or UCS-2, long texts concatenated) or text (plain ASCII up to 160 characters only, for modems without PDU mode).",
                    &["auto", "text", "pdu"],
                    false,
                ),
                (
                    "SMSC",
                    false,
                    "The SMS centre's number; default: the one stored on the SIM.",
                    &[],
                    false,
                ),
                (
                    "TIMEOUT",
                    false,
                    "Seconds to wait for each answer of the modem (default 10).",
                    &[],
                    false,
                ),
                ("REGEXP", false, REGEXP_DESCRIPTION, &[], false),
            ],
            Self::Sink => &[
                (
                    "FILE",
                    false,
                    "The file the messages are appended to as JSON lines. Default: sink-sms.jsonl in the data directory.",
                    &[],
                    false,
                ),
                ("REGEXP", false, REGEXP_DESCRIPTION, &[], false),
            ],
        }
    }

    /// Whether free options (sent as request fields) are allowed.
    pub fn options_allowed(self) -> bool {
        matches!(self, Self::Http)
    }

    /// Whether HTTP headers are allowed.
    pub fn headers_allowed(self) -> bool {
        matches!(self, Self::Http)
    }

    /// True if `key` is one of the provider's fixed parameters.
    pub fn is_parameter(self, key: &str) -> bool {
        self.parameters().any(|p| p.0 == key)
    }

    /// True if `key` is a parameter the catalogue marks secret.
    pub fn is_secret(self, key: &str) -> bool {
        self.parameters().any(|p| p.0 == key && p.4)
    }
}

const REGEXP_DESCRIPTION: &str = "Regular expression to modify the phone number to make it compatible with the provider. For example to remove pluses and slashes enter something like '/[\\+/]//'.";

/// The body of `GET /smsgateway/providers`.
pub fn providers_description() -> Value {
    let mut out = Map::new();
    for kind in ProviderKind::ALL {
        let mut params = Map::new();
        for (name, required, description, values, secret) in kind.parameters() {
            let mut p = Map::new();
            p.insert("description".into(), json!(description));
            if *required {
                p.insert("required".into(), json!(true));
            }
            if !values.is_empty() {
                p.insert("values".into(), json!(values));
            }
            if *secret {
                p.insert("secret".into(), json!(true));
            }
            params.insert((*name).into(), Value::Object(p));
        }
        out.insert(
            kind.module_name().into(),
            json!({"options_allowed": kind.options_allowed(), "headers_allowed": kind.headers_allowed(), "parameters": params}),
        );
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_catalogue() {
        assert_eq!(ProviderKind::parse(HTTP_MODULE), Some(ProviderKind::Http));
        assert_eq!(ProviderKind::parse("http"), Some(ProviderKind::Http));
        assert_eq!(ProviderKind::parse("nope"), None);
        let d = providers_description();
        assert_eq!(d[HTTP_MODULE]["parameters"]["URL"]["required"], true);
        assert_eq!(d[HTTP_MODULE]["parameters"]["PASSWORD"]["secret"], true);
        assert_eq!(d[HTTP_MODULE]["options_allowed"], true);
        assert_eq!(d["sink"]["headers_allowed"], false);
        for kind in ProviderKind::ALL {
            assert_eq!(
                ProviderKind::parse(kind.module_name()),
                Some(kind),
                "{kind:?} round-trips"
            );
            assert!(d.get(kind.module_name()).is_some(), "{kind:?} is listed");
        }
        assert_eq!(d.as_object().unwrap().len(), 7);
    }
}
