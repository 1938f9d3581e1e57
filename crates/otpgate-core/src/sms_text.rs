//! SMS text awareness: the GSM 03.38 alphabet (3GPP TS 23.038) with its extension table,
//! UCS-2, segment counting and splitting of long texts into concatenated parts without ever
//! splitting a given substring (the OTP), an escape pair or a surrogate pair.

/// The character set a text is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// GSM 7-bit default alphabet: 160 characters per SMS, 153 per part of a long one.
    Gsm7,
    /// UCS-2 (UTF-16): 70 units per SMS, 67 per part.
    Ucs2,
}

/// The basic table: index = GSM code.
const BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The extension table (after the escape 0x1B).
const EXTENSION: [(char, u8); 10] = [
    ('\u{c}', 0x0A),
    ('^', 0x14),
    ('{', 0x28),
    ('}', 0x29),
    ('\\', 0x2F),
    ('[', 0x3C),
    ('~', 0x3D),
    (']', 0x3E),
    ('|', 0x40),
    ('€', 0x65),
];

/// The septets of one character: one for the basic table, two (escape + code) for the
/// extension table; None if the character is not in the GSM alphabet.
pub fn gsm7_septets(c: char) -> Option<Vec<u8>> {
    if c == '\u{1b}' {
        return None;
    }
    if let Some(i) = BASIC.iter().position(|&b| b == c) {
        return u8::try_from(i).ok().map(|b| vec![b]);
    }
    EXTENSION
        .iter()
        .find(|(e, _)| *e == c)
        .map(|(_, code)| vec![0x1B, *code])
}

/// True if every character of `text` is in the GSM alphabet.
pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(|c| gsm7_septets(c).is_some())
}

/// The encoding a text needs.
pub fn encoding(text: &str) -> Encoding {
    if is_gsm7(text) {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    }
}

/// The GSM septets of a text, one per byte (unpacked, as SMPP's data_coding 0 carries them).
pub fn encode_gsm7(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        out.extend(gsm7_septets(c)?);
    }
    Some(out)
}

