//! privacyIDEA's HttpSMSProvider: GET or POST (form or JSON) to an SMS gateway's HTTP API.
//!
//! Fields are the gateway's free options with `{otp}` (the whole SMS text), `{phone}` and
//! `{message_id}` replaced, plus the fixed `PARAMETER` object. Every request carries the
//! message's id in an `Idempotency-Key` header (`IDEMPOTENCY_HEADER` names another, or none
//! when empty): a retry of the same message (a notification sent again after a timeout) has
//! the same id, so a gateway that honours it sends one SMS. Success means HTTP 200/201/202 and, when set,
//! `RETURN_SUCCESS` in the reply (or, when only `RETURN_FAIL` is set, its absence).

use crate::catalogue::ProviderKind;
use crate::{GatewayDef, SendError};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, Proxy, Url};
use serde_json::Value;
use std::time::Duration;

/// Default `TIMEOUT` in seconds, as privacyIDEA.
const DEFAULT_TIMEOUT: f64 = 3.0;
/// Upper bound of `TIMEOUT`: a login must not hang on a gateway.
const MAX_TIMEOUT: f64 = 120.0;

pub(crate) struct HttpProvider {
    client: Client,
    url: Option<Url>,
    method: Method,
    auth: Option<(String, String)>,
    return_success: Option<String>,
    return_fail: Option<String>,
    return_queued: Option<String>,
    json: bool,
    timeout_label: String,
    templates: Vec<(String, Template)>,
    fixed: Vec<(String, Value)>,
    phone_key: Option<String>,
    text_key: Option<String>,
    headers: HeaderMap,
    idempotency_header: Option<HeaderName>,
}

/// The header that carries a message's id unless `IDEMPOTENCY_HEADER` says otherwise.
const DEFAULT_IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// An option value: JSON when the whole value parses as JSON (tags are substituted inside
/// its strings, properly escaped), plain text otherwise.
enum Template {
    Json(Value),
    Text(String),
}

/// The values of a message's tags.
struct Tags<'a> {
    text: &'a str,
    phone: &'a str,
    id: &'a str,
    /// Where the gateway reports the delivery (empty without `server.public_url`).
    dlr_url: &'a str,
}

fn fill(s: &str, t: &Tags<'_>) -> String {
    s.replace("{otp}", t.text)
        .replace("{phone}", t.phone)
        .replace("{message_id}", t.id)
        .replace("{dlr_url}", t.dlr_url)
}

/// The URL with `{dlr_url}` (as written or as the URL parser encoded it) replaced by the
/// receipt URL, encoded as a query value.
fn url_with_receipt(url: &Url, dlr_url: &str) -> Result<Url, SendError> {
    let s = url.as_str();
    if !s.contains("%7Bdlr_url%7D") && !s.contains("{dlr_url}") {
        return Ok(url.clone());
    }
    let enc: String = form_urlencoded::byte_serialize(dlr_url.as_bytes()).collect();
    Url::parse(&s.replace("%7Bdlr_url%7D", &enc).replace("{dlr_url}", &enc))
        .map_err(|_| SendError::Config("URL with {dlr_url} is not a valid URL.".into()))
}

