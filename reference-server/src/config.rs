//! The `serve` configuration: flags, environment variables and a TOML file, merged and checked.
//!
//! Each setting is taken from the first source that has it: the flag, then the environment
//! variable, then the config file, then the default. An environment variable set to the empty
//! string counts as unset. Every value is validated here, and an error names the setting, where
//! it came from, and the rejected value.
//!
//! | flag | environment | file key | default |
//! | --- | --- | --- | --- |
//! | `--config` | `GUARDRAIL_CONFIG` | | none |
//! | `--listen` | `GUARDRAIL_LISTEN` | `listen` | `127.0.0.1:8080` |
//! | `--public-url` | `GUARDRAIL_PUBLIC_URL` | `public_url` | `http://localhost:PORT` for a loopback listen address |
//! | `--database` | `GUARDRAIL_DATABASE` | `database` | `sqlite://guardrail.sqlite3` |
//! | `--geoip` | `GUARDRAIL_GEOIP` | `geoip` | none (geo guardrails cannot be met) |
//! | `--trusted-proxy` (repeated) | `GUARDRAIL_TRUSTED_PROXIES` (comma-separated) | `trusted_proxies` (array) | none |
//! | `--client-ip-header` | `GUARDRAIL_CLIENT_IP_HEADER` | `client_ip_header` | `X-Forwarded-For` |
//! | `--allow-private-webhooks` | `GUARDRAIL_ALLOW_PRIVATE_WEBHOOKS` | `allow_private_webhooks` | false |
//! | `--test-clock` | `GUARDRAIL_TEST_CLOCK` | `test_clock` | false |
//! | `--secret-key-file` | `GUARDRAIL_SECRET_KEY_FILE` | `secret_key_file` | beside the SQLite database |
//! | | `GUARDRAIL_SECRET_KEY` (base64, environment only) | | |
//! | `--log-format` | `GUARDRAIL_LOG_FORMAT` | `log_format` | `text` |
//! | `--nonce-skew-seconds` | `GUARDRAIL_NONCE_SKEW_SECONDS` | `nonce_skew_seconds` | 60 |
//! | `--lockout-failures` | `GUARDRAIL_LOCKOUT_FAILURES` | `lockout_failures` | 3 |
//! | `--lockout-seconds` | `GUARDRAIL_LOCKOUT_SECONDS` | `lockout_seconds` | 900 |
//! | `--sweep-interval-seconds` | `GUARDRAIL_SWEEP_INTERVAL_SECONDS` | `sweep_interval_seconds` | 60 |
//!
//! # Boolean flags
//!
//! `--allow-private-webhooks` and `--test-clock` can only switch a setting on. Without the flag,
//! the environment (`true`, `false`, `1`, `0`, `yes`, `no`, `on`, `off`) and then the file decide.
//!
//! # Secret key
//!
//! The secret-encryption key comes from `GUARDRAIL_SECRET_KEY` (kept out of flags and files, so
//! that it never shows in a process list) or from a key file. Setting both is rejected. With
//! neither, a SQLite database gets a key file beside it (`PATH.key`). A PostgreSQL database must
//! be given a key, because replicas must share it. An in-memory database gets a key that lives
//! as long as the process.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use actix_web::http::header::HeaderName;
use ipnetwork::IpNetwork;
use serde::Deserialize;

use crate::cli::ServeArgs;
use crate::crypto::SecretKey;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default database.
pub const DEFAULT_DATABASE: &str = "sqlite://guardrail.sqlite3";
/// Default forwarding header.
pub const DEFAULT_CLIENT_IP_HEADER: &str = "X-Forwarded-For";

/// A configuration problem, naming the setting, its source and the rejected value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that does not validate.
    #[error("invalid {setting} `{value}` (from {origin}): {reason}")]
    Invalid {
        /// The setting, such as `public URL`.
        setting: &'static str,
        /// The value's source, such as `--listen` or `GUARDRAIL_LISTEN`.
        origin: String,
        /// The value, or a placeholder for secrets.
        value: String,
        /// The problem and how to fix it.
        reason: String,
    },
    /// A setting that has no default and was not given.
    #[error("missing {setting}: {hint}")]
    Missing {
        /// The setting.
        setting: &'static str,
        /// How to give it.
        hint: &'static str,
    },
    /// The config file could not be read.
    #[error("cannot read config file `{path}`: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML of the expected shape.
    #[error("invalid config file `{path}`: {message}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the key.
        message: String,
    },
    /// Two settings that exclude each other were both given.
    #[error("{0}")]
    Conflict(&'static str),
}

impl ConfigError {
    fn invalid(setting: &'static str, raw: &Raw, reason: impl Into<String>) -> Self {
        Self::Invalid {
            setting,
            origin: raw.origin.clone(),
            value: raw.value.clone(),
            reason: reason.into(),
        }
    }
}

