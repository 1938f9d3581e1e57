//! Starting points for gateways whose HTTP shape is documented: the admin console offers them
//! on its "new gateway" form, pre-filled, with placeholders for what only the site knows
//! (host names, accounts, keys). Each is a valid definition once those are filled in.

use crate::ProviderKind;

/// A pre-filled gateway definition.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    /// Its key in the form (`?preset=kannel`).
    pub key: &'static str,
    /// How the form names it.
    pub label: &'static str,
    /// The provider.
    pub kind: ProviderKind,
    /// Provider parameters and request fields, in order (empty: to be filled in).
    pub options: &'static [(&'static str, &'static str)],
    /// What to fill in, and what the receipts need.
    pub note: &'static str,
}

/// The presets, in the order the form lists them.
pub const PRESETS: &[Preset] = &[
    Preset {
        key: "kannel",
        label: "Kannel (sendsms, with delivery receipts)",
        kind: ProviderKind::Http,
        options: &[
            ("URL", "http://kannel.example.net:13013/cgi-bin/sendsms"),
            ("HTTP_METHOD", "GET"),
            ("RETURN_SUCCESS", "Accepted"),
            ("RETURN_QUEUED", "Queued"),
            ("username", ""),
            ("password", ""),
            ("to", "{phone}"),
            ("text", "{otp}"),
            ("dlr-mask", "31"),
            ("dlr-url", "{dlr_url}?status=%d"),
            ("DLR_TIMEOUT", "30"),
        ],
        note: "Fill in the sendsms-user's username and password (smsbox's sendsms-port) and the host. Receipts need server.public_url; Kannel's %d values 1 (delivered) and 2/16 (failed) are understood as they are.",
    },
    Preset {
        key: "jasmin",
        label: "Jasmin (HTTP API, with delivery receipts)",
        kind: ProviderKind::Http,
        options: &[
            ("URL", "http://jasmin.example.net:1401/send"),
            ("HTTP_METHOD", "GET"),
            ("RETURN_SUCCESS", "Success"),
            ("NUMBER_FORMAT", "digits"),
            ("username", ""),
            ("password", ""),
            ("to", "{phone}"),
            ("content", "{otp}"),
            ("dlr", "yes"),
            ("dlr-url", "{dlr_url}"),
            ("dlr-level", "3"),
            ("dlr-method", "POST"),
            ("DLR_STATUS", "message_status"),
        ],
        note: "Fill in the Jasmin user's username and password and the host. Jasmin posts message_status (DELIVRD, UNDELIV, …) to the receipt URL, which needs server.public_url.",
    },
    Preset {
        key: "twilio",
        label: "Twilio (Messages API)",
        kind: ProviderKind::Http,
        options: &[
            (
                "URL",
                "https://api.twilio.com/2010-04-01/Accounts/ACCOUNT_SID/Messages.json",
            ),
            ("HTTP_METHOD", "POST"),
            ("USERNAME", "ACCOUNT_SID"),
            ("PASSWORD", ""),
            ("RETURN_SUCCESS", "queued"),
            ("To", "{phone}"),
            ("From", ""),
            ("Body", "{otp}"),
            ("StatusCallback", "{dlr_url}"),
            ("DLR_STATUS", "MessageStatus"),
        ],
        note: "Replace ACCOUNT_SID (in the URL and as the username), set the auth token as the password and your Twilio number as From. Twilio posts MessageStatus (delivered, undelivered, failed) to StatusCallback, which needs server.public_url.",
    },
    Preset {
        key: "clickatell",
        label: "Clickatell (HTTP API, GET)",
        kind: ProviderKind::Http,
        options: &[
            ("URL", "https://api.clickatell.com/http/sendmsg"),
            ("HTTP_METHOD", "GET"),
            ("RETURN_SUCCESS", "ID"),
            ("NUMBER_FORMAT", "digits"),
            ("user", ""),
            ("password", ""),
            ("api_id", ""),
            ("to", "{phone}"),
            ("text", "{otp}"),
        ],
        note: "Fill in user, password and api_id of the HTTP API connection.",
    },
    Preset {
        key: "json",
        label: "Any JSON API (POST)",
        kind: ProviderKind::Http,
        options: &[
            ("URL", "https://sms.example.com/api/send"),
            ("HTTP_METHOD", "POST"),
            ("SEND_DATA_AS_JSON", "yes"),
            ("to", "{phone}"),
            ("text", "{otp}"),
        ],
        note: "Rename the fields to what the API expects; an API key usually goes into a header (e.g. Authorization), which is stored encrypted.",
    },
];

/// The preset `key`.
pub fn preset(key: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_a_valid_gateway_once_filled_in() {
        for p in PRESETS {
            let mut def = crate::test_def(p.kind.module_name(), &[]);
            for (k, v) in p.options {
                let v = if v.is_empty() { "filled-in" } else { v };
                def.options.insert((*k).to_owned(), v.to_owned());
            }
            assert_eq!(crate::validate_definition(&def), Ok(p.kind), "{}", p.key);
            let sends = |tag: &str| p.options.iter().any(|(_, v)| v.contains(tag));
            assert!(sends("{otp}") && sends("{phone}"), "{}", p.key);
        }
        assert!(preset("kannel").is_some() && preset("nope").is_none());
    }
}
