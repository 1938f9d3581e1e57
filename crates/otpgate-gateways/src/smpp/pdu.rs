//! SMPP 3.4 PDUs: the header and the bodies otpgate sends or reads (pure functions).

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
/// deliver_sm (from the SMSC: a delivery receipt or a message from a phone).
pub const DELIVER_SM: u32 = 0x0000_0005;
/// deliver_sm_resp.
pub const DELIVER_SM_RESP: u32 = 0x8000_0005;
/// data_sm (from the SMSC: may carry a delivery receipt in its TLVs).
pub const DATA_SM: u32 = 0x0000_0103;
/// bind_transceiver.
pub const BIND_TRANSCEIVER: u32 = 0x0000_0009;
/// bind_transceiver_resp.
pub const BIND_TRANSCEIVER_RESP: u32 = 0x8000_0009;
/// The response command of a request command.
pub const RESPONSE_BIT: u32 = 0x8000_0000;
/// command_status ESME_RINVPASWD: the password is wrong.
pub const ESME_RINVPASWD: u32 = 0x0000_000E;
/// command_status ESME_RINVSYSID: the system_id is unknown.
pub const ESME_RINVSYSID: u32 = 0x0000_000F;
/// command_status ESME_RINVCMDID: the command is not supported.
pub const ESME_RINVCMDID: u32 = 0x0000_0003;
/// command_status ESME_RX_T_APPN: a temporary error of the receiving application (the SMSC
/// delivers again later).
pub const ESME_RX_T_APPN: u32 = 0x0000_0064;
/// The TLV tag receipted_message_id.
pub const TAG_RECEIPTED_MESSAGE_ID: u16 = 0x001E;
/// The TLV tag message_state.
pub const TAG_MESSAGE_STATE: u16 = 0x0427;
/// The TLV tag message_payload (the text instead of short_message).
pub const TAG_MESSAGE_PAYLOAD: u16 = 0x0424;
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

/// The body of bind_transmitter or bind_transceiver (the same fields; interface version 3.4).
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
    /// registered_delivery (1: a receipt for the final outcome).
    pub registered_delivery: u8,
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
    b.push(s.registered_delivery);
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
    let registered_delivery = byte(&mut pos)?;
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
        registered_delivery,
        message,
    })
}

/// What a deliver_sm carries that otpgate reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deliver {
    /// esm_class: `0x04` in its message type bits marks an SMSC delivery receipt.
    pub esm_class: u8,
    /// short_message (a receipt's text).
    pub message: Vec<u8>,
    /// The optional parameters (tag, value).
    pub tlvs: Vec<(u16, Vec<u8>)>,
}

/// Parses a deliver_sm body (the same mandatory fields as submit_sm, then TLVs).
pub fn parse_deliver_sm(body: &[u8]) -> Option<Deliver> {
    let mut pos = 0;
    let skip = |pos: &mut usize, n: usize| {
        *pos += n;
        (*pos <= body.len()).then_some(())
    };
    read_cstr(body, &mut pos)?; // service_type
    skip(&mut pos, 2)?;
    read_cstr(body, &mut pos)?; // source_addr
    skip(&mut pos, 2)?;
    read_cstr(body, &mut pos)?; // destination_addr
    let esm_class = *body.get(pos)?;
    skip(&mut pos, 3)?; // esm_class, protocol_id, priority_flag
    read_cstr(body, &mut pos)?; // schedule_delivery_time
    read_cstr(body, &mut pos)?; // validity_period
    skip(&mut pos, 4)?; // registered_delivery .. sm_default_msg_id
    let len = usize::from(*body.get(pos)?);
    skip(&mut pos, 1)?;
    let mut message = body.get(pos..pos + len)?.to_vec();
    pos += len;
    let tlvs = tlvs(body, pos)?;
    // A receipt text too long for short_message comes in message_payload.
    if message.is_empty()
        && let Some((_, v)) = tlvs.iter().find(|(t, _)| *t == TAG_MESSAGE_PAYLOAD)
    {
        message = v.clone();
    }
    Some(Deliver {
        esm_class,
        message,
        tlvs,
    })
}

/// The TLVs from `pos` to the end of `body`.
fn tlvs(body: &[u8], mut pos: usize) -> Option<Vec<(u16, Vec<u8>)>> {
    let mut out = Vec::new();
    while pos < body.len() {
        let tag = u16::from_be_bytes([*body.get(pos)?, *body.get(pos + 1)?]);
        let n = usize::from(u16::from_be_bytes([
            *body.get(pos + 2)?,
            *body.get(pos + 3)?,
        ]));
        out.push((tag, body.get(pos + 4..pos + 4 + n)?.to_vec()));
        pos += 4 + n;
    }
    Some(out)
}

