//! RADIUS packets (RFC 2865 §3, §5): `code, identifier, length, authenticator, attributes`.

use crate::RadiusError;

/// Access-Request.
pub const ACCESS_REQUEST: u8 = 1;
/// Access-Accept.
pub const ACCESS_ACCEPT: u8 = 2;
/// Access-Reject.
pub const ACCESS_REJECT: u8 = 3;
/// Access-Challenge.
pub const ACCESS_CHALLENGE: u8 = 11;

/// Attribute types used by otpgate.
pub mod attr {
    /// User-Name (1).
    pub const USER_NAME: u8 = 1;
    /// User-Password (2).
    pub const USER_PASSWORD: u8 = 2;
    /// CHAP-Password (3).
    pub const CHAP_PASSWORD: u8 = 3;
    /// NAS-IP-Address (4).
    pub const NAS_IP_ADDRESS: u8 = 4;
    /// Reply-Message (18).
    pub const REPLY_MESSAGE: u8 = 18;
    /// State (24).
    pub const STATE: u8 = 24;
    /// NAS-Identifier (32).
    pub const NAS_IDENTIFIER: u8 = 32;
    /// Proxy-State (33).
    pub const PROXY_STATE: u8 = 33;
    /// Message-Authenticator (80, RFC 3579).
    pub const MESSAGE_AUTHENTICATOR: u8 = 80;
}

/// The smallest packet: the header.
pub const HEADER_LEN: usize = 20;
/// The largest packet RFC 2865 allows.
pub const MAX_PACKET_LEN: usize = 4096;
/// The largest attribute value.
pub const MAX_VALUE_LEN: usize = 253;

/// One attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The type.
    pub typ: u8,
    /// The value (0..=253 bytes).
    pub value: Vec<u8>,
}

/// A decoded packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The code (Access-Request, …).
    pub code: u8,
    /// Matches a reply to its request.
    pub identifier: u8,
    /// Request or Response Authenticator.
    pub authenticator: [u8; 16],
    /// The attributes in wire order.
    pub attributes: Vec<Attribute>,
}

impl Packet {
    /// The first value of an attribute type.
    pub fn get(&self, typ: u8) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|a| a.typ == typ)
            .map(|a| a.value.as_slice())
    }

    /// All values of an attribute type, in order.
    pub fn all(&self, typ: u8) -> impl Iterator<Item = &[u8]> {
        self.attributes
            .iter()
            .filter(move |a| a.typ == typ)
            .map(|a| a.value.as_slice())
    }

    /// Appends an attribute.
    pub fn push(&mut self, typ: u8, value: impl Into<Vec<u8>>) {
        self.attributes.push(Attribute {
            typ,
            value: value.into(),
        });
    }
}

/// Decodes a packet. Octets beyond the Length field are padding and ignored (RFC 2865 §3).
pub fn decode(buf: &[u8]) -> Result<Packet, RadiusError> {
    let header = buf
        .get(..HEADER_LEN)
        .ok_or(RadiusError::Malformed("shorter than the header"))?;
    let (&code, &identifier) = (
        header.first().ok_or(RadiusError::Malformed("empty"))?,
        header
            .get(1)
            .ok_or(RadiusError::Malformed("no identifier"))?,
    );
    let len_bytes: [u8; 2] = header
        .get(2..4)
        .and_then(|b| b.try_into().ok())
        .ok_or(RadiusError::Malformed("no length"))?;
    let len = usize::from(u16::from_be_bytes(len_bytes));
    if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&len) {
        return Err(RadiusError::Malformed("length field out of range"));
    }
    let body = buf
        .get(..len)
        .ok_or(RadiusError::Malformed("shorter than its length field"))?;
    let authenticator: [u8; 16] = body
        .get(4..HEADER_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or(RadiusError::Malformed("no authenticator"))?;
    let mut attributes = Vec::new();
    let mut rest = body.get(HEADER_LEN..).unwrap_or_default();
    while !rest.is_empty() {
        let (&typ, &alen) = match (rest.first(), rest.get(1)) {
            (Some(t), Some(l)) => (t, l),
            _ => return Err(RadiusError::Malformed("truncated attribute header")),
        };
        let alen = usize::from(alen);
        if alen < 2 {
            return Err(RadiusError::Malformed("attribute length below 2"));
        }
        let value = rest
            .get(2..alen)
            .ok_or(RadiusError::Malformed("attribute overruns the packet"))?;
        attributes.push(Attribute {
            typ,
            value: value.to_vec(),
        });
        rest = rest.get(alen..).unwrap_or_default();
    }
    Ok(Packet {
        code,
        identifier,
        authenticator,
        attributes,
    })
}