/// The TOML config file. Unknown keys are rejected so that a typo fails at start.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    listen: Option<String>,
    public_url: Option<String>,
    database: Option<String>,
    geoip: Option<PathBuf>,
    trusted_proxies: Option<Vec<String>>,
    client_ip_header: Option<String>,
    allow_private_webhooks: Option<bool>,
    test_clock: Option<bool>,
    secret_key_file: Option<PathBuf>,
    log_format: Option<String>,
    nonce_skew_seconds: Option<u64>,
    lockout_failures: Option<u64>,
    lockout_seconds: Option<u64>,
    sweep_interval_seconds: Option<u64>,
}

impl FileConfig {
    /// Parses a config file's text.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ParseFile`] naming the offending key.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|error| ConfigError::ParseFile {
            path: path.to_owned(),
            message: error.message().to_owned(),
        })
    }

    /// Reads and parses a config file.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ReadFile`] or [`ConfigError::ParseFile`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }
}

/// The address or addresses the server listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenAddr {
    /// `localhost:PORT`: both 127.0.0.1 and ::1.
    Localhost(u16),
    /// One socket address.
    Socket(SocketAddr),
}

impl ListenAddr {
    /// Returns every socket address to bind.
    pub fn socket_addrs(&self) -> Vec<SocketAddr> {
        match *self {
            Self::Localhost(port) => vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
            ],
            Self::Socket(addr) => vec![addr],
        }
    }

    /// Returns the port.
    pub fn port(&self) -> u16 {
        match *self {
            Self::Localhost(port) => port,
            Self::Socket(addr) => addr.port(),
        }
    }

    /// Returns whether only this machine can connect.
    pub fn is_loopback(&self) -> bool {
        match *self {
            Self::Localhost(_) => true,
            Self::Socket(addr) => addr.ip().is_loopback(),
        }
    }
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(port) = text.strip_prefix("localhost:") {
            let port: u16 = port
                .parse()
                .map_err(|_| format!("`{port}` is not a port number"))?;
            if port == 0 {
                // Two sockets on port 0 would get two different ports.
                return Err("`localhost` needs a fixed port, not 0".to_owned());
            }
            return Ok(Self::Localhost(port));
        }
        text.parse::<SocketAddr>()
            .map(Self::Socket)
            .map_err(|_| "expected IPV4:PORT, [IPV6]:PORT or localhost:PORT".to_owned())
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Localhost(port) => write!(f, "localhost:{port}"),
            Self::Socket(addr) => write!(f, "{addr}"),
        }
    }
}

/// The public base URL clients reach the server at: `https://HOST[:PORT]` or
/// `http://localhost[:PORT]`, with no path, query or trailing slash.
///
/// SikkerKey's SDKs accept an `apiUrl` only when it starts with `https://` or
/// `http://localhost`, so `http://127.0.0.1` is rejected with a hint to write `localhost`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// The URL as text, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PublicUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.ends_with('/') {
            return Err(format!(
                "remove the trailing slash: `{}`",
                text.trim_end_matches('/')
            ));
        }
        let url = url::Url::parse(text).map_err(|error| format!("not a URL ({error})"))?;
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err("a public URL has no path, query or fragment".to_owned());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("a public URL has no user name or password".to_owned());
        }
        let host = url.host_str().unwrap_or_default();
        match url.scheme() {
            "https" => {}
            "http" if host == "localhost" => {}
            "http" if host == "127.0.0.1" || host == "[::1]" => {
                return Err(
                    "SikkerKey clients accept plain http only for `http://localhost`: write localhost instead"
                        .to_owned(),
                );
            }
            _ => {
                return Err(
                    "expected `https://HOST[:PORT]` or `http://localhost[:PORT]`".to_owned(),
                );
            }
        }
        let canonical = url.as_str().trim_end_matches('/').to_owned();
        Ok(Self(canonical))
    }
}

/// The database to use. `Debug` and `Display` hide a PostgreSQL password.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH`: a file (relative to the working folder unless absolute).
    Sqlite(PathBuf),
    /// `postgres://...` or `postgresql://...`, passed to the driver as given.
    Postgres(String),
    /// `memory://`: nothing survives a restart; for tests and demos.
    Memory,
}

