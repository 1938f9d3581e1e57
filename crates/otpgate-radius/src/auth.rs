//! Authenticators and password hiding: RFC 2865 §3 (Response Authenticator), §5.2
//! (User-Password) and RFC 3579 §3.2 (Message-Authenticator, HMAC-MD5).

use crate::RadiusError;
use crate::packet::{self, HEADER_LEN, Packet, attr};
use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

type HmacMd5 = Hmac<Md5>;

/// Hides a User-Password: padded with NULs to a multiple of 16 (at most 128 bytes), each
/// block XORed with MD5(secret ‖ previous block), the first with the Request Authenticator.
pub fn hide_password(
    password: &[u8],
    secret: &[u8],
    authenticator: &[u8; 16],
) -> Result<Vec<u8>, RadiusError> {
    if password.len() > 128 {
        return Err(RadiusError::BadPassword);
    }
    let mut padded = password.to_vec();
    let blocks = password.len().div_ceil(16).max(1);
    padded.resize(blocks * 16, 0);
    let mut out = Vec::with_capacity(padded.len());
    let mut prev: Vec<u8> = authenticator.to_vec();
    for block in padded.chunks(16) {
        let b = Md5::new()
            .chain_update(secret)
            .chain_update(&prev)
            .finalize();
        let c: Vec<u8> = block.iter().zip(b.iter()).map(|(p, k)| p ^ k).collect();
        out.extend_from_slice(&c);
        prev = c;
    }
    Ok(out)
}

