//! Fuzzes the SMS text and prompt templates (privacyIDEA's `str.format` and `format_map`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use otpgate_core::template::{Tags, render_prompt, render_sms_text, tag_names, unescape_policy_text};

fuzz_target!(|data: &[u8]| {
    let Ok(template) = std::str::from_utf8(data) else {
        return;
    };
    let mut tags = Tags::new();
    tags.insert("otp", "123456".into());
    tags.insert("serial", "PISM0001".into());
    tags.insert("user", "alice".into());
    let _ = render_sms_text(template, &tags);
    let _ = render_prompt(template, &tags);
    let _ = tag_names(template);
    let _ = unescape_policy_text(template);
});
