//! Identifiers of vaults, owners, machines, tokens, projects and secrets.
//!
//! Every id is a newtype whose `Display` output parses back to the same value with `FromStr`.
//! The formats follow the ones SikkerKey's official clients assume: `vault_` followed by
//! lower-case letters and digits, a lower-case hyphenated UUID for machines, and `proj_` or `sk_`
//! followed by at least ten ASCII letters and digits. The core draws no random numbers of its own,
//! so new ids are made from bytes the caller supplies.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Maximum length of a textual id, prefix included.
pub const MAX_ID_LEN: usize = 64;

/// An id that failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id `{value}`: expected {expected}")]
pub struct IdError {
    kind: &'static str,
    value: String,
    expected: &'static str,
}

impl IdError {
    fn new(kind: &'static str, value: &str, expected: &'static str) -> Self {
        // The rejected value is echoed back in messages, so keep it short and printable.
        let value: String = value
            .chars()
            .take(MAX_ID_LEN + 8)
            .flat_map(char::escape_default)
            .collect();
        Self {
            kind,
            value,
            expected,
        }
    }

    /// The kind of id that failed to parse, such as `vault` or `machine`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }
}

fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// The characters allowed after an id's prefix.
#[derive(Clone, Copy)]
enum Body {
    /// Lower-case ASCII letters and digits, at least one.
    LowerAlphanumeric,
    /// ASCII letters and digits of either case, at least ten.
    AlphanumericMin10,
}

