//! Phone numbers with libphonenumber's metadata (the `phonenumber` crate): parsing in any
//! common notation with a default region, E.164, the number's type (mobile, premium rate,
//! VoIP, …) and the notations gateways want.

use phonenumber::country::Id;
use phonenumber::metadata::DATABASE;
use phonenumber::{Mode, Type};

/// What kind of line a number is, by its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberKind {
    /// A mobile number.
    Mobile,
    /// A fixed line.
    FixedLine,
    /// Mobile or fixed (regions such as the USA do not tell them apart).
    FixedLineOrMobile,
    /// Free for the caller.
    TollFree,
    /// Premium rate: the caller pays extra (the target of SMS pumping).
    PremiumRate,
    /// Shared cost.
    SharedCost,
    /// A personal number that forwards.
    PersonalNumber,
    /// Voice over IP.
    Voip,
    /// A pager.
    Pager,
    /// A company's universal access number.
    Uan,
    /// Voicemail access.
    Voicemail,
    /// Anything else (short codes, unknown ranges).
    Other,
}

/// Every kind with its configuration name.
pub const KINDS: &[(NumberKind, &str)] = &[
    (NumberKind::Mobile, "mobile"),
    (NumberKind::FixedLine, "fixed_line"),
    (NumberKind::FixedLineOrMobile, "fixed_line_or_mobile"),
    (NumberKind::TollFree, "toll_free"),
    (NumberKind::PremiumRate, "premium_rate"),
    (NumberKind::SharedCost, "shared_cost"),
    (NumberKind::PersonalNumber, "personal_number"),
    (NumberKind::Voip, "voip"),
    (NumberKind::Pager, "pager"),
    (NumberKind::Uan, "uan"),
    (NumberKind::Voicemail, "voicemail"),
    (NumberKind::Other, "other"),
];

impl NumberKind {
    /// The configuration name (`premium_rate`, …).
    pub fn name(self) -> &'static str {
        KINDS
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("other", |(_, n)| n)
    }

    /// The kind of a configuration name.
    pub fn from_name(name: &str) -> Option<Self> {
        KINDS
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name.trim()))
            .map(|(k, _)| *k)
    }

    fn of(t: Type) -> Self {
        match t {
            Type::Mobile => Self::Mobile,
            Type::FixedLine => Self::FixedLine,
            Type::FixedLineOrMobile => Self::FixedLineOrMobile,
            Type::TollFree => Self::TollFree,
            Type::PremiumRate => Self::PremiumRate,
            Type::SharedCost => Self::SharedCost,
            Type::PersonalNumber => Self::PersonalNumber,
            Type::Voip => Self::Voip,
            Type::Pager => Self::Pager,
            Type::Uan => Self::Uan,
            Type::Voicemail => Self::Voicemail,
            _ => Self::Other,
        }
    }
}

/// A valid phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number {
    /// `+` country code and national number.
    pub e164: String,
    /// The ISO 3166 region (`DE`), when the number belongs to one.
    pub region: Option<String>,
    /// The line's kind.
    pub kind: NumberKind,
    /// As people write it across borders: `+49 151 12345678`.
    pub international: String,
    national: String,
}

/// Why a text is no usable phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// The default region is not an ISO 3166 region code.
    #[error("{0:?} is not a region code such as DE or GB")]
    Region(String),
    /// The text is no phone number (or national without a default region).
    #[error(
        "{0:?} is not a phone number; give it in international notation (+49 …) or set a default region (console: Settings; API: sms.default_region)"
    )]
    Unparsable(String),
    /// It parses but is no assigned number of its country.
    #[error("{0:?} is not a valid phone number")]
    Invalid(String),
}

/// True when `region` is an ISO 3166 region code libphonenumber knows.
pub fn is_region(region: &str) -> bool {
    region.trim().to_ascii_uppercase().parse::<Id>().is_ok()
}

/// Parses `raw` in any common notation (`+49 151 …`, `0049 151 …`, `(0151) …` with
/// `default_region` DE); only valid numbers are returned.
pub fn parse(raw: &str, default_region: Option<&str>) -> Result<Number, NumberError> {
    let region = match default_region.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => Some(
            r.to_ascii_uppercase()
                .parse::<Id>()
                .map_err(|_| NumberError::Region(r.to_owned()))?,
        ),
        None => None,
    };
    let trimmed = raw.trim();
    // `00` is the international prefix almost everywhere; read it as `+` without a region.
    let text = match (region, trimmed.strip_prefix("00")) {
        (None, Some(rest)) => format!("+{rest}"),
        _ => trimmed.to_owned(),
    };
    let n =
        phonenumber::parse(region, &text).map_err(|_| NumberError::Unparsable(raw.to_owned()))?;
    if !n.is_valid() {
        return Err(NumberError::Invalid(raw.to_owned()));
    }
    let national: String = n
        .format()
        .mode(Mode::National)
        .to_string()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    Ok(Number {
        e164: n.format().mode(Mode::E164).to_string(),
        international: n.format().mode(Mode::International).to_string(),
        region: n.country().id().map(|id| id.as_ref().to_owned()),
        kind: NumberKind::of(n.number_type(&DATABASE)),
        national,
    })
}

