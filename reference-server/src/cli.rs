//! The command line of `guardrail-server`, as clap parses it.
//!
//! Flags only: environment variables and the config file are merged afterwards by
//! [`crate::config`], so that precedence (flag, then environment, then file, then default) is
//! decided in one place and tested without touching the process environment.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The Guardrail reference server: temporary machine identities over HTTP.
#[derive(Debug, Parser)]
#[command(name = "guardrail-server", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (migrates the database first).
    Serve(Box<ServeArgs>),
    /// Create and manage vaults.
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Bring the database to the current schema.
    Migrate(DatabaseArg),
}

/// `--database URL`, shared by the administrative subcommands.
#[derive(Debug, Clone, Default, Args)]
pub struct DatabaseArg {
    /// Database URL: `sqlite://PATH` or `postgres://...` [env: GUARDRAIL_DATABASE]
    /// [default: sqlite://guardrail.sqlite3]
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
}

/// A vault's plan as written on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanArg {
    /// No temporary machines.
    Free,
    /// Temporary machines within the machine limit.
    Pro,
    /// Temporary machines within a higher machine limit.
    Enterprise,
}

impl From<PlanArg> for guardrail_core::plan::Plan {
    fn from(plan: PlanArg) -> Self {
        match plan {
            PlanArg::Free => Self::Free,
            PlanArg::Pro => Self::Pro,
            PlanArg::Enterprise => Self::Enterprise,
        }
    }
}

