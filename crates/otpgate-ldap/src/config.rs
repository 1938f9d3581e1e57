//! An LDAP resolver's configuration, read from privacyIDEA's resolver parameters.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use zeroize::Zeroizing;

/// The user fields privacyIDEA's `USERINFO` maps to directory attributes.
pub const USERINFO_FIELDS: &[&str] = &[
    "username",
    "givenname",
    "surname",
    "email",
    "mobile",
    "phone",
];

/// How a user's stable id is formed (`UIDTYPE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UidType {
    /// The entry's distinguished name (privacyIDEA's default).
    Dn,
    /// Active Directory's binary `objectGUID`, written as a UUID (little-endian fields).
    ObjectGuid,
    /// Any other attribute, e.g. `entryUUID`, `uidNumber` or `objectSid`.
    Attribute(String),
}

impl UidType {
    /// Parses `UIDTYPE` (case-insensitive for `DN` and `objectGUID`).
    pub fn parse(s: &str) -> Self {
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("dn") {
            UidType::Dn
        } else if s.eq_ignore_ascii_case("objectguid") {
            UidType::ObjectGuid
        } else {
            UidType::Attribute(s.to_owned())
        }
    }

    /// The attribute to request, if any.
    pub fn attribute(&self) -> Option<&str> {
        match self {
            UidType::Dn => None,
            UidType::ObjectGuid => Some("objectGUID"),
            UidType::Attribute(a) => Some(a),
        }
    }
}

/// The search scope (`SCOPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchScope {
    /// The whole subtree under the base (default).
    Subtree,
    /// Only the base's direct children.
    Level,
    /// Only the base entry itself.
    Base,
}

/// A validated LDAP resolver configuration.
#[derive(Clone)]
pub struct LdapConfig {
    /// Servers tried in order (`LDAPURI`, comma-separated): `ldap://` or `ldaps://`.
    pub uris: Vec<String>,
    /// Search base (`LDAPBASE`).
    pub base: String,
    /// The service account (`BINDDN`; empty: anonymous).
    pub bind_dn: String,
    /// Its password (`BINDPW`).
    pub bind_pw: Zeroizing<String>,
    /// Login name attributes (`LOGINNAMEATTRIBUTE`, comma-separated; the first names users).
    pub login_attrs: Vec<String>,
    /// The filter every user matches (`LDAPSEARCHFILTER`).
    pub search_filter: String,
    /// User field → directory attribute (`USERINFO`).
    pub userinfo: BTreeMap<String, String>,
    /// The stable user id (`UIDTYPE`).
    pub uid_type: UidType,
    /// StartTLS on `ldap://` (`START_TLS`).
    pub start_tls: bool,
    /// Verify the server certificate (`TLS_VERIFY`).
    pub tls_verify: bool,
    /// Trusted CAs (PEM) instead of the system's (`TLS_CA_FILE`).
    pub tls_ca_file: Option<PathBuf>,
    /// Connect and operation timeout (`TIMEOUT`, seconds).
    pub timeout: Duration,
    /// Most entries a search returns (`SIZELIMIT`).
    pub size_limit: i32,
    /// How long found users are cached (`CACHE_TIMEOUT`, seconds; 0 = no cache).
    pub cache_timeout: Duration,
    /// Do not chase referrals (`NOREFERRALS`). otpgate never chases them; kept for the API.
    pub no_referrals: bool,
    /// Bind anonymously (`AUTHTYPE=Anonymous`) instead of as `BINDDN`.
    pub anonymous: bool,
    /// User fields returned as lists by `GET /user/` (`MULTIVALUEATTRIBUTES`, default mobile).
    pub multivalue: Vec<String>,
    /// Search scope (`SCOPE`).
    pub scope: SearchScope,
    /// How long a server that failed is skipped (`SERVERPOOL_SKIP`, seconds).
    pub server_skip: Duration,
}

impl std::fmt::Debug for LdapConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapConfig")
            .field("uris", &self.uris)
            .field("base", &self.base)
            .field("bind_dn", &self.bind_dn)
            .field("login_attrs", &self.login_attrs)
            .finish_non_exhaustive()
    }
}

