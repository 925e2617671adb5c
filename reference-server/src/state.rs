//! The state every route shares, and the one way routes call the store.
//!
//! The store is synchronous (the PostgreSQL backend blocks on the network), so every call goes
//! through [`AppState::blocking`], which runs it on actix's blocking thread pool inside the
//! request's tracing span.

use std::sync::Arc;

use actix_web::web;
use guardrail_core::guardrail::CountryResolver;
use guardrail_core::lockout::{CoalescePolicy, LockoutPolicy};
use guardrail_core::request::MaxSkew;
use guardrail_store::{Store, StoreError};
use tokio::sync::Notify;

use crate::client_addr::ClientAddressResolver;
use crate::clock::PolicyClock;
use crate::config::PublicUrl;
use crate::crypto::SecretCipher;
use crate::error::ApiError;
use crate::telemetry::Metrics;
use crate::webhook::WebhookSender;

/// A country resolver that can be shared between worker threads.
pub type SharedCountryResolver = Arc<dyn CountryResolver + Send + Sync>;

/// Settings the routes read, taken from the validated `serve` configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The URL clients reach the server at, written into bootstrap scripts and registrations.
    pub public_url: PublicUrl,
    /// Whether webhooks may go to `http://` and non-public destinations.
    pub allow_private_webhooks: bool,
    /// The allowed `X-Timestamp` skew of step 8.
    pub max_skew: MaxSkew,
    /// Failures before a source (or a machine and source pair) is locked out, and for how long.
    pub lockout: LockoutPolicy,
    /// How long identical guardrail blocks fold into one audit entry.
    pub coalesce: CoalescePolicy,
}

/// Everything a route needs. Cheap to clone: every field is shared.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Encrypts secret values and webhook secrets at rest.
    pub cipher: Arc<SecretCipher>,
    /// The policy clock (a test clock only with `--test-clock`).
    pub clock: PolicyClock,
    /// Route settings.
    pub settings: Arc<Settings>,
    /// Finds the client address behind trusted proxies.
    pub client_addresses: Arc<ClientAddressResolver>,
    /// Resolves source countries for the geo guardrail.
    pub countries: SharedCountryResolver,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// The webhook delivery queue; `None` when alerts are switched off (tests).
    pub webhooks: Option<WebhookSender>,
    /// Wakes the sweeper early, after the test clock moved.
    pub sweep_now: Arc<Notify>,
}

impl AppState {
    /// Runs `work` with the store on a blocking thread, inside the caller's tracing span.
    ///
    /// # Errors
    ///
    /// The error `work` returns, or [`ApiError::Internal`] when the blocking task panicked or
    /// the pool is shut down.
    pub async fn blocking<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
    {
        let state = self.clone();
        let span = tracing::Span::current();
        web::block(move || {
            let _entered = span.enter();
            work(&state)
        })
        .await
        .map_err(|error| {
            tracing::error!(%error, "blocking store task failed");
            ApiError::Internal
        })?
    }
}

/// Maps a store failure that the route does not handle itself: missing records become 404,
/// conflicts and rejected changes 409, an unavailable database 503, anything else 500. The
/// cause is logged for 503 and 500, whose client messages are generic.
pub fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::NotFound(missing) => ApiError::NotFound(missing.to_string()),
        StoreError::Conflict(conflict) => ApiError::Conflict(conflict.to_string()),
        StoreError::Domain(rejected) => ApiError::Conflict(rejected.to_string()),
        StoreError::Unavailable(cause) => {
            tracing::warn!(%cause, "store unavailable");
            ApiError::Unavailable
        }
        other => {
            tracing::error!(error = %other, "store failed");
            ApiError::Internal
        }
    }
}

/// Draws `N` random bytes from the operating system.
///
/// # Errors
///
/// [`ApiError::Internal`] when the system generator fails; the cause is logged.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|error| {
        tracing::error!(%error, "the system random generator failed");
        ApiError::Internal
    })?;
    Ok(bytes)
}