/// The notation a gateway wants a number in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notation {
    /// `+4915112345678`.
    E164,
    /// `4915112345678`.
    Digits,
    /// `004915112345678`.
    DoubleZero,
    /// `015112345678` (as dialled inside the country).
    National,
}

impl Notation {
    /// The notation of an option value: `e164`, `digits`, `00`, `national`.
    pub fn from_name(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "e164" | "+e164" | "+" => Some(Self::E164),
            "digits" => Some(Self::Digits),
            "00" => Some(Self::DoubleZero),
            "national" => Some(Self::National),
            _ => None,
        }
    }
}

impl Number {
    /// The number in `notation`.
    pub fn to_notation(&self, notation: Notation) -> String {
        let digits = self.e164.trim_start_matches('+');
        match notation {
            Notation::E164 => self.e164.clone(),
            Notation::Digits => digits.to_owned(),
            Notation::DoubleZero => format!("00{digits}"),
            Notation::National => self.national.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn common_notations_give_one_e164() {
        for raw in [
            "+49 151 12345678",
            "+49 (0)151 1234 5678",
            "0049 151 12345678",
            "+4915112345678",
        ] {
            let n = parse(raw, None).unwrap();
            assert_eq!(n.e164, "+4915112345678", "{raw}");
            assert_eq!(n.international, "+49 1511 2345678", "{raw}");
            assert_eq!(n.region.as_deref(), Some("DE"));
            assert_eq!(n.kind, NumberKind::Mobile);
        }
        let n = parse("0151 12345678", Some("de")).unwrap();
        assert_eq!(n.e164, "+4915112345678");
        assert!(matches!(
            parse("0151 12345678", None),
            Err(NumberError::Unparsable(_))
        ));
        assert!(matches!(
            parse("+491", None),
            Err(NumberError::Invalid(_)) | Err(NumberError::Unparsable(_))
        ));
        assert!(matches!(
            parse("hello", None),
            Err(NumberError::Unparsable(_))
        ));
        assert!(matches!(
            parse("1", Some("XX")),
            Err(NumberError::Region(_))
        ));
        assert!(is_region("gb") && !is_region("XX"));
    }

    #[test]
    fn number_types_come_from_the_metadata() {
        // German premium-rate (0900) and UK premium-rate (09xx) ranges.
        assert_eq!(
            parse("+49 900 1234567", None).unwrap().kind,
            NumberKind::PremiumRate
        );
        assert_eq!(
            parse("+44 909 8790000", None).unwrap().kind,
            NumberKind::PremiumRate
        );
        assert_eq!(
            parse("+44 7400 123456", None).unwrap().kind,
            NumberKind::Mobile
        );
        assert_eq!(
            parse("+1 201 555 0123", None).unwrap().kind,
            NumberKind::FixedLineOrMobile
        );
        for (k, name) in KINDS {
            assert_eq!(NumberKind::from_name(name), Some(*k));
            assert_eq!(k.name(), *name);
        }
    }

    #[test]
    fn notations_for_gateways() {
        let n = parse("+49 151 12345678", None).unwrap();
        assert_eq!(n.to_notation(Notation::E164), "+4915112345678");
        assert_eq!(n.to_notation(Notation::Digits), "4915112345678");
        assert_eq!(n.to_notation(Notation::DoubleZero), "004915112345678");
        assert_eq!(n.to_notation(Notation::National), "015112345678");
        assert_eq!(Notation::from_name("00"), Some(Notation::DoubleZero));
        assert_eq!(Notation::from_name("x"), None);
    }

    proptest! {
        #[test]
        fn any_german_mobile_in_any_notation_is_the_same_number(rest in 10_000_000u32..99_999_999, style in 0usize..4) {
            let e164 = format!("+49151{rest}");
            let raw = match style {
                0 => e164.clone(),
                1 => format!("0049 151 {rest}"),
                2 => format!("+49 (0)151-{rest}"),
                _ => format!("0151 {rest}"),
            };
            let n = parse(&raw, Some("DE")).unwrap();
            prop_assert_eq!(&n.e164, &e164);
            prop_assert_eq!(parse(&n.to_notation(Notation::National), Some("DE")).unwrap().e164, e164);
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,40}", region in "[A-Z]{0,3}") {
            let _ = parse(&s, Some(&region));
            let _ = parse(&s, None);
        }
    }
}