/// privacyIDEA's truth values: `1` and `true` in any case (`yes` and `on` are false there too).
pub fn is_true(v: &str) -> bool {
    let v = v.trim();
    v == "1" || v.eq_ignore_ascii_case("true")
}

fn seconds(
    params: &dyn Fn(&str) -> Option<String>,
    key: &str,
    default: u64,
    max: u64,
) -> Result<Duration, String> {
    match params(key).filter(|v| !v.trim().is_empty()) {
        None => Ok(Duration::from_secs(default)),
        Some(v) => match v.trim().parse::<f64>() {
            Ok(s) if (0.0..=max as f64).contains(&s) => Ok(Duration::from_secs_f64(s)),
            _ => Err(format!(
                "{key} must be a number of seconds between 0 and {max}."
            )),
        },
    }
}

impl LdapConfig {
    /// Reads and checks a resolver's parameters (`get` returns a parameter's value). The
    /// password is given separately (it is stored sealed).
    pub fn from_params(
        get: &dyn Fn(&str) -> Option<String>,
        bind_pw: Zeroizing<String>,
    ) -> Result<Self, String> {
        let required = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("Missing parameter: {k}"))
        };
        let uris = required("LDAPURI")?
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(server_uri)
            .collect::<Result<Vec<String>, String>>()?;
        let login_attrs: Vec<String> = required("LOGINNAMEATTRIBUTE")?
            .split(',')
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        for a in &login_attrs {
            check_attribute(a, "LOGINNAMEATTRIBUTE")?;
        }
        let search_filter = get("LDAPSEARCHFILTER")
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| "(objectClass=*)".to_owned());
        check_filter(&search_filter)?;
        let mut userinfo = parse_userinfo(&get("USERINFO").unwrap_or_default())?;
        // As privacyIDEA: the login name is always the first login attribute.
        if let Some(first) = login_attrs.first() {
            userinfo.insert("username".into(), first.clone());
        }
        let uid_type = UidType::parse(&get("UIDTYPE").unwrap_or_default());
        if let Some(a) = uid_type.attribute() {
            check_attribute(a, "UIDTYPE")?;
        }
        let scope = match get("SCOPE")
            .unwrap_or_default()
            .trim()
            .to_ascii_uppercase()
            .as_str()
        {
            "" | "SUBTREE" => SearchScope::Subtree,
            "LEVEL" => SearchScope::Level,
            "BASE" => SearchScope::Base,
            other => {
                return Err(format!(
                    "SCOPE must be SUBTREE, LEVEL or BASE, not {other:?}."
                ));
            }
        };
        let size_limit = match get("SIZELIMIT").filter(|v| !v.trim().is_empty()) {
            None => 500,
            Some(v) => v
                .trim()
                .parse::<i32>()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or("SIZELIMIT must be a number between 1 and 1000000.")?,
        };
        let authtype = get("AUTHTYPE").unwrap_or_default();
        let anonymous = match authtype.trim() {
            "" | "Simple" | "simple" => false,
            "Anonymous" | "anonymous" => true,
            other => return Err(format!("Unsupported authentication type: {other}")),
        };
        if get("EDITABLE").is_some_and(|v| is_true(&v)) {
            return Err("otpgate does not write to LDAP directories: EDITABLE must be off.".into());
        }
        let multivalue = match get("MULTIVALUEATTRIBUTES").filter(|v| !v.trim().is_empty()) {
            None => vec!["mobile".to_owned()],
            Some(v) => parse_list(&v)
                .ok_or("MULTIVALUEATTRIBUTES must be a list of user fields, e.g. [\"mobile\"].")?,
        };
        let flag = |k: &str, default: bool| get(k).map(|v| is_true(&v)).unwrap_or(default);
        let config = LdapConfig {
            uris,
            base: required("LDAPBASE")?,
            bind_dn: get("BINDDN")
                .map(|v| v.trim().to_owned())
                .unwrap_or_default(),
            bind_pw,
            login_attrs,
            search_filter,
            userinfo,
            uid_type,
            start_tls: flag("START_TLS", false),
            tls_verify: flag("TLS_VERIFY", true),
            tls_ca_file: get("TLS_CA_FILE")
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            timeout: seconds(get, "TIMEOUT", 5, 300)?,
            size_limit,
            cache_timeout: seconds(get, "CACHE_TIMEOUT", 120, 86_400)?,
            no_referrals: flag("NOREFERRALS", false),
            anonymous,
            multivalue,
            scope,
            server_skip: seconds(get, "SERVERPOOL_SKIP", 30, 3_600)?,
        };
        if config.timeout.is_zero() {
            return Err("TIMEOUT must be more than 0 seconds.".into());
        }
        Ok(config)
    }

    /// The attribute holding a user field, if `USERINFO` maps it.
    pub fn attr_of(&self, field: &str) -> Option<&str> {
        self.userinfo.get(field).map(String::as_str)
    }

    /// The attributes a user search asks for.
    pub fn wanted_attributes(&self) -> Vec<String> {
        let mut attrs: Vec<String> = self.userinfo.values().cloned().collect();
        attrs.extend(self.login_attrs.iter().cloned());
        if let Some(a) = self.uid_type.attribute() {
            attrs.push(a.to_owned());
        }
        attrs.sort_by_key(|a| a.to_ascii_lowercase());
        attrs.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        attrs
    }
}

