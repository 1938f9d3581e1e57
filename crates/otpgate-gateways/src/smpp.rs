//! privacyIDEA's SmppSMSProvider, SMPP 3.4 (as a transmitter): connect, `bind_transmitter`,
//! one `submit_sm` per part, `unbind`. GSM-7 texts go as data_coding 0 (unpacked septets),
//! others as UCS-2 (data_coding 8); long texts are concatenated with a user data header
//! (`05 00 03 ref total seq`, esm_class 0x40) and the OTP is never split between parts.
//!
//! [`pdu`] is the codec (pure functions), shared with the test SMSC.

use crate::{GatewayDef, SendError};
use otpgate_core::sms_text::{self, Encoding};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// SMPP PDUs: the header and the bodies otpgate sends or reads.
pub mod pdu {
    /// bind_transmitter.
    pub const BIND_TRANSMITTER: u32 = 0x0000_0002;
    /// bind_transmitter_resp.
    pub const BIND_TRANSMITTER_RESP: u32 = 0x8000_0002;
    /// submit_sm.
    pub const SUBMIT_SM: u32 = 0x0000_0004;
    /// submit_sm_resp.
    pub const SUBMIT_SM_RESP: u32 = 0x8000_0004;
    /// unbind.
    pub const UNBIND: u32 = 0x0000_0006;
    /// unbind_resp.
    pub const UNBIND_RESP: u32 = 0x8000_0006;
    /// enquire_link.
    pub const ENQUIRE_LINK: u32 = 0x0000_0015;
    /// enquire_link_resp.
    pub const ENQUIRE_LINK_RESP: u32 = 0x8000_0015;
    /// generic_nack.
    pub const GENERIC_NACK: u32 = 0x8000_0000;
    /// The largest PDU accepted.
    pub const MAX_PDU: usize = 64 * 1024;

