//! Fuzzes the RADIUS decoder and everything the server does with an untrusted datagram
//! before it answers: decode, re-encode, Message-Authenticator check, password reveal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otpgate_radius::{auth, packet};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = packet::decode(data) {
        if let Ok(bytes) = packet::encode(&p) {
            assert_eq!(packet::decode(&bytes).ok().as_ref(), Some(&p));
        }
        let _ = auth::verify_request(data, &p, b"fuzz-secret", true);
        if let Some(hidden) = p.get(packet::attr::USER_PASSWORD) {
            let _ = auth::unhide_password(hidden, b"fuzz-secret", &p.authenticator);
        }
        let _ = auth::verify_reply(data, &p.authenticator, b"fuzz-secret");
    }
});
