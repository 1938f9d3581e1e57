//! Fuzzes the request-parameter parser (query string, form or JSON body, content types).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte: which content type; then query and body split at the first NUL.
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let ctype = match kind % 5 {
        0 => "application/x-www-form-urlencoded",
        1 => "application/json",
        2 => "multipart/form-data; boundary=x",
        3 => "text/plain",
        _ => "",
    };
    let (query, body) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (rest.get(..i).unwrap_or_default(), rest.get(i + 1..).unwrap_or_default()),
        None => (&[][..], rest),
    };
    let query = std::str::from_utf8(query).ok();
    if let Ok(pairs) = otpgate_core::params::parse(query, ctype, body) {
        for (k, v) in pairs {
            assert!(k.len() + v.len() <= data.len() * 6 + 16);
        }
    }
});
