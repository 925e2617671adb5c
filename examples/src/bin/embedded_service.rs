//! A small service that embeds `guardrail-core` with its own store and HTTP layer, and serves
//! one machine route, `GET /v1/secret/{secretId}`, on `127.0.0.1`.
//!
//! At start it creates a vault. Then, for each of two machines, it issues a bootstrap token and
//! registers the machine with a fresh Ed25519 key. `worker` has no guardrails. `office-only` may
//! connect only from `10.0.0.0/8`, which excludes the loopback address that every request here
//! comes from. Both machines have a grant on one secret. The private keys stay in memory and are
//! never printed.
//!
//! Each request goes through the flow a service author writes around the engine:
//!
//! 1. read the request with the bounded parser of [`guardrail_examples::http`],
//! 2. parse the four signed headers with [`SignedRequest::parse`],
//! 3. run the lockout check (429 with `Retry-After` when the source is locked out),
//! 4. load the machine and call [`evaluate()`], which runs the nine steps,
//! 5. persist the decision's audit events (and print them), increment the failure counter the
//!    decision names, and answer with its status and a `{"value"}` or `{"error"}` body.
//!
//! Run it with:
//!
//! ```text
//! cargo run -p guardrail-examples --bin embedded_service -- --demo
//! cargo run -p guardrail-examples --bin embedded_service -- 8080
//! ```
//!
//! With `--demo` the program also acts as its own client: it signs requests with the machines'
//! keys and shows an allowed read, a guardrail block (twice, folded into one audit entry), a
//! rejected replay, a bad signature, an unknown machine, and the lockout that the third
//! authentication failure from one address causes; then it exits with 0. Without `--demo` it serves until it is stopped with Ctrl-C. The port argument
//! defaults to 0, which picks a free port; the address is printed at start.
//!
//! # What the example leaves out
//!
//! The client address is the TCP peer, because this service sits behind no proxy. No machine
//! here enables the country axis, so the country resolver is an empty table; a real service
//! loads a MaxMind database into `MaxMindCountryResolver`. Nothing survives a restart.

use std::error::Error;
use std::io::{BufReader, Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64_STANDARD;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer as _, SigningKey};
use guardrail_core::evaluate::{EvaluationConfig, MachineRoute, NOT_FOUND, Outcome, UNAVAILABLE};
use guardrail_core::guardrail::{Guardrails, IpAllowlist, StaticCountryResolver};
use guardrail_core::ids::{MachineId, OwnerId, SecretId, VaultId};
use guardrail_core::lifetime::Lifetime;
use guardrail_core::lockout::{CoalescePolicy, LockStatus, LockoutKey, LockoutPolicy};
use guardrail_core::machine::{MachinePublicKey, register_machine};
use guardrail_core::plan::{Owner, Plan, Vault};
use guardrail_core::request::{
    MACHINE_ID_HEADER, NONCE_HEADER, RawRequest, SIGNATURE_HEADER, TIMESTAMP_HEADER, body_hash,
};
use guardrail_core::token::{TokenRandomness, TokenRequest, check_redemption, issue_token};
use guardrail_core::{Evaluation, SignedRequest, evaluate};
use guardrail_examples::http::{self, Request, Response};
use guardrail_examples::random_bytes;
use guardrail_examples::store::{Limits, MemoryStore};
use serde_json::json;

type BoxError = Box<dyn Error + Send + Sync>;

const USAGE: &str = "usage: embedded_service [PORT] [--demo]";
/// The route prefix this service serves.
const SECRET_ROUTE: &str = "/v1/secret/";
/// The body of a 429.
const LOCKED_OUT: &str = "too many failed attempts, retry later";
/// The demo secret's value. It is made up, and the service never prints it.
const DEMO_SECRET_VALUE: &str = "example-database-password";
/// Connections served at once; further connections get 503 straight away.
const MAX_CONNECTIONS: usize = 64;
/// How long a connection may take to send its request or read the response.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), BoxError> {
    let Some(args) = Args::parse(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };

    let store = MemoryStore::new(
        Limits::default(),
        LockoutPolicy::default(),
        CoalescePolicy::default(),
    );
    let demo = set_up(&store, Utc::now())?;
    let service = Arc::new(Service {
        store,
        countries: StaticCountryResolver::default(),
        config: EvaluationConfig::default(),
    });

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, args.port))?;
    let address = listener.local_addr()?;
    println!("listening on http://{address}");

    if !args.demo {
        // The keys are dropped here, so no client can sign for these machines.
        drop(demo);
        serve(&listener, &service);
        return Ok(());
    }
    thread::spawn(move || serve(&listener, &service));
    let client = thread::spawn(move || run_demo(address, &demo));
    match client.join() {
        Ok(result) => result,
        Err(_) => Err("the demo client thread panicked".into()),
    }
}