/// A server of `LDAPURI` as `ldap[s]://host[:port]`: the scheme, a host name, IPv4 or
/// bracketed IPv6 address and an optional port; anything after the authority (an LDAP URL's
/// DN, attributes or filter) is dropped, as privacyIDEA does.
fn server_uri(u: &str) -> Result<String, String> {
    let bad = || {
        format!("LDAPURI must name ldap://host[:port] or ldaps://host[:port] servers, not {u:?}.")
    };
    // A bare host is a plain ldap:// server, as in privacyIDEA.
    let (scheme, rest) = u.split_once("://").unwrap_or(("ldap", u));
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "ldap" && scheme != "ldaps" {
        return Err(bad());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or_else(bad)?;
        addr.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        (format!("[{addr}]"), after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && (host.starts_with('[')
            || host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')));
    if !host_ok {
        return Err(bad());
    }
    match port {
        None => Ok(format!("{scheme}://{host}")),
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(format!("{scheme}://{host}:{n}")),
            _ => Err(bad()),
        },
    }
}

/// An attribute description: a name (letters, digits, `-`) or an OID, optionally with options.
fn check_attribute(a: &str, what: &str) -> Result<(), String> {
    let ok = !a.is_empty()
        && a.len() <= 128
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ';'));
    if ok {
        Ok(())
    } else {
        Err(format!("{what}: {a:?} is not an attribute name."))
    }
}

/// A search filter must be one or more parenthesised components with balanced parentheses.
fn check_filter(f: &str) -> Result<(), String> {
    let mut depth = 0i32;
    for c in f.chars() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    break;
                }
            }
            _ if depth == 0 && !c.is_whitespace() => depth = -1,
            _ => {}
        }
        if depth < 0 {
            break;
        }
    }
    if depth == 0 && f.starts_with('(') {
        Ok(())
    } else {
        Err(format!(
            "LDAPSEARCHFILTER must be parenthesised filter components such as (objectClass=person), not {f:?}."
        ))
    }
}

/// JSON, or the same with single quotes (privacyIDEA reads these values as YAML, and its
/// documentation writes them with single quotes).
fn lenient_json(text: &str) -> Option<serde_json::Value> {
    serde_json::from_str(text)
        .ok()
        .or_else(|| serde_json::from_str(&text.replace('\'', "\"")).ok())
}

fn parse_list(text: &str) -> Option<Vec<String>> {
    lenient_json(text)?
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(|s| s.trim().to_owned()))
        .collect()
}

