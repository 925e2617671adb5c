//! `guardrail-loadgen`: drives a loopback reference server with signed reads and holds the
//! result against this machine's Ed25519 bound.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use guardrail_loadgen::cpu;
use guardrail_loadgen::crypto::{self, CryptoReport};
use guardrail_loadgen::load::{self, LoadPlan, LoadReport};
use guardrail_loadgen::setup::{self, OwnerKey};
use guardrail_loadgen::target::ServerUrl;

/// Load generator for the Guardrail reference server (loopback only).
#[derive(Debug, Parser)]
#[command(name = "guardrail-loadgen", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    // TODO: accept an existing machine identity (`identity.json` and `private.pem`) so that a
    // run needs no owner key; now every run registers its own machines.
    /// Register machines with the owner key, drive `GET /v1/secret/{id}`, then measure the
    /// crypto bound and print both.
    Run {
        /// Server base URL: `http://` on localhost, 127.0.0.0/8 or ::1.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The vault, `vault_...`, as printed by `guardrail-server vault create`.
        #[arg(long)]
        vault: String,
        /// File holding the vault owner's key [default: env GUARDRAIL_OWNER_KEY]
        #[arg(long, value_name = "FILE")]
        owner_key_file: Option<PathBuf>,
        /// Concurrent keep-alive connections, 1 to 256.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Seconds of load, 1 to 300.
        #[arg(long, default_value_t = 20)]
        duration: u64,
        /// Machines to register and sign with, 1 to 64 (each counts against the plan's limit).
        #[arg(long, default_value_t = 8)]
        machines: usize,
        /// Worker threads of the load generator's runtime.
        #[arg(long, default_value_t = 1)]
        client_threads: usize,
        /// The server's process id, to read the CPU time it spends under load from `/proc`.
        #[arg(long, value_name = "PID")]
        server_pid: Option<u32>,
        /// Seconds of the crypto measurement after the load (0 skips it).
        #[arg(long, default_value_t = 5)]
        crypto_seconds: u64,
    },
    /// Serve the reference server's routes over the in-memory store, with one pro vault created
    /// in-process; prints `{"vaultId","ownerKey"}` first.
    ServeMemory {
        /// Loopback address to listen on.
        #[arg(long, default_value = "127.0.0.1:18082")]
        listen: String,
    },
    /// Measure sign-and-verify pairs per second alone.
    Crypto {
        /// Threads [default: the number of CPUs].
        #[arg(long)]
        threads: Option<usize>,
        /// Seconds, 1 to 60.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
}