fn fill_json(v: &Value, t: &Tags<'_>) -> Value {
    match v {
        Value::String(s) => Value::String(fill(s, t)),
        Value::Array(a) => Value::Array(a.iter().map(|x| fill_json(x, t)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), fill_json(x, t)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn yes_no(def: &GatewayDef, key: &str, default: bool) -> Result<bool, String> {
    match def.options.get(key).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v.is_empty() => Ok(default),
        Some(v) if ["yes", "true", "1", "on"].contains(&v.as_str()) => Ok(true),
        Some(v) if ["no", "false", "0", "off"].contains(&v.as_str()) => Ok(false),
        Some(_) => Err(format!("{key} must be yes or no.")),
    }
}

fn timeout(def: &GatewayDef) -> Result<f64, String> {
    crate::timeout_secs(def, DEFAULT_TIMEOUT, MAX_TIMEOUT)
}

fn method(def: &GatewayDef) -> Result<Method, String> {
    match def
        .options
        .get("HTTP_METHOD")
        .map(|m| m.trim().to_ascii_uppercase())
        .as_deref()
    {
        None | Some("") | Some("GET") => Ok(Method::GET),
        Some("POST") => Ok(Method::POST),
        Some(_) => Err("HTTP_METHOD must be GET or POST.".into()),
    }
}

fn fixed_parameters(def: &GatewayDef) -> Result<Vec<(String, Value)>, String> {
    match def
        .options
        .get("PARAMETER")
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
    {
        None => Ok(vec![]),
        Some(p) => match serde_json::from_str::<Value>(p) {
            Ok(Value::Object(o)) => Ok(o.into_iter().collect()),
            _ => Err("PARAMETER must be a JSON object of fixed fields.".into()),
        },
    }
}

fn proxy(def: &GatewayDef, key: &str) -> Result<Option<Proxy>, String> {
    let Some(p) = def
        .options
        .get(key)
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
    else {
        return Ok(None);
    };
    let bad = || format!("{key} is not a valid proxy URL.");
    let url = Url::parse(p).map_err(|_| bad())?;
    let build = match key {
        "HTTP_PROXY" => Proxy::http,
        "HTTPS_PROXY" => Proxy::https,
        _ => Proxy::all,
    };
    Ok(Some(build(url.as_str()).map_err(|_| bad())?))
}

/// The options of an HTTP gateway, parsed by one parser for both uses: checking a definition
/// when it is saved ([`validate`]) and building the provider that sends ([`HttpProvider::new`]).
struct HttpOptions {
    url: Option<Url>,
    auth: Option<(String, String)>,
    method: Method,
    verify_tls: bool,
    timeout_secs: f64,
    proxies: Vec<Proxy>,
    json: bool,
    fixed: Vec<(String, Value)>,
    templates: Vec<(String, Template)>,
    headers: HeaderMap,
    return_success: Option<String>,
    return_fail: Option<String>,
    return_queued: Option<String>,
    phone_key: Option<String>,
    text_key: Option<String>,
    idempotency_header: Option<HeaderName>,
}

impl HttpOptions {
    fn parse(def: &GatewayDef) -> Result<Self, String> {
        let mut url = match def
            .options
            .get("URL")
            .map(|u| u.trim())
            .filter(|u| !u.is_empty())
        {
            Some(u) => Some(Url::parse(u).map_err(|_| "URL is not a valid URL.".to_owned())?),
            None => None,
        };
        let username = def.options.get("USERNAME");
        let password = def.options.get("PASSWORD");
        let mut auth = match (username, password) {
            (Some(u), Some(p)) if !u.is_empty() => Some((u.clone(), p.clone())),
            _ => None,
        };
        // Credentials in the URL (http://user:pw@host/) are used when USERNAME and PASSWORD
        // are both absent; they are always removed from the URL so they never reach a log.
        if let Some(u) = url.as_mut()
            && !u.username().is_empty()
        {
            if username.is_none() && password.is_none() {
                auth = Some((
                    percent_decode(u.username()),
                    percent_decode(u.password().unwrap_or_default()),
                ));
            }
            let _ = u.set_username("");
            let _ = u.set_password(None);
        }
        let method = method(def)?;
        let timeout_secs = timeout(def)?;
        let verify_tls = yes_no(def, "CHECK_SSL", true)?;
        let json = yes_no(def, "SEND_DATA_AS_JSON", false)?;
        // HTTP_PROXY and HTTPS_PROXY replace the deprecated PROXY.
        let legacy = proxy(def, "PROXY")?;
        let mut proxies: Vec<Proxy> = [proxy(def, "HTTP_PROXY")?, proxy(def, "HTTPS_PROXY")?]
            .into_iter()
            .flatten()
            .collect();
        if proxies.is_empty() {
            proxies.extend(legacy);
        }
        let fixed = fixed_parameters(def)?;
        let mut headers = HeaderMap::new();
        for (k, v) in &def.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("The header name {k} is not valid."))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| format!("The value of header {k} is not valid."))?;
            headers.insert(name, value);
        }
        let templates = def
            .options
            .iter()
            .filter(|(k, _)| !ProviderKind::Http.is_parameter(k))
            .map(|(k, v)| {
                let t = match serde_json::from_str::<Value>(v) {
                    Ok(j) => Template::Json(j),
                    Err(_) => Template::Text(v.clone()),
                };
                (k.clone(), t)
            })
            .collect();
        let nonempty = |k: &str| def.options.get(k).filter(|v| !v.is_empty()).cloned();
        let idempotency_header = match def.options.get("IDEMPOTENCY_HEADER").map(|h| h.trim()) {
            Some("") => None,
            name => Some(
                HeaderName::from_bytes(name.unwrap_or(DEFAULT_IDEMPOTENCY_HEADER).as_bytes())
                    .map_err(|_| "IDEMPOTENCY_HEADER is not a valid header name.".to_owned())?,
            ),
        };
        Ok(Self {
            url,
            auth,
            method,
            verify_tls,
            timeout_secs,
            proxies,
            json,
            fixed,
            templates,
            headers,
            return_success: nonempty("RETURN_SUCCESS"),
            return_fail: nonempty("RETURN_FAIL"),
            return_queued: nonempty("RETURN_QUEUED"),
            phone_key: nonempty("SMS_PHONENUMBER_KEY"),
            text_key: nonempty("SMS_TEXT_KEY"),
            idempotency_header,
        })
    }
}

