//! Fuzzes a gateway's REGEXP rule (parse, then apply to a number) and number redaction.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otpgate_core::phone::{PhoneRewrite, redact};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (spec, phone) = text.split_once('\n').unwrap_or((text, "+4915112345678"));
    if let Ok(rule) = PhoneRewrite::parse(spec) {
        let _ = rule.apply(phone);
    }
    let _ = redact(phone);
});
