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

/// A fixed parameter of a provider, as the catalogue describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parameter {
    /// The option key (`URL`, `PASSWORD`, …).
    pub name: &'static str,
    /// A gateway must set it.
    pub required: bool,
    /// What it does (privacyIDEA's description where privacyIDEA has the parameter).
    pub description: &'static str,
    /// The values it may take (empty: any).
    pub values: &'static [&'static str],
    /// Stored encrypted and never shown again.
    pub secret: bool,
}

impl Parameter {
    const fn required(name: &'static str, description: &'static str) -> Self {
        Self {
            name,
            required: true,
            description,
            values: &[],
            secret: false,
        }
    }

    const fn optional(name: &'static str, description: &'static str) -> Self {
        Self {
            required: false,
            ..Self::required(name, description)
        }
    }

    const fn values(self, values: &'static [&'static str]) -> Self {
        Self { values, ..self }
    }

    const fn secret(self) -> Self {
        Self {
            secret: true,
            ..self
        }
    }
}

/// Parameters every provider takes (handled by the service, not by the provider).
const COMMON_PARAMETERS: &[Parameter] = &[
    Parameter::optional("FAILOVER", "Backup gateways, by name and comma-separated, tried in order when this one fails or its circuit breaker is open."),
    Parameter::optional("NUMBER_FORMAT", "How this gateway gets the number: e164 (+4915112345678), digits (4915112345678), 00 (004915112345678) or national (015112345678). Applied before REGEXP; numbers that do not parse are passed unchanged.").values(&["e164", "digits", "00", "national"]),
];

/// The Http provider's own parameters.
const HTTP_PARAMETERS: &[Parameter] = &[
    Parameter::required("URL", "The base URL of the HTTP Gateway"),
    Parameter::required(
        "HTTP_METHOD",
        "Should the HTTP Gateway be connected via an HTTP GET or POST request.",
    )
    .values(&["GET", "POST"]),
    Parameter::optional(
        "RETURN_SUCCESS",
        "Specify a substring, that indicates, that the SMS was delivered successfully.",
    ),
    Parameter::optional(
        "RETURN_FAIL",
        "Specify a substring, that indicates, that the SMS failed to be delivered.",
    ),
    Parameter::optional("USERNAME", "Username in case of basic authentication."),
    Parameter::optional("PASSWORD", "Password in case of basic authentication.").secret(),
    Parameter::required("CHECK_SSL", "Should the SSL certificate be verified.")
        .values(&["yes", "no"]),
    Parameter::required(
        "SEND_DATA_AS_JSON",
        "Should the data in a POST Request be sent as JSON.",
    )
    .values(&["yes", "no"]),
    Parameter::optional("REGEXP", REGEXP_DESCRIPTION),
    Parameter::optional(
        "PROXY",
        "An optional proxy string. DEPRECATED. Do not use this anymore. Rather use HTTP_PROXY for http connections and HTTPS_PROXY for https connection. The PROXY option will be removed in future.",
    ),
    Parameter::optional("HTTP_PROXY", "Proxy setting for HTTP connections."),
    Parameter::optional("HTTPS_PROXY", "Proxy setting for HTTPS connections."),
    Parameter::optional("TIMEOUT", "The timeout in seconds."),
    Parameter::optional(
        "PARAMETER",
        "A JSON object of fixed fields sent unchanged with every request (no tag substitution). An option may not have the name of one of its keys.",
    ),
    Parameter::optional(
        "SMS_PHONENUMBER_KEY",
        "Legacy: if set, the phone number is also sent in a field of this name.",
    ),
    Parameter::optional(
        "SMS_TEXT_KEY",
        "Legacy: if set, the SMS text is also sent in a field of this name.",
    ),
    Parameter::optional(
        "RETURN_QUEUED",
        "otpgate: a text in the answer that means queued for later delivery (Kannel: Queued): the SMS counts as accepted, for gateways that send delivery receipts ({dlr_url}) so a late or missing delivery fails over (DLR_TIMEOUT).",
    ),
    Parameter::optional(
        "DLR_STATUS",
        "otpgate: the parameter of a delivery receipt (a call of the tag {dlr_url}) that carries the status (default status).",
    ),
    Parameter::optional(
        "DLR_DELIVERED",
        "otpgate: the status values that mean delivered, comma-separated (default 1,delivered,DELIVRD).",
    ),
    Parameter::optional(
        "DLR_FAILED",
        "otpgate: the status values that mean not delivered, comma-separated (default 2,16,failed,undelivered,UNDELIV,REJECTD,EXPIRED); others are intermediate.",
    ),
    Parameter::optional(
        "DLR_TIMEOUT",
        "otpgate: seconds to wait for a delivered receipt before the SMS counts as not delivered (empty: no limit).",
    ),
    Parameter::optional(
        "IDEMPOTENCY_HEADER",
        "otpgate: the header that carries each message's id, the same when a message is sent again after a timeout (default Idempotency-Key; empty: none). The id is also the tag {message_id}.",
    ),
];

