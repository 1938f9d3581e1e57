//! privacyIDEA's SmppSMSProvider, SMPP 3.4 — on one persistent session per gateway
//! ([`session`]: bound as a transceiver with delivery receipts, or as a transmitter as
//! privacyIDEA binds; `enquire_link`, reconnect with back-off, a submit window, optional TLS)
//! instead of privacyIDEA's connection per message. GSM-7 texts go as data_coding 0 (unpacked
//! septets), others as UCS-2 (data_coding 8); long texts are concatenated with a user data
//! header (`05 00 03 ref total seq`, esm_class 0x40) and the OTP is never split between parts.
//! The SMSC's `deliver_sm` receipts reach the service as [`crate::GatewayReceipt`]s, named by
//! the message id of the part that carries the OTP.
//!
//! [`pdu`] is the codec (pure functions).

use crate::{GatewayDef, GatewayReceipt, SendError};
use otpgate_core::sms_text::{self, Encoding};
use session::{BindMode, Link, Session};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub mod pdu;
mod session;

const DEFAULT_TIMEOUT: f64 = 10.0;
const MAX_TIMEOUT: f64 = 120.0;

/// A TON/NPI value: decimal or hex (`0x5`), default 0.
fn ton_npi(def: &GatewayDef, key: &str) -> Result<u8, String> {
    match def
        .options
        .get(key)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    {
        None => Ok(0),
        Some(v) => {
            let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
                Some(hex) => u8::from_str_radix(hex, 16),
                None => v.parse::<u8>(),
            };
            parsed.map_err(|_| format!("{key} must be a number from 0 to 255 (or hex like 0x5)."))
        }
    }
}

fn timeout(def: &GatewayDef) -> Result<f64, String> {
    crate::timeout_secs(def, DEFAULT_TIMEOUT, MAX_TIMEOUT)
}

/// Checks an SMPP gateway definition (when it is saved).
pub(crate) fn validate(def: &GatewayDef) -> Result<(), String> {
    if def
        .options
        .get("SMSC_HOST")
        .is_none_or(|h| h.trim().is_empty())
    {
        return Err("The parameter SMSC_HOST is required.".into());
    }
    let port = def
        .options
        .get("SMSC_PORT")
        .map(|p| p.trim())
        .ok_or("The parameter SMSC_PORT is required.")?;
    port.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or("SMSC_PORT must be a port number.")?;
    for key in ["S_ADDR_TON", "S_ADDR_NPI", "D_ADDR_TON", "D_ADDR_NPI"] {
        ton_npi(def, key)?;
    }
    timeout(def)?;
    bind_mode(def)?;
    window(def)?;
    enquire_every(def)?;
    tls(def)?;
    Ok(())
}

fn option<'a>(def: &'a GatewayDef, key: &str) -> Option<&'a str> {
    def.options
        .get(key)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

fn bind_mode(def: &GatewayDef) -> Result<BindMode, String> {
    match option(def, "BIND").map(str::to_ascii_lowercase).as_deref() {
        None | Some("transceiver") => Ok(BindMode::Transceiver),
        Some("transmitter") => Ok(BindMode::Transmitter),
        Some(_) => Err("BIND must be transceiver or transmitter.".into()),
    }
}

/// Requests awaiting their answer at most (default 10).
fn window(def: &GatewayDef) -> Result<usize, String> {
    match option(def, "WINDOW") {
        None => Ok(10),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|w| (1..=100).contains(w))
            .ok_or_else(|| "WINDOW must be a number from 1 to 100.".into()),
    }
}

/// Seconds of silence after which the link is checked (default 30).
fn enquire_every(def: &GatewayDef) -> Result<Duration, String> {
    match option(def, "ENQUIRE_LINK") {
        None => Ok(Duration::from_secs(30)),
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|s| *s >= 0.1 && *s <= 3600.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| "ENQUIRE_LINK must be a number of seconds from 0.1 to 3600.".into()),
    }
}

type Tls = Option<(
    Arc<rustls::ClientConfig>,
    rustls::pki_types::ServerName<'static>,
)>;

