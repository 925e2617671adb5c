//! Writing audit events, folding repeated guardrail blocks, and sending the alerts subscribed to
//! what was written.
//!
//! # Alert subscriptions
//!
//! A webhook receives the entries whose action it lists. A subscription created without actions
//! (an empty or missing `actions` list) is stored with `temp_machine_blocked`, which is how that
//! action is subscribed by default. A coalesced block sends one alert, for the entry it starts;
//! repeats that only raise the entry's count send none, so a flood does not flood the receiver.
//!
//! # Coalescing
//!
//! The core's [`coalesce_block`] decides whether a block starts a new entry or counts on the
//! last one, from that entry's first instant, which the store's coalescing state keeps beside
//! the entry id, the count and the instant of the latest repeat.

use chrono::{DateTime, Utc};
use guardrail_core::audit::AuditEvent;
use guardrail_core::ids::SecretId;
use guardrail_core::lockout::{BlockKey, Coalesced, RecentBlock, coalesce_block};
use guardrail_store::{AuditRecord, CoalesceKey, CoalesceOutcome, StoreError};

use crate::crypto::SecretCipher;
use crate::state::AppState;
use crate::webhook::{Delivery, WebhookSecret, WebhookUrl};
use crate::wire::AuditEntryView;

/// The bytes of the pseudo secret id (`sk_` and 24 zeros) that webhook secrets are encrypted
/// under. Secret versions start at 1, so version 0 of this id never names a secret value.
const WEBHOOK_SECRET_AAD_BYTES: [u8; 12] = [0; 12];
/// The version webhook secrets are encrypted as.
const WEBHOOK_SECRET_AAD_VERSION: u64 = 0;

/// Builds the admin API's view of a stored entry.
pub fn entry_view(record: &AuditRecord) -> AuditEntryView {
    let event = &record.event;
    AuditEntryView {
        id: u64::try_from(record.id.0).unwrap_or_default(),
        at: event.at,
        vault_id: event.vault_id.clone(),
        actor_kind: event.actor.kind().to_owned(),
        actor_id: event.actor.id(),
        action: event.action.as_str().to_owned(),
        severity: event.severity().as_str().to_owned(),
        target: Some(event.target.to_string()),
        source_ip: event.source_ip.map(|ip| ip.to_string()),
        detail: event.detail.clone(),
    }
}

/// Appends `events` in one transaction and alerts their subscribers.
///
/// # Errors
///
/// The store's error; then nothing was written and no alert was sent.
pub fn append(state: &AppState, events: &[AuditEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let ids = state.store.append_audit(events)?;
    for (id, event) in ids.into_iter().zip(events) {
        alert(
            state,
            &AuditRecord {
                id,
                event: event.clone(),
                count: 1,
            },
        );
    }
    Ok(())
}

/// Writes a `temp_machine_blocked` event for `block`, folding it into the last entry of the
/// same block when the core's coalescing rule says so. Returns the entry's count.
///
/// # Errors
///
/// The store's error.
pub fn append_block(
    state: &AppState,
    event: &AuditEvent,
    block: &BlockKey,
    now: DateTime<Utc>,
) -> Result<u32, StoreError> {
    let store = state.store.as_ref();
    let key = CoalesceKey {
        machine_id: block.machine,
        source_ip: block.source,
        axis: block.axis.to_owned(),
        reason: block.reason.clone(),
    };
    let current = store.coalesce_state(&key)?;
    let recent = current.map(|current| RecentBlock {
        entry: current.entry_id,
        first_at: current.first_at,
        count: u64::from(current.count),
    });
    // The store folds atomically into the entry whose latest repeat is at or after the given
    // instant: the latest repeat it reported folds, and the end of time never does.
    let decision = coalesce_block(recent.as_ref(), &state.settings.coalesce, now);
    let coalesce_since = match (decision, current) {
        (Coalesced::Increment { .. }, Some(current)) => current.last_at,
        _ => DateTime::<Utc>::MAX_UTC,
    };
    match store.append_coalesced(event, &key, coalesce_since)? {
        CoalesceOutcome::Appended(id) => {
            alert(
                state,
                &AuditRecord {
                    id,
                    event: event.clone(),
                    count: 1,
                },
            );
            Ok(1)
        }
        CoalesceOutcome::Coalesced { count, .. } => Ok(count),
    }
}

/// Queues one delivery per subscription of the entry's vault that lists its action. Failures
/// are logged and never fail the request that caused the entry.
pub fn alert(state: &AppState, record: &AuditRecord) {
    let Some(sender) = &state.webhooks else {
        return;
    };
    let event = &record.event;
    let subscriptions = match state.store.webhooks_for(&event.vault_id, event.action) {
        Ok(subscriptions) => subscriptions,
        Err(error) => {
            tracing::warn!(%error, vault_id = %event.vault_id, action = event.action.as_str(), "cannot load webhook subscriptions, alert not sent");
            return;
        }
    };
    if subscriptions.is_empty() {
        return;
    }
    let body = match serde_json::to_vec(&entry_view(record)) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "cannot encode an alert body");
            return;
        }
    };
    for subscription in subscriptions {
        let url = match WebhookUrl::parse(&subscription.url, state.settings.allow_private_webhooks)
        {
            Ok(url) => url,
            Err(error) => {
                tracing::warn!(%error, webhook_id = subscription.id.0, "stored webhook URL is no longer accepted, alert not sent");
                continue;
            }
        };
        let Some(secret) = open_webhook_secret(&state.cipher, &subscription.secret) else {
            tracing::warn!(
                webhook_id = subscription.id.0,
                "cannot decrypt the webhook secret, alert not sent"
            );
            continue;
        };
        sender.enqueue(Delivery {
            url,
            secret,
            body: body.clone(),
        });
    }
}

/// Encrypts a webhook secret for storage.
///
/// # Errors
///
/// The cipher's error.
pub fn seal_webhook_secret(
    cipher: &SecretCipher,
    secret: &[u8],
) -> Result<Vec<u8>, crate::crypto::CryptoError> {
    cipher.encrypt(&webhook_aad_id(), WEBHOOK_SECRET_AAD_VERSION, secret)
}

fn open_webhook_secret(cipher: &SecretCipher, stored: &[u8]) -> Option<WebhookSecret> {
    cipher
        .decrypt(&webhook_aad_id(), WEBHOOK_SECRET_AAD_VERSION, stored)
        .ok()
        .map(|plain| WebhookSecret::new(plain.to_vec()))
}

fn webhook_aad_id() -> SecretId {
    SecretId::from_random_bytes(&WEBHOOK_SECRET_AAD_BYTES)
}
