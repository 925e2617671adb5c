//! One guardrail decision, step by step and whole, next to a bare Ed25519 `verify_strict` and the
//! same decision in Cedar, all in one run so that the ratios compare like with like.
//!
//! Groups:
//! - `step`: each of steps 1 to 8 alone. Step 9 asks the server's grants and is not part of the
//!   core.
//! - `decision`: a machine with all three axes enabled. `axes_steps_4_to_7` runs the four checks
//!   straight on the axes, the work Cedar is given below. `evaluate_without_signature` runs
//!   `evaluate` on a request without `X-Signature`, so steps 1 to 7 pass and step 8 stops at the
//!   missing header before any cryptography; it includes building that denial and its audit
//!   event, so it bounds the cost of an allowed decision without the signature from above.
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

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityUid, PolicySet, Request,
    RestrictedExpression,
};
use chrono::{DateTime, Datelike, Timelike, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use guardrail_benches::evaluation::{AcceptingNonces, EvaluationFixture};
use guardrail_benches::{
    MACHINE_WINDOW, SOURCE_IP, decide_guardrails, decision_instant, machine_expiry,
};
use guardrail_core::evaluate::{Step, evaluate};
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

    assert!(evaluate(&fixture.evaluation(&SignedRequest::parse(&raw))).is_allowed());
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

/// The machine's policy in Cedar. Cedar cannot quantify over a set of IP ranges held in an
/// attribute, so the ranges are written into the policy; the country list, the weekdays, the
/// window bounds and the expiry are attributes of the machine entity.
const CEDAR_POLICY: &str = r#"
permit (principal, action == Action::"request", resource == Vault::"vault_bench")
when {
    context.now < principal.expiresAt &&
    (context.sourceIp.isInRange(ip("10.0.0.0/8")) ||
     context.sourceIp.isInRange(ip("89.160.20.0/24")) ||
     context.sourceIp.isInRange(ip("192.0.2.0/24")) ||
     context.sourceIp.isInRange(ip("2001:db8::/32"))) &&
    principal.countries.contains(context.country) &&
    principal.days.contains(context.localWeekday) &&
    principal.windowStart <= context.localMinute &&
    context.localMinute < principal.windowEnd
};
"#;

/// Formats an instant in the one UTC form Cedar's `datetime` accepts, `YYYY-MM-DDTHH:MM:SSZ`.
fn cedar_datetime(instant: DateTime<Utc>) -> String {
    instant.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

const MACHINE_UID: &str = r#"Machine::"6f1c2b1e-8a53-4c0e-9a52-2f1d6c3b9e01""#;

fn cedar_entities(expires_at: DateTime<Utc>) -> Entities {
    let (start, end, _, days) = MACHINE_WINDOW;
    let minutes = |text: &str| {
        let (hours, minutes) = text.split_once(':').expect("HH:MM");
        i64::from_str(hours).expect("hours") * 60 + i64::from_str(minutes).expect("minutes")
    };
    let attributes = HashMap::from([
        (
            "expiresAt".to_owned(),
            RestrictedExpression::new_datetime(cedar_datetime(expires_at)),
        ),
        (
            "countries".to_owned(),
            RestrictedExpression::new_set(
                guardrail_benches::MACHINE_COUNTRIES
                    .map(|code| RestrictedExpression::new_string(code.to_owned())),
            ),
        ),
        (
            "days".to_owned(),
            RestrictedExpression::new_set(
                days.map(|day| RestrictedExpression::new_string(day.to_owned())),
            ),
        ),
        (
            "windowStart".to_owned(),
            RestrictedExpression::new_long(minutes(start)),
        ),
        (
            "windowEnd".to_owned(),
            RestrictedExpression::new_long(minutes(end)),
        ),
    ]);
    let machine = Entity::new(
        EntityUid::from_str(MACHINE_UID).expect("machine uid"),
        attributes,
        HashSet::new(),
    )
    .expect("machine entity");
    Entities::from_entities([machine], None).expect("entities")
}

/// Builds Cedar's request for one decision. The caller resolves the country and converts `now`
/// to the window's zone, which Cedar cannot do.
fn cedar_request(now: DateTime<Utc>, country: &str) -> Request {
    let local = now.with_timezone(&chrono_tz::Europe::Copenhagen);
    let weekday = guardrail_core::guardrail::window::weekday_name(local.weekday());
    let minute = i64::from(local.hour() * 60 + local.minute());
    let context = Context::from_pairs([
        (
            "now".to_owned(),
            RestrictedExpression::new_datetime(cedar_datetime(now)),
        ),
        (
            "sourceIp".to_owned(),
            RestrictedExpression::new_ip(SOURCE_IP.to_string()),
        ),
        (
            "country".to_owned(),
            RestrictedExpression::new_string(country.to_owned()),
        ),
        (
            "localWeekday".to_owned(),
            RestrictedExpression::new_string(weekday.to_owned()),
        ),
        (
            "localMinute".to_owned(),
            RestrictedExpression::new_long(minute),
        ),
    ])
    .expect("context");
    Request::new(
        EntityUid::from_str(MACHINE_UID).expect("principal"),
        EntityUid::from_str(r#"Action::"request""#).expect("action"),
        EntityUid::from_str(r#"Vault::"vault_bench""#).expect("resource"),
        context,
        None,
    )
    .expect("request")
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
