//! Criterion micro-benchmarks of privacyIDEA's JSON envelope as otpgate renders it: the answer
//! of step 1 (a challenge with its detail), of step 2 (accept) and an error.
//! `cargo bench -p otpgate --bench envelope`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::response::IntoResponse;
use criterion::{Criterion, criterion_group, criterion_main};
use otpgate::http::envelope::{self, ApiError};
use otpgate_service::ServiceError;
use otpgate_service::validate::{AuthResponse, Authentication};
use serde_json::{Map, json};
use std::hint::black_box;

fn challenge() -> AuthResponse {
    let mut detail = Map::new();
    detail.insert("message".into(), json!("Enter the OTP from the SMS:"));
    detail.insert("transaction_id".into(), json!("01234567890123456789"));
    detail.insert("transaction_ids".into(), json!(["01234567890123456789"]));
    detail.insert(
        "multi_challenge".into(),
        json!([{"serial": "PISM00112233", "transaction_id": "01234567890123456789",
                "message": "Enter the OTP from the SMS:", "type": "sms", "client_mode": "interactive",
                "attributes": null}]),
    );
    detail.insert("serial".into(), json!("PISM00112233"));
    detail.insert("type".into(), json!("sms"));
    detail.insert("client_mode".into(), json!("interactive"));
    AuthResponse {
        value: json!(false),
        authentication: Authentication::Challenge,
        detail,
    }
}

fn benches(c: &mut Criterion) {
    c.bench_function("envelope: step-1 challenge", |b| {
        b.iter(|| envelope::auth(black_box(challenge()), None))
    });
    c.bench_function("envelope: step-2 accept", |b| {
        b.iter(|| {
            let mut detail = Map::new();
            detail.insert("message".into(), json!("Found matching challenge"));
            detail.insert("serial".into(), json!("PISM00112233"));
            envelope::auth(
                black_box(AuthResponse {
                    value: json!(true),
                    authentication: Authentication::Accept,
                    detail,
                }),
                None,
            )
        })
    });
    c.bench_function("envelope: error", |b| {
        b.iter(|| {
            ApiError::from(black_box(ServiceError::Parameter(
                "Missing parameter: pass".into(),
            )))
            .into_response()
        })
    });
}

criterion_group!(core, benches);
criterion_main!(core);
