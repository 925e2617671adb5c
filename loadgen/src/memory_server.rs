//! The reference server's routes over the in-memory store, for comparing stores under load.
//!
//! `guardrail-server serve --database memory://` accepts the URL, but its vaults can only be
//! created by `guardrail-server vault create`, another process with its own (empty) memory. This
//! module builds the same application as `serve` (telemetry middleware, health routes, machine,
//! bootstrap and admin routes, the sweeper) over a [`MemoryStore`], creates one pro vault in it
//! and prints `{"vaultId","ownerKey"}` on standard output before it listens. Webhooks are off.
//!
//! [`MemoryStore`]: guardrail_store::MemoryStore

// TODO: drop this module once `guardrail-server` can create a vault in its own memory store
// (for example a `--create-vault` flag on `serve`).

use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use guardrail_core::guardrail::StaticCountryResolver;
use guardrail_core::lockout::CoalescePolicy;
use guardrail_core::plan::Plan;
use guardrail_core::request::MaxSkew;
use guardrail_store::open_store;
use reference_server::cli::ServeArgs;
use reference_server::client_addr::ClientAddressResolver;
use reference_server::clock::PolicyClock;
use reference_server::config::{ProcessEnvironment, ServeConfig};
use reference_server::crypto::{SecretCipher, SecretKey};
use reference_server::state::{AppState, Settings};
use reference_server::telemetry::{self, Metrics, ReadinessCheck};
use reference_server::{routes, sweeper, vault_admin};
use tokio::sync::Notify;

use crate::target::ServerUrl;

/// The in-memory server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[error("in-memory server: {0}")]
pub struct MemoryServerError(String);

fn failed(error: impl ToString) -> MemoryServerError {
    MemoryServerError(error.to_string())
}

/// Serves on `listen` (a loopback `ADDR:PORT`) until interrupted.
///
/// # Errors
///
/// [`MemoryServerError`] when `listen` is not loopback, a setting is invalid, the vault cannot be
/// created or the socket cannot be bound.
pub async fn serve(listen: &str) -> Result<(), MemoryServerError> {
    ServerUrl::parse(&format!("http://{listen}")).map_err(failed)?;
    let args = ServeArgs {
        listen: Some(listen.to_owned()),
        database: Some("memory://".to_owned()),
        ..ServeArgs::default()
    };
    let config = ServeConfig::resolve(&args, &ProcessEnvironment).map_err(failed)?;
    telemetry::init_logging(config.log_format).map_err(failed)?;
    let store = open_store(&vault_admin::store_url(&config.database)).map_err(failed)?;
    let created =
        vault_admin::create_vault(store.as_ref(), "load", Plan::Pro, None, chrono::Utc::now())
            .map_err(failed)?;
    println!(
        "{}",
        serde_json::json!({"vaultId": created.vault_id.to_string(), "ownerKey": created.owner_key})
    );

    let skew = u32::try_from(config.nonce_skew.as_secs()).unwrap_or(u32::MAX);
    let lockout = u32::try_from(config.lockout_period.as_secs()).unwrap_or(u32::MAX);
    let settings = Settings {
        public_url: config.public_url.clone(),
        allow_private_webhooks: false,
        max_skew: MaxSkew::from_secs(skew).map_err(failed)?,
        lockout: guardrail_core::lockout::LockoutPolicy::new(config.lockout_failures, lockout)
            .map_err(failed)?,
        coalesce: CoalescePolicy::default(),
    };
    let metrics = Metrics::new().map_err(failed)?;
    let state = AppState {
        store: Arc::clone(&store),
        cipher: Arc::new(SecretCipher::new(&SecretKey::generate().map_err(failed)?)),
        clock: PolicyClock::System,
        settings: Arc::new(settings),
        client_addresses: Arc::new(ClientAddressResolver::new(
            Vec::new(),
            config.client_ip_header.clone(),
        )),
        countries: Arc::new(StaticCountryResolver::new(Vec::new())),
        metrics: metrics.clone(),
        webhooks: None,
        sweep_now: Arc::new(Notify::new()),
    };
    let readiness: ReadinessCheck = Arc::new(|| Ok(()));
    let _sweeper = sweeper::spawn(state.clone(), sweeper::holder_id(), config.sweep_interval);
    let metrics = web::Data::new(metrics);
    let factory = move || {
        let metrics = metrics.clone();
        let readiness = Arc::clone(&readiness);
        let state = state.clone();
        App::new()
            .wrap(from_fn(telemetry::request_telemetry))
            .configure(move |service| telemetry::health_routes(service, metrics, readiness))
            .configure(move |service| routes::configure(service, state, false))
    };
    let mut server = HttpServer::new(factory);
    for addr in config.listen.socket_addrs() {
        server = server.bind(addr).map_err(failed)?;
    }
    server.run().await.map_err(failed)
}