/// Reveals a hidden User-Password and strips the NUL padding.
pub fn unhide_password(
    hidden: &[u8],
    secret: &[u8],
    authenticator: &[u8; 16],
) -> Result<Vec<u8>, RadiusError> {
    if hidden.is_empty() || hidden.len() > 128 || !hidden.len().is_multiple_of(16) {
        return Err(RadiusError::BadPassword);
    }
    let mut out = Vec::with_capacity(hidden.len());
    let mut prev: &[u8] = authenticator;
    for block in hidden.chunks(16) {
        let b = Md5::new()
            .chain_update(secret)
            .chain_update(prev)
            .finalize();
        out.extend(block.iter().zip(b.iter()).map(|(c, k)| c ^ k));
        prev = block;
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    Ok(out)
}

/// The byte offset of the Message-Authenticator value in an encoded packet, if present.
fn message_authenticator_offset(raw: &[u8]) -> Option<usize> {
    let len = usize::from(u16::from_be_bytes(raw.get(2..4)?.try_into().ok()?));
    let mut pos = HEADER_LEN;
    while pos + 2 <= len {
        let typ = *raw.get(pos)?;
        let alen = usize::from(*raw.get(pos + 1)?);
        if alen < 2 {
            return None;
        }
        if typ == attr::MESSAGE_AUTHENTICATOR {
            return (alen == 18).then_some(pos + 2);
        }
        pos += alen;
    }
    None
}

fn hmac_md5(secret: &[u8], data: &[u8]) -> Result<[u8; 16], RadiusError> {
    let mut m = <HmacMd5 as KeyInit>::new_from_slice(secret)
        .map_err(|_| RadiusError::BadMessageAuthenticator)?;
    m.update(data);
    let tag = m.finalize().into_bytes();
    let mut out = [0u8; 16];
    out.copy_from_slice(&tag);
    Ok(out)
}

/// Verifies the Message-Authenticator of a received request (`raw` as received, up to its
/// Length). Absent: an error only when `required`.
pub fn verify_request(
    raw: &[u8],
    packet: &Packet,
    secret: &[u8],
    required: bool,
) -> Result<(), RadiusError> {
    let present = packet.get(attr::MESSAGE_AUTHENTICATOR);
    let Some(value) = present else {
        return if required {
            Err(RadiusError::MissingMessageAuthenticator)
        } else {
            Ok(())
        };
    };
    if value.len() != 16 {
        return Err(RadiusError::BadMessageAuthenticator);
    }
    let off = message_authenticator_offset(raw).ok_or(RadiusError::BadMessageAuthenticator)?;
    let len = usize::from(u16::from_be_bytes([
        raw.get(2).copied().unwrap_or(0),
        raw.get(3).copied().unwrap_or(0),
    ]));
    let mut copy = raw
        .get(..len)
        .ok_or(RadiusError::BadMessageAuthenticator)?
        .to_vec();
    copy.get_mut(off..off + 16)
        .ok_or(RadiusError::BadMessageAuthenticator)?
        .fill(0);
    let expected = hmac_md5(secret, &copy)?;
    if bool::from(expected.ct_eq(value)) {
        Ok(())
    } else {
        Err(RadiusError::BadMessageAuthenticator)
    }
}

/// Encodes a reply to a request: the Message-Authenticator goes first (computed over the reply
/// with the request's authenticator, RFC 3579 §3.2), then the Response Authenticator is
/// MD5(Code ‖ ID ‖ Length ‖ Request Authenticator ‖ Attributes ‖ Secret).
pub fn sign_reply(
    mut reply: Packet,
    request_authenticator: &[u8; 16],
    secret: &[u8],
) -> Result<Vec<u8>, RadiusError> {
    reply
        .attributes
        .retain(|a| a.typ != attr::MESSAGE_AUTHENTICATOR);
    reply.attributes.insert(
        0,
        packet::Attribute {
            typ: attr::MESSAGE_AUTHENTICATOR,
            value: vec![0; 16],
        },
    );
    reply.authenticator = *request_authenticator;
    let mut bytes = packet::encode(&reply)?;
    let ma = hmac_md5(secret, &bytes)?;
    bytes
        .get_mut(HEADER_LEN + 2..HEADER_LEN + 18)
        .ok_or(RadiusError::TooLarge("reply"))?
        .copy_from_slice(&ma);
    let resp = Md5::new()
        .chain_update(&bytes)
        .chain_update(secret)
        .finalize();
    bytes
        .get_mut(4..HEADER_LEN)
        .ok_or(RadiusError::TooLarge("reply"))?
        .copy_from_slice(&resp);
    Ok(bytes)
}

/// Checks a reply's Response Authenticator and Message-Authenticator (used by clients and
/// tests).
pub fn verify_reply(
    raw: &[u8],
    request_authenticator: &[u8; 16],
    secret: &[u8],
) -> Result<(), RadiusError> {
    let mut copy = raw.to_vec();
    let got: [u8; 16] = copy
        .get(4..HEADER_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or(RadiusError::Malformed("short"))?;
    copy.get_mut(4..HEADER_LEN)
        .ok_or(RadiusError::Malformed("short"))?
        .copy_from_slice(request_authenticator);
    let expected = Md5::new()
        .chain_update(&copy)
        .chain_update(secret)
        .finalize();
    if !bool::from(expected.as_slice().ct_eq(&got)) {
        return Err(RadiusError::BadMessageAuthenticator);
    }
    if let Some(off) = message_authenticator_offset(&copy) {
        let value: [u8; 16] = copy
            .get(off..off + 16)
            .and_then(|b| b.try_into().ok())
            .ok_or(RadiusError::Malformed("ma"))?;
        copy.get_mut(off..off + 16)
            .ok_or(RadiusError::Malformed("ma"))?
            .fill(0);
        if !bool::from(hmac_md5(secret, &copy)?.ct_eq(&value)) {
            return Err(RadiusError::BadMessageAuthenticator);
        }
    }
    Ok(())
}

/// Signs a request with a Message-Authenticator (first attribute); for clients and tests.
pub fn sign_request(mut req: Packet, secret: &[u8]) -> Result<Vec<u8>, RadiusError> {
    req.attributes
        .retain(|a| a.typ != attr::MESSAGE_AUTHENTICATOR);
    req.attributes.insert(
        0,
        packet::Attribute {
            typ: attr::MESSAGE_AUTHENTICATOR,
            value: vec![0; 16],
        },
    );
    let mut bytes = packet::encode(&req)?;
    let ma = hmac_md5(secret, &bytes)?;
    bytes
        .get_mut(HEADER_LEN + 2..HEADER_LEN + 18)
        .ok_or(RadiusError::TooLarge("request"))?
        .copy_from_slice(&ma);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{ACCESS_ACCEPT, ACCESS_REQUEST, decode};
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 2865 §7.1: nemo/arctangent with secret xyzzy5461, and the server's Access-Accept.
    #[test]
    fn rfc2865_section_7_1() {
        let req = hex("01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb
             98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d
             93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8
             01 10 05 06 00 00 00 03");
        let p = decode(&req).unwrap();
        assert_eq!(p.code, ACCESS_REQUEST);
        assert_eq!(p.get(attr::USER_NAME), Some(&b"nemo"[..]));
        let pw = unhide_password(
            p.get(attr::USER_PASSWORD).unwrap(),
            b"xyzzy5461",
            &p.authenticator,
        )
        .unwrap();
        assert_eq!(pw, b"arctangent");
        assert_eq!(
            hide_password(b"arctangent", b"xyzzy5461", &p.authenticator).unwrap(),
            p.get(attr::USER_PASSWORD).unwrap()
        );
        let accept = hex("02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf
             9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00
             0e 06 c0 a8 01 03");
        assert_eq!(decode(&accept).unwrap().code, ACCESS_ACCEPT);
        verify_reply(&accept, &p.authenticator, b"xyzzy5461").unwrap();
        assert!(verify_reply(&accept, &p.authenticator, b"wrong").is_err());
    }

    #[test]
    fn message_authenticator_round_trip_and_tamper() {
        let mut req = Packet {
            code: ACCESS_REQUEST,
            identifier: 1,
            authenticator: [3; 16],
            attributes: vec![],
        };
        req.push(attr::USER_NAME, b"alice".to_vec());
        let bytes = sign_request(req, b"s3cret").unwrap();
        let p = decode(&bytes).unwrap();
        assert_eq!(p.attributes[0].typ, attr::MESSAGE_AUTHENTICATOR);
        verify_request(&bytes, &p, b"s3cret", true).unwrap();
        assert_eq!(
            verify_request(&bytes, &p, b"other", true),
            Err(RadiusError::BadMessageAuthenticator)
        );
        let mut tampered = bytes.clone();
        *tampered.last_mut().unwrap() ^= 1;
        let tp = decode(&tampered).unwrap();
        assert_eq!(
            verify_request(&tampered, &tp, b"s3cret", true),
            Err(RadiusError::BadMessageAuthenticator)
        );
        let mut plain = Packet {
            code: ACCESS_REQUEST,
            identifier: 1,
            authenticator: [3; 16],
            attributes: vec![],
        };
        plain.push(attr::USER_NAME, b"alice".to_vec());
        let raw = packet::encode(&plain).unwrap();
        assert_eq!(
            verify_request(&raw, &plain, b"s3cret", true),
            Err(RadiusError::MissingMessageAuthenticator)
        );
        assert_eq!(verify_request(&raw, &plain, b"s3cret", false), Ok(()));
    }

    #[test]
    fn replies_carry_the_message_authenticator_first_and_verify() {
        let mut reply = Packet {
            code: ACCESS_ACCEPT,
            identifier: 5,
            authenticator: [0; 16],
            attributes: vec![],
        };
        reply.push(attr::REPLY_MESSAGE, b"ok".to_vec());
        let bytes = sign_reply(reply, &[7; 16], b"s3cret").unwrap();
        let p = decode(&bytes).unwrap();
        assert_eq!(p.attributes[0].typ, attr::MESSAGE_AUTHENTICATOR);
        verify_reply(&bytes, &[7; 16], b"s3cret").unwrap();
        assert!(verify_reply(&bytes, &[8; 16], b"s3cret").is_err());
    }

    #[test]
    fn bad_password_lengths() {
        assert!(unhide_password(&[0; 15], b"s", &[0; 16]).is_err());
        assert!(unhide_password(&[0; 144], b"s", &[0; 16]).is_err());
        assert!(unhide_password(&[], b"s", &[0; 16]).is_err());
        assert!(hide_password(&[b'a'; 129], b"s", &[0; 16]).is_err());
    }

    proptest! {
        #[test]
        fn password_round_trip(pw in proptest::collection::vec(1u8..=255, 0..128), secret in proptest::collection::vec(any::<u8>(), 1..40), auth in any::<[u8; 16]>()) {
            let hidden = hide_password(&pw, &secret, &auth).unwrap();
            prop_assert_eq!(hidden.len() % 16, 0);
            prop_assert_eq!(unhide_password(&hidden, &secret, &auth).unwrap(), pw);
        }
    }
}
