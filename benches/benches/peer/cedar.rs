//! The peer: the decision of the `decision` benchmark written for Cedar's authorizer.
//!
//! Cedar has no IANA time zones and no GeoIP lookup, so the caller converts `now` to the
//! window's zone and passes the local weekday and minute of the day, and it resolves the country
//! before asking. Cedar cannot quantify over a set of ranges held in an attribute either, so the
//! machine's CIDRs are written into its policy.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{Context, Entities, Entity, EntityUid, Request, RestrictedExpression};
use chrono::{DateTime, Datelike, Timelike, Utc};
use guardrail_benches::{MACHINE_COUNTRIES, MACHINE_WINDOW, SOURCE_IP};

/// The machine's policy in Cedar. Cedar cannot quantify over a set of IP ranges held in an
/// attribute, so the ranges are written into the policy. The country list, the weekdays, the
/// window bounds and the expiry are attributes of the machine entity.
pub const CEDAR_POLICY: &str = r#"
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

pub fn cedar_entities(expires_at: DateTime<Utc>) -> Entities {
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
                MACHINE_COUNTRIES.map(|code| RestrictedExpression::new_string(code.to_owned())),
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
pub fn cedar_request(now: DateTime<Utc>, country: &str) -> Request {
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