/// The command line: an optional port and the `--demo` flag.
struct Args {
    port: u16,
    demo: bool,
}

impl Args {
    /// Parses the arguments; `None` when help was requested.
    fn parse(args: impl Iterator<Item = String>) -> Result<Option<Self>, BoxError> {
        let mut parsed = Self {
            port: 0,
            demo: false,
        };
        let mut port_seen = false;
        for arg in args {
            match arg.as_str() {
                "--demo" => parsed.demo = true,
                "-h" | "--help" => return Ok(None),
                other if !port_seen => {
                    parsed.port = other.parse().map_err(|_| {
                        format!("invalid port `{other}`: expected 0 to 65535\n{USAGE}")
                    })?;
                    port_seen = true;
                }
                other => return Err(format!("unexpected argument `{other}`\n{USAGE}").into()),
            }
        }
        Ok(Some(parsed))
    }
}

// ---------------------------------------------------------------------------------------------
// Setup: a vault, two machines registered through bootstrap tokens, one secret.
// ---------------------------------------------------------------------------------------------

/// A machine's id and private key, kept only for the demo client.
struct DemoMachine {
    id: MachineId,
    key: SigningKey,
}

/// The demo client's inputs: the secret to read and the two machines' keys.
struct Demo {
    secret: SecretId,
    worker: DemoMachine,
    office_only: DemoMachine,
}

fn set_up(store: &MemoryStore, now: DateTime<Utc>) -> Result<Demo, BoxError> {
    let owner = Owner {
        id: OwnerId::from_random_bytes(&random_bytes()?),
        active: true,
    };
    let vault = Vault {
        id: VaultId::from_random_bytes(&random_bytes()?),
        owner_id: owner.id.clone(),
        name: "example".to_owned(),
        plan: Plan::Pro,
        machine_limit: 10,
        ip_allowlist: None,
    };
    store.insert_owner(owner.clone());
    store.insert_vault(vault.clone());
    println!("vault {} created", vault.id);

    let worker = register(store, &vault, &owner, "worker", Guardrails::default(), now)?;
    let office_guardrails = Guardrails {
        ip_allowlist: Some(IpAllowlist::parse(&["10.0.0.0/8"])?),
        ..Guardrails::default()
    };
    let office_only = register(store, &vault, &owner, "office-only", office_guardrails, now)?;

    let secret = SecretId::from_random_bytes(&random_bytes()?);
    store.insert_secret(secret.clone(), DEMO_SECRET_VALUE.to_owned());
    store.grant(worker.id, secret.clone());
    store.grant(office_only.id, secret.clone());
    println!("secret {secret} created and granted to both machines");

    Ok(Demo {
        secret,
        worker,
        office_only,
    })
}

/// Issues a token, registers a machine with a fresh key through it, and approves the machine,
/// as the owner and the operator would in three separate requests.
fn register(
    store: &MemoryStore,
    vault: &Vault,
    owner: &Owner,
    name: &str,
    guardrails: Guardrails,
    now: DateTime<Utc>,
) -> Result<DemoMachine, BoxError> {
    let secret: [u8; 32] = random_bytes()?;
    let issued = issue_token(
        vault,
        &owner.id,
        TokenRequest {
            machine_name: name.to_owned(),
            description: None,
            machine_lifetime: Lifetime::new(0, 1, 0),
            token_lifetime_hours: None,
            guardrails,
        },
        TokenRandomness {
            id: random_bytes()?,
            secret: &secret,
        },
        now,
    )?;
    println!("audit {}", store.persist_event(issued.event));

    // The operator's machine generates its key pair and presents the token's plaintext. The
    // store would look the token up by `plaintext.hash()`; here the row is at hand.
    let key = SigningKey::from_bytes(&random_bytes()?);
    let public_key = MachinePublicKey::from_bytes(key.verifying_key().as_bytes())?;
    let redeemable = check_redemption(Some(issued.token), &issued.plaintext, &vault.id, now)?;
    let count = store.machine_count(&vault.id);
    let registration =
        register_machine(redeemable, public_key, vault, count, random_bytes()?, now)?;
    println!("audit {}", store.persist_event(registration.event));

    let (machine, event) = registration.machine.approve(&owner.id, now)?;
    println!("audit {}", store.persist_event(event));
    println!(
        "machine {name} is {} with id {}, expires at {}",
        machine.state.as_str(),
        machine.id,
        machine.expires_at.to_rfc3339()
    );
    let id = machine.id;
    store.insert_machine(machine);
    Ok(DemoMachine { id, key })
}

// ---------------------------------------------------------------------------------------------
// Serving: one thread per connection, one request per connection.
// ---------------------------------------------------------------------------------------------

