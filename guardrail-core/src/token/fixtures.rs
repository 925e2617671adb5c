//! Shared values for the lifecycle unit tests.

use chrono::{DateTime, TimeZone, Utc};

use super::{TokenPlaintext, TokenRandomness, TokenRequest, issue_token};
use crate::guardrail::Guardrails;
use crate::ids::{OwnerId, VaultId};
use crate::lifetime::Lifetime;
use crate::plan::{Plan, Vault};

pub(crate) const SECRET: [u8; 32] = [0x11; 32];

pub(crate) fn at(y: i32, mo: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).unwrap()
}

pub(crate) fn owner() -> OwnerId {
    "owner_alice".parse().unwrap()
}

pub(crate) fn vault(plan: Plan, machine_limit: u32) -> Vault {
    Vault {
        id: "vault_main".parse::<VaultId>().unwrap(),
        owner_id: owner(),
        name: "main".to_owned(),
        plan,
        machine_limit,
        ip_allowlist: None,
    }
}

pub(crate) fn request(lifetime: Lifetime) -> TokenRequest {
    TokenRequest {
        machine_name: "  pentest-q3 ".to_owned(),
        description: Some("external pen test".to_owned()),
        machine_lifetime: lifetime,
        token_lifetime_hours: None,
        guardrails: Guardrails::default(),
    }
}

/// Issues a pro-vault token with the given machine lifetime and returns it with its plaintext.
pub(crate) fn issued(
    lifetime: Lifetime,
    now: DateTime<Utc>,
) -> (super::BootstrapToken, TokenPlaintext) {
    let randomness = TokenRandomness {
        id: [1; 12],
        secret: &SECRET,
    };
    let issued = issue_token(
        &vault(Plan::Pro, 10),
        &owner(),
        request(lifetime),
        randomness,
        now,
    )
    .unwrap();
    (issued.token, issued.plaintext)
}
