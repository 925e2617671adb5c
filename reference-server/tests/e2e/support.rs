//! Shared pieces of the end-to-end tests: a running `guardrail-server` process, the admin API,
//! and a machine that signs its own requests.
//!
//! Every server listens on `localhost` (127.0.0.1 and ::1) on a free port, in its own temporary
//! folder with its own SQLite database (or on a database URL that the test gives, such as a
//! PostgreSQL database that several servers share). It writes its standard output and error to
//! files in that folder so that tests can search them.

use std::fs::{self, File};
use std::io::Read;
use std::net::{Ipv6Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};
use guardrail_core::request::{Nonce, Timestamp, body_hash, signed_payload};
use reqwest::blocking::Client;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The binary Cargo built for these tests.
pub const SERVER_BIN: &str = env!("CARGO_BIN_EXE_guardrail-server");

/// Maximum time from a server's start until `/healthz` returns 200.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How many times a start is retried when another process took the chosen port meanwhile.
const START_ATTEMPTS: usize = 5;

/// Returns a path inside this crate, for committed test data and scripts.
pub fn crate_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Picks a port that is free on both 127.0.0.1 and ::1, because `--listen localhost:PORT` binds
/// both. The listeners are closed before the server binds, so another process may still take
/// the port; [`Server::start`] retries on a different port when that happens.
fn free_port() -> u16 {
    loop {
        let v4 = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = v4.local_addr().expect("local address").port();
        if TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))).is_ok() {
            return port;
        }
    }
}

/// A `guardrail-server serve` process, killed when dropped.
pub struct Server {
    child: Option<Child>,
    /// The working folder: database, secret key file and logs.
    pub dir: TempDir,
    /// The port the server listens on.
    pub port: u16,
    extra_args: Vec<String>,
    /// A database URL in place of the SQLite file in `dir`.
    database: Option<String>,
    /// Environment variables set on every start, such as `GUARDRAIL_SECRET_KEY`.
    env: Vec<(String, String)>,
    starts: usize,
    http: Client,
}

impl Server {
    /// Starts a server in a fresh temporary folder with `extra_args` added to `serve`, and waits
    /// until `/healthz` returns 200.
    pub fn start(extra_args: &[&str]) -> Self {
        Self::start_with(None, &[], extra_args)
    }

    /// Starts a server like [`Server::start`], but on `database` (such as a PostgreSQL URL) when
    /// it is given, and with the environment variables `env` set.
    pub fn start_with(database: Option<&str>, env: &[(&str, &str)], extra_args: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("guardrail-e2e-")
            .tempdir()
            .expect("create the server's temporary folder");
        let mut server = Self {
            child: None,
            dir,
            port: 0,
            extra_args: extra_args.iter().map(|arg| (*arg).to_owned()).collect(),
            database: database.map(str::to_owned),
            env: env
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            starts: 0,
            http: Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("build the HTTP client"),
        };
        server.spawn_on_free_port();
        server
    }

    /// Returns the database URL that this server and its subcommands use.
    pub fn database_url(&self) -> String {
        if let Some(database) = &self.database {
            return database.clone();
        }
        format!("sqlite://{}", self.database_path().display())
    }

    /// Returns the path of the SQLite file.
    pub fn database_path(&self) -> PathBuf {
        self.dir.path().join("db.sqlite3")
    }

    /// Returns the base URL over IPv6 loopback, which `--listen localhost:PORT` also binds.
    pub fn ipv6_base_url(&self) -> String {
        format!("http://[::1]:{}", self.port)
    }

    /// Returns the public URL, which identity files carry as `apiUrl`.
    pub fn public_url(&self) -> String {
        format!("http://localhost:{}", self.port)
    }

