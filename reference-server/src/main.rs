//! `guardrail-server`: the Guardrail reference server's command line.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use clap::Parser;
use guardrail_core::guardrail::{MaxMindCountryResolver, StaticCountryResolver};
use guardrail_core::ids::OwnerId;
use guardrail_core::lockout::{CoalescePolicy, LockoutPolicy};
use guardrail_core::request::MaxSkew;
use guardrail_store::{Store, StoreError, open_store};
use reference_server::cli::{Cli, Command, DatabaseArg, ServeArgs, VaultCommand};
use reference_server::client_addr::ClientAddressResolver;
use reference_server::clock::{PolicyClock, TestClock};
use reference_server::config::{
    DEFAULT_DATABASE, DatabaseUrl, ProcessEnvironment, SecretKeySource, ServeConfig,
};
use reference_server::crypto::{SecretCipher, SecretKey};
use reference_server::state::{AppState, Settings, SharedCountryResolver};
use reference_server::telemetry::{self, Metrics, ReadinessCheck};
use reference_server::vault_admin::{self, VaultAdminError, store_url};
use reference_server::webhook::{RetryPolicy, spawn_dispatcher};
use reference_server::{routes, sweeper};
use tokio::sync::Notify;

/// How long a shutdown waits for in-flight requests after SIGTERM or SIGINT.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Alerts waiting for delivery before new ones are dropped.
const WEBHOOK_QUEUE_CAPACITY: usize = 1024;

