//! Criterion micro-benchmarks of the hot paths in core: HOTP, PIN verification (the default
//! OWASP Argon2id parameters and the minimal ones), request-parameter parsing, SMS text
//! rendering and phone number parsing. `cargo bench -p otpgate-core`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use otpgate_core::hotp::{HashLib, hotp, otp_eq};
use otpgate_core::pin::PinParams;
use otpgate_core::template::{Tags, render_sms_text};
use std::hint::black_box;

fn benches(c: &mut Criterion) {
    let key = [7u8; 20];
    c.bench_function("hotp sha1 6 digits", |b| {
        b.iter(|| hotp(black_box(&key), black_box(4711), 6, HashLib::Sha1).unwrap())
    });
    c.bench_function("otp_eq (constant time)", |b| {
        b.iter(|| otp_eq(black_box("123456"), black_box("123457")))
    });

    let default_hash = PinParams::default().hash("pin1234").unwrap();
    let minimal_hash = PinParams::minimal().hash("pin1234").unwrap();
    let mut g = c.benchmark_group("pin verify");
    g.sample_size(10);
    g.bench_function("argon2id OWASP (19 MiB, t=2)", |b| {
        b.iter(|| otpgate_core::pin::verify(black_box("pin1234"), black_box(&default_hash)))
    });
    g.bench_function("argon2id minimal (8 KiB, t=1)", |b| {
        b.iter(|| otpgate_core::pin::verify(black_box("pin1234"), black_box(&minimal_hash)))
    });
    // An imported privacyIDEA 3.14 hash at its defaults (passlib: 64 MiB, 9 passes, 4 lanes),
    // until the first right PIN replaces it.
    let privacyidea_hash = PinParams {
        memory_kib: 65_536,
        iterations: 9,
        parallelism: 4,
    }
    .hash("pin1234")
    .unwrap();
    g.bench_function("argon2id privacyIDEA default (64 MiB, t=9, p=4)", |b| {
        b.iter(|| otpgate_core::pin::verify(black_box("pin1234"), black_box(&privacyidea_hash)))
    });
    let pbkdf2 = "$pbkdf2-sha512$25000$qXUuZSzlPCektDbmHCOEkA$TU2IuyZJKUW1p7ZFTl8zy/s4UH5Lodzn6Ovph.3FQCWagOgswYWpSnzgrJ9L1RjQxSP6GwZBLMzhUkvoPzyHdg";
    g.bench_function("pbkdf2-sha512 imported (25000 rounds)", |b| {
        b.iter(|| otpgate_core::pin::verify(black_box("pin1234"), black_box(pbkdf2)))
    });
    g.finish();

    let form =
        b"user=user0042&pass=pinuser0042&realm=benchrealm&transaction_id=01234567890123456789";
    c.bench_function("params: form body", |b| {
        b.iter(|| {
            otpgate_core::params::parse(None, "application/x-www-form-urlencoded", black_box(form))
                .unwrap()
        })
    });
    let json =
        br#"{"user":"user0042","pass":"pinuser0042","transaction_id":"01234567890123456789"}"#;
    c.bench_function("params: JSON body", |b| {
        b.iter(|| otpgate_core::params::parse(None, "application/json", black_box(json)).unwrap())
    });

    let mut tags = Tags::new();
    tags.insert("otp", "123456".into());
    tags.insert("serial", "PISM00001234".into());
    tags.insert("user", "alice".into());
    c.bench_function("sms text render", |b| {
        b.iter(|| {
            render_sms_text(black_box("Your OTP for {user} is {otp} ({serial})"), &tags).unwrap()
        })
    });
    c.bench_function("phone number parse (libphonenumber)", |b| {
        b.iter(|| otpgate_core::number::parse(black_box("+49 151 23456789"), None).unwrap())
    });
}

criterion_group!(core, benches);
criterion_main!(core);