    /// A PDU: header fields and the raw body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Pdu {
        /// command_id.
        pub command: u32,
        /// command_status (0 = OK).
        pub status: u32,
        /// sequence_number.
        pub sequence: u32,
        /// The body.
        pub body: Vec<u8>,
    }

    /// Encodes a PDU with its 16-byte header.
    pub fn encode(p: &Pdu) -> Vec<u8> {
        let len = u32::try_from(16 + p.body.len()).unwrap_or(u32::MAX);
        let mut out = Vec::with_capacity(16 + p.body.len());
        for v in [len, p.command, p.status, p.sequence] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&p.body);
        out
    }

    /// The total length announced by a header, if it is sane.
    pub fn announced_len(header: &[u8; 16]) -> Option<usize> {
        let len = usize::try_from(u32::from_be_bytes([
            header[0], header[1], header[2], header[3],
        ]))
        .ok()?;
        (16..=MAX_PDU).contains(&len).then_some(len)
    }

    /// Decodes a complete PDU.
    pub fn decode(bytes: &[u8]) -> Option<Pdu> {
        let word = |i: usize| {
            bytes
                .get(i..i + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
        };
        let len = usize::try_from(word(0)?).ok()?;
        if len < 16 || len != bytes.len() {
            return None;
        }
        Some(Pdu {
            command: word(4)?,
            status: word(8)?,
            sequence: word(12)?,
            body: bytes.get(16..)?.to_vec(),
        })
    }

    /// Appends a C-octet string (NUL-terminated).
    pub fn cstr(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    /// Reads a C-octet string at `*pos`.
    pub fn read_cstr(body: &[u8], pos: &mut usize) -> Option<String> {
        let rest = body.get(*pos..)?;
        let end = rest.iter().position(|b| *b == 0)?;
        *pos += end + 1;
        Some(String::from_utf8_lossy(rest.get(..end)?).into_owned())
    }

    /// The body of bind_transmitter (interface version 3.4).
    pub fn bind_transmitter(system_id: &str, password: &str) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, system_id);
        cstr(&mut b, password);
        cstr(&mut b, ""); // system_type
        b.push(0x34); // interface_version
        b.push(0); // addr_ton
        b.push(0); // addr_npi
        cstr(&mut b, ""); // address_range
        b
    }

    /// The fields of submit_sm otpgate sets.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Submit {
        /// source_addr_ton.
        pub source_ton: u8,
        /// source_addr_npi.
        pub source_npi: u8,
        /// source_addr.
        pub source: String,
        /// dest_addr_ton.
        pub dest_ton: u8,
        /// dest_addr_npi.
        pub dest_npi: u8,
        /// destination_addr.
        pub destination: String,
        /// esm_class (0x40 with a user data header).
        pub esm_class: u8,
        /// data_coding (0 GSM-7, 8 UCS-2).
        pub data_coding: u8,
        /// short_message (at most 254 bytes).
        pub message: Vec<u8>,
    }

    /// The body of submit_sm.
    pub fn submit_sm(s: &Submit) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, ""); // service_type
        b.push(s.source_ton);
        b.push(s.source_npi);
        cstr(&mut b, &s.source);
        b.push(s.dest_ton);
        b.push(s.dest_npi);
        cstr(&mut b, &s.destination);
        b.push(s.esm_class);
        b.push(0); // protocol_id
        b.push(0); // priority_flag
        cstr(&mut b, ""); // schedule_delivery_time
        cstr(&mut b, ""); // validity_period
        b.push(0); // registered_delivery: no receipt, as privacyIDEA
        b.push(0); // replace_if_present_flag
        b.push(s.data_coding);
        b.push(0); // sm_default_msg_id
        b.push(u8::try_from(s.message.len()).unwrap_or(u8::MAX));
        b.extend_from_slice(&s.message);
        b
    }

    /// Parses a submit_sm body (for the test SMSC and for round-trip tests).
    pub fn parse_submit_sm(body: &[u8]) -> Option<Submit> {
        let mut pos = 0;
        let byte = |pos: &mut usize| {
            let b = body.get(*pos).copied();
            *pos += 1;
            b
        };
        read_cstr(body, &mut pos)?;
        let source_ton = byte(&mut pos)?;
        let source_npi = byte(&mut pos)?;
        let source = read_cstr(body, &mut pos)?;
        let dest_ton = byte(&mut pos)?;
        let dest_npi = byte(&mut pos)?;
        let destination = read_cstr(body, &mut pos)?;
        let esm_class = byte(&mut pos)?;
        byte(&mut pos)?;
        byte(&mut pos)?;
        read_cstr(body, &mut pos)?;
        read_cstr(body, &mut pos)?;
        byte(&mut pos)?;
        byte(&mut pos)?;
        let data_coding = byte(&mut pos)?;
        byte(&mut pos)?;
        let len = usize::from(byte(&mut pos)?);
        let message = body.get(pos..pos + len)?.to_vec();
        Some(Submit {
            source_ton,
            source_npi,
            source,
            dest_ton,
            dest_npi,
            destination,
            esm_class,
            data_coding,
            message,
        })
    }
}

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
    Ok(())
}

pub(crate) struct SmppProvider {
    host: String,
    port: u16,
    system_id: String,
    password: String,
    source: String,
    ton: [u8; 4],
    timeout: Duration,
}

