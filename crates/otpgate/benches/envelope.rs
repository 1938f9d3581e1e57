//! Criterion micro-benchmarks of privacyIDEA's JSON envelope as otpgate renders it from the
//! service's typed outcomes: the answer of step 1 (a challenge with its detail), of step 2
//! (accept) and an error. `cargo bench -p otpgate --bench envelope`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::response::IntoResponse;
use criterion::{Criterion, criterion_group, criterion_main};
use otpgate::http::envelope::ApiError;
use otpgate::http::validate::check_answer;
use otpgate_service::ServiceError;
use otpgate_service::validate::{
    Challenges, CheckOutcome, Checked, DEFAULT_PROMPT, SentChallenge, Shown, TokenRef,
};
use std::hint::black_box;

fn shown(outcome: CheckOutcome) -> Checked {
    Checked {
        outcome,
        shown: Shown::default(),
    }
}

fn challenge() -> Checked {
    shown(CheckOutcome::Challenge(Challenges {
        transaction_id: "01234567890123456789".into(),
        sent: vec![SentChallenge {
            serial: "PISM00112233".into(),
            prompt: DEFAULT_PROMPT.into(),
            valid_until_ms: 1_800_000_000_000,
            gateway: Some("gw".into()),
            to: String::new(),
        }],
        messages: vec![DEFAULT_PROMPT.into()],
        preferred_client_mode: "interactive".into(),
        ..Default::default()
    }))
}

fn benches(c: &mut Criterion) {
    c.bench_function("envelope: step-1 challenge", |b| {
        b.iter(|| check_answer(black_box(&challenge()), None))
    });
    c.bench_function("envelope: step-2 accept", |b| {
        b.iter(|| {
            let accept = shown(CheckOutcome::Accept {
                message: "Found matching challenge".into(),
                token: Some(TokenRef {
                    serial: "PISM00112233".into(),
                    otplen: None,
                }),
            });
            check_answer(black_box(&accept), None)
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
