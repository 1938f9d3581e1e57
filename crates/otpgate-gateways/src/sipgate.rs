//! privacyIDEA's SipgateSMSProvider: one XML-RPC call `samurai.SessionInitiate` with
//! `RemoteUri` = `sip:<digits>@sipgate.de`, `TOS` = `text` and `Content` = the message, over
//! HTTP basic auth. Unlike privacyIDEA the values are XML-escaped, the call times out, REGEXP
//! applies, an XML-RPC fault is a failure, and the endpoint `URL` may be set.

use crate::{GatewayDef, SendError};
use reqwest::{Client, Proxy, Url};
use std::time::Duration;

/// Sipgate's XML-RPC endpoint.
pub const DEFAULT_URL: &str = "https://samurai.sipgate.net/RPC2";
const DEFAULT_TIMEOUT: f64 = 10.0;
const MAX_TIMEOUT: f64 = 120.0;

pub(crate) struct SipgateProvider {
    client: Client,
    url: Url,
    username: String,
    password: String,
    timeout_label: String,
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The XML-RPC request body.
pub(crate) fn request_body(phone: &str, text: &str) -> String {
    let digits = phone.trim().trim_start_matches('+');
    let member = |name: &str, value: &str| {
        format!(
            "<member><name>{name}</name><value><string>{}</string></value></member>",
            escape(value)
        )
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><methodCall><methodName>samurai.SessionInitiate</methodName>\
         <params><param><value><struct>{}{}{}</struct></value></param></params></methodCall>",
        member("RemoteUri", &format!("sip:{digits}@sipgate.de")),
        member("TOS", "text"),
        member("Content", text)
    )
}

/// The fault code of an XML-RPC fault response, if it is one.
pub(crate) fn fault_code(body: &str) -> Option<String> {
    let fault = body.find("<fault>")?;
    let rest = body.get(fault..).unwrap_or_default();
    let code = rest
        .find("faultCode")
        .and_then(|i| rest.get(i..))
        .and_then(|r| {
            let start = r
                .find("<int>")
                .map(|p| p + 5)
                .or_else(|| r.find("<i4>").map(|p| p + 4))?;
            let tail = r.get(start..)?;
            tail.find('<')
                .and_then(|end| tail.get(..end))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".to_owned());
    Some(code)
}

fn timeout(def: &GatewayDef) -> Result<f64, String> {
    crate::timeout_secs(def, DEFAULT_TIMEOUT, MAX_TIMEOUT)
}

fn url(def: &GatewayDef) -> Result<Url, String> {
    let raw = def
        .options
        .get("URL")
        .map(|u| u.trim())
        .filter(|u| !u.is_empty())
        .unwrap_or(DEFAULT_URL);
    let u = Url::parse(raw).map_err(|_| "URL is not a valid URL.".to_owned())?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err("URL must start with http:// or https://.".into());
    }
    Ok(u)
}

/// Checks a Sipgate gateway definition (when it is saved).
pub(crate) fn validate(def: &GatewayDef) -> Result<(), String> {
    for key in ["USERNAME", "PASSWORD"] {
        if def.options.get(key).is_none_or(|v| v.is_empty()) {
            return Err(format!("The parameter {key} is required."));
        }
    }
    url(def)?;
    timeout(def)?;
    if let Some(p) = def.options.get("PROXY").filter(|p| !p.trim().is_empty()) {
        Url::parse(p.trim()).map_err(|_| "PROXY is not a valid proxy URL.".to_owned())?;
    }
    Ok(())
}

impl SipgateProvider {
    pub(crate) fn new(def: &GatewayDef) -> Result<Self, SendError> {
        crate::install_crypto_provider();
        validate(def).map_err(SendError::Config)?;
        let secs = timeout(def).map_err(SendError::Config)?;
        let mut builder = Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs_f64(secs))
            .connect_timeout(Duration::from_secs_f64(secs));
        if let Some(p) = def
            .options
            .get("PROXY")
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
        {
            builder =
                builder
                    .proxy(Proxy::all(p).map_err(|_| {
                        SendError::Config("PROXY is not a valid proxy URL.".into())
                    })?);
        }
        let client = builder
            .build()
            .map_err(|_| SendError::Config("The HTTP client could not be built.".into()))?;
        Ok(Self {
            client,
            url: url(def).map_err(SendError::Config)?,
            username: def.options.get("USERNAME").cloned().unwrap_or_default(),
            password: def.options.get("PASSWORD").cloned().unwrap_or_default(),
            timeout_label: format!("{secs}"),
        })
    }

    pub(crate) async fn send(&self, phone: &str, text: &str) -> Result<(), SendError> {
        let resp = self
            .client
            .post(self.url.clone())
            .basic_auth(&self.username, Some(&self.password))
            .header(reqwest::header::CONTENT_TYPE, "text/xml")
            .body(request_body(phone, text))
            .send()
            .await
            .map_err(|e| crate::transport::classify(&e, &self.timeout_label))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(SendError::Status(status));
        }
        let body = resp
            .text()
            .await
            .map_err(|e| crate::transport::classify(&e, &self.timeout_label))?;
        match fault_code(&body) {
            Some(code) => Err(SendError::Fault(code)),
            None if body.contains("<methodResponse") => Ok(()),
            None => Err(SendError::NotSuccess),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_escaped_and_the_uri_has_digits_only() {
        let b = request_body(" +4915112345 ", "a<b&c>\"d'");
        assert!(
            b.contains("<string>sip:4915112345@sipgate.de</string>"),
            "{b}"
        );
        assert!(
            b.contains("<string>a&lt;b&amp;c&gt;&quot;d&apos;</string>"),
            "{b}"
        );
        assert!(b.contains("<methodName>samurai.SessionInitiate</methodName>"));
    }

    #[test]
    fn faults_are_found() {
        let fault = "<?xml version='1.0'?><methodResponse><fault><value><struct><member><name>faultCode</name><value><int>401</int></value></member><member><name>faultString</name><value><string>no</string></value></member></struct></value></fault></methodResponse>";
        assert_eq!(fault_code(fault).as_deref(), Some("401"));
        assert_eq!(
            fault_code("<methodResponse><params/></methodResponse>"),
            None
        );
    }
}
