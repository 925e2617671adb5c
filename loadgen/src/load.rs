//! Drives `GET /v1/secret/{id}` over N keep-alive connections for D seconds.
//!
//! Each connection is one task with its own HTTP/1.1 client holding one pooled connection, so
//! N tasks keep N connections open. Connection `i` signs as machine `i mod M`. Every request
//! gets the current timestamp, 16 fresh random bytes of nonce and a new signature, exactly as
//! the official clients build them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer as _;
use guardrail_core::request::{
    MACHINE_ID_HEADER, NONCE_HEADER, Nonce, SIGNATURE_HEADER, TIMESTAMP_HEADER, Timestamp,
    body_hash, signed_payload,
};
use hdrhistogram::Histogram;

use crate::setup::{Fixture, LoadMachine};
use crate::target::ServerUrl;

/// Maximum connections of one run.
pub const MAX_CONNECTIONS: usize = 256;
/// Maximum duration of one run, in seconds.
pub const MAX_DURATION_SECONDS: u64 = 300;
/// Latencies above this many microseconds (60 s) are recorded as this value.
const HIGHEST_LATENCY_MICROS: u64 = 60_000_000;

/// Connection count and duration of a run.
#[derive(Debug, Clone, Copy)]
pub struct LoadPlan {
    connections: usize,
    duration: Duration,
}

/// A load plan outside its bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPlan {
    /// Too few or too many connections.
    #[error("invalid connection count `{0}`: expected 1 to {MAX_CONNECTIONS}")]
    Connections(usize),
    /// Too short or too long.
    #[error("invalid duration `{0}` s: expected 1 to {MAX_DURATION_SECONDS} s")]
    Duration(u64),
}

impl LoadPlan {
    /// Makes a plan of `connections` connections for `seconds` seconds.
    ///
    /// # Errors
    ///
    /// [`InvalidPlan`] when `connections` is not 1 to [`MAX_CONNECTIONS`] or `seconds` not 1 to
    /// [`MAX_DURATION_SECONDS`].
    pub fn new(connections: usize, seconds: u64) -> Result<Self, InvalidPlan> {
        if connections == 0 || connections > MAX_CONNECTIONS {
            return Err(InvalidPlan::Connections(connections));
        }
        if seconds == 0 || seconds > MAX_DURATION_SECONDS {
            return Err(InvalidPlan::Duration(seconds));
        }
        Ok(Self {
            connections,
            duration: Duration::from_secs(seconds),
        })
    }

    /// Returns the number of connections.
    pub fn connections(&self) -> usize {
        self.connections
    }
}

/// Measurements of one run.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Wall time from the first request to the last response.
    pub elapsed: Duration,
    /// Responses counted by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no response (connection refused, reset, timed out).
    pub transport_errors: u64,
    /// Latency of every answered request, in microseconds.
    pub latency: Histogram<u64>,
}

impl LoadReport {
    /// Counts responses with status 200.
    pub fn ok(&self) -> u64 {
        self.statuses.get(&200).copied().unwrap_or(0)
    }

    /// Computes responses with status 200 per second of wall time.
    pub fn ok_per_second(&self) -> f64 {
        per_second(self.ok(), self.elapsed)
    }
}

/// `count / elapsed`, or 0 for an empty interval.
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// A run that could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
    /// A connection task panicked or was cancelled.
    #[error("a connection task ended abnormally: {0}")]
    Task(String),
    /// The fixture has no machine to sign with.
    #[error("the fixture has no machine: register at least one")]
    NoMachine,
}

struct Tally {
    statuses: BTreeMap<u16, u64>,
    transport_errors: u64,
    latency: Histogram<u64>,
}

#[expect(
    clippy::expect_used,
    reason = "constant bounds that `new_with_bounds` accepts; a unit test builds them"
)]
fn histogram() -> Histogram<u64> {
    // Three significant digits from 1 µs to 60 s.
    Histogram::new_with_bounds(1, HIGHEST_LATENCY_MICROS, 3).expect("valid histogram bounds")
}

/// Drives the server with `plan` and returns what it measured.
///
/// # Errors
///
/// [`LoadError`] when the client cannot be built or a connection task fails; failed requests
/// are counted in the report instead.
pub async fn run(
    server: &ServerUrl,
    fixture: &Fixture,
    plan: LoadPlan,
) -> Result<LoadReport, LoadError> {
    if fixture.machines.is_empty() {
        return Err(LoadError::NoMachine);
    }
    let path = format!("/v1/secret/{}", fixture.secret_id);
    let url: Arc<str> = server.join(&path).into();
    let path: Arc<str> = path.into();
    let started = Instant::now();
    let deadline = started + plan.duration;
    let mut tasks = Vec::with_capacity(plan.connections);
    for index in 0..plan.connections {
        let machine = &fixture.machines[index % fixture.machines.len()];
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .http1_only()
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(LoadError::Client)?;
        let connection = Connection {
            client,
            machine: LoadMachine {
                id: machine.id.clone(),
                key: machine.key.clone(),
            },
            url: Arc::clone(&url),
            path: Arc::clone(&path),
        };
        tasks.push(tokio::spawn(connection.drive(deadline)));
    }
    let mut total = Tally {
        statuses: BTreeMap::new(),
        transport_errors: 0,
        latency: histogram(),
    };
    for task in tasks {
        let tally = task
            .await
            .map_err(|error| LoadError::Task(error.to_string()))?;
        for (status, count) in tally.statuses {
            *total.statuses.entry(status).or_default() += count;
        }
        total.transport_errors += tally.transport_errors;
        // Both histograms share bounds, so adding cannot fail.
        let _ = total.latency.add(&tally.latency);
    }
    Ok(LoadReport {
        elapsed: started.elapsed(),
        statuses: total.statuses,
        transport_errors: total.transport_errors,
        latency: total.latency,
    })
}