/// `vault ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Create a vault and its owner; prints `{"vaultId","ownerKey"}` once.
    Create {
        /// The vault's name.
        #[arg(long)]
        name: String,
        /// The vault's plan.
        #[arg(long, value_enum)]
        plan: PlanArg,
        /// How many machines the vault may hold (default: the plan's limit).
        #[arg(long, value_name = "N")]
        machine_limit: Option<u32>,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Switch the vault owner's account off (its machines fail authentication).
    Suspend {
        /// The vault, `vault_...`.
        vault_id: String,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Switch the vault owner's account on again.
    Resume {
        /// The vault, `vault_...`.
        vault_id: String,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Change the vault's plan and machine limit.
    SetPlan {
        /// The vault, `vault_...`.
        vault_id: String,
        /// The new plan.
        #[arg(long, value_enum)]
        plan: PlanArg,
        /// How many machines the vault may hold (default: the plan's limit).
        #[arg(long, value_name = "N")]
        machine_limit: Option<u32>,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

/// `serve` flags. Every flag also has an environment variable and a config-file key; see
/// [`crate::config`].
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML config file [env: GUARDRAIL_CONFIG]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on; `localhost:PORT` binds 127.0.0.1 and ::1 [env: GUARDRAIL_LISTEN]
    /// [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Public base URL clients use, `https://HOST[:PORT]` or `http://localhost[:PORT]`, no path
    /// [env: GUARDRAIL_PUBLIC_URL] [default: http://localhost:PORT for a loopback listen address]
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Database URL: `sqlite://PATH` or `postgres://...` [env: GUARDRAIL_DATABASE]
    /// [default: sqlite://guardrail.sqlite3]
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// MaxMind country database (`.mmdb`) for the geo guardrail [env: GUARDRAIL_GEOIP]
    #[arg(long, value_name = "FILE")]
    pub geoip: Option<PathBuf>,
    /// CIDR of a trusted reverse proxy; repeat for several [env: GUARDRAIL_TRUSTED_PROXIES,
    /// comma-separated]
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub trusted_proxies: Vec<String>,
    /// Forwarding header read from trusted proxies [env: GUARDRAIL_CLIENT_IP_HEADER]
    /// [default: X-Forwarded-For]
    #[arg(long, value_name = "NAME")]
    pub client_ip_header: Option<String>,
    /// Allow webhooks to plain `http://` and to private, loopback or link-local destinations
    /// [env: GUARDRAIL_ALLOW_PRIVATE_WEBHOOKS]
    #[arg(long)]
    pub allow_private_webhooks: bool,
    /// Enable the test clock route `POST /admin/v1/test-clock/advance`; for end-to-end tests only
    /// [env: GUARDRAIL_TEST_CLOCK]
    #[arg(long)]
    pub test_clock: bool,
    /// File holding the base64 secret-encryption key [env: GUARDRAIL_SECRET_KEY_FILE]
    /// [default: a file created beside the SQLite database]
    #[arg(long, value_name = "FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Log format: text or json [env: GUARDRAIL_LOG_FORMAT] [default: text]
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Allowed difference between a request's X-Timestamp and real time, in seconds
    /// [env: GUARDRAIL_NONCE_SKEW_SECONDS] [default: 60]
    #[arg(long, value_name = "SECONDS")]
    pub nonce_skew_seconds: Option<String>,
    /// Failed authentications from one source before it is locked out
    /// [env: GUARDRAIL_LOCKOUT_FAILURES] [default: 3]
    #[arg(long, value_name = "N")]
    pub lockout_failures: Option<String>,
    /// How long a lockout lasts, in seconds [env: GUARDRAIL_LOCKOUT_SECONDS] [default: 900]
    #[arg(long, value_name = "SECONDS")]
    pub lockout_seconds: Option<String>,
    /// Seconds between sweeps, 1 to 60 [env: GUARDRAIL_SWEEP_INTERVAL_SECONDS] [default: 60]
    #[arg(long, value_name = "SECONDS")]
    pub sweep_interval_seconds: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_flags_parse() {
        let cli = Cli::try_parse_from([
            "guardrail-server",
            "serve",
            "--listen",
            "localhost:9000",
            "--trusted-proxy",
            "10.0.0.0/8",
            "--trusted-proxy",
            "::1",
            "--allow-private-webhooks",
            "--test-clock",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("expected serve")
        };
        assert_eq!(args.listen.as_deref(), Some("localhost:9000"));
        assert_eq!(args.trusted_proxies, ["10.0.0.0/8", "::1"]);
        assert!(args.allow_private_webhooks);
        assert!(args.test_clock);
        assert_eq!(args.database, None);
    }

    #[test]
    fn vault_subcommands_parse() {
        let cli = Cli::try_parse_from([
            "guardrail-server",
            "vault",
            "create",
            "--name",
            "ops",
            "--plan",
            "pro",
            "--machine-limit",
            "5",
        ])
        .unwrap();
        let Command::Vault(VaultCommand::Create {
            name,
            plan,
            machine_limit,
            database,
        }) = cli.command
        else {
            panic!("expected vault create")
        };
        assert_eq!(
            (name.as_str(), plan, machine_limit, database.database),
            ("ops", PlanArg::Pro, Some(5), None)
        );

        let cli = Cli::try_parse_from([
            "guardrail-server",
            "vault",
            "set-plan",
            "vault_abc",
            "--plan",
            "free",
            "--database",
            "sqlite://x.db",
        ])
        .unwrap();
        let Command::Vault(VaultCommand::SetPlan {
            vault_id,
            plan,
            database,
            ..
        }) = cli.command
        else {
            panic!("expected vault set-plan")
        };
        assert_eq!(vault_id, "vault_abc");
        assert_eq!(plan, PlanArg::Free);
        assert_eq!(database.database.as_deref(), Some("sqlite://x.db"));

        for sub in ["suspend", "resume"] {
            assert!(Cli::try_parse_from(["guardrail-server", "vault", sub, "vault_abc"]).is_ok());
        }
        let cli = Cli::try_parse_from([
            "guardrail-server",
            "migrate",
            "--database",
            "postgres://db/g",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Migrate(DatabaseArg { database: Some(_) })
        ));
    }

    #[test]
    fn bad_plan_is_rejected() {
        let error = Cli::try_parse_from([
            "guardrail-server",
            "vault",
            "create",
            "--name",
            "x",
            "--plan",
            "gold",
        ])
        .unwrap_err();
        assert!(
            error.to_string().contains("invalid value 'gold'"),
            "{error}"
        );
    }
}
