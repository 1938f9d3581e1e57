//! A policy's `time`: the days and hours it applies, privacyIDEA's
//! `Mon-Fri: 9-18, Sat: 10:00-12:30` (days `Mon`…`Sun`, a day or a range of days, then the
//! hours; both ends of a range included, as privacyIDEA's `check_time_in_range`).

use chrono::{Datelike, NaiveDateTime, Timelike};

/// One `<days>: <from>-<to>` entry, in days 1 (Monday) … 7 and minutes of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    days: (u32, u32),
    minutes: (u32, u32),
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Why a time range is malformed (privacyIDEA answers `Invalid time format '<time>'!`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTime(pub String);

fn day(s: &str) -> Result<u32, BadTime> {
    DAYS.iter()
        .position(|d| *d == s)
        .map(|i| i as u32 + 1)
        .ok_or_else(|| BadTime(format!("unknown day of the week '{s}'")))
}

/// `9`, `09`, `9:30`: minutes since midnight.
fn clock(s: &str) -> Result<u32, BadTime> {
    let bad = || BadTime(format!("'{s}' is no time of day"));
    let (h, m) = match s.split_once(':') {
        Some((h, m)) => (h, m),
        None => (s, "0"),
    };
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn windows(range: &str) -> Result<Vec<Window>, BadTime> {
    let compact: String = range
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    compact
        .split(',')
        .map(|entry| {
            let (days, hours) = entry
                .split_once(':')
                .ok_or_else(|| BadTime(format!("'{entry}' has no ':' after the days")))?;
            let days = match days.split_once('-') {
                Some((a, b)) => (day(a)?, day(b)?),
                None => (day(days)?, day(days)?),
            };
            let (from, to) = hours
                .split_once('-')
                .ok_or_else(|| BadTime(format!("'{hours}' is no range of hours")))?;
            let minutes = (clock(from)?, clock(to)?);
            if minutes.0 > minutes.1 {
                return Err(BadTime(format!("'{hours}' starts after it ends")));
            }
            Ok(Window { days, minutes })
        })
        .collect()
}

/// Checks a time range as privacyIDEA does when a policy is saved.
pub fn validate(range: &str) -> Result<(), BadTime> {
    windows(range).map(|_| ())
}

/// Whether `at` (local wall time) is inside `range`. A malformed range matches nothing
/// (privacyIDEA logs it and leaves the policy out).
pub fn in_range(range: &str, at: NaiveDateTime) -> bool {
    let Ok(windows) = windows(range) else {
        return false;
    };
    let day = at.weekday().number_from_monday();
    let minute = at.hour() * 60 + at.minute();
    windows.iter().any(|w| {
        w.days.0 <= day && day <= w.days.1 && w.minutes.0 <= minute && minute <= w.minutes.1
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(d: u32, h: u32, m: u32) -> NaiveDateTime {
        // 2026-11-30 is a Monday.
        NaiveDate::from_ymd_opt(2026, 11, 30 + d - 1)
            .or_else(|| NaiveDate::from_ymd_opt(2026, 12, d - 1))
            .and_then(|x| x.and_hms_opt(h, m, 0))
            .expect("a valid date")
    }

    #[test]
    fn days_and_hours() {
        let r = "Mon-Fri: 9-18, Sat: 10:00-12:30";
        assert!(in_range(r, at(1, 9, 0)), "start included");
        assert!(in_range(r, at(5, 18, 0)), "end minute included");
        assert!(!in_range(r, at(5, 18, 1)));
        assert!(!in_range(r, at(1, 8, 59)));
        assert!(in_range(r, at(6, 12, 30)));
        assert!(!in_range(r, at(6, 12, 31)));
        assert!(!in_range(r, at(7, 11, 0)), "Sunday is not listed");
        assert!(in_range("sun:0-23:59", at(7, 23, 59)));
    }

    #[test]
    fn malformed_ranges_are_refused_and_match_nothing() {
        for bad in [
            "Mon-Fri",
            "Mon-Fry: 9-17",
            "Mon: 18-9",
            "Mon: 9-25",
            "Mon: 9:60-10",
            "Mon: nine-ten",
            "",
        ] {
            assert!(validate(bad).is_err(), "{bad}");
            assert!(!in_range(bad, at(1, 10, 0)), "{bad}");
        }
        assert!(validate("Mon-Fri: 09:30-17:45, Sun: 0-1").is_ok());
    }
}