/// Everything a request handler reads.
struct Service {
    store: MemoryStore,
    countries: StaticCountryResolver,
    config: EvaluationConfig,
}

/// Accepts connections until the listener fails, each on its own thread.
fn serve(listener: &TcpListener, service: &Arc<Service>) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                eprintln!("accept failed: {error}");
                continue;
            }
        };
        let slot = ConnectionSlot::take(&active);
        if slot.is_none() {
            eprintln!("rejected a connection: {MAX_CONNECTIONS} connections already open");
            let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
            let _ = Response::error(503, UNAVAILABLE).write_to(&mut stream);
            continue;
        }
        let service = Arc::clone(service);
        thread::spawn(move || {
            handle_connection(&stream, &service);
            drop(slot);
        });
    }
}

/// One of the [`MAX_CONNECTIONS`] connection slots, given back when dropped.
struct ConnectionSlot(Arc<AtomicUsize>);

impl ConnectionSlot {
    fn take(active: &Arc<AtomicUsize>) -> Option<Self> {
        let open_before = active.fetch_add(1, Ordering::AcqRel);
        let slot = Self(Arc::clone(active));
        (open_before < MAX_CONNECTIONS).then_some(slot)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn handle_connection(stream: &TcpStream, service: &Service) {
    let peer = match stream.peer_addr() {
        Ok(peer) => peer.ip(),
        Err(error) => {
            eprintln!("dropped a connection without a peer address: {error}");
            return;
        }
    };
    if let Err(error) = stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
    {
        eprintln!("dropped a connection from {peer}: {error}");
        return;
    }

    let mut reader = BufReader::new(stream);
    let response = match http::read_request(&mut reader) {
        Ok(request) => service.handle(&request, peer, Utc::now()),
        Err(error) => {
            eprintln!("rejected a request from {peer}: {error}");
            match error.status() {
                Some(status) => Response::error(status, &error.to_string()),
                None => return,
            }
        }
    };
    let mut writer = stream;
    if let Err(error) = response.write_to(&mut writer) {
        eprintln!("failed to send a response to {peer}: {error}");
    }
}

impl Service {
    /// Handles one parsed request from `peer` at `now`.
    fn handle(&self, request: &Request, peer: IpAddr, now: DateTime<Utc>) -> Response {
        // Route first: anything but `GET /v1/secret/{secretId}` is not served, and costs the
        // client nothing on its failure counters.
        let route = match route_of(request) {
            Ok(route) => route,
            Err(response) => return response,
        };

        let signed = SignedRequest::parse(&RawRequest {
            method: request.method(),
            path: request.path(),
            machine_id: request.header(MACHINE_ID_HEADER),
            timestamp: request.header(TIMESTAMP_HEADER),
            nonce: request.header(NONCE_HEADER),
            signature: request.header(SIGNATURE_HEADER),
            body: request.body(),
        });
        // No proxy sits in front of this service, so the TCP peer is the client.
        let source = Some(peer);
        let machine_id = signed.machine_id().ok();

        // Before step 1: a locked-out source, or machine and source pair, is not evaluated.
        if let LockStatus::Locked {
            retry_after_seconds,
        } = self.store.lock_status(source, machine_id, now)
        {
            println!("request from {peer}: 429, locked out for {retry_after_seconds} s");
            return Response::error(429, LOCKED_OUT)
                .with_header("Retry-After", retry_after_seconds.to_string());
        }

        let record = machine_id.and_then(|id| self.store.load_record(id));
        // This service has no test clock, so the policy and transport clocks are the same.
        let decision = evaluate(&Evaluation {
            now,
            transport_now: now,
            source,
            request: &signed,
            record: record.as_ref().map(|record| record.as_record()),
            route: &route,
            countries: &self.countries,
            nonces: &self.store,
            routes: &self.store,
            config: self.config,
        });

        match &decision.outcome {
            Outcome::Allow { machine } => println!("request from {peer}: 200, machine {machine}"),
            Outcome::Deny { step, reason } => {
                println!("request from {peer}: {}, {step}: {reason}", decision.status);
            }
        }
        for entry in self.store.persist_decision(&decision, now) {
            println!("audit {entry}");
        }
        if let Some(key) = decision.rate_limit
            && let LockStatus::Locked {
                retry_after_seconds,
            } = self.store.record_failure(key, now)
        {
            println!("{} locked out for {retry_after_seconds} s", describe(&key));
        }

        if let Some(message) = decision.client_message {
            return Response::error(decision.status, message);
        }
        let MachineRoute::ReadSecret(secret) = &route else {
            return Response::error(404, NOT_FOUND);
        };
        match self.store.secret_value(secret) {
            Some(value) => Response::json(200, &json!({ "value": value })),
            // The secret was deleted after step 9 checked it.
            None => Response::error(404, NOT_FOUND),
        }
    }
}

/// Maps a request to the one route this service serves, or to the 404 or 405 response.
fn route_of(request: &Request) -> Result<MachineRoute, Response> {
    let Some(id) = request.path().strip_prefix(SECRET_ROUTE) else {
        return Err(Response::error(404, NOT_FOUND));
    };
    if request.method() != "GET" {
        return Err(Response::error(405, "method not allowed, use GET")
            .with_header("Allow", "GET".to_owned()));
    }
    // An id that cannot exist gets the same 404 as one that does not exist.
    let secret: SecretId = id.parse().map_err(|_| Response::error(404, NOT_FOUND))?;
    Ok(MachineRoute::ReadSecret(secret))
}

/// Names a lockout key for the log.
fn describe(key: &LockoutKey) -> String {
    let address = |source: &Option<IpAddr>| {
        source.map_or_else(|| "undetermined".to_owned(), |ip| ip.to_string())
    };
    match key {
        LockoutKey::Source(source) => format!("source {}", address(source)),
        LockoutKey::MachineSource(machine, source) => {
            format!("machine {machine} from source {}", address(source))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The demo client: signs requests the way the official SDKs do.
// ---------------------------------------------------------------------------------------------

fn run_demo(address: SocketAddr, demo: &Demo) -> Result<(), BoxError> {
    let path = format!("{SECRET_ROUTE}{}", demo.secret);
    let stranger = SigningKey::from_bytes(&random_bytes()?);
    let unknown = MachineId::from_random_bytes(random_bytes()?);

    let allowed = signed_get(&path, demo.worker.id, &demo.worker.key)?;
    exchange(address, "allowed read", &allowed, 200)?;

    let blocked = signed_get(&path, demo.office_only.id, &demo.office_only.key)?;
    exchange(address, "ip allowlist block", &blocked, 403)?;

    // An identical block soon after raises the count of the first block's audit entry.
    let blocked_again = signed_get(&path, demo.office_only.id, &demo.office_only.key)?;
    exchange(address, "ip allowlist block again", &blocked_again, 403)?;

    // The same bytes again: the signature still verifies, but the nonce was already used.
    exchange(address, "replayed request", &allowed, 401)?;

    let forged = signed_get(&path, demo.worker.id, &stranger)?;
    exchange(address, "bad signature", &forged, 401)?;

    // The third authentication failure from this address within the lockout period locks it.
    let unknown_machine = signed_get(&path, unknown, &stranger)?;
    exchange(address, "unknown machine", &unknown_machine, 401)?;

    let fresh = signed_get(&path, demo.worker.id, &demo.worker.key)?;
    exchange(address, "locked out", &fresh, 429)?;

    println!("demo finished: every response had the expected status");
    Ok(())
}

/// Builds a signed `GET` request: the key signs `GET:path:timestamp:nonce:bodyHash`, with a
/// fresh 16-byte nonce in padded standard base64 and the hash of the empty body.
fn signed_get(path: &str, machine: MachineId, key: &SigningKey) -> Result<Vec<u8>, BoxError> {
    let timestamp = Utc::now().timestamp();
    let nonce = BASE64_STANDARD.encode(random_bytes::<16>()?);
    let payload = format!("GET:{path}:{timestamp}:{nonce}:{}", body_hash(b""));
    let signature = BASE64_STANDARD.encode(key.sign(payload.as_bytes()).to_bytes());
    // Header names match case-insensitively; the Python SDK sends them in this spelling.
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-machine-id: {machine}\r\nX-timestamp: {timestamp}\r\nX-nonce: {nonce}\r\nX-signature: {signature}\r\nConnection: close\r\n\r\n"
    );
    Ok(request.into_bytes())
}

/// Sends `request`, prints the response's status and checks it against `expected`.
fn exchange(
    address: SocketAddr,
    label: &str,
    request: &[u8],
    expected: u16,
) -> Result<(), BoxError> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(request)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;

    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{label}: malformed response `{}`", head.escape_debug()))?;
    let retry_after = head
        .lines()
        .find_map(|line| line.strip_prefix("Retry-After: "))
        .map(|seconds| format!(" (Retry-After: {seconds})"))
        .unwrap_or_default();
    // The value of a secret is not printed, only its length.
    let body_summary = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(json) => match json.get("value").and_then(|value| value.as_str()) {
            Some(value) => format!("a value of {} bytes", value.len()),
            None => json.to_string(),
        },
        Err(_) => format!("a body that is not JSON: `{}`", body.escape_debug()),
    };
    println!(
        "demo: {label}: {status} {}{retry_after}, {body_summary}",
        http::reason_phrase(status)
    );

    if status != expected {
        return Err(format!("{label}: expected status {expected}, got {status}").into());
    }
    Ok(())
}
