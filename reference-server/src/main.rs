//! `guardrail-server`: the Guardrail reference server's command line.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use clap::Parser;
use reference_server::cli::{Cli, Command, ServeArgs};
use reference_server::config::{ProcessEnvironment, SecretKeySource, ServeConfig};
use reference_server::crypto::{SecretCipher, SecretKey};
use reference_server::error;
use reference_server::telemetry::{self, Metrics, ReadinessCheck};

/// How long a shutdown waits for in-flight requests after SIGTERM or SIGINT.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
enum MainError {
    #[error(transparent)]
    Config(#[from] reference_server::config::ConfigError),
    #[error(transparent)]
    Telemetry(#[from] telemetry::TelemetryError),
    #[error(transparent)]
    Crypto(#[from] reference_server::crypto::CryptoError),
    #[error("cannot listen on `{addr}`: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the server stopped with an error: {0}")]
    Server(std::io::Error),
    // TODO: wire the vault and migrate subcommands once the store is merged.
    #[error("`{0}` is not wired to the store yet in this build")]
    NotWired(&'static str),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => actix_web::rt::System::new().block_on(serve(*args)),
        Command::Vault(_) => Err(MainError::NotWired("vault")),
        Command::Migrate(_) => Err(MainError::NotWired("migrate")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("guardrail-server: {error}");
            ExitCode::FAILURE
        }
    }
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

async fn serve(args: ServeArgs) -> Result<(), MainError> {
    let config = ServeConfig::resolve(&args, &ProcessEnvironment)?;
    telemetry::init_logging(config.log_format)?;
    if config.test_clock {
        tracing::warn!(
            "the test clock is enabled: POST /admin/v1/test-clock/advance moves the policy clock; never use this in production"
        );
    }
    // TODO: hand the cipher to the secret routes once they are wired.
    let _cipher = SecretCipher::new(&load_key(&config.secret_key)?);

    let metrics = web::Data::new(Metrics::new()?);
    // TODO: check the store once it is wired.
    let readiness: ReadinessCheck = Arc::new(|| Ok(()));

    let factory = {
        let metrics = metrics.clone();
        move || {
            let metrics = metrics.clone();
            let readiness = Arc::clone(&readiness);
            App::new()
                .wrap(from_fn(telemetry::request_telemetry))
                .app_data(error::json_config())
                .app_data(error::payload_config())
                .configure(move |service| telemetry::health_routes(service, metrics, readiness))
        }
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
    server.run().await.map_err(MainError::Server)?;
    tracing::info!("stopped");
    Ok(())
}