impl DatabaseUrl {
    /// Returns the URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Memory => "memory://".to_owned(),
            Self::Postgres(text) => match url::Url::parse(text) {
                Ok(mut url) => {
                    if url.password().is_some() {
                        // Setting a password fails only for URLs without a host, which were
                        // rejected when parsed.
                        let _ = url.set_password(Some("***"));
                    }
                    url.to_string()
                }
                Err(_) => "postgres://***".to_owned(),
            },
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "memory://" {
            return Ok(Self::Memory);
        }
        if let Some(path) = text.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(
                    "`sqlite://` needs a file path, as in `sqlite://guardrail.sqlite3`".to_owned(),
                );
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            let url = url::Url::parse(text).map_err(|error| format!("not a URL ({error})"))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err("a PostgreSQL URL needs a host".to_owned());
            }
            return Ok(Self::Postgres(text.to_owned()));
        }
        Err("expected `sqlite://PATH`, `postgres://...` or `memory://`".to_owned())
    }
}

/// The log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err("expected `text` or `json`".to_owned()),
        }
    }
}

/// The source of the secret-encryption key.
pub enum SecretKeySource {
    /// A key file that must exist.
    File(PathBuf),
    /// A key file beside the SQLite database, created on first start.
    CreateBeside(PathBuf),
    /// The key from `GUARDRAIL_SECRET_KEY`.
    Inline(SecretKey),
    /// A fresh key for an in-memory database.
    Ephemeral,
}

impl fmt::Debug for SecretKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::CreateBeside(path) => f.debug_tuple("CreateBeside").field(path).finish(),
            Self::Inline(_) => f.write_str("Inline(..)"),
            Self::Ephemeral => f.write_str("Ephemeral"),
        }
    }
}

/// The validated `serve` configuration.
#[derive(Debug)]
pub struct ServeConfig {
    /// The listen address.
    pub listen: ListenAddr,
    /// The URL clients reach the server at.
    pub public_url: PublicUrl,
    /// The database.
    pub database: DatabaseUrl,
    /// The MaxMind country database, if any.
    pub geoip: Option<PathBuf>,
    /// Trusted reverse proxies.
    pub trusted_proxies: Vec<IpNetwork>,
    /// The forwarding header read from trusted proxies.
    pub client_ip_header: HeaderName,
    /// Whether webhooks may go to `http://` and private destinations.
    pub allow_private_webhooks: bool,
    /// Whether the test clock is enabled.
    pub test_clock: bool,
    /// The secret-encryption key's source.
    pub secret_key: SecretKeySource,
    /// The log format.
    pub log_format: LogFormat,
    /// Allowed `X-Timestamp` skew, inclusive.
    pub nonce_skew: Duration,
    /// Failures before a source is locked out.
    pub lockout_failures: u32,
    /// How long a lockout lasts.
    pub lockout_period: Duration,
    /// Time between sweeps.
    pub sweep_interval: Duration,
}

/// A raw setting value and where it came from.
struct Raw {
    value: String,
    origin: String,
}

/// Looks up environment variables; tests pass a map instead of the process environment.
pub trait Environment {
    /// Returns the variable's value, or `None` when unset or empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|value| !value.is_empty())
    }
}

impl<S: std::hash::BuildHasher> Environment for std::collections::HashMap<&str, &str, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name)
            .filter(|value| !value.is_empty())
            .map(|value| (*value).to_owned())
    }
}

fn pick(
    flag: Option<&str>,
    flag_name: &str,
    env: &dyn Environment,
    env_name: &str,
    file: Option<String>,
    file_key: &str,
) -> Option<Raw> {
    if let Some(value) = flag {
        return Some(Raw {
            value: value.to_owned(),
            origin: flag_name.to_owned(),
        });
    }
    if let Some(value) = env.var(env_name) {
        return Some(Raw {
            value,
            origin: env_name.to_owned(),
        });
    }
    file.map(|value| Raw {
        value,
        origin: format!("config key `{file_key}`"),
    })
}

fn parse_with<T>(
    setting: &'static str,
    raw: &Raw,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    parse(&raw.value).map_err(|reason| ConfigError::invalid(setting, raw, reason))
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    }
}

fn parse_bounded(text: &str, min: u64, max: u64, unit: &str) -> Result<u64, String> {
    let value: u64 = text
        .parse()
        .map_err(|_| format!("expected a whole number of {unit}"))?;
    if !(min..=max).contains(&value) {
        return Err(format!("expected {min} to {max} {unit}"));
    }
    Ok(value)
}

/// Parses one trusted-proxy CIDR. A bare address means one host; host bits and IPv4-mapped
/// networks are rejected.
fn parse_proxy(text: &str) -> Result<IpNetwork, String> {
    let text = text.trim();
    let network: IpNetwork = if text.contains('/') {
        text.parse()
            .map_err(|error| format!("not a CIDR ({error})"))?
    } else {
        let ip: IpAddr = text
            .parse()
            .map_err(|_| "not an IP address or CIDR".to_owned())?;
        IpNetwork::from(ip)
    };
    if network.network() != network.ip() {
        return Err(format!(
            "host bits are set: write `{}/{}`",
            network.network(),
            network.prefix()
        ));
    }
    if let IpNetwork::V6(v6) = network
        && v6.ip().to_ipv4_mapped().is_some()
    {
        return Err("IPv4-mapped addresses are matched as IPv4: write the IPv4 form".to_owned());
    }
    Ok(network)
}

