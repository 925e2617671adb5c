//! The served bootstrap script, run for real with `sh` and `dash`, OpenSSL and curl.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::SigningKey;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::support::{
    Admin, Bootstrapped, Machine, Server, contains_bytes, read_files_with_prefix, run_bootstrap,
    seed_from_pem, targets,
};

/// Checks what a successful script run wrote and that the server stores the matching public
/// key, then returns the machine.
fn check_identity(
    server: &Server,
    admin: &Admin,
    boot: &Bootstrapped,
    machine_name: &str,
) -> Machine {
    assert!(boot.output.status.success(), "{}", boot.describe());
    let stdout = String::from_utf8_lossy(&boot.output.stdout);
    assert!(stdout.contains("Registered machine"), "{}", boot.describe());

    let vault_dir = boot.vault_dir(&admin.vault_id);
    let mut names: Vec<String> = fs::read_dir(&vault_dir)
        .expect("the vault folder exists")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["identity.json", "private.pem"],
        "files in {vault_dir:?}"
    );

    let identity: Value = serde_json::from_slice(
        &fs::read(vault_dir.join("identity.json")).expect("read identity.json"),
    )
    .expect("identity.json is JSON");
    let mut keys: Vec<&String> = identity.as_object().expect("an object").keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "apiUrl",
            "machineId",
            "machineName",
            "privateKeyPath",
            "vaultId"
        ],
        "identity.json keys"
    );
    let machine_id = identity["machineId"]
        .as_str()
        .expect("machineId")
        .to_owned();
    assert_eq!(machine_id.len(), 36, "a UUID machine id: {machine_id}");
    assert_eq!(machine_id, machine_id.to_lowercase(), "a lower-case UUID");
    assert_eq!(identity["machineName"], machine_name);
    assert_eq!(identity["vaultId"], admin.vault_id.as_str());
    assert_eq!(identity["apiUrl"], server.public_url().as_str());
    let key_path = Path::new(identity["privateKeyPath"].as_str().expect("privateKeyPath"));
    assert!(
        key_path.is_absolute(),
        "privateKeyPath {key_path:?} is absolute"
    );
    assert_eq!(
        key_path,
        vault_dir
            .join("private.pem")
            .canonicalize()
            .expect("private.pem exists"),
    );

    let mode = |path: &Path| {
        fs::metadata(path)
            .unwrap_or_else(|error| panic!("stat {path:?}: {error}"))
            .permissions()
            .mode()
            & 0o777
    };
    for dir in [
        boot.sikkerkey_home.clone(),
        boot.sikkerkey_home.join("vaults"),
        vault_dir.clone(),
    ] {
        assert_eq!(mode(&dir), 0o700, "mode of {dir:?}");
    }
    for file in ["identity.json", "private.pem"] {
        assert_eq!(mode(&vault_dir.join(file)), 0o600, "mode of {file}");
    }
    let leftovers: Vec<_> = fs::read_dir(&boot.tmp).expect("list TMPDIR").collect();
    assert!(
        leftovers.is_empty(),
        "the script left {leftovers:?} in TMPDIR"
    );

    // The key on disk is the one the server registered: OpenSSL's public key matches the seed,
    // and a request signed with the seed authenticates once the machine is approved.
    let pem = fs::read_to_string(key_path).expect("read private.pem");
    assert!(
        pem.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "a PKCS#8 PEM"
    );
    let seed = seed_from_pem(&pem);
    let key = SigningKey::from_bytes(&seed);
    let public_der = Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(key_path)
        .output()
        .expect("run openssl");
    assert!(public_der.status.success(), "openssl pkey -pubout failed");
    assert_eq!(
        public_der.stdout.len(),
        44,
        "an Ed25519 SubjectPublicKeyInfo"
    );
    assert_eq!(public_der.stdout[12..], key.verifying_key().to_bytes());

    let shown = admin.machine(&machine_id).expect(200, "show the machine");
    assert_eq!(shown["state"], "pending");
    assert_eq!(shown["name"], machine_name);
    assert_eq!(shown["kind"], "temporary");

    let machine = Machine {
        id: machine_id,
        key,
    };
    let pending = server.signed(&machine, Method::GET, "/v1/secrets", b"");
    assert_eq!(pending.status, 401, "a pending machine: {}", pending.text);
    admin.approve(&machine.id);
    let listed = server.signed(&machine, Method::GET, "/v1/secrets", b"");
    assert!(
        listed.content_type.starts_with("application/json"),
        "Content-Type `{}`",
        listed.content_type
    );
    assert_eq!(
        listed.expect(200, "list secrets with the script's key"),
        json!({"secrets": []})
    );

    check_seed_stayed_local(server, &seed, &pem);
    machine
}

