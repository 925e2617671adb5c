//! Runs one case of the `decision` benchmark a given number of times, for counting instructions
//! under `valgrind --tool=callgrind`, which gives the same count whatever else the machine runs.
//!
//! `benches/instruction_counts.sh` runs every case twice, with 0 and with N iterations, and
//! divides the difference by N, so that the setup (loading the MaxMind database, signing the
//! request) cancels out.
//!
//! Usage: `instruction_counts CASE ITERATIONS`, with CASE one of the names in `CASES`.

#![expect(
    clippy::expect_used,
    reason = "benchmark setup fails loudly on a broken fixture"
)]

#[path = "../benches/peer/cedar.rs"]
mod cedar_peer;

use std::hint::black_box;
use std::str::FromStr;

use cedar_peer::{CEDAR_POLICY, cedar_entities, cedar_request};
use cedar_policy::{Authorizer, PolicySet};
use guardrail_benches::evaluation::EvaluationFixture;
use guardrail_benches::{SOURCE_IP, decide_guardrails, decision_instant, machine_expiry};
use guardrail_core::evaluate::evaluate;
use guardrail_core::request::{RawRequest, SignedRequest};

const CASES: [&str; 7] = [
    "axes_steps_4_to_7",
    "parse_headers_and_hash_body",
    "evaluate_without_signature",
    "bare_verify_strict",
    "evaluate_with_signature",
    "cedar_is_authorized",
    "cedar_build_and_authorize",
];

fn main() {
    let mut arguments = std::env::args().skip(1);
    let case = arguments.next().unwrap_or_default();
    let iterations: u32 = arguments
        .next()
        .and_then(|text| text.parse().ok())
        .expect("usage: instruction_counts CASE ITERATIONS");

    let fixture = EvaluationFixture::new().expect("evaluation fixture");
    let raw = fixture.signed.raw();
    let unsigned = SignedRequest::parse(&RawRequest {
        signature: None,
        ..raw
    });
    let policies = PolicySet::from_str(CEDAR_POLICY).expect("Cedar policy");
    let authorizer = Authorizer::new();
    let (now, expires_at) = (decision_instant(), machine_expiry());
    let entities = cedar_entities(expires_at);
    let request = cedar_request(now, "SE");
    let verifying_key = fixture.signed.signing_key.verifying_key();

    for _ in 0..iterations {
        match case.as_str() {
            "axes_steps_4_to_7" => {
                black_box(decide_guardrails(
                    black_box(&fixture.machine.guardrails),
                    expires_at,
                    &fixture.resolver,
                    black_box(SOURCE_IP),
                    black_box(now),
                ))
                .ok();
            }
            "parse_headers_and_hash_body" => {
                black_box(SignedRequest::parse(black_box(&raw)));
            }
            "evaluate_without_signature" => {
                black_box(evaluate(&fixture.evaluation(black_box(&unsigned))));
            }
            "bare_verify_strict" => {
                black_box(verifying_key.verify_strict(
                    black_box(&fixture.signed.payload),
                    &fixture.signed.signature,
                ))
                .ok();
            }
            "evaluate_with_signature" => {
                let parsed = SignedRequest::parse(black_box(&raw));
                black_box(evaluate(&fixture.evaluation(&parsed)));
            }
            "cedar_is_authorized" => {
                black_box(authorizer.is_authorized(black_box(&request), &policies, &entities));
            }
            "cedar_build_and_authorize" => {
                let entities = cedar_entities(black_box(expires_at));
                let request = cedar_request(black_box(now), black_box("SE"));
                black_box(authorizer.is_authorized(&request, &policies, &entities));
            }
            _ => {
                eprintln!("unknown case `{case}`: expected one of {CASES:?}");
                std::process::exit(2);
            }
        }
    }
}
