//! Two server processes on one PostgreSQL database, standing in for replicas: state written
//! through one is read through the other, nonces and lockouts are shared.
//!
//! Runs only when `GUARDRAIL_TEST_POSTGRES_URL` names a PostgreSQL server whose user may create
//! databases, such as `postgres://postgres@127.0.0.1:5432/postgres`. The test creates a fresh
//! database on it and drops it at the end.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use postgres::NoTls;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use url::Url;

use crate::support::{Machine, Server};

/// The variable naming the PostgreSQL server to test against.
const POSTGRES_URL_VAR: &str = "GUARDRAIL_TEST_POSTGRES_URL";

/// The replay must arrive inside the default 60-second freshness window, so that only the
/// shared nonce store can reject it.
const FRESH_FOR: Duration = Duration::from_secs(50);

/// A database created for one test, dropped when this guard is dropped.
struct TestDatabase {
    /// The URL that the test connected to, used again to drop the database.
    server_url: String,
    name: String,
    /// The URL of the created database.
    url: String,
}

impl TestDatabase {
    /// Creates `guardrail_e2e_<32 hex digits>` on the server at `server_url`.
    fn create(server_url: &str) -> Self {
        let mut suffix = [0_u8; 16];
        getrandom::fill(&mut suffix).expect("random database name");
        let hex: String = suffix.iter().map(|byte| format!("{byte:02x}")).collect();
        let name = format!("guardrail_e2e_{hex}");

        let mut client = postgres::Client::connect(server_url, NoTls)
            .unwrap_or_else(|error| panic!("connect to {POSTGRES_URL_VAR}: {error}"));
        // The name is generated above from hex digits, so it needs no quoting.
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|error| panic!("create database `{name}`: {error}"));

        let mut url = Url::parse(server_url)
            .unwrap_or_else(|error| panic!("invalid {POSTGRES_URL_VAR} `{server_url}`: {error}"));
        url.set_path(&format!("/{name}"));
        Self {
            server_url: server_url.to_owned(),
            name,
            url: url.into(),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // `WITH (FORCE)` (PostgreSQL 13 and later) ends connections that a server left open.
        let dropped = postgres::Client::connect(&self.server_url, NoTls).and_then(|mut client| {
            client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
        });
        if let Err(error) = dropped {
            eprintln!("failed to drop the test database `{}`: {error}", self.name);
        }
    }
}

/// Returns 32 random bytes in standard base64, the form `GUARDRAIL_SECRET_KEY` takes.
fn random_secret_key() -> String {
    let mut key = [0_u8; 32];
    getrandom::fill(&mut key).expect("random secret key");
    STANDARD.encode(key)
}

#[test]
fn replicas_share_state_nonces_and_lockouts() {
    let Ok(server_url) = std::env::var(POSTGRES_URL_VAR) else {
        println!("skipping: set {POSTGRES_URL_VAR}=postgres://... to run PostgreSQL tests");
        return;
    };
    // Declared before the servers, so that it is dropped after they are stopped.
    let database = TestDatabase::create(&server_url);
    let key = random_secret_key();
    let env = [("GUARDRAIL_SECRET_KEY", key.as_str())];
    let args = ["--lockout-failures", "3"];
    let replica_a = Server::start_with(Some(&database.url), &env, &args);
    let replica_b = Server::start_with(Some(&database.url), &env, &args);

    let admin_a = replica_a.create_vault("replicas", "pro", None);
    let admin_b = admin_a.on(&replica_b);
    let vault = admin_a.vault_id.as_str();

    // The steps alternate between the replicas.
    let token = admin_a.issue("replicated", json!({"days": 1}), Value::Null);
    let machine = replica_b.register_new_machine(vault, &token.plaintext);
    admin_a.approve(&machine.id);
    let project = admin_b.create_project("shared");
    admin_b.add_member(&project, &machine.id);
    let secret = admin_b.create_secret(&project, "database-password", json!("s3cret-value"));
    admin_b.grant(&secret, &machine.id);

    let read = machine.sign(Method::GET, &format!("/v1/secret/{secret}"), b"");
    let reply = replica_a.send_signed(&read, HeaderMap::new());
    assert_eq!(
        reply.status, 200,
        "a signed read on replica A: {}",
        reply.text
    );
    assert_eq!(reply.body, json!({"value": "s3cret-value"}));

    // The nonce that replica A recorded rejects the same request on replica B.
    let replayed = replica_b.send_signed(&read, HeaderMap::new());
    assert!(
        read.signed_at.elapsed() < FRESH_FOR,
        "the replay came too late to test the nonce store"
    );
    assert_eq!(
        replayed.status, 401,
        "a replay on replica B: {}",
        replayed.text
    );
    assert_eq!(replayed.error_message(), "authentication failed");

    // Failures from ::1 are counted apart from the replay above, which came from 127.0.0.1.
    let forger = Machine {
        id: machine.id.clone(),
        key: crate::support::generate_key(),
    };
    let path = format!("/v1/secret/{secret}");
    for attempt in 1..=3 {
        let forged = forger.sign(Method::GET, &path, b"");
        let reply = replica_a.send_to(
            &replica_a.ipv6_base_url(),
            Method::GET,
            &path,
            forged.headers,
            Vec::new(),
        );
        assert_eq!(
            reply.status, 401,
            "forged request {attempt} on replica A: {}",
            reply.text
        );
    }
    let genuine = machine.sign(Method::GET, &path, b"");
    let locked = replica_b.send_to(
        &replica_b.ipv6_base_url(),
        Method::GET,
        &path,
        genuine.headers,
        Vec::new(),
    );
    assert_eq!(
        locked.status, 429,
        "a genuine request on replica B from the locked-out source: {}",
        locked.text
    );
    let retry_after: u64 = locked
        .headers
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .expect("an ASCII Retry-After")
        .parse()
        .expect("Retry-After in seconds");
    assert!(
        (1..=900).contains(&retry_after),
        "Retry-After within the default 900-second lockout: {retry_after}"
    );
    assert_eq!(
        locked.error_message(),
        format!("too many failed attempts, retry in {retry_after} seconds")
    );

    // The other source is not locked out.
    let fresh = replica_b.signed(&machine, Method::GET, &path, b"");
    assert_eq!(
        fresh.status, 200,
        "a read from 127.0.0.1 on B: {}",
        fresh.text
    );

    // Both replicas write to the one audit log.
    let reasons: Vec<String> = admin_a
        .audit("auth_failure")
        .iter()
        .filter_map(|entry| entry["detail"]["reason"].as_str().map(str::to_owned))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|reason| reason.starts_with("replayed nonce")),
        "the replay on B, listed through A: {reasons:?}"
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|reason| *reason == "invalid signature")
            .count(),
        3,
        "the forged requests on A: {reasons:?}"
    );
}