/// Searches the server's logs and database files for any encoding of the private key. The raw
/// public key, which the server does store, is the control that shows the search can find a
/// key in the database.
fn check_seed_stayed_local(server: &Server, seed: &[u8; 32], pem: &str) {
    let logs = server.logs();
    let database = read_files_with_prefix(server.dir.path(), "db.sqlite3");
    let public_key = SigningKey::from_bytes(seed).verifying_key().to_bytes();
    assert!(
        contains_bytes(&database, &public_key),
        "control: the raw public key is in the database files"
    );

    let pem_body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let hex: String = seed.iter().map(|byte| format!("{byte:02x}")).collect();
    let encodings: [(&str, Vec<u8>); 5] = [
        ("raw seed", seed.to_vec()),
        ("seed in base64", STANDARD.encode(seed).into_bytes()),
        (
            "seed in URL-safe base64",
            URL_SAFE_NO_PAD.encode(seed).into_bytes(),
        ),
        ("seed in hex", hex.into_bytes()),
        ("PEM body", pem_body.into_bytes()),
    ];
    for (what, needle) in &encodings {
        assert!(
            !contains_bytes(&logs, needle),
            "{what} found in the server's logs"
        );
        assert!(
            !contains_bytes(&database, needle),
            "{what} found in the server's database files"
        );
    }
}

#[test]
fn sh_command_registers_machine() {
    let server = Server::start(&[]);
    let admin = server.create_vault("bootstrap-sh", "pro", None);
    let token = admin.issue("e2e-sh", json!({"days": 1}), Value::Null);

    let command = token.response["commands"]["linux"]
        .as_str()
        .expect("commands.linux");
    assert!(
        command.starts_with("curl -fsSL ") && command.ends_with(" | sh"),
        "the Linux command: {command}"
    );
    assert!(command.contains(&server.public_url()), "{command}");

    // The issued command as an operator pastes it: curl fetches the script and pipes it to sh.
    let boot = run_bootstrap("sh", &["-c", command], b"");
    let machine = check_identity(&server, &admin, &boot, "e2e-sh");

    let created = admin.audit("temp_machine_create");
    assert_eq!(created.len(), 1, "{created:?}");
    assert!(targets(&created[0], &machine.id), "{created:?}");
}

#[test]
fn dash_runs_served_script() {
    let server = Server::start(&[]);
    let admin = server.create_vault("bootstrap-dash", "pro", None);
    let token = admin.issue("e2e-dash", json!({"hours": 5}), Value::Null);
    let path = format!("/v1/{}/temp-bootstrap/{}", admin.vault_id, token.plaintext);

    // Serving the script does not consume the token, so it can be fetched twice.
    let first = server.send(Method::GET, &path, HeaderMap::new(), Vec::new());
    assert_eq!(first.status, 200, "{}", first.text);
    let second = server.send(Method::GET, &path, HeaderMap::new(), Vec::new());
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(first.text, second.text);
    let script = first.text;
    assert!(script.starts_with("#!/bin/sh\n"), "a POSIX sh script");

    let boot = run_bootstrap("dash", &["-s"], script.as_bytes());
    check_identity(&server, &admin, &boot, "e2e-dash");

    // The token is used now: the same script fails and writes no identity.
    let again = run_bootstrap("dash", &["-s"], script.as_bytes());
    assert!(!again.output.status.success(), "{}", again.describe());
    let stderr = String::from_utf8_lossy(&again.output.stderr);
    assert!(
        stderr.contains("registration failed (HTTP 401)"),
        "{}",
        again.describe()
    );
    let vault_dir = again.vault_dir(&admin.vault_id);
    assert!(
        !vault_dir.join("identity.json").exists() && !vault_dir.join("private.pem").exists(),
        "a failed run left an identity in {vault_dir:?}"
    );
    let leftovers: Vec<_> = fs::read_dir(&again.tmp).expect("list TMPDIR").collect();
    assert!(
        leftovers.is_empty(),
        "the failed run left {leftovers:?} in TMPDIR"
    );
}
