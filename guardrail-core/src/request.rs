//! Signed machine requests: payload, signature, timestamp and nonce (step 8).

use chrono::{DateTime, Utc};

use crate::ids::MachineId;

/// Whether a nonce was new or had been seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceOutcome {
    /// The nonce was recorded now.
    Recorded,
    /// The nonce was already recorded for this machine: the request is a replay.
    Replayed,
}

/// The nonce store could not answer, or is full of unexpired nonces. The request fails closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("nonce store unavailable: {reason}")]
pub struct NonceStoreError {
    reason: String,
}

impl NonceStoreError {
    /// Makes an error with a reason for the logs; the client never sees it.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// Replay protection, implemented by the store.
///
/// The evaluator calls it only after the signature verified, so an attacker without the key
/// cannot fill it.
pub trait NonceStore {
    /// Records `nonce` for `machine` unless it is already recorded, atomically, and keeps it at
    /// least until `keep_until` (the nonce's own timestamp plus the allowed skew). `now` is the
    /// transport clock, which implementations may use to drop nonces whose `keep_until` passed.
    /// An unexpired nonce is never evicted: a store that is full must return an error.
    ///
    /// # Errors
    ///
    /// [`NonceStoreError`] when the store cannot decide; the request is then rejected.
    fn insert_if_absent(
        &self,
        machine: MachineId,
        nonce: &str,
        keep_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<NonceOutcome, NonceStoreError>;
}