/// Parses a data_sm body (addresses, esm_class, registered_delivery, data_coding, then
/// TLVs; the text, if any, in message_payload).
pub fn parse_data_sm(body: &[u8]) -> Option<Deliver> {
    let mut pos = 0;
    read_cstr(body, &mut pos)?; // service_type
    pos += 2;
    read_cstr(body, &mut pos)?; // source_addr
    pos += 2;
    read_cstr(body, &mut pos)?; // destination_addr
    let esm_class = *body.get(pos)?;
    pos += 3; // esm_class, registered_delivery, data_coding
    if pos > body.len() {
        return None;
    }
    let tlvs = tlvs(body, pos)?;
    let message = tlvs
        .iter()
        .find(|(t, _)| *t == TAG_MESSAGE_PAYLOAD)
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    Some(Deliver {
        esm_class,
        message,
        tlvs,
    })
}

/// A delivery receipt: the SMSC's id of the message and its final (or passing) state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The message id the SMSC gave in submit_sm_resp (as the receipt spells it).
    pub id: String,
    /// The state: `DELIVRD`, `UNDELIV`, `EXPIRED`, `REJECTD`, `DELETED`, `ACCEPTD`, `ENROUTE`
    /// or `UNKNOWN` (SMPP 3.4 Appendix B).
    pub stat: String,
    /// The network's error code, as given (`000` when none).
    pub err: String,
}

/// The name of a `message_state` TLV value (SMPP 3.4 §5.2.28).
fn state_name(v: u8) -> &'static str {
    match v {
        1 => "ENROUTE",
        2 => "DELIVRD",
        3 => "EXPIRED",
        4 => "DELETED",
        5 => "UNDELIV",
        6 => "ACCEPTD",
        8 => "REJECTD",
        _ => "UNKNOWN",
    }
}

/// The value of `key:` in a receipt text (`id:123 sub:001 … stat:DELIVRD err:000 text:…`);
/// keys are matched without regard to case, values end at a space.
fn receipt_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower.get(from..)?.find(key) {
        let at = from + i;
        // A key starts the text or follows a space ("submit date:" is not "date:").
        if at == 0 || lower.as_bytes().get(at - 1) == Some(&b' ') {
            let rest = text.get(at + key.len()..)?;
            return Some(rest.split(' ').next().unwrap_or_default());
        }
        from = at + key.len();
    }
    None
}

/// The receipt in a deliver_sm, if it is one: the `receipted_message_id` and `message_state`
/// TLVs where the SMSC sends them, else the fields of the receipt text.
pub fn receipt(d: &Deliver) -> Option<Receipt> {
    if d.esm_class & 0x3C != 0x04 {
        return None;
    }
    let tlv = |tag: u16| d.tlvs.iter().find(|(t, _)| *t == tag).map(|(_, v)| v);
    let text = String::from_utf8_lossy(&d.message);
    let id = match tlv(TAG_RECEIPTED_MESSAGE_ID) {
        Some(v) => {
            String::from_utf8_lossy(v.split(|b| *b == 0).next().unwrap_or_default()).into_owned()
        }
        None => receipt_field(&text, "id:")?.to_owned(),
    };
    let stat = match tlv(TAG_MESSAGE_STATE).and_then(|v| v.first()) {
        Some(v) => state_name(*v).to_owned(),
        None => receipt_field(&text, "stat:")?.to_ascii_uppercase(),
    };
    let err = receipt_field(&text, "err:").unwrap_or("000").to_owned();
    (!id.is_empty()).then_some(Receipt { id, stat, err })
}

/// The ways an SMSC may spell a message id in its receipt: as given, and — as many SMSCs
/// give a hexadecimal id in submit_sm_resp and its decimal value in the receipt, or the
/// other way round — converted between the two.
pub fn id_spellings(id: &str) -> Vec<String> {
    let mut out = vec![id.to_owned()];
    let mut add = |s: String| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    if !id.is_empty()
        && id.len() <= 16
        && id.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = id.parse::<u64>()
    {
        add(format!("{n:x}"));
        add(format!("{n:X}"));
    }
    if !id.is_empty()
        && id.len() <= 16
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && let Ok(n) = u64::from_str_radix(id, 16)
    {
        add(n.to_string());
    }
    out
}
