//! Fuzzes phone number parsing (libphonenumber metadata) and every notation of a parsed number.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otpgate_core::number::{Notation, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    for region in [None, Some("DE"), Some("US")] {
        if let Ok(n) = parse(raw, region) {
            for notation in ["e164", "digits", "00", "national"] {
                if let Some(nt) = Notation::from_name(notation) {
                    let _ = n.to_notation(nt);
                }
            }
        }
    }
});
