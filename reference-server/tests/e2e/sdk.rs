//! SikkerKey's official Python SDK (PyPI `sikkerkey` 1.3.0) reading secrets from the server,
//! with the identity the bootstrap script wrote.
//!
//! The test needs a Python interpreter with the SDK installed, named by `GUARDRAIL_E2E_PYTHON`.
//! `.ci/run` creates one in `target/e2e-venv`. Without the variable the test prints how to set
//! it and passes without running.

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Server, crate_path, run_bootstrap};

const PYTHON_VARIABLE: &str = "GUARDRAIL_E2E_PYTHON";

/// Parses a `fieldNames` value: a JSON string holding an array of names, or null.
fn field_names(value: &Value) -> Option<Vec<String>> {
    let text = value.as_str()?;
    let mut names: Vec<String> = serde_json::from_str(text)
        .unwrap_or_else(|_| panic!("fieldNames `{text}` is a JSON array"));
    names.sort();
    Some(names)
}

/// Sorts listed secrets by name, so that the comparison ignores the server's order.
fn sorted_by_name(list: &Value) -> Vec<Value> {
    let mut items = list.as_array().expect("a list").clone();
    items.sort_by_key(|item| item["name"].as_str().unwrap_or_default().to_owned());
    items
}

#[test]
fn python_sdk_reads_secrets() {
    let Some(python) = std::env::var_os(PYTHON_VARIABLE) else {
        eprintln!(
            "NOTICE: skipping python_sdk_reads_secrets because {PYTHON_VARIABLE} is not set. \
             Set it to a Python interpreter with SikkerKey's SDK installed, for example: \
             python3 -m venv target/e2e-venv && target/e2e-venv/bin/pip install sikkerkey==1.3.0 \
             && export {PYTHON_VARIABLE}=$PWD/target/e2e-venv/bin/python (.ci/run does this)"
        );
        return;
    };

    let server = Server::start(&[]);
    let admin = server.create_vault("sdk", "pro", None);
    let token = admin.issue("e2e-sdk", json!({"days": 2}), Value::Null);
    let command = token.response["commands"]["linux"]
        .as_str()
        .expect("commands.linux");
    let boot = run_bootstrap("sh", &["-c", command], b"");
    assert!(boot.output.status.success(), "{}", boot.describe());
    let identity: Value = serde_json::from_slice(
        &fs::read(boot.vault_dir(&admin.vault_id).join("identity.json")).expect("identity.json"),
    )
    .expect("identity.json is JSON");
    let machine_id = identity["machineId"]
        .as_str()
        .expect("machineId")
        .to_owned();
    admin.approve(&machine_id);

    let project = admin.create_project("payments");
    admin.add_member(&project, &machine_id);
    let plain = admin.create_secret(&project, "db-password", json!("hunter2-e2e"));
    let structured = admin.create_secret(
        &project,
        "smtp relay",
        json!({"host": "mail.example.test", "user": "robot", "password": "p@ss:w0rd"}),
    );
    let denied = admin.create_secret(&project, "not-granted", json!("kept from the machine"));
    admin.grant(&plain, &machine_id);
    admin.grant(&structured, &machine_id);

    let output = Command::new(&python)
        .arg(crate_path("tests/e2e/sdk_driver.py"))
        .args([&admin.vault_id, &project, &plain, &structured, &denied])
        .env("SIKKERKEY_HOME", &boot.sikkerkey_home)
        .env("HOME", boot.root.path().join("home"))
        .output()
        .unwrap_or_else(|error| panic!("run {python:?}: {error}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "sdk_driver.py failed:\n{stderr}");
    let result: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("sdk_driver.py printed no JSON ({error}):\n{stderr}"));

    assert_eq!(result["machineId"], machine_id.as_str());
    assert_eq!(result["unprefixedMachineId"], machine_id.as_str());
    assert_eq!(result["secret"], "hunter2-e2e");
    assert_eq!(
        result["fields"],
        json!({"host": "mail.example.test", "user": "robot", "password": "p@ss:w0rd"})
    );

    for key in ["list", "listByProject"] {
        let listed = sorted_by_name(&result[key]);
        assert_eq!(listed.len(), 2, "{key}: {listed:?}");
        assert_eq!(listed[0]["id"], plain.as_str(), "{key}");
        assert_eq!(listed[0]["name"], "db-password", "{key}");
        assert_eq!(listed[0]["project_id"], project.as_str(), "{key}");
        assert_eq!(field_names(&listed[0]["field_names"]), None, "{key}");
        assert_eq!(listed[1]["id"], structured.as_str(), "{key}");
        assert_eq!(listed[1]["name"], "smtp relay", "{key}");
        assert_eq!(listed[1]["project_id"], project.as_str(), "{key}");
        assert_eq!(
            field_names(&listed[1]["field_names"]),
            Some(vec![
                "host".to_owned(),
                "password".to_owned(),
                "user".to_owned()
            ]),
            "{key}"
        );
    }

    // export() flattens a structured secret into NAME_FIELD keys.
    let expected_export: BTreeMap<&str, &str> = [
        ("DB_PASSWORD", "hunter2-e2e"),
        ("SMTP_RELAY_HOST", "mail.example.test"),
        ("SMTP_RELAY_USER", "robot"),
        ("SMTP_RELAY_PASSWORD", "p@ss:w0rd"),
    ]
    .into_iter()
    .collect();
    for key in ["export", "exportProject"] {
        let exported: BTreeMap<&str, &str> = result[key]
            .as_object()
            .unwrap_or_else(|| panic!("{key} is an object: {}", result[key]))
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str().expect("a string value")))
            .collect();
        assert_eq!(exported, expected_export, "{key}");
    }

    let denied_error = &result["denied"];
    assert!(
        ["AccessDeniedError", "NotFoundError"]
            .contains(&denied_error["type"].as_str().unwrap_or("")),
        "reading an ungranted secret: {denied_error}"
    );
    assert_eq!(result["plainAsFields"]["type"], "SecretStructureError");
}