/// The Smpp provider's own parameters.
const SMPP_PARAMETERS: &[Parameter] = &[
    Parameter::required("SMSC_HOST", "The SMSC's host."),
    Parameter::required("SMSC_PORT", "The SMSC's port."),
    Parameter::optional("SYSTEM_ID", "The system_id of the bind."),
    Parameter::optional("PASSWORD", "The password of the bind.").secret(),
    Parameter::optional("S_ADDR", "The source address (sender)."),
    Parameter::optional(
        "S_ADDR_TON",
        "Type of number of the source address (decimal or hex like 0x5; default 0).",
    ),
    Parameter::optional(
        "S_ADDR_NPI",
        "Numbering plan of the source address (default 0).",
    ),
    Parameter::optional(
        "D_ADDR_TON",
        "Type of number of the destination (default 0).",
    ),
    Parameter::optional(
        "D_ADDR_NPI",
        "Numbering plan of the destination (default 0).",
    ),
    Parameter::optional(
        "TIMEOUT",
        "Seconds the SMSC may take to connect, bind or answer a message (default 10).",
    ),
    Parameter::optional("REGEXP", REGEXP_DESCRIPTION),
    Parameter::optional(
        "BIND",
        "otpgate: transceiver (default: one session that also takes the SMSC's delivery receipts; an SMSC that refuses it is bound as a transmitter) or transmitter (no receipts, as privacyIDEA).",
    )
    .values(&["transceiver", "transmitter"]),
    Parameter::optional(
        "SMSC_TLS",
        "otpgate: yes to connect over TLS (default no).",
    )
    .values(&["yes", "no"]),
    Parameter::optional(
        "TLS_CA_FILE",
        "otpgate: the CA certificates (PEM file) that sign the SMSC's TLS certificate (default: the system's).",
    ),
    Parameter::optional(
        "WINDOW",
        "otpgate: messages sent on the session before their answers came, at most (default 10).",
    ),
    Parameter::optional(
        "ENQUIRE_LINK",
        "otpgate: seconds of silence after which the session is checked with enquire_link (default 30).",
    ),
    Parameter::optional(
        "DLR_DELIVERED",
        "otpgate: the receipt states that mean delivered, comma-separated (default 1,delivered,DELIVRD).",
    ),
    Parameter::optional(
        "DLR_FAILED",
        "otpgate: the receipt states that mean not delivered (default 2,16,failed,undelivered,UNDELIV,REJECTD,EXPIRED); others are intermediate.",
    ),
    Parameter::optional(
        "DLR_TIMEOUT",
        "otpgate: seconds to wait for a delivered receipt before the SMS counts as not delivered and fails over (empty: only a failed receipt fails over).",
    ),
];

/// The Smtp provider's own parameters.
const SMTP_PARAMETERS: &[Parameter] = &[
    Parameter::required(
        "SMTPIDENTIFIER",
        "The central SMTP server (/smtpserver) that sends the mail. SMTPIDENTIFIED is accepted as well.",
    ),
    Parameter::optional(
        "SMTPIDENTIFIED",
        "The seed's spelling of SMTPIDENTIFIER, accepted as well.",
    ),
    Parameter::required(
        "MAILTO",
        "The recipient: the email-to-SMS gateway's address, e.g. {phone}@sms.example.com. Tags {phone} and {otp}.",
    ),
    Parameter::optional("SUBJECT", "The subject (default {phone})."),
    Parameter::optional("BODY", "The body (default {otp}, the whole SMS text)."),
    Parameter::optional("REGEXP", REGEXP_DESCRIPTION),
];

/// The Sipgate provider's own parameters.
const SIPGATE_PARAMETERS: &[Parameter] = &[
    Parameter::required("USERNAME", "The sipgate username."),
    Parameter::required("PASSWORD", "The sipgate password.").secret(),
    Parameter::optional(
        "URL",
        "The XML-RPC endpoint (default https://samurai.sipgate.net/RPC2).",
    ),
    Parameter::optional("PROXY", "An optional proxy URL."),
    Parameter::optional("TIMEOUT", "The timeout in seconds (default 10)."),
    Parameter::optional("REGEXP", REGEXP_DESCRIPTION),
];