fn parse_header(text: &str) -> Result<HeaderName, String> {
    if text.eq_ignore_ascii_case("forwarded") {
        return Err("the RFC 7239 `Forwarded` syntax is not supported: use a header that lists addresses, such as X-Forwarded-For".to_owned());
    }
    HeaderName::from_bytes(text.as_bytes()).map_err(|_| "not a valid HTTP header name".to_owned())
}

impl ServeConfig {
    /// Merges flags, environment and the config file, and validates every value.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first setting that is invalid, missing or in conflict.
    pub fn resolve(args: &ServeArgs, env: &dyn Environment) -> Result<Self, ConfigError> {
        let config_path = args
            .config
            .clone()
            .or_else(|| env.var("GUARDRAIL_CONFIG").map(PathBuf::from));
        let file = match &config_path {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        Self::resolve_with_file(args, env, file)
    }

    /// Like [`ServeConfig::resolve`], with the config file already parsed.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first setting that is invalid, missing or in conflict.
    pub fn resolve_with_file(
        args: &ServeArgs,
        env: &dyn Environment,
        file: FileConfig,
    ) -> Result<Self, ConfigError> {
        let listen = match pick(
            args.listen.as_deref(),
            "--listen",
            env,
            "GUARDRAIL_LISTEN",
            file.listen,
            "listen",
        ) {
            Some(raw) => parse_with("listen address", &raw, str::parse)?,
            None => ListenAddr::Socket(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080)),
        };

        let public_url = match pick(
            args.public_url.as_deref(),
            "--public-url",
            env,
            "GUARDRAIL_PUBLIC_URL",
            file.public_url,
            "public_url",
        ) {
            Some(raw) => parse_with("public URL", &raw, str::parse)?,
            None if listen.is_loopback() && listen.port() != 0 => {
                PublicUrl(format!("http://localhost:{}", listen.port()))
            }
            None => {
                return Err(ConfigError::Missing {
                    setting: "public URL",
                    hint: "set --public-url (or GUARDRAIL_PUBLIC_URL) to the https:// URL clients reach this server at",
                });
            }
        };

        let database = match pick(
            args.database.as_deref(),
            "--database",
            env,
            "GUARDRAIL_DATABASE",
            file.database,
            "database",
        ) {
            Some(raw) => parse_with("database URL", &raw, str::parse)?,
            None => DatabaseUrl::Sqlite(PathBuf::from("guardrail.sqlite3")),
        };

        let geoip = pick(
            args.geoip.as_deref().and_then(Path::to_str),
            "--geoip",
            env,
            "GUARDRAIL_GEOIP",
            file.geoip.map(|path| path.to_string_lossy().into_owned()),
            "geoip",
        )
        .map(|raw| PathBuf::from(raw.value));

        let trusted_proxies = Self::trusted_proxies(args, env, file.trusted_proxies)?;

        let client_ip_header = match pick(
            args.client_ip_header.as_deref(),
            "--client-ip-header",
            env,
            "GUARDRAIL_CLIENT_IP_HEADER",
            file.client_ip_header,
            "client_ip_header",
        ) {
            Some(raw) => parse_with("client IP header", &raw, parse_header)?,
            None => HeaderName::from_static("x-forwarded-for"),
        };

        let allow_private_webhooks = Self::switch(
            args.allow_private_webhooks,
            "--allow-private-webhooks",
            env,
            "GUARDRAIL_ALLOW_PRIVATE_WEBHOOKS",
            file.allow_private_webhooks,
            "allow_private_webhooks",
        )?;
        let test_clock = Self::switch(
            args.test_clock,
            "--test-clock",
            env,
            "GUARDRAIL_TEST_CLOCK",
            file.test_clock,
            "test_clock",
        )?;

        let key_file = pick(
            args.secret_key_file.as_deref().and_then(Path::to_str),
            "--secret-key-file",
            env,
            "GUARDRAIL_SECRET_KEY_FILE",
            file.secret_key_file
                .map(|path| path.to_string_lossy().into_owned()),
            "secret_key_file",
        );
        let secret_key = match (key_file, env.var("GUARDRAIL_SECRET_KEY")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Conflict(
                    "both GUARDRAIL_SECRET_KEY and a secret key file are set: keep only one",
                ));
            }
            (Some(raw), None) => SecretKeySource::File(PathBuf::from(raw.value)),
            (None, Some(encoded)) => {
                let key =
                    SecretKey::from_base64(&encoded).map_err(|error| ConfigError::Invalid {
                        setting: "secret key",
                        origin: "GUARDRAIL_SECRET_KEY".to_owned(),
                        value: "(hidden)".to_owned(),
                        reason: error.to_string(),
                    })?;
                SecretKeySource::Inline(key)
            }
            (None, None) => match &database {
                DatabaseUrl::Sqlite(path) => {
                    let mut beside = path.as_os_str().to_owned();
                    beside.push(".key");
                    SecretKeySource::CreateBeside(PathBuf::from(beside))
                }
                DatabaseUrl::Memory => SecretKeySource::Ephemeral,
                DatabaseUrl::Postgres(_) => {
                    return Err(ConfigError::Missing {
                        setting: "secret key",
                        hint: "a PostgreSQL database needs a key that every replica shares: set GUARDRAIL_SECRET_KEY_FILE or GUARDRAIL_SECRET_KEY",
                    });
                }
            },
        };

        let log_format = match pick(
            args.log_format.as_deref(),
            "--log-format",
            env,
            "GUARDRAIL_LOG_FORMAT",
            file.log_format,
            "log_format",
        ) {
            Some(raw) => parse_with("log format", &raw, str::parse)?,
            None => LogFormat::Text,
        };

        let seconds = |flag: &Option<String>,
                       flag_name,
                       env_name,
                       file_value: Option<u64>,
                       key,
                       setting,
                       default,
                       min,
                       max|
         -> Result<u64, ConfigError> {
            match pick(
                flag.as_deref(),
                flag_name,
                env,
                env_name,
                file_value.map(|v| v.to_string()),
                key,
            ) {
                Some(raw) => parse_with(setting, &raw, |text| {
                    parse_bounded(text, min, max, "seconds")
                }),
                None => Ok(default),
            }
        };
        let nonce_skew = seconds(
            &args.nonce_skew_seconds,
            "--nonce-skew-seconds",
            "GUARDRAIL_NONCE_SKEW_SECONDS",
            file.nonce_skew_seconds,
            "nonce_skew_seconds",
            "nonce skew",
            60,
            1,
            600,
        )?;
        let lockout_period = seconds(
            &args.lockout_seconds,
            "--lockout-seconds",
            "GUARDRAIL_LOCKOUT_SECONDS",
            file.lockout_seconds,
            "lockout_seconds",
            "lockout period",
            900,
            1,
            86_400,
        )?;
        let sweep_interval = seconds(
            &args.sweep_interval_seconds,
            "--sweep-interval-seconds",
            "GUARDRAIL_SWEEP_INTERVAL_SECONDS",
            file.sweep_interval_seconds,
            "sweep_interval_seconds",
            "sweep interval",
            60,
            1,
            60,
        )?;

        let lockout_failures = match pick(
            args.lockout_failures.as_deref(),
            "--lockout-failures",
            env,
            "GUARDRAIL_LOCKOUT_FAILURES",
            file.lockout_failures.map(|v| v.to_string()),
            "lockout_failures",
        ) {
            Some(raw) => parse_with("lockout failures", &raw, |text| {
                parse_bounded(text, 1, 100, "failures")
            })?,
            None => 3,
        };

        Ok(Self {
            listen,
            public_url,
            database,
            geoip,
            trusted_proxies,
            client_ip_header,
            allow_private_webhooks,
            test_clock,
            secret_key,
            log_format,
            nonce_skew: Duration::from_secs(nonce_skew),
            // Bounded to 1..=100 above.
            lockout_failures: u32::try_from(lockout_failures).unwrap_or(u32::MAX),
            lockout_period: Duration::from_secs(lockout_period),
            sweep_interval: Duration::from_secs(sweep_interval),
        })
    }

    fn trusted_proxies(
        args: &ServeArgs,
        env: &dyn Environment,
        file: Option<Vec<String>>,
    ) -> Result<Vec<IpNetwork>, ConfigError> {
        let (entries, origin) = if !args.trusted_proxies.is_empty() {
            (args.trusted_proxies.clone(), "--trusted-proxy".to_owned())
        } else if let Some(value) = env.var("GUARDRAIL_TRUSTED_PROXIES") {
            (
                value.split(',').map(str::to_owned).collect(),
                "GUARDRAIL_TRUSTED_PROXIES".to_owned(),
            )
        } else if let Some(list) = file {
            (list, "config key `trusted_proxies`".to_owned())
        } else {
            return Ok(Vec::new());
        };
        entries
            .into_iter()
            .map(|value| {
                let raw = Raw {
                    value,
                    origin: origin.clone(),
                };
                parse_with("trusted proxy", &raw, parse_proxy)
            })
            .collect()
    }

    fn switch(
        flag: bool,
        flag_name: &str,
        env: &dyn Environment,
        env_name: &str,
        file: Option<bool>,
        key: &str,
    ) -> Result<bool, ConfigError> {
        let flag = flag.then_some("true");
        match pick(
            flag,
            flag_name,
            env,
            env_name,
            file.map(|v| v.to_string()),
            key,
        ) {
            Some(raw) => parse_with("switch", &raw, parse_bool),
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    fn resolve(
        args: &ServeArgs,
        pairs: &[(&'static str, &'static str)],
        file: &str,
    ) -> Result<ServeConfig, ConfigError> {
        let file = FileConfig::parse(Path::new("test.toml"), file)?;
        ServeConfig::resolve_with_file(args, &env(pairs), file)
    }

    #[test]
    fn defaults() {
        let config = resolve(&ServeArgs::default(), &[], "").unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.public_url.as_str(), "http://localhost:8080");
        assert_eq!(config.database.to_string(), DEFAULT_DATABASE);
        assert_eq!(config.client_ip_header.as_str(), "x-forwarded-for");
        assert!(
            config
                .client_ip_header
                .as_str()
                .eq_ignore_ascii_case(DEFAULT_CLIENT_IP_HEADER)
        );
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.nonce_skew, Duration::from_secs(60));
        assert_eq!(config.lockout_failures, 3);
        assert_eq!(config.lockout_period, Duration::from_secs(900));
        assert_eq!(config.sweep_interval, Duration::from_secs(60));
        assert!(!config.allow_private_webhooks);
        assert!(!config.test_clock);
        assert!(config.trusted_proxies.is_empty());
        assert!(
            matches!(&config.secret_key, SecretKeySource::CreateBeside(path) if path == Path::new("guardrail.sqlite3.key"))
        );
    }

    #[test]
    fn precedence_flag_env_file() {
        let file = "listen = \"127.0.0.1:7000\"\nlog_format = \"json\"\nlockout_failures = 5\n";
        let config = resolve(&ServeArgs::default(), &[], file).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.lockout_failures, 5);

        let config = resolve(
            &ServeArgs::default(),
            &[
                ("GUARDRAIL_LISTEN", "127.0.0.1:7100"),
                ("GUARDRAIL_LOCKOUT_FAILURES", ""),
            ],
            file,
        )
        .unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:7100");
        // An empty variable counts as unset, so the file decides.
        assert_eq!(config.lockout_failures, 5);

        let args = ServeArgs {
            listen: Some("127.0.0.1:7200".into()),
            ..ServeArgs::default()
        };
        let config = resolve(&args, &[("GUARDRAIL_LISTEN", "127.0.0.1:7100")], file).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:7200");
        assert_eq!(config.public_url.as_str(), "http://localhost:7200");
    }

    #[test]
    fn switches() {
        let config = resolve(
            &ServeArgs::default(),
            &[("GUARDRAIL_TEST_CLOCK", "yes")],
            "allow_private_webhooks = true",
        )
        .unwrap();
        assert!(config.test_clock);
        assert!(config.allow_private_webhooks);
        // The environment turns off what the file turns on.
        let config = resolve(
            &ServeArgs::default(),
            &[("GUARDRAIL_ALLOW_PRIVATE_WEBHOOKS", "off")],
            "allow_private_webhooks = true",
        )
        .unwrap();
        assert!(!config.allow_private_webhooks);
        let args = ServeArgs {
            test_clock: true,
            ..ServeArgs::default()
        };
        assert!(
            resolve(&args, &[("GUARDRAIL_TEST_CLOCK", "false")], "")
                .unwrap()
                .test_clock
        );
        let error = resolve(
            &ServeArgs::default(),
            &[("GUARDRAIL_TEST_CLOCK", "maybe")],
            "",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid switch `maybe` (from GUARDRAIL_TEST_CLOCK): expected true or false"
        );
    }

    #[test]
    fn listen_forms() {
        assert_eq!(
            "localhost:9000"
                .parse::<ListenAddr>()
                .unwrap()
                .socket_addrs()
                .len(),
            2
        );
        assert_eq!(
            "localhost:9000"
                .parse::<ListenAddr>()
                .unwrap()
                .socket_addrs(),
            [
                "127.0.0.1:9000".parse::<SocketAddr>().unwrap(),
                "[::1]:9000".parse().unwrap()
            ]
        );
        assert_eq!(
            "[::1]:80".parse::<ListenAddr>().unwrap().socket_addrs(),
            ["[::1]:80".parse::<SocketAddr>().unwrap()]
        );
        assert!("localhost:0".parse::<ListenAddr>().is_err());
        let args = ServeArgs {
            listen: Some("example.com:80".into()),
            ..ServeArgs::default()
        };
        let error = resolve(&args, &[], "").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid listen address `example.com:80` (from --listen): expected IPV4:PORT, [IPV6]:PORT or localhost:PORT"
        );
    }

    #[test]
    fn public_url_rules() {
        for good in [
            "https://guardrail.example.com",
            "https://guardrail.example.com:8443",
            "http://localhost",
            "http://localhost:8080",
        ] {
            assert_eq!(good.parse::<PublicUrl>().unwrap().as_str(), good);
        }
        let cases = [
            (
                "https://example.com/",
                "remove the trailing slash: `https://example.com`",
            ),
            (
                "https://example.com/api",
                "a public URL has no path, query or fragment",
            ),
            (
                "https://example.com?x=1",
                "a public URL has no path, query or fragment",
            ),
            (
                "https://user:pw@example.com",
                "a public URL has no user name or password",
            ),
            (
                "http://example.com",
                "expected `https://HOST[:PORT]` or `http://localhost[:PORT]`",
            ),
            (
                "ftp://example.com",
                "expected `https://HOST[:PORT]` or `http://localhost[:PORT]`",
            ),
            (
                "http://127.0.0.1:8080",
                "SikkerKey clients accept plain http only for `http://localhost`: write localhost instead",
            ),
        ];
        for (text, reason) in cases {
            assert_eq!(text.parse::<PublicUrl>().unwrap_err(), reason, "{text}");
        }
        let error = resolve(
            &ServeArgs::default(),
            &[("GUARDRAIL_PUBLIC_URL", "http://example.com")],
            "",
        )
        .unwrap_err();
        assert!(
            error.to_string().starts_with(
                "invalid public URL `http://example.com` (from GUARDRAIL_PUBLIC_URL): "
            ),
            "{error}"
        );
    }

    #[test]
    fn public_url_required_off_loopback() {
        let error = resolve(&ServeArgs::default(), &[], "listen = \"0.0.0.0:8080\"").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("missing public URL: set --public-url"),
            "{error}"
        );
    }

    #[test]
    fn database_forms_and_redaction() {
        assert_eq!(
            "sqlite:///var/lib/g.db".parse::<DatabaseUrl>().unwrap(),
            DatabaseUrl::Sqlite("/var/lib/g.db".into())
        );
        assert_eq!(
            "memory://".parse::<DatabaseUrl>().unwrap(),
            DatabaseUrl::Memory
        );
        let pg: DatabaseUrl = "postgres://guard:hunter2@db.internal:5432/guardrail"
            .parse()
            .unwrap();
        assert_eq!(
            pg.to_string(),
            "postgres://guard:***@db.internal:5432/guardrail"
        );
        assert!(!format!("{pg:?}").contains("hunter2"));
        assert!("sqlite://".parse::<DatabaseUrl>().is_err());
        assert_eq!(
            "mysql://x".parse::<DatabaseUrl>().unwrap_err(),
            "expected `sqlite://PATH`, `postgres://...` or `memory://`"
        );
    }

    #[test]
    fn postgres_needs_a_key() {
        let error = resolve(
            &ServeArgs::default(),
            &[("GUARDRAIL_DATABASE", "postgres://db.internal/g")],
            "",
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("missing secret key: a PostgreSQL database"),
            "{error}"
        );
        let config = resolve(
            &ServeArgs::default(),
            &[
                ("GUARDRAIL_DATABASE", "postgres://db.internal/g"),
                ("GUARDRAIL_SECRET_KEY_FILE", "/etc/guardrail/key"),
            ],
            "",
        )
        .unwrap();
        assert!(
            matches!(config.secret_key, SecretKeySource::File(ref path) if path == Path::new("/etc/guardrail/key"))
        );
    }

    #[test]
    fn secret_key_sources() {
        let encoded = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let pairs: [(&'static str, &'static str); 1] = [("GUARDRAIL_SECRET_KEY", encoded)];
        let config = resolve(&ServeArgs::default(), &pairs, "").unwrap();
        assert!(matches!(config.secret_key, SecretKeySource::Inline(_)));
        assert!(!format!("{config:?}").contains(encoded));

        let error = resolve(
            &ServeArgs::default(),
            &[("GUARDRAIL_SECRET_KEY", "c2hvcnQ=")],
            "",
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("invalid secret key `(hidden)` (from GUARDRAIL_SECRET_KEY): "),
            "{error}"
        );

        let error = resolve(&ServeArgs::default(), &pairs, "secret_key_file = \"/k\"").unwrap_err();
        assert_eq!(
            error.to_string(),
            "both GUARDRAIL_SECRET_KEY and a secret key file are set: keep only one"
        );

        let config = resolve(
            &ServeArgs::default(),
            &[("GUARDRAIL_DATABASE", "memory://")],
            "",
        )
        .unwrap();
        assert!(matches!(config.secret_key, SecretKeySource::Ephemeral));
    }

    #[test]
    fn trusted_proxy_lists() {
        let config = resolve(
            &ServeArgs::default(),
            &[("GUARDRAIL_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1,::1")],
            "",
        )
        .unwrap();
        let rendered: Vec<String> = config
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(rendered, ["10.0.0.0/8", "192.0.2.1/32", "::1/128"]);

        let args = ServeArgs {
            trusted_proxies: vec!["172.16.0.0/12".into()],
            ..ServeArgs::default()
        };
        let config = resolve(
            &args,
            &[("GUARDRAIL_TRUSTED_PROXIES", "10.0.0.0/8")],
            "trusted_proxies = [\"192.0.2.0/24\"]",
        )
        .unwrap();
        assert_eq!(config.trusted_proxies.len(), 1);
        assert_eq!(config.trusted_proxies[0].to_string(), "172.16.0.0/12");

        let config = resolve(
            &ServeArgs::default(),
            &[],
            "trusted_proxies = [\"192.0.2.0/24\"]",
        )
        .unwrap();
        assert_eq!(config.trusted_proxies[0].to_string(), "192.0.2.0/24");

        let error = resolve(
            &ServeArgs::default(),
            &[("GUARDRAIL_TRUSTED_PROXIES", "10.1.2.3/8")],
            "",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid trusted proxy `10.1.2.3/8` (from GUARDRAIL_TRUSTED_PROXIES): host bits are set: write `10.0.0.0/8`"
        );
        let error = resolve(
            &ServeArgs::default(),
            &[],
            "trusted_proxies = [\"::ffff:10.0.0.1\"]",
        )
        .unwrap_err();
        assert!(error.to_string().contains("write the IPv4 form"), "{error}");
        assert!(
            resolve(
                &ServeArgs::default(),
                &[("GUARDRAIL_TRUSTED_PROXIES", "proxy.local")],
                ""
            )
            .is_err()
        );
    }

    #[test]
    fn header_names() {
        let args = ServeArgs {
            client_ip_header: Some("X-Real-IP".into()),
            ..ServeArgs::default()
        };
        assert_eq!(
            resolve(&args, &[], "").unwrap().client_ip_header.as_str(),
            "x-real-ip"
        );
        let args = ServeArgs {
            client_ip_header: Some("Forwarded".into()),
            ..ServeArgs::default()
        };
        assert!(
            resolve(&args, &[], "")
                .unwrap_err()
                .to_string()
                .contains("`Forwarded` syntax is not supported")
        );
        let args = ServeArgs {
            client_ip_header: Some("bad header".into()),
            ..ServeArgs::default()
        };
        assert!(
            resolve(&args, &[], "")
                .unwrap_err()
                .to_string()
                .ends_with("not a valid HTTP header name")
        );
    }

    #[test]
    fn numeric_bounds() {
        let error = resolve(&ServeArgs::default(), &[], "sweep_interval_seconds = 61").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid sweep interval `61` (from config key `sweep_interval_seconds`): expected 1 to 60 seconds"
        );
        let args = ServeArgs {
            nonce_skew_seconds: Some("-5".into()),
            ..ServeArgs::default()
        };
        let error = resolve(&args, &[], "").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid nonce skew `-5` (from --nonce-skew-seconds): expected a whole number of seconds"
        );
        let error = resolve(
            &ServeArgs::default(),
            &[("GUARDRAIL_LOCKOUT_FAILURES", "0")],
            "",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid lockout failures `0` (from GUARDRAIL_LOCKOUT_FAILURES): expected 1 to 100 failures"
        );
        let config = resolve(
            &ServeArgs::default(),
            &[
                ("GUARDRAIL_LOCKOUT_SECONDS", "60"),
                ("GUARDRAIL_SWEEP_INTERVAL_SECONDS", "5"),
            ],
            "",
        )
        .unwrap();
        assert_eq!(config.lockout_period, Duration::from_secs(60));
        assert_eq!(config.sweep_interval, Duration::from_secs(5));
    }

    #[test]
    fn config_file_errors() {
        let error = FileConfig::parse(Path::new("g.toml"), "listn = \"x\"").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("invalid config file `g.toml`: unknown field `listn`"),
            "{error}"
        );
        let error =
            FileConfig::parse(Path::new("g.toml"), "lockout_failures = \"three\"").unwrap_err();
        assert!(error.to_string().contains("invalid type"), "{error}");
        let error = FileConfig::load(Path::new("/nonexistent/guardrail.toml")).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot read config file `/nonexistent/guardrail.toml`: "),
            "{error}"
        );
    }
}