fn check_prefixed(
    kind: &'static str,
    prefix: &str,
    body: Body,
    expected: &'static str,
    value: &str,
) -> Result<(), IdError> {
    let rest = value
        .strip_prefix(prefix)
        .ok_or_else(|| IdError::new(kind, value, expected))?;
    let valid = value.len() <= MAX_ID_LEN
        && match body {
            Body::LowerAlphanumeric => {
                !rest.is_empty()
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            }
            Body::AlphanumericMin10 => {
                rest.len() >= 10 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
            }
        };
    if valid {
        Ok(())
    } else {
        Err(IdError::new(kind, value, expected))
    }
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $prefix:literal, $body:expr, $expected:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// Makes a new id from random bytes the caller drew from a CSPRNG.
            pub fn from_random_bytes(bytes: &[u8; 12]) -> Self {
                Self(format!("{}{}", $prefix, lower_hex(bytes)))
            }

            /// The id as text, prefix included.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(value: &str) -> Result<Self, IdError> {
                check_prefixed($kind, $prefix, $body, $expected, value)?;
                Ok(Self(value.to_owned()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_id!(
    /// A vault: `vault_` followed by lower-case letters and digits, at most 64 characters in all.
    VaultId,
    "vault",
    "vault_",
    Body::LowerAlphanumeric,
    "`vault_` followed by lower-case letters and digits"
);
prefixed_id!(
    /// A vault owner account: `owner_` followed by lower-case letters and digits.
    OwnerId,
    "owner",
    "owner_",
    Body::LowerAlphanumeric,
    "`owner_` followed by lower-case letters and digits"
);
prefixed_id!(
    /// A bootstrap token's public handle (never its secret): `tok_` followed by lower-case
    /// letters and digits.
    TokenId,
    "token",
    "tok_",
    Body::LowerAlphanumeric,
    "`tok_` followed by lower-case letters and digits"
);
prefixed_id!(
    /// A project: `proj_` followed by at least ten ASCII letters and digits.
    ProjectId,
    "project",
    "proj_",
    Body::AlphanumericMin10,
    "`proj_` followed by at least 10 letters and digits"
);
prefixed_id!(
    /// A secret: `sk_` followed by at least ten ASCII letters and digits.
    SecretId,
    "secret",
    "sk_",
    Body::AlphanumericMin10,
    "`sk_` followed by at least 10 letters and digits"
);

/// A machine: a UUID, written in lower-case hyphenated form.
///
/// Parsing accepts only the 36-character hyphenated form, in either case, so that one machine has
/// one spelling on the wire. `Display` always writes lower case, the canonical form that replay
/// protection and lockouts are keyed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MachineId(Uuid);

impl MachineId {
    /// Makes a random (version 4) machine id from bytes the caller drew from a CSPRNG.
    pub fn from_random_bytes(bytes: [u8; 16]) -> Self {
        Self(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }

    /// The UUID inside.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for MachineId {
    fn from(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

impl FromStr for MachineId {
    type Err = IdError;

    fn from_str(value: &str) -> Result<Self, IdError> {
        const EXPECTED: &str = "a hyphenated UUID such as `6f1c2a4e-0b7d-4c1e-9a35-2f0d8c7b6e51`";
        let hyphens_ok = value.len() == 36
            && value.bytes().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_hexdigit(),
            });
        if !hyphens_ok {
            return Err(IdError::new("machine", value, EXPECTED));
        }
        Uuid::parse_str(value)
            .map(Self)
            .map_err(|_| IdError::new("machine", value, EXPECTED))
    }
}

impl fmt::Display for MachineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl Serialize for MachineId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MachineId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn vault_id_accepts_lower_alphanumeric() {
        let id: VaultId = "vault_abc123".parse().unwrap();
        assert_eq!(id.to_string(), "vault_abc123");
    }

    #[test]
    fn vault_id_rejects_bad_forms() {
        for bad in [
            "",
            "vault_",
            "vault_ABC",
            "Vault_abc",
            "vault_a-b",
            "abc",
            "vault_ab c",
        ] {
            let err = bad.parse::<VaultId>().unwrap_err();
            assert!(
                err.to_string().starts_with("invalid vault id `"),
                "{bad:?}: {err}"
            );
        }
        let long = format!("vault_{}", "a".repeat(MAX_ID_LEN));
        assert!(long.parse::<VaultId>().is_err());
    }

    #[test]
    fn vault_id_error_names_value() {
        let err = "vault_ABC".parse::<VaultId>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid vault id `vault_ABC`: expected `vault_` followed by lower-case letters and digits"
        );
    }

    #[test]
    fn secret_and_project_ids_need_ten_characters() {
        assert!("sk_abcdefghij".parse::<SecretId>().is_ok());
        assert!("sk_ABCdef1234".parse::<SecretId>().is_ok());
        assert!("sk_abcdefghi".parse::<SecretId>().is_err());
        assert!("proj_0123456789".parse::<ProjectId>().is_ok());
        let err = "proj_short".parse::<ProjectId>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid project id `proj_short`: expected `proj_` followed by at least 10 letters and digits"
        );
    }

    #[test]
    fn machine_id_canonical_lower_case() {
        let upper: MachineId = "6F1C2A4E-0B7D-4C1E-9A35-2F0D8C7B6E51".parse().unwrap();
        assert_eq!(upper.to_string(), "6f1c2a4e-0b7d-4c1e-9a35-2f0d8c7b6e51");
    }

    #[test]
    fn machine_id_rejects_other_uuid_forms() {
        for bad in [
            "6f1c2a4e0b7d4c1e9a352f0d8c7b6e51",
            "{6f1c2a4e-0b7d-4c1e-9a35-2f0d8c7b6e51}",
            "urn:uuid:6f1c2a4e-0b7d-4c1e-9a35-2f0d8c7b6e51",
            " 6f1c2a4e-0b7d-4c1e-9a35-2f0d8c7b6e51",
            "6f1c2a4e-0b7d-4c1e-9a35-2f0d8c7b6e5g",
        ] {
            let err = bad.parse::<MachineId>().unwrap_err();
            assert!(err.to_string().starts_with("invalid machine id"), "{err}");
        }
    }

    #[test]
    fn random_ids_parse_back() {
        let vault = VaultId::from_random_bytes(&[0xab; 12]);
        assert_eq!(vault.as_str(), "vault_abababababababababababab");
        assert_eq!(vault.to_string().parse::<VaultId>().unwrap(), vault);
        let secret = SecretId::from_random_bytes(&[7; 12]);
        assert_eq!(secret.to_string().parse::<SecretId>().unwrap(), secret);
        let machine = MachineId::from_random_bytes([0x5a; 16]);
        assert_eq!(machine.as_uuid().get_version_num(), 4);
    }

    #[test]
    fn ids_serialize_as_strings() {
        let machine: MachineId = "6f1c2a4e-0b7d-4c1e-9a35-2f0d8c7b6e51".parse().unwrap();
        let json = serde_json::to_string(&machine).unwrap();
        assert_eq!(json, "\"6f1c2a4e-0b7d-4c1e-9a35-2f0d8c7b6e51\"");
        let err = serde_json::from_str::<VaultId>("\"nope\"").unwrap_err();
        assert!(err.to_string().contains("invalid vault id `nope`"));
    }

    proptest! {
        #[test]
        fn vault_id_round_trips(body in "[a-z0-9]{1,58}") {
            let text = format!("vault_{body}");
            let id: VaultId = text.parse().unwrap();
            prop_assert_eq!(id.to_string(), text);
        }

        #[test]
        fn machine_id_round_trips(bytes in any::<[u8; 16]>()) {
            let id = MachineId::from(Uuid::from_bytes(bytes));
            prop_assert_eq!(id.to_string().parse::<MachineId>().unwrap(), id);
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,80}") {
            let _ = text.parse::<VaultId>();
            let _ = text.parse::<MachineId>();
            let _ = text.parse::<SecretId>();
        }
    }
}