/// The TLS set-up when `SMSC_TLS` is on: the system's roots, or those of `TLS_CA_FILE`.
fn tls(def: &GatewayDef) -> Result<Tls, String> {
    let on = match option(def, "SMSC_TLS")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("no" | "0" | "false") => false,
        Some("yes" | "1" | "true") => true,
        Some(_) => return Err("SMSC_TLS must be yes or no.".into()),
    };
    if !on {
        if option(def, "TLS_CA_FILE").is_some() {
            return Err("TLS_CA_FILE needs SMSC_TLS yes.".into());
        }
        return Ok(None);
    }
    let host = option(def, "SMSC_HOST").unwrap_or_default().to_owned();
    let name = rustls::pki_types::ServerName::try_from(host)
        .map_err(|_| "SMSC_HOST is not a host name or address TLS can check.".to_owned())?;
    let mut roots = rustls::RootCertStore::empty();
    match option(def, "TLS_CA_FILE") {
        Some(path) => {
            use rustls::pki_types::{CertificateDer, pem::PemObject};
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("TLS_CA_FILE {path} cannot be read: {e}"))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("TLS_CA_FILE {path} is not PEM: {e}"))?;
            if certs.is_empty() {
                return Err(format!("TLS_CA_FILE {path} holds no certificate."));
            }
            for c in certs {
                roots.add(c).map_err(|e| format!("TLS_CA_FILE: {e}"))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some((Arc::new(config), name)))
}

pub(crate) struct SmppProvider {
    source: String,
    ton: [u8; 4],
    timeout: Duration,
    session: Session,
}

impl SmppProvider {
    /// The provider, and its session (started now, ended when the provider is dropped).
    pub(crate) fn new(
        def: &GatewayDef,
        receipts: mpsc::Sender<GatewayReceipt>,
    ) -> Result<Self, SendError> {
        validate(def).map_err(SendError::Config)?;
        let get = |k: &str| option(def, k).unwrap_or_default().to_owned();
        let t = |k: &str| ton_npi(def, k).map_err(SendError::Config);
        let timeout = Duration::from_secs_f64(timeout(def).map_err(SendError::Config)?);
        let link = Link {
            gateway: def.name.clone(),
            host: get("SMSC_HOST"),
            port: get("SMSC_PORT").parse().unwrap_or(2775),
            tls: tls(def).map_err(SendError::Config)?,
            system_id: get("SYSTEM_ID"),
            password: def.options.get("PASSWORD").cloned().unwrap_or_default(),
            bind: bind_mode(def).map_err(SendError::Config)?,
            timeout,
            window: window(def).map_err(SendError::Config)?,
            enquire_every: enquire_every(def).map_err(SendError::Config)?,
            receipts,
        };
        Ok(Self {
            source: get("S_ADDR"),
            ton: [
                t("S_ADDR_TON")?,
                t("S_ADDR_NPI")?,
                t("D_ADDR_TON")?,
                t("D_ADDR_NPI")?,
            ],
            timeout,
            session: Session::start(link),
        })
    }

    /// The short_message payloads for a text (with a UDH when concatenated), and which of
    /// them carries `keep` (the last when none does).
    pub(crate) fn parts(
        text: &str,
        keep: Option<&str>,
        reference: u8,
    ) -> (u8, Vec<(u8, Vec<u8>)>, usize) {
        let carrier = keep.filter(|k| !k.is_empty()).and_then(|k| {
            sms_text::split(text, Some(k))
                .1
                .iter()
                .position(|p| p.contains(k))
        });
        let (enc, parts) = sms_text::encode_parts(text, keep, reference);
        let coding = if enc == Encoding::Gsm7 { 0 } else { 8 };
        let last = parts.len().saturating_sub(1);
        let parts = parts
            .into_iter()
            .map(|p| {
                let esm_class = if p.udh.is_empty() { 0 } else { 0x40 };
                let mut m = p.udh;
                m.extend(p.data);
                (esm_class, m)
            })
            .collect();
        (coding, parts, carrier.unwrap_or(last))
    }

    async fn submit_all(
        &self,
        phone: &str,
        text: &str,
        keep: Option<&str>,
        deadline: tokio::time::Instant,
    ) -> Result<String, SendError> {
        let reference = u8::try_from(phone.bytes().map(u32::from).sum::<u32>() % 256).unwrap_or(0);
        let (coding, parts, carrier) = Self::parts(text, keep, reference);
        let mut id = String::new();
        for (i, (esm_class, message)) in parts.into_iter().enumerate() {
            let submit = pdu::Submit {
                source_ton: self.ton[0],
                source_npi: self.ton[1],
                source: self.source.clone(),
                dest_ton: self.ton[2],
                dest_npi: self.ton[3],
                destination: phone.to_owned(),
                esm_class,
                data_coding: coding,
                // The receipt is asked for the part that carries the code only (its id is
                // the one recorded).
                registered_delivery: u8::from(i == carrier),
                message,
            };
            let part_id = self.session.submit(submit, deadline).await?;
            if i == carrier {
                id = part_id;
            }
        }
        Ok(id)
    }

