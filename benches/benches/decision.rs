//! One guardrail decision, step by step and whole, next to a bare Ed25519 `verify_strict` and the
//! same decision in Cedar, all in one run so that the ratios compare like with like.
//!
//! Groups:
//! - `step`: each of steps 1 to 8 alone. Step 9 reads the server's grants and is not part of the
//!   core.
//! - `decision`: a machine with all three axes enabled. `axes_steps_4_to_7` runs the four checks
//!   straight on the axes, the work Cedar is given below. `evaluate_guardrails_allowed` runs
//!   steps 1 to 7 of the evaluator through `evaluate_guardrails` on a request that passes them,
//!   the whole decision except the signature and the route. `evaluate_without_signature` runs
//!   `evaluate` on a request without `X-Signature`, so steps 1 to 7 pass and step 8 stops at the
//!   missing header before any cryptography; it includes building that denial and its audit
//!   event.
//!   `evaluate_with_signature` parses the headers (base64 decoding, SHA-256 of the body) and runs
//!   the whole evaluation to an allowed decision, next to a bare `verify_strict` of the same
//!   signed bytes.
//! - `cedar`: Cedar's `is_authorized` on a prepared request, and building the request, context
//!   and entities plus authorizing.
//!
//! Cedar has no IANA time zones and no GeoIP lookup, so its caller passes the local weekday,
//! the local minute of the day and the country in the context. Guardrail's figures include that
//! work; Cedar's do not.

#![expect(
    clippy::expect_used,
    reason = "benchmark setup fails loudly on a broken fixture"
)]

#[path = "peer/cedar.rs"]
mod cedar_peer;

use std::hint::black_box;
use std::str::FromStr;

use cedar_peer::{CEDAR_POLICY, cedar_entities, cedar_request};
use cedar_policy::{Authorizer, Decision, PolicySet};
use criterion::{Criterion, criterion_group, criterion_main};
use guardrail_benches::evaluation::{AcceptingNonces, EvaluationFixture};
use guardrail_benches::{SOURCE_IP, decide_guardrails, decision_instant, machine_expiry};
use guardrail_core::evaluate::{Step, evaluate, evaluate_guardrails};
use guardrail_core::guardrail::{CountryLookup, CountryResolver};
use guardrail_core::machine::MachineState;
use guardrail_core::request::{MaxSkew, RawRequest, SignedRequest};

fn steps(c: &mut Criterion) {
    let fixture = EvaluationFixture::new().expect("evaluation fixture");
    let guardrails = &fixture.machine.guardrails;
    let (now, expires_at) = (fixture.now, fixture.machine.expires_at);
    let vault_list = fixture
        .vault
        .ip_allowlist
        .as_ref()
        .expect("vault allowlist");
    let allowlist = guardrails.ip_allowlist.as_ref().expect("IP axis enabled");
    let countries = guardrails.countries.as_ref().expect("geo axis enabled");
    let window = guardrails.time_window.as_ref().expect("time axis enabled");
    let request = SignedRequest::parse(&fixture.signed.raw());
    let key = fixture.machine.public_key.verifying_key();

    let mut group = c.benchmark_group("step");
    // Steps 1 and 3 compare fields of records the caller loaded; they are measured as the
    // evaluator writes them.
    group.bench_function("1_owner_active", |b| {
        b.iter(|| {
            let record = black_box(&fixture);
            black_box(
                record.machine.vault_id == record.vault.id
                    && record.vault.owner_id == record.owner.id
                    && record.owner.active,
            )
        });
    });
    group.bench_function("2_vault_ip_allowlist", |b| {
        b.iter(|| black_box(vault_list.contains(black_box(SOURCE_IP))));
    });
    group.bench_function("3_machine_enabled", |b| {
        b.iter(|| black_box(black_box(&fixture.machine).state == MachineState::Active));
    });
    group.bench_function("4_expiry", |b| {
        b.iter(|| black_box(black_box(now) < black_box(expires_at)));
    });
    group.bench_function("5_ip_allowlist", |b| {
        b.iter(|| black_box(allowlist.contains(black_box(SOURCE_IP))));
    });
    group.bench_function("6_country", |b| {
        b.iter(|| {
            let allowed = match fixture.resolver.resolve(black_box(SOURCE_IP)) {
                CountryLookup::Country(code) => countries.contains(code),
                CountryLookup::Undetermined(_) => false,
            };
            black_box(allowed)
        });
    });
    group.bench_function("7_time_window", |b| {
        b.iter(|| black_box(window.check(black_box(now)).is_ok()));
    });
    group.bench_function("8_parse_headers_and_hash_body", |b| {
        b.iter(|| black_box(SignedRequest::parse(black_box(&fixture.signed.raw()))));
    });
    group.bench_function("8_verify", |b| {
        b.iter(|| {
            black_box(black_box(&request).verify(
                fixture.machine.id,
                key,
                now,
                MaxSkew::default(),
                &AcceptingNonces,
            ))
        });
    });
    group.finish();
}