/// Checks an HTTP gateway definition (called when it is saved): it parses, has an http(s)
/// URL, and no fixed parameter shares a name with an option.
pub(crate) fn validate(def: &GatewayDef) -> Result<(), String> {
    let options = HttpOptions::parse(def)?;
    let url = options.url.ok_or("The parameter URL is required.")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("URL must start with http:// or https://.".into());
    }
    if let Some((k, _)) = options
        .templates
        .iter()
        .find(|(k, _)| options.fixed.iter().any(|(f, _)| f == k))
    {
        return Err(format!(
            "The key {k} is set both as a fixed PARAMETER and as an option. A fixed parameter and an option may not share a name."
        ));
    }
    // A gateway that sends neither the code nor the number cannot deliver a login's SMS (and
    // its test SMS would be "accepted" for an empty request).
    let sends = |tag: &str| {
        options.templates.iter().any(|(_, t)| match t {
            Template::Text(s) => s.contains(tag),
            Template::Json(v) => v.to_string().contains(tag),
        })
    };
    if options.text_key.is_none() && !sends("{otp}") {
        return Err(
            "The gateway sends no SMS text: a request field needs the tag {otp} (e.g. text = {otp}), or set SMS_TEXT_KEY."
                .into(),
        );
    }
    if options.phone_key.is_none() && !sends("{phone}") {
        return Err(
            "The gateway sends no phone number: a request field needs the tag {phone} (e.g. to = {phone}), or set SMS_PHONENUMBER_KEY."
                .into(),
        );
    }
    Ok(())
}

