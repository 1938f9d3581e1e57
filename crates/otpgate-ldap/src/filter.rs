//! Values in LDAP search filters (RFC 4515) and Active Directory GUIDs.

/// Escapes a value for an equality filter: every octet that is not printable ASCII, and the
/// filter's own metacharacters `*`, `(`, `)`, `\` (and `/`, as privacyIDEA does), is written
/// as `\xx`, so no value can add a clause or a wildcard to a filter.
pub fn escape_value(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value {
        if b.is_ascii_graphic() && !matches!(b, b'*' | b'(' | b')' | b'\\' | b'/') || b == b' ' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\{b:02x}"));
        }
    }
    out
}

/// A search pattern where `*` stays a wildcard and everything else is escaped.
pub fn wildcard_value(pattern: &str) -> String {
    pattern
        .split('*')
        .map(|part| escape_value(part.as_bytes()))
        .collect::<Vec<_>>()
        .join("*")
}

/// Active Directory's 16-byte `objectGUID` as privacyIDEA writes it: a UUID whose first three
/// fields are little-endian (`uuid.UUID(bytes_le=…)`).
pub fn guid_to_string(raw: &[u8]) -> Option<String> {
    let b: &[u8; 16] = raw.try_into().ok()?;
    let h = |bytes: &[u8]| -> String { bytes.iter().map(|x| format!("{x:02x}")).collect() };
    let rev = |bytes: &[u8]| -> String { bytes.iter().rev().map(|x| format!("{x:02x}")).collect() };
    Some(format!(
        "{}-{}-{}-{}-{}",
        rev(&b[0..4]),
        rev(&b[4..6]),
        rev(&b[6..8]),
        h(&b[8..10]),
        h(&b[10..16])
    ))
}

/// The 16 bytes of a GUID string (braces allowed), the inverse of [`guid_to_string`].
pub fn guid_to_bytes(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().trim_start_matches('{').trim_end_matches('}');
    let groups: Vec<&str> = s.split('-').collect();
    if groups.len() != 5 || groups.iter().map(|g| g.len()).collect::<Vec<_>>() != [8, 4, 4, 4, 12] {
        return None;
    }
    let mut out = Vec::with_capacity(16);
    for (i, g) in groups.iter().enumerate() {
        let mut bytes = Vec::with_capacity(g.len() / 2);
        for k in (0..g.len()).step_by(2) {
            bytes.push(u8::from_str_radix(g.get(k..k + 2)?, 16).ok()?);
        }
        if i < 3 {
            bytes.reverse();
        }
        out.extend(bytes);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn metacharacters_are_escaped() {
        assert_eq!(escape_value(b"alice"), "alice");
        assert_eq!(escape_value(b"hans*"), "hans\\2a");
        assert_eq!(escape_value(b"hans()"), "hans\\28\\29");
        assert_eq!(escape_value(b"a\\/b"), "a\\5c\\2fb");
        assert_eq!(escape_value(b"x\0y"), "x\\00y");
        assert_eq!(
            escape_value("Jürgen O'Neil".as_bytes()),
            "J\\c3\\bcrgen O'Neil"
        );
        assert_eq!(wildcard_value("b*(x"), "b*\\28x");
        assert_eq!(wildcard_value("*"), "*");
    }

    #[test]
    fn guids_in_active_directory_byte_order() {
        // The same GUID as Python's uuid.UUID(bytes_le=bytes(range(16))).
        let raw: Vec<u8> = (0u8..16).collect();
        let s = guid_to_string(&raw).unwrap();
        assert_eq!(s, "03020100-0504-0706-0809-0a0b0c0d0e0f");
        assert_eq!(guid_to_bytes(&s).unwrap(), raw);
        assert_eq!(guid_to_bytes(&format!("{{{s}}}")).unwrap(), raw);
        assert!(guid_to_bytes("not-a-guid").is_none());
        assert!(guid_to_string(&raw[..15]).is_none());
    }

    proptest! {
        /// An escaped value never contains a character that could end or extend the clause.
        #[test]
        fn escaped_values_cannot_change_a_filter(v in proptest::collection::vec(any::<u8>(), 0..64)) {
            let e = escape_value(&v);
            prop_assert!(!e.contains(['(', ')', '*', '\0']));
            prop_assert!(e.is_ascii());
            // Every backslash starts a two-digit escape.
            let b = e.as_bytes();
            for (i, c) in b.iter().enumerate() {
                if *c == b'\\' {
                    prop_assert!(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit));
                    prop_assert!(b.get(i + 2).is_some_and(u8::is_ascii_hexdigit));
                }
            }
        }

        #[test]
        fn guids_round_trip(raw in proptest::array::uniform16(any::<u8>())) {
            let s = guid_to_string(&raw).unwrap();
            prop_assert_eq!(guid_to_bytes(&s).unwrap(), raw.to_vec());
        }
    }
}