fn decisions(c: &mut Criterion) {
    let fixture = EvaluationFixture::new().expect("evaluation fixture");
    let (now, expires_at) = (fixture.now, fixture.machine.expires_at);
    let guardrails = &fixture.machine.guardrails;
    let raw = fixture.signed.raw();
    let unsigned = SignedRequest::parse(&RawRequest {
        signature: None,
        ..raw
    });

    let signed = SignedRequest::parse(&raw);
    assert!(evaluate(&fixture.evaluation(&signed)).is_allowed());
    assert!(evaluate_guardrails(&fixture.evaluation(&signed)).is_ok());
    let without_signature = evaluate(&fixture.evaluation(&unsigned));
    assert_eq!(without_signature.failed_step(), Some(Step::Signature));
    assert_eq!(
        decide_guardrails(guardrails, expires_at, &fixture.resolver, SOURCE_IP, now),
        Ok(())
    );

    let mut group = c.benchmark_group("decision");
    group.bench_function("axes_steps_4_to_7", |b| {
        b.iter(|| {
            black_box(decide_guardrails(
                black_box(guardrails),
                expires_at,
                &fixture.resolver,
                black_box(SOURCE_IP),
                black_box(now),
            ))
        });
    });
    group.bench_function("evaluate_guardrails_allowed", |b| {
        b.iter(|| black_box(evaluate_guardrails(&fixture.evaluation(black_box(&signed))).is_ok()));
    });
    group.bench_function("evaluate_without_signature", |b| {
        b.iter(|| black_box(evaluate(&fixture.evaluation(black_box(&unsigned)))));
    });
    group.bench_function("bare_verify_strict", |b| {
        b.iter(|| {
            black_box(fixture.signed.signing_key.verifying_key().verify_strict(
                black_box(&fixture.signed.payload),
                &fixture.signed.signature,
            ))
        });
    });
    group.bench_function("evaluate_with_signature", |b| {
        b.iter(|| {
            let request = SignedRequest::parse(black_box(&raw));
            black_box(evaluate(&fixture.evaluation(&request)))
        });
    });
    group.finish();
}

fn cedar(c: &mut Criterion) {
    let policies = PolicySet::from_str(CEDAR_POLICY).expect("Cedar policy");
    let authorizer = Authorizer::new();
    let (now, expires_at) = (decision_instant(), machine_expiry());
    let entities = cedar_entities(expires_at);
    let request = cedar_request(now, "SE");

    assert_eq!(
        authorizer
            .is_authorized(&request, &policies, &entities)
            .decision(),
        Decision::Allow
    );
    let late = cedar_request(expires_at, "SE");
    assert_eq!(
        authorizer
            .is_authorized(&late, &policies, &entities)
            .decision(),
        Decision::Deny
    );

    let mut group = c.benchmark_group("cedar");
    group.bench_function("is_authorized", |b| {
        b.iter(|| {
            black_box(
                authorizer
                    .is_authorized(black_box(&request), &policies, &entities)
                    .decision(),
            )
        });
    });
    group.bench_function("build_and_authorize", |b| {
        b.iter(|| {
            let entities = cedar_entities(black_box(expires_at));
            let request = cedar_request(black_box(now), black_box("SE"));
            black_box(
                authorizer
                    .is_authorized(&request, &policies, &entities)
                    .decision(),
            )
        });
    });
    group.finish();
}

criterion_group!(benches, steps, decisions, cedar);
criterion_main!(benches);
