//! Shared setup of the API tests: an app over the in-memory store, vaults, machines and signed
//! requests.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::test::{self, TestRequest};
use actix_web::{App, Error};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};
use guardrail_core::guardrail::StaticCountryResolver;
use guardrail_core::lockout::{CoalescePolicy, LockoutPolicy};
use guardrail_core::plan::Plan;
use guardrail_core::request::MaxSkew;
use guardrail_store::{MemoryLimits, MemoryStore, Store};
use reference_server::client_addr::ClientAddressResolver;
use reference_server::clock::{PolicyClock, TestClock};
use reference_server::crypto::{SecretCipher, SecretKey};
use reference_server::state::{AppState, Settings};
use reference_server::telemetry::{Metrics, request_telemetry};
use reference_server::{routes, vault_admin};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

/// The address every test request comes from unless a test sets another.
pub const PEER: &str = "203.0.113.9:40000";

pub fn state(test_clock: bool) -> AppState {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(MemoryLimits::default()));
    AppState {
        store,
        cipher: Arc::new(SecretCipher::new(&SecretKey::generate().unwrap())),
        clock: if test_clock {
            PolicyClock::Test(Arc::new(TestClock::new()))
        } else {
            PolicyClock::System
        },
        settings: Arc::new(Settings {
            public_url: "http://localhost:8080".parse().unwrap(),
            allow_private_webhooks: true,
            max_skew: MaxSkew::from_secs(60).unwrap(),
            lockout: LockoutPolicy::default(),
            coalesce: CoalescePolicy::default(),
        }),
        client_addresses: Arc::new(ClientAddressResolver::new(
            Vec::new(),
            "x-forwarded-for".parse().unwrap(),
        )),
        countries: Arc::new(StaticCountryResolver::new(Vec::new())),
        metrics: Metrics::new().unwrap(),
        webhooks: None,
        sweep_now: Arc::new(Notify::new()),
    }
}

pub async fn app(
    state: AppState,
    test_clock: bool,
) -> impl Service<actix_http::Request, Response = ServiceResponse<impl MessageBody>, Error = Error>
{
    test::init_service(
        App::new()
            .wrap(from_fn(request_telemetry))
            .configure(move |config| routes::configure(config, state, test_clock)),
    )
    .await
}

/// Status, headers of interest and JSON body of a response.
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub content_type: Option<String>,
    pub test_clock: Option<String>,
    pub body: Value,
    pub text: String,
}

pub async fn send<S, B>(app: &S, request: TestRequest) -> Reply
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    let response = test::call_service(app, request.peer_addr(peer()).to_request()).await;
    reply(response).await
}

pub async fn send_from<S, B>(app: &S, request: TestRequest, peer: &str) -> Reply
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    let response =
        test::call_service(app, request.peer_addr(peer.parse().unwrap()).to_request()).await;
    reply(response).await
}

async fn reply<B: MessageBody>(response: ServiceResponse<B>) -> Reply {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
    };
    let status = response.status().as_u16();
    let retry_after = header("retry-after");
    let content_type = header("content-type");
    let test_clock = header("x-guardrail-test-clock");
    let bytes = test::read_body(response).await;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        retry_after,
        content_type,
        test_clock,
        body,
        text,
    }
}

pub fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

/// A vault and its owner key.
pub struct Owner {
    pub vault: String,
    pub key: String,
}

impl Owner {
    pub fn create(state: &AppState, plan: Plan) -> Self {
        let created =
            vault_admin::create_vault(state.store.as_ref(), "ops", plan, None, chrono::Utc::now())
                .unwrap();
        Self {
            vault: created.vault_id.to_string(),
            key: created.owner_key,
        }
    }

    pub fn request(&self, method: &str, path: &str) -> TestRequest {
        let uri = format!("/admin/v1/vaults/{}{path}", self.vault);
        let request = match method {
            "GET" => TestRequest::get(),
            "POST" => TestRequest::post(),
            "PUT" => TestRequest::put(),
            "DELETE" => TestRequest::delete(),
            other => panic!("unexpected method {other}"),
        };
        request
            .uri(&uri)
            .insert_header(("Authorization", format!("Bearer {}", self.key)))
    }

    pub fn post_json(&self, path: &str, body: Value) -> TestRequest {
        self.request("POST", path).set_payload(body.to_string())
    }
}

/// A registered machine and its key.
pub struct Machine {
    pub id: String,
    pub key: SigningKey,
}

/// Issues a token with `guardrails`, registers a machine with it and approves it.
pub async fn machine<S, B>(app: &S, owner: &Owner, guardrails: Value) -> Machine
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    let issued = send(
        app,
        owner.post_json(
            "/temp-tokens",
            json!({"name": "pentest-q3", "lifetime": {"days": 2}, "guardrails": guardrails}),
        ),
    )
    .await;
    assert_eq!(issued.status, 201, "{}", issued.text);
    let token = token_of(&issued.body);
    let key = SigningKey::from_bytes(&rand_seed());
    let registered = send(app, register_request(&owner.vault, &token, &key)).await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    let id = registered.body["machineId"].as_str().unwrap().to_owned();
    let approved = send(
        app,
        owner.request("POST", &format!("/machines/{id}/approve")),
    )
    .await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    Machine { id, key }
}

/// Extracts the token from an issuance response's Linux command.
pub fn token_of(issued: &Value) -> String {
    let command = issued["commands"]["linux"].as_str().unwrap();
    let url = command.split('\'').nth(1).unwrap();
    url.rsplit('/').next().unwrap().to_owned()
}

pub fn register_request(vault: &str, token: &str, key: &SigningKey) -> TestRequest {
    let public_key = STANDARD.encode(key.verifying_key().to_bytes());
    TestRequest::post()
        .uri(&format!("/v1/{vault}/temp-bootstrap/register"))
        .set_payload(
            json!({"token": token, "publicKey": public_key, "hostname": "box-1"}).to_string(),
        )
}

pub fn rand_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    seed
}

/// Builds a request signed by `machine` now, with a fresh nonce.
pub fn signed(machine: &Machine, method: &str, path: &str, body: &str) -> TestRequest {
    signed_at(
        machine,
        method,
        path,
        body,
        chrono::Utc::now().timestamp(),
        &fresh_nonce(),
    )
}

pub fn fresh_nonce() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).unwrap();
    STANDARD.encode(bytes)
}

pub fn signed_at(
    machine: &Machine,
    method: &str,
    path: &str,
    body: &str,
    timestamp: i64,
    nonce: &str,
) -> TestRequest {
    let body_hash = hex(&Sha256::digest(body.as_bytes()));
    let payload = format!("{method}:{path}:{timestamp}:{nonce}:{body_hash}");
    let signature = STANDARD.encode(machine.key.sign(payload.as_bytes()).to_bytes());
    let request = if method == "GET" {
        TestRequest::get()
    } else {
        TestRequest::post()
    };
    request
        .uri(path)
        // The Python SDK sends this spelling; header names match case-insensitively.
        .insert_header(("X-machine-id", machine.id.clone()))
        .insert_header(("X-Timestamp", timestamp.to_string()))
        .insert_header(("X-Nonce", nonce.to_owned()))
        .insert_header(("X-Signature", signature))
        .set_payload(body.to_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Returns the sorted keys of a JSON object.
pub fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}