/// Encodes a packet; fails on an oversized attribute or packet.
pub fn encode(p: &Packet) -> Result<Vec<u8>, RadiusError> {
    let mut out = Vec::with_capacity(
        HEADER_LEN
            + p.attributes
                .iter()
                .map(|a| a.value.len() + 2)
                .sum::<usize>(),
    );
    out.push(p.code);
    out.push(p.identifier);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&p.authenticator);
    for a in &p.attributes {
        if a.value.len() > MAX_VALUE_LEN {
            return Err(RadiusError::TooLarge("attribute value over 253 bytes"));
        }
        out.push(a.typ);
        out.push(u8::try_from(a.value.len() + 2).map_err(|_| RadiusError::TooLarge("attribute"))?);
        out.extend_from_slice(&a.value);
    }
    if out.len() > MAX_PACKET_LEN {
        return Err(RadiusError::TooLarge("packet over 4096 bytes"));
    }
    let len = u16::try_from(out.len())
        .map_err(|_| RadiusError::TooLarge("packet"))?
        .to_be_bytes();
    if let Some(l) = out.get_mut(2..4) {
        l.copy_from_slice(&len);
    }
    Ok(out)
}

/// Splits a text into Reply-Message sized chunks on character boundaries.
pub fn text_chunks(text: &str) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if cur.len() + c.len_utf8() > MAX_VALUE_LEN {
            chunks.push(std::mem::take(&mut cur).into_bytes());
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        chunks.push(cur.into_bytes());
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Packet {
        let mut p = Packet {
            code: ACCESS_REQUEST,
            identifier: 7,
            authenticator: [9; 16],
            attributes: vec![],
        };
        p.push(attr::USER_NAME, b"nemo".to_vec());
        p.push(attr::PROXY_STATE, vec![1, 2, 3]);
        p.push(attr::STATE, vec![]);
        p
    }

    #[test]
    fn round_trip_and_padding_is_ignored() {
        let bytes = encode(&sample()).unwrap();
        assert_eq!(bytes.len(), 20 + 6 + 5 + 2);
        assert_eq!(decode(&bytes).unwrap(), sample());
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0xff; 10]);
        assert_eq!(decode(&padded).unwrap(), sample());
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let good = encode(&sample()).unwrap();
        assert!(decode(&good[..19]).is_err());
        assert!(
            decode(&good[..good.len() - 1]).is_err(),
            "shorter than the length field"
        );
        let mut bad = good.clone();
        bad[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert!(decode(&bad).is_err());
        let mut bad = good.clone();
        bad[21] = 1;
        assert!(decode(&bad).is_err(), "attribute length below 2");
        let mut bad = good.clone();
        bad[21] = 200;
        assert!(decode(&bad).is_err(), "attribute overruns");
        let mut p = sample();
        p.push(attr::REPLY_MESSAGE, vec![b'x'; 254]);
        assert!(encode(&p).is_err());
    }

    #[test]
    fn long_texts_are_chunked_on_char_boundaries() {
        let text = "é".repeat(200);
        let chunks = text_chunks(&text);
        assert!(chunks.iter().all(|c| c.len() <= 253));
        assert_eq!(chunks.concat(), text.as_bytes());
        assert!(chunks.iter().all(|c| std::str::from_utf8(c).is_ok()));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn encode_decode_round_trip(code in any::<u8>(), id in any::<u8>(), auth in any::<[u8; 16]>(),
                                    attrs in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..253)), 0..12)) {
            let p = Packet { code, identifier: id, authenticator: auth,
                             attributes: attrs.into_iter().map(|(typ, value)| Attribute { typ, value }).collect() };
            match encode(&p) {
                Ok(bytes) => prop_assert_eq!(decode(&bytes).unwrap(), p),
                Err(_) => prop_assert!(p.attributes.iter().map(|a| a.value.len() + 2).sum::<usize>() + 20 > MAX_PACKET_LEN),
            }
        }
    }
}