impl SmppProvider {
    pub(crate) fn new(def: &GatewayDef) -> Result<Self, SendError> {
        validate(def).map_err(SendError::Config)?;
        let get = |k: &str| {
            def.options
                .get(k)
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        let t = |k: &str| ton_npi(def, k).map_err(SendError::Config);
        Ok(Self {
            host: get("SMSC_HOST"),
            port: get("SMSC_PORT").parse().unwrap_or(2775),
            system_id: get("SYSTEM_ID"),
            password: def.options.get("PASSWORD").cloned().unwrap_or_default(),
            source: get("S_ADDR"),
            ton: [
                t("S_ADDR_TON")?,
                t("S_ADDR_NPI")?,
                t("D_ADDR_TON")?,
                t("D_ADDR_NPI")?,
            ],
            timeout: Duration::from_secs_f64(timeout(def).map_err(SendError::Config)?),
        })
    }

    /// The short_message payloads for a text (with a UDH when concatenated).
    pub(crate) fn parts(text: &str, keep: Option<&str>, reference: u8) -> (u8, Vec<(u8, Vec<u8>)>) {
        let (enc, parts) = sms_text::encode_parts(text, keep, reference);
        let coding = if enc == Encoding::Gsm7 { 0 } else { 8 };
        let parts = parts
            .into_iter()
            .map(|p| {
                let esm_class = if p.udh.is_empty() { 0 } else { 0x40 };
                let mut m = p.udh;
                m.extend(p.data);
                (esm_class, m)
            })
            .collect();
        (coding, parts)
    }

    async fn exchange(
        &self,
        stream: &mut TcpStream,
        seq: &mut u32,
        command: u32,
        body: Vec<u8>,
    ) -> Result<pdu::Pdu, SendError> {
        *seq += 1;
        let bytes = pdu::encode(&pdu::Pdu {
            command,
            status: 0,
            sequence: *seq,
            body,
        });
        stream
            .write_all(&bytes)
            .await
            .map_err(|e| SendError::Connect(e.kind().to_string()))?;
        loop {
            let mut header = [0u8; 16];
            stream
                .read_exact(&mut header)
                .await
                .map_err(|e| SendError::Connect(e.kind().to_string()))?;
            let len = pdu::announced_len(&header)
                .ok_or_else(|| SendError::Smpp("the SMSC sent a malformed PDU".into()))?;
            let mut full = header.to_vec();
            full.resize(len, 0);
            stream
                .read_exact(full.get_mut(16..).unwrap_or_default())
                .await
                .map_err(|e| SendError::Connect(e.kind().to_string()))?;
            let p = pdu::decode(&full)
                .ok_or_else(|| SendError::Smpp("the SMSC sent a malformed PDU".into()))?;
            if p.command == pdu::ENQUIRE_LINK {
                let resp = pdu::encode(&pdu::Pdu {
                    command: pdu::ENQUIRE_LINK_RESP,
                    status: 0,
                    sequence: p.sequence,
                    body: vec![],
                });
                stream
                    .write_all(&resp)
                    .await
                    .map_err(|e| SendError::Connect(e.kind().to_string()))?;
                continue;
            }
            return Ok(p);
        }
    }

    async fn session(&self, phone: &str, text: &str, keep: Option<&str>) -> Result<(), SendError> {
        let mut stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| SendError::Connect(format!("SMSC: {}", e.kind())))?;
        let mut seq = 0u32;
        let bind = self
            .exchange(
                &mut stream,
                &mut seq,
                pdu::BIND_TRANSMITTER,
                pdu::bind_transmitter(&self.system_id, &self.password),
            )
            .await?;
        if bind.command != pdu::BIND_TRANSMITTER_RESP || bind.status != 0 {
            return Err(SendError::Smpp(format!(
                "bind refused (status 0x{:08x})",
                bind.status
            )));
        }
        let reference = u8::try_from(phone.bytes().map(u32::from).sum::<u32>() % 256).unwrap_or(0);
        let (coding, parts) = Self::parts(text, keep, reference);
        for (esm_class, message) in parts {
            let submit = pdu::Submit {
                source_ton: self.ton[0],
                source_npi: self.ton[1],
                source: self.source.clone(),
                dest_ton: self.ton[2],
                dest_npi: self.ton[3],
                destination: phone.to_owned(),
                esm_class,
                data_coding: coding,
                message,
            };
            let resp = self
                .exchange(
                    &mut stream,
                    &mut seq,
                    pdu::SUBMIT_SM,
                    pdu::submit_sm(&submit),
                )
                .await?;
            if resp.command != pdu::SUBMIT_SM_RESP || resp.status != 0 {
                return Err(SendError::Smpp(format!(
                    "submit_sm refused (status 0x{:08x})",
                    resp.status
                )));
            }
        }
        // A failed unbind does not undo the delivery.
        let _ = self
            .exchange(&mut stream, &mut seq, pdu::UNBIND, vec![])
            .await;
        Ok(())
    }

    pub(crate) async fn send(
        &self,
        phone: &str,
        text: &str,
        keep: Option<&str>,
    ) -> Result<(), SendError> {
        match tokio::time::timeout(self.timeout, self.session(phone, text, keep)).await {
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
            message: b"hi".to_vec(),
        };
        assert_eq!(pdu::parse_submit_sm(&pdu::submit_sm(&s)), Some(s));
        let (coding, parts) = SmppProvider::parts("Your code 123456", Some("123456"), 7);
        assert_eq!((coding, parts.len(), parts[0].0), (0, 1, 0));
        let long = format!("{} 12345678", "é".repeat(160));
        let (coding, parts) = SmppProvider::parts(&long, Some("12345678"), 7);
        assert_eq!((coding, parts.len()), (0, 2));
        assert_eq!(parts[1].0, 0x40);
        assert_eq!(&parts[1].1[..6], &[5, 0, 3, 7, 2, 2]);
        let (coding, _) = SmppProvider::parts("Код 123456", None, 1);
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
}
