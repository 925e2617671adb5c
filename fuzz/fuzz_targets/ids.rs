//! Every id kind from text and from JSON: parse, print and parse again.

#![no_main]

use std::fmt::Display;
use std::str::FromStr;

use guardrail_core::ids::{MachineId, OwnerId, ProjectId, SecretId, TokenId, VaultId};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T>(text: &str)
where
    T: FromStr + Display + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned,
    T::Err: Display,
{
    let from_json = serde_json::from_str::<T>(&format!("{text:?}"));
    let Ok(id) = text.parse::<T>() else {
        assert!(
            from_json.is_err(),
            "JSON accepted `{text}`, which FromStr rejects"
        );
        return;
    };
    assert_eq!(from_json.ok().as_ref(), Some(&id));

    let printed = id.to_string();
    assert_eq!(
        printed.parse::<T>().ok().as_ref(),
        Some(&id),
        "`{text}` printed as `{printed}`"
    );
    let json = serde_json::to_string(&id).unwrap_or_default();
    assert_eq!(
        serde_json::from_str::<T>(&json).ok().as_ref(),
        Some(&id),
        "{json}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((kind, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match kind % 6 {
        0 => round_trip::<VaultId>(text),
        1 => round_trip::<OwnerId>(text),
        2 => round_trip::<TokenId>(text),
        3 => round_trip::<ProjectId>(text),
        4 => round_trip::<SecretId>(text),
        _ => {
            round_trip::<MachineId>(text);
            // The canonical form is lower case, whatever case was sent.
            if let Ok(id) = text.parse::<MachineId>() {
                assert_eq!(id.to_string(), text.to_ascii_lowercase());
            }
        }
    }
});