impl HttpProvider {
    pub(crate) fn new(def: &GatewayDef) -> Result<Self, SendError> {
        // reqwest panics when building a client without a rustls provider: make that impossible.
        crate::install_crypto_provider();
        let o = HttpOptions::parse(def).map_err(SendError::Config)?;
        let mut builder = Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs_f64(o.timeout_secs))
            .connect_timeout(Duration::from_secs_f64(o.timeout_secs))
            .tls_danger_accept_invalid_certs(!o.verify_tls)
            .pool_idle_timeout(Duration::from_secs(30));
        for p in o.proxies {
            builder = builder.proxy(p);
        }
        let client = builder
            .build()
            .map_err(|_| SendError::Config("The HTTP client could not be built.".into()))?;
        Ok(Self {
            client,
            url: o.url,
            method: o.method,
            auth: o.auth,
            return_success: o.return_success,
            return_fail: o.return_fail,
            return_queued: o.return_queued,
            json: o.json,
            timeout_label: format!("{}", o.timeout_secs),
            templates: o.templates,
            fixed: o.fixed,
            phone_key: o.phone_key,
            text_key: o.text_key,
            headers: o.headers,
            idempotency_header: o.idempotency_header,
        })
    }

    fn fields(&self, phone: &str, text: &str, id: &str, dlr_url: &str) -> Vec<(String, Value)> {
        let tags = Tags {
            text,
            phone,
            id,
            dlr_url,
        };
        let mut out: Vec<(String, Value)> = Vec::new();
        if let Some(k) = &self.phone_key {
            out.push((k.clone(), Value::String(phone.to_owned())));
        }
        if let Some(k) = &self.text_key {
            out.push((k.clone(), Value::String(text.to_owned())));
        }
        out.extend(self.fixed.iter().cloned());
        for (k, t) in &self.templates {
            let v = match t {
                Template::Json(j) => fill_json(j, &tags),
                Template::Text(s) => Value::String(fill(s, &tags)),
            };
            out.push((k.clone(), v));
        }
        out
    }

    pub(crate) async fn send(
        &self,
        phone: &str,
        text: &str,
        message_id: &str,
        dlr_url: &str,
    ) -> Result<(), SendError> {
        let url = self
            .url
            .as_ref()
            .ok_or_else(|| SendError::Config("No URL specified in the provider config.".into()))?;
        let url = url_with_receipt(url, dlr_url)?;
        let fields = self.fields(phone, text, message_id, dlr_url);
        let mut req = self
            .client
            .request(self.method.clone(), url)
            .headers(self.headers.clone());
        if let Some(h) = &self.idempotency_header
            && !self.headers.contains_key(h)
            && let Ok(v) = HeaderValue::from_str(message_id)
        {
            req = req.header(h.clone(), v);
        }
        if let Some((u, p)) = &self.auth {
            req = req.basic_auth(u, Some(p));
        }
        req = if self.method == Method::POST && self.json {
            req.json(&Value::Object(fields.into_iter().collect()))
        } else {
            let pairs = flatten(fields);
            if self.method == Method::POST {
                req.form(&pairs)
            } else {
                req.query(&pairs)
            }
        };
        let resp = req
            .send()
            .await
            .map_err(|e| crate::transport::classify(&e, &self.timeout_label))?;
        let status = resp.status().as_u16();
        if ![200, 201, 202].contains(&status) {
            return Err(SendError::Status(status));
        }
        let body = read_capped(resp, MAX_REPLY_BYTES)
            .await
            .map_err(|e| crate::transport::classify(&e, &self.timeout_label))?;
        // Queued for later delivery (Kannel's `3: Queued` while its SMSC link is down): taken
        // when the definition says so; its receipt, or DLR_TIMEOUT, tells the rest.
        if let Some(queued) = &self.return_queued
            && body.contains(queued.as_str())
            && !self
                .return_fail
                .as_ref()
                .is_some_and(|fail| body.contains(fail.as_str()))
        {
            return Ok(());
        }
        if let Some(ok) = &self.return_success {
            return if body.contains(ok.as_str()) {
                Ok(())
            } else {
                Err(SendError::NotSuccess)
            };
        }
        if let Some(fail) = &self.return_fail
            && body.contains(fail.as_str())
        {
            return Err(SendError::PredefinedFail);
        }
        Ok(())
    }
}

/// The most of a gateway's reply that is read: RETURN_SUCCESS and RETURN_FAIL are looked for
/// in this much; the rest is not read, so a gateway that answers without end costs no memory.
const MAX_REPLY_BYTES: usize = 64 * 1024;