/// UCS-2 (UTF-16 big endian).
pub fn encode_ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Packs septets into octets (3GPP TS 23.038 §6.1.2.1), after `fill_bits` zero bits (used to
/// align after a user data header).
pub fn pack_septets(septets: &[u8], fill_bits: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(septets.len() * 7 / 8 + 2);
    let mut acc: u32 = 0;
    let mut bits = fill_bits;
    for s in septets {
        acc |= u32::from(s & 0x7F) << bits;
        bits += 7;
        while bits >= 8 {
            out.push((acc & 0xFF) as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push((acc & 0xFF) as u8);
    }
    out
}

/// The size of a character in its encoding's units (septets or UTF-16 units).
fn units(c: char, enc: Encoding) -> usize {
    match enc {
        Encoding::Gsm7 => gsm7_septets(c).map_or(1, |s| s.len()),
        Encoding::Ucs2 => c.len_utf16(),
    }
}

/// The total length of a text in its encoding's units.
pub fn length(text: &str, enc: Encoding) -> usize {
    text.chars().map(|c| units(c, enc)).sum()
}

/// How many SMS a text needs: (encoding, parts).
pub fn segments(text: &str) -> (Encoding, usize) {
    let enc = encoding(text);
    let (single, part) = match enc {
        Encoding::Gsm7 => (160, 153),
        Encoding::Ucs2 => (70, 67),
    };
    let len = length(text, enc);
    (enc, if len <= single { 1 } else { len.div_ceil(part) })
}

/// Splits a text into the parts of a concatenated SMS (a single part if it fits one SMS).
/// Characters are never split, and neither is `keep` (the OTP) when it occurs in the text.
pub fn split(text: &str, keep: Option<&str>) -> (Encoding, Vec<String>) {
    let enc = encoding(text);
    let (single, part) = match enc {
        Encoding::Gsm7 => (160, 153),
        Encoding::Ucs2 => (70, 67),
    };
    if length(text, enc) <= single {
        return (enc, vec![text.to_owned()]);
    }
    // Atoms: the kept substring is one unbreakable piece, everything else single characters.
    let mut atoms: Vec<&str> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(k) = keep.filter(|k| !k.is_empty() && rest.starts_with(*k)) {
            atoms.push(rest.get(..k.len()).unwrap_or_default());
            rest = rest.get(k.len()..).unwrap_or_default();
        } else {
            let n = rest.chars().next().map_or(1, char::len_utf8);
            atoms.push(rest.get(..n).unwrap_or_default());
            rest = rest.get(n..).unwrap_or_default();
        }
    }
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut cur_len = 0;
    for atom in atoms {
        let len = length(atom, enc);
        if cur_len + len > part && !cur.is_empty() {
            parts.push(std::mem::take(&mut cur));
            cur_len = 0;
        }
        cur.push_str(atom);
        cur_len += len;
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    (enc, parts)
}

/// One part of a message as it goes on air: the user data header (empty for a single SMS) and
/// the data (GSM-7 septets, one per byte and not packed, or UCS-2 octets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// `05 00 03 reference total sequence` for a part of a concatenated SMS, else empty.
    pub udh: Vec<u8>,
    /// Septets (GSM-7) or octets (UCS-2).
    pub data: Vec<u8>,
}

/// Splits a text with [`split`] and encodes the parts, with the concatenation header
/// (3GPP TS 23.040 §9.2.3.24.1, 8-bit reference) when there are several.
pub fn encode_parts(text: &str, keep: Option<&str>, reference: u8) -> (Encoding, Vec<Part>) {
    let (enc, pieces) = split(text, keep);
    let total = u8::try_from(pieces.len()).unwrap_or(u8::MAX);
    let parts = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| Part {
            udh: if total > 1 {
                vec![
                    0x05,
                    0x00,
                    0x03,
                    reference,
                    total,
                    u8::try_from(i + 1).unwrap_or(u8::MAX),
                ]
            } else {
                Vec::new()
            },
            data: match enc {
                Encoding::Gsm7 => encode_gsm7(p).unwrap_or_default(),
                Encoding::Ucs2 => encode_ucs2(p),
            },
        })
        .collect();
    (enc, parts)
}

/// Every tag an SMS text may use, with a long but ordinary value: a text that needs more than
/// one SMS with these needs it in real life too.
pub const SMS_TAG_SAMPLES: &[(&str, &str)] = &[
    ("otp", "12345678"),
    ("challenge", ""),
    ("serial", "PISM0000ABCD"),
    ("tokentype", "sms"),
    ("user", "Alexander"),
    ("givenname", "Alexander"),
    ("surname", "Schneider"),
    ("username", "alexander.schneider"),
    ("userrealm", "example"),
    ("recipient_givenname", "Alexander"),
    ("recipient_surname", "Schneider"),
    ("time", "12:34:56"),
    ("date", "2026-11-28"),
    ("phone", "+4915112345678"),
    ("phone_redacted", "****-******78"),
    ("tokendescription", ""),
    ("admin", ""),
    ("realm", ""),
    ("action", ""),
    ("url", ""),
    ("client_ip", "192.0.2.10"),
    ("ua_browser", ""),
    ("ua_string", ""),
    ("pin", ""),
    ("registrationcode", ""),
];

/// An SMS text template rendered with an 8-digit OTP and ordinary sample values (what the
/// admin console previews and counts), or why it cannot be rendered.
pub fn preview(template: &str) -> std::result::Result<String, String> {
    let tags: crate::template::Tags = SMS_TAG_SAMPLES
        .iter()
        .map(|(k, v)| (*k, (*v).to_owned()))
        .collect();
    crate::template::render_sms_text(template, &tags)
        .map_err(|e| format!("The SMS text cannot be rendered: {e}"))
}

/// Whether an SMS text template carries the code (`{otp}`, or the legacy `<otp>`).
pub fn has_otp(template: &str) -> bool {
    template.contains("<otp>")
        || crate::template::tag_names(template)
            .iter()
            .any(|t| t == "otp")
}

/// The warning for a template without the code: every SMS would arrive without one.
pub const NO_OTP: &str = "The text has no {otp}: every SMS would arrive without the code.";

/// What an admin should know about an SMS text template before it bites: it cannot be
/// rendered, it carries no code, or, rendered with an 8-digit OTP and ordinary values, it
/// needs several SMS.
pub fn warnings(template: &str) -> Vec<String> {
    if !has_otp(template) && preview(template).is_ok() {
        return vec![NO_OTP.to_owned()];
    }
    match preview(template) {
        Err(e) => vec![e],
        Ok(text) => {
            let (enc, n) = segments(&text);
            if n <= 1 {
                return Vec::new();
            }
            let (name, single) = match enc {
                Encoding::Gsm7 => ("GSM-7", 160),
                Encoding::Ucs2 => ("UCS-2", 70),
            };
            vec![format!(
                "The SMS text needs {n} SMS per message ({name}: {} characters where one SMS holds {single}); every part is billed.",
                length(&text, enc)
            )]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_count_segments_with_an_8_digit_otp() {
        assert!(warnings("<otp>").is_empty());
        assert!(warnings("Your code for {username}: {otp}").is_empty());
        // 152 characters, a space and 8 digits: 161, one more than an SMS holds.
        let w = warnings(&format!("{} {{otp}}", "x".repeat(152)));
        assert!(
            w[0].contains("needs 2 SMS") && w[0].contains("161"),
            "{w:?}"
        );
        assert!(warnings(&format!("{} {{otp}}", "x".repeat(151))).is_empty());
        let w = warnings("Код {otp} {bogus}");
        assert!(w[0].contains("cannot be rendered"), "{w:?}");
        // Without the code: said first, whatever the length.
        assert_eq!(warnings("Your ACME sign-in code"), vec![NO_OTP.to_owned()]);
        assert!(has_otp("Code: {otp:>8}") && has_otp("<otp>") && !has_otp("{{otp}}"));
    }

    #[test]
    fn alphabet_and_extension() {
        assert!(is_gsm7("Your OTP: 123456 @£$¥èé"));
        assert_eq!(
            encode_gsm7("@A{€").unwrap(),
            vec![0x00, 0x41, 0x1B, 0x28, 0x1B, 0x65]
        );
        assert!(!is_gsm7("Код 123456"));
        assert_eq!(encode_ucs2("Кд"), vec![0x04, 0x1A, 0x04, 0x34]);
        assert!(!is_gsm7("\u{1b}"));
    }

    #[test]
    fn packing_matches_the_3gpp_example() {
        // 3GPP TS 23.038 / the classic example: "hellohello" → E8 32 9B FD 46 97 D9 EC 37.
        let packed = pack_septets(&encode_gsm7("hellohello").unwrap(), 0);
        assert_eq!(
            packed,
            vec![0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37]
        );
        assert_eq!(
            pack_septets(&encode_gsm7("hello").unwrap(), 0),
            vec![0xE8, 0x32, 0x9B, 0xFD, 0x06]
        );
        // One fill bit after a 6-byte UDH: the first septet is shifted by one.
        assert_eq!(pack_septets(&[0x41], 1), vec![0x82]);
    }

    #[test]
    fn segment_counts() {
        assert_eq!(segments(&"a".repeat(160)), (Encoding::Gsm7, 1));
        assert_eq!(segments(&"a".repeat(161)), (Encoding::Gsm7, 2));
        assert_eq!(
            segments(&"€".repeat(80)),
            (Encoding::Gsm7, 1),
            "extension characters count two"
        );
        assert_eq!(segments(&"€".repeat(81)), (Encoding::Gsm7, 2));
        assert_eq!(segments(&"я".repeat(70)), (Encoding::Ucs2, 1));
        assert_eq!(segments(&"я".repeat(71)), (Encoding::Ucs2, 2));
        assert_eq!(segments("😀").1, 1);
    }

    #[test]
    fn splitting_never_splits_the_otp() {
        let text = format!("{}{}", "x".repeat(150), "Code 12345678 end");
        let (enc, parts) = split(&text, Some("12345678"));
        assert_eq!(enc, Encoding::Gsm7);
        assert_eq!(parts.concat(), text);
        assert!(parts.iter().any(|p| p.contains("12345678")));
        assert!(parts.iter().all(|p| length(p, enc) <= 153));
        let (enc, parts) = split(&"я".repeat(100), None);
        assert_eq!((enc, parts.len()), (Encoding::Ucs2, 2));
        let (_, single) = split("short", Some("x"));
        assert_eq!(single, vec!["short".to_owned()]);
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// Texts from GSM-7 (with extension characters) and, sometimes, UCS-2 characters.
        fn text() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                prop_oneof![
                    8 => proptest::sample::select(vec!['a', 'Z', '0', ' ', '@', '£', 'é', '\n']),
                    2 => proptest::sample::select(vec!['€', '[', '^', '{', '|']),
                    1 => proptest::sample::select(vec!['я', 'ü', '中', 'ß']),
                ],
                0..400,
            )
            .prop_map(|cs| cs.into_iter().collect())
        }

        proptest! {
            #[test]
            fn parts_rebuild_the_text_fit_their_limit_and_never_split_the_otp(
                body in text(), otp in "[0-9]{6,8}", at in 0usize..400,
            ) {
                let chars: Vec<char> = body.chars().collect();
                let cut = at.min(chars.len());
                let text: String = chars[..cut].iter().collect::<String>() + &otp + &chars[cut..].iter().collect::<String>();
                let (enc, parts) = split(&text, Some(&otp));
                prop_assert_eq!(enc, encoding(&text));
                prop_assert_eq!(parts.concat(), text.clone());
                let (_, n) = segments(&text);
                prop_assert_eq!(parts.len() >= n, true);
                let limit = match (enc, parts.len()) {
                    (Encoding::Gsm7, 1) => 160,
                    (Encoding::Gsm7, _) => 153,
                    (Encoding::Ucs2, 1) => 70,
                    (Encoding::Ucs2, _) => 67,
                };
                for p in &parts {
                    prop_assert!(length(p, enc) <= limit);
                }
                prop_assert!(parts.iter().any(|p| p.contains(&otp)), "the OTP is in one part");
            }

            #[test]
            fn gsm7_encoding_counts_extension_characters_twice(body in text()) {
                if let Some(septets) = encode_gsm7(&body) {
                    prop_assert_eq!(septets.len(), length(&body, Encoding::Gsm7));
                    prop_assert!(is_gsm7(&body));
                } else {
                    prop_assert_eq!(encoding(&body), Encoding::Ucs2);
                }
                let ucs2 = encode_ucs2(&body);
                prop_assert_eq!(ucs2.len(), 2 * length(&body, Encoding::Ucs2));
            }
        }
    }
}
