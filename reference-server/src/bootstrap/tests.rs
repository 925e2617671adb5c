//! Renders the scripts, and runs the `sh` script under dash and bash against a loopback stub of
//! the register endpoint.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::test_http::{Recorded, TestServer};

const VAULT: &str = "vault_abc123";
const TOKEN: &str = "Zm9vYmFyYmF6cXV4LXRva2VuLXRlc3QtMDEyMzQ1Njc4OQ";
const MACHINE_ID: &str = "0b6a3c1e-8f5d-4c2a-9e7b-1d2c3b4a5f60";

fn vault() -> VaultId {
    VAULT.parse().unwrap()
}

fn url_for(server: &TestServer) -> PublicUrl {
    format!("http://localhost:{}", server.addr.port())
        .parse()
        .unwrap()
}

/// Checks a register request as the real endpoint would, and answers like it.
fn register_stub(port: u16) -> impl Fn(&Recorded) -> (u16, String) + Send + Sync + 'static {
    move |request| {
        if request.method != "POST"
            || request.path != format!("/v1/{VAULT}/temp-bootstrap/register")
        {
            return (404, r#"{"error":"not found"}"#.into());
        }
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(&request.body) else {
            return (400, r#"{"error":"invalid JSON body"}"#.into());
        };
        let object = body.as_object().unwrap();
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        if keys != ["hostname", "publicKey", "token"] || body["token"] != TOKEN {
            return (401, r#"{"error":"authentication failed"}"#.into());
        }
        let Ok(raw) = STANDARD.decode(body["publicKey"].as_str().unwrap_or_default()) else {
            return (400, r#"{"error":"invalid publicKey"}"#.into());
        };
        let Ok(raw): Result<[u8; 32], _> = raw.try_into() else {
            return (400, r#"{"error":"publicKey is not 32 bytes"}"#.into());
        };
        if ed25519_dalek::VerifyingKey::from_bytes(&raw).is_err() {
            return (400, r#"{"error":"publicKey is not an Ed25519 key"}"#.into());
        }
        let answer = serde_json::json!({
            "machineId": MACHINE_ID,
            "machineName": "pentest-q3",
            "vaultId": VAULT,
            "expiresAt": "2026-03-29T01:30:00Z",
            "apiUrl": format!("http://localhost:{port}"),
        });
        (201, answer.to_string())
    }
}

struct Run {
    output: Output,
    home: PathBuf,
    _dir: tempfile::TempDir,
}

impl Run {
    fn vault_dir(&self) -> PathBuf {
        self.home.join("vaults").join(VAULT)
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
}

fn shell_path(shell: &str) -> PathBuf {
    let found = ["/usr/bin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(shell))
        .find(|path| path.exists());
    found.unwrap_or_else(|| {
        panic!("`{shell}` is needed to test the bootstrap script: apt-get install -y {shell}")
    })
}

fn run_script(
    shell: &str,
    script: &str,
    prepare: impl FnOnce(&Path),
    path_var: Option<&str>,
) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("sikkerkey");
    prepare(&home);
    let script_path = dir.path().join("bootstrap.sh");
    std::fs::write(&script_path, script).unwrap();
    let mut command = Command::new(shell_path(shell));
    command
        .arg(&script_path)
        .env("SIKKERKEY_HOME", &home)
        .env("HOME", dir.path())
        .env("TMPDIR", dir.path())
        .env("NO_PROXY", "*")
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy");
    if let Some(path) = path_var {
        command.env("PATH", path);
    }
    let output = command.output().unwrap();
    Run {
        output,
        home,
        _dir: dir,
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn public_key_of(pem: &Path) -> String {
    let output = Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(pem)
        .output()
        .unwrap();
    assert!(output.status.success());
    STANDARD.encode(&output.stdout[output.stdout.len() - 32..])
}

fn successful_registration(shell: &str) {
    // The stub's answer names its own port, which is known only once it listens.
    let port_cell = Arc::new(Mutex::new(0u16));
    let server = {
        let cell = Arc::clone(&port_cell);
        TestServer::start(move |request| register_stub(*cell.lock().unwrap())(request))
    };
    *port_cell.lock().unwrap() = server.addr.port();
    let script = render_sh(&vault(), TOKEN, &url_for(&server)).unwrap();
    let run = run_script(shell, &script, |_| {}, None);
    assert!(
        run.output.status.success(),
        "{shell} failed: {}",
        run.stderr()
    );
    let stdout = String::from_utf8_lossy(&run.output.stdout);
    assert!(
        stdout.contains(&format!(
            "Registered machine pentest-q3 ({MACHINE_ID}) in vault {VAULT}"
        )),
        "{stdout}"
    );

    let vault_dir = run.vault_dir();
    assert_eq!(mode(&run.home), 0o700);
    assert_eq!(mode(&run.home.join("vaults")), 0o700);
    assert_eq!(mode(&vault_dir), 0o700);
    assert_eq!(mode(&vault_dir.join("identity.json")), 0o600);
    assert_eq!(mode(&vault_dir.join("private.pem")), 0o600);
    let mut entries: Vec<String> = std::fs::read_dir(&vault_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    entries.sort_unstable();
    assert_eq!(
        entries,
        ["identity.json", "private.pem"],
        "no staged files are left"
    );

    let identity: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vault_dir.join("identity.json")).unwrap()).unwrap();
    let canonical_dir = vault_dir.canonicalize().unwrap();
    assert_eq!(
        identity,
        serde_json::json!({
            "machineId": MACHINE_ID,
            "machineName": "pentest-q3",
            "vaultId": VAULT,
            "apiUrl": format!("http://localhost:{}", server.addr.port()),
            "privateKeyPath": canonical_dir.join("private.pem").to_str().unwrap(),
        })
    );

    let pem = std::fs::read_to_string(vault_dir.join("private.pem")).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");

    let recorded = server.recorded();
    assert_eq!(recorded.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&recorded[0].body).unwrap();
    assert_eq!(
        body["publicKey"],
        public_key_of(&vault_dir.join("private.pem"))
    );
    let body_text = String::from_utf8_lossy(&recorded[0].body);
    assert!(!body_text.contains("PRIVATE"), "{body_text}");
    let pem_base64: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    assert!(
        !body_text.contains(&pem_base64),
        "the private key was posted"
    );
    let der = STANDARD.decode(&pem_base64).unwrap();
    let seed = STANDARD.encode(&der[der.len() - 32..]);
    assert!(
        !body_text.contains(&seed[..40]),
        "the private seed was posted"
    );
}

#[test]
fn sh_script_registers_under_dash() {
    successful_registration("dash");
}

#[test]
fn sh_script_registers_under_bash() {
    successful_registration("bash");
}

fn assert_no_identity(run: &Run) {
    let vault_dir = run.vault_dir();
    assert!(!vault_dir.join("identity.json").exists());
    assert!(!vault_dir.join("private.pem").exists());
    if vault_dir.exists() {
        assert_eq!(
            std::fs::read_dir(&vault_dir).unwrap().count(),
            0,
            "staged files were left behind"
        );
    }
}

#[test]
fn failed_registration_leaves_nothing() {
    for shell in ["dash", "bash"] {
        let server = TestServer::start(|_| (401, r#"{"error":"authentication failed"}"#.into()));
        let script = render_sh(&vault(), TOKEN, &url_for(&server)).unwrap();
        let run = run_script(shell, &script, |_| {}, None);
        assert!(!run.output.status.success(), "{shell}");
        assert_eq!(
            run.stderr().trim_end(),
            "guardrail bootstrap: registration failed (HTTP 401): authentication failed"
        );
        assert_no_identity(&run);
        assert_eq!(server.count(), 1);
    }
}

#[test]
fn unexpected_response_is_rejected() {
    let cases: [(&str, &str); 4] = [
        (
            r#"{"machineId":"not-a-uuid","machineName":"m","vaultId":"vault_abc123","apiUrl":"https://g.example"}"#,
            "invalid machineId",
        ),
        (
            r#"{"machineId":"0b6a3c1e-8f5d-4c2a-9e7b-1d2c3b4a5f60","machineName":"m","vaultId":"vault_other","apiUrl":"https://g.example"}"#,
            "another vault",
        ),
        (
            r#"{"machineId":"0b6a3c1e-8f5d-4c2a-9e7b-1d2c3b4a5f60","machineName":"m","vaultId":"vault_abc123","apiUrl":"http://g.example"}"#,
            "apiUrl that clients do not accept",
        ),
        (
            r#"{"machineId":"0b6a3c1e-8f5d-4c2a-9e7b-1d2c3b4a5f60","machineName":"a\"b","vaultId":"vault_abc123","apiUrl":"https://g.example"}"#,
            "unexpected registration response",
        ),
    ];
    for (answer, message) in cases {
        let answer = answer.to_owned();
        let server = TestServer::start(move |_| (201, answer.clone()));
        let script = render_sh(&vault(), TOKEN, &url_for(&server)).unwrap();
        let run = run_script("dash", &script, |_| {}, None);
        assert!(!run.output.status.success());
        assert!(
            run.stderr().contains(message),
            "{message}: {}",
            run.stderr()
        );
        assert_no_identity(&run);
    }
}

#[test]
fn existing_identity_is_kept() {
    let server = TestServer::start(|_| (201, String::new()));
    let script = render_sh(&vault(), TOKEN, &url_for(&server)).unwrap();
    let run = run_script(
        "bash",
        &script,
        |home| {
            let dir = home.join("vaults").join(VAULT);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("identity.json"), "{\"old\":true}").unwrap();
        },
        None,
    );
    assert!(!run.output.status.success());
    assert!(
        run.stderr()
            .contains("an identity for vault vault_abc123 already exists"),
        "{}",
        run.stderr()
    );
    assert_eq!(
        std::fs::read_to_string(run.vault_dir().join("identity.json")).unwrap(),
        "{\"old\":true}"
    );
    assert_eq!(server.count(), 0, "nothing was posted");
}

#[test]
fn missing_openssl_is_reported() {
    let server = TestServer::start(|_| (201, String::new()));
    let script = render_sh(&vault(), TOKEN, &url_for(&server)).unwrap();
    let bin = tempfile::tempdir().unwrap();
    for tool in [
        "curl", "mktemp", "rm", "wc", "tr", "od", "tail", "head", "hostname", "uname", "cut",
        "sed", "grep", "mkdir", "chmod", "cp", "mv",
    ] {
        if let Some(found) = ["/usr/bin", "/bin"]
            .iter()
            .map(|dir| Path::new(dir).join(tool))
            .find(|path| path.exists())
        {
            std::os::unix::fs::symlink(found, bin.path().join(tool)).unwrap();
        }
    }
    let run = run_script("dash", &script, |_| {}, Some(bin.path().to_str().unwrap()));
    assert!(!run.output.status.success());
    assert_eq!(
        run.stderr().trim_end(),
        "guardrail bootstrap: openssl was not found: install OpenSSL 3 and run the command again"
    );
    assert_eq!(server.count(), 0);
}

#[test]
fn unreachable_server_is_reported() {
    let server = TestServer::start(|_| (201, String::new()));
    let url = url_for(&server);
    drop(server);
    let script = render_sh(&vault(), TOKEN, &url).unwrap();
    let run = run_script("dash", &script, |_| {}, None);
    assert!(!run.output.status.success());
    assert!(
        run.stderr()
            .starts_with(&format!("guardrail bootstrap: cannot reach {url}: ")),
        "{}",
        run.stderr()
    );
    assert_no_identity(&run);
}

#[test]
fn rendering_quotes_values() {
    let url: PublicUrl = "https://guardrail.example.com".parse().unwrap();
    let sh = render_sh(&vault(), TOKEN, &url).unwrap();
    assert!(sh.contains(&format!(
        "VAULT_ID='{VAULT}'\nTOKEN='{TOKEN}'\nAPI_URL='https://guardrail.example.com'\n"
    )));
    assert!(!sh.contains("__GUARDRAIL_"));
    let ps = render_ps1(&vault(), TOKEN, &url).unwrap();
    assert!(ps.contains(&format!(
        "$VaultId = '{VAULT}'\n$Token = '{TOKEN}'\n$ApiUrl = 'https://guardrail.example.com'\n"
    )));
    assert!(!ps.contains("__GUARDRAIL_"));
    assert_eq!(sh_quote("it's"), r"'it'\''s'");
    assert_eq!(ps_quote("it's"), "'it''s'");
}

#[test]
fn rendering_rejects_bad_tokens() {
    let url: PublicUrl = "https://guardrail.example.com".parse().unwrap();
    for token in [
        "",
        "a'b",
        "a b",
        "tok\u{2019}en",
        "a;rm -rf",
        &"a".repeat(MAX_TOKEN_LEN + 1),
    ] {
        let error = render_sh(&vault(), token, &url).unwrap_err();
        assert_eq!(error, RenderError::InvalidToken);
        assert!(render_ps1(&vault(), token, &url).is_err());
        assert!(commands(&vault(), token, &url).is_err());
    }
    assert_eq!(
        RenderError::InvalidToken.to_string(),
        "invalid bootstrap token: expected 1 to 256 URL-safe base64 characters"
    );
}

#[test]
fn issuance_commands() {
    let url: PublicUrl = "https://guardrail.example.com".parse().unwrap();
    let commands = commands(&vault(), TOKEN, &url).unwrap();
    assert_eq!(
        commands.linux,
        format!(
            "curl -fsSL 'https://guardrail.example.com/v1/{VAULT}/temp-bootstrap/{TOKEN}' | sh"
        )
    );
    assert_eq!(
        commands.windows,
        format!("iex (irm \"https://guardrail.example.com/v1/{VAULT}/temp-bootstrap/{TOKEN}/ps\")")
    );
}