#[derive(Debug, thiserror::Error)]
enum MainError {
    #[error(transparent)]
    Config(#[from] reference_server::config::ConfigError),
    #[error(transparent)]
    Telemetry(#[from] telemetry::TelemetryError),
    #[error(transparent)]
    Crypto(#[from] reference_server::crypto::CryptoError),
    #[error("cannot open the database `{database}`: {source}")]
    Store {
        database: String,
        source: StoreError,
    },
    #[error("invalid database URL `{url}`: {reason}")]
    DatabaseUrl { url: String, reason: String },
    #[error(transparent)]
    Vault(#[from] VaultAdminError),
    #[error("cannot read the GeoIP database `{path}`: {reason}")]
    GeoIp { path: String, reason: String },
    #[error("invalid setting: {0}")]
    Setting(String),
    #[error("cannot start the webhook sender: {0}")]
    Webhooks(String),
    #[error("cannot listen on `{addr}`: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the server stopped with an error: {0}")]
    Server(std::io::Error),
    #[error("a startup task failed: {0}")]
    Startup(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => actix_web::rt::System::new().block_on(serve(*args)),
        Command::Vault(command) => vault(command),
        Command::Migrate(database) => migrate(&database),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("guardrail-server: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves the database of an administrative command: the flag, then `GUARDRAIL_DATABASE`, then the
/// default.
fn database_url(arg: &DatabaseArg) -> Result<DatabaseUrl, MainError> {
    let text = arg
        .database
        .clone()
        .or_else(|| {
            std::env::var("GUARDRAIL_DATABASE")
                .ok()
                .filter(|value| !value.is_empty())
        })
        .unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
    text.parse().map_err(|reason| MainError::DatabaseUrl {
        url: text.chars().take(120).collect(),
        reason,
    })
}

fn open(database: &DatabaseUrl) -> Result<Arc<dyn Store>, MainError> {
    open_store(&store_url(database)).map_err(|source| MainError::Store {
        database: database.redacted(),
        source,
    })
}

fn migrate(arg: &DatabaseArg) -> Result<(), MainError> {
    let database = database_url(arg)?;
    let version =
        guardrail_store::migrate(&store_url(&database)).map_err(|source| MainError::Store {
            database: database.redacted(),
            source,
        })?;
    println!("{{\"schemaVersion\":{version}}}");
    Ok(())
}

fn vault(command: VaultCommand) -> Result<(), MainError> {
    match command {
        VaultCommand::Create {
            name,
            plan,
            machine_limit,
            database,
        } => {
            let url = database_url(&database)?;
            let store = open(&url)?;
            let created = vault_admin::create_vault(
                store.as_ref(),
                &name,
                plan.into(),
                machine_limit,
                chrono::Utc::now(),
            )?;
            let text = serde_json::to_string(&created)
                .map_err(|error| MainError::Startup(error.to_string()))?;
            println!("{text}");
            // The command writes to the database directly, so say which one: a server started
            // with another `--database` will not know this vault.
            eprintln!("vault created in `{url}`");
        }
        VaultCommand::Suspend { vault_id, database } => {
            let store = open(&database_url(&database)?)?;
            vault_admin::set_owner_active(store.as_ref(), &vault_id, false)?;
            eprintln!("vault `{vault_id}` suspended: its machines fail authentication");
        }
        VaultCommand::Resume { vault_id, database } => {
            let store = open(&database_url(&database)?)?;
            vault_admin::set_owner_active(store.as_ref(), &vault_id, true)?;
            eprintln!("vault `{vault_id}` resumed");
        }
        VaultCommand::SetPlan {
            vault_id,
            plan,
            machine_limit,
            database,
        } => {
            let store = open(&database_url(&database)?)?;
            let plan: guardrail_core::plan::Plan = plan.into();
            let limit = vault_admin::set_plan(store.as_ref(), &vault_id, plan, machine_limit)?;
            eprintln!(
                "vault `{vault_id}` is now on the `{plan}` plan with a limit of {limit} machines"
            );
        }
    }
    Ok(())
}

fn load_key(source: &SecretKeySource) -> Result<SecretKey, MainError> {
    let key = match source {
        SecretKeySource::File(path) => SecretKey::load(path)?,
        SecretKeySource::CreateBeside(path) => SecretKey::load_or_create(path)?.0,
        SecretKeySource::Inline(key) => key.clone(),
        SecretKeySource::Ephemeral => {
            tracing::warn!(
                "in-memory database: secrets are encrypted with a key that ends with the process"
            );
            SecretKey::generate()?
        }
    };
    Ok(key)
}

fn country_resolver(config: &ServeConfig) -> Result<SharedCountryResolver, MainError> {
    let Some(path) = &config.geoip else {
        tracing::warn!(
            "no GeoIP database (--geoip): machines with a country guardrail are always blocked"
        );
        return Ok(Arc::new(StaticCountryResolver::new(Vec::new())));
    };
    let failed = |reason: String| MainError::GeoIp {
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|error| failed(error.to_string()))?;
    let resolver =
        MaxMindCountryResolver::from_bytes(bytes).map_err(|error| failed(error.to_string()))?;
    Ok(Arc::new(resolver))
}

fn settings(config: &ServeConfig) -> Result<Settings, MainError> {
    let skew_seconds = u32::try_from(config.nonce_skew.as_secs()).unwrap_or(u32::MAX);
    let lockout_seconds = u32::try_from(config.lockout_period.as_secs()).unwrap_or(u32::MAX);
    Ok(Settings {
        public_url: config.public_url.clone(),
        allow_private_webhooks: config.allow_private_webhooks,
        max_skew: MaxSkew::from_secs(skew_seconds)
            .map_err(|error| MainError::Setting(error.to_string()))?,
        lockout: LockoutPolicy::new(config.lockout_failures, lockout_seconds)
            .map_err(|error| MainError::Setting(error.to_string()))?,
        coalesce: CoalescePolicy::default(),
    })
}

async fn serve(args: ServeArgs) -> Result<(), MainError> {
    let config = ServeConfig::resolve(&args, &ProcessEnvironment)?;
    telemetry::init_logging(config.log_format)?;
    if config.test_clock {
        tracing::warn!(
            "the test clock is enabled: POST /admin/v1/test-clock/advance moves the policy clock; never use this in production"
        );
    }
    let cipher = Arc::new(SecretCipher::new(&load_key(&config.secret_key)?));

    // The PostgreSQL driver blocks, so the store is opened (and migrated) off the runtime.
    let url = store_url(&config.database);
    let store = web::block(move || open_store(&url))
        .await
        .map_err(|error| MainError::Startup(error.to_string()))?
        .map_err(|source| MainError::Store {
            database: config.database.redacted(),
            source,
        })?;

    let (webhooks, _dispatcher) = spawn_dispatcher(
        RetryPolicy::default(),
        config.allow_private_webhooks,
        WEBHOOK_QUEUE_CAPACITY,
        |_| {},
    )
    .map_err(|error| MainError::Webhooks(error.to_string()))?;

    let metrics = Metrics::new()?;
    let state = AppState {
        store: Arc::clone(&store),
        cipher,
        clock: if config.test_clock {
            PolicyClock::Test(Arc::new(TestClock::new()))
        } else {
            PolicyClock::System
        },
        settings: Arc::new(settings(&config)?),
        client_addresses: Arc::new(ClientAddressResolver::new(
            config.trusted_proxies.clone(),
            config.client_ip_header.clone(),
        )),
        countries: country_resolver(&config)?,
        metrics: metrics.clone(),
        webhooks: Some(webhooks),
        sweep_now: Arc::new(Notify::new()),
    };

    let readiness: ReadinessCheck = {
        let store = Arc::clone(&store);
        let probe = OwnerId::from_random_bytes(&[0; 12]);
        Arc::new(move || {
            store
                .get_owner(&probe)
                .map(drop)
                .map_err(|error| error.to_string())
        })
    };
    let sweeper_holder = sweeper::holder_id();
    let sweeper_task = sweeper::spawn(state.clone(), sweeper_holder.clone(), config.sweep_interval);
    let shutdown_state = state.clone();

    let metrics = web::Data::new(metrics);
    let test_clock = config.test_clock;
    let factory = move || {
        let metrics = metrics.clone();
        let readiness = Arc::clone(&readiness);
        let state = state.clone();
        App::new()
            .wrap(from_fn(telemetry::request_telemetry))
            .configure(move |service| telemetry::health_routes(service, metrics, readiness))
            .configure(move |service| routes::configure(service, state, test_clock))
    };
    let mut server = HttpServer::new(factory).shutdown_timeout(SHUTDOWN_TIMEOUT.as_secs());
    for addr in config.listen.socket_addrs() {
        server = server.bind(addr).map_err(|source| MainError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    }
    for addr in server.addrs() {
        tracing::info!(%addr, public_url = %config.public_url, database = %config.database, "listening");
    }
    let served = server.run().await;
    sweeper_task.abort();
    let released = web::block(move || sweeper::release(&shutdown_state, &sweeper_holder)).await;
    if let Ok(Err(error)) = released {
        tracing::warn!(%error, "could not release the sweeper lease; the next server waits for it to lapse");
    }
    served.map_err(MainError::Server)?;
    tracing::info!("stopped");
    Ok(())
}