/// Parses `USERINFO`: a JSON object of user field → attribute.
fn parse_userinfo(text: &str) -> Result<BTreeMap<String, String>, String> {
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let bad = || {
        format!(
            "USERINFO must be a JSON object mapping {} to attribute names.",
            USERINFO_FIELDS.join(", ")
        )
    };
    let v = lenient_json(text).ok_or_else(bad)?;
    let obj = v.as_object().ok_or_else(bad)?;
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        let attr = v.as_str().map(str::trim).ok_or_else(bad)?;
        if attr.is_empty() {
            continue;
        }
        check_attribute(attr, "USERINFO")?;
        out.insert(k.trim().to_owned(), attr.to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<LdapConfig, String> {
        let mut all: BTreeMap<String, String> = [
            ("LDAPURI", "ldap://127.0.0.1:3890"),
            ("LDAPBASE", "dc=example,dc=org"),
            ("LOGINNAMEATTRIBUTE", "uid"),
            ("USERINFO", r#"{"username":"uid","mobile":"mobile"}"#),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        for (k, v) in pairs {
            all.insert((*k).to_owned(), (*v).to_owned());
        }
        LdapConfig::from_params(&|k| all.get(k).cloned(), Zeroizing::new(String::new()))
    }

    #[test]
    fn defaults_and_lists() {
        let c = cfg(&[
            ("LDAPURI", "ldap://a:389, ldap://b:389"),
            ("LOGINNAMEATTRIBUTE", "sAMAccountName, userPrincipalName"),
        ])
        .unwrap();
        assert_eq!(c.uris, vec!["ldap://a:389", "ldap://b:389"]);
        let c2 = cfg(&[(
            "LDAPURI",
            "LDAPS://dc1.corp.example:636/dc=x??sub, ldap://[::1]:3890, ldap://10.0.0.1, dc3",
        )])
        .unwrap();
        assert_eq!(
            c2.uris,
            vec![
                "ldaps://dc1.corp.example:636",
                "ldap://[::1]:3890",
                "ldap://10.0.0.1",
                "ldap://dc3"
            ]
        );
        assert_eq!(c.login_attrs, vec!["sAMAccountName", "userPrincipalName"]);
        assert_eq!(c.uid_type, UidType::Dn);
        assert_eq!(c.scope, SearchScope::Subtree);
        assert_eq!(
            (c.size_limit, c.timeout.as_secs(), c.cache_timeout.as_secs()),
            (500, 5, 120)
        );
        assert!(c.tls_verify && !c.start_tls);
        assert_eq!(c.search_filter, "(objectClass=*)");
        assert_eq!(UidType::parse("objectguid"), UidType::ObjectGuid);
        assert_eq!(
            UidType::parse("entryUUID"),
            UidType::Attribute("entryUUID".into())
        );
    }

    #[test]
    fn mistakes_are_explained() {
        for (k, v) in [
            ("LDAPURI", "http://x"),
            ("LDAPURI", "x;y"),
            ("LDAPURI", "ldaps://"),
            ("LDAPURI", "ldap://:389"),
            ("LDAPURI", "ldap://h:0"),
            ("LDAPURI", "ldap://h:99999"),
            ("LDAPURI", "ldap://[::1"),
            ("LDAPURI", "ldap://a b"),
            ("LDAPURI", "ldap://h, ldap://"),
            ("LDAPSEARCHFILTER", "uid=*"),
            ("LDAPSEARCHFILTER", "(uid=*"),
            ("LDAPSEARCHFILTER", "(uid=*))("),
            ("USERINFO", "[]"),
            ("MULTIVALUEATTRIBUTES", "mobile"),
            ("EDITABLE", "1"),
            ("USERINFO", r#"{"username":"u)(x"}"#),
            ("LOGINNAMEATTRIBUTE", "uid=*"),
            ("SCOPE", "ONE"),
            ("SIZELIMIT", "-1"),
            ("TIMEOUT", "0"),
            ("TIMEOUT", "x"),
            ("AUTHTYPE", "NTLM"),
            ("LDAPBASE", " "),
        ] {
            assert!(cfg(&[(k, v)]).is_err(), "{k}={v} accepted");
        }
        assert!(cfg(&[("LDAPSEARCHFILTER", "(uid=*)(objectClass=inetOrgPerson)")]).is_ok());
        let c = cfg(&[
            ("USERINFO", "{'mobile': 'mobile', 'username': 'cn'}"),
            ("AUTHTYPE", "Anonymous"),
        ])
        .unwrap();
        assert_eq!(
            c.attr_of("username"),
            Some("uid"),
            "username is the first login attribute"
        );
        assert_eq!(c.attr_of("mobile"), Some("mobile"));
        assert!(c.anonymous);
        assert_eq!(c.multivalue, vec!["mobile"]);
        assert!(is_true("TRUE") && is_true("1") && !is_true("yes") && !is_true(""));
    }
}