    /// Returns the base URL of the tests' own requests. It names 127.0.0.1, so that their source
    /// address is known.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn_on_free_port(&mut self) {
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            self.port = free_port();
            match self.spawn() {
                Ok(()) => return,
                Err(error) => last_error = error,
            }
        }
        panic!("guardrail-server did not start in {START_ATTEMPTS} attempts:\n{last_error}");
    }

    /// Starts the process on `self.port` and waits for `/healthz`. Each start writes its own
    /// log files, so that a restart keeps the earlier logs for the searches in the tests.
    fn spawn(&mut self) -> Result<(), String> {
        self.starts += 1;
        let stdout_path = self.dir.path().join(format!("server-{}.out", self.starts));
        let stderr_path = self.dir.path().join(format!("server-{}.err", self.starts));
        let stdout = File::create(&stdout_path).expect("create the stdout log");
        let stderr = File::create(&stderr_path).expect("create the stderr log");
        let listen = format!("localhost:{}", self.port);
        let public_url = self.public_url();
        let database = self.database_url();
        let mut child = Command::new(SERVER_BIN)
            .arg("serve")
            .args(["--listen", &listen])
            .args(["--public-url", &public_url])
            .args(["--database", &database])
            .args(&self.extra_args)
            .current_dir(self.dir.path())
            .env_remove("GUARDRAIL_CONFIG")
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn guardrail-server");

        let deadline = Instant::now() + START_TIMEOUT;
        let health = format!("{}/healthz", self.base_url());
        loop {
            if let Some(status) = child.try_wait().expect("poll guardrail-server") {
                let log = fs::read_to_string(&stderr_path).unwrap_or_default();
                return Err(format!(
                    "guardrail-server exited with {status} on port {}:\n{log}",
                    self.port
                ));
            }
            if let Ok(response) = self.http.get(&health).send()
                && response.status() == StatusCode::OK
            {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let log = fs::read_to_string(&stderr_path).unwrap_or_default();
                panic!("guardrail-server did not answer /healthz within {START_TIMEOUT:?}:\n{log}");
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the server and starts it again on the same folder, database and port.
    pub fn restart(&mut self) {
        self.stop();
        // The port was just released by the killed process; retry briefly in case the kernel
        // still holds it.
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            match self.spawn() {
                Ok(()) => return,
                Err(error) => {
                    last_error = error;
                    thread::sleep(Duration::from_millis(500));
                }
            }
        }
        panic!(
            "guardrail-server did not restart on port {}:\n{last_error}",
            self.port
        );
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Everything the server wrote to standard output and error so far, over all its starts.
    pub fn logs(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for start in 1..=self.starts {
            for stream in ["out", "err"] {
                let path = self.dir.path().join(format!("server-{start}.{stream}"));
                if let Ok(mut file) = File::open(path) {
                    file.read_to_end(&mut all).expect("read a server log");
                }
            }
        }
        all
    }

    /// Runs `guardrail-server ARGS... --database URL` against this server's database, with the
    /// server's environment variables.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(SERVER_BIN)
            .args(args)
            .args(["--database", &self.database_url()])
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .current_dir(self.dir.path())
            .output()
            .expect("run guardrail-server")
    }

    /// Creates a vault with `vault create` and returns an admin client for it.
    pub fn create_vault(&self, name: &str, plan: &str, machine_limit: Option<u32>) -> Admin {
        let limit = machine_limit.map(|n| n.to_string());
        let mut args = vec!["vault", "create", "--name", name, "--plan", plan];
        if let Some(limit) = &limit {
            args.extend(["--machine-limit", limit.as_str()]);
        }
        let output = self.cli(&args);
        assert!(
            output.status.success(),
            "vault create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let created: Value =
            serde_json::from_slice(&output.stdout).expect("vault create prints one JSON object");
        let mut keys: Vec<&String> = created.as_object().expect("a JSON object").keys().collect();
        // Sorted, because serde_json keeps insertion order when another workspace member turns
        // on its `preserve_order` feature.
        keys.sort();
        assert_eq!(keys, ["ownerKey", "vaultId"], "vault create output keys");
        Admin {
            http: self.http.clone(),
            base: self.base_url(),
            vault_id: created["vaultId"].as_str().expect("vaultId").to_owned(),
            owner_key: created["ownerKey"].as_str().expect("ownerKey").to_owned(),
        }
    }

    /// Sends one request to this server over IPv4 and reads the response.
    pub fn send(&self, method: Method, path: &str, headers: HeaderMap, body: Vec<u8>) -> Reply {
        self.send_to(&self.base_url(), method, path, headers, body)
    }

    /// Sends one request to `base`, such as `http://[::1]:PORT`, and reads the response.
    pub fn send_to(
        &self,
        base: &str,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Reply {
        let response = self
            .http
            .request(method, format!("{base}{path}"))
            .headers(headers)
            .body(body)
            .send()
            .expect("send a request to guardrail-server");
        Reply::read(response)
    }

    /// Sends an unsigned JSON request.
    pub fn send_json(&self, method: Method, path: &str, body: &Value) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        self.send(method, path, headers, body.to_string().into_bytes())
    }

    /// Registers `key` with a bootstrap token through the unsigned register endpoint.
    pub fn register(&self, vault_id: &str, token: &str, key: &SigningKey) -> Reply {
        let public_key = STANDARD.encode(key.verifying_key().to_bytes());
        self.send_json(
            Method::POST,
            &format!("/v1/{vault_id}/temp-bootstrap/register"),
            &json!({"token": token, "publicKey": public_key, "hostname": "e2e-host"}),
        )
    }

    /// Registers a fresh key and returns the machine; asserts a 201.
    pub fn register_new_machine(&self, vault_id: &str, token: &str) -> Machine {
        let key = generate_key();
        let reply = self.register(vault_id, token, &key);
        assert_eq!(reply.status, 201, "register: {}", reply.text);
        Machine {
            id: reply.body["machineId"]
                .as_str()
                .expect("machineId")
                .to_owned(),
            key,
        }
    }

    /// Sends a request signed by `machine` with the current time and a fresh nonce.
    pub fn signed(&self, machine: &Machine, method: Method, path: &str, body: &[u8]) -> Reply {
        let request = machine.sign(method, path, body);
        self.send_signed(&request, HeaderMap::new())
    }

    /// Sends a prepared signed request, with `extra` headers such as `X-Forwarded-For`.
    pub fn send_signed(&self, request: &SignedRequest, extra: HeaderMap) -> Reply {
        let mut headers = request.headers.clone();
        headers.extend(extra);
        self.send(
            request.method.clone(),
            &request.path,
            headers,
            request.body.clone(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A response: status, body text and the body parsed as JSON (`Value::Null` when it is not).
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, empty when absent.
    pub content_type: String,
    /// All response headers.
    pub headers: HeaderMap,
    /// The body as text.
    pub text: String,
    /// The body as JSON.
    pub body: Value,
}

impl Reply {
    fn read(response: reqwest::blocking::Response) -> Self {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let headers = response.headers().clone();
        let text = response.text().expect("read the response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            content_type,
            headers,
            text,
            body,
        }
    }

    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub fn expect(self, status: u16, what: &str) -> Value {
        assert_eq!(self.status, status, "{what}: {}", self.text);
        self.body
    }

    /// Asserts an `{"error": "..."}` body with exactly that key, and returns the message.
    #[track_caller]
    pub fn error_message(&self) -> String {
        let object = self
            .body
            .as_object()
            .unwrap_or_else(|| panic!("expected an error object, got {}", self.text));
        assert_eq!(
            object.keys().collect::<Vec<_>>(),
            ["error"],
            "error body keys: {}",
            self.text
        );
        object["error"].as_str().expect("a string error").to_owned()
    }
}

/// The admin API of one vault, authenticated with its owner key.
#[derive(Clone)]
pub struct Admin {
    http: Client,
    base: String,
    /// The vault's id.
    pub vault_id: String,
    /// The owner key printed by `vault create`.
    pub owner_key: String,
}

impl Admin {
    /// Returns the same vault's admin API on `server`, another replica on the same database.
    pub fn on(&self, server: &Server) -> Self {
        Self {
            base: server.base_url(),
            ..self.clone()
        }
    }

    /// Sends an admin request; `path` is relative to `/admin/v1`.
    pub fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let mut request = self
            .http
            .request(method, format!("{}/admin/v1{path}", self.base))
            .bearer_auth(&self.owner_key);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        Reply::read(request.send().expect("send an admin request"))
    }

    /// Sends an admin request under `/admin/v1/vaults/{vaultId}`.
    pub fn vault(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        self.request(method, &format!("/vaults/{}{path}", self.vault_id), body)
    }

    /// Issues a temporary-machine token and returns it with its plaintext.
    pub fn issue_token(&self, body: &Value) -> IssuedToken {
        let issued = self
            .vault(Method::POST, "/temp-tokens", Some(body))
            .expect(201, "issue a token");
        let linux = issued["commands"]["linux"]
            .as_str()
            .expect("commands.linux");
        IssuedToken {
            id: issued["tokenId"].as_str().expect("tokenId").to_owned(),
            plaintext: token_from_command(linux, &self.vault_id),
            response: issued,
        }
    }

    /// Issues a token named `name` for a machine that lives `lifetime`, with `guardrails` unless
    /// they are `null`.
    pub fn issue(&self, name: &str, lifetime: Value, guardrails: Value) -> IssuedToken {
        let mut body = json!({"name": name, "lifetime": lifetime});
        if !guardrails.is_null() {
            body["guardrails"] = guardrails;
        }
        self.issue_token(&body)
    }

    /// Issues a token, registers a fresh key with it and approves the machine.
    pub fn active_machine(
        &self,
        server: &Server,
        name: &str,
        lifetime: Value,
        guardrails: Value,
    ) -> Machine {
        let token = self.issue(name, lifetime, guardrails);
        let machine = server.register_new_machine(&self.vault_id, &token.plaintext);
        self.approve(&machine.id);
        machine
    }

    /// Shows one machine.
    pub fn machine(&self, machine_id: &str) -> Reply {
        self.vault(Method::GET, &format!("/machines/{machine_id}"), None)
    }

    /// Approves a pending machine.
    pub fn approve(&self, machine_id: &str) {
        let reply = self.vault(
            Method::POST,
            &format!("/machines/{machine_id}/approve"),
            None,
        );
        assert!(
            (200..300).contains(&reply.status),
            "approve {machine_id}: {} {}",
            reply.status,
            reply.text
        );
    }

    /// Creates a project and returns its id.
    pub fn create_project(&self, name: &str) -> String {
        let project = self
            .vault(Method::POST, "/projects", Some(&json!({"name": name})))
            .expect(201, "create a project");
        project["projectId"]
            .as_str()
            .or_else(|| project["id"].as_str())
            .expect("projectId")
            .to_owned()
    }

    /// Adds a machine to a project.
    pub fn add_member(&self, project_id: &str, machine_id: &str) {
        let reply = self.vault(
            Method::POST,
            &format!("/projects/{project_id}/machines/{machine_id}"),
            None,
        );
        assert!(
            (200..300).contains(&reply.status),
            "add {machine_id} to {project_id}: {} {}",
            reply.status,
            reply.text
        );
    }

    /// Creates a secret (a string, or an object of string fields) and returns its id.
    pub fn create_secret(&self, project_id: &str, name: &str, value: Value) -> String {
        let secret = self
            .vault(
                Method::POST,
                "/secrets",
                Some(&json!({"projectId": project_id, "name": name, "value": value})),
            )
            .expect(201, "create a secret");
        secret["secretId"]
            .as_str()
            .or_else(|| secret["id"].as_str())
            .expect("secretId")
            .to_owned()
    }

    /// Grants a machine read access to a secret.
    pub fn grant(&self, secret_id: &str, machine_id: &str) {
        let reply = self.vault(
            Method::POST,
            &format!("/secrets/{secret_id}/grants"),
            Some(&json!({"machineId": machine_id})),
        );
        assert!(
            (200..300).contains(&reply.status),
            "grant {secret_id} to {machine_id}: {} {}",
            reply.status,
            reply.text
        );
    }

    /// Audit entries with `action`, newest first.
    pub fn audit(&self, action: &str) -> Vec<Value> {
        let listed = self
            .vault(
                Method::GET,
                &format!("/audit?action={action}&limit=1000"),
                None,
            )
            .expect(200, "list audit entries");
        let items = listed["items"].as_array().expect("audit items").clone();
        for item in &items {
            assert_eq!(item["action"], action, "the audit filter returned {item}");
        }
        items
    }

    /// Moves the server's test clock forward by `seconds`.
    pub fn advance_clock(&self, seconds: i64) {
        let reply = self.request(
            Method::POST,
            "/test-clock/advance",
            Some(&json!({"seconds": seconds})),
        );
        assert!(
            (200..300).contains(&reply.status),
            "advance the test clock by {seconds} s: {} {}",
            reply.status,
            reply.text
        );
    }
}

/// A token as issuance returned it.
pub struct IssuedToken {
    /// The token's public handle.
    pub id: String,
    /// The plaintext, read from the Linux command.
    pub plaintext: String,
    /// The whole issuance response.
    pub response: Value,
}

/// Reads the token out of `curl -fsSL '.../v1/VAULT/temp-bootstrap/TOKEN' | sh`.
fn token_from_command(command: &str, vault_id: &str) -> String {
    let marker = format!("/v1/{vault_id}/temp-bootstrap/");
    let start = command
        .find(&marker)
        .unwrap_or_else(|| panic!("no `{marker}` in the Linux command `{command}`"))
        + marker.len();
    command[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// A registered machine and its private key.
pub struct Machine {
    /// The machine id.
    pub id: String,
    /// The private key whose public half the server stores.
    pub key: SigningKey,
}

/// A signed request, kept whole so that it can be sent again unchanged.
#[derive(Clone)]
pub struct SignedRequest {
    /// The method.
    pub method: Method,
    /// The path, as signed.
    pub path: String,
    /// The body, as hashed.
    pub body: Vec<u8>,
    /// `X-machine-id`, `X-Timestamp`, `X-Nonce` and `X-Signature`.
    pub headers: HeaderMap,
    /// When it was signed, for the freshness window.
    pub signed_at: Instant,
}

impl Machine {
    /// Signs `METHOD:path:timestamp:nonce:bodyHash` with the current time and a fresh nonce of
    /// 16 random bytes in padded standard base64, as the Python SDK does.
    pub fn sign(&self, method: Method, path: &str, body: &[u8]) -> SignedRequest {
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_secs();
        let timestamp = Timestamp::from_unix_seconds(seconds.try_into().expect("seconds in i64"))
            .expect("a positive timestamp");
        let mut nonce_bytes = [0_u8; 16];
        getrandom::fill(&mut nonce_bytes).expect("random nonce");
        let nonce_text = STANDARD.encode(nonce_bytes);
        let nonce = Nonce::parse(nonce_text.as_bytes()).expect("a valid nonce");
        let payload = signed_payload(method.as_str(), path, timestamp, &nonce, &body_hash(body));
        let signature = STANDARD.encode(self.key.sign(&payload).to_bytes());

        let mut headers = HeaderMap::new();
        // The Python SDK's spelling, which the server must match case-insensitively.
        let pairs = [
            ("X-machine-id", self.id.clone()),
            ("X-Timestamp", timestamp.to_string()),
            ("X-Nonce", nonce_text),
            ("X-Signature", signature),
        ];
        for (name, value) in pairs {
            headers.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
                HeaderValue::from_str(&value).expect("a header value"),
            );
        }
        if !body.is_empty() {
            headers.insert("content-type", HeaderValue::from_static("application/json"));
        }
        SignedRequest {
            method,
            path: path.to_owned(),
            body: body.to_vec(),
            headers,
            signed_at: Instant::now(),
        }
    }
}

/// Generates an Ed25519 key from the operating system's random source.
pub fn generate_key() -> SigningKey {
    let mut seed = [0_u8; 32];
    getrandom::fill(&mut seed).expect("random seed");
    SigningKey::from_bytes(&seed)
}

/// Reads the 32-byte seed of a PKCS#8 v1 Ed25519 PEM, which is the last 32 bytes of its DER.
pub fn seed_from_pem(pem: &str) -> [u8; 32] {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let der = STANDARD.decode(body).expect("PEM body in base64");
    assert_eq!(der.len(), 48, "a PKCS#8 v1 Ed25519 key is 48 bytes of DER");
    der[16..].try_into().expect("32 bytes")
}

/// Polls `check` every 200 ms until it returns `Some`, or panics after `timeout`.
#[track_caller]
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// Headers with one `X-Forwarded-For` value.
pub fn forwarded_for(address: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-forwarded-for",
        HeaderValue::from_str(address).expect("an address header"),
    );
    headers
}

/// Searches `haystack` for `needle`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// Reads every file in `dir` whose name starts with `prefix`, such as a SQLite database with its
/// `-wal` and `-shm` files.
pub fn read_files_with_prefix(dir: &Path, prefix: &str) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in fs::read_dir(dir).expect("list the folder") {
        let entry = entry.expect("a folder entry");
        if entry.file_name().to_string_lossy().starts_with(prefix) {
            all.extend(fs::read(entry.path()).expect("read a database file"));
        }
    }
    all
}

/// Tells whether an audit entry's `target` names `id`, written bare or with a kind prefix such
/// as `machine:`.
pub fn targets(entry: &Value, id: &str) -> bool {
    entry["target"].as_str().is_some_and(|target| {
        target == id
            || target
                .strip_suffix(id)
                .is_some_and(|kind| kind.ends_with(':'))
    })
}

/// The folders a bootstrap script ran with, and what it wrote.
pub struct Bootstrapped {
    /// Holds `HOME`, `SIKKERKEY_HOME` and `TMPDIR` of the script.
    pub root: TempDir,
    /// `SIKKERKEY_HOME` as given to the script.
    pub sikkerkey_home: PathBuf,
    /// `TMPDIR` as given to the script.
    pub tmp: PathBuf,
    /// The script's exit status and output.
    pub output: Output,
}

impl Bootstrapped {
    /// `$SIKKERKEY_HOME/vaults/{vaultId}`.
    pub fn vault_dir(&self, vault_id: &str) -> PathBuf {
        self.sikkerkey_home.join("vaults").join(vault_id)
    }

    /// Formats the script's status and output for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "status {}\nstdout:\n{}\nstderr:\n{}",
            self.output.status,
            String::from_utf8_lossy(&self.output.stdout),
            String::from_utf8_lossy(&self.output.stderr)
        )
    }
}

/// Runs `shell -c command` with an empty environment apart from `PATH`, a fresh `HOME`,
/// `SIKKERKEY_HOME` and `TMPDIR`, feeding `stdin` to the shell.
pub fn run_bootstrap(shell: &str, args: &[&str], stdin: &[u8]) -> Bootstrapped {
    let root = tempfile::Builder::new()
        .prefix("guardrail-e2e-home-")
        .tempdir()
        .expect("create the script's home");
    let home = root.path().join("home");
    let tmp = root.path().join("tmp");
    fs::create_dir(&home).expect("create HOME");
    fs::create_dir(&tmp).expect("create TMPDIR");
    let sikkerkey_home = home.join("sikkerkey");

    let mut child = Command::new(shell)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("SIKKERKEY_HOME", &sikkerkey_home)
        .env("TMPDIR", &tmp)
        .current_dir(&home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("run `{shell}`: {error}"));
    {
        use std::io::Write;
        let mut input = child.stdin.take().expect("the shell's stdin");
        input
            .write_all(stdin)
            .expect("write the script to the shell");
    }
    let output = child.wait_with_output().expect("wait for the shell");
    Bootstrapped {
        root,
        sikkerkey_home,
        tmp,
        output,
    }
}