    /// Whether receipts come on the session now (bound as a transceiver).
    pub(crate) fn receiving(&self) -> bool {
        self.session.receiving()
    }

    /// Sends the text; the SMSC's message id of the part that carries `keep`. `deadline` is
    /// when the caller stops waiting (its send budget), if before `TIMEOUT`: no part is
    /// written that could not be answered by then.
    pub(crate) async fn send(
        &self,
        phone: &str,
        text: &str,
        keep: Option<&str>,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<String, SendError> {
        let own = tokio::time::Instant::now() + self.timeout;
        let deadline = deadline.map_or(own, |d| d.min(own));
        match tokio::time::timeout_at(deadline, self.submit_all(phone, text, keep, deadline)).await
        {
            Ok(r) => r,
            Err(_) => Err(SendError::Timeout(format!(
                "{}",
                self.timeout.as_secs_f64()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_transmitter_bytes() {
        let body = pdu::bind_transmitter("sys", "pw");
        let bytes = pdu::encode(&pdu::Pdu {
            command: pdu::BIND_TRANSMITTER,
            status: 0,
            sequence: 1,
            body,
        });
        let expected: Vec<u8> = [
            &[0, 0, 0, 0x1c][..],
            &[0, 0, 0, 2],
            &[0, 0, 0, 0],
            &[0, 0, 0, 1],
            b"sys\0pw\0\0",
            &[0x34, 0, 0, 0],
        ]
        .concat();
        assert_eq!(bytes, expected);
        assert_eq!(pdu::decode(&bytes).unwrap().sequence, 1);
        assert!(pdu::decode(&bytes[..20]).is_none());
    }

    #[test]
    fn submit_sm_round_trip_and_concatenation() {
        let s = pdu::Submit {
            source_ton: 5,
            source_npi: 0,
            source: "otpgate".into(),
            dest_ton: 1,
            dest_npi: 1,
            destination: "4915100000001".into(),
            esm_class: 0,
            data_coding: 0,
            registered_delivery: 1,
            message: b"hi".to_vec(),
        };
        assert_eq!(pdu::parse_submit_sm(&pdu::submit_sm(&s)), Some(s));
        let (coding, parts, carrier) = SmppProvider::parts("Your code 123456", Some("123456"), 7);
        assert_eq!((coding, parts.len(), parts[0].0, carrier), (0, 1, 0, 0));
        let long = format!("{} 12345678", "é".repeat(160));
        let (coding, parts, carrier) = SmppProvider::parts(&long, Some("12345678"), 7);
        assert_eq!((coding, parts.len(), carrier), (0, 2, 1));
        let first = format!("12345678 {}", "é".repeat(160));
        assert_eq!(SmppProvider::parts(&first, Some("12345678"), 7).2, 0);
        assert_eq!(parts[1].0, 0x40);
        assert_eq!(&parts[1].1[..6], &[5, 0, 3, 7, 2, 2]);
        let (coding, _, _) = SmppProvider::parts("Код 123456", None, 1);
        assert_eq!(coding, 8);
    }

    #[test]
    fn ton_npi_values() {
        let def = GatewayDef {
            id: 1,
            name: "s".into(),
            module: "smpp".into(),
            options: [
                ("SMSC_HOST", "h"),
                ("SMSC_PORT", "2775"),
                ("S_ADDR_TON", "0x5"),
                ("D_ADDR_NPI", "1"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
            headers: Default::default(),
            smtp: None,
        };
        assert!(validate(&def).is_ok());
        assert_eq!(ton_npi(&def, "S_ADDR_TON"), Ok(5));
        let mut bad = def.clone();
        bad.options.insert("SMSC_PORT".into(), "x".into());
        assert!(validate(&bad).is_err());
    }

    fn deliver(esm_class: u8, text: &str, tlvs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut b = Vec::new();
        pdu::cstr(&mut b, "");
        b.extend([1, 1]);
        pdu::cstr(&mut b, "4915100000001");
        b.extend([0, 0]);
        pdu::cstr(&mut b, "OTP");
        b.extend([esm_class, 0, 0]);
        pdu::cstr(&mut b, "");
        pdu::cstr(&mut b, "");
        b.extend([0, 0, 0, 0, u8::try_from(text.len()).unwrap()]);
        b.extend(text.as_bytes());
        for (tag, v) in tlvs {
            b.extend(tag.to_be_bytes());
            b.extend(u16::try_from(v.len()).unwrap().to_be_bytes());
            b.extend(*v);
        }
        b
    }

    #[test]
    fn receipts_from_text_and_from_tlvs() {
        let text = "id:0123456789 sub:001 dlvrd:001 submit date:2612051200 done date:2612051201 stat:DELIVRD err:000 Text:Your code";
        let d = pdu::parse_deliver_sm(&deliver(0x04, text, &[])).unwrap();
        assert_eq!(
            pdu::receipt(&d),
            Some(pdu::Receipt {
                id: "0123456789".into(),
                stat: "DELIVRD".into(),
                err: "000".into()
            })
        );
        // Upper-case keys, a lower-case state.
        let d = pdu::parse_deliver_sm(&deliver(0x04, "ID:ab12 STAT:undeliv ERR:001", &[])).unwrap();
        let r = pdu::receipt(&d).unwrap();
        assert_eq!(
            (r.id.as_str(), r.stat.as_str(), r.err.as_str()),
            ("ab12", "UNDELIV", "001")
        );
        // TLVs win over the text.
        let d = pdu::parse_deliver_sm(&deliver(
            0x04,
            "id:1 stat:ENROUTE",
            &[
                (pdu::TAG_RECEIPTED_MESSAGE_ID, b"77aa\0"),
                (pdu::TAG_MESSAGE_STATE, &[5]),
            ],
        ))
        .unwrap();
        let r = pdu::receipt(&d).unwrap();
        assert_eq!((r.id.as_str(), r.stat.as_str()), ("77aa", "UNDELIV"));
        // A message from a phone is no receipt; a receipt without an id is none either.
        let mo = pdu::parse_deliver_sm(&deliver(0x00, "id:1 stat:DELIVRD", &[])).unwrap();
        assert_eq!(pdu::receipt(&mo), None);
        let d = pdu::parse_deliver_sm(&deliver(0x04, "stat:DELIVRD", &[])).unwrap();
        assert_eq!(pdu::receipt(&d), None);
        // Truncated bodies are refused, not read past their end.
        let full = deliver(0x04, text, &[(pdu::TAG_MESSAGE_STATE, &[2])]);
        for cut in 0..full.len() - 1 {
            let _ = pdu::parse_deliver_sm(&full[..cut]);
        }
        assert!(pdu::parse_deliver_sm(&full[..full.len() - 1]).is_none());
    }

    #[test]
    fn receipts_in_data_sm_and_in_message_payload() {
        // data_sm: addresses, esm_class 0x04, registered_delivery, data_coding, then TLVs.
        let mut b = Vec::new();
        pdu::cstr(&mut b, "");
        b.extend([1, 1]);
        pdu::cstr(&mut b, "4915100000001");
        b.extend([0, 0]);
        pdu::cstr(&mut b, "OTP");
        b.extend([0x04, 0, 0]);
        for (tag, v) in [
            (pdu::TAG_RECEIPTED_MESSAGE_ID, &b"9f\0"[..]),
            (pdu::TAG_MESSAGE_STATE, &[2][..]),
        ] {
            b.extend(tag.to_be_bytes());
            b.extend(u16::try_from(v.len()).unwrap().to_be_bytes());
            b.extend(v);
        }
        let r = pdu::receipt(&pdu::parse_data_sm(&b).unwrap()).unwrap();
        assert_eq!((r.id.as_str(), r.stat.as_str()), ("9f", "DELIVRD"));
        assert!(pdu::parse_data_sm(&b[..b.len() - 1]).is_none());
        // deliver_sm whose receipt text is in message_payload (short_message empty).
        let text = b"id:77 sub:001 dlvrd:001 stat:EXPIRED err:000";
        let d = deliver(0x04, "", &[(pdu::TAG_MESSAGE_PAYLOAD, text)]);
        let r = pdu::receipt(&pdu::parse_deliver_sm(&d).unwrap()).unwrap();
        assert_eq!((r.id.as_str(), r.stat.as_str()), ("77", "EXPIRED"));
    }

    #[test]
    fn ids_are_matched_in_hex_and_decimal() {
        assert_eq!(pdu::id_spellings("500"), vec!["500", "1f4", "1F4", "1280"]);
        assert_eq!(pdu::id_spellings("1f4"), vec!["1f4", "500"]);
        assert_eq!(pdu::id_spellings("msg-1"), vec!["msg-1"]);
        assert_eq!(pdu::id_spellings("").len(), 1);
    }
}