#[derive(Debug, thiserror::Error)]
enum MainError {
    #[error(transparent)]
    Url(#[from] guardrail_loadgen::target::NotLoopback),
    #[error(transparent)]
    Plan(#[from] load::InvalidPlan),
    #[error(transparent)]
    Setup(#[from] setup::SetupError),
    #[error(transparent)]
    Load(#[from] load::LoadError),
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    #[error("no owner key: set GUARDRAIL_OWNER_KEY or pass --owner-key-file")]
    NoOwnerKey,
    #[error("cannot read the owner key file `{path}`: {source}")]
    OwnerKeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid client thread count `{0}`: expected 1 to 64")]
    ClientThreads(usize),
    #[error(transparent)]
    MemoryServer(#[from] guardrail_loadgen::memory_server::MemoryServerError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

fn main() -> ExitCode {
    match run_cli(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("guardrail-loadgen: {error}");
            ExitCode::FAILURE
        }
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn run_cli(cli: Cli) -> Result<(), MainError> {
    match cli.command {
        Command::ServeMemory { listen } => {
            actix_web::rt::System::new()
                .block_on(guardrail_loadgen::memory_server::serve(&listen))?;
        }
        Command::Crypto { threads, seconds } => {
            let report = crypto::measure(threads.unwrap_or_else(cpus), seconds)?;
            print_crypto(&report);
        }
        Command::Run {
            url,
            vault,
            owner_key_file,
            connections,
            duration,
            machines,
            client_threads,
            server_pid,
            crypto_seconds,
        } => {
            let server = ServerUrl::parse(&url)?;
            let plan = LoadPlan::new(connections, duration)?;
            if client_threads == 0 || client_threads > 64 {
                return Err(MainError::ClientThreads(client_threads));
            }
            let owner_key = owner_key(owner_key_file)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(client_threads)
                .enable_all()
                .build()
                .map_err(MainError::Runtime)?;
            let report = runtime.block_on(async {
                let fixture = setup::create_fixture(&server, &vault, &owner_key, machines).await?;
                eprintln!(
                    "registered {} machines; driving {} for {duration} s over {} connections",
                    fixture.machines.len(),
                    server,
                    plan.connections()
                );
                let before = CpuSample::take(server_pid);
                let report = load::run(&server, &fixture, plan).await?;
                let spent = CpuSample::take(server_pid).since(&before);
                Ok::<_, MainError>((report, spent))
            })?;
            drop(runtime);
            let (report, spent) = report;
            print_load(&report, connections, machines, client_threads);
            let ok_per_cpu_second = spent.map(|(server, client)| {
                println!(
                    "cpu: server {:.1} s, load generator {:.1} s over {:.1} s of wall time",
                    server.as_secs_f64(),
                    client.as_secs_f64(),
                    report.elapsed.as_secs_f64()
                );
                load::per_second(report.ok(), server + client)
            });
            if crypto_seconds > 0 {
                let bound = crypto::measure(cpus(), crypto_seconds)?;
                print_crypto(&bound);
                let ratio = report.ok_per_second() / bound.pairs_per_second().max(1.0);
                println!("ratio (wall time): server ok/s / crypto pairs/s = {ratio:.3}");
                if let Some((ok, pairs)) = ok_per_cpu_second.zip(bound.pairs_per_cpu_second()) {
                    println!(
                        "ratio (per CPU-second, server + load generator): {ok:.0} ok / {pairs:.0} pairs = {:.3}",
                        ok / pairs.max(1.0)
                    );
                }
            }
        }
    }
    Ok(())
}

/// CPU time of the server (when its pid is known) and of this process.
struct CpuSample {
    server: Option<Duration>,
    client: Option<Duration>,
}

impl CpuSample {
    fn take(server_pid: Option<u32>) -> Self {
        Self {
            server: server_pid.and_then(cpu::process),
            client: cpu::this_process(),
        }
    }

    /// Computes the server's and this process's CPU time between `earlier` and `self`.
    fn since(&self, earlier: &Self) -> Option<(Duration, Duration)> {
        let server = self.server?.checked_sub(earlier.server?)?;
        let client = self.client?.checked_sub(earlier.client?)?;
        Some((server, client))
    }
}

fn owner_key(file: Option<PathBuf>) -> Result<OwnerKey, MainError> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(&path).map_err(|source| MainError::OwnerKeyFile {
            path: path.display().to_string(),
            source,
        })?;
        return Ok(OwnerKey::new(text));
    }
    match std::env::var("GUARDRAIL_OWNER_KEY") {
        Ok(text) if !text.trim().is_empty() => Ok(OwnerKey::new(text)),
        _ => Err(MainError::NoOwnerKey),
    }
}

fn print_load(report: &LoadReport, connections: usize, machines: usize, client_threads: usize) {
    let millis = |micros: u64| micros as f64 / 1000.0;
    let total: u64 = report.statuses.values().sum();
    println!(
        "load: {connections} connections, {machines} machines, {client_threads} client threads, {:.1} s",
        report.elapsed.as_secs_f64()
    );
    println!(
        "server: {:.0} ok/s ({} ok of {total} answers)",
        report.ok_per_second(),
        report.ok()
    );
    println!(
        "latency ms: p50 {:.2}  p99 {:.2}  max {:.2}",
        millis(report.latency.value_at_quantile(0.50)),
        millis(report.latency.value_at_quantile(0.99)),
        millis(report.latency.max())
    );
    let statuses: Vec<String> = report
        .statuses
        .iter()
        .map(|(status, count)| format!("{status}: {count}"))
        .collect();
    println!(
        "statuses: {}; transport errors: {}",
        statuses.join(", "),
        report.transport_errors
    );
}

fn print_crypto(report: &CryptoReport) {
    println!(
        "crypto bound: {:.0} sign+verify pairs/s on {} threads ({} pairs in {:.1} s)",
        report.pairs_per_second(),
        report.threads,
        report.pairs,
        report.elapsed.as_secs_f64()
    );
    if let Some(per_cpu) = report.pairs_per_cpu_second() {
        println!(
            "crypto per CPU-second: {per_cpu:.0} pairs; x {} cores = {:.0} pairs/s on an idle machine",
            cpus(),
            per_cpu * cpus() as f64
        );
    }
}