struct Connection {
    client: reqwest::Client,
    machine: LoadMachine,
    url: Arc<str>,
    path: Arc<str>,
}

impl Connection {
    async fn drive(self, deadline: Instant) -> Tally {
        let mut tally = Tally {
            statuses: BTreeMap::new(),
            transport_errors: 0,
            latency: histogram(),
        };
        let empty_body_hash = body_hash(b"");
        while Instant::now() < deadline {
            let Some(headers) = self.sign(&empty_body_hash) else {
                tally.transport_errors += 1;
                continue;
            };
            let sent = Instant::now();
            let outcome = self
                .client
                .get(&*self.url)
                .header(MACHINE_ID_HEADER, &self.machine.id)
                .header(TIMESTAMP_HEADER, headers.timestamp)
                .header(NONCE_HEADER, headers.nonce)
                .header(SIGNATURE_HEADER, headers.signature)
                .send()
                .await;
            let status = match outcome {
                Ok(response) => {
                    let status = response.status().as_u16();
                    response.bytes().await.ok().map(|_| status)
                }
                Err(_) => None,
            };
            let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
            match status {
                Some(status) => {
                    *tally.statuses.entry(status).or_default() += 1;
                    tally.latency.saturating_record(micros.max(1));
                }
                None => tally.transport_errors += 1,
            }
        }
        tally
    }

    /// Builds the three signing headers for a GET of `self.path` now; `None` only when the
    /// random source or the clock fails.
    fn sign(&self, empty_body_hash: &str) -> Option<SignedHeaders> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).ok()?;
        let nonce_text = STANDARD.encode(bytes);
        let nonce = Nonce::parse(nonce_text.as_bytes()).ok()?;
        let timestamp = Timestamp::from_unix_seconds(chrono::Utc::now().timestamp())?;
        let payload = signed_payload("GET", &self.path, timestamp, &nonce, empty_body_hash);
        let signature = self.machine.key.sign(&payload);
        Some(SignedHeaders {
            timestamp: timestamp.to_string(),
            nonce: nonce_text,
            signature: STANDARD.encode(signature.to_bytes()),
        })
    }
}

struct SignedHeaders {
    timestamp: String,
    nonce: String,
    signature: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn plan_bounds_are_enforced() {
        assert!(LoadPlan::new(1, 1).is_ok());
        assert!(LoadPlan::new(MAX_CONNECTIONS, MAX_DURATION_SECONDS).is_ok());
        assert_eq!(
            LoadPlan::new(0, 10).unwrap_err().to_string(),
            "invalid connection count `0`: expected 1 to 256"
        );
        assert_eq!(
            LoadPlan::new(257, 10).unwrap_err(),
            InvalidPlan::Connections(257)
        );
        assert_eq!(
            LoadPlan::new(8, 301).unwrap_err().to_string(),
            "invalid duration `301` s: expected 1 to 300 s"
        );
        assert_eq!(LoadPlan::new(8, 0).unwrap_err(), InvalidPlan::Duration(0));
    }

    #[test]
    fn histogram_bounds_are_accepted() {
        let mut latency = histogram();
        latency.saturating_record(HIGHEST_LATENCY_MICROS * 2);
        assert!(latency.max() >= HIGHEST_LATENCY_MICROS);
        assert!(latency.max() < HIGHEST_LATENCY_MICROS * 2);
    }

    #[test]
    fn signed_headers_verify_with_core() {
        use guardrail_core::request::{RequestSignature, verify_signature};

        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let connection = Connection {
            client: reqwest::Client::new(),
            machine: LoadMachine {
                id: "0b6c7a52-8a43-4d7e-9a55-3f4e0c2b1a90".to_owned(),
                key: key.clone(),
            },
            url: "http://127.0.0.1:1/v1/secret/sk_abcdefghij".into(),
            path: "/v1/secret/sk_abcdefghij".into(),
        };
        let hash = body_hash(b"");
        let first = connection.sign(&hash).unwrap();
        let second = connection.sign(&hash).unwrap();
        assert_ne!(
            first.nonce, second.nonce,
            "every request gets a fresh nonce"
        );

        let timestamp = Timestamp::parse(first.timestamp.as_bytes()).unwrap();
        let nonce = Nonce::parse(first.nonce.as_bytes()).unwrap();
        let signature = RequestSignature::parse(first.signature.as_bytes()).unwrap();
        let payload = signed_payload("GET", "/v1/secret/sk_abcdefghij", timestamp, &nonce, &hash);
        assert_eq!(
            verify_signature(&key.verifying_key(), &payload, &signature),
            Ok(())
        );
        let other_path =
            signed_payload("GET", "/v1/secret/sk_otherother", timestamp, &nonce, &hash);
        assert!(verify_signature(&key.verifying_key(), &other_path, &signature).is_err());
    }

    #[test]
    fn rate_divides_by_wall_time() {
        assert_eq!(per_second(500, Duration::from_millis(250)), 2000.0);
        assert_eq!(per_second(5, Duration::ZERO), 0.0);
    }
}
