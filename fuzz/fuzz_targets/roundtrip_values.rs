//! Values built from structured input rather than parsed from text, printed and parsed again:
//! networks of every prefix, ids from random bytes, and time windows over every zone name in
//! `chrono-tz`. Parsing targets rarely reach valid values of every shape; this one starts
//! from them.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::Weekday;
use guardrail_core::guardrail::{Cidr, TimeWindow};
use guardrail_core::ids::{MachineId, OwnerId, ProjectId, SecretId, TokenId, VaultId};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Value {
    V4 {
        address: u32,
        prefix: u8,
    },
    V6 {
        address: u128,
        prefix: u8,
    },
    Ids {
        short: [u8; 12],
        machine: [u8; 16],
        uuid: u128,
    },
    Window {
        start: u16,
        end: u16,
        zone: u16,
        days: u8,
    },
}

fn check_network(address: IpAddr, prefix: u8) {
    // Clear the host bits so that the entry is valid.
    let (network, prefix) = match address {
        IpAddr::V4(v4) => {
            let prefix = prefix % 33;
            let mask = u32::MAX.checked_shl(u32::from(32 - prefix)).unwrap_or(0);
            (IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask)), prefix)
        }
        IpAddr::V6(v6) => {
            let prefix = prefix % 129;
            let mask = u128::MAX.checked_shl(u32::from(128 - prefix)).unwrap_or(0);
            (IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask)), prefix)
        }
    };
    let text = format!("{network}/{prefix}");
    let Ok(cidr) = text.parse::<Cidr>() else {
        // Only networks inside `::ffff:0:0/96` are rejected, with a hint to write them as IPv4.
        let mapped = match network {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some() && prefix >= 96,
            IpAddr::V4(_) => false,
        };
        assert!(mapped, "`{text}` rejected");
        return;
    };
    let printed = cidr.to_string();
    assert_eq!(
        printed.parse::<Cidr>().ok(),
        Some(cidr),
        "`{text}` printed as `{printed}`"
    );
}

fn check_ids(short: &[u8; 12], machine: [u8; 16], uuid: u128) {
    macro_rules! prefixed {
        ($($kind:ty),*) => {$(
            let id = <$kind>::from_random_bytes(short);
            assert_eq!(id.to_string().parse::<$kind>().ok(), Some(id.clone()), "{id}");
        )*};
    }
    prefixed!(VaultId, OwnerId, TokenId, ProjectId, SecretId);

    for id in [
        MachineId::from_random_bytes(machine),
        MachineId::from(uuid::Uuid::from_u128(uuid)),
    ] {
        assert_eq!(id.to_string().parse::<MachineId>().ok(), Some(id), "{id}");
    }
}

fn check_window(start: u16, end: u16, zone: u16, days: u8) {
    let clock = |minutes: u16| {
        let minutes = minutes % (24 * 60 + 1);
        format!("{:02}:{:02}", minutes / 60, minutes % 60)
    };
    let zones = chrono_tz::TZ_VARIANTS;
    let zone = zones[usize::from(zone) % zones.len()];
    let day_names: Vec<&str> = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ]
    .into_iter()
    .filter(|day| days & (1 << day.num_days_from_monday()) != 0)
    .map(guardrail_core::guardrail::window::weekday_name)
    .collect();

    let (start, end) = (clock(start), clock(end));
    let Ok(window) = TimeWindow::new(&start, &end, zone.name(), &day_names) else {
        // Only these three cases may fail: no day, `start` at 24:00, or `start == end`.
        assert!(
            day_names.is_empty() || start == "24:00" || start == end,
            "{start}-{end} {zone}"
        );
        return;
    };
    let json = serde_json::to_string(&window).unwrap_or_default();
    let reparsed = serde_json::from_str::<TimeWindow>(&json);
    assert_eq!(reparsed.ok(), Some(window), "{json}");
}

fuzz_target!(|value: Value| {
    match value {
        Value::V4 { address, prefix } => check_network(IpAddr::V4(Ipv4Addr::from(address)), prefix),
        Value::V6 { address, prefix } => check_network(IpAddr::V6(Ipv6Addr::from(address)), prefix),
        Value::Ids {
            short,
            machine,
            uuid,
        } => check_ids(&short, machine, uuid),
        Value::Window {
            start,
            end,
            zone,
            days,
        } => check_window(start, end, zone, days),
    }
});
