//! Creates what a load run needs through the admin API: machines with keys made here, a
//! project, a secret and grants.
//!
//! Each machine is registered the way the bootstrap script does it (a temporary token, then
//! `POST /v1/{vaultId}/temp-bootstrap/register` with a fresh Ed25519 public key), approved, made
//! a member of one project and granted one secret. The private keys stay in this process.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

use crate::target::ServerUrl;

/// Maximum machines one setup registers (the pro plan's default limit is 25).
pub const MAX_MACHINES: usize = 64;

/// A vault owner's key, as printed by `guardrail-server vault create`. Not `Debug`, so that it
/// cannot reach a log line.
pub struct OwnerKey(String);

impl OwnerKey {
    /// Wraps the key text.
    pub fn new(text: String) -> Self {
        Self(text.trim().to_owned())
    }
}

/// An approved machine and its signing key.
pub struct LoadMachine {
    /// The machine id, a lower-case UUID.
    pub id: String,
    /// The machine's private key.
    pub key: SigningKey,
}

/// Everything a load run reads with.
pub struct Fixture {
    /// Machines that may read [`Fixture::secret_id`].
    pub machines: Vec<LoadMachine>,
    /// The secret every request reads.
    pub secret_id: String,
}

/// A setup step that did not get the response it needed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The request could not be sent or its response not read.
    #[error("setup step `{step}` failed to reach the server: {source}")]
    Transport {
        /// The step.
        step: &'static str,
        /// The cause.
        source: reqwest::Error,
    },
    /// The server responded with an unexpected status or body.
    #[error("setup step `{step}` got {status}: {body}")]
    Answer {
        /// The step.
        step: &'static str,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// A machine count outside 1 to [`MAX_MACHINES`].
    #[error("invalid machine count `{0}`: expected 1 to {MAX_MACHINES}")]
    MachineCount(usize),
    /// The operating system's random source failed.
    #[error("cannot draw random bytes for a machine key: {0}")]
    Random(String),
}

struct Admin<'a> {
    client: reqwest::Client,
    server: &'a ServerUrl,
    vault: &'a str,
    owner_key: &'a OwnerKey,
}

impl Admin<'_> {
    async fn send(
        &self,
        step: &'static str,
        path: &str,
        body: Option<Value>,
        authorized: bool,
        expected: u16,
    ) -> Result<Value, SetupError> {
        let mut request = self.client.post(self.server.join(path));
        if authorized {
            request = request.bearer_auth(&self.owner_key.0);
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|source| SetupError::Transport { step, source })?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| SetupError::Transport { step, source })?;
        if status != expected {
            return Err(SetupError::Answer {
                step,
                status,
                body: String::from_utf8_lossy(&bytes).chars().take(300).collect(),
            });
        }
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    fn admin_path(&self, rest: &str) -> String {
        format!("/admin/v1/vaults/{}{rest}", self.vault)
    }
}

fn field(step: &'static str, value: &Value, name: &str) -> Result<String, SetupError> {
    value[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| SetupError::Answer {
            step,
            status: 200,
            body: format!("no string `{name}` in the answer"),
        })
}

/// Registers and approves `count` machines in `vault`, and gives each one a grant on one new
/// secret in one new project.
///
/// # Errors
///
/// [`SetupError`] naming the step that failed, with the server's status and body.
pub async fn create_fixture(
    server: &ServerUrl,
    vault: &str,
    owner_key: &OwnerKey,
    count: usize,
) -> Result<Fixture, SetupError> {
    if count == 0 || count > MAX_MACHINES {
        return Err(SetupError::MachineCount(count));
    }
    let admin = Admin {
        client: reqwest::Client::new(),
        server,
        vault,
        owner_key,
    };
    let project = admin
        .send(
            "create project",
            &admin.admin_path("/projects"),
            Some(json!({"name": "loadgen"})),
            true,
            201,
        )
        .await?;
    let project_id = field("create project", &project, "projectId")?;
    let secret = admin
        .send(
            "create secret",
            &admin.admin_path("/secrets"),
            Some(json!({"projectId": project_id, "name": "loadgen", "value": "load-test-value"})),
            true,
            201,
        )
        .await?;
    let secret_id = field("create secret", &secret, "secretId")?;

    let mut machines = Vec::with_capacity(count);
    for index in 0..count {
        let machine = register(&admin, index).await?;
        admin
            .send(
                "approve machine",
                &admin.admin_path(&format!("/machines/{}/approve", machine.id)),
                None,
                true,
                200,
            )
            .await?;
        admin
            .send(
                "add membership",
                &admin.admin_path(&format!("/projects/{project_id}/machines/{}", machine.id)),
                None,
                true,
                204,
            )
            .await?;
        admin
            .send(
                "grant secret",
                &admin.admin_path(&format!("/secrets/{secret_id}/grants")),
                Some(json!({"machineId": machine.id})),
                true,
                204,
            )
            .await?;
        machines.push(machine);
    }
    Ok(Fixture {
        machines,
        secret_id,
    })
}

async fn register(admin: &Admin<'_>, index: usize) -> Result<LoadMachine, SetupError> {
    let issued = admin
        .send(
            "issue token",
            &admin.admin_path("/temp-tokens"),
            Some(json!({"name": format!("loadgen-{index}"), "lifetime": {"days": 1}})),
            true,
            201,
        )
        .await?;
    let command = issued["commands"]["linux"].as_str().unwrap_or_default();
    // The command fetches `'{apiUrl}/v1/{vaultId}/temp-bootstrap/{token}'`: the token is the
    // last path segment of the quoted URL.
    let token = command
        .split('\'')
        .nth(1)
        .and_then(|url| url.rsplit('/').next())
        .ok_or_else(|| SetupError::Answer {
            step: "issue token",
            status: 201,
            body: "no bootstrap URL in `commands.linux`".to_owned(),
        })?
        .to_owned();

    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|error| SetupError::Random(error.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    let registered = admin
        .send(
            "register machine",
            &format!("/v1/{}/temp-bootstrap/register", admin.vault),
            Some(json!({
                "token": token,
                "publicKey": STANDARD.encode(key.verifying_key().to_bytes()),
                "hostname": format!("loadgen-{index}"),
            })),
            false,
            201,
        )
        .await?;
    Ok(LoadMachine {
        id: field("register machine", &registered, "machineId")?,
        key,
    })
}