/// Up to `cap` bytes of the reply body as text (lossy UTF-8).
async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<String, reqwest::Error> {
    let mut buf: Vec<u8> = Vec::new();
    while buf.len() < cap {
        match resp.chunk().await? {
            Some(chunk) => {
                let room = cap - buf.len();
                buf.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
            }
            None => break,
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Form and query fields: arrays become repeated keys, objects are sent as JSON text.
fn flatten(fields: Vec<(String, Value)>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in fields {
        match v {
            Value::Array(items) => out.extend(items.into_iter().map(|i| (k.clone(), scalar(i)))),
            other => out.push((k, scalar(other))),
        }
    }
    out
}

fn scalar(v: Value) -> String {
    match v {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|c| hex(*c)),
                bytes.get(i + 2).and_then(|c| hex(*c)),
            )
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A definition with `opts` and request fields that send the text and the number.
    fn def(opts: &[(&str, &str)]) -> GatewayDef {
        let mut d = crate::test_def("http", opts);
        for (k, v) in [("text", "{otp}"), ("to", "{phone}")] {
            d.options
                .entry(k.to_owned())
                .or_insert_with(|| v.to_owned());
        }
        d
    }

    #[test]
    fn a_gateway_must_send_the_text_and_the_number() {
        let bare = |opts: &[(&str, &str)]| validate(&crate::test_def("http", opts));
        let url = ("URL", "http://x/");
        assert!(bare(&[url]).unwrap_err().contains("{otp}"));
        assert!(
            bare(&[url, ("text", "Code {otp}")])
                .unwrap_err()
                .contains("{phone}")
        );
        assert!(bare(&[url, ("text", "{otp}"), ("to", "{phone}")]).is_ok());
        // In a JSON value, or by privacyIDEA's legacy keys.
        assert!(bare(&[url, ("msg", r#"{"body": "{otp}", "to": ["{phone}"]}"#)]).is_ok());
        assert!(bare(&[url, ("SMS_TEXT_KEY", "text"), ("SMS_PHONENUMBER_KEY", "to")]).is_ok());
        // A header carries no tags.
        let mut d = crate::test_def("http", &[url, ("to", "{phone}")]);
        d.headers.insert("X-Text".into(), "{otp}".into());
        assert!(validate(&d).is_err());
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(validate(&def(&[("URL", "http://x/")])).is_ok());
        assert!(validate(&def(&[])).unwrap_err().contains("URL"));
        assert!(validate(&def(&[("URL", "ftp://x/")])).is_err());
        assert!(
            validate(&def(&[("URL", "http://x/"), ("HTTP_METHOD", "post")])).is_ok(),
            "case-insensitive"
        );
        assert!(validate(&def(&[("URL", "http://x/"), ("HTTP_METHOD", "PUT")])).is_err());
        assert!(
            validate(&def(&[("URL", "http://x/"), ("TIMEOUT", "abc")]))
                .unwrap_err()
                .contains("TIMEOUT")
        );
        assert!(validate(&def(&[("URL", "http://x/"), ("CHECK_SSL", "maybe")])).is_err());
        let clash = validate(&def(&[
            ("URL", "http://x/"),
            ("PARAMETER", r#"{"from":"me"}"#),
            ("from", "{phone}"),
        ]));
        assert!(clash.unwrap_err().contains("from"));
        assert!(validate(&def(&[("URL", "http://x/"), ("PARAMETER", "[1]")])).is_err());
    }

    #[test]
    fn fields_substitute_tags_and_keep_json_types() {
        let p = HttpProvider::new(&def(&[
            ("URL", "http://x/"),
            ("text", "Code: {otp}"),
            ("to", "{phone}"),
            ("list", r#"["{phone}"]"#),
            ("n", "42"),
            ("PARAMETER", r#"{"from":"otpgate"}"#),
            ("dlr-url", "{dlr_url}?status=%d"),
            ("DLR_STATUS", "st"),
        ]))
        .unwrap();
        let f: BTreeMap<String, Value> = p
            .fields(
                "+49151",
                "Code: \"1\"",
                "m-1",
                "https://og/smsgateway/dlr/r1",
            )
            .into_iter()
            .collect();
        assert_eq!(
            f["dlr-url"],
            Value::String("https://og/smsgateway/dlr/r1?status=%d".into())
        );
        assert!(!f.contains_key("DLR_STATUS"), "a parameter, not a field");
        assert_eq!(f["text"], Value::String("Code: Code: \"1\"".into()));
        assert_eq!(f["to"], Value::String("+49151".into()));
        assert_eq!(f["list"], serde_json::json!(["+49151"]));
        assert_eq!(f["n"], serde_json::json!(42));
        assert_eq!(f["from"], Value::String("otpgate".into()));
        assert!(!f.contains_key("URL"));
    }

    #[test]
    fn the_receipt_url_goes_into_the_url_as_a_query_value() {
        let url = Url::parse("http://kannel:13013/cgi-bin/sendsms?dlr-url={dlr_url}&to=1").unwrap();
        let got = url_with_receipt(&url, "https://og/smsgateway/dlr/r1?status=%d").unwrap();
        assert_eq!(
            got.as_str(),
            "http://kannel:13013/cgi-bin/sendsms?dlr-url=https%3A%2F%2Fog%2Fsmsgateway%2Fdlr%2Fr1%3Fstatus%3D%25d&to=1"
        );
        let plain = Url::parse("http://host/send").unwrap();
        assert_eq!(url_with_receipt(&plain, "x").unwrap(), plain);
    }

    #[test]
    fn url_credentials_become_basic_auth_and_leave_the_url() {
        let p = HttpProvider::new(&def(&[("URL", "http://us%40r:p%3Aw@host/send")])).unwrap();
        assert_eq!(p.auth, Some(("us@r".to_owned(), "p:w".to_owned())));
        assert_eq!(p.url.unwrap().as_str(), "http://host/send");
    }

    #[test]
    fn flatten_repeats_list_keys() {
        let f = flatten(vec![
            ("to".into(), serde_json::json!(["a", "b"])),
            ("o".into(), serde_json::json!({"x":1})),
        ]);
        assert_eq!(
            f,
            vec![
                ("to".into(), "a".into()),
                ("to".into(), "b".into()),
                ("o".into(), r#"{"x":1}"#.into())
            ]
        );
    }
}
