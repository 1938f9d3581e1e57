//! Random OTP PINs as privacyIDEA's `otp_pin_set_random` makes them: a length, and the
//! characters an `otp_pin_contents` policy allows (`c` letters, `n` digits, `s` punctuation;
//! `+cn`: at least one of the group, `-s`: all but these, `[abc]`: only these, `cn`: at least
//! one of each). Without a contents policy: letters and digits.

use crate::CoreError;
use crate::random::RandomSource;

const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";
const SPECIAL: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

fn class(c: char) -> Option<&'static str> {
    match c {
        'c' => Some(LETTERS),
        'n' => Some(DIGITS),
        's' => Some(SPECIAL),
        _ => None,
    }
}

/// The characters a PIN may use and the sets it needs one character of each from; an error
/// for a contents policy privacyIDEA would refuse.
pub fn charlists(policy: &str) -> Result<(String, Vec<String>), CoreError> {
    let unknown = || CoreError::PinPolicy("Unknown character specifier in PIN policy.".into());
    let all = format!("{LETTERS}{DIGITS}{SPECIAL}");
    if let Some(inner) = policy.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
        if inner.is_empty() {
            return Err(unknown());
        }
        return Ok((inner.to_owned(), Vec::new()));
    }
    let body = policy.trim_start_matches(['+', '-']);
    if body.is_empty() || body.chars().any(|c| class(c).is_none()) {
        return Err(unknown());
    }
    Ok(match policy.chars().next() {
        Some('+') => (all, vec![body.chars().filter_map(class).collect()]),
        Some('-') => (
            "cns"
                .chars()
                .filter(|c| !body.contains(*c))
                .filter_map(class)
                .collect(),
            Vec::new(),
        ),
        _ => (
            all,
            body.chars().filter_map(class).map(str::to_owned).collect(),
        ),
    })
}

/// Checks `pin` against an `otp_pin_contents` policy as privacyIDEA does: an error naming
/// what is wrong (`Not allowed character in PIN!`, `Missing character in PIN: …`).
pub fn check_contents(pin: &str, policy: &str) -> Result<(), String> {
    let (base, required) = charlists(policy.trim()).map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    if pin.chars().any(|c| !base.contains(c)) {
        problems.push("Not allowed character in PIN!".to_owned());
    }
    for set in &required {
        if !pin.chars().any(|c| set.contains(c)) {
            problems.push(format!("Missing character in PIN: {set}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join(","))
    }
}

/// A random PIN of `size` characters following the contents `policy` (None: letters and
/// digits). With more required sets than `size`, the PIN has one character of each.
pub fn random_pin(
    rng: &dyn RandomSource,
    size: usize,
    policy: Option<&str>,
) -> Result<String, CoreError> {
    let (base, required) = match policy.map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => charlists(p)?,
        None => (format!("{LETTERS}{DIGITS}"), Vec::new()),
    };
    if base.is_empty() {
        return Err(CoreError::PinPolicy(
            "The PIN contents policy allows no characters.".into(),
        ));
    }
    let mut chars: Vec<char> = Vec::with_capacity(size.max(required.len()));
    for set in &required {
        chars.push(pick(rng, set)?);
    }
    while chars.len() < size {
        chars.push(pick(rng, &base)?);
    }
    // Fisher-Yates, so the required characters are not always in front.
    for i in (1..chars.len()).rev() {
        let j = index(rng, i + 1)?;
        chars.swap(i, j);
    }
    Ok(chars.into_iter().collect())
}

fn pick(rng: &dyn RandomSource, set: &str) -> Result<char, CoreError> {
    let chars: Vec<char> = set.chars().collect();
    let i = index(rng, chars.len())?;
    chars.get(i).copied().ok_or(CoreError::Random)
}

/// A uniform index below `n` (rejection sampling on 32 bits).
fn index(rng: &dyn RandomSource, n: usize) -> Result<usize, CoreError> {
    let n = u32::try_from(n).map_err(|_| CoreError::Random)?;
    if n == 0 {
        return Err(CoreError::Random);
    }
    let limit = u32::MAX - (u32::MAX % n);
    loop {
        let mut b = [0u8; 4];
        rng.fill(&mut b)?;
        let v = u32::from_le_bytes(b);
        if v < limit {
            return usize::try_from(v % n).map_err(|_| CoreError::Random);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::OsRandom;

    #[test]
    fn pins_follow_the_contents_policy() {
        let rng = OsRandom;
        for _ in 0..200 {
            let p = random_pin(&rng, 8, None).unwrap();
            assert_eq!(p.len(), 8);
            assert!(p.chars().all(|c| c.is_ascii_alphanumeric()), "{p}");
            let p = random_pin(&rng, 6, Some("cns")).unwrap();
            assert!(p.chars().any(|c| c.is_ascii_alphabetic()), "{p}");
            assert!(p.chars().any(|c| c.is_ascii_digit()), "{p}");
            assert!(p.chars().any(|c| c.is_ascii_punctuation()), "{p}");
            let p = random_pin(&rng, 6, Some("-cs")).unwrap();
            assert!(p.chars().all(|c| c.is_ascii_digit()), "{p}");
            let p = random_pin(&rng, 5, Some("[ab]")).unwrap();
            assert!(p.chars().all(|c| c == 'a' || c == 'b'), "{p}");
            let p = random_pin(&rng, 4, Some("+ns")).unwrap();
            assert!(
                p.chars()
                    .any(|c| c.is_ascii_digit() || c.is_ascii_punctuation()),
                "{p}"
            );
        }
        // Checking PINs against the same policies.
        assert!(check_contents("ab12", "cn").is_ok());
        assert_eq!(
            check_contents("abcd", "cn").unwrap_err(),
            "Missing character in PIN: 0123456789"
        );
        assert_eq!(
            check_contents("12!", "-s").unwrap_err(),
            "Not allowed character in PIN!"
        );
        assert!(check_contents("121", "[12]").is_ok());
        // More required sets than characters: one of each.
        assert_eq!(random_pin(&rng, 1, Some("cns")).unwrap().len(), 3);
        assert!(random_pin(&rng, 6, Some("cx")).is_err());
        assert!(random_pin(&rng, 6, Some("[]")).is_err());
        assert!(random_pin(&rng, 6, Some("-cns")).is_err());
    }
}