/// The Script provider's own parameters.
const SCRIPT_PARAMETERS: &[Parameter] = &[
        Parameter::required("script", "The script in the scripts directory (a plain file name) that sends the SMS. It gets the phone number as its argument and the message on standard input."),
        Parameter::required("background", "wait: the send waits for the script and fails on a non-zero exit; background: the send returns at once.").values(&["wait", "background"]),
        Parameter::optional("TIMEOUT", "Seconds the script may run (default 10); it is killed then."),
        Parameter::optional("REGEXP", REGEXP_DESCRIPTION),
];

/// The Modem provider's own parameters.
const MODEM_PARAMETERS: &[Parameter] = &[
        Parameter::required("DEVICE", "The modem's serial device, e.g. /dev/ttyUSB0 (a path under /dev/)."),
        Parameter::optional("BAUDRATE", "The line speed (default 115200)."),
        Parameter::optional("SIM_PIN", "The SIM's PIN, entered when the SIM asks for it.").secret(),
        Parameter::optional("MODE", "auto (default: text mode for one SMS of plain ASCII, PDU mode otherwise), pdu (any text: GSM-7 or UCS-2, long texts concatenated) or text (plain ASCII up to 160 characters only, for modems without PDU mode).").values(&["auto", "text", "pdu"]),
        Parameter::optional("SMSC", "The SMS centre's number; default: the one stored on the SIM."),
        Parameter::optional("TIMEOUT", "Seconds to wait for each answer of the modem (default 10)."),
        Parameter::optional("STATUS_REPORTS", "otpgate: yes (default) asks for a status report of each SMS where the modem offers them (AT+CNMI, +CDS); they mark its record delivered or failed and drive failover as receipts do.").values(&["yes", "no"]),
        Parameter::optional("DLR_DELIVERED", "otpgate: the report states that mean delivered (default 1,delivered,DELIVRD)."),
        Parameter::optional("DLR_FAILED", "otpgate: the report states that mean not delivered (default 2,16,failed,undelivered,UNDELIV,REJECTD,EXPIRED)."),
        Parameter::optional("DLR_TIMEOUT", "otpgate: seconds to wait for a delivered report before the SMS counts as not delivered and fails over (empty: only a failed report fails over)."),
        Parameter::optional("REGEXP", REGEXP_DESCRIPTION),
];

/// The Sink provider's own parameters.
const SINK_PARAMETERS: &[Parameter] = &[
    Parameter::optional(
        "FILE",
        "The file the messages are appended to as JSON lines. Default: sink-sms.jsonl in the data directory.",
    ),
    Parameter::optional("REGEXP", REGEXP_DESCRIPTION),
];

/// How many backup gateways `FAILOVER` may name.
pub const MAX_FAILOVER: usize = 5;

/// The `FAILOVER` gateway names of a definition, in order, without repeats or the gateway
/// itself.
pub fn failover_names(def: &crate::GatewayDef) -> Vec<String> {
    failover_list(&def.name, def.options.get("FAILOVER").map(String::as_str))
}

/// [`failover_names`] of gateway `name` from its `FAILOVER` value as stored.
pub fn failover_list(name: &str, failover: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for n in failover
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty() && *n != name)
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
    pub fn parameters(self) -> impl Iterator<Item = &'static Parameter> {
        self.own_parameters().iter().chain(COMMON_PARAMETERS)
    }

    /// The provider's own fixed parameters.
    fn own_parameters(self) -> &'static [Parameter] {
        match self {
            Self::Http => HTTP_PARAMETERS,
            Self::Smpp => SMPP_PARAMETERS,
            Self::Smtp => SMTP_PARAMETERS,
            Self::Sipgate => SIPGATE_PARAMETERS,
            Self::Script => SCRIPT_PARAMETERS,
            Self::Modem => MODEM_PARAMETERS,
            Self::Sink => SINK_PARAMETERS,
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
        self.parameters().any(|p| p.name == key)
    }

    /// True if `key` is a parameter the catalogue marks secret.
    pub fn is_secret(self, key: &str) -> bool {
        self.parameters().any(|p| p.name == key && p.secret)
    }
}

const REGEXP_DESCRIPTION: &str = "Regular expression to modify the phone number to make it compatible with the provider. For example to remove pluses and slashes enter something like '/[\\+/]//'.";

/// The body of `GET /smsgateway/providers`.
pub fn providers_description() -> Value {
    let mut out = Map::new();
    for kind in ProviderKind::ALL {
        let mut params = Map::new();
        for param in kind.parameters() {
            let mut p = Map::new();
            p.insert("description".into(), json!(param.description));
            if param.required {
                p.insert("required".into(), json!(true));
            }
            if !param.values.is_empty() {
                p.insert("values".into(), json!(param.values));
            }
            if param.secret {
                p.insert("secret".into(), json!(true));
            }
            params.insert(param.name.into(), Value::Object(p));
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
