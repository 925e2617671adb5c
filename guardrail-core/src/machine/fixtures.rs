//! A registered machine for the lifecycle unit tests.

use chrono::{DateTime, Utc};

use super::{Machine, MachinePublicKey, MachineState, register_machine};
use crate::lifetime::Lifetime;
use crate::plan::Plan;
use crate::token::check_redemption;
use crate::token::fixtures::{issued, vault};

/// The Ed25519 base point, a valid key of prime order (RFC 8032, section 5.1).
pub(crate) fn public_key() -> MachinePublicKey {
    let mut bytes = [0x66; 32];
    bytes[0] = 0x58;
    MachinePublicKey::from_bytes(&bytes).unwrap()
}

/// A machine registered at `now` with `lifetime`, in the given state.
pub(crate) fn machine(lifetime: Lifetime, now: DateTime<Utc>, state: MachineState) -> Machine {
    let (token, plaintext) = issued(lifetime, now);
    let vault_id = token.vault_id.clone();
    let proof = check_redemption(Some(token), &plaintext, &vault_id, now).unwrap();
    let registration =
        register_machine(proof, public_key(), &vault(Plan::Pro, 10), 0, [9; 16], now).unwrap();
    Machine {
        state,
        ..registration.machine
    }
}
